//! The built `salesforce-account` function as Lambda runs it (contract §8): Salesforce's
//! outbound messages through API Gateway's `POST /salesforce/accounts/{token}`, with moto,
//! the Lago API stand-in and the Salesforce stand-in. Build it first:
//! `cargo build --workspace --bins` (scripts/test.sh does).

use std::time::{Duration, Instant};

use lago_sync::lago_api::LagoApi;
use lago_sync::pipeline::{App, LagoReader};
use lago_sync::redrive::run_at;
use lago_sync::salesforce::SalesforceClient;
use lago_sync::secrets::{SecretCache, Secrets};
use lago_sync::store::DynamoDbStore;
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::apigw::{response, HttpEvent};
use sync_testkit::events::{
    self, flagged_account, outbound_message, ACCOUNT, HMAC_KEY, ORG_ID, OUTBOUND_TOKEN,
};
use sync_testkit::function_stack::FunctionStack;
use sync_testkit::inprocess::epoch_ms;
use sync_testkit::lago::signed_headers;
use sync_testkit::lago_standin::API_KEY as LAGO_API_KEY;
use sync_testkit::lambda::Invocation;
use sync_testkit::moto::Moto;

const STAMP: &str = "2026-12-02T07:30:00.000Z";

async fn stack(overrides: &[(&str, &str)]) -> FunctionStack {
    let env = [
        &[("SALESFORCE_ORG_ID", ORG_ID), ("RUST_LOG", "debug")],
        overrides,
    ]
    .concat();
    FunctionStack::start("salesforce-account", "salesforce-account", &env).await
}

/// The answer's status, content type and SOAP text.
async fn send(s: &FunctionStack, token: &str, body: &str) -> (u16, String, String) {
    let event = HttpEvent::outbound(token, body);
    match s
        .function
        .invoke(event.to_json(), Duration::from_secs(30))
        .await
    {
        Invocation::Response(answer) => {
            let (status, headers, body) = response(&answer);
            let content_type = headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (
                status,
                content_type,
                body.as_str().unwrap_or_default().to_owned(),
            )
        }
        other => panic!("no answer: {other:?}\n{}", s.function.logs()),
    }
}

fn one_account(id: &str) -> String {
    outbound_message(ORG_ID, &[(id, flagged_account(ACCOUNT, "Acme SAS", STAMP))])
}

#[tokio::test]
async fn a_flagged_account_is_acknowledged_once_lago_has_its_customer() {
    let s = stack(&[]).await;
    let (status, content_type, body) = send(&s, OUTBOUND_TOKEN, &one_account("04l1")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "text/xml; charset=utf-8")
    );
    assert!(body.contains("<Ack>true</Ack>"), "{body}");
    let upserts = s.lago.customer_upserts();
    assert_eq!(upserts.len(), 1);
    assert_eq!(
        upserts[0]["customer"]["external_salesforce_id"],
        json!(ACCOUNT)
    );
    assert_eq!(s.standin.stats().rest_requests, 0);

    // Salesforce's redelivery of the same notification: acknowledged, nothing done twice.
    let (status, _, body) = send(&s, OUTBOUND_TOKEN, &one_account("04l1")).await;
    assert_eq!(status, 200);
    assert!(body.contains("<Ack>true</Ack>"));
    assert_eq!(s.lago.customer_upserts().len(), 1);

    let logs = s.function.logs();
    assert!(
        !logs.contains(OUTBOUND_TOKEN),
        "the path token is in the logs:\n{logs}"
    );
    let secret: Value = serde_json::from_str(&events::secret_json(HMAC_KEY)).unwrap();
    for value in secret.as_object().unwrap().values() {
        assert!(
            !logs.contains(value.as_str().unwrap()),
            "a secret value is in the logs"
        );
    }
}

#[tokio::test]
async fn refusals_come_before_lago_and_never_echo_the_token() {
    let s = stack(&[]).await;
    let (status, content_type, body) = send(&s, "a-guessed-token", &one_account("04l1")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (401, "text/xml; charset=utf-8")
    );
    assert!(
        body.contains("Fault") && !body.contains(OUTBOUND_TOKEN),
        "{body}"
    );
    let other_org = outbound_message(
        "00D000000000002AAA",
        &[("04l1", flagged_account(ACCOUNT, "Acme", STAMP))],
    );
    assert_eq!(send(&s, OUTBOUND_TOKEN, &other_org).await.0, 401);
    assert_eq!(send(&s, OUTBOUND_TOKEN, "<not-soap/>").await.0, 400);
    assert!(s.lago.customer_upserts().is_empty());
    assert_eq!(s.lago.stats().requests, 0);
}

#[tokio::test]
async fn lago_down_is_stored_and_acknowledged_then_redriven() {
    let s = stack(&[]).await;
    s.lago.fail_with(Some(502));
    let (status, _, body) = send(&s, OUTBOUND_TOKEN, &one_account("04l1")).await;
    assert_eq!(status, 200, "stored, so acknowledged: {body}");
    let account = s.standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(account["Lago_Sync_Status__c"], json!("pending"));

    s.lago.fail_with(None);
    let moto = Moto::shared().await;
    let app = App {
        secrets: SecretCache::fixed(Secrets::parse(&events::secret_json(HMAC_KEY)).unwrap()),
        store: DynamoDbStore::new(moto.dynamodb().await, &s.table),
        salesforce: SalesforceClient::new(&s.standin.url(), "62.0"),
        lago: LagoReader::new(&s.lago.url()),
    };
    let ahead_ms = 3_600_000;
    let report = run_at(
        &app,
        Duration::from_secs(24 * 3600),
        Instant::now() + Duration::from_secs(60),
        move || epoch_ms() + ahead_ms,
    )
    .await
    .unwrap();
    assert_eq!(report.synced, 1, "{report:?}");
    let customer = LagoApi::new(&s.lago.url(), LAGO_API_KEY)
        .object(Family::Customer, ACCOUNT, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(customer.is_some(), "the redrive created the customer");
}

#[tokio::test]
async fn a_lago_refusal_shows_on_the_account() {
    let s = stack(&[]).await;
    let mut account = flagged_account(ACCOUNT, "Acme SAS", STAMP);
    account["Lago_Currency__c"] = json!("EURO");
    let body = outbound_message(ORG_ID, &[("04l1", account)]);
    let (status, _, answer) = send(&s, OUTBOUND_TOKEN, &body).await;
    assert_eq!(status, 200, "{answer}");
    let shown = s.standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(shown["Lago_Sync_Status__c"], json!("failed"));
    assert!(shown["Lago_Sync_Error__c"]
        .as_str()
        .unwrap()
        .contains("ISO 4217"));
    assert_eq!(s.standin.stats().rest_requests, 1);
}

#[tokio::test]
async fn older_states_and_a_batch_of_one_hundred_cost_no_extra_lago_call() {
    let s = stack(&[]).await;
    let newer = flagged_account(ACCOUNT, "Acme SAS", "2026-12-02T07:31:00.000Z");
    let older = flagged_account(ACCOUNT, "Acme (old name)", STAMP);
    let body = outbound_message(ORG_ID, &[("04l1", older.clone()), ("04l2", newer)]);
    assert_eq!(send(&s, OUTBOUND_TOKEN, &body).await.0, 200);
    let late = outbound_message(ORG_ID, &[("04l0", older)]);
    assert_eq!(send(&s, OUTBOUND_TOKEN, &late).await.0, 200);
    let names: Vec<Value> = s
        .lago
        .customer_upserts()
        .iter()
        .map(|u| u["customer"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("Acme SAS")], "the newest only, once");

    let ids: Vec<(String, String)> = (1..=100)
        .map(|i| (format!("04m{i:03}"), format!("001000000000{i:03}AAB")))
        .collect();
    let notifications: Vec<(&str, Value)> = ids
        .iter()
        .map(|(n, a)| (n.as_str(), flagged_account(a, "Batch", STAMP)))
        .collect();
    let batch = outbound_message(ORG_ID, &notifications);
    let (status, _, answer) = send(&s, OUTBOUND_TOKEN, &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(s.lago.customer_upserts().len(), 101);
    assert_eq!(send(&s, OUTBOUND_TOKEN, &batch).await.0, 200);
    assert_eq!(
        s.lago.customer_upserts().len(),
        101,
        "the redelivery costs nothing"
    );
}

#[tokio::test]
async fn round_trip_flag_lago_customer_webhook_account_synced() {
    let s = stack(&[]).await;
    let (status, _, _) = send(&s, OUTBOUND_TOKEN, &one_account("04l1")).await;
    assert_eq!(status, 200);
    let customer = LagoApi::new(&s.lago.url(), LAGO_API_KEY)
        .object(Family::Customer, ACCOUNT, Duration::from_secs(5))
        .await
        .unwrap()
        .expect("the customer exists in Lago");
    // Lago's customer.created webhook, to the customer function beside it.
    let webhook = serde_json::to_vec(&json!({
        "webhook_type": "customer.created", "object_type": "customer",
        "organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "customer": customer,
    }))
    .unwrap();
    let customers = s.beside("customer-webhook").await;
    let event = HttpEvent::webhook("customer")
        .headers(signed_headers(HMAC_KEY, "k1", &webhook))
        .body(webhook.clone());
    let Invocation::Response(answer) = customers
        .invoke(event.to_json(), Duration::from_secs(30))
        .await
    else {
        panic!("no answer:\n{}", customers.logs());
    };
    let (status, _, body) = response(&answer);
    assert_eq!(
        (status, body["status"].clone()),
        (200, json!("synced")),
        "{body}"
    );
    let account = s.standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(account["Lago_Customer_Id__c"], customer["lago_id"]);
    assert_eq!(account["Lago_Sync_Status__c"], json!("synced"));
    assert_eq!(account["Lago_Billing_Email__c"], json!("billing@acme.test"));
}

#[tokio::test]
async fn without_an_org_id_the_function_does_not_start_and_says_why() {
    let s = stack(&[("SALESFORCE_ORG_ID", "")]).await;
    let logs = s.start_failure().await;
    assert!(
        logs.contains("SALESFORCE_ORG_ID is required but not set"),
        "{logs}"
    );
}
