//! The HTTP application: shared state and the route table.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{middleware::from_fn_with_state, routing::post, Router};
use serde_json::Value;

use super::{
    control, describe,
    error::SfError,
    gate, ids,
    metadata::{ObjectDef, Schema},
    oauth, sobjects,
    state::{Record, State},
};

pub(crate) type App = Arc<Shared>;

pub(crate) struct Shared {
    state: Mutex<State>,
    pub schema: Schema,
    pub client_id: String,
    pub api_limit: u64,
    /// Where the stand-in listens; the instance URL when a token request has no Host.
    pub base_url: String,
}

impl Shared {
    pub fn new(
        schema: Schema,
        client_id: String,
        client_secret: String,
        api_limit: u64,
        base_url: String,
    ) -> Self {
        Shared {
            state: Mutex::new(State {
                client_secret,
                ..State::default()
            }),
            schema,
            client_id,
            api_limit,
            base_url,
        }
    }

    /// A test that panicked while holding the lock must not wedge the others.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn object(&self, name: &str) -> Result<&ObjectDef, SfError> {
        self.schema.object(name).ok_or_else(SfError::not_found)
    }

    /// Seeds an Account (the project only ever updates existing ones); returns its
    /// 18-character id.
    pub fn add_account(&self, id: &str) -> Result<String, String> {
        if !ids::is_well_formed(id) {
            return Err(format!(
                "{id:?} is not a Salesforce id (15 or 18 letters and digits)"
            ));
        }
        let account = self
            .schema
            .object("Account")
            .ok_or("the metadata defines no Account fields")?;
        let name =
            Record::from_iter([("Name".to_owned(), format!("Stand-in Account {id}").into())]);
        self.lock().store.seed(&account.name, id, name);
        Ok(ids::to_18(id))
    }

    pub fn all_records(&self) -> BTreeMap<String, Vec<Value>> {
        let state = self.lock();
        state
            .store
            .all()
            .iter()
            .map(|(object, records)| {
                (
                    object.clone(),
                    records.iter().cloned().map(Value::Object).collect(),
                )
            })
            .collect()
    }
}

pub(crate) fn router(app: App) -> Router {
    let rest = sobjects::router()
        .merge(describe::router())
        .layer(from_fn_with_state(app.clone(), gate::rest_gate));
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .nest(gate::PREFIX, rest)
        .nest("/__standin", control::router())
        .with_state(app)
}
