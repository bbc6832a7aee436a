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

/// Counts one event in CloudWatch through the Embedded Metric Format: a JSON line on stdout
/// that Lambda's log pipeline turns into the metric `LagoSalesforceSync/Events`, by family
/// and outcome and by outcome alone (what the alarms watch). No API call, no cost per put.
pub fn count(family: impl std::fmt::Display, outcome: &str) {
    emit(
        serde_json::json!([["Family", "Outcome"], ["Outcome"]]),
        serde_json::json!({ "Name": "Events", "Unit": "Count" }),
        serde_json::json!({ "Family": family.to_string(), "Outcome": outcome, "Events": 1 }),
    );
}

/// One occurrence of a condition without dimensions, for an alarm on its sum, e.g.
/// [`CREDENTIALS_REFUSED`].
pub fn count_one(name: &str) {
    emit(
        serde_json::json!([[]]),
        serde_json::json!({ "Name": name, "Unit": "Count" }),
        serde_json::json!({ name: 1 }),
    );
}

/// The metric of a token request whose client credentials Salesforce still refused after
/// the secret was re-read (template.yaml's `SalesforceCredentialsRefusedAlarm`).
pub const CREDENTIALS_REFUSED: &str = "SalesforceCredentialsRefused";

/// A gauge without dimensions, e.g. the queued backlog after a redrive run.
pub fn gauge(name: &str, value: f64) {
    emit(
        serde_json::json!([[]]),
        serde_json::json!({ "Name": name, "Unit": "Count" }),
        serde_json::json!({ name: value }),
    );
}

fn emit(dimensions: serde_json::Value, metric: serde_json::Value, values: serde_json::Value) {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{ "Namespace": METRICS_NAMESPACE, "Dimensions": dimensions, "Metrics": [metric] }],
        },
    });
    if let (Some(line), serde_json::Value::Object(values)) = (line.as_object_mut(), values) {
        line.extend(values);
    }
    println!("{line}");
}

pub const METRICS_NAMESPACE: &str = "LagoSalesforceSync";
