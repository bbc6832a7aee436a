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
        let park = Park {
            key,
            record: "Lago_Invoice__c/inv-1",
            family: "invoice",
            webhook_type: "invoice.created",
            body_sha256: "h",
            body: b"{}",
            status,
            error_code: code,
            error_message: "m",
            now_ms: now,
            due_at_ms: now + 60_000,
            only_if_new: false,
        };
        assert!(store.park(&park).await.unwrap());
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
    let park = Park {
        key: "delivery#invoice#b",
        record: "Lago_Invoice__c/inv-1",
        family: "invoice",
        webhook_type: "invoice.created",
        body_sha256: "h",
        body: b"{}",
        status: Status::Dead,
        error_code: "SERVER_UNAVAILABLE",
        error_message: "m",
        now_ms: now,
        due_at_ms: now,
        only_if_new: false,
    };
    store.park(&park).await.unwrap();
    let (ok, out, _) = lago_sync(moto, &table, &["discard", "--all"]);
    assert!(ok && out.contains("1 event(s) discarded"), "{out}");
    assert_eq!(store.load("delivery#invoice#b").await.unwrap(), None);
}
