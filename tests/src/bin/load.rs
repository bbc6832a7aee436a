//! Load test of the local stack: N signed Lago events (default 5,000: the four families
//! mixed, 10% duplicates, 5% sent to another family's endpoint) at concurrency C, through
//! the built function binaries behind Lambda Runtime API emulators (C instances per
//! function, as Lambda scales out), with moto behind a request-counting proxy and the
//! Salesforce stand-in. Prints throughput, latency, Salesforce calls, token requests and
//! DynamoDB writes per event, and checks that nothing was lost or written twice.
//!
//! Usage: `load [--events N] [--concurrency C]`; scripts/load.sh builds and runs it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sync_testkit::apigw::{response, HttpEvent};
use sync_testkit::events::{self, HMAC_KEY};
use sync_testkit::lago::signed_headers;
use sync_testkit::lambda::{binary_path, Invocation, LambdaProcess};
use sync_testkit::moto::{unique_name, Moto};
use sync_testkit::proxy::MeteringProxy;
use sync_testkit::standin::{Standin, StandinConfig};
use tokio::sync::{mpsc, Mutex};

/// (binary, route, webhook type it writes, Salesforce object, field holding the Lago id)
const FAMILIES: [(&str, &str, &str, &str, &str); 4] = [
    (
        "customer-webhook",
        "customer",
        "customer.updated",
        "Account",
        "Lago_Customer_Id__c",
    ),
    (
        "subscription-webhook",
        "subscription",
        "subscription.started",
        "Lago_Subscription__c",
        "Lago_Id__c",
    ),
    (
        "invoice-webhook",
        "invoice",
        "invoice.created",
        "Lago_Invoice__c",
        "Lago_Id__c",
    ),
    (
        "credit-note-webhook",
        "credit-note",
        "credit_note.created",
        "Lago_Credit_Note__c",
        "Lago_Id__c",
    ),
];
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
struct Event {
    family: usize,
    key: String,
    body: Arc<Vec<u8>>,
    expect: &'static str,
}

#[tokio::main]
async fn main() {
    let events = arg("--events", 5_000);
    let concurrency = arg("--concurrency", 4);
    let moto = Moto::shared().await;
    let proxy = MeteringProxy::start(moto.endpoint()).await;
    let standin = Standin::start(StandinConfig::default()).await;
    let (table, secret) = (unique_name("load"), unique_name("load-secret"));
    moto.create_table(&table).await;
    moto.create_secret(&secret, &events::secret_json(HMAC_KEY))
        .await;

    let (originals, duplicates) = workload(events, &standin);
    let writes_expected = originals.iter().filter(|e| e.expect == "synced").count();
    println!(
        "{events} events: {writes_expected} to write, {} foreign, {} duplicates; concurrency {concurrency} per function",
        originals.len() - writes_expected,
        duplicates.len()
    );

    let env = function_env(moto, &proxy, &standin, &table, &secret);
    let mut queues = Vec::new();
    let mut workers = Vec::new();
    for (binary, ..) in FAMILIES {
        let (send, receive) = mpsc::unbounded_channel::<Event>();
        let receive = Arc::new(Mutex::new(receive));
        for _ in 0..concurrency {
            let function = LambdaProcess::start(&binary_path(binary), &env).await;
            workers.push(tokio::spawn(work(function, receive.clone())));
        }
        queues.push(send);
    }
    let before = proxy.counts();
    let started = Instant::now();
    // Lago's retries come after the original delivery, so the duplicates go second.
    for event in originals.iter().chain(&duplicates) {
        queues[event.family]
            .send(event.clone())
            .expect("workers listen");
    }
    drop(queues);
    let mut latencies = Vec::new();
    let mut wrong = BTreeMap::<String, u32>::new();
    for worker in workers {
        for (event, label, latency) in worker.await.expect("a worker finishes") {
            latencies.push(latency);
            if label != event.expect {
                *wrong
                    .entry(format!("{} answered {label}", event.expect))
                    .or_default() += 1;
            }
        }
    }
    let elapsed = started.elapsed();
    report(&Measured {
        events,
        writes_expected,
        elapsed,
        latencies,
        wrong,
        proxy: &proxy,
        before,
        standin: &standin,
        concurrency,
        originals: &originals,
    });
}

/// Unique events round-robin over the families, every twentieth one sent to the next
/// family's endpoint, then duplicates of every tenth.
fn workload(events: usize, standin: &Standin) -> (Vec<Event>, Vec<Event>) {
    let duplicates = events / 10;
    let mut originals = Vec::new();
    for i in 0..events - duplicates {
        let family = i % FAMILIES.len();
        let (_, _, webhook_type, ..) = FAMILIES[family];
        let lago_id = format!("load-{i:06}");
        // One Account per customer, so that every customer event is a write of its own.
        let account = standin.add_account(&format!("001{i:012}AAA"));
        let body = events::body(
            webhook_type,
            &lago_id,
            Some(&account),
            json!({"lago_invoice_id": null}),
        );
        let foreign = i % 20 == 19;
        originals.push(Event {
            family: if foreign {
                (family + 1) % FAMILIES.len()
            } else {
                family
            },
            key: format!("delivery-{i:06}"),
            body: Arc::new(body),
            expect: if foreign { "ignored" } else { "synced" },
        });
    }
    let duplicates = originals
        .iter()
        .filter(|e| e.expect == "synced")
        .step_by(9)
        .take(duplicates)
        .map(|e| Event {
            expect: "duplicate",
            ..e.clone()
        })
        .collect();
    (originals, duplicates)
}

async fn work(
    function: LambdaProcess,
    queue: Arc<Mutex<mpsc::UnboundedReceiver<Event>>>,
) -> Vec<(Event, String, Duration)> {
    let mut done = Vec::new();
    loop {
        let Some(event) = queue.lock().await.recv().await else {
            return done;
        };
        let route = FAMILIES[event.family].1;
        let request = HttpEvent::webhook(route)
            .headers(signed_headers(HMAC_KEY, &event.key, &event.body))
            .body(event.body.to_vec());
        let sent = Instant::now();
        let label = match function.invoke(request.to_json(), INVOKE_TIMEOUT).await {
            Invocation::Response(answer) => response(&answer).2["status"]
                .as_str()
                .unwrap_or("?")
                .to_owned(),
            other => format!("{other:?}"),
        };
        done.push((event, label, sent.elapsed()));
    }
}

fn function_env(
    moto: &Moto,
    proxy: &MeteringProxy,
    standin: &Standin,
    table: &str,
    secret: &str,
) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    env.extend(
        [
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            ("SECRET_ID", secret),
            ("IDEMPOTENCY_TABLE", table),
            ("SALESFORCE_URL", &standin.url()),
            ("RUST_LOG", "warn"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

struct Measured<'a> {
    events: usize,
    writes_expected: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    wrong: BTreeMap<String, u32>,
    proxy: &'a MeteringProxy,
    before: BTreeMap<String, u64>,
    standin: &'a Standin,
    concurrency: usize,
    originals: &'a [Event],
}

fn report(m: &Measured) {
    let mut latencies = m.latencies.clone();
    latencies.sort();
    let pct = |p: f64| {
        latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)].as_secs_f64()
            * 1000.0
    };
    let after = m.proxy.counts();
    let writes: u64 = ["UpdateItem", "PutItem", "DeleteItem"]
        .iter()
        .map(|op| {
            after
                .get(&format!("DynamoDB_20120810.{op}"))
                .copied()
                .unwrap_or(0)
                - m.before
                    .get(&format!("DynamoDB_20120810.{op}"))
                    .copied()
                    .unwrap_or(0)
        })
        .sum();
    let stats = m.standin.stats();
    println!(
        "throughput     {:.0} events/s ({} events in {:.1} s)",
        m.events as f64 / m.elapsed.as_secs_f64(),
        m.events,
        m.elapsed.as_secs_f64()
    );
    println!(
        "latency        p50 {:.1} ms, p99 {:.1} ms (invocation round trip)",
        pct(0.50),
        pct(0.99)
    );
    println!("Salesforce     {} REST calls for {} writes ({:.3} per written event), {} token requests for {} function instances", stats.rest_requests, m.writes_expected, stats.rest_requests as f64 / m.writes_expected as f64, stats.token_requests, m.concurrency * FAMILIES.len());
    println!(
        "DynamoDB       {writes} writes ({:.2} per event)",
        writes as f64 / m.events as f64
    );

    let mut failures = Vec::new();
    for (what, count) in &m.wrong {
        failures.push(format!("{count} answers wrong: {what}"));
    }
    for (family, (_, _, _, object, field)) in FAMILIES.iter().enumerate() {
        let written: Vec<Value> = m
            .standin
            .records(object)
            .into_iter()
            .filter(|r| r[field].as_str().is_some_and(|v| v.starts_with("load-")))
            .collect();
        let expected = m
            .originals
            .iter()
            .filter(|e| e.expect == "synced" && e.family == family)
            .count();
        if written.len() != expected {
            failures.push(format!(
                "{object}: {} records for {expected} events (loss)",
                written.len()
            ));
        }
    }
    if stats.rest_requests as usize != m.writes_expected {
        failures.push(format!(
            "{} Salesforce writes for {} events (duplicates or loss)",
            stats.rest_requests, m.writes_expected
        ));
    }
    if failures.is_empty() {
        println!("checks         zero loss, zero duplicates: every event answered as expected");
    } else {
        for failure in &failures {
            println!("FAILED         {failure}");
        }
        std::process::exit(1);
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}
