//! The REST resources the project uses: sObject update by Id, upsert by external id,
//! the matching reads, and sObject Collections update/upsert.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, patch},
    Json, Router,
};
use serde_json::{json, Value};

use super::{
    dml::{self, result_json, Saved},
    error::SfError,
    gate::PREFIX,
    metadata::{FieldDef, ObjectDef},
    server::App,
    state::{Record, Store},
    validate::{cannot_deserialize, scalar_text},
};

/// Salesforce's limit for one sObject Collections request.
const MAX_COLLECTION: usize = 200;

/// Routes relative to [`PREFIX`]; the gate has already checked the version.
pub(crate) fn router() -> Router<App> {
    Router::new()
        .route(
            "/{version}/sobjects/{object}/{id}",
            get(get_by_id).patch(update_by_id),
        )
        .route(
            "/{version}/sobjects/{object}/{field}/{value}",
            get(get_by_external_id).patch(upsert),
        )
        .route("/{version}/composite/sobjects", patch(collection_update))
        .route(
            "/{version}/composite/sobjects/{object}/{field}",
            patch(collection_upsert),
        )
        .fallback(|| async { SfError::not_found() })
}

async fn update_by_id(
    State(app): State<App>,
    Path((_version, object, id)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<StatusCode, SfError> {
    let object = app.object(&object)?;
    let body = parse_record(&body)?;
    let mut state = app.lock();
    dml::update(&app.schema, &mut state.store, object, &id, &body)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn upsert(
    State(app): State<App>,
    Path((_version, object, field, value)): Path<(String, String, String, String)>,
    body: Bytes,
) -> Result<Response, SfError> {
    let (object, key) = upsert_target(&app, &object, &field)?;
    let body = parse_record(&body)?;
    let mut state = app.lock();
    let saved = dml::upsert(&app.schema, &mut state.store, object, key, &value, &body)?;
    let status = if saved.created == Some(true) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(result_json(&Ok(saved), false))).into_response())
}

async fn get_by_id(
    State(app): State<App>,
    Path((version, object, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, SfError> {
    let object = app.object(&object)?;
    let state = app.lock();
    let record = state
        .store
        .find_by_id(&object.name, &id)
        .ok_or_else(SfError::not_found)?;
    Ok(Json(full_record(&version, object, record)))
}

async fn get_by_external_id(
    State(app): State<App>,
    Path((version, object, field, value)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, SfError> {
    let (object, key) = upsert_target(&app, &object, &field)?;
    let state = app.lock();
    match state
        .store
        .ids_by_field(&object.name, key, &value)
        .as_slice()
    {
        [id] => {
            let record = state
                .store
                .find_by_id(&object.name, id)
                .expect("just found by field");
            Ok(Json(full_record(&version, object, record)))
        }
        _ => Err(SfError::not_found()),
    }
}

/// A record as the REST API returns it: `attributes`, then every field, unset ones null.
fn full_record(version: &str, object: &ObjectDef, record: &Record) -> Value {
    let id = record["Id"].as_str().unwrap_or_default();
    let mut out = Record::new();
    out.insert(
        "attributes".into(),
        json!({ "type": object.name, "url": format!("{PREFIX}/{version}/sobjects/{}/{id}", object.name) }),
    );
    out.insert("Id".into(), json!(id));
    for field in std::iter::once(&object.name_field).chain(&object.fields) {
        out.insert(
            field.name.clone(),
            record.get(&field.name).cloned().unwrap_or(Value::Null),
        );
    }
    Value::Object(out)
}

async fn collection_upsert(
    State(app): State<App>,
    Path((_version, object, field)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, SfError> {
    let (object, key) = upsert_target(&app, &object, &field)?;
    let (all_or_none, records) = parse_collection(&body)?;
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
    let mut state = app.lock();
    let mut staged = state.store.clone();
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
            dml::upsert(&app.schema, &mut staged, object, key, value, record)
        })
        .collect();
    Ok(Json(finish(
        &mut state.store,
        staged,
        all_or_none,
        &results,
    )))
}

async fn collection_update(
    State(app): State<App>,
    body: Bytes,
) -> Result<Json<Vec<Value>>, SfError> {
    let (all_or_none, records) = parse_collection(&body)?;
    let objects = records
        .iter()
        .map(|r| app.object(record_type(r)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut state = app.lock();
    let mut staged = state.store.clone();
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
            dml::update(&app.schema, &mut staged, object, id, &record)
        })
        .collect();
    Ok(Json(finish(
        &mut state.store,
        staged,
        all_or_none,
        &results,
    )))
}

/// Commits the staged writes unless `allOrNone` and something failed.
fn finish(
    store: &mut Store,
    staged: Store,
    all_or_none: bool,
    results: &[Result<Saved, SfError>],
) -> Vec<Value> {
    let rolled_back = all_or_none && results.iter().any(Result::is_err);
    if !rolled_back {
        *store = staged;
    }
    results
        .iter()
        .map(|r| result_json(r, rolled_back))
        .collect()
}

/// The object and the external id field named by an upsert URI.
fn upsert_target<'a>(
    app: &'a App,
    object: &str,
    field: &str,
) -> Result<(&'a ObjectDef, &'a FieldDef), SfError> {
    let object = app.object(object)?;
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

fn parse_json(bytes: &Bytes) -> Result<Value, SfError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SfError::json_parser(format!("Unexpected character or end of input: {e}")))
}

fn parse_record(bytes: &Bytes) -> Result<Record, SfError> {
    match parse_json(bytes)? {
        Value::Object(record) => Ok(record),
        other => Err(cannot_deserialize(&other, "SObject")),
    }
}

/// `{"allOrNone": bool, "records": [{"attributes": {"type": ...}, ...}]}`.
fn parse_collection(bytes: &Bytes) -> Result<(bool, Vec<Record>), SfError> {
    let mut body = parse_record(bytes)?;
    let all_or_none = match body.remove("allOrNone") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => flag,
        Some(other) => return Err(cannot_deserialize(&other, "boolean")),
    };
    let records = match body.remove("records") {
        Some(Value::Array(records)) => records,
        other => return Err(cannot_deserialize(&other.unwrap_or(Value::Null), "list")),
    };
    if records.len() > MAX_COLLECTION {
        return Err(SfError::dml(
            "EXCEEDED_ID_LIMIT",
            format!("record limit reached. cannot submit more than {MAX_COLLECTION} records into this call"),
            &[],
        ));
    }
    let records = records
        .into_iter()
        .map(|record| match record {
            Value::Object(record) if !record_type(&record).is_empty() => Ok(record),
            Value::Object(_) => Err(SfError::dml(
                "INVALID_INPUT",
                "Each record of a sObject Collections request must carry attributes.type",
                &[],
            )),
            other => Err(cannot_deserialize(&other, "SObject")),
        })
        .collect::<Result<_, _>>()?;
    Ok((all_or_none, records))
}
