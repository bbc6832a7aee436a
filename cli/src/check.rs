//! `lago-sync check`: is this deployment ready? Configuration, the secret, the Lago API
//! key, the Salesforce token and every object and field of contract §5.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use lago_sync::lago_api::Listing;
use lago_sync::salesforce::EXPECTED_SCHEMA;

use crate::setup::Operator;

const BUDGET: Duration = Duration::from_secs(60);

pub async fn run() -> ExitCode {
    let mut report = Report::default();
    let operator = match Operator::connect().await {
        Ok(operator) => operator,
        Err(e) => return report.fail("configuration", &e.to_string()).finish(),
    };
    let config = &operator.config;
    report.pass(
        "configuration",
        &format!(
            "LAGO_API_URL {}, SALESFORCE_URL {}, table {}",
            config.lago_api_url, config.salesforce_url, config.idempotency_table
        ),
    );
    if let Err(e) = operator.app.secrets.current().await {
        return report.fail("secret", &e.to_string()).finish();
    }
    report.pass("secret", &format!("read {}", config.secret_id));

    match operator.lago().await {
        Err(e) => report.fail("Lago API key", &e),
        Ok(lago) => match lago.page(Listing::Customers, 1, 1, None).await {
            Ok(page) => report.pass(
                "Lago API key",
                &format!(
                    "{} customers visible",
                    page.total_count.unwrap_or(page.items.len() as u64)
                ),
            ),
            Err(e) => report.fail("Lago API key", &e.to_string()),
        },
    };

    let salesforce = &operator.app.salesforce;
    let deadline = Instant::now() + BUDGET;
    if let Err(e) = salesforce.sign_in(&operator.app.secrets, deadline).await {
        return report.fail("Salesforce token", &e.to_string()).finish();
    }
    report.pass("Salesforce token", "client credentials accepted");
    match salesforce
        .check_schema(&operator.app.secrets, deadline)
        .await
    {
        Ok(problems) if problems.is_empty() => {
            let fields: usize = EXPECTED_SCHEMA.iter().map(|(_, f)| f.len()).sum();
            report.pass(
                "Salesforce schema",
                &format!(
                    "{} objects, {fields} fields, all writable",
                    EXPECTED_SCHEMA.len()
                ),
            )
        }
        Ok(problems) => {
            let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
            report.fail("Salesforce schema", &list.join("\n      "))
        }
        Err(e) => report.fail("Salesforce schema", &e.to_string()),
    };
    report.finish()
}

#[derive(Default)]
struct Report {
    failed: bool,
}

impl Report {
    fn pass(&mut self, what: &str, detail: &str) -> &mut Self {
        println!("PASS  {what}: {detail}");
        self
    }

    fn fail(&mut self, what: &str, detail: &str) -> &mut Self {
        println!("FAIL  {what}: {detail}");
        self.failed = true;
        self
    }

    fn finish(&self) -> ExitCode {
        if self.failed {
            println!("check failed");
            ExitCode::FAILURE
        } else {
            println!("all checks passed");
            ExitCode::SUCCESS
        }
    }
}
