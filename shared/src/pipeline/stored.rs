//! What is kept of an event stored for a retry, and when the retry comes.

use std::borrow::Cow;

use serde_json::{Map, Value};

/// Bodies above this size are stored slimmed: a DynamoDB item holds 400 KB, compressed
/// body included, and Lago invoices with thousands of fees go past it.
const STORED_BODY_LIMIT: usize = 200 * 1024;

/// The body to store for a retry: as received, or, when large, only what the mapping
/// reads — the envelope's type fields and the object without arrays (but the Salesforce
/// links in `integration_customers`) and without long values. The retry is not verified
/// again, so the stored body need not be the signed one.
pub(crate) fn storable(body: &[u8]) -> Cow<'_, [u8]> {
    if body.len() <= STORED_BODY_LIMIT {
        return Cow::Borrowed(body);
    }
    let Ok(Value::Object(envelope)) = serde_json::from_slice::<Value>(body) else {
        return Cow::Borrowed(body);
    };
    let mut kept = Map::new();
    for key in ["webhook_type", "object_type", "organization_id"] {
        if let Some(value) = envelope.get(key) {
            kept.insert(key.to_owned(), value.clone());
        }
    }
    if let Some(object_type) = envelope.get("object_type").and_then(Value::as_str) {
        if let Some(object) = envelope.get(object_type) {
            kept.insert(object_type.to_owned(), slim(object));
        }
    }
    Cow::Owned(serde_json::to_vec(&Value::Object(kept)).expect("a JSON value serialises"))
}

fn slim(object: &Value) -> Value {
    const LONG: usize = 4096;
    let Value::Object(fields) = object else {
        return object.clone();
    };
    let kept = fields
        .iter()
        .filter_map(|(name, value)| match (name.as_str(), value) {
            ("customer", _) => Some((name.clone(), slim(value))),
            ("integration_customers", _) => Some((name.clone(), value.clone())),
            (_, Value::Array(_)) => None,
            _ if value.to_string().len() > LONG => None,
            _ => Some((name.clone(), value.clone())),
        });
    Value::Object(kept.collect())
}

/// Exponential backoff with jitter for queued events: 30 s, 1 min, 2 min, … capped at
/// one hour, each drawn between half and all of it so retries of an outage spread out.
pub fn retry_delay_ms(attempt: u32) -> i64 {
    const BASE_MS: i64 = 30_000;
    const CAP_MS: i64 = 3_600_000;
    let full = BASE_MS
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(CAP_MS);
    full / 2 + fastrand::i64(0..=full / 2)
}
