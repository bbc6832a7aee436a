//! The backfill as a Lambda function, invoked by hand (`sam remote invoke
//! BackfillFunction`): it runs until 30 s before its deadline and answers the summary;
//! `finished: false` means invoke it again, and it resumes from the checkpoints.

use std::time::{Duration, Instant};

use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use serde::Deserialize;
use tracing::error;

use super::{lago_api, run, Options, Summary};
use crate::config::Config;
use crate::{clock, entrypoint, telemetry};

/// Kept back from the deadline: the last batch and its checkpoint must fit in it.
const MARGIN: Duration = Duration::from_secs(30);
/// The template's Timeout, assumed when the runtime sends no usable deadline
/// (`cargo lambda watch` sends a duration).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(900);

/// The invocation's payload; every field is optional (`{}` backfills everything).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    customer: Option<String>,
    dry_run: bool,
    restart: bool,
}

/// The whole `main` of the backfill function.
pub fn run_function() -> Result<(), lambda_http::Error> {
    entrypoint::on_one_thread(async move {
        telemetry::init();
        let config =
            Config::from_env().inspect_err(|e| error!(error = %e, "invalid configuration"))?;
        let app = entrypoint::build(&config).await;
        lambda_runtime::run(service_fn(|event: LambdaEvent<Request>| {
            let (app, config) = (&app, &config);
            async move {
                let deadline = clock::deadline_ms(event.context.deadline, DEFAULT_TIMEOUT);
                let stop_at = clock::instant_at(deadline).checked_sub(MARGIN);
                let lago = lago_api(app, &config.lago_api_url).await?;
                let request = event.payload;
                let options = Options {
                    customer: request.customer,
                    dry_run: request.dry_run,
                    restart: request.restart,
                    stop_at: Some(stop_at.unwrap_or_else(Instant::now)),
                    ..Options::default()
                };
                let summary: Summary = run(app, &lago, &options).await?;
                Ok::<_, lambda_http::Error>(summary)
            }
        }))
        .await
    })
}
