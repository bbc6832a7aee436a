//! `GET sobjects/{Object}/describe`: the object's fields from the metadata, as the
//! integration user with the `Lago_Sync` permission set sees them (read and edit).

use axum::{
    extract::{Path, State},
    routing::get,
    Json, Router,
};
use serde_json::{json, Value};

use super::{
    error::SfError,
    metadata::{FieldDef, FieldType},
    server::App,
};

pub(crate) fn router() -> Router<App> {
    Router::new().route("/{version}/sobjects/{object}/describe", get(describe))
}

async fn describe(
    State(app): State<App>,
    Path((_version, object)): Path<(String, String)>,
) -> Result<Json<Value>, SfError> {
    let object = app.object(&object)?;
    let id = json!({ "name": "Id", "type": "id", "updateable": false, "createable": false });
    let fields: Vec<Value> = std::iter::once(id)
        .chain(
            std::iter::once(&object.name_field)
                .chain(&object.fields)
                .map(field),
        )
        .collect();
    Ok(Json(json!({
        "name": object.name,
        "keyPrefix": object.key_prefix,
        "custom": object.name.ends_with("__c"),
        "createable": object.name.ends_with("__c"),
        "updateable": true,
        "fields": fields,
    })))
}

fn field(f: &FieldDef) -> Value {
    let kind = match &f.field_type {
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
        "updateable": true,
        "createable": true,
    })
}
