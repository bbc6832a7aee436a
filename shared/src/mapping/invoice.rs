//! invoice → `Lago_Invoice__c`, upserted by `Lago_Id__c`.

use super::values::{date_value, text};
use super::*;
use crate::lago::Invoice;

pub const OBJECT: &str = "Lago_Invoice__c";

pub(super) fn plan(invoice: &Invoice) -> Result<Plan, MappingError> {
    let account = embedded_account(&invoice.customer, "invoice")?;
    let lago_id = required("lago_id", &invoice.lago_id)?;
    let currency = currency_of(&invoice.currency, &invoice.total_amount_currency);
    let total = total_amount(invoice.total_amount_cents, currency)?;

    let mut record = Record::default();
    record
        .set("Name", name(&[&invoice.number], lago_id))
        .set("Account__c", Value::String(account))
        .set_opt("Number__c", text_opt(&invoice.number, 255))
        .set_opt("Status__c", enum_opt(&invoice.status, |s| s.as_str()))
        .set_opt(
            "Payment_Status__c",
            enum_opt(&invoice.payment_status, |s| s.as_str()),
        )
        .set_opt(
            "Invoice_Type__c",
            enum_opt(&invoice.invoice_type, |t| t.as_str()),
        )
        .try_set_opt(
            "Issuing_Date__c",
            invoice
                .issuing_date
                .as_deref()
                .map(|v| date_value("issuing_date", v)),
        )?
        .try_set_opt(
            "Payment_Due_Date__c",
            invoice
                .payment_due_date
                .as_deref()
                .map(|v| date_value("payment_due_date", v)),
        )?
        .set_opt("Total_Amount__c", total)
        .set_opt("Currency__c", currency.map(|c| text(c, 3)))
        .set_opt("File_Url__c", url_opt(&invoice.file_url));
    let stage = stage(
        invoice.status.as_ref().map(|s| s.rank()),
        invoice.payment_status.as_ref().map(|s| s.rank()),
    );
    let order = order_by_updated_at(OBJECT, lago_id, &invoice.updated_at, stage)?;
    Ok(upsert(OBJECT, lago_id, record, None, order))
}
