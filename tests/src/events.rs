//! Realistic Lago webhook bodies for the tests: one object per family, shaped like the
//! current serializers, with any field overridable.

use serde_json::{json, Value};

use crate::standin::Standin;

/// The Account the stand-in seeds by default.
pub const ACCOUNT: &str = "001000000000001AAA";
/// The HMAC key the tests sign with.
pub const HMAC_KEY: &str = "5f1c2d3e-4b5a-6978-8a9b-0c1d2e3f4a5b";

/// The outbound messages' path token of the test secret.
pub const OUTBOUND_TOKEN: &str = "outbound-token-never-logged-3b9f";
/// The org the outbound messages come from (`SALESFORCE_ORG_ID`).
pub const ORG_ID: &str = "00D000000000001AAA";

/// The secret JSON of contract §2 for a Salesforce stand-in with default credentials.
pub fn secret_json(hmac_key: &str) -> String {
    json!({
        "lago_hmac_key": hmac_key,
        "lago_api_key": "lago-api-key-never-logged",
        "salesforce_client_id": "local-client-id",
        "salesforce_client_secret": "local-client-secret",
        "salesforce_outbound_token": OUTBOUND_TOKEN,
    })
    .to_string()
}

/// An outbound message from org `org` with one notification per `(notification id,
/// Account fields)`, as Salesforce sends it (SOAP API Developer Guide, "Outbound
/// Messaging WSDL").
pub fn outbound_message(org: &str, notifications: &[(&str, Value)]) -> String {
    let escape = |text: &str| {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let items: String = notifications
        .iter()
        .map(|(id, fields)| {
            let fields: String = fields
                .as_object()
                .expect("an object of Account fields")
                .iter()
                .map(|(name, value)| match value {
                    Value::Null => format!(r#"<sf:{name} xsi:nil="true"/>"#),
                    Value::String(text) => format!("<sf:{name}>{}</sf:{name}>", escape(text)),
                    other => format!("<sf:{name}>{other}</sf:{name}>"),
                })
                .collect();
            format!(
                r#"<Notification><Id>{id}</Id><sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{fields}</sObject></Notification>"#
            )
        })
        .collect();
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{org}</OrganizationId><ActionId>04k000000000001AAA</ActionId><SessionId xsi:nil="true"/><EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/62.0/00D000000000001</EnterpriseUrl><PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/62.0/00D000000000001</PartnerUrl>{items}</notifications></soapenv:Body></soapenv:Envelope>"#
    )
}

/// An Account flagged "Bill with Lago", as the outbound message `Lago_Customer` sends it,
/// last modified at `stamp` (`2026-12-02T07:30:00.000Z`).
pub fn flagged_account(id: &str, name: &str, stamp: &str) -> Value {
    json!({
        "Id": id, "SystemModstamp": stamp, "Name": name, "Lago_Sync__c": "true",
        "Lago_Billing_Email__c": "billing@acme.test", "Lago_Currency__c": "EUR",
        "Lago_Tax_Identification_Number__c": "FR12345678901", "BillingStreet": "1 rue de la Paix",
        "BillingCity": "Paris", "BillingPostalCode": "75002", "BillingCountry": "FR",
        "Phone": null, "Website": "https://acme.test",
    })
}

pub fn customer_object(account: Option<&str>) -> Value {
    json!({
        "lago_id": "b7e3d1c6-0d1e-4f3a-9a53-8c6f2e1d0a11",
        "external_id": "acme-usd",
        "name": "Acme Corp",
        "email": "billing@acme.test",
        "currency": "USD",
        "tax_identification_number": "US-12-3456789",
        "created_at": "2025-01-02T09:00:00Z",
        "updated_at": "2025-03-01T10:15:02Z",
        "external_salesforce_id": account,
        "billing_configuration": { "invoice_grace_period": 0, "payment_provider": null },
        "metadata": [],
    })
}

/// The object of `object_type` for `lago_id`, linked to `account`, with `overrides` merged.
pub fn object(object_type: &str, lago_id: &str, account: Option<&str>, overrides: Value) -> Value {
    let mut object = match object_type {
        "customer" => customer_object(account),
        "subscription" => json!({
            "lago_id": lago_id, "external_id": format!("sub-{lago_id}"), "name": "Premium",
            "plan_code": "premium", "status": "active", "billing_time": "calendar",
            "subscription_at": "2025-03-01T00:00:00Z", "started_at": "2025-03-01T00:00:00.000Z",
            "terminated_at": null, "customer": customer_object(account), "plan": { "code": "premium" },
        }),
        "invoice" => json!({
            "lago_id": lago_id, "number": format!("ACME-{lago_id}"), "status": "finalized",
            "payment_status": "pending", "invoice_type": "subscription", "issuing_date": "2025-03-01",
            "payment_due_date": "2025-03-31", "total_amount_cents": 129900, "currency": "USD",
            "file_url": null, "updated_at": "2025-03-01T10:00:00Z", "customer": customer_object(account),
            "fees": [], "subscriptions": [],
        }),
        "credit_note" => json!({
            "lago_id": lago_id, "number": format!("ACME-CN-{lago_id}"), "lago_invoice_id": "inv-1",
            "invoice_number": "ACME-inv-1", "credit_status": "available", "refund_status": null,
            "reason": "order_change", "issuing_date": "2025-03-05", "total_amount_cents": 5000,
            "currency": "USD", "file_url": null, "updated_at": "2025-03-05T08:00:00Z",
            "customer": customer_object(account), "items": [],
        }),
        other => panic!("no sample object for {other}"),
    };
    if object_type == "customer" {
        object["lago_id"] = json!(lago_id);
    }
    if let Value::Object(extra) = overrides {
        for (k, v) in extra {
            object[k] = v;
        }
    }
    object
}

/// `n` fees of invoice `invoice` as lago-api's `V1::FeeSerializer` sends them (a charge
/// per metric, in USD), with ids `<invoice>-fee-<i>`.
pub fn fees(invoice: &str, n: usize) -> Value {
    (0..n)
        .map(|i| {
            json!({
                "lago_id": format!("{invoice}-fee-{i:05}"), "lago_charge_id": "ch-1",
                "lago_invoice_id": invoice, "lago_subscription_id": "sub-1",
                "item": { "type": "charge", "code": format!("metric_{i}"), "name": format!("Metric {i}"),
                          "invoice_display_name": null, "lago_item_id": "bm-1", "item_type": "BillableMetric" },
                "amount_cents": 100 + i as i64, "amount_currency": "USD", "precise_amount": "1.0",
                "taxes_amount_cents": 20, "taxes_rate": 20.0, "total_amount_cents": 120 + i as i64,
                "total_amount_currency": "USD", "units": format!("{i}.5"), "events_count": 3,
                "pay_in_advance": false, "invoiceable": true,
                "from_date": "2025-02-01T00:00:00Z", "to_date": "2025-02-28T23:59:59Z",
                "payment_status": "pending", "created_at": "2025-03-01T10:00:00Z",
                "amount_details": { "graduated_ranges": [], "free_units": "0.0", "paid_units": format!("{i}.5") },
            })
        })
        .collect()
}

/// A complete webhook body, serialised once: the tests sign these exact bytes.
pub fn body(webhook_type: &str, lago_id: &str, account: Option<&str>, overrides: Value) -> Vec<u8> {
    let object_type = webhook_type.split('.').next().expect("a webhook type");
    serde_json::to_vec(&json!({
        "webhook_type": webhook_type,
        "object_type": object_type,
        "organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        object_type: object(object_type, lago_id, account, overrides),
    }))
    .expect("JSON")
}

/// The `i`-th state of one invoice: pairs of states share a second (Lago stamps whole
/// seconds), the second of a pair a later payment stage; each has its own amount, so that
/// Salesforce shows which state it holds.
pub fn invoice_state(i: usize) -> Value {
    json!({
        "updated_at": format!("2025-03-01T10:00:{:02}Z", i / 2),
        "payment_status": if i.is_multiple_of(2) { "pending" } else { "succeeded" },
        "total_amount_cents": 100_000 + i as i64,
    })
}

/// The body of the `i`-th [`invoice_state`] of invoice `lago_id`.
pub fn invoice_state_body(lago_id: &str, i: usize) -> Vec<u8> {
    body(
        "invoice.payment_status_updated",
        lago_id,
        Some(ACCOUNT),
        invoice_state(i),
    )
}

/// Which [`invoice_state`] the stand-in's record of invoice `lago_id` holds.
pub fn invoice_state_written(standin: &Standin, lago_id: &str) -> Option<usize> {
    let record = standin.record_by("Lago_Invoice__c", "Lago_Id__c", lago_id)?;
    let amount = record["Total_Amount__c"].as_f64()?;
    Some(((amount * 100.0).round() as i64 - 100_000) as usize)
}
