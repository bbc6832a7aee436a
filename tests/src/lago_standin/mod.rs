//! A stand-in for Lago's REST API (lago-webhooks.md §6): the four paginated lists with
//! Lago's `meta`, their filters and default filters, the four single-record reads with
//! Lago's 404 (the subscription one by status, as lago-api does), the customer upsert with
//! Lago's validations and 422s, Bearer authentication, webhook endpoints, call counters,
//! and injected failures and slowness.

mod customers;
mod dataset;
mod rig;
mod server;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;

use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};

pub use dataset::{account_id, Dataset, FEES_PER_INVOICE};
pub use rig::Rig;
use server::Shared;

/// The API key the stand-in accepts unless told otherwise.
pub const API_KEY: &str = "lago-api-key-never-logged";

/// Requests received, by `METHOD /api/v1/<path>` (ids in paths kept).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LagoStats {
    pub requests: u64,
    pub by_route: BTreeMap<String, u64>,
}

impl LagoStats {
    /// Requests of `method` on a path starting with `/api/v1/<collection>`.
    pub fn count(&self, method: &str, collection: &str) -> u64 {
        let prefix = format!("{method} /api/v1/{collection}");
        self.by_route
            .iter()
            .filter(|(route, _)| route.starts_with(&prefix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Requests on exactly `route`, e.g. `GET /api/v1/customers/ext-000001` (the path as
    /// sent, percent-encoding kept, without the query).
    pub fn route(&self, route: &str) -> u64 {
        self.by_route.get(route).copied().unwrap_or(0)
    }
}

/// A running stand-in; the server stops when this is dropped.
pub struct LagoStandin {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl LagoStandin {
    pub async fn start(api_key: &str, data: Dataset) -> LagoStandin {
        Self::start_on(api_key, data, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap_or_else(|e| panic!("Lago stand-in failed to start: {e}"))
    }

    pub async fn start_on(
        api_key: &str,
        data: Dataset,
        addr: SocketAddr,
    ) -> std::io::Result<LagoStandin> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(api_key, data));
        let router = server::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                eprintln!("Lago stand-in stopped: {e}");
            }
        });
        Ok(LagoStandin { shared, addr, task })
    }

    /// What clients use as `LAGO_API_URL` (without `/api/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> LagoStats {
        self.shared.lock().stats.clone()
    }

    /// The body of every `POST /api/v1/customers` received, oldest first, whatever its
    /// answer (refused, failed or slowed ones included, as [`LagoStandin::stats`] counts
    /// them); a body that is not JSON as a string.
    pub fn customer_upserts(&self) -> Vec<Value> {
        self.shared.lock().customer_upserts.clone()
    }

    pub fn webhook_endpoints(&self) -> Vec<Value> {
        self.shared.lock().endpoints.clone()
    }

    /// Replaces a record of a list (matched by `lago_id`), e.g. to make Lago's current
    /// state differ from a webhook's, or adds it when there is none with that `lago_id`.
    pub fn replace(&self, collection: &str, record: Value) {
        let mut state = self.shared.lock();
        let list = state.data.list_mut(collection);
        match list.iter_mut().find(|r| r["lago_id"] == record["lago_id"]) {
            Some(slot) => *slot = record,
            None => list.push(record),
        }
    }

    /// The stored record of `collection` with this `lago_id`.
    pub fn record(&self, collection: &str, lago_id: &str) -> Option<Value> {
        let state = self.shared.lock();
        let found = state
            .data
            .list(collection)
            .iter()
            .find(|r| r["lago_id"] == lago_id);
        found.cloned()
    }

    /// From now on every request answers `status` (e.g. 503) with Lago's error body, until
    /// called with `None`. Requests are still counted.
    pub fn fail_with(&self, status: Option<u16>) {
        self.shared.lock().failing =
            status.map(|s| StatusCode::from_u16(s).expect("an HTTP status"));
    }

    /// From now on every request waits `delay` before it is answered (zero: no wait).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }
}

impl Drop for LagoStandin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
