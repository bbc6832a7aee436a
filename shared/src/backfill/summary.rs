//! What a backfill run reports, per object and in total; serialised as the Lambda's answer.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::salesforce::SalesforceError;

/// Failed records listed one by one in the summary; beyond this only counted (a Lambda
/// answer is limited to 6 MB, and they are all stored for redrive anyway).
const LISTED_FAILURES: usize = 100;

pub const SKIP_NO_ACCOUNT: &str = "no Salesforce Account id";
pub const SKIP_NEWER: &str = "newer state already in Salesforce";
pub const SKIP_DRAFT: &str = "draft invoice";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailedRecord {
    pub lago_id: String,
    pub error_code: String,
    pub message: String,
    /// The parked event's key, for `lago-sync list` and `redrive`; absent when it was
    /// not stored (a payload that cannot be mapped, or already stored by an earlier run).
    pub stored_as: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ObjectSummary {
    pub object: &'static str,
    /// Lago records read in this run.
    pub read: u64,
    /// Written to Salesforce (with `--dry-run`: would be written).
    pub written: u64,
    /// Invoice line items written with the invoices (with `--dry-run`: would be written).
    pub line_items_written: u64,
    /// Credit notes written without their invoice link (that invoice is not in Salesforce).
    pub links_dropped: u64,
    /// By reason.
    pub skipped: BTreeMap<&'static str, u64>,
    pub failed: u64,
    pub failures: Vec<FailedRecord>,
    /// Every page of this object has been processed (in this run or an earlier one).
    pub done: bool,
    /// Done in an earlier run: nothing was read this time.
    pub already_done: bool,
}

impl ObjectSummary {
    pub(super) fn new(object: &'static str) -> Self {
        ObjectSummary {
            object,
            ..ObjectSummary::default()
        }
    }

    pub(super) fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_default() += 1;
    }

    pub(super) fn fail(
        &mut self,
        lago_id: &str,
        error: &SalesforceError,
        stored_as: Option<String>,
    ) {
        self.failed += 1;
        if self.failures.len() < LISTED_FAILURES {
            self.failures.push(FailedRecord {
                lago_id: lago_id.to_owned(),
                error_code: error.code.clone(),
                message: error.message.clone(),
                stored_as,
            });
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub dry_run: bool,
    /// Every object is done; otherwise the next run resumes from the checkpoints.
    pub finished: bool,
    /// Why the run stopped early (a whole Salesforce request or a Lago page failed, or
    /// the store is unavailable); the checkpoints keep what was done.
    pub stopped: Option<String>,
    pub objects: Vec<ObjectSummary>,
    pub salesforce_calls: u64,
    pub salesforce_token_requests: u64,
    pub lago_calls: u64,
}

impl Summary {
    /// True when the run finished and nothing failed: the CLI's exit status.
    pub fn succeeded(&self) -> bool {
        self.finished && self.stopped.is_none() && self.objects.iter().all(|o| o.failed == 0)
    }
}
