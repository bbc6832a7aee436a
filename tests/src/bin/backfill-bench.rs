//! Times a backfill of generated Lago data against the Lago and Salesforce stand-ins,
//! with the record guard and checkpoints in DynamoDB (moto) or in memory, and prints
//! wall time and the calls made. `scripts/backfill-bench.sh` runs it.
//!
//! ```text
//! backfill-bench [--customers 100] [--subscriptions 2000] [--invoices 6000] [--credit-notes 2500] [--store dynamodb|memory]
//! ```

use std::process::ExitCode;
use std::time::Instant;

use lago_sync::backfill::{Options, Summary};
use lago_sync::store::{DynamoDbStore, MemoryStore, Store};
use sync_testkit::lago_standin::{Dataset, Rig};
use sync_testkit::moto::{unique_name, Moto};

const USAGE: &str = "usage: backfill-bench [--customers N] [--subscriptions N] [--invoices N] [--credit-notes N] [--store dynamodb|memory]";

#[tokio::main]
async fn main() -> ExitCode {
    let mut counts = [100usize, 2000, 6000, 2500];
    let mut store = "dynamodb".to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--customers" => 0,
            "--subscriptions" => 1,
            "--invoices" => 2,
            "--credit-notes" => 3,
            "--store" => {
                store = args.next().unwrap_or_default();
                continue;
            }
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        };
        match args.next().and_then(|v| v.parse().ok()) {
            Some(n) => counts[slot] = n,
            None => {
                eprintln!("{flag} needs a number\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let data = Dataset::generate(counts[0], counts[1], counts[2], counts[3]);
    println!(
        "Lago holds {} records: {} customers, {} subscriptions, {} invoices ({} drafts, not synced), {} credit notes",
        data.len(),
        counts[0],
        counts[1],
        counts[2],
        counts[2] - data.finalized_invoices(),
        counts[3]
    );
    let ok = match store.as_str() {
        "memory" => bench(data, MemoryStore::new(), "in memory").await,
        "dynamodb" => {
            let moto = Moto::shared().await;
            let table = unique_name("backfill-bench");
            moto.create_table(&table).await;
            bench(
                data,
                DynamoDbStore::new(moto.dynamodb().await, &table),
                "DynamoDB (moto)",
            )
            .await
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn bench<S: Store>(data: Dataset, store: S, label: &str) -> bool {
    let rig = Rig::start(data, store, None).await;
    let started = Instant::now();
    let summary: Summary = rig.backfill(&Options::default()).await;
    let wall = started.elapsed();
    let written: u64 = summary.objects.iter().map(|o| o.written).sum();
    println!("store: {label}");
    println!(
        "{:<13} {:>7} {:>8} {:>8} {:>17}",
        "object", "read", "written", "failed", "Salesforce calls"
    );
    let by_object = rig.salesforce.stats().rest_requests_by_object;
    for (o, sobject) in summary.objects.iter().zip([
        "Account",
        "Lago_Subscription__c",
        "Lago_Invoice__c",
        "Lago_Credit_Note__c",
    ]) {
        println!(
            "{:<13} {:>7} {:>8} {:>8} {:>17}",
            o.object,
            o.read,
            o.written,
            o.failed,
            by_object.get(sobject).copied().unwrap_or(0)
        );
    }
    println!(
        "wall time {:.2} s for {written} records written ({:.0} records/s)",
        wall.as_secs_f64(),
        written as f64 / wall.as_secs_f64()
    );
    println!(
        "Salesforce: {} REST calls + {} token request(s); Lago: {} calls",
        summary.salesforce_calls,
        summary.salesforce_token_requests,
        rig.lago.stats().requests
    );
    summary.succeeded()
}
