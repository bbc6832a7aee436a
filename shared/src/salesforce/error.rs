//! Every Salesforce failure, classified once: transient ones are queued and retried by
//! the project itself, permanent ones wait for an operator (salesforce-rest.md §4.3).

use serde_json::Value;
use thiserror::Error;

use crate::secrets::SecretsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Transient,
    Permanent,
}

#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("Salesforce {code}{}: {message}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct SalesforceError {
    pub class: Class,
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
}

/// Codes worth retrying as they are: locks, limits, outages, and the upsert race where two
/// writers insert the same new external id at once (a retry becomes an update).
const TRANSIENT_CODES: &[&str] = &[
    "UNABLE_TO_LOCK_ROW",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_UNAVAILABLE",
    "UNKNOWN_EXCEPTION",
    "DUPLICATE_VALUE",
    "TIMEOUT",
    "CONNECTION",
    "SECRETS_UNAVAILABLE",
    "SECRET_MALFORMED",
];

/// The token endpoint's answers (as `OAUTH_<error>`) to client credentials it does not
/// accept. Transient: they follow a rotation of the client secret that Secrets Manager has
/// not caught up with yet, and the event must wait for it rather than be failed (contract
/// §7.4); the `SalesforceCredentialsRefused` alarm tells the operator if it lasts.
const REFUSED_CREDENTIALS: &[&str] = &[
    "OAUTH_INVALID_CLIENT",
    "OAUTH_INVALID_CLIENT_ID",
    "OAUTH_INVALID_CLIENT_CREDENTIALS",
    "OAUTH_INVALID_GRANT",
];

impl SalesforceError {
    pub fn new(status: Option<u16>, code: impl Into<String>, message: impl Into<String>) -> Self {
        let code = code.into();
        let transient = TRANSIENT_CODES.contains(&code.as_str())
            || REFUSED_CREDENTIALS.contains(&code.as_str())
            || status.is_some_and(|s| s >= 500 || s == 408 || s == 429);
        let class = if transient {
            Class::Transient
        } else {
            Class::Permanent
        };
        let message: String = message.into().chars().take(500).collect();
        SalesforceError {
            class,
            status,
            code,
            message,
        }
    }

    /// Reads Salesforce's error body `[{"message","errorCode","fields"}]`; gateways in
    /// front of Salesforce may answer HTML, which keeps only the status.
    pub fn from_response(status: u16, body: &[u8]) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let first = match &parsed {
            Some(Value::Array(items)) => items.first(),
            other => other.as_ref(),
        };
        let text =
            |item: &Value, key: &str| item.get(key).and_then(Value::as_str).map(str::to_owned);
        let code =
            first.and_then(|item| text(item, "errorCode").or_else(|| text(item, "statusCode")));
        match code {
            Some(code) if !code.is_empty() => {
                let message = first
                    .and_then(|item| text(item, "message"))
                    .unwrap_or_default();
                SalesforceError::new(Some(status), code, message)
            }
            _ => SalesforceError::new(
                Some(status),
                format!("HTTP_{status}"),
                "unexpected response from Salesforce",
            ),
        }
    }

    pub fn from_transport(error: &reqwest::Error) -> Self {
        let code = if error.is_timeout() {
            "TIMEOUT"
        } else {
            "CONNECTION"
        };
        // Display of a reqwest error names the URL, never the headers or the body.
        SalesforceError::new(None, code, error.to_string())
    }

    /// The secret could not be read for the client credentials; its Display names the
    /// problem, never a value.
    pub fn from_secrets(error: &SecretsError) -> Self {
        let code = match error {
            SecretsError::Unavailable(_) => "SECRETS_UNAVAILABLE",
            SecretsError::Malformed(_) => "SECRET_MALFORMED",
        };
        SalesforceError::new(None, code, error.to_string())
    }

    /// The token endpoint refused the client id or secret (HTTP 400 or 401).
    pub fn is_credentials_refused(&self) -> bool {
        matches!(self.status, Some(400 | 401)) && REFUSED_CREDENTIALS.contains(&self.code.as_str())
    }

    pub fn is_session_expired(&self) -> bool {
        self.status == Some(401)
    }

    /// The credit note's invoice is not in Salesforce (yet).
    pub fn is_missing_parent(&self) -> bool {
        self.code == "INVALID_FIELD" && self.message.starts_with("Foreign key external ID")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        use Class::*;
        let cases: &[(u16, &str, Class, &str)] = &[
            (
                400,
                r#"[{"message":"unable to obtain exclusive access to this record","errorCode":"UNABLE_TO_LOCK_ROW"}]"#,
                Transient,
                "UNABLE_TO_LOCK_ROW",
            ),
            (
                403,
                r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
                Transient,
                "REQUEST_LIMIT_EXCEEDED",
            ),
            (
                503,
                r#"[{"message":"Server unavailable","errorCode":"SERVER_UNAVAILABLE"}]"#,
                Transient,
                "SERVER_UNAVAILABLE",
            ),
            (
                500,
                r#"[{"message":"An unexpected error occurred","errorCode":"UNKNOWN_EXCEPTION"}]"#,
                Transient,
                "UNKNOWN_EXCEPTION",
            ),
            (502, "<html>Bad Gateway</html>", Transient, "HTTP_502"),
            (
                400,
                r#"[{"message":"duplicate value found: Lago_Id__c","errorCode":"DUPLICATE_VALUE","fields":[]}]"#,
                Transient,
                "DUPLICATE_VALUE",
            ),
            (
                400,
                r#"[{"message":"No such column 'X__c' on sobject of type Account","errorCode":"INVALID_FIELD","fields":[]}]"#,
                Permanent,
                "INVALID_FIELD",
            ),
            (
                404,
                r#"[{"errorCode":"NOT_FOUND","message":"The requested resource does not exist"}]"#,
                Permanent,
                "NOT_FOUND",
            ),
            (
                400,
                r#"[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]"#,
                Permanent,
                "REQUIRED_FIELD_MISSING",
            ),
            (
                400,
                r#"[{"message":"invalid cross reference id","errorCode":"INVALID_CROSS_REFERENCE_KEY","fields":[]}]"#,
                Permanent,
                "INVALID_CROSS_REFERENCE_KEY",
            ),
            (
                400,
                r#"[{"message":"data value too large","errorCode":"STRING_TOO_LONG","fields":["Name"]}]"#,
                Permanent,
                "STRING_TOO_LONG",
            ),
            (
                400,
                r#"[{"message":"Account ID: id value of incorrect type","errorCode":"MALFORMED_ID","fields":[]}]"#,
                Permanent,
                "MALFORMED_ID",
            ),
            (
                403,
                r#"[{"message":"insufficient access rights on object id","errorCode":"INSUFFICIENT_ACCESS_OR_READONLY"}]"#,
                Permanent,
                "INSUFFICIENT_ACCESS_OR_READONLY",
            ),
            (
                300,
                r#"["/services/data/v62.0/sobjects/Lago_Invoice__c/a01","/services/data/v62.0/sobjects/Lago_Invoice__c/a02"]"#,
                Permanent,
                "HTTP_300",
            ),
            (
                401,
                r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
                Permanent,
                "INVALID_SESSION_ID",
            ),
            (429, "", Transient, "HTTP_429"),
        ];
        for (status, body, class, code) in cases {
            let e = SalesforceError::from_response(*status, body.as_bytes());
            assert_eq!(
                (e.class, e.code.as_str()),
                (*class, *code),
                "{status} {body}"
            );
        }
    }

    #[test]
    fn refused_client_credentials_are_transient() {
        for (status, code) in [
            (400, "OAUTH_INVALID_CLIENT"),
            (400, "OAUTH_INVALID_GRANT"),
            (401, "OAUTH_INVALID_CLIENT_ID"),
        ] {
            let e = SalesforceError::new(Some(status), code, "token request refused");
            assert!(e.is_credentials_refused(), "{e}");
            assert_eq!(e.class, Class::Transient, "{e}");
        }
        let other = SalesforceError::new(Some(400), "OAUTH_UNSUPPORTED_GRANT_TYPE", "no");
        assert!(!other.is_credentials_refused());
        assert_eq!(other.class, Class::Permanent);
        let unreadable = SalesforceError::from_secrets(&SecretsError::Unavailable("x".into()));
        assert_eq!(unreadable.class, Class::Transient);
    }

    #[test]
    fn collection_errors_use_status_code() {
        let e = SalesforceError::from_response(
            400,
            br#"{"statusCode":"DUPLICATES_DETECTED","message":"Use one of these records?"}"#,
        );
        assert_eq!(e.code, "DUPLICATES_DETECTED");
    }

    #[test]
    fn a_missing_parent_is_recognised() {
        let e = SalesforceError::from_response(
            400,
            br#"[{"message":"Foreign key external ID: 5eb0 not found for field Lago_Id__c in entity Lago_Invoice__c","errorCode":"INVALID_FIELD","fields":[]}]"#,
        );
        assert!(e.is_missing_parent());
        assert_eq!(e.class, Class::Permanent);
    }
}
