//! The answers of contract §3: what each outcome returns to Lago, and how a stored
//! outcome is answered again.

use serde_json::{json, Value};

use crate::store::{Status, StoredDelivery};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Unauthorized(&'static str),
    Invalid(String),
    Ignored(String),
    Skipped(String),
    Synced {
        created: Option<bool>,
        invoice_linked: Option<bool>,
    },
    Duplicate,
    Failed {
        code: String,
        message: String,
    },
    Conflict,
    InProgress,
    Queued {
        code: String,
        message: String,
    },
    Unavailable(String),
}

impl Outcome {
    pub fn status_code(&self) -> u16 {
        match self {
            Outcome::Unauthorized(_) => 401,
            Outcome::Invalid(_) => 400,
            Outcome::Ignored(_)
            | Outcome::Skipped(_)
            | Outcome::Synced { .. }
            | Outcome::Duplicate => 200,
            Outcome::Failed { .. } | Outcome::Conflict => 422,
            Outcome::InProgress => 409,
            Outcome::Queued { .. } => 202,
            Outcome::Unavailable(_) => 503,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::Invalid(_) => "invalid",
            Outcome::Ignored(_) => "ignored",
            Outcome::Skipped(_) => "skipped",
            Outcome::Synced { .. } => "synced",
            Outcome::Duplicate => "duplicate",
            Outcome::Failed { .. } => "failed",
            Outcome::Conflict => "conflict",
            Outcome::InProgress => "in_progress",
            Outcome::Queued { .. } => "queued",
            Outcome::Unavailable(_) => "unavailable",
        }
    }

    /// The JSON answer. Messages come from Lago payloads, Salesforce or AWS error codes,
    /// never from the secret.
    pub fn body(&self) -> Value {
        let status = self.label();
        match self {
            Outcome::Unauthorized(message) => json!({ "status": status, "message": message }),
            Outcome::Invalid(message)
            | Outcome::Ignored(message)
            | Outcome::Skipped(message)
            | Outcome::Unavailable(message) => json!({ "status": status, "message": message }),
            Outcome::Synced {
                created,
                invoice_linked,
            } => {
                let mut body = json!({ "status": status });
                if let Some(created) = created {
                    body["created"] = json!(created);
                }
                if let Some(linked) = invoice_linked {
                    body["invoice_linked"] = json!(linked);
                }
                body
            }
            Outcome::Failed { code, message } | Outcome::Queued { code, message } => {
                json!({ "status": status, "error_code": code, "message": message })
            }
            Outcome::Duplicate => {
                json!({ "status": status, "message": "this delivery was already processed" })
            }
            Outcome::Conflict => json!({
                "status": status,
                "message": "this X-Lago-Unique-Key was already used with a different body",
            }),
            Outcome::InProgress => {
                json!({ "status": status, "message": "this delivery is being processed" })
            }
        }
    }
}

/// The answer to a redelivery of a stored event, from what is stored: no Salesforce call.
pub(super) fn replay(stored: &StoredDelivery, body_sha256: &str) -> Outcome {
    if stored.body_sha256 != body_sha256 {
        return Outcome::Conflict;
    }
    let text = |field: &Option<String>| field.clone().unwrap_or_default();
    let (code, message) = (text(&stored.error_code), text(&stored.error_message));
    match stored.status {
        Status::Completed => Outcome::Duplicate,
        Status::InProgress => Outcome::InProgress,
        Status::Failed | Status::Dead => Outcome::Failed { code, message },
        Status::Queued => Outcome::Queued { code, message },
    }
}
