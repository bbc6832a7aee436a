//! invoice → `Lago_Invoice__c`, upserted by `Lago_Id__c`.

use serde::Deserialize;

use super::values::{date_opt, datetime_opt, text};
use super::*;
use crate::lago::Invoice;

pub const OBJECT: &str = "Lago_Invoice__c";

/// The envelope's `object_type` of `invoice.payment_dispute_lost`: Lago sends that event
/// through its own serializer (lago-api `V1::Invoices::PaymentDisputeLostSerializer`),
/// `{"payment_dispute_lost": {"invoice": {...}, "provider_error": ...}}`, not as an
/// invoice envelope.
pub const DISPUTE_LOST_OBJECT_TYPE: &str = "payment_dispute_lost";

/// The invoice an envelope of the invoice family carries: its `invoice` object, or, for
/// `invoice.payment_dispute_lost`, the invoice inside the `payment_dispute_lost` object.
pub(super) fn of_envelope(envelope: &Envelope<'_>) -> Result<Invoice, MappingError> {
    if envelope.object_type != DISPUTE_LOST_OBJECT_TYPE {
        return Ok(envelope.object(Family::Invoice.object_type())?);
    }
    let object: Value = envelope.object(DISPUTE_LOST_OBJECT_TYPE)?;
    Ok(dispute_lost_invoice(&object)?)
}

/// The serializer nests the invoice under `invoice`; lago-openapi's schema for the event
/// (`InvoicePaymentDisputeLostObject`) lays its fields out flat instead. Both are read.
pub(super) fn dispute_lost_invoice(object: &Value) -> Result<Invoice, EnvelopeError> {
    let invoice = object
        .get("invoice")
        .filter(|v| v.is_object())
        .unwrap_or(object);
    Invoice::deserialize(invoice).map_err(|source| EnvelopeError::MalformedObject {
        object_type: DISPUTE_LOST_OBJECT_TYPE.to_owned(),
        source,
    })
}

pub(super) fn plan(invoice: &Invoice) -> Result<Plan, MappingError> {
    let account = embedded_account(&invoice.customer, "invoice")?;
    let lago_id = required("lago_id", &invoice.lago_id)?;

    let mut record = Record::default();
    record
        .set("Name", name(&[&invoice.number], lago_id))
        .set("Account__c", Value::String(account));
    describe(&mut record, invoice);
    dates(&mut record, invoice)?;
    amounts(&mut record, invoice)?;
    let stage = stage(
        invoice.status.as_ref().map(|s| s.rank()),
        invoice.payment_status.as_ref().map(|s| s.rank()),
    );
    let version = version_by_updated_at(&invoice.updated_at, stage)?;
    let mut plan = upsert(OBJECT, lago_id, record, None, version);
    plan.write.details = super::line_item::details(invoice)?;
    Ok(plan)
}

/// Identity, statuses and links.
fn describe(record: &mut Record, invoice: &Invoice) {
    record
        .set_opt("Number__c", text_opt(&invoice.number, 255))
        .set_opt(
            "Purchase_Order_Number__c",
            text_opt(&invoice.purchase_order_number, 255),
        )
        .set_opt("Status__c", enum_opt(&invoice.status, |s| s.as_str()))
        .set_opt(
            "Payment_Status__c",
            enum_opt(&invoice.payment_status, |s| s.as_str()),
        )
        .set_opt(
            "Invoice_Type__c",
            enum_opt(&invoice.invoice_type, |t| t.as_str()),
        )
        .set_opt(
            "Payment_Overdue__c",
            invoice.payment_overdue.map(Value::Bool),
        )
        .set_opt("File_Url__c", url_opt(&invoice.file_url))
        .set_opt("Lago_Url__c", url_opt(&invoice.web_url));
}

/// Dates (`YYYY-MM-DD`) and the two moments kept as DateTimes.
fn dates(record: &mut Record, invoice: &Invoice) -> Result<(), MappingError> {
    record
        .try_set_opt(
            "Issuing_Date__c",
            date_opt("issuing_date", &invoice.issuing_date),
        )?
        .try_set_opt(
            "Payment_Due_Date__c",
            date_opt("payment_due_date", &invoice.payment_due_date),
        )?
        .try_set_opt(
            "Payment_Dispute_Lost_At__c",
            datetime_opt("payment_dispute_lost_at", &invoice.payment_dispute_lost_at),
        )?
        .try_set_opt(
            "Voided_At__c",
            datetime_opt("voided_at", &invoice.voided_at),
        )?;
    Ok(())
}

/// Every amount in the invoice's currency, by its exponent.
fn amounts(record: &mut Record, invoice: &Invoice) -> Result<(), MappingError> {
    let currency = currency_of(&invoice.currency, &invoice.total_amount_currency);
    let cents = [
        (
            "Total_Due_Amount__c",
            "total_due_amount_cents",
            invoice.total_due_amount_cents,
        ),
        (
            "Sub_Total_Excluding_Taxes__c",
            "sub_total_excluding_taxes_amount_cents",
            invoice.sub_total_excluding_taxes_amount_cents,
        ),
        (
            "Taxes_Amount__c",
            "taxes_amount_cents",
            invoice.taxes_amount_cents,
        ),
    ];
    record.set_opt(
        "Total_Amount__c",
        total_amount(invoice.total_amount_cents, currency)?,
    );
    record.set_amounts(&cents, currency)?;
    record.set_opt("Currency__c", currency.map(|c| text(c, 3)));
    Ok(())
}
