//! The initial sync ("Start Sync Data"): every Lago customer, subscription, invoice and
//! credit note already in Lago, written to Salesforce exactly as the webhooks write them.
//!
//! Objects go in the order Accounts, subscriptions, invoices, credit notes (invoices
//! before credit notes, so that the credit notes' invoice links resolve). Each Lago page
//! (1,000 records) is written in sObject Collections of 200, through the same mapping and
//! the same record guard as the webhooks: a backfill beside live webhooks never
//! overwrites a newer state. Progress is checkpointed after every collection; a run that
//! stops (deadline, outage) resumes there. Refused records are stored as parked events,
//! which `lago-sync list/redrive` and the redrive function handle like webhook events.

mod batch;
mod checkpoint;
mod customers;
mod lambda;
mod park;
mod summary;

use std::time::Instant;

use thiserror::Error;
use tracing::info;

use crate::lago_api::{LagoApi, LagoApiError, Listing, PER_PAGE};
use crate::pipeline::App;
use crate::salesforce::{SalesforceError, MAX_COLLECTION};
use crate::secrets::SecretsError;
use crate::store::{Store, StoreError};
use crate::Family;

pub use lambda::run_function;
pub use summary::{FailedRecord, ObjectSummary, Summary, SKIP_DRAFT, SKIP_NEWER, SKIP_NO_ACCOUNT};

#[derive(Debug, Error)]
pub enum BackfillError {
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error(
        "lago_api_key is missing from the secret (the backfill, check and webhook set-up need it)"
    )]
    NoLagoKey,
    #[error(transparent)]
    Lago(#[from] LagoApiError),
    /// A whole Salesforce request failed (not one record of it).
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Called after each batch with the object's running summary and the list's total.
pub type Progress<'a> = dyn Fn(&ObjectSummary, Option<u64>) + Send + Sync + 'a;

pub struct Options<'a> {
    /// Only this Lago customer (its `external_id`); checkpoints are kept per scope.
    pub customer: Option<String>,
    /// Read and map, write nothing (no Salesforce write, no table write).
    pub dry_run: bool,
    /// Forget the checkpoints and start from the first page.
    pub restart: bool,
    /// Start no new batch after this instant (a Lambda's deadline minus a margin).
    pub stop_at: Option<Instant>,
    /// Records per Lago page: [`PER_PAGE`] unless a test wants more pages.
    pub per_page: u32,
    pub progress: Option<&'a Progress<'a>>,
}

impl Default for Options<'_> {
    fn default() -> Self {
        Options {
            customer: None,
            dry_run: false,
            restart: false,
            stop_at: None,
            per_page: PER_PAGE,
            progress: None,
        }
    }
}

/// The Lago API client, with the key from the functions' secret.
pub async fn lago_api<S: Store>(
    app: &App<S>,
    lago_api_url: &str,
) -> Result<LagoApi, BackfillError> {
    let secrets = app.secrets.current().await?;
    let key = secrets
        .lago_api_key
        .as_deref()
        .ok_or(BackfillError::NoLagoKey)?;
    Ok(LagoApi::new(lago_api_url, key))
}

/// One backfill run. An `Err` means it could not start; a run that stops part-way
/// answers its summary with `stopped` set, and the next run resumes.
pub async fn run<S: Store>(
    app: &App<S>,
    lago: &LagoApi,
    options: &Options<'_>,
) -> Result<Summary, BackfillError> {
    // Not read for its value (the Salesforce client reads it per call): a run that cannot
    // read the secret does not start.
    app.secrets.current().await?;
    let (calls_before, tokens_before) = app.salesforce.calls();
    let lago_before = lago.calls();
    let run = Run {
        app,
        lago,
        options,
        scope: options
            .customer
            .as_deref()
            .map_or_else(|| "all".to_owned(), |c| format!("customer-{c}")),
        id: format!("{:x}", crate::clock::now_ms()),
    };
    let mut summary = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let mut joined = customers::Directory::default();
    for family in Family::ALL {
        let mut object = ObjectSummary::new(family.object_type());
        let result = run.object(family, &mut object, &mut joined).await;
        let done = object.done;
        summary.objects.push(object);
        match result {
            Err(e) => {
                summary.stopped = Some(e.to_string());
                break;
            }
            Ok(()) if !done => break,
            Ok(()) => {}
        }
    }
    summary.finished =
        summary.objects.len() == Family::ALL.len() && summary.objects.iter().all(|o| o.done);
    let (calls, tokens) = app.salesforce.calls();
    summary.salesforce_calls = calls - calls_before;
    summary.salesforce_token_requests = tokens - tokens_before;
    summary.lago_calls = lago.calls() - lago_before;
    info!(finished = summary.finished, stopped = ?summary.stopped, "backfill run ended");
    Ok(summary)
}

struct Run<'a, S> {
    app: &'a App<S>,
    lago: &'a LagoApi,
    options: &'a Options<'a>,
    scope: String,
    /// Names this run's writes to the record guard (checkpoints, not the guard, keep a
    /// rerun from writing a record twice; a restart writes everything again).
    id: String,
}

impl<S: Store> Run<'_, S> {
    /// Pages through one object from its checkpoint; `summary.done` when it got to the end.
    async fn object(
        &self,
        family: Family,
        summary: &mut ObjectSummary,
        joined: &mut customers::Directory,
    ) -> Result<(), BackfillError> {
        let (store, name) = (&self.app.store, family.object_type());
        let writes = !self.options.dry_run;
        if self.options.restart && writes {
            checkpoint::save(store, &self.scope, name, None).await?;
        }
        let mut at = if writes && !self.options.restart {
            checkpoint::load(store, &self.scope, name).await?
        } else {
            checkpoint::Checkpoint::default()
        };
        if at.done {
            (summary.done, summary.already_done) = (true, true);
            return Ok(());
        }
        if family == Family::Subscription && !joined.is_complete() {
            // Subscription lists do not embed the customer the mapping needs.
            joined
                .load(
                    self.lago,
                    self.options.customer.as_deref(),
                    self.options.per_page,
                )
                .await?;
        }
        let listing = Listing::from(family);
        loop {
            if self.out_of_time() {
                return Ok(());
            }
            let page = self
                .lago
                .page(
                    listing,
                    at.page,
                    self.options.per_page,
                    self.options.customer.as_deref(),
                )
                .await?;
            if family == Family::Customer {
                joined.add_page(at.page, &page.items, page.next_page.is_none());
            }
            let items = page.items.get(at.offset..).unwrap_or_default();
            for chunk in items.chunks(MAX_COLLECTION) {
                if self.out_of_time() {
                    return Ok(());
                }
                let batch = batch::Batch {
                    run: self,
                    family,
                    joined,
                };
                batch.write(chunk, summary).await?;
                at.offset += chunk.len();
                if writes {
                    checkpoint::save(store, &self.scope, name, Some(at)).await?;
                }
                if let Some(progress) = self.options.progress {
                    progress(summary, page.total_count);
                }
            }
            match page.next_page {
                Some(next) => {
                    at = checkpoint::Checkpoint {
                        page: next,
                        offset: 0,
                        done: false,
                    }
                }
                None => {
                    at.done = true;
                    if writes {
                        checkpoint::save(store, &self.scope, name, Some(at)).await?;
                    }
                    summary.done = true;
                    return Ok(());
                }
            }
        }
    }

    fn out_of_time(&self) -> bool {
        self.options.stop_at.is_some_and(|at| Instant::now() >= at)
    }
}
