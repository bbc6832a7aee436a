//! Salesforce → Lago (contract §8) in-process: outbound messages of Accounts flagged "Bill
//! with Lago" against the Lago API stand-in, which records the customer upserts, and the
//! Salesforce stand-in, which shows what the Account says.

use std::time::{Duration, Instant};

use lago_sync::lago_api::LagoApi;
use lago_sync::outbound::push::push_flagged;
use lago_sync::pipeline::{OutboundAnswer, OutboundRequest};
use lago_sync::secrets::{Secrets, FORCED_REFRESH_GAP};
use lago_sync::store::{delivery_key, DynamoDbStore, EventQueue, RecordGuard, Status, Take, Taken};
use lago_sync::Family;
use serde_json::{json, Value};
use sync_testkit::events::{
    self, flagged_account, outbound_message, ACCOUNT, ORG_ID, OUTBOUND_TOKEN,
};
use sync_testkit::inprocess::{epoch_ms, Harness};
use sync_testkit::lago_standin::API_KEY as LAGO_API_KEY;
use sync_testkit::moto::{closed_endpoint, Moto};

const STAMP: &str = "2026-12-02T07:30:00.000Z";
const LATER: &str = "2026-12-02T07:31:00.000Z";

async fn send(h: &Harness, token: &str, body: &str) -> OutboundAnswer {
    let request = OutboundRequest {
        token,
        body: body.as_bytes(),
        org_id: ORG_ID,
        deadline: Instant::now() + Duration::from_secs(20),
    };
    h.app.handle_outbound(&request).await
}

async fn message(h: &Harness, notifications: &[(&str, Value)]) -> OutboundAnswer {
    send(h, OUTBOUND_TOKEN, &outbound_message(ORG_ID, notifications)).await
}

fn labels(answer: &OutboundAnswer) -> Vec<(&str, &str)> {
    answer
        .outcomes
        .iter()
        .map(|(id, outcome)| (id.as_str(), outcome.label()))
        .collect()
}

fn acknowledged(answer: &OutboundAnswer) -> bool {
    answer.status == 200 && answer.body.contains("<Ack>true</Ack>")
}

fn upserts(h: &Harness) -> Vec<Value> {
    h.lago.customer_upserts()
}

/// The Lago customer of `external_id`, read through Lago's API.
async fn lago_customer(h: &Harness, external_id: &str) -> Option<Value> {
    LagoApi::new(&h.lago.url(), LAGO_API_KEY)
        .object(Family::Customer, external_id, Duration::from_secs(5))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flagged_account_becomes_its_lago_customer_with_one_lago_call_and_no_salesforce_call() {
    let h = Harness::start(Family::Customer).await;
    let answer = message(&h, &[("04l1", flagged_account(ACCOUNT, "Acme SAS", STAMP))]).await;

    assert!(acknowledged(&answer), "{answer:?}");
    assert_eq!(labels(&answer), [("04l1", "synced")]);
    assert_eq!(
        upserts(&h),
        [json!({ "customer": {
            "external_id": ACCOUNT, "external_salesforce_id": ACCOUNT, "name": "Acme SAS",
            "email": "billing@acme.test", "currency": "EUR", "tax_identification_number": "FR12345678901",
            "address_line1": "1 rue de la Paix", "city": "Paris", "zipcode": "75002", "country": "FR",
            "url": "https://acme.test",
        }})]
    );
    let customer = lago_customer(&h, ACCOUNT).await.expect("created in Lago");
    assert_eq!(customer["external_salesforce_id"], json!(ACCOUNT));
    assert_eq!(
        h.rest_calls(),
        0,
        "the success path costs no Salesforce call"
    );

    // Salesforce sends an unacknowledged message again; a redelivery does nothing twice.
    let again = message(&h, &[("04l1", flagged_account(ACCOUNT, "Acme SAS", STAMP))]).await;
    assert!(acknowledged(&again));
    assert_eq!(labels(&again), [("04l1", "duplicate")]);
    assert_eq!(upserts(&h).len(), 1);
}

#[tokio::test]
async fn the_newest_state_of_an_account_wins_whatever_the_order() {
    let h = Harness::start(Family::Customer).await;
    // In one message, older first: the newest is pushed, the older costs nothing.
    let answer = message(
        &h,
        &[
            ("04l1", flagged_account(ACCOUNT, "Acme (old name)", STAMP)),
            ("04l2", flagged_account(ACCOUNT, "Acme SAS", LATER)),
        ],
    )
    .await;
    assert!(acknowledged(&answer));
    assert_eq!(labels(&answer), [("04l2", "synced"), ("04l1", "skipped")]);
    // Across messages: an older one arriving late is acknowledged and does nothing.
    let late = message(
        &h,
        &[(
            "04l0",
            flagged_account(ACCOUNT, "Acme (older)", "2026-12-02T07:29:00.000Z"),
        )],
    )
    .await;
    assert!(acknowledged(&late));
    assert_eq!(labels(&late), [("04l0", "skipped")]);
    let names: Vec<Value> = upserts(&h)
        .iter()
        .map(|u| u["customer"]["name"].clone())
        .collect();
    assert_eq!(names, [json!("Acme SAS")]);
}

#[tokio::test]
async fn a_lago_outage_is_stored_acknowledged_and_redriven() {
    let h = Harness::start(Family::Customer).await;
    h.lago.fail_with(Some(503));
    let answer = message(&h, &[("04l1", flagged_account(ACCOUNT, "Acme SAS", STAMP))]).await;

    assert!(
        acknowledged(&answer),
        "stored for the redrive, so Salesforce may stop"
    );
    assert_eq!(labels(&answer), [("04l1", "queued")]);
    let account = h.standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(account["Lago_Sync_Status__c"], json!("pending"));
    assert_eq!(h.rest_calls(), 1, "one call shows it on the Account");

    h.lago.fail_with(None);
    let report = h.redrive(Duration::from_secs(3600)).await;
    assert_eq!(report.synced, 1, "{report:?}");
    assert!(lago_customer(&h, ACCOUNT).await.is_some());
    assert_eq!(
        h.rest_calls(),
        1,
        "the retry's success costs no Salesforce call"
    );
}

#[tokio::test]
async fn a_refusal_by_lago_fails_the_push_and_the_account_says_what_to_change() {
    let h = Harness::start(Family::Customer).await;
    let mut account = flagged_account(ACCOUNT, "Acme SAS", STAMP);
    account["Lago_Currency__c"] = json!("EURO");
    let answer = message(&h, &[("04l1", account)]).await;

    assert!(acknowledged(&answer));
    assert_eq!(labels(&answer), [("04l1", "failed")]);
    let shown = h.standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(shown["Lago_Sync_Status__c"], json!("failed"));
    let reason = shown["Lago_Sync_Error__c"].as_str().unwrap();
    assert!(
        reason.contains("Lago Currency must be an ISO 4217 code"),
        "{reason}"
    );
    assert_eq!(h.rest_calls(), 1, "one Salesforce call on the failure path");
    let stored = h
        .app
        .store
        .load(&lago_sync::store::delivery_key("account", "04l1"))
        .await
        .unwrap()
        .expect("stored for an operator");
    assert_eq!(stored.status, Status::Failed);
    assert!(lago_customer(&h, ACCOUNT).await.is_none());
}

#[tokio::test]
async fn a_wrong_token_another_org_or_a_malformed_body_is_refused_before_lago() {
    let h = Harness::start(Family::Customer).await;
    let body = outbound_message(ORG_ID, &[("04l1", flagged_account(ACCOUNT, "Acme", STAMP))]);
    let wrong_token = send(&h, "outbound-token-guessed", &body).await;
    assert_eq!(wrong_token.status, 401);
    assert!(!wrong_token.body.contains(OUTBOUND_TOKEN));
    let other_org = outbound_message(
        "00D000000000002AAA",
        &[("04l1", flagged_account(ACCOUNT, "Acme", STAMP))],
    );
    assert_eq!(send(&h, OUTBOUND_TOKEN, &other_org).await.status, 401);
    let malformed = send(&h, OUTBOUND_TOKEN, "{\"not\": \"soap\"}").await;
    assert_eq!(malformed.status, 400);
    assert!(malformed.body.contains("not XML"), "{}", malformed.body);
    assert!(upserts(&h).is_empty());
    assert_eq!(h.rest_calls(), 0);
}

#[tokio::test]
async fn a_batch_of_one_hundred_accounts_is_one_acknowledgement() {
    let h = Harness::start(Family::Customer).await;
    let ids: Vec<(String, String)> = (1..=100)
        .map(|i| (format!("04l{i:03}"), format!("001000000000{i:03}AAA")))
        .collect();
    let notifications: Vec<(&str, Value)> = ids
        .iter()
        .map(|(n, a)| {
            (
                n.as_str(),
                flagged_account(a, &format!("Account {a}"), STAMP),
            )
        })
        .collect();
    let answer = message(&h, &notifications).await;
    assert!(acknowledged(&answer));
    assert_eq!(answer.outcomes.len(), 100);
    assert!(answer.outcomes.iter().all(|(_, o)| o.label() == "synced"));
    assert_eq!(upserts(&h).len(), 100);
    let again = message(&h, &notifications).await;
    assert!(again.outcomes.iter().all(|(_, o)| o.label() == "duplicate"));
    assert_eq!(upserts(&h).len(), 100, "no Lago call for the redelivery");
}

#[tokio::test]
async fn flag_customer_webhook_and_the_account_is_filled_and_synced() {
    let h = Harness::start(Family::Customer).await;
    // A first attempt failed: the Account says so until the customer's webhook comes back.
    let mut refused = flagged_account(ACCOUNT, "Acme SAS", STAMP);
    refused["Lago_Currency__c"] = json!("EURO");
    message(&h, &[("04l1", refused)]).await;
    assert_eq!(
        h.standin.record_by("Account", "Id", ACCOUNT).unwrap()["Lago_Sync_Status__c"],
        json!("failed")
    );
    // The user fixes the currency; Salesforce sends the newer state.
    let answer = message(&h, &[("04l2", flagged_account(ACCOUNT, "Acme SAS", LATER))]).await;
    assert_eq!(labels(&answer), [("04l2", "synced")]);
    // Lago's customer.created webhook, with the customer as Lago holds it.
    let customer = lago_customer(&h, ACCOUNT).await.unwrap();
    let webhook = serde_json::to_vec(&json!({
        "webhook_type": "customer.created", "object_type": "customer",
        "organization_id": "1a901a90-1a90-1a90-1a90-1a901a901a90", "customer": customer,
    }))
    .unwrap();
    let calls = h.rest_calls();
    assert_eq!(h.deliver("k1", &webhook).await.label(), "synced");
    assert_eq!(
        h.rest_calls(),
        calls + 1,
        "one call fills the Account and clears the error"
    );
    let filled = h.standin.record_by("Account", "Id", ACCOUNT).unwrap();
    assert_eq!(filled["Lago_Customer_Id__c"], customer["lago_id"]);
    assert_eq!(filled["Lago_External_Customer_Id__c"], json!(ACCOUNT));
    assert_eq!(filled["Lago_Currency__c"], json!("EUR"));
    assert_eq!(filled["Lago_Sync_Status__c"], json!("synced"));
    assert_eq!(filled["Lago_Sync_Error__c"], Value::Null);
}

#[tokio::test]
async fn push_accounts_pushes_the_flagged_unsynced_ones_once() {
    let h = Harness::start(Family::Customer).await;
    let flagged = [
        "001000000000002AAA",
        "001000000000003AAA",
        "001000000000004AAA",
    ];
    for (i, id) in flagged.iter().enumerate() {
        h.standin.add_account(id);
        let mut fields = json!({
            "Name": format!("Flagged {i}"), "Lago_Sync__c": true, "Lago_Currency__c": "USD",
            "BillingCountry": "US",
        });
        if i == 2 {
            // Synced already: not pushed again.
            fields["Lago_Sync_Status__c"] = json!("synced");
        }
        h.standin.set_account_fields(id, fields);
    }
    // Flagged by nobody: left alone.
    h.standin.set_account_fields(
        ACCOUNT,
        json!({ "Name": "Not billed", "Lago_Sync__c": false }),
    );

    let summary = push_flagged(&h.app, &|_| {}).await.unwrap();
    assert_eq!(summary.found, 2);
    assert_eq!(summary.pushed(), 2, "{summary:?}");
    assert!(summary.succeeded());
    let pushed: Vec<Value> = upserts(&h)
        .iter()
        .map(|u| u["customer"]["external_id"].clone())
        .collect();
    assert_eq!(pushed, [json!(flagged[0]), json!(flagged[1])]);
    assert_eq!(upserts(&h)[0]["customer"]["currency"], json!("USD"));

    // Run again before Lago's webhooks came back: the same Accounts, nothing pushed twice.
    let again = push_flagged(&h.app, &|_| {}).await.unwrap();
    assert_eq!(again.outcomes.get("duplicate"), Some(&2), "{again:?}");
    assert_eq!(upserts(&h).len(), 2);
}

/// The secret as the tests write it, with `change` applied (a rotation).
fn rotated(change: impl FnOnce(&mut Secrets)) -> Secrets {
    let mut secrets = Secrets::parse(&events::secret_json(events::HMAC_KEY)).unwrap();
    change(&mut secrets);
    secrets
}

#[tokio::test]
async fn a_rotated_lago_key_or_outbound_token_is_picked_up_without_a_redeploy() {
    let h = Harness::start(Family::Customer).await;
    // The function holds a Lago key that Lago no longer accepts.
    h.secret.set(rotated(|s| {
        s.lago_api_key = Some("a-revoked-lago-key".into())
    }));
    let message = |id: &str, stamp: &str| {
        outbound_message(ORG_ID, &[(id, flagged_account(ACCOUNT, "Acme", stamp))])
    };
    let refused = send(&h, OUTBOUND_TOKEN, &message("04l1", STAMP)).await;
    assert_eq!(
        labels(&refused),
        [("04l1", "failed")],
        "the revoked key is refused"
    );

    // The key rotated in Secrets Manager: Lago's 401 makes the function re-read it (at
    // most every few seconds) and push with the new one.
    tokio::time::sleep(FORCED_REFRESH_GAP).await;
    h.secret.set(rotated(|_| {}));
    let pushed = send(&h, OUTBOUND_TOKEN, &message("04l2", LATER)).await;
    assert_eq!(labels(&pushed), [("04l2", "synced")], "{pushed:?}");

    // The path token rotated (and the metadata rendered again): the new one is accepted
    // at once, the old one no more.
    tokio::time::sleep(FORCED_REFRESH_GAP).await;
    let new_token = "a-new-outbound-token-5e4d3c2b1a09f8e7";
    h.secret.set(rotated(|s| {
        s.salesforce_outbound_token = Some(new_token.into())
    }));
    let answer = send(&h, new_token, &message("04l3", "2026-12-02T07:32:00.000Z")).await;
    assert!(acknowledged(&answer), "{answer:?}");
    assert_eq!(
        send(&h, OUTBOUND_TOKEN, &message("04l4", STAMP))
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn push_accounts_reports_what_it_could_not_push_nor_store() {
    // The table unreachable: nothing is pushed, nothing stored, and the run says so.
    let moto = Moto::shared().await;
    let config = moto
        .sdk_config()
        .await
        .into_builder()
        .endpoint_url(closed_endpoint())
        .build();
    let store = DynamoDbStore::new(aws_sdk_dynamodb::Client::new(&config), "no-table");
    let h = Harness::start_with(Family::Customer, store).await;
    h.standin.set_account_fields(
        ACCOUNT,
        json!({ "Name": "Flagged", "Lago_Sync__c": true, "Lago_Currency__c": "USD" }),
    );
    let summary = push_flagged(&h.app, &|_| {}).await.unwrap();
    assert_eq!(summary.found, 1);
    assert_eq!(summary.pushed(), 0);
    assert_eq!(
        summary.not_pushed,
        [(ACCOUNT.to_owned(), "unavailable".to_owned())]
    );
    assert!(!summary.succeeded(), "the CLI exits non-zero");
    assert!(h.lago.customer_upserts().is_empty());
}

#[tokio::test]
async fn a_push_whose_function_died_frees_the_account_for_salesforces_resend() {
    let h = Harness::start(Family::Customer).await;
    // A function took the Account's record for notification 04l1 and died holding it.
    let now = epoch_ms();
    let record = format!("LagoCustomer/{ACCOUNT}");
    let delivery = delivery_key("account", "04l1");
    let take = Take {
        record: &record,
        delivery: &delivery,
        body_sha256: "hash",
        version: Some(1),
        family: "account",
        lago_ref: ACCOUNT,
        now_ms: now - 60_000,
        lease_until_ms: now - 30_000,
        retry: false,
    };
    assert!(matches!(
        h.app.store.take(&take).await.unwrap(),
        Taken::Leased(_)
    ));

    // The redrive has nothing to read back (the message was never acknowledged, so
    // Salesforce sends it again): it frees the record, and counts it recovered.
    let report = h.redrive(Duration::ZERO).await;
    assert_eq!((report.recovered, report.unrecovered), (1, 0), "{report:?}");
    let again = message(&h, &[("04l1", flagged_account(ACCOUNT, "Acme SAS", STAMP))]).await;
    assert!(acknowledged(&again));
    assert_eq!(labels(&again), [("04l1", "synced")]);
    assert_eq!(upserts(&h).len(), 1);
}

#[tokio::test]
async fn two_messages_of_one_account_at_once_end_in_its_newest_state() {
    for newer_first in [true, false] {
        let h = Harness::start(Family::Customer).await;
        // Each push holds the Account's record while Lago answers.
        h.lago.set_delay(Duration::from_millis(300));
        let newer_body = [("04l2", flagged_account(ACCOUNT, "Acme SAS", LATER))];
        let older_body = [("04l1", flagged_account(ACCOUNT, "Acme (old)", STAMP))];
        let (newer, older) = (message(&h, &newer_body), message(&h, &older_body));
        let (first, second) = if newer_first {
            tokio::join!(newer, older)
        } else {
            let (o, n) = tokio::join!(older, newer);
            (n, o)
        };
        assert!(acknowledged(&first) && acknowledged(&second));
        let customer = lago_customer(&h, ACCOUNT).await.unwrap();
        assert_eq!(
            customer["name"],
            json!("Acme SAS"),
            "newer first: {newer_first}"
        );
        let last = upserts(&h).last().unwrap()["customer"]["name"].clone();
        assert_eq!(last, json!("Acme SAS"), "the older one never lands last");
    }
}
