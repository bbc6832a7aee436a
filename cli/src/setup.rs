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

/// Ends a command's run: the summary as JSON or as `print` writes it for people (after the
/// progress line, on a terminal), and the exit status.
pub fn report<T: serde::Serialize>(
    summary: &T,
    json: bool,
    after_progress: bool,
    print: impl Fn(&T),
    succeeded: bool,
) -> std::process::ExitCode {
    if after_progress {
        eprintln!();
    }
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("a summary serialises")
        );
    } else {
        print(summary);
    }
    if succeeded {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
