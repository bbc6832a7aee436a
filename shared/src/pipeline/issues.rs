//! The sync issues in Salesforce (contract §6): a stored event that ends `failed` or
//! `dead` upserts its `Lago_Sync_Issue__c`, open; when such an event later syncs (after an
//! operator's requeue, by the redrive or Lago's resend) the issue is resolved. One call,
//! on those paths only, best effort: a failed issue write is logged and changes neither
//! the event's answer nor what is stored. Queued events are not issues (they are retried).
//!
//! Whether a stored event has an open issue is its [`StoredDelivery::issue_open`] flag,
//! set when it is stored failed or dead and gone when it completes.

use std::time::Instant;

use tracing::{info, warn};

use super::{App, Event};
use crate::lago::Envelope;
use crate::mapping::{self, issue_write, IssueEvent, IssueState, Plan};
use crate::store::{Store, StoredDelivery};
use crate::{clock, Family};

/// What a failure opens the issue with.
pub(crate) struct Opened<'a> {
    pub code: &'a str,
    pub message: &'a str,
    pub attempts: u32,
    pub first_failed_at_ms: Option<i64>,
}

impl<S: Store> App<S> {
    /// The event of `event` (its plan, when it was mapped) ended failed.
    pub(super) async fn open_issue(
        &self,
        event: &Event<'_>,
        plan: Option<&Plan>,
        opened: Opened<'_>,
    ) {
        let what = issue_event(event.key, event.family, event.webhook_type, plan);
        self.write_issue(&what, &opened.state(), event.deadline)
            .await;
    }

    /// The stored event `stored` was retried until its maximum age: now dead.
    pub(crate) async fn open_dead_issue(
        &self,
        stored: &StoredDelivery,
        opened: Opened<'_>,
        deadline: Instant,
    ) {
        // The mapping alone (no lookup) names the object and its Account when it can.
        let body = stored.body.as_deref().unwrap_or_default();
        let plan = stored.family.parse::<Family>().ok().and_then(|family| {
            let envelope = Envelope::parse(body).ok()?;
            mapping::plan(family, &envelope).ok()
        });
        let what = issue_event(
            &stored.key,
            &stored.family,
            &stored.webhook_type,
            plan.as_ref(),
        );
        self.write_issue(&what, &opened.state(), deadline).await;
    }

    /// The event of `event`, which had an open issue, is completed.
    pub(super) async fn resolve_issue(&self, event: &Event<'_>, plan: Option<&Plan>) {
        let what = issue_event(event.key, event.family, event.webhook_type, plan);
        let state = IssueState::Resolved {
            at_ms: clock::now_ms(),
        };
        self.write_issue(&what, &state, event.deadline).await;
    }

    /// One upsert; the client keeps its own margin before `deadline` to answer.
    async fn write_issue(&self, what: &IssueEvent<'_>, state: &IssueState<'_>, deadline: Instant) {
        let write = issue_write(what, state);
        let status = match state {
            IssueState::Open { .. } => "open",
            IssueState::Resolved { .. } => "resolved",
        };
        match self.salesforce.write(&self.secrets, &write, deadline).await {
            Ok(_) => info!(status, "sync issue written"),
            Err(e) => warn!(status, error_code = %e.code, error = %e, "sync issue not written"),
        }
    }
}

/// What the issue names: the event, and its Lago id and Account when it was mapped.
fn issue_event<'a>(
    key: &'a str,
    family: &'a str,
    webhook_type: &'a str,
    plan: Option<&'a Plan>,
) -> IssueEvent<'a> {
    IssueEvent {
        key,
        family,
        webhook_type,
        lago_id: plan.map(|p| p.lago_id.as_str()),
        account: plan.and_then(Plan::account),
    }
}

impl Opened<'_> {
    fn state(&self) -> IssueState<'_> {
        IssueState::Open {
            code: self.code,
            message: self.message,
            attempts: self.attempts,
            failed_at_ms: clock::now_ms(),
            first_failed_at_ms: self.first_failed_at_ms,
        }
    }
}
