//! `/__standin/...`: the test-control API over HTTP, for scripts and local runs (the
//! same operations as the methods of `Standin`).

use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, patch, post},
    Json, Router,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    fault::Fault,
    server::App,
    state::{LoggedRequest, Stats},
    validate::ValidationRule,
};

pub(crate) fn router() -> Router<App> {
    Router::new()
        .route("/accounts", post(add_account))
        .route("/accounts/{id}", patch(update_account))
        .route("/records", get(records))
        .route("/stats", get(stats))
        .route("/requests", get(requests))
        .route("/expire-tokens", post(expire_tokens))
        .route("/client-secret", post(set_client_secret))
        .route("/faults", post(add_fault))
        .route("/validation-rules", post(add_validation_rule))
}

#[derive(Deserialize)]
struct NewAccount {
    id: String,
}

async fn add_account(State(app): State<App>, Json(account): Json<NewAccount>) -> Response {
    match app.add_account(&account.id) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}

/// `{field: value, ...}`, as a REST update of the Account would carry it.
async fn update_account(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(fields): Json<Value>,
) -> Response {
    match app.update_account(&id, &fields) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}

async fn records(State(app): State<App>) -> Json<BTreeMap<String, Vec<Value>>> {
    Json(app.all_records())
}

async fn stats(State(app): State<App>) -> Json<Stats> {
    Json(app.lock().stats.clone())
}

async fn requests(State(app): State<App>) -> Json<Vec<LoggedRequest>> {
    Json(app.lock().log.clone())
}

async fn expire_tokens(State(app): State<App>) -> StatusCode {
    app.lock().tokens.clear();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct ClientSecret {
    client_secret: String,
}

async fn set_client_secret(State(app): State<App>, Json(body): Json<ClientSecret>) -> StatusCode {
    app.lock().client_secret = body.client_secret;
    StatusCode::NO_CONTENT
}

async fn add_fault(State(app): State<App>, Json(fault): Json<Fault>) -> StatusCode {
    app.lock().faults.push_back(fault);
    StatusCode::CREATED
}

/// `{"object": ..., "field": ..., "equals": <JSON value>, "message": ...}`.
async fn add_validation_rule(State(app): State<App>, Json(rule): Json<ValidationRule>) -> Response {
    match app.add_validation_rule(rule) {
        Ok(()) => StatusCode::CREATED.into_response(),
        Err(error) => (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response(),
    }
}
