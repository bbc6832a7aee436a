//! The built function binaries, run as Lambda runs them (a Lambda Runtime API in front,
//! API Gateway HTTP API 2.0 events in), against moto and the Salesforce stand-in.
//! Build them first: `cargo build --workspace --bins` (scripts/test.sh does).

use std::time::Duration;

use serde_json::{json, Value};
use sync_testkit::apigw::{response, HttpEvent};
use sync_testkit::events::{self, ACCOUNT, HMAC_KEY};
use sync_testkit::function_stack::FunctionStack;
use sync_testkit::lago::{sign, signed_headers};
use sync_testkit::lambda::Invocation;
use sync_testkit::moto::{closed_endpoint, Moto};

const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

type Stack = FunctionStack;

async fn stack(binary: &str, route: &'static str, overrides: &[(&str, &str)]) -> Stack {
    FunctionStack::start(
        binary,
        route,
        &[&[("RUST_LOG", "debug")], overrides].concat(),
    )
    .await
}

/// Answers as API Gateway would pass them on, and signed deliveries.
trait Answers {
    async fn send(&self, event: HttpEvent) -> (u16, Value);
    async fn deliver(&self, key: &str, body: &[u8]) -> (u16, Value);
}

impl Answers for Stack {
    async fn send(&self, event: HttpEvent) -> (u16, Value) {
        match self.function.invoke(event.to_json(), INVOKE_TIMEOUT).await {
            Invocation::Response(answer) => {
                let (status, headers, body) = response(&answer);
                assert!(headers.iter().any(
                    |(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/json"
                ));
                (status, body)
            }
            other => panic!(
                "the function did not answer: {other:?}\n{}",
                self.function.logs()
            ),
        }
    }

    async fn deliver(&self, key: &str, body: &[u8]) -> (u16, Value) {
        self.send(self.signed(key, body)).await
    }
}

#[tokio::test]
async fn every_family_syncs_end_to_end_and_answers_duplicates() {
    let families = [
        (
            "customer-webhook",
            "customer",
            "customer.updated",
            "Account",
        ),
        (
            "subscription-webhook",
            "subscription",
            "subscription.started",
            "Lago_Subscription__c",
        ),
        (
            "invoice-webhook",
            "invoice",
            "invoice.created",
            "Lago_Invoice__c",
        ),
        (
            "credit-note-webhook",
            "credit-note",
            "credit_note.created",
            "Lago_Credit_Note__c",
        ),
    ];
    for (binary, route, webhook_type, object) in families {
        let s = stack(binary, route, &[]).await;
        let body = events::body(webhook_type, "obj-1", Some(ACCOUNT), json!({}));
        let (status, answer) = s.deliver("delivery-1", &body).await;
        assert_eq!(
            (status, answer["status"].clone()),
            (200, json!("synced")),
            "{binary}: {answer}"
        );
        let records = s.standin.records(object);
        assert_eq!(records.len(), 1, "{binary}");
        if object == "Account" {
            assert_eq!(records[0]["Lago_Customer_Id__c"], json!("obj-1"));
        } else {
            assert_eq!(
                (
                    records[0]["Lago_Id__c"].clone(),
                    records[0]["Account__c"].clone()
                ),
                (json!("obj-1"), json!(ACCOUNT))
            );
        }
        let calls = s.standin.stats().rest_requests;
        assert_eq!(
            s.deliver("delivery-1", &body).await,
            (
                200,
                json!({"status": "duplicate", "message": "this delivery was already processed"})
            )
        );
        assert_eq!(
            s.standin.stats().rest_requests,
            calls,
            "{binary}: a duplicate calls nobody"
        );

        let (status, answer) = s.deliver("delivery-2", &foreign_event(route)).await;
        assert_eq!(
            (status, answer["status"].clone()),
            (200, json!("ignored")),
            "{binary}: {answer}"
        );
        let unlinked = events::body(webhook_type, "obj-2", None, json!({}));
        let (status, answer) = s.deliver("delivery-3", &unlinked).await;
        assert_eq!(
            (status, answer["status"].clone()),
            (200, json!("skipped")),
            "{binary}: {answer}"
        );
        assert!(answer["message"]
            .as_str()
            .unwrap()
            .contains("no Salesforce Account id"));
    }
}

#[tokio::test]
async fn an_invoice_with_its_fees_is_one_composite_call_from_the_built_function() {
    let s = stack("invoice-webhook", "invoice", &[]).await;
    let body = events::body(
        "invoice.created",
        "inv-1",
        Some(ACCOUNT),
        json!({ "fees": events::fees("inv-1", 1_200) }),
    );
    let (status, answer) = s.deliver("delivery-1", &body).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("synced")),
        "{answer}"
    );
    let invoice = &s.standin.records("Lago_Invoice__c")[0];
    let items = s.standin.records("Lago_Invoice_Line_Item__c");
    assert_eq!(items.len(), 1_200);
    assert!(items.iter().all(|i| i["Invoice__c"] == invoice["Id"]));
    let paths: Vec<String> = s.standin.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/services/data/v62.0/composite",
            "/services/data/v62.0/composite"
        ],
        "1,000 line items with the invoice, then the other 200"
    );
}

/// An event of another family than `route`'s: Lago sends every event to every endpoint
/// registered without an event_types filter.
fn foreign_event(route: &str) -> Vec<u8> {
    let webhook_type = if route == "invoice" {
        "customer.updated"
    } else {
        "invoice.created"
    };
    events::body(webhook_type, "x", Some(ACCOUNT), json!({}))
}

/// The functions trust compiled-in roots: a cold start reads no system certificate store
/// (it cost most of the init time) and does not depend on the image's layout of one.
#[tokio::test]
async fn a_function_starts_and_syncs_without_a_system_certificate_store() {
    let nowhere = "/nonexistent/lago-sync-certificates";
    let s = stack(
        "invoice-webhook",
        "invoice",
        &[("SSL_CERT_FILE", nowhere), ("SSL_CERT_DIR", nowhere)],
    )
    .await;
    let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    let (status, answer) = s.deliver("d1", &body).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("synced")),
        "{answer}"
    );
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_the_event_still_syncs() {
    let s = stack("invoice-webhook", "invoice", &[]).await;
    let first = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    assert_eq!(s.deliver("d1", &first).await.0, 200);
    s.standin.expire_tokens();
    let second = events::body("invoice.created", "inv-2", Some(ACCOUNT), json!({}));
    let (status, answer) = s.deliver("d2", &second).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("synced")),
        "{answer}"
    );
    assert_eq!(s.standin.stats().token_requests, 2);
    assert_eq!(s.standin.records("Lago_Invoice__c").len(), 2);
}

#[tokio::test]
async fn signatures_bodies_and_encodings_are_checked_before_anything_else() {
    let s = stack("invoice-webhook", "invoice", &[]).await;
    let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    let event = || HttpEvent::webhook("invoice");
    let cases: Vec<(&str, HttpEvent, u16, &str)> = vec![
        (
            "no signature",
            event()
                .header("x-lago-signature-algorithm", "hmac")
                .body(body.clone()),
            401,
            "unauthorized",
        ),
        (
            "wrong key",
            event()
                .headers(signed_headers("wrong", "k", &body))
                .body(body.clone()),
            401,
            "unauthorized",
        ),
        (
            "jwt endpoint",
            event()
                .header("X-Lago-Signature", &sign(HMAC_KEY, &body))
                .header("X-Lago-Signature-Algorithm", "jwt")
                .body(body.clone()),
            401,
            "unauthorized",
        ),
        (
            "signed but not JSON",
            event()
                .headers(signed_headers(HMAC_KEY, "k", b"<xml/>"))
                .body(b"<xml/>".to_vec()),
            400,
            "invalid",
        ),
        (
            "signature of another body",
            event()
                .headers(signed_headers(HMAC_KEY, "k", &body))
                .body(b"{}".to_vec()),
            401,
            "unauthorized",
        ),
    ];
    for (name, event, status, label) in cases {
        let (got, answer) = s.send(event).await;
        assert_eq!(
            (got, answer["status"].clone()),
            (status, json!(label)),
            "{name}: {answer}"
        );
    }
    // A body API Gateway delivered base64-encoded is verified over its decoded bytes.
    let (status, answer) = s
        .send(
            event()
                .headers(signed_headers(HMAC_KEY, "b64", &body))
                .body(body.clone())
                .base64(true),
        )
        .await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("synced")),
        "{answer}"
    );
    // A body marked base64 that is not gets a clear 400, not a crash.
    let mut raw = event()
        .headers(signed_headers(HMAC_KEY, "bad", &body))
        .body(body.clone())
        .to_json();
    raw["body"] = json!("not*base64*at*all");
    raw["isBase64Encoded"] = json!(true);
    let Invocation::Response(answer) = s.function.invoke(raw, INVOKE_TIMEOUT).await else {
        panic!()
    };
    let (status, _, answer) = response(&answer);
    assert_eq!(
        (status, answer["status"].clone()),
        (400, json!("invalid")),
        "{answer}"
    );
    assert_eq!(
        s.standin.stats().rest_requests,
        1,
        "only the valid event reached Salesforce"
    );
}

#[tokio::test]
async fn a_permanent_salesforce_refusal_is_stored_and_replayed() {
    let s = stack("subscription-webhook", "subscription", &[]).await;
    let body = events::body(
        "subscription.started",
        "sub-1",
        Some("001000000000404AAA"),
        json!({}),
    );
    let (status, first) = s.deliver("d", &body).await;
    assert_eq!(
        (status, first["status"].clone()),
        (422, json!("failed")),
        "{first}"
    );
    let calls = s.standin.stats().rest_requests;
    assert_eq!(s.deliver("d", &body).await, (422, first));
    assert_eq!(s.standin.stats().rest_requests, calls);
}

#[tokio::test]
async fn an_unreachable_table_or_secret_store_answers_503() {
    let closed = closed_endpoint();
    for variable in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ] {
        let s = stack("invoice-webhook", "invoice", &[(variable, &closed)]).await;
        let body = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
        let (status, answer) = s.deliver("d", &body).await;
        assert_eq!(
            (status, answer["status"].clone()),
            (503, json!("unavailable")),
            "{variable}: {answer}"
        );
        assert_eq!(
            s.standin.stats().rest_requests,
            0,
            "{variable}: nothing written that could not be recorded"
        );
    }
}

#[tokio::test]
async fn a_missing_setting_stops_the_function_at_start_and_names_it() {
    let s = stack("customer-webhook", "customer", &[("IDEMPOTENCY_TABLE", "")]).await;
    let logs = s.start_failure().await;
    assert!(
        logs.contains("IDEMPOTENCY_TABLE is required but not set"),
        "{logs}"
    );
}

#[tokio::test]
async fn logs_are_json_carry_the_delivery_and_never_a_secret() {
    let s = stack("credit-note-webhook", "credit-note", &[]).await;
    let body = events::body("credit_note.created", "cn-1", Some(ACCOUNT), json!({}));
    assert_eq!(s.deliver("delivery-xyz", &body).await.0, 200);
    s.standin.expire_tokens();
    assert_eq!(
        s.deliver(
            "delivery-abc",
            &events::body(
                "credit_note.generated",
                "cn-1",
                Some(ACCOUNT),
                json!({"updated_at": "2025-03-06T00:00:00Z"})
            )
        )
        .await
        .0,
        200
    );
    // The first body again under a new key: a new delivery, but an older state.
    assert_eq!(
        s.deliver("delivery-old", &body).await.1["status"],
        json!("skipped")
    );
    let logs = s.function.logs();
    let secret = events::secret_json(HMAC_KEY);
    let secret: Value = serde_json::from_str(&secret).unwrap();
    for value in secret.as_object().unwrap().values() {
        assert!(
            !logs.contains(value.as_str().unwrap()),
            "a secret value is in the logs:\n{logs}"
        );
    }
    let mut outcomes = Vec::new();
    for line in logs.lines().filter(|l| l.contains("\"webhook\"")) {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        let span = &entry["span"];
        assert!(
            span["delivery_id"]
                .as_str()
                .is_some_and(|d| d.starts_with("delivery-")),
            "{line}"
        );
        if entry["fields"]["message"] == json!("webhook handled") {
            assert!(
                span["webhook_type"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("credit_note.")),
                "{line}"
            );
            assert_eq!(span["lago_id"], json!("cn-1"), "{line}");
            outcomes.push(span["outcome"].clone());
            // Written events carry the org's API usage from Sforce-Limit-Info.
            let usage = span["api_usage"].as_str().unwrap_or_default();
            assert_eq!(
                usage.starts_with("api-usage="),
                span["outcome"] == json!("synced"),
                "{line}"
            );
        }
    }
    assert_eq!(
        outcomes,
        [json!("synced"), json!("synced"), json!("skipped")],
        "{logs}"
    );
    // The usage rides on the event's lines, not on a line of its own per call.
    assert!(!logs.contains("Salesforce answered"), "{logs}");
}

#[tokio::test]
async fn a_rotated_hmac_key_is_used_without_a_redeploy() {
    let s = stack("invoice-webhook", "invoice", &[]).await;
    let first = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    assert_eq!(s.deliver("d1", &first).await.0, 200);
    // Lago's retries come seconds apart; the function re-reads the secret at most every 5 s
    // because of a bad signature.
    tokio::time::sleep(lago_sync::secrets::FORCED_REFRESH_GAP).await;
    let rotated = "rotated-hmac-key-0000";
    Moto::shared()
        .await
        .put_secret(&s.secret, &events::secret_json(rotated))
        .await;
    let second = events::body("invoice.created", "inv-2", Some(ACCOUNT), json!({}));
    let signed = |key: &str, unique: &str| {
        HttpEvent::webhook("invoice")
            .headers(signed_headers(key, unique, &second))
            .body(second.clone())
    };
    let (status, answer) = s.send(signed(rotated, "d2")).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("synced")),
        "{answer}"
    );
    let (status, _) = s.send(signed(HMAC_KEY, "d3")).await;
    assert_eq!(status, 401, "the old key no longer verifies");
    assert!(
        !s.function.logs().contains(rotated),
        "the key never reaches the logs"
    );
}

#[tokio::test]
async fn a_client_secret_rotated_only_in_the_org_is_queued_counted_and_written_later() {
    let s = stack("invoice-webhook", "invoice", &[]).await;
    let first = events::body("invoice.created", "inv-1", Some(ACCOUNT), json!({}));
    assert_eq!(s.deliver("d1", &first).await.0, 200);
    // A refused client secret re-reads the secret at most every 5 s.
    tokio::time::sleep(lago_sync::secrets::FORCED_REFRESH_GAP).await;
    let rotated = "rotated-client-secret-0000";
    s.standin.set_client_secret(rotated);
    s.standin.expire_tokens();
    let second = events::body("invoice.created", "inv-2", Some(ACCOUNT), json!({}));
    let (status, answer) = s.deliver("d2", &second).await;
    assert_eq!(
        (status, &answer["status"], &answer["error_code"]),
        (202, &json!("queued"), &json!("OAUTH_INVALID_CLIENT")),
        "{answer}"
    );
    let logs = s.function.logs();
    let metric_lines = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| {
            line["SalesforceCredentialsRefused"] == json!(1)
                && line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
                    == "SalesforceCredentialsRefused"
        })
        .count();
    assert_eq!(metric_lines, 1, "{logs}");

    // Secrets Manager catches up: Lago's retry of the delivery is written.
    let mut secret: Value = serde_json::from_str(&events::secret_json(HMAC_KEY)).unwrap();
    secret["salesforce_client_secret"] = json!(rotated);
    Moto::shared()
        .await
        .put_secret(&s.secret, &secret.to_string())
        .await;
    tokio::time::sleep(lago_sync::secrets::FORCED_REFRESH_GAP).await;
    let (status, answer) = s.deliver("d2", &second).await;
    assert_eq!(
        (status, answer["status"].clone()),
        (200, json!("synced")),
        "{answer}"
    );
    assert_eq!(s.standin.records("Lago_Invoice__c").len(), 2);
    assert!(
        !s.function.logs().contains(rotated),
        "the secret never reaches the logs"
    );
}
