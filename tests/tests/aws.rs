//! The DynamoDB store and the secret cache against a real AWS API emulator (moto server),
//! and their answers when the emulator is unreachable. The store's scenarios run against
//! the in-memory store too, so that the two cannot drift apart.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use lago_sync::secrets::{SecretCache, SecretsError};
use lago_sync::store::{
    checkpoint_key, delivery_key, DynamoDbStore, EventQueue, Lapsed, Lease, MemoryStore, Park,
    RecordGuard, Release, Status, Store, StoreError, StoredDelivery, Take, Taken,
    REMEMBERED_DELIVERIES, RETENTION_SECS,
};
use sync_testkit::events;
use sync_testkit::moto::{closed_endpoint, unique_name, Moto};

const RECORD: &str = "Lago_Invoice__c/inv-1";
const LEASE_MS: i64 = 20_000;
const BODY: &[u8] = b"{\"stored\":true}";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A fresh table in the shared moto, with a look at its raw items.
struct Table {
    client: aws_sdk_dynamodb::Client,
    name: String,
}

impl Table {
    async fn new() -> Table {
        let moto = Moto::shared().await;
        let name = unique_name("store");
        moto.create_table(&name).await;
        Table {
            client: moto.dynamodb().await,
            name,
        }
    }

    fn store(&self) -> DynamoDbStore {
        DynamoDbStore::new(self.client.clone(), &self.name)
    }

    async fn item(&self, key: &str) -> HashMap<String, AttributeValue> {
        let output = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", AttributeValue::S(key.to_owned()))
            .send()
            .await
            .unwrap();
        output.item.expect("the item exists")
    }

    async fn count(&self) -> i32 {
        let output = self
            .client
            .scan()
            .table_name(&self.name)
            .send()
            .await
            .unwrap();
        output.count
    }
}

/// Runs each scenario against the DynamoDB store (in a table of its own) and the memory store.
macro_rules! both {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test]
            async fn dynamodb() {
                super::$scenario(super::Table::new().await.store()).await;
            }

            #[tokio::test]
            async fn memory() {
                super::$scenario(lago_sync::store::MemoryStore::new()).await;
            }
        }
    )*};
}

both!(
    the_written_version_only_moves_forward,
    a_held_record_is_refused_until_its_lease_lapses,
    a_lapsed_lease_is_recovered_by_the_redrive,
    a_stored_delivery_answers_from_the_queue_until_retried,
    a_record_remembers_its_latest_deliveries,
    stored_events_are_queued_claimed_completed_and_discarded,
    customer_links_and_checkpoints_are_kept,
    waiting_children_are_handed_to_the_parents_writers,
);

fn take<'a>(delivery: &'a str, hash: &'a str, version: Option<i64>, now_ms: i64) -> Take<'a> {
    Take {
        record: RECORD,
        delivery,
        body_sha256: hash,
        version,
        family: "invoice",
        lago_ref: "inv-1",
        now_ms,
        lease_until_ms: now_ms + LEASE_MS,
        retry: false,
    }
}

fn leased(taken: Taken) -> Lease {
    match taken {
        Taken::Leased(lease) => lease,
        other => panic!("expected a lease, got {other:?}"),
    }
}

fn written(version: Option<i64>, now_ms: i64) -> Release {
    Release::Written { version, now_ms }
}

fn busy(holder: &str) -> Taken {
    Taken::Busy {
        holder: holder.to_owned(),
    }
}

async fn the_written_version_only_moves_forward(store: impl Store) {
    let now = now_ms();
    let first = leased(store.take(&take("d1", "h1", Some(200), now)).await.unwrap());
    assert_eq!((first.written, first.evict.as_deref()), (None, None));
    assert!(store
        .release(&first, &written(Some(200), now))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.written(RECORD).await.unwrap(), Some(200));

    // Refused by the take itself: nothing to release, the record is free at once.
    assert_eq!(
        store.take(&take("d2", "h2", Some(100), now)).await.unwrap(),
        Taken::Older { written: 200 }
    );
    let equal = leased(store.take(&take("d3", "h3", Some(200), now)).await.unwrap());
    assert_eq!(equal.written, Some(200));
    assert!(store
        .release(&equal, &written(None, now))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.written(RECORD).await.unwrap(), Some(200));

    assert_eq!(
        store.take(&take("d1", "h1", Some(100), now)).await.unwrap(),
        Taken::Done,
        "a written delivery is done whatever its version"
    );
    assert_eq!(
        store
            .take(&take("d1", "other", Some(300), now))
            .await
            .unwrap(),
        Taken::Conflict
    );
    assert_eq!(store.written("Lago_Invoice__c/inv-2").await.unwrap(), None);

    let unordered = leased(store.take(&take("d4", "h4", None, now)).await.unwrap());
    assert!(store
        .release(&unordered, &Release::Abandoned)
        .await
        .unwrap()
        .is_some());
    leased(store.take(&take("d4", "h4", None, now)).await.unwrap());
}

async fn a_held_record_is_refused_until_its_lease_lapses(store: impl Store) {
    let now = now_ms();
    let first = leased(store.take(&take("d1", "h1", Some(1), now)).await.unwrap());
    assert_eq!(
        store
            .take(&take("d1", "h1", Some(1), now + 1))
            .await
            .unwrap(),
        Taken::InProgress
    );
    assert_eq!(
        store
            .take(&take("d1", "other", Some(1), now + 1))
            .await
            .unwrap(),
        Taken::Conflict
    );
    assert_eq!(
        store
            .take(&take("d2", "h2", Some(2), now + 1))
            .await
            .unwrap(),
        busy("d1")
    );

    // Lago's retry of a delivery whose writer died takes the lapsed lease over.
    let lapsed = now + LEASE_MS + 1;
    let retry = leased(
        store
            .take(&take("d1", "h1", Some(1), lapsed))
            .await
            .unwrap(),
    );
    assert_ne!(retry.token, first.token);
    assert!(
        store
            .release(&first, &written(Some(1), now))
            .await
            .unwrap()
            .is_none(),
        "the first writer's release comes too late"
    );
    assert_eq!(store.written(RECORD).await.unwrap(), None);
    assert_eq!(
        store
            .take(&take("d2", "h2", Some(2), lapsed))
            .await
            .unwrap(),
        busy("d1")
    );
    assert!(store
        .release(&retry, &written(Some(1), lapsed))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.written(RECORD).await.unwrap(), Some(1));
}

async fn a_lapsed_lease_is_recovered_by_the_redrive(store: impl Store) {
    let now = now_ms();
    let prior = leased(store.take(&take("d0", "h0", Some(500), now)).await.unwrap());
    assert!(store
        .release(&prior, &written(Some(500), now))
        .await
        .unwrap()
        .is_some());
    let dead = leased(store.take(&take("d1", "h1", Some(600), now)).await.unwrap());

    // Another delivery waits for the redrive, which finds the lapsed lease in the index.
    let later = now + LEASE_MS + 1;
    assert_eq!(
        store
            .take(&take("d2", "h2", Some(700), later))
            .await
            .unwrap(),
        busy("d1")
    );
    assert_eq!(store.lapsed(later - 2, 10).await.unwrap(), []);
    let found = store.lapsed(later, 10).await.unwrap();
    let expected = Lapsed {
        record: RECORD.into(),
        delivery: "d1".into(),
        family: "invoice".into(),
        lago_ref: "inv-1".into(),
        lease_until_ms: now + LEASE_MS,
    };
    assert_eq!(found, [expected]);
    let recovered = leased(
        store
            .take_lapsed(&found[0], Some(600), later, later + LEASE_MS)
            .await
            .unwrap(),
    );
    assert_eq!(
        (
            recovered.delivery.as_str(),
            recovered.body_sha256.as_str(),
            recovered.written
        ),
        ("d1", "h1", Some(500))
    );
    assert_ne!(recovered.token, dead.token);
    assert_eq!(
        store
            .take_lapsed(&found[0], Some(600), later, later + LEASE_MS)
            .await
            .unwrap(),
        busy("d1"),
        "recovered once"
    );
    assert_eq!(store.lapsed(later, 10).await.unwrap(), []);
    assert!(store
        .release(&dead, &written(Some(600), later))
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.written(RECORD).await.unwrap(), Some(500));
    assert!(store
        .release(&recovered, &written(Some(650), later))
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.written(RECORD).await.unwrap(), Some(650));

    // Two writers die; the oldest lease comes first. Lago's state being older than the
    // written one, the recovery has nothing to write: the lease ends all the same.
    leased(
        store
            .take(&take("d3", "h3", Some(700), later))
            .await
            .unwrap(),
    );
    let other = Take {
        record: "Lago_Invoice__c/inv-2",
        ..take("d4", "h4", None, later + 5)
    };
    leased(store.take(&other).await.unwrap());
    let after = later + 5 + LEASE_MS + 1;
    let found = store.lapsed(after, 1).await.unwrap();
    assert_eq!(
        (found.len(), found[0].delivery.as_str()),
        (1, "d3"),
        "{found:?}"
    );
    assert_eq!(
        store
            .take_lapsed(&found[0], Some(600), after, after + LEASE_MS)
            .await
            .unwrap(),
        Taken::Older { written: 650 }
    );
    let left = store.lapsed(after, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|l| l.delivery.as_str()).collect::<Vec<_>>(),
        ["d4"]
    );
    leased(
        store
            .take(&take("d5", "h5", Some(700), after))
            .await
            .unwrap(),
    );
}

async fn a_stored_delivery_answers_from_the_queue_until_retried(store: impl Store) {
    let now = now_ms();
    let lease = leased(store.take(&take("d1", "h1", Some(1), now)).await.unwrap());
    assert!(store
        .release(&lease, &Release::Stored(Status::Queued))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.take(&take("d1", "h1", Some(1), now)).await.unwrap(),
        Taken::Stored
    );
    let other = leased(store.take(&take("d2", "h2", Some(2), now)).await.unwrap());
    assert!(store
        .release(&other, &Release::Abandoned)
        .await
        .unwrap()
        .is_some());

    let retry = Take {
        retry: true,
        ..take("d1", "h1", Some(1), now)
    };
    let retry = leased(store.take(&retry).await.unwrap());
    assert!(store
        .release(&retry, &written(Some(1), now))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.take(&take("d1", "h1", Some(1), now)).await.unwrap(),
        Taken::Done
    );

    // An operator discards a failed event: its delivery is free to be written again.
    let failed = leased(store.take(&take("d3", "h3", Some(3), now)).await.unwrap());
    assert!(store
        .release(&failed, &Release::Stored(Status::Failed))
        .await
        .unwrap()
        .is_some());
    assert!(store
        .park(&park("d3", Status::Failed, now, now))
        .await
        .unwrap());
    assert!(store.discard("d3").await.unwrap());
    leased(store.take(&take("d3", "h3", Some(3), now)).await.unwrap());
}

async fn a_record_remembers_its_latest_deliveries(store: impl Store) {
    let now = now_ms();
    let deliveries: Vec<String> = (0..REMEMBERED_DELIVERIES + 2)
        .map(|i| format!("d{i}"))
        .collect();
    for (i, delivery) in deliveries.iter().enumerate() {
        let at = now + i as i64;
        let lease = leased(
            store
                .take(&take(delivery, "h", Some(i as i64), at))
                .await
                .unwrap(),
        );
        let oldest = i
            .checked_sub(REMEMBERED_DELIVERIES)
            .map(|o| deliveries[o].clone());
        assert_eq!(lease.evict, oldest, "{delivery}");
        assert!(store
            .release(&lease, &written(Some(i as i64), at))
            .await
            .unwrap()
            .is_some());
    }
    let newest = deliveries.len() as i64 - 1;
    for (i, delivery) in deliveries.iter().enumerate() {
        let expected = if i < deliveries.len() - REMEMBERED_DELIVERIES {
            Taken::Older { written: newest }
        } else {
            Taken::Done
        };
        let taken = store.take(&take(delivery, "h", Some(i as i64), now)).await;
        assert_eq!(taken.unwrap(), expected, "{delivery}");
    }
}

fn park(key: &str, status: Status, now_ms: i64, due_at_ms: i64) -> Park<'_> {
    Park {
        key,
        record: RECORD,
        family: "invoice",
        webhook_type: "invoice.created",
        body_sha256: "h",
        body: BODY,
        status,
        error_code: "E",
        error_message: "m",
        now_ms,
        due_at_ms,
        only_if_new: false,
    }
}

fn keys(events: Vec<StoredDelivery>) -> Vec<String> {
    events.into_iter().map(|e| e.key).collect()
}

async fn stored_events_are_queued_claimed_completed_and_discarded(store: impl Store) {
    let now = now_ms();
    for (key, status, due) in [
        ("q-due", Status::Queued, now - 1_000),
        ("q-later", Status::Queued, now + 60_000),
        ("f", Status::Failed, now),
        ("d", Status::Dead, now),
    ] {
        assert!(store.park(&park(key, status, now, due)).await.unwrap());
    }
    let again = Park {
        only_if_new: true,
        ..park("f", Status::Queued, now + 1, now + 1)
    };
    assert!(!store.park(&again).await.unwrap(), "the backfill's rerun");
    let failed = store.load("f").await.unwrap().unwrap();
    assert_eq!(
        (failed.attempts, failed.issue_open),
        (1, true),
        "its sync issue is open"
    );

    let retried = Park {
        error_code: "",
        ..park("q-due", Status::Queued, now + 5, now - 1_000)
    };
    assert!(store.park(&retried).await.unwrap());
    let expected = StoredDelivery {
        key: "q-due".into(),
        record: RECORD.into(),
        status: Status::Queued,
        family: "invoice".into(),
        webhook_type: "invoice.created".into(),
        body_sha256: "h".into(),
        attempts: 2,
        error_code: Some(String::new()),
        error_message: Some("m".into()),
        first_parked_at_ms: Some(now),
        due_at_ms: Some(now - 1_000),
        body: Some(BODY.to_vec()),
        issue_open: false,
    };
    assert_eq!(store.load("q-due").await.unwrap(), Some(expected));

    assert_eq!(
        keys(store.parked(Status::Queued, Some(now), 10).await.unwrap()),
        ["q-due"]
    );
    assert_eq!(
        keys(store.parked(Status::Queued, None, 10).await.unwrap()),
        ["q-due", "q-later"]
    );
    assert_eq!(
        keys(store.parked(Status::Queued, None, 1).await.unwrap()),
        ["q-due"]
    );
    let failed = store.parked(Status::Failed, None, 10).await.unwrap();
    let listed = |e: &StoredDelivery| {
        (
            e.key.clone(),
            e.status,
            e.family.clone(),
            e.webhook_type.clone(),
            e.attempts,
            e.error_code.clone(),
            e.error_message.clone(),
            e.first_parked_at_ms,
            e.due_at_ms,
            e.body.clone(),
        )
    };
    let mut without_body = store.load("f").await.unwrap().unwrap();
    without_body.body = None;
    assert_eq!(
        failed.iter().map(listed).collect::<Vec<_>>(),
        [listed(&without_body)],
        "a listing carries what the index does, bodies left out"
    );

    // One run claims a due event, with its body; the next finds it taken.
    let claimed = store.claim_due("q-due", now, now + 15_000).await.unwrap();
    let claimed = claimed.expect("claimed");
    assert_eq!(
        (claimed.status, claimed.body.as_deref()),
        (Status::InProgress, Some(BODY))
    );
    assert_eq!(
        store.claim_due("q-due", now, now + 15_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.claim_due("q-later", now, now + 15_000).await.unwrap(),
        None
    );
    assert_eq!(store.claim_due("f", now, now + 15_000).await.unwrap(), None);
    // A run that died holding the claim: the event is due again once the lease lapses.
    let reclaimed = store.claim_due("q-due", now + 16_000, now + 31_000).await;
    assert!(reclaimed.unwrap().is_some());

    store.complete("q-due", "synced", now).await.unwrap();
    let done = store.load("q-due").await.unwrap().unwrap();
    assert_eq!(
        (
            done.status,
            done.body,
            done.error_code,
            done.error_message,
            done.due_at_ms,
            done.attempts
        ),
        (Status::Completed, None, None, None, None, 2)
    );
    assert_eq!(
        keys(store.parked(Status::Queued, None, 10).await.unwrap()),
        ["q-later"]
    );

    assert!(store.requeue("f", now).await.unwrap());
    assert!(!store.requeue("f", now).await.unwrap());
    assert!(!store.requeue("q-due", now).await.unwrap());
    assert_eq!(
        keys(store.parked(Status::Failed, None, 10).await.unwrap()),
        Vec::<String>::new()
    );
    // Its sync issue stays open through the requeue and the claim, until it completes.
    let claimed = store.claim_due("f", now, now + 15_000).await.unwrap();
    assert!(claimed.expect("claimed").issue_open);
    store.complete("f", "synced", now).await.unwrap();
    assert!(!store.load("f").await.unwrap().unwrap().issue_open);

    assert!(!store.discard("q-later").await.unwrap(), "queued");
    assert!(!store.discard("q-due").await.unwrap(), "completed");
    assert!(store.discard("d").await.unwrap());
    assert_eq!(store.load("d").await.unwrap(), None);
    assert!(!store.discard("d").await.unwrap());
}

async fn customer_links_and_checkpoints_are_kept(store: impl Store) {
    assert_eq!(store.linked_account("cust-1").await.unwrap(), None);
    store.link("cust-1", "001A").await.unwrap();
    store.link("cust-1", "001B").await.unwrap();
    assert_eq!(
        store.linked_account("cust-1").await.unwrap().as_deref(),
        Some("001B")
    );

    let key = checkpoint_key("all", "invoices");
    assert_eq!(store.load_checkpoint(&key).await.unwrap(), None);
    store.save_checkpoint(&key, Some("page-2")).await.unwrap();
    assert_eq!(
        store.load_checkpoint(&key).await.unwrap().as_deref(),
        Some("page-2")
    );
    store.save_checkpoint(&key, None).await.unwrap();
    assert_eq!(store.load_checkpoint(&key).await.unwrap(), None);
}

/// Takes [`RECORD`] for `delivery` and lets it go written: the children waiting on it.
async fn write_record(store: &impl Store, delivery: &str, version: i64) -> Option<Vec<String>> {
    let now = now_ms();
    let lease = leased(
        store
            .take(&take(delivery, "h", Some(version), now))
            .await
            .unwrap(),
    );
    store
        .release(&lease, &written(Some(version), now))
        .await
        .unwrap()
}

fn children(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|id| id.to_string()).collect()
}

/// Credit notes written before their invoice (contract §7.6) wait on the invoice's record
/// ([`RECORD`] here): its writer learns of them when it lets the record go, and links them.
async fn waiting_children_are_handed_to_the_parents_writers(store: impl Store) {
    assert!(
        !store.await_parent(RECORD, "cn-1").await.unwrap(),
        "the invoice was never written: the credit note waits"
    );
    assert_eq!(
        write_record(&store, "d1", 1).await,
        Some(children(&["cn-1"]))
    );
    assert!(
        store.await_parent(RECORD, "cn-2").await.unwrap(),
        "the invoice is written: the credit note's writer links it at once"
    );

    // A linked credit note is forgotten; the others are handed to the next writer again
    // (until one of them links them).
    store
        .parent_linked(RECORD, &children(&["cn-1"]))
        .await
        .unwrap();
    assert_eq!(
        write_record(&store, "d2", 2).await,
        Some(children(&["cn-2"]))
    );
    store
        .parent_linked(RECORD, &children(&["cn-2"]))
        .await
        .unwrap();
    assert_eq!(write_record(&store, "d3", 3).await, Some(Vec::new()));
}

/// What finishes or changes an item finds none, and creates none.
async fn nothing_is_changed_where_nothing_is(store: &impl Store) {
    let now = now_ms();
    let lease = Lease {
        record: RECORD.into(),
        delivery: "d1".into(),
        body_sha256: "h".into(),
        token: "t".into(),
        written: None,
        evict: None,
    };
    for release in [written(Some(1), now), Release::Stored(Status::Queued)] {
        assert!(store.release(&lease, &release).await.unwrap().is_none());
    }
    let lapsed = Lapsed {
        record: RECORD.into(),
        delivery: "d1".into(),
        family: "invoice".into(),
        lago_ref: "inv-1".into(),
        lease_until_ms: now,
    };
    let taken = store.take_lapsed(&lapsed, Some(1), now + 1, now + LEASE_MS);
    assert_eq!(taken.await.unwrap(), busy(""));
    store
        .parent_linked(RECORD, &children(&["cn-1"]))
        .await
        .unwrap();
    let key = delivery_key("invoice", "absent");
    store.complete(&key, "synced", now).await.unwrap();
    assert_eq!(
        store.claim_due(&key, now, now + LEASE_MS).await.unwrap(),
        None
    );
    assert!(!store.requeue(&key, now).await.unwrap());
    assert!(!store.discard(&key).await.unwrap());
    assert_eq!(store.load(&key).await.unwrap(), None);
    assert_eq!(store.written(RECORD).await.unwrap(), None);
    assert_eq!(store.lapsed(now + LEASE_MS, 10).await.unwrap(), []);
}

#[tokio::test]
async fn nothing_is_created_where_nothing_is() {
    nothing_is_changed_where_nothing_is(&MemoryStore::new()).await;
    let table = Table::new().await;
    nothing_is_changed_where_nothing_is(&table.store()).await;
    assert_eq!(table.count().await, 0);
}

#[tokio::test]
async fn a_stored_event_never_expires_and_a_completed_one_does() {
    let table = Table::new().await;
    let store = table.store();
    let now = now_ms();
    let expires = |item: &HashMap<String, AttributeValue>| {
        item.get("expires_at")
            .map(|v| v.as_n().unwrap().parse::<i64>().unwrap())
    };
    store
        .park(&park("q", Status::Queued, now, now))
        .await
        .unwrap();
    assert_eq!(expires(&table.item("q").await), None);
    store.complete("q", "synced", now).await.unwrap();
    assert_eq!(
        expires(&table.item("q").await),
        Some(now / 1000 + RETENTION_SECS)
    );
    // Stored again (a redelivery failing anew): kept until completed or discarded.
    store
        .park(&park("q", Status::Failed, now, now))
        .await
        .unwrap();
    assert_eq!(expires(&table.item("q").await), None);
}

#[tokio::test]
async fn secrets_are_read_cached_and_reread_when_the_key_rotates() {
    let moto = Moto::shared().await;
    let name = unique_name("secret");
    moto.create_secret(&name, &events::secret_json("first-key"))
        .await;
    let cache = SecretCache::new(moto.secrets().await, &name);
    let first = cache.current().await.unwrap();
    assert_eq!(first.lago_hmac_key, "first-key");

    moto.put_secret(&name, &events::secret_json("rotated-key"))
        .await;
    assert_eq!(
        cache.current().await.unwrap().lago_hmac_key,
        "first-key",
        "kept between invocations"
    );
    assert_eq!(
        cache.reread_after_rejection(&first).await.unwrap(),
        None,
        "not re-read moments after a read"
    );
    tokio::time::sleep(lago_sync::secrets::FORCED_REFRESH_GAP).await;
    let rotated = cache
        .reread_after_rejection(&first)
        .await
        .unwrap()
        .expect("the new key");
    assert_eq!(rotated.lago_hmac_key, "rotated-key");
    assert_eq!(cache.current().await.unwrap().lago_hmac_key, "rotated-key");
    assert_eq!(
        cache.reread_after_rejection(&rotated).await.unwrap(),
        None,
        "no change, no new key"
    );
}

#[tokio::test]
async fn a_missing_or_malformed_secret_is_reported_without_its_value() {
    let moto = Moto::shared().await;
    let missing = SecretCache::new(moto.secrets().await, unique_name("absent"));
    assert!(
        matches!(missing.current().await, Err(SecretsError::Unavailable(m)) if m.contains("ResourceNotFoundException"))
    );

    let name = unique_name("malformed");
    moto.create_secret(&name, r#"{"lago_hmac_key":"super-secret-value"}"#)
        .await;
    let err = SecretCache::new(moto.secrets().await, &name)
        .current()
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SecretsError::Malformed("salesforce_client_id is missing".into())
    );
}

#[tokio::test]
async fn an_unreachable_emulator_fails_fast_with_a_clear_error() {
    let moto = Moto::shared().await;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_timeout(Duration::from_secs(3))
        .build();
    let config = moto
        .sdk_config()
        .await
        .into_builder()
        .endpoint_url(closed_endpoint())
        .timeout_config(timeouts)
        .build();
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), "table");
    let started = std::time::Instant::now();
    let err = store
        .take(&take("d1", "h", Some(1), now_ms()))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError("no answer".into()));
    let secrets = SecretCache::new(aws_sdk_secretsmanager::Client::new(&config), "s");
    assert!(matches!(
        secrets.current().await,
        Err(SecretsError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
