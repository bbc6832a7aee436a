//! Salesforce → Lago (contract §8): an outbound message's Accounts pushed to Lago's
//! customer upsert, each notification through the webhooks' own steps — the record guard
//! (`LagoCustomer/<Account id>`, ordered by `SystemModstamp`, so a redelivered or older
//! message does nothing), the store and the redrive. Salesforce gets its acknowledgement
//! once every notification is done or stored, and resends the message until then.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn, Span};

use super::lookups::LookupError;
use super::{finishing, reserve, within, App, Event, Failure, Guarded, Outcome};
use crate::lago_api::LagoApiError;
use crate::mapping;
use crate::outbound::{self, customer_push, soap, CustomerPush};
use crate::secrets::Secrets;
use crate::store::{delivery_key, Lapsed, Release, Store, Taken};
use crate::{clock, telemetry};

/// Longest wait for Lago's customer upsert within an invocation.
const LAGO_WRITE: Duration = Duration::from_secs(8);
/// What an Account shows while its push waits for Lago.
const PENDING_REASON: &str =
    "Lago could not be reached; the customer is created as soon as it answers";

/// An outbound message as the function received it.
#[derive(Debug, Clone)]
pub struct OutboundRequest<'a> {
    /// The last segment of the request path, to compare with the secret's
    /// `salesforce_outbound_token`.
    pub token: &'a str,
    pub body: &'a [u8],
    /// The org whose messages are accepted (`SALESFORCE_ORG_ID`).
    pub org_id: &'a str,
    pub deadline: Instant,
}

/// The HTTP answer (a SOAP body, [`soap::CONTENT_TYPE`]) and what became of each
/// notification.
#[derive(Debug)]
pub struct OutboundAnswer {
    pub status: u16,
    pub body: String,
    pub outcomes: Vec<(String, Outcome)>,
}

impl OutboundAnswer {
    pub fn refused(status: u16, reason: &str) -> Self {
        OutboundAnswer {
            status,
            body: soap::fault(reason),
            outcomes: Vec::new(),
        }
    }
}

/// A notification as it is stored for the redrive: the Account's fields as sent.
#[derive(Debug, Serialize, Deserialize)]
struct StoredNotification {
    notification_id: String,
    fields: BTreeMap<String, String>,
}

impl<S: Store> App<S> {
    /// Answers an outbound message: the token and the org first, in constant time and
    /// before the body is read; then every notification, newest first per Account.
    pub async fn handle_outbound(&self, request: &OutboundRequest<'_>) -> OutboundAnswer {
        let secrets = match within(request.deadline, self.secrets.current()).await {
            Ok(secrets) => secrets,
            Err(e) => return OutboundAnswer::refused(503, &e.to_string()),
        };
        if !self.token_accepted(&secrets, request).await {
            warn!("outbound message refused: the path token is not the secret's");
            return OutboundAnswer::refused(401, "unauthorized");
        }
        let message = match soap::parse(request.body) {
            Ok(message) => message,
            Err(e) => return OutboundAnswer::refused(400, &e.to_string()),
        };
        if !outbound::same_org(&message.organization_id, request.org_id) {
            warn!("outbound message refused: another org sent it");
            return OutboundAnswer::refused(401, "unauthorized");
        }
        let mut notifications = message.notifications;
        // Newest first per Account: the newest is pushed, the older ones find it written
        // and cost no Lago call.
        notifications.sort_by(|a, b| {
            let stamp = |n: &soap::Notification| n.fields.get("SystemModstamp").cloned();
            (a.fields.get("Id"), stamp(b)).cmp(&(b.fields.get("Id"), stamp(a)))
        });
        let mut outcomes = Vec::with_capacity(notifications.len());
        for notification in notifications {
            let outcome = self
                .push_account(&notification.id, &notification.fields, request.deadline)
                .await;
            telemetry::count(outbound::FAMILY, outcome.label());
            outcomes.push((notification.id, outcome));
        }
        // Not acknowledged unless each is done or stored: Salesforce sends it again.
        let unsettled = outcomes
            .iter()
            .find(|(_, o)| matches!(o, Outcome::Unavailable(_) | Outcome::InProgress));
        match unsettled {
            Some((id, outcome)) => OutboundAnswer {
                status: 503,
                body: soap::fault(&format!(
                    "notification {id} not settled: {}",
                    outcome.label()
                )),
                outcomes,
            },
            None => OutboundAnswer {
                status: 200,
                body: soap::ack(),
                outcomes,
            },
        }
    }

    /// The path token against the secret's, and against a re-read secret when that fails
    /// (the token was rotated).
    async fn token_accepted(&self, secrets: &Secrets, request: &OutboundRequest<'_>) -> bool {
        let matches = |s: &Secrets| {
            s.salesforce_outbound_token
                .as_deref()
                .is_some_and(|token| outbound::same_secret(request.token, token))
        };
        if matches(secrets) {
            return true;
        }
        let token = |s: &Secrets| s.salesforce_outbound_token.clone();
        let reread = within(
            request.deadline,
            self.secrets.reread_if_changed(secrets, token),
        );
        matches!(reread.await, Ok(Some(rotated)) if matches(&rotated))
    }

    /// Pushes one Account to Lago as notification `notification_id` (an outbound message's,
    /// or one `lago-sync push-accounts` makes up): at most one Lago call, none when it was
    /// pushed already or a newer state of the Account was.
    pub async fn push_account(
        &self,
        notification_id: &str,
        fields: &BTreeMap<String, String>,
        deadline: Instant,
    ) -> Outcome {
        let stored = StoredNotification {
            notification_id: notification_id.to_owned(),
            fields: fields.clone(),
        };
        let body = serde_json::to_vec(&stored).expect("a map of strings serialises");
        let key = delivery_key(outbound::FAMILY, notification_id);
        let event = Event {
            key: &key,
            family: outbound::FAMILY,
            webhook_type: outbound::EVENT_TYPE,
            body: &body,
            body_sha256: hex::encode(Sha256::digest(&body)),
            retry: None,
            first_parked_ms: None,
            issue_open: false,
            deadline,
            deadline_ms: clock::epoch_ms_of(deadline),
        };
        let span = Span::current();
        if span.has_field("delivery_id") {
            span.record("delivery_id", notification_id);
        }
        let outcome = self.push(&event, fields).await;
        info!(
            notification = notification_id,
            outcome = outcome.label(),
            "Account pushed"
        );
        outcome
    }

    /// The redrive's retry of a stored notification.
    pub(super) async fn retry_account(&self, event: &Event<'_>) -> Outcome {
        let Ok(stored) = serde_json::from_slice::<StoredNotification>(event.body) else {
            let e = crate::mapping::MappingError::invalid("body", "", "not a stored notification");
            return self.store_unmappable(event, &e).await;
        };
        self.push(event, &stored.fields).await
    }

    async fn push(&self, event: &Event<'_>, fields: &BTreeMap<String, String>) -> Outcome {
        let push = match customer_push(fields) {
            Ok(push) => push,
            Err(e) => return self.store_unmappable(event, &e).await,
        };
        let guarded = Guarded {
            record: format!("LagoCustomer/{}", push.account_id),
            version: Some(push.version),
            lago_ref: &push.account_id,
            plan: None,
        };
        let lease = match self.take_record(event, &guarded).await {
            Ok(lease) => lease,
            Err(outcome) => return outcome,
        };
        match self.upsert_customer(&push, event.deadline).await {
            Ok(()) => {
                let release = Release::Written {
                    version: guarded.version,
                    now_ms: clock::now_ms(),
                };
                self.let_go(event, &lease, &release).await;
                let synced = Outcome::Synced {
                    created: None,
                    invoice_linked: None,
                };
                self.complete_stored(event, None, synced).await
            }
            Err(refusal) => {
                let reason = refusal.user_reason;
                let outcome = self
                    .store_failed(event, None, &guarded.record, Some(&lease), refusal.failure)
                    .await;
                self.show_on_account(event, &push, &outcome, &reason).await;
                outcome
            }
        }
    }

    async fn upsert_customer(&self, push: &CustomerPush, deadline: Instant) -> Result<(), Refusal> {
        let timeout = reserve(deadline)
            .saturating_duration_since(Instant::now())
            .min(LAGO_WRITE);
        let body = &push.body;
        self.lago
            .with_api(&self.secrets, |api| async move {
                Ok(api.upsert_customer(body, timeout).await.map(drop)?)
            })
            .await
            .map_err(Refusal::from)
    }

    /// The Account shows why it has no Lago customer yet: `failed` with the reason, or
    /// `pending` the first time Lago could not be reached. One Salesforce call, best
    /// effort: the stored event is what gets retried.
    async fn show_on_account(
        &self,
        event: &Event<'_>,
        push: &CustomerPush,
        outcome: &Outcome,
        reason: &str,
    ) {
        let (status, reason) = match outcome {
            Outcome::Failed { .. } => ("failed", reason),
            Outcome::Queued { .. } if event.retry.is_none() => ("pending", PENDING_REASON),
            _ => return,
        };
        let write = mapping::sync_status(&push.account_id, status, reason);
        // The client keeps its own margin before the deadline.
        match self
            .salesforce
            .write(&self.secrets, &write, event.deadline)
            .await
        {
            Ok(_) => info!(status, "the Account shows the push's status"),
            Err(e) => warn!(status, error_code = %e.code, "the Account's status was not written"),
        }
    }

    /// A notification whose function died mid-push: Salesforce was not acknowledged and
    /// sends the message again, so the record is only freed for it.
    pub(super) async fn recover_account(&self, lapsed: &Lapsed, deadline: Instant) -> Outcome {
        let now_ms = clock::now_ms();
        let taken = within(
            deadline,
            self.store.take_lapsed(lapsed, None, now_ms, now_ms + 5_000),
        );
        match taken.await {
            Ok(Taken::Leased(lease)) => {
                match finishing(deadline, self.store.release(&lease, &Release::Abandoned)).await {
                    Ok(_) => Outcome::Skipped(format!(
                        "{} freed for Salesforce's resend of the unacknowledged message",
                        lapsed.record
                    )),
                    Err(e) => Outcome::Unavailable(e.to_string()),
                }
            }
            Ok(_) => Outcome::InProgress,
            Err(e) => Outcome::Unavailable(e.to_string()),
        }
    }
}

/// Why Lago did not take the customer: for the stored event, and in words for the Account.
struct Refusal {
    failure: Failure,
    user_reason: String,
}

impl From<LookupError> for Refusal {
    fn from(e: LookupError) -> Self {
        let user_reason = match &e {
            LookupError::Lago(LagoApiError::Status { status: 422, message, .. }) => {
                format!("Lago refused the customer: {}", explain(message))
            }
            LookupError::Lago(LagoApiError::Unauthorized) | LookupError::NoKey => {
                "The integration's Lago API key is missing or refused: ask your Salesforce or AWS administrator".to_owned()
            }
            LookupError::Lago(lago) if lago.is_transient() => PENDING_REASON.to_owned(),
            other => format!("Lago could not take the customer: {other}"),
        };
        Refusal {
            failure: Failure::from(e),
            user_reason,
        }
    }
}

/// Lago's validation codes (`field: code`) with what to change on the Account.
fn explain(message: &str) -> String {
    const HINTS: [(&str, &str); 5] = [
        (
            "currency: value_is_invalid",
            "Lago Currency must be an ISO 4217 code such as USD",
        ),
        (
            "currencies_does_not_match",
            "the Lago customer already bills in another currency, which cannot change",
        ),
        (
            "email: invalid_email_format",
            "Lago Billing Email is not a valid address",
        ),
        (
            "country: not_a_valid_country_code",
            "Billing Country must be a two-letter code such as US",
        ),
        (
            "external_id: value_already_exist",
            "another Lago customer already has this Account's id",
        ),
    ];
    let hints: Vec<&str> = HINTS
        .iter()
        .filter(|(code, _)| message.contains(code))
        .map(|(_, hint)| *hint)
        .collect();
    match hints.is_empty() {
        true => message.to_owned(),
        false => format!("{} ({message})", hints.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::salesforce::Class;

    #[test]
    fn lagos_refusals_say_what_to_change() {
        assert_eq!(
            explain("currency: value_is_invalid"),
            "Lago Currency must be an ISO 4217 code such as USD (currency: value_is_invalid)"
        );
        assert_eq!(explain("name: too_long"), "name: too_long");
        let unreachable = Refusal::from(LookupError::Lago(LagoApiError::Timeout {
            path: "customers".into(),
        }));
        assert_eq!(unreachable.failure.class, Class::Transient);
        assert_eq!(unreachable.user_reason, PENDING_REASON);
        let refused = Refusal::from(LookupError::Lago(LagoApiError::Status {
            status: 422,
            path: "customers".into(),
            message: "email: invalid_email_format".into(),
        }));
        assert_eq!(refused.failure.class, Class::Permanent);
        assert_eq!(
            refused.user_reason,
            "Lago refused the customer: Lago Billing Email is not a valid address (email: invalid_email_format)"
        );
        assert_eq!(refused.failure.code, "LAGO_API_REFUSED");
    }

    #[test]
    fn stored_notifications_round_trip() {
        let stored = StoredNotification {
            notification_id: "04l1".into(),
            fields: BTreeMap::from([("Id".into(), "001000000000001AAA".into())]),
        };
        let body = serde_json::to_vec(&stored).unwrap();
        let back: StoredNotification = serde_json::from_slice(&body).unwrap();
        assert_eq!(back.fields, stored.fields);
    }
}
