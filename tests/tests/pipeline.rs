//! The pipeline in-process, with the Salesforce stand-in and the in-memory store: every
//! answer of contract §3 that needs no AWS emulator, Salesforce errors of every kind, and
//! concurrent deliveries of one key (which the emulator cannot model).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lago_sync::pipeline::Outcome;
use lago_sync::redrive::run_at;
use lago_sync::store::{EventQueue, Status};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, ACCOUNT, HMAC_KEY};
use sync_testkit::inprocess::{delivery, epoch_ms, Harness};
use sync_testkit::lago::sign;
use sync_testkit::standin::Fault;

async fn harness(family: Family) -> Harness {
    Harness::start(family).await
}

#[tokio::test]
async fn each_family_writes_one_record_with_one_call() {
    let cases = [
        (
            Family::Subscription,
            "subscription.started",
            "Lago_Subscription__c",
        ),
        (Family::Invoice, "invoice.created", "Lago_Invoice__c"),
        (
            Family::CreditNote,
            "credit_note.created",
            "Lago_Credit_Note__c",
        ),
    ];
    for (family, webhook_type, object) in cases {
        let h = harness(family).await;
        let outcome = h
            .deliver(
                "k1",
                &events::body(webhook_type, "obj-1", Some(ACCOUNT), json!({})),
            )
            .await;
        assert_eq!(outcome.status_code(), 200, "{webhook_type}: {outcome:?}");
        assert_eq!(outcome.label(), "synced");
        let record = h.record(object, "obj-1");
        assert_eq!(record["Account__c"], json!(ACCOUNT), "{webhook_type}");
        // A credit note whose invoice is not in Salesforce costs a second call (see below).
        let calls_per_event = if family == Family::CreditNote { 2 } else { 1 };
        assert_eq!(h.rest_calls(), calls_per_event, "{webhook_type}");
        // Warm token: the next event costs no token request.
        let outcome = h
            .deliver(
                "k2",
                &events::body(webhook_type, "obj-2", Some(ACCOUNT), json!({})),
            )
            .await;
        assert_eq!(outcome.label(), "synced", "{outcome:?}");
        assert_eq!(h.rest_calls(), 2 * calls_per_event, "{webhook_type}");
        assert_eq!(h.standin.stats().token_requests, 1);
    }
}

#[tokio::test]
async fn a_customer_updates_its_existing_account() {
    let h = harness(Family::Customer).await;
    let outcome = h
        .deliver(
            "k",
            &events::body("customer.updated", "cus-1", Some(ACCOUNT), json!({})),
        )
        .await;
    assert_eq!(
        outcome,
        Outcome::Synced {
            created: None,
            invoice_linked: None
        }
    );
    let accounts = h.standin.records("Account");
    let account = accounts
        .iter()
        .find(|a| a["Id"] == json!(ACCOUNT))
        .expect("the seeded account");
    assert_eq!(account["Lago_Customer_Id__c"], json!("cus-1"));
    assert_eq!(account["Lago_Customer_Name__c"], json!("Acme Corp"));
    assert_eq!(
        account["Lago_Customer_Updated_At__c"],
        json!("2025-03-01T10:15:02Z")
    );
    assert_eq!(
        h.standin.records("Account").len(),
        1,
        "Accounts are never created"
    );
}

#[tokio::test]
async fn amounts_and_fields_land_as_mapped() {
    let h = harness(Family::Invoice).await;
    let body = events::body(
        "invoice.created",
        "inv-9",
        Some(ACCOUNT),
        json!({"total_amount_cents": 1005, "currency": "KWD"}),
    );
    assert_eq!(h.deliver("k", &body).await.label(), "synced");
    let record = h.record("Lago_Invoice__c", "inv-9");
    assert_eq!(record["Total_Amount__c"].to_string(), "1.005");
    assert_eq!(record["Name"], json!("ACME-inv-9"));
    assert_eq!(record["Status__c"], json!("finalized"));
    assert_eq!(record["Issuing_Date__c"], json!("2025-03-01"));
}

#[tokio::test]
async fn duplicates_conflicts_and_replays_never_call_salesforce() {
    let h = harness(Family::Invoice).await;
    let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    assert_eq!(h.deliver("same", &body).await.label(), "synced");
    let calls = h.rest_calls();
    assert_eq!(h.deliver("same", &body).await, Outcome::Duplicate);
    // A key is remembered by the record it wrote: the same key with another state of
    // that record is a conflict.
    let other = events::body(
        "invoice.created",
        "inv-1",
        Some(ACCOUNT),
        json!({"total_amount_cents": 1}),
    );
    let conflict = h.deliver("same", &other).await;
    assert_eq!(
        (conflict.status_code(), conflict.label()),
        (422, "conflict")
    );
    assert_eq!(h.rest_calls(), calls);
}

#[tokio::test]
async fn a_permanent_refusal_is_stored_and_replayed_as_failed() {
    let h = harness(Family::Invoice).await;
    let unknown_account = "001000000000099AAA";
    let body = events::body("invoice.created", "inv-1", Some(unknown_account), json!({}));
    let first = h.deliver("k", &body).await;
    assert_eq!(
        (first.status_code(), first.label()),
        (422, "failed"),
        "{first:?}"
    );
    assert_eq!(
        first.body()["error_code"],
        json!("INVALID_CROSS_REFERENCE_KEY")
    );
    let calls = h.rest_calls();
    let again = h.deliver("k", &body).await;
    assert_eq!(again, first, "replayed from the stored outcome");
    assert_eq!(h.rest_calls(), calls);
    let stored = h.stored("k").await.unwrap();
    assert_eq!((stored.status, stored.attempts), (Status::Failed, 1));
    assert_eq!(
        stored.body.as_deref(),
        Some(body.as_slice()),
        "kept for inspection and redrive"
    );
}

#[tokio::test]
async fn salesforce_errors_are_queued_or_failed_by_kind() {
    let cases: Vec<(&str, Fault, u16, &str)> = vec![
        (
            "500",
            Fault::error(500, "UNKNOWN_EXCEPTION", "An unexpected error occurred"),
            202,
            "UNKNOWN_EXCEPTION",
        ),
        (
            "502 html",
            Fault::html(502, "<html><body>Bad Gateway</body></html>"),
            202,
            "HTTP_502",
        ),
        (
            "503",
            Fault::error(503, "SERVER_UNAVAILABLE", "Server unavailable"),
            202,
            "SERVER_UNAVAILABLE",
        ),
        (
            "lock",
            Fault::error(
                400,
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record",
            ),
            202,
            "UNABLE_TO_LOCK_ROW",
        ),
        (
            "limit",
            Fault::error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            ),
            202,
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (
            "race",
            Fault::error(400, "DUPLICATE_VALUE", "duplicate value found: Lago_Id__c"),
            202,
            "DUPLICATE_VALUE",
        ),
        ("connection closed", Fault::close(), 202, "CONNECTION"),
        (
            "field",
            Fault::error(
                400,
                "INVALID_FIELD",
                "No such column 'Status__c' on sobject of type Lago_Invoice__c",
            ),
            422,
            "INVALID_FIELD",
        ),
        (
            "validation",
            Fault::error(
                400,
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Amount must be positive",
            ),
            422,
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        ),
        (
            "access",
            Fault::error(
                403,
                "INSUFFICIENT_ACCESS_OR_READONLY",
                "insufficient access rights",
            ),
            422,
            "INSUFFICIENT_ACCESS_OR_READONLY",
        ),
    ];
    for (name, fault, status, code) in cases {
        let h = harness(Family::Invoice).await;
        h.standin.add_fault(fault.on_path("/sobjects/"));
        let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
        let outcome = h.deliver("k", &body).await;
        assert_eq!(
            (outcome.status_code(), outcome.body()["error_code"].clone()),
            (status, json!(code)),
            "{name}: {outcome:?}"
        );
        let stored = h.stored("k").await.unwrap();
        assert_eq!(
            stored.body.as_deref(),
            Some(body.as_slice()),
            "{name}: the event is kept"
        );
        assert!(
            h.standin
                .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-1")
                .is_none(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_queued_event_delivered_again_is_retried_and_synced() {
    let h = harness(Family::Subscription).await;
    h.standin
        .add_fault(Fault::error(503, "SERVER_UNAVAILABLE", "down").on_path("/sobjects/"));
    let body = events::body("subscription.started", "sub-1", Some(ACCOUNT), json!({}));
    assert_eq!(h.deliver("k", &body).await.label(), "queued");
    assert_eq!(h.deliver("k", &body).await.label(), "synced");
    assert_eq!(
        h.record("Lago_Subscription__c", "sub-1")["Status__c"],
        json!("active")
    );
    let stored = h.stored("k").await.unwrap();
    assert_eq!((stored.status, stored.body), (Status::Completed, None));
}

#[tokio::test]
async fn a_slow_salesforce_times_out_before_the_deadline_and_is_queued() {
    let h = harness(Family::Invoice).await;
    h.standin
        .add_fault(Fault::delay(Duration::from_secs(10)).on_path("/sobjects/"));
    let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    let started = Instant::now();
    let outcome = h
        .deliver_with("k", &body, &sign(HMAC_KEY, &body), Duration::from_secs(4))
        .await;
    assert_eq!(
        (outcome.label(), outcome.body()["error_code"].clone()),
        ("queued", json!("TIMEOUT")),
        "{outcome:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered within the invocation's time"
    );
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_replayed() {
    let h = harness(Family::Invoice).await;
    let first = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    assert_eq!(h.deliver("k1", &first).await.label(), "synced");
    h.standin.expire_tokens();
    let second = events::body("invoice.created", "inv-2", Some(ACCOUNT), json!({}));
    assert_eq!(h.deliver("k2", &second).await.label(), "synced");
    let stats = h.standin.stats();
    assert_eq!(
        (stats.token_requests, stats.rest_requests),
        (2, 3),
        "one 401, one renewal, one replay"
    );
}

#[tokio::test]
async fn a_credit_note_links_its_invoice_only_when_salesforce_has_it() {
    let h = harness(Family::CreditNote).await;
    let orphan = events::body(
        "credit_note.created",
        "cn-1",
        Some(ACCOUNT),
        json!({"lago_invoice_id": "inv-missing"}),
    );
    let outcome = h.deliver("k1", &orphan).await;
    assert_eq!(
        outcome,
        Outcome::Synced {
            created: Some(true),
            invoice_linked: Some(false)
        }
    );
    let record = h.record("Lago_Credit_Note__c", "cn-1");
    assert_eq!(record["Lago_Invoice_Id__c"], json!("inv-missing"));
    assert!(
        record.get("Invoice__c").is_none_or(Value::is_null),
        "{record}"
    );

    // An invoice written by the invoice function becomes linkable.
    let invoice = events::body("invoice.created", "inv-7", Some(ACCOUNT), json!({}));
    assert_eq!(
        h.deliver_to(Family::Invoice, "ki", &invoice).await.label(),
        "synced"
    );
    let linked = events::body(
        "credit_note.created",
        "cn-2",
        Some(ACCOUNT),
        json!({"lago_invoice_id": "inv-7"}),
    );
    let before = h.rest_calls();
    assert_eq!(
        h.deliver("k2", &linked).await,
        Outcome::Synced {
            created: Some(true),
            invoice_linked: Some(true)
        }
    );
    assert_eq!(h.rest_calls() - before, 1);
    let invoice_id = h.record("Lago_Invoice__c", "inv-7")["Id"].clone();
    assert_eq!(
        h.record("Lago_Credit_Note__c", "cn-2")["Invoice__c"],
        invoice_id
    );
}

#[tokio::test]
async fn an_older_state_never_overwrites_a_newer_one() {
    let h = harness(Family::Invoice).await;
    let voided = events::body(
        "invoice.voided",
        "inv-1",
        Some(ACCOUNT),
        json!({"status": "voided", "updated_at": "2025-03-09T00:00:00Z", "file_url": "https://lago.test/inv-1.pdf"}),
    );
    let created = events::body(
        "invoice.created",
        "inv-1",
        Some(ACCOUNT),
        json!({"updated_at": "2025-03-01T10:00:00Z"}),
    );
    assert_eq!(h.deliver("k-voided", &voided).await.label(), "synced");
    let calls = h.rest_calls();
    let late = h.deliver("k-created", &created).await;
    assert_eq!(late.label(), "skipped", "{late:?}");
    assert_eq!(h.rest_calls(), calls);
    let record = h.record("Lago_Invoice__c", "inv-1");
    assert_eq!(
        (record["Status__c"].clone(), record["File_Url__c"].clone()),
        (json!("voided"), json!("https://lago.test/inv-1.pdf"))
    );
    // Never written, so never remembered: sent again, it is skipped again, as cheaply.
    let again = h.deliver("k-created", &created).await;
    assert_eq!(again.label(), "skipped", "{again:?}");
    assert_eq!(h.rest_calls(), calls);

    let subs = harness(Family::Subscription).await;
    let terminated = events::body(
        "subscription.terminated",
        "sub-1",
        Some(ACCOUNT),
        json!({"status": "terminated", "terminated_at": "2025-04-01T00:00:00Z"}),
    );
    let started = events::body("subscription.started", "sub-1", Some(ACCOUNT), json!({}));
    assert_eq!(subs.deliver("t", &terminated).await.label(), "synced");
    assert_eq!(subs.deliver("s", &started).await.label(), "skipped");
    let record = subs.record("Lago_Subscription__c", "sub-1");
    assert_eq!(
        (
            record["Status__c"].clone(),
            record["Termination_Date__c"].clone()
        ),
        (json!("terminated"), json!("2025-04-01"))
    );
}

#[tokio::test]
async fn nulls_never_clear_what_an_earlier_event_wrote() {
    let h = harness(Family::Invoice).await;
    let generated = events::body(
        "invoice.generated",
        "inv-1",
        Some(ACCOUNT),
        json!({"file_url": "https://lago.test/a.pdf"}),
    );
    let paid = events::body(
        "invoice.payment_status_updated",
        "inv-1",
        Some(ACCOUNT),
        json!({"payment_status": "succeeded", "file_url": null, "updated_at": "2025-03-02T00:00:00Z"}),
    );
    assert_eq!(h.deliver("g", &generated).await.label(), "synced");
    assert_eq!(h.deliver("p", &paid).await.label(), "synced");
    let record = h.record("Lago_Invoice__c", "inv-1");
    assert_eq!(record["File_Url__c"], json!("https://lago.test/a.pdf"));
    assert_eq!(record["Payment_Status__c"], json!("succeeded"));
}

#[tokio::test]
async fn requests_that_write_nothing_get_their_answers() {
    let h = harness(Family::Customer).await;
    let body = events::body("customer.updated", "cus-1", Some(ACCOUNT), json!({}));
    let deliver_signed = |sig: String, algo: Option<&'static str>, body: Vec<u8>| {
        let h = &h;
        async move {
            let delivery = lago_sync::pipeline::Delivery {
                algorithm: algo,
                ..delivery("k", &body, &sig, Duration::from_secs(20))
            };
            h.app.handle(h.family, &delivery).await
        }
    };
    let cases: Vec<(&str, Outcome, u16, &str)> = vec![
        (
            "wrong key",
            deliver_signed(sign("another-key", &body), Some("hmac"), body.clone()).await,
            401,
            "unauthorized",
        ),
        (
            "jwt",
            deliver_signed(sign(HMAC_KEY, &body), Some("jwt"), body.clone()).await,
            401,
            "unauthorized",
        ),
        (
            "not JSON",
            h.deliver("k", b"not json").await,
            400,
            "invalid",
        ),
        (
            "not an envelope",
            h.deliver("k", br#"{"hello":"world"}"#).await,
            400,
            "invalid",
        ),
        (
            "foreign family",
            h.deliver(
                "k",
                &events::body("invoice.created", "i", Some(ACCOUNT), json!({})),
            )
            .await,
            200,
            "ignored",
        ),
        (
            "unsynced type",
            h.deliver(
                "k",
                &events::body("customer.vies_check", "c", Some(ACCOUNT), json!({})),
            )
            .await,
            200,
            "ignored",
        ),
        (
            "no account",
            h.deliver("k", &events::body("customer.updated", "c", None, json!({})))
                .await,
            200,
            "skipped",
        ),
        (
            "bad account id",
            h.deliver(
                "k",
                &events::body("customer.updated", "c", Some("acme"), json!({})),
            )
            .await,
            200,
            "skipped",
        ),
    ];
    for (name, outcome, status, label) in cases {
        assert_eq!(
            (outcome.status_code(), outcome.label()),
            (status, label),
            "{name}: {outcome:?}"
        );
    }
    assert_eq!(h.rest_calls(), 0);
    assert!(
        h.stored("k").await.is_none(),
        "nothing written to the table"
    );
}

#[tokio::test]
async fn a_signed_event_that_cannot_be_mapped_is_stored_failed_and_redrivable() {
    let h = harness(Family::Customer).await;
    let wrong_type = br#"{"webhook_type":"customer.updated","object_type":"customer","customer":{"lago_id":42}}"#;
    let outcome = h.deliver("k", wrong_type).await;
    assert_eq!(
        (outcome.status_code(), outcome.body()["error_code"].clone()),
        (422, json!("UNMAPPABLE")),
        "{outcome:?}"
    );
    let stored = h.stored("k").await.expect("kept for a redrive");
    assert_eq!(
        (stored.status, stored.body.as_deref()),
        (Status::Failed, Some(&wrong_type[..]))
    );
    // Lago's retry is answered from what is stored.
    assert_eq!(h.deliver("k", wrong_type).await.label(), "failed");
    // An operator's redrive retries it (here it still cannot be mapped: failed again).
    assert!(h.app.store.requeue(&h.key("k"), epoch_ms()).await.unwrap());
    let report = run_at(
        &h.app,
        Duration::from_secs(3600),
        Instant::now() + Duration::from_secs(30),
        epoch_ms,
    )
    .await
    .unwrap();
    assert_eq!(report.failed, 1, "{report:?}");
    assert_eq!(h.stored("k").await.unwrap().attempts, 2);
    assert_eq!(
        h.rest_calls(),
        2,
        "only its sync issue: opened, then updated by the redrive's failure"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_key_write_once() {
    let h = Arc::new(harness(Family::Invoice).await);
    let body = Arc::new(events::body(
        "invoice.created",
        "inv-1",
        Some(ACCOUNT),
        json!({}),
    ));
    // Warm the token so that every racer goes straight for the claim.
    assert_eq!(
        h.deliver(
            "warm",
            &events::body("invoice.created", "inv-0", Some(ACCOUNT), json!({}))
        )
        .await
        .label(),
        "synced"
    );
    let before = h.rest_calls();
    let racers: Vec<_> = (0..32)
        .map(|_| {
            let (h, body) = (h.clone(), body.clone());
            tokio::spawn(async move { h.deliver("same-key", &body).await })
        })
        .collect();
    let mut labels = Vec::new();
    for racer in racers {
        labels.push(racer.await.unwrap().label());
    }
    assert_eq!(
        labels.iter().filter(|l| **l == "synced").count(),
        1,
        "{labels:?}"
    );
    assert!(
        labels
            .iter()
            .all(|l| ["synced", "duplicate", "in_progress"].contains(l)),
        "{labels:?}"
    );
    assert_eq!(h.rest_calls() - before, 1, "exactly one Salesforce write");
}

#[tokio::test]
async fn a_delivery_being_processed_answers_409_until_its_lease_lapses() {
    use lago_sync::store::{RecordGuard, Take};
    use sha2::{Digest, Sha256};

    let h = harness(Family::Invoice).await;
    let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    let hash = hex_sha256(&Sha256::digest(&body));
    let (busy, crashed) = (h.key("busy"), h.key("crashed"));
    let now = sync_testkit::inprocess::epoch_ms();
    let other_invocation = |delivery, record, lease_until_ms| Take {
        record,
        delivery,
        body_sha256: &hash,
        version: None,
        family: "invoice",
        lago_ref: "inv-1",
        now_ms: now,
        lease_until_ms,
        retry: false,
    };
    h.app
        .store
        .take(&other_invocation(
            &busy,
            "Lago_Invoice__c/inv-1",
            now + 60_000,
        ))
        .await
        .unwrap();
    let outcome = h.deliver("busy", &body).await;
    assert_eq!(
        (outcome.status_code(), outcome.label()),
        (409, "in_progress")
    );
    assert_eq!(h.rest_calls(), 0);

    // An invocation that died holding the record does not block Lago's retry of it.
    let other = events::body("invoice.created", "inv-2", Some(ACCOUNT), json!({}));
    let hash = hex_sha256(&Sha256::digest(&other));
    let died = Take {
        body_sha256: &hash,
        ..other_invocation(&crashed, "Lago_Invoice__c/inv-2", now - 1)
    };
    h.app.store.take(&died).await.unwrap();
    assert_eq!(h.deliver("crashed", &other).await.label(), "synced");
}

fn hex_sha256(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
