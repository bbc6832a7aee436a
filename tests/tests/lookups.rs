//! What a payload does not tell, in-process against the Salesforce and Lago stand-ins:
//! customers linked only through Lago's Salesforce integration (contract §7.5),
//! subscription states the payload cannot order (§7.1), and credit notes written before
//! their invoice (§7.6).

use std::time::Duration;

use lago_sync::pipeline::Outcome;
use lago_sync::store::{CustomerLinks, Step};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, ACCOUNT};
use sync_testkit::inprocess::Harness;

/// The sample customer (`events::customer_object`), linked only through the integration.
const CUSTOMER: &str = "b7e3d1c6-0d1e-4f3a-9a53-8c6f2e1d0a11";

fn integration_link() -> Value {
    json!([{ "type": "salesforce", "external_customer_id": ACCOUNT, "sync_with_provider": true }])
}

/// A customer as Lago's API shows it, linked through the integration (or not at all).
fn lago_customer(linked: bool) -> Value {
    let mut customer = events::customer_object(None);
    customer["integration_customers"] = if linked {
        integration_link()
    } else {
        json!([])
    };
    customer
}

/// An invoice of that customer as Lago embeds it: without `integration_customers`.
fn unlinked_invoice(lago_id: &str) -> Vec<u8> {
    events::body("invoice.created", lago_id, None, json!({}))
}

/// The customer's `customer.updated`, linked through the integration only: written, and
/// its Account remembered.
async fn link_through_the_integration(h: &Harness) {
    let customer = events::body(
        "customer.updated",
        CUSTOMER,
        None,
        json!({ "integration_customers": integration_link() }),
    );
    let outcome = h.deliver_to(Family::Customer, "c1", &customer).await;
    assert_eq!(outcome.label(), "synced", "{outcome:?}");
}

fn lago_reads(h: &Harness, route: &str) -> u64 {
    h.lago.stats().count("GET", route)
}

#[tokio::test]
async fn a_customer_linked_through_the_integration_gets_every_event_written() {
    let h = Harness::start(Family::Invoice).await;
    link_through_the_integration(&h).await;
    assert_eq!(
        h.app.store.linked_account(CUSTOMER).await.unwrap(),
        Some(ACCOUNT.to_owned())
    );
    // Lago embeds the customer without integration_customers: the remembered link serves.
    assert_eq!(
        h.deliver("i1", &unlinked_invoice("inv-1")).await.label(),
        "synced"
    );
    assert_eq!(
        h.record("Lago_Invoice__c", "inv-1")["Account__c"],
        json!(ACCOUNT)
    );
    assert_eq!(lago_reads(&h, "customers"), 0, "nothing asked of Lago");
}

#[tokio::test]
async fn a_link_nobody_remembers_is_read_from_lago_once() {
    let h = Harness::start(Family::Invoice).await;
    h.lago.replace("customers", lago_customer(true));
    assert_eq!(
        h.deliver("i1", &unlinked_invoice("inv-1")).await.label(),
        "synced"
    );
    assert_eq!(
        h.deliver("i2", &unlinked_invoice("inv-2")).await.label(),
        "synced"
    );
    assert_eq!(lago_reads(&h, "customers"), 1, "then remembered");
    assert_eq!(
        h.record("Lago_Invoice__c", "inv-2")["Account__c"],
        json!(ACCOUNT)
    );
}

#[tokio::test]
async fn a_customer_linked_nowhere_is_skipped_after_asking_lago() {
    let h = Harness::start(Family::Invoice).await;
    h.lago.replace("customers", lago_customer(false));
    let outcome = h.deliver("i1", &unlinked_invoice("inv-1")).await;
    assert_eq!(outcome.label(), "skipped", "{outcome:?}");
    assert_eq!(lago_reads(&h, "customers"), 1);
    assert_eq!(h.rest_calls(), 0);
}

#[tokio::test]
async fn lago_down_queues_the_event_and_the_redrive_writes_it() {
    let h = Harness::start(Family::Invoice).await;
    h.lago.replace("customers", lago_customer(true));
    h.lago.fail_with(Some(503));
    let outcome = h.deliver("i1", &unlinked_invoice("inv-1")).await;
    assert_eq!(
        (outcome.status_code(), outcome.body()["error_code"].clone()),
        (202, json!("LAGO_API_UNAVAILABLE")),
        "{outcome:?}"
    );
    h.lago.fail_with(None);
    assert_eq!(h.redrive(Duration::from_secs(3600)).await.synced, 1);
    assert_eq!(
        h.record("Lago_Invoice__c", "inv-1")["Account__c"],
        json!(ACCOUNT)
    );
}

fn subscription(webhook_type: &str, name: &str) -> Vec<u8> {
    events::body(
        webhook_type,
        "sub-1",
        Some(ACCOUNT),
        json!({"status": "active", "name": name}),
    )
}

/// Lago's current state of `sub-1`, as its API answers (no customer embedded).
fn lago_subscription(name: &str) -> Value {
    let mut current = events::object(
        "subscription",
        "sub-1",
        Some(ACCOUNT),
        json!({"name": name}),
    );
    current.as_object_mut().unwrap().remove("customer");
    current["external_customer_id"] = json!("acme-usd");
    current
}

#[tokio::test]
async fn two_updates_of_one_status_delivered_in_reverse_end_in_lagos_current_state() {
    let h = Harness::start(Family::Subscription).await;
    h.lago.replace(
        "subscriptions",
        lago_subscription("Premium (ACME contract)"),
    );
    // Lago retried the first update (it got a 503) after the second went through.
    let renamed = subscription("subscription.updated", "Premium (ACME contract)");
    assert_eq!(h.deliver("second", &renamed).await.label(), "synced");
    assert_eq!(
        lago_reads(&h, "subscriptions"),
        0,
        "the first state orders itself"
    );
    let first = subscription("subscription.updated", "Premium");
    assert_eq!(h.deliver("first", &first).await.label(), "synced");
    assert_eq!(lago_reads(&h, "subscriptions"), 1);
    assert_eq!(
        h.record("Lago_Subscription__c", "sub-1")["Name"],
        json!("Premium (ACME contract)"),
        "the current state, not the late payload"
    );
}

#[tokio::test]
async fn a_status_that_orders_the_state_needs_no_read_and_lago_down_queues_the_rest() {
    let h = Harness::start(Family::Subscription).await;
    h.lago
        .replace("subscriptions", lago_subscription("Premium"));
    assert_eq!(
        h.deliver("started", &subscription("subscription.started", "Premium"))
            .await
            .label(),
        "synced"
    );
    let terminated = events::body(
        "subscription.terminated",
        "sub-1",
        Some(ACCOUNT),
        json!({"status": "terminated", "terminated_at": "2025-06-01T00:00:00Z"}),
    );
    assert_eq!(h.deliver("terminated", &terminated).await.label(), "synced");
    assert_eq!(lago_reads(&h, "subscriptions"), 0);

    let h = Harness::start(Family::Subscription).await;
    h.lago.replace(
        "subscriptions",
        lago_subscription("Premium (ACME contract)"),
    );
    let started = subscription("subscription.started", "Premium");
    assert_eq!(h.deliver("started", &started).await.label(), "synced");
    h.lago.fail_with(Some(503));
    let renamed = subscription("subscription.updated", "Premium (ACME contract)");
    assert_eq!(h.deliver("renamed", &renamed).await.label(), "queued");
    h.lago.fail_with(None);
    assert_eq!(h.redrive(Duration::from_secs(3600)).await.synced, 1);
    assert_eq!(
        h.record("Lago_Subscription__c", "sub-1")["Name"],
        json!("Premium (ACME contract)")
    );
}

fn credit_note(lago_id: &str, invoice: &str) -> Vec<u8> {
    events::body(
        "credit_note.created",
        lago_id,
        Some(ACCOUNT),
        json!({ "lago_invoice_id": invoice }),
    )
}

fn invoice(lago_id: &str) -> Vec<u8> {
    events::body("invoice.created", lago_id, Some(ACCOUNT), json!({}))
}

fn linked_invoice(h: &Harness, note: &str) -> Value {
    h.record("Lago_Credit_Note__c", note)["Invoice__c"].clone()
}

#[tokio::test]
async fn credit_notes_written_before_their_invoice_are_linked_when_it_is_written() {
    let h = Harness::start(Family::CreditNote).await;
    for note in ["cn-1", "cn-2"] {
        let outcome = h.deliver(note, &credit_note(note, "inv-1")).await;
        assert_eq!(
            outcome,
            Outcome::Synced {
                created: Some(true),
                invoice_linked: Some(false)
            }
        );
    }
    let before = h.rest_calls();
    assert_eq!(
        h.deliver_to(Family::Invoice, "i1", &invoice("inv-1"))
            .await
            .label(),
        "synced"
    );
    assert_eq!(
        h.rest_calls() - before,
        2,
        "the invoice, then one call linking both credit notes"
    );
    let invoice_id = h.record("Lago_Invoice__c", "inv-1")["Id"].clone();
    assert_eq!(linked_invoice(&h, "cn-1"), invoice_id);
    assert_eq!(linked_invoice(&h, "cn-2"), invoice_id);

    // Linked and forgotten: the invoice's next state costs its one call only.
    let before = h.rest_calls();
    let paid = events::body(
        "invoice.payment_status_updated",
        "inv-1",
        Some(ACCOUNT),
        json!({"payment_status": "succeeded", "updated_at": "2025-03-02T00:00:00Z"}),
    );
    assert_eq!(
        h.deliver_to(Family::Invoice, "i2", &paid).await.label(),
        "synced"
    );
    assert_eq!(h.rest_calls() - before, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_written_while_its_credit_note_is_written_is_linked_all_the_same() {
    let h = std::sync::Arc::new(Harness::start(Family::CreditNote).await);
    // The credit note is written without its link, then held before it can mark the
    // invoice's record; the invoice is written meanwhile and finds no mark.
    let hold = h.app.store.hold(Step::Release, &h.key("cn-1"));
    let note = tokio::spawn({
        let h = h.clone();
        async move { h.deliver("cn-1", &credit_note("cn-1", "inv-1")).await }
    });
    hold.reached().await;
    assert_eq!(
        h.deliver_to(Family::Invoice, "i1", &invoice("inv-1"))
            .await
            .label(),
        "synced"
    );
    hold.resume();
    let outcome = note.await.unwrap();
    assert_eq!(outcome.label(), "synced", "{outcome:?}");
    let invoice_id = h.record("Lago_Invoice__c", "inv-1")["Id"].clone();
    assert_eq!(
        linked_invoice(&h, "cn-1"),
        invoice_id,
        "linked by the credit note"
    );
}

/// `invoice.payment_dispute_lost` carries its invoice one level down
/// (`payment_dispute_lost.invoice`): the remembered link still finds its Account.
#[tokio::test]
async fn a_lost_dispute_of_an_integration_linked_customer_is_written() {
    let h = Harness::start(Family::Invoice).await;
    link_through_the_integration(&h).await;
    let invoice = events::object("invoice", "inv-d", None, json!({}));
    let body = serde_json::to_vec(&json!({
        "webhook_type": "invoice.payment_dispute_lost",
        "object_type": "payment_dispute_lost",
        "organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        "payment_dispute_lost": { "invoice": invoice, "provider_error": "lost" },
    }))
    .unwrap();
    assert_eq!(h.deliver("d1", &body).await.label(), "synced");
    assert_eq!(
        h.record("Lago_Invoice__c", "inv-d")["Account__c"],
        json!(ACCOUNT)
    );
}
