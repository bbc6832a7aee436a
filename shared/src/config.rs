//! Start-up configuration (contract §2). A missing or malformed setting stops the
//! function before it takes any request, with a message naming the variable.

use std::time::Duration;

use thiserror::Error;

pub const DEFAULT_SALESFORCE_API_VERSION: &str = "62.0";
pub const DEFAULT_LAGO_API_URL: &str = "https://api.getlago.com";
pub const DEFAULT_REDRIVE_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub secret_id: String,
    pub idempotency_table: String,
    /// The org's My Domain URL, without a trailing slash.
    pub salesforce_url: String,
    pub salesforce_api_version: String,
    /// Lago's API base URL without `/api/v1` (used by the operator commands).
    pub lago_api_url: String,
    /// How long the redrive retries a queued event before it becomes dead.
    pub redrive_max_age: Duration,
    /// The org whose outbound messages the `salesforce-account` function accepts
    /// (contract §8); the other functions do without.
    pub salesforce_org_id: Option<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is required but not set")]
    Missing(&'static str),
    #[error("{name} is malformed: {reason}")]
    Malformed { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing(name));

        let salesforce_url = base_url("SALESFORCE_URL", &required("SALESFORCE_URL")?)?;
        let salesforce_api_version = get("SALESFORCE_API_VERSION")
            .unwrap_or_else(|| DEFAULT_SALESFORCE_API_VERSION.to_owned());
        if !is_api_version(&salesforce_api_version) {
            return Err(ConfigError::Malformed {
                name: "SALESFORCE_API_VERSION",
                reason: format!("expected digits like 62.0, got {salesforce_api_version:?}"),
            });
        }
        let lago_api_url = base_url(
            "LAGO_API_URL",
            &get("LAGO_API_URL").unwrap_or_else(|| DEFAULT_LAGO_API_URL.to_owned()),
        )?;
        if lago_api_url.ends_with("/api/v1") {
            return Err(ConfigError::Malformed {
                name: "LAGO_API_URL",
                reason: "give the base URL without /api/v1".to_owned(),
            });
        }
        let redrive_max_age = match get("REDRIVE_MAX_AGE_HOURS") {
            None => DEFAULT_REDRIVE_MAX_AGE,
            Some(hours) => hours
                .parse::<u64>()
                .ok()
                .filter(|h| *h > 0)
                .map(|h| Duration::from_secs(h * 3600))
                .ok_or_else(|| ConfigError::Malformed {
                    name: "REDRIVE_MAX_AGE_HOURS",
                    reason: format!("expected a whole number of hours, got {hours:?}"),
                })?,
        };
        let salesforce_org_id = get("SALESFORCE_ORG_ID")
            .map(|id| {
                let well_formed = matches!(id.len(), 15 | 18)
                    && id.starts_with("00D")
                    && id.bytes().all(|b| b.is_ascii_alphanumeric());
                well_formed
                    .then_some(id.clone())
                    .ok_or(ConfigError::Malformed {
                        name: "SALESFORCE_ORG_ID",
                        reason: format!(
                            "expected a 15- or 18-character org id starting 00D, got {id:?}"
                        ),
                    })
            })
            .transpose()?;
        Ok(Config {
            salesforce_org_id,
            secret_id: required("SECRET_ID")?,
            idempotency_table: required("IDEMPOTENCY_TABLE")?,
            salesforce_url,
            salesforce_api_version,
            lago_api_url,
            redrive_max_age,
        })
    }
}

fn is_api_version(v: &str) -> bool {
    matches!(v.split_once('.'), Some((major, minor))
        if !major.is_empty() && minor.len() == 1
            && major.bytes().chain(minor.bytes()).all(|b| b.is_ascii_digit()))
}

/// Accepts https URLs, and plain http only for loopback so that local emulators work
/// while a production URL can never send credentials in clear text.
fn base_url(name: &'static str, value: &str) -> Result<String, ConfigError> {
    let url = value.trim_end_matches('/');
    let malformed = |reason: &str| ConfigError::Malformed {
        name,
        reason: reason.to_owned(),
    };
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if host != "localhost" && !host.starts_with("127.") {
            return Err(malformed(
                "must start with https:// (http:// is accepted for localhost only)",
            ));
        }
        rest
    } else {
        return Err(malformed("must start with https://"));
    };
    if rest.is_empty() || rest.contains(char::is_whitespace) || rest.contains(['?', '#']) {
        return Err(malformed("not a base URL"));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| env.get(k).cloned())
    }

    const BASE: [(&str, &str); 3] = [
        ("SECRET_ID", "lago-salesforce-sync"),
        ("IDEMPOTENCY_TABLE", "table"),
        ("SALESFORCE_URL", "https://acme.my.salesforce.com/"),
    ];

    #[test]
    fn defaults_apply_and_trailing_slash_is_dropped() {
        let c = load(&BASE).unwrap();
        assert_eq!(c.salesforce_url, "https://acme.my.salesforce.com");
        assert_eq!(c.salesforce_api_version, "62.0");
        assert_eq!(c.lago_api_url, "https://api.getlago.com");
        assert_eq!(c.redrive_max_age, Duration::from_secs(7 * 24 * 3600));
    }

    #[test]
    fn each_setting_is_named_when_wrong() {
        let cases: &[(&[(&str, &str)], ConfigError)] = &[
            (&BASE[1..], ConfigError::Missing("SECRET_ID")),
            (
                &[BASE[0], BASE[2]],
                ConfigError::Missing("IDEMPOTENCY_TABLE"),
            ),
            (&BASE[..2], ConfigError::Missing("SALESFORCE_URL")),
        ];
        for (pairs, expected) in cases {
            assert_eq!(&load(pairs).unwrap_err(), expected);
        }
        let with = |extra: (&'static str, &'static str)| {
            let mut v = BASE.to_vec();
            v.push(extra);
            load(&v).unwrap_err().to_string()
        };
        assert!(with(("SALESFORCE_API_VERSION", "v62")).starts_with("SALESFORCE_API_VERSION"));
        assert!(with(("SALESFORCE_API_VERSION", "62.00")).starts_with("SALESFORCE_API_VERSION"));
        assert!(
            with(("SALESFORCE_URL", "http://acme.my.salesforce.com")).starts_with("SALESFORCE_URL")
        );
        assert!(with(("SALESFORCE_URL", "acme.my.salesforce.com")).starts_with("SALESFORCE_URL"));
        assert!(with(("LAGO_API_URL", "https://lago.acme.com/api/v1/")).starts_with("LAGO_API_URL"));
        assert!(with(("REDRIVE_MAX_AGE_HOURS", "a week")).starts_with("REDRIVE_MAX_AGE_HOURS"));
        assert!(with(("REDRIVE_MAX_AGE_HOURS", "0")).starts_with("REDRIVE_MAX_AGE_HOURS"));
    }

    #[test]
    fn loopback_may_use_plain_http() {
        let mut v = BASE.to_vec();
        v[2] = ("SALESFORCE_URL", "http://127.0.0.1:8788");
        assert_eq!(load(&v).unwrap().salesforce_url, "http://127.0.0.1:8788");
        v[2] = ("SALESFORCE_URL", "http://localhost:8788/");
        assert_eq!(load(&v).unwrap().salesforce_url, "http://localhost:8788");
    }
}
