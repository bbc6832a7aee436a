//! Lambda function for Lago subscription webhooks (`POST /webhooks/subscription`).

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run(lago_sync::Family::Subscription)
}
