//! Where a backfill of one object stands, stored after every Salesforce batch so that an
//! interrupted run resumes without writing a record twice.
//!
//! Resuming by page number is sound because the lists are ordered newest first: records
//! created meanwhile push older ones to later pages, so a resumed run may see a few
//! records again (an idempotent upsert) but skips none; the webhooks cover the new ones.

use serde::{Deserialize, Serialize};

use super::BackfillError;
use crate::store::{checkpoint_key, Checkpoints};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Checkpoint {
    /// The page to read next (from 1).
    pub page: u32,
    /// Records of that page already processed.
    pub offset: usize,
    pub done: bool,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint {
            page: 1,
            offset: 0,
            done: false,
        }
    }
}

pub(super) async fn load<S: Checkpoints>(
    store: &S,
    scope: &str,
    object: &str,
) -> Result<Checkpoint, BackfillError> {
    let stored = store
        .load_checkpoint(&checkpoint_key(scope, object))
        .await?;
    // An unreadable checkpoint (written by another version) means starting over, which
    // only repeats idempotent writes.
    Ok(stored
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default())
}

pub(super) async fn save<S: Checkpoints>(
    store: &S,
    scope: &str,
    object: &str,
    checkpoint: Option<Checkpoint>,
) -> Result<(), BackfillError> {
    let value = checkpoint.map(|c| serde_json::to_string(&c).expect("a checkpoint serialises"));
    store
        .save_checkpoint(&checkpoint_key(scope, object), value.as_deref())
        .await?;
    Ok(())
}
