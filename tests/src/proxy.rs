//! A pass-through HTTP proxy in front of moto that counts the requests by operation
//! (`X-Amz-Target`, e.g. `DynamoDB_20120810.UpdateItem`), for requests-per-event figures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use axum::response::Response;
use axum::Router;

pub type Counts = BTreeMap<String, u64>;

pub struct CountingProxy {
    pub url: String,
    state: Arc<Upstream>,
}

struct Upstream {
    url: String,
    http: reqwest::Client,
    counts: Mutex<Counts>,
}

impl CountingProxy {
    pub async fn start(upstream: &str) -> CountingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(Upstream {
            url: upstream.to_owned(),
            http: reqwest::Client::new(),
            counts: Mutex::default(),
        });
        let router = Router::new().fallback(forward).with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        CountingProxy { url, state }
    }

    /// Requests so far, by operation.
    pub fn counts(&self) -> Counts {
        self.state.counts.lock().unwrap().clone()
    }
}

async fn forward(State(upstream): State<Arc<Upstream>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX).await.expect("request body");
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no X-Amz-Target)")
        .to_owned();
    *upstream
        .counts
        .lock()
        .unwrap()
        .entry(operation)
        .or_default() += 1;

    let mut headers = parts.headers;
    headers.remove(HOST);
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let answer = upstream
        .http
        .request(parts.method, format!("{}{path}", upstream.url))
        .headers(headers)
        .body(body)
        .send()
        .await
        .expect("moto answers");
    let mut response = Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        if name != CONTENT_LENGTH && name != TRANSFER_ENCODING {
            response = response.header(name, value);
        }
    }
    let body = answer.bytes().await.expect("moto's answer body");
    response.body(Body::from(body)).expect("a valid response")
}
