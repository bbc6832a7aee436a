//! The backfill ("Start Sync Data") in-process against both stand-ins: its cost in calls,
//! resumption after an interruption, records refused inside a collection, and the
//! ordering guard shared with the webhooks.

use std::collections::HashMap;
use std::time::Duration;

use lago_sync::backfill::{Options, SKIP_DRAFT, SKIP_NEWER};
use lago_sync::pipeline::Outcome;
use lago_sync::store::{CustomerLinks, DynamoDbStore, EventQueue, MemoryStore, Status, Store};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, HMAC_KEY};
use sync_testkit::inprocess::delivery;
use sync_testkit::lago::sign;
use sync_testkit::lago_standin::{account_id, Dataset, Rig, FEES_PER_INVOICE};
use sync_testkit::moto::{unique_name, Moto};
use sync_testkit::standin::Fault;

const OBJECTS: [&str; 5] = [
    "Account",
    "Lago_Subscription__c",
    "Lago_Invoice__c",
    "Lago_Credit_Note__c",
    "Lago_Invoice_Line_Item__c",
];

fn calls_by_object(rig: &Rig<impl Store>) -> Vec<u64> {
    let by_object = rig.salesforce.stats().rest_requests_by_object;
    OBJECTS
        .iter()
        .map(|o| by_object.get(*o).copied().unwrap_or(0))
        .collect()
}

fn batches(n: usize) -> u64 {
    n.div_ceil(200) as u64
}

/// Lago ids sent to Salesforce for `object`, over every request, with repetitions.
fn sent_ids(rig: &Rig<impl Store>, object: &str) -> Vec<String> {
    rig.salesforce
        .requests()
        .iter()
        .filter(|r| {
            r.path
                .ends_with(&format!("/composite/sobjects/{object}/Lago_Id__c"))
        })
        .flat_map(|r| r.body["records"].as_array().cloned().unwrap_or_default())
        .filter_map(|record| record["Lago_Id__c"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn thousands_of_records_cost_one_call_per_200() {
    let data = Dataset::generate(60, 700, 3000, 450);
    let invoices = data.finalized_invoices();
    let rig = Rig::start(data.clone(), MemoryStore::new(), None).await;

    let summary = rig.backfill(&Options::default()).await;

    assert!(summary.succeeded(), "{summary:#?}");
    let written: Vec<u64> = summary.objects.iter().map(|o| o.written).collect();
    assert_eq!(written, [60, 700, invoices as u64, 450]);
    assert_eq!(
        summary.objects[2].skipped.get(SKIP_DRAFT),
        None,
        "drafts are filtered by Lago"
    );
    assert_eq!(summary.objects[3].links_dropped, 0);
    // The line items of each batch of 200 invoices (400) in one Composite call.
    assert_eq!(
        summary.objects[2].line_items_written,
        (invoices * FEES_PER_INVOICE) as u64
    );
    assert_eq!(
        calls_by_object(&rig),
        [
            1,
            batches(700),
            batches(invoices),
            batches(450),
            batches(invoices)
        ],
        "Salesforce calls per object"
    );
    assert_eq!(rig.salesforce.stats().token_requests, 1);
    assert_eq!(summary.salesforce_token_requests, 1);
    // One Lago call per page of 1,000: 1 + 1 + 3 + 1, the customers read once for both
    // the Accounts and the subscriptions' join; and one per invoice for its fees, which
    // Lago's list leaves out.
    let lago = rig.lago.stats();
    assert_eq!(lago.requests, 6 + invoices as u64, "{lago:?}");
    assert_eq!(summary.lago_calls, 6 + invoices as u64);
    assert_eq!(
        rig.salesforce.records("Lago_Invoice_Line_Item__c").len(),
        invoices * FEES_PER_INVOICE
    );
    let line_item = rig
        .salesforce
        .record_by(
            "Lago_Invoice_Line_Item__c",
            "Lago_Id__c",
            "inv-000000-fee-00001",
        )
        .expect("line item written");

    assert_eq!(rig.salesforce.records("Lago_Subscription__c").len(), 700);
    assert_eq!(rig.salesforce.records("Lago_Invoice__c").len(), invoices);
    let linked = rig
        .salesforce
        .record_by("Lago_Credit_Note__c", "Lago_Id__c", "cn-000000")
        .expect("credit note written");
    let invoice = rig
        .salesforce
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-000000")
        .expect("invoice written");
    assert_eq!(linked["Invoice__c"], invoice["Id"]);
    assert_eq!(line_item["Invoice__c"], invoice["Id"]);
    let account = rig
        .salesforce
        .records("Account")
        .into_iter()
        .find(|a| a["Lago_External_Customer_Id__c"] == "ext-000007")
        .expect("Account updated");
    assert_eq!(account["Lago_Customer_Id__c"], "cus-000007");
    let terminated = rig
        .salesforce
        .record_by("Lago_Subscription__c", "Lago_Id__c", "sub-000002")
        .unwrap();
    assert_eq!(
        terminated["Status__c"], "terminated",
        "all statuses, not only active"
    );

    // Done: a second run reads and writes nothing.
    let again = rig.backfill(&Options::default()).await;
    assert!(again.finished && again.objects.iter().all(|o| o.already_done && o.read == 0));
    assert_eq!((again.salesforce_calls, again.lago_calls), (0, 0));
}

#[tokio::test]
async fn credit_notes_whose_invoice_is_missing_are_written_without_the_link() {
    // 300 credit notes of invoices Lago does not list (none at all here).
    let rig = Rig::start(Dataset::generate(2, 0, 0, 300), MemoryStore::new(), None).await;
    let summary = rig.backfill(&Options::default()).await;
    let notes = &summary.objects[3];
    assert!(summary.succeeded(), "{summary:#?}");
    assert_eq!((notes.written, notes.links_dropped), (300, 300));
    // Each batch once with the links, and its refused records once more without.
    assert_eq!(calls_by_object(&rig)[3], 2 * batches(300));
    let note = rig
        .salesforce
        .record_by("Lago_Credit_Note__c", "Lago_Id__c", "cn-000000")
        .unwrap();
    assert_eq!(
        (
            note["Invoice__c"].clone(),
            note["Lago_Invoice_Id__c"].clone()
        ),
        (Value::Null, json!("inv-000000"))
    );

    // The invoice's first webhook links the credit notes that wait for it (§7.6).
    let waiting = rig
        .salesforce
        .records("Lago_Credit_Note__c")
        .iter()
        .filter(|n| n["Lago_Invoice_Id__c"] == json!("inv-000000"))
        .count();
    let body = events::body(
        "invoice.created",
        "inv-000000",
        Some(&account_id(0)),
        json!({}),
    );
    let signature = sign(HMAC_KEY, &body);
    let outcome = rig
        .app
        .handle(
            Family::Invoice,
            &delivery("live-invoice", &body, &signature, Duration::from_secs(20)),
        )
        .await;
    assert!(matches!(outcome, Outcome::Synced { .. }), "{outcome:?}");
    let invoice_id = rig
        .salesforce
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-000000")
        .unwrap()["Id"]
        .clone();
    let linked = rig
        .salesforce
        .records("Lago_Credit_Note__c")
        .into_iter()
        .filter(|n| n["Invoice__c"] == invoice_id)
        .count();
    assert!(waiting > 0);
    assert_eq!(linked, waiting);
}

#[tokio::test]
async fn the_backfill_writes_what_the_webhooks_write() {
    let data = Dataset::generate(1, 1, 1, 1);
    let rig = Rig::start(data.clone(), MemoryStore::new(), None).await;
    rig.backfill(&Options::default()).await;
    let webhook = Rig::start(Dataset::default(), MemoryStore::new(), Some(1)).await;
    let mut invoice = data.invoices[0].clone();
    invoice["status"] = json!("finalized");
    let body = serde_json::to_vec(&json!({
        "webhook_type": "invoice.created", "object_type": "invoice", "invoice": invoice,
    }))
    .unwrap();
    let signature = sign(HMAC_KEY, &body);
    let outcome = webhook
        .app
        .handle(
            Family::Invoice,
            &delivery("k1", &body, &signature, Duration::from_secs(20)),
        )
        .await;
    assert_eq!(outcome.label(), "synced");
    let strip = |mut r: Value| {
        r.as_object_mut().unwrap().remove("Id");
        r
    };
    let from_backfill = rig
        .salesforce
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-000000")
        .unwrap();
    let from_webhook = webhook
        .salesforce
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-000000")
        .unwrap();
    assert_eq!(strip(from_backfill), strip(from_webhook));
    let line_items = |rig: &Rig<MemoryStore>| {
        let mut items: Vec<Value> = rig
            .salesforce
            .records("Lago_Invoice_Line_Item__c")
            .into_iter()
            .map(|item| {
                let mut item = strip(item);
                item.as_object_mut().unwrap().remove("Invoice__c");
                item
            })
            .collect();
        items.sort_by_key(|i| i["Lago_Id__c"].to_string());
        items
    };
    assert_eq!(line_items(&rig).len(), FEES_PER_INVOICE);
    assert_eq!(line_items(&rig), line_items(&webhook));
}

#[tokio::test]
async fn an_invoice_whose_line_item_is_refused_is_stored_whole_for_redrive() {
    let data = Dataset::generate(1, 0, 3, 0);
    let rig = Rig::start(data, MemoryStore::new(), None).await;
    // Every invoice's second fee (1.5 units) is refused by a validation rule of the org.
    rig.salesforce.add_validation_rule(
        "Lago_Invoice_Line_Item__c",
        "Units__c",
        json!(1.5),
        "Half units are not allowed",
    );
    let summary = rig.backfill(&Options::default()).await;

    let invoices = &summary.objects[2];
    assert_eq!((invoices.written, invoices.failed), (0, 3), "{summary:#?}");
    let failure = &invoices.failures[0];
    assert_eq!(failure.error_code, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    assert!(
        failure
            .message
            .starts_with("Lago_Invoice_Line_Item__c inv-00000"),
        "{failure:?}"
    );
    assert_eq!(invoices.line_items_written, 3, "the first fee of each");
    let key = failure.stored_as.clone().expect("stored");
    let stored = rig.app.store.load(&key).await.unwrap().unwrap();
    let body: Value = serde_json::from_slice(stored.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        body["invoice"]["fees"].as_array().map(Vec::len),
        Some(FEES_PER_INVOICE),
        "stored with its fees, so the redrive writes them all"
    );
    assert_eq!(
        calls_by_object(&rig)[4],
        1,
        "the 6 line items of the 3 invoices in one call"
    );
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_without_writing_a_record_twice() {
    let data = Dataset::generate(10, 0, 3000, 0);
    let invoices = data.finalized_invoices();
    let rig = Rig::start(data, MemoryStore::new(), None).await;
    // Salesforce fails a whole request once about half-way through the invoices.
    let progress = |object: &lago_sync::backfill::ObjectSummary, _: Option<u64>| {
        if object.object == "invoice" && object.written == 1200 {
            rig.salesforce.add_fault(
                Fault::error(503, "SERVER_UNAVAILABLE", "Server unavailable")
                    .on_path("/composite/"),
            );
        }
    };
    let options = Options {
        per_page: 1000,
        progress: Some(&progress),
        ..Options::default()
    };
    let first = rig.backfill(&options).await;
    assert!(!first.finished && !first.succeeded(), "{first:#?}");
    assert!(
        first
            .stopped
            .as_deref()
            .unwrap()
            .contains("SERVER_UNAVAILABLE"),
        "{first:?}"
    );
    assert_eq!(first.objects[2].written, 1200);

    let second = rig.backfill(&Options::default()).await;
    assert!(second.succeeded(), "{second:#?}");
    assert!(second.objects[0].already_done && second.objects[1].already_done);
    assert_eq!(
        first.objects[2].written + second.objects[2].written,
        invoices as u64
    );
    assert_eq!(rig.salesforce.records("Lago_Invoice__c").len(), invoices);
    // Every invoice was sent once, except the 200 of the request that failed.
    let sent = sent_ids(&rig, "Lago_Invoice__c");
    let mut times: HashMap<&str, usize> = HashMap::new();
    for id in &sent {
        *times.entry(id).or_default() += 1;
    }
    assert_eq!(sent.len(), invoices + 200);
    assert_eq!(times.values().filter(|n| **n == 2).count(), 200);
    assert!(times.values().all(|n| *n <= 2));
}

#[tokio::test]
async fn a_run_stopped_by_its_deadline_is_resumed_by_the_next() {
    let data = Dataset::generate(5, 50, 400, 0);
    let rig = Rig::start(data.clone(), MemoryStore::new(), None).await;
    let stopped = rig
        .backfill(&Options {
            stop_at: Some(std::time::Instant::now()),
            ..Options::default()
        })
        .await;
    assert!(!stopped.finished && stopped.stopped.is_none());
    assert_eq!(rig.salesforce.stats().rest_requests, 0);
    let resumed = rig.backfill(&Options::default()).await;
    assert!(resumed.succeeded(), "{resumed:#?}");
    assert_eq!(
        rig.salesforce.records("Lago_Invoice__c").len(),
        data.finalized_invoices()
    );
}

#[tokio::test]
async fn records_refused_inside_a_collection_are_stored_for_redrive() {
    let moto = Moto::shared().await;
    let table = unique_name("backfill");
    moto.create_table(&table).await;
    let store = DynamoDbStore::new(moto.dynamodb().await, &table);
    // 3 of 20 customers name an Account that does not exist in Salesforce.
    let rig = Rig::start(Dataset::generate(20, 0, 0, 0), store, Some(17)).await;

    let summary = rig.backfill(&Options::default()).await;

    let accounts = &summary.objects[0];
    assert_eq!((accounts.written, accounts.failed), (17, 3), "{summary:#?}");
    assert!(!summary.succeeded() && summary.finished);
    assert_eq!(calls_by_object(&rig)[0], 1, "the batch was not aborted");
    let failure = &accounts.failures[0];
    assert_eq!(failure.error_code, "NOT_FOUND");
    let key = failure.stored_as.clone().expect("stored");
    assert!(key.starts_with("delivery#customer#backfill-cus-"), "{key}");
    let stored = rig.app.store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.webhook_type.as_str()),
        (Status::Failed, "customer.updated")
    );
    let body: Value = serde_json::from_slice(stored.body.as_deref().unwrap()).unwrap();
    assert_eq!(body["object_type"], "customer");
    assert_eq!(body["customer"]["lago_id"], json!(failure.lago_id));
    let parked = rig
        .app
        .store
        .parked(Status::Failed, None, 10)
        .await
        .unwrap();
    assert_eq!(parked.len(), 3);

    // The operator creates the Accounts and requeues: the redrive writes them like webhooks.
    for i in 17..20 {
        rig.salesforce.add_account(&account_id(i));
    }
    for event in &parked {
        let now = sync_testkit::inprocess::epoch_ms();
        assert!(rig.app.store.requeue(&event.key, now).await.unwrap());
    }
    let report = lago_sync::redrive::run_at(
        &rig.app,
        Duration::from_secs(3600),
        std::time::Instant::now() + Duration::from_secs(60),
        sync_testkit::inprocess::epoch_ms,
    )
    .await
    .unwrap();
    assert_eq!(report.synced, 3, "{report:?}");
    let updated = rig
        .salesforce
        .records("Account")
        .iter()
        .filter(|a| a.get("Lago_Customer_Id__c").is_some())
        .count();
    assert_eq!(updated, 20);
    // The checkpoints live in the same table: a re-run has nothing left to do.
    let again = rig.backfill(&Options::default()).await;
    assert!(again.objects.iter().all(|o| o.already_done));
}

#[tokio::test]
async fn a_newer_state_written_by_a_webhook_is_not_overwritten() {
    let data = Dataset::generate(1, 0, 3, 0);
    let rig = Rig::start(data.clone(), MemoryStore::new(), None).await;
    // The webhook of a later state arrives before the backfill reads the older one.
    let mut newer = data.invoices[1].clone();
    newer["payment_status"] = json!("succeeded");
    newer["updated_at"] = json!("2025-04-01T00:00:00Z");
    let body = serde_json::to_vec(&json!({
        "webhook_type": "invoice.payment_status_updated", "object_type": "invoice", "invoice": newer,
    }))
    .unwrap();
    let signature = sign(HMAC_KEY, &body);
    let outcome = rig
        .app
        .handle(
            Family::Invoice,
            &delivery("live-1", &body, &signature, Duration::from_secs(20)),
        )
        .await;
    assert!(matches!(outcome, Outcome::Synced { .. }), "{outcome:?}");

    let summary = rig.backfill(&Options::default()).await;

    let invoices = &summary.objects[2];
    assert_eq!(
        (invoices.written, invoices.skipped.get(SKIP_NEWER)),
        (2, Some(&1)),
        "{summary:#?}"
    );
    let record = rig
        .salesforce
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-000001")
        .unwrap();
    assert_eq!(record["Payment_Status__c"], "succeeded");
}

#[tokio::test]
async fn a_dry_run_reads_and_maps_but_writes_nothing() {
    let data = Dataset::generate(3, 10, 20, 5);
    let rig = Rig::start(data.clone(), MemoryStore::new(), None).await;
    let summary = rig
        .backfill(&Options {
            dry_run: true,
            ..Options::default()
        })
        .await;
    assert!(summary.succeeded() && summary.dry_run, "{summary:#?}");
    assert_eq!(summary.objects[2].written, data.finalized_invoices() as u64);
    assert_eq!(rig.salesforce.stats().rest_requests, 0);
    // No checkpoint either: the real run does everything.
    let real = rig.backfill(&Options::default()).await;
    assert_eq!(real.objects[1].written, 10);
}

#[tokio::test]
async fn one_customer_only_and_restart() {
    let data = Dataset::generate(4, 8, 8, 0);
    let rig = Rig::start(data, MemoryStore::new(), None).await;
    let one = Options {
        customer: Some("ext-000001".into()),
        ..Options::default()
    };
    let summary = rig.backfill(&one).await;
    let written: Vec<u64> = summary.objects.iter().map(|o| o.written).collect();
    assert_eq!(written, [1, 2, 2, 0], "{summary:#?}");
    let again = rig.backfill(&one).await;
    assert!(again.objects.iter().all(|o| o.already_done));
    let restarted = rig
        .backfill(&Options {
            restart: true,
            ..one
        })
        .await;
    assert_eq!(restarted.objects[1].written, 2);
}

#[tokio::test]
async fn customers_linked_through_the_integration_are_remembered_for_the_webhooks() {
    let data = Dataset::generate(2, 0, 0, 0);
    let rig = Rig::start(data.clone(), MemoryStore::new(), None).await;
    let mut linked = data.customers[0].clone();
    linked["external_salesforce_id"] = Value::Null;
    linked["integration_customers"] =
        json!([{ "type": "salesforce", "external_customer_id": account_id(0) }]);
    rig.lago.replace("customers", linked.clone());

    let summary = rig.backfill(&Options::default()).await;
    assert_eq!(summary.objects[0].written, 2, "{summary:#?}");
    let store = &rig.app.store;
    assert_eq!(
        store.linked_account("cus-000000").await.unwrap(),
        Some(account_id(0))
    );
    assert_eq!(
        store.linked_account("cus-000001").await.unwrap(),
        None,
        "linked directly: every webhook carries the id"
    );

    // An invoice webhook embeds the customer without integration_customers.
    let mut embedded = linked;
    embedded
        .as_object_mut()
        .unwrap()
        .remove("integration_customers");
    let invoice = events::object("invoice", "inv-live", None, json!({ "customer": embedded }));
    let body = serde_json::to_vec(&json!({
        "webhook_type": "invoice.created", "object_type": "invoice", "invoice": invoice,
    }))
    .unwrap();
    let reads = rig.lago.stats().count("GET", "customers");
    let signature = sign(HMAC_KEY, &body);
    let outcome = rig
        .app
        .handle(
            Family::Invoice,
            &delivery("live-2", &body, &signature, Duration::from_secs(20)),
        )
        .await;
    assert!(matches!(outcome, Outcome::Synced { .. }), "{outcome:?}");
    assert_eq!(rig.lago.stats().count("GET", "customers"), reads);
}
