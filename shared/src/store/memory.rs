//! An in-memory store with the same conditions as DynamoDB, each operation atomic (one
//! mutex), for in-process tests with real concurrency, which the emulator cannot model.
//! A test can [`MemoryStore::hold`] one delivery's writer at a step, to play a race out
//! in a chosen order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Semaphore};

use super::*;

#[derive(Debug, Clone)]
struct Record {
    view: RecordView,
    family: String,
    lago_ref: String,
}

#[derive(Debug, Clone)]
struct Event {
    stored: StoredDelivery,
    lease_until_ms: i64,
    /// `Some` while parked: the sparse index's partition.
    parked: Option<Status>,
}

#[derive(Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<String, Record>>,
    events: Mutex<HashMap<String, Event>>,
    checkpoints: Mutex<HashMap<String, String>>,
    links: Mutex<HashMap<String, String>>,
    holds: Mutex<Vec<(Step, String, Hold)>>,
}

/// Where [`MemoryStore::hold`] stops a writer: before it takes its record, or before it
/// lets it go (its Salesforce write done, the version not yet advanced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Take,
    Release,
}

/// One writer held at a step: the test waits until it [`Hold::reached`] the step, plays
/// the rest of the race, then [`Hold::resume`]s it.
#[derive(Clone)]
pub struct Hold {
    reached: watch::Sender<bool>,
    resumed: Arc<Semaphore>,
}

impl Hold {
    pub async fn reached(&self) {
        let mut reached = self.reached.subscribe();
        reached.wait_for(|r| *r).await.expect("the hold is alive");
    }

    pub fn resume(&self) {
        self.resumed.add_permits(1);
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Holds the next writer of `delivery` that reaches `step`, until resumed.
    pub fn hold(&self, step: Step, delivery: &str) -> Hold {
        let hold = Hold {
            reached: watch::channel(false).0,
            resumed: Arc::new(Semaphore::new(0)),
        };
        let mut holds = self.holds.lock().expect("store lock");
        holds.push((step, delivery.to_owned(), hold.clone()));
        hold
    }

    async fn pass(&self, step: Step, delivery: &str) {
        let hold = {
            let mut holds = self.holds.lock().expect("store lock");
            let at = holds
                .iter()
                .position(|(s, d, _)| *s == step && d == delivery);
            at.map(|at| holds.remove(at).2)
        };
        if let Some(hold) = hold {
            hold.reached.send_replace(true);
            let permit = hold.resumed.acquire().await.expect("never closed");
            permit.forget();
        }
    }
}

fn lease(record: &str, delivery: &str, body_sha256: &str, view: &RecordView) -> Lease {
    Lease {
        record: record.to_owned(),
        delivery: delivery.to_owned(),
        body_sha256: body_sha256.to_owned(),
        token: token(),
        written: view.written,
        evict: eviction(view),
    }
}

impl RecordGuard for MemoryStore {
    async fn take(&self, take: &Take<'_>) -> Result<Taken, StoreError> {
        self.pass(Step::Take, take.delivery).await;
        let mut records = self.records.lock().expect("store lock");
        let record = records
            .entry(take.record.to_owned())
            .or_insert_with(|| Record {
                view: RecordView::default(),
                family: String::new(),
                lago_ref: String::new(),
            });
        if let Some(refusal) = verdict(&record.view, take) {
            return Ok(refusal);
        }
        let lease = lease(take.record, take.delivery, take.body_sha256, &record.view);
        record.view.holder = Some(Holder {
            delivery: take.delivery.to_owned(),
            body_sha256: take.body_sha256.to_owned(),
            token: lease.token.clone(),
            lease_until_ms: take.lease_until_ms,
        });
        record.family = take.family.to_owned();
        record.lago_ref = take.lago_ref.to_owned();
        Ok(Taken::Leased(lease))
    }

    async fn release(
        &self,
        lease: &Lease,
        release: &Release,
    ) -> Result<Option<Vec<String>>, StoreError> {
        self.pass(Step::Release, &lease.delivery).await;
        let mut records = self.records.lock().expect("store lock");
        let Some(record) = records.get_mut(&lease.record) else {
            return Ok(None);
        };
        let view = &mut record.view;
        if view.holder.as_ref().map(|h| &h.token) != Some(&lease.token) {
            return Ok(None);
        }
        view.holder = None;
        match release {
            Release::Written { version, now_ms } => {
                if let Some(version) = version {
                    view.written = Some(*version);
                }
                if let Some(evicted) = &lease.evict {
                    view.done.remove(evicted);
                }
                view.done.insert(
                    remembered_key(&lease.delivery).to_owned(),
                    (*now_ms, remembered_hash(&lease.body_sha256).to_owned()),
                );
                view.stored.remove(&lease.delivery);
            }
            Release::Stored(_) => {
                view.stored.insert(lease.delivery.clone());
            }
            Release::Abandoned => {}
        }
        let mut waiting: Vec<String> = view.waiting.iter().cloned().collect();
        waiting.sort();
        Ok(Some(waiting))
    }

    async fn await_parent(&self, parent: &str, child: &str) -> Result<bool, StoreError> {
        let mut records = self.records.lock().expect("store lock");
        let record = records.entry(parent.to_owned()).or_insert_with(|| Record {
            view: RecordView::default(),
            family: String::new(),
            lago_ref: String::new(),
        });
        record.view.waiting.insert(child.to_owned());
        Ok(record.view.was_written())
    }

    async fn parent_linked(&self, parent: &str, children: &[String]) -> Result<(), StoreError> {
        let mut records = self.records.lock().expect("store lock");
        if let Some(record) = records.get_mut(parent) {
            for child in children {
                record.view.waiting.remove(child);
            }
        }
        Ok(())
    }

    async fn lapsed(&self, now_ms: i64, limit: usize) -> Result<Vec<Lapsed>, StoreError> {
        let records = self.records.lock().expect("store lock");
        let mut found: Vec<Lapsed> = records
            .iter()
            .filter_map(|(id, record)| {
                let holder = record.view.holder.as_ref()?;
                (holder.lease_until_ms < now_ms).then(|| Lapsed {
                    record: id.clone(),
                    delivery: holder.delivery.clone(),
                    family: record.family.clone(),
                    lago_ref: record.lago_ref.clone(),
                    lease_until_ms: holder.lease_until_ms,
                })
            })
            .collect();
        found.sort_by_key(|l| l.lease_until_ms);
        found.truncate(limit);
        Ok(found)
    }

    async fn take_lapsed(
        &self,
        lapsed: &Lapsed,
        version: Option<i64>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Taken, StoreError> {
        let mut records = self.records.lock().expect("store lock");
        let Some(record) = records.get_mut(&lapsed.record) else {
            return Ok(Taken::Busy {
                holder: String::new(),
            });
        };
        let view = &mut record.view;
        let holder = match &view.holder {
            Some(h) if h.delivery == lapsed.delivery && h.lease_until_ms < now_ms => h.clone(),
            other => {
                return Ok(Taken::Busy {
                    holder: other
                        .as_ref()
                        .map(|h| h.delivery.clone())
                        .unwrap_or_default(),
                })
            }
        };
        if let (Some(written), Some(version)) = (view.written, version) {
            if written > version {
                view.holder = None;
                return Ok(Taken::Older { written });
            }
        }
        let lease = lease(&lapsed.record, &holder.delivery, &holder.body_sha256, view);
        view.holder = Some(Holder {
            token: lease.token.clone(),
            lease_until_ms,
            ..holder
        });
        Ok(Taken::Leased(lease))
    }

    async fn written(&self, record: &str) -> Result<Option<i64>, StoreError> {
        let records = self.records.lock().expect("store lock");
        Ok(records.get(record).and_then(|r| r.view.written))
    }
}

impl EventQueue for MemoryStore {
    async fn park(&self, p: &Park<'_>) -> Result<bool, StoreError> {
        // DynamoDB refuses an item over 400 KB; so does this store, so tests see it too.
        if super::compressed(p.body).len() > super::MAX_STORED_BODY {
            return Err(StoreError(
                "the stored event's body is over the item size".into(),
            ));
        }
        let mut events = self.events.lock().expect("store lock");
        if p.only_if_new && events.contains_key(p.key) {
            return Ok(false);
        }
        let event = events.entry(p.key.to_owned()).or_insert_with(|| Event {
            stored: StoredDelivery {
                key: p.key.to_owned(),
                record: String::new(),
                status: p.status,
                family: String::new(),
                webhook_type: String::new(),
                body_sha256: String::new(),
                attempts: 0,
                error_code: None,
                error_message: None,
                first_parked_at_ms: None,
                due_at_ms: None,
                body: None,
                issue_open: false,
            },
            lease_until_ms: 0,
            parked: None,
        });
        let s = &mut event.stored;
        s.record = p.record.to_owned();
        s.status = p.status;
        s.family = p.family.to_owned();
        s.webhook_type = p.webhook_type.to_owned();
        s.body_sha256 = p.body_sha256.to_owned();
        s.body = Some(p.body.to_vec());
        s.error_code = Some(p.error_code.to_owned());
        s.error_message = Some(p.error_message.to_owned());
        s.attempts += 1;
        s.due_at_ms = Some(p.due_at_ms);
        s.first_parked_at_ms.get_or_insert(p.now_ms);
        s.issue_open |= matches!(p.status, Status::Failed | Status::Dead);
        event.parked = Some(p.status);
        Ok(true)
    }

    async fn load(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        let events = self.events.lock().expect("store lock");
        Ok(events.get(key).map(|e| e.stored.clone()))
    }

    async fn parked(
        &self,
        status: Status,
        due_by_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let events = self.events.lock().expect("store lock");
        let mut found: Vec<StoredDelivery> = events
            .values()
            .filter(|e| e.parked == Some(status))
            .filter(|e| due_by_ms.is_none_or(|by| e.stored.due_at_ms.unwrap_or_default() <= by))
            .map(|e| StoredDelivery {
                record: String::new(),
                body_sha256: String::new(),
                body: None,
                ..e.stored.clone()
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
        let mut events = self.events.lock().expect("store lock");
        let Some(event) = events.get_mut(key) else {
            return Ok(None);
        };
        let due = event.parked == Some(Status::Queued)
            && event.stored.due_at_ms.unwrap_or_default() <= now_ms;
        let free = event.stored.status == Status::Queued
            || (event.stored.status == Status::InProgress && event.lease_until_ms < now_ms);
        if !(due && free) {
            return Ok(None);
        }
        event.stored.status = Status::InProgress;
        event.stored.due_at_ms = Some(lease_until_ms);
        event.lease_until_ms = lease_until_ms;
        Ok(Some(event.stored.clone()))
    }

    async fn complete(&self, key: &str, _outcome: &str, _now_ms: i64) -> Result<(), StoreError> {
        let mut events = self.events.lock().expect("store lock");
        if let Some(event) = events.get_mut(key) {
            let s = &mut event.stored;
            s.status = Status::Completed;
            (s.body, s.error_code, s.error_message, s.due_at_ms) = (None, None, None, None);
            s.issue_open = false;
            event.parked = None;
        }
        Ok(())
    }

    async fn requeue(&self, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let mut events = self.events.lock().expect("store lock");
        match events.get_mut(key) {
            Some(event) if matches!(event.stored.status, Status::Failed | Status::Dead) => {
                event.stored.status = Status::Queued;
                event.stored.due_at_ms = Some(now_ms);
                event.stored.first_parked_at_ms = Some(now_ms);
                event.parked = Some(Status::Queued);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn discard(&self, key: &str) -> Result<bool, StoreError> {
        let mut events = self.events.lock().expect("store lock");
        let record = match events.get(key) {
            Some(e) if matches!(e.stored.status, Status::Failed | Status::Dead) => {
                e.stored.record.clone()
            }
            _ => return Ok(false),
        };
        events.remove(key);
        if let Some(r) = self.records.lock().expect("store lock").get_mut(&record) {
            r.view.stored.remove(key);
        }
        Ok(true)
    }
}

impl Checkpoints for MemoryStore {
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

impl CustomerLinks for MemoryStore {
    async fn link(&self, lago_customer_id: &str, account_id: &str) -> Result<(), StoreError> {
        let mut links = self.links.lock().expect("store lock");
        links.insert(lago_customer_id.to_owned(), account_id.to_owned());
        Ok(())
    }

    async fn linked_account(&self, lago_customer_id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .links
            .lock()
            .expect("store lock")
            .get(lago_customer_id)
            .cloned())
    }
}
