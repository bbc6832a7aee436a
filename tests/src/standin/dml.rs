//! Record writes shared by the single-record resources and sObject Collections.

use axum::http::StatusCode;
use serde_json::{json, Value};

use super::{
    error::SfError,
    ids,
    metadata::{FieldDef, ObjectDef},
    server::Org,
    state::{Record, Store},
    validate::{check_required, check_rules, check_value, resolve_fields, scalar_text},
};

/// A successful write; `created` is only reported by upserts.
pub(crate) struct Saved {
    pub id: String,
    pub created: Option<bool>,
}

pub(crate) fn upsert(
    org: &Org,
    store: &mut Store,
    object: &ObjectDef,
    key: &FieldDef,
    key_value: &str,
    body: &Record,
) -> Result<Saved, SfError> {
    if let Some(in_body) = body
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(&key.name))
        .map(|(_, v)| v)
    {
        if !scalar_text(in_body).is_some_and(|v| key.value_matches(&v, key_value)) {
            return Err(SfError::dml(
                "INVALID_FIELD",
                format!("The {} value in the body ({in_body}) differs from the one in the URL ({key_value})", key.name),
                &[&key.name],
            ));
        }
    }
    let key_value = Value::String(key_value.to_owned());
    check_value(store, key, &key_value)?;
    let mut fields = resolve_fields(org.schema, store, object, body)?;
    fields.insert(key.name.clone(), key_value.clone());
    match store
        .ids_by_field(&object.name, key, key_value.as_str().unwrap_or_default())
        .as_slice()
    {
        [] => {
            check_required(object, &fields, true)?;
            check_rules(org.rules, object, None, &fields)?;
            Ok(Saved {
                id: store.insert(object, fields),
                created: Some(true),
            })
        }
        [id] => {
            check_required(object, &fields, false)?;
            check_rules(
                org.rules,
                object,
                store.find_by_id(&object.name, id),
                &fields,
            )?;
            store.update(&object.name, id, fields);
            Ok(Saved {
                id: id.clone(),
                created: Some(false),
            })
        }
        several => Err(SfError {
            // Only possible with a non-unique external id (Account's Lago_Customer_Id__c).
            status: StatusCode::MULTIPLE_CHOICES,
            ..SfError::dml(
                "DUPLICATE_EXTERNAL_ID",
                format!(
                    "{}: more than one record found for external id field: {several:?}",
                    key.label
                ),
                &[&key.name],
            )
        }),
    }
}

pub(crate) fn update(
    org: &Org,
    store: &mut Store,
    object: &ObjectDef,
    id: &str,
    body: &Record,
) -> Result<Saved, SfError> {
    if !ids::is_well_formed(id) {
        let message = format!("{} ID: id value of incorrect type: {id}", object.name);
        return Err(SfError::dml("MALFORMED_ID", message, &["Id"]));
    }
    let Some(existing) = store.find_by_id(&object.name, id) else {
        return Err(SfError::not_found());
    };
    let id = existing["Id"].as_str().unwrap_or(id).to_owned();
    let fields = resolve_fields(org.schema, store, object, body)?;
    check_required(object, &fields, false)?;
    check_rules(org.rules, object, Some(existing), &fields)?;
    store.update(&object.name, &id, fields);
    Ok(Saved { id, created: None })
}

/// One element of a sObject Collections answer (SaveResult / UpsertResult).
pub(crate) fn result_json(result: &Result<Saved, SfError>, rolled_back: bool) -> Value {
    match result {
        Ok(_) if rolled_back => json!({
            "success": false,
            "errors": [{
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }],
        }),
        Ok(saved) => {
            let mut body = json!({ "id": saved.id, "success": true, "errors": [] });
            if let Some(created) = saved.created {
                body["created"] = json!(created);
            }
            body
        }
        Err(error) => json!({ "success": false, "errors": [error.collection_error()] }),
    }
}
