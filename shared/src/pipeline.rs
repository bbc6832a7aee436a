//! One webhook delivery through every step, ending in one of the answers of contract §3:
//! signature → envelope → family and type → mapping → claim → order → Salesforce → finish.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::{error, info, warn, Span};

use crate::lago::Envelope;
use crate::mapping::{self, MappingError, Plan};
use crate::salesforce::{Class, Credentials, SalesforceClient, SalesforceError};
use crate::secrets::{SecretCache, Secrets};
use crate::signature::{self, Rejection};
use crate::store::{delivery_key, Claim, ClaimRequest, Existing, Finish, IdempotencyStore, Status};
use crate::Family;

pub struct App<S> {
    pub family: Family,
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
    pub async fn handle(&self, delivery: &Delivery<'_>) -> Outcome {
        let outcome = self.run(delivery).await;
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

    async fn run(&self, delivery: &Delivery<'_>) -> Outcome {
        let claimed = match signature::precheck(delivery.signature, delivery.algorithm) {
            Ok(signature) => signature,
            Err(rejection) => return Outcome::Unauthorized(rejection.reason()),
        };
        let secrets = match self.verified_secrets(delivery.body, claimed).await {
            Ok(secrets) => secrets,
            Err(outcome) => return outcome,
        };
        let envelope = match Envelope::parse(delivery.body) {
            Ok(envelope) => envelope,
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        Span::current().record("webhook_type", envelope.webhook_type.as_str());
        if !self.family.writes(&envelope.webhook_type) {
            return Outcome::Ignored(format!(
                "the {} function does not sync {} events",
                self.family, envelope.webhook_type
            ));
        }
        let plan = match mapping::plan(self.family, &envelope) {
            Ok(plan) => plan,
            Err(MappingError::NoAccount(reason)) => return Outcome::Skipped(reason),
            Err(e) => return Outcome::Invalid(e.to_string()),
        };
        Span::current().record("lago_id", plan.lago_id.as_str());
        self.process(delivery, &envelope.webhook_type, &plan, &secrets)
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
        delivery: &Delivery<'_>,
        webhook_type: &str,
        plan: &Plan,
        secrets: &Secrets,
    ) -> Outcome {
        let body_sha256 = hex::encode(Sha256::digest(delivery.body));
        // Lago always sends the key; without one, identical bodies are the same event.
        let key = delivery_key(
            self.family.as_str(),
            delivery.unique_key.unwrap_or(&body_sha256),
        );
        let now_ms = epoch_ms();
        let claim = ClaimRequest {
            key: &key,
            body_sha256: &body_sha256,
            family: self.family.as_str(),
            webhook_type,
            now_ms,
            lease_until_ms: delivery.deadline_epoch_ms,
        };
        let previous = match self.store.claim(&claim).await {
            Ok(Claim::Acquired { previous }) => previous,
            Ok(Claim::Taken(existing)) => return replay(&existing, &body_sha256),
            Err(e) => return Outcome::Unavailable(e.to_string()),
        };

        if let Some(stamp) = &plan.order {
            match self.store.advance_order(stamp, now_ms).await {
                Ok(true) => {}
                Ok(false) => {
                    let reason =
                        format!("a newer state of {} is already in Salesforce", stamp.record);
                    return self.complete(&key, Outcome::Skipped(reason)).await;
                }
                Err(e) => return self.give_back(&key, previous, e.to_string()).await,
            }
        }

        let credentials = Credentials {
            client_id: &secrets.salesforce_client_id,
            client_secret: &secrets.salesforce_client_secret,
        };
        match self
            .salesforce
            .write(&credentials, &plan.write, delivery.deadline)
            .await
        {
            Ok(report) => {
                let invoice_linked = plan
                    .write
                    .reference
                    .as_ref()
                    .map(|_| !report.reference_dropped);
                self.complete(
                    &key,
                    Outcome::Synced {
                        created: report.created,
                        invoice_linked,
                    },
                )
                .await
            }
            Err(e) => self.park(&key, previous, delivery.body, e).await,
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

    async fn park(
        &self,
        key: &str,
        previous: Option<Status>,
        body: &[u8],
        e: SalesforceError,
    ) -> Outcome {
        let status = match e.class {
            Class::Transient => Status::Queued,
            Class::Permanent => Status::Failed,
        };
        let finish = Finish::Parked {
            status,
            body,
            error_code: &e.code,
            error_message: &e.message,
            now_ms: epoch_ms(),
        };
        match self.store.finish(key, &finish).await {
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
                    key,
                    previous,
                    format!("{store_error} (after Salesforce answered {})", e.code),
                )
                .await
            }
        }
    }

    /// The event could not be stored: free the claim so that Lago's retry is processed.
    async fn give_back(&self, key: &str, previous: Option<Status>, reason: String) -> Outcome {
        if let Err(e) = self.store.release(key, previous).await {
            warn!(error = %e, "could not release the claim; it lapses at the deadline");
        }
        Outcome::Unavailable(reason)
    }
}

fn replay(existing: &Existing, body_sha256: &str) -> Outcome {
    if existing.body_sha256 != body_sha256 {
        return Outcome::Conflict;
    }
    let stored = |field: &Option<String>| field.clone().unwrap_or_default();
    match existing.status {
        Status::Completed => Outcome::Duplicate,
        Status::InProgress => Outcome::InProgress,
        Status::Failed => Outcome::Failed {
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
