//! The Lago REST API, for the operator commands only (backfill, check, webhook set-up):
//! paginated lists and webhook endpoints (lago-webhooks.md §6). The functions never call it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use thiserror::Error;

/// Lago's default page is 100 and lago-api has no `max_per_page` cap (lago-webhooks.md §6),
/// so the largest page we are willing to hold in memory makes one call per 1,000 records.
pub const PER_PAGE: u32 = 1000;
const TIMEOUT: Duration = Duration::from_secs(60);

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
    #[error("Lago's answer on {path} is not what the API documents: {reason}")]
    Malformed { path: String, reason: String },
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
        let http = crate::transport::client_builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(TIMEOUT)
            .build()
            .expect("the TLS backend initialises");
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

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<Value, LagoApiError> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let response = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(|e| LagoApiError::Transport(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| LagoApiError::Transport(e.without_url().to_string()))?;
        match status {
            200..=299 => serde_json::from_slice(&bytes).map_err(|e| malformed(path, e.to_string())),
            401 => Err(LagoApiError::Unauthorized),
            _ => {
                let message = serde_json::from_slice::<Value>(&bytes)
                    .ok()
                    .and_then(|v| {
                        v.get("error")
                            .or_else(|| v.get("code"))
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
}
