//! `lago-sync backfill`: the initial sync, resumable, with a summary per object.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use lago_sync::backfill::{self, ObjectSummary, Options, Summary};

use crate::setup::{report, Operator};

pub struct Args {
    pub customer: Option<String>,
    pub dry_run: bool,
    pub restart: bool,
    pub json: bool,
}

pub async fn run(args: Args) -> Result<ExitCode, String> {
    let operator = Operator::connect()
        .await
        .map_err(|e| format!("configuration: {e}"))?;
    let lago = operator.lago().await?;
    // A progress line only on a terminal: logs and CI output stay clean.
    let progress = |object: &ObjectSummary, total: Option<u64>| {
        let total = total.map(|t| format!("/{t}")).unwrap_or_default();
        eprint!(
            "\r{:<12} {}{total} read, {} written ",
            object.object, object.read, object.written
        );
        let _ = std::io::stderr().flush();
    };
    let on_terminal = std::io::stderr().is_terminal();
    let options = Options {
        customer: args.customer,
        dry_run: args.dry_run,
        restart: args.restart,
        progress: on_terminal.then_some(&progress as &backfill::Progress<'_>),
        ..Options::default()
    };
    let summary = backfill::run(&operator.app, &lago, &options)
        .await
        .map_err(|e| e.to_string())?;
    let succeeded = summary.succeeded();
    Ok(report(
        &summary,
        args.json,
        on_terminal,
        print_summary,
        succeeded,
    ))
}

fn print_summary(summary: &Summary) {
    let written = if summary.dry_run {
        "WOULD WRITE"
    } else {
        "WRITTEN"
    };
    println!(
        "{:<12} {:>7} {:>11} {:>7} {:>6}  DONE",
        "OBJECT", "READ", written, "SKIPPED", "FAILED"
    );
    for o in &summary.objects {
        let skipped: u64 = o.skipped.values().sum();
        let done = match (o.done, o.already_done) {
            (true, true) => "yes (earlier run)",
            (true, false) => "yes",
            _ => "no",
        };
        println!(
            "{:<12} {:>7} {:>11} {:>7} {:>6}  {done}",
            o.object, o.read, o.written, skipped, o.failed
        );
    }
    for o in &summary.objects {
        for (reason, count) in &o.skipped {
            println!("skipped  {:<12} {count:>6}  {reason}", o.object);
        }
        if o.line_items_written > 0 {
            let verb = if summary.dry_run {
                "would write"
            } else {
                "written"
            };
            println!(
                "{verb:<8} {:<12} {:>6}  line items with them",
                o.object, o.line_items_written
            );
        }
        if o.links_dropped > 0 {
            println!(
                "written  {:<12} {:>6}  without their invoice link (invoice not in Salesforce)",
                o.object, o.links_dropped
            );
        }
        for f in &o.failures {
            let stored = f
                .stored_as
                .as_deref()
                .map(|k| format!(" (stored as {k})"))
                .unwrap_or_default();
            println!(
                "failed   {:<12} {}  {}: {}{stored}",
                o.object, f.lago_id, f.error_code, f.message
            );
        }
        if o.failed > o.failures.len() as u64 {
            println!(
                "failed   {:<12} … and {} more (lago-sync list --status failed)",
                o.object,
                o.failed - o.failures.len() as u64
            );
        }
    }
    println!(
        "Salesforce: {} API calls, {} token request(s); Lago: {} API calls",
        summary.salesforce_calls, summary.salesforce_token_requests, summary.lago_calls
    );
    match (&summary.stopped, summary.finished) {
        (Some(reason), _) => println!("stopped: {reason}\nrun it again to resume"),
        (None, false) => println!("not finished: run it again to resume"),
        (None, true) if summary.dry_run => println!("dry run finished: nothing was written"),
        (None, true) => println!("backfill finished (run with --restart to do it all again)"),
    }
}
