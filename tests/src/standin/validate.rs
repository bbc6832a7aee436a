//! Field-level checks of a request body against the metadata, with the error codes and
//! messages the real org gives for each kind of mistake.

use serde::Deserialize;
use serde_json::Value;
use time::{
    format_description::well_known::{Iso8601, Rfc3339},
    macros::format_description,
    Date, OffsetDateTime,
};

use super::{
    error::SfError,
    ids,
    metadata::{FieldDef, FieldType, ObjectDef, Schema},
    state::{Record, Store},
};

/// Checks every field of `body` and resolves `X__r: {ExtId: value}` references,
/// returning the fields to store under their canonical names.
pub(crate) fn resolve_fields(
    schema: &Schema,
    store: &Store,
    object: &ObjectDef,
    body: &Record,
) -> Result<Record, SfError> {
    let mut fields = Record::new();
    for (key, value) in body {
        if key == "attributes" {
            continue;
        }
        if key.eq_ignore_ascii_case("Id") {
            return Err(SfError::id_in_body());
        }
        if let Some(relationship) = key.strip_suffix("__r") {
            let (field, id) = resolve_reference(schema, store, object, key, relationship, value)?;
            fields.insert(field.name.clone(), Value::String(id));
            continue;
        }
        let field = object
            .field(key)
            .ok_or_else(|| no_such_column(key, object))?;
        if !field.updateable {
            return Err(SfError::dml(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                format!("Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", field.name),
                &[&field.name],
            ));
        }
        check_value(store, field, value)?;
        fields.insert(field.name.clone(), value.clone());
    }
    Ok(fields)
}

/// `Name` and every master-detail field (a detail cannot exist without its master) are
/// required: each must be set on insert and can never be cleared.
pub(crate) fn check_required(
    object: &ObjectDef,
    fields: &Record,
    inserting: bool,
) -> Result<(), SfError> {
    let required = std::iter::once(&object.name_field).chain(
        object
            .fields
            .iter()
            .filter(|f| matches!(f.field_type, FieldType::MasterDetail { .. })),
    );
    let missing: Vec<&str> = required
        .map(|f| f.name.as_str())
        .filter(|name| match fields.get(*name) {
            None => inserting,
            Some(value) => value.is_null() || value == "",
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(SfError::dml(
        "REQUIRED_FIELD_MISSING",
        format!("Required fields are missing: [{}]", missing.join(", ")),
        &missing,
    ))
}

/// A customer's validation rule, reduced to what tests need to script a refusal: a
/// write that leaves `field` equal to `equals` fails with `message`.
#[derive(Debug, Deserialize)]
pub(crate) struct ValidationRule {
    pub object: String,
    pub field: String,
    pub equals: Value,
    pub message: String,
}

/// Validation rules see the record as it would be saved: the written fields over the
/// stored ones (`existing`, on update), an unset field being null.
pub(crate) fn check_rules(
    rules: &[ValidationRule],
    object: &ObjectDef,
    existing: Option<&Record>,
    fields: &Record,
) -> Result<(), SfError> {
    let saved = |field: &str| {
        fields
            .get(field)
            .or_else(|| existing.and_then(|r| r.get(field)))
            .unwrap_or(&Value::Null)
    };
    let broken = rules
        .iter()
        .find(|rule| rule.object == object.name && same_value(saved(&rule.field), &rule.equals));
    match broken {
        Some(rule) => Err(SfError::dml(
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            rule.message.clone(),
            &[],
        )),
        None => Ok(()),
    }
}

/// Numbers compare by value (`1` equals `1.0`), anything else as JSON.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn no_such_column(key: &str, object: &ObjectDef) -> SfError {
    SfError::dml(
        "INVALID_FIELD",
        format!("No such column '{key}' on sobject of type {}", object.name),
        &[],
    )
}

/// A string or number as the text Salesforce compares external ids with.
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn check_value(store: &Store, field: &FieldDef, value: &Value) -> Result<(), SfError> {
    if value.is_null() {
        return Ok(());
    }
    let label = &field.label;
    match &field.field_type {
        FieldType::Id => expect_string(value, "id").map(drop),
        FieldType::Text { length } | FieldType::LongTextArea { length } => {
            check_length(field, expect_string(value, "string")?, *length)
        }
        FieldType::Checkbox => match value {
            Value::Bool(_) => Ok(()),
            _ => Err(cannot_deserialize(value, "boolean")),
        },
        FieldType::Url => check_length(field, expect_string(value, "string")?, 255),
        FieldType::Picklist { values, restricted } => {
            let s = expect_string(value, "string")?;
            if *restricted && !values.iter().any(|v| v == s) {
                let message = format!("{label}: bad value for restricted picklist field: {s}");
                return Err(SfError::dml(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    message,
                    &[&field.name],
                ));
            }
            check_length(field, s, 255)
        }
        FieldType::Date => {
            let s = expect_string(value, "date")?;
            Date::parse(s, format_description!("[year]-[month]-[day]"))
                .map(drop)
                .map_err(|_| cannot_deserialize(value, "date"))
        }
        FieldType::DateTime => {
            let s = expect_string(value, "datetime")?;
            OffsetDateTime::parse(s, &Rfc3339)
                .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
                .map(drop)
                .map_err(|_| cannot_deserialize(value, "datetime"))
        }
        FieldType::Number { precision, scale } => {
            let Value::Number(n) = value else {
                return Err(cannot_deserialize(value, "double"));
            };
            // Digits beyond the scale are rounded by Salesforce; only the integer
            // part can overflow.
            let limit = 10f64.powi((precision - scale) as i32);
            match n.as_f64() {
                Some(x) if x.abs() < limit => Ok(()),
                _ => Err(SfError::dml(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!("{label}: value outside of valid range on numeric field: {n}"),
                    &[&field.name],
                )),
            }
        }
        FieldType::Lookup { target, .. } | FieldType::MasterDetail { target, .. } => {
            let id = expect_string(value, "reference")?;
            if !ids::is_well_formed(id) {
                let message = format!("{label}: id value of incorrect type: {id}");
                return Err(SfError::dml("MALFORMED_ID", message, &[&field.name]));
            }
            match store.find_by_id(target, id) {
                Some(_) => Ok(()),
                None => Err(SfError::dml(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                    &[&field.name],
                )),
            }
        }
    }
}

fn expect_string<'v>(value: &'v Value, kind: &str) -> Result<&'v str, SfError> {
    value
        .as_str()
        .ok_or_else(|| cannot_deserialize(value, kind))
}

/// Salesforce's JSON deserializer error, named after the Jackson token it choked on.
pub(crate) fn cannot_deserialize(value: &Value, kind: &str) -> SfError {
    let token = match value {
        Value::Null => "VALUE_NULL",
        Value::Bool(true) => "VALUE_TRUE",
        Value::Bool(false) => "VALUE_FALSE",
        Value::Number(n) if n.is_i64() || n.is_u64() => "VALUE_NUMBER_INT",
        Value::Number(_) => "VALUE_NUMBER_FLOAT",
        Value::String(_) => "VALUE_STRING",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    };
    SfError::json_parser(format!(
        "Cannot deserialize instance of {kind} from {token} value {value} or request may be missing a required field"
    ))
}

fn check_length(field: &FieldDef, s: &str, max: usize) -> Result<(), SfError> {
    if s.chars().count() > max {
        let message = format!(
            "{}: data value too large: {s} (max length={max})",
            field.label
        );
        return Err(SfError::dml("STRING_TOO_LONG", message, &[&field.name]));
    }
    Ok(())
}

/// `Account__r: {"Lago_Customer_Id__c": "..."}` names the parent by one of its
/// external ids; the result goes into the lookup field `Account__c`.
fn resolve_reference<'o>(
    schema: &Schema,
    store: &Store,
    object: &'o ObjectDef,
    key: &str,
    relationship: &str,
    value: &Value,
) -> Result<(&'o FieldDef, String), SfError> {
    let lookup = object
        .field(&format!("{relationship}__c"))
        .and_then(|f| f.field_type.reference_target().map(|target| (f, target)));
    let Some((field, target)) = lookup else {
        return Err(no_such_column(key, object));
    };
    let parent = schema
        .object(target)
        .expect("lookup targets are checked when the metadata is loaded");
    let Value::Object(reference) = value else {
        return Err(cannot_deserialize(value, &parent.name));
    };
    let mut keys = reference.iter().filter(|(k, _)| *k != "attributes");
    let (Some((ext_name, ext_value)), None) = (keys.next(), keys.next()) else {
        return Err(SfError::dml(
            "INVALID_FIELD",
            format!(
                "{key} must name the {} record by exactly one external id field",
                parent.name
            ),
            &[],
        ));
    };
    let Some(ext_field) = parent.field(ext_name).filter(|f| f.external_id) else {
        return Err(SfError::dml(
            "INVALID_FIELD",
            format!(
                "Field name provided, {ext_name} is not an External ID or indexed field for {}",
                parent.name
            ),
            &[],
        ));
    };
    let ext_value =
        scalar_text(ext_value).ok_or_else(|| cannot_deserialize(ext_value, "string"))?;
    match store
        .ids_by_field(&parent.name, ext_field, &ext_value)
        .as_slice()
    {
        [id] => Ok((field, id.clone())),
        [] => Err(SfError::dml(
            "INVALID_FIELD",
            format!(
                "Foreign key external ID: {ext_value} not found for field {} in entity {}",
                ext_field.name, parent.name
            ),
            &[],
        )),
        several => Err(SfError::dml(
            "DUPLICATE_EXTERNAL_ID",
            format!(
                "{}: more than one record found for external id field: {several:?}",
                ext_field.label
            ),
            &[&field.name],
        )),
    }
}
