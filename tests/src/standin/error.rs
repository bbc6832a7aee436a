//! Salesforce's error bodies: single-record resources answer a JSON array of
//! `{message, errorCode, fields}`; sObject Collections report each record's errors with
//! `statusCode` instead of `errorCode`.

use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{json, Value};

use super::rest::Reply;

#[derive(Debug, Clone)]
pub(crate) struct SfError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// `None` for errors Salesforce sends without a `fields` key (session, limits, 404).
    pub fields: Option<Vec<String>>,
}

impl SfError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        SfError {
            status,
            code: code.to_owned(),
            message: message.into(),
            fields: None,
        }
    }

    /// A DML/validation error: HTTP 400 with the offending fields listed.
    pub fn dml(code: &str, message: impl Into<String>, fields: &[&str]) -> Self {
        SfError {
            fields: Some(fields.iter().map(|f| (*f).to_owned()).collect()),
            ..SfError::new(StatusCode::BAD_REQUEST, code, message)
        }
    }

    pub fn not_found() -> Self {
        SfError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    pub fn json_parser(message: impl Into<String>) -> Self {
        SfError::new(StatusCode::BAD_REQUEST, "JSON_PARSER_ERROR", message)
    }

    pub fn id_in_body() -> Self {
        SfError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "The Id field should not be specified in the sobject data.",
        )
    }

    fn body(&self, code_key: &str) -> Value {
        let mut body = json!({ "message": self.message, code_key: self.code });
        if let Some(fields) = &self.fields {
            body["fields"] = json!(fields);
        }
        body
    }

    /// A single-resource error answer's body, also a Composite subrequest's error body.
    pub fn response_body(&self) -> Value {
        json!([self.body("errorCode")])
    }

    /// One element of a sObject Collections result's `errors` array.
    pub fn collection_error(&self) -> Value {
        let mut body = self.body("statusCode");
        body.as_object_mut()
            .expect("built as an object")
            .entry("fields")
            .or_insert_with(|| json!([]));
        body
    }
}

impl IntoResponse for SfError {
    fn into_response(self) -> Response {
        Reply::from(self).into_response()
    }
}
