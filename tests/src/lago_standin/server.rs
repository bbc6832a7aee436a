//! The routes, Bearer authentication, Lago's pagination and the injected faults.

use std::cmp::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::{
    body::{to_bytes, Body, Bytes},
    extract::{Path, Query, Request, State},
    http::{header, StatusCode},
    middleware::{from_fn_with_state, Next},
    response::{IntoResponse, Response},
    routing::{get, put},
    Json, Router,
};
use serde_json::{json, Value};

use super::{customers, dataset::external_customer_id, lock, Dataset, LagoStats};

/// Lago's `PER_PAGE` default.
const DEFAULT_PER_PAGE: usize = 100;
/// Request bodies are read whole, to record a customer upsert's.
const MAX_BODY: usize = 1024 * 1024;
/// Lago refuses an 11th webhook endpoint.
const MAX_ENDPOINTS: usize = 10;

pub(super) struct Inner {
    pub data: Dataset,
    pub endpoints: Vec<Value>,
    pub stats: LagoStats,
    /// The body of every `POST /api/v1/customers`, whatever its answer, oldest first.
    pub customer_upserts: Vec<Value>,
    /// Every request (counted, before authentication) answers this status.
    pub failing: Option<StatusCode>,
    /// Every request waits this long before it is answered.
    pub delay: Duration,
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
                customer_upserts: Vec::new(),
                failing: None,
                delay: Duration::ZERO,
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
        .route("/api/v1/customers", get(customers).post(upsert_customer))
        .route("/api/v1/subscriptions", get(subscriptions))
        .route("/api/v1/invoices", get(invoices))
        .route("/api/v1/credit_notes", get(credit_notes))
        .route("/api/v1/customers/{external_id}", get(customer))
        .route("/api/v1/subscriptions/{external_id}", get(subscription))
        .route("/api/v1/invoices/{lago_id}", get(invoice))
        .route("/api/v1/credit_notes/{lago_id}", get(credit_note))
        .route(
            "/api/v1/webhook_endpoints",
            get(list_endpoints).post(create_endpoint),
        )
        .route("/api/v1/webhook_endpoints/{id}", put(update_endpoint))
        .layer(from_fn_with_state(app.clone(), authenticate))
        .with_state(app)
}

/// Counts every request (recording a customer upsert's body), applies the injected delay
/// and failure, then refuses a request without the right Bearer key, as Lago does.
async fn authenticate(State(app): State<App>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let (delay, failing) = {
        let mut state = app.lock();
        state.stats.requests += 1;
        let route = format!("{} {}", parts.method, parts.uri.path());
        if route == "POST /api/v1/customers" {
            state.customer_upserts.push(crate::json_or_text(&body));
        }
        *state.stats.by_route.entry(route).or_default() += 1;
        (state.delay, state.failing)
    };
    let request = Request::from_parts(parts, Body::from(body));
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(status) = failing {
        let error = status.canonical_reason().unwrap_or("Error");
        return (
            status,
            Json(json!({ "status": status.as_u16(), "error": error })),
        )
            .into_response();
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

/// A list endpoint: the records `keep` lets through, without the `omitted` keys that
/// the list's serializer does not include (the show endpoint does).
fn list(
    app: &App,
    collection: &str,
    params: &[(String, String)],
    omitted: &[&str],
    keep: impl Fn(&Value) -> bool,
) -> Response {
    let customer = values(params, "external_customer_id");
    let state = app.lock();
    let records: Vec<Value> = state
        .data
        .list(collection)
        .iter()
        .filter(|r| {
            customer.is_empty() || customer.contains(&external_customer_id(r).unwrap_or(""))
        })
        .filter(|r| keep(r))
        .map(|r| {
            let mut r = r.clone();
            if let Value::Object(fields) = &mut r {
                fields.retain(|key, _| !omitted.contains(&key.as_str()));
            }
            r
        })
        .collect();
    paginate(collection, &records.iter().collect::<Vec<_>>(), params)
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
    list(&app, "customers", &params, &[], |c| {
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
    list(&app, "subscriptions", &params, &[], |s| {
        statuses.contains(&s["status"].as_str().unwrap_or_default())
    })
}

async fn invoices(State(app): State<App>, Query(params): Params) -> Response {
    let mut statuses = values(&params, "statuses[]");
    statuses.extend(values(&params, "status"));
    // `InvoiceIndex`: `includes: %i[customer metadata applied_taxes]`, so no fees.
    list(&app, "invoices", &params, &["fees"], |i| {
        statuses.is_empty() || statuses.contains(&i["status"].as_str().unwrap_or_default())
    })
}

async fn credit_notes(State(app): State<App>, Query(params): Params) -> Response {
    list(&app, "credit_notes", &params, &[], |_| true)
}

/// Lago's answer for a missing record (`ApiResponses#not_found_error`).
fn not_found(resource: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({ "status": 404, "error": "Not Found", "code": format!("{resource}_not_found") }),
        ),
    )
        .into_response()
}

/// `{"<object_type>": record}`, or Lago's 404.
fn single(object_type: &str, record: Option<&Value>) -> Response {
    match record {
        Some(record) => Json(json!({ object_type: record })).into_response(),
        None => not_found(object_type),
    }
}

/// `CustomersController#show`: by `external_id`.
async fn customer(State(app): State<App>, Path(external_id): Path<String>) -> Response {
    let state = app.lock();
    let found = state
        .data
        .customers
        .iter()
        .find(|c| c["external_id"] == json!(external_id));
    single("customer", found)
}

/// `SubscriptionsController#show` (lago-api, 2026-08): `subscriptions.order("terminated_at
/// DESC NULLS FIRST, started_at DESC").find_by(external_id:, status: params[:status] ||
/// :active)`. Only `status` is read (`subscription_status` is a parameter of the nested
/// routes, not of this one); like Rails, the last of repeated `status` values wins.
async fn subscription(
    State(app): State<App>,
    Path(external_id): Path<String>,
    Query(params): Params,
) -> Response {
    let status = values(&params, "status").pop().unwrap_or("active");
    let state = app.lock();
    let found = state
        .data
        .subscriptions
        .iter()
        .filter(|s| s["external_id"] == json!(external_id) && s["status"] == json!(status))
        .min_by(|a, b| {
            desc_nulls_first(&a["terminated_at"], &b["terminated_at"])
                .then_with(|| desc_nulls_first(&a["started_at"], &b["started_at"]))
        });
    single("subscription", found)
}

/// PostgreSQL's `DESC` order of timestamps (ISO 8601 strings here), nulls first.
fn desc_nulls_first(a: &Value, b: &Value) -> Ordering {
    match (a.as_str(), b.as_str()) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => b.cmp(a),
    }
}

/// `InvoicesController#show`: by id, among the visible statuses.
async fn invoice(State(app): State<App>, Path(lago_id): Path<String>) -> Response {
    const VISIBLE: [&str; 5] = ["draft", "finalized", "voided", "failed", "pending"];
    let state = app.lock();
    let found = state.data.invoices.iter().find(|i| {
        i["lago_id"] == json!(lago_id) && VISIBLE.contains(&i["status"].as_str().unwrap_or(""))
    });
    single("invoice", found)
}

/// `CreditNotesController#show`: by id, finalized only (the serializer has no such
/// status, so a record without `status` is a finalized one).
async fn credit_note(State(app): State<App>, Path(lago_id): Path<String>) -> Response {
    let state = app.lock();
    let found = state.data.credit_notes.iter().find(|n| {
        n["lago_id"] == json!(lago_id) && n.get("status").is_none_or(|status| status == "finalized")
    });
    single("credit_note", found)
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
    validation_errors(json!({ "webhook_url": ["value_is_mandatory"] }))
}

/// Lago's 422 (`ApiErrors#validation_errors`): `details` by field, each a list of codes.
fn validation_errors(details: Value) -> Response {
    let body = json!({ "status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
                       "error_details": details });
    (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
}

/// Lago's 400: Rails' own for a body that is not JSON, `ApiErrors#bad_request_error` for
/// a missing `customer` (`ActionController::ParameterMissing`).
fn bad_request(error: &str) -> Response {
    let body = json!({ "status": 400, "error": error });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// `CustomersController#create` (`params.expect(customer: [...])`, then the upsert).
async fn upsert_customer(State(app): State<App>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("Bad Request");
    };
    let input = match body.get("customer") {
        Some(Value::Object(input)) if !input.is_empty() => input,
        _ => {
            return bad_request(
                "BadRequest: param is missing or the value is empty or invalid: customer",
            )
        }
    };
    let mut state = app.lock();
    match customers::upsert(&mut state.data, input) {
        Ok(customer) => Json(json!({ "customer": customer })).into_response(),
        Err(details) => validation_errors(details),
    }
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
        return validation_errors(json!({ "base": ["exceeded_limit"] }));
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
        return not_found("webhook_endpoint");
    };
    let updated = endpoint_json(&id, input);
    *slot = updated["webhook_endpoint"].clone();
    Json(updated).into_response()
}
