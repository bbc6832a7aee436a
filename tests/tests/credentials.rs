//! Contract §7.4: a rotated Salesforce client secret causes no failures. A refused token
//! request re-reads the secret (at most every few seconds) and is repeated once; client
//! credentials still refused queue the event (never `failed`) and count the
//! `SalesforceCredentialsRefused` metric. In-process, against the Salesforce stand-in,
//! with the secret's value in memory where a test rotates it.

use std::time::Duration;

use lago_sync::backfill::Options;
use lago_sync::pipeline::Outcome;
use lago_sync::secrets::{Secrets, FORCED_REFRESH_GAP};
use lago_sync::store::{MemoryStore, Status};
use lago_sync::Family;
use serde_json::json;
use sync_testkit::events::{self, ACCOUNT, HMAC_KEY};
use sync_testkit::inprocess::Harness;
use sync_testkit::lago_standin::{Dataset, Rig};

const ROTATED: &str = "rotated-client-secret-never-logged";

fn invoice(lago_id: &str) -> Vec<u8> {
    events::body("invoice.created", lago_id, Some(ACCOUNT), json!({}))
}

/// The test secret with the rotated client secret.
fn rotated_secrets() -> Secrets {
    Secrets {
        salesforce_client_secret: ROTATED.into(),
        ..Secrets::parse(&events::secret_json(HMAC_KEY)).expect("the test secret parses")
    }
}

fn assert_synced(outcome: &Outcome) {
    assert!(matches!(outcome, Outcome::Synced { .. }), "{outcome:?}");
}

/// Asserts an answer `202 queued` for refused client credentials, naming no secret.
fn assert_queued_refused(outcome: &Outcome) {
    assert_eq!(outcome.status_code(), 202, "{outcome:?}");
    let Outcome::Queued { code, message } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(code, "OAUTH_INVALID_CLIENT");
    let body = outcome.body().to_string();
    for secret in [ROTATED, "local-client-secret", HMAC_KEY] {
        assert!(
            !body.contains(secret) && !message.contains(secret),
            "{body}"
        );
    }
}

/// A function that has written one event, and so holds a token and the secret as read
/// then, once a forced re-read is allowed again.
async fn warm_harness() -> Harness {
    let h = Harness::start(Family::Invoice).await;
    assert_synced(&h.deliver("d1", &invoice("inv-1")).await);
    assert_eq!(h.app.secrets.reads(), 1);
    tokio::time::sleep(FORCED_REFRESH_GAP).await;
    h
}

#[tokio::test]
async fn a_client_secret_rotated_in_secrets_manager_and_the_org_is_reread_and_the_event_syncs() {
    let h = warm_harness().await;
    // The rotation: the org takes the new secret, Secrets Manager holds it, and the kept
    // token is no longer valid (the next write gets 401 INVALID_SESSION_ID).
    h.standin.set_client_secret(ROTATED);
    h.secret.set(rotated_secrets());
    h.standin.expire_tokens();

    let outcome = h.deliver("d2", &invoice("inv-2")).await;
    assert_synced(&outcome);
    assert_eq!(h.app.secrets.reads(), 2, "one re-read of the secret");
    // The first token, the request refused with the kept secret, the one with the new.
    assert_eq!(h.standin.stats().token_requests, 3);
    assert_eq!(h.app.salesforce.credentials_refused(), 0);
    assert_eq!(h.standin.records("Lago_Invoice__c").len(), 2);
    assert_eq!(
        h.stored("d2").await,
        None,
        "written at once: nothing stored"
    );
}

#[tokio::test]
async fn a_client_secret_rotated_only_in_the_org_queues_the_event_and_counts_the_metric() {
    let h = warm_harness().await;
    h.standin.set_client_secret(ROTATED);
    h.standin.expire_tokens();

    let outcome = h.deliver("d2", &invoice("inv-2")).await;
    assert_queued_refused(&outcome);
    let stored = h.stored("d2").await.expect("the event is stored");
    assert_eq!(stored.status, Status::Queued);
    assert_eq!(stored.error_code.as_deref(), Some("OAUTH_INVALID_CLIENT"));
    assert_eq!(h.app.secrets.reads(), 2, "the secret was re-read, in vain");
    assert_eq!(h.app.salesforce.credentials_refused(), 1, "the metric");
    assert_eq!(
        h.standin.stats().token_requests,
        2,
        "no retry with the same secret"
    );

    // Secrets Manager catches up: Lago's retry of the delivery is written.
    h.secret.set(rotated_secrets());
    tokio::time::sleep(FORCED_REFRESH_GAP).await;
    assert_synced(&h.deliver("d2", &invoice("inv-2")).await);
    assert_eq!(h.app.secrets.reads(), 3);
    assert_eq!(h.app.salesforce.credentials_refused(), 1);
    assert_eq!(h.standin.records("Lago_Invoice__c").len(), 2);
}

#[tokio::test]
async fn refused_credentials_reread_the_secret_at_most_every_few_seconds() {
    let h = warm_harness().await;
    h.standin.set_client_secret(ROTATED);
    h.standin.expire_tokens();

    for i in 2..=7 {
        let outcome = h
            .deliver(&format!("d{i}"), &invoice(&format!("inv-{i}")))
            .await;
        assert_queued_refused(&outcome);
    }
    assert_eq!(
        h.app.secrets.reads(),
        2,
        "six refused events, one re-read of the secret"
    );
    assert_eq!(h.app.salesforce.credentials_refused(), 6);
    assert_eq!(h.standin.stats().token_requests, 1 + 6);
    assert_eq!(h.standin.records("Lago_Invoice__c").len(), 1);
}

#[tokio::test]
async fn the_backfill_collections_reread_a_rotated_client_secret() {
    let rig = Rig::start(Dataset::generate(3, 3, 3, 0), MemoryStore::new(), None).await;
    rig.app.secrets.current().await.expect("the secret is read");
    tokio::time::sleep(FORCED_REFRESH_GAP).await;
    rig.salesforce.set_client_secret(ROTATED);
    rig.secret.set(rotated_secrets());

    let summary = tokio::time::timeout(Duration::from_secs(60), rig.backfill(&Options::default()))
        .await
        .expect("the backfill ends");
    assert!(summary.finished, "{summary:?}");
    assert_eq!(summary.stopped, None);
    let written: u64 = summary.objects.iter().map(|o| o.written).sum();
    assert_eq!(written, 3 + 3 + 3, "{summary:?}");
    assert_eq!(rig.app.secrets.reads(), 2, "one re-read of the secret");
    assert_eq!(
        summary.salesforce_token_requests, 2,
        "refused, then granted"
    );
    assert_eq!(rig.app.salesforce.credentials_refused(), 0);
}
