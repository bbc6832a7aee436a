//! customer → the existing Account's Lago fields.

use super::values::datetime_value;
use super::*;
use crate::lago::Customer;

/// The Account's "Bill with Lago" status and why it is not `synced` (contract §8).
const SYNC_STATUS_FIELD: &str = "Lago_Sync_Status__c";
const SYNC_ERROR_FIELD: &str = "Lago_Sync_Error__c";

/// The Account's "Bill with Lago" status alone, with its reason: what the Account shows
/// while Lago has not taken its customer (`pending`, `failed`).
pub fn sync_status(account_id: &str, status: &str, reason: &str) -> SalesforceWrite {
    let mut record = Record::default();
    record
        .set(SYNC_STATUS_FIELD, Value::String(status.to_owned()))
        .set(SYNC_ERROR_FIELD, values::text(reason, 255));
    SalesforceWrite {
        target: Target::Account {
            id: account_id.to_owned(),
        },
        fields: record.0,
        reference: None,
        details: None,
    }
}

pub(super) fn plan(customer: &Customer) -> Result<Plan, MappingError> {
    let account = account_id(customer)?;
    let lago_id = required("lago_id", &customer.lago_id)?;
    let mut record = Record::default();
    record
        .set("Lago_Customer_Id__c", Value::String(lago_id.to_owned()))
        .set_opt(
            "Lago_External_Customer_Id__c",
            text_opt(&customer.external_id, 255),
        )
        .set_opt("Lago_Customer_Name__c", text_opt(&customer.name, 255))
        .set_opt("Lago_Billing_Email__c", text_opt(&customer.email, 255))
        .set_opt("Lago_Currency__c", text_opt(&customer.currency, 3))
        .set_opt(
            "Lago_Tax_Identification_Number__c",
            text_opt(&customer.tax_identification_number, 255),
        )
        .try_set_opt(
            "Lago_Customer_Updated_At__c",
            customer
                .updated_at
                .as_deref()
                .map(|v| datetime_value("updated_at", v)),
        )?
        // The Account is linked: whatever "Bill with Lago" asked is done (contract §8). The
        // error is cleared on purpose, the one null this mapping sends.
        .set(SYNC_STATUS_FIELD, Value::String("synced".to_owned()))
        .set(SYNC_ERROR_FIELD, Value::Null);
    // Several Lago customers may share one Account, which shows the most recently
    // updated one: so the order is kept per Account, not per customer.
    let version = updated_at_version(&customer.updated_at)?;
    Ok(Plan {
        lago_id: lago_id.to_owned(),
        lago_ref: customer
            .external_id
            .as_deref()
            .unwrap_or(lago_id)
            .to_owned(),
        write: SalesforceWrite {
            target: Target::Account { id: account },
            fields: record.0,
            reference: None,
            details: None,
        },
        version,
    })
}
