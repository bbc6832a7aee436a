//! Every Lago example payload (tests/fixtures/lago: the 2023 docs, the current OpenAPI,
//! and `serializer-derived-*`, hand-built from lago-api's serializers at 1b1c24a) parses,
//! and maps to a complete record once its customer has a Salesforce Account id.

use std::path::PathBuf;

use lago_sync::lago::Envelope;
use lago_sync::mapping::{self, MappingError};
use lago_sync::Family;
use serde_json::{json, Value};

const ACCOUNT: &str = "0015g00000AbCdEfGH";

fn examples() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/lago");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the Lago examples in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

fn family_of(object_type: &str) -> Family {
    Family::ALL
        .into_iter()
        .find(|f| f.object_type() == object_type)
        .expect("a synced family")
}

#[test]
fn every_example_parses_and_is_skipped_without_an_account() {
    for (name, body) in examples() {
        let envelope = Envelope::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let family = family_of(&envelope.object_type);
        assert!(family.writes(&envelope.webhook_type), "{name}");
        match mapping::plan(family, &envelope) {
            Err(MappingError::NoAccount(reason)) => assert!(!reason.is_empty(), "{name}"),
            other => panic!("{name}: the examples carry no Salesforce id, got {other:?}"),
        }
    }
}

/// The example's object (as sent) and its plan once its customer is linked to [`ACCOUNT`].
fn linked_plan(name: &str, body: &[u8]) -> (String, Value, mapping::Plan) {
    let mut payload: Value = serde_json::from_slice(body).unwrap();
    let object_type = payload["object_type"].as_str().unwrap().to_owned();
    let sent = payload[&object_type].clone();
    let object = &mut payload[&object_type];
    if object_type == "customer" {
        object["external_salesforce_id"] = json!(ACCOUNT);
    } else if object["customer"].is_object() {
        object["customer"]["external_salesforce_id"] = json!(ACCOUNT);
    } else {
        // The 2023 subscription example embeds no customer.
        object["customer"] = json!({ "external_id": "c", "external_salesforce_id": ACCOUNT });
    }
    let linked = serde_json::to_vec(&payload).unwrap();
    let envelope = Envelope::parse(&linked).unwrap();
    let plan =
        mapping::plan(family_of(&object_type), &envelope).unwrap_or_else(|e| panic!("{name}: {e}"));
    (object_type, sent, plan)
}

#[test]
fn every_example_maps_once_linked_to_an_account() {
    for (name, body) in examples() {
        let (object_type, _, plan) = linked_plan(&name, &body);
        let fields = &plan.write.fields;
        let expected: &[&str] = match object_type.as_str() {
            "customer" => &[
                "Lago_Customer_Id__c",
                "Lago_External_Customer_Id__c",
                "Lago_Customer_Name__c",
                "Lago_Currency__c",
            ],
            "subscription" => &[
                "Name",
                "Account__c",
                "External_Id__c",
                "Plan_Code__c",
                "Status__c",
                "Start_Date__c",
            ],
            "invoice" => &[
                "Name",
                "Account__c",
                "Number__c",
                "Status__c",
                "Total_Amount__c",
                "Currency__c",
                "Issuing_Date__c",
            ],
            _ => &[
                "Name",
                "Account__c",
                "Number__c",
                "Lago_Invoice_Id__c",
                "Credit_Status__c",
                "Reason__c",
                "Total_Amount__c",
                "Currency__c",
            ],
        };
        for field in expected {
            assert!(
                fields.contains_key(*field),
                "{name}: {field} missing from {fields:?}"
            );
        }
        if object_type != "customer" {
            assert_eq!(fields["Account__c"], json!(ACCOUNT), "{name}");
        }
    }
}

/// Contract §6: the fields added to §5, each with the Lago value it comes from (a JSON
/// pointer into the object).
const ADDED_FIELDS: &[(&str, &str, &str)] = &[
    ("invoice", "/total_due_amount_cents", "Total_Due_Amount__c"),
    (
        "invoice",
        "/sub_total_excluding_taxes_amount_cents",
        "Sub_Total_Excluding_Taxes__c",
    ),
    ("invoice", "/taxes_amount_cents", "Taxes_Amount__c"),
    ("invoice", "/payment_overdue", "Payment_Overdue__c"),
    (
        "invoice",
        "/payment_dispute_lost_at",
        "Payment_Dispute_Lost_At__c",
    ),
    ("invoice", "/voided_at", "Voided_At__c"),
    (
        "invoice",
        "/purchase_order_number",
        "Purchase_Order_Number__c",
    ),
    ("invoice", "/web_url", "Lago_Url__c"),
    ("subscription", "/plan/name", "Plan_Name__c"),
    ("subscription", "/ending_at", "Ending_Date__c"),
    ("subscription", "/trial_ended_at", "Trial_Ended_Date__c"),
    ("subscription", "/canceled_at", "Canceled_Date__c"),
    ("credit_note", "/credit_amount_cents", "Credit_Amount__c"),
    ("credit_note", "/refund_amount_cents", "Refund_Amount__c"),
    ("credit_note", "/balance_amount_cents", "Balance_Amount__c"),
];

/// Each added field is written when the example carries its Lago value, and left out when
/// the value is null or absent (a null never clears what Salesforce holds).
#[test]
fn every_example_maps_the_added_fields_it_carries() {
    let mut written = 0;
    for (name, body) in examples() {
        let (object_type, sent, plan) = linked_plan(&name, &body);
        let added = ADDED_FIELDS.iter().filter(|(o, _, _)| *o == object_type);
        for (_, pointer, field) in added {
            let carried = sent.pointer(pointer).is_some_and(|v| !v.is_null());
            let mapped = plan.write.fields.contains_key(*field);
            assert_eq!(mapped, carried, "{name}: {pointer} → {field}");
            written += usize::from(mapped);
        }
    }
    // The examples do carry them: the current shapes have almost every one.
    assert!(written >= 25, "only {written} added fields written");
}

#[test]
fn the_serializer_example_shows_the_added_invoice_fields() {
    let body = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/lago/serializer-derived-invoice_voided.json"),
    )
    .unwrap();
    let (_, _, plan) = linked_plan("serializer-derived-invoice_voided", &body);
    let field = |name: &str| plan.write.fields[name].to_string();
    assert_eq!(field("Status__c"), r#""voided""#);
    assert_eq!(field("Voided_At__c"), r#""2025-03-12T09:41:27Z""#);
    assert_eq!(field("Purchase_Order_Number__c"), r#""PO-2025-00981""#);
    assert_eq!(field("Total_Due_Amount__c"), "118.80");
    assert_eq!(field("Sub_Total_Excluding_Taxes__c"), "99.00");
    assert_eq!(field("Taxes_Amount__c"), "19.80");
    assert_eq!(field("Payment_Overdue__c"), "false");
    assert!(field("Lago_Url__c").contains("/invoice/8f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0/overview"));
    assert!(!plan.write.fields.contains_key("Payment_Dispute_Lost_At__c"));
}

#[test]
fn the_customer_example_links_through_a_salesforce_integration() {
    let body = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/lago/openapi-derived-customer_updated.json"),
    )
    .unwrap();
    let mut payload: Value = serde_json::from_slice(&body).unwrap();
    payload["customer"]["integration_customers"] = json!([
        { "lago_id": "x", "type": "netsuite", "external_customer_id": "12345" },
        { "lago_id": "y", "type": "salesforce", "external_customer_id": ACCOUNT, "sync_with_provider": true }
    ]);
    let linked = serde_json::to_vec(&payload).unwrap();
    let plan = mapping::plan(Family::Customer, &Envelope::parse(&linked).unwrap()).unwrap();
    assert_eq!(
        plan.write.target,
        mapping::Target::Account { id: ACCOUNT.into() }
    );
}
