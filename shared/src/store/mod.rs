//! The idempotency and ordering table (Powertools' design: a conditional write claims a
//! delivery with an in-progress lease; completion or parking ends it).
//!
//! One item per delivery, `pk = delivery#<family>#<X-Lago-Unique-Key>`, and one per
//! Salesforce record, `pk = order#<object>/<id>`, holding the newest state written.
//! A written event costs three writes: claim, order, finish.

mod dynamodb;
mod memory;

use std::future::Future;

use thiserror::Error;

use crate::mapping::OrderStamp;

pub use dynamodb::DynamoDbStore;
pub use memory::MemoryStore;

/// How long a finished delivery is remembered (Lago's manual resend can come much later).
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Completed,
    /// Salesforce failed transiently; the stored event awaits a retry.
    Queued,
    /// Salesforce refused the event; it waits for an operator.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "in_progress",
            Status::Completed => "completed",
            Status::Queued => "queued",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Status::InProgress,
            Status::Completed,
            Status::Queued,
            Status::Failed,
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
    /// Queued or Failed, with the event kept for a redrive.
    Parked {
        status: Status,
        body: &'a [u8],
        error_code: &'a str,
        error_message: &'a str,
        now_ms: i64,
    },
}

/// What the table holds about one delivery; `body` is kept while it awaits a retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub status: Status,
    pub attempts: u32,
    pub error_code: Option<String>,
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
}

pub fn delivery_key(family: &str, unique_key: &str) -> String {
    format!("delivery#{family}#{unique_key}")
}

pub fn order_key(stamp: &OrderStamp) -> String {
    format!("order#{}", stamp.record)
}
