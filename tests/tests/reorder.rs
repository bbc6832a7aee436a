//! Lago does not deliver in order (contract: "Ordering"). Every permutation of a record's
//! lifecycle, delivered to a fresh pipeline (in-process, in-memory store, Salesforce
//! stand-in), must leave Salesforce with the record that in-order delivery leaves, and
//! repeated deliveries (Lago's retries with the same X-Lago-Unique-Key, or a resend under
//! a new key) must not change that.
//!
//! The payloads are realistic: Lago serialises the whole object at the time of each
//! event, so a later event carries everything an earlier one did (the invoice's
//! `file_url` once the PDF exists, its payment status once paid), with a strictly
//! increasing `updated_at`.

use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, ACCOUNT};
use sync_testkit::inprocess::Harness;

async fn harness(family: Family) -> Harness {
    Harness::start(family).await
}

/// The one record of `object`, without its Salesforce `Id` (which differs per run).
fn only_record(h: &Harness, object: &str) -> Value {
    let mut records = h.standin.records(object);
    assert_eq!(records.len(), 1, "exactly one {object}: {records:?}");
    let mut record = records.remove(0);
    record
        .as_object_mut()
        .expect("a record is an object")
        .remove("Id");
    record
}

/// One event of a lifecycle: its body and the version the ordering guard compares
/// (`updated_at` in ms, or the subscription status rank).
struct Event {
    name: &'static str,
    body: Vec<u8>,
    version: i64,
}

struct Lifecycle {
    family: Family,
    object: &'static str,
    events: Vec<Event>,
    /// Salesforce REST calls per written event (a credit note whose invoice is not in
    /// Salesforce costs two: the write with the link is refused, then written without).
    calls_per_write: u64,
}

fn version_of(updated_at: &str) -> i64 {
    let dt =
        time::OffsetDateTime::parse(updated_at, &time::format_description::well_known::Rfc3339)
            .unwrap();
    (dt.unix_timestamp_nanos() / 1_000_000) as i64
}

/// A lifecycle whose events the guard orders by `updated_at`: each state is (name, webhook
/// type, payload overrides including `updated_at`) for the object `id`.
fn dated_lifecycle<const N: usize>(
    family: Family,
    object: &'static str,
    id: &str,
    states: [(&'static str, &str, Value); N],
    calls_per_write: u64,
) -> Lifecycle {
    Lifecycle {
        family,
        object,
        events: states
            .into_iter()
            .map(|(name, webhook_type, overrides)| Event {
                name,
                version: version_of(overrides["updated_at"].as_str().unwrap()),
                body: events::body(webhook_type, id, Some(ACCOUNT), overrides),
            })
            .collect(),
        calls_per_write,
    }
}

fn subscription_lifecycle() -> Lifecycle {
    let id = "sub-reorder-1";
    let started = events::body(
        "subscription.started",
        id,
        Some(ACCOUNT),
        json!({
            "status": "active",
            "started_at": "2025-03-01T00:00:00Z",
            "subscription_at": "2025-03-01T00:00:00Z",
            "terminated_at": null,
        }),
    );
    let terminated = events::body(
        "subscription.terminated",
        id,
        Some(ACCOUNT),
        json!({
            "status": "terminated",
            "started_at": "2025-03-01T00:00:00Z",
            "subscription_at": "2025-03-01T00:00:00Z",
            "terminated_at": "2025-06-15T12:00:00Z",
        }),
    );
    Lifecycle {
        family: Family::Subscription,
        object: "Lago_Subscription__c",
        events: vec![
            Event {
                name: "started",
                body: started,
                version: 1,
            },
            Event {
                name: "terminated",
                body: terminated,
                version: 2,
            },
        ],
        calls_per_write: 1,
    }
}

fn invoice_lifecycle() -> Lifecycle {
    let id = "inv-reorder-1";
    let pdf = "https://lago.test/invoices/inv-reorder-1.pdf";
    let states = [
        (
            "created",
            "invoice.created",
            json!({"status": "finalized", "payment_status": "pending", "file_url": null,
                   "updated_at": "2025-03-01T10:00:00Z"}),
        ),
        (
            "generated",
            "invoice.generated",
            json!({"status": "finalized", "payment_status": "pending", "file_url": pdf,
                   "updated_at": "2025-03-01T10:00:05Z"}),
        ),
        (
            "payment_status_updated",
            "invoice.payment_status_updated",
            json!({"status": "finalized", "payment_status": "succeeded", "file_url": pdf,
                   "updated_at": "2025-03-04T08:30:00Z"}),
        ),
        (
            "voided",
            "invoice.voided",
            json!({"status": "voided", "payment_status": "succeeded", "file_url": pdf,
                   "updated_at": "2025-03-09T17:45:00.250Z"}),
        ),
    ];
    dated_lifecycle(Family::Invoice, "Lago_Invoice__c", id, states, 1)
}

fn credit_note_lifecycle() -> Lifecycle {
    let id = "cn-reorder-1";
    let states = [
        (
            "created",
            "credit_note.created",
            json!({"file_url": null, "updated_at": "2025-03-05T08:00:00Z"}),
        ),
        (
            "generated",
            "credit_note.generated",
            json!({"file_url": "https://lago.test/credit_notes/cn-reorder-1.pdf",
                   "updated_at": "2025-03-05T08:00:07Z"}),
        ),
    ];
    dated_lifecycle(Family::CreditNote, "Lago_Credit_Note__c", id, states, 2)
}

/// All orderings of `0..n`, in lexicographic order (the identity first).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn extend(prefix: &mut Vec<usize>, n: usize, out: &mut Vec<Vec<usize>>) {
        if prefix.len() == n {
            out.push(prefix.clone());
            return;
        }
        for i in 0..n {
            if !prefix.contains(&i) {
                prefix.push(i);
                extend(prefix, n, out);
                prefix.pop();
            }
        }
    }
    let mut out = Vec::new();
    extend(&mut Vec::new(), n, &mut out);
    out
}

/// How each delivery of a schedule is sent.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Step {
    /// The event's first delivery, under its own key.
    First(usize),
    /// Lago's retry: the same event and the same X-Lago-Unique-Key again.
    Retry(usize),
    /// The same event again under a new key (a resend Lago treats as a new delivery).
    Resend(usize),
}

/// Delivers `schedule` to a fresh pipeline, checking each answer against what the
/// ordering guard must do, and returns the record it leaves.
async fn run(lifecycle: &Lifecycle, schedule: &[Step]) -> Value {
    let h = harness(lifecycle.family).await;
    let mut newest: Option<i64> = None;
    let mut writes = 0;
    let mut resends = 0;
    let mut first_answers = std::collections::HashMap::new();
    for (step, send) in schedule.iter().enumerate() {
        let (event, key, expected) = match *send {
            Step::First(i) | Step::Resend(i) => {
                let event = &lifecycle.events[i];
                let key = match send {
                    Step::First(_) => format!("delivery-{}", event.name),
                    _ => {
                        resends += 1;
                        format!("resend-{resends}-{}", event.name)
                    }
                };
                // Equal versions are written again (the same state); older ones skipped.
                let expected = if newest.is_some_and(|n| n > event.version) {
                    "skipped"
                } else {
                    newest = Some(event.version);
                    writes += 1;
                    "synced"
                };
                if let Step::First(_) = send {
                    first_answers.insert(i, expected);
                }
                (event, key, expected)
            }
            // A record remembers the deliveries it wrote; one it skipped is skipped again.
            Step::Retry(i) => {
                let event = &lifecycle.events[i];
                let expected = match first_answers[&i] {
                    "synced" => "duplicate",
                    _ => "skipped",
                };
                (event, format!("delivery-{}", event.name), expected)
            }
        };
        let calls_before = h.standin.stats().rest_requests;
        let outcome = h.deliver(&key, &event.body).await;
        assert_eq!(
            outcome.label(),
            expected,
            "{}: step {step} ({send:?} = {}) of {schedule:?}: {outcome:?}",
            lifecycle.object,
            event.name
        );
        let calls = h.standin.stats().rest_requests - calls_before;
        let expected_calls = if expected == "synced" {
            lifecycle.calls_per_write
        } else {
            0
        };
        assert_eq!(
            calls, expected_calls,
            "{}: Salesforce calls of step {step} ({send:?}) of {schedule:?}",
            lifecycle.object
        );
    }
    assert_eq!(
        h.standin.stats().rest_requests,
        writes * lifecycle.calls_per_write
    );
    only_record(&h, lifecycle.object)
}

/// The permutation, each event retried with its key after the next one went out, and the
/// first event resent under a new key at the end.
fn with_repeats(order: &[usize]) -> Vec<Step> {
    let mut schedule = Vec::new();
    for (pos, &i) in order.iter().enumerate() {
        schedule.push(Step::First(i));
        if pos > 0 {
            schedule.push(Step::Retry(order[pos - 1]));
        }
    }
    schedule.push(Step::Retry(*order.last().unwrap()));
    schedule.push(Step::Resend(order[0]));
    schedule
}

fn names(lifecycle: &Lifecycle, order: &[usize]) -> Vec<&'static str> {
    order.iter().map(|&i| lifecycle.events[i].name).collect()
}

/// Every permutation, plain and with repeats, converges on the in-order record.
async fn converges(lifecycle: Lifecycle) -> Value {
    let n = lifecycle.events.len();
    let in_order: Vec<Step> = (0..n).map(Step::First).collect();
    let reference = run(&lifecycle, &in_order).await;
    let mut diverging = Vec::new();
    for order in permutations(n) {
        let plain: Vec<Step> = order.iter().map(|&i| Step::First(i)).collect();
        for schedule in [plain, with_repeats(&order)] {
            let record = run(&lifecycle, &schedule).await;
            if record != reference {
                diverging.push(format!(
                    "{:?} (schedule {schedule:?}):\n  got      {record}\n  in order {reference}",
                    names(&lifecycle, &order)
                ));
            }
        }
    }
    assert!(
        diverging.is_empty(),
        "{}: {} of {} deliveries did not converge on the in-order record:\n{}",
        lifecycle.object,
        diverging.len(),
        2 * permutations(n).len(),
        diverging.join("\n")
    );
    reference
}

#[test]
fn permutations_are_complete() {
    assert_eq!(permutations(2).len(), 2);
    let four = permutations(4);
    assert_eq!(four.len(), 24);
    let mut unique = four.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 24);
    assert_eq!(four[0], [0, 1, 2, 3]);
}

#[tokio::test]
async fn every_order_of_a_subscription_lifecycle_converges() {
    let record = converges(subscription_lifecycle()).await;
    // The in-order record is the terminated subscription, every field of the last state.
    let expected = json!({
        "Name": "Premium",
        "Account__c": ACCOUNT,
        "Lago_Id__c": "sub-reorder-1",
        "External_Id__c": "sub-sub-reorder-1",
        "Plan_Code__c": "premium",
        "Status__c": "terminated",
        "Billing_Time__c": "calendar",
        "Start_Date__c": "2025-03-01",
        "Termination_Date__c": "2025-06-15",
    });
    assert_eq!(record, expected);
}

#[tokio::test]
async fn every_order_of_an_invoice_lifecycle_converges() {
    let record = converges(invoice_lifecycle()).await;
    let expected = json!({
        "Name": "ACME-inv-reorder-1",
        "Account__c": ACCOUNT,
        "Lago_Id__c": "inv-reorder-1",
        "Number__c": "ACME-inv-reorder-1",
        "Status__c": "voided",
        "Payment_Status__c": "succeeded",
        "Invoice_Type__c": "subscription",
        "Issuing_Date__c": "2025-03-01",
        "Payment_Due_Date__c": "2025-03-31",
        "Total_Amount__c": 1299.00,
        "Currency__c": "USD",
        "File_Url__c": "https://lago.test/invoices/inv-reorder-1.pdf",
    });
    assert_same_fields(&record, &expected);
}

#[tokio::test]
async fn every_order_of_a_credit_note_lifecycle_converges() {
    let record = converges(credit_note_lifecycle()).await;
    let expected = json!({
        "Name": "ACME-CN-cn-reorder-1",
        "Account__c": ACCOUNT,
        "Lago_Id__c": "cn-reorder-1",
        "Lago_Invoice_Id__c": "inv-1",
        "Number__c": "ACME-CN-cn-reorder-1",
        "Invoice_Number__c": "ACME-inv-1",
        "Credit_Status__c": "available",
        "Reason__c": "order_change",
        "Issuing_Date__c": "2025-03-05",
        "Total_Amount__c": 50.00,
        "Currency__c": "USD",
        "File_Url__c": "https://lago.test/credit_notes/cn-reorder-1.pdf",
    });
    assert_same_fields(&record, &expected);
}

/// Field by field, numbers compared by value (the record keeps Salesforce's number text).
fn assert_same_fields(record: &Value, expected: &Value) {
    let (record, expected) = (record.as_object().unwrap(), expected.as_object().unwrap());
    let mut names: Vec<&String> = record.keys().chain(expected.keys()).collect();
    names.sort();
    names.dedup();
    for name in names {
        let (got, want) = (record.get(name), expected.get(name));
        let same = match (got, want) {
            (Some(Value::Number(a)), Some(Value::Number(b))) => {
                a.to_string().parse::<f64>().unwrap() == b.to_string().parse::<f64>().unwrap()
            }
            _ => got == want,
        };
        assert!(same, "{name}: got {got:?}, expected {want:?}\n{record:?}");
    }
}

// Two subscription states of one status (no updated_at orders them) are settled by Lago's
// current state: tests/tests/lookups.rs.
