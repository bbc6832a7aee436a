//! Lambda function for Lago invoice webhooks (`POST /webhooks/invoice`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run(lago_sync::Family::Invoice).await
}
