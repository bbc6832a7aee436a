//! The one route table of the REST resources. Top-level requests and the subrequests of
//! a Composite both go through [`dispatch`], so a subrequest meets exactly the logic (and
//! the metadata checks) of the same request sent on its own.

use axum::{
    body::Bytes,
    extract::State,
    http::{header, HeaderMap, Method, StatusCode, Uri},
    response::{AppendHeaders, IntoResponse, Response},
    Json,
};
use serde_json::Value;

use super::{
    composite, describe,
    error::SfError,
    gate, query,
    server::{App, Org},
    sobjects,
    state::Store,
};

/// The request header that sets a query's batch size (`batchSize=500`).
pub(crate) const QUERY_OPTIONS: &str = "Sforce-Query-Options";

/// A resource's answer, kept as data so a Composite can report it as a subrequest result.
pub(crate) struct Reply {
    pub status: StatusCode,
    /// The `Location` header of a created record.
    pub location: Option<String>,
    /// Null for an answer without a body (204).
    pub body: Value,
    /// A sObject Collections answer is HTTP 200 even when some of its records failed;
    /// a Composite with `allOrNone` still has to roll back for them.
    pub record_failed: bool,
}

impl Reply {
    pub fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            location: None,
            body,
            record_failed: false,
        }
    }

    pub fn is_error(&self) -> bool {
        self.status.is_client_error() || self.status.is_server_error()
    }
}

impl From<SfError> for Reply {
    fn from(error: SfError) -> Reply {
        Reply::json(error.status, error.response_body())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let headers = AppendHeaders(self.location.map(|url| (header::LOCATION, url)));
        if self.body.is_null() {
            (self.status, headers).into_response()
        } else {
            (self.status, headers, Json(self.body)).into_response()
        }
    }
}

/// One request to a resource, its path already split after the version.
pub(crate) struct Call<'a> {
    pub method: &'a str,
    pub version: &'a str,
    pub path: &'a [&'a str],
    pub body: &'a Value,
    /// The URL's query string, still encoded.
    pub query: Option<&'a str>,
    /// The `Sforce-Query-Options` header.
    pub query_options: Option<&'a str>,
    /// A Composite's `allOrNone`, which overrides that of a sObject Collections body.
    pub all_or_none: bool,
}

pub(crate) fn dispatch(org: &Org, store: &mut Store, call: &Call) -> Result<Reply, SfError> {
    let (version, body) = (call.version, call.body);
    match (call.method, call.path) {
        ("GET", ["sobjects", object, "describe"]) => {
            let described = describe::describe(org.object(object)?);
            Ok(Reply::json(StatusCode::OK, described))
        }
        ("GET", ["sobjects", object, id]) => sobjects::get_by_id(org, store, version, object, id),
        ("PATCH", ["sobjects", object, id]) => sobjects::update_by_id(org, store, object, id, body),
        ("GET", ["sobjects", object, field, value]) => {
            sobjects::get_by_external_id(org, store, version, object, field, value)
        }
        ("PATCH", ["sobjects", object, field, value]) => {
            sobjects::upsert(org, store, version, object, field, value, body)
        }
        ("PATCH", ["composite", "sobjects"]) => {
            sobjects::collection_update(org, store, body, call.all_or_none)
        }
        ("PATCH", ["composite", "sobjects", object, field]) => {
            sobjects::collection_upsert(org, store, object, field, body, call.all_or_none)
        }
        ("GET", ["query"]) => {
            let soql = query_param(call.query, "q");
            query::run(org, store, version, soql.as_deref(), call.query_options)
        }
        ("GET", ["query", locator]) => query::more(store, version, locator, call.query_options),
        _ => Err(SfError::not_found()),
    }
}

/// Every request under [`gate::PREFIX`], after the gate.
pub(crate) async fn serve(
    State(app): State<App>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Reply, SfError> {
    let (version, rest) = gate::split_version(uri.path()).ok_or_else(SfError::not_found)?;
    let body = parse_body(&body)?;
    let segments = segments(rest);
    let path: Vec<&str> = segments.iter().map(String::as_str).collect();
    // Outside the route table: a Composite cannot contain another one.
    if method == Method::POST && path == ["composite"] {
        return composite::run(&app, &body);
    }
    let call = Call {
        method: method.as_str(),
        version,
        path: &path,
        body: &body,
        query: uri.query(),
        query_options: headers.get(QUERY_OPTIONS).and_then(|v| v.to_str().ok()),
        all_or_none: false,
    };
    app.with_org(|org, store| dispatch(org, store, &call))
}

fn parse_body(bytes: &Bytes) -> Result<Value, SfError> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| SfError::json_parser(format!("Unexpected character or end of input: {e}")))
}

/// The segments of a path after its version (`sobjects/X/Lago_Id__c/a%2Fb`), each
/// percent-decoded as a resource sees it; the query string is not part of them.
pub(crate) fn segments(rest: &str) -> Vec<String> {
    let path = rest.split('?').next().unwrap_or_default();
    path.split('/').map(percent_decode).collect()
}

/// The first value of `name` in a URL query string, form-decoded (`+` is a space).
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    let decode = |text: &str| percent_decode(&text.replace('+', " "));
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(key, _)| decode(key) == name)
        .map(|(_, value)| decode(value))
}

fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let escaped = bytes
            .get(at + 1..at + 3)
            .filter(|hex| bytes[at] == b'%' && hex.iter().all(u8::is_ascii_hexdigit))
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                at += 3;
            }
            None => {
                decoded.push(bytes[at]);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_form_decoded() {
        let query = Some("x=1&q=SELECT+Id%2C+Name+FROM+Account+WHERE+Name+%3D+%27a%2Bb%27&q=2");
        assert_eq!(
            query_param(query, "q").as_deref(),
            Some("SELECT Id, Name FROM Account WHERE Name = 'a+b'")
        );
        assert_eq!(query_param(query, "y"), None);
        assert_eq!(query_param(None, "q"), None);
    }

    #[test]
    fn segments_are_decoded_without_the_query() {
        assert_eq!(
            segments("sobjects/X/Lago_Id__c/a%2Fb%20c%zz?fields=Name"),
            ["sobjects", "X", "Lago_Id__c", "a/b c%zz"]
        );
    }
}
