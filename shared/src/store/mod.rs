//! The idempotency, ordering and event table (Powertools' design: a conditional write
//! claims a delivery with an in-progress lease; completion or parking ends it).
//!
//! One item per delivery, `pk = delivery#<family>#<X-Lago-Unique-Key>`, and one per
//! Salesforce record, `pk = order#<object>/<id>`, holding the newest state written.
//! A written event costs three writes: claim, order, finish. The backfill keeps its
//! checkpoints in the same table, `pk = backfill#<scope>#<object>`.
//!
//! A parked delivery (queued, failed or dead) keeps its body and carries `parked` and
//! `due_at`, the keys of the sparse index [`PARKED_INDEX`]: the redrive and the operator
//! find stored events there without a scan.

mod dynamodb;
mod memory;

use std::future::Future;

use thiserror::Error;

use crate::mapping::OrderStamp;

pub use dynamodb::{create_table, DynamoDbStore};
pub use memory::MemoryStore;

/// How long a finished delivery is remembered (Lago's manual resend can come much later).
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// The sparse global secondary index of parked events: partition `parked`, sort `due_at`.
pub const PARKED_INDEX: &str = "parked-by-due";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    InProgress,
    Completed,
    /// Salesforce failed transiently; the stored event awaits a retry.
    Queued,
    /// Salesforce refused the event; it waits for an operator.
    Failed,
    /// Retried until its maximum age without success; it waits for an operator.
    Dead,
}

impl Status {
    pub const PARKED: [Status; 3] = [Status::Queued, Status::Failed, Status::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Queued => "queued",
            Status::Failed => "failed",
            Status::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::InProgress,
            Status::Completed,
            Status::Queued,
            Status::Failed,
            Status::Dead,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    pub key: &'a str,
    pub body_sha256: &'a str,
    pub family: &'a str,
    pub webhook_type: &'a str,
    pub now_ms: i64,
    /// The claim can be taken over after this instant: the invocation's deadline.
    pub lease_until_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This delivery is ours to process; `previous` is `Queued` when the event was
    /// already stored for a retry (its stored body is kept until it succeeds).
    Acquired { previous: Option<Status> },
    /// Someone else has or had it.
    Taken(Existing),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub status: Status,
    pub body_sha256: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Finish<'a> {
    Completed {
        outcome: &'a str,
        now_ms: i64,
    },
    /// Queued, Failed or Dead, with the event kept for a retry or a redrive.
    Parked {
        status: Status,
        body: &'a [u8],
        error_code: &'a str,
        error_message: &'a str,
        now_ms: i64,
        /// When a queued event is next retried; for the others, when they were parked.
        due_at_ms: i64,
    },
}

/// A stored delivery as the redrive and the operator see it; `body` is kept while parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub key: String,
    pub status: Status,
    pub family: String,
    pub webhook_type: String,
    pub attempts: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// When the event was first parked (its age counts from there).
    pub first_parked_at_ms: Option<i64>,
    pub due_at_ms: Option<i64>,
    pub body: Option<Vec<u8>>,
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the idempotency table is unavailable: {0}")]
pub struct StoreError(pub String);

/// Implemented by DynamoDB and, for tests that need true concurrency, in memory.
pub trait IdempotencyStore: Send + Sync {
    fn claim(
        &self,
        request: &ClaimRequest<'_>,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Records `stamp` unless a newer state of that record was already recorded; false then.
    fn advance_order(
        &self,
        stamp: &OrderStamp,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn finish(
        &self,
        key: &str,
        finish: &Finish<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives a claim back after a failure that is nobody's fault but the store's, so that
    /// Lago's retry can process the delivery: deleted if new, back to queued if it was.
    fn release(
        &self,
        key: &str,
        previous: Option<Status>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn load(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<StoredDelivery>, StoreError>> + Send;

    /// Parked events of `status` (bodies left out), oldest `due_at` first, at most `limit`;
    /// with `due_by_ms`, only those due by then.
    fn parked(
        &self,
        status: Status,
        due_by_ms: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredDelivery>, StoreError>> + Send;

    /// Claims a queued event that is due, for one redrive run only; `None` when it is not
    /// (any more) due or another run holds it.
    fn claim_due(
        &self,
        key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<Option<StoredDelivery>, StoreError>> + Send;

    /// Puts a failed or dead event back in the queue, due now, its age counted afresh;
    /// false when it is neither.
    fn requeue(
        &self,
        key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// The progress of a long operator job (the backfill), kept under `pk = key` without
    /// expiry so that a run interrupted days ago still resumes.
    fn load_checkpoint(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Stores the checkpoint `value`, or deletes it with `None`.
    fn save_checkpoint(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The backfill's checkpoint of one object (`scope` is `all` or the customer).
pub fn checkpoint_key(scope: &str, object: &str) -> String {
    format!("backfill#{scope}#{object}")
}

pub fn delivery_key(family: &str, unique_key: &str) -> String {
    format!("delivery#{family}#{unique_key}")
}

pub fn order_key(stamp: &OrderStamp) -> String {
    format!("order#{}", stamp.record)
}
