//! Proves the Salesforce stand-in speaks the real REST protocol and enforces the
//! project's metadata.

use std::time::Duration;

use reqwest::{header::HeaderMap, StatusCode};
use serde_json::{json, Value};
use sync_testkit::standin::{Fault, FieldType, Schema, Standin, StandinConfig};

const ACCOUNT: &str = "001000000000001AAA";
const V: &str = "/services/data/v62.0";

/// A minimal REST client, as a project client would use the org.
struct Org {
    http: reqwest::Client,
    url: String,
    token: String,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Org {
    async fn connect(standin: &Standin) -> Org {
        let http = reqwest::Client::new();
        let url = standin.url();
        let token = token(&http, &url, "local-client-id", "local-client-secret").await;
        assert_eq!(token.status, StatusCode::OK, "{}", token.body);
        let token = token.body["access_token"].as_str().unwrap().to_owned();
        Org { http, url, token }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self
            .http
            .request(method, format!("{}{V}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        answer(request.send().await.unwrap()).await
    }

    async fn patch(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::PATCH, path, Some(&body)).await
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    Answer {
        status,
        headers,
        body,
    }
}

async fn token(http: &reqwest::Client, url: &str, id: &str, secret: &str) -> Answer {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", id),
        ("client_secret", secret),
    ];
    answer(
        http.post(format!("{url}/services/oauth2/token"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn standin() -> (Standin, Org) {
    let standin = Standin::start(StandinConfig::default()).await;
    let org = Org::connect(&standin).await;
    (standin, org)
}

fn invoice(lago_id: &str, number: &str) -> Value {
    json!({
        "Name": number,
        "Lago_Id__c": lago_id,
        "Account__c": ACCOUNT,
        "Number__c": number,
        "Status__c": "finalized",
        "Issuing_Date__c": "2024-03-01",
        "Total_Amount__c": 120.5,
        "Currency__c": "EUR",
    })
}

/// The single error of a single-record error answer.
fn error(answer: &Answer) -> (&str, &str) {
    let error = &answer.body[0];
    (
        error["errorCode"].as_str().unwrap_or_default(),
        error["message"].as_str().unwrap_or_default(),
    )
}

#[tokio::test]
async fn metadata_defines_exactly_the_contract_schema() {
    let schema = Schema::load(&StandinConfig::repo_metadata_dir()).unwrap();
    let text = |length| FieldType::Text { length };
    let picklist = |values: &[&str]| FieldType::Picklist {
        values: values.iter().map(|v| v.to_string()).collect(),
        restricted: false,
    };
    let lookup = |target: &str, relationship: &str| FieldType::Lookup {
        target: target.into(),
        relationship_name: relationship.into(),
    };
    let amount = FieldType::Number {
        precision: 18,
        scale: 3,
    };
    let quantity = FieldType::Number {
        precision: 18,
        scale: 6,
    };
    let lago_id = ("Lago_Id__c", text(36), true, true);
    let plain = |name, field_type| (name, field_type, false, false);
    let expected = [
        (
            "Account",
            vec![
                ("Lago_Customer_Id__c", text(36), true, false),
                plain("Lago_External_Customer_Id__c", text(255)),
                plain("Lago_Customer_Name__c", text(255)),
                plain("Lago_Billing_Email__c", text(255)),
                plain("Lago_Currency__c", text(3)),
                plain("Lago_Tax_Identification_Number__c", text(255)),
                plain("Lago_Customer_Updated_At__c", FieldType::DateTime),
            ],
        ),
        (
            "Lago_Subscription__c",
            vec![
                lago_id.clone(),
                plain("Account__c", lookup("Account", "Lago_Subscriptions")),
                plain("External_Id__c", text(255)),
                plain("Plan_Code__c", text(255)),
                plain(
                    "Status__c",
                    picklist(&["pending", "active", "terminated", "canceled", "incomplete"]),
                ),
                plain("Billing_Time__c", picklist(&["calendar", "anniversary"])),
                plain("Start_Date__c", FieldType::Date),
                plain("Termination_Date__c", FieldType::Date),
                plain("Plan_Name__c", text(255)),
                plain("Ending_Date__c", FieldType::Date),
                plain("Trial_Ended_Date__c", FieldType::Date),
                plain("Canceled_Date__c", FieldType::Date),
            ],
        ),
        (
            "Lago_Invoice__c",
            vec![
                lago_id.clone(),
                plain("Account__c", lookup("Account", "Lago_Invoices")),
                plain("Number__c", text(255)),
                plain(
                    "Status__c",
                    picklist(&["draft", "finalized", "voided", "failed", "pending"]),
                ),
                plain(
                    "Payment_Status__c",
                    picklist(&["pending", "succeeded", "failed"]),
                ),
                plain(
                    "Invoice_Type__c",
                    picklist(&[
                        "subscription",
                        "add_on",
                        "credit",
                        "one_off",
                        "advance_charges",
                        "progressive_billing",
                    ]),
                ),
                plain("Issuing_Date__c", FieldType::Date),
                plain("Payment_Due_Date__c", FieldType::Date),
                plain("Total_Amount__c", amount.clone()),
                plain("Currency__c", text(3)),
                plain("File_Url__c", FieldType::Url),
                plain("Total_Due_Amount__c", amount.clone()),
                plain("Sub_Total_Excluding_Taxes__c", amount.clone()),
                plain("Taxes_Amount__c", amount.clone()),
                plain("Payment_Overdue__c", FieldType::Checkbox),
                plain("Payment_Dispute_Lost_At__c", FieldType::DateTime),
                plain("Voided_At__c", FieldType::DateTime),
                plain("Purchase_Order_Number__c", text(255)),
                plain("Lago_Url__c", FieldType::Url),
            ],
        ),
        (
            "Lago_Invoice_Line_Item__c",
            vec![
                lago_id.clone(),
                plain(
                    "Invoice__c",
                    FieldType::MasterDetail {
                        target: "Lago_Invoice__c".into(),
                        relationship_name: "Line_Items".into(),
                    },
                ),
                plain(
                    "Item_Type__c",
                    picklist(&[
                        "subscription",
                        "charge",
                        "add_on",
                        "credit",
                        "commitment",
                        "fixed_charge",
                    ]),
                ),
                plain("Item_Code__c", text(255)),
                plain("Item_Name__c", text(255)),
                plain("Units__c", quantity),
                plain("Amount__c", amount.clone()),
                plain("Taxes_Amount__c", amount.clone()),
                plain("Total_Amount__c", amount.clone()),
                plain("Currency__c", text(3)),
                plain("From_Date__c", FieldType::Date),
                plain("To_Date__c", FieldType::Date),
            ],
        ),
        (
            "Lago_Credit_Note__c",
            vec![
                lago_id.clone(),
                plain("Account__c", lookup("Account", "Lago_Credit_Notes")),
                plain("Invoice__c", lookup("Lago_Invoice__c", "Lago_Credit_Notes")),
                plain("Lago_Invoice_Id__c", text(36)),
                plain("Number__c", text(255)),
                plain("Invoice_Number__c", text(255)),
                plain(
                    "Credit_Status__c",
                    picklist(&["available", "consumed", "voided"]),
                ),
                plain(
                    "Refund_Status__c",
                    picklist(&["pending", "succeeded", "failed"]),
                ),
                plain(
                    "Reason__c",
                    picklist(&[
                        "duplicated_charge",
                        "product_unsatisfactory",
                        "order_change",
                        "order_cancellation",
                        "fraudulent_charge",
                        "other",
                    ]),
                ),
                plain("Issuing_Date__c", FieldType::Date),
                plain("Total_Amount__c", amount.clone()),
                plain("Currency__c", text(3)),
                plain("File_Url__c", FieldType::Url),
                plain("Credit_Amount__c", amount.clone()),
                plain("Refund_Amount__c", amount.clone()),
                plain("Balance_Amount__c", amount),
            ],
        ),
        (
            "Lago_Sync_Issue__c",
            vec![
                ("Delivery_Key__c", text(255), true, true),
                plain("Status__c", picklist(&["open", "resolved"])),
                plain("Family__c", text(255)),
                plain("Webhook_Type__c", text(255)),
                plain("Lago_Id__c", text(255)),
                plain("Error_Code__c", text(255)),
                plain(
                    "Error_Message__c",
                    FieldType::LongTextArea { length: 32768 },
                ),
                plain(
                    "Attempts__c",
                    FieldType::Number {
                        precision: 6,
                        scale: 0,
                    },
                ),
                plain("First_Failed_At__c", FieldType::DateTime),
                plain("Last_Failed_At__c", FieldType::DateTime),
                plain("Resolved_At__c", FieldType::DateTime),
                plain("Account__c", lookup("Account", "Lago_Sync_Issues")),
            ],
        ),
    ];
    let loaded: Vec<&str> = schema.objects().map(|o| o.name.as_str()).collect();
    let mut wanted: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
    wanted.sort();
    assert_eq!(loaded, wanted);
    for (object, mut fields) in expected {
        let def = schema.object(object).unwrap();
        let mut actual: Vec<_> = def
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.field_type.clone(),
                    f.external_id,
                    f.unique,
                )
            })
            .collect();
        fields.sort_by_key(|f| f.0);
        actual.sort_by_key(|f| f.0);
        assert_eq!(actual, fields, "fields of {object}");
        if object != "Account" {
            assert_eq!(def.name_field.field_type, text(80), "Name of {object}");
        }
        if object.starts_with("Lago_") && object != "Lago_Sync_Issue__c" {
            assert!(!def.field("Lago_Id__c").unwrap().case_sensitive);
        }
    }
}

#[test]
fn permission_set_grants_every_custom_field_and_object() {
    let schema = Schema::load(&StandinConfig::repo_metadata_dir()).unwrap();
    let path = StandinConfig::repo_metadata_dir()
        .join("../permissionsets/Lago_Sync.permissionset-meta.xml");
    let source = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&source).unwrap();
    let ns = "http://soap.sforce.com/2006/04/metadata";
    let text = |node: roxmltree::Node, tag: &str| {
        node.children()
            .find(|c| c.has_tag_name((ns, tag)))
            .and_then(|c| c.text())
            .unwrap_or_default()
            .to_owned()
    };
    let blocks = |tag: &str| {
        doc.root_element()
            .children()
            .filter(|c| c.has_tag_name((ns, tag)))
            .collect::<Vec<_>>()
    };

    let mut granted: Vec<String> = blocks("fieldPermissions")
        .into_iter()
        .inspect(|p| {
            assert_eq!(
                (text(*p, "readable"), text(*p, "editable")),
                ("true".into(), "true".into())
            )
        })
        .map(|p| text(p, "field"))
        .collect();
    granted.sort();
    // Salesforce refuses field permissions on master-detail (always required) fields.
    let mut fields: Vec<String> = schema
        .objects()
        .flat_map(|o| {
            o.fields
                .iter()
                .filter(|f| !matches!(f.field_type, FieldType::MasterDetail { .. }))
                .map(move |f| format!("{}.{}", o.name, f.name))
        })
        .collect();
    fields.sort();
    assert_eq!(granted, fields);

    let objects: Vec<(String, String, String)> = blocks("objectPermissions")
        .into_iter()
        .map(|p| {
            (
                text(p, "object"),
                text(p, "allowCreate"),
                text(p, "allowEdit"),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = schema
        .objects()
        .map(|o| {
            (
                o.name.clone(),
                (o.name != "Account").to_string(),
                "true".into(),
            )
        })
        .collect();
    assert_eq!(objects, expected);
}

#[tokio::test]
async fn token_endpoint_speaks_client_credentials() {
    let standin = Standin::start(StandinConfig::default()).await;
    let http = reqwest::Client::new();
    let url = standin.url();

    let first = token(&http, &url, "local-client-id", "local-client-secret").await;
    assert_eq!(first.status, StatusCode::OK);
    for key in [
        "access_token",
        "instance_url",
        "id",
        "issued_at",
        "signature",
        "scope",
    ] {
        assert!(first.body[key].is_string(), "{key} in {}", first.body);
    }
    assert_eq!(first.body["token_type"], "Bearer");
    assert_eq!(first.body["instance_url"], url.as_str());
    assert!(first.body.get("expires_in").is_none() && first.body.get("refresh_token").is_none());

    let basic = http
        .post(format!("{url}/services/oauth2/token"))
        .basic_auth("local-client-id", Some("local-client-secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let basic = answer(basic).await;
    assert_eq!(basic.status, StatusCode::OK);
    assert_ne!(
        basic.body["access_token"], first.body["access_token"],
        "every token is fresh"
    );

    let bad = token(&http, &url, "local-client-id", "wrong").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.body,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );

    let password = http
        .post(format!("{url}/services/oauth2/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", "local-client-id"),
            ("client_secret", "local-client-secret"),
        ])
        .send()
        .await
        .unwrap();
    let password = answer(password).await;
    assert_eq!(password.status, StatusCode::BAD_REQUEST);
    assert_eq!(password.body["error"], "unsupported_grant_type");
    assert_eq!(standin.stats().token_requests, 4);
}

#[tokio::test]
async fn a_rotated_client_secret_refuses_the_old_one_and_keeps_issued_tokens() {
    let (standin, org) = standin().await;
    let http = reqwest::Client::new();
    let rotated = http
        .post(format!("{}/__standin/client-secret", standin.url()))
        .json(&json!({"client_secret": "rotated-secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), StatusCode::NO_CONTENT);

    let old = token(
        &http,
        &standin.url(),
        "local-client-id",
        "local-client-secret",
    )
    .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        old.body,
        json!({"error": "invalid_client", "error_description": "invalid client credentials"})
    );
    let new = token(&http, &standin.url(), "local-client-id", "rotated-secret").await;
    assert_eq!(new.status, StatusCode::OK);
    // Sessions already open stay open (a test ends them with expire_tokens).
    let still = org
        .patch(
            "/sobjects/Account/001000000000001AAA",
            json!({"Lago_Currency__c": "EUR"}),
        )
        .await;
    assert_eq!(still.status, StatusCode::NO_CONTENT);

    standin.set_client_secret("local-client-secret");
    let back = token(
        &http,
        &standin.url(),
        "local-client-id",
        "local-client-secret",
    )
    .await;
    assert_eq!(back.status, StatusCode::OK);
}

#[tokio::test]
async fn rest_calls_need_a_current_token() {
    let (standin, org) = standin().await;
    let anonymous = reqwest::Client::new()
        .patch(format!("{}{V}/sobjects/Account/{ACCOUNT}", standin.url()))
        .json(&json!({"Lago_Currency__c": "EUR"}))
        .send()
        .await
        .unwrap();
    let anonymous = answer(anonymous).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.body,
        json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    );

    assert_eq!(
        org.patch(&format!("/sobjects/Account/{ACCOUNT}"), json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    standin.expire_tokens();
    let expired = org
        .patch(&format!("/sobjects/Account/{ACCOUNT}"), json!({}))
        .await;
    assert_eq!(
        (expired.status, error(&expired).0),
        (StatusCode::UNAUTHORIZED, "INVALID_SESSION_ID")
    );
    let fresh = Org::connect(&standin).await;
    assert_eq!(
        fresh
            .patch(&format!("/sobjects/Account/{ACCOUNT}"), json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn account_update_by_id() {
    let (standin, org) = standin().await;
    let fields = json!({
        "Lago_Customer_Id__c": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        "Lago_Customer_Name__c": "Acme",
        "Lago_Customer_Updated_At__c": "2024-03-01T10:00:00Z",
        "Lago_Tax_Identification_Number__c": null,
    });
    let updated = org
        .patch(&format!("/sobjects/Account/{ACCOUNT}"), fields)
        .await;
    assert_eq!(
        (updated.status, &updated.body),
        (StatusCode::NO_CONTENT, &Value::Null)
    );
    let account = standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(account["Lago_Customer_Name__c"], "Acme");
    assert_eq!(account["Lago_Tax_Identification_Number__c"], Value::Null);
    assert!(
        account
            .as_object()
            .unwrap()
            .contains_key("Lago_Tax_Identification_Number__c"),
        "a null is stored"
    );

    // The 15-character form names the same record, and Salesforce's own datetime format is accepted.
    let short = org
        .patch(
            &format!("/sobjects/Account/{}", &ACCOUNT[..15]),
            json!({"Lago_Customer_Updated_At__c": "2024-03-02T10:00:00.000+0000"}),
        )
        .await;
    assert_eq!(short.status, StatusCode::NO_CONTENT, "{}", short.body);

    let missing = org
        .patch(
            "/sobjects/Account/001000000000002AAA",
            json!({"Lago_Currency__c": "EUR"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        missing.body,
        json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])
    );

    let malformed = org
        .patch(
            "/sobjects/Account/not-an-id",
            json!({"Lago_Currency__c": "EUR"}),
        )
        .await;
    assert_eq!(
        (malformed.status, error(&malformed).0),
        (StatusCode::BAD_REQUEST, "MALFORMED_ID")
    );

    let standard = org
        .patch(
            &format!("/sobjects/Account/{ACCOUNT}"),
            json!({"BillingCity": "Paris"}),
        )
        .await;
    assert_eq!(standard.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        standard.body,
        json!([{"message": "No such column 'BillingCity' on sobject of type Account", "errorCode": "INVALID_FIELD", "fields": []}])
    );

    let with_id = org
        .patch(
            &format!("/sobjects/Account/{ACCOUNT}"),
            json!({"Id": ACCOUNT}),
        )
        .await;
    assert_eq!(
        error(&with_id),
        (
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data."
        )
    );
}

#[tokio::test]
async fn upsert_by_external_id_creates_then_updates() {
    let (standin, org) = standin().await;
    let path = "/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1";
    let created = org.patch(path, invoice("inv-1", "INV-001")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(id.len() == 18 && id.starts_with('a'), "{id}");
    assert_eq!(
        created.body,
        json!({"id": id, "success": true, "errors": [], "created": true})
    );

    // The key is case-insensitive and need not be repeated in the body.
    let updated = org
        .patch(
            "/sobjects/Lago_Invoice__c/Lago_Id__c/INV-1",
            json!({"Payment_Status__c": "succeeded", "File_Url__c": null}),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK);
    assert_eq!(
        updated.body,
        json!({"id": id, "success": true, "errors": [], "created": false})
    );

    let records = standin.records("Lago_Invoice__c");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["Payment_Status__c"], "succeeded");
    assert_eq!(records[0]["Status__c"], "finalized");
    assert_eq!(records[0]["File_Url__c"], Value::Null);

    let read = org.send(reqwest::Method::GET, path, None).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(
        (
            read.body["Id"].as_str(),
            read.body["attributes"]["type"].as_str()
        ),
        (Some(id.as_str()), Some("Lago_Invoice__c"))
    );
}

#[tokio::test]
async fn upsert_rejects_what_the_org_rejects() {
    let (standin, org) = standin().await;
    let path = "/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1";
    let cases = [
        (
            json!({"Number__c": "INV-001"}),
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [Name]",
        ),
        (
            json!({"Name": "N", "Amount__c": 1}),
            "INVALID_FIELD",
            "No such column 'Amount__c' on sobject of type Lago_Invoice__c",
        ),
        (json!({"Name": "N".repeat(81)}), "STRING_TOO_LONG", ""),
        (
            json!({"Name": "N", "Currency__c": "EURO"}),
            "STRING_TOO_LONG",
            "",
        ),
        (
            json!({"Name": "N", "File_Url__c": format!("https://files.example/{}", "x".repeat(240))}),
            "STRING_TOO_LONG",
            "",
        ),
        (
            json!({"Name": "N", "Issuing_Date__c": "2024-03-01T00:00:00Z"}),
            "JSON_PARSER_ERROR",
            "",
        ),
        (
            json!({"Name": "N", "Total_Amount__c": "120.50"}),
            "JSON_PARSER_ERROR",
            "",
        ),
        (
            json!({"Name": "N", "Total_Amount__c": 1e16}),
            "NUMBER_OUTSIDE_VALID_RANGE",
            "",
        ),
        (
            json!({"Name": "N", "Account__c": "001000000000009AAA"}),
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id",
        ),
        (
            json!({"Name": "N", "Account__c": "acme"}),
            "MALFORMED_ID",
            "",
        ),
        (
            json!({"Name": "N", "Lago_Id__c": "inv-2"}),
            "INVALID_FIELD",
            "",
        ),
        (
            json!({"Name": "N", "Id": "a01000000000001AAA"}),
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data.",
        ),
    ];
    for (body, code, message) in cases {
        let rejected = org.patch(path, body.clone()).await;
        assert_eq!(
            rejected.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            rejected.body
        );
        assert_eq!(error(&rejected).0, code, "{body}: {}", rejected.body);
        assert!(
            error(&rejected).1.contains(message),
            "{body}: {}",
            rejected.body
        );
    }
    let too_long = org.patch(path, json!({"Name": "N".repeat(81)})).await;
    assert_eq!(too_long.body[0]["fields"], json!(["Name"]));

    let not_json = reqwest::Client::new()
        .patch(format!("{}{V}{path}", standin.url()))
        .bearer_auth(&org.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let not_json = answer(not_json).await;
    assert_eq!(
        (not_json.status, error(&not_json).0),
        (StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR")
    );

    let wrong_key = org
        .patch(
            "/sobjects/Lago_Invoice__c/Number__c/INV-001",
            json!({"Name": "N"}),
        )
        .await;
    assert_eq!(wrong_key.status, StatusCode::NOT_FOUND);
    assert_eq!(
        error(&wrong_key).1,
        "Provided external ID field does not exist or is not accessible: Number__c"
    );
    let unknown_object = org
        .patch(
            "/sobjects/Lago_Plan__c/Lago_Id__c/p-1",
            json!({"Name": "N"}),
        )
        .await;
    assert_eq!(unknown_object.status, StatusCode::NOT_FOUND);

    assert!(
        standin.records("Lago_Invoice__c").is_empty(),
        "nothing stored by rejected writes"
    );
}

#[tokio::test]
async fn relationships_resolve_by_external_id() {
    let (standin, org) = standin().await;
    let invoice_id = org
        .patch(
            "/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1",
            invoice("inv-1", "INV-001"),
        )
        .await
        .body["id"]
        .clone();
    org.patch(
        &format!("/sobjects/Account/{ACCOUNT}"),
        json!({"Lago_Customer_Id__c": "cus-1"}),
    )
    .await;

    let note = json!({
        "Name": "CN-001",
        "Account__r": {"Lago_Customer_Id__c": "cus-1"},
        "Invoice__r": {"Lago_Id__c": "inv-1"},
        "Lago_Invoice_Id__c": "inv-1",
        "Reason__c": "a reason Lago added later",
    });
    let created = org
        .patch("/sobjects/Lago_Credit_Note__c/Lago_Id__c/cn-1", note)
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let stored = standin
        .record_by("Lago_Credit_Note__c", "Lago_Id__c", "cn-1")
        .unwrap();
    assert_eq!(stored["Invoice__c"], invoice_id);
    assert_eq!(stored["Account__c"], ACCOUNT);
    assert!(stored.get("Invoice__r").is_none());

    let orphan = org
        .patch(
            "/sobjects/Lago_Credit_Note__c/Lago_Id__c/cn-2",
            json!({"Name": "CN-002", "Invoice__r": {"Lago_Id__c": "inv-9"}}),
        )
        .await;
    assert_eq!(orphan.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        orphan.body,
        json!([{"message": "Foreign key external ID: inv-9 not found for field Lago_Id__c in entity Lago_Invoice__c", "errorCode": "INVALID_FIELD", "fields": []}])
    );
    let not_external = org
        .patch(
            "/sobjects/Lago_Credit_Note__c/Lago_Id__c/cn-2",
            json!({"Name": "CN-002", "Invoice__r": {"Number__c": "INV-001"}}),
        )
        .await;
    assert_eq!(error(&not_external).0, "INVALID_FIELD");
}

#[tokio::test]
async fn collections_upsert_reports_each_record() {
    let (standin, org) = standin().await;
    let path = "/composite/sobjects/Lago_Subscription__c/Lago_Id__c";
    let subscription = |lago_id: &str, extra: Value| {
        let mut record = json!({"attributes": {"type": "Lago_Subscription__c"}, "Name": "Premium", "Lago_Id__c": lago_id, "Account__c": ACCOUNT});
        record
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        record
    };

    let mixed = json!({"allOrNone": false, "records": [
        subscription("sub-1", json!({"Status__c": "active"})),
        subscription("sub-2", json!({"Start_Date__c": "yesterday"})),
        subscription("sub-3", json!({"Plan_Code__c": null})),
    ]});
    let answer = org.patch(path, mixed).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let results = answer.body.as_array().unwrap();
    assert_eq!(
        (results[0]["success"].clone(), results[0]["created"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(results[1]["success"], false);
    assert_eq!(results[1]["errors"][0]["statusCode"], "JSON_PARSER_ERROR");
    assert!(results[1]["errors"][0].get("errorCode").is_none());
    assert_eq!(results[2]["success"], true);
    assert_eq!(standin.records("Lago_Subscription__c").len(), 2);

    let all_or_none = json!({"allOrNone": true, "records": [
        subscription("sub-1", json!({"Status__c": "terminated"})),
        subscription("sub-4", json!({"Bogus__c": 1})),
    ]});
    let results = org.patch(path, all_or_none).await.body;
    assert_eq!(
        results[0]["errors"][0]["statusCode"],
        "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    );
    assert_eq!(results[1]["errors"][0]["statusCode"], "INVALID_FIELD");
    assert_eq!(
        standin
            .record_by("Lago_Subscription__c", "Lago_Id__c", "sub-1")
            .unwrap()["Status__c"],
        "active"
    );
    assert_eq!(standin.records("Lago_Subscription__c").len(), 2);

    let twice =
        json!({"records": [subscription("sub-5", json!({})), subscription("SUB-5", json!({}))]});
    let results = org.patch(path, twice).await.body;
    assert_eq!(
        (
            results[0]["errors"][0]["statusCode"].as_str(),
            results[1]["success"].as_bool()
        ),
        (Some("DUPLICATE_VALUE"), Some(false))
    );

    let too_many: Vec<Value> = (0..201)
        .map(|i| subscription(&format!("s-{i}"), json!({})))
        .collect();
    let rejected = org.patch(path, json!({"records": too_many})).await;
    assert_eq!(
        (rejected.status, error(&rejected).0),
        (StatusCode::BAD_REQUEST, "EXCEEDED_ID_LIMIT")
    );

    let wrong_type = org.patch(path, json!({"records": [{"attributes": {"type": "Lago_Invoice__c"}, "Name": "x", "Lago_Id__c": "x"}]})).await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);

    let stats = standin.stats();
    assert_eq!(
        stats.rest_requests_by_object["Lago_Subscription__c"], 5,
        "one API call per collection request"
    );
}

#[tokio::test]
async fn collections_update_by_id() {
    let (standin, org) = standin().await;
    let other = standin.add_account("001000000000002");
    assert_eq!(other, "001000000000002AAA");
    let body = json!({"allOrNone": false, "records": [
        {"attributes": {"type": "Account"}, "id": ACCOUNT, "Lago_Currency__c": "EUR"},
        {"attributes": {"type": "Account"}, "id": other, "Lago_Currency__c": "USD"},
        {"attributes": {"type": "Account"}, "id": "001000000000003AAA", "Lago_Currency__c": "JPY"},
    ]});
    let results = org.patch("/composite/sobjects", body).await;
    assert_eq!(results.status, StatusCode::OK, "{}", results.body);
    assert_eq!(
        results.body[0],
        json!({"id": ACCOUNT, "success": true, "errors": []})
    );
    assert_eq!(results.body[2]["errors"][0]["statusCode"], "NOT_FOUND");
    assert_eq!(
        standin.record_by("Account", "Id", &other).unwrap()["Lago_Currency__c"],
        "USD"
    );
    assert_eq!(standin.stats().rest_requests_by_object["Account"], 1);
}

#[tokio::test]
async fn scripted_faults_apply_to_the_next_requests() {
    let (standin, org) = standin().await;
    let path = format!("/sobjects/Account/{ACCOUNT}");
    standin.add_fault(
        Fault::error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable").times(2),
    );
    for _ in 0..2 {
        let failed = org.patch(&path, json!({})).await;
        assert_eq!(
            (failed.status, error(&failed).0),
            (StatusCode::SERVICE_UNAVAILABLE, "SERVER_UNAVAILABLE")
        );
        assert!(failed.headers.contains_key("sforce-limit-info"));
    }
    assert_eq!(
        org.patch(&path, json!({})).await.status,
        StatusCode::NO_CONTENT
    );

    standin.add_fault(
        Fault::error(
            400,
            "UNABLE_TO_LOCK_ROW",
            "unable to obtain exclusive access to this record",
        )
        .on_path("Lago_Invoice__c"),
    );
    assert_eq!(
        org.patch(&path, json!({})).await.status,
        StatusCode::NO_CONTENT,
        "other paths are unaffected"
    );
    let locked = org
        .patch(
            "/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1",
            invoice("inv-1", "INV-001"),
        )
        .await;
    assert_eq!(error(&locked).0, "UNABLE_TO_LOCK_ROW");
    assert!(standin.records("Lago_Invoice__c").is_empty());

    standin.add_fault(Fault::html(502, "<html><body>Bad Gateway</body></html>"));
    let gateway = org.patch(&path, json!({})).await;
    assert_eq!(gateway.status, StatusCode::BAD_GATEWAY);
    assert!(gateway.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));

    standin.add_fault(Fault::close());
    let closed = org
        .http
        .patch(format!("{}{V}{path}", org.url))
        .bearer_auth(&org.token)
        .json(&json!({}))
        .send()
        .await;
    assert!(
        closed.is_err(),
        "the connection is dropped without an answer"
    );

    // A client that times out still leaves the write done, as on a real org.
    standin.add_fault(Fault::delay(Duration::from_millis(600)));
    let timed_out = org
        .http
        .patch(format!(
            "{}{V}/sobjects/Lago_Invoice__c/Lago_Id__c/inv-2",
            org.url
        ))
        .bearer_auth(&org.token)
        .json(&invoice("inv-2", "INV-002"))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert!(standin
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-2")
        .is_some());

    standin.add_fault(Fault::error(
        403,
        "REQUEST_LIMIT_EXCEEDED",
        "TotalRequests Limit exceeded.",
    ));
    assert_eq!(
        org.patch(&path, json!({})).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn limit_info_counts_rest_calls_and_the_log_keeps_them() {
    let standin = Standin::start(StandinConfig {
        api_limit: 3,
        ..StandinConfig::default()
    })
    .await;
    let org = Org::connect(&standin).await;
    let path = format!("/sobjects/Account/{ACCOUNT}");
    for used in 1..=3 {
        let answer = org.patch(&path, json!({"Lago_Currency__c": "EUR"})).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
        assert_eq!(
            answer.headers["sforce-limit-info"],
            format!("api-usage={used}/3").as_str()
        );
    }
    let over = org.patch(&path, json!({})).await;
    assert_eq!(
        (over.status, error(&over)),
        (
            StatusCode::FORBIDDEN,
            ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        )
    );
    assert_eq!(over.headers["sforce-limit-info"], "api-usage=4/3");

    let stats = standin.stats();
    assert_eq!(
        (
            stats.token_requests,
            stats.rest_requests,
            stats.rest_requests_by_object["Account"]
        ),
        (1, 4, 4)
    );
    let log = standin.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(
        (log[0].method.as_str(), log[0].path.as_str()),
        ("PATCH", format!("/services/data/v62.0{path}").as_str())
    );
    assert_eq!(log[0].body, json!({"Lago_Currency__c": "EUR"}));
}

#[tokio::test]
async fn http_controls_mirror_the_rust_api() {
    let (standin, org) = standin().await;
    let http = reqwest::Client::new();
    let control = |path: &str| format!("{}/__standin{path}", standin.url());

    let added = http
        .post(control("/accounts"))
        .json(&json!({"id": "001000000000005"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(
        answer(added).await.body,
        json!({"id": "001000000000005AAA"})
    );
    let refused = http
        .post(control("/accounts"))
        .json(&json!({"id": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let fault = json!({"action": {"respond": {"status": 500, "body": [{"errorCode": "UNKNOWN_EXCEPTION", "message": "An unexpected error occurred."}]}}, "path_contains": "/sobjects/Account/"});
    assert_eq!(
        http.post(control("/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let failed = org
        .patch(
            "/sobjects/Account/001000000000005AAA",
            json!({"Lago_Currency__c": "EUR"}),
        )
        .await;
    assert_eq!(
        (failed.status, error(&failed).0),
        (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN_EXCEPTION")
    );
    assert_eq!(
        org.patch(
            "/sobjects/Account/001000000000005AAA",
            json!({"Lago_Currency__c": "EUR"})
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );

    let records = answer(http.get(control("/records")).send().await.unwrap())
        .await
        .body;
    assert_eq!(records["Account"].as_array().unwrap().len(), 2);
    assert_eq!(records["Account"][1]["Lago_Currency__c"], "EUR");

    let stats = answer(http.get(control("/stats")).send().await.unwrap())
        .await
        .body;
    assert_eq!(
        (
            stats["token_requests"].as_u64(),
            stats["rest_requests"].as_u64()
        ),
        (Some(1), Some(2))
    );
    let requests = answer(http.get(control("/requests")).send().await.unwrap())
        .await
        .body;
    assert_eq!(requests.as_array().unwrap().len(), 2);

    assert_eq!(
        http.post(control("/expire-tokens"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        org.patch("/sobjects/Account/001000000000005AAA", json!({}))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}
