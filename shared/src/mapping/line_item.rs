//! An invoice's fees → `Lago_Invoice_Line_Item__c`, upserted by `Lago_Id__c` under the
//! invoice (master-detail `Invoice__c`), written in the invoice's own call.

use std::collections::HashSet;

use serde_json::{Number, Value};

use super::values::{date_opt, text};
use super::*;
use crate::lago::{Fee, Invoice, InvoiceStatus};

pub const OBJECT: &str = "Lago_Invoice_Line_Item__c";
const MASTER_FIELD: &str = "Invoice__c";
const MASTER_RELATIONSHIP: &str = "Invoice__r";

/// The line items an invoice event writes: its fees, once the invoice is finalized or
/// voided. A draft's fees are provisional: Lago deletes and recomputes them, under new
/// ids, at every refresh and at finalization (lago-api `Invoices::RefreshDraftService`),
/// so writing them would leave line items of fees that no longer exist. `None` (no fees
/// in the payload, or a draft) leaves the invoice's line items as they are.
pub(super) fn details(invoice: &Invoice) -> Result<Option<Details>, MappingError> {
    let final_fees = matches!(
        invoice.status,
        Some(InvoiceStatus::Finalized | InvoiceStatus::Voided)
    );
    let Some(fees) = invoice
        .fees
        .as_ref()
        .filter(|f| final_fees && !f.is_empty())
    else {
        return Ok(None);
    };
    let currency = currency_of(&invoice.currency, &invoice.total_amount_currency);
    let mut seen = HashSet::new();
    let mut records = Vec::with_capacity(fees.len());
    for fee in fees {
        let detail = line_item(fee, currency)?;
        // Salesforce refuses a whole collection that names one external id twice.
        if seen.insert(detail.lago_id.clone()) {
            records.push(detail);
        }
    }
    Ok(Some(Details {
        object: OBJECT,
        master_field: MASTER_FIELD,
        master_relationship: MASTER_RELATIONSHIP,
        records,
    }))
}

fn line_item(fee: &Fee, invoice_currency: Option<&str>) -> Result<Detail, MappingError> {
    let lago_id = required("fees[].lago_id", &fee.lago_id)?;
    let item = &fee.item;
    let currency = fee
        .amount_currency
        .as_deref()
        .filter(|c| !c.is_empty())
        .or(invoice_currency);
    let mut record = Record::default();
    record
        .set(
            "Name",
            name(
                &[&item.invoice_display_name, &item.name, &item.code],
                lago_id,
            ),
        )
        .set_opt("Item_Type__c", text_opt(&item.kind, 255))
        .set_opt("Item_Code__c", text_opt(&item.code, 255))
        .set_opt("Item_Name__c", text_opt(&item.name, 255))
        .try_set_opt("Units__c", fee.units.as_ref().map(units))?
        .try_set_opt("From_Date__c", date_opt("fees[].from_date", &fee.from_date))?
        .try_set_opt("To_Date__c", date_opt("fees[].to_date", &fee.to_date))?;
    let cents = [
        ("Amount__c", "fees[].amount_cents", fee.amount_cents),
        (
            "Taxes_Amount__c",
            "fees[].taxes_amount_cents",
            fee.taxes_amount_cents,
        ),
        (
            "Total_Amount__c",
            "fees[].total_amount_cents",
            fee.total_amount_cents,
        ),
    ];
    record.set_amounts(&cents, currency)?;
    record.set_opt("Currency__c", currency.map(|c| text(c, 3)));
    Ok(Detail {
        lago_id: lago_id.to_owned(),
        fields: record.0,
    })
}

/// Lago serialises units as a decimal string; it goes to Salesforce as that same decimal
/// (serde_json keeps its digits), never through a float.
fn units(value: &Value) -> Result<Value, MappingError> {
    let invalid = |v: &str| MappingError::invalid("fees[].units", v, "expected a decimal");
    match value {
        Value::Number(n) => Ok(Value::Number(n.clone())),
        Value::String(s) => s
            .trim()
            .parse::<Number>()
            .map(Value::Number)
            .map_err(|_| invalid(s)),
        other => Err(invalid(&other.to_string())),
    }
}
