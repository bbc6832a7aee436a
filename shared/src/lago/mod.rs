//! Lago webhook payloads, typed tolerantly: every field is optional (`#[serde(default)]`),
//! unknown fields are ignored and unknown enum values are kept as [`Unknown`](SubscriptionStatus::Unknown),
//! because new Lago versions add both. Only the fields the mapping needs are typed.

mod envelope;
mod objects;
mod values;

pub use envelope::{as_webhook_body, Envelope, EnvelopeError};
pub use objects::{CreditNote, Customer, Fee, IntegrationCustomer, Invoice, Subscription};
pub use values::{
    BillingTime, CreditNoteReason, CreditStatus, InvoiceStatus, InvoiceType, PaymentStatus,
    RefundStatus, SubscriptionStatus,
};
