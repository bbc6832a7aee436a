//! `GET sobjects/{Object}/describe`: the object's fields (the standard ones the stand-in
//! knows, then the metadata's), as the integration user with the `Lago_Sync` permission
//! set sees them (read and edit, but for the fields only Salesforce writes).

use serde_json::{json, Value};

use super::metadata::{FieldDef, FieldType, ObjectDef};

pub(crate) fn describe(object: &ObjectDef) -> Value {
    let fields: Vec<Value> = object.all_fields().map(field).collect();
    json!({
        "name": object.name,
        "keyPrefix": object.key_prefix,
        "custom": object.name.ends_with("__c"),
        "createable": object.name.ends_with("__c"),
        "updateable": true,
        "fields": fields,
    })
}

fn field(f: &FieldDef) -> Value {
    let kind = match &f.field_type {
        FieldType::Id => "id",
        FieldType::Text { .. } => "string",
        FieldType::Url => "url",
        FieldType::Date => "date",
        FieldType::DateTime => "datetime",
        FieldType::Number { .. } => "double",
        FieldType::Picklist { .. } => "picklist",
        FieldType::Lookup { .. } | FieldType::MasterDetail { .. } => "reference",
        FieldType::Checkbox => "boolean",
        FieldType::LongTextArea { .. } => "textarea",
    };
    json!({
        "name": f.name,
        "label": f.label,
        "type": kind,
        "externalId": f.external_id,
        "unique": f.unique,
        "updateable": f.updateable,
        "createable": f.updateable,
    })
}
