//! The backfill in-process: the library's `App` with a chosen store, the Salesforce
//! stand-in with an Account per generated customer, and the Lago stand-in serving them.

use lago_sync::backfill::{self, Options, Summary};
use lago_sync::lago_api::LagoApi;
use lago_sync::pipeline::{App, LagoReader};
use lago_sync::salesforce::SalesforceClient;
use lago_sync::secrets::{MemorySecret, SecretCache, Secrets};
use lago_sync::store::Store;

use super::{account_id, Dataset, LagoStandin, API_KEY};
use crate::events::{self, HMAC_KEY};
use crate::standin::{Standin, StandinConfig};

pub struct Rig<S> {
    pub app: App<S>,
    pub salesforce: Standin,
    pub lago: LagoStandin,
    pub api: LagoApi,
    /// The secret's value "in Secrets Manager": set it to rotate.
    pub secret: MemorySecret,
}

impl<S: Store> Rig<S> {
    /// Seeds an Account for each of the first `accounts` customers (all by default).
    pub async fn start(data: Dataset, store: S, accounts: Option<usize>) -> Rig<S> {
        let accounts = (0..accounts.unwrap_or(data.customers.len()))
            .map(account_id)
            .collect();
        let salesforce = Standin::start(StandinConfig {
            accounts,
            api_limit: 1_000_000,
            ..StandinConfig::default()
        })
        .await;
        let lago = LagoStandin::start(API_KEY, data).await;
        let secrets =
            Secrets::parse(&events::secret_json(HMAC_KEY)).expect("the test secret parses");
        let secret = MemorySecret::new(secrets);
        let app = App {
            secrets: SecretCache::in_memory(secret.clone()),
            store,
            salesforce: SalesforceClient::new(&salesforce.url(), "62.0"),
            lago: LagoReader::new(&lago.url()),
        };
        let api = LagoApi::new(&lago.url(), API_KEY);
        Rig {
            app,
            salesforce,
            lago,
            api,
            secret,
        }
    }

    pub async fn backfill(&self, options: &Options<'_>) -> Summary {
        backfill::run(&self.app, &self.api, options)
            .await
            .expect("the backfill starts")
    }
}
