//! Test-only function for the Runtime API emulator's self-test. It runs the real
//! `lambda_runtime` client, so the emulator is checked against the protocol as AWS's Rust
//! runtime speaks it.
//!
//! Event knobs: `{"sleep_ms": N}` delays the answer, `{"fail": "message"}` returns a handler
//! error. `ECHO_INIT_ERROR=message` reports an init error and exits with status 3, the way a
//! function with missing configuration fails at start-up.

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    if let Ok(message) = std::env::var("ECHO_INIT_ERROR") {
        report_init_error(&message).await?;
        eprintln!("echo-lambda: init failed: {message}");
        std::process::exit(3);
    }
    println!("echo-lambda: ready");
    lambda_runtime::run(service_fn(echo)).await
}

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let LambdaEvent { payload, context } = event;
    if let Some(ms) = payload.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    if let Some(message) = payload.get("fail").and_then(Value::as_str) {
        return Err(message.into());
    }
    println!("echo-lambda: handled {}", context.request_id);
    let env: BTreeMap<String, String> = std::env::vars().collect();
    Ok(json!({
        "event": payload,
        "request_id": context.request_id,
        "deadline_ms": context.deadline,
        "function_arn": context.invoked_function_arn,
        "trace_id": context.xray_trace_id,
        "env": env,
    }))
}

/// `lambda_runtime` has no public init-error call, so post it as other runtimes do.
async fn report_init_error(message: &str) -> Result<(), Error> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")?;
    reqwest::Client::new()
        .post(format!("http://{api}/2018-06-01/runtime/init/error"))
        .header("Lambda-Runtime-Function-Error-Type", "Runtime.ExitError")
        .json(&json!({"errorType": "Runtime.ExitError", "errorMessage": message}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}
