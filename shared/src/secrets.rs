//! The API keys (contract §2), read from Secrets Manager once per warm function and kept
//! for a few minutes. A signature that fails with the kept HMAC key triggers an early
//! re-read, so that a rotated key works without a redeploy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;

const TTL: Duration = Duration::from_secs(300);
/// Bad signatures are cheap to send: re-read at most this often because of them (Lago's
/// retries of the same delivery come about 3 s and 20 s later, so a rotation is seen).
pub const FORCED_REFRESH_GAP: Duration = Duration::from_secs(5);

/// The secret's values. Debug is redacted so that no log or panic can print them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    pub lago_hmac_key: String,
    pub lago_api_key: Option<String>,
    pub salesforce_client_id: String,
    pub salesforce_client_secret: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets(<redacted>)")
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SecretsError {
    #[error("Secrets Manager is unavailable: {0}")]
    Unavailable(String),
    /// Names the problem, never a value.
    #[error("the secret is malformed: {0}")]
    Malformed(String),
}

impl Secrets {
    pub fn parse(json: &str) -> Result<Self, SecretsError> {
        let map: HashMap<String, Value> = serde_json::from_str(json)
            .map_err(|_| SecretsError::Malformed("its value is not a JSON object".into()))?;
        let field = |name: &str| -> Result<Option<String>, SecretsError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(SecretsError::Malformed(format!("{name} must be a string"))),
            }
        };
        let required = |name: &str| {
            field(name)?.ok_or_else(|| SecretsError::Malformed(format!("{name} is missing")))
        };
        Ok(Secrets {
            lago_hmac_key: required("lago_hmac_key")?,
            lago_api_key: field("lago_api_key")?,
            salesforce_client_id: required("salesforce_client_id")?,
            salesforce_client_secret: required("salesforce_client_secret")?,
        })
    }
}

enum Source {
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    Fixed(Arc<Secrets>),
}

struct Cached {
    secrets: Arc<Secrets>,
    fetched: Instant,
}

pub struct SecretCache {
    source: Source,
    cached: Mutex<Option<Cached>>,
}

impl SecretCache {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        SecretCache {
            source: Source::SecretsManager {
                client,
                secret_id: secret_id.into(),
            },
            cached: Mutex::new(None),
        }
    }

    /// Secrets known up front, for in-process tests and benchmarks.
    pub fn fixed(secrets: Secrets) -> Self {
        SecretCache {
            source: Source::Fixed(Arc::new(secrets)),
            cached: Mutex::new(None),
        }
    }

    pub async fn current(&self) -> Result<Arc<Secrets>, SecretsError> {
        let mut cached = self.cached.lock().await;
        match cached.as_ref() {
            Some(c) if c.fetched.elapsed() < TTL => Ok(c.secrets.clone()),
            _ => self.refresh(&mut cached).await,
        }
    }

    /// Re-reads the secret after a signature failed with `used`, unless that was read
    /// moments ago. Returns the new secrets only when the HMAC key changed.
    pub async fn reread_after_rejection(
        &self,
        used: &Secrets,
    ) -> Result<Option<Arc<Secrets>>, SecretsError> {
        let mut cached = self.cached.lock().await;
        let fresh_enough = cached
            .as_ref()
            .is_some_and(|c| c.fetched.elapsed() < FORCED_REFRESH_GAP);
        let latest = match cached.as_ref() {
            Some(c) if fresh_enough => c.secrets.clone(),
            _ => self.refresh(&mut cached).await?,
        };
        Ok((latest.lago_hmac_key != used.lago_hmac_key).then_some(latest))
    }

    async fn refresh(&self, cached: &mut Option<Cached>) -> Result<Arc<Secrets>, SecretsError> {
        let secrets = match &self.source {
            Source::Fixed(secrets) => secrets.clone(),
            Source::SecretsManager { client, secret_id } => {
                Arc::new(fetch(client, secret_id).await?)
            }
        };
        *cached = Some(Cached {
            secrets: secrets.clone(),
            fetched: Instant::now(),
        });
        Ok(secrets)
    }
}

async fn fetch(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<Secrets, SecretsError> {
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            // The error's code and message come from AWS and never carry the secret value.
            let code = e.code().unwrap_or("no answer");
            SecretsError::Unavailable(format!("GetSecretValue failed: {code}"))
        })?;
    let json = output
        .secret_string()
        .ok_or_else(|| SecretsError::Malformed("it has no SecretString".into()))?;
    Secrets::parse(json)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"lago_hmac_key":"hmac-key-value","lago_api_key":"api-key-value","salesforce_client_id":"client-id-value","salesforce_client_secret":"client-secret-value"}"#;

    #[test]
    fn parses_the_contract_shape() {
        let s = Secrets::parse(FULL).unwrap();
        assert_eq!(s.lago_hmac_key, "hmac-key-value");
        assert_eq!(s.lago_api_key.as_deref(), Some("api-key-value"));
        let without_api_key = Secrets::parse(
            r#"{"lago_hmac_key":"h","salesforce_client_id":"i","salesforce_client_secret":"s"}"#,
        )
        .unwrap();
        assert_eq!(without_api_key.lago_api_key, None);
    }

    #[test]
    fn errors_and_debug_never_show_values() {
        let cases = [
            (
                r#"{"lago_hmac_key":"hmac-key-value"}"#,
                "salesforce_client_id is missing",
            ),
            (
                r#"{"lago_hmac_key":123456,"salesforce_client_id":"i","salesforce_client_secret":"s"}"#,
                "lago_hmac_key must be a string",
            ),
            ("hmac-key-value", "not a JSON object"),
        ];
        for (json, expected) in cases {
            let message = Secrets::parse(json).unwrap_err().to_string();
            assert!(message.contains(expected), "{message}");
            assert!(
                !message.contains("hmac-key-value") && !message.contains("123456"),
                "{message}"
            );
        }
        let debug = format!("{:?}", Secrets::parse(FULL).unwrap());
        assert!(!debug.contains("value"), "{debug}");
    }

    #[tokio::test]
    async fn fixed_secrets_are_served_and_never_rotate() {
        let secrets = Secrets::parse(FULL).unwrap();
        let cache = SecretCache::fixed(secrets.clone());
        assert_eq!(*cache.current().await.unwrap(), secrets);
        assert_eq!(cache.reread_after_rejection(&secrets).await.unwrap(), None);
    }
}
