//! Table tests: one envelope in, the exact Salesforce write and order stamp out.

use serde_json::{json, Value};

use super::*;
use crate::lago::Envelope;

const ACCOUNT: &str = "001Dn00000AbCdEfGH";

fn plan_of(family: Family, object: Value) -> Result<Plan, MappingError> {
    let envelope = json!({
        "webhook_type": format!("{}.updated", family.object_type()),
        "object_type": family.object_type(),
        "organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        family.object_type(): object,
    });
    let body = serde_json::to_vec(&envelope).unwrap();
    plan(family, &Envelope::parse(&body).unwrap())
}

fn customer() -> Value {
    json!({ "lago_id": "cus-lago-1", "external_id": "acme", "external_salesforce_id": ACCOUNT })
}

struct Case {
    name: &'static str,
    family: Family,
    object: Value,
    fields: Value,
    target: Target,
    order: Option<(&'static str, i64)>,
}

fn upsert(object: &'static str, lago_id: &str) -> Target {
    Target::Upsert {
        object,
        lago_id: lago_id.into(),
    }
}

#[test]
fn objects_map_to_records() {
    let cases = vec![
        Case {
            name: "customer: every Account field, updated_at orders per Account",
            family: Family::Customer,
            object: json!({
                "lago_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "external_id": "acme-eur",
                "name": "Acme", "email": "billing@acme.test", "currency": "EUR",
                "tax_identification_number": "EU123", "updated_at": "2025-03-01T10:15:02Z",
                "external_salesforce_id": ACCOUNT, "unknown_new_field": {"x": 1},
            }),
            fields: json!({
                "Lago_Customer_Id__c": "1a901a90-1a90-1a90-1a90-1a901a901a90",
                "Lago_External_Customer_Id__c": "acme-eur", "Lago_Customer_Name__c": "Acme",
                "Lago_Billing_Email__c": "billing@acme.test", "Lago_Currency__c": "EUR",
                "Lago_Tax_Identification_Number__c": "EU123",
                "Lago_Customer_Updated_At__c": "2025-03-01T10:15:02Z",
            }),
            target: Target::Account { id: ACCOUNT.into() },
            order: Some(("Account/001Dn00000AbCdEfGH", 1_740_824_102_000)),
        },
        Case {
            name: "customer: nulls are left out, never cleared",
            family: Family::Customer,
            object: json!({ "lago_id": "c1", "name": null, "email": null, "integration_customers": [
                {"type": "salesforce", "external_customer_id": ACCOUNT}] }),
            fields: json!({ "Lago_Customer_Id__c": "c1" }),
            target: Target::Account { id: ACCOUNT.into() },
            order: None,
        },
        Case {
            name: "subscription: name, dates from datetimes, status rank orders",
            family: Family::Subscription,
            object: json!({
                "lago_id": "sub-1", "external_id": "sub_ext", "name": "Premium (yearly)", "plan_code": "premium",
                "status": "terminated", "billing_time": "anniversary",
                "subscription_at": "2023-01-10T00:00:00Z", "started_at": "2023-01-11T10:51:29.000Z",
                "terminated_at": "2023-01-24T23:53:02-05:00", "customer": customer(),
            }),
            fields: json!({
                "Name": "Premium (yearly)", "Account__c": ACCOUNT, "External_Id__c": "sub_ext",
                "Plan_Code__c": "premium", "Status__c": "terminated", "Billing_Time__c": "anniversary",
                "Start_Date__c": "2023-01-11", "Termination_Date__c": "2023-01-25",
            }),
            target: upsert("Lago_Subscription__c", "sub-1"),
            order: Some(("Lago_Subscription__c/sub-1", 2)),
        },
        Case {
            name: "subscription: empty name falls back to plan_code, start to subscription_at, unknown status kept",
            family: Family::Subscription,
            object: json!({
                "lago_id": "sub-2", "name": "", "plan_code": "starter", "status": "paused",
                "subscription_at": "2030-02-01T00:00:00Z", "started_at": null, "customer": customer(),
            }),
            fields: json!({
                "Name": "starter", "Account__c": ACCOUNT, "Plan_Code__c": "starter",
                "Status__c": "paused", "Start_Date__c": "2030-02-01",
            }),
            target: upsert("Lago_Subscription__c", "sub-2"),
            order: Some(("Lago_Subscription__c/sub-2", 1)),
        },
        Case {
            name: "subscription: Name cut to 80 characters",
            family: Family::Subscription,
            object: json!({ "lago_id": "sub-3", "name": "N".repeat(120), "customer": customer() }),
            fields: json!({ "Name": "N".repeat(80), "Account__c": ACCOUNT }),
            target: upsert("Lago_Subscription__c", "sub-3"),
            order: None,
        },
        Case {
            name: "invoice: amount by exponent (USD), every field",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-1", "number": "ACME-2025-001", "status": "finalized", "payment_status": "pending",
                "invoice_type": "subscription", "issuing_date": "2025-03-01", "payment_due_date": "2025-03-31",
                "total_amount_cents": 123456, "currency": "USD", "file_url": null,
                "updated_at": "2025-03-01T10:15:02Z", "customer": customer(), "fees": [{"amount_cents": 1}],
            }),
            fields: json!({
                "Name": "ACME-2025-001", "Account__c": ACCOUNT, "Number__c": "ACME-2025-001",
                "Status__c": "finalized", "Payment_Status__c": "pending", "Invoice_Type__c": "subscription",
                "Issuing_Date__c": "2025-03-01", "Payment_Due_Date__c": "2025-03-31",
                "Total_Amount__c": 1234.56, "Currency__c": "USD",
            }),
            target: upsert("Lago_Invoice__c", "inv-1"),
            // updated_at in ms, × 100, + the stage: finalized (1) × 10 + payment pending (0).
            order: Some(("Lago_Invoice__c/inv-1", 174_082_410_200_010)),
        },
        Case {
            name: "invoice: JPY has no minor unit; file_url once generated",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-2", "number": "JP-1", "total_amount_cents": 5000, "currency": "JPY",
                "file_url": "https://lago.test/inv-2.pdf", "customer": customer(),
            }),
            fields: json!({
                "Name": "JP-1", "Account__c": ACCOUNT, "Number__c": "JP-1", "Total_Amount__c": 5000,
                "Currency__c": "JPY", "File_Url__c": "https://lago.test/inv-2.pdf",
            }),
            target: upsert("Lago_Invoice__c", "inv-2"),
            order: None,
        },
        Case {
            name: "invoice: a file URL longer than a Salesforce Url field is left out",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-4", "number": "L-1", "file_url": format!("https://lago.test/{}", "x".repeat(250)),
                "customer": customer(),
            }),
            fields: json!({ "Name": "L-1", "Account__c": ACCOUNT, "Number__c": "L-1" }),
            target: upsert("Lago_Invoice__c", "inv-4"),
            order: None,
        },
        Case {
            name: "invoice: KWD has three decimals; pre-2024 currency field",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-3", "number": "KW-1", "total_amount_cents": 1005, "total_amount_currency": "KWD",
                "customer": customer(),
            }),
            fields: json!({
                "Name": "KW-1", "Account__c": ACCOUNT, "Number__c": "KW-1", "Total_Amount__c": 1.005,
                "Currency__c": "KWD",
            }),
            target: upsert("Lago_Invoice__c", "inv-3"),
            order: None,
        },
        Case {
            name: "credit note: every field, linked to its invoice by external id",
            family: Family::CreditNote,
            object: json!({
                "lago_id": "cn-1", "number": "ACME-CN-1", "lago_invoice_id": "inv-1", "invoice_number": "ACME-2025-001",
                "credit_status": "available", "refund_status": "pending", "reason": "order_cancellation",
                "issuing_date": "2025-03-02", "total_amount_cents": 1999, "currency": "EUR",
                "file_url": "https://lago.test/cn-1.pdf", "updated_at": "2022-10-06 09:52:00", "customer": customer(),
            }),
            fields: json!({
                "Name": "ACME-CN-1", "Account__c": ACCOUNT, "Lago_Invoice_Id__c": "inv-1",
                "Number__c": "ACME-CN-1", "Invoice_Number__c": "ACME-2025-001", "Credit_Status__c": "available",
                "Refund_Status__c": "pending", "Reason__c": "order_cancellation", "Issuing_Date__c": "2025-03-02",
                "Total_Amount__c": 19.99, "Currency__c": "EUR", "File_Url__c": "https://lago.test/cn-1.pdf",
            }),
            target: upsert("Lago_Credit_Note__c", "cn-1"),
            // available (0) × 10 + refund pending (0).
            order: Some(("Lago_Credit_Note__c/cn-1", 166_504_992_000_000)),
        },
    ];
    for case in cases {
        let plan =
            plan_of(case.family, case.object).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(
            Value::Object(plan.write.fields.clone()),
            case.fields,
            "{}",
            case.name
        );
        assert_eq!(plan.write.target, case.target, "{}", case.name);
        let order = plan.order.as_ref().map(|o| (o.record.as_str(), o.version));
        assert_eq!(order, case.order, "{}", case.name);
    }
}

#[test]
fn amounts_are_exact_json_numbers() {
    let plan = plan_of(
        Family::Invoice,
        json!({ "lago_id": "i", "total_amount_cents": 1010, "currency": "EUR", "customer": customer() }),
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&plan.write.fields["Total_Amount__c"]).unwrap(),
        "10.10"
    );
}

#[test]
fn only_the_credit_note_carries_a_reference() {
    let note = plan_of(
        Family::CreditNote,
        json!({ "lago_id": "cn", "lago_invoice_id": "inv-9", "customer": customer() }),
    )
    .unwrap();
    assert_eq!(
        note.write.reference,
        Some(Reference {
            relationship: "Invoice__r",
            parent_object: "Lago_Invoice__c",
            parent_field: "Lago_Id__c",
            value: "inv-9".into()
        })
    );
    let invoice = plan_of(
        Family::Invoice,
        json!({ "lago_id": "i", "customer": customer() }),
    )
    .unwrap();
    assert_eq!(invoice.write.reference, None);
}

#[test]
fn unmappable_objects_say_why() {
    let cases = [
        (
            Family::Invoice,
            json!({ "lago_id": "i", "customer": { "external_id": "x" } }),
            "no Salesforce Account id",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i" }),
            "carries no customer",
        ),
        (
            Family::Subscription,
            json!({ "customer": customer() }),
            "lago_id",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i", "total_amount_cents": 1, "customer": customer() }),
            "currency",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i", "total_amount_cents": 1, "currency": "dollars", "customer": customer() }),
            "ISO 4217",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i", "issuing_date": "03/01/2025", "customer": customer() }),
            "issuing_date",
        ),
        (
            Family::CreditNote,
            json!({ "lago_id": "c", "updated_at": "yesterday", "customer": customer() }),
            "updated_at",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i", "total_amount_cents": "12", "customer": customer() }),
            "malformed",
        ),
    ];
    for (family, object, expected) in cases {
        let err = plan_of(family, object.clone()).unwrap_err().to_string();
        assert!(err.contains(expected), "{object}: {err}");
    }
}

/// Lago stamps whole seconds: states of one second are ordered by their lifecycle stage
/// (contract §7.1), each list below from the earliest stage to the latest.
#[test]
fn states_of_one_second_order_by_lifecycle_stage() {
    let invoice = |status: &str, payment: &str| {
        json!({ "lago_id": "i", "status": status, "payment_status": payment,
                "updated_at": "2025-03-01T10:15:02Z", "customer": customer() })
    };
    let note = |credit: &str, refund: &str| {
        json!({ "lago_id": "c", "credit_status": credit, "refund_status": refund,
                "updated_at": "2025-03-01T10:15:02Z", "customer": customer() })
    };
    let lifecycles = [
        (
            Family::Invoice,
            vec![
                invoice("draft", "pending"),
                invoice("finalized", "pending"),
                invoice("finalized", "failed"),
                invoice("finalized", "succeeded"),
                invoice("voided", "succeeded"),
            ],
        ),
        (
            Family::CreditNote,
            vec![
                note("available", "pending"),
                note("available", "failed"),
                note("available", "succeeded"),
                note("consumed", "succeeded"),
                note("voided", "succeeded"),
            ],
        ),
    ];
    for (family, states) in lifecycles {
        let versions: Vec<i64> = states
            .into_iter()
            .map(|state| plan_of(family, state).unwrap().version().unwrap())
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        // Still below the next second's earliest stage.
        assert!(versions[4] < (1_740_824_103_000 * 100), "{versions:?}");
    }
}
