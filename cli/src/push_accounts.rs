//! `lago-sync push-accounts`: every Account flagged "Bill with Lago" and not synced,
//! pushed to Lago as its outbound message would be (contract §8).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use lago_sync::outbound::push::{push_flagged, PushSummary};

use crate::setup::{report, Operator};

pub async fn run(json: bool) -> Result<ExitCode, String> {
    let operator = Operator::connect()
        .await
        .map_err(|e| format!("configuration: {e}"))?;
    // A progress line only on a terminal: logs and CI output stay clean.
    let on_terminal = std::io::stderr().is_terminal();
    let progress = |summary: &PushSummary| {
        if on_terminal {
            let done: u64 = summary.outcomes.values().sum();
            eprint!("\r{done}/{} Accounts pushed ", summary.found);
            let _ = std::io::stderr().flush();
        }
    };
    let summary = push_flagged(&operator.app, &progress)
        .await
        .map_err(|e| format!("Salesforce: {e}"))?;
    let succeeded = summary.succeeded();
    Ok(report(
        &summary,
        json,
        on_terminal,
        print_summary,
        succeeded,
    ))
}

fn print_summary(summary: &PushSummary) {
    println!("{} flagged Account(s) not synced", summary.found);
    for (outcome, count) in &summary.outcomes {
        println!("{outcome:<12} {count:>6}");
    }
    for (account, code) in &summary.not_pushed {
        println!("not pushed   {account}  {code} (lago-sync list shows why; the redrive retries queued ones)");
    }
    match summary.succeeded() {
        true => println!(
            "done: {} customer(s) created or updated in Lago",
            summary.pushed()
        ),
        false => println!(
            "some Accounts were not pushed; the Account shows the reason in Lago Sync Error"
        ),
    }
}
