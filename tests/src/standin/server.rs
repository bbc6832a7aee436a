//! The HTTP application: shared state and the route table.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use axum::{middleware::from_fn_with_state, routing::post, Router};
use serde_json::Value;

use super::{
    control, dml,
    error::SfError,
    gate, ids,
    metadata::{ObjectDef, Schema},
    oauth, rest,
    state::{Record, State, Store, SYSTEM_MODSTAMP},
    validate::ValidationRule,
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

    /// Runs `f` on the records, under the lock, with what writes are checked against.
    pub fn with_org<T>(&self, f: impl FnOnce(&Org, &mut Store) -> T) -> T {
        let mut state = self.lock();
        let state = &mut *state;
        let org = Org {
            schema: &self.schema,
            rules: &state.validation_rules,
        };
        f(&org, &mut state.store)
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

    /// Writes `fields` to a seeded Account through the REST API's update path (metadata
    /// checks and validation rules included; `SystemModstamp` advances), without counting
    /// it as an API call.
    pub fn update_account(&self, id: &str, fields: &Value) -> Result<(), String> {
        let Value::Object(fields) = fields else {
            return Err(format!("the fields must be a JSON object, not {fields}"));
        };
        self.with_org(|org, store| {
            let account = org.object("Account").map_err(|e| e.message)?;
            dml::update(org, store, account, id, fields)
                .map(drop)
                .map_err(|e| format!("{}: {}", e.code, e.message))
        })
    }

    /// Adds a validation rule, its object and field named as the metadata spells them.
    pub fn add_validation_rule(&self, rule: ValidationRule) -> Result<(), String> {
        let object = self
            .schema
            .object(&rule.object)
            .ok_or_else(|| format!("the metadata defines no object {}", rule.object))?;
        let field = object
            .field(&rule.field)
            .ok_or_else(|| format!("{} has no field {}", object.name, rule.field))?;
        let rule = ValidationRule {
            object: object.name.clone(),
            field: field.name.clone(),
            ..rule
        };
        self.lock().validation_rules.push(rule);
        Ok(())
    }

    /// The written fields of every record: without `SystemModstamp`, which differs from
    /// one run to the next.
    pub fn all_records(&self) -> BTreeMap<String, Vec<Value>> {
        let written = |record: &Record| {
            let mut record = record.clone();
            record.remove(SYSTEM_MODSTAMP);
            Value::Object(record)
        };
        let state = self.lock();
        state
            .store
            .all()
            .iter()
            .map(|(object, records)| (object.clone(), records.iter().map(written).collect()))
            .collect()
    }
}

/// The org as a write sees it: the metadata and the validation rules it is checked against.
pub(crate) struct Org<'a> {
    pub schema: &'a Schema,
    pub rules: &'a [ValidationRule],
}

impl<'a> Org<'a> {
    pub fn object(&self, name: &str) -> Result<&'a ObjectDef, SfError> {
        self.schema.object(name).ok_or_else(SfError::not_found)
    }
}

pub(crate) fn router(app: App) -> Router {
    let rest = Router::new()
        .fallback(rest::serve)
        .layer(from_fn_with_state(app.clone(), gate::rest_gate));
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .nest(gate::PREFIX, rest)
        .nest("/__standin", control::router())
        .with_state(app)
}
