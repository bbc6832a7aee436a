//! The Lago REST API (lago-webhooks.md §6). The operator commands (backfill, check,
//! webhook set-up) read the paginated lists and manage webhook endpoints; the webhook
//! functions read one object's current state ([`LagoApi::object`]) where a payload is not
//! enough (contract §7.1 subscriptions the payload cannot order, §7.3 recovery of a
//! delivery whose function died, §7.5 a customer's Salesforce link), and wrap it into a
//! webhook-shaped body with [`crate::lago::as_webhook_body`] to map it as a delivery.
//!
//! One reqwest client per [`LagoApi`], without a total timeout of its own: every request
//! sets its own (a minute for the operator commands, the caller's for [`LagoApi::object`],
//! which the functions fit to their invocation's deadline).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

use crate::Family;

/// Lago's default page is 100 and lago-api has no `max_per_page` cap (lago-webhooks.md §6),
/// so the largest page we are willing to hold in memory makes one call per 1,000 records.
pub const PER_PAGE: u32 = 1000;
/// Longest wait for one request of the operator commands.
const TIMEOUT: Duration = Duration::from_secs(60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The statuses `GET /api/v1/subscriptions/{external_id}` is asked for, in turn, when
/// Lago's default (`active`) finds nothing: the ones a subscription still heads into
/// first, then the terminal ones. See [`LagoApi::subscription`].
pub const SUBSCRIPTION_STATUSES_AFTER_ACTIVE: [&str; 4] =
    ["pending", "incomplete", "terminated", "canceled"];

#[derive(Debug, Error)]
pub enum LagoApiError {
    #[error("Lago refused the API key (HTTP 401): check lago_api_key in the secret")]
    Unauthorized,
    #[error("Lago answered HTTP {status} on {path}: {message}")]
    Status {
        status: u16,
        path: String,
        message: String,
    },
    /// reqwest's Display names the URL, never the headers, so the key cannot leak here.
    #[error("Lago could not be reached: {0}")]
    Transport(String),
    #[error("Lago did not answer {path} in time")]
    Timeout { path: String },
    #[error("Lago's answer on {path} is not what the API documents: {reason}")]
    Malformed { path: String, reason: String },
    /// An id that cannot be one URL path segment (`.` and `..` are resolved away by URL
    /// parsers even when percent-encoded).
    #[error("the Lago id {0:?} cannot be looked up through the API")]
    UnaddressableId(String),
}

impl LagoApiError {
    /// Worth retrying later: Lago unreachable or too slow, rate-limited (429) or failing
    /// (5xx, 408). A refused key (401), a missing permission (403), a refused request
    /// (other 4xx) or an answer that is not what the API documents is permanent: the same
    /// request would fail the same way until someone changes something.
    pub fn is_transient(&self) -> bool {
        match self {
            LagoApiError::Transport(_) | LagoApiError::Timeout { .. } => true,
            LagoApiError::Status { status, .. } => matches!(status, 408 | 429 | 500..=599),
            LagoApiError::Unauthorized
            | LagoApiError::Malformed { .. }
            | LagoApiError::UnaddressableId(_) => false,
        }
    }
}

/// The four lists the backfill reads, with the filters that make them complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Customers,
    Subscriptions,
    Invoices,
    CreditNotes,
}

impl Listing {
    pub fn collection(self) -> &'static str {
        match self {
            Listing::Customers => "customers",
            Listing::Subscriptions => "subscriptions",
            Listing::Invoices => "invoices",
            Listing::CreditNotes => "credit_notes",
        }
    }

    /// The list's default filters hide records the backfill needs (subscriptions default
    /// to `active` only) or must not write (draft invoices are not sent by any webhook
    /// that writes, and drafts change until finalized).
    fn filters(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Listing::Subscriptions => &[
                ("status[]", "pending"),
                ("status[]", "active"),
                ("status[]", "terminated"),
                ("status[]", "canceled"),
                ("status[]", "incomplete"),
            ],
            Listing::Invoices => &[("statuses[]", "finalized"), ("statuses[]", "voided")],
            Listing::Customers | Listing::CreditNotes => &[],
        }
    }
}

impl From<Family> for Listing {
    fn from(family: Family) -> Self {
        match family {
            Family::Customer => Listing::Customers,
            Family::Subscription => Listing::Subscriptions,
            Family::Invoice => Listing::Invoices,
            Family::CreditNote => Listing::CreditNotes,
        }
    }
}

/// One page of a list: its items as Lago sent them, and the next page number.
#[derive(Debug, Clone)]
pub struct Page {
    pub items: Vec<Value>,
    pub next_page: Option<u32>,
    pub total_count: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    #[serde(default)]
    pub lago_id: String,
    pub webhook_url: String,
    #[serde(default)]
    pub signature_algo: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

pub struct LagoApi {
    http: reqwest::Client,
    base: String,
    api_key: String,
    calls: AtomicU64,
}

impl std::fmt::Debug for LagoApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LagoApi({}, <key redacted>)", self.base)
    }
}

impl LagoApi {
    /// `lago_api_url` is [`crate::config::Config::lago_api_url`] (already without `/api/v1`).
    pub fn new(lago_api_url: &str, api_key: &str) -> Self {
        Self::with_client(Self::http_client(), lago_api_url, api_key)
    }

    /// A reqwest client as Lago's API wants it (this project's TLS setup, a short connect
    /// timeout, no total timeout: each request sets its own). Build it once and hand clones
    /// to [`LagoApi::with_client`].
    pub fn http_client() -> reqwest::Client {
        crate::transport::client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .expect("the TLS backend initialises")
    }

    /// Without building a client: for a function that makes a [`LagoApi`] per invocation
    /// with the key of the current secret, over one client (and connection pool) kept
    /// for the container's life. `http` should come from [`LagoApi::http_client`].
    pub fn with_client(http: reqwest::Client, lago_api_url: &str, api_key: &str) -> Self {
        LagoApi {
            http,
            base: format!("{}/api/v1", lago_api_url.trim_end_matches('/')),
            api_key: api_key.to_owned(),
            calls: AtomicU64::new(0),
        }
    }

    /// Requests made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Page `page` (from 1) of `listing`, optionally for one customer.
    pub async fn page(
        &self,
        listing: Listing,
        page: u32,
        per_page: u32,
        external_customer_id: Option<&str>,
    ) -> Result<Page, LagoApiError> {
        let mut query: Vec<(&str, String)> = vec![
            ("page", page.to_string()),
            ("per_page", per_page.to_string()),
        ];
        query.extend(listing.filters().iter().map(|(k, v)| (*k, v.to_string())));
        if let Some(id) = external_customer_id {
            // The customers list filters by `external_id`, the others by `external_customer_id`.
            let key = match listing {
                Listing::Customers => "external_id",
                _ => "external_customer_id",
            };
            query.push((key, id.to_owned()));
        }
        let path = listing.collection();
        let body = self
            .send(self.http.get(self.url_with(path, &query)), path)
            .await?;
        parse_page(body, path)
    }

    /// Every webhook endpoint of the organization.
    pub async fn webhook_endpoints(&self) -> Result<Vec<WebhookEndpoint>, LagoApiError> {
        const PATH: &str = "webhook_endpoints";
        let mut all = Vec::new();
        let mut page = Some(1);
        while let Some(number) = page {
            let query = [("page", number.to_string()), ("per_page", "100".to_owned())];
            let body = self
                .send(self.http.get(self.url_with(PATH, &query)), PATH)
                .await?;
            let parsed = parse_page(body, PATH)?;
            for item in parsed.items {
                all.push(serde_json::from_value(item).map_err(|e| malformed(PATH, e.to_string()))?);
            }
            page = parsed.next_page;
        }
        Ok(all)
    }

    pub async fn create_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
    ) -> Result<WebhookEndpoint, LagoApiError> {
        const PATH: &str = "webhook_endpoints";
        let request = self
            .http
            .post(self.url(PATH))
            .json(&endpoint_body(endpoint));
        endpoint_of(self.send(request, PATH).await?, PATH)
    }

    pub async fn update_webhook_endpoint(
        &self,
        lago_id: &str,
        endpoint: &WebhookEndpoint,
    ) -> Result<WebhookEndpoint, LagoApiError> {
        let path = format!("webhook_endpoints/{}", urlencoding::encode(lago_id));
        let request = self
            .http
            .put(self.url(&path))
            .json(&endpoint_body(endpoint));
        endpoint_of(self.send(request, &path).await?, &path)
    }

    /// One object as Lago's API shows it now (the inner object of `{"customer": {...}}`
    /// and the like, as Lago sent it), or `None` when Lago has no such object. `id` is
    /// what Lago's single-record routes take: the `external_id` of a customer or a
    /// subscription, the `lago_id` of an invoice or a credit note (only finalized credit
    /// notes and visible invoices are found, as in Lago). A subscription is Lago's current
    /// one under that `external_id`: see [`LagoApi::subscription`] for how it is found and
    /// for reading one status. `timeout` bounds the whole read (for a subscription, up to
    /// five requests). Lago's subscription answers do not embed the customer.
    pub async fn object(
        &self,
        family: Family,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<Value>, LagoApiError> {
        if family != Family::Subscription {
            return self.read(family, id, None, timeout).await;
        }
        let deadline = Instant::now() + timeout;
        let statuses = std::iter::once(None).chain(SUBSCRIPTION_STATUSES_AFTER_ACTIVE.map(Some));
        for status in statuses {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(LagoApiError::Timeout {
                    path: object_path(family, id)?,
                });
            }
            if let Some(found) = self.read(family, id, status, left).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// `GET /api/v1/subscriptions/{external_id}?status=<status>`: the subscription with
    /// that `external_id` and status, `None` for Lago's default, `active` only.
    ///
    /// lago-api `SubscriptionsController#show` (2026-08) runs
    /// `subscriptions.order("terminated_at DESC NULLS FIRST, started_at DESC")
    /// .find_by(external_id:, status: params[:status] || :active)`: without `status` a
    /// pending, terminated or canceled subscription answers 404, and with `terminated`
    /// the most recently terminated one is found (an upgrade terminates the old one and
    /// starts a new one under the same `external_id`). The route reads `status`, not
    /// `subscription_status`, which only the nested routes (`/subscriptions/{id}/alerts`,
    /// `…/entitlements`, …) read and `show` ignores.
    pub async fn subscription(
        &self,
        external_id: &str,
        status: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<Value>, LagoApiError> {
        self.read(Family::Subscription, external_id, status, timeout)
            .await
    }

    async fn read(
        &self,
        family: Family,
        id: &str,
        status: Option<&str>,
        timeout: Duration,
    ) -> Result<Option<Value>, LagoApiError> {
        let path = object_path(family, id)?;
        let url = match status {
            Some(status) => self.url_with(&path, &[("status", status.to_owned())]),
            None => self.url(&path),
        };
        let (code, bytes) = self.exchange(self.http.get(url), &path, timeout).await?;
        let object_type = family.object_type();
        if is_not_found(code, &bytes, object_type) {
            return Ok(None);
        }
        match answer(code, &bytes, &path)?
            .get_mut(object_type)
            .map(Value::take)
        {
            Some(object @ Value::Object(_)) => Ok(Some(object)),
            _ => Err(malformed(&path, format!("no {object_type} object"))),
        }
    }

    /// `POST /api/v1/customers`: Lago's upsert by `external_id`, which sets only the keys
    /// sent (salesforce-to-lago.md §3). Answers the customer as Lago now holds it.
    pub async fn upsert_customer(
        &self,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, LagoApiError> {
        let path = "customers";
        let request = self.http.post(self.url(path)).json(body);
        let (status, bytes) = self.exchange(request, path, timeout).await?;
        answer(status, &bytes, path)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base)
    }

    fn url_with(&self, path: &str, query: &[(&str, String)]) -> String {
        let pairs: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
            .collect();
        format!("{}?{}", self.url(path), pairs.join("&"))
    }

    /// A request of the operator commands, answered with its JSON body.
    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Value, LagoApiError> {
        let (status, bytes) = self.exchange(request, path, TIMEOUT).await?;
        answer(status, &bytes, path)
    }

    /// Sends with the key and `timeout` (connecting, waiting and reading the whole body),
    /// and reads the answer whatever its status.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
        timeout: Duration,
    ) -> Result<(u16, Vec<u8>), LagoApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = request
            .bearer_auth(&self.api_key)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| request_failed(e, path))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| request_failed(e, path))?;
        Ok((status, bytes.to_vec()))
    }
}

/// reqwest's Display names the URL, never the headers; the URL is dropped all the same.
fn request_failed(error: reqwest::Error, path: &str) -> LagoApiError {
    if error.is_timeout() {
        LagoApiError::Timeout {
            path: path.to_owned(),
        }
    } else {
        LagoApiError::Transport(error.without_url().to_string())
    }
}

/// A 2xx answer's JSON body, or the error its status means.
fn answer(status: u16, bytes: &[u8], path: &str) -> Result<Value, LagoApiError> {
    match status {
        200..=299 => serde_json::from_slice(bytes).map_err(|e| malformed(path, e.to_string())),
        401 => Err(LagoApiError::Unauthorized),
        _ => {
            let body = serde_json::from_slice::<Value>(bytes).ok();
            let message = body
                .as_ref()
                .and_then(validation_errors)
                .or_else(|| {
                    body.as_ref()?
                        .get("error")
                        .or_else(|| body.as_ref()?.get("code"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unexpected answer".to_owned());
            Err(LagoApiError::Status {
                status,
                path: path.to_owned(),
                message: message.chars().take(200).collect(),
            })
        }
    }
}

/// Lago's 422 `{"code": "validation_errors", "error_details": {"currency":
/// ["value_is_invalid"]}}` as `currency: value_is_invalid`, what was refused and why.
fn validation_errors(body: &Value) -> Option<String> {
    let details = body.get("error_details")?.as_object()?;
    let refused: Vec<String> = details
        .iter()
        .map(|(field, codes)| match codes {
            Value::Array(codes) => {
                let codes: Vec<&str> = codes.iter().filter_map(Value::as_str).collect();
                format!("{field}: {}", codes.join(", "))
            }
            other => format!("{field}: {other}"),
        })
        .collect();
    (!refused.is_empty()).then(|| refused.join("; "))
}

/// `<collection>/<id>`, the id percent-encoded as one path segment.
fn object_path(family: Family, id: &str) -> Result<String, LagoApiError> {
    if matches!(id, "" | "." | "..") {
        return Err(LagoApiError::UnaddressableId(id.to_owned()));
    }
    Ok(format!(
        "{}/{}",
        Listing::from(family).collection(),
        urlencoding::encode(id)
    ))
}

/// Lago's "no such object" answer: 404 with the code `<object_type>_not_found`. Any other
/// 404 (a wrong `LAGO_API_URL`, a proxy) is an error, not an absent object.
fn is_not_found(status: u16, bytes: &[u8], object_type: &str) -> bool {
    status == 404
        && serde_json::from_slice::<Value>(bytes)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
            .is_some_and(|code| code.strip_suffix("_not_found") == Some(object_type))
}

fn malformed(path: &str, reason: String) -> LagoApiError {
    LagoApiError::Malformed {
        path: path.to_owned(),
        reason,
    }
}

/// `{"<collection>": [...], "meta": {"next_page": n|null, "total_count": n, ...}}`.
fn parse_page(mut body: Value, collection: &str) -> Result<Page, LagoApiError> {
    let items = match body.get_mut(collection).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => return Err(malformed(collection, format!("no {collection} array"))),
    };
    let meta = body.get("meta");
    let next_page = meta
        .and_then(|m| m.get("next_page"))
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok());
    let total_count = meta
        .and_then(|m| m.get("total_count"))
        .and_then(Value::as_u64);
    Ok(Page {
        items,
        next_page,
        total_count,
    })
}

fn endpoint_body(endpoint: &WebhookEndpoint) -> Value {
    json!({ "webhook_endpoint": {
        "webhook_url": endpoint.webhook_url,
        "signature_algo": endpoint.signature_algo,
        "name": endpoint.name,
        "event_types": endpoint.event_types,
    }})
}

fn endpoint_of(mut body: Value, path: &str) -> Result<WebhookEndpoint, LagoApiError> {
    let endpoint = body
        .get_mut("webhook_endpoint")
        .map(Value::take)
        .ok_or_else(|| malformed(path, "no webhook_endpoint object".into()))?;
    serde_json::from_value(endpoint).map_err(|e| malformed(path, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_end_when_next_page_is_null() {
        let body = json!({"invoices": [{"lago_id": "a"}], "meta": {"current_page": 2, "next_page": null, "prev_page": 1, "total_pages": 2, "total_count": 1001}});
        let page = parse_page(body, "invoices").unwrap();
        assert_eq!(
            (page.items.len(), page.next_page, page.total_count),
            (1, None, Some(1001))
        );
        let body = json!({"invoices": [], "meta": {"next_page": 3}});
        assert_eq!(parse_page(body, "invoices").unwrap().next_page, Some(3));
        assert!(parse_page(json!({"meta": {}}), "invoices").is_err());
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        let api = LagoApi::new("https://api.getlago.com/", "secret-key-123");
        let shown = format!("{api:?}");
        assert!(
            !shown.contains("secret-key-123") && shown.contains("/api/v1"),
            "{shown}"
        );
    }

    #[test]
    fn object_paths_encode_the_id_as_one_segment() {
        let path = |family, id| object_path(family, id).unwrap();
        assert_eq!(path(Family::Customer, "ext-1"), "customers/ext-1");
        assert_eq!(
            path(Family::Subscription, "coker.com"),
            "subscriptions/coker.com"
        );
        assert_eq!(
            path(Family::Invoice, "a/b c?d#e%f&g"),
            "invoices/a%2Fb%20c%3Fd%23e%25f%26g"
        );
        assert_eq!(path(Family::CreditNote, "é"), "credit_notes/%C3%A9");
        for id in ["", ".", ".."] {
            let error = object_path(Family::Customer, id).unwrap_err();
            assert!(matches!(error, LagoApiError::UnaddressableId(_)) && !error.is_transient());
        }
    }

    #[test]
    fn object_urls_carry_the_status_of_a_subscription_only_when_asked() {
        let api = LagoApi::new("https://lago.acme.com/", "k");
        let path = object_path(Family::Subscription, "s 1").unwrap();
        assert_eq!(
            api.url(&path),
            "https://lago.acme.com/api/v1/subscriptions/s%201"
        );
        assert_eq!(
            api.url_with(&path, &[("status", "terminated".to_owned())]),
            "https://lago.acme.com/api/v1/subscriptions/s%201?status=terminated"
        );
    }

    #[test]
    fn only_lagos_own_not_found_answer_means_absent() {
        let body = br#"{"status":404,"error":"Not Found","code":"credit_note_not_found"}"#;
        assert!(is_not_found(404, body, "credit_note"));
        assert!(!is_not_found(404, body, "invoice"));
        assert!(!is_not_found(200, body, "credit_note"));
        // A wrong base URL or a proxy answers 404 too; that is an error, not an absence.
        assert!(!is_not_found(404, b"<html>Not Found</html>", "customer"));
        assert!(!is_not_found(
            404,
            br#"{"status":404,"error":"Not Found"}"#,
            "customer"
        ));
        let error = answer(404, b"<html>Not Found</html>", "customers/x").unwrap_err();
        assert!(matches!(error, LagoApiError::Status { status: 404, .. }) && !error.is_transient());
    }

    #[test]
    fn errors_are_transient_when_a_later_try_can_succeed() {
        let status = |status| {
            answer(status, br#"{"status":0,"error":"x"}"#, "invoices/i")
                .unwrap_err()
                .is_transient()
        };
        for transient in [408, 429, 500, 502, 503, 504] {
            assert!(status(transient), "{transient}");
        }
        for permanent in [400, 401, 403, 404, 405, 422] {
            assert!(!status(permanent), "{permanent}");
        }
        assert!(matches!(
            answer(401, b"", "invoices/i"),
            Err(LagoApiError::Unauthorized)
        ));
        assert!(LagoApiError::Transport("connection refused".into()).is_transient());
        assert!(LagoApiError::Timeout {
            path: "customers/c".into()
        }
        .is_transient());
        let malformed = answer(200, b"not json", "customers/c").unwrap_err();
        assert!(matches!(malformed, LagoApiError::Malformed { .. }) && !malformed.is_transient());
    }
}
