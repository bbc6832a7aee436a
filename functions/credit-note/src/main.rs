//! Lambda function for Lago credit note webhooks (`POST /webhooks/credit-note`).

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run(lago_sync::Family::CreditNote)
}
