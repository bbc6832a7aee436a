//! Everything the stand-in remembers between requests.

use std::collections::{BTreeMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{macros::format_description, OffsetDateTime};

use super::{
    fault::{Fault, FaultAction},
    ids,
    metadata::{FieldDef, FieldType, ObjectDef},
    query::Cursor,
    validate::ValidationRule,
};

/// A stored record: `Id`, `SystemModstamp` and the fields written so far, under their
/// canonical API names. A field written as JSON null is kept as null, so tests can see it
/// was cleared.
pub(crate) type Record = Map<String, Value>;

/// The one field the store itself sets on every write.
pub(crate) const SYSTEM_MODSTAMP: &str = "SystemModstamp";

/// A field as a read sees it: unset is null, except a checkbox, which is never null.
pub(crate) fn field_value(record: &Record, field: &FieldDef) -> Value {
    match record.get(&field.name) {
        Some(value) if !value.is_null() => value.clone(),
        _ if field.field_type == FieldType::Checkbox => Value::Bool(false),
        _ => Value::Null,
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub token_requests: u64,
    /// Requests under `/services/data/`, whatever their outcome; this is also the
    /// `used` figure of `Sforce-Limit-Info`.
    pub rest_requests: u64,
    /// The same, by the sObject named in the path (or, for `composite/sobjects`, in
    /// the first record's `attributes.type`); a Composite counts under the sObject of
    /// its first subrequest.
    pub rest_requests_by_object: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedRequest {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The parsed JSON body; null when empty, the raw text when it is not JSON.
    pub body: Value,
}

/// Records by object name, in insertion order, and the query cursors still open.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    records: BTreeMap<String, Vec<Record>>,
    issued_ids: u64,
    /// The latest `SystemModstamp` given, in ms since the epoch.
    last_modstamp_ms: i128,
    /// The open query cursors, by query locator.
    pub cursors: BTreeMap<String, Cursor>,
}

impl Store {
    pub fn records(&self, object: &str) -> &[Record] {
        self.records.get(object).map_or(&[], Vec::as_slice)
    }

    pub fn all(&self) -> &BTreeMap<String, Vec<Record>> {
        &self.records
    }

    pub fn find_by_id(&self, object: &str, id: &str) -> Option<&Record> {
        self.records(object)
            .iter()
            .find(|r| ids::same(record_id(r), id))
    }

    /// Ids of the records whose `field` holds `value` (external-id matching rules).
    pub fn ids_by_field(&self, object: &str, field: &FieldDef, value: &str) -> Vec<String> {
        self.records(object)
            .iter()
            .filter(|r| matches!(r.get(&field.name), Some(Value::String(s)) if field.value_matches(s, value)))
            .map(|r| record_id(r).to_owned())
            .collect()
    }

    pub fn insert(&mut self, object: &ObjectDef, mut fields: Record) -> String {
        self.issued_ids += 1;
        let id = ids::to_18(&format!("{}{:012}", object.key_prefix, self.issued_ids));
        fields.insert("Id".into(), Value::String(id.clone()));
        fields.insert(SYSTEM_MODSTAMP.into(), self.next_modstamp());
        self.records
            .entry(object.name.clone())
            .or_default()
            .push(fields);
        id
    }

    /// Merges `fields` into an existing record; returns false when there is none.
    pub fn update(&mut self, object: &str, id: &str, fields: Record) -> bool {
        let modstamp = self.next_modstamp();
        let record = self
            .records
            .get_mut(object)
            .and_then(|records| records.iter_mut().find(|r| ids::same(record_id(r), id)));
        match record {
            Some(record) => {
                record.extend(fields);
                record.insert(SYSTEM_MODSTAMP.into(), modstamp);
                true
            }
            None => false,
        }
    }

    /// Adds a record under a given id (seeded Accounts); a no-op when it exists.
    pub fn seed(&mut self, object: &str, id: &str, fields: Record) {
        if self.find_by_id(object, id).is_none() {
            let mut record = Record::from_iter([
                ("Id".to_owned(), Value::String(ids::to_18(id))),
                (SYSTEM_MODSTAMP.to_owned(), self.next_modstamp()),
            ]);
            record.extend(fields);
            self.records
                .entry(object.to_owned())
                .or_default()
                .push(record);
        }
    }

    /// Salesforce's format (`2026-12-02T07:30:00.000+0000`), now, but always later than
    /// the previous one, so that records written in a row can be ordered by it.
    fn next_modstamp(&mut self) -> Value {
        let now_ms = OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        self.last_modstamp_ms = now_ms.max(self.last_modstamp_ms + 1);
        let at = OffsetDateTime::from_unix_timestamp_nanos(self.last_modstamp_ms * 1_000_000)
            .expect("a time near now");
        let format = format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000"
        );
        Value::String(at.format(&format).expect("every component is known"))
    }
}

fn record_id(record: &Record) -> &str {
    record.get("Id").and_then(Value::as_str).unwrap_or_default()
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub store: Store,
    pub tokens: HashSet<String>,
    pub stats: Stats,
    pub log: Vec<LoggedRequest>,
    pub faults: VecDeque<Fault>,
    /// The consumer secret the token endpoint accepts; a test can rotate it.
    pub client_secret: String,
    pub validation_rules: Vec<ValidationRule>,
}

impl State {
    /// Counts and logs one REST request; returns the new usage count and the fault
    /// scripted for it, if any.
    pub fn record_rest_call(
        &mut self,
        request: LoggedRequest,
        object: Option<String>,
    ) -> (u64, Option<FaultAction>) {
        self.stats.rest_requests += 1;
        if let Some(object) = object {
            *self
                .stats
                .rest_requests_by_object
                .entry(object)
                .or_default() += 1;
        }
        let fault = self.take_fault(&request.path);
        self.log.push(request);
        (self.stats.rest_requests, fault)
    }

    fn take_fault(&mut self, path: &str) -> Option<FaultAction> {
        let index = self.faults.iter().position(|f| f.matches(path))?;
        let fault = &mut self.faults[index];
        let action = fault.action.clone();
        if fault.times > 1 {
            fault.times -= 1;
        } else {
            self.faults.remove(index);
        }
        Some(action)
    }
}
