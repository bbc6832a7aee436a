//! One webhook delivery through every step, ending in one of the answers of contract §3:
//! verify the signature → parse and map the event → take its Salesforce record → write the
//! record → let the record go with the version written, or store the event for a retry.
//! A stored event's retry ([`App::retry`]) joins at "take its Salesforce record".
//!
//! The record is taken before the write and its version advanced only after Salesforce
//! accepted it (contract §7.1–7.2): two deliveries of one record never write at once, and
//! a state that failed never hides an older one that can still be written.

mod accounts;
mod answer;
mod issues;
mod links;
mod lookups;
mod recovery;
mod stored;

use std::future::Future;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tracing::{error, info, warn, Span};

use crate::lago::Envelope;
use crate::mapping::{MappingError, Plan};
use crate::salesforce::{Class, SalesforceClient, SalesforceError};
use crate::secrets::{SecretCache, SecretsError};
use crate::signature::{self, Rejection};
use crate::store::{
    delivery_key, Lease, Release, Status, Store, StoreError, StoredDelivery, Take, Taken,
};
use crate::{clock, outbound, telemetry, Family};

pub use accounts::{OutboundAnswer, OutboundRequest};
pub use answer::Outcome;
pub(crate) use issues::Opened;
use lookups::Unplanned;
pub use lookups::{LagoReader, LookupError};
pub use stored::retry_delay_ms;

/// What every function holds for its warm lifetime.
pub struct App<S> {
    pub secrets: SecretCache,
    pub store: S,
    pub salesforce: SalesforceClient,
    pub lago: LagoReader,
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

/// Kept back from the deadline before the Salesforce write and every AWS call that
/// precedes it: enough for the write that records the outcome (contract §7.7).
pub const FINISH_RESERVE: Duration = Duration::from_millis(1500);
/// Kept back from the deadline by the finishing write itself: time to answer.
const ANSWER_MARGIN: Duration = Duration::from_millis(250);

/// A delivery that finds its record taken by another waits this long, in these steps,
/// before it is stored as queued. Long enough for a warm write (~0.3 s) to end.
const BUSY_WAITS_MS: [u64; 4] = [100, 200, 400, 800];

/// Why an event was not written, classified once: a transient failure is queued for the
/// redrive, a permanent one stored `failed` for an operator.
#[derive(Debug, Clone)]
pub struct Failure {
    pub class: Class,
    pub code: String,
    pub message: String,
}

impl From<SalesforceError> for Failure {
    fn from(e: SalesforceError) -> Failure {
        Failure {
            class: e.class,
            code: e.code,
            message: e.message,
        }
    }
}

/// One event on its way to Salesforce: a delivery, or the retry of a stored event.
struct Event<'a> {
    key: &'a str,
    family: &'a str,
    webhook_type: &'a str,
    body: &'a [u8],
    body_sha256: String,
    /// For the retry of a stored event: how often it was tried before.
    retry: Option<u32>,
    /// For the retry of a stored event: when it was first stored (its first failure).
    first_parked_ms: Option<i64>,
    /// The event was failed or dead and its sync issue is open.
    issue_open: bool,
    deadline: Instant,
    deadline_ms: i64,
}

impl<S: Store> App<S> {
    /// Answers a webhook sent to `family`'s endpoint.
    pub async fn handle(&self, family: Family, delivery: &Delivery<'_>) -> Outcome {
        let outcome = self.answer(family, delivery).await;
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

    async fn answer(&self, family: Family, delivery: &Delivery<'_>) -> Outcome {
        let claimed = match signature::precheck(delivery.signature, delivery.algorithm) {
            Ok(signature) => signature,
            Err(rejection) => return Outcome::Unauthorized(rejection.reason()),
        };
        if let Err(outcome) = self
            .verified_secrets(delivery.body, claimed, delivery.deadline)
            .await
        {
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
        let body_sha256 = hex::encode(Sha256::digest(delivery.body));
        // Lago always sends the key; without one, identical bodies are the same event.
        let key = delivery_key(family.as_str(), delivery.unique_key.unwrap_or(&body_sha256));
        let event = Event {
            key: &key,
            family: family.as_str(),
            webhook_type: &envelope.webhook_type,
            body: delivery.body,
            body_sha256,
            retry: None,
            first_parked_ms: None,
            issue_open: false,
            deadline: delivery.deadline,
            deadline_ms: delivery.deadline_epoch_ms,
        };
        match self
            .plan(family, &envelope, delivery.body, delivery.deadline)
            .await
        {
            Ok(plan) => self.sync(&event, &plan).await,
            Err(Unplanned::Skipped(reason)) => Outcome::Skipped(reason),
            Err(Unplanned::Invalid(message)) => Outcome::Invalid(message),
            Err(Unplanned::Unmappable(e)) => self.store_unmappable(&event, &e).await,
            Err(Unplanned::Lookup(e)) => self.store_failed(&event, None, "", None, e.into()).await,
        }
    }

    /// Retries a stored event that the caller has claimed (see [`crate::redrive`]).
    /// `stored.body` must be present; the event was verified when it was received.
    pub async fn retry(&self, stored: &StoredDelivery, deadline: Instant) -> Outcome {
        let body = stored.body.as_deref().unwrap_or_default();
        let event = Event {
            key: &stored.key,
            family: &stored.family,
            webhook_type: &stored.webhook_type,
            body,
            body_sha256: match stored.body_sha256.as_str() {
                "" => hex::encode(Sha256::digest(body)),
                hash => hash.to_owned(),
            },
            retry: Some(stored.attempts),
            first_parked_ms: stored.first_parked_at_ms,
            issue_open: stored.issue_open,
            deadline,
            deadline_ms: clock::epoch_ms_of(deadline),
        };
        if stored.family == outbound::FAMILY {
            return self.retry_account(&event).await;
        }
        let Ok(family) = stored.family.parse::<Family>() else {
            let e = MappingError::invalid("family", &stored.family, "not an event family");
            return self.store_unmappable(&event, &e).await;
        };
        let current;
        let planned_body = match stored::lago_id_of_omitted_fees(family, body) {
            Some(lago_id) => match self.current_state(family, &lago_id, deadline).await {
                Ok(Some(state)) => {
                    current = state;
                    &current[..]
                }
                // Gone from Lago: what was kept is all there is.
                Ok(None) => body,
                Err(e) => return self.store_failed(&event, None, "", None, e.into()).await,
            },
            None => body,
        };
        let plan = match self.plan_body(family, planned_body, deadline).await {
            Ok(plan) => plan,
            Err(Unplanned::Skipped(reason)) => {
                return self
                    .complete_stored(&event, None, Outcome::Skipped(reason))
                    .await
            }
            Err(Unplanned::Invalid(message)) => {
                let e = MappingError::invalid("body", &message, "not a Lago envelope");
                return self.store_unmappable(&event, &e).await;
            }
            Err(Unplanned::Unmappable(e)) => return self.store_unmappable(&event, &e).await,
            Err(Unplanned::Lookup(e)) => {
                return self.store_failed(&event, None, "", None, e.into()).await
            }
        };
        // Read first so that a Secrets Manager outage leaves the event due, not retried.
        if let Err(e) = within(deadline, self.secrets.current()).await {
            return Outcome::Unavailable(e.to_string());
        }
        self.sync(&event, &plan).await
    }

    /// Verifies with the kept HMAC key, and once more with a re-read secret when that
    /// fails, in case the key was rotated.
    async fn verified_secrets(
        &self,
        body: &[u8],
        claimed: &str,
        deadline: Instant,
    ) -> Result<(), Outcome> {
        let unavailable = |e: SecretsError| Outcome::Unavailable(e.to_string());
        let secrets = within(deadline, self.secrets.current())
            .await
            .map_err(unavailable)?;
        if signature::verify(secrets.lago_hmac_key.as_bytes(), body, claimed).is_ok() {
            return Ok(());
        }
        let rotated = within(deadline, self.secrets.reread_after_rejection(&secrets))
            .await
            .map_err(unavailable)?;
        match rotated {
            Some(rotated)
                if signature::verify(rotated.lago_hmac_key.as_bytes(), body, claimed).is_ok() =>
            {
                info!("the HMAC key was rotated; using the new one");
                Ok(())
            }
            _ => Err(Outcome::Unauthorized(Rejection::Mismatch.reason())),
        }
    }

    /// Takes the record, writes it, and lets it go with what happened.
    async fn sync(&self, event: &Event<'_>, plan: &Plan) -> Outcome {
        Span::current().record("lago_id", plan.lago_id.as_str());
        let lease = match self.take_record(event, &Guarded::of(plan)).await {
            Ok(lease) => lease,
            Err(outcome) => return outcome,
        };
        // A subscription's payload has no updated_at: when its status equals the written
        // one, nothing says which is newer, so Lago's current state is written (§7.1).
        let same_status = lease.written.is_some() && lease.written == plan.version;
        if event.family == Family::Subscription.as_str() && same_status {
            let current = self
                .current_subscription(event.body, event.webhook_type, plan, event.deadline)
                .await;
            return match current {
                Ok(current) => {
                    self.write_leased(event, current.as_ref().unwrap_or(plan), &lease)
                        .await
                }
                Err(e) => {
                    self.store_failed(event, Some(plan), &lease.record, Some(&lease), e.into())
                        .await
                }
            };
        }
        self.write_leased(event, plan, &lease).await
    }

    /// Writes the record this event holds, and lets it go with what happened.
    async fn write_leased(&self, event: &Event<'_>, plan: &Plan, lease: &Lease) -> Outcome {
        let written = self
            .salesforce
            .write(&self.secrets, &plan.write, reserve(event.deadline))
            .await;
        match written {
            Ok(report) => {
                let release = Release::Written {
                    version: plan.version,
                    now_ms: clock::now_ms(),
                };
                let waiting = self.let_go(event, lease, &release).await;
                if !waiting.is_empty() {
                    self.link_waiting(&lease.record, &waiting, event.deadline)
                        .await;
                }
                if report.reference_dropped {
                    self.await_invoice(plan, event.deadline).await;
                }
                let synced = Outcome::Synced {
                    created: report.created,
                    invoice_linked: plan
                        .write
                        .reference
                        .as_ref()
                        .map(|_| !report.reference_dropped),
                };
                self.complete_stored(event, Some(plan), synced).await
            }
            Err(e) => {
                self.store_failed(event, Some(plan), &lease.record, Some(lease), e.into())
                    .await
            }
        }
    }

    /// Takes the record for this event, waiting briefly when another delivery holds it;
    /// every other answer is final for this event.
    async fn take_record(
        &self,
        event: &Event<'_>,
        guarded: &Guarded<'_>,
    ) -> Result<Lease, Outcome> {
        let Guarded {
            record,
            version,
            lago_ref,
            plan,
        } = guarded;
        let record = record.as_str();
        let mut waits = BUSY_WAITS_MS.iter();
        let mut retry = event.retry.is_some();
        loop {
            let take = Take {
                record,
                delivery: event.key,
                body_sha256: &event.body_sha256,
                version: *version,
                family: event.family,
                lago_ref,
                now_ms: clock::now_ms(),
                lease_until_ms: event.deadline_ms,
                retry,
            };
            let taken = match within(event.deadline, self.store.take(&take)).await {
                Ok(taken) => taken,
                Err(e) => return Err(Outcome::Unavailable(e.to_string())),
            };
            let outcome = match taken {
                Taken::Leased(lease) => return Ok(lease),
                Taken::Busy { holder } => match waits.next() {
                    Some(&ms) if can_wait(event.deadline, ms) => {
                        let jitter = fastrand::u64(0..=ms / 2);
                        tokio::time::sleep(Duration::from_millis(ms + jitter)).await;
                        continue;
                    }
                    _ => self.store_busy(event, record, &holder).await,
                },
                Taken::Older { .. } => {
                    let reason = format!("a newer state of {record} was already written");
                    self.complete_stored(event, *plan, Outcome::Skipped(reason))
                        .await
                }
                Taken::Done => self.complete_stored(event, *plan, Outcome::Duplicate).await,
                Taken::Conflict => Outcome::Conflict,
                Taken::InProgress => Outcome::InProgress,
                Taken::Stored => match within(event.deadline, self.store.load(event.key)).await {
                    // Sent again while it waits for the redrive (Lago's "resend"): retried
                    // now, as the redrive would.
                    Ok(Some(stored))
                        if stored.status == Status::Queued
                            && stored.body_sha256 == event.body_sha256 =>
                    {
                        Box::pin(self.retry(&stored, event.deadline)).await
                    }
                    Ok(Some(stored)) => answer::replay(&stored, &event.body_sha256),
                    // Discarded by an operator since: this delivery is new again.
                    Ok(None) => {
                        retry = true;
                        continue;
                    }
                    Err(e) => Outcome::Unavailable(e.to_string()),
                },
            };
            return Err(outcome);
        }
    }

    /// Ends the lease; a lease lost meanwhile (it lapsed and was recovered) only costs the
    /// recovery one more idempotent write.
    /// Returns the records waiting for a link to this one ([`Self::link_waiting`]).
    async fn let_go(&self, event: &Event<'_>, lease: &Lease, release: &Release) -> Vec<String> {
        match finishing(event.deadline, self.store.release(lease, release)).await {
            Ok(Some(waiting)) => waiting,
            Ok(None) => {
                warn!("the record's lease lapsed before it was let go");
                Vec::new()
            }
            Err(e) => {
                error!(error = %e, "could not let the record go; the redrive recovers it");
                Vec::new()
            }
        }
    }

    /// A retried stored event ends with `outcome`: it is kept completed, and its sync
    /// issue, if it had one, resolved. A delivery has nothing stored to complete.
    async fn complete_stored(
        &self,
        event: &Event<'_>,
        plan: Option<&Plan>,
        outcome: Outcome,
    ) -> Outcome {
        if event.retry.is_none() {
            return outcome;
        }
        let completed = self
            .store
            .complete(event.key, outcome.label(), clock::now_ms());
        if let Err(e) = finishing(event.deadline, completed).await {
            // Salesforce holds the result; the retry repeats an idempotent write or skips.
            error!(error = %e, "could not record the retried event as completed");
        }
        if event.issue_open {
            self.resolve_issue(event, plan).await;
        }
        outcome
    }
}

/// The record an event writes, as the record guard knows it.
struct Guarded<'a> {
    record: String,
    version: Option<i64>,
    /// How the redrive finds the object again if the writer dies.
    lago_ref: &'a str,
    /// The webhook's plan, for the sync issue a retried event resolves.
    plan: Option<&'a Plan>,
}

impl<'a> Guarded<'a> {
    fn of(plan: &'a Plan) -> Self {
        Guarded {
            record: plan.record(),
            version: plan.version,
            lago_ref: &plan.lago_ref,
            plan: Some(plan),
        }
    }
}

/// The deadline of everything that must leave time for the finishing write.
fn reserve(deadline: Instant) -> Instant {
    deadline.checked_sub(FINISH_RESERVE).unwrap_or(deadline)
}

fn can_wait(deadline: Instant, ms: u64) -> bool {
    Instant::now() + Duration::from_millis(ms) < reserve(deadline)
}

/// An AWS call that did not answer in the time it had.
#[derive(Debug, Clone, Copy)]
pub struct Late;

impl From<Late> for StoreError {
    fn from(_: Late) -> Self {
        StoreError("no answer before the invocation's deadline".into())
    }
}

impl From<Late> for SecretsError {
    fn from(_: Late) -> Self {
        SecretsError::Unavailable("no answer before the invocation's deadline".into())
    }
}

/// Runs an AWS call within the time left before `reserve(deadline)` (contract §7.7).
async fn within<T, E: From<Late>>(
    deadline: Instant,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    run_by(reserve(deadline), call).await
}

/// Runs a finishing write within the time left before the answer is due.
async fn finishing<T, E: From<Late>>(
    deadline: Instant,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    run_by(
        deadline.checked_sub(ANSWER_MARGIN).unwrap_or(deadline),
        call,
    )
    .await
}

async fn run_by<T, E: From<Late>>(
    by: Instant,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    tokio::time::timeout_at(tokio::time::Instant::from_std(by), call)
        .await
        .unwrap_or(Err(E::from(Late)))
}
