//! What a payload does not tell, read from Lago's API or remembered:
//!
//! - the Account of a customer linked only through Lago's Salesforce integration, which
//!   Lago embeds without `integration_customers` in subscription, invoice and credit-note
//!   webhooks: remembered from its `customer.*` events, else read from Lago (§7.5);
//! - the current state of a subscription whose status cannot order two events (§7.1);
//! - the current state of a record whose writer died mid-write (§7.3).

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::error::Category;
use serde_json::Value;
use thiserror::Error;

use super::{reserve, within, App, Failure};
use crate::lago::{as_webhook_body, Customer, Envelope, EnvelopeError};
use crate::lago_api::{LagoApi, LagoApiError};
use crate::mapping::{self, MappingError, Plan};
use crate::salesforce::Class;
use crate::secrets::{SecretCache, Secrets, SecretsError};
use crate::store::{Store, StoreError};
use crate::Family;

/// Longest wait for Lago's API within an event (its deadline permitting).
const LAGO_READ: Duration = Duration::from_secs(5);

/// Reaches Lago's API with the key of the secret, read (and rotated) with the others.
pub struct LagoReader {
    http: reqwest::Client,
    url: String,
}

impl LagoReader {
    /// `lago_api_url` is `LAGO_API_URL`, without `/api/v1`.
    pub fn new(lago_api_url: &str) -> Self {
        LagoReader {
            http: LagoApi::http_client(),
            url: lago_api_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Runs `call` against Lago's API with the secret's key. When Lago refuses the key
    /// (401), the secret is re-read (at most every few seconds) and, if its key changed
    /// (rotated), `call` runs once more with the new one.
    pub(super) async fn with_api<T, F, Fut>(
        &self,
        secrets: &SecretCache,
        call: F,
    ) -> Result<T, LookupError>
    where
        F: Fn(LagoApi) -> Fut,
        Fut: Future<Output = Result<T, LookupError>>,
    {
        let used = secrets.current().await?;
        match call(self.api(&used)?).await {
            Err(LookupError::Lago(LagoApiError::Unauthorized)) => {
                let key = |s: &Secrets| s.lago_api_key.clone();
                match secrets.reread_if_changed(&used, key).await? {
                    Some(rotated) => call(self.api(&rotated)?).await,
                    None => Err(LookupError::Lago(LagoApiError::Unauthorized)),
                }
            }
            other => other,
        }
    }

    fn api(&self, secrets: &Secrets) -> Result<LagoApi, LookupError> {
        let key = secrets.lago_api_key.as_deref().ok_or(LookupError::NoKey)?;
        Ok(LagoApi::with_client(self.http.clone(), &self.url, key))
    }
}

#[derive(Debug, Error)]
pub enum LookupError {
    #[error(transparent)]
    Lago(#[from] LagoApiError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    #[error("the secret has no lago_api_key, which reading Lago's current state needs")]
    NoKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LookupError> for Failure {
    fn from(e: LookupError) -> Failure {
        let (class, code) = match &e {
            LookupError::Lago(lago) if lago.is_transient() => {
                (Class::Transient, "LAGO_API_UNAVAILABLE")
            }
            LookupError::Lago(_) => (Class::Permanent, "LAGO_API_REFUSED"),
            LookupError::Secrets(SecretsError::Unavailable(_)) => {
                (Class::Transient, "SECRETS_UNAVAILABLE")
            }
            LookupError::Secrets(_) | LookupError::NoKey => (Class::Permanent, "LAGO_API_KEY"),
            LookupError::Store(_) => (Class::Transient, "STORE_UNAVAILABLE"),
        };
        Failure {
            class,
            code: code.to_owned(),
            message: e.to_string(),
        }
    }
}

/// Why an event has no plan.
pub(super) enum Unplanned {
    Skipped(String),
    Invalid(String),
    Unmappable(MappingError),
    Lookup(LookupError),
}

impl From<MappingError> for Unplanned {
    fn from(e: MappingError) -> Unplanned {
        match e {
            MappingError::NoAccount(reason) => Unplanned::Skipped(reason),
            // An object Lago signed with values of other types than the mapping reads is
            // kept, like a bad value; text that is not even JSON is not.
            MappingError::Envelope(EnvelopeError::MalformedObject { ref source, .. })
                if source.classify() == Category::Data =>
            {
                Unplanned::Unmappable(e)
            }
            MappingError::Envelope(e) => Unplanned::Invalid(e.to_string()),
            e => Unplanned::Unmappable(e),
        }
    }
}

impl From<LookupError> for Unplanned {
    fn from(e: LookupError) -> Unplanned {
        Unplanned::Lookup(e)
    }
}

impl<S: Store> App<S> {
    /// Maps the event. A customer known only through Lago's Salesforce integration is
    /// remembered from its own events; the other families use what was remembered, or
    /// read the customer from Lago before answering `skipped`.
    /// `envelope` is `body` parsed, which the caller has done already.
    pub(super) async fn plan(
        &self,
        family: Family,
        envelope: &Envelope<'_>,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Plan, Unplanned> {
        let reason = match mapping::plan(family, envelope) {
            Ok(plan) => {
                if family == Family::Customer {
                    self.remember_link(envelope, &plan, deadline).await?;
                }
                return Ok(plan);
            }
            Err(MappingError::NoAccount(reason)) if family != Family::Customer => reason,
            Err(e) => return Err(e.into()),
        };
        let object = &object_of(body, family)?["customer"];
        let Some(account) = self.linked_account(object, deadline).await? else {
            return Err(Unplanned::Skipped(reason));
        };
        let linked = with_account(body, family, &account);
        let envelope = Envelope::parse(&linked).map_err(|e| Unplanned::Invalid(e.to_string()))?;
        Ok(mapping::plan(family, &envelope)?)
    }

    /// [`Self::plan`] of a stored or synthesized body, not parsed yet.
    pub(super) async fn plan_body(
        &self,
        family: Family,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Plan, Unplanned> {
        let envelope = Envelope::parse(body).map_err(|e| Unplanned::Invalid(e.to_string()))?;
        self.plan(family, &envelope, body, deadline).await
    }

    async fn remember_link(
        &self,
        envelope: &Envelope<'_>,
        plan: &Plan,
        deadline: Instant,
    ) -> Result<(), LookupError> {
        let Ok(customer) = envelope.object::<Customer>(Family::Customer.object_type()) else {
            return Ok(());
        };
        let direct = customer
            .external_salesforce_id
            .as_deref()
            .is_some_and(|id| !id.trim().is_empty());
        match &plan.write.target {
            // Linked directly, the id rides in every webhook: nothing to remember.
            mapping::Target::Account { id } if !direct => {
                within(deadline, self.store.link(&plan.lago_id, id)).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The Account of the embedded `customer`: remembered, or read from Lago (and then
    /// remembered); `None` when the customer has none.
    async fn linked_account(
        &self,
        customer: &Value,
        deadline: Instant,
    ) -> Result<Option<String>, LookupError> {
        let text = |field: &str| customer[field].as_str().filter(|v| !v.is_empty());
        let (Some(lago_id), Some(external_id)) = (text("lago_id"), text("external_id")) else {
            return Ok(None);
        };
        if let Some(account) = within(deadline, self.store.linked_account(lago_id)).await? {
            return Ok(Some(account));
        }
        let read = self.lago.with_api(&self.secrets, |api| async move {
            Ok(api
                .object(Family::Customer, external_id, lago_timeout(deadline))
                .await?)
        });
        let current = match read.await {
            // Without a Lago API key in the secret nothing more can be learnt: skipped.
            Err(LookupError::NoKey) => return Ok(None),
            read => read?,
        };
        let Some(current) = current else {
            return Ok(None);
        };
        let account = serde_json::from_value::<Customer>(current)
            .ok()
            .and_then(|customer| mapping::account_id(&customer).ok());
        let Some(account) = account else {
            return Ok(None);
        };
        within(deadline, self.store.link(lago_id, &account)).await?;
        Ok(Some(account))
    }

    /// Lago's current state of the subscription `plan` writes, mapped with the payload's
    /// customer; `None` when Lago has no such subscription any more.
    pub(super) async fn current_subscription(
        &self,
        body: &[u8],
        webhook_type: &str,
        plan: &Plan,
        deadline: Instant,
    ) -> Result<Option<Plan>, LookupError> {
        let status = plan.write.fields.get("Status__c").and_then(Value::as_str);
        let timeout = lago_timeout(deadline);
        let this_one = |s: &Value| s["lago_id"].as_str() == Some(plan.lago_id.as_str());
        let read = self.lago.with_api(&self.secrets, |api| async move {
            // Several subscriptions share an external_id after an upgrade: the one of
            // this status first, then the current one.
            let of_status = api.subscription(&plan.lago_ref, status, timeout).await?;
            if let Some(found) = of_status.filter(this_one) {
                return Ok(Some(found));
            }
            let current = api.object(Family::Subscription, &plan.lago_ref, timeout);
            Ok(current.await?.filter(this_one))
        });
        let found = match read.await {
            // Without a Lago API key the payload is written as it came.
            Err(LookupError::NoKey) => return Ok(None),
            read => read?,
        };
        let Some(mut current) = found else {
            return Ok(None);
        };
        if let Ok(object) = object_of(body, Family::Subscription) {
            current["customer"] = object["customer"].clone();
        }
        let body = as_webhook_body(Family::Subscription, webhook_type, &current);
        Ok(Envelope::parse(&body)
            .map_err(MappingError::from)
            .and_then(|envelope| mapping::plan(Family::Subscription, &envelope))
            .ok())
    }

    /// The body of a webhook carrying Lago's current state of the object `lago_ref` of
    /// `family`, `None` when Lago has no such object.
    pub(super) async fn current_state(
        &self,
        family: Family,
        lago_ref: &str,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, LookupError> {
        let read = self.lago.with_api(&self.secrets, |api| async move {
            let Some(mut object) = api.object(family, lago_ref, lago_timeout(deadline)).await?
            else {
                return Ok(None);
            };
            // Lago's subscription answers do not embed the customer the mapping needs.
            if family == Family::Subscription {
                if let Some(customer) = object["external_customer_id"].as_str() {
                    let read = api.object(Family::Customer, customer, lago_timeout(deadline));
                    object["customer"] = read.await?.unwrap_or_default();
                }
            }
            Ok(Some(object))
        });
        let object = read.await?;
        Ok(object.map(|object| as_webhook_body(family, family.state_type(), &object)))
    }
}

fn lago_timeout(deadline: Instant) -> Duration {
    reserve(deadline)
        .saturating_duration_since(Instant::now())
        .min(LAGO_READ)
}

/// The family's object in a body that parsed as an envelope.
fn object_of(body: &[u8], family: Family) -> Result<Value, Unplanned> {
    let mut envelope: Value =
        serde_json::from_slice(body).map_err(|e| Unplanned::Invalid(e.to_string()))?;
    Ok(family_object(&mut envelope, family).take())
}

/// The body with the embedded customer's `external_salesforce_id` set to `account`.
fn with_account(body: &[u8], family: Family, account: &str) -> Vec<u8> {
    let mut envelope: Value = serde_json::from_slice(body).unwrap_or_default();
    let customer = &mut family_object(&mut envelope, family)["customer"];
    if customer.is_object() {
        customer["external_salesforce_id"] = Value::from(account);
    }
    serde_json::to_vec(&envelope).expect("a JSON value serialises")
}

/// Where the family's object sits: under its `object_type`, except the invoice of
/// `invoice.payment_dispute_lost`, inside `payment_dispute_lost.invoice` (lago-api's
/// serializer), or that object itself (lago-openapi's flat schema), as the mapping reads it.
fn family_object(envelope: &mut Value, family: Family) -> &mut Value {
    if family != Family::Invoice || envelope["object_type"] != "payment_dispute_lost" {
        return &mut envelope[family.object_type()];
    }
    let wrapper = &mut envelope["payment_dispute_lost"];
    if wrapper["invoice"].is_object() {
        &mut wrapper["invoice"]
    } else {
        wrapper
    }
}
