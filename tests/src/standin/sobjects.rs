//! The REST resources the project uses: sObject update by Id, upsert by external id,
//! the matching reads, and sObject Collections update/upsert (routed by `rest::dispatch`).

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{
    dml::{self, result_json, Saved},
    error::SfError,
    gate::PREFIX,
    metadata::{FieldDef, ObjectDef},
    rest::Reply,
    server::Org,
    state::{field_value, Record, Store},
    validate::{cannot_deserialize, scalar_text},
};

/// Salesforce's limit for one sObject Collections request.
const MAX_COLLECTION: usize = 200;

pub(crate) fn update_by_id(
    org: &Org,
    store: &mut Store,
    object: &str,
    id: &str,
    body: &Value,
) -> Result<Reply, SfError> {
    let object = org.object(object)?;
    dml::update(org, store, object, id, as_record(body)?)?;
    Ok(Reply::json(StatusCode::NO_CONTENT, Value::Null))
}

pub(crate) fn upsert(
    org: &Org,
    store: &mut Store,
    version: &str,
    object: &str,
    field: &str,
    value: &str,
    body: &Value,
) -> Result<Reply, SfError> {
    let (object, key) = upsert_target(org, object, field)?;
    let saved = dml::upsert(org, store, object, key, value, as_record(body)?)?;
    let created = saved.created == Some(true);
    let location = created.then(|| record_url(version, object, &saved.id));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(Reply {
        location,
        ..Reply::json(status, result_json(&Ok(saved), false))
    })
}

pub(crate) fn get_by_id(
    org: &Org,
    store: &Store,
    version: &str,
    object: &str,
    id: &str,
) -> Result<Reply, SfError> {
    let object = org.object(object)?;
    let record = store
        .find_by_id(&object.name, id)
        .ok_or_else(SfError::not_found)?;
    Ok(Reply::json(
        StatusCode::OK,
        record_json(version, object, record, object.all_fields()),
    ))
}

pub(crate) fn get_by_external_id(
    org: &Org,
    store: &Store,
    version: &str,
    object: &str,
    field: &str,
    value: &str,
) -> Result<Reply, SfError> {
    let (object, key) = upsert_target(org, object, field)?;
    match store.ids_by_field(&object.name, key, value).as_slice() {
        [id] => get_by_id(org, store, version, &object.name, id),
        _ => Err(SfError::not_found()),
    }
}

pub(crate) fn record_url(version: &str, object: &ObjectDef, id: &str) -> String {
    format!("{PREFIX}/{version}/sobjects/{}/{id}", object.name)
}

/// A record as the REST API returns it: `attributes`, then `fields` as a read sees them
/// (a query's select list, or every field).
pub(crate) fn record_json<'f>(
    version: &str,
    object: &ObjectDef,
    record: &Record,
    fields: impl IntoIterator<Item = &'f FieldDef>,
) -> Value {
    let id = record["Id"].as_str().unwrap_or_default();
    let mut out = Record::new();
    out.insert(
        "attributes".into(),
        json!({ "type": object.name, "url": record_url(version, object, id) }),
    );
    for field in fields {
        out.insert(field.name.clone(), field_value(record, field));
    }
    Value::Object(out)
}

pub(crate) fn collection_upsert(
    org: &Org,
    store: &mut Store,
    object: &str,
    field: &str,
    body: &Value,
    all_or_none: bool,
) -> Result<Reply, SfError> {
    let (object, key) = upsert_target(org, object, field)?;
    let (own_all_or_none, records) = parse_collection(body)?;
    if let Some(other) = records
        .iter()
        .map(record_type)
        .find(|t| !t.eq_ignore_ascii_case(&object.name))
    {
        return Err(SfError::dml(
            "INVALID_TYPE",
            format!("The list can contain objects only of the type indicated in the request URI ({}); found {other}", object.name),
            &[],
        ));
    }
    let key_values: Vec<Option<String>> = records
        .iter()
        .map(|r| {
            r.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key.name))
                .and_then(|(_, v)| scalar_text(v))
        })
        .collect();
    let mut staged = store.clone();
    let results: Vec<Result<Saved, SfError>> = records
        .iter()
        .zip(&key_values)
        .map(|(record, value)| {
            let Some(value) = value else {
                return Err(SfError::dml(
                    "MISSING_ARGUMENT",
                    format!("{} not specified", key.name),
                    &[&key.name],
                ));
            };
            // Salesforce refuses every record of a request that shares a key with another.
            if key_values
                .iter()
                .flatten()
                .filter(|v| key.value_matches(v, value))
                .count()
                > 1
            {
                return Err(SfError::dml(
                    "DUPLICATE_VALUE",
                    format!("Duplicate external id specified: {value}"),
                    &[&key.name],
                ));
            }
            dml::upsert(org, &mut staged, object, key, value, record)
        })
        .collect();
    Ok(finish(
        store,
        staged,
        own_all_or_none || all_or_none,
        &results,
    ))
}

pub(crate) fn collection_update(
    org: &Org,
    store: &mut Store,
    body: &Value,
    all_or_none: bool,
) -> Result<Reply, SfError> {
    let (own_all_or_none, records) = parse_collection(body)?;
    let objects = records
        .iter()
        .map(|r| org.object(record_type(r)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut staged = store.clone();
    let results: Vec<Result<Saved, SfError>> = records
        .into_iter()
        .zip(objects)
        .map(|(mut record, object)| {
            let id = ["id", "Id"].iter().find_map(|k| record.remove(*k));
            let Some(id) = id.as_ref().and_then(Value::as_str) else {
                return Err(SfError::dml(
                    "MISSING_ARGUMENT",
                    "Id not specified in an update call",
                    &[],
                ));
            };
            dml::update(org, &mut staged, object, id, &record)
        })
        .collect();
    Ok(finish(
        store,
        staged,
        own_all_or_none || all_or_none,
        &results,
    ))
}

/// Commits the staged writes unless `allOrNone` and something failed.
fn finish(
    store: &mut Store,
    staged: Store,
    all_or_none: bool,
    results: &[Result<Saved, SfError>],
) -> Reply {
    let record_failed = results.iter().any(Result::is_err);
    let rolled_back = all_or_none && record_failed;
    if !rolled_back {
        *store = staged;
    }
    let results = results
        .iter()
        .map(|r| result_json(r, rolled_back))
        .collect();
    Reply {
        record_failed,
        ..Reply::json(StatusCode::OK, Value::Array(results))
    }
}

/// The object and the external id field named by an upsert URI.
fn upsert_target<'a>(
    org: &Org<'a>,
    object: &str,
    field: &str,
) -> Result<(&'a ObjectDef, &'a FieldDef), SfError> {
    let object = org.object(object)?;
    let key = object
        .field(field)
        .filter(|f| f.external_id)
        .ok_or_else(|| {
            SfError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("Provided external ID field does not exist or is not accessible: {field}"),
            )
        })?;
    Ok((object, key))
}

fn record_type(record: &Record) -> &str {
    record
        .get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn as_record(body: &Value) -> Result<&Record, SfError> {
    match body {
        Value::Object(record) => Ok(record),
        other => Err(cannot_deserialize(other, "SObject")),
    }
}

/// `{"allOrNone": bool, "records": [{"attributes": {"type": ...}, ...}]}`.
fn parse_collection(body: &Value) -> Result<(bool, Vec<Record>), SfError> {
    let body = as_record(body)?;
    let all_or_none = match body.get("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(other) => return Err(cannot_deserialize(other, "boolean")),
    };
    let records = match body.get("records") {
        Some(Value::Array(records)) => records,
        other => return Err(cannot_deserialize(other.unwrap_or(&Value::Null), "list")),
    };
    if records.len() > MAX_COLLECTION {
        return Err(SfError::dml(
            "EXCEEDED_ID_LIMIT",
            format!("record limit reached. cannot submit more than {MAX_COLLECTION} records into this call"),
            &[],
        ));
    }
    let records = records
        .iter()
        .map(|record| match record {
            Value::Object(record) if !record_type(record).is_empty() => Ok(record.clone()),
            Value::Object(_) => Err(SfError::dml(
                "INVALID_INPUT",
                "Each record of a sObject Collections request must carry attributes.type",
                &[],
            )),
            other => Err(cannot_deserialize(other, "SObject")),
        })
        .collect::<Result<_, _>>()?;
    Ok((all_or_none, records))
}
