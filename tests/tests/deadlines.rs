//! Contract §7.7: every AWS call fits the invocation's deadline, so a slow AWS answers `503`
//! before Lago's 30 s timeout instead of the function being killed mid-way. A proxy in front
//! of moto holds AWS's answers back; the delivery must answer `503 unavailable` before its
//! deadline, although the SDK's own operation timeout alone would let it wait longer, and
//! Lago's retry once AWS is fast again is synced: nothing is lost.
//! The end-to-end tests run the built `invoice-webhook`: `cargo build --workspace --bins` first.

use std::future::Future;
use std::time::{Duration, Instant};

use aws_config::timeout::TimeoutConfig;
use aws_config::SdkConfig;
use lago_sync::pipeline::{App, LagoReader};
use lago_sync::salesforce::SalesforceClient;
use lago_sync::secrets::SecretCache;
use lago_sync::store::{DynamoDbStore, RecordGuard};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::apigw::response;
use sync_testkit::events::{self, ACCOUNT, HMAC_KEY};
use sync_testkit::function_stack::FunctionStack;
use sync_testkit::inprocess::delivery;
use sync_testkit::lago::sign;
use sync_testkit::lambda::Invocation;
use sync_testkit::moto::{closed_endpoint, unique_name, Moto};
use sync_testkit::proxy::MeteringProxy;
use sync_testkit::standin::{Standin, StandinConfig};

/// The time the first delivery has: less than the SDK's operation timeout (5 s), so only
/// the deadline bound makes it answer in time.
const TIME_LEFT: Duration = Duration::from_secs(4);
/// How long the slow AWS holds its answers back: longer than any timeout involved.
const SLOW: Duration = Duration::from_secs(10);
/// Lago's retry, once AWS is fast again, has the function's usual time.
const RETRY_TIME_LEFT: Duration = Duration::from_secs(20);
/// How long the end-to-end test waits for an answer (beyond the deadline: a late answer
/// must fail the deadline assertion, not the invocation).
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The SDK timeouts the functions use: an operation may take 5 s, longer than [`TIME_LEFT`].
fn function_timeouts() -> TimeoutConfig {
    lago_sync::entrypoint::aws_timeouts()
}

/// moto, its fast and slow ways in, a fresh table and secret, and the Salesforce stand-in.
struct Aws {
    /// moto reached directly.
    fast: SdkConfig,
    /// moto reached through [`Aws::proxy`], which turns slow on demand.
    slow: SdkConfig,
    proxy: MeteringProxy,
    table: String,
    secret: String,
    standin: Standin,
}

impl Aws {
    async fn start() -> Aws {
        let moto = Moto::shared().await;
        let (table, secret) = (unique_name("deadlines"), unique_name("deadlines"));
        moto.create_table(&table).await;
        moto.create_secret(&secret, &events::secret_json(HMAC_KEY))
            .await;
        let proxy = MeteringProxy::start(moto.endpoint()).await;
        let fast = moto
            .sdk_config()
            .await
            .into_builder()
            .timeout_config(function_timeouts())
            .build();
        Aws {
            slow: proxy.sdk_config(&fast),
            fast,
            proxy,
            table,
            secret,
            standin: Standin::start(StandinConfig::default()).await,
        }
    }

    /// An app reading the secret and the table through `secrets` and `dynamodb` (the
    /// events name their Account: Lago's API is never read).
    fn app(&self, secrets: &SdkConfig, dynamodb: &SdkConfig) -> App<DynamoDbStore> {
        let secrets_manager = aws_sdk_secretsmanager::Client::new(secrets);
        App {
            secrets: SecretCache::new(secrets_manager, &self.secret),
            store: DynamoDbStore::new(aws_sdk_dynamodb::Client::new(dynamodb), &self.table),
            salesforce: SalesforceClient::new(&self.standin.url(), "62.0"),
            lago: LagoReader::new(&closed_endpoint()),
        }
    }
}

/// Lago's first attempt (`attempt`: its status and JSON answer) meets the slow AWS behind
/// `proxy`: `503 unavailable` before its deadline, and nothing written to Salesforce that
/// could not be recorded. Then AWS is fast again, and the deadline passes.
async fn first_attempt_meets_a_slow_aws(
    proxy: &MeteringProxy,
    standin: &Standin,
    attempt: impl Future<Output = (u16, Value)>,
) {
    proxy.set_delay(SLOW);
    let started = Instant::now();
    let (status, answer) = attempt.await;
    let elapsed = started.elapsed();
    assert_eq!(
        (status, answer["status"].as_str()),
        (503, Some("unavailable")),
        "{answer}"
    );
    assert!(
        elapsed < TIME_LEFT,
        "answered after {elapsed:?}, past the {TIME_LEFT:?} deadline"
    );
    assert_eq!(standin.stats().rest_requests, 0);
    proxy.set_delay(Duration::ZERO);
    // Lago's retry comes later: the lease the first attempt's take (applied, only answered
    // late) left on the record has lapsed, and goes to the retry of the same delivery.
    // The deadline was set a moment after `started`, in whole epoch milliseconds.
    let margin = Duration::from_millis(200);
    tokio::time::sleep_until((started + TIME_LEFT + margin).into()).await;
}

/// Lago's retry of the same delivery, AWS fast again, is synced.
fn assert_synced((status, answer): (u16, Value), standin: &Standin) {
    assert_eq!(
        (status, answer["status"].as_str()),
        (200, Some("synced")),
        "{answer}"
    );
    let invoice = standin.record_by("Lago_Invoice__c", "Lago_Id__c", "inv-1");
    assert!(invoice.is_some(), "the invoice is in Salesforce");
}

fn body() -> Vec<u8> {
    events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}))
}

/// Delivers the invoice under one unique key, as Lago does each attempt, with `time_left`;
/// the answer's status and JSON body.
async fn deliver(app: &App<DynamoDbStore>, time_left: Duration) -> (u16, Value) {
    let body = body();
    let signature = sign(HMAC_KEY, &body);
    let outcome = app
        .handle(
            Family::Invoice,
            &delivery("d", &body, &signature, time_left),
        )
        .await;
    (outcome.status_code(), outcome.body())
}

/// The premise of the tests below: on its own, the SDK would wait for the slow AWS past
/// the deadline, so only the deadline bound can answer in time.
#[tokio::test]
async fn without_the_deadline_bound_a_slow_aws_call_outlasts_the_deadline() {
    let aws = Aws::start().await;
    let app = aws.app(&aws.slow, &aws.slow);
    aws.proxy.set_delay(SLOW);
    let ((read, read_took), (secrets, secrets_took)) = tokio::join!(
        timed(app.store.written("Lago_Invoice__c/inv-1")),
        timed(app.secrets.current())
    );
    assert!(read.is_err() && secrets.is_err(), "{read:?} {secrets:?}");
    for took in [read_took, secrets_took] {
        assert!(took >= TIME_LEFT, "the SDK gave up after {took:?}");
    }
}

async fn timed<T>(call: impl Future<Output = T>) -> (T, Duration) {
    let started = Instant::now();
    let output = call.await;
    (output, started.elapsed())
}

#[tokio::test]
async fn a_slow_table_answers_503_before_the_deadline_and_loses_nothing() {
    let aws = Aws::start().await;
    let app = aws.app(&aws.fast, &aws.slow);
    first_attempt_meets_a_slow_aws(&aws.proxy, &aws.standin, deliver(&app, TIME_LEFT)).await;
    assert!(
        aws.proxy
            .counts()
            .contains_key("DynamoDB_20120810.UpdateItem"),
        "the table was asked: {:?}",
        aws.proxy.counts()
    );
    assert_synced(deliver(&app, RETRY_TIME_LEFT).await, &aws.standin);
}

#[tokio::test]
async fn a_slow_secrets_manager_answers_503_before_the_deadline_and_loses_nothing() {
    let aws = Aws::start().await;
    // A cold function: the secret is not cached yet and must be read first.
    let app = aws.app(&aws.slow, &aws.fast);
    first_attempt_meets_a_slow_aws(&aws.proxy, &aws.standin, deliver(&app, TIME_LEFT)).await;
    assert!(
        aws.proxy
            .counts()
            .contains_key("secretsmanager.GetSecretValue"),
        "the secret was asked for: {:?}",
        aws.proxy.counts()
    );
    assert_synced(deliver(&app, RETRY_TIME_LEFT).await, &aws.standin);
}

#[tokio::test]
async fn a_function_answers_503_within_its_lambda_deadline_when_dynamodb_is_slow() {
    function_meets_a_slow_aws("AWS_ENDPOINT_URL_DYNAMODB").await;
}

#[tokio::test]
async fn a_function_answers_503_within_its_lambda_deadline_when_secrets_manager_is_slow() {
    function_meets_a_slow_aws("AWS_ENDPOINT_URL_SECRETS_MANAGER").await;
}

/// The built function, as Lambda runs it, with the Lambda deadline its Runtime API gives,
/// reaching one AWS service (`endpoint_variable`) through the proxy that turns slow.
async fn function_meets_a_slow_aws(endpoint_variable: &str) {
    let moto = Moto::shared().await;
    let proxy = MeteringProxy::start(moto.endpoint()).await;
    let overrides = [(endpoint_variable, proxy.url.as_str())];
    let mut stack = FunctionStack::start("invoice-webhook", "invoice", &overrides).await;
    stack.function = stack.function.with_function_timeout(TIME_LEFT);
    first_attempt_meets_a_slow_aws(&proxy, &stack.standin, invoke(&stack)).await;
    assert_synced(invoke(&stack).await, &stack.standin);
}

/// Lago's delivery of the invoice to the function; its status and JSON answer.
async fn invoke(stack: &FunctionStack) -> (u16, Value) {
    let event = stack.signed("d", &body()).to_json();
    match stack.function.invoke(event, INVOKE_TIMEOUT).await {
        Invocation::Response(answer) => {
            let (status, _, body) = response(&answer);
            (status, body)
        }
        other => panic!("no answer: {other:?}\n{}", stack.function.logs()),
    }
}
