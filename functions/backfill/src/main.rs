//! Lambda function invoked by hand (`sam remote invoke BackfillFunction`): runs the
//! backfill until shortly before its deadline; invoke again until it answers `finished`.

fn main() -> Result<(), lambda_http::Error> {
    lago_sync::backfill::run_function()
}
