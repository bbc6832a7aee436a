//! A credit note written before its invoice (contract §7.6): Salesforce refuses a link to
//! a record it does not have, so the credit note is written without it and waits on the
//! invoice's record item; the invoice's writer links the waiting credit notes once it has
//! written the invoice. Salesforce calls are spent only when a credit note is waiting.
//!
//! No link is lost between the two writers: the credit note's mark and the invoice's
//! release are each one atomic change of the invoice's record item, so whichever comes
//! second sees the other and links.

use std::time::Instant;

use tracing::{info, warn};

use super::{finishing, reserve, App};
use crate::mapping::{invoice_link, Plan, SalesforceWrite};
use crate::salesforce::MAX_COLLECTION;
use crate::store::Store;

impl<S: Store> App<S> {
    /// The credit note of `plan` was written without its invoice link.
    pub(crate) async fn await_invoice(&self, plan: &Plan, deadline: Instant) {
        let Some(reference) = &plan.write.reference else {
            return;
        };
        let invoice = format!("{}/{}", reference.parent_object, reference.value);
        let awaited = self.store.await_parent(&invoice, &plan.lago_id);
        match finishing(deadline, awaited).await {
            Ok(false) => info!(invoice, "the credit note waits for its invoice"),
            // The invoice was written meanwhile: its writer may have missed this mark.
            Ok(true) => {
                self.link_waiting(&invoice, std::slice::from_ref(&plan.lago_id), deadline)
                    .await
            }
            Err(e) => warn!(error = %e, "the credit note's wait for its invoice is not recorded"),
        }
    }

    /// Links the credit notes `waiting` to the invoice `invoice` (`<object>/<lago_id>`),
    /// now in Salesforce, in one call, and forgets those linked.
    pub(super) async fn link_waiting(&self, invoice: &str, waiting: &[String], deadline: Instant) {
        let Some((_, invoice_lago_id)) = invoice.split_once('/') else {
            return;
        };
        // One collection holds 200 records; more credit notes of one invoice waiting at once
        // are linked by its next write.
        let waiting = &waiting[..waiting.len().min(MAX_COLLECTION)];
        let writes: Vec<SalesforceWrite> = waiting
            .iter()
            .map(|note| invoice_link(note, invoice_lago_id))
            .collect();
        let refs: Vec<&SalesforceWrite> = writes.iter().collect();
        let results = self
            .salesforce
            .write_collection(&self.secrets, &refs, true, reserve(deadline))
            .await;
        let linked: Vec<String> = match results {
            Ok(results) => waiting
                .iter()
                .zip(results)
                .filter(|(_, result)| result.is_ok())
                .map(|(note, _)| note.clone())
                .collect(),
            Err(e) => {
                warn!(error = %e, "waiting credit notes not linked; the invoice's next write retries");
                return;
            }
        };
        info!(
            count = linked.len(),
            "waiting credit notes linked to their invoice"
        );
        if let Err(e) = finishing(deadline, self.store.parent_linked(invoice, &linked)).await {
            // Linked all the same: a later invoice write links them again, idempotently.
            warn!(error = %e, "linked credit notes not forgotten");
        }
    }
}
