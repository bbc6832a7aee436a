//! One webhook delivery through every step, ending in one of the answers of contract §3:
//! signature → envelope → family and type → mapping → claim → order → Salesforce → finish.
//! A stored event's retry ([`App::retry`]) goes through the same last steps.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use std::borrow::Cow;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn, Span};

use crate::lago::Envelope;
use crate::mapping::{self, MappingError, Plan};
use crate::salesforce::{Class, SalesforceClient, SalesforceError};
use crate::secrets::{SecretCache, Secrets};
use crate::signature::{self, Rejection};
use crate::store::{
    delivery_key, Claim, ClaimRequest, Existing, Finish, IdempotencyStore, Status, StoredDelivery,
};
use crate::{telemetry, Family};

/// What every function holds for its warm lifetime.
pub struct App<S> {
    pub secrets: SecretCache,
    pub store: S,
    pub salesforce: SalesforceClient,
}

/// A webhook request as the pipeline sees it, independent of API Gateway.
#[derive(Debug, Clone)]
pub struct Delivery<'a> {
    pub body: &'a [u8],
    pub signature: Option<&'a str>,
    pub algorithm: Option<&'a str>,
    pub unique_key: Option<&'a str>,
    /// When the invocation must have answered.
    pub deadline: Instant,
    pub deadline_epoch_ms: i64,
}

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

impl<S: IdempotencyStore> App<S> {
    /// Answers a webhook sent to `family`'s endpoint.
    pub async fn handle(&self, family: Family, delivery: &Delivery<'_>) -> Outcome {
        let outcome = self.run(family, delivery).await;
        telemetry::count(family, outcome.label());
        Span::current().record("outcome", outcome.label());
        match &outcome {
            Outcome::Unavailable(reason) => error!(
                status = outcome.status_code(),
                reason, "webhook not processed"
            ),
            Outcome::Failed { code, .. } | Outcome::Queued { code, .. } => {
                warn!(
                    status = outcome.status_code(),
                    error_code = code,
                    "webhook handled"
                )
            }
            _ => info!(status = outcome.status_code(), "webhook handled"),
        }
        outcome
    }

    async fn run(&self, family: Family, delivery: &Delivery<'_>) -> Outcome {
        let claimed = match signature::precheck(delivery.signature, delivery.algorithm) {
            Ok(signature) => signature,
            Err(rejection) => return Outcome::Unauthorized(rejection.reason()),
        };
        if let Err(outcome) = self.verified_secrets(delivery.body, claimed).await {
            return outcome;
        }
        let envelope = match Envelope::parse(delivery.body) {
            Ok(envelope) => envelope,
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        Span::current().record("webhook_type", envelope.webhook_type.as_str());
        if !family.writes(&envelope.webhook_type) {
            return Outcome::Ignored(format!(
                "the {family} function does not sync {} events",
                envelope.webhook_type
            ));
        }
        let plan = match mapping::plan(family, &envelope) {
            Ok(plan) => plan,
            Err(MappingError::NoAccount(reason)) => return Outcome::Skipped(reason),
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        Span::current().record("lago_id", plan.lago_id.as_str());
        self.process(family, delivery, &envelope.webhook_type, &plan)
            .await
    }

    /// Verifies with the kept HMAC key, and once more with a re-read secret when that
    /// fails, in case the key was rotated.
    async fn verified_secrets(
        &self,
        body: &[u8],
        claimed: &str,
    ) -> Result<std::sync::Arc<Secrets>, Outcome> {
        let secrets = self
            .secrets
            .current()
            .await
            .map_err(|e| Outcome::Unavailable(e.to_string()))?;
        if signature::verify(secrets.lago_hmac_key.as_bytes(), body, claimed).is_ok() {
            return Ok(secrets);
        }
        let rotated = self
            .secrets
            .reread_after_rejection(&secrets)
            .await
            .map_err(|e| Outcome::Unavailable(e.to_string()))?;
        match rotated {
            Some(rotated)
                if signature::verify(rotated.lago_hmac_key.as_bytes(), body, claimed).is_ok() =>
            {
                info!("the HMAC key was rotated; using the new one");
                Ok(rotated)
            }
            _ => Err(Outcome::Unauthorized(Rejection::Mismatch.reason())),
        }
    }

    async fn process(
        &self,
        family: Family,
        delivery: &Delivery<'_>,
        webhook_type: &str,
        plan: &Plan,
    ) -> Outcome {
        let body_sha256 = hex::encode(Sha256::digest(delivery.body));
        // Lago always sends the key; without one, identical bodies are the same event.
        let key = delivery_key(family.as_str(), delivery.unique_key.unwrap_or(&body_sha256));
        let now_ms = epoch_ms();
        let claim = ClaimRequest {
            key: &key,
            body_sha256: &body_sha256,
            family: family.as_str(),
            webhook_type,
            now_ms,
            lease_until_ms: delivery.deadline_epoch_ms,
        };
        let previous = match self.store.claim(&claim).await {
            Ok(Claim::Acquired { previous }) => previous,
            Ok(Claim::Taken(existing)) => return replay(&existing, &body_sha256),
            Err(e) => return Outcome::Unavailable(e.to_string()),
        };
        let attempt = Attempt {
            key: &key,
            previous,
            attempts_before: 0,
            body: delivery.body,
            deadline: delivery.deadline,
        };
        self.write(&attempt, plan).await
    }

    /// Retries a stored event that the caller has claimed (see [`crate::redrive`]).
    /// `stored.body` must be present; the event was verified when it was received.
    pub async fn retry(&self, stored: &StoredDelivery, deadline: Instant) -> Outcome {
        let body = stored.body.as_deref().unwrap_or_default();
        let plan = Envelope::parse(body)
            .map_err(MappingError::from)
            .and_then(|envelope| match stored.family.parse::<Family>() {
                Ok(family) => mapping::plan(family, &envelope),
                Err(()) => Err(MappingError::invalid(
                    "family",
                    &stored.family,
                    "not an event family",
                )),
            });
        let attempt = Attempt {
            key: &stored.key,
            previous: Some(Status::Queued),
            attempts_before: stored.attempts,
            body,
            deadline,
        };
        let plan = match plan {
            Ok(plan) => plan,
            // It mapped when it was received; only a changed mapping can refuse it now.
            Err(e) => {
                let refusal = SalesforceError::new(None, "UNMAPPABLE", e.to_string());
                return self
                    .park(
                        &attempt,
                        SalesforceError {
                            class: Class::Permanent,
                            ..refusal
                        },
                    )
                    .await;
            }
        };
        Span::current().record("lago_id", plan.lago_id.as_str());
        // Secrets Manager down before anything was tried: release the event rather than
        // count an attempt (the Salesforce client reads the same kept value next).
        if let Err(e) = self.secrets.current().await {
            return self.give_back(&attempt, e.to_string()).await;
        }
        self.write(&attempt, &plan).await
    }

    /// The steps after the claim: ordering guard, the Salesforce write, and its record.
    async fn write(&self, attempt: &Attempt<'_>, plan: &Plan) -> Outcome {
        let now_ms = epoch_ms();
        if let Some(stamp) = &plan.order {
            match self.store.advance_order(stamp, now_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    let reason =
                        format!("a newer state of {} is already in Salesforce", stamp.record);
                    return self.complete(attempt.key, Outcome::Skipped(reason)).await;
                }
                Err(e) => return self.give_back(attempt, e.to_string()).await,
            }
        }

        match self
            .salesforce
            .write(&self.secrets, &plan.write, attempt.deadline)
            .await
        {
            Ok(report) => {
                let invoice_linked = plan
                    .write
                    .reference
                    .as_ref()
                    .map(|_| !report.reference_dropped);
                self.complete(
                    attempt.key,
                    Outcome::Synced {
                        created: report.created,
                        invoice_linked,
                    },
                )
                .await
            }
            Err(e) => self.park(attempt, e).await,
        }
    }

    async fn complete(&self, key: &str, outcome: Outcome) -> Outcome {
        let finish = Finish::Completed {
            outcome: outcome.label(),
            now_ms: epoch_ms(),
        };
        if let Err(e) = self.store.finish(key, &finish).await {
            // Salesforce already holds the result; a retry of this delivery would only
            // repeat an idempotent write once the lease has passed.
            error!(error = %e, "could not record the finished delivery");
        }
        outcome
    }

    async fn park(&self, attempt: &Attempt<'_>, e: SalesforceError) -> Outcome {
        let status = match e.class {
            Class::Transient => Status::Queued,
            Class::Permanent => Status::Failed,
        };
        let now_ms = epoch_ms();
        let due_at_ms = match status {
            Status::Queued => now_ms + retry_delay_ms(attempt.attempts_before + 1),
            _ => now_ms,
        };
        let body = storable(attempt.body);
        let finish = Finish::Parked {
            status,
            body: &body,
            error_code: &e.code,
            error_message: &e.message,
            now_ms,
            due_at_ms,
        };
        match self.store.finish(attempt.key, &finish).await {
            Ok(()) if status == Status::Queued => Outcome::Queued {
                code: e.code,
                message: e.message,
            },
            Ok(()) => Outcome::Failed {
                code: e.code,
                message: e.message,
            },
            Err(store_error) => {
                self.give_back(
                    attempt,
                    format!("{store_error} (after Salesforce answered {})", e.code),
                )
                .await
            }
        }
    }

    /// The event could not be stored: free the claim so that Lago's retry is processed.
    async fn give_back(&self, attempt: &Attempt<'_>, reason: String) -> Outcome {
        if let Err(e) = self.store.release(attempt.key, attempt.previous).await {
            warn!(error = %e, "could not release the claim; it lapses at the deadline");
        }
        Outcome::Unavailable(reason)
    }
}

/// Bodies above this size are stored slimmed: a DynamoDB item holds 400 KB, compressed
/// body included, and Lago invoices with thousands of fees go past it.
const STORED_BODY_LIMIT: usize = 200 * 1024;

/// The body to store for a retry: as received, or, when large, only what the mapping
/// reads — the envelope's type fields and the object without arrays (but the Salesforce
/// links in `integration_customers`) and without long values. The retry is not verified
/// again, so the stored body need not be the signed one.
fn storable(body: &[u8]) -> Cow<'_, [u8]> {
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

/// One claimed attempt at writing an event.
struct Attempt<'a> {
    key: &'a str,
    /// `Queued` when the event was already stored: a release must keep it stored.
    previous: Option<Status>,
    attempts_before: u32,
    body: &'a [u8],
    deadline: Instant,
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

fn replay(existing: &Existing, body_sha256: &str) -> Outcome {
    if existing.body_sha256 != body_sha256 {
        return Outcome::Conflict;
    }
    let stored = |field: &Option<String>| field.clone().unwrap_or_default();
    match existing.status {
        Status::Completed => Outcome::Duplicate,
        Status::InProgress => Outcome::InProgress,
        Status::Failed | Status::Dead => Outcome::Failed {
            code: stored(&existing.error_code),
            message: stored(&existing.error_message),
        },
        Status::Queued => Outcome::Queued {
            code: stored(&existing.error_code),
            message: stored(&existing.error_message),
        },
    }
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
