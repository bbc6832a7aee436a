//! The envelope `{webhook_type, object_type, organization_id, <object_type>: {...}}`.
//! Only the object of the function's own family is ever deserialised.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;
use thiserror::Error;

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

    /// Deserialises the object named by `object_type` (`customer`, `subscription`, …).
    pub fn object<T: DeserializeOwned>(&self, object_type: &str) -> Result<T, EnvelopeError> {
        let raw = match object_type {
            "customer" => self.customer,
            "subscription" => self.subscription,
            "invoice" => self.invoice,
            "credit_note" => self.credit_note,
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
