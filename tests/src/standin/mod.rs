//! A stand-in for a Salesforce org's REST API, speaking the real protocol (OAuth client
//! credentials, sObject update/upsert, sObject Collections, Composite, SOQL queries and
//! their later pages, Salesforce error bodies, `Sforce-Limit-Info`) and validating writes
//! against the project's own DX metadata (required master-detail fields included), so a
//! client that passes against it also works against a real org.
//!
//! Tests drive it in-process through [`Standin`]; scripts use the same controls over
//! HTTP under `/__standin/` (see the `salesforce-standin` binary): `POST accounts`
//! `{"id"}`, `PATCH accounts/{id}` `{"Field": value, ...}`, `GET records`, `GET stats`,
//! `GET requests`, `POST expire-tokens`, `POST client-secret` `{"client_secret"}`,
//! `POST faults` (see [`Fault`]) and `POST validation-rules`
//! `{"object","field","equals","message"}`.

mod composite;
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
mod query;
mod rest;
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
/// An Account id as the org answers it: 18 characters, whatever was given.
pub use ids::to_18 as id_18;
pub use metadata::{FieldDef, FieldType, ObjectDef, Schema};
pub use state::{LoggedRequest, Stats};

use listener::{Conn, KillableListener};
use server::{App, Shared};
use validate::ValidationRule;

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

    /// Writes `fields` (a JSON object) to a seeded Account as a REST update would, metadata
    /// checks and validation rules included, so its `SystemModstamp` advances; not counted
    /// as an API call. Panics when the update is refused (a broken test setup).
    pub fn set_account_fields(&self, id: &str, fields: Value) {
        self.app
            .update_account(id, &fields)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// The stored records of an object, in insertion order (`Id` plus written fields).
    pub fn records(&self, object: &str) -> Vec<Value> {
        self.app.all_records().remove(object).unwrap_or_default()
    }

    /// The stored record of `object` with this id (15 or 18 characters), `SystemModstamp`
    /// included.
    pub fn record(&self, object: &str, id: &str) -> Option<Value> {
        let object = self.app.schema.object(object)?;
        let state = self.app.lock();
        let record = state.store.find_by_id(&object.name, id)?;
        Some(Value::Object(record.clone()))
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

    /// Adds a validation rule, as a customer's org often has: from now on, an insert or
    /// update that leaves `object.field` equal to `equals` (null: unset) fails with
    /// `400 FIELD_CUSTOM_VALIDATION_EXCEPTION` and `message`. Panics when the metadata
    /// has no such field (a broken test setup).
    pub fn add_validation_rule(&self, object: &str, field: &str, equals: Value, message: &str) {
        let rule = ValidationRule {
            object: object.to_owned(),
            field: field.to_owned(),
            equals,
            message: message.to_owned(),
        };
        self.app
            .add_validation_rule(rule)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
