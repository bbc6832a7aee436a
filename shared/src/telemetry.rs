//! Structured JSON logs. Every line of an invocation carries the span fields: request id,
//! family, delivery id (`X-Lago-Unique-Key`), then webhook type, Lago id and outcome.

use tracing_subscriber::EnvFilter;

pub fn init() {
    // Lambda's advanced logging controls set AWS_LAMBDA_LOG_LEVEL; RUST_LOG serves locally.
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter =
        EnvFilter::try_new(level.to_lowercase()).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(std::io::stdout)
        .try_init();
}
