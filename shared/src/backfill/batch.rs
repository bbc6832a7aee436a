//! One batch (≤200 records of one object): map, ordering guard, one sObject Collections
//! request, one more for credit notes whose invoice is missing, and the refused ones parked.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::customers::Directory;
use super::summary::{ObjectSummary, SKIP_DRAFT, SKIP_NEWER, SKIP_NO_ACCOUNT};
use super::{park, BackfillError, Run};
use crate::lago::{as_webhook_body, Envelope};
use crate::mapping::{self, MappingError, Plan, SalesforceWrite, Target};
use crate::salesforce::SalesforceError;
use crate::store::IdempotencyStore;
use crate::Family;

/// Ordering-guard writes in flight at once: enough to hide DynamoDB's latency, few
/// enough not to throttle a table in on-demand mode.
const GUARD_CONCURRENCY: usize = 25;
/// Longest wait for one Salesforce request when no deadline is given.
const REQUEST_BUDGET: Duration = Duration::from_secs(120);
/// A batch started just before `stop_at` may still use this much time.
const AFTER_STOP: Duration = Duration::from_secs(25);

pub(super) struct Batch<'b, 'a, S> {
    pub run: &'b Run<'a, S>,
    pub family: Family,
    pub joined: &'b Directory,
}

/// A Lago record ready to write, with the webhook-shaped body it was mapped from.
struct Mapped {
    body: Vec<u8>,
    plan: Plan,
}

impl<S: IdempotencyStore> Batch<'_, '_, S> {
    pub async fn write(
        &self,
        items: &[Value],
        summary: &mut ObjectSummary,
    ) -> Result<(), BackfillError> {
        summary.read += items.len() as u64;
        let mapped = self.map(items, summary);
        let mapped = newest_per_target(mapped, summary);
        if self.run.options.dry_run {
            summary.written += mapped.len() as u64;
            return Ok(());
        }
        let ready = self.guard(mapped, summary).await?;
        let deadline = self
            .run
            .options
            .stop_at
            .map_or_else(|| Instant::now() + REQUEST_BUDGET, |at| at + AFTER_STOP);
        let salesforce = &self.run.app.salesforce;
        let writes: Vec<&SalesforceWrite> = ready.iter().map(|m| &m.plan.write).collect();
        let results = salesforce
            .write_collection(self.run.credentials, &writes, true, deadline)
            .await?;
        let mut unlinked = Vec::new();
        for (record, result) in ready.iter().zip(results) {
            match result {
                Ok(_) => summary.written += 1,
                // In a collection a credit note whose invoice is missing fails alone; it is
                // written without the link in one more request, as the webhook does.
                Err(e) if e.is_missing_parent() && record.plan.write.reference.is_some() => {
                    unlinked.push(record)
                }
                Err(e) => self.failed(record, &e, summary).await?,
            }
        }
        if unlinked.is_empty() {
            return Ok(());
        }
        let writes: Vec<&SalesforceWrite> = unlinked.iter().map(|m| &m.plan.write).collect();
        let results = salesforce
            .write_collection(self.run.credentials, &writes, false, deadline)
            .await?;
        for (record, result) in unlinked.into_iter().zip(results) {
            match result {
                Ok(_) => {
                    summary.written += 1;
                    summary.links_dropped += 1;
                }
                Err(e) => self.failed(record, &e, summary).await?,
            }
        }
        Ok(())
    }

    /// Each record through the webhooks' own envelope and mapping, so the backfill writes
    /// exactly what a webhook writes.
    fn map(&self, items: &[Value], summary: &mut ObjectSummary) -> Vec<Mapped> {
        let mut mapped = Vec::with_capacity(items.len());
        for item in items {
            // The list is already filtered to finalized and voided; this guards against
            // a Lago that ignores `statuses[]`.
            if self.family == Family::Invoice && item.get("status") == Some(&json!("draft")) {
                summary.skip(SKIP_DRAFT);
                continue;
            }
            let webhook_type = park::webhook_type(self.family);
            let body = if self.family == Family::Subscription {
                let mut object = item.clone();
                self.joined.embed(&mut object);
                as_webhook_body(self.family, webhook_type, &object)
            } else {
                as_webhook_body(self.family, webhook_type, item)
            };
            let plan = Envelope::parse(&body)
                .map_err(MappingError::from)
                .and_then(|envelope| mapping::plan(self.family, &envelope));
            match plan {
                Ok(plan) => mapped.push(Mapped { body, plan }),
                Err(MappingError::NoAccount(_)) => summary.skip(SKIP_NO_ACCOUNT),
                Err(e) => {
                    let lago_id = item.get("lago_id").and_then(Value::as_str).unwrap_or("?");
                    // Not stored: a redrive would refuse it the same way.
                    summary.fail(
                        lago_id,
                        &SalesforceError::new(None, "UNMAPPABLE", e.to_string()),
                        None,
                    );
                }
            }
        }
        mapped
    }

    /// The ordering guard of the webhooks, record by record: an older state than one a
    /// webhook already wrote is skipped.
    async fn guard(
        &self,
        mapped: Vec<Mapped>,
        summary: &mut ObjectSummary,
    ) -> Result<Vec<Mapped>, BackfillError> {
        let store = &self.run.app.store;
        let now_ms = epoch_ms();
        let mut ready = Vec::with_capacity(mapped.len());
        let mut rest = mapped.into_iter().peekable();
        while rest.peek().is_some() {
            let group: Vec<Mapped> = rest.by_ref().take(GUARD_CONCURRENCY).collect();
            let verdicts = join_all(group.iter().map(|m| async move {
                match &m.plan.order {
                    Some(stamp) => store.advance_order(stamp, now_ms).await,
                    None => Ok(true),
                }
            }))
            .await;
            for (record, verdict) in group.into_iter().zip(verdicts) {
                if verdict? {
                    ready.push(record);
                } else {
                    summary.skip(SKIP_NEWER);
                }
            }
        }
        Ok(ready)
    }

    async fn failed(
        &self,
        record: &Mapped,
        error: &SalesforceError,
        summary: &mut ObjectSummary,
    ) -> Result<(), BackfillError> {
        let lago_id = &record.plan.lago_id;
        let stored_as = park::park(
            &self.run.app.store,
            self.family,
            lago_id,
            &record.body,
            error,
        )
        .await?;
        summary.fail(lago_id, error, stored_as);
        Ok(())
    }
}

/// One write per Salesforce record per request (a collection refuses a record twice):
/// when several Lago customers share an Account, the most recently updated one wins,
/// as with the webhooks.
fn newest_per_target(mapped: Vec<Mapped>, summary: &mut ObjectSummary) -> Vec<Mapped> {
    let version = |m: &Mapped| m.plan.order.as_ref().map(|o| o.version);
    let mut kept: Vec<Mapped> = Vec::with_capacity(mapped.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in mapped {
        let target = match &record.plan.write.target {
            Target::Account { id } => format!("Account/{id}"),
            Target::Upsert { object, lago_id } => format!("{object}/{lago_id}"),
        };
        match index.get(&target) {
            Some(&at) => {
                if version(&record) > version(&kept[at]) {
                    kept[at] = record;
                }
                summary.skip(SKIP_NEWER);
            }
            None => {
                index.insert(target, kept.len());
                kept.push(record);
            }
        }
    }
    kept
}

/// Polls every future to completion, concurrently on this task.
async fn join_all<F: Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, output) in pending.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|o| o.expect("every future completed"))
        .collect()
}

fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
