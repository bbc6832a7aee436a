//! Proves the test kit itself: moto, Lago signing, API Gateway events and the Lambda harness.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::types::{BillingMode, KeyType, TimeToLiveStatus};
use lambda_http::{Body, RequestExt};
use serde_json::{json, Value};
use sync_testkit::apigw::{self, HttpEvent};
use sync_testkit::lago;
use sync_testkit::lambda::{self, Invocation, LambdaProcess};
use sync_testkit::moto::{self, Moto};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn moto_table_has_project_schema_and_ttl() {
    let moto = Moto::shared().await;
    let table = moto::unique_name("idempotency");
    moto.create_table(&table).await;

    let ddb = moto.dynamodb().await;
    let described = ddb
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let described = described.table().unwrap();
    let keys = described.key_schema();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].attribute_name(), keys[0].key_type()),
        ("pk", &KeyType::Hash)
    );
    assert_eq!(
        described
            .billing_mode_summary()
            .and_then(|b| b.billing_mode()),
        Some(&BillingMode::PayPerRequest)
    );

    let ttl = ddb
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
}

#[tokio::test]
async fn moto_secret_round_trips_and_rotates() {
    let moto = Moto::shared().await;
    let name = moto::unique_name("lago-sync/api-keys");
    let arn = moto.create_secret(&name, r#"{"key":"one"}"#).await;
    assert!(arn.contains(&name), "{arn}");

    let secrets = moto.secrets().await;
    let current = |id: String| {
        let secrets = secrets.clone();
        async move {
            let value = secrets
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .unwrap();
            value.secret_string().unwrap().to_owned()
        }
    };
    assert_eq!(current(name.clone()).await, r#"{"key":"one"}"#);
    moto.put_secret(&name, r#"{"key":"two"}"#).await;
    assert_eq!(current(arn).await, r#"{"key":"two"}"#);
}

#[tokio::test]
async fn unique_names_differ_and_closed_endpoint_refuses() {
    assert_ne!(moto::unique_name("t"), moto::unique_name("t"));
    let refused = reqwest::get(moto::closed_endpoint()).await.unwrap_err();
    assert!(refused.is_connect(), "{refused:?}");
}

#[test]
fn sign_matches_python_hmac_vector() {
    // python3 -c "import hmac,hashlib,base64;print(base64.b64encode(
    //     hmac.new(b'key',b'{\"a\":1}',hashlib.sha256).digest()).decode())"
    assert_eq!(
        lago::sign("key", br#"{"a":1}"#),
        "iKZ/JLvNrtDmyZdAS7eadDuvRMa6svTCcyjjAJ0i40I="
    );
}

#[test]
fn signed_headers_are_what_lago_sends() {
    let body = br#"{"webhook_type":"customer.updated"}"#;
    let headers = lago::signed_headers("secret", "unique-1", body);
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        get("X-Lago-Signature"),
        Some(lago::sign("secret", body).as_str())
    );
    assert_eq!(get("X-Lago-Signature-Algorithm"), Some("hmac"));
    assert_eq!(get("X-Lago-Unique-Key"), Some("unique-1"));
    assert_eq!(get("Content-Type"), Some("application/json"));
}

#[test]
fn every_fixture_is_a_lago_webhook() {
    let names = lago::fixture_names();
    assert!(!names.is_empty());
    for name in names {
        let payload: Value = serde_json::from_slice(&lago::fixture(&name)).unwrap();
        assert!(
            payload["webhook_type"].is_string(),
            "{name} has no webhook_type"
        );
    }
}

#[test]
fn apigw_event_parses_as_http_api_v2_in_lambda_http() {
    let body = lago::fixture("openapi-derived-customer_updated.json");
    let event = HttpEvent::webhook("customer")
        .headers(lago::signed_headers("key", "u-1", &body))
        .header("X-Repeated", "a")
        .header("x-repeated", "b")
        .body(body.clone());
    let json = event.to_json();
    assert_eq!(json["routeKey"], "POST /webhooks/customer");
    assert_eq!(json["requestContext"]["stage"], "$default");
    assert_eq!(json["headers"]["x-repeated"], "a,b");
    assert_eq!(json["headers"]["content-length"], body.len().to_string());

    let request = lambda_http::request::from_str(&json.to_string()).unwrap();
    assert_eq!(request.method(), "POST");
    assert_eq!(request.raw_http_path(), "/webhooks/customer");
    assert_eq!(request.headers()["x-lago-unique-key"], "u-1");
    assert_eq!(request.headers()["x-repeated"], "a,b");
    assert!(matches!(request.body(), Body::Text(text) if text.as_bytes() == body));

    let request =
        lambda_http::request::from_str(&event.base64(true).to_json().to_string()).unwrap();
    assert!(matches!(request.body(), Body::Binary(bytes) if *bytes == body));
}

#[test]
fn response_parser_reads_lambda_http_answers() {
    let (status, headers, body) = apigw::response(&json!({
        "statusCode": 202,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {},
        "body": r#"{"status":"accepted"}"#,
        "isBase64Encoded": false,
        "cookies": ["a=1"],
    }));
    assert_eq!(status, 202);
    assert!(headers.contains(&("content-type".into(), "application/json".into())));
    assert!(headers.contains(&("set-cookie".into(), "a=1".into())));
    assert_eq!(body, json!({"status": "accepted"}));

    let (_, _, body) = apigw::response(&json!({
        "statusCode": 401, "headers": {}, "body": "bm9wZQ==", "isBase64Encoded": true, "cookies": [],
    }));
    assert_eq!(body, json!("nope"));

    assert_eq!(
        apigw::response(&json!({"ok": true})),
        (
            200,
            vec![("content-type".into(), "application/json".into())],
            json!({"ok": true}),
        )
    );
}

fn echo_lambda() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_echo-lambda"))
}

fn response(invocation: Invocation) -> Value {
    match invocation {
        Invocation::Response(body) => body,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[test]
fn binary_path_finds_workspace_binaries() {
    assert_eq!(lambda::binary_path("echo-lambda"), echo_lambda());
}

#[tokio::test]
async fn lambda_runs_binary_like_lambda_does() {
    let env = [("EXTRA".to_owned(), "given".to_owned())];
    let function = LambdaProcess::start(&echo_lambda(), &env).await;
    let answer = response(function.invoke(json!({"hello": "world"}), WAIT).await);

    assert_eq!(answer["event"], json!({"hello": "world"}));
    assert_eq!(answer["request_id"].as_str().unwrap().len(), 36);
    assert!(answer["function_arn"]
        .as_str()
        .unwrap()
        .ends_with(":function:echo-lambda"));
    assert!(answer["trace_id"].as_str().unwrap().starts_with("Root=1-"));
    let remaining = answer["deadline_ms"].as_u64().unwrap() - now_ms();
    assert!(
        (10_000..=20_000).contains(&remaining),
        "{remaining} ms left"
    );

    let env = &answer["env"];
    assert_eq!(env["EXTRA"], "given");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "echo-lambda");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
    assert!(env.get("HOME").is_none(), "environment is not clean: {env}");

    assert!(function.time_to_first_next().is_some());
    assert!(
        function.logs().contains("echo-lambda: handled"),
        "{}",
        function.logs()
    );
}

#[tokio::test]
async fn lambda_reports_handler_errors_and_keeps_serving() {
    let function = LambdaProcess::start(&echo_lambda(), &[]).await;
    match function.invoke(json!({"fail": "boom"}), WAIT).await {
        Invocation::Error(body) => assert_eq!(body["errorMessage"], "boom"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(response(function.invoke(json!(2), WAIT).await)["event"], 2);
}

#[tokio::test]
async fn lambda_timeout_drops_the_late_answer() {
    let function = LambdaProcess::start(&echo_lambda(), &[])
        .await
        .with_function_timeout(Duration::from_secs(3));
    let slow = function
        .invoke(json!({"sleep_ms": 1500}), Duration::from_millis(200))
        .await;
    assert_eq!(slow, Invocation::Timeout);

    let answer = response(function.invoke(json!("next"), WAIT).await);
    assert_eq!(answer["event"], "next");
    let remaining = answer["deadline_ms"].as_u64().unwrap() - now_ms();
    assert!(remaining <= 3_000, "{remaining} ms left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_queues_invocations_from_several_tasks() {
    let function = Arc::new(LambdaProcess::start(&echo_lambda(), &[]).await);
    let tasks: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|sent| {
            let function = function.clone();
            tokio::spawn(async move { (sent, function.invoke(json!(sent), WAIT).await) })
        })
        .collect();
    for task in tasks {
        let (sent, invocation) = task.await.unwrap();
        assert_eq!(response(invocation)["event"], sent);
    }
}

#[tokio::test]
async fn lambda_init_failure_is_reported_and_exits() {
    let env = [("ECHO_INIT_ERROR".to_owned(), "missing config".to_owned())];
    let function = LambdaProcess::start(&echo_lambda(), &env).await;
    let status = function.wait_exit(WAIT).await.expect("process exits");
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        function.init_error().unwrap()["errorMessage"],
        "missing config"
    );
    assert!(
        function.logs().contains("init failed"),
        "{}",
        function.logs()
    );
}

#[tokio::test]
async fn lambda_functions_reach_moto_through_env() {
    let moto = Moto::shared().await;
    let function = LambdaProcess::start(&echo_lambda(), &moto.env()).await;
    let env = &response(function.invoke(json!({}), WAIT).await)["env"];
    assert_eq!(env["AWS_ENDPOINT_URL"], moto.endpoint());
    assert_eq!(env["AWS_ACCESS_KEY_ID"], "testing");
}
