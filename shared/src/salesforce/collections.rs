//! sObject Collections (salesforce-rest.md §3), for the backfill: up to 200 records per
//! request and one API call each. `allOrNone` is false, so one refused record never
//! holds back the others; each gets its own result, in request order, with `statusCode`.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Map, Value};
use tracing::{info, warn};

use super::session::AccessToken;
use super::{SalesforceClient, SalesforceError};
use crate::mapping::{SalesforceWrite, Target, LAGO_ID_FIELD};
use crate::secrets::SecretCache;

/// Salesforce's limit for one sObject Collections request.
pub const MAX_COLLECTION: usize = 200;
/// 200 records with triggers and flows take far longer than one; still bounded.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// One record's outcome: `Ok(created)`, `created` being `None` for an Account update.
pub type RecordResult = Result<Option<bool>, SalesforceError>;

/// An Account update in a collection: the Account's id and the Lago fields.
pub type AccountUpdate<'a> = (&'a str, &'a Map<String, Value>);

impl SalesforceClient {
    /// Writes up to [`MAX_COLLECTION`] records of one kind in one call: Account updates
    /// (`PATCH composite/sobjects`) or upserts of one custom object by `Lago_Id__c`
    /// (`PATCH composite/sobjects/{Object}/Lago_Id__c`). With `with_references`, each
    /// record's [`crate::mapping::Reference`] is set too. An `Err` means the whole request
    /// failed; record-level refusals are in the returned list.
    pub async fn write_collection(
        &self,
        secrets: &SecretCache,
        writes: &[&SalesforceWrite],
        with_references: bool,
        deadline: Instant,
    ) -> Result<Vec<RecordResult>, SalesforceError> {
        let Some(first) = writes.first() else {
            return Ok(Vec::new());
        };
        let url = match &first.target {
            Target::Account { .. } => format!("{}/composite/sobjects", self.data_url()),
            Target::Upsert { object, .. } => format!(
                "{}/composite/sobjects/{object}/{LAGO_ID_FIELD}",
                self.data_url()
            ),
            Target::UpsertBy { object, field, .. } => {
                format!("{}/composite/sobjects/{object}/{field}", self.data_url())
            }
        };
        let records = writes
            .iter()
            .map(|w| collection_record(w, &first.target, with_references))
            .collect::<Result<Vec<_>, _>>()?;
        let body = json!({ "allOrNone": false, "records": records });
        let answer = self
            .call(secrets, Method::PATCH, &url, Some(&body), deadline)
            .await?;
        parse_results(&answer, writes.len())
    }

    /// One REST request with the kept token, renewed once when the session has expired;
    /// the body of a 2xx answer, else Salesforce's error.
    pub(super) async fn call(
        &self,
        secrets: &SecretCache,
        method: Method,
        url: &str,
        body: Option<&Value>,
        deadline: Instant,
    ) -> Result<Vec<u8>, SalesforceError> {
        let token = self.token(secrets, deadline).await?;
        match self.send_once(&method, url, body, &token, deadline).await {
            Err(e) if e.is_session_expired() => {
                info!("Salesforce session expired; requesting a new token");
                self.invalidate(&token).await;
                let token = self.token(secrets, deadline).await?;
                self.send_once(&method, url, body, &token, deadline).await
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        url: &str,
        body: Option<&Value>,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<Vec<u8>, SalesforceError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(SalesforceError::new(
                None,
                "TIMEOUT",
                "no time left before the deadline",
            ));
        }
        self.count_call();
        let mut request = self
            .http()
            .request(method.clone(), url)
            .bearer_auth(token.bearer())
            .timeout(left.min(BATCH_TIMEOUT));
        if let Some(body) = body {
            request = request.json(body);
        }
        let (status, bytes) = super::client::exchange(request).await?;
        if (200..300).contains(&status) {
            return Ok(bytes);
        }
        let error = SalesforceError::from_response(status, &bytes);
        warn!(status, code = %error.code, class = ?error.class, "Salesforce refused the request");
        Err(error)
    }
}

/// A record as a collection carries it: `attributes.type`, and the Account's `id` or the
/// external id; a collection holds one kind of target only.
fn collection_record(
    write: &SalesforceWrite,
    kind: &Target,
    with_references: bool,
) -> Result<Value, SalesforceError> {
    let mut record = Map::new();
    match (&write.target, kind) {
        (Target::Account { id }, Target::Account { .. }) => {
            record.insert("attributes".into(), json!({ "type": "Account" }));
            record.insert("id".into(), json!(id));
        }
        (Target::Upsert { object, lago_id }, Target::Upsert { object: first, .. })
            if object == first =>
        {
            record.insert("attributes".into(), json!({ "type": object }));
            record.insert(LAGO_ID_FIELD.into(), json!(lago_id));
        }
        (
            Target::UpsertBy {
                object,
                field,
                value,
            },
            Target::UpsertBy {
                object: first,
                field: first_field,
                ..
            },
        ) if object == first && field == first_field => {
            record.insert("attributes".into(), json!({ "type": object }));
            record.insert((*field).into(), json!(value));
        }
        _ => {
            return Err(SalesforceError::new(
                None,
                "MIXED_COLLECTION",
                "a collection holds records of one object only",
            ))
        }
    }
    record.extend(write.fields.clone());
    if let (true, Some(reference)) = (with_references, &write.reference) {
        record.insert(
            reference.relationship.to_owned(),
            json!({ reference.parent_field: reference.value }),
        );
    }
    Ok(Value::Object(record))
}

/// `[{"id","success","created","errors":[{"statusCode","message","fields"}]}]`.
pub(super) fn parse_results(
    body: &[u8],
    expected: usize,
) -> Result<Vec<RecordResult>, SalesforceError> {
    let malformed = || {
        SalesforceError::new(
            None,
            "MALFORMED_RESPONSE",
            format!("expected {expected} record results from sObject Collections"),
        )
    };
    let items: Vec<Value> = serde_json::from_slice(body).map_err(|_| malformed())?;
    if items.len() != expected {
        return Err(malformed());
    }
    Ok(items
        .iter()
        .map(|item| {
            if item.get("success").and_then(Value::as_bool) == Some(true) {
                return Ok(item.get("created").and_then(Value::as_bool));
            }
            let first = item.get("errors").and_then(|e| e.get(0));
            let text = |key: &str| {
                first
                    .and_then(|e| e.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let code = Some(text("statusCode"))
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| text("errorCode"));
            Err(SalesforceError::new(None, code, text("message")))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::Class;

    #[test]
    fn each_record_gets_its_result() {
        let body = br#"[
            {"id":"a01","success":true,"errors":[],"created":true},
            {"success":false,"errors":[{"statusCode":"UNABLE_TO_LOCK_ROW","message":"locked","fields":[]}]},
            {"success":false,"errors":[{"statusCode":"INVALID_FIELD","message":"Foreign key external ID: x not found for field Lago_Id__c in entity Lago_Invoice__c","fields":[]}]},
            {"id":"001","success":true,"errors":[]}
        ]"#;
        let results = parse_results(body, 4).unwrap();
        assert_eq!(results[0], Ok(Some(true)));
        let locked = results[1].as_ref().unwrap_err();
        assert_eq!(
            (locked.code.as_str(), locked.class),
            ("UNABLE_TO_LOCK_ROW", Class::Transient)
        );
        assert!(results[2].as_ref().unwrap_err().is_missing_parent());
        assert_eq!(results[3], Ok(None));
        assert!(parse_results(body, 3).is_err());
    }
}
