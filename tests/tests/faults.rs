//! Fault injection: each Salesforce fault of the contract gets its answer, and once the
//! fault is gone (and, for a permanent refusal, the operator has requeued the event), the
//! redrive leaves Salesforce holding exactly what a fault-free run writes. The table is a
//! real DynamoDB emulator (moto), shared by the function that met the fault and the redrive.
//! A function that dies mid-write is recovered by the redrive on that table too (§7.3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lago_sync::pipeline::{App, LagoReader, Outcome};
use lago_sync::redrive::{run_at, Report};
use lago_sync::salesforce::SalesforceClient;
use lago_sync::secrets::{SecretCache, Secrets};
use lago_sync::store::{delivery_key, DynamoDbStore, EventQueue, Status};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{self, ACCOUNT, HMAC_KEY};
use sync_testkit::inprocess::{delivery, epoch_ms, Harness};
use sync_testkit::lago::sign;
use sync_testkit::lago_standin::{Dataset, LagoStandin, API_KEY as LAGO_API_KEY};
use sync_testkit::moto::{closed_endpoint, unique_name, Moto};
use sync_testkit::proxy::MeteringProxy;
use sync_testkit::standin::{Fault, Standin, StandinConfig};

const MISSING_ACCOUNT: &str = "001000000000077AAA";

enum Trigger {
    Fault(Fault),
    /// Salesforce's host refuses connections (the function points at a closed port).
    Refused,
    ExpiredSession,
    /// The Account does not exist yet; the fix is to create it.
    MissingAccount,
    /// The function gives Salesforce too little time.
    Deadline(Fault),
}

struct Case {
    name: &'static str,
    trigger: Trigger,
    status: u16,
    label: &'static str,
    error_code: Option<&'static str>,
}

fn cases() -> Vec<Case> {
    let fault = |f: Fault| Trigger::Fault(f.on_path("/sobjects/"));
    vec![
        Case {
            name: "500",
            trigger: fault(Fault::error(
                500,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred",
            )),
            status: 202,
            label: "queued",
            error_code: Some("UNKNOWN_EXCEPTION"),
        },
        Case {
            name: "502",
            trigger: fault(Fault::html(502, "<html>Bad Gateway</html>")),
            status: 202,
            label: "queued",
            error_code: Some("HTTP_502"),
        },
        Case {
            name: "503",
            trigger: fault(Fault::error(
                503,
                "SERVER_UNAVAILABLE",
                "Server unavailable",
            )),
            status: 202,
            label: "queued",
            error_code: Some("SERVER_UNAVAILABLE"),
        },
        Case {
            name: "timeout",
            trigger: Trigger::Deadline(Fault::delay(Duration::from_secs(8)).on_path("/sobjects/")),
            status: 202,
            label: "queued",
            error_code: Some("TIMEOUT"),
        },
        Case {
            name: "connection refused",
            trigger: Trigger::Refused,
            status: 202,
            label: "queued",
            error_code: Some("CONNECTION"),
        },
        Case {
            name: "expired session",
            trigger: Trigger::ExpiredSession,
            status: 200,
            label: "synced",
            error_code: None,
        },
        Case {
            name: "daily limit",
            trigger: fault(Fault::error(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
            )),
            status: 202,
            label: "queued",
            error_code: Some("REQUEST_LIMIT_EXCEEDED"),
        },
        Case {
            name: "row lock",
            trigger: fault(Fault::error(
                400,
                "UNABLE_TO_LOCK_ROW",
                "unable to obtain exclusive access to this record",
            )),
            status: 202,
            label: "queued",
            error_code: Some("UNABLE_TO_LOCK_ROW"),
        },
        Case {
            name: "insert race",
            trigger: fault(Fault::error(
                400,
                "DUPLICATE_VALUE",
                "duplicate value found: Lago_Id__c duplicates value on record with id: a01",
            )),
            status: 202,
            label: "queued",
            error_code: Some("DUPLICATE_VALUE"),
        },
        Case {
            name: "Account not found",
            trigger: Trigger::MissingAccount,
            status: 422,
            label: "failed",
            error_code: Some("INVALID_CROSS_REFERENCE_KEY"),
        },
        Case {
            name: "field missing",
            trigger: fault(Fault::error(
                400,
                "INVALID_FIELD",
                "No such column 'Payment_Status__c' on sobject of type Lago_Invoice__c",
            )),
            status: 422,
            label: "failed",
            error_code: Some("INVALID_FIELD"),
        },
    ]
}

/// The events of these cases name their Account: Lago's API is read only by a recovery.
fn app(
    table: &str,
    dynamodb: aws_sdk_dynamodb::Client,
    salesforce_url: &str,
    lago_url: &str,
) -> App<DynamoDbStore> {
    App {
        secrets: SecretCache::fixed(Secrets::parse(&events::secret_json(HMAC_KEY)).unwrap()),
        store: DynamoDbStore::new(dynamodb, table),
        salesforce: SalesforceClient::new(salesforce_url, "62.0"),
        lago: LagoReader::new(lago_url),
    }
}

fn without_ids(records: Vec<Value>) -> Vec<Value> {
    records
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("Id");
            r
        })
        .collect()
}

#[tokio::test]
async fn every_fault_is_answered_and_healed_without_loss_or_duplicates() {
    let moto = Moto::shared().await;
    for case in cases() {
        let account = if matches!(case.trigger, Trigger::MissingAccount) {
            MISSING_ACCOUNT
        } else {
            ACCOUNT
        };
        let body = events::body("invoice.created", "inv-1", Some(account), json!({}));

        // What a fault-free run writes.
        let clean = Harness::start(Family::Invoice).await;
        clean.standin.add_account(MISSING_ACCOUNT);
        assert_eq!(clean.deliver("k", &body).await.label(), "synced");
        let expected = without_ids(clean.standin.records("Lago_Invoice__c"));

        let table = unique_name("faults");
        moto.create_table(&table).await;
        let standin = Standin::start(StandinConfig::default()).await;
        let no_lago_api = closed_endpoint();
        let healthy = app(&table, moto.dynamodb().await, &standin.url(), &no_lago_api);
        let mut time_left = Duration::from_secs(20);
        let faulty = match case.trigger {
            Trigger::Fault(fault) => {
                standin.add_fault(fault);
                None
            }
            Trigger::Deadline(fault) => {
                standin.add_fault(fault);
                time_left = Duration::from_secs(4);
                None
            }
            Trigger::Refused => Some(app(
                &table,
                moto.dynamodb().await,
                &closed_endpoint(),
                &no_lago_api,
            )),
            Trigger::ExpiredSession => {
                let warm = events::body("invoice.created", "inv-0", Some(ACCOUNT), json!({}));
                assert_eq!(
                    healthy
                        .handle(
                            Family::Invoice,
                            &delivery("warm", &warm, &sign(HMAC_KEY, &warm), time_left)
                        )
                        .await
                        .label(),
                    "synced"
                );
                standin.expire_tokens();
                None
            }
            Trigger::MissingAccount => None,
        };
        let first_app = faulty.as_ref().unwrap_or(&healthy);
        let signature = sign(HMAC_KEY, &body);
        let outcome: Outcome = first_app
            .handle(
                Family::Invoice,
                &delivery("k", &body, &signature, time_left),
            )
            .await;
        assert_eq!(
            (outcome.status_code(), outcome.label()),
            (case.status, case.label),
            "{}: {outcome:?}",
            case.name
        );
        assert_eq!(
            outcome.body()["error_code"].as_str(),
            case.error_code,
            "{}",
            case.name
        );

        // The fault clears; a permanent refusal needs the operator's fix and requeue.
        let key = delivery_key("invoice", "k");
        if case.label == "failed" {
            standin.add_account(MISSING_ACCOUNT);
            assert!(
                healthy.store.requeue(&key, epoch_ms()).await.unwrap(),
                "{}",
                case.name
            );
        }
        // The delayed write of the timeout case still lands in Salesforce after the function
        // gave up, as it would in a real org; the redrive's upsert then updates it.
        let report = run_at(
            &healthy,
            Duration::from_secs(7 * 24 * 3600),
            Instant::now() + Duration::from_secs(120),
            || epoch_ms() + 3_600_000,
        )
        .await
        .unwrap();
        if case.label != "synced" {
            assert_eq!(report.synced, 1, "{}: {report:?}", case.name);
        }
        let mut records = without_ids(standin.records("Lago_Invoice__c"));
        records.retain(|r| r["Lago_Id__c"] == json!("inv-1"));
        assert_eq!(
            records, expected,
            "{}: Salesforce differs from a fault-free run",
            case.name
        );
        // A stored event ends completed; one written at once was never stored.
        let stored = healthy.store.load(&key).await.unwrap().map(|s| s.status);
        let expected_stored = (case.label != "synced").then_some(Status::Completed);
        assert_eq!(stored, expected_stored, "{}", case.name);
        // A late retry by Lago changes nothing.
        assert_eq!(
            healthy
                .handle(
                    Family::Invoice,
                    &delivery("k", &body, &signature, time_left)
                )
                .await
                .label(),
            "duplicate",
            "{}",
            case.name
        );
    }
}

// ---------------------------------------------------------------------------------------
// A writer that dies mid-write (contract §7.3)

const INVOICE: &str = "inv-crash-1";
/// The dying delivery's time: its lease lasts this long. The Salesforce write gets what is
/// left after the reserves kept back for recording the outcome (3.5 s in all).
const DYING_TIME_LEFT: Duration = Duration::from_secs(5);
/// Salesforce is slow to take the dying delivery's write, so that it dies mid-write; short
/// enough that the write lands well before the lease lapses.
const SLOW_WRITE: Duration = Duration::from_millis(700);

fn invoice(i: usize) -> Vec<u8> {
    events::invoice_state_body(INVOICE, i)
}

/// Which state Salesforce holds.
fn written_state(standin: &Standin) -> Option<usize> {
    events::invoice_state_written(standin, INVOICE)
}

async fn deliver(app: &App<DynamoDbStore>, key: &str, body: &[u8], time_left: Duration) -> Outcome {
    let signature = sign(HMAC_KEY, body);
    app.handle(Family::Invoice, &delivery(key, body, &signature, time_left))
        .await
}

/// A redrive run as if `ahead` had passed (for the queue; leases lapse in real time).
async fn redrive(app: &App<DynamoDbStore>, ahead: Duration) -> Report {
    let later = epoch_ms() + ahead.as_millis() as i64;
    run_at(
        app,
        Duration::from_secs(7 * 24 * 3600),
        Instant::now() + Duration::from_secs(60),
        move || later,
    )
    .await
    .expect("moto answers")
}

/// Polls `condition` until it holds; panics naming `what` after a while.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "waited in vain for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_writer_that_dies_mid_write_is_recovered_through_the_index() {
    let moto = Moto::shared().await;
    let table = unique_name("crash");
    moto.create_table(&table).await;
    let standin = Standin::start(StandinConfig::default()).await;
    let lago = LagoStandin::start(LAGO_API_KEY, Dataset::default()).await;
    // The table is reached through a metering proxy: the redrive must find the lapsed lease
    // by querying the sparse index, never by scanning the table.
    let proxy = MeteringProxy::start(moto.endpoint()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&proxy.sdk_config(&moto.sdk_config().await));
    let app = Arc::new(app(&table, dynamodb, &standin.url(), &lago.url()));

    // Lago's last attempt reaches a function that dies (killed at its deadline, say) while
    // Salesforce is writing: its lease on the record is never let go.
    standin.add_fault(Fault::delay(SLOW_WRITE).on_path("/sobjects/"));
    let lease_lapses = Instant::now() + DYING_TIME_LEFT;
    let dying = tokio::spawn({
        let app = app.clone();
        async move { deliver(&app, "last-attempt", &invoice(1), DYING_TIME_LEFT).await }
    });
    wait_for("the write to reach Salesforce", || {
        let requests = standin.requests();
        requests.iter().any(|r| r.path.contains("/sobjects/"))
    })
    .await;
    dying.abort();
    assert!(dying.await.unwrap_err().is_cancelled());

    // Before the lease lapses the redrive leaves the record alone: its writer may be alive.
    let early = redrive(&app, Duration::ZERO).await;
    assert_eq!((early.recovered, early.unrecovered), (0, 0), "{early:?}");
    // Salesforce takes the dead function's write all the same.
    wait_for("the dead function's write to land", || {
        written_state(&standin) == Some(1)
    })
    .await;

    // Lago moved on meanwhile (the invoice got paid) and never sends anything again.
    lago.replace(
        "invoices",
        events::object("invoice", INVOICE, Some(ACCOUNT), events::invoice_state(3)),
    );
    // A delivery of another state finds the record held by the dead function: queued, not
    // lost (however long it waited, only the recovery takes a lapsed lease from its owner).
    let other = deliver(&app, "other", &invoice(2), Duration::from_secs(20)).await;
    assert_eq!(
        (other.status_code(), other.label()),
        (202, "queued"),
        "{other:?}"
    );
    assert_eq!(other.body()["error_code"], json!("RECORD_BUSY"));

    // The lease ends at the delivery's deadline, set a moment after `lease_lapses`.
    tokio::time::sleep_until((lease_lapses + Duration::from_millis(200)).into()).await;
    let report = redrive(&app, Duration::from_secs(60)).await;
    assert_eq!((report.recovered, report.unrecovered), (1, 0), "{report:?}");
    assert_eq!(written_state(&standin), Some(3), "Lago's current state");
    // The queued state is older than the recovered one: skipped, and completed.
    assert_eq!(report.skipped, 1, "{report:?}");
    let key = delivery_key("invoice", "other");
    let other = app.store.load(&key).await.unwrap().map(|s| s.status);
    assert_eq!(other, Some(Status::Completed));
    // Had Lago retried the dead delivery after all, it would change nothing.
    let retried = deliver(&app, "last-attempt", &invoice(1), Duration::from_secs(20)).await;
    assert_eq!(retried, Outcome::Duplicate);
    assert_eq!(written_state(&standin), Some(3));

    let counts = proxy.counts();
    assert!(
        counts.contains_key("DynamoDB_20120810.Query")
            && !counts.contains_key("DynamoDB_20120810.Scan"),
        "{counts:?}"
    );
}
