//! `GET sobjects/{Object}/describe`: whether the org has every object and field of
//! contract §5, §6 and §8, writable by the integration user, before anything is written.

use std::fmt;
use std::time::Instant;

use reqwest::Method;
use serde::Deserialize;

use super::{SalesforceClient, SalesforceError};
use crate::secrets::SecretCache;

/// Contract §5, §6 and §8: each object and the fields the project writes. Accounts are only
/// updated; the custom objects are also created by upserts, so their fields must be
/// createable. Upserts also update, so a line item's master-detail `Invoice__c` must be
/// reparentable (updateable) too.
pub const EXPECTED_SCHEMA: &[(&str, &[&str])] = &[
    (
        "Account",
        &[
            "Lago_Customer_Id__c",
            "Lago_External_Customer_Id__c",
            "Lago_Customer_Name__c",
            "Lago_Billing_Email__c",
            "Lago_Currency__c",
            "Lago_Tax_Identification_Number__c",
            "Lago_Customer_Updated_At__c",
            "Lago_Sync_Status__c",
            "Lago_Sync_Error__c",
        ],
    ),
    (
        "Lago_Subscription__c",
        &[
            "Name",
            "Lago_Id__c",
            "Account__c",
            "External_Id__c",
            "Plan_Code__c",
            "Status__c",
            "Billing_Time__c",
            "Start_Date__c",
            "Termination_Date__c",
            "Plan_Name__c",
            "Ending_Date__c",
            "Trial_Ended_Date__c",
            "Canceled_Date__c",
        ],
    ),
    (
        "Lago_Invoice__c",
        &[
            "Name",
            "Lago_Id__c",
            "Account__c",
            "Number__c",
            "Status__c",
            "Payment_Status__c",
            "Invoice_Type__c",
            "Issuing_Date__c",
            "Payment_Due_Date__c",
            "Total_Amount__c",
            "Currency__c",
            "File_Url__c",
            "Total_Due_Amount__c",
            "Sub_Total_Excluding_Taxes__c",
            "Taxes_Amount__c",
            "Payment_Overdue__c",
            "Payment_Dispute_Lost_At__c",
            "Voided_At__c",
            "Purchase_Order_Number__c",
            "Lago_Url__c",
        ],
    ),
    (
        "Lago_Credit_Note__c",
        &[
            "Name",
            "Lago_Id__c",
            "Account__c",
            "Invoice__c",
            "Lago_Invoice_Id__c",
            "Number__c",
            "Invoice_Number__c",
            "Credit_Status__c",
            "Refund_Status__c",
            "Reason__c",
            "Issuing_Date__c",
            "Total_Amount__c",
            "Currency__c",
            "File_Url__c",
            "Credit_Amount__c",
            "Refund_Amount__c",
            "Balance_Amount__c",
        ],
    ),
    (
        "Lago_Invoice_Line_Item__c",
        &[
            "Name",
            "Lago_Id__c",
            "Invoice__c",
            "Item_Type__c",
            "Item_Code__c",
            "Item_Name__c",
            "Units__c",
            "Amount__c",
            "Taxes_Amount__c",
            "Total_Amount__c",
            "Currency__c",
            "From_Date__c",
            "To_Date__c",
        ],
    ),
    (
        "Lago_Sync_Issue__c",
        &[
            "Name",
            "Delivery_Key__c",
            "Status__c",
            "Family__c",
            "Webhook_Type__c",
            "Lago_Id__c",
            "Error_Code__c",
            "Error_Message__c",
            "Attempts__c",
            "First_Failed_At__c",
            "Last_Failed_At__c",
            "Resolved_At__c",
            "Account__c",
        ],
    ),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    pub object: &'static str,
    pub field: Option<&'static str>,
    pub problem: &'static str,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}.{field}: {}", self.object, self.problem),
            None => write!(f, "{}: {}", self.object, self.problem),
        }
    }
}

#[derive(Deserialize)]
struct Description {
    fields: Vec<FieldDescription>,
}

#[derive(Deserialize)]
struct FieldDescription {
    name: String,
    #[serde(default)]
    updateable: bool,
    #[serde(default)]
    createable: bool,
}

impl SalesforceClient {
    /// Describes each object of [`EXPECTED_SCHEMA`] (one call per object) and lists what
    /// is missing or not writable; empty when the org is ready.
    pub async fn check_schema(
        &self,
        secrets: &SecretCache,
        deadline: Instant,
    ) -> Result<Vec<SchemaProblem>, SalesforceError> {
        let mut problems = Vec::new();
        for (object, fields) in EXPECTED_SCHEMA {
            let url = format!("{}/sobjects/{object}/describe", self.data_url());
            let description = match self.call(secrets, Method::GET, &url, None, deadline).await {
                Ok(body) => serde_json::from_slice::<Description>(&body).map_err(|_| {
                    SalesforceError::new(None, "MALFORMED_RESPONSE", "unreadable describe answer")
                })?,
                Err(e) if e.status == Some(404) => {
                    problems.push(SchemaProblem {
                        object,
                        field: None,
                        problem: "object not found (deploy salesforce/ and grant the Lago_Sync permission set)",
                    });
                    continue;
                }
                Err(e) => return Err(e),
            };
            let custom = object.ends_with("__c");
            for field in *fields {
                let found = description
                    .fields
                    .iter()
                    .find(|f| f.name.eq_ignore_ascii_case(field));
                let problem = match found {
                    None => Some("field missing or not visible to the integration user"),
                    Some(f) if !f.updateable => {
                        Some("field not updateable by the integration user")
                    }
                    Some(f) if custom && !f.createable => {
                        Some("field not createable by the integration user")
                    }
                    Some(_) => None,
                };
                if let Some(problem) = problem {
                    problems.push(SchemaProblem {
                        object,
                        field: Some(field),
                        problem,
                    });
                }
            }
        }
        Ok(problems)
    }
}

impl SalesforceClient {
    /// Requests a token (or reuses the kept one): whether the External Client App and its
    /// integration user let this deployment in.
    pub async fn sign_in(
        &self,
        secrets: &SecretCache,
        deadline: Instant,
    ) -> Result<(), SalesforceError> {
        self.token(secrets, deadline).await.map(drop)
    }
}
