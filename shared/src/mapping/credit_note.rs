//! credit_note → `Lago_Credit_Note__c`, upserted by `Lago_Id__c`, linked to its invoice
//! when that invoice is in Salesforce.

use super::values::{date_value, text};
use super::*;
use crate::lago::CreditNote;

pub const OBJECT: &str = "Lago_Credit_Note__c";

pub(super) fn plan(note: &CreditNote) -> Result<Plan, MappingError> {
    let account = embedded_account(&note.customer, "credit note")?;
    let lago_id = required("lago_id", &note.lago_id)?;
    let currency = currency_of(&note.currency, &note.total_amount_currency);
    let total = total_amount(note.total_amount_cents, currency)?;

    let mut record = Record::default();
    record
        .set("Name", name(&[&note.number], lago_id))
        .set("Account__c", Value::String(account))
        .set_opt(
            "Lago_Invoice_Id__c",
            note.lago_invoice_id.clone().map(Value::String),
        )
        .set_opt("Number__c", text_opt(&note.number, 255))
        .set_opt("Invoice_Number__c", text_opt(&note.invoice_number, 255))
        .set_opt(
            "Credit_Status__c",
            enum_opt(&note.credit_status, |s| s.as_str()),
        )
        .set_opt(
            "Refund_Status__c",
            enum_opt(&note.refund_status, |s| s.as_str()),
        )
        .set_opt("Reason__c", enum_opt(&note.reason, |r| r.as_str()))
        .try_set_opt(
            "Issuing_Date__c",
            note.issuing_date
                .as_deref()
                .map(|v| date_value("issuing_date", v)),
        )?
        .set_opt("Total_Amount__c", total)
        .set_opt("Currency__c", currency.map(|c| text(c, 3)))
        .set_opt("File_Url__c", url_opt(&note.file_url));
    amounts(&mut record, note, currency)?;
    let reference = note
        .lago_invoice_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(invoice_reference);
    let stage = stage(
        note.credit_status.as_ref().map(|s| s.rank()),
        note.refund_status.as_ref().map(|s| s.rank()),
    );
    let version = version_by_updated_at(&note.updated_at, stage)?;
    Ok(upsert(OBJECT, lago_id, record, reference, version))
}

/// How the note's total splits: credited to the customer, refunded, and still available.
fn amounts(
    record: &mut Record,
    note: &CreditNote,
    currency: Option<&str>,
) -> Result<(), MappingError> {
    let cents = [
        (
            "Credit_Amount__c",
            "credit_amount_cents",
            note.credit_amount_cents,
        ),
        (
            "Refund_Amount__c",
            "refund_amount_cents",
            note.refund_amount_cents,
        ),
        (
            "Balance_Amount__c",
            "balance_amount_cents",
            note.balance_amount_cents,
        ),
    ];
    record.set_amounts(&cents, currency)?;
    Ok(())
}

/// The link of credit note `lago_id` to its invoice, alone: written once the invoice is in
/// Salesforce after the credit note was written without it (contract §7.6).
pub fn invoice_link(lago_id: &str, invoice_lago_id: &str) -> SalesforceWrite {
    SalesforceWrite {
        target: Target::Upsert {
            object: OBJECT,
            lago_id: lago_id.to_owned(),
        },
        fields: Map::new(),
        reference: Some(invoice_reference(invoice_lago_id)),
        details: None,
    }
}

fn invoice_reference(invoice_lago_id: &str) -> Reference {
    Reference {
        relationship: "Invoice__r",
        parent_object: super::invoice::OBJECT,
        parent_field: LAGO_ID_FIELD,
        value: invoice_lago_id.to_owned(),
    }
}
