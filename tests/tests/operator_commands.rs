//! The set-up commands of the built `lago-sync` binary (check, setup-webhooks,
//! backfill) against moto (table and secret) and both stand-ins. Build it first:
//! `cargo build --workspace --bins`.

use std::path::Path;

use lago_sync::store::{DynamoDbStore, EventQueue, Status};
use serde_json::json;
use sync_testkit::events::{secret_json, HMAC_KEY};
use sync_testkit::lago_standin::{account_id, Dataset, LagoStandin, API_KEY};
use sync_testkit::lambda::binary_path;
use sync_testkit::moto::{unique_name, Moto};
use sync_testkit::standin::{Standin, StandinConfig};

struct Env {
    table: String,
    secret: String,
    salesforce_url: String,
    lago_url: String,
}

struct Run {
    ok: bool,
    out: String,
}

impl Env {
    async fn new(moto: &Moto, salesforce: &Standin, lago: &LagoStandin, secret: &str) -> Env {
        let table = unique_name("ops");
        moto.create_table(&table).await;
        let name = unique_name("ops-secret");
        moto.create_secret(&name, secret).await;
        Env {
            table,
            secret: name,
            salesforce_url: salesforce.url(),
            lago_url: lago.url(),
        }
    }

    async fn lago_sync(&self, moto: &Moto, args: &[&str]) -> Run {
        let output = tokio::process::Command::new(binary_path("lago-sync"))
            .args(args)
            .envs(moto.env())
            .env("IDEMPOTENCY_TABLE", &self.table)
            .env("SECRET_ID", &self.secret)
            .env("SALESFORCE_URL", &self.salesforce_url)
            .env("LAGO_API_URL", &self.lago_url)
            .output()
            .await
            .expect("lago-sync runs");
        let out = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        // No secret value ever appears in what the operator sees.
        for secret in [API_KEY, HMAC_KEY, "local-client-secret"] {
            assert!(!out.contains(secret), "a secret leaked: {out}");
        }
        Run {
            ok: output.status.success(),
            out,
        }
    }
}

async fn standins(metadata_dir: Option<&Path>) -> (Standin, LagoStandin) {
    let mut config = StandinConfig {
        accounts: (0..3).map(account_id).collect(),
        ..StandinConfig::default()
    };
    if let Some(dir) = metadata_dir {
        config.metadata_dir = dir.to_owned();
    }
    let salesforce = Standin::start(config).await;
    let lago = LagoStandin::start(API_KEY, Dataset::generate(3, 6, 10, 2)).await;
    (salesforce, lago)
}

#[tokio::test]
async fn check_passes_on_a_ready_deployment() {
    let moto = Moto::shared().await;
    let (salesforce, lago) = standins(None).await;
    let env = Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await;
    let run = env.lago_sync(moto, &["check"]).await;
    assert!(run.ok, "{}", run.out);
    for line in [
        "PASS  configuration",
        "PASS  secret",
        "PASS  Lago API key: 3 customers visible",
        "PASS  Salesforce token",
        "PASS  Salesforce schema: 6 objects, 85 fields, all writable",
        "all checks passed",
    ] {
        assert!(run.out.contains(line), "{line} missing from:\n{}", run.out);
    }
    // One describe per object, one token.
    let stats = salesforce.stats();
    assert_eq!((stats.rest_requests, stats.token_requests), (6, 1));
}

#[tokio::test]
async fn check_names_a_field_the_org_lacks() {
    let moto = Moto::shared().await;
    let copy = std::env::temp_dir().join(unique_name("metadata"));
    copy_dir(&StandinConfig::repo_metadata_dir(), &copy);
    std::fs::remove_file(copy.join("Lago_Invoice__c/fields/File_Url__c.field-meta.xml")).unwrap();
    let (salesforce, lago) = standins(Some(&copy)).await;
    let env = Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await;
    let run = env.lago_sync(moto, &["check"]).await;
    assert!(!run.ok, "{}", run.out);
    assert!(
        run.out
            .contains("FAIL  Salesforce schema: Lago_Invoice__c.File_Url__c: field missing"),
        "{}",
        run.out
    );
    assert!(run.out.contains("check failed"), "{}", run.out);
    std::fs::remove_dir_all(copy).ok();
}

#[tokio::test]
async fn check_refuses_a_wrong_lago_key_and_a_url_with_api_v1() {
    let moto = Moto::shared().await;
    let (salesforce, lago) = standins(None).await;
    let mut secret: serde_json::Value = serde_json::from_str(&secret_json(HMAC_KEY)).unwrap();
    secret["lago_api_key"] = json!("not-the-key");
    let env = Env::new(moto, &salesforce, &lago, &secret.to_string()).await;
    let run = env.lago_sync(moto, &["check"]).await;
    assert!(!run.ok);
    assert!(
        run.out
            .contains("FAIL  Lago API key: Lago refused the API key (HTTP 401)"),
        "{}",
        run.out
    );
    assert!(!run.out.contains("not-the-key"), "{}", run.out);
    assert!(run.out.contains("PASS  Salesforce schema"), "{}", run.out);

    let env = Env {
        lago_url: format!("{}/api/v1/", lago.url()),
        ..Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await
    };
    let run = env.lago_sync(moto, &["check"]).await;
    assert!(!run.ok);
    assert!(
        run.out.contains(
            "FAIL  configuration: LAGO_API_URL is malformed: give the base URL without /api/v1"
        ),
        "{}",
        run.out
    );
    // A trailing slash alone is fine.
    let env = Env {
        lago_url: format!("{}/", lago.url()),
        ..Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await
    };
    assert!(env.lago_sync(moto, &["check"]).await.ok);
}

#[tokio::test]
async fn setup_webhooks_registers_four_endpoints_once() {
    let moto = Moto::shared().await;
    let (salesforce, lago) = standins(None).await;
    let env = Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await;
    let base = "https://abc123.execute-api.eu-west-1.amazonaws.com/";

    let dry = env
        .lago_sync(moto, &["setup-webhooks", "--base-url", base, "--dry-run"])
        .await;
    assert!(
        dry.ok && dry.out.contains("4 endpoint(s) would change"),
        "{}",
        dry.out
    );
    assert!(lago.webhook_endpoints().is_empty());

    let first = env
        .lago_sync(moto, &["setup-webhooks", "--base-url", base])
        .await;
    assert!(
        first.ok && first.out.contains("4 endpoint(s) changed"),
        "{}",
        first.out
    );
    let endpoints = lago.webhook_endpoints();
    assert_eq!(endpoints.len(), 4);
    let invoice = endpoints
        .iter()
        .find(|e| {
            e["webhook_url"]
                == "https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/invoice"
        })
        .expect("the invoice endpoint");
    assert_eq!(invoice["signature_algo"], "hmac");
    assert_eq!(invoice["event_types"].as_array().unwrap().len(), 9);
    assert!(endpoints.iter().any(|e| e["webhook_url"]
        .as_str()
        .unwrap()
        .ends_with("/webhooks/credit-note")));

    let writes = |s: &sync_testkit::lago_standin::LagoStats| {
        s.count("POST", "webhook_endpoints") + s.count("PUT", "webhook_endpoints")
    };
    let before = writes(&lago.stats());
    let second = env
        .lago_sync(moto, &["setup-webhooks", "--base-url", base])
        .await;
    assert!(
        second.ok && second.out.contains("nothing to change"),
        "{}",
        second.out
    );
    assert_eq!(
        writes(&lago.stats()),
        before,
        "no POST or PUT on the second run"
    );
}

#[tokio::test]
async fn backfill_reports_and_stores_what_salesforce_refused() {
    let moto = Moto::shared().await;
    // Customer 2's Account is missing from the org (only 2 of 3 seeded below).
    let salesforce = Standin::start(StandinConfig {
        accounts: (0..2).map(account_id).collect(),
        ..StandinConfig::default()
    })
    .await;
    let lago = LagoStandin::start(API_KEY, Dataset::generate(3, 6, 10, 2)).await;
    let env = Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await;

    let dry = env.lago_sync(moto, &["backfill", "--dry-run"]).await;
    assert!(
        dry.ok && dry.out.contains("dry run finished"),
        "{}",
        dry.out
    );
    assert_eq!(salesforce.stats().rest_requests, 0);

    let run = env.lago_sync(moto, &["backfill"]).await;
    assert!(
        !run.ok,
        "a failed record makes the exit status non-zero:\n{}",
        run.out
    );
    assert!(
        run.out
            .contains("failed   customer     cus-000002  NOT_FOUND"),
        "{}",
        run.out
    );
    assert!(
        run.out
            .contains("stored as delivery#customer#backfill-cus-000002"),
        "{}",
        run.out
    );
    let store = DynamoDbStore::new(moto.dynamodb().await, &env.table);
    let parked = store.parked(Status::Failed, None, 10).await.unwrap();
    // Its subscriptions, invoices and credit notes name the missing Account too.
    assert!(
        parked
            .iter()
            .any(|e| e.key == "delivery#customer#backfill-cus-000002"),
        "{parked:?}"
    );
    let list = env.lago_sync(moto, &["list", "--status", "failed"]).await;
    assert!(list.out.contains("customer.updated"), "{}", list.out);

    let again = env.lago_sync(moto, &["backfill"]).await;
    assert!(again.out.contains("yes (earlier run)"), "{}", again.out);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn push_accounts_pushes_the_flagged_unsynced_accounts_and_a_rerun_nothing_more() {
    let moto = Moto::shared().await;
    let (salesforce, lago) = standins(None).await;
    for (i, status) in [(0, None), (1, Some("failed")), (2, Some("synced"))] {
        let mut fields = json!({ "Lago_Sync__c": true, "Lago_Currency__c": "EUR" });
        if let Some(status) = status {
            fields["Lago_Sync_Status__c"] = json!(status);
        }
        salesforce.set_account_fields(&account_id(i), fields);
    }
    let env = Env::new(moto, &salesforce, &lago, &secret_json(HMAC_KEY)).await;

    let run = env.lago_sync(moto, &["push-accounts"]).await;
    assert!(run.ok, "{}", run.out);
    for line in [
        "2 flagged Account(s) not synced",
        "synced            2",
        "done: 2 customer(s) created or updated in Lago",
    ] {
        assert!(run.out.contains(line), "{line} missing from:\n{}", run.out);
    }
    let pushed: Vec<_> = lago
        .customer_upserts()
        .iter()
        .map(|u| u["customer"]["external_salesforce_id"].clone())
        .collect();
    let ids = |i: usize| json!(sync_testkit::standin::id_18(&account_id(i)));
    assert_eq!(pushed, [ids(0), ids(1)]);

    let again = env.lago_sync(moto, &["push-accounts", "--json"]).await;
    assert!(again.ok, "{}", again.out);
    // The JSON summary on stdout, before what the run logged on stderr.
    let summary = serde_json::Deserializer::from_str(&again.out)
        .into_iter::<serde_json::Value>()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        summary["outcomes"],
        json!({ "duplicate": 2 }),
        "{}",
        again.out
    );
    assert_eq!(lago.customer_upserts().len(), 2, "nothing pushed twice");
}
