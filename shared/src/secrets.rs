//! The API keys (contract §2), read from Secrets Manager once per warm function and kept
//! for a few minutes. A signature that fails with the kept HMAC key, or Salesforce client
//! credentials that the token endpoint refuses, trigger an early re-read, so that a rotated
//! key or client secret works without a redeploy.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use serde_json::Value;
use thiserror::Error;
use tokio::sync::Mutex;

const TTL: Duration = Duration::from_secs(300);
/// Bad signatures are cheap to send, and a refused client secret refuses every event
/// until it is fixed: re-read at most this often because of them (Lago's retries of the
/// same delivery come about 3 s and 20 s later, so a rotation is seen).
pub const FORCED_REFRESH_GAP: Duration = Duration::from_secs(5);

/// The secret's values. Debug is redacted so that no log or panic can print them.
#[derive(Clone, PartialEq, Eq)]
pub struct Secrets {
    pub lago_hmac_key: String,
    pub lago_api_key: Option<String>,
    pub salesforce_client_id: String,
    pub salesforce_client_secret: String,
    /// The last path segment of the outbound-message endpoint that Salesforce calls
    /// (`POST /salesforce/accounts/{token}`, contract §8); without it that route answers 401.
    pub salesforce_outbound_token: Option<String>,
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
            salesforce_outbound_token: field("salesforce_outbound_token")?,
            salesforce_client_id: required("salesforce_client_id")?,
            salesforce_client_secret: required("salesforce_client_secret")?,
        })
    }
}

/// Secrets held in memory, for in-process tests and benchmarks. A clone shares the value:
/// what [`MemorySecret::set`] stores is what the next read of a [`SecretCache`] over it
/// returns, as after a rotation in Secrets Manager.
#[derive(Clone)]
pub struct MemorySecret(Arc<std::sync::Mutex<Arc<Secrets>>>);

impl MemorySecret {
    pub fn new(secrets: Secrets) -> Self {
        MemorySecret(Arc::new(std::sync::Mutex::new(Arc::new(secrets))))
    }

    pub fn set(&self, secrets: Secrets) {
        *self.lock() = Arc::new(secrets);
    }

    fn get(&self) -> Arc<Secrets> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Arc<Secrets>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

enum Source {
    SecretsManager {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    Memory(MemorySecret),
}

struct Cached {
    secrets: Arc<Secrets>,
    fetched: Instant,
}

pub struct SecretCache {
    source: Source,
    cached: Mutex<Option<Cached>>,
    reads: AtomicU64,
}

impl SecretCache {
    pub fn new(client: aws_sdk_secretsmanager::Client, secret_id: impl Into<String>) -> Self {
        SecretCache {
            source: Source::SecretsManager {
                client,
                secret_id: secret_id.into(),
            },
            cached: Mutex::new(None),
            reads: AtomicU64::new(0),
        }
    }

    /// Secrets known up front, for in-process tests and benchmarks.
    pub fn fixed(secrets: Secrets) -> Self {
        Self::in_memory(MemorySecret::new(secrets))
    }

    /// Secrets that a test can rotate through `source`.
    pub fn in_memory(source: MemorySecret) -> Self {
        SecretCache {
            source: Source::Memory(source),
            cached: Mutex::new(None),
            reads: AtomicU64::new(0),
        }
    }

    /// How many times the secret was read from its source (for tests and benchmarks).
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
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
        self.reread_if_changed(used, |s| s.lago_hmac_key.clone())
            .await
    }

    /// Re-reads the secret after the Salesforce token endpoint refused `used`'s client
    /// credentials, unless that was read moments ago. Returns the new secrets only when
    /// the client id or secret changed.
    pub async fn reread_after_refusal(
        &self,
        used: &Secrets,
    ) -> Result<Option<Arc<Secrets>>, SecretsError> {
        self.reread_if_changed(used, |s| {
            (
                s.salesforce_client_id.clone(),
                s.salesforce_client_secret.clone(),
            )
        })
        .await
    }

    /// Re-reads the secret after what `part` picks out of `used` was refused (a key that
    /// may have been rotated), unless that was read moments ago. Returns the new secrets
    /// only when that part changed.
    pub async fn reread_if_changed<P: PartialEq>(
        &self,
        used: &Secrets,
        part: impl Fn(&Secrets) -> P,
    ) -> Result<Option<Arc<Secrets>>, SecretsError> {
        let latest = self.reread_unless_fresh().await?;
        Ok((part(&latest) != part(used)).then_some(latest))
    }

    /// The rate limit of the forced re-reads: a value read less than
    /// [`FORCED_REFRESH_GAP`] ago is as good as a new read.
    async fn reread_unless_fresh(&self) -> Result<Arc<Secrets>, SecretsError> {
        let mut cached = self.cached.lock().await;
        match cached.as_ref() {
            Some(c) if c.fetched.elapsed() < FORCED_REFRESH_GAP => Ok(c.secrets.clone()),
            _ => self.refresh(&mut cached).await,
        }
    }

    async fn refresh(&self, cached: &mut Option<Cached>) -> Result<Arc<Secrets>, SecretsError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        let secrets = match &self.source {
            Source::Memory(source) => source.get(),
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
        assert_eq!(cache.reread_after_refusal(&secrets).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_refusal_rereads_a_rotated_client_secret_at_most_every_few_seconds() {
        let first = Secrets::parse(FULL).unwrap();
        let source = MemorySecret::new(first.clone());
        let cache = SecretCache::in_memory(source.clone());
        cache.current().await.unwrap();
        let rotated = Secrets {
            salesforce_client_secret: "rotated-client-secret".into(),
            ..first.clone()
        };
        source.set(rotated.clone());
        // Read moments ago: the kept value stands, and nothing is read.
        assert_eq!(cache.reread_after_refusal(&first).await.unwrap(), None);
        assert_eq!(cache.reads(), 1);
        // Once read after the gap, the change is seen; a new HMAC key alone is no change.
        cache.cached.lock().await.as_mut().unwrap().fetched -= FORCED_REFRESH_GAP;
        let reread = cache.reread_after_refusal(&first).await.unwrap();
        assert_eq!(reread.as_deref(), Some(&rotated));
        assert_eq!(cache.reads(), 2);
        assert_eq!(cache.reread_after_rejection(&first).await.unwrap(), None);
    }
}
