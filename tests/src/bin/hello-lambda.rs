//! The bare `lambda_http` hello-world that lambda-bench measures beside the webhook
//! functions: same runtime crates and release profile, no configuration, no clients.

use lambda_http::{service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_: Request| async { Ok::<_, Error>("hello") })).await
}
