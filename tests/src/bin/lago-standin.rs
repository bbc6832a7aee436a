//! Runs the Lago API stand-in as a local server with generated data, for scripts and
//! manual runs of `lago-sync check`, `setup-webhooks` and `backfill`.
//!
//! ```text
//! lago-standin [--port 8789] [--api-key KEY] [--customers 3] [--subscriptions 6] [--invoices 10] [--credit-notes 2]
//! ```
//! Customer `i` names Account `001` + `i` on 12 digits: seed those in the Salesforce stand-in.

use std::net::SocketAddr;
use std::process::ExitCode;

use sync_testkit::lago_standin::{account_id, Dataset, LagoStandin, API_KEY};

const USAGE: &str = "usage: lago-standin [--port N] [--api-key KEY] [--customers N] [--subscriptions N] [--invoices N] [--credit-notes N]";

#[tokio::main]
async fn main() -> ExitCode {
    let (mut port, mut key, mut counts) = (8789u16, API_KEY.to_owned(), [3usize, 6, 10, 2]);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        };
        let number = value.parse::<usize>();
        match (flag.as_str(), number) {
            ("--api-key", _) => key = value,
            ("--port", Ok(n)) => port = n as u16,
            ("--customers", Ok(n)) => counts[0] = n,
            ("--subscriptions", Ok(n)) => counts[1] = n,
            ("--invoices", Ok(n)) => counts[2] = n,
            ("--credit-notes", Ok(n)) => counts[3] = n,
            _ => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    let data = Dataset::generate(counts[0], counts[1], counts[2], counts[3]);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let standin = match LagoStandin::start_on(&key, data, addr).await {
        Ok(standin) => standin,
        Err(e) => {
            eprintln!("lago-standin: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("Lago stand-in listening on {}", standin.url());
    for i in 0..counts[0] {
        println!("account: {}", account_id(i));
    }
    let _ = tokio::signal::ctrl_c().await;
    ExitCode::SUCCESS
}
