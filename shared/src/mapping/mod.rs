//! Lago object in, Salesforce record out: pure functions, no I/O (contract §4–5).
//!
//! A field whose Lago value is null or absent is left out of the record, so that a later
//! or earlier event without it (e.g. `file_url` before the PDF exists) never clears it.

mod account;
mod credit_note;
mod customer;
mod invoice;
mod issue;
mod line_item;
mod subscription;
pub mod values;

use serde_json::{Map, Value};
use thiserror::Error;

use crate::lago::{Envelope, EnvelopeError};
use crate::Family;

pub use account::account_id;
pub use credit_note::invoice_link;
pub use customer::sync_status;
pub use issue::{issue_write, IssueEvent, IssueState, ISSUE_KEY_FIELD, ISSUE_OBJECT};
pub use line_item::OBJECT as LINE_ITEM_OBJECT;

/// Salesforce's external-id field on the three custom objects.
pub const LAGO_ID_FIELD: &str = "Lago_Id__c";

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// PATCH an existing Account by its id; Accounts are never created.
    Account { id: String },
    /// Upsert by `Lago_Id__c`.
    Upsert {
        object: &'static str,
        lago_id: String,
    },
    /// Upsert by another external id `field` (the sync issues, by their delivery key).
    UpsertBy {
        object: &'static str,
        field: &'static str,
        value: String,
    },
}

/// A lookup set through the parent's external id, which Salesforce resolves itself (no
/// extra query). The write is retried without it when the parent is not in Salesforce.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub relationship: &'static str,
    pub parent_object: &'static str,
    pub parent_field: &'static str,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SalesforceWrite {
    pub target: Target,
    pub fields: Map<String, Value>,
    pub reference: Option<Reference>,
    /// Records written in the same call, under this one (an invoice's line items).
    pub details: Option<Details>,
}

/// Detail records of a master-detail relationship, each upserted by `Lago_Id__c` with
/// its master field set to the written record.
#[derive(Debug, Clone, PartialEq)]
pub struct Details {
    pub object: &'static str,
    /// The master-detail field, which takes the master's Salesforce id.
    pub master_field: &'static str,
    /// Its relationship name, which takes the master's `Lago_Id__c` instead.
    pub master_relationship: &'static str,
    pub records: Vec<Detail>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    pub lago_id: String,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub lago_id: String,
    /// The id Lago's API finds the object by (`external_id` for customers and
    /// subscriptions, `lago_id` otherwise): how the redrive reads its current state.
    pub lago_ref: String,
    pub write: SalesforceWrite,
    /// Orders the states of the record ([`Plan::record`]), so that an older one never
    /// overwrites a newer one; `None` when the payload cannot order it.
    pub version: Option<i64>,
}

impl Plan {
    /// The Salesforce record this plan writes, `<object>/<id>`: what the store guards.
    pub fn record(&self) -> String {
        match &self.write.target {
            Target::Account { id } => format!("Account/{id}"),
            Target::Upsert { object, lago_id } => format!("{object}/{lago_id}"),
            Target::UpsertBy { object, value, .. } => format!("{object}/{value}"),
        }
    }

    /// The Account the planned record names, if any.
    pub fn account(&self) -> Option<&str> {
        match &self.write.target {
            Target::Account { id } => Some(id),
            _ => self.write.fields.get("Account__c").and_then(Value::as_str),
        }
    }
}

#[derive(Debug, Error)]
pub enum MappingError {
    /// Not an error of the payload: this customer is simply not linked to Salesforce.
    #[error("{0}")]
    NoAccount(String),
    #[error("field {field} = {value:?}: {reason}")]
    Invalid {
        field: String,
        value: String,
        reason: &'static str,
    },
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl MappingError {
    pub(crate) fn invalid(field: &str, value: &str, reason: &'static str) -> Self {
        let value: String = value.chars().take(64).collect();
        MappingError::Invalid {
            field: field.to_owned(),
            value,
            reason,
        }
    }

    pub(crate) fn missing(field: &str) -> Self {
        MappingError::invalid(field, "", "required but missing")
    }
}

/// Maps the envelope's object for `family`. The caller has already checked that the
/// webhook type is one this family writes.
pub fn plan(family: Family, envelope: &Envelope<'_>) -> Result<Plan, MappingError> {
    let object_type = family.object_type();
    match family {
        Family::Customer => customer::plan(&envelope.object(object_type)?),
        Family::Subscription => subscription::plan(&envelope.object(object_type)?),
        Family::Invoice => invoice::plan(&invoice::of_envelope(envelope)?),
        Family::CreditNote => credit_note::plan(&envelope.object(object_type)?),
    }
}

/// Builds a record, leaving out absent values.
#[derive(Default)]
struct Record(Map<String, Value>);

impl Record {
    fn set(&mut self, field: &str, value: Value) -> &mut Self {
        self.0.insert(field.to_owned(), value);
        self
    }

    fn set_opt(&mut self, field: &str, value: Option<Value>) -> &mut Self {
        if let Some(value) = value {
            self.set(field, value);
        }
        self
    }

    fn try_set_opt(
        &mut self,
        field: &str,
        value: Option<Result<Value, MappingError>>,
    ) -> Result<&mut Self, MappingError> {
        Ok(self.set_opt(field, value.transpose()?))
    }

    /// Each `(Salesforce field, Lago field, cents)` present, in `currency` by its exponent.
    fn set_amounts(
        &mut self,
        amounts: &[(&str, &str, Option<i64>)],
        currency: Option<&str>,
    ) -> Result<&mut Self, MappingError> {
        for &(field, lago_field, cents) in amounts {
            self.try_set_opt(field, values::amount_opt(lago_field, cents, currency))?;
        }
        Ok(self)
    }
}

fn required<'a>(field: &str, value: &'a Option<String>) -> Result<&'a str, MappingError> {
    value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| MappingError::missing(field))
}

/// Version from `updated_at`, in milliseconds since the epoch.
fn updated_at_version(updated_at: &Option<String>) -> Result<Option<i64>, MappingError> {
    updated_at
        .as_deref()
        .map(|v| {
            values::datetime("updated_at", v)
                .map(|dt| (dt.unix_timestamp_nanos() / 1_000_000) as i64)
        })
        .transpose()
}

fn text_opt(value: &Option<String>, max_chars: usize) -> Option<Value> {
    value.as_deref().map(|v| values::text(v, max_chars))
}

/// Salesforce Url fields hold 255 characters. A longer link (Lago's signed file URLs can
/// be) is left out rather than cut, which would make it a broken link, or sent, which
/// would make Salesforce refuse the whole record.
fn url_opt(value: &Option<String>) -> Option<Value> {
    value
        .as_deref()
        .filter(|url| url.chars().count() <= 255)
        .map(|url| Value::String(url.to_owned()))
}

fn enum_opt<T>(value: &Option<T>, as_str: impl Fn(&T) -> &str) -> Option<Value> {
    value.as_ref().map(|v| Value::String(as_str(v).to_owned()))
}

fn currency_of<'a>(currency: &'a Option<String>, legacy: &'a Option<String>) -> Option<&'a str> {
    currency
        .as_deref()
        .or(legacy.as_deref())
        .filter(|c| !c.is_empty())
}

/// `Total_Amount__c`: an amount is meaningless without its currency.
fn total_amount(cents: Option<i64>, currency: Option<&str>) -> Result<Option<Value>, MappingError> {
    cents
        .map(|cents| {
            values::amount(
                "total_amount_cents",
                cents,
                currency.ok_or_else(|| MappingError::missing("currency"))?,
            )
        })
        .transpose()
}

/// The `Name` of a custom object (Text(80), required on insert): the first non-empty candidate.
fn name(candidates: &[&Option<String>], fallback: &str) -> Value {
    let chosen = candidates
        .iter()
        .filter_map(|v| v.as_deref())
        .find(|v| !v.trim().is_empty())
        .unwrap_or(fallback);
    values::text(chosen, 80)
}

/// The Account of a subscription, invoice or credit note comes from its embedded customer.
fn embedded_account(
    customer: &Option<crate::lago::Customer>,
    what: &str,
) -> Result<String, MappingError> {
    let customer = customer.as_ref().ok_or_else(|| {
        MappingError::NoAccount(format!("the {what} payload carries no customer"))
    })?;
    account_id(customer)
}

/// Orders by `updated_at` and, within one (Lago stamps whole seconds), by the lifecycle
/// stage `stage` (below [`STAGES`]), so that `invoice.created` and an immediate
/// `payment_status_updated` of the same second keep their order (contract §7.1).
fn version_by_updated_at(
    updated_at: &Option<String>,
    stage: u8,
) -> Result<Option<i64>, MappingError> {
    Ok(updated_at_version(updated_at)?.map(|ms| ms * STAGES + i64::from(stage)))
}

/// Room for the lifecycle stages of one `updated_at`.
pub const STAGES: i64 = 100;

/// Two lifecycle dimensions as one stage: the first decides, the second breaks its ties.
fn stage(first: Option<u8>, second: Option<u8>) -> u8 {
    first.unwrap_or(0) * 10 + second.unwrap_or(0)
}

fn upsert(
    object: &'static str,
    lago_id: &str,
    record: Record,
    reference: Option<Reference>,
    version: Option<i64>,
) -> Plan {
    Plan {
        lago_id: lago_id.to_owned(),
        lago_ref: lago_id.to_owned(),
        write: SalesforceWrite {
            target: Target::Upsert {
                object,
                lago_id: lago_id.to_owned(),
            },
            fields: record.0,
            reference,
            details: None,
        },
        version,
    }
}

#[cfg(test)]
mod tests;
