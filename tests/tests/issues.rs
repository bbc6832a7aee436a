//! The sync issues in Salesforce (contract §6): an event that ends failed or dead upserts
//! its `Lago_Sync_Issue__c`, open, in one call; when it later syncs the issue is resolved;
//! queued events and the success path cost no issue call.

use std::time::Duration;

use lago_sync::store::EventQueue;
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, ACCOUNT};
use sync_testkit::inprocess::{epoch_ms, Harness};
use sync_testkit::standin::Fault;

const ISSUE: &str = "Lago_Sync_Issue__c";
const INVOICE_PATH: &str = "/sobjects/Lago_Invoice__c/";
const HOUR_MS: i64 = 3_600_000;

fn issue(h: &Harness, unique_key: &str) -> Option<Value> {
    h.standin
        .record_by(ISSUE, "Delivery_Key__c", &h.key(unique_key))
}

fn invoice(lago_id: &str) -> Vec<u8> {
    events::body("invoice.created", lago_id, Some(ACCOUNT), json!({}))
}

fn is_utc_datetime(value: &Value) -> bool {
    value
        .as_str()
        .is_some_and(|v| v.len() == 20 && v.ends_with('Z') && v.as_bytes()[10] == b'T')
}

/// A delivery Salesforce refused once (its issue opened), requeued by the operator.
async fn failed_then_requeued() -> Harness {
    let h = Harness::start(Family::Invoice).await;
    h.standin.add_fault(
        Fault::error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "no")
            .on_path(INVOICE_PATH)
            .times(1),
    );
    assert_eq!(h.deliver("k", &invoice("inv-1")).await.label(), "failed");
    assert!(h.app.store.requeue(&h.key("k"), epoch_ms()).await.unwrap());
    h
}

#[tokio::test]
async fn a_refused_event_opens_one_issue_with_one_call_and_its_redrive_resolves_it() {
    let h = Harness::start(Family::Invoice).await;
    h.standin.add_fault(
        Fault::error(
            400,
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "Amount must be positive",
        )
        .on_path(INVOICE_PATH)
        .times(1),
    );
    let outcome = h.deliver("k", &invoice("inv-1")).await;
    assert_eq!(
        (outcome.status_code(), outcome.body()["error_code"].clone()),
        (422, json!("FIELD_CUSTOM_VALIDATION_EXCEPTION")),
        "the issue write changes nothing of the answer"
    );
    assert_eq!(h.rest_calls(), 2, "the refused write and the issue");
    let open = issue(&h, "k").expect("an issue is opened");
    for (field, expected) in [
        ("Name", json!("invoice inv-1")),
        ("Status__c", json!("open")),
        ("Family__c", json!("invoice")),
        ("Webhook_Type__c", json!("invoice.created")),
        ("Lago_Id__c", json!("inv-1")),
        ("Error_Code__c", json!("FIELD_CUSTOM_VALIDATION_EXCEPTION")),
        ("Error_Message__c", json!("Amount must be positive")),
        ("Attempts__c", json!(1)),
        ("Account__c", json!(ACCOUNT)),
    ] {
        assert_eq!(open[field], expected, "{field}: {open}");
    }
    assert!(is_utc_datetime(&open["First_Failed_At__c"]), "{open}");
    assert_eq!(open["First_Failed_At__c"], open["Last_Failed_At__c"]);
    assert!(open["Resolved_At__c"].is_null(), "{open}");
    let stored = h.stored("k").await.expect("stored");
    assert_eq!(
        stored.status.as_str(),
        "failed",
        "what is stored is unchanged"
    );

    // Lago's retry of the failed event is answered from the table: no call, no issue write.
    assert_eq!(h.deliver("k", &invoice("inv-1")).await.label(), "failed");
    assert_eq!(h.rest_calls(), 2);

    // The operator fixes the cause and requeues: the redrive writes it and resolves the issue.
    assert!(h.app.store.requeue(&h.key("k"), epoch_ms()).await.unwrap());
    let report = h.redrive_with(Duration::from_secs(3600), 60_000).await;
    assert_eq!(report.synced, 1, "{report:?}");
    assert_eq!(h.rest_calls(), 4, "the write and the resolution");
    let resolved = issue(&h, "k").expect("the issue is kept");
    assert_eq!(resolved["Status__c"], json!("resolved"), "{resolved}");
    assert!(is_utc_datetime(&resolved["Resolved_At__c"]), "{resolved}");
    assert_eq!(resolved["First_Failed_At__c"], open["First_Failed_At__c"]);
    assert_eq!(resolved["Error_Code__c"], open["Error_Code__c"]);
    assert_eq!(resolved["Name"], json!("invoice inv-1"));
    assert_eq!(h.standin.records(ISSUE).len(), 1, "one issue per event");
}

#[tokio::test]
async fn a_requeued_event_resent_by_lago_resolves_its_issue() {
    let h = failed_then_requeued().await;
    assert_eq!(h.deliver("k", &invoice("inv-1")).await.label(), "synced");
    assert_eq!(h.rest_calls(), 4, "failure, issue, write, resolution");
    assert_eq!(issue(&h, "k").unwrap()["Status__c"], json!("resolved"));
}

#[tokio::test]
async fn an_issue_stays_open_through_a_transient_retry_until_the_event_syncs() {
    let h = failed_then_requeued().await;
    // The requeued retry meets an outage: queued again, the issue still open.
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "down")
            .on_path(INVOICE_PATH)
            .times(1),
    );
    assert_eq!(
        h.redrive_with(Duration::from_secs(3600), 60_000)
            .await
            .queued,
        1
    );
    assert_eq!(issue(&h, "k").unwrap()["Status__c"], json!("open"));
    // The next retry writes it: resolved.
    let report = h.redrive_with(Duration::from_secs(3600), 10 * 60_000).await;
    assert_eq!(report.synced, 1, "{report:?}");
    assert_eq!(issue(&h, "k").unwrap()["Status__c"], json!("resolved"));
}

#[tokio::test]
async fn an_unmappable_event_opens_an_issue_named_by_its_key() {
    let h = Harness::start(Family::Customer).await;
    let wrong_type = br#"{"webhook_type":"customer.updated","object_type":"customer","customer":{"lago_id":42}}"#;
    let outcome = h.deliver("k", wrong_type).await;
    assert_eq!(outcome.body()["error_code"], json!("UNMAPPABLE"));
    assert_eq!(h.rest_calls(), 1, "only the issue");
    let open = issue(&h, "k").expect("an issue is opened");
    assert_eq!(open["Name"], json!("customer k"), "{open}");
    assert_eq!(open["Status__c"], json!("open"));
    assert_eq!(open["Error_Code__c"], json!("UNMAPPABLE"));
    assert_eq!(open["Webhook_Type__c"], json!("customer.updated"));
    assert!(open["Account__c"].is_null(), "{open}");
    assert!(is_utc_datetime(&open["First_Failed_At__c"]), "{open}");
}

#[tokio::test]
async fn a_queued_event_is_no_issue_and_a_success_costs_one_call() {
    let h = Harness::start(Family::Invoice).await;
    assert_eq!(h.deliver("ok", &invoice("inv-0")).await.label(), "synced");
    assert_eq!(h.rest_calls(), 1, "no issue call on the success path");
    assert!(issue(&h, "ok").is_none());

    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "down")
            .on_path(INVOICE_PATH)
            .times(1),
    );
    assert_eq!(h.deliver("k", &invoice("inv-1")).await.label(), "queued");
    assert_eq!(h.rest_calls(), 2);
    assert!(
        issue(&h, "k").is_none(),
        "queued events are retried, not issues"
    );
    // Its retry syncs: it never was an issue, so nothing to resolve.
    let report = h.redrive_with(Duration::from_secs(3600), 10 * 60_000).await;
    assert_eq!(report.synced, 1, "{report:?}");
    assert_eq!(h.rest_calls(), 3);
    assert!(issue(&h, "k").is_none());
}

#[tokio::test]
async fn a_dead_event_opens_an_issue() {
    let h = Harness::start(Family::Invoice).await;
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "down")
            .on_path(INVOICE_PATH)
            .times(1),
    );
    assert_eq!(h.deliver("k", &invoice("inv-1")).await.label(), "queued");
    let first_parked = h.stored("k").await.unwrap().first_parked_at_ms.unwrap();
    let report = h.redrive_with(Duration::from_secs(3600), 2 * HOUR_MS).await;
    assert_eq!(report.dead, 1, "{report:?}");
    assert_eq!(h.rest_calls(), 2, "the queued write and the issue");
    let open = issue(&h, "k").expect("a dead event opens an issue");
    for (field, expected) in [
        ("Name", json!("invoice inv-1")),
        ("Status__c", json!("open")),
        ("Lago_Id__c", json!("inv-1")),
        ("Account__c", json!(ACCOUNT)),
        ("Error_Code__c", json!("SERVER_UNAVAILABLE")),
        ("Attempts__c", json!(1)),
    ] {
        assert_eq!(open[field], expected, "{field}: {open}");
    }
    let first = open["First_Failed_At__c"].as_str().expect("set");
    let expected = time::OffsetDateTime::from_unix_timestamp(first_parked / 1000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(first, expected, "the event's first failure");

    // Requeued, it syncs and the issue is resolved.
    assert!(h.app.store.requeue(&h.key("k"), epoch_ms()).await.unwrap());
    let report = h.redrive_with(Duration::from_secs(3600), 60_000).await;
    assert_eq!(report.synced, 1, "{report:?}");
    assert_eq!(issue(&h, "k").unwrap()["Status__c"], json!("resolved"));
}

#[tokio::test]
async fn an_issue_write_that_fails_changes_nothing() {
    let h = Harness::start(Family::Invoice).await;
    // Salesforce refuses everything, the issue too.
    h.standin.add_fault(
        Fault::error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", "no")
            .on_path("/sobjects/")
            .times(2),
    );
    let outcome = h.deliver("k", &invoice("inv-1")).await;
    assert_eq!(outcome.label(), "failed");
    assert_eq!(
        outcome.body()["error_code"],
        json!("FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
    assert_eq!(h.rest_calls(), 2);
    assert!(issue(&h, "k").is_none());
    assert_eq!(h.stored("k").await.unwrap().status.as_str(), "failed");
}
