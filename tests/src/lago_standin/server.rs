//! The routes, Bearer authentication and Lago's pagination.

use std::sync::{Arc, Mutex, MutexGuard};

use axum::{
    extract::{Path, Query, Request, State},
    http::{header, StatusCode},
    middleware::{from_fn_with_state, Next},
    response::{IntoResponse, Response},
    routing::{get, put},
    Json, Router,
};
use serde_json::{json, Value};

use super::{lock, Dataset, LagoStats};

/// Lago's `PER_PAGE` default.
const DEFAULT_PER_PAGE: usize = 100;
/// Lago refuses an 11th webhook endpoint.
const MAX_ENDPOINTS: usize = 10;

pub(super) struct Inner {
    pub data: Dataset,
    pub endpoints: Vec<Value>,
    pub stats: LagoStats,
}

pub(super) struct Shared {
    api_key: String,
    state: Mutex<Inner>,
}

impl Shared {
    pub fn new(api_key: &str, data: Dataset) -> Self {
        Shared {
            api_key: api_key.to_owned(),
            state: Mutex::new(Inner {
                data,
                endpoints: Vec::new(),
                stats: LagoStats::default(),
            }),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.state)
    }
}

type App = Arc<Shared>;
type Params = Query<Vec<(String, String)>>;

pub(super) fn router(app: App) -> Router {
    Router::new()
        .route("/api/v1/customers", get(customers))
        .route("/api/v1/subscriptions", get(subscriptions))
        .route("/api/v1/invoices", get(invoices))
        .route("/api/v1/credit_notes", get(credit_notes))
        .route(
            "/api/v1/webhook_endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route("/api/v1/webhook_endpoints/{id}", put(update_endpoint))
        .layer(from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// Counts every request, then refuses it without the right Bearer key, as Lago does.
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    {
        let mut state = app.lock();
        state.stats.requests += 1;
        let route = format!("{} {}", request.method(), request.uri().path());
        *state.stats.by_route.entry(route).or_default() += 1;
    }
    let key = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if key != Some(app.api_key.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "status": 401, "error": "Unauthorized" })),
        )
            .into_response();
    }
    next.run(request).await
}

fn values<'a>(params: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn external_customer_id(record: &Value) -> Option<&str> {
    record
        .get("external_customer_id")
        .or_else(|| record.get("customer").and_then(|c| c.get("external_id")))
        .and_then(Value::as_str)
}

fn list(
    app: &App,
    collection: &str,
    params: &[(String, String)],
    keep: impl Fn(&Value) -> bool,
) -> Response {
    let customer = values(params, "external_customer_id");
    let state = app.lock();
    let records: Vec<&Value> = state
        .data
        .list(collection)
        .iter()
        .filter(|r| {
            customer.is_empty() || customer.contains(&external_customer_id(r).unwrap_or(""))
        })
        .filter(|r| keep(r))
        .collect();
    paginate(collection, &records, params)
}

/// `{"<collection>": [...], "meta": {current_page, next_page, prev_page, total_pages, total_count}}`;
/// `current_page` and `total_pages` are 0 when nothing matches.
fn paginate(collection: &str, records: &[&Value], params: &[(String, String)]) -> Response {
    let number = |name: &str, default: usize| {
        values(params, name)
            .first()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let (page, per_page) = (number("page", 1), number("per_page", DEFAULT_PER_PAGE));
    let total = records.len();
    let total_pages = total.div_ceil(per_page);
    let items: Vec<&Value> = records
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    let meta = json!({
        "current_page": if total == 0 { 0 } else { page },
        "next_page": (page < total_pages).then_some(page + 1),
        "prev_page": (page > 1).then_some(page - 1),
        "total_pages": total_pages,
        "total_count": total,
    });
    Json(json!({ collection: items, "meta": meta })).into_response()
}

async fn customers(State(app): State<App>, Query(params): Params) -> Response {
    let external_id = values(&params, "external_id")
        .first()
        .map(|s| s.to_string());
    list(&app, "customers", &params, |c| {
        external_id
            .as_deref()
            .is_none_or(|id| c["external_id"] == json!(id))
    })
}

/// The default status filter is `active` only (lago-api `subscription_index.rb`).
async fn subscriptions(State(app): State<App>, Query(params): Params) -> Response {
    let mut statuses = values(&params, "status[]");
    if statuses.is_empty() {
        statuses = vec!["active"];
    }
    list(&app, "subscriptions", &params, |s| {
        statuses.contains(&s["status"].as_str().unwrap_or_default())
    })
}

async fn invoices(State(app): State<App>, Query(params): Params) -> Response {
    let mut statuses = values(&params, "statuses[]");
    statuses.extend(values(&params, "status"));
    list(&app, "invoices", &params, |i| {
        statuses.is_empty() || statuses.contains(&i["status"].as_str().unwrap_or_default())
    })
}

async fn credit_notes(State(app): State<App>, Query(params): Params) -> Response {
    list(&app, "credit_notes", &params, |_| true)
}

async fn list_endpoints(State(app): State<App>, Query(params): Params) -> Response {
    let state = app.lock();
    let endpoints: Vec<&Value> = state.endpoints.iter().collect();
    paginate("webhook_endpoints", &endpoints, &params)
}

/// The `webhook_endpoint` object, when it names a `webhook_url`.
fn endpoint_input(body: &Value) -> Option<&Value> {
    let input = &body["webhook_endpoint"];
    input["webhook_url"]
        .as_str()
        .is_some_and(|url| !url.is_empty())
        .then_some(input)
}

fn missing_url() -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(
            json!({ "status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                     "error_details": { "webhook_url": ["value_is_mandatory"] } }),
        ),
    )
        .into_response()
}

/// Lago's answer: the permitted keys, `signature_algo` defaulting to `jwt`.
fn endpoint_json(lago_id: &str, input: &Value) -> Value {
    json!({ "webhook_endpoint": {
        "lago_id": lago_id,
        "lago_organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90",
        "webhook_url": input["webhook_url"],
        "signature_algo": input["signature_algo"].as_str().unwrap_or("jwt"),
        "name": input["name"],
        "event_types": input["event_types"],
        "created_at": "2025-03-01T10:00:00Z",
    }})
}

async fn create_endpoint(State(app): State<App>, Json(body): Json<Value>) -> Response {
    let Some(input) = endpoint_input(&body) else {
        return missing_url();
    };
    let mut state = app.lock();
    if state.endpoints.len() >= MAX_ENDPOINTS {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(
                json!({ "status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                         "error_details": { "base": ["exceeded_limit"] } }),
            ),
        )
            .into_response();
    }
    let lago_id = format!("00000000-0000-4000-8000-{:012}", state.endpoints.len() + 1);
    let created = endpoint_json(&lago_id, input);
    state.endpoints.push(created["webhook_endpoint"].clone());
    Json(created).into_response()
}

async fn update_endpoint(
    State(app): State<App>,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let Some(input) = endpoint_input(&body) else {
        return missing_url();
    };
    let mut state = app.lock();
    let Some(slot) = state
        .endpoints
        .iter_mut()
        .find(|e| e["lago_id"] == json!(id))
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({ "status": 404, "error": "Not Found", "code": "webhook_endpoint_not_found" })),
        )
            .into_response();
    };
    let updated = endpoint_json(&id, input);
    *slot = updated["webhook_endpoint"].clone();
    Json(updated).into_response()
}
