//! The operator command line (`lago-sync`) against moto: create the table, list stored
//! events, requeue and discard failed ones. Build it first: `cargo build --workspace --bins`.

use std::process::Command;

use lago_sync::store::{DynamoDbStore, EventQueue, Park, Status};
use sync_testkit::inprocess::epoch_ms;
use sync_testkit::lambda::binary_path;
use sync_testkit::moto::{unique_name, Moto};

fn lago_sync(moto: &Moto, table: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary_path("lago-sync"))
        .args(args)
        .envs(moto.env())
        .env("IDEMPOTENCY_TABLE", table)
        .output()
        .expect("lago-sync runs");
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

/// An invoice event stored with `status`, due in a minute.
fn stored<'a>(key: &'a str, status: Status, error_code: &'a str, now_ms: i64) -> Park<'a> {
    Park {
        key,
        record: "Lago_Invoice__c/inv-1",
        family: "invoice",
        webhook_type: "invoice.created",
        body_sha256: "h",
        body: b"{}",
        status,
        error_code,
        error_message: "m",
        now_ms,
        due_at_ms: now_ms + 60_000,
        only_if_new: false,
    }
}

#[tokio::test]
async fn an_operator_lists_and_requeues_failed_events() {
    let moto = Moto::shared().await;
    let table = unique_name("cli");
    let (ok, out, err) = lago_sync(moto, &table, &["create-table"]);
    assert!(ok, "{out}{err}");

    let store = DynamoDbStore::new(moto.dynamodb().await, &table);
    let now = epoch_ms();
    for (key, status, code) in [
        ("delivery#invoice#a", Status::Failed, "INVALID_FIELD"),
        ("delivery#invoice#b", Status::Queued, "SERVER_UNAVAILABLE"),
    ] {
        assert!(store.park(&stored(key, status, code, now)).await.unwrap());
    }

    let (ok, out, _) = lago_sync(moto, &table, &["list"]);
    assert!(ok);
    assert!(
        out.contains("queued")
            && out.contains("SERVER_UNAVAILABLE")
            && out.contains("delivery#invoice#b"),
        "{out}"
    );
    assert!(
        out.contains("failed") && out.contains("INVALID_FIELD") && out.contains("2 event(s)"),
        "{out}"
    );
    let (_, json, _) = lago_sync(moto, &table, &["list", "--status", "failed", "--json"]);
    let line: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(
        (line["key"].as_str(), line["attempts"].as_u64()),
        (Some("delivery#invoice#a"), Some(1))
    );

    let (ok, out, _) = lago_sync(moto, &table, &["redrive", "--all", "--dry-run"]);
    assert!(
        ok && out.contains("would requeue delivery#invoice#a") && !out.contains("#b"),
        "{out}"
    );
    let (ok, _, err) = lago_sync(moto, &table, &["redrive"]);
    assert!(!ok && err.contains("name delivery keys"), "{err}");
    let (ok, out, _) = lago_sync(moto, &table, &["redrive", "--error-code", "INVALID_FIELD"]);
    assert!(ok && out.contains("1 event(s) requeued"), "{out}");
    assert_eq!(
        store
            .load("delivery#invoice#a")
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Queued
    );
    let (ok, _, err) = lago_sync(moto, &table, &["redrive", "delivery#invoice#a"]);
    assert!(!ok && err.contains("not requeued"), "{err}");

    // Stored events never expire: only an operator removes one, and only a failed or
    // dead one.
    let (ok, out, _) = lago_sync(
        moto,
        &table,
        &["discard", "delivery#invoice#b", "--dry-run"],
    );
    assert!(
        ok && out.contains("would discard delivery#invoice#b"),
        "{out}"
    );
    let (ok, _, err) = lago_sync(moto, &table, &["discard", "delivery#invoice#b"]);
    assert!(!ok && err.contains("not discarded"), "{err}");
    let dead = stored(
        "delivery#invoice#b",
        Status::Dead,
        "SERVER_UNAVAILABLE",
        now,
    );
    store.park(&dead).await.unwrap();
    let (ok, out, _) = lago_sync(moto, &table, &["discard", "--all"]);
    assert!(ok && out.contains("1 event(s) discarded"), "{out}");
    assert_eq!(store.load("delivery#invoice#b").await.unwrap(), None);
}

#[tokio::test]
async fn migrate_carries_the_old_guard_over_and_keeps_stored_events_for_good() {
    use aws_sdk_dynamodb::types::AttributeValue::{N, S};
    use lago_sync::store::RecordGuard;

    let moto = Moto::shared().await;
    let table = unique_name("migrate");
    moto.create_table(&table).await;
    let client = moto.dynamodb().await;
    // What 0.x left: an ordering-guard item, and a failed event with a 30-day TTL.
    let legacy = [
        vec![
            ("pk", S("order#Lago_Invoice__c/inv-1".into())),
            ("version", N("1740824102000".into())),
        ],
        vec![
            ("pk", S("delivery#invoice#old".into())),
            ("status", S("failed".into())),
            ("parked", S("failed".into())),
            ("due_at", N(epoch_ms().to_string())),
            ("expires_at", N((epoch_ms() / 1000 + 86_400).to_string())),
        ],
    ];
    for item in legacy {
        let mut put = client.put_item().table_name(&table);
        for (name, value) in item {
            put = put.item(name, value);
        }
        put.send().await.unwrap();
    }

    let (ok, out, err) = lago_sync(moto, &table, &["migrate"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("1 record version(s) carried over, 1 stored event(s) no longer expire"),
        "{out}"
    );
    let store = DynamoDbStore::new(client.clone(), &table);
    // The old guard stamped invoices with updated_at alone: the lowest stage of that second.
    assert_eq!(
        store.written("Lago_Invoice__c/inv-1").await.unwrap(),
        Some(174_082_410_200_000)
    );
    let event = client
        .get_item()
        .table_name(&table)
        .key("pk", S("delivery#invoice#old".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert!(!event.contains_key("expires_at"), "{event:?}");

    let (ok, out, _) = lago_sync(moto, &table, &["migrate"]);
    assert!(
        ok && out.contains("0 record version(s) carried over, 0 stored event(s)"),
        "{out}"
    );
}
