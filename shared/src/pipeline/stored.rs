//! Storing an event that was not written: why (Salesforce refused it, its record stayed
//! busy, it cannot be mapped), what is kept of it, and when its retry comes.

use std::borrow::Cow;

use serde_json::{Map, Value};
use tracing::info;

use super::{answer, finishing, within, App, Event, Failure, Opened, Outcome};
use crate::mapping::{MappingError, Plan};
use crate::salesforce::Class;
use crate::store::{compressed, Lease, Park, Release, Status, Store, StoreError, MAX_STORED_BODY};
use crate::{clock, outbound, Family};

/// A delivery stored because its record stayed busy is due again this soon.
const BUSY_RETRY_MS: i64 = 5_000;

impl<S: Store> App<S> {
    /// Salesforce did not take the event: stored for a retry (transient) or an operator.
    pub(super) async fn store_failed(
        &self,
        event: &Event<'_>,
        plan: Option<&Plan>,
        record: &str,
        lease: Option<&Lease>,
        e: Failure,
    ) -> Outcome {
        let (status, due_at_ms) = match e.class {
            Class::Transient => {
                let attempt = event.retry.unwrap_or(0) + 1;
                (Status::Queued, clock::now_ms() + retry_delay_ms(attempt))
            }
            Class::Permanent => (Status::Failed, clock::now_ms()),
        };
        let stored = self
            .store_event(event, record, status, &e.code, &e.message, due_at_ms)
            .await;
        if let Some(lease) = lease {
            let release = match stored {
                Ok(()) => Release::Stored(status),
                Err(_) => Release::Abandoned,
            };
            self.let_go(event, lease, &release).await;
        }
        // An Account's push shows its failure on the Account itself (contract §8).
        if stored.is_ok() && status == Status::Failed && event.family != outbound::FAMILY {
            // Opened by this failure unless it was open already (a requeued event failing
            // again): then its first failure stays as it was.
            let first_failed_at_ms = match (event.issue_open, event.retry) {
                (true, _) => None,
                (false, None) => Some(clock::now_ms()),
                (false, Some(_)) => Some(event.first_parked_ms.unwrap_or_else(clock::now_ms)),
            };
            let opened = Opened {
                code: &e.code,
                message: &e.message,
                attempts: event.retry.unwrap_or(0) + 1,
                first_failed_at_ms,
            };
            self.open_issue(event, plan, opened).await;
        }
        match stored {
            Ok(()) if status == Status::Queued => Outcome::Queued {
                code: e.code,
                message: e.message,
            },
            Ok(()) => Outcome::Failed {
                code: e.code,
                message: e.message,
            },
            // Lago retries a 503; a retry's stored event lapses back into the queue.
            Err(store_error) => Outcome::Unavailable(format!(
                "{store_error} (after Salesforce answered {})",
                e.code
            )),
        }
    }

    /// The record stayed busy: queued for a prompt retry, when the record is free.
    pub(super) async fn store_busy(
        &self,
        event: &Event<'_>,
        record: &str,
        holder: &str,
    ) -> Outcome {
        let (code, message) = (
            "RECORD_BUSY",
            format!("{record} is being written by another delivery; retried shortly"),
        );
        let due_at_ms = clock::now_ms() + BUSY_RETRY_MS;
        info!(holder, "record busy; the event is queued");
        match self
            .store_event(event, record, Status::Queued, code, &message, due_at_ms)
            .await
        {
            Ok(()) => Outcome::Queued {
                code: code.to_owned(),
                message,
            },
            Err(e) => Outcome::Unavailable(e.to_string()),
        }
    }

    /// A signed event that cannot be mapped is stored `failed` for a redrive once the
    /// mapping (or Lago) is fixed; never dropped (contract §7.3).
    pub(super) async fn store_unmappable(&self, event: &Event<'_>, e: &MappingError) -> Outcome {
        let refusal = Failure {
            class: Class::Permanent,
            code: "UNMAPPABLE".to_owned(),
            message: e.to_string(),
        };
        // No record to remember it by: Lago's retry is answered from the stored event.
        if event.retry.is_none() {
            match within(event.deadline, self.store.load(event.key)).await {
                Ok(Some(stored)) => return answer::replay(&stored, &event.body_sha256),
                Ok(None) => {}
                Err(e) => return Outcome::Unavailable(e.to_string()),
            }
        }
        self.store_failed(event, None, "", None, refusal).await
    }

    async fn store_event(
        &self,
        event: &Event<'_>,
        record: &str,
        status: Status,
        error_code: &str,
        error_message: &str,
        due_at_ms: i64,
    ) -> Result<(), StoreError> {
        let body = storable(event.body);
        let park = Park {
            key: event.key,
            record,
            family: event.family,
            webhook_type: event.webhook_type,
            body_sha256: &event.body_sha256,
            body: &body,
            status,
            error_code,
            error_message,
            now_ms: clock::now_ms(),
            due_at_ms,
            only_if_new: false,
        };
        finishing(event.deadline, self.store.park(&park))
            .await
            .map(drop)
    }
}

/// The body to store for a retry: as received when it fits the store
/// ([`MAX_STORED_BODY`] compressed), else only what the mapping reads — the envelope's
/// type fields, the object without other arrays (but the Salesforce links in
/// `integration_customers`) and long values, and the fees' mapped fields. Fees too many
/// even for that are left out and the object marked [`FEES_OMITTED`]: its retry writes
/// Lago's current invoice, which has them. The retry is not verified again, so the stored
/// body need not be the signed one.
fn storable(body: &[u8]) -> Cow<'_, [u8]> {
    // gzip never grows a body by more than a few bytes per 16 KB: one of half the limit
    // fits as it is, without compressing it here as well as in the store.
    let fits = |b: &[u8]| b.len() <= MAX_STORED_BODY / 2 || compressed(b).len() <= MAX_STORED_BODY;
    if fits(body) {
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
    let Some(object_type) = envelope.get("object_type").and_then(Value::as_str) else {
        return Cow::Borrowed(body);
    };
    let object = envelope.get(object_type).map(slim).unwrap_or_default();
    kept.insert(object_type.to_owned(), object);
    let with_fees = serde_json::to_vec(&kept).expect("a JSON value serialises");
    if fits(&with_fees) {
        return Cow::Owned(with_fees);
    }
    if let Some(Value::Object(invoice)) = kept.get_mut(object_type).map(invoice_in) {
        invoice.remove("fees");
        invoice.insert(FEES_OMITTED.to_owned(), Value::Bool(true));
    }
    Cow::Owned(serde_json::to_vec(&kept).expect("a JSON value serialises"))
}

/// Marks a stored invoice whose fees did not fit the store.
const FEES_OMITTED: &str = "lago_sync_fees_omitted";

/// The invoice of a stored body stored without its fees, which its retry reads from
/// Lago's API: the stored state, or a newer one, with every fee.
pub(super) fn lago_id_of_omitted_fees(family: Family, body: &[u8]) -> Option<String> {
    if family != Family::Invoice {
        return None;
    }
    let mut envelope: Value = serde_json::from_slice(body).ok()?;
    let object_type = envelope.get("object_type")?.as_str()?.to_owned();
    let invoice = invoice_in(envelope.get_mut(&object_type)?);
    if invoice.get(FEES_OMITTED) != Some(&Value::Bool(true)) {
        return None;
    }
    invoice.get("lago_id")?.as_str().map(str::to_owned)
}

/// The invoice of a stored object: the object, or the `invoice` that
/// `invoice.payment_dispute_lost` nests in its own object.
fn invoice_in(object: &mut Value) -> &mut Value {
    if object.get("invoice").is_some_and(Value::is_object) {
        &mut object["invoice"]
    } else {
        object
    }
}

/// What a stored object (or the customer or invoice it embeds) keeps: no arrays but the
/// fees and the integration links, no long values.
fn slim(object: &Value) -> Value {
    const LONG: usize = 4096;
    let Value::Object(fields) = object else {
        return object.clone();
    };
    let kept = fields
        .iter()
        .filter_map(|(name, value)| match (name.as_str(), value) {
            ("customer" | "invoice", _) => Some((name.clone(), slim(value))),
            ("integration_customers", _) => Some((name.clone(), value.clone())),
            ("fees", Value::Array(fees)) => Some((name.clone(), fees.iter().map(fee).collect())),
            (_, Value::Array(_)) => None,
            _ if value.to_string().len() > LONG => None,
            _ => Some((name.clone(), value.clone())),
        });
    Value::Object(kept.collect())
}

/// A fee reduced to what its line item is mapped from.
fn fee(fee: &Value) -> Value {
    const MAPPED: &[&str] = &[
        "lago_id",
        "units",
        "amount_cents",
        "taxes_amount_cents",
        "total_amount_cents",
        "amount_currency",
        "from_date",
        "to_date",
    ];
    const ITEM: &[&str] = &["type", "code", "name", "invoice_display_name"];
    let pick = |from: &Value, keys: &[&str]| -> Map<String, Value> {
        keys.iter()
            .filter_map(|k| from.get(*k).map(|v| ((*k).to_owned(), v.clone())))
            .collect()
    };
    let mut kept = pick(fee, MAPPED);
    kept.insert("item".to_owned(), Value::Object(pick(&fee["item"], ITEM)));
    Value::Object(kept)
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
