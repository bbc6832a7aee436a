//! Measures the release-built function binaries as Lambda runs them: each under the kit's
//! Lambda Runtime API emulator, with moto, the Salesforce stand-in and the Lago stand-in
//! behind metering proxies, beside a bare `lambda_http` hello-world. Prints init time,
//! first-event and warm latency, the warm overhead beyond the emulators, peak RSS, and the
//! Salesforce, token, Lago, DynamoDB and Secrets Manager requests per event.
//!
//! With `--cost`, measures instead what each kind of event costs in requests, writes
//! applied and refused, and sequential round trips (see cost.rs).
//!
//! Warm overhead beyond the emulators, per event: the function's round trip, minus the time
//! moto and the stand-in spent on its requests (metered by the proxies, from a request
//! received to its answer ready), minus the hello-world's round trip for the same event
//! (the Runtime API emulator's own cost), minus what a bare HTTP client pays beyond the
//! metered time for the same three exchanges through the same proxies (two `UpdateItem`s in
//! moto, take and release, and one request to the stand-in): the hops, and the wake-up after
//! waiting on moto. What is left is the function's own work. The figure without that last subtraction is printed
//! too. Also printed: the CPU time the function process used per warm event (it uses none
//! while it waits).
//!
//! Usage: `lambda-bench [--events N (500)] [--inits K (20)] [--env NAME=VALUE]...`, where
//! `--env` adds a variable to the functions' environment (e.g. to try SSL_CERT_FILE);
//! `lambda-bench --cost [--events N (10)] [--contended K (3)]`, which also needs the
//! `redrive` binary. scripts/bench.sh builds and runs both (steps `lambda` and `cost`).

mod cost;
mod procfs;
mod workload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lago_sync::store::REMEMBERED_DELIVERIES;
use sync_testkit::apigw::{response, HttpEvent};
use sync_testkit::events::{
    self, flagged_account, outbound_message, HMAC_KEY, ORG_ID, OUTBOUND_TOKEN,
};
use sync_testkit::lago::signed_headers;
use sync_testkit::lago_standin::{Dataset, LagoStandin, API_KEY as LAGO_API_KEY};
use sync_testkit::lambda::{Invocation, LambdaProcess};
use sync_testkit::moto::{unique_name, Moto};
use sync_testkit::standin::{Standin, StandinConfig};

use sync_testkit::proxy::{Counts, MeteringProxy, BASELINE};
use workload::{Function, FUNCTIONS};

/// Builds event `i` of a kind for a function: its unique key and body.
type EventOf = fn(&Function, usize) -> (String, Vec<u8>);

const TIMEOUT: Duration = Duration::from_secs(30);
const HELLO: &str = "hello-lambda";
/// The function of Salesforce's outbound messages ("Bill with Lago").
const OUTBOUND: &str = "salesforce-account";
/// Events of each kind that must not reach Salesforce, per function.
const NO_WRITE_EVENTS: usize = 20;

#[tokio::main]
async fn main() {
    if flag("--cost") {
        cost::run(arg("--events", 10), arg("--contended", 3)).await;
        return;
    }
    let (events, inits) = (arg("--events", 500), arg("--inits", 20));
    let moto = Moto::shared().await;
    let backends = Backends::start(moto).await;
    let mut env = backends.function_env(moto);
    env.extend(extra_env());

    println!("init: spawn → first /invocation/next, {inits} spawns per binary, round-robin");
    let binaries: Vec<&str> = std::iter::once(HELLO)
        .chain(FUNCTIONS.iter().map(|f| f.binary))
        .chain([OUTBOUND])
        .collect();
    let mut init_ms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for _ in 0..inits {
        for binary in &binaries {
            let (_, init) = start(&bin(binary), &env).await;
            init_ms.entry(binary).or_default().push(ms(init));
        }
    }
    let hello_init = percentile(&init_ms[HELLO], 0.5);
    println!(
        "{:<22} {:>8} {:>8} {:>8} {:>10}",
        "binary", "p50 ms", "min ms", "max ms", "/ hello"
    );
    for binary in &binaries {
        let samples = &init_ms[binary];
        let p50 = percentile(samples, 0.5);
        println!(
            "{binary:<22} {p50:>8.2} {:>8.2} {:>8.2} {:>10.2}",
            percentile(samples, 0.0),
            percentile(samples, 1.0),
            p50 / hello_init
        );
    }

    let (hello, _) = start(&bin(HELLO), &[]).await;
    let hello_pid = procfs::child_pid(&bin(HELLO));
    let hello_rss_init = procfs::peak_rss_kib(hello_pid);
    deliver(&hello, "hello", "warm-up", b"{}").await;
    let hello_cpu = procfs::cpu_time(hello_pid);
    for function in &FUNCTIONS {
        measure(function, events, &backends, &env, &hello).await;
    }
    measure_outbound(events, &backends, &env).await;
    let invocations = events * FUNCTIONS.len();
    println!(
        "\n{HELLO}: CPU {:.3} ms/event over {invocations} warm events; \
         peak RSS {:.1} MiB after init, {:.1} MiB after all",
        ms(procfs::cpu_time(hello_pid) - hello_cpu) / invocations as f64,
        mib(hello_rss_init),
        mib(procfs::peak_rss_kib(hello_pid)),
    );
}

/// Runs one function through its first event, `n` warm written events and the events that
/// must not reach Salesforce, and prints what it cost.
async fn measure(
    f: &Function,
    n: usize,
    backends: &Backends,
    env: &[(String, String)],
    hello: &LambdaProcess,
) {
    let path = bin(f.binary);
    let (function, init) = start(&path, env).await;
    let pid = procfs::child_pid(&path);
    let rss_init = procfs::peak_rss_kib(pid);
    let started = backends.tally();
    let mut kinds = Vec::new();

    let written_key = |i: usize| format!("{}-written-{i}", f.route);
    let (status, first) = deliver(&function, f.route, &written_key(0), &f.written(0)).await;
    expect(&function, &status, "synced");
    kinds.push((
        "first event",
        vec![ms(first)],
        backends.tally().since(&started),
    ));

    let before = backends.tally();
    let cpu_before = procfs::cpu_time(pid);
    let (mut warm, mut emulators, mut runtime, mut hops) = (vec![], vec![], vec![], vec![]);
    let (mut beyond_meter, mut overhead) = (vec![], vec![]);
    for i in 1..=n {
        let (key, body) = (written_key(i), f.written(i));
        let busy = backends.emulators_busy();
        let (status, answered) = deliver(&function, f.route, &key, &body).await;
        expect(&function, &status, "synced");
        let in_emulators = backends.emulators_busy() - busy;
        let (_, round_trip) = deliver(hello, f.route, &key, &body).await;
        let bare_hops = backends.bare_client_hops().await;
        warm.push(ms(answered));
        emulators.push(ms(in_emulators));
        runtime.push(ms(round_trip));
        hops.push(ms(bare_hops));
        beyond_meter.push(ms(answered) - ms(in_emulators) - ms(round_trip));
        overhead.push(ms(answered) - ms(in_emulators) - ms(round_trip) - ms(bare_hops));
    }
    let cpu_per_event = ms(procfs::cpu_time(pid) - cpu_before) / n as f64;
    kinds.push((
        "written (warm)",
        warm.clone(),
        backends.tally().since(&before),
    ));

    // A record remembers its last REMEMBERED_DELIVERIES deliveries (the customer function
    // writes one Account for all its events): the duplicates are of the last written ones.
    let duplicates = REMEMBERED_DELIVERIES.min(n);
    let no_write: [(&str, &str, usize, EventOf); 4] = [
        ("duplicate", "duplicate", n - duplicates, |f, i| {
            (format!("{}-written-{i}", f.route), f.written(i))
        }),
        ("ignored (other family)", "ignored", 0, |f, i| {
            (format!("{}-ignored-{i}", f.route), f.foreign())
        }),
        ("skipped (no Account)", "skipped", 0, |f, i| {
            (format!("{}-unlinked-{i}", f.route), f.unlinked(i))
        }),
        ("skipped (older state)", "skipped", 0, |f, i| {
            (format!("{}-older-{i}", f.route), f.older(i))
        }),
    ];
    for (kind, label, first, event) in no_write {
        let before = backends.tally();
        let mut latencies = Vec::new();
        let count = if label == "duplicate" {
            duplicates
        } else {
            NO_WRITE_EVENTS.min(n)
        };
        for i in first + 1..=first + count {
            let (key, body) = event(f, i);
            let (status, answered) = deliver(&function, f.route, &key, &body).await;
            expect(&function, &status, label);
            latencies.push(ms(answered));
        }
        kinds.push((kind, latencies, backends.tally().since(&before)));
    }

    let total = backends.tally().since(&started);
    println!("\n{} (init {:.2} ms in this run)", f.binary, ms(init));
    println!(
        "  warm, {n} written events: p50 {:.2} ms, p99 {:.2} ms",
        percentile(&warm, 0.5),
        percentile(&warm, 0.99)
    );
    println!(
        "  in moto and the stand-in p50 {:.2} ms; Runtime API round trip (hello) p50 {:.2} ms",
        percentile(&emulators, 0.5),
        percentile(&runtime, 0.5)
    );
    println!(
        "  a bare client's 3 exchanges beyond the emulators' metered time p50 {:.2} ms",
        percentile(&hops, 0.5)
    );
    println!(
        "  overhead beyond the emulators p50 {:.2} ms, p99 {:.2} ms \
         (beyond their metered time only: p50 {:.2} ms, p99 {:.2} ms); CPU {cpu_per_event:.3} ms/event",
        percentile(&overhead, 0.5),
        percentile(&overhead, 0.99),
        percentile(&beyond_meter, 0.5),
        percentile(&beyond_meter, 0.99),
    );
    println!(
        "  peak RSS {:.1} MiB after init, {:.1} MiB after all events; Salesforce token requests {}",
        mib(rss_init),
        mib(procfs::peak_rss_kib(pid)),
        total.tokens
    );
    println!(
        "  {:<24} {:>6} {:>8} {:>12} {:>7} {:>8}  AWS requests/event",
        "events", "n", "p50 ms", "Salesforce/ev", "tokens", "Lago/ev"
    );
    for (kind, latencies, tally) in &kinds {
        let count = latencies.len() as f64;
        println!(
            "  {kind:<24} {:>6} {:>8.2} {:>12.2} {:>7} {:>8.2}  {}",
            latencies.len(),
            percentile(latencies, 0.5),
            tally.salesforce as f64 / count,
            tally.tokens,
            tally.lago as f64 / count,
            tally.aws_per_event(count)
        );
    }
}

/// A table and a secret in moto, a Salesforce stand-in and a Lago stand-in (for the
/// lookups of customers without an Account): what both modes run the functions against.
struct Emulators {
    table: String,
    secret: String,
    standin: Standin,
    lago: LagoStandin,
}

impl Emulators {
    async fn start(moto: &Moto, prefix: &str) -> Emulators {
        let (table, secret) = (unique_name(prefix), unique_name(prefix));
        moto.create_table(&table).await;
        moto.create_secret(&secret, &events::secret_json(HMAC_KEY))
            .await;
        let standin = Standin::start(StandinConfig {
            api_limit: u64::from(u32::MAX),
            ..StandinConfig::default()
        })
        .await;
        let lago = LagoStandin::start(LAGO_API_KEY, Dataset::default()).await;
        Emulators {
            table,
            secret,
            standin,
            lago,
        }
    }

    /// A function's environment, as template.yaml sets it, reaching AWS, Salesforce and
    /// Lago at these URLs (the emulators', or proxies in front of them).
    fn function_env(
        &self,
        moto: &Moto,
        aws: &str,
        salesforce: &str,
        lago: &str,
    ) -> Vec<(String, String)> {
        let mut env = moto.env();
        env.extend(
            [
                ("AWS_ENDPOINT_URL_DYNAMODB", aws.to_owned()),
                ("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws.to_owned()),
                ("SECRET_ID", self.secret.clone()),
                ("IDEMPOTENCY_TABLE", self.table.clone()),
                ("SALESFORCE_URL", salesforce.to_owned()),
                ("SALESFORCE_API_VERSION", "62.0".to_owned()),
                ("LAGO_API_URL", lago.to_owned()),
                ("SALESFORCE_ORG_ID", ORG_ID.to_owned()),
                ("AWS_LAMBDA_LOG_LEVEL", "INFO".to_owned()),
            ]
            .map(|(name, value)| (name.to_owned(), value)),
        );
        env
    }
}

/// The emulators, each behind a metering proxy.
struct Backends {
    bare: BareClient,
    aws: MeteringProxy,
    salesforce: MeteringProxy,
    lago_api: MeteringProxy,
    emulators: Emulators,
}

impl Backends {
    async fn start(moto: &Moto) -> Backends {
        let emulators = Emulators::start(moto, "bench").await;
        Backends {
            bare: BareClient::start(),
            aws: MeteringProxy::start(moto.endpoint()).await,
            salesforce: MeteringProxy::start(&emulators.standin.url()).await,
            lago_api: MeteringProxy::start(&emulators.lago.url()).await,
            emulators,
        }
    }

    /// A function's environment, with the emulators behind the proxies.
    fn function_env(&self, moto: &Moto) -> Vec<(String, String)> {
        let (aws, salesforce, lago) = (&self.aws.url, &self.salesforce.url, &self.lago_api.url);
        self.emulators.function_env(moto, aws, salesforce, lago)
    }

    fn tally(&self) -> Tally {
        let stats = self.emulators.standin.stats();
        Tally {
            salesforce: stats.rest_requests,
            tokens: stats.token_requests,
            lago: self.emulators.lago.stats().requests,
            aws: self.aws.counts(),
        }
    }

    /// A written event's exchanges made by the bare client through the same proxies: two
    /// DynamoDB `UpdateItem`s (of a scratch item, unsigned, which moto accepts) around one
    /// request to the stand-in. Returns their round trips minus the emulators' metered time
    /// on them: the hops and wake-ups any client pays for these three exchanges.
    async fn bare_client_hops(&self) -> Duration {
        let update = serde_json::json!({
            "TableName": self.emulators.table,
            "Key": { "pk": { "S": "bench-baseline" } },
            "UpdateExpression": "SET #n = :n",
            "ExpressionAttributeNames": { "#n": "n" },
            "ExpressionAttributeValues": { ":n": { "N": "1" } },
        })
        .to_string();
        let authorization = "AWS4-HMAC-SHA256 \
            Credential=testing/20260101/us-east-1/dynamodb/aws4_request, \
            SignedHeaders=host, Signature=0";
        let dynamodb = || {
            let headers = [
                ("x-amz-target", "DynamoDB_20120810.UpdateItem"),
                ("content-type", "application/x-amz-json-1.0"),
                ("authorization", authorization),
            ];
            request(reqwest::Method::POST, &self.aws.url, &headers, &update)
        };
        let stats = format!("{}/__standin/stats", self.salesforce.url);
        let salesforce = request(reqwest::Method::GET, &stats, &[], "");
        let metered = self.aws.baseline_busy() + self.salesforce.baseline_busy();
        let round_trips = self
            .bare
            .exchange(vec![dynamodb(), salesforce, dynamodb()])
            .await;
        round_trips - (self.aws.baseline_busy() + self.salesforce.baseline_busy() - metered)
    }

    /// The time moto and the stand-ins have spent on requests so far.
    fn emulators_busy(&self) -> Duration {
        self.aws.busy() + self.salesforce.busy() + self.lago_api.busy()
    }
}

/// A request marked [`BASELINE`] for the proxies.
fn request(
    method: reqwest::Method,
    url: &str,
    headers: &[(&'static str, &str)],
    body: &str,
) -> reqwest::Request {
    let mut request = reqwest::Request::new(method, url.parse().expect("a URL"));
    for (name, value) in [(BASELINE, "1")].iter().chain(headers) {
        let name = reqwest::header::HeaderName::from_static(name);
        request
            .headers_mut()
            .insert(name, value.parse().expect("a header value"));
    }
    *request.body_mut() = Some(body.to_owned().into());
    request
}

type Batch = (
    Vec<reqwest::Request>,
    tokio::sync::oneshot::Sender<Duration>,
);

/// A bare keep-alive HTTP client (reqwest) on its own thread and one-thread runtime, as a
/// function has, so that it waits for and wakes from the emulators' answers as a function does.
struct BareClient {
    batches: tokio::sync::mpsc::UnboundedSender<Batch>,
}

impl BareClient {
    fn start() -> BareClient {
        let (batches, mut queue) = tokio::sync::mpsc::unbounded_channel::<Batch>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let client = reqwest::Client::new();
                while let Some((batch, done)) = queue.recv().await {
                    let started = Instant::now();
                    for request in batch {
                        let answer = client.execute(request).await.expect("the proxy answers");
                        assert!(answer.status().is_success(), "{answer:?}");
                        answer.bytes().await.expect("the proxy's answer");
                    }
                    let _ = done.send(started.elapsed());
                }
            });
        });
        BareClient { batches }
    }

    /// Sends `batch` one request after the other; their total round trip.
    async fn exchange(&self, batch: Vec<reqwest::Request>) -> Duration {
        let (done, elapsed) = tokio::sync::oneshot::channel();
        self.batches
            .send((batch, done))
            .expect("the bare client runs");
        elapsed.await.expect("the bare client answers")
    }
}

/// Requests the backends received: Salesforce REST calls, token requests, Lago API
/// requests, AWS by operation.
struct Tally {
    salesforce: u64,
    tokens: u64,
    lago: u64,
    aws: Counts,
}

impl Tally {
    fn since(&self, before: &Tally) -> Tally {
        let aws = self
            .aws
            .iter()
            .map(|(op, n)| (op.clone(), n - before.aws.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Tally {
            salesforce: self.salesforce - before.salesforce,
            tokens: self.tokens - before.tokens,
            lago: self.lago - before.lago,
            aws,
        }
    }

    /// E.g. `UpdateItem 3.00, GetSecretValue 1.00`, or `0`.
    fn aws_per_event(&self, events: f64) -> String {
        let ops: Vec<String> = self
            .aws
            .iter()
            .map(|(op, n)| {
                let name = op.rsplit('.').next().unwrap_or(op);
                format!("{name} {:.2}", *n as f64 / events)
            })
            .collect();
        if ops.is_empty() {
            "0".to_owned()
        } else {
            ops.join(", ")
        }
    }
}

/// The `salesforce-account` function (contract §8): `n` outbound messages of one new
/// flagged Account each, then the same messages again (Salesforce's redeliveries).
async fn measure_outbound(n: usize, backends: &Backends, env: &[(String, String)]) {
    let path = bin(OUTBOUND);
    let (function, init) = start(&path, env).await;
    let pid = procfs::child_pid(&path);
    let rss_init = procfs::peak_rss_kib(pid);
    let message = |i: usize| {
        let account = format!("001{i:012}AAA");
        let stamp = format!("2026-12-02T07:{:02}:{:02}.000Z", i / 60 % 60, i % 60);
        let fields = flagged_account(&account, &format!("Bench {i}"), &stamp);
        outbound_message(ORG_ID, &[(&format!("04l{i:015}"), fields)])
    };
    let send = |body: String| {
        let function = &function;
        async move {
            let event = HttpEvent::outbound(OUTBOUND_TOKEN, &body);
            let ((status, _, body), elapsed) = invoke(function, event).await;
            assert_eq!(status, 200, "{body}\n{}", function.logs());
            elapsed
        }
    };
    send(message(0)).await;
    let mut rows = Vec::new();
    for (kind, pass) in [("pushed (warm)", 1..=n), ("redelivered", 1..=n)] {
        let before = backends.tally();
        let cpu_before = procfs::cpu_time(pid);
        let mut latencies = Vec::new();
        for i in pass {
            latencies.push(ms(send(message(i)).await));
        }
        let cpu = ms(procfs::cpu_time(pid) - cpu_before) / n as f64;
        rows.push((kind, latencies, backends.tally().since(&before), cpu));
    }
    println!("\n{OUTBOUND} (init {:.2} ms in this run)", ms(init));
    println!(
        "  peak RSS {:.1} MiB after init, {:.1} MiB after all messages",
        mib(rss_init),
        mib(procfs::peak_rss_kib(pid))
    );
    println!(
        "  {:<24} {:>6} {:>8} {:>8} {:>12} {:>8}  AWS requests/message",
        "messages", "n", "p50 ms", "p99 ms", "Salesforce/m", "Lago/m"
    );
    for (kind, latencies, tally, cpu) in &rows {
        let count = latencies.len() as f64;
        println!(
            "  {kind:<24} {:>6} {:>8.2} {:>8.2} {:>12.2} {:>8.2}  {} (CPU {cpu:.3} ms/message)",
            latencies.len(),
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            tally.salesforce as f64 / count,
            tally.lago as f64 / count,
            tally.aws_per_event(count)
        );
    }
}

/// Starts `binary` and waits for its first `/invocation/next`: its init time.
async fn start(binary: &Path, env: &[(String, String)]) -> (LambdaProcess, Duration) {
    let process = LambdaProcess::start(binary, env).await;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(init) = process.time_to_first_next() {
            return (process, init);
        }
        assert!(
            Instant::now() < deadline,
            "{} did not poll for an event:\n{}",
            binary.display(),
            process.logs()
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Sends `body`, signed and keyed, as API Gateway would; the answer's `status` and the round trip.
async fn deliver(
    function: &LambdaProcess,
    route: &str,
    key: &str,
    body: &[u8],
) -> (String, Duration) {
    let event = HttpEvent::webhook(route)
        .headers(signed_headers(HMAC_KEY, key, body))
        .body(body.to_vec());
    let ((_, _, answer), elapsed) = invoke(function, event).await;
    let status = answer["status"].as_str().unwrap_or_default().to_owned();
    (status, elapsed)
}

/// Invokes `function` with `event` as API Gateway would: its answer, read as API Gateway
/// reads it, and the round trip.
async fn invoke(
    function: &LambdaProcess,
    event: HttpEvent,
) -> ((u16, Vec<(String, String)>, serde_json::Value), Duration) {
    let started = Instant::now();
    let invocation = function.invoke(event.to_json(), TIMEOUT).await;
    let elapsed = started.elapsed();
    let Invocation::Response(answer) = invocation else {
        panic!("no answer: {invocation:?}\n{}", function.logs());
    };
    (response(&answer), elapsed)
}

fn expect(function: &LambdaProcess, status: &str, expected: &str) {
    assert_eq!(status, expected, "{}", function.logs());
}

/// A binary built beside this one (target/release).
fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("this program's path");
    exe.with_file_name(name)
}

/// The value after `name` on the command line, else `default`.
fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} takes a number")),
    }
}

/// Whether `name` is on the command line.
fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The `--env NAME=VALUE` options.
fn extra_env() -> Vec<(String, String)> {
    let args: Vec<String> = std::env::args().collect();
    args.windows(2)
        .filter(|pair| pair[0] == "--env")
        .map(|pair| {
            let (name, value) = pair[1].split_once('=').expect("--env takes NAME=VALUE");
            (name.to_owned(), value.to_owned())
        })
        .collect()
}

/// Nearest-rank percentile, `q` in 0..=1.
fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
