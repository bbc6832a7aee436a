//! The pipeline in-process: an [`App`] with the in-memory store, in-memory secrets and the
//! Salesforce stand-in, and helpers to deliver signed bodies to it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lago_sync::pipeline::{App, Delivery, LagoReader, Outcome};
use lago_sync::redrive::{run_at, Report};
use lago_sync::salesforce::SalesforceClient;
use lago_sync::secrets::{MemorySecret, SecretCache, Secrets};
use lago_sync::store::{delivery_key, MemoryStore, Store, StoredDelivery};
use lago_sync::Family;
use serde_json::Value;

use crate::events::{self, HMAC_KEY};
use crate::lago::sign;
use crate::lago_standin::{Dataset, LagoStandin, API_KEY as LAGO_API_KEY};
use crate::standin::{Standin, StandinConfig};

/// Answers webhooks as `family`'s function would, with the in-memory store unless a test
/// gives another ([`Harness::start_with`]).
pub struct Harness<S = MemoryStore> {
    pub family: Family,
    pub app: App<S>,
    pub standin: Standin,
    /// Lago's API, for what the pipeline reads there (empty until a test fills it).
    pub lago: LagoStandin,
    /// The secret's value "in Secrets Manager": set it to rotate.
    pub secret: MemorySecret,
}

impl Harness {
    pub async fn start(family: Family) -> Harness {
        Harness::start_with(family, MemoryStore::new()).await
    }
}

impl<S: Store> Harness<S> {
    pub async fn start_with(family: Family, store: S) -> Harness<S> {
        let standin = Standin::start(StandinConfig::default()).await;
        let secrets =
            Secrets::parse(&events::secret_json(HMAC_KEY)).expect("the test secret parses");
        let secret = MemorySecret::new(secrets);
        let lago = LagoStandin::start(LAGO_API_KEY, Dataset::default()).await;
        let app = App {
            secrets: SecretCache::in_memory(secret.clone()),
            store,
            salesforce: SalesforceClient::new(&standin.url(), "62.0"),
            lago: LagoReader::new(&lago.url()),
        };
        Harness {
            family,
            app,
            standin,
            lago,
            secret,
        }
    }

    /// Delivers `body`, signed, under the unique key `key`, to this harness's family.
    pub async fn deliver(&self, key: &str, body: &[u8]) -> Outcome {
        self.deliver_to(self.family, key, body).await
    }

    pub async fn deliver_to(&self, family: Family, key: &str, body: &[u8]) -> Outcome {
        let signature = sign(HMAC_KEY, body);
        self.app
            .handle(
                family,
                &delivery(key, body, &signature, Duration::from_secs(20)),
            )
            .await
    }

    pub async fn deliver_with(
        &self,
        key: &str,
        body: &[u8],
        signature: &str,
        time_left: Duration,
    ) -> Outcome {
        self.app
            .handle(self.family, &delivery(key, body, signature, time_left))
            .await
    }

    /// Runs the redrive as if `ahead` had passed, so that what is queued is due by then.
    pub async fn redrive(&self, ahead: Duration) -> Report {
        self.redrive_with(Duration::from_secs(7 * 24 * 3600), ahead.as_millis() as i64)
            .await
    }

    /// [`Harness::redrive`] with events dead past `max_age`, its clock `ahead_ms` ahead.
    pub async fn redrive_with(&self, max_age: Duration, ahead_ms: i64) -> Report {
        run_at(
            &self.app,
            max_age,
            Instant::now() + Duration::from_secs(120),
            move || epoch_ms() + ahead_ms,
        )
        .await
        .expect("the store answers")
    }

    pub fn rest_calls(&self) -> u64 {
        self.standin.stats().rest_requests
    }

    /// The custom-object record with `Lago_Id__c` = `lago_id`; panics when absent.
    pub fn record(&self, object: &str, lago_id: &str) -> Value {
        self.standin
            .record_by(object, "Lago_Id__c", lago_id)
            .unwrap_or_else(|| panic!("no {object} {lago_id}"))
    }

    pub fn key(&self, unique_key: &str) -> String {
        delivery_key(self.family.as_str(), unique_key)
    }

    pub async fn stored(&self, unique_key: &str) -> Option<StoredDelivery> {
        self.app
            .store
            .load(&self.key(unique_key))
            .await
            .expect("the store answers")
    }
}

/// A delivery signed with `signature`, due to answer within `time_left`.
pub fn delivery<'a>(
    key: &'a str,
    body: &'a [u8],
    signature: &'a str,
    time_left: Duration,
) -> Delivery<'a> {
    Delivery {
        body,
        signature: Some(signature),
        algorithm: Some("hmac"),
        unique_key: Some(key),
        deadline: Instant::now() + time_left,
        deadline_epoch_ms: epoch_ms() + time_left.as_millis() as i64,
    }
}

pub fn epoch_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as i64
}
