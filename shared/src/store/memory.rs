//! An in-memory store with the same conditions as DynamoDB, atomically (one mutex), for
//! in-process tests with real concurrency, which the emulator cannot model.

use std::collections::HashMap;
use std::sync::Mutex;

use super::*;

#[derive(Debug, Clone)]
struct Item {
    status: Status,
    body_sha256: String,
    lease_until_ms: i64,
    expires_at_ms: i64,
    error_code: Option<String>,
    error_message: Option<String>,
    body: Option<Vec<u8>>,
    attempts: u32,
}

#[derive(Default)]
pub struct MemoryStore {
    deliveries: Mutex<HashMap<String, Item>>,
    orders: Mutex<HashMap<String, i64>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdempotencyStore for MemoryStore {
    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let mut deliveries = self.deliveries.lock().expect("store lock");
        let takes_over = match deliveries.get(r.key) {
            None => false,
            Some(old) if old.expires_at_ms < r.now_ms => false,
            Some(old) if old.status == Status::InProgress && old.lease_until_ms < r.now_ms => true,
            Some(old) if old.status == Status::Queued && old.body_sha256 == r.body_sha256 => true,
            Some(old) => {
                return Ok(Claim::Taken(Existing {
                    status: old.status,
                    body_sha256: old.body_sha256.clone(),
                    error_code: old.error_code.clone(),
                    error_message: old.error_message.clone(),
                }))
            }
        };
        let kept = deliveries.get(r.key).filter(|_| takes_over);
        let was_stored = kept.is_some_and(|i| i.body.is_some());
        let item = Item {
            status: Status::InProgress,
            body_sha256: r.body_sha256.to_owned(),
            lease_until_ms: r.lease_until_ms,
            expires_at_ms: r.now_ms + RETENTION_SECS * 1000,
            error_code: kept.and_then(|i| i.error_code.clone()),
            error_message: kept.and_then(|i| i.error_message.clone()),
            body: kept.and_then(|i| i.body.clone()),
            attempts: kept.map_or(0, |i| i.attempts),
        };
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
        match *finish {
            Finish::Completed { now_ms, .. } => {
                item.status = Status::Completed;
                item.body = None;
                item.error_code = None;
                item.error_message = None;
                item.expires_at_ms = now_ms + RETENTION_SECS * 1000;
            }
            Finish::Parked {
                status,
                body,
                error_code,
                error_message,
                now_ms,
            } => {
                item.status = status;
                item.body = Some(body.to_vec());
                item.error_code = Some(error_code.to_owned());
                item.error_message = Some(error_message.to_owned());
                item.attempts += 1;
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
                    item.status = status;
                }
            }
        }
        Ok(())
    }

    async fn load(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        let deliveries = self.deliveries.lock().expect("store lock");
        Ok(deliveries.get(key).map(|i| StoredDelivery {
            status: i.status,
            attempts: i.attempts,
            error_code: i.error_code.clone(),
            body: i.body.clone(),
        }))
    }
}
