//! The functions' single-object reads of Lago's API (`LagoApi::object`) against the Lago
//! stand-in: the four routes and their answers, Lago's 404, the subscription route's
//! `status` parameter, and how failures are classed (transient or permanent).

use std::time::{Duration, Instant};

use lago_sync::lago::{as_webhook_body, Envelope};
use lago_sync::lago_api::{LagoApi, LagoApiError};
use lago_sync::mapping;
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::lago_standin::{Dataset, LagoStandin, API_KEY};

const TIMEOUT: Duration = Duration::from_secs(5);

async fn standin() -> (LagoStandin, Dataset) {
    let data = Dataset::generate(3, 10, 10, 3);
    (LagoStandin::start(API_KEY, data.clone()).await, data)
}

/// As the functions will build it: one client for the container, a `LagoApi` over it.
fn api(lago: &LagoStandin, key: &str) -> LagoApi {
    LagoApi::with_client(LagoApi::http_client(), &lago.url(), key)
}

/// The error, after checking that neither of its renderings shows the key.
fn error(result: Result<Option<Value>, LagoApiError>) -> LagoApiError {
    let error = result.expect_err("the read fails");
    let shown = format!("{error:?} {error}");
    assert!(
        !shown.contains(API_KEY) && !shown.contains("wrong-key"),
        "{shown}"
    );
    error
}

#[tokio::test]
async fn each_object_is_read_from_its_route_as_lago_shows_it() {
    let (lago, data) = standin().await;
    let api = api(&lago, API_KEY);
    // Subscription 0 is the active one of its `external_id` (statuses cycle from active).
    let cases = [
        (
            Family::Customer,
            "ext-000001",
            &data.customers[1],
            "customers",
        ),
        (
            Family::Subscription,
            "sub-sub-000000",
            &data.subscriptions[0],
            "subscriptions",
        ),
        (Family::Invoice, "inv-000003", &data.invoices[3], "invoices"),
        (
            Family::CreditNote,
            "cn-000002",
            &data.credit_notes[2],
            "credit_notes",
        ),
    ];
    for (family, id, expected, collection) in cases {
        let found = api.object(family, id, TIMEOUT).await.unwrap();
        assert_eq!(found.as_ref(), Some(expected), "{family:?}");
        let route = format!("GET /api/v1/{collection}/{id}");
        assert_eq!(lago.stats().route(&route), 1, "{route}");
    }
    assert_eq!(api.calls(), 4);
    // A draft invoice is visible to the API (the webhooks decide what to write).
    let draft = api.object(Family::Invoice, "inv-000009", TIMEOUT).await;
    assert_eq!(draft.unwrap().unwrap()["status"], "draft");
}

#[tokio::test]
async fn a_missing_object_is_none() {
    let (lago, _) = standin().await;
    let api = api(&lago, API_KEY);
    for family in Family::ALL {
        let found = api.object(family, "no-such-id", TIMEOUT).await.unwrap();
        assert_eq!(found, None, "{family:?}");
    }
    // A subscription is looked for under every status before it is declared missing.
    assert_eq!(
        lago.stats().route("GET /api/v1/subscriptions/no-such-id"),
        5
    );
    assert_eq!(api.calls(), 8);
}

#[tokio::test]
async fn ids_are_sent_as_one_percent_encoded_path_segment() {
    let (lago, data) = standin().await;
    let api = api(&lago, API_KEY);
    let mut customer = data.customers[0].clone();
    customer["lago_id"] = json!("cus-odd");
    customer["external_id"] = json!("acme/eu 1?x=1#é");
    lago.replace("customers", customer.clone());

    let found = api
        .object(Family::Customer, "acme/eu 1?x=1#é", TIMEOUT)
        .await;
    assert_eq!(found.unwrap(), Some(customer));
    let route = "GET /api/v1/customers/acme%2Feu%201%3Fx%3D1%23%C3%A9";
    assert_eq!(lago.stats().route(route), 1, "{:?}", lago.stats().by_route);
    // The prefix alone is another customer's id, not this one's.
    let prefix = api.object(Family::Customer, "acme", TIMEOUT).await;
    assert_eq!(prefix.unwrap(), None);
}

#[tokio::test]
async fn a_subscription_is_found_whatever_its_status() {
    let (lago, data) = standin().await;
    let api = api(&lago, API_KEY);
    // Subscriptions 0..5 are active, pending, terminated, canceled, incomplete; each is
    // the only one under its `external_id`. Lago's default shows only `active`, then the
    // client asks for pending, incomplete, terminated, canceled in turn.
    for (i, requests) in [(0, 1), (1, 2), (2, 4), (3, 5), (4, 3)] {
        let id = format!("sub-sub-{i:06}");
        let found = api
            .object(Family::Subscription, &id, TIMEOUT)
            .await
            .unwrap();
        assert_eq!(found.as_ref(), Some(&data.subscriptions[i]), "{id}");
        let route = format!("GET /api/v1/subscriptions/{id}");
        assert_eq!(lago.stats().route(&route), requests, "{id}");
    }

    // One status at a time, as the route answers it.
    let terminated = "sub-sub-000002";
    let default = api.subscription(terminated, None, TIMEOUT).await.unwrap();
    assert_eq!(default, None, "Lago's default is active only");
    let wrong = api.subscription(terminated, Some("active"), TIMEOUT).await;
    assert_eq!(wrong.unwrap(), None);
    let asked = api
        .subscription(terminated, Some("terminated"), TIMEOUT)
        .await;
    assert_eq!(asked.unwrap().as_ref(), Some(&data.subscriptions[2]));
}

#[tokio::test]
async fn after_an_upgrade_the_active_subscription_wins_then_the_latest_terminated() {
    let (lago, data) = standin().await;
    let api = api(&lago, API_KEY);
    let external_id = "sub-sub-000002"; // subscription 2, terminated
    let terminated = |lago_id: &str, at: &str| {
        let mut s = data.subscriptions[2].clone();
        s["lago_id"] = json!(lago_id);
        s["terminated_at"] = json!(at);
        s
    };
    lago.replace(
        "subscriptions",
        terminated("sub-000002", "2025-04-01T00:00:00Z"),
    );
    lago.replace(
        "subscriptions",
        terminated("sub-later", "2025-05-01T00:00:00Z"),
    );
    lago.replace(
        "subscriptions",
        terminated("sub-earlier", "2025-03-15T00:00:00Z"),
    );
    let found = api.object(Family::Subscription, external_id, TIMEOUT).await;
    assert_eq!(found.unwrap().unwrap()["lago_id"], "sub-later");

    // An upgrade starts a new subscription under the same `external_id`.
    let mut upgraded = data.subscriptions[2].clone();
    upgraded["lago_id"] = json!("sub-upgraded");
    upgraded["status"] = json!("active");
    upgraded["terminated_at"] = Value::Null;
    upgraded["plan_code"] = json!("enterprise");
    lago.replace("subscriptions", upgraded.clone());
    let found = api.object(Family::Subscription, external_id, TIMEOUT).await;
    assert_eq!(found.unwrap(), Some(upgraded));
    let old = api
        .subscription(external_id, Some("terminated"), TIMEOUT)
        .await;
    assert_eq!(old.unwrap().unwrap()["lago_id"], "sub-later");
}

/// The route reads `status`; `subscription_status` belongs to the nested routes
/// (`/subscriptions/{id}/alerts`, …) and is ignored here, as in lago-api.
#[tokio::test]
async fn the_subscription_route_reads_status_not_subscription_status() {
    let (lago, _) = standin().await;
    let http = reqwest::Client::new();
    let get = |query: &'static str| {
        let url = format!("{}/api/v1/subscriptions/sub-sub-000002{query}", lago.url());
        let request = http.get(url).bearer_auth(API_KEY);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = get("?subscription_status=terminated").await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"status": 404, "error": "Not Found", "code": "subscription_not_found"})
        )
    );
    let (status, body) = get("?status=terminated").await;
    assert_eq!(
        (status, body["subscription"]["lago_id"].clone()),
        (200, json!("sub-000002"))
    );
}

/// What the functions will do with a read: Lago's current state, mapped as a webhook of
/// that object would be.
#[tokio::test]
async fn lagos_current_state_maps_like_a_webhook() {
    let (lago, data) = standin().await;
    let api = api(&lago, API_KEY);
    let mut paid = data.invoices[4].clone();
    paid["payment_status"] = json!("succeeded");
    paid["updated_at"] = json!("2025-03-20T12:00:00Z");
    lago.replace("invoices", paid);

    let current = api.object(Family::Invoice, "inv-000004", TIMEOUT).await;
    let current = current.unwrap().expect("the invoice exists");
    assert_eq!(current["payment_status"], "succeeded");
    let body = as_webhook_body(Family::Invoice, "invoice.payment_status_updated", &current);
    let envelope = Envelope::parse(&body).unwrap();
    assert_eq!(envelope.webhook_type, "invoice.payment_status_updated");
    let plan = mapping::plan(Family::Invoice, &envelope).unwrap();
    assert_eq!(plan.lago_id, "inv-000004");
    assert_eq!(plan.write.fields["Payment_Status__c"], "succeeded");
}

#[tokio::test]
async fn an_unavailable_lago_is_a_transient_error() {
    let (lago, _) = standin().await;
    let api = api(&lago, API_KEY);
    for status in [503, 500, 429] {
        lago.fail_with(Some(status));
        for family in Family::ALL {
            let e = error(api.object(family, "ext-000001", TIMEOUT).await);
            assert!(
                matches!(&e, LagoApiError::Status { status: s, .. } if *s == status),
                "{e:?}"
            );
            assert!(e.is_transient(), "{e:?}");
        }
    }
    lago.fail_with(None);
    let found = api.object(Family::Customer, "ext-000001", TIMEOUT).await;
    assert!(found.unwrap().is_some());
}

#[tokio::test]
async fn a_refused_key_is_a_permanent_error() {
    let (lago, _) = standin().await;
    let api = api(&lago, "wrong-key");
    for family in Family::ALL {
        let e = error(api.object(family, "ext-000001", TIMEOUT).await);
        assert!(matches!(e, LagoApiError::Unauthorized), "{e:?}");
        assert!(!e.is_transient());
    }
    // One request for a subscription too: a refusal ends the read.
    assert_eq!(
        lago.stats().route("GET /api/v1/subscriptions/ext-000001"),
        1
    );
    let api = LagoApi::new(&lago.url(), API_KEY);
    for status in [403, 422] {
        lago.fail_with(Some(status));
        let e = error(api.object(Family::Invoice, "inv-000001", TIMEOUT).await);
        assert!(!e.is_transient(), "{e:?}");
    }
}

#[tokio::test]
async fn a_slow_lago_times_out_as_a_transient_error() {
    let (lago, _) = standin().await;
    let api = api(&lago, API_KEY);
    lago.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let e = error(
        api.object(Family::Invoice, "inv-000001", Duration::from_millis(300))
            .await,
    );
    assert!(
        matches!(e, LagoApiError::Timeout { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));

    // The timeout bounds the whole read, also when a subscription takes several requests
    // (the terminated subscription 2 takes four).
    lago.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    let e = error(
        api.object(
            Family::Subscription,
            "sub-sub-000002",
            Duration::from_millis(500),
        )
        .await,
    );
    assert!(
        matches!(e, LagoApiError::Timeout { .. }) && e.is_transient(),
        "{e:?}"
    );
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn a_lago_that_never_answers_or_refuses_connections_is_transient() {
    // Accepts connections (the kernel's backlog) and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let api = LagoApi::new(&url, API_KEY);
    let e = error(
        api.object(Family::Customer, "ext-1", Duration::from_millis(300))
            .await,
    );
    assert!(
        matches!(e, LagoApiError::Timeout { .. }) && e.is_transient(),
        "{e:?}"
    );

    // Nothing listens there any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let api = LagoApi::new(&url, API_KEY);
    let e = error(api.object(Family::Customer, "ext-1", TIMEOUT).await);
    assert!(
        matches!(e, LagoApiError::Transport(_)) && e.is_transient(),
        "{e:?}"
    );
    drop(silent);
}

/// `POST /api/v1/customers` with `body` (JSON text, or not), as the functions will send it:
/// the status and the answer.
async fn post_customer(lago: &LagoStandin, key: &str, body: String) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/customers", lago.url()))
        .bearer_auth(key)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn upsert_customer(lago: &LagoStandin, customer: Value) -> (u16, Value) {
    post_customer(lago, API_KEY, json!({ "customer": customer }).to_string()).await
}

async fn get(lago: &LagoStandin, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/{path}", lago.url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// What the Salesforce → Lago push sends for a flagged Account.
fn account_customer() -> Value {
    json!({
        "external_id": "001000000000001AAA", "external_salesforce_id": "001000000000001AAA",
        "name": "Acme", "email": "billing@acme.test", "currency": "EUR",
        "tax_identification_number": "FR12345678901", "address_line1": "1 rue de la Paix",
        "city": "Paris", "zipcode": "75002", "country": "fr", "phone": "+33 1 23 45 67 89",
        "url": "https://acme.test",
    })
}

#[tokio::test]
async fn a_customer_upsert_creates_then_changes_only_the_keys_sent() {
    let (lago, _) = standin().await;
    let (status, created) = upsert_customer(&lago, account_customer()).await;
    assert_eq!(status, 200, "{created}");
    let customer = &created["customer"];
    let lago_id = customer["lago_id"].as_str().unwrap().to_owned();
    assert_eq!(lago_id.len(), 36, "{lago_id}");
    for (key, value) in account_customer().as_object().unwrap() {
        let expected = if key == "country" {
            json!("FR")
        } else {
            value.clone()
        };
        assert_eq!(customer[key], expected, "{key}");
    }
    assert_eq!(
        (
            &customer["address_line2"],
            &customer["state"],
            &customer["integration_customers"],
            &customer["metadata"],
            &customer["billing_configuration"]["payment_provider"],
        ),
        (
            &Value::Null,
            &Value::Null,
            &json!([]),
            &json!([]),
            &Value::Null
        )
    );
    assert_eq!(customer["created_at"], customer["updated_at"]);
    // Part of Lago's data from now on.
    let (status, shown) = get(&lago, "customers/001000000000001AAA").await;
    assert_eq!((status, &shown), (200, &created));
    let (_, listed) = get(&lago, "customers?external_id=001000000000001AAA").await;
    assert_eq!(listed["customers"], json!([customer]));

    // Same external_id: the same customer, only the keys sent change (a blank address
    // line becomes null).
    let change = json!({"external_id": "001000000000001AAA", "name": "Acme Corp", "city": ""});
    let (status, updated) = upsert_customer(&lago, change.clone()).await;
    assert_eq!(status, 200, "{updated}");
    let mut expected = customer.clone();
    expected["name"] = json!("Acme Corp");
    expected["city"] = Value::Null;
    expected["updated_at"] = updated["customer"]["updated_at"].clone();
    assert_eq!(updated["customer"], expected);
    let (_, again) = upsert_customer(&lago, change.clone()).await;
    assert_eq!(again, updated, "nothing changed, not even updated_at");

    // A customer with subscriptions and invoices keeps its id and may restate its currency.
    let (status, billed) = upsert_customer(
        &lago,
        json!({"external_id": "ext-000001", "name": "Renamed", "currency": "USD"}),
    )
    .await;
    assert_eq!(status, 200, "{billed}");
    assert_eq!(
        (
            &billed["customer"]["lago_id"],
            &billed["customer"]["name"],
            &billed["customer"]["currency"]
        ),
        (&json!("cus-000001"), &json!("Renamed"), &json!("USD"))
    );
    assert_eq!(
        lago.record("customers", "cus-000001").unwrap()["name"],
        "Renamed"
    );

    assert_eq!(
        lago.customer_upserts(),
        [
            json!({"customer": account_customer()}),
            json!({"customer": change}),
            json!({"customer": change}),
            json!({"customer": {"external_id": "ext-000001", "name": "Renamed", "currency": "USD"}}),
        ]
    );
    assert_eq!(lago.stats().route("POST /api/v1/customers"), 4);
}

#[tokio::test]
async fn lago_refuses_an_invalid_customer_with_its_422() {
    let (lago, _) = standin().await;
    let cases = [
        (
            json!({"name": "No id"}),
            json!({"external_id": ["value_is_mandatory"]}),
        ),
        (
            json!({"external_id": "acme", "currency": "EURO"}),
            json!({"currency": ["value_is_invalid"]}),
        ),
        (
            json!({"external_id": "acme", "currency": "eur"}),
            json!({"currency": ["value_is_invalid"]}),
        ),
        (
            json!({"external_id": "acme", "country": "FRA"}),
            json!({"country": ["not_a_valid_country_code"]}),
        ),
        (
            json!({"external_id": "acme", "email": "billing@acme"}),
            json!({"email": ["invalid_email_format"]}),
        ),
        // Every failed validation is reported at once.
        (
            json!({"external_id": " ", "country": "XX", "currency": "ZZZ"}),
            json!({"country": ["not_a_valid_country_code"], "currency": ["value_is_invalid"], "external_id": ["value_is_mandatory"]}),
        ),
        // ext-000001 has subscriptions and invoices.
        (
            json!({"external_id": "ext-000001", "currency": "EUR", "country": "XX"}),
            json!({"currency": ["currencies_does_not_match"]}),
        ),
    ];
    for (customer, details) in &cases {
        let (status, body) = upsert_customer(&lago, customer.clone()).await;
        assert_eq!(
            (status, body),
            (
                422,
                json!({"status": 422, "error": "Unprocessable Entity", "code": "validation_errors", "error_details": details})
            ),
            "{customer}"
        );
    }
    // Nothing was stored.
    let (status, _) = get(&lago, "customers/acme").await;
    assert_eq!(status, 404);
    assert_eq!(
        lago.record("customers", "cus-000001").unwrap()["currency"],
        "USD"
    );
    assert_eq!(lago.customer_upserts().len(), cases.len());

    let missing = "BadRequest: param is missing or the value is empty or invalid: customer";
    for (body, error) in [
        (json!({"customer": {}}).to_string(), missing),
        (json!({"name": "Acme"}).to_string(), missing),
        ("{not json".to_owned(), "Bad Request"),
    ] {
        let answer = post_customer(&lago, API_KEY, body.clone()).await;
        assert_eq!(
            answer,
            (400, json!({"status": 400, "error": error})),
            "{body}"
        );
    }
    assert_eq!(lago.customer_upserts()[cases.len() + 2], json!("{not json"));
}

#[tokio::test]
async fn the_customer_upsert_needs_the_key_and_meets_the_injected_failures() {
    let (lago, _) = standin().await;
    let body = json!({ "customer": account_customer() }).to_string();
    let refused = post_customer(&lago, "wrong-key", body.clone()).await;
    assert_eq!(
        refused,
        (401, json!({"status": 401, "error": "Unauthorized"}))
    );
    lago.fail_with(Some(503));
    let failed = post_customer(&lago, API_KEY, body.clone()).await;
    assert_eq!(
        failed,
        (503, json!({"status": 503, "error": "Service Unavailable"}))
    );
    let (status, _) = get(&lago, "customers/001000000000001AAA").await;
    assert_eq!(status, 503);
    lago.fail_with(None);
    let (status, _) = get(&lago, "customers/001000000000001AAA").await;
    assert_eq!(status, 404, "neither request created the customer");

    lago.set_delay(Duration::from_millis(300));
    let started = Instant::now();
    let (status, _) = post_customer(&lago, API_KEY, body).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Every request is recorded, whatever its answer.
    assert_eq!(lago.customer_upserts().len(), 3);
    assert_eq!(lago.stats().route("POST /api/v1/customers"), 3);
}
