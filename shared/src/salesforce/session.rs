//! The OAuth 2.0 client-credentials access token, kept for the life of a warm function.
//! Salesforce returns no expiry, so a token is used until a call answers 401.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;

use super::SalesforceError;
use crate::secrets::Secrets;

/// The bearer token. Never printed: its Debug output is redacted.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct AccessToken(Arc<str>);

impl AccessToken {
    pub(super) fn bearer(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(<redacted>)")
    }
}

#[derive(Default)]
pub(super) struct SessionCache {
    // A mutex rather than a lock-free cell: concurrent callers wait for one token request
    // instead of each making their own.
    current: Mutex<Option<AccessToken>>,
    requested: AtomicU64,
}

impl SessionCache {
    pub(super) fn tokens_requested(&self) -> u64 {
        self.requested.load(Ordering::Relaxed)
    }

    pub(super) async fn token(
        &self,
        http: &reqwest::Client,
        token_url: &str,
        secrets: &Secrets,
        timeout: Duration,
    ) -> Result<AccessToken, SalesforceError> {
        let mut current = self.current.lock().await;
        if let Some(token) = current.as_ref() {
            return Ok(token.clone());
        }
        let token = self.request(http, token_url, secrets, timeout).await?;
        *current = Some(token.clone());
        Ok(token)
    }

    /// Drops `stale` unless another caller has already replaced it.
    pub(super) async fn invalidate(&self, stale: &AccessToken) {
        let mut current = self.current.lock().await;
        if current.as_ref() == Some(stale) {
            *current = None;
        }
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        token_url: &str,
        secrets: &Secrets,
        timeout: Duration,
    ) -> Result<AccessToken, SalesforceError> {
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
        }
        #[derive(Deserialize)]
        struct Refused {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }

        self.requested.fetch_add(1, Ordering::Relaxed);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", secrets.salesforce_client_id.as_str()),
            ("client_secret", secrets.salesforce_client_secret.as_str()),
        ];
        let response = http
            .post(token_url)
            .form(&form)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| SalesforceError::from_transport(&e))?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .await
            .map_err(|e| SalesforceError::from_transport(&e))?;
        if status == 200 {
            return serde_json::from_slice::<Granted>(&body)
                .map(|g| AccessToken(g.access_token.into()))
                .map_err(|_| {
                    SalesforceError::new(
                        Some(status),
                        "TOKEN_RESPONSE",
                        "the token endpoint answered without access_token",
                    )
                });
        }
        match serde_json::from_slice::<Refused>(&body) {
            Ok(r) if !r.error.is_empty() => Err(SalesforceError::new(
                Some(status),
                format!("OAUTH_{}", r.error.to_ascii_uppercase()),
                format!("token request refused: {}", r.error_description),
            )),
            _ => Err(SalesforceError::new(
                Some(status),
                format!("HTTP_{status}"),
                "token request failed",
            )),
        }
    }
}
