//! One built function binary as Lambda runs it, with its own table and secret in moto and
//! its own Salesforce stand-in: the set-up of the end-to-end suites.

use crate::apigw::HttpEvent;
use crate::events::{self, HMAC_KEY};
use crate::lago::signed_headers;
use crate::lago_standin::{Dataset, LagoStandin, API_KEY as LAGO_API_KEY};
use crate::lambda::{binary_path, LambdaProcess};
use crate::moto::{unique_name, Moto};
use crate::standin::{Standin, StandinConfig};

pub struct FunctionStack {
    pub function: LambdaProcess,
    pub standin: Standin,
    /// Lago's API (`LAGO_API_URL`), knowing no customer until a test adds one.
    pub lago: LagoStandin,
    /// The family's route segment, e.g. `credit-note`.
    pub route: &'static str,
    /// The secret's name in moto, for rotation tests.
    pub secret: String,
    /// The table's name in moto, for a redrive over what the function stored.
    pub table: String,
    /// The function's environment, for another function beside it ([`Self::beside`]).
    env: Vec<(String, String)>,
}

impl FunctionStack {
    /// Starts `binary`; `overrides` replace or add environment variables (an empty value
    /// unsets one in effect, for start-up error tests).
    pub async fn start(
        binary: &str,
        route: &'static str,
        overrides: &[(&str, &str)],
    ) -> FunctionStack {
        let moto = Moto::shared().await;
        let (table, secret) = (unique_name("table"), unique_name("secret"));
        moto.create_table(&table).await;
        moto.create_secret(&secret, &events::secret_json(HMAC_KEY))
            .await;
        let standin = Standin::start(StandinConfig::default()).await;
        let lago = LagoStandin::start(LAGO_API_KEY, Dataset::default()).await;
        let mut env = moto.env();
        env.extend([
            ("SECRET_ID".to_owned(), secret.clone()),
            ("IDEMPOTENCY_TABLE".to_owned(), table.clone()),
            ("SALESFORCE_URL".to_owned(), standin.url()),
            ("SALESFORCE_API_VERSION".to_owned(), "62.0".to_owned()),
            ("LAGO_API_URL".to_owned(), lago.url()),
        ]);
        for (name, value) in overrides {
            env.retain(|(k, _)| k != name);
            env.push((name.to_string(), value.to_string()));
        }
        let function = LambdaProcess::start(&binary_path(binary), &env).await;
        FunctionStack {
            function,
            standin,
            lago,
            route,
            secret,
            table,
            env,
        }
    }

    /// Another built function on the same table, secret and stand-ins, as the stack
    /// deploys them side by side.
    pub async fn beside(&self, binary: &str) -> LambdaProcess {
        LambdaProcess::start(&binary_path(binary), &self.env).await
    }

    /// The function stopped at start (a setting missing or malformed): its logs, which
    /// name why.
    pub async fn start_failure(&self) -> String {
        let status = self
            .function
            .wait_exit(std::time::Duration::from_secs(20))
            .await
            .expect("the function exits");
        assert!(!status.success(), "{}", self.function.logs());
        self.function.logs()
    }

    /// A request to this function's route signed as Lago signs it, under `key`.
    pub fn signed(&self, key: &str, body: &[u8]) -> HttpEvent {
        HttpEvent::webhook(self.route)
            .headers(signed_headers(HMAC_KEY, key, body))
            .body(body.to_vec())
    }
}
