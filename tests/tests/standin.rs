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

    async fn composite(&self, body: Value) -> Answer {
        self.send(reqwest::Method::POST, "/composite", Some(&body))
            .await
    }

    /// `GET query?q=<soql>`, with `Sforce-Query-Options: batchSize=<n>` when given.
    async fn query(&self, soql: &str, batch_size: Option<usize>) -> Answer {
        let mut request = self
            .http
            .get(format!("{}{V}{}", self.url, query_path(soql)))
            .bearer_auth(&self.token);
        if let Some(size) = batch_size {
            request = request.header("Sforce-Query-Options", format!("batchSize={size}"));
        }
        answer(request.send().await.unwrap()).await
    }

    /// A `nextRecordsUrl` (or any path under the instance URL).
    async fn get(&self, path: &str) -> Answer {
        let request = self
            .http
            .get(format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        answer(request.send().await.unwrap()).await
    }
}

/// `/query?q=<soql>`, the query form-encoded.
fn query_path(soql: &str) -> String {
    let url = reqwest::Url::parse_with_params("http://org/", [("q", soql)]).unwrap();
    format!("/query?{}", url.query().unwrap())
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

/// Upserts invoice `lago_id` (number `INV-001`); its Salesforce id.
async fn put_invoice(org: &Org, lago_id: &str) -> Value {
    let path = format!("/sobjects/Lago_Invoice__c/Lago_Id__c/{lago_id}");
    org.patch(&path, invoice(lago_id, "INV-001")).await.body["id"].clone()
}

fn line_item(lago_id: &str, invoice: &str, item_type: &str) -> Value {
    json!({
        "attributes": {"type": "Lago_Invoice_Line_Item__c"},
        "Name": lago_id,
        "Lago_Id__c": lago_id,
        "Invoice__c": invoice,
        "Item_Type__c": item_type,
        "Amount__c": 10,
    })
}

/// One subrequest of a Composite; `path` is relative to the versioned data URL.
fn subrequest(method: &str, path: &str, reference_id: &str, body: Value) -> Value {
    let mut sub =
        json!({"method": method, "url": format!("{V}{path}"), "referenceId": reference_id});
    if !body.is_null() {
        sub["body"] = body;
    }
    sub
}

fn invoice_upsert(lago_id: &str, number: &str) -> Value {
    subrequest(
        "PATCH",
        &format!("/sobjects/Lago_Invoice__c/Lago_Id__c/{lago_id}"),
        "invoice",
        invoice(lago_id, number),
    )
}

/// A collection upsert of line items by `Lago_Id__c`, with its own allOrNone false.
fn items_upsert(reference_id: &str, items: &[Value]) -> Value {
    subrequest(
        "PATCH",
        "/composite/sobjects/Lago_Invoice_Line_Item__c/Lago_Id__c",
        reference_id,
        json!({"allOrNone": false, "records": items}),
    )
}

fn account_update(reference_id: &str, fields: Value) -> Value {
    subrequest(
        "PATCH",
        &format!("/sobjects/Account/{ACCOUNT}"),
        reference_id,
        fields,
    )
}

/// What every other subrequest of a rolled-back Composite answers.
fn rolled_back(reference_id: &str) -> Value {
    json!({
        "body": [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation in the same transaction failed."}],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": reference_id,
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
                plain("Lago_Sync__c", FieldType::Checkbox),
                plain(
                    "Lago_Sync_Status__c",
                    picklist(&["pending", "synced", "failed"]),
                ),
                plain("Lago_Sync_Error__c", text(255)),
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

    // The standard fields the project reads are writable; others the stand-in does not
    // model are refused, and SystemModstamp is Salesforce's own.
    let standard = org
        .patch(
            &format!("/sobjects/Account/{ACCOUNT}"),
            json!({"BillingCity": "Paris", "Website": "https://acme.test"}),
        )
        .await;
    assert_eq!(standard.status, StatusCode::NO_CONTENT, "{}", standard.body);
    let unknown = org
        .patch(
            &format!("/sobjects/Account/{ACCOUNT}"),
            json!({"Industry": "Banking"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        unknown.body,
        json!([{"message": "No such column 'Industry' on sobject of type Account", "errorCode": "INVALID_FIELD", "fields": []}])
    );
    let system = org
        .patch(
            &format!("/sobjects/Account/{ACCOUNT}"),
            json!({"SystemModstamp": "2026-01-01T00:00:00.000+0000"}),
        )
        .await;
    assert_eq!(
        system.body,
        json!([{"message": "Unable to create/update fields: SystemModstamp. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE", "fields": ["SystemModstamp"]}])
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
    let invoice_id = put_invoice(&org, "inv-1").await;
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
    let flagged = http
        .patch(control("/accounts/001000000000005AAA"))
        .json(&json!({"Lago_Sync__c": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(flagged.status(), StatusCode::NO_CONTENT);
    let unknown_field = http
        .patch(control("/accounts/001000000000005AAA"))
        .json(&json!({"Nope__c": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        answer(unknown_field).await.body,
        json!({"error": "INVALID_FIELD: No such column 'Nope__c' on sobject of type Account"})
    );

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
    assert_eq!(records["Account"][1]["Lago_Sync__c"], true);

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

#[tokio::test]
async fn composite_writes_an_invoice_and_its_line_items_in_one_call() {
    let (standin, org) = standin().await;
    let answer = org
        .composite(json!({"allOrNone": true, "collateSubrequests": false, "compositeRequest": [
            invoice_upsert("inv-1", "INV-001"),
            items_upsert("items", &[
                line_item("fee-1", "@{invoice.id}", "subscription"),
                line_item("fee-2", "@{invoice.id}", "charge"),
            ]),
            subrequest("PATCH", "/sobjects/Lago_Invoice__c/@{invoice.id}", "paid", json!({"Payment_Status__c": "succeeded"})),
        ]}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers["sforce-limit-info"], "api-usage=1/15000");

    let id = standin
        .record_by("Lago_Invoice__c", "Lago_Id__c", "inv-1")
        .unwrap()["Id"]
        .as_str()
        .unwrap()
        .to_owned();
    let results = answer.body["compositeResponse"].as_array().unwrap();
    assert_eq!(
        results[0],
        json!({
            "body": {"id": id, "success": true, "errors": [], "created": true},
            "httpHeaders": {"Location": format!("{V}/sobjects/Lago_Invoice__c/{id}")},
            "httpStatusCode": 201,
            "referenceId": "invoice",
        })
    );
    assert_eq!(
        (
            results[1]["httpStatusCode"].as_u64(),
            results[1]["referenceId"].as_str()
        ),
        (Some(200), Some("items"))
    );
    let items = results[1]["body"].as_array().unwrap();
    assert!(
        items
            .iter()
            .all(|i| i["success"] == true && i["created"] == true),
        "{}",
        results[1]
    );
    assert_eq!(
        results[2],
        json!({"body": null, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "paid"})
    );

    let stored = standin.records("Lago_Invoice_Line_Item__c");
    assert_eq!(stored.len(), 2);
    assert!(stored.iter().all(|item| item["Invoice__c"] == id.as_str()));
    assert_eq!(
        standin.records("Lago_Invoice__c")[0]["Payment_Status__c"],
        "succeeded"
    );
    let stats = standin.stats();
    assert_eq!(
        stats.rest_requests, 1,
        "the whole Composite is one API call"
    );
    assert_eq!(stats.rest_requests_by_object["Lago_Invoice__c"], 1);
    assert_eq!(standin.requests()[0].path, format!("{V}/composite"));

    // Sent again, the same upserts update.
    let again = org
        .composite(json!({"compositeRequest": [invoice_upsert("inv-1", "INV-001")]}))
        .await;
    let result = &again.body["compositeResponse"][0];
    assert_eq!(
        (
            result["httpStatusCode"].as_u64(),
            &result["body"]["created"],
            &result["httpHeaders"]
        ),
        (Some(200), &json!(false), &json!({}))
    );
}

#[tokio::test]
async fn composite_all_or_none_rolls_back_every_subrequest() {
    let (standin, org) = standin().await;
    standin.add_validation_rule(
        "Lago_Invoice_Line_Item__c",
        "Item_Type__c",
        json!("credit"),
        "Credits are not line items",
    );
    let answer = org
        .composite(json!({"allOrNone": true, "compositeRequest": [
            invoice_upsert("inv-1", "INV-001"),
            items_upsert("items", &[
                line_item("fee-1", "@{invoice.id}", "charge"),
                line_item("fee-2", "@{invoice.id}", "credit"),
            ]),
            account_update("account", json!({"Lago_Currency__c": "EUR"})),
        ]}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let results = &answer.body["compositeResponse"];
    assert_eq!(results[0], rolled_back("invoice"));
    assert_eq!(
        results[1],
        json!({
            "body": [
                {"success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]},
                {"success": false, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Credits are not line items", "fields": []}]},
            ],
            "httpHeaders": {},
            "httpStatusCode": 200,
            "referenceId": "items",
        }),
        "the outer allOrNone overrides the collection's own"
    );
    assert_eq!(results[2], rolled_back("account"));

    assert!(standin.records("Lago_Invoice__c").is_empty());
    assert!(standin.records("Lago_Invoice_Line_Item__c").is_empty());
    let account = standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert!(
        account.get("Lago_Currency__c").is_none(),
        "not run after the failure"
    );
}

#[tokio::test]
async fn composite_without_all_or_none_keeps_what_succeeded() {
    let (standin, org) = standin().await;
    standin.add_validation_rule(
        "Lago_Invoice_Line_Item__c",
        "Item_Type__c",
        json!("credit"),
        "Credits are not line items",
    );
    let answer = org
        .composite(json!({"compositeRequest": [
            invoice_upsert("inv-1", "INV-001"),
            items_upsert("items", &[
                line_item("fee-1", "@{invoice.id}", "charge"),
                line_item("fee-2", "@{invoice.id}", "credit"),
            ]),
            account_update("bad", json!({"Industry": "Banking"})),
            account_update("account", json!({"Lago_Currency__c": "EUR"})),
        ]}))
        .await;
    let results = &answer.body["compositeResponse"];
    assert_eq!(results[0]["httpStatusCode"], 201);
    assert_eq!(results[1]["body"][0]["success"], true);
    assert_eq!(
        results[1]["body"][1]["errors"][0]["statusCode"],
        "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    );
    assert_eq!(results[2]["httpStatusCode"], 400);
    assert_eq!(results[3]["httpStatusCode"], 204);

    assert_eq!(standin.records("Lago_Invoice__c").len(), 1);
    let items = standin.records("Lago_Invoice_Line_Item__c");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["Lago_Id__c"], "fee-1");
    assert_eq!(
        standin.record_by("Account", "Id", ACCOUNT).unwrap()["Lago_Currency__c"],
        "EUR"
    );
}

#[tokio::test]
async fn composite_subrequests_meet_the_metadata_checks() {
    let (standin, org) = standin().await;
    let mut invoice = invoice_upsert("inv-1", "INV-001");
    invoice["body"]["Amount__c"] = json!(1);
    let answer = org
        .composite(json!({"compositeRequest": [
            invoice,
            subrequest("GET", "/limits", "limits", Value::Null),
            subrequest("GET", &format!("/sobjects/Account/{ACCOUNT}"), "account", Value::Null),
        ]}))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let results = &answer.body["compositeResponse"];
    assert_eq!(
        results[0],
        json!({
            "body": [{"message": "No such column 'Amount__c' on sobject of type Lago_Invoice__c", "errorCode": "INVALID_FIELD", "fields": []}],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "invoice",
        })
    );
    assert_eq!(
        (
            results[1]["httpStatusCode"].as_u64(),
            &results[1]["body"][0]["errorCode"]
        ),
        (Some(404), &json!("NOT_FOUND")),
        "an unsupported resource"
    );
    assert_eq!(results[2]["body"]["Id"], ACCOUNT);
    assert!(standin.records("Lago_Invoice__c").is_empty());
}

#[tokio::test]
async fn composite_references_to_unknown_or_failed_subrequests_fail() {
    let (standin, org) = standin().await;
    let mut invoice = invoice_upsert("inv-1", "INV-001");
    invoice["body"]["Status__c"] = json!(42);
    let answer = org
        .composite(json!({"compositeRequest": [
            invoice,
            items_upsert("items", &[line_item("fee-1", "@{invoice.id}", "charge")]),
            subrequest("PATCH", "/sobjects/Lago_Invoice__c/@{ghost.id}", "ghost", json!({"Status__c": "voided"})),
            account_update("account", json!({"Lago_Currency__c": "EUR"})),
        ]}))
        .await;
    let results = &answer.body["compositeResponse"];
    assert_eq!(results[0]["httpStatusCode"], 400);
    assert_eq!(
        results[1],
        json!({
            "body": [{"errorCode": "PROCESSING_HALTED", "message": "Invalid reference specified. No value for invoice.id found in invoice. Provided referenceId ('invoice') must start with a letter and contain only alphanumeric characters and underscores."}],
            "httpHeaders": {},
            "httpStatusCode": 400,
            "referenceId": "items",
        })
    );
    assert_eq!(
        results[2]["body"][0]["message"],
        "Invalid reference specified. No value for ghost.id found in ghost. Provided referenceId ('ghost') must start with a letter and contain only alphanumeric characters and underscores.",
        "a referenceId no subrequest has"
    );
    assert_eq!(
        results[3]["httpStatusCode"], 204,
        "independent of the failures"
    );
    assert!(standin.records("Lago_Invoice_Line_Item__c").is_empty());
}

#[tokio::test]
async fn composite_limits_are_checked_before_anything_runs() {
    let (standin, org) = standin().await;
    let currency = |i: usize| {
        account_update(
            &format!("a{i}"),
            json!({"Lago_Currency__c": format!("C{i:02}")}),
        )
    };

    let too_many: Vec<Value> = (0..26).map(currency).collect();
    let rejected = org.composite(json!({"compositeRequest": too_many})).await;
    assert_eq!(
        (rejected.status, error(&rejected)),
        (
            StatusCode::BAD_REQUEST,
            (
                "LIMIT_EXCEEDED",
                "The request can’t contain more than 25 operations."
            )
        )
    );

    let collections = |n: usize| -> Vec<Value> {
        std::iter::once(invoice_upsert("inv-1", "INV-001"))
            .chain((0..n).map(|i| {
                items_upsert(
                    &format!("items{i}"),
                    &[line_item(&format!("fee-{i}"), "@{invoice.id}", "charge")],
                )
            }))
            .collect()
    };
    let rejected = org
        .composite(json!({"allOrNone": false, "compositeRequest": collections(6)}))
        .await;
    assert_eq!(
        (rejected.status, error(&rejected).0),
        (StatusCode::BAD_REQUEST, "LIMIT_EXCEEDED"),
        "{}",
        rejected.body
    );

    let misspelt = org
        .composite(json!({"allOrNone": true, "compositeRequests": [currency(1)]}))
        .await;
    assert_eq!(
        (misspelt.status, error(&misspelt).0),
        (StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR")
    );

    let mut duplicate = vec![currency(1), currency(2)];
    duplicate[1]["referenceId"] = json!("a1");
    let mut malformed = vec![currency(1)];
    malformed[0]["referenceId"] = json!("account-1");
    let mut unversioned = vec![currency(1)];
    unversioned[0]["url"] = json!(format!("/sobjects/Account/{ACCOUNT}"));
    for subrequests in [duplicate, malformed, unversioned] {
        let rejected = org
            .composite(json!({"compositeRequest": subrequests}))
            .await;
        assert_eq!(
            (rejected.status, error(&rejected).0),
            (StatusCode::BAD_REQUEST, "INVALID_INPUT"),
            "{}",
            rejected.body
        );
    }
    assert!(standin.records("Lago_Invoice__c").is_empty());
    assert!(standin
        .record_by("Account", "Id", ACCOUNT)
        .unwrap()
        .get("Lago_Currency__c")
        .is_none());

    // Right at the limits, it runs.
    let mut at_limits = collections(5);
    at_limits.extend((0..19).map(currency));
    let answer = org.composite(json!({"compositeRequest": at_limits})).await;
    let results = answer.body["compositeResponse"].as_array().unwrap();
    assert_eq!(results.len(), 25);
    assert!(
        results
            .iter()
            .all(|r| r["httpStatusCode"].as_u64() < Some(300)),
        "{}",
        answer.body
    );
    assert_eq!(standin.records("Lago_Invoice_Line_Item__c").len(), 5);
    assert_eq!(standin.stats().rest_requests, 7, "one API call each");
}

#[tokio::test]
async fn master_detail_fields_are_required_on_insert() {
    let (standin, org) = standin().await;
    let invoice_id = put_invoice(&org, "inv-1").await;
    let path = "/sobjects/Lago_Invoice_Line_Item__c/Lago_Id__c/fee-1";
    let missing = json!([{"message": "Required fields are missing: [Invoice__c]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Invoice__c"]}]);

    let orphan = org
        .patch(path, json!({"Name": "fee-1", "Amount__c": 10}))
        .await;
    assert_eq!(
        (orphan.status, &orphan.body),
        (StatusCode::BAD_REQUEST, &missing)
    );
    let bare = org.patch(path, json!({"Amount__c": 10})).await;
    assert_eq!(
        bare.body,
        json!([{"message": "Required fields are missing: [Name, Invoice__c]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name", "Invoice__c"]}])
    );
    assert!(standin.records("Lago_Invoice_Line_Item__c").is_empty());

    let created = org
        .patch(
            path,
            json!({"Name": "fee-1", "Invoice__r": {"Lago_Id__c": "inv-1"}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let cleared = org.patch(path, json!({"Invoice__c": null})).await;
    assert_eq!(
        (cleared.status, &cleared.body),
        (StatusCode::BAD_REQUEST, &missing)
    );
    let updated = org.patch(path, json!({"Amount__c": 12})).await;
    assert_eq!(
        updated.status,
        StatusCode::OK,
        "the master need not be repeated"
    );
    assert_eq!(
        standin.records("Lago_Invoice_Line_Item__c")[0]["Invoice__c"],
        invoice_id
    );
}

#[tokio::test]
async fn validation_rules_refuse_matching_writes() {
    let (standin, org) = standin().await;
    standin.add_validation_rule(
        "Lago_Invoice__c",
        "Payment_Status__c",
        json!("failed"),
        "Failed payments are handled in the ERP",
    );
    let http = reqwest::Client::new();
    let rules = format!("{}/__standin/validation-rules", standin.url());
    let added = http
        .post(&rules)
        .json(&json!({"object": "lago_invoice__c", "field": "total_amount__c", "equals": 0, "message": "An invoice has an amount"}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let unknown = http
        .post(&rules)
        .json(&json!({"object": "Lago_Invoice__c", "field": "Amount__c", "equals": 0, "message": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);

    let path = "/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1";
    let mut failed = invoice("inv-1", "INV-001");
    failed["Payment_Status__c"] = json!("failed");
    let refused = org.patch(path, failed).await;
    assert_eq!(
        (refused.status, &refused.body),
        (
            StatusCode::BAD_REQUEST,
            &json!([{"message": "Failed payments are handled in the ERP", "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "fields": []}])
        )
    );
    assert!(standin.records("Lago_Invoice__c").is_empty());

    let created = org.patch(path, invoice("inv-1", "INV-001")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let updated = org
        .patch(path, json!({"Payment_Status__c": "failed"}))
        .await;
    assert_eq!(error(&updated).0, "FIELD_CUSTOM_VALIDATION_EXCEPTION");
    let by_id = org
        .patch(
            &format!("/sobjects/Lago_Invoice__c/{id}"),
            json!({"Total_Amount__c": 0.0}),
        )
        .await;
    assert_eq!(
        error(&by_id),
        (
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "An invoice has an amount"
        ),
        "numbers compare by value"
    );
    let stored = standin.records("Lago_Invoice__c");
    assert_eq!(
        (
            &stored[0]["Payment_Status__c"],
            &stored[0]["Total_Amount__c"]
        ),
        (&Value::Null, &json!(120.5))
    );
}

/// What `lago-sync push-accounts` asks: the flagged Accounts not yet synced.
const PUSH_QUERY: &str = "SELECT Id, SystemModstamp, Name, Lago_Sync__c, Lago_Billing_Email__c, Lago_Currency__c, Lago_Tax_Identification_Number__c, BillingStreet, BillingCity, BillingState, BillingPostalCode, BillingCountry, Phone, Website FROM Account WHERE Lago_Sync__c = true AND (Lago_Sync_Status__c = null OR Lago_Sync_Status__c != 'synced') ORDER BY Id";

/// Seeds `n` Accounts after the default one; those `flagged(i)` get `Lago_Sync__c`.
fn seed_accounts(standin: &Standin, n: usize, flagged: impl Fn(usize) -> bool) -> Vec<String> {
    (0..n)
        .map(|i| {
            let id = standin.add_account(&format!("001{:012}", i + 2));
            if flagged(i) {
                standin.set_account_fields(&id, json!({"Lago_Sync__c": true}));
            }
            id
        })
        .collect()
}

/// `field` of each record of a query answer, in order.
fn column(answer: &Answer, field: &str) -> Vec<Value> {
    let records = answer.body["records"].as_array();
    let records = records.unwrap_or_else(|| panic!("not a query answer: {}", answer.body));
    records.iter().map(|r| r[field].clone()).collect()
}

/// Follows `nextRecordsUrl` from `first` to the last page; returns every page.
async fn all_pages(org: &Org, first: Answer) -> Vec<Answer> {
    let mut pages = vec![first];
    while let Some(next) = pages.last().unwrap().body["nextRecordsUrl"].as_str() {
        let page = org.get(next).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages.push(page);
    }
    pages
}

#[test]
fn the_standard_fields_the_project_reads_are_known() {
    let schema = Schema::load(&StandinConfig::repo_metadata_dir()).unwrap();
    let account = schema.object("Account").unwrap();
    let standard: Vec<(&str, bool)> = account
        .standard_fields
        .iter()
        .map(|f| (f.name.as_str(), f.updateable))
        .collect();
    assert_eq!(
        standard,
        [
            ("Id", false),
            ("SystemModstamp", false),
            ("BillingStreet", true),
            ("BillingCity", true),
            ("BillingState", true),
            ("BillingPostalCode", true),
            ("BillingCountry", true),
            ("Phone", true),
            ("Website", true),
        ]
    );
    for object in schema.objects() {
        assert_eq!(
            object.field("systemmodstamp").unwrap().field_type,
            FieldType::DateTime
        );
        assert_eq!(object.field("ID").unwrap().field_type, FieldType::Id);
    }
}

#[tokio::test]
async fn a_query_pages_through_every_matching_account() {
    let (standin, org) = standin().await;
    // Every tenth is not flagged: 4,500 of 5,000 match.
    let accounts = seed_accounts(&standin, 5_000, |i| i % 10 != 0);
    let flagged: Vec<Value> = accounts
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 0)
        .map(|(_, id)| json!(id))
        .collect();

    let first = org.query(PUSH_QUERY, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.headers["sforce-limit-info"], "api-usage=1/15000");
    let pages = all_pages(&org, first).await;
    let shape: Vec<(Value, Value, usize)> = pages
        .iter()
        .map(|p| {
            let size = column(p, "Id").len();
            (p.body["totalSize"].clone(), p.body["done"].clone(), size)
        })
        .collect();
    assert_eq!(
        shape,
        [
            (json!(4500), json!(false), 2000),
            (json!(4500), json!(false), 2000),
            (json!(4500), json!(true), 500)
        ]
    );
    let next = pages[0].body["nextRecordsUrl"].as_str().unwrap();
    let (locator, offset) = next
        .strip_prefix(&format!("{V}/query/"))
        .and_then(|rest| rest.rsplit_once('-'))
        .unwrap_or_else(|| panic!("{next}"));
    assert!(locator.starts_with("01g") && locator.len() == 18, "{next}");
    assert_eq!(offset, "2000");
    assert_eq!(
        pages[1].body["nextRecordsUrl"],
        format!("{V}/query/{locator}-4000")
    );
    assert!(pages[2].body.get("nextRecordsUrl").is_none());
    let ids: Vec<Value> = pages.iter().flat_map(|p| column(p, "Id")).collect();
    assert_eq!(ids, flagged);

    // Each record as the REST API lists it: attributes, then the selected fields.
    let record = &pages[0].body["records"][0];
    let url = format!("{V}/sobjects/Account/{}", accounts[1]);
    assert_eq!(record["attributes"], json!({"type": "Account", "url": url}));
    let mut keys: Vec<&str> = record
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    let mut selected: Vec<&str> = PUSH_QUERY["SELECT ".len()..PUSH_QUERY.find(" FROM").unwrap()]
        .split(", ")
        .chain(["attributes"])
        .collect();
    selected.sort();
    assert_eq!(keys, selected);
    assert_eq!(
        (
            &record["Lago_Sync__c"],
            &record["BillingCity"],
            &record["Website"]
        ),
        (&json!(true), &Value::Null, &Value::Null)
    );
    assert!(record["SystemModstamp"]
        .as_str()
        .unwrap()
        .ends_with("+0000"));

    // Smaller pages on request; later pages keep the query's size. Below 200 is 200.
    let small = all_pages(&org, org.query(PUSH_QUERY, Some(500)).await).await;
    assert_eq!(small.len(), 9);
    assert!(small[0].body["nextRecordsUrl"]
        .as_str()
        .unwrap()
        .ends_with("-500"));
    let ids: Vec<Value> = small.iter().flat_map(|p| column(p, "Id")).collect();
    assert_eq!(ids, flagged);
    let tiny = org.query(PUSH_QUERY, Some(100)).await;
    assert_eq!(column(&tiny, "Id").len(), 200);

    // One API call per page, each counted under the queried object.
    let stats = standin.stats();
    assert_eq!(stats.rest_requests, 3 + 9 + 1);
    assert_eq!(stats.rest_requests_by_object.get("Account"), Some(&13));
}

#[tokio::test]
async fn a_query_filters_and_orders_as_soql_does() {
    let (standin, org) = standin().await;
    let accounts = [
        ("Delta", json!(true), Value::Null),
        ("alpha", json!(true), json!("pending")),
        ("Charlie", json!(true), json!("synced")),
        // Comparisons ignore case.
        ("Bravo", json!(true), json!("SYNCED")),
        // Never flagged: a checkbox reads false, never null.
        ("Echo", Value::Null, Value::Null),
        ("Foxtrot", json!(false), json!("failed")),
        ("O'Brien", json!(true), json!("failed")),
    ];
    let ids: Vec<Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, (name, flag, status))| {
            let id = standin.add_account(&format!("001{:012}", i + 2));
            let mut fields = json!({"Name": name, "Lago_Sync_Status__c": status});
            if !flag.is_null() {
                fields["Lago_Sync__c"] = flag.clone();
            }
            standin.set_account_fields(&id, fields);
            json!(id)
        })
        .collect();
    let names = |i: &[usize]| -> Vec<Value> { i.iter().map(|&i| json!(accounts[i].0)).collect() };
    let pick = |i: &[usize]| -> Vec<Value> { i.iter().map(|&i| ids[i].clone()).collect() };

    let pushed = org.query(PUSH_QUERY, None).await;
    assert_eq!(column(&pushed, "Id"), pick(&[0, 1, 6]));
    // Keywords in any case, `<>` for `!=`; fields answered under their API names.
    let lower = org.query("select id from account where lago_sync__c = TRUE and (lago_sync_status__c = NULL or lago_sync_status__c <> 'synced') order by id asc", None).await;
    assert_eq!(column(&lower, "Id"), pick(&[0, 1, 6]));

    let cases: [(&str, Vec<Value>); 4] = [
        // `!=` also matches null; text sorts without regard to case.
        (
            "SELECT Name FROM Account WHERE Lago_Sync__c = true AND Lago_Sync_Status__c != 'synced' ORDER BY Name DESC",
            names(&[6, 0, 1]),
        ),
        // Nulls sort first unless told otherwise; ties go to the next key; LIMIT cuts.
        (
            "SELECT Name FROM Account WHERE Lago_Sync__c = true ORDER BY Lago_Sync_Status__c DESC NULLS LAST, Name LIMIT 4",
            names(&[3, 2, 1, 6]),
        ),
        (
            r"SELECT Name FROM Account WHERE Name = 'o\'brien' OR Name = 'ECHO'",
            names(&[4, 6]),
        ),
        (
            "SELECT Name FROM Account WHERE Lago_Sync_Status__c = null ORDER BY Name",
            vec![json!("Delta"), json!("Echo"), json!(format!("Stand-in Account {ACCOUNT}"))],
        ),
    ];
    for (soql, expected) in cases {
        let answer = org.query(soql, None).await;
        assert_eq!(column(&answer, "Name"), expected, "{soql}");
        assert_eq!(answer.body["totalSize"], expected.len(), "{soql}");
        assert_eq!(answer.body["done"], true, "{soql}");
    }

    let unflagged = "SELECT Id FROM Account WHERE Lago_Sync__c = false ORDER BY Id";
    let mut expected = vec![json!(ACCOUNT)];
    expected.extend(pick(&[4, 5]));
    assert_eq!(column(&org.query(unflagged, None).await, "Id"), expected);
    // An id matches in either length.
    let short = ids[1].as_str().unwrap()[..15].to_owned();
    let by_id = org
        .query(
            &format!("SELECT Id FROM Account WHERE Id = '{short}'"),
            None,
        )
        .await;
    assert_eq!(column(&by_id, "Id"), pick(&[1]));

    // The same route table serves a Composite's query subrequest.
    let path = query_path(unflagged);
    let composite = org
        .composite(
            json!({"compositeRequest": [subrequest("GET", &path, "unflagged", Value::Null)]}),
        )
        .await;
    let result = &composite.body["compositeResponse"][0];
    assert_eq!(result["httpStatusCode"], 200, "{result}");
    assert_eq!(result["body"]["records"][1]["Id"], ids[4]);
}

/// Salesforce's position report of a query error at the first `token` (none: the end),
/// for a query of one line.
fn report(soql: &str, token: Option<&str>, message: &str) -> String {
    let column = token.map_or(soql.len(), |t| soql.find(t).unwrap()) + 1;
    let caret = " ".repeat(column - 1);
    format!("\n{soql}\n{caret}^\nERROR at Row:1:Column:{column}\n{message}")
}

#[tokio::test]
async fn a_query_it_cannot_run_is_refused_as_the_org_refuses_it() {
    let (_standin, org) = standin().await;
    let unexpected = |token: &str| format!("unexpected token: '{token}'");
    let no_column = |field: &str| {
        format!("No such column '{field}' on entity 'Account'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.")
    };
    let cases = [
        ("SELECT Id FROM Account WHERE", None, "MALFORMED_QUERY", unexpected("<EOF>")),
        // SOQL wants parentheses to mix AND and OR.
        (
            "SELECT Id FROM Account WHERE Lago_Sync__c = true AND Name = 'a' OR Name = 'b'",
            Some("OR Name"),
            "MALFORMED_QUERY",
            unexpected("OR"),
        ),
        ("SELECT COUNT() FROM Account", Some("("), "MALFORMED_QUERY", unexpected("(")),
        (
            "SELECT Id FROM Account WHERE Name LIKE 'a%'",
            Some("LIKE"),
            "MALFORMED_QUERY",
            unexpected("LIKE"),
        ),
        (
            "SELECT Id FROM Account WHERE Name = 'open",
            Some("'open"),
            "MALFORMED_QUERY",
            unexpected("'open"),
        ),
        (
            "SELECT Id FROM Account LIMIT 10 OFFSET 5",
            Some("OFFSET"),
            "MALFORMED_QUERY",
            unexpected("OFFSET"),
        ),
        ("SELECT Id, Industry FROM Account", Some("Industry"), "INVALID_FIELD", no_column("Industry")),
        (
            "SELECT Id FROM Account ORDER BY Nope__c",
            Some("Nope__c"),
            "INVALID_FIELD",
            no_column("Nope__c"),
        ),
        (
            "SELECT Id FROM Contact",
            Some("Contact"),
            "INVALID_TYPE",
            "sObject type 'Contact' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.".into(),
        ),
        (
            "SELECT Id FROM Account WHERE Lago_Sync__c = 'true'",
            Some("Lago_Sync__c"),
            "INVALID_QUERY_FILTER_OPERATOR",
            "value of filter criterion for field 'Lago_Sync__c' must be of type boolean and should not be enclosed in quotes".into(),
        ),
        (
            "SELECT Id FROM Account WHERE Name = true",
            Some("Name ="),
            "INVALID_QUERY_FILTER_OPERATOR",
            "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes".into(),
        ),
    ];
    for (soql, token, code, message) in cases {
        let answer = org.query(soql, None).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{soql}");
        assert_eq!(
            answer.body,
            json!([{"message": report(soql, token, &message), "errorCode": code}]),
            "{soql}"
        );
    }

    // The report names the row of a query written over several lines.
    let answer = org
        .query("SELECT Id\nFROM Account\nWHERE Nope__c = null", None)
        .await;
    let message = format!(
        "\nWHERE Nope__c = null\n      ^\nERROR at Row:3:Column:7\n{}",
        no_column("Nope__c")
    );
    assert_eq!(
        answer.body,
        json!([{"message": message, "errorCode": "INVALID_FIELD"}])
    );

    let without = org.get(&format!("{V}/query")).await;
    assert_eq!(
        (without.status, without.body),
        (
            StatusCode::BAD_REQUEST,
            json!([{"message": "A query string has to be specified", "errorCode": "MALFORMED_QUERY"}])
        )
    );
}

#[tokio::test]
async fn an_unknown_query_locator_is_refused() {
    let (standin, org) = standin().await;
    seed_accounts(&standin, 250, |_| true);
    let first = org.query(PUSH_QUERY, Some(200)).await;
    let next = first.body["nextRecordsUrl"].as_str().unwrap().to_owned();
    assert_eq!(column(&org.get(&next).await, "Id").len(), 50);
    // A page can be read again.
    assert_eq!(column(&org.get(&next).await, "Id").len(), 50);

    let (locator, _) = next.rsplit_once('-').unwrap();
    let invalid = [
        format!("{V}/query/01g000000000009AAA-200"),
        format!("{locator}-251"),
        format!("{locator}-x"),
        format!("{V}/query/nonsense"),
    ];
    for path in invalid {
        let answer = org.get(&path).await;
        assert_eq!(
            (answer.status, answer.body),
            (
                StatusCode::BAD_REQUEST,
                json!([{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}])
            ),
            "{path}"
        );
    }
}

#[tokio::test]
async fn system_modstamp_advances_on_every_write() {
    let (standin, org) = standin().await;
    let modstamp = |id: &str| {
        let record = standin.record("Account", id).unwrap();
        record["SystemModstamp"].as_str().unwrap().to_owned()
    };
    let seeded = modstamp(ACCOUNT);
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
    );
    assert!(
        time::PrimitiveDateTime::parse(&seeded, &format).is_ok(),
        "{seeded}"
    );
    // Salesforce's own field: not among the written fields tests compare.
    assert!(standin.records("Account")[0]
        .get("SystemModstamp")
        .is_none());

    standin.set_account_fields(ACCOUNT, json!({"Lago_Sync__c": true}));
    let flagged = modstamp(ACCOUNT);
    assert!(flagged > seeded, "{flagged} after {seeded}");
    let patched = org
        .patch(
            &format!("/sobjects/Account/{ACCOUNT}"),
            json!({"BillingCity": "Paris"}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::NO_CONTENT);
    let updated = modstamp(ACCOUNT);
    assert!(updated > flagged, "{updated} after {flagged}");
    let read = org
        .send(
            reqwest::Method::GET,
            &format!("/sobjects/Account/{ACCOUNT}"),
            None,
        )
        .await;
    assert_eq!(
        (
            &read.body["SystemModstamp"],
            &read.body["BillingCity"],
            &read.body["Lago_Sync_Status__c"]
        ),
        (&json!(updated), &json!("Paris"), &Value::Null)
    );

    // Writes in a row still get distinct, increasing stamps, so queries can order by them.
    let second = standin.add_account("001000000000002");
    for i in 0..20 {
        standin.set_account_fields(&second, json!({"Phone": format!("+33 1 00 00 00 {i:02}")}));
    }
    standin.set_account_fields(ACCOUNT, json!({"Website": "https://acme.test"}));
    assert!(modstamp(ACCOUNT) > modstamp(&second));
    let ordered = org
        .query(
            "SELECT Id, SystemModstamp FROM Account ORDER BY SystemModstamp DESC",
            None,
        )
        .await;
    assert_eq!(column(&ordered, "Id"), [json!(ACCOUNT), json!(second)]);
    let created = org
        .patch(
            "/sobjects/Lago_Invoice__c/Lago_Id__c/inv-1",
            invoice("inv-1", "INV-001"),
        )
        .await;
    let id = created.body["id"].as_str().unwrap();
    let invoice_stamp = standin.record("Lago_Invoice__c", id).unwrap()["SystemModstamp"].clone();
    assert!(invoice_stamp.as_str().unwrap() > modstamp(ACCOUNT).as_str());
}
