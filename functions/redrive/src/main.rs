//! Lambda function run by an EventBridge schedule: retries the queued events that are due.

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run_redrive()
}
