//! Test kit for the Lago → Salesforce sync functions.

pub mod apigw;
pub mod events;
pub mod function_stack;
pub mod inprocess;
pub mod lago;
pub mod lago_standin;
pub mod lambda;
pub mod moto;
pub mod proxy;
pub mod standin;

mod capture;
mod process;
mod random;

/// A body as JSON when it is JSON, else as a JSON string, so tests can assert on either.
pub(crate) fn json_or_text(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}
