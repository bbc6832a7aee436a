//! The automatic redrive: a scheduled run first recovers the records whose writer died
//! holding them (their lease lapsed: Lago's current state is written), then retries the
//! queued events that are due, each claimed by one run only, until Salesforce takes them;
//! past their maximum age they become `dead` and wait for an operator. Lago gives up after
//! about 25 seconds, so this is what makes a longer outage, or a crash, lose nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{info, warn, Instrument};

use crate::pipeline::{App, Opened};
use crate::store::{Park, Status, Store, StoreError, StoredDelivery};
use crate::{clock, telemetry};

/// Events fetched per index query.
const BATCH: usize = 25;
/// Longest time one event may take, and the time kept back to record its outcome.
const PER_EVENT: Duration = Duration::from_secs(15);
const RESERVE: Duration = Duration::from_secs(3);
/// The backlog metric counts up to this many queued events.
const BACKLOG_CAP: usize = 1000;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Records whose writer died, written again from Lago's current state.
    pub recovered: u32,
    /// Such records not written by this run: Lago's API unavailable (the next run tries
    /// again), or Salesforce refused the write (the event is then stored like any other).
    pub unrecovered: u32,
    pub synced: u32,
    pub skipped: u32,
    pub queued: u32,
    pub failed: u32,
    pub dead: u32,
    /// Due events another run claimed first.
    pub busy: u32,
    /// Other outcomes (e.g. the store or Secrets Manager became unavailable).
    pub other: u32,
    /// Queued events left after the run (due or not), up to 1000.
    pub backlog: usize,
}

/// One redrive run, ending before `deadline`.
pub async fn run_once<S: Store>(
    app: &App<S>,
    max_age: Duration,
    deadline: Instant,
) -> Result<Report, StoreError> {
    run_at(app, max_age, deadline, clock::now_ms).await
}

/// [`run_once`] with the run's clock given, so that tests can make events due or old.
pub async fn run_at<S: Store>(
    app: &App<S>,
    max_age: Duration,
    deadline: Instant,
    now_ms: impl Fn() -> i64,
) -> Result<Report, StoreError> {
    let mut report = Report::default();
    recover_lapsed(app, deadline, now_ms(), &mut report).await?;
    // Each event is tried at most once per run, however soon it falls due again.
    let mut tried = HashSet::new();
    'runs: loop {
        let due = app
            .store
            .parked(Status::Queued, Some(now_ms()), BATCH)
            .await?;
        let fresh: Vec<_> = due
            .into_iter()
            .filter(|e| !tried.contains(&e.key))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for event in fresh {
            if Instant::now() + PER_EVENT + RESERVE > deadline {
                break 'runs;
            }
            tried.insert(event.key.clone());
            let span = tracing::info_span!(
                "redrive",
                delivery_key = %event.key,
                family = %event.family,
                webhook_type = %event.webhook_type,
                attempts = event.attempts,
                lago_id = tracing::field::Empty,
                outcome = tracing::field::Empty,
                api_usage = tracing::field::Empty,
            );
            let label = retry_one(app, &event, max_age, now_ms())
                .instrument(span)
                .await?;
            match label {
                "synced" => report.synced += 1,
                "skipped" => report.skipped += 1,
                "queued" => report.queued += 1,
                "failed" => report.failed += 1,
                "dead" => report.dead += 1,
                "busy" => report.busy += 1,
                _ => report.other += 1,
            }
        }
    }
    report.backlog = app
        .store
        .parked(Status::Queued, None, BACKLOG_CAP)
        .await?
        .len();
    telemetry::gauge("QueuedBacklog", report.backlog as f64);
    info!(?report, "redrive run finished");
    Ok(report)
}

/// Recovers the records whose lease lapsed by `now_ms`, within one batch.
async fn recover_lapsed<S: Store>(
    app: &App<S>,
    deadline: Instant,
    now_ms: i64,
    report: &mut Report,
) -> Result<(), StoreError> {
    for lapsed in app.store.lapsed(now_ms, BATCH).await? {
        if Instant::now() + PER_EVENT + RESERVE > deadline {
            break;
        }
        let span = tracing::info_span!(
            "recover",
            delivery_key = %lapsed.delivery,
            family = %lapsed.family,
            record = %lapsed.record,
            lago_id = tracing::field::Empty,
            outcome = tracing::field::Empty,
            api_usage = tracing::field::Empty,
        );
        let outcome = app
            .recover(&lapsed, Instant::now() + PER_EVENT)
            .instrument(span.clone())
            .await;
        span.record("outcome", outcome.label());
        let recovered = outcome.status_code() == 200;
        telemetry::count(
            &lapsed.family,
            if recovered {
                "recovered"
            } else {
                "unrecovered"
            },
        );
        span.in_scope(|| match recovered {
            true => {
                report.recovered += 1;
                info!("a lapsed record was recovered");
            }
            false => {
                report.unrecovered += 1;
                warn!(?outcome, "a lapsed record is not recovered yet");
            }
        });
    }
    Ok(())
}

/// Claims and retries one due event; returns its outcome's label, or `busy`.
async fn retry_one<S: Store>(
    app: &App<S>,
    event: &StoredDelivery,
    max_age: Duration,
    now_ms: i64,
) -> Result<&'static str, StoreError> {
    let lease_until_ms = now_ms + PER_EVENT.as_millis() as i64;
    let Some(stored) = app
        .store
        .claim_due(&event.key, now_ms, lease_until_ms)
        .await?
    else {
        return Ok("busy");
    };
    let age_ms = now_ms - stored.first_parked_at_ms.unwrap_or(now_ms);
    let label = if age_ms > max_age.as_millis() as i64 {
        mark_dead(app, &stored, now_ms).await?;
        "dead"
    } else {
        app.retry(&stored, Instant::now() + PER_EVENT).await.label()
    };
    tracing::Span::current().record("outcome", label);
    telemetry::count(&stored.family, label);
    Ok(label)
}

/// Stores the event dead and opens its sync issue (best effort), whose first failure is
/// when the event was first stored, unless the issue is open already.
async fn mark_dead<S: Store>(
    app: &App<S>,
    stored: &StoredDelivery,
    now_ms: i64,
) -> Result<(), StoreError> {
    warn!(error_code = ?stored.error_code, "event retried until its maximum age; now dead");
    let park = Park {
        key: &stored.key,
        record: &stored.record,
        family: &stored.family,
        webhook_type: &stored.webhook_type,
        body_sha256: &stored.body_sha256,
        body: stored.body.as_deref().unwrap_or_default(),
        status: Status::Dead,
        error_code: stored.error_code.as_deref().unwrap_or_default(),
        error_message: stored.error_message.as_deref().unwrap_or_default(),
        now_ms,
        due_at_ms: now_ms,
        only_if_new: false,
    };
    app.store.park(&park).await?;
    let opened = Opened {
        code: park.error_code,
        message: park.error_message,
        attempts: stored.attempts,
        first_failed_at_ms: (!stored.issue_open)
            .then(|| stored.first_parked_at_ms.unwrap_or(now_ms)),
    };
    app.open_dead_issue(stored, opened, Instant::now() + PER_EVENT)
        .await;
    Ok(())
}
