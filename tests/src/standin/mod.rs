//! A stand-in for a Salesforce org's REST API, speaking the real protocol (OAuth client
//! credentials, sObject update/upsert, sObject Collections, Salesforce error bodies,
//! `Sforce-Limit-Info`) and validating writes against the project's own DX metadata,
//! so a client that passes against it also works against a real org.
//!
//! Tests drive it in-process through [`Standin`]; scripts use the same controls over
//! HTTP under `/__standin/` (see the `salesforce-standin` binary).

mod control;
mod describe;
mod dml;
mod error;
mod fault;
mod gate;
mod ids;
mod listener;
mod metadata;
mod oauth;
mod server;
mod sobjects;
mod state;
mod validate;

use std::{
    collections::BTreeMap,
    io,
    net::{Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::Arc,
};

use serde_json::Value;
use tokio::{net::TcpListener, task::JoinHandle};

pub use fault::{Fault, FaultAction};
pub use metadata::{FieldDef, FieldType, ObjectDef, Schema};
pub use state::{LoggedRequest, Stats};

use listener::{Conn, KillableListener};
use server::{App, Shared};

#[derive(Debug, Clone)]
pub struct StandinConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The `objects` directory of the Salesforce DX source.
    pub metadata_dir: PathBuf,
    /// Accounts that exist from the start (the project never creates Accounts).
    pub accounts: Vec<String>,
    /// The daily API request allocation reported in `Sforce-Limit-Info`; requests
    /// beyond it get `403 REQUEST_LIMIT_EXCEEDED`.
    pub api_limit: u64,
}

impl StandinConfig {
    /// The repository's `salesforce/force-app/main/default/objects`.
    pub fn repo_metadata_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../salesforce/force-app/main/default/objects")
    }
}

impl Default for StandinConfig {
    fn default() -> Self {
        StandinConfig {
            client_id: "local-client-id".into(),
            client_secret: "local-client-secret".into(),
            metadata_dir: Self::repo_metadata_dir(),
            accounts: vec!["001000000000001AAA".into()],
            // A Developer Edition org's daily allocation.
            api_limit: 15_000,
        }
    }
}

/// A running stand-in; the server stops when this is dropped.
pub struct Standin {
    app: App,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Standin {
    /// Starts on an ephemeral port of 127.0.0.1. Panics when the metadata or the
    /// configured accounts are invalid (a broken test setup).
    pub async fn start(cfg: StandinConfig) -> Standin {
        Standin::start_on(cfg, SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .unwrap_or_else(|e| panic!("Salesforce stand-in failed to start: {e}"))
    }

    pub async fn start_on(cfg: StandinConfig, addr: SocketAddr) -> io::Result<Standin> {
        let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
        let schema = Schema::load(&cfg.metadata_dir).map_err(invalid)?;
        let listener = TcpListener::bind(addr).await?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(Ipv4Addr::LOCALHOST.into());
        }
        let app: App = Arc::new(Shared::new(
            schema,
            cfg.client_id,
            cfg.client_secret,
            cfg.api_limit,
            format!("http://{addr}"),
        ));
        for account in &cfg.accounts {
            app.add_account(account).map_err(invalid)?;
        }
        let service = server::router(app.clone()).into_make_service_with_connect_info::<Conn>();
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(KillableListener(listener), service).await {
                eprintln!("Salesforce stand-in stopped: {e}");
            }
        });
        Ok(Standin { app, addr, task })
    }

    /// The base URL: what clients use as `SALESFORCE_URL`, and the `instance_url`.
    pub fn url(&self) -> String {
        self.app.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn schema(&self) -> &Schema {
        &self.app.schema
    }

    /// Seeds an Account; returns its 18-character id.
    pub fn add_account(&self, id: &str) -> String {
        self.app.add_account(id).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The stored records of an object, in insertion order (`Id` plus written fields).
    pub fn records(&self, object: &str) -> Vec<Value> {
        self.app.all_records().remove(object).unwrap_or_default()
    }

    /// The first record of `object` whose `field` equals `value`.
    pub fn record_by(&self, object: &str, field: &str, value: &str) -> Option<Value> {
        self.records(object)
            .into_iter()
            .find(|r| r.get(field).and_then(Value::as_str) == Some(value))
    }

    pub fn all_records(&self) -> BTreeMap<String, Vec<Value>> {
        self.app.all_records()
    }

    pub fn stats(&self) -> Stats {
        self.app.lock().stats.clone()
    }

    /// Every request received under `/services/data/`, oldest first.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.app.lock().log.clone()
    }

    /// Invalidates every issued token: the next REST call gets `401 INVALID_SESSION_ID`.
    pub fn expire_tokens(&self) {
        self.app.lock().tokens.clear();
    }

    /// Rotates the External Client App's consumer secret, as an admin does in Setup: the
    /// token endpoint refuses the old one from now on (`400 invalid_client`), while tokens
    /// already issued stay valid until [`Standin::expire_tokens`].
    pub fn set_client_secret(&self, secret: &str) {
        self.app.lock().client_secret = secret.to_owned();
    }

    /// Queues a scripted failure for the next matching REST request(s).
    pub fn add_fault(&self, fault: Fault) {
        self.app.lock().faults.push_back(fault);
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
