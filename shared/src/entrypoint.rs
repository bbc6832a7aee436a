//! The Lambda side: configuration and clients built once per cold start, then each API
//! Gateway HTTP API (payload 2.0) request turned into a [`Delivery`] and answered.
//!
//! The raw v2 event is used rather than `lambda_http::run`'s `Request`, because that
//! conversion panics on a body marked base64 that is not, where a webhook endpoint must
//! answer 400.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use base64::{engine::general_purpose::STANDARD, Engine};
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::http::{header::CONTENT_TYPE, HeaderMap, HeaderValue};
use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
use lambda_http::Body;
use tracing::{error, info, Instrument, Span};

use crate::config::Config;
use crate::pipeline::{App, Delivery, LagoReader, OutboundAnswer, OutboundRequest, Outcome};
use crate::salesforce::SalesforceClient;
use crate::secrets::SecretCache;
use crate::store::{DynamoDbStore, Store};
use crate::{clock, redrive, telemetry, transport, Family};

/// The whole `main` of a webhook function binary.
pub fn run(family: Family) -> Result<(), lambda_http::Error> {
    on_one_thread(async move {
        let (app, _) = start().await?;
        lambda_runtime::run(service_fn(|event| answer(&app, family, event))).await
    })
}

/// The whole `main` of the redrive function, run by a schedule: retries the due events
/// and answers with the run's report.
pub fn run_redrive() -> Result<(), lambda_http::Error> {
    on_one_thread(async move {
        let (app, config) = start().await?;
        lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
            let (app, max_age) = (&app, config.redrive_max_age);
            async move {
                let deadline = clock::instant_at(effective_deadline(event.context.deadline));
                // An error fails the invocation, which the schedule's next run repeats.
                redrive::run_once(app, max_age, deadline)
                    .await
                    .map_err(lambda_http::Error::from)
            }
        }))
        .await
    })
}

/// The whole `main` of the `salesforce-account` function: Salesforce's outbound messages
/// (`POST /salesforce/accounts/{token}`, contract §8).
pub fn run_outbound() -> Result<(), lambda_http::Error> {
    on_one_thread(async move {
        let (app, config) = start().await?;
        let org_id = config.salesforce_org_id.clone().ok_or_else(|| {
            let e = crate::config::ConfigError::Missing("SALESFORCE_ORG_ID");
            error!(error = %e, "invalid configuration");
            e
        })?;
        lambda_runtime::run(service_fn(|event| answer_outbound(&app, &org_id, event))).await
    })
}

pub async fn answer_outbound<S: Store>(
    app: &App<S>,
    org_id: &str,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Infallible> {
    let (request, context) = event.into_parts();
    // The path holds the token: only the route's name is logged, never the path.
    let span = tracing::info_span!(
        "outbound",
        request_id = %context.request_id,
        family = crate::outbound::FAMILY,
        delivery_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        api_usage = tracing::field::Empty,
    );
    let answer = async {
        let body = match raw_body(&request) {
            Ok(body) => body,
            Err(_) => return OutboundAnswer::refused(400, "the body is marked base64 but is not"),
        };
        let deadline_epoch_ms = effective_deadline(context.deadline);
        let outbound = OutboundRequest {
            token: path_token(&request),
            body: &body,
            org_id,
            deadline: clock::instant_at(deadline_epoch_ms),
        };
        let answer = app.handle_outbound(&outbound).await;
        Span::current().record("outcome", answer.status);
        info!(
            status = answer.status,
            notifications = answer.outcomes.len(),
            "outbound message answered"
        );
        answer
    }
    .instrument(span)
    .await;
    Ok(response(
        answer.status,
        crate::outbound::soap::CONTENT_TYPE,
        answer.body,
    ))
}

/// `{token}` of the route; behind a function URL (`cargo lambda watch`), which has no path
/// parameters, the path's last segment.
fn path_token(request: &ApiGatewayV2httpRequest) -> &str {
    match request.path_parameters.get("token") {
        Some(token) => token,
        None => request
            .raw_path
            .as_deref()
            .and_then(|path| path.trim_end_matches('/').rsplit('/').next())
            .unwrap_or_default(),
    }
}

/// A function serves one event at a time and spends it waiting on I/O: one thread serves it
/// without a multi-threaded runtime's cross-thread wake-ups (futex and eventfd system calls,
/// about 60 per event, measured with strace) and its worker threads to start.
pub(crate) fn on_one_thread(
    main: impl Future<Output = Result<(), lambda_http::Error>>,
) -> Result<(), lambda_http::Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(main)
}

async fn start() -> Result<(App<DynamoDbStore>, Config), lambda_http::Error> {
    telemetry::init();
    let config = Config::from_env().inspect_err(|e| error!(error = %e, "invalid configuration"))?;
    Ok((build(&config).await, config))
}

/// The AWS SDK's own bounds of one call: an outer limit only, since every call of an event
/// is also bounded by the invocation's deadline (contract §7.7, [`crate::pipeline`]).
pub fn aws_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

pub async fn build(config: &Config) -> App<DynamoDbStore> {
    let sdk = transport::aws_config_loader()
        .timeout_config(aws_timeouts())
        .load()
        .await;
    App {
        secrets: SecretCache::new(aws_sdk_secretsmanager::Client::new(&sdk), &config.secret_id),
        store: DynamoDbStore::new(
            aws_sdk_dynamodb::Client::new(&sdk),
            &config.idempotency_table,
        ),
        salesforce: SalesforceClient::new(&config.salesforce_url, &config.salesforce_api_version),
        lago: LagoReader::new(&config.lago_api_url),
    }
}

pub async fn answer<S: Store>(
    app: &App<S>,
    family: Family,
    event: LambdaEvent<ApiGatewayV2httpRequest>,
) -> Result<ApiGatewayV2httpResponse, Infallible> {
    let (request, context) = event.into_parts();
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    let span = tracing::info_span!(
        "webhook",
        request_id = %context.request_id,
        family = %family,
        delivery_id = header("x-lago-unique-key"),
        webhook_type = tracing::field::Empty,
        lago_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        api_usage = tracing::field::Empty,
    );
    let outcome = async {
        let body = match raw_body(&request) {
            Ok(body) => body,
            Err(outcome) => return outcome,
        };
        let deadline_epoch_ms = effective_deadline(context.deadline);
        let delivery = Delivery {
            body: &body,
            signature: header("x-lago-signature"),
            algorithm: header("x-lago-signature-algorithm"),
            unique_key: header("x-lago-unique-key").filter(|k| !k.is_empty()),
            deadline: clock::instant_at(deadline_epoch_ms),
            deadline_epoch_ms,
        };
        app.handle(family, &delivery).await
    }
    .instrument(span)
    .await;
    Ok(response(
        outcome.status_code(),
        "application/json",
        outcome.body().to_string(),
    ))
}

/// The exact bytes Lago signed.
fn raw_body(request: &ApiGatewayV2httpRequest) -> Result<Vec<u8>, Outcome> {
    let text = request.body.as_deref().unwrap_or_default();
    if request.is_base64_encoded {
        STANDARD.decode(text).map_err(|_| {
            Outcome::Invalid("the body is marked base64 but is not valid base64".into())
        })
    } else {
        Ok(text.as_bytes().to_vec())
    }
}

/// The function timeout of template.yaml, assumed when the runtime gives no usable deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

fn effective_deadline(sent_epoch_ms: u64) -> i64 {
    clock::deadline_ms(sent_epoch_ms, DEFAULT_TIMEOUT)
}

fn response(status: u16, content_type: &'static str, body: String) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body));
    response
}
