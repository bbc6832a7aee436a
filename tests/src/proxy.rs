//! A pass-through HTTP proxy in front of an emulator (moto, the Salesforce stand-in) that
//! counts the requests by operation (`X-Amz-Target`, e.g. `DynamoDB_20120810.UpdateItem`)
//! and adds up the emulator's own time: from a request fully received to its answer ready.
//!
//! Hop-by-hop headers are not forwarded: moto answers every request with `Connection: close`,
//! but clients keep their connection to the proxy, as they would to DynamoDB.
//!
//! A request with the header [`BASELINE`] is forwarded and metered apart, and not counted:
//! a bench's own requests, made to learn what a bare client pays beyond the metered time.
//!
//! [`MeteringProxy::set_delay`] makes the emulator slow, as an AWS having a bad day: each
//! request is handled at once, but its answer is held back. A client that gives up waiting
//! has its request applied all the same, as a real service would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{HeaderMap, CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use axum::response::Response;
use axum::Router;

pub type Counts = BTreeMap<String, u64>;

/// The header that marks a bench's own request: metered apart, not counted.
pub const BASELINE: &str = "x-metering-baseline";

pub struct MeteringProxy {
    pub url: String,
    state: Arc<Upstream>,
}

struct Upstream {
    url: String,
    http: reqwest::Client,
    meter: Mutex<Meter>,
}

#[derive(Default)]
struct Meter {
    counts: Counts,
    busy: Duration,
    baseline_busy: Duration,
    /// How long every answer is held back ([`MeteringProxy::set_delay`]).
    delay: Duration,
}

impl MeteringProxy {
    pub async fn start(upstream: &str) -> MeteringProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Upstream {
            url: upstream.to_owned(),
            http: reqwest::Client::new(),
            meter: Mutex::default(),
        });
        let router = Router::new().fallback(forward).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        MeteringProxy { url, state }
    }

    /// Requests so far, by operation.
    pub fn counts(&self) -> Counts {
        self.state.meter.lock().unwrap().counts.clone()
    }

    /// The emulator's time on all requests so far, not counting [`BASELINE`] ones.
    pub fn busy(&self) -> Duration {
        self.state.meter.lock().unwrap().busy
    }

    /// The emulator's time on the [`BASELINE`] requests so far.
    pub fn baseline_busy(&self) -> Duration {
        self.state.meter.lock().unwrap().baseline_busy
    }

    /// Holds every answer back by `delay` from now on (`Duration::ZERO`: fast again). The
    /// request itself reaches the emulator at once; the delay is not metered as busy time.
    pub fn set_delay(&self, delay: Duration) {
        self.state.meter.lock().unwrap().delay = delay;
    }

    /// `config` (e.g. the emulator's own, [`crate::moto::Moto::sdk_config`]) with its
    /// endpoint moved to this proxy, for SDK clients that go through it.
    pub fn sdk_config(&self, config: &SdkConfig) -> SdkConfig {
        config.to_builder().endpoint_url(&self.url).build()
    }
}

async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("request body");
    let started = Instant::now();
    let baseline = parts.headers.contains_key(BASELINE);
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no X-Amz-Target)")
        .to_owned();
    let mut headers = end_to_end(parts.headers);
    headers.remove(HOST);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = upstream
        .http
        .request(parts.method, format!("{}{path}", upstream.url))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("the emulator answers");
    let mut response = Response::builder().status(answer.status());
    *response.headers_mut().expect("a response builder") = end_to_end(answer.headers().clone());
    let body = answer.bytes().await.expect("the emulator's answer body");

    let delay = {
        let mut meter = upstream.meter.lock().unwrap();
        if baseline {
            meter.baseline_busy += started.elapsed();
        } else {
            *meter.counts.entry(operation).or_default() += 1;
            meter.busy += started.elapsed();
        }
        meter.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response.body(Body::from(body)).expect("a valid response")
}

/// `headers` without the ones that concern one connection only; the length is set anew.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    for name in [CONNECTION, TRANSFER_ENCODING, CONTENT_LENGTH] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers
}
