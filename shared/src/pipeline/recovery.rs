//! A record whose writer died holding it (crash, killed at its deadline): its lease lapsed
//! without a release, and Lago may never send the event again. The redrive writes Lago's
//! current state of the record instead, which is what that writer was writing or newer
//! (contract §7.3).

use std::time::Instant;

use super::lookups::Unplanned;
use super::{within, App, Event, LookupError, Outcome};
use crate::store::{Lapsed, Release, Store, Taken};
use crate::{clock, outbound, Family};

impl<S: Store> App<S> {
    /// Writes Lago's current state of a record whose writer died holding it (its lease
    /// lapsed without a release): what that writer was writing, or something newer, ends
    /// in Salesforce even when Lago never sends it again (contract §7.3).
    pub async fn recover(&self, lapsed: &Lapsed, deadline: Instant) -> Outcome {
        if lapsed.family == outbound::FAMILY {
            return self.recover_account(lapsed, deadline).await;
        }
        let Ok(family) = lapsed.family.parse::<Family>() else {
            return Outcome::Invalid(format!("{} is not an event family", lapsed.family));
        };
        let unavailable = |e: LookupError| Outcome::Unavailable(e.to_string());
        // Until Lago answers, the lease stays lapsed and the next run tries again.
        let current = match self.current_state(family, &lapsed.lago_ref, deadline).await {
            Ok(current) => current,
            Err(e) => return unavailable(e),
        };
        let plan = match &current {
            Some(body) => match self.plan_body(family, body, deadline).await {
                Ok(plan) => Some(plan),
                Err(Unplanned::Lookup(e)) => return unavailable(e),
                Err(_) => None,
            },
            None => None,
        };
        let (now_ms, lease_until_ms) = (clock::now_ms(), clock::epoch_ms_of(deadline));
        let version = plan.as_ref().and_then(|plan| plan.version);
        let taken = within(
            deadline,
            self.store
                .take_lapsed(lapsed, version, now_ms, lease_until_ms),
        );
        let lease = match taken.await {
            Ok(Taken::Leased(lease)) => lease,
            Ok(Taken::Older { .. }) => {
                return Outcome::Skipped(format!(
                    "a newer state of {} was already written",
                    lapsed.record
                ))
            }
            Ok(_) => return Outcome::InProgress,
            Err(e) => return Outcome::Unavailable(e.to_string()),
        };
        let event = Event {
            key: &lapsed.delivery,
            family: &lapsed.family,
            webhook_type: family.state_type(),
            body: current.as_deref().unwrap_or_default(),
            // The stored event, if any, answers Lago's retry of the original delivery.
            body_sha256: lease.body_sha256.clone(),
            retry: None,
            first_parked_ms: None,
            issue_open: false,
            deadline,
            deadline_ms: lease_until_ms,
        };
        match &plan {
            Some(plan) => self.write_leased(&event, plan, &lease).await,
            None => {
                self.let_go(&event, &lease, &Release::Abandoned).await;
                Outcome::Skipped(format!("{} has nothing to write in Lago", lapsed.record))
            }
        }
    }
}
