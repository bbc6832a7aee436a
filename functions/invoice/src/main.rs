//! Lambda function for Lago invoice webhooks (`POST /webhooks/invoice`).

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run(lago_sync::Family::Invoice)
}
