//! Lambda function for Salesforce outbound messages (`POST /salesforce/accounts/{token}`):
//! an Account flagged "Bill with Lago" becomes its Lago customer (contract §8).

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::entrypoint::run_outbound()
}
