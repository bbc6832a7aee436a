//! One batch (≤200 records of one object): map, record guard, one sObject Collections
//! request, one more for credit notes whose invoice is missing, one Composite request per
//! 1,000 line items of the written invoices, and the refused ones parked.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::customers::Directory;
use super::summary::{ObjectSummary, SKIP_DRAFT, SKIP_NEWER, SKIP_NO_ACCOUNT};
use super::{park, BackfillError, Run};
use crate::lago::{as_webhook_body, Envelope};
use crate::mapping::{self, MappingError, Plan, SalesforceWrite, Target};
use crate::salesforce::{DetailOf, SalesforceError};
use crate::store::{delivery_key, Lease, Release, Store, Take, Taken};
use crate::{clock, Family};

/// Record leases taken or let go at once: enough to hide DynamoDB's latency, few
/// enough not to throttle a table in on-demand mode.
const GUARD_CONCURRENCY: usize = 25;
/// Invoices whose fees are read from Lago at once (its list does not embed them).
const FEE_READS: usize = 8;
/// Longest wait for one Lago read of an invoice's fees.
const FEE_READ_TIMEOUT: Duration = Duration::from_secs(30);
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
    /// A customer linked only through Lago's Salesforce integration: its Account, to
    /// remember for the webhooks that embed it without the link (contract §7.5).
    integration_link: Option<String>,
}

/// A mapped record whose Salesforce record this run holds, and what became of its write.
struct Held {
    mapped: Mapped,
    lease: Lease,
    written: bool,
}

impl<S: Store> Batch<'_, '_, S> {
    pub async fn write(
        &self,
        items: &[Value],
        summary: &mut ObjectSummary,
    ) -> Result<(), BackfillError> {
        summary.read += items.len() as u64;
        let with_fees;
        let items = if self.family == Family::Invoice {
            with_fees = self.with_fees(items).await?;
            &with_fees[..]
        } else {
            items
        };
        let mapped = self.map(items, summary);
        let mapped = newest_per_target(mapped, summary);
        if self.run.options.dry_run {
            summary.written += mapped.len() as u64;
            summary.line_items_written += mapped
                .iter()
                .filter_map(|m| m.plan.write.details.as_ref())
                .map(|d| d.records.len() as u64)
                .sum::<u64>();
            return Ok(());
        }
        let deadline = self
            .run
            .options
            .stop_at
            .map_or_else(|| Instant::now() + REQUEST_BUDGET, |at| at + AFTER_STOP);
        let mut held = self.take(mapped, deadline, summary).await?;
        let written = self.send(&mut held, deadline, summary).await;
        // Let every record go, written or not, before an error ends the run.
        self.let_go(held).await?;
        written
    }

    async fn send(
        &self,
        held: &mut [Held],
        deadline: Instant,
        summary: &mut ObjectSummary,
    ) -> Result<(), BackfillError> {
        let salesforce = &self.run.app.salesforce;
        let writes: Vec<&SalesforceWrite> = held.iter().map(|h| &h.mapped.plan.write).collect();
        let results = salesforce
            .write_collection(&self.run.app.secrets, &writes, true, deadline)
            .await?;
        let mut unlinked = Vec::new();
        let mut with_details = Vec::new();
        for (at, result) in results.into_iter().enumerate() {
            let plan = &held[at].mapped.plan;
            match result {
                Ok(_) if plan.write.details.is_some() => with_details.push(at),
                Ok(_) => {
                    held[at].written = true;
                    summary.written += 1;
                }
                // In a collection a credit note whose invoice is missing fails alone; it is
                // written without the link in one more request, as the webhook does.
                Err(e) if e.is_missing_parent() && plan.write.reference.is_some() => {
                    unlinked.push(at)
                }
                Err(e) => self.failed(&held[at].mapped, &e, summary).await?,
            }
        }
        self.send_details(held, &with_details, deadline, summary)
            .await?;
        if unlinked.is_empty() {
            return Ok(());
        }
        let writes: Vec<&SalesforceWrite> = unlinked
            .iter()
            .map(|&at| &held[at].mapped.plan.write)
            .collect();
        let results = salesforce
            .write_collection(&self.run.app.secrets, &writes, false, deadline)
            .await?;
        for (at, result) in unlinked.into_iter().zip(results) {
            match result {
                Ok(_) => {
                    held[at].written = true;
                    summary.written += 1;
                    summary.links_dropped += 1;
                    // The invoice's first write links it, as for a webhook (§7.6).
                    self.run
                        .app
                        .await_invoice(&held[at].mapped.plan, deadline)
                        .await;
                }
                Err(e) => self.failed(&held[at].mapped, &e, summary).await?,
            }
        }
        Ok(())
    }

    /// The line items of the invoices just written, 1,000 per call. An invoice is written
    /// once all its line items are; one refused line item stores the invoice as failed,
    /// its version not advanced, so its redrive writes it again with every line item.
    async fn send_details(
        &self,
        held: &mut [Held],
        invoices: &[usize],
        deadline: Instant,
        summary: &mut ObjectSummary,
    ) -> Result<(), BackfillError> {
        let mut owners = Vec::new();
        let mut details = Vec::new();
        for &at in invoices {
            let plan = &held[at].mapped.plan;
            let Some(of) = &plan.write.details else {
                continue;
            };
            for detail in &of.records {
                owners.push(at);
                details.push(DetailOf {
                    details: of,
                    master_lago_id: &plan.lago_id,
                    detail,
                });
            }
        }
        let results = self
            .run
            .app
            .salesforce
            .write_details(&self.run.app.secrets, &details, deadline)
            .await?;
        let mut refused: HashMap<usize, SalesforceError> = HashMap::new();
        for (owner, result) in owners.into_iter().zip(results) {
            match result {
                Ok(_) => summary.line_items_written += 1,
                Err(e) => {
                    refused.entry(owner).or_insert(e);
                }
            }
        }
        for &at in invoices {
            match refused.remove(&at) {
                Some(e) => self.failed(&held[at].mapped, &e, summary).await?,
                None => {
                    held[at].written = true;
                    summary.written += 1;
                }
            }
        }
        Ok(())
    }

    /// The listed invoices with their fees, read one by one from Lago (its list leaves
    /// them out). Drafts are skipped by the mapping and need none.
    async fn with_fees(&self, items: &[Value]) -> Result<Vec<Value>, BackfillError> {
        let mut items = items.to_vec();
        let wanted: Vec<usize> = (0..items.len())
            .filter(|&at| items[at].get("status") != Some(&json!("draft")))
            .filter(|&at| items[at]["lago_id"].is_string())
            .collect();
        for group in wanted.chunks(FEE_READS) {
            let reads = join_all(group.iter().map(|&at| {
                let lago_id = items[at]["lago_id"].as_str().unwrap_or_default().to_owned();
                async move {
                    self.run
                        .lago
                        .object(Family::Invoice, &lago_id, FEE_READ_TIMEOUT)
                        .await
                }
            }))
            .await;
            for (&at, read) in group.iter().zip(reads) {
                if let Some(fees) =
                    read?.and_then(|mut invoice| invoice.get_mut("fees").map(Value::take))
                {
                    items[at]["fees"] = fees;
                }
            }
        }
        Ok(items)
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
            let webhook_type = self.family.state_type();
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
                Ok(plan) => mapped.push(Mapped {
                    integration_link: integration_link(item, &plan),
                    body,
                    plan,
                }),
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

    /// Takes each record as a webhook would: one that a webhook is writing, or that holds
    /// a newer state, is skipped.
    async fn take(
        &self,
        mapped: Vec<Mapped>,
        deadline: Instant,
        summary: &mut ObjectSummary,
    ) -> Result<Vec<Held>, BackfillError> {
        let store = &self.run.app.store;
        let lease_until_ms = clock::epoch_ms_of(deadline);
        let family = self.family.as_str();
        let mut held = Vec::with_capacity(mapped.len());
        let mut rest = mapped.into_iter().peekable();
        while rest.peek().is_some() {
            let group: Vec<Mapped> = rest.by_ref().take(GUARD_CONCURRENCY).collect();
            let verdicts = join_all(group.iter().map(|m| async move {
                let hash = hex::encode(Sha256::digest(&m.body));
                let unique = format!("backfill-{}-{}", self.run.id, m.plan.lago_id);
                let take = Take {
                    record: &m.plan.record(),
                    delivery: &delivery_key(family, &unique),
                    body_sha256: &hash,
                    version: m.plan.version,
                    family,
                    lago_ref: &m.plan.lago_ref,
                    now_ms: clock::now_ms(),
                    lease_until_ms,
                    retry: true,
                };
                store.take(&take).await
            }))
            .await;
            for (mapped, verdict) in group.into_iter().zip(verdicts) {
                match verdict? {
                    Taken::Leased(lease) => held.push(Held {
                        mapped,
                        lease,
                        written: false,
                    }),
                    _ => summary.skip(SKIP_NEWER),
                }
            }
        }
        Ok(held)
    }

    /// Lets the records go: the written ones with their version; a refused one is stored
    /// under its own key by [`Self::failed`], so its lease just ends.
    async fn let_go(&self, held: Vec<Held>) -> Result<(), BackfillError> {
        let store = &self.run.app.store;
        for group in held.chunks(GUARD_CONCURRENCY) {
            let released = join_all(group.iter().map(|h| {
                let release = match h.written {
                    true => Release::Written {
                        version: h.mapped.plan.version,
                        now_ms: clock::now_ms(),
                    },
                    false => Release::Abandoned,
                };
                async move {
                    let released = store.release(&h.lease, &release).await?;
                    if let (true, Some(account)) = (h.written, &h.mapped.integration_link) {
                        store.link(&h.mapped.plan.lago_id, account).await?;
                    }
                    Ok::<_, crate::store::StoreError>(released)
                }
            }))
            .await;
            for result in released {
                result?;
            }
        }
        Ok(())
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
            &record.plan.record(),
            lago_id,
            &record.body,
            error,
        )
        .await?;
        summary.fail(lago_id, error, stored_as);
        Ok(())
    }
}

/// The Account of a customer linked through the integration only (no
/// `external_salesforce_id`), from its plan.
fn integration_link(item: &Value, plan: &Plan) -> Option<String> {
    let direct = item["external_salesforce_id"]
        .as_str()
        .is_some_and(|id| !id.trim().is_empty());
    match &plan.write.target {
        Target::Account { id } if !direct => Some(id.clone()),
        _ => None,
    }
}

/// One write per Salesforce record per request (a collection refuses a record twice):
/// when several Lago customers share an Account, the most recently updated one wins,
/// as with the webhooks.
fn newest_per_target(mapped: Vec<Mapped>, summary: &mut ObjectSummary) -> Vec<Mapped> {
    let version = |m: &Mapped| m.plan.version;
    let mut kept: Vec<Mapped> = Vec::with_capacity(mapped.len());
    let mut index: HashMap<String, usize> = HashMap::new();
    for record in mapped {
        let target = record.plan.record();
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
