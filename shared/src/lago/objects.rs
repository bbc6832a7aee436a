//! The four Lago objects (lago-api `app/serializers/v1/*_serializer.rb`), reduced to the
//! fields that reach Salesforce or decide ordering.

use serde::{Deserialize, Deserializer};

use super::values::*;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub lago_id: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub currency: Option<String>,
    pub tax_identification_number: Option<String>,
    pub updated_at: Option<String>,
    /// The legacy place of the Account id (Salesforce package before v2.7).
    pub external_salesforce_id: Option<String>,
    /// Only customer.* webhooks and invoice.resynced include these.
    #[serde(deserialize_with = "null_as_empty")]
    pub integration_customers: Vec<IntegrationCustomer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IntegrationCustomer {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub external_customer_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Subscription {
    pub lago_id: Option<String>,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub plan_code: Option<String>,
    pub status: Option<SubscriptionStatus>,
    pub billing_time: Option<BillingTime>,
    pub subscription_at: Option<String>,
    pub started_at: Option<String>,
    pub terminated_at: Option<String>,
    pub ending_at: Option<String>,
    pub trial_ended_at: Option<String>,
    pub canceled_at: Option<String>,
    /// Embedded by the subscription.* webhooks (`includes: plan`), not by Lago's API lists.
    pub plan: Option<EmbeddedPlan>,
    pub customer: Option<Customer>,
}

/// The plan a subscription webhook embeds (lago-api `plan_serializer.rb`); only its name
/// reaches Salesforce (the code is the subscription's own `plan_code`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EmbeddedPlan {
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Invoice {
    pub lago_id: Option<String>,
    pub number: Option<String>,
    pub status: Option<InvoiceStatus>,
    pub payment_status: Option<PaymentStatus>,
    pub invoice_type: Option<InvoiceType>,
    pub issuing_date: Option<String>,
    pub payment_due_date: Option<String>,
    pub total_amount_cents: Option<i64>,
    pub total_due_amount_cents: Option<i64>,
    pub sub_total_excluding_taxes_amount_cents: Option<i64>,
    pub taxes_amount_cents: Option<i64>,
    pub currency: Option<String>,
    /// Pre-2024 payloads name the currency per amount.
    pub total_amount_currency: Option<String>,
    pub payment_overdue: Option<bool>,
    /// Serialised without `iso8601`, so with milliseconds (ActiveSupport's JSON default).
    pub payment_dispute_lost_at: Option<String>,
    pub voided_at: Option<String>,
    pub purchase_order_number: Option<String>,
    pub file_url: Option<String>,
    /// The invoice's page in Lago's app; null while the invoice is not visible there.
    pub web_url: Option<String>,
    pub updated_at: Option<String>,
    pub customer: Option<Customer>,
    /// Embedded by most invoice webhooks and by `GET /api/v1/invoices/{lago_id}`, not by
    /// the invoice list; `None` when absent, which leaves the line items as they are.
    pub fees: Option<Vec<Fee>>,
}

/// One fee of an invoice (lago-api `V1::FeeSerializer`): a line item in Salesforce.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Fee {
    pub lago_id: Option<String>,
    pub item: FeeItem,
    /// A decimal string (`"0.32"`); some payloads send a number.
    pub units: Option<serde_json::Value>,
    pub amount_cents: Option<i64>,
    pub taxes_amount_cents: Option<i64>,
    pub total_amount_cents: Option<i64>,
    pub amount_currency: Option<String>,
    pub from_date: Option<String>,
    pub to_date: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FeeItem {
    /// subscription, charge, add_on, credit, commitment, fixed_charge, or newer ones.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub code: Option<String>,
    pub name: Option<String>,
    pub invoice_display_name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreditNote {
    pub lago_id: Option<String>,
    pub number: Option<String>,
    pub lago_invoice_id: Option<String>,
    pub invoice_number: Option<String>,
    pub credit_status: Option<CreditStatus>,
    pub refund_status: Option<RefundStatus>,
    pub reason: Option<CreditNoteReason>,
    pub issuing_date: Option<String>,
    pub total_amount_cents: Option<i64>,
    pub credit_amount_cents: Option<i64>,
    pub refund_amount_cents: Option<i64>,
    pub balance_amount_cents: Option<i64>,
    pub currency: Option<String>,
    pub total_amount_currency: Option<String>,
    pub file_url: Option<String>,
    pub updated_at: Option<String>,
    pub customer: Option<Customer>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}
