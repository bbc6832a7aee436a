//! `lago-sync`: the operator's view of the event table, against the deployed table or a
//! local emulator (standard AWS settings apply, e.g. AWS_PROFILE, AWS_REGION,
//! AWS_ENDPOINT_URL); and the set-up commands: check, setup-webhooks, backfill,
//! salesforce-metadata, push-accounts.

mod backfill;
mod check;
mod push_accounts;
mod salesforce_metadata;
mod setup;
mod webhooks;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use lago_sync::clock::now_ms;
use lago_sync::config::Config;
use lago_sync::store::{create_table, DynamoDbStore, EventQueue, Status, StoredDelivery};
use lago_sync::{entrypoint, redrive, telemetry};

#[derive(Parser)]
#[command(
    name = "lago-sync",
    version,
    about = "Operate lago-salesforce-sync: set-up, initial sync, stored events and redrives"
)]
struct Cli {
    /// The DynamoDB table (the stack's IdempotencyTableName output).
    #[arg(long, env = "IDEMPOTENCY_TABLE", global = true, default_value = "")]
    table: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List stored events: queued (awaiting a retry), failed (refused by Salesforce) or dead
    /// (retried until their maximum age).
    List {
        #[arg(long, value_enum, default_value = "all")]
        status: Which,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Put failed or dead events back in the queue, due now; the scheduled redrive (every
    /// 2 minutes) retries them. Fix the cause in Salesforce first.
    Redrive(Selection),
    /// Remove failed or dead events for good: stored events never expire on their own, so
    /// that nothing is lost unless an operator decides so.
    Discard(Selection),
    /// Run one redrive pass here, as the scheduled function does (needs the functions'
    /// settings: SECRET_ID, SALESFORCE_URL, …).
    RunRedrive,
    /// Create the table with the template's schema (for a local emulator).
    CreateTable,
    /// After upgrading from 0.x, once: carry the old ordering guard's versions to the
    /// record items and remove the TTL of stored events. Safe to run again.
    Migrate,
    /// Check the deployment: configuration, the secret, the Lago API key, the Salesforce
    /// token and every object and field the sync writes. Exits non-zero on a failure.
    Check,
    /// Register one Lago webhook endpoint per family (HMAC, filtered to the types it
    /// syncs) at <base-url>/webhooks/<family>; updates only endpoints that differ.
    SetupWebhooks {
        /// The HTTP API's URL (the stack's outputs show it), e.g.
        /// https://abc123.execute-api.eu-west-1.amazonaws.com
        #[arg(long)]
        base_url: String,
        /// Show what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Initial sync: write every Lago customer (to its Account), subscription, invoice and
    /// credit note to Salesforce. Resumes where an interrupted run stopped. Exits
    /// non-zero when a record failed (failed records are stored: see `list`).
    Backfill {
        /// Only this Lago customer (its external_id).
        #[arg(long)]
        customer: Option<String>,
        /// Read and map, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Forget the checkpoints of earlier runs and start over.
        #[arg(long)]
        restart: bool,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Render the Salesforce metadata to deploy: a copy of the DX project whose outbound
    /// message (Bill with Lago) is sent as the integration user to
    /// <base-url>/salesforce/accounts/<the secret's salesforce_outbound_token>.
    SalesforceMetadata(salesforce_metadata::Args),
    /// Push every Account flagged "Bill with Lago" that is not synced to Lago, as its
    /// outbound message would: for Accounts flagged before the deploy, or after an outage
    /// longer than Salesforce's 24 hours of retries. Safe to run again.
    PushAccounts {
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Failed or dead events, named or filtered.
#[derive(clap::Args)]
struct Selection {
    /// Delivery keys as `list` shows them; or select with the filters below.
    keys: Vec<String>,
    /// Every failed or dead event (combine with --family, --error-code).
    #[arg(long)]
    all: bool,
    #[arg(long)]
    family: Option<String>,
    #[arg(long)]
    error_code: Option<String>,
    /// Show what would be done, change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Which {
    Queued,
    Failed,
    Dead,
    All,
}

impl Which {
    fn statuses(self) -> &'static [Status] {
        match self {
            Which::Queued => &[Status::Queued],
            Which::Failed => &[Status::Failed],
            Which::Dead => &[Status::Dead],
            Which::All => &Status::PARKED,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("lago-sync: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Check => return Ok(check::run().await),
        Command::SetupWebhooks { base_url, dry_run } => {
            return webhooks::run(&base_url, dry_run).await
        }
        Command::Backfill {
            customer,
            dry_run,
            restart,
            json,
        } => {
            let args = backfill::Args {
                customer,
                dry_run,
                restart,
                json,
            };
            return backfill::run(args).await;
        }
        Command::SalesforceMetadata(args) => return salesforce_metadata::run(args).await,
        Command::PushAccounts { json } => return push_accounts::run(json).await,
        _ => {}
    }
    if let Command::RunRedrive = cli.command {
        telemetry::init();
        let config = Config::from_env().map_err(|e| e.to_string())?;
        let app = entrypoint::build(&config).await;
        let report = redrive::run_once(
            &app,
            config.redrive_max_age,
            Instant::now() + Duration::from_secs(600),
        )
        .await
        .map_err(|e| e.to_string())?;
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a report serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    if cli.table.is_empty() {
        return Err("set --table or IDEMPOTENCY_TABLE".into());
    }
    let sdk = lago_sync::transport::aws_config_loader().load().await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    if let Command::CreateTable = cli.command {
        create_table(&client, &cli.table)
            .await
            .map_err(|e| e.to_string())?;
        println!("created table {}", cli.table);
        return Ok(ExitCode::SUCCESS);
    }
    let store = DynamoDbStore::new(client, &cli.table);
    match cli.command {
        Command::Migrate => {
            let migrated = store.migrate().await.map_err(|e| e.to_string())?;
            println!(
                "{} record version(s) carried over, {} stored event(s) no longer expire",
                migrated.versions, migrated.stored_events
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::List {
            status,
            limit,
            json,
        } => {
            let events = parked(&store, status.statuses(), limit).await?;
            print_events(&events, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Redrive(selection) => {
            let selected = select(&store, &selection).await?;
            apply(&store, Action::Requeue, &selected, selection.dry_run).await
        }
        Command::Discard(selection) => {
            let selected = select(&store, &selection).await?;
            apply(&store, Action::Discard, &selected, selection.dry_run).await
        }
        Command::RunRedrive
        | Command::CreateTable
        | Command::Check
        | Command::SetupWebhooks { .. }
        | Command::Backfill { .. }
        | Command::SalesforceMetadata(_)
        | Command::PushAccounts { .. } => unreachable!("handled above"),
    }
}

async fn parked(
    store: &DynamoDbStore,
    statuses: &[Status],
    limit: usize,
) -> Result<Vec<StoredDelivery>, String> {
    let mut events = Vec::new();
    for status in statuses {
        events.extend(
            store
                .parked(*status, None, limit)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(events)
}

async fn select(
    store: &DynamoDbStore,
    selection: &Selection,
) -> Result<Vec<StoredDelivery>, String> {
    let Selection {
        keys,
        all,
        family,
        error_code,
        ..
    } = selection;
    if keys.is_empty() {
        if !all && family.is_none() && error_code.is_none() {
            return Err(
                "name delivery keys, or select with --all, --family or --error-code".into(),
            );
        }
        return Ok(parked(store, &[Status::Failed, Status::Dead], usize::MAX)
            .await?
            .into_iter()
            .filter(|e| family.as_ref().is_none_or(|f| &e.family == f))
            .filter(|e| {
                error_code
                    .as_ref()
                    .is_none_or(|c| e.error_code.as_ref() == Some(c))
            })
            .collect());
    }
    let mut found = Vec::new();
    for key in keys {
        found.push(
            store
                .load(key)
                .await
                .map_err(|e| e.to_string())?
                .ok_or(format!("no event {key}"))?,
        );
    }
    Ok(found)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Requeue,
    Discard,
}

impl Action {
    fn verb(self) -> (&'static str, &'static str) {
        match self {
            Action::Requeue => ("requeue", "requeued"),
            Action::Discard => ("discard", "discarded"),
        }
    }
}

async fn apply(
    store: &DynamoDbStore,
    action: Action,
    events: &[StoredDelivery],
    dry_run: bool,
) -> Result<ExitCode, String> {
    let (verb, done) = action.verb();
    let mut refused = 0;
    for event in events {
        if dry_run {
            println!(
                "would {verb} {} ({}, {})",
                event.key,
                event.status.as_str(),
                event.webhook_type
            );
            continue;
        }
        let applied = match action {
            Action::Requeue => store.requeue(&event.key, now_ms()).await,
            Action::Discard => store.discard(&event.key).await,
        };
        if applied.map_err(|e| e.to_string())? {
            println!("{done} {}", event.key);
        } else {
            refused += 1;
            eprintln!("not {done} (not failed or dead): {}", event.key);
        }
    }
    if !dry_run {
        let count = events.len() - refused;
        match action {
            Action::Requeue => {
                println!("{count} event(s) requeued; the redrive retries them within 2 minutes")
            }
            Action::Discard => println!("{count} event(s) discarded"),
        }
    }
    Ok(if refused == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_events(events: &[StoredDelivery], json: bool) {
    let now = now_ms();
    if json {
        for e in events {
            let line = serde_json::json!({
                "key": e.key, "status": e.status.as_str(), "family": e.family, "webhook_type": e.webhook_type,
                "attempts": e.attempts, "error_code": e.error_code, "error_message": e.error_message,
                "first_parked_at_ms": e.first_parked_at_ms, "due_at_ms": e.due_at_ms,
            });
            println!("{line}");
        }
        return;
    }
    println!(
        "{:<8} {:<12} {:<32} {:>8} {:>8}  {:<28} KEY",
        "STATUS", "FAMILY", "TYPE", "ATTEMPTS", "AGE", "LAST ERROR"
    );
    for e in events {
        let age = e
            .first_parked_at_ms
            .map(|t| human(now - t))
            .unwrap_or_default();
        let error = e.error_code.as_deref().unwrap_or("");
        println!(
            "{:<8} {:<12} {:<32} {:>8} {:>8}  {:<28} {}",
            e.status.as_str(),
            e.family,
            e.webhook_type,
            e.attempts,
            age,
            error,
            e.key
        );
    }
    println!("{} event(s)", events.len());
}

fn human(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}
