//! Table tests: one envelope in, the exact Salesforce write out, with the record and the
//! version that order it.

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

/// An exact decimal, as the mapping writes it (`json!(5.00)` would be the float `5.0`).
fn dec(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
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
                "Lago_Sync_Status__c": "synced", "Lago_Sync_Error__c": null,
            }),
            target: Target::Account { id: ACCOUNT.into() },
            order: Some(("Account/001Dn00000AbCdEfGH", 1_740_824_102_000)),
        },
        Case {
            name: "customer: nulls are left out, never cleared (but the sync error, which the link clears)",
            family: Family::Customer,
            object: json!({ "lago_id": "c1", "name": null, "email": null, "integration_customers": [
                {"type": "salesforce", "external_customer_id": ACCOUNT}] }),
            fields: json!({ "Lago_Customer_Id__c": "c1", "Lago_Sync_Status__c": "synced", "Lago_Sync_Error__c": null }),
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
                "lago_id": "inv-1", "number": "ACME-2025-001", "purchase_order_number": "PO-7781",
                "status": "finalized", "payment_status": "pending",
                "invoice_type": "subscription", "issuing_date": "2025-03-01", "payment_due_date": "2025-03-31",
                "payment_dispute_lost_at": "2025-03-20T09:30:00.123Z", "payment_overdue": true,
                "sub_total_excluding_taxes_amount_cents": 102881, "taxes_amount_cents": 20575,
                "total_amount_cents": 123456, "total_due_amount_cents": 23457, "currency": "USD", "file_url": null,
                "web_url": "https://app.getlago.com/acme/customer/c-1/invoice/inv-1/overview",
                "voided_at": "2025-03-21T01:00:00+02:00",
                "updated_at": "2025-03-01T10:15:02Z", "customer": customer(), "fees": [{"lago_id": "fee-1", "amount_cents": 1}],
            }),
            fields: json!({
                "Name": "ACME-2025-001", "Account__c": ACCOUNT, "Number__c": "ACME-2025-001",
                "Purchase_Order_Number__c": "PO-7781",
                "Status__c": "finalized", "Payment_Status__c": "pending", "Invoice_Type__c": "subscription",
                "Issuing_Date__c": "2025-03-01", "Payment_Due_Date__c": "2025-03-31",
                // Lago sends this one with milliseconds; the other in an offset: both UTC.
                "Payment_Dispute_Lost_At__c": "2025-03-20T09:30:00.123Z",
                "Voided_At__c": "2025-03-20T23:00:00Z", "Payment_Overdue__c": true,
                "Total_Amount__c": 1234.56, "Total_Due_Amount__c": 234.57,
                "Sub_Total_Excluding_Taxes__c": 1028.81, "Taxes_Amount__c": 205.75, "Currency__c": "USD",
                "Lago_Url__c": "https://app.getlago.com/acme/customer/c-1/invoice/inv-1/overview",
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
            name: "invoice: §6 amounts in JPY have no minor unit; payment_overdue false is written",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-5", "number": "JP-2", "currency": "JPY", "total_amount_cents": 11000,
                "total_due_amount_cents": 0, "sub_total_excluding_taxes_amount_cents": 10000,
                "taxes_amount_cents": 1000, "payment_overdue": false, "customer": customer(),
            }),
            fields: json!({
                "Name": "JP-2", "Account__c": ACCOUNT, "Number__c": "JP-2", "Total_Amount__c": 11000,
                "Total_Due_Amount__c": 0, "Sub_Total_Excluding_Taxes__c": 10000,
                "Taxes_Amount__c": 1000, "Currency__c": "JPY", "Payment_Overdue__c": false,
            }),
            target: upsert("Lago_Invoice__c", "inv-5"),
            order: None,
        },
        Case {
            name: "invoice: §6 amounts in KWD have three decimals",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-6", "number": "KW-2", "currency": "KWD", "total_due_amount_cents": 1005,
                "sub_total_excluding_taxes_amount_cents": 7, "taxes_amount_cents": -1234, "customer": customer(),
            }),
            fields: json!({
                "Name": "KW-2", "Account__c": ACCOUNT, "Number__c": "KW-2", "Total_Due_Amount__c": 1.005,
                "Sub_Total_Excluding_Taxes__c": 0.007, "Taxes_Amount__c": -1.234, "Currency__c": "KWD",
            }),
            target: upsert("Lago_Invoice__c", "inv-6"),
            order: None,
        },
        Case {
            name: "invoice: §6 nulls are left out, never cleared",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-7", "number": "N-1", "currency": "EUR", "total_due_amount_cents": null,
                "sub_total_excluding_taxes_amount_cents": null, "taxes_amount_cents": null,
                "payment_overdue": null, "payment_dispute_lost_at": null, "voided_at": null,
                "purchase_order_number": null, "web_url": null, "customer": customer(),
            }),
            fields: json!({
                "Name": "N-1", "Account__c": ACCOUNT, "Number__c": "N-1", "Currency__c": "EUR",
            }),
            target: upsert("Lago_Invoice__c", "inv-7"),
            order: None,
        },
        Case {
            name: "invoice: a Lago link over 255 characters is left out; a long PO number is cut",
            family: Family::Invoice,
            object: json!({
                "lago_id": "inv-8", "number": "L-2", "purchase_order_number": "P".repeat(300),
                "web_url": format!("https://app.getlago.com/{}", "x".repeat(240)), "customer": customer(),
            }),
            fields: json!({
                "Name": "L-2", "Account__c": ACCOUNT, "Number__c": "L-2",
                "Purchase_Order_Number__c": "P".repeat(255),
            }),
            target: upsert("Lago_Invoice__c", "inv-8"),
            order: None,
        },
        Case {
            name: "subscription: §6 plan name and dates, datetimes as UTC dates",
            family: Family::Subscription,
            object: json!({
                "lago_id": "sub-4", "name": "Acme Pro", "plan_code": "pro", "status": "canceled",
                "ending_at": "2026-03-01T00:00:00Z", "trial_ended_at": "2025-03-15T22:30:00-03:00",
                "canceled_at": "2025-04-02T23:59:59.000Z", "terminated_at": null,
                "plan": { "lago_id": "plan-1", "name": "Pro (monthly)", "code": "pro", "amount_cents": 4900 },
                "customer": customer(),
            }),
            fields: json!({
                "Name": "Acme Pro", "Account__c": ACCOUNT, "Plan_Code__c": "pro",
                "Plan_Name__c": "Pro (monthly)", "Status__c": "canceled", "Ending_Date__c": "2026-03-01",
                "Trial_Ended_Date__c": "2025-03-16", "Canceled_Date__c": "2025-04-02",
            }),
            target: upsert("Lago_Subscription__c", "sub-4"),
            order: Some(("Lago_Subscription__c/sub-4", 2)),
        },
        Case {
            name: "subscription: §6 nulls and a plan without a name are left out",
            family: Family::Subscription,
            object: json!({
                "lago_id": "sub-5", "plan_code": "pro", "ending_at": null, "trial_ended_at": null,
                "canceled_at": null, "plan": { "code": "pro", "name": null }, "customer": customer(),
            }),
            fields: json!({ "Name": "pro", "Account__c": ACCOUNT, "Plan_Code__c": "pro" }),
            target: upsert("Lago_Subscription__c", "sub-5"),
            order: None,
        },
        Case {
            name: "credit note: §6 amounts in USD, JPY and KWD; nulls left out",
            family: Family::CreditNote,
            object: json!({
                "lago_id": "cn-2", "number": "CN-2", "currency": "USD", "credit_amount_cents": 1999,
                "refund_amount_cents": 0, "balance_amount_cents": null, "customer": customer(),
            }),
            fields: json!({
                "Name": "CN-2", "Account__c": ACCOUNT, "Number__c": "CN-2", "Currency__c": "USD",
                "Credit_Amount__c": 19.99, "Refund_Amount__c": dec("0.00"),
            }),
            target: upsert("Lago_Credit_Note__c", "cn-2"),
            order: None,
        },
        Case {
            name: "credit note: §6 amounts in JPY",
            family: Family::CreditNote,
            object: json!({
                "lago_id": "cn-3", "number": "CN-3", "currency": "JPY", "credit_amount_cents": 500,
                "refund_amount_cents": 1500, "balance_amount_cents": 250, "customer": customer(),
            }),
            fields: json!({
                "Name": "CN-3", "Account__c": ACCOUNT, "Number__c": "CN-3", "Currency__c": "JPY",
                "Credit_Amount__c": 500, "Refund_Amount__c": 1500, "Balance_Amount__c": 250,
            }),
            target: upsert("Lago_Credit_Note__c", "cn-3"),
            order: None,
        },
        Case {
            name: "credit note: §6 amounts in KWD, pre-2024 currency field",
            family: Family::CreditNote,
            object: json!({
                "lago_id": "cn-4", "number": "CN-4", "total_amount_currency": "KWD", "credit_amount_cents": 1005,
                "refund_amount_cents": 21, "balance_amount_cents": 984, "customer": customer(),
            }),
            fields: json!({
                "Name": "CN-4", "Account__c": ACCOUNT, "Number__c": "CN-4", "Currency__c": "KWD",
                "Credit_Amount__c": 1.005, "Refund_Amount__c": 0.021, "Balance_Amount__c": 0.984,
            }),
            target: upsert("Lago_Credit_Note__c", "cn-4"),
            order: None,
        },
        Case {
            name: "credit note: every field, linked to its invoice by external id",
            family: Family::CreditNote,
            object: json!({
                "lago_id": "cn-1", "number": "ACME-CN-1", "lago_invoice_id": "inv-1", "invoice_number": "ACME-2025-001",
                "credit_status": "available", "refund_status": "pending", "reason": "order_cancellation",
                "issuing_date": "2025-03-02", "total_amount_cents": 1999, "currency": "EUR",
                "credit_amount_cents": 1499, "refund_amount_cents": 500, "balance_amount_cents": 1249,
                "file_url": "https://lago.test/cn-1.pdf", "updated_at": "2022-10-06 09:52:00", "customer": customer(),
            }),
            fields: json!({
                "Name": "ACME-CN-1", "Account__c": ACCOUNT, "Lago_Invoice_Id__c": "inv-1",
                "Number__c": "ACME-CN-1", "Invoice_Number__c": "ACME-2025-001", "Credit_Status__c": "available",
                "Refund_Status__c": "pending", "Reason__c": "order_cancellation", "Issuing_Date__c": "2025-03-02",
                "Total_Amount__c": 19.99, "Currency__c": "EUR", "File_Url__c": "https://lago.test/cn-1.pdf",
                "Credit_Amount__c": 14.99, "Refund_Amount__c": dec("5.00"), "Balance_Amount__c": 12.49,
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
        let record = plan.record();
        let order = plan.version.map(|version| (record.as_str(), version));
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
        (
            Family::Invoice,
            json!({ "lago_id": "i", "taxes_amount_cents": 20, "customer": customer() }),
            "currency",
        ),
        (
            Family::CreditNote,
            json!({ "lago_id": "c", "refund_amount_cents": 20, "customer": customer() }),
            "currency",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i", "voided_at": "last week", "customer": customer() }),
            "voided_at",
        ),
        (
            Family::Invoice,
            json!({ "lago_id": "i", "payment_overdue": "yes", "customer": customer() }),
            "malformed",
        ),
        (
            Family::Subscription,
            json!({ "lago_id": "s", "canceled_at": "2025-02-30", "customer": customer() }),
            "canceled_at",
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
            .map(|state| plan_of(family, state).unwrap().version.unwrap())
            .collect();
        assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
        // Still below the next second's earliest stage.
        assert!(versions[4] < (1_740_824_103_000 * 100), "{versions:?}");
    }
}

/// What lago-api's `PaymentDisputeLostSerializer` sends: the invoice (with its customer)
/// under `payment_dispute_lost.invoice`, beside the provider's error.
fn dispute_lost_invoice() -> Value {
    json!({
        "lago_id": "inv-d", "number": "D-1", "status": "finalized", "payment_status": "succeeded",
        "payment_dispute_lost_at": "2025-04-01T08:00:00.250Z", "payment_overdue": false,
        "total_amount_cents": 5000, "total_due_amount_cents": 5000, "currency": "USD",
        "updated_at": "2025-04-01T08:00:00Z", "customer": customer(),
    })
}

fn dispute_lost_fields() -> Value {
    json!({
        "Name": "D-1", "Account__c": ACCOUNT, "Number__c": "D-1", "Status__c": "finalized",
        "Payment_Status__c": "succeeded", "Payment_Dispute_Lost_At__c": "2025-04-01T08:00:00.25Z",
        "Payment_Overdue__c": false, "Total_Amount__c": dec("50.00"),
        "Total_Due_Amount__c": dec("50.00"), "Currency__c": "USD",
    })
}

#[test]
fn a_lost_dispute_maps_the_invoice_it_wraps() {
    let nested = json!({ "invoice": dispute_lost_invoice(), "provider_error": {"code": "lost"} });
    // lago-openapi's schema of the event lays the invoice's fields out flat.
    let mut flat = dispute_lost_invoice();
    flat["provider_error"] = json!("lost");
    for object in [nested, flat] {
        let invoice = invoice::dispute_lost_invoice(&object).unwrap();
        let plan = invoice::plan(&invoice).unwrap();
        assert_eq!(
            Value::Object(plan.write.fields),
            dispute_lost_fields(),
            "{object}"
        );
        assert_eq!(plan.write.target, upsert("Lago_Invoice__c", "inv-d"));
        // Ordered like any invoice state: updated_at, then finalized (1) × 10 + succeeded (2).
        assert_eq!(plan.version.unwrap(), 174_349_440_000_012);
    }
    let malformed = json!({ "invoice": { "lago_id": 7 } });
    let err = invoice::dispute_lost_invoice(&malformed)
        .unwrap_err()
        .to_string();
    assert!(err.contains("payment_dispute_lost"), "{err}");
}

/// The whole envelope, as Lago sends it. Needs `Envelope` to read the
/// `payment_dispute_lost` object (shared/src/lago/envelope.rs).
#[test]
fn a_lost_dispute_envelope_maps_as_its_invoice() {
    let envelope = json!({
        "webhook_type": "invoice.payment_dispute_lost",
        "object_type": "payment_dispute_lost",
        "organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        "payment_dispute_lost": { "invoice": dispute_lost_invoice() },
    });
    let body = serde_json::to_vec(&envelope).unwrap();
    let envelope = Envelope::parse(&body).unwrap();
    assert!(Family::Invoice.writes(&envelope.webhook_type));
    let plan = plan(Family::Invoice, &envelope).unwrap();
    assert_eq!(Value::Object(plan.write.fields), dispute_lost_fields());
}

fn invoice_with_fees(status: &str, fees: Value) -> Value {
    json!({ "lago_id": "inv-1", "status": status, "currency": "EUR", "customer": customer(), "fees": fees })
}

/// One fee as lago-api's `V1::FeeSerializer` sends it, with the keys the mapping ignores.
fn fee(lago_id: &str) -> Value {
    json!({
        "lago_id": lago_id, "lago_charge_id": "ch-1", "lago_invoice_id": "inv-1",
        "item": { "type": "charge", "code": "api_calls", "name": "API calls",
                  "invoice_display_name": "API calls (EU)", "lago_item_id": "bm-1", "item_type": "BillableMetric" },
        "amount_cents": 1250, "amount_currency": "EUR", "precise_amount": "12.5",
        "taxes_amount_cents": 250, "taxes_rate": 20.0, "total_amount_cents": 1500,
        "total_amount_currency": "EUR", "units": "1250.000125", "events_count": 3,
        "from_date": "2025-02-01T00:00:00Z", "to_date": "2025-02-28T23:59:59Z",
        "amount_details": { "graduated_ranges": [] },
    })
}

#[test]
fn fees_map_to_line_items() {
    let cases = [
        (
            "every field, the display name first, units as the same decimal",
            fee("fee-1"),
            json!({
                "Name": "API calls (EU)", "Item_Type__c": "charge", "Item_Code__c": "api_calls",
                "Item_Name__c": "API calls", "Units__c": dec("1250.000125"),
                "Amount__c": dec("12.50"), "Taxes_Amount__c": dec("2.50"), "Total_Amount__c": dec("15.00"),
                "Currency__c": "EUR", "From_Date__c": "2025-02-01", "To_Date__c": "2025-02-28",
            }),
        ),
        (
            "no display name: the item's name; the invoice's currency and exponent; nulls left out",
            json!({ "lago_id": "fee-2", "item": { "type": "fixed_charge", "name": "Seats", "invoice_display_name": null },
                    "amount_cents": 700, "amount_currency": null, "units": 7, "from_date": null }),
            json!({
                "Name": "Seats", "Item_Type__c": "fixed_charge", "Item_Name__c": "Seats",
                "Units__c": 7, "Amount__c": dec("7.00"), "Currency__c": "EUR",
            }),
        ),
        (
            "an unknown item type is kept, a long name cut to 80, JPY has no decimals",
            json!({ "lago_id": "fee-3", "item": { "type": "usage_credit", "name": "x".repeat(90) },
                    "amount_cents": 1200, "amount_currency": "JPY" }),
            json!({
                "Name": "x".repeat(80), "Item_Type__c": "usage_credit", "Item_Name__c": "x".repeat(90),
                "Amount__c": 1200, "Currency__c": "JPY",
            }),
        ),
        (
            "nothing but the id: the id names it",
            json!({ "lago_id": "fee-4" }),
            json!({ "Name": "fee-4", "Currency__c": "EUR" }),
        ),
    ];
    for (name, fee, fields) in cases {
        let plan = plan_of(
            Family::Invoice,
            invoice_with_fees("finalized", json!([fee])),
        )
        .unwrap();
        let details = plan.write.details.expect(name);
        assert_eq!(
            (
                details.object,
                details.master_field,
                details.master_relationship
            ),
            ("Lago_Invoice_Line_Item__c", "Invoice__c", "Invoice__r"),
            "{name}"
        );
        assert_eq!(details.records.len(), 1, "{name}");
        assert_eq!(
            Value::Object(details.records[0].fields.clone()),
            fields,
            "{name}"
        );
    }
}

#[test]
fn line_items_are_written_only_for_fees_lago_no_longer_recomputes() {
    let details = |status: &str, fees: Value| {
        plan_of(Family::Invoice, invoice_with_fees(status, fees))
            .unwrap()
            .write
            .details
            .map(|d| {
                d.records
                    .iter()
                    .map(|r| r.lago_id.clone())
                    .collect::<Vec<_>>()
            })
    };
    let two = json!([fee("a"), fee("b")]);
    assert_eq!(
        details("finalized", two.clone()),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(
        details("voided", two.clone()),
        Some(vec!["a".into(), "b".into()])
    );
    // A draft's fees are deleted and recreated under new ids at refresh and finalization.
    assert_eq!(details("draft", two.clone()), None);
    assert_eq!(details("pending", two), None);
    // No fees in the payload (or none at all) leaves the line items as they are.
    assert_eq!(details("finalized", json!(null)), None);
    assert_eq!(details("finalized", json!([])), None);
    // One fee twice would make Salesforce refuse the whole collection.
    assert_eq!(
        details("finalized", json!([fee("a"), fee("a")])),
        Some(vec!["a".into()])
    );
    let without_fees = plan_of(
        Family::Invoice,
        json!({ "lago_id": "i", "status": "finalized", "customer": customer() }),
    );
    assert_eq!(without_fees.unwrap().write.details, None);
}

#[test]
fn a_fee_that_cannot_be_mapped_says_which() {
    let cases = [
        (json!({ "item": { "name": "no id" } }), "fees[].lago_id"),
        (json!({ "lago_id": "f", "units": "twelve" }), "fees[].units"),
        (json!({ "lago_id": "f", "units": [1] }), "fees[].units"),
        (
            json!({ "lago_id": "f", "from_date": "soon" }),
            "fees[].from_date",
        ),
        (
            json!({ "lago_id": "f", "amount_cents": 1, "amount_currency": "euros" }),
            "ISO 4217",
        ),
    ];
    for (fee, expected) in cases {
        let err = plan_of(
            Family::Invoice,
            invoice_with_fees("finalized", json!([fee.clone()])),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(expected), "{fee}: {err}");
    }
}

#[test]
fn an_accounts_sync_status_is_written_alone_with_its_reason_cut_to_the_field() {
    let write = sync_status(ACCOUNT, "failed", &"x".repeat(300));
    assert_eq!(write.target, Target::Account { id: ACCOUNT.into() });
    assert_eq!(
        Value::Object(write.fields),
        json!({ "Lago_Sync_Status__c": "failed", "Lago_Sync_Error__c": "x".repeat(255) })
    );
}
