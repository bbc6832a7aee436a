//! What the operator commands (check, setup-webhooks, backfill) share: the functions'
//! own configuration, secret and clients.

use lago_sync::backfill;
use lago_sync::config::{Config, ConfigError};
use lago_sync::entrypoint;
use lago_sync::lago_api::LagoApi;
use lago_sync::pipeline::App;
use lago_sync::store::DynamoDbStore;

pub struct Operator {
    pub config: Config,
    pub app: App<DynamoDbStore>,
}

impl Operator {
    /// Reads the configuration the functions read (SECRET_ID, IDEMPOTENCY_TABLE,
    /// SALESFORCE_URL, LAGO_API_URL, …) and builds their clients.
    pub async fn connect() -> Result<Operator, ConfigError> {
        let config = Config::from_env()?;
        let app = entrypoint::build(&config).await;
        Ok(Operator { config, app })
    }

    pub async fn lago(&self) -> Result<LagoApi, String> {
        backfill::lago_api(&self.app, &self.config.lago_api_url)
            .await
            .map_err(|e| e.to_string())
    }
}
