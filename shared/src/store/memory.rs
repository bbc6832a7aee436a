//! An in-memory store with the same conditions as DynamoDB, atomically (one mutex), for
//! in-process tests with real concurrency, which the emulator cannot model.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

#[derive(Debug, Clone)]
struct Item {
    stored: StoredDelivery,
    body_sha256: String,
    lease_until_ms: i64,
    expires_at_ms: i64,
    /// `Some` while parked: the sparse index's partition.
    parked: Option<Status>,
}

#[derive(Default)]
pub struct MemoryStore {
    deliveries: Mutex<HashMap<String, Item>>,
    orders: Mutex<HashMap<String, i64>>,
    checkpoints: Mutex<HashMap<String, String>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

fn claimable_again(old: &Item, r: &ClaimRequest<'_>) -> bool {
    old.expires_at_ms < r.now_ms
        || (old.stored.status == Status::InProgress && old.lease_until_ms < r.now_ms)
        || (matches!(old.stored.status, Status::Queued | Status::Dead)
            && old.body_sha256 == r.body_sha256)
}

impl IdempotencyStore for MemoryStore {
    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let mut deliveries = self.deliveries.lock().expect("store lock");
        let kept = match deliveries.get(r.key) {
            None => None,
            Some(old) if claimable_again(old, r) => Some(old.clone()),
            Some(old) => {
                return Ok(Claim::Taken(Existing {
                    status: old.stored.status,
                    body_sha256: old.body_sha256.clone(),
                    error_code: old.stored.error_code.clone(),
                    error_message: old.stored.error_message.clone(),
                }))
            }
        };
        let was_stored = kept.as_ref().is_some_and(|i| i.stored.body.is_some());
        let mut item = kept.unwrap_or_else(|| Item {
            stored: StoredDelivery {
                key: r.key.to_owned(),
                status: Status::InProgress,
                family: String::new(),
                webhook_type: String::new(),
                attempts: 0,
                error_code: None,
                error_message: None,
                first_parked_at_ms: None,
                due_at_ms: None,
                body: None,
            },
            body_sha256: String::new(),
            lease_until_ms: 0,
            expires_at_ms: 0,
            parked: None,
        });
        item.stored.status = Status::InProgress;
        item.stored.family = r.family.to_owned();
        item.stored.webhook_type = r.webhook_type.to_owned();
        item.body_sha256 = r.body_sha256.to_owned();
        item.lease_until_ms = r.lease_until_ms;
        item.expires_at_ms = r.now_ms + RETENTION_SECS * 1000;
        deliveries.insert(r.key.to_owned(), item);
        Ok(Claim::Acquired {
            previous: was_stored.then_some(Status::Queued),
        })
    }

    async fn advance_order(&self, stamp: &OrderStamp, _now_ms: i64) -> Result<bool, StoreError> {
        let mut orders = self.orders.lock().expect("store lock");
        let newest = orders.entry(order_key(stamp)).or_insert(stamp.version);
        if *newest > stamp.version {
            return Ok(false);
        }
        *newest = stamp.version;
        Ok(true)
    }

    async fn finish(&self, key: &str, finish: &Finish<'_>) -> Result<(), StoreError> {
        let mut deliveries = self.deliveries.lock().expect("store lock");
        let item = deliveries
            .get_mut(key)
            .ok_or_else(|| StoreError(format!("no delivery {key}")))?;
        let s = &mut item.stored;
        match *finish {
            Finish::Completed { now_ms, .. } => {
                s.status = Status::Completed;
                (
                    s.body,
                    s.error_code,
                    s.error_message,
                    s.due_at_ms,
                    s.first_parked_at_ms,
                ) = (None, None, None, None, None);
                item.parked = None;
                item.expires_at_ms = now_ms + RETENTION_SECS * 1000;
            }
            Finish::Parked {
                status,
                body,
                error_code,
                error_message,
                now_ms,
                due_at_ms,
            } => {
                s.status = status;
                s.body = Some(body.to_vec());
                s.error_code = Some(error_code.to_owned());
                s.error_message = Some(error_message.to_owned());
                s.attempts += 1;
                s.due_at_ms = Some(due_at_ms);
                s.first_parked_at_ms.get_or_insert(now_ms);
                item.parked = Some(status);
                item.expires_at_ms = now_ms + RETENTION_SECS * 1000;
            }
        }
        Ok(())
    }

    async fn release(&self, key: &str, previous: Option<Status>) -> Result<(), StoreError> {
        let mut deliveries = self.deliveries.lock().expect("store lock");
        match previous {
            None => {
                deliveries.remove(key);
            }
            Some(status) => {
                if let Some(item) = deliveries.get_mut(key) {
                    item.stored.status = status;
                }
            }
        }
        Ok(())
    }

    async fn load(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        let deliveries = self.deliveries.lock().expect("store lock");
        Ok(deliveries.get(key).map(|i| i.stored.clone()))
    }

    async fn parked(
        &self,
        status: Status,
        due_by_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let deliveries = self.deliveries.lock().expect("store lock");
        let mut found: Vec<StoredDelivery> = deliveries
            .values()
            .filter(|i| i.parked == Some(status))
            .filter(|i| due_by_ms.is_none_or(|by| i.stored.due_at_ms.unwrap_or_default() <= by))
            .map(|i| StoredDelivery {
                body: None,
                ..i.stored.clone()
            })
            .collect();
        found.sort_by_key(|s| s.due_at_ms);
        found.truncate(limit);
        Ok(found)
    }

    async fn claim_due(
        &self,
        key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<StoredDelivery>, StoreError> {
        let mut deliveries = self.deliveries.lock().expect("store lock");
        let Some(item) = deliveries.get_mut(key) else {
            return Ok(None);
        };
        let due = item.parked == Some(Status::Queued)
            && item.stored.due_at_ms.unwrap_or_default() <= now_ms;
        let free = item.stored.status == Status::Queued
            || (item.stored.status == Status::InProgress && item.lease_until_ms < now_ms);
        if !(due && free) {
            return Ok(None);
        }
        item.stored.status = Status::InProgress;
        item.stored.due_at_ms = Some(lease_until_ms);
        item.lease_until_ms = lease_until_ms;
        Ok(Some(item.stored.clone()))
    }

    async fn requeue(&self, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut deliveries = self.deliveries.lock().expect("store lock");
        match deliveries.get_mut(key) {
            Some(item) if matches!(item.stored.status, Status::Failed | Status::Dead) => {
                item.stored.status = Status::Queued;
                item.stored.due_at_ms = Some(now_ms);
                item.stored.first_parked_at_ms = Some(now_ms);
                item.parked = Some(Status::Queued);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn load_checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .checkpoints
            .lock()
            .expect("store lock")
            .get(key)
            .cloned())
    }

    async fn save_checkpoint(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let mut checkpoints = self.checkpoints.lock().expect("store lock");
        match value {
            Some(value) => checkpoints.insert(key.to_owned(), value.to_owned()),
            None => checkpoints.remove(key),
        };
        Ok(())
    }
}
