//! `lago-sync push-accounts`: the Accounts flagged "Bill with Lago" that are not synced,
//! found by SOQL and pushed through the outbound messages' own path — for Accounts flagged
//! before the project was deployed, and after an outage longer than Salesforce's 24 hours
//! of retries (contract §8). Running it twice pushes nothing twice.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::pipeline::{App, Outcome};
use crate::salesforce::SalesforceError;
use crate::store::Store;

/// The fields of the outbound message `Lago_Customer`, and the Account's link to Lago.
pub const FLAGGED_UNSYNCED: &str = "SELECT Id, SystemModstamp, Name, Lago_Sync__c, \
Lago_Customer_Id__c, Lago_External_Customer_Id__c, Lago_Billing_Email__c, Lago_Currency__c, \
Lago_Tax_Identification_Number__c, BillingStreet, BillingCity, BillingState, \
BillingPostalCode, BillingCountry, Phone, Website FROM Account WHERE Lago_Sync__c = true \
AND (Lago_Sync_Status__c = null OR Lago_Sync_Status__c != 'synced') ORDER BY Id";

/// Time for one Account's push (a Lago call, store writes, a Salesforce call on failure).
const PER_ACCOUNT: Duration = Duration::from_secs(20);
/// Time for one page of the query.
const PER_PAGE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PushSummary {
    /// Flagged Accounts not synced, as the query counted them.
    pub found: u64,
    /// By outcome: synced, duplicate, skipped, queued, failed, …
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Accounts not pushed: failed or queued (`(Account id, error code)`), or neither
    /// pushed nor stored (`(Account id, outcome)`).
    pub not_pushed: Vec<(String, String)>,
}

impl PushSummary {
    pub fn pushed(&self) -> u64 {
        self.outcomes.get("synced").copied().unwrap_or(0)
    }

    /// Nothing is left failed or waiting.
    pub fn succeeded(&self) -> bool {
        self.not_pushed.is_empty()
    }
}

/// Pushes every flagged, unsynced Account, calling `progress` after each one.
pub async fn push_flagged<S: Store>(
    app: &App<S>,
    progress: &(dyn Fn(&PushSummary) + Sync),
) -> Result<PushSummary, SalesforceError> {
    let mut summary = PushSummary::default();
    let query_by = || Instant::now() + PER_PAGE;
    let mut page = app
        .salesforce
        .query(&app.secrets, FLAGGED_UNSYNCED, query_by())
        .await?;
    summary.found = page.total_size;
    loop {
        for record in &page.records {
            let fields = text_fields(record);
            let id = fields.get("Id").cloned().unwrap_or_default();
            let stamp = fields.get("SystemModstamp").cloned().unwrap_or_default();
            // The same Account unchanged since makes the same id: a rerun is a duplicate.
            let notification = format!("push-{id}-{stamp}");
            let outcome = app
                .push_account(&notification, &fields, Instant::now() + PER_ACCOUNT)
                .await;
            *summary.outcomes.entry(outcome.label()).or_default() += 1;
            let why = match &outcome {
                Outcome::Synced { .. } | Outcome::Duplicate | Outcome::Skipped(_) => None,
                Outcome::Failed { code, .. } | Outcome::Queued { code, .. } => Some(code.clone()),
                // Neither pushed nor stored (the table unavailable, the Account being pushed
                // by a delivery right now): the next run pushes it.
                other => Some(other.label().to_owned()),
            };
            summary.not_pushed.extend(why.map(|why| (id, why)));
            progress(&summary);
        }
        let Some(next) = page.next_records_url.take() else {
            return Ok(summary);
        };
        page = app
            .salesforce
            .query_more(&app.secrets, &next, query_by())
            .await?;
    }
}

/// A query record's values as an outbound message sends them: text, `true`/`false`,
/// and no null.
fn text_fields(record: &Value) -> BTreeMap<String, String> {
    let Value::Object(fields) = record else {
        return BTreeMap::new();
    };
    fields
        .iter()
        .filter(|(name, _)| *name != "attributes")
        .filter_map(|(name, value)| {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((name.clone(), text))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn query_records_read_as_outbound_fields() {
        let record = json!({
            "attributes": { "type": "Account", "url": "/services/data/v62.0/sobjects/Account/001" },
            "Id": "001000000000001AAA", "Lago_Sync__c": true, "Phone": null, "Name": "Acme",
        });
        let fields = text_fields(&record);
        assert_eq!(
            fields.into_iter().collect::<Vec<_>>(),
            [
                ("Id".to_owned(), "001000000000001AAA".to_owned()),
                ("Lago_Sync__c".to_owned(), "true".to_owned()),
                ("Name".to_owned(), "Acme".to_owned()),
            ]
        );
    }
}
