//! The one DynamoDB table, in four roles, each behind its own small trait:
//!
//! - [`RecordGuard`]: one item per Salesforce record, `pk = record#<object>/<id>`. It holds
//!   the version Salesforce has (advanced only after Salesforce accepted a write), the one
//!   delivery allowed to write the record right now (a lease, fenced by a token), and the
//!   deliveries recently written (the idempotency of the happy path). A written event costs
//!   two writes of this item: take the record, then let it go with the written version.
//! - [`EventQueue`]: one item per stored event, `pk = delivery#<family>#<unique key>`, only
//!   when a delivery could not be written (queued, failed, dead) or waited on a busy record.
//!   Stored events have no TTL; they end completed, or an operator discards them.
//! - [`Checkpoints`]: the backfill's progress, `pk = backfill#<scope>#<object>`.
//! - [`CustomerLinks`]: the Account of a customer linked through Lago's Salesforce
//!   integration, `pk = customer#<lago customer id>` (contract §7.5).
//!
//! Stored events and held records carry `parked` and `due_at`, the keys of the sparse index
//! [`PARKED_INDEX`]: the redrive finds queued events and lapsed leases there without a scan.

mod dynamodb;
mod memory;
pub mod schema;

use std::future::Future;

use thiserror::Error;

pub use dynamodb::{DynamoDbStore, Migrated};
pub use memory::{Hold, MemoryStore, Step};
pub use schema::create_table;

/// How long a completed stored event is kept for an operator to look at.
pub const RETENTION_SECS: i64 = 30 * 24 * 3600;

/// How many written deliveries a record remembers, to answer their redeliveries
/// `duplicate` (older ones are answered `skipped`, also without a Salesforce call).
pub const REMEMBERED_DELIVERIES: usize = 8;

/// The most a stored event's body may take, compressed as it is stored: a DynamoDB item
/// holds 400 KB, the event's other attributes included.
pub const MAX_STORED_BODY: usize = 300 * 1024;

/// A body as the store keeps it: gzip. Lago invoices with thousands of fees run to
/// megabytes of JSON, which compresses about tenfold.
pub fn compressed(body: &[u8]) -> Vec<u8> {
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(body)
        .expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

/// How a record remembers a written delivery: by its unique key alone (the record implies
/// the family of `delivery#<family>#<key>`) and the first 64 bits of its body's SHA-256.
/// Eight of them keep a record item under 1 KB, DynamoDB's unit of write cost.
pub(crate) fn remembered_key(delivery: &str) -> &str {
    delivery.splitn(3, '#').nth(2).unwrap_or(delivery)
}

/// See [`remembered_key`].
pub(crate) fn remembered_hash(sha256: &str) -> &str {
    &sha256[..sha256.len().min(16)]
}

/// The sparse global secondary index: partition `parked`, sort `due_at`.
pub const PARKED_INDEX: &str = "parked-by-due";

/// The `parked` partition of records whose writer holds them; `due_at` is the lease's end.
pub const HELD: &str = "held";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    InProgress,
    Completed,
    /// The write failed transiently, or the record was busy; the event awaits a retry.
    Queued,
    /// Salesforce refused the event, or it could not be mapped; it waits for an operator.
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

#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("the idempotency table is unavailable: {0}")]
pub struct StoreError(pub String);

// ---------------------------------------------------------------------------------------
// Records

/// A delivery asking to write one record.
#[derive(Debug, Clone)]
pub struct Take<'a> {
    /// `<object>/<id>`, e.g. `Lago_Invoice__c/<lago_id>` or `Account/<id>`.
    pub record: &'a str,
    /// The delivery's key ([`delivery_key`]).
    pub delivery: &'a str,
    pub body_sha256: &'a str,
    /// The state's order (`None`: the payload cannot order it; it is written as it comes).
    pub version: Option<i64>,
    /// What the redrive needs to write the record again from Lago's current state if this
    /// writer dies: the family and the id Lago's API finds the object by.
    pub family: &'a str,
    pub lago_ref: &'a str,
    pub now_ms: i64,
    pub lease_until_ms: i64,
    /// A retry of this delivery's stored event: its being stored is no reason to refuse.
    pub retry: bool,
}

/// The record is ours until [`RecordGuard::release`] or the lease's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub record: String,
    pub delivery: String,
    pub body_sha256: String,
    /// Unique to this taking: a release after the lease lapsed and was taken over is refused.
    pub token: String,
    /// The version Salesforce holds now.
    pub written: Option<i64>,
    /// A remembered delivery to forget when this one is remembered (the oldest).
    pub evict: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Leased(Lease),
    /// This delivery was written (the same body; a different one is [`Taken::Conflict`]).
    Done,
    Conflict,
    /// This delivery is being written right now.
    InProgress,
    /// This delivery is a stored event: answer from [`EventQueue::load`].
    Stored,
    /// A newer state is already in Salesforce.
    Older {
        written: i64,
    },
    /// Another delivery holds the record (or held it and died: then until the redrive
    /// recovers it).
    Busy {
        holder: String,
    },
}

/// How a lease ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Salesforce accepted the write: the record's version advances to the lease's state.
    Written { version: Option<i64>, now_ms: i64 },
    /// Nothing was written; the delivery is now stored with this status.
    Stored(Status),
    /// Nothing was written and nothing stored (the writer gives up; Lago retries).
    Abandoned,
}

/// A record whose writer's lease lapsed without a release (the function died).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lapsed {
    pub record: String,
    pub delivery: String,
    pub family: String,
    pub lago_ref: String,
    pub lease_until_ms: i64,
}

pub trait RecordGuard: Send + Sync {
    /// Takes the record for `take.delivery` when nobody holds it, the delivery is neither
    /// remembered nor stored, and no newer state is written; otherwise says why not.
    /// A lapsed lease is taken over only by its own delivery (Lago's retry) or by
    /// [`RecordGuard::take_lapsed`]: another delivery finds the record busy.
    fn take(&self, take: &Take<'_>) -> impl Future<Output = Result<Taken, StoreError>> + Send;

    /// Ends a lease; `None` when it was no longer ours (it lapsed and was taken over),
    /// else the ids of the records waiting for a link to this one ([`Self::await_parent`]).
    fn release(
        &self,
        lease: &Lease,
        release: &Release,
    ) -> impl Future<Output = Result<Option<Vec<String>>, StoreError>> + Send;

    /// Remembers that `child` (a credit note's `lago_id`) was written without its link to
    /// the record `parent` (its invoice), which is not in Salesforce yet. `true` when the
    /// parent was written meanwhile: the child can be linked at once (contract §7.6).
    fn await_parent(
        &self,
        parent: &str,
        child: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Forgets `children` once linked to `parent`.
    fn parent_linked(
        &self,
        parent: &str,
        children: &[String],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records whose lease lapsed by `now_ms`, oldest first (through the sparse index).
    fn lapsed(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Lapsed>, StoreError>> + Send;

    /// Takes over the lapsed lease `lapsed` for its recovery at `version` (Lago's current
    /// state); `Taken::Older` clears the lease all the same, for nothing is left to write.
    fn take_lapsed(
        &self,
        lapsed: &Lapsed,
        version: Option<i64>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<Taken, StoreError>> + Send;

    /// The version Salesforce holds for `record` (an operator's and the tests' view).
    fn written(&self, record: &str)
        -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;
}

// ---------------------------------------------------------------------------------------
// Stored events

/// An event to store (or store again) for a retry or an operator.
#[derive(Debug, Clone)]
pub struct Park<'a> {
    pub key: &'a str,
    pub record: &'a str,
    pub family: &'a str,
    pub webhook_type: &'a str,
    pub body_sha256: &'a str,
    pub body: &'a [u8],
    pub status: Status,
    pub error_code: &'a str,
    pub error_message: &'a str,
    pub now_ms: i64,
    /// When a queued event is next retried; for the others, when they were parked.
    pub due_at_ms: i64,
    /// Store only if no event is stored under `key` yet (the backfill's rerun).
    pub only_if_new: bool,
}

/// A stored event as the redrive and the operator see it; `body` is kept while parked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDelivery {
    pub key: String,
    pub record: String,
    pub status: Status,
    pub family: String,
    pub webhook_type: String,
    pub body_sha256: String,
    pub attempts: u32,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// When the event was first parked (its age counts from there).
    pub first_parked_at_ms: Option<i64>,
    pub due_at_ms: Option<i64>,
    pub body: Option<Vec<u8>>,
    /// It was stored `failed` or `dead` since it was first stored: its sync issue is open in
    /// Salesforce until it ends completed.
    pub issue_open: bool,
}

pub trait EventQueue: Send + Sync {
    /// Stores the event; `false` when `only_if_new` and one is already stored.
    fn park(&self, park: &Park<'_>) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn load(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<StoredDelivery>, StoreError>> + Send;

    /// Stored events of `status` as the sparse index lists them (without `record`,
    /// `body_sha256` and `body`: [`EventQueue::claim_due`] and [`EventQueue::load`] read
    /// those), oldest `due_at` first, at most `limit`; with `due_by_ms`, only those due
    /// by then.
    fn parked(
        &self,
        status: Status,
        due_by_ms: Option<i64>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredDelivery>, StoreError>> + Send;

    /// Claims a queued event that is due (or whose retry's lease lapsed) for one retry;
    /// `None` when it is not (any more) due or another run holds it.
    fn claim_due(
        &self,
        key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> impl Future<Output = Result<Option<StoredDelivery>, StoreError>> + Send;

    /// The event was written (or superseded): kept `completed`, without its body, for
    /// [`RETENTION_SECS`].
    fn complete(
        &self,
        key: &str,
        outcome: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Puts a failed or dead event back in the queue, due now, its age counted afresh;
    /// false when it is neither.
    fn requeue(
        &self,
        key: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Removes a failed or dead event for good (an operator's decision); false when the
    /// event is not failed or dead.
    fn discard(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

// ---------------------------------------------------------------------------------------
// Checkpoints and customer links

pub trait Checkpoints: Send + Sync {
    /// The progress of a long operator job (the backfill), kept without expiry so that a
    /// run interrupted days ago still resumes.
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

pub trait CustomerLinks: Send + Sync {
    /// Remembers that the Lago customer `lago_customer_id` is linked to `account_id`.
    fn link(
        &self,
        lago_customer_id: &str,
        account_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn linked_account(
        &self,
        lago_customer_id: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;
}

/// Everything the functions need of the table.
pub trait Store: RecordGuard + EventQueue + Checkpoints + CustomerLinks {}

impl<T: RecordGuard + EventQueue + Checkpoints + CustomerLinks> Store for T {}

/// The backfill's checkpoint of one object (`scope` is `all` or the customer).
pub fn checkpoint_key(scope: &str, object: &str) -> String {
    format!("backfill#{scope}#{object}")
}

pub fn delivery_key(family: &str, unique_key: &str) -> String {
    format!("delivery#{family}#{unique_key}")
}

pub fn record_key(record: &str) -> String {
    format!("record#{record}")
}

pub fn customer_key(lago_customer_id: &str) -> String {
    format!("customer#{lago_customer_id}")
}

/// A fresh lease token.
pub(crate) fn token() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// A record item as [`verdict`] needs to see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RecordView {
    pub written: Option<i64>,
    pub holder: Option<Holder>,
    /// Remembered deliveries: [`remembered_key`] → (when written, [`remembered_hash`]).
    pub done: std::collections::HashMap<String, (i64, String)>,
    /// Deliveries of this record that are stored events.
    pub stored: std::collections::HashSet<String>,
    /// Records written without their link to this one, which was not in Salesforce yet.
    pub waiting: std::collections::HashSet<String>,
}

impl RecordView {
    /// Whether this record was ever written (a version, or a delivery remembered).
    pub fn was_written(&self) -> bool {
        self.written.is_some() || !self.done.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub delivery: String,
    pub body_sha256: String,
    pub token: String,
    pub lease_until_ms: i64,
}

/// Why `take` may not take the record as it is, or `None` when it may. Both stores decide
/// with this one function (DynamoDB's condition expression says the same, and this reads
/// the old item it returns on refusal).
pub(crate) fn verdict(record: &RecordView, take: &Take<'_>) -> Option<Taken> {
    if let Some(holder) = &record.holder {
        if holder.delivery != take.delivery {
            return Some(Taken::Busy {
                holder: holder.delivery.clone(),
            });
        }
        if holder.body_sha256 != take.body_sha256 {
            return Some(Taken::Conflict);
        }
        if holder.lease_until_ms >= take.now_ms {
            return Some(Taken::InProgress);
        }
    }
    if let Some((_, hash)) = record.done.get(remembered_key(take.delivery)) {
        return Some(if hash == remembered_hash(take.body_sha256) {
            Taken::Done
        } else {
            Taken::Conflict
        });
    }
    if !take.retry && record.stored.contains(take.delivery) {
        return Some(Taken::Stored);
    }
    match (record.written, take.version) {
        (Some(written), Some(version)) if written > version => Some(Taken::Older { written }),
        _ => None,
    }
}

/// The remembered delivery to forget when one more is remembered, if the record is full.
pub(crate) fn eviction(record: &RecordView) -> Option<String> {
    let done = &record.done;
    if done.len() < REMEMBERED_DELIVERIES {
        return None;
    }
    done.iter()
        .min_by_key(|(key, (at, _))| (*at, (*key).clone()))
        .map(|(key, _)| key.clone())
}
