//! The envelope `{webhook_type, object_type, organization_id, <object_type>: {...}}`.
//! Only the object of the function's own family is ever deserialised.
//!
//! [`as_webhook_body`] goes the other way, for a Lago object read through the API (the
//! backfill's lists, the functions' reads of [`crate::lago_api::LagoApi::object`]): it
//! is then mapped exactly like a delivery of that object.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;
use thiserror::Error;

use crate::Family;

/// The body of a webhook of `webhook_type` carrying `object`, a Lago object of `family`
/// as Lago's API answers it: `{"webhook_type", "object_type", "<object_type>": object}`
/// (no `organization_id`, which nothing reads). Keys are in serde_json's map order, as
/// in the bodies the backfill stored before this function existed, so a stored body
/// keeps its hash.
pub fn as_webhook_body(family: Family, webhook_type: &str, object: &Value) -> Vec<u8> {
    let object_type = family.object_type();
    let (webhook_type, object_type_value) = (Value::from(webhook_type), Value::from(object_type));
    let mut entries = [
        ("webhook_type", &webhook_type),
        ("object_type", &object_type_value),
        (object_type, object),
    ];
    entries.sort_by_key(|(key, _)| *key);
    let mut body = Vec::new();
    serde_json::Serializer::new(&mut body)
        .collect_map(entries)
        .expect("a JSON value serialises into memory");
    body
}

#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    pub webhook_type: String,
    pub object_type: String,
    #[serde(default)]
    pub organization_id: Option<String>,
    #[serde(borrow, default)]
    customer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    subscription: Option<&'a RawValue>,
    #[serde(borrow, default)]
    invoice: Option<&'a RawValue>,
    #[serde(borrow, default)]
    credit_note: Option<&'a RawValue>,
    /// `invoice.payment_dispute_lost` wraps its invoice: `{"invoice": {...}, "provider_error"}`.
    #[serde(borrow, default)]
    payment_dispute_lost: Option<&'a RawValue>,
}

#[derive(Debug, Error)]
pub enum EnvelopeError {
    #[error("the body is not UTF-8 text, so not JSON")]
    NotUtf8,
    #[error("the body is not a Lago webhook envelope: {0}")]
    NotAnEnvelope(serde_json::Error),
    #[error("the envelope has no {0:?} object")]
    MissingObject(String),
    #[error("the {object_type} object is malformed: {source}")]
    MalformedObject {
        object_type: String,
        source: serde_json::Error,
    },
}

impl<'a> Envelope<'a> {
    pub fn parse(body: &'a [u8]) -> Result<Self, EnvelopeError> {
        // JSON is UTF-8; serde_json checks that only in the fields it reads, and a field
        // nobody reads must not make an invalid body valid.
        let text = std::str::from_utf8(body).map_err(|_| EnvelopeError::NotUtf8)?;
        serde_json::from_str(text).map_err(EnvelopeError::NotAnEnvelope)
    }

    /// Deserialises the object named by `object_type` (`customer`, `subscription`, …,
    /// `payment_dispute_lost`).
    pub fn object<T: DeserializeOwned>(&self, object_type: &str) -> Result<T, EnvelopeError> {
        let raw = match object_type {
            "customer" => self.customer,
            "subscription" => self.subscription,
            "invoice" => self.invoice,
            "credit_note" => self.credit_note,
            "payment_dispute_lost" => self.payment_dispute_lost,
            _ => None,
        }
        .filter(|raw| raw.get() != "null")
        .ok_or_else(|| EnvelopeError::MissingObject(object_type.to_owned()))?;
        serde_json::from_str(raw.get()).map_err(|source| EnvelopeError::MalformedObject {
            object_type: object_type.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::lago::Invoice;

    #[test]
    fn a_webhook_body_of_an_api_object_parses_as_its_envelope() {
        let invoice =
            json!({"lago_id": "inv-1", "status": "finalized", "customer": {"external_id": "c"}});
        let body = as_webhook_body(Family::Invoice, "invoice.created", &invoice);
        let expected = json!({"webhook_type": "invoice.created", "object_type": "invoice", "invoice": invoice});
        // Byte for byte what `serde_json::to_vec(&json!(...))` made before.
        assert_eq!(body, serde_json::to_vec(&expected).unwrap());
        let envelope = Envelope::parse(&body).unwrap();
        assert_eq!(
            (
                envelope.webhook_type.as_str(),
                envelope.object_type.as_str()
            ),
            ("invoice.created", "invoice")
        );
        let parsed: Invoice = envelope.object("invoice").unwrap();
        assert_eq!(parsed.lago_id.as_deref(), Some("inv-1"));

        let subscription = json!({"lago_id": "s", "status": "active"});
        let body = as_webhook_body(Family::Subscription, "subscription.updated", &subscription);
        let expected = json!({"webhook_type": "subscription.updated", "object_type": "subscription", "subscription": subscription});
        assert_eq!(body, serde_json::to_vec(&expected).unwrap());
    }
}
