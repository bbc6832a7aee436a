//! Lambda function for Lago customer webhooks (`POST /webhooks/customer`).

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run(lago_sync::Family::Customer)
}
