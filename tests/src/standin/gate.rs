//! What every request under `/services/data/` goes through before its resource:
//! counting and logging, scripted faults, the session check, the daily limit, and the
//! `Sforce-Limit-Info` header on the way out.

use std::time::Duration;

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{ConnectInfo, Request, State},
    http::{header, request::Parts, HeaderValue, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use super::{
    error::SfError,
    fault::FaultAction,
    listener::Conn,
    query,
    rest::query_param,
    server::App,
    state::{LoggedRequest, Store},
};

/// Where the server nests the REST routes.
pub(crate) const PREFIX: &str = "/services/data";

const MAX_BODY: usize = 16 * 1024 * 1024;

pub(crate) async fn rest_gate(
    State(app): State<App>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    // Nesting strips the prefix from the URI this middleware sees.
    let path = format!("{PREFIX}{}", parts.uri.path());
    let query = parts.uri.query().map(str::to_owned);
    let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let body = logged_body(&bytes);
    let url = match &query {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    };
    let logged = LoggedRequest {
        method: parts.method.to_string(),
        path,
        query,
        body,
    };
    let (used, fault) = {
        let mut state = app.lock();
        let object = object_of(&state.store, &url, &logged.body);
        state.record_rest_call(logged, object)
    };
    let response = match fault {
        Some(FaultAction::Close) => {
            conn.kill();
            // Never reaches the client: the connection is gone.
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        Some(FaultAction::Respond { status, body }) => fault_response(status, body),
        Some(FaultAction::Delay { ms }) => {
            // Spawned, so the write completes even when the client gives up and hyper
            // drops this future: a real org does not undo it either.
            let app = app.clone();
            let delayed = tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                serve(&app, used, parts, bytes, next).await
            });
            delayed
                .await
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        None => serve(&app, used, parts, bytes, next).await,
    };
    with_limit_info(response, used, app.api_limit)
}

async fn serve(app: &App, used: u64, parts: Parts, bytes: Bytes, next: Next) -> Response {
    if !app
        .lock()
        .tokens
        .contains(bearer(&parts).unwrap_or_default())
    {
        return SfError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
        .into_response();
    }
    if used > app.api_limit {
        return SfError::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
        .into_response();
    }
    if split_version(parts.uri.path()).is_none() {
        return SfError::not_found().into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Salesforce takes the session id as `Bearer` or the older `OAuth` scheme.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim())
}

/// A path under [`PREFIX`] (`/v62.0/sobjects/...`) as its version segment,
/// `v<major>.<minor>`, and the rest (`sobjects/...`).
pub(crate) fn split_version(path: &str) -> Option<(&str, &str)> {
    let path = path.strip_prefix('/')?;
    let (version, rest) = path.split_once('/').unwrap_or((path, ""));
    let valid = version
        .strip_prefix('v')
        .and_then(|v| v.split_once('.'))
        .is_some_and(|(major, minor)| {
            [major, minor]
                .iter()
                .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
        });
    valid.then_some((version, rest))
}

fn logged_body(bytes: &Bytes) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    crate::json_or_text(bytes)
}

/// The sObject a request (`url`: path and query string) is about, for the per-object
/// counters: a Composite is about that of its first subrequest, so a write counts under
/// its object whichever way it is sent; a query, and each of its later pages, under the
/// queried object.
fn object_of(store: &Store, url: &str, body: &Value) -> Option<String> {
    let (path, params) = match url.split_once('?') {
        Some((path, params)) => (path, Some(params)),
        None => (url, None),
    };
    let (_, rest) = split_version(path.strip_prefix(PREFIX)?)?;
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        ["sobjects", object, ..] | ["composite", "sobjects", object, ..] => {
            Some((*object).to_owned())
        }
        ["composite", "sobjects"] => body["records"][0]["attributes"]["type"]
            .as_str()
            .map(str::to_owned),
        ["composite"] => {
            let first = &body["compositeRequest"][0];
            object_of(store, first["url"].as_str()?, &first["body"])
        }
        ["query"] => query::queried_object(&query_param(params, "q")?),
        ["query", locator] => query::cursor_object(store, locator),
        _ => None,
    }
}

fn fault_response(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match body {
        Value::String(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            html,
        )
            .into_response(),
        json => (status, axum::Json(json)).into_response(),
    }
}

fn with_limit_info(mut response: Response, used: u64, limit: u64) -> Response {
    let value = HeaderValue::from_str(&format!("api-usage={used}/{limit}"))
        .expect("digits and punctuation only");
    response.headers_mut().insert("sforce-limit-info", value);
    response
}
