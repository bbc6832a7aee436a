//! PATCH an Account by id, or upsert a custom object by `Lago_Id__c`, with one token
//! renewal on an expired session, and the token itself: the client credentials come from
//! the [`SecretCache`], which is re-read once when the token endpoint refuses them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tracing::{info, warn, Span};

use super::session::{AccessToken, SessionCache};
use super::{Class, SalesforceError};
use crate::mapping::{SalesforceWrite, Target, LAGO_ID_FIELD};
use crate::secrets::{SecretCache, Secrets, SecretsError};
use crate::telemetry;

/// Longest wait for one Salesforce request; shortened to fit the invocation's deadline.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time kept back from the deadline to store the outcome.
const DEADLINE_RESERVE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    /// `Some(true)` when an upsert inserted, `Some(false)` when it updated, `None` for an Account.
    pub created: Option<bool>,
    /// True when the credit note was written without its invoice link, because that
    /// invoice is not in Salesforce.
    pub reference_dropped: bool,
}

pub struct SalesforceClient {
    http: reqwest::Client,
    token_url: String,
    /// `/services/data/vXX.X`: the root of the REST resources, which composite
    /// subrequests name without the host.
    data_path: String,
    data_url: String,
    session: SessionCache,
    api_calls: AtomicU64,
    credentials_refused: AtomicU64,
}

impl SalesforceClient {
    /// `base_url` is the org's My Domain URL; `api_version` digits such as `62.0`.
    pub fn new(base_url: &str, api_version: &str) -> Self {
        let http = crate::transport::client_builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .expect("the TLS backend initialises");
        let data_path = format!("/services/data/v{api_version}");
        SalesforceClient {
            http,
            token_url: format!("{base_url}/services/oauth2/token"),
            data_url: format!("{base_url}{data_path}"),
            data_path,
            session: SessionCache::default(),
            api_calls: AtomicU64::new(0),
            credentials_refused: AtomicU64::new(0),
        }
    }

    /// REST API calls and token requests made by this client so far (for benchmarks).
    pub fn calls(&self) -> (u64, u64) {
        (
            self.api_calls.load(Ordering::Relaxed),
            self.session.tokens_requested(),
        )
    }

    /// Calls that ended with the client credentials refused after the secret's re-read:
    /// each counted in the `SalesforceCredentialsRefused` metric too.
    pub fn credentials_refused(&self) -> u64 {
        self.credentials_refused.load(Ordering::Relaxed)
    }

    pub async fn write(
        &self,
        secrets: &SecretCache,
        write: &SalesforceWrite,
        deadline: Instant,
    ) -> Result<WriteReport, SalesforceError> {
        // Details never come with a reference: the mapping gives line items to invoices only.
        if let Some(details) = write.details.as_ref().filter(|d| !d.records.is_empty()) {
            return self
                .write_with_details(secrets, write, details, deadline)
                .await;
        }
        let url = format!("{}{}", self.data_url, self.record_path(&write.target));
        let Some(reference) = &write.reference else {
            return self
                .patch(secrets, &url, &write.fields, deadline)
                .await
                .map(|created| WriteReport {
                    created,
                    reference_dropped: false,
                });
        };
        let mut linked = write.fields.clone();
        linked.insert(
            reference.relationship.to_owned(),
            Value::Object(Map::from_iter([(
                reference.parent_field.to_owned(),
                Value::String(reference.value.clone()),
            )])),
        );
        match self.patch(secrets, &url, &linked, deadline).await {
            Ok(created) => Ok(WriteReport {
                created,
                reference_dropped: false,
            }),
            Err(e) if e.is_missing_parent() => {
                info!(
                    parent = reference.parent_object,
                    "linked record not in Salesforce; writing without the link"
                );
                let created = self.patch(secrets, &url, &write.fields, deadline).await?;
                Ok(WriteReport {
                    created,
                    reference_dropped: true,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// The record's resource, below [`Self::data_path`].
    pub(super) fn record_path(&self, target: &Target) -> String {
        match target {
            Target::Account { id } => format!("/sobjects/Account/{id}"),
            Target::Upsert { object, lago_id } => format!(
                "/sobjects/{object}/{LAGO_ID_FIELD}/{}",
                urlencoding::encode(lago_id)
            ),
            Target::UpsertBy {
                object,
                field,
                value,
            } => format!("/sobjects/{object}/{field}/{}", urlencoding::encode(value)),
        }
    }

    /// One PATCH, renewing the token once if the session has expired.
    async fn patch(
        &self,
        secrets: &SecretCache,
        url: &str,
        body: &Map<String, Value>,
        deadline: Instant,
    ) -> Result<Option<bool>, SalesforceError> {
        let token = self.token(secrets, deadline).await?;
        match self.send(url, body, &token, deadline).await {
            Err(e) if e.is_session_expired() => {
                info!("Salesforce session expired; requesting a new token");
                self.session.invalidate(&token).await;
                let token = self.token(secrets, deadline).await?;
                self.send(url, body, &token, deadline).await.map_err(|e| {
                    if e.is_session_expired() {
                        // A fresh token refused at once: the integration user or app is misconfigured.
                        SalesforceError {
                            class: Class::Permanent,
                            ..e
                        }
                    } else {
                        e
                    }
                })
            }
            other => other,
        }
    }

    /// The kept token, or a new one for the client credentials of `secrets`. A refusal of
    /// those credentials may mean the client secret was rotated (in the org and in
    /// Secrets Manager): the secret is re-read, at most every few seconds
    /// ([`SecretCache::reread_after_refusal`]), and the token requested once more when it
    /// changed. A refusal that remains is transient, so the event waits in the queue
    /// rather than fail, and is counted in the `SalesforceCredentialsRefused` metric,
    /// which raises an alarm.
    pub(super) async fn token(
        &self,
        secrets: &SecretCache,
        deadline: Instant,
    ) -> Result<AccessToken, SalesforceError> {
        let used = read_secret(secrets.current(), deadline).await?;
        let refusal = match self.request_token(&used, deadline).await {
            Err(e) if e.is_credentials_refused() => e,
            other => return other,
        };
        let result = match read_secret(secrets.reread_after_refusal(&used), deadline).await? {
            Some(rotated) => {
                info!(
                    "Salesforce refused the client credentials; retrying with the re-read secret"
                );
                self.request_token(&rotated, deadline).await
            }
            None => Err(refusal),
        };
        match result {
            Err(e) if e.is_credentials_refused() => {
                self.credentials_refused.fetch_add(1, Ordering::Relaxed);
                telemetry::count_one(telemetry::CREDENTIALS_REFUSED);
                warn!(
                    code = %e.code,
                    "Salesforce refuses the secret's client credentials; the event waits for the secret to be fixed"
                );
                Err(e)
            }
            other => other,
        }
    }

    async fn request_token(
        &self,
        secrets: &Secrets,
        deadline: Instant,
    ) -> Result<AccessToken, SalesforceError> {
        let timeout = timeout_before(deadline)?;
        self.session
            .token(&self.http, &self.token_url, secrets, timeout)
            .await
    }

    async fn send(
        &self,
        url: &str,
        body: &Map<String, Value>,
        token: &AccessToken,
        deadline: Instant,
    ) -> Result<Option<bool>, SalesforceError> {
        self.api_calls.fetch_add(1, Ordering::Relaxed);
        let request = self
            .http
            .patch(url)
            .bearer_auth(token.bearer())
            .json(body)
            .timeout(timeout_before(deadline)?);
        let (status, bytes) = exchange(request).await?;
        match status {
            204 => Ok(None),
            200 | 201 => Ok(Some(upsert_created(&bytes).unwrap_or(status == 201))),
            _ => {
                let error = SalesforceError::from_response(status, &bytes);
                warn!(status, code = %error.code, class = ?error.class, "Salesforce refused the write");
                Err(error)
            }
        }
    }
}

/// Sends a request and reads the whole answer, logging the org's API usage that every
/// REST answer reports in `Sforce-Limit-Info`.
///
/// An event's span (webhook or redrive) takes the usage onto the event's one log line:
/// a line per call would be a third of the log volume, which CloudWatch bills by the byte.
/// Batches (backfill) have no such span and log it per call.
pub(super) async fn exchange(
    request: reqwest::RequestBuilder,
) -> Result<(u16, Vec<u8>), SalesforceError> {
    let response = request
        .send()
        .await
        .map_err(|e| SalesforceError::from_transport(&e))?;
    let status = response.status().as_u16();
    if let Some(usage) = response
        .headers()
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
    {
        let span = Span::current();
        if span.has_field(USAGE_FIELD) {
            span.record(USAGE_FIELD, usage);
        } else {
            info!(api_usage = usage, status, "Salesforce answered");
        }
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| SalesforceError::from_transport(&e))?;
    Ok((status, bytes.to_vec()))
}

/// The span field (declared by the webhook and redrive spans) that carries the org's API usage.
const USAGE_FIELD: &str = "api_usage";

/// For the batch resources of [`super::collections`], which share the session and counters.
impl SalesforceClient {
    pub(super) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(super) fn data_url(&self) -> &str {
        &self.data_url
    }

    pub(super) fn data_path(&self) -> &str {
        &self.data_path
    }

    pub(super) fn count_call(&self) {
        self.api_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) async fn invalidate(&self, token: &AccessToken) {
        self.session.invalidate(token).await;
    }
}

/// Reads the secret within the deadline (a Secrets Manager call when the kept value is old).
async fn read_secret<T>(
    read: impl std::future::Future<Output = Result<T, SecretsError>>,
    deadline: Instant,
) -> Result<T, SalesforceError> {
    tokio::time::timeout(timeout_before(deadline)?, read)
        .await
        .map_err(|_| SalesforceError::new(None, "TIMEOUT", "the secret was not read in time"))?
        .map_err(|e| SalesforceError::from_secrets(&e))
}

fn upsert_created(body: &[u8]) -> Option<bool> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("created")?
        .as_bool()
}

fn timeout_before(deadline: Instant) -> Result<Duration, SalesforceError> {
    let left = deadline
        .saturating_duration_since(Instant::now())
        .saturating_sub(DEADLINE_RESERVE);
    if left.is_zero() {
        return Err(SalesforceError::new(
            None,
            "TIMEOUT",
            "no time left before the function's deadline",
        ));
    }
    Ok(left.min(REQUEST_TIMEOUT))
}
