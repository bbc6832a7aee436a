//! Records Salesforce refused inside a collection, stored as parked events.
//!
//! Each is stored exactly as a webhook delivery of that record would be: the key
//! `delivery#<family>#backfill-<lago_id>` and a webhook-shaped body
//! `{"webhook_type", "object_type", "<object_type>": <the Lago object>}`
//! ([`crate::lago::as_webhook_body`], with [`webhook_type`]). That is sound
//! because the redrive (and `lago-sync redrive`) only ever re-maps a stored body with
//! [`crate::mapping::plan`] and writes it through the ordering guard: a synthesized body
//! is mapped exactly like a received one, so `list`, `redrive` and the redrive function
//! need nothing new, and a newer webhook state still wins.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::pipeline::retry_delay_ms;
use crate::salesforce::{Class, SalesforceError};
use crate::store::{
    delivery_key, Claim, ClaimRequest, Finish, IdempotencyStore, Status, StoreError,
};
use crate::Family;

/// A webhook type the family writes: the one Lago sends when such a record is made
/// (`customer.updated` for Accounts, which are only ever updated; subscriptions have no
/// `.created` event, so `subscription.updated`).
pub(super) fn webhook_type(family: Family) -> &'static str {
    match family {
        Family::Customer => "customer.updated",
        Family::Subscription => "subscription.updated",
        Family::Invoice => "invoice.created",
        Family::CreditNote => "credit_note.created",
    }
}

/// Stores the refused record for redrive: queued for a transient error, failed for a
/// permanent one. `None` when an earlier run already stored it under that key.
pub(super) async fn park<S: IdempotencyStore>(
    store: &S,
    family: Family,
    lago_id: &str,
    body: &[u8],
    error: &SalesforceError,
) -> Result<Option<String>, StoreError> {
    let key = delivery_key(family.as_str(), &format!("backfill-{lago_id}"));
    let body_sha256 = hex::encode(Sha256::digest(body));
    let now_ms = epoch_ms();
    let claim = ClaimRequest {
        key: &key,
        body_sha256: &body_sha256,
        family: family.as_str(),
        webhook_type: webhook_type(family),
        now_ms,
        lease_until_ms: now_ms + 60_000,
    };
    if let Claim::Taken(_) = store.claim(&claim).await? {
        return Ok(None);
    }
    let (status, due_at_ms) = match error.class {
        Class::Transient => (Status::Queued, now_ms + retry_delay_ms(1)),
        Class::Permanent => (Status::Failed, now_ms),
    };
    let finish = Finish::Parked {
        status,
        body,
        error_code: &error.code,
        error_message: &error.message,
        now_ms,
        due_at_ms,
    };
    store.finish(&key, &finish).await?;
    Ok(Some(key))
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
