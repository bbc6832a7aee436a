//! `lago-sync setup-webhooks`: one Lago webhook endpoint per family, HMAC-signed and
//! filtered to the family's writing types (contract §1). Idempotent: its endpoints are
//! found by URL and changed only when they differ.

use std::process::ExitCode;

use lago_sync::lago_api::WebhookEndpoint;
use lago_sync::Family;

use crate::setup::Operator;

pub async fn run(base_url: &str, dry_run: bool) -> Result<ExitCode, String> {
    let base = base_url.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(format!(
            "--base-url must be the API's URL (https://…), got {base_url:?}"
        ));
    }
    let operator = Operator::connect()
        .await
        .map_err(|e| format!("configuration: {e}"))?;
    let lago = operator.lago().await?;
    let existing = lago.webhook_endpoints().await.map_err(|e| e.to_string())?;
    let mut changes = 0;
    for family in Family::ALL {
        let wanted = wanted(base, family);
        let family = family.as_str();
        let verb = if dry_run { "would " } else { "" };
        match existing
            .iter()
            .find(|e| e.webhook_url == wanted.webhook_url)
        {
            Some(found) if same(found, &wanted) => {
                println!("unchanged  {family:<13} {}", wanted.webhook_url);
            }
            Some(found) => {
                changes += 1;
                if !dry_run {
                    lago.update_webhook_endpoint(&found.lago_id, &wanted)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                println!("{verb}update {family:<13} {}", wanted.webhook_url);
            }
            None => {
                changes += 1;
                if !dry_run {
                    lago.create_webhook_endpoint(&wanted)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                println!("{verb}create {family:<13} {}", wanted.webhook_url);
            }
        }
    }
    match (changes, dry_run) {
        (0, _) => println!("nothing to change: the 4 endpoints are registered as wanted"),
        (n, true) => println!("{n} endpoint(s) would change (dry run: nothing sent)"),
        (n, false) => println!("{n} endpoint(s) changed"),
    }
    Ok(ExitCode::SUCCESS)
}

fn wanted(base: &str, family: Family) -> WebhookEndpoint {
    WebhookEndpoint {
        lago_id: String::new(),
        webhook_url: format!("{base}/webhooks/{family}"),
        signature_algo: Some("hmac".to_owned()),
        name: Some(format!("lago-salesforce-sync {family}")),
        event_types: Some(
            family
                .writing_types()
                .iter()
                .map(|t| t.to_string())
                .collect(),
        ),
    }
}

/// Event types compare as sets: Lago may answer them in another order.
fn same(found: &WebhookEndpoint, wanted: &WebhookEndpoint) -> bool {
    let sorted = |types: &Option<Vec<String>>| {
        let mut types = types.clone();
        if let Some(t) = types.as_mut() {
            t.sort();
        }
        types
    };
    found.signature_algo == wanted.signature_algo
        && found.name == wanted.name
        && sorted(&found.event_types) == sorted(&wanted.event_types)
}
