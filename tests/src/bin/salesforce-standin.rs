//! Runs the Salesforce stand-in as a local server, for scripts and manual runs.
//!
//! ```text
//! salesforce-standin [--host 127.0.0.1] [--port 8788] [--client-id ID] [--client-secret SECRET]
//!                    [--account 001...]... [--metadata-dir DIR] [--api-limit N]
//! ```
//! Test controls are under `<url>/__standin/` (records, stats, requests, accounts,
//! expire-tokens, client-secret, faults, validation-rules).

use std::{net::SocketAddr, process::ExitCode};

use sync_testkit::standin::{Standin, StandinConfig};
use tokio::signal::unix::{signal, SignalKind};

const USAGE: &str =
    "usage: salesforce-standin [--host ADDR] [--port N] [--client-id ID] [--client-secret SECRET] \
                     [--account ID]... [--metadata-dir DIR] [--api-limit N]";

#[tokio::main]
async fn main() -> ExitCode {
    let (cfg, addr) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("{message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let standin = match Standin::start_on(cfg.clone(), addr).await {
        Ok(standin) => standin,
        Err(e) => {
            eprintln!("salesforce-standin: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Salesforce stand-in listening on {}", standin.url());
    println!(
        "client id: {}  client secret: {}",
        cfg.client_id, cfg.client_secret
    );
    for account in standin.records("Account") {
        println!("account: {}", account["Id"].as_str().unwrap_or_default());
    }
    wait_for_shutdown().await;
    ExitCode::SUCCESS
}

fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<(StandinConfig, SocketAddr), String> {
    let mut cfg = StandinConfig {
        accounts: Vec::new(),
        ..StandinConfig::default()
    };
    let (mut host, mut port) = ("127.0.0.1".to_owned(), 8788u16);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--client-id" => cfg.client_id = value()?,
            "--client-secret" => cfg.client_secret = value()?,
            "--account" => cfg.accounts.push(value()?),
            "--metadata-dir" => cfg.metadata_dir = value()?.into(),
            "--api-limit" => {
                cfg.api_limit = value()?.parse().map_err(|e| format!("--api-limit: {e}"))?
            }
            "-h" | "--help" => return Err("Salesforce REST stand-in".into()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if cfg.accounts.is_empty() {
        cfg.accounts = StandinConfig::default().accounts;
    }
    let addr = format!("{host}:{port}")
        .parse()
        .map_err(|e| format!("--host/--port: {e}"))?;
    Ok((cfg, addr))
}

async fn wait_for_shutdown() {
    let mut terminate = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
