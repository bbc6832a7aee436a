//! `lambda-bench --cost`: what one event costs, by kind of event, in requests to DynamoDB,
//! Secrets Manager, Salesforce and Lago's API, as the release-built functions make them.
//!
//! Each function process (a sandbox: Lambda gives one event at a time to each) reaches moto,
//! the Salesforce stand-in and the Lago stand-in through tapping proxies of its own, which
//! log every request with its answer's status. So a DynamoDB write refused by its condition
//! (400 `ConditionalCheckFailedException`, which DynamoDB bills as a write) is told apart
//! from one applied, and the requests of two deliveries handled at once are told apart by
//! their sandbox. An event's requests are those its sandbox made while handling it; the ones
//! made one after the other (a request starting after the previous one's answer) are its
//! sequential round trips.
//!
//! A write is named by the shape of its update expression, as shared/src/store/dynamodb.rs
//! writes it (take, release, park, claim, complete, link, …; `other` if the store changed).
//! The writes of the sparse index `parked-by-due` are computed from the applied writes, not
//! metered (moto does not bill): a take puts the record in the index (1), its release takes
//! it out (1), a park adds a stored event (1), a claim moves its sort key (2: delete and
//! put), a complete takes it out (1), a take-over of a lapsed lease moves the sort key (2).
//!
//! Scenarios, for each of the four webhook functions: a cold start; written events (new
//! objects); the same deliveries again (duplicates); older states under new keys; later
//! states of one record (invoice, credit note); events of customers linked only through
//! Lago's Salesforce integration, first unknown (a Lago read) then remembered; a customer
//! event carrying such a link; a subscription event whose status equals the written one (a
//! Lago read); two deliveries of one record at once, the first's Salesforce write slowed by
//! the stand-in (the second finds the record held, waits, and is stored queued); an event
//! Salesforce answers 503 (stored queued). Then the redrive function retries the queued
//! events, once for the busy ones (due after 5 s) and once for the 503 ones (due after
//! 15-30 s, which the bench waits for).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{HeaderMap, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use lago_sync::store::REMEMBERED_DELIVERIES;
use sync_testkit::lambda::{Invocation, LambdaProcess};
use sync_testkit::moto::Moto;
use sync_testkit::standin::Fault;

use crate::workload::{lago_customer, lago_subscription, Function, BASE_EPOCH, FUNCTIONS};
use crate::{bin, deliver, start, Emulators};

/// How long the stand-in holds the first delivery's Salesforce write in the contended
/// scenario: longer than the second delivery's waits (100 + 200 + 400 + 800 ms, each
/// with up to half again of jitter) and its six requests.
const SLOW_WRITE: Duration = Duration::from_secs(5);
/// When the second delivery of the contended scenario is sent after the first.
const SECOND_AFTER: Duration = Duration::from_millis(600);
/// A record found busy is stored due this much later (pipeline's BUSY_RETRY_MS), a 503'd
/// event at most this much later (retry_delay_ms(1): 30 s drawn between half and all).
const BUSY_DUE: Duration = Duration::from_secs(5);
const QUEUED_DUE: Duration = Duration::from_secs(30);
const REDRIVE_TIMEOUT: Duration = Duration::from_secs(120);

pub async fn run(n: usize, contended: usize) {
    let moto = Moto::shared().await;
    let rig = Rig::start(moto).await;
    println!(
        "per-event cost: {n} events per scenario ({contended} for the contended and queued \
         ones), one event at a time per sandbox; figures are per event"
    );
    let mut clock = Clock(BASE_EPOCH + 1_000_000);
    let mut sandboxes = Vec::new();
    let mut results: Vec<(&str, Vec<Row>)> = Vec::new();
    for f in &FUNCTIONS {
        let (rows, pair) = first_pass(f, n, contended, &rig, &mut clock).await;
        results.push((f.binary, rows));
        sandboxes.push((f, pair));
    }
    let busy_stored_at = Instant::now();

    let mut redrive_rows = Vec::new();
    let redrive = rig.sandbox("redrive", "redrive").await;
    let redrive = redrive.with_timeout(REDRIVE_TIMEOUT);
    tokio::time::sleep(BUSY_DUE.saturating_sub(busy_stored_at.elapsed()) + Duration::from_secs(1))
        .await;
    redrive_rows.extend(redrive_run(&rig, &redrive, "busy-queued (contended) events").await);

    for ((f, pair), (_, rows)) in sandboxes.iter().zip(results.iter_mut()) {
        rows.push(queued(f, contended, &rig, &pair.0, &mut clock).await);
    }
    tokio::time::sleep(QUEUED_DUE + Duration::from_secs(1)).await;
    redrive_rows.extend(redrive_run(&rig, &redrive, "503-queued events").await);

    for (binary, rows) in &results {
        print_rows(binary, rows);
    }
    print_rows("redrive", &redrive_rows);
    rig.cross_check();
}

/// Every scenario but the 503 one, with two sandboxes of `f`; returns them for later.
async fn first_pass(
    f: &'static Function,
    n: usize,
    contended: usize,
    rig: &Rig,
    clock: &mut Clock,
) -> (Vec<Row>, (Sandbox, Sandbox)) {
    let route = f.route;
    let (one, two) = (
        rig.sandbox(f.binary, &format!("{route}#1")).await,
        rig.sandbox(f.binary, &format!("{route}#2")).await,
    );
    let mut rows = Vec::new();

    let cold = one.event(rig, &key(), &f.written(0)).await;
    rows.push(Row::of(
        "cold start: first event (written)",
        "synced",
        vec![cold],
    ));
    two.event(rig, &key(), &f.written(1))
        .await
        .expect("synced", &two);

    let mut written = Vec::new();
    let mut keys = Vec::new();
    for i in 2..2 + n {
        let k = key();
        written.push(one.event(rig, &k, &f.written(i)).await);
        keys.push((k, i));
    }
    rows.push(
        Row::of("written (new object)", "synced", written)
            .sized(rig)
            .await,
    );

    // A record remembers its last REMEMBERED_DELIVERIES deliveries (the customer function
    // writes one Account for all its events): their redeliveries are duplicates.
    let mut duplicates = Vec::new();
    let recent = keys.len().saturating_sub(REMEMBERED_DELIVERIES);
    for (k, i) in &keys[recent..] {
        duplicates.push(one.event(rig, k, &f.written(*i)).await);
    }
    rows.push(Row::of(
        "duplicate (same key and body)",
        "duplicate",
        duplicates,
    ));

    let mut older = Vec::new();
    for (_, i) in keys.iter().take(n) {
        older.push(one.event(rig, &key(), &f.older(*i)).await);
    }
    rows.push(Row::of("older state, new key", "skipped", older));

    if matches!(f.object_type, "invoice" | "credit_note") {
        // The record of object 2 again and again: its item fills with remembered deliveries.
        let mut later = Vec::new();
        for _ in 0..n.max(REMEMBERED_DELIVERIES + 1) {
            later.push(one.event(rig, &key(), &f.later(2, clock.tick())).await);
        }
        let row = Row::of("written (later state, one record)", "synced", later);
        rows.push(row.sized(rig).await);
    }

    // Customers linked to their Account only through Lago's Salesforce integration.
    let (mut unknown, mut remembered) = (Vec::new(), Vec::new());
    for j in 0..n {
        let customer = format!("bench-integration-{route}-{j}");
        rig.emulators
            .lago
            .replace("customers", lago_customer(&customer));
        let i = 3000 + 2 * j;
        let body = f.integration_linked(i, &customer, clock.tick());
        unknown.push(one.event(rig, &key(), &body).await);
        let body = f.integration_linked(i + 1, &customer, clock.tick());
        remembered.push(one.event(rig, &key(), &body).await);
    }
    if f.object_type == "customer" {
        // A customer event carries the link: it is remembered (written) every time.
        unknown.extend(remembered);
        let row = Row::of(
            "customer event linked through the integration",
            "synced",
            unknown,
        );
        rows.push(row.sized(rig).await);
    } else {
        let row = Row::of(
            "integration-linked customer, not remembered",
            "synced",
            unknown,
        );
        rows.push(row.sized(rig).await);
        rows.push(Row::of(
            "integration-linked customer, remembered",
            "synced",
            remembered,
        ));
    }

    if f.object_type == "subscription" {
        let mut same = Vec::new();
        for j in 0..n {
            let (i, external_id) = (4000 + j, format!("bench-same-status-{j}"));
            rig.emulators
                .lago
                .replace("subscriptions", lago_subscription(i, &external_id));
            let first = f.subscription_as(i, 0, &external_id);
            one.event(rig, &key(), &first).await.expect("synced", &one);
            let second = f.subscription_as(i, 1, &external_id);
            same.push(one.event(rig, &key(), &second).await);
        }
        rows.push(Row::of(
            "same status as written (Lago read)",
            "synced",
            same,
        ));
    }

    // Two deliveries of one record at once: the first holds it through a slow write.
    let (mut holders, mut waiters) = (Vec::new(), Vec::new());
    let mut held_sizes = Vec::new();
    for j in 0..contended {
        let i = 5000 + 6 * j;
        let (first, second) = (f.state(i, 0, clock.tick()), f.later(i, clock.tick()));
        rig.emulators.standin.add_fault(Fault::delay(SLOW_WRITE));
        let mark = rig.log.len();
        let (k1, k2) = (key(), key());
        let holder = one.send(&k1, &first);
        let waiter = async {
            tokio::time::sleep(SECOND_AFTER).await;
            let taken = rig.log.since(mark, &one.tag);
            if let Some(record) = taken.iter().find_map(|e| e.item.clone()) {
                held_sizes.extend(rig.item_size(&record).await);
            }
            two.send(&k2, &second).await
        };
        let (holder, waiter) = tokio::join!(holder, waiter);
        holders.push(Sample::new(holder, rig.log.since(mark, &one.tag)));
        waiters.push(Sample::new(waiter, rig.log.since(mark, &two.tag)));
    }
    let holders = Row::of("contended: the holder (slow write)", "synced", holders);
    let mut waiters = Row::of("contended: the other (record held)", "queued", waiters);
    waiters.note = held_sizes
        .iter()
        .max()
        .map(|size| format!("record item while held: {size} B"));
    rows.push(holders);
    rows.push(waiters.sized(rig).await);
    (rows, (one, two))
}

/// Events Salesforce answers 503 once: each is stored queued.
async fn queued(f: &Function, k: usize, rig: &Rig, one: &Sandbox, clock: &mut Clock) -> Row {
    let mut samples = Vec::new();
    for j in 0..k {
        let i = 6000 + 6 * j;
        rig.emulators.standin.add_fault(Fault::error(
            503,
            "SERVER_UNAVAILABLE",
            "The server is temporarily unavailable",
        ));
        // Credit notes link to an invoice already written, whatever order the redrive takes.
        let body = f.with_invoice(f.state(i, 0, clock.tick()), 2);
        samples.push(one.event(rig, &key(), &body).await);
    }
    Row::of("queued (Salesforce 503)", "queued", samples)
        .sized(rig)
        .await
}

/// One redrive run: its requests as a whole, and per retried event (the run's index
/// queries, and a cold start's secret and token, set apart).
async fn redrive_run(rig: &Rig, redrive: &Sandbox, what: &str) -> Vec<Row> {
    let mark = rig.log.len();
    let event = json!({ "source": "aws.events", "detail-type": "Scheduled Event", "detail": {} });
    let answer = match redrive.process.invoke(event, REDRIVE_TIMEOUT).await {
        Invocation::Response(report) => report,
        other => panic!("the redrive failed: {other:?}\n{}", redrive.process.logs()),
    };
    let exchanges = rig.log.since(mark, &redrive.tag);
    let per_run = |e: &Exchange| e.op == "Query" || e.op == "GetSecretValue" || e.op == "token";
    let claims = exchanges
        .iter()
        .filter(|e| e.step == Some("claim") && e.applied())
        .count();
    let synced = answer["synced"].as_u64().unwrap_or(0) as usize;
    println!("redrive run over {what}: {answer}");
    let answer = format!("{synced} synced");
    let run = Sample::new(answer.clone(), exchanges.clone());
    let mut run = Row::of(&format!("a run over the {what}"), &answer, vec![run]);
    run.note = Some(format!("{claims} events claimed"));
    // Split the rest by stored event: its claim, the record's take and release, the
    // Salesforce write between them, its complete.
    let rest: Vec<Exchange> = exchanges.into_iter().filter(|e| !per_run(e)).collect();
    let mut events: Vec<Vec<Exchange>> = Vec::new();
    for e in rest {
        match events.last_mut() {
            Some(current) if e.step != Some("claim") => current.push(e),
            _ => events.push(vec![e]),
        }
    }
    // A retry that reaches Salesforce was synced; one whose take is refused was skipped
    // (a newer state of its record was written meanwhile: the customer function's events
    // here all write one Account).
    let (mut synced, mut skipped) = (Vec::new(), Vec::new());
    for exchanges in events {
        let wrote = exchanges
            .iter()
            .any(|e| e.backend == Backend::Salesforce && e.op != "token" && e.status < 300);
        if wrote {
            synced.push(Sample::new("synced".into(), exchanges));
        } else {
            skipped.push(Sample::new("skipped".into(), exchanges));
        }
    }
    let mut rows = vec![run];
    for (answer, samples) in [("synced", synced), ("skipped", skipped)] {
        if !samples.is_empty() {
            let name = format!("retry of one ({answer})");
            let mut row = Row::of(&name, answer, samples);
            row.note = Some("answer: as the run's report counts it".into());
            rows.push(row);
        }
    }
    rows
}

// ---------------------------------------------------------------------------------------
// The rig: moto, the stand-ins, and per-sandbox taps.

struct Rig {
    moto: &'static Moto,
    dynamodb: aws_sdk_dynamodb::Client,
    emulators: Emulators,
    log: Log,
}

impl Rig {
    async fn start(moto: &'static Moto) -> Rig {
        Rig {
            moto,
            dynamodb: moto.dynamodb().await,
            emulators: Emulators::start(moto, "cost").await,
            log: Log::default(),
        }
    }

    /// Starts `binary` with taps of its own, tagged `tag`.
    async fn sandbox(&self, binary: &str, tag: &str) -> Sandbox {
        let aws = Tap::start(self.moto.endpoint(), Backend::Aws, tag, &self.log).await;
        let emulators = &self.emulators;
        let salesforce = Tap::start(
            &emulators.standin.url(),
            Backend::Salesforce,
            tag,
            &self.log,
        )
        .await;
        let lago = Tap::start(&emulators.lago.url(), Backend::Lago, tag, &self.log).await;
        let env = emulators.function_env(self.moto, &aws, &salesforce, &lago);
        let (process, _) = start(&bin(binary), &env).await;
        Sandbox {
            process,
            tag: tag.to_owned(),
            route: binary.trim_end_matches("-webhook").to_owned(),
        }
    }

    /// The size of the item `pk` now, by DynamoDB's item-size rules (read from moto
    /// directly, not through a tap, so not counted).
    async fn item_size(&self, pk: &str) -> Option<usize> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(&self.emulators.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .expect("moto answers")
            .item?;
        Some(item_size(&item))
    }

    /// The stand-ins' own counters against what the taps saw.
    fn cross_check(&self) {
        let all = self.log.0.lock().unwrap().clone();
        let count = |backend: Backend, token: bool| {
            all.iter()
                .filter(|e| e.backend == backend && (e.op == "token") == token)
                .count()
        };
        let stats = self.emulators.standin.stats();
        let lago = self.emulators.lago.stats();
        let refusals: Vec<&Exchange> = all.iter().filter(|e| e.refused()).collect();
        println!(
            "\ncross-check: Salesforce stand-in counted {} REST and {} token requests, the taps \
             {} and {}; Lago stand-in {} requests, the taps {}. Refused writes whose answer \
             carried the old item (ReturnValuesOnConditionCheckFailure): {} of {}",
            stats.rest_requests,
            stats.token_requests,
            count(Backend::Salesforce, false),
            count(Backend::Salesforce, true),
            lago.requests,
            count(Backend::Lago, false),
            refusals.iter().filter(|e| e.old_item).count(),
            refusals.len(),
        );
    }
}

struct Sandbox {
    process: LambdaProcess,
    tag: String,
    route: String,
}

impl Sandbox {
    fn with_timeout(self, timeout: Duration) -> Sandbox {
        Sandbox {
            process: self.process.with_function_timeout(timeout),
            ..self
        }
    }

    async fn send(&self, key: &str, body: &[u8]) -> String {
        deliver(&self.process, &self.route, key, body).await.0
    }

    /// Delivers one event and collects the requests this sandbox made for it.
    async fn event(&self, rig: &Rig, key: &str, body: &[u8]) -> Sample {
        let mark = rig.log.len();
        let answer = self.send(key, body).await;
        Sample::new(answer, rig.log.since(mark, &self.tag))
    }
}

/// A Lago unique key: a fresh UUID-shaped string (its length counts in the item sizes).
fn key() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = u64::from(std::process::id());
    format!("{pid:08x}-be9c-4{:03x}-a000-{n:012x}", n % 4096)
}

/// Epoch seconds handed out in order: each state newer than the one before.
struct Clock(i64);

impl Clock {
    fn tick(&mut self) -> i64 {
        self.0 += 1;
        self.0
    }
}

// ---------------------------------------------------------------------------------------
// The taps.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Aws,
    Salesforce,
    Lago,
}

/// One request through a tap, and its answer.
#[derive(Debug, Clone)]
struct Exchange {
    tag: String,
    backend: Backend,
    /// `UpdateItem`, `GetSecretValue`…; `token` or e.g. `PATCH sobjects/Lago_Invoice__c`
    /// for Salesforce; e.g. `GET customers` for Lago.
    op: String,
    /// The DynamoDB item (`pk`), or the index a query reads.
    item: Option<String>,
    /// What a DynamoDB write does, by the shape of its update expression.
    step: Option<&'static str>,
    consistent: bool,
    status: u16,
    /// The error type of an AWS error answer, e.g. `ConditionalCheckFailedException`.
    error: Option<String>,
    /// A refused write's answer carried the item as it was.
    old_item: bool,
    /// A write's table write units, by DynamoDB's rule: the larger of the item's sizes
    /// before and after it (a refused one: the item's size), in 1 KB units, at least 1.
    units: usize,
    started: Instant,
    ended: Instant,
}

impl Exchange {
    fn is_write(&self) -> bool {
        matches!(
            self.op.as_str(),
            "UpdateItem" | "PutItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems"
        )
    }

    fn is_read(&self) -> bool {
        matches!(
            self.op.as_str(),
            "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems"
        )
    }

    fn applied(&self) -> bool {
        self.status == 200
    }

    fn refused(&self) -> bool {
        self.error.as_deref() == Some("ConditionalCheckFailedException")
    }

    /// Index writes this applied write causes (see the module's doc).
    fn index_writes(&self) -> usize {
        if !self.is_write() || !self.applied() {
            return 0;
        }
        match self.step {
            Some("take" | "release" | "park" | "complete") => 1,
            Some("claim" | "take over") => 2,
            _ => 0,
        }
    }

    fn label(&self) -> String {
        let mark = if self.status < 300 {
            "✓".to_owned()
        } else if self.refused() {
            "✗".to_owned()
        } else {
            format!(" {}", self.error.clone().unwrap_or(self.status.to_string()))
        };
        match self.backend {
            Backend::Aws => match (self.step, self.item.as_deref()) {
                (Some(step), _) => format!("{} {step}{mark}", self.op),
                (None, Some(item)) if self.is_read() => {
                    let kind = item.split('#').next().unwrap_or(item);
                    let consistency = if self.consistent { "" } else { ", eventual" };
                    format!("{} {kind}{consistency}{mark}", self.op)
                }
                _ => format!("{}{mark}", self.op),
            },
            Backend::Salesforce => format!("Salesforce {} {}", self.op, self.status),
            Backend::Lago => format!("Lago {} {}", self.op, self.status),
        }
    }
}

#[derive(Default, Clone)]
struct Log(Arc<Mutex<Vec<Exchange>>>);

impl Log {
    fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// The exchanges of sandbox `tag` logged after the first `mark`, in order of start.
    fn since(&self, mark: usize, tag: &str) -> Vec<Exchange> {
        let mut exchanges: Vec<Exchange> = self.0.lock().unwrap()[mark..]
            .iter()
            .filter(|e| e.tag == tag)
            .cloned()
            .collect();
        exchanges.sort_by_key(|e| e.started);
        exchanges
    }
}

struct Tap {
    upstream: String,
    backend: Backend,
    tag: String,
    log: Log,
    http: reqwest::Client,
}

impl Tap {
    /// A pass-through proxy to `upstream` that logs into `log`; returns its URL.
    async fn start(upstream: &str, backend: Backend, tag: &str, log: &Log) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a tap");
        let url = format!("http://{}", listener.local_addr().expect("tap address"));
        let tap = Arc::new(Tap {
            upstream: upstream.to_owned(),
            backend,
            tag: tag.to_owned(),
            log: log.clone(),
            http: reqwest::Client::new(),
        });
        let router = Router::new().fallback(forward).with_state(tap);
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }
}

impl Tap {
    /// The size of item `pk` of `table` in moto now (0 when there is none), by DynamoDB's
    /// item-size rules; a bare signed-looking request, which moto accepts.
    async fn item_size(&self, table: &str, pk: &str) -> usize {
        let request = json!({
            "TableName": table,
            "Key": { "pk": { "S": pk } },
            "ConsistentRead": true,
        });
        let answer = self
            .http
            .post(&self.upstream)
            .header("x-amz-target", "DynamoDB_20120810.GetItem")
            .header("content-type", "application/x-amz-json-1.0")
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(request.to_string())
            .send()
            .await
            .expect("moto answers");
        let answer: Value = answer.json().await.expect("moto's JSON answer");
        answer["Item"].as_object().map_or(0, |item| {
            item.iter()
                .map(|(name, value)| name.len() + json_value_size(value))
                .sum()
        })
    }
}

/// [`value_size`] of a value in DynamoDB's JSON (`{"S": …}`, `{"M": {…}}`, …).
fn json_value_size(value: &Value) -> usize {
    use base64::Engine;
    let number = |n: &Value| number_size(n.as_str().unwrap_or_default());
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().len();
    let binary = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_or(0, |b| b.len())
    };
    let each = |v: &Value, f: &dyn Fn(&Value) -> usize| -> usize {
        v.as_array().map_or(0, |a| a.iter().map(f).sum())
    };
    match kind.as_str() {
        "S" => text(v),
        "N" => number(v),
        "B" => binary(v),
        "BOOL" | "NULL" => 1,
        "M" => {
            3 + v.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(name, v)| name.len() + json_value_size(v) + 1)
                    .sum::<usize>()
            })
        }
        "L" => 3 + each(v, &|v| json_value_size(v) + 1),
        "SS" => each(v, &text),
        "NS" => each(v, &number),
        "BS" => each(v, &binary),
        _ => 0,
    }
}

fn number_size(n: &str) -> usize {
    n.trim_start_matches('-')
        .trim_matches('0')
        .replace('.', "")
        .len()
        .div_ceil(2)
        + 1
}

async fn forward(State(tap): State<Arc<Tap>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("request body");
    let started = Instant::now();
    let path = parts.uri.path().to_owned();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(|t| t.rsplit('.').next().unwrap_or(t).to_owned());
    let request_json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let op = match tap.backend {
        Backend::Aws => target.unwrap_or_else(|| "(no X-Amz-Target)".to_owned()),
        Backend::Salesforce if path.contains("/oauth2/token") => "token".to_owned(),
        Backend::Salesforce => {
            // /services/data/v62.0/sobjects/Lago_Invoice__c/Lago_Id__c/… → sobjects/Lago_Invoice__c
            let rest: Vec<&str> = path.split('/').skip(4).take(2).collect();
            format!("{} {}", parts.method, rest.join("/"))
        }
        Backend::Lago => {
            let collection = path.trim_start_matches("/api/v1/").split('/').next();
            format!("{} {}", parts.method, collection.unwrap_or_default())
        }
    };
    let item = request_json["Key"]["pk"]["S"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| request_json["IndexName"].as_str().map(str::to_owned));
    let step = request_json["UpdateExpression"].as_str().map(step_of);
    let consistent = request_json["ConsistentRead"].as_bool().unwrap_or(false);

    // Item sizes around a write, read from moto apart (neither logged nor through a tap).
    let sized = tap.backend == Backend::Aws
        && matches!(op.as_str(), "UpdateItem" | "PutItem" | "DeleteItem");
    let size = || async {
        match (sized, request_json["TableName"].as_str(), item.as_deref()) {
            (true, Some(table), Some(pk)) => tap.item_size(table, pk).await,
            _ => 0,
        }
    };
    let before = size().await;
    let mut headers = end_to_end(parts.headers);
    headers.remove(HOST);
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = tap
        .http
        .request(parts.method, format!("{}{path_and_query}", tap.upstream))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("the emulator answers");
    let status = answer.status();
    let mut response = Response::builder().status(status);
    *response.headers_mut().expect("a response builder") = end_to_end(answer.headers().clone());
    let bytes = answer.bytes().await.expect("the emulator's answer body");
    let (error, old_item) = match (tap.backend, status.is_success()) {
        (Backend::Aws, false) => {
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let kind = answer["__type"]
                .as_str()
                .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned());
            (kind, answer.get("Item").is_some())
        }
        _ => (None, false),
    };
    let after = size().await;
    let units = if sized {
        before.max(after).div_ceil(1024).max(1)
    } else {
        0
    };
    tap.log.0.lock().unwrap().push(Exchange {
        tag: tap.tag.clone(),
        backend: tap.backend,
        op,
        item,
        step,
        consistent,
        status: status.as_u16(),
        error,
        old_item,
        units,
        started,
        ended: Instant::now(),
    });
    response.body(Body::from(bytes)).expect("a valid response")
}

/// What a write does, told by its update expression (shared/src/store/dynamodb.rs).
fn step_of(update: &str) -> &'static str {
    if update.contains(":held") {
        "take"
    } else if update.contains(":in_progress") {
        "claim"
    } else if update.contains(":completed") {
        "complete"
    } else if update.contains("#parked = :status") {
        "park"
    } else if update.contains("REMOVE #holder") {
        "release"
    } else if update.contains("#token = :token") {
        "take over"
    } else if update.contains("#account") {
        "link"
    } else if update.contains("ADD #waiting") {
        "await parent"
    } else if update.contains("DELETE #waiting") {
        "parent linked"
    } else {
        "other"
    }
}

/// `headers` without the ones that concern one connection only (moto answers
/// `Connection: close`; the functions keep their connections to the tap).
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    for name in [CONNECTION, TRANSFER_ENCODING, CONTENT_LENGTH] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers
}

// ---------------------------------------------------------------------------------------
// Figures.

/// One event: its answer's `status` and its sandbox's requests.
struct Sample {
    answer: String,
    exchanges: Vec<Exchange>,
}

impl Sample {
    fn new(answer: String, exchanges: Vec<Exchange>) -> Sample {
        Sample { answer, exchanges }
    }

    fn expect(&self, answer: &str, sandbox: &Sandbox) {
        assert_eq!(self.answer, answer, "{}", sandbox.process.logs());
    }

    /// Requests made one after the other: a request that starts before the answer of the
    /// one before it runs beside it, in the same round trip.
    fn rounds(&self) -> usize {
        let mut rounds = 0;
        let mut until: Option<Instant> = None;
        for e in &self.exchanges {
            match until {
                Some(end) if e.started < end => until = Some(end.max(e.ended)),
                _ => {
                    rounds += 1;
                    until = Some(e.ended);
                }
            }
        }
        rounds
    }

    /// E.g. `UpdateItem take✓ → Salesforce PATCH sobjects/Lago_Invoice__c 201 → …`, runs of
    /// the same request written once with ×k.
    fn sequence(&self) -> String {
        let mut parts: Vec<(String, usize)> = Vec::new();
        for e in &self.exchanges {
            let label = e.label();
            match parts.last_mut() {
                Some((last, k)) if *last == label => *k += 1,
                _ => parts.push((label, 1)),
            }
        }
        let parts: Vec<String> = parts
            .into_iter()
            .map(|(label, k)| {
                if k > 1 {
                    format!("{label} ×{k}")
                } else {
                    label
                }
            })
            .collect();
        if parts.is_empty() {
            "(no request)".to_owned()
        } else {
            parts.join(" → ")
        }
    }
}

/// A scenario's events.
struct Row {
    name: String,
    samples: Vec<Sample>,
    expected: String,
    note: Option<String>,
    /// Sizes of the items its applied writes left, by kind (`record`, `delivery`…): max.
    sizes: BTreeMap<String, usize>,
}

impl Row {
    fn of(name: &str, expected: &str, samples: Vec<Sample>) -> Row {
        Row {
            name: name.to_owned(),
            samples,
            expected: expected.to_owned(),
            note: None,
            sizes: BTreeMap::new(),
        }
    }

    /// Reads the items the scenario wrote, for their sizes.
    async fn sized(mut self, rig: &Rig) -> Row {
        let mut items: Vec<String> = self
            .samples
            .iter()
            .flat_map(|s| &s.exchanges)
            .filter(|e| e.is_write() && e.applied())
            .filter_map(|e| e.item.clone())
            .collect();
        items.sort();
        items.dedup();
        for item in items {
            if let Some(size) = rig.item_size(&item).await {
                let kind = item.split('#').next().unwrap_or_default().to_owned();
                let max = self.sizes.entry(kind).or_default();
                *max = (*max).max(size);
            }
        }
        self
    }

    fn per_event(&self, count: impl Fn(&Exchange) -> usize) -> f64 {
        let total: usize = self
            .samples
            .iter()
            .flat_map(|s| &s.exchanges)
            .map(count)
            .sum();
        total as f64 / self.samples.len().max(1) as f64
    }

    /// Read units per event: items here are under 4 KB, so 1 a strongly consistent read,
    /// ½ an eventually consistent one (a query's minimum).
    fn read_units(&self) -> f64 {
        let unit = |e: &Exchange| match (e.is_read(), e.consistent) {
            (true, true) => 1.0,
            (true, false) => 0.5,
            _ => 0.0,
        };
        let total: f64 = self
            .samples
            .iter()
            .flat_map(|s| &s.exchanges)
            .map(unit)
            .sum();
        total / self.samples.len().max(1) as f64
    }

    fn answers(&self) -> String {
        let mut answers: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &self.samples {
            *answers.entry(&s.answer).or_default() += 1;
        }
        let unexpected = answers.keys().any(|a| *a != self.expected);
        let text: Vec<String> = answers.iter().map(|(a, k)| format!("{a} {k}")).collect();
        if unexpected {
            format!("{} (expected {})", text.join(", "), self.expected)
        } else {
            text.join(", ")
        }
    }
}

/// On-demand prices in us-east-1 (since November 2024), $ per million request units; index
/// writes are billed as table writes.
const WRITE_UNIT: f64 = 0.625;
const READ_UNIT: f64 = 0.125;

fn print_rows(binary: &str, rows: &[Row]) {
    println!("\n{binary}");
    println!(
        "  {:<46} {:>3} {:>7} {:>7} {:>5} {:>5} {:>5} {:>5} {:>4} {:>5} {:>5} {:>4} {:>5} {:>6} {:>7}",
        "scenario (per event)",
        "n",
        "writes✓",
        "refused",
        "WRU",
        "GSI*",
        "reads",
        "RRU",
        "SF",
        "token",
        "Lago",
        "SecM",
        "reqs",
        "rounds",
        "DDB$/M"
    );
    for row in rows {
        let n = row.samples.len().max(1) as f64;
        let rounds: usize = row.samples.iter().map(Sample::rounds).sum();
        let wru = row.per_event(|e| e.units);
        let gsi = row.per_event(Exchange::index_writes);
        let rru = row.read_units();
        println!(
            "  {:<46} {:>3} {:>7} {:>7} {:>5} {:>5} {:>5} {:>5} {:>4} {:>5} {:>5} {:>4} {:>5} {:>6} {:>7.3}",
            row.name,
            row.samples.len(),
            fmt(row.per_event(|e| usize::from(e.is_write() && e.applied()))),
            fmt(row.per_event(|e| usize::from(e.is_write() && e.refused()))),
            fmt(wru),
            fmt(gsi),
            fmt(row.per_event(|e| usize::from(e.is_read()))),
            fmt(rru),
            fmt(row.per_event(|e| usize::from(
                e.backend == Backend::Salesforce && e.op != "token"
            ))),
            fmt(row.per_event(|e| usize::from(e.op == "token"))),
            fmt(row.per_event(|e| usize::from(e.backend == Backend::Lago))),
            fmt(row.per_event(|e| usize::from(e.op == "GetSecretValue"))),
            fmt(row.per_event(|_| 1)),
            fmt(rounds as f64 / n),
            (wru + gsi) * WRITE_UNIT + rru * READ_UNIT,
        );
        let odd = row.per_event(|e| {
            usize::from(
                (e.is_write() && !e.applied() && !e.refused())
                    || (e.backend == Backend::Aws
                        && !e.is_write()
                        && !e.is_read()
                        && e.op != "GetSecretValue"),
            )
        });
        let mut notes = vec![format!("answers: {}", row.answers())];
        if odd > 0.0 {
            notes.push(format!("other AWS requests or failed writes: {}", fmt(odd)));
        }
        if !row.sizes.is_empty() {
            let sizes: Vec<String> = row
                .sizes
                .iter()
                .map(|(kind, size)| format!("{kind} {size} B"))
                .collect();
            notes.push(format!("largest item left: {}", sizes.join(", ")));
        }
        notes.extend(row.note.clone());
        println!("      {}", notes.join("; "));
        if let Some(first) = row.samples.first() {
            println!("      e.g. {}", first.sequence());
        }
    }
}

/// `2` for 2.0, `1.50` otherwise.
fn fmt(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// An item's size by DynamoDB's rules: names and values in UTF-8 bytes, numbers about one
/// byte per two significant digits plus one, 3 bytes per map or list plus 1 per element.
fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

fn value_size(v: &AttributeValue) -> usize {
    let number = number_size;
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(name, v)| name.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}
