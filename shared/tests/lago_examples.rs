//! Every Lago example payload (tests/fixtures/lago: the 2023 docs and the current OpenAPI)
//! parses, and maps to a complete record once its customer has a Salesforce Account id.

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

#[test]
fn every_example_maps_once_linked_to_an_account() {
    for (name, body) in examples() {
        let mut payload: Value = serde_json::from_slice(&body).unwrap();
        let object_type = payload["object_type"].as_str().unwrap().to_owned();
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
        let plan = mapping::plan(family_of(&object_type), &envelope)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
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
