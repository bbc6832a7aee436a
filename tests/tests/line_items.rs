//! Invoice line items (contract §6): the fees of a finalized invoice written with the
//! invoice in ONE Composite call per 1,000, all or none; events without fees leave the
//! line items alone (drafts too: `mapping::tests`); a queued invoice keeps its fees for the redrive, or, when
//! too many for the store, its redrive reads them from Lago.

use std::time::Duration;

use lago_sync::store::{DynamoDbStore, Status, Store};
use lago_sync::Family;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sync_testkit::events::{self, ACCOUNT};
use sync_testkit::inprocess::Harness;
use sync_testkit::moto::{unique_name, Moto};
use sync_testkit::standin::{Fault, LoggedRequest};

const INVOICE: &str = "Lago_Invoice__c";
const LINE_ITEM: &str = "Lago_Invoice_Line_Item__c";

fn invoice_body(webhook_type: &str, overrides: Value) -> Vec<u8> {
    events::body(webhook_type, "inv-1", Some(ACCOUNT), overrides)
}

/// An exact decimal, as Salesforce stores it (`json!(1.0)` is another JSON number).
fn dec(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn with_fees(n: usize) -> Value {
    json!({ "fees": events::fees("inv-1", n) })
}

/// The line items in the stand-in, by `Lago_Id__c`, each checked to hang off `invoice`.
fn line_items_of<S: Store>(h: &Harness<S>, invoice: &Value) -> Vec<Value> {
    let items = h.standin.records(LINE_ITEM);
    for item in &items {
        assert_eq!(item["Invoice__c"], invoice["Id"], "{item}");
    }
    items
}

fn composite_requests<S: Store>(h: &Harness<S>) -> Vec<LoggedRequest> {
    h.standin
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/composite"))
        .collect()
}

fn subrequest_urls(request: &LoggedRequest) -> Vec<String> {
    request.body["compositeRequest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["url"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_invoice_and_its_fees_are_written_in_one_call_and_kept_in_step() {
    let h = Harness::start(Family::Invoice).await;

    let created = invoice_body("invoice.created", with_fees(3));
    assert_eq!(h.deliver("k1", &created).await.label(), "synced");
    assert_eq!(
        h.rest_calls(),
        1,
        "the invoice and its 3 line items in one call"
    );
    let invoice = h.record(INVOICE, "inv-1");
    let items = line_items_of(&h, &invoice);
    assert_eq!(items.len(), 3);
    let first = h.record(LINE_ITEM, "inv-1-fee-00000");
    for (field, expected) in [
        ("Name", json!("Metric 0")),
        ("Item_Type__c", json!("charge")),
        ("Item_Code__c", json!("metric_0")),
        ("Units__c", dec("0.5")),
        ("Amount__c", dec("1.00")),
        ("Taxes_Amount__c", dec("0.20")),
        ("Total_Amount__c", dec("1.20")),
        ("Currency__c", json!("USD")),
        ("From_Date__c", json!("2025-02-01")),
        ("To_Date__c", json!("2025-02-28")),
    ] {
        assert_eq!(first[field], expected, "{field}: {first}");
    }
    let [call] = &composite_requests(&h)[..] else {
        panic!("one Composite call");
    };
    assert_eq!(call.body["allOrNone"], json!(true));
    assert_eq!(
        subrequest_urls(call),
        [
            "/services/data/v62.0/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1",
            "/services/data/v62.0/composite/sobjects/Lago_Invoice_Line_Item__c/Lago_Id__c",
        ]
    );
    assert_eq!(
        call.body["compositeRequest"][1]["body"]["records"][0]["Invoice__c"],
        json!("@{master.id}"),
        "the line items point at the invoice the same call writes"
    );

    assert_eq!(h.deliver("k1", &created).await.label(), "duplicate");
    assert_eq!(h.rest_calls(), 1, "a redelivery costs no call");

    // A later state with the same fees updates them in place; one call again.
    let mut fees = events::fees("inv-1", 3);
    fees[0]["amount_cents"] = json!(999);
    let paid = invoice_body(
        "invoice.payment_status_updated",
        json!({ "payment_status": "succeeded", "updated_at": "2025-03-02T09:00:00Z", "fees": fees }),
    );
    assert_eq!(h.deliver("k2", &paid).await.label(), "synced");
    assert_eq!(h.rest_calls(), 2);
    assert_eq!(
        line_items_of(&h, &invoice).len(),
        3,
        "updated, not duplicated"
    );
    assert_eq!(
        h.record(LINE_ITEM, "inv-1-fee-00000")["Amount__c"],
        json!(9.99)
    );

    // An event without fees writes the invoice alone and leaves its line items.
    let overdue = invoice_body(
        "invoice.payment_overdue",
        json!({ "payment_overdue": true, "updated_at": "2025-03-03T09:00:00Z", "fees": null }),
    );
    assert_eq!(h.deliver("k3", &overdue).await.label(), "synced");
    assert_eq!(h.rest_calls(), 3);
    assert_eq!(composite_requests(&h).len(), 2, "a plain PATCH");
    assert_eq!(
        h.record(INVOICE, "inv-1")["Payment_Overdue__c"],
        json!(true)
    );
    assert_eq!(line_items_of(&h, &invoice).len(), 3);
}

#[tokio::test]
async fn every_further_thousand_fees_takes_one_more_call() {
    let h = Harness::start(Family::Invoice).await;
    let body = invoice_body("invoice.created", with_fees(2_345));
    assert_eq!(h.deliver("k", &body).await.label(), "synced");

    assert_eq!(h.rest_calls(), 3, "1,000 + 1,000 + 345");
    let invoice = h.record(INVOICE, "inv-1");
    assert_eq!(line_items_of(&h, &invoice).len(), 2_345);
    let calls = composite_requests(&h);
    let collections: Vec<usize> = calls
        .iter()
        .map(|c| {
            subrequest_urls(c)
                .iter()
                .filter(|u| u.contains("/composite/sobjects/"))
                .count()
        })
        .collect();
    assert_eq!(collections, [5, 5, 2], "200 line items per collection");
    assert!(
        subrequest_urls(&calls[0])[0].contains("/sobjects/Lago_Invoice__c/"),
        "the first call writes the invoice"
    );
    for later in &calls[1..] {
        let records = &later.body["compositeRequest"][0]["body"]["records"];
        assert_eq!(
            records[0]["Invoice__c"], invoice["Id"],
            "later calls name the invoice by the id the first answered"
        );
    }
}

#[tokio::test]
async fn a_refused_line_item_leaves_nothing_written_and_fails_the_event_naming_it() {
    let h = Harness::start(Family::Invoice).await;
    h.standin.add_validation_rule(
        LINE_ITEM,
        "Item_Code__c",
        json!("metric_401"),
        "Retired metrics cannot be billed",
    );
    let body = invoice_body("invoice.created", with_fees(450));
    let outcome = h.deliver("k", &body).await;

    assert_eq!(outcome.status_code(), 422);
    let answer = outcome.body();
    assert_eq!(
        answer["error_code"],
        json!("FIELD_CUSTOM_VALIDATION_EXCEPTION")
    );
    assert_eq!(
        answer["message"],
        json!("Lago_Invoice_Line_Item__c inv-1-fee-00401: Retired metrics cannot be billed"),
        "{answer}"
    );
    assert!(
        h.standin.records(INVOICE).is_empty(),
        "the invoice rolled back with it"
    );
    assert!(h.standin.records(LINE_ITEM).is_empty());
    let stored = h.stored("k").await.expect("stored for the operator");
    assert_eq!(stored.status, Status::Failed);
}

#[tokio::test]
async fn a_transient_failure_queues_the_whole_invoice_and_the_redrive_writes_it() {
    let h = Harness::start(Family::Invoice).await;
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "Service unavailable")
            .on_path("/composite")
            .times(1),
    );
    let body = invoice_body("invoice.created", with_fees(5));
    assert_eq!(h.deliver("k", &body).await.label(), "queued");
    assert!(h.standin.records(LINE_ITEM).is_empty());

    let report = h.redrive(Duration::from_secs(3600)).await;
    assert_eq!(report.synced, 1, "{report:?}");
    let invoice = h.record(INVOICE, "inv-1");
    assert_eq!(line_items_of(&h, &invoice).len(), 5);
}

/// Fees whose names and codes do not compress, as many as it takes for even their mapped
/// fields to outgrow a stored event.
fn incompressible_fees(n: usize) -> Value {
    let hex = |i: usize, salt: &str| format!("{:x}", Sha256::digest(format!("{salt}{i}")));
    (0..n)
        .map(|i| {
            json!({
                "lago_id": format!("inv-1-fee-{i:05}"),
                "item": { "type": "charge", "code": hex(i, "code"), "name": hex(i, "name") },
                "amount_cents": 100, "amount_currency": "USD", "units": "1.0",
            })
        })
        .collect()
}

#[tokio::test]
async fn fees_too_many_for_the_store_are_read_from_lago_by_the_redrive() {
    let h = Harness::start(Family::Invoice).await;
    let fees = incompressible_fees(5_000);
    let body = invoice_body("invoice.created", json!({ "fees": fees }));
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "Service unavailable")
            .on_path("/composite")
            .times(1),
    );
    assert_eq!(h.deliver("k", &body).await.label(), "queued");
    let stored = h.stored("k").await.unwrap();
    let kept: Value = serde_json::from_slice(stored.body.as_deref().unwrap()).unwrap();
    assert_eq!(kept["invoice"]["fees"], Value::Null, "the fees did not fit");
    assert_eq!(kept["invoice"]["lago_sync_fees_omitted"], json!(true));

    // Lago's API has the invoice, with every fee.
    let mut current = events::object("invoice", "inv-1", Some(ACCOUNT), json!({ "fees": fees }));
    current["customer"] = events::customer_object(Some(ACCOUNT));
    h.lago.replace("invoices", current);
    let report = h.redrive(Duration::from_secs(3600)).await;
    assert_eq!(report.synced, 1, "{report:?}");
    let invoice = h.record(INVOICE, "inv-1");
    assert_eq!(line_items_of(&h, &invoice).len(), 5_000);
    let lago = h.lago.stats();
    assert_eq!(lago.route("GET /api/v1/invoices/inv-1"), 1, "{lago:?}");
}

#[tokio::test]
async fn a_queued_invoice_keeps_thousands_of_fees_in_dynamodb_for_its_redrive() {
    let moto = Moto::shared().await;
    let table = unique_name("line-items");
    moto.create_table(&table).await;
    let store = DynamoDbStore::new(moto.dynamodb().await, &table);
    let h = Harness::start_with(Family::Invoice, store).await;
    h.standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "Service unavailable")
            .on_path("/composite")
            .times(1),
    );
    let body = invoice_body("invoice.created", with_fees(3_000));
    assert!(body.len() > 2_000_000, "{} bytes", body.len());
    assert_eq!(h.deliver("k", &body).await.label(), "queued");
    let stored = h.stored("k").await.unwrap();
    let kept: Value = serde_json::from_slice(stored.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        kept["invoice"]["fees"].as_array().map(Vec::len),
        Some(3_000)
    );

    let report = h.redrive(Duration::from_secs(3600)).await;
    assert_eq!(report.synced, 1, "{report:?}");
    let invoice = h.record(INVOICE, "inv-1");
    assert_eq!(line_items_of(&h, &invoice).len(), 3_000);
}
