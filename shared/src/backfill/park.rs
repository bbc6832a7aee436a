//! Records Salesforce refused inside a collection, stored as parked events.
//!
//! Each is stored exactly as a webhook delivery of that record would be: the key
//! `delivery#<family>#backfill-<lago_id>` and a webhook-shaped body
//! `{"webhook_type", "object_type", "<object_type>": <the Lago object>}`
//! ([`crate::lago::as_webhook_body`], with [`Family::state_type`]). That is sound
//! because the redrive (and `lago-sync redrive`) only ever re-maps a stored body with
//! [`crate::mapping::plan`] and writes it through the record guard: a synthesized body
//! is mapped exactly like a received one, so `list`, `redrive` and the redrive function
//! need nothing new, and a newer webhook state still wins.

use sha2::{Digest, Sha256};

use crate::pipeline::retry_delay_ms;
use crate::salesforce::{Class, SalesforceError};
use crate::store::{delivery_key, EventQueue, Park, Status, StoreError};
use crate::{clock, Family};

/// Stores the refused record for redrive: queued for a transient error, failed for a
/// permanent one. `None` when an earlier run already stored it under that key.
pub(super) async fn park<S: EventQueue>(
    store: &S,
    family: Family,
    record: &str,
    lago_id: &str,
    body: &[u8],
    error: &SalesforceError,
) -> Result<Option<String>, StoreError> {
    let key = delivery_key(family.as_str(), &format!("backfill-{lago_id}"));
    let now_ms = clock::now_ms();
    let (status, due_at_ms) = match error.class {
        Class::Transient => (Status::Queued, now_ms + retry_delay_ms(1)),
        Class::Permanent => (Status::Failed, now_ms),
    };
    let park = Park {
        key: &key,
        record,
        family: family.as_str(),
        webhook_type: family.state_type(),
        body_sha256: &hex::encode(Sha256::digest(body)),
        body,
        status,
        error_code: &error.code,
        error_message: &error.message,
        now_ms,
        due_at_ms,
        only_if_new: true,
    };
    Ok(store.park(&park).await?.then_some(key))
}
