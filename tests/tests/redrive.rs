//! The automatic redrive, in-process: events queued during a Salesforce outage end up in
//! Salesforce exactly once after it, overlapping runs never process one event twice, and
//! events past their maximum age become dead until an operator requeues them.

use std::sync::Arc;
use std::time::Duration;

use lago_sync::redrive::Report;
use lago_sync::store::{EventQueue, Status};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, ACCOUNT};
use sync_testkit::inprocess::{epoch_ms, Harness};
use sync_testkit::standin::Fault;

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);
const HOUR_MS: i64 = 3_600_000;

fn invoices(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            events::body(
                "invoice.created",
                &format!("inv-{i}"),
                Some(ACCOUNT),
                json!({"total_amount_cents": 1000 + i}),
            )
        })
        .collect()
}

/// Salesforce's records without their generated ids, for comparing two runs.
fn contents(h: &Harness, object: &str) -> Vec<Value> {
    let mut records: Vec<Value> = h
        .standin
        .records(object)
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("Id");
            r
        })
        .collect();
    records.sort_by_key(|r| r["Lago_Id__c"].to_string());
    records
}

#[tokio::test]
async fn an_outage_loses_nothing_and_duplicates_nothing() {
    let bodies = invoices(5);
    let clean = Harness::start(Family::Invoice).await;
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(
            clean.deliver(&format!("k{i}"), body).await.label(),
            "synced"
        );
    }

    let h = Harness::start(Family::Invoice).await;
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "maintenance")
            .times(5)
            .on_path("/sobjects/"),
    );
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(h.deliver(&format!("k{i}"), body).await.label(), "queued");
    }
    assert!(h.standin.records("Lago_Invoice__c").is_empty());
    // Not due yet: the first retry waits 15 to 30 seconds.
    assert_eq!(
        h.redrive_with(WEEK, 0).await,
        Report {
            backlog: 5,
            ..Report::default()
        }
    );

    let report = h.redrive_with(WEEK, HOUR_MS).await;
    assert_eq!((report.synced, report.backlog), (5, 0), "{report:?}");
    assert_eq!(
        contents(&h, "Lago_Invoice__c"),
        contents(&clean, "Lago_Invoice__c")
    );
    assert_eq!(
        h.rest_calls(),
        10,
        "5 refused during the outage, 5 written after"
    );
    // Lago's own late retries of the same deliveries are duplicates now.
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(h.deliver(&format!("k{i}"), body).await.label(), "duplicate");
    }
    assert_eq!(h.redrive_with(WEEK, 2 * HOUR_MS).await, Report::default());
}

#[tokio::test]
async fn a_still_failing_salesforce_backs_off_and_counts_attempts() {
    let h = Harness::start(Family::Invoice).await;
    h.standin.add_fault(
        Fault::error(400, "UNABLE_TO_LOCK_ROW", "locked")
            .times(3)
            .on_path("/sobjects/"),
    );
    let body = &invoices(1)[0];
    assert_eq!(h.deliver("k", body).await.label(), "queued");
    assert_eq!(h.redrive_with(WEEK, HOUR_MS).await.queued, 1);
    let stored = h.stored("k").await.unwrap();
    assert_eq!((stored.status, stored.attempts), (Status::Queued, 2));
    let due_in = stored.due_at_ms.unwrap() - epoch_ms();
    assert!(
        (15_000..=60_000).contains(&due_in),
        "second retry waits 30 to 60 s, got {due_in} ms"
    );
    assert_eq!(h.redrive_with(WEEK, 2 * HOUR_MS).await.queued, 1);
    assert_eq!(h.redrive_with(WEEK, 3 * HOUR_MS).await.synced, 1);
    assert_eq!(h.stored("k").await.unwrap().status, Status::Completed);
}

#[tokio::test]
async fn a_permanent_refusal_during_the_redrive_fails_the_event() {
    let h = Harness::start(Family::Invoice).await;
    h.standin
        .add_fault(Fault::error(503, "SERVER_UNAVAILABLE", "down").on_path("/sobjects/"));
    h.standin.add_fault(
        Fault::error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "rule").on_path("/sobjects/"),
    );
    assert_eq!(h.deliver("k", &invoices(1)[0]).await.label(), "queued");
    assert_eq!(h.redrive_with(WEEK, HOUR_MS).await.failed, 1);
    let failed = h.app.store.parked(Status::Failed, None, 10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        failed[0].error_code.as_deref(),
        Some("FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
}

#[tokio::test]
async fn past_its_maximum_age_an_event_is_dead_until_requeued() {
    let h = Harness::start(Family::Subscription).await;
    h.standin
        .add_fault(Fault::error(503, "SERVER_UNAVAILABLE", "down").on_path("/sobjects/"));
    let body = events::body("subscription.started", "sub-1", Some(ACCOUNT), json!({}));
    assert_eq!(h.deliver("k", &body).await.label(), "queued");
    let report = h.redrive_with(Duration::from_secs(3600), 2 * HOUR_MS).await;
    assert_eq!((report.dead, report.synced), (1, 0), "{report:?}");
    assert_eq!(
        h.rest_calls(),
        2,
        "a dead event is not tried again; its sync issue is opened"
    );
    let dead = h.app.store.parked(Status::Dead, None, 10).await.unwrap();
    assert_eq!(
        (dead.len(), dead[0].error_code.as_deref()),
        (1, Some("SERVER_UNAVAILABLE"))
    );

    // The operator requeues it; its age counts afresh, and the next run writes it.
    assert!(h.app.store.requeue(&h.key("k"), epoch_ms()).await.unwrap());
    assert!(
        !h.app.store.requeue(&h.key("k"), epoch_ms()).await.unwrap(),
        "already queued"
    );
    assert_eq!(
        h.redrive_with(Duration::from_secs(3600), 60_000)
            .await
            .synced,
        1
    );
    assert_eq!(
        h.record("Lago_Subscription__c", "sub-1")["Status__c"],
        json!("active")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_runs_process_each_event_once() {
    let h = Arc::new(Harness::start(Family::Invoice).await);
    let bodies = invoices(20);
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "down")
            .times(20)
            .on_path("/sobjects/"),
    );
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(h.deliver(&format!("k{i}"), body).await.label(), "queued");
    }
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.redrive_with(WEEK, HOUR_MS).await })
        })
        .collect();
    let mut synced = 0;
    for run in runs {
        synced += run.await.unwrap().synced;
    }
    assert_eq!(synced, 20);
    assert_eq!(
        h.rest_calls(),
        40,
        "20 refused, then each event written exactly once"
    );
    assert_eq!(h.standin.records("Lago_Invoice__c").len(), 20);
}
