//! The DynamoDB store and the secret cache against a real AWS API emulator (moto server),
//! and their answers when the emulator is unreachable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_config::timeout::TimeoutConfig;
use lago_sync::mapping::OrderStamp;
use lago_sync::secrets::{SecretCache, SecretsError};
use lago_sync::store::{
    Claim, ClaimRequest, DynamoDbStore, Finish, IdempotencyStore, Status, StoreError,
};
use sync_testkit::events;
use sync_testkit::moto::{closed_endpoint, unique_name, Moto};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn store() -> DynamoDbStore {
    let moto = Moto::shared().await;
    let table = unique_name("idempotency");
    moto.create_table(&table).await;
    DynamoDbStore::new(moto.dynamodb().await, table)
}

fn claim<'a>(key: &'a str, hash: &'a str, now_ms: i64, lease_ms: i64) -> ClaimRequest<'a> {
    ClaimRequest {
        key,
        body_sha256: hash,
        family: "invoice",
        webhook_type: "invoice.created",
        now_ms,
        lease_until_ms: now_ms + lease_ms,
    }
}

fn taken_status(claim: Claim) -> Status {
    match claim {
        Claim::Taken(existing) => existing.status,
        other => panic!("expected the claim to be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn a_claim_is_exclusive_until_finished_or_its_lease_lapses() {
    let store = store().await;
    let now = now_ms();
    assert_eq!(
        store.claim(&claim("k", "h1", now, 20_000)).await.unwrap(),
        Claim::Acquired { previous: None }
    );
    assert_eq!(
        taken_status(
            store
                .claim(&claim("k", "h1", now + 1, 20_000))
                .await
                .unwrap()
        ),
        Status::InProgress
    );
    // The lease lapses at the invocation's deadline: a crashed invocation does not block the key.
    assert_eq!(
        store
            .claim(&claim("k", "h1", now + 20_001, 20_000))
            .await
            .unwrap(),
        Claim::Acquired { previous: None }
    );
    store
        .finish(
            "k",
            &Finish::Completed {
                outcome: "synced",
                now_ms: now,
            },
        )
        .await
        .unwrap();
    let Claim::Taken(existing) = store
        .claim(&claim("k", "h2", now + 30_000, 20_000))
        .await
        .unwrap()
    else {
        panic!("a completed delivery is never claimed again")
    };
    assert_eq!(
        (existing.status, existing.body_sha256.as_str()),
        (Status::Completed, "h1")
    );
}

#[tokio::test]
async fn a_parked_event_keeps_its_body_error_and_attempts() {
    let store = store().await;
    let now = now_ms();
    let body = events::body(
        "invoice.created",
        "inv-1",
        Some(events::ACCOUNT),
        serde_json::json!({}),
    );
    store.claim(&claim("q", "h", now, 20_000)).await.unwrap();
    let parked = |status| Finish::Parked {
        status,
        body: &body,
        error_code: "SERVER_UNAVAILABLE",
        error_message: "down",
        now_ms: now,
        due_at_ms: now,
    };
    store.finish("q", &parked(Status::Queued)).await.unwrap();
    let stored = store.load("q").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.attempts, stored.error_code.as_deref()),
        (Status::Queued, 1, Some("SERVER_UNAVAILABLE"))
    );
    assert_eq!(stored.body.as_deref(), Some(body.as_slice()));

    // The same event delivered again takes the claim back, keeping what was stored.
    assert_eq!(
        store
            .claim(&claim("q", "h", now + 1, 20_000))
            .await
            .unwrap(),
        Claim::Acquired {
            previous: Some(Status::Queued)
        }
    );
    store.finish("q", &parked(Status::Queued)).await.unwrap();
    assert_eq!(store.load("q").await.unwrap().unwrap().attempts, 2);
    // But never with another body.
    let Claim::Taken(existing) = store
        .claim(&claim("q", "other", now + 2, 20_000))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(existing.status, Status::Queued);

    // Failed events are not claimable: their replay is the stored answer.
    store.claim(&claim("f", "h", now, 20_000)).await.unwrap();
    store
        .finish(
            "f",
            &Finish::Parked {
                status: Status::Failed,
                body: &body,
                error_code: "NOT_FOUND",
                error_message: "gone",
                now_ms: now,
                due_at_ms: now,
            },
        )
        .await
        .unwrap();
    let Claim::Taken(failed) = store
        .claim(&claim("f", "h", now + 1, 20_000))
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (
            failed.status,
            failed.error_code.as_deref(),
            failed.error_message.as_deref()
        ),
        (Status::Failed, Some("NOT_FOUND"), Some("gone"))
    );

    // Success removes the stored body.
    store
        .claim(&claim("q", "h", now + 3, 20_000))
        .await
        .unwrap();
    store
        .finish(
            "q",
            &Finish::Completed {
                outcome: "synced",
                now_ms: now,
            },
        )
        .await
        .unwrap();
    let done = store.load("q").await.unwrap().unwrap();
    assert_eq!((done.status, done.body), (Status::Completed, None));
}

#[tokio::test]
async fn a_released_claim_is_free_again_and_a_stored_event_stays_stored() {
    let store = store().await;
    let now = now_ms();
    store.claim(&claim("new", "h", now, 20_000)).await.unwrap();
    store.release("new", None).await.unwrap();
    assert_eq!(store.load("new").await.unwrap(), None);

    let body = b"{}".as_slice();
    store.claim(&claim("old", "h", now, 20_000)).await.unwrap();
    store
        .finish(
            "old",
            &Finish::Parked {
                status: Status::Queued,
                body,
                error_code: "X",
                error_message: "y",
                now_ms: now,
                due_at_ms: now,
            },
        )
        .await
        .unwrap();
    let Claim::Acquired { previous } = store
        .claim(&claim("old", "h", now + 1, 20_000))
        .await
        .unwrap()
    else {
        panic!()
    };
    store.release("old", previous).await.unwrap();
    let stored = store.load("old").await.unwrap().unwrap();
    assert_eq!(
        (stored.status, stored.body.as_deref()),
        (Status::Queued, Some(body))
    );
}

#[tokio::test]
async fn the_order_only_moves_forward() {
    let store = store().await;
    let stamp = |version| OrderStamp {
        record: "Lago_Invoice__c/inv-1".into(),
        version,
    };
    let now = now_ms();
    assert!(store.advance_order(&stamp(200), now).await.unwrap());
    assert!(
        store.advance_order(&stamp(200), now).await.unwrap(),
        "the same state may be written again"
    );
    assert!(!store.advance_order(&stamp(100), now).await.unwrap());
    assert!(store.advance_order(&stamp(300), now).await.unwrap());
    let other = OrderStamp {
        record: "Lago_Invoice__c/inv-2".into(),
        version: 1,
    };
    assert!(
        store.advance_order(&other, now).await.unwrap(),
        "records are independent"
    );
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
        .claim(&claim("k", "h", now_ms(), 20_000))
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

#[tokio::test]
async fn parked_events_are_found_through_the_sparse_index_and_claimed_once() {
    let store = store().await;
    let now = now_ms();
    let body = b"{\"stored\":true}".as_slice();
    for (key, status, due) in [
        ("q-due", Status::Queued, now - 1_000),
        ("q-later", Status::Queued, now + 60_000),
        ("f", Status::Failed, now),
    ] {
        store.claim(&claim(key, "h", now, 20_000)).await.unwrap();
        let finish = Finish::Parked {
            status,
            body,
            error_code: "E",
            error_message: "m",
            now_ms: now,
            due_at_ms: due,
        };
        store.finish(key, &finish).await.unwrap();
    }
    store.claim(&claim("done", "h", now, 20_000)).await.unwrap();
    store
        .finish(
            "done",
            &Finish::Completed {
                outcome: "synced",
                now_ms: now,
            },
        )
        .await
        .unwrap();

    let keys = |events: Vec<lago_sync::store::StoredDelivery>| {
        events.into_iter().map(|e| e.key).collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.parked(Status::Queued, Some(now), 10).await.unwrap()),
        ["q-due"]
    );
    assert_eq!(
        keys(store.parked(Status::Queued, None, 10).await.unwrap()),
        ["q-due", "q-later"]
    );
    let failed = store.parked(Status::Failed, None, 10).await.unwrap();
    assert_eq!(
        (
            failed[0].key.as_str(),
            failed[0].family.as_str(),
            failed[0].attempts
        ),
        ("f", "invoice", 1)
    );
    assert_eq!(failed[0].body, None, "listing leaves bodies out");

    // One run claims a due event; the other run finds it taken; the body comes with the claim.
    let claimed = store
        .claim_due("q-due", now, now + 15_000)
        .await
        .unwrap()
        .expect("claimed");
    assert_eq!(claimed.body.as_deref(), Some(body));
    assert_eq!(
        store.claim_due("q-due", now, now + 15_000).await.unwrap(),
        None
    );
    assert_eq!(
        store.claim_due("q-later", now, now + 15_000).await.unwrap(),
        None,
        "not due"
    );
    assert_eq!(
        store.claim_due("f", now, now + 15_000).await.unwrap(),
        None,
        "failed events wait for an operator"
    );
    // A run that died holding the claim: the event is due again once the lease lapses.
    assert!(store
        .claim_due("q-due", now + 16_000, now + 31_000)
        .await
        .unwrap()
        .is_some());

    assert!(store.requeue("f", now).await.unwrap());
    assert!(!store.requeue("f", now).await.unwrap());
    assert!(!store.requeue("done", now).await.unwrap());
    assert_eq!(
        keys(store.parked(Status::Failed, None, 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert!(store
        .claim_due("f", now, now + 15_000)
        .await
        .unwrap()
        .is_some());
}
