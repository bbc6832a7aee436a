//! The Composite resource (salesforce-to-lago.md §1), for a record with its details (an
//! invoice and its line items): the record's upsert and up to five sObject Collections of
//! details run as one transaction and count as ONE call toward the org's API limits.

use std::time::Instant;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::collections::{parse_results, RecordResult, MAX_COLLECTION};
use super::{SalesforceClient, SalesforceError, WriteReport};
use crate::mapping::{Detail, Details, SalesforceWrite, LAGO_ID_FIELD};
use crate::secrets::SecretCache;

/// Subrequests of one composite call that may be sObject Collections (or queries).
const COLLECTIONS_PER_CALL: usize = 5;
/// Details one call carries: five collections of 200.
pub const DETAILS_PER_CALL: usize = COLLECTIONS_PER_CALL * MAX_COLLECTION;
/// The master's subrequest; its details point at `@{master.id}`.
const MASTER_REF: &str = "master";
/// What the other subrequests of a rolled-back composite answer: consequences, not causes.
const CONSEQUENCES: &[&str] = &["PROCESSING_HALTED", "ALL_OR_NONE_OPERATION_ROLLED_BACK"];

impl SalesforceClient {
    /// Upserts `write` and its details. The first call carries the record and up to
    /// [`DETAILS_PER_CALL`] details, all or none: a refused line item leaves the invoice
    /// as it was, so the event is retried or stored whole. Each further
    /// [`DETAILS_PER_CALL`] details take one more call, pointed at the id the first answered.
    pub(super) async fn write_with_details(
        &self,
        secrets: &SecretCache,
        write: &SalesforceWrite,
        details: &Details,
        deadline: Instant,
    ) -> Result<WriteReport, SalesforceError> {
        let mut chunks = details.records.chunks(DETAILS_PER_CALL);
        let mut requests = vec![json!({
            "method": "PATCH",
            "url": format!("{}{}", self.data_path(), self.record_path(&write.target)),
            "referenceId": MASTER_REF,
            "body": write.fields,
        })];
        let master_id = Value::String(format!("@{{{MASTER_REF}.id}}"));
        let first = chunks.next().unwrap_or_default();
        requests.extend(self.detail_requests(details, first, &master_id));
        let results = self.composite(secrets, &requests, deadline, true).await?;
        check(&results, details, first)?;
        let master = &results[0];
        let created = master.body.get("created").and_then(Value::as_bool);
        let id = master
            .body
            .get("id")
            .cloned()
            .ok_or_else(|| malformed("the record's upsert answered no id"))?;
        for chunk in chunks {
            let requests = self.detail_requests(details, chunk, &id);
            let results = self.composite(secrets, &requests, deadline, true).await?;
            check(&results, details, chunk)?;
        }
        Ok(WriteReport {
            created,
            reference_dropped: false,
        })
    }

    /// Upserts of up to [`DETAILS_PER_CALL`] details by `Lago_Id__c`, 200 per collection,
    /// all or none, with the master field set to `master` (its id or a reference to it).
    fn detail_requests(&self, details: &Details, records: &[Detail], master: &Value) -> Vec<Value> {
        let records: Vec<Value> = records
            .iter()
            .map(|detail| detail_record(details, detail, details.master_field, master.clone()))
            .collect();
        self.collection_requests(details.object, records, true)
    }

    /// sObject Collections upserts of `records` (of `object`) by `Lago_Id__c`, 200 each,
    /// named `details0`, `details1`, ….
    fn collection_requests(
        &self,
        object: &str,
        records: Vec<Value>,
        all_or_none: bool,
    ) -> Vec<Value> {
        let url = format!(
            "{}/composite/sobjects/{object}/{LAGO_ID_FIELD}",
            self.data_path()
        );
        records
            .chunks(MAX_COLLECTION)
            .enumerate()
            .map(|(at, chunk)| {
                json!({
                    "method": "PATCH",
                    "url": url,
                    "referenceId": format!("details{at}"),
                    "body": { "allOrNone": all_or_none, "records": chunk },
                })
            })
            .collect()
    }

    /// For the backfill: upserts details of masters already in Salesforce, each naming
    /// its master by `Lago_Id__c`, [`DETAILS_PER_CALL`] per call. Not all or none: each
    /// detail gets its own result, in order, an error naming the detail. An `Err` means a
    /// whole call failed.
    pub async fn write_details(
        &self,
        secrets: &SecretCache,
        details: &[DetailOf<'_>],
        deadline: Instant,
    ) -> Result<Vec<RecordResult>, SalesforceError> {
        let mut results = Vec::with_capacity(details.len());
        for call in details.chunks(DETAILS_PER_CALL) {
            let records: Vec<Value> = call
                .iter()
                .map(|d| {
                    let master = json!({ LAGO_ID_FIELD: d.master_lago_id });
                    detail_record(d.details, d.detail, d.details.master_relationship, master)
                })
                .collect();
            let requests = self.collection_requests(call[0].details.object, records, false);
            let answers = self.composite(secrets, &requests, deadline, false).await?;
            for (answer, chunk) in answers.iter().zip(call.chunks(MAX_COLLECTION)) {
                let outcomes = collection_results(answer, chunk.len()).into_iter();
                results.extend(outcomes.zip(chunk).map(|(outcome, d)| {
                    outcome.map_err(|e| named(e, d.details.object, &d.detail.lago_id))
                }));
            }
        }
        Ok(results)
    }

    async fn composite(
        &self,
        secrets: &SecretCache,
        requests: &[Value],
        deadline: Instant,
        all_or_none: bool,
    ) -> Result<Vec<Subresult>, SalesforceError> {
        let url = format!("{}/composite", self.data_url());
        let body = json!({ "allOrNone": all_or_none, "compositeRequest": requests });
        let answer = self
            .call(secrets, Method::POST, &url, Some(&body), deadline)
            .await?;
        results_of(&answer, requests.len())
    }
}

/// The subrequests' results, one per request sent.
fn results_of(answer: &[u8], sent: usize) -> Result<Vec<Subresult>, SalesforceError> {
    let parsed: Answer = serde_json::from_slice(answer)
        .map_err(|_| malformed("the Composite answer is not compositeResponse"))?;
    let results = parsed.composite_response;
    if results.len() == sent {
        return Ok(results);
    }
    // A request refused as a whole (over a limit) comes back as one result without a
    // referenceId.
    let refused = results.iter().find(|r| r.http_status_code >= 400);
    Err(refused.map_or_else(
        || malformed("the Composite answer lacks subrequest results"),
        |r| SalesforceError::from_response(r.http_status_code, r.body.to_string().as_bytes()),
    ))
}

/// A detail and the master it belongs to, named by the master's `Lago_Id__c`.
pub struct DetailOf<'a> {
    pub details: &'a Details,
    pub master_lago_id: &'a str,
    pub detail: &'a Detail,
}

/// A detail as a collection carries it, with `master_key` (the master field or its
/// relationship) set to `master`.
fn detail_record(details: &Details, detail: &Detail, master_key: &str, master: Value) -> Value {
    let mut record = Map::new();
    record.insert("attributes".into(), json!({ "type": details.object }));
    record.insert(LAGO_ID_FIELD.into(), json!(detail.lago_id));
    record.insert(master_key.into(), master);
    record.extend(detail.fields.clone());
    Value::Object(record)
}

/// Each record's result of a collection subrequest; a refused subrequest refuses them all.
fn collection_results(answer: &Subresult, records: usize) -> Vec<RecordResult> {
    let body = serde_json::to_vec(&answer.body).unwrap_or_default();
    if answer.http_status_code >= 400 {
        let error = SalesforceError::from_response(answer.http_status_code, &body);
        return vec![Err(error); records];
    }
    parse_results(&body, records).unwrap_or_else(|e| vec![Err(e); records])
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    composite_response: Vec<Subresult>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subresult {
    #[serde(default)]
    body: Value,
    http_status_code: u16,
    #[serde(default)]
    reference_id: Option<String>,
}

/// The error that made Salesforce roll the call back, if any, naming the line item it
/// came from.
fn check(
    results: &[Subresult],
    details: &Details,
    records: &[Detail],
) -> Result<(), SalesforceError> {
    let errors = results
        .iter()
        .flat_map(|result| subresult_errors(result, details, records));
    cause(errors).map_or(Ok(()), Err)
}

/// The cause among `errors`: the first that is not only the report of a rollback (the
/// other subrequests of a rolled-back call answer one), else that report.
fn cause(errors: impl IntoIterator<Item = SalesforceError>) -> Option<SalesforceError> {
    let mut consequence = None;
    for e in errors {
        if !CONSEQUENCES.contains(&e.code.as_str()) {
            return Some(e);
        }
        consequence.get_or_insert(e);
    }
    consequence
}

/// What one subrequest reports: its own error, or its line items', each named.
fn subresult_errors(
    result: &Subresult,
    details: &Details,
    records: &[Detail],
) -> Vec<SalesforceError> {
    let chunk = result
        .reference_id
        .as_deref()
        .and_then(|id| id.strip_prefix("details"))
        .and_then(|at| at.parse::<usize>().ok())
        .and_then(|at| records.chunks(MAX_COLLECTION).nth(at));
    let Some(chunk) = chunk else {
        let body = serde_json::to_vec(&result.body).unwrap_or_default();
        return (result.http_status_code >= 400)
            .then(|| SalesforceError::from_response(result.http_status_code, &body))
            .into_iter()
            .collect();
    };
    chunk
        .iter()
        .zip(collection_results(result, chunk.len()))
        .filter_map(|(detail, outcome)| {
            outcome
                .err()
                .map(|e| named(e, details.object, &detail.lago_id))
        })
        .collect()
}

/// `e` as the error of the detail `lago_id` of `object`.
fn named(e: SalesforceError, object: &str, lago_id: &str) -> SalesforceError {
    SalesforceError {
        message: format!("{object} {lago_id}: {}", e.message),
        ..e
    }
}

fn malformed(message: &str) -> SalesforceError {
    SalesforceError::new(None, "MALFORMED_RESPONSE", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::Class;

    fn details(ids: &[&str]) -> Details {
        Details {
            object: "Lago_Invoice_Line_Item__c",
            master_field: "Invoice__c",
            master_relationship: "Invoice__r",
            records: ids
                .iter()
                .map(|id| Detail {
                    lago_id: (*id).to_owned(),
                    fields: Map::new(),
                })
                .collect(),
        }
    }

    fn results(answer: Value) -> Vec<Subresult> {
        serde_json::from_value::<Answer>(answer)
            .unwrap()
            .composite_response
    }

    const HALTED: &str =
        "The transaction was rolled back since another operation in the same transaction failed.";

    #[test]
    fn the_cause_of_a_rollback_is_reported_not_its_consequences() {
        let d = details(&["fee-1", "fee-2"]);
        // The refusal inside the collection's per-record results (HTTP 200) ...
        let in_records = results(json!({ "compositeResponse": [
            { "body": [{ "errorCode": "PROCESSING_HALTED", "message": HALTED }], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "master" },
            { "body": [
                { "success": false, "errors": [{ "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "rolled back", "fields": [] }] },
                { "success": false, "errors": [{ "statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access", "fields": [] }] }
              ], "httpHeaders": {}, "httpStatusCode": 200, "referenceId": "details0" }
        ]}));
        let e = check(&in_records, &d, &d.records).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.class),
            ("UNABLE_TO_LOCK_ROW", Class::Transient)
        );
        assert!(
            e.message.starts_with("Lago_Invoice_Line_Item__c fee-2: "),
            "{}",
            e.message
        );
        // ... or as the collection's own error answer.
        let as_answer = results(json!({ "compositeResponse": [
            { "body": [{ "errorCode": "PROCESSING_HALTED", "message": HALTED }], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "master" },
            { "body": [{ "errorCode": "INVALID_FIELD", "message": "No such column 'Units__c'", "fields": [] }], "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "details0" }
        ]}));
        let e = check(&as_answer, &d, &d.records).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.class),
            ("INVALID_FIELD", Class::Permanent)
        );
        // Only consequences reported: still an error, never a success.
        let halted = results(json!({ "compositeResponse": [
            { "body": [{ "errorCode": "PROCESSING_HALTED", "message": HALTED }], "httpStatusCode": 400, "referenceId": "master" }
        ]}));
        assert_eq!(
            check(&halted, &d, &d.records).unwrap_err().code,
            "PROCESSING_HALTED"
        );
    }

    #[test]
    fn a_request_refused_as_a_whole_names_the_limit() {
        let answer = br#"{"compositeResponse":[{"body":[{"errorCode":"LIMIT_EXCEEDED","message":"The request can't contain more than 25 operations."}],"httpHeaders":{},"httpStatusCode":400,"referenceId":null}]}"#;
        let e = results_of(answer, 26).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.class),
            ("LIMIT_EXCEEDED", Class::Permanent)
        );
        assert_eq!(
            results_of(br#"{"compositeResponse":[]}"#, 2)
                .unwrap_err()
                .code,
            "MALFORMED_RESPONSE"
        );
        assert_eq!(
            results_of(b"<html>", 2).unwrap_err().code,
            "MALFORMED_RESPONSE"
        );
    }

    #[test]
    fn a_written_call_passes() {
        let d = details(&["fee-1"]);
        let written = results(json!({ "compositeResponse": [
            { "body": { "id": "a01000000000001AAA", "success": true, "errors": [], "created": true }, "httpHeaders": { "Location": "/x" }, "httpStatusCode": 201, "referenceId": "master" },
            { "body": [{ "id": "a02000000000001AAA", "success": true, "errors": [], "created": true }], "httpHeaders": {}, "httpStatusCode": 200, "referenceId": "details0" }
        ]}));
        assert!(check(&written, &d, &d.records).is_ok());
    }
}
