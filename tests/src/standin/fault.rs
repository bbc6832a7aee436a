//! Scripted failures for the next REST requests, to exercise a client's retry and
//! error classification against the answers a real org (or its edge) gives.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Over HTTP (`POST /__standin/faults`), e.g.
/// `{"action":{"respond":{"status":503,"body":[{"errorCode":"SERVER_UNAVAILABLE","message":"..."}]}},"times":2}`,
/// `{"action":{"delay":{"ms":5000}},"path_contains":"/composite/"}` or `{"action":"close"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    pub action: FaultAction,
    /// How many matching requests it applies to.
    #[serde(default = "one")]
    pub times: u32,
    /// Only requests whose path contains this.
    #[serde(default)]
    pub path_contains: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer this instead of handling the request. A JSON string body is sent as
    /// text/html (what an edge proxy's error page looks like), anything else as JSON.
    Respond { status: u16, body: Value },
    /// Wait, then handle the request normally: like a real org, the write still
    /// happens even when the client has given up waiting.
    Delay { ms: u64 },
    /// Drop the connection without answering.
    Close,
}

fn one() -> u32 {
    1
}

impl Fault {
    fn new(action: FaultAction) -> Fault {
        Fault {
            action,
            times: 1,
            path_contains: None,
        }
    }

    /// A Salesforce error body: `[{"message": message, "errorCode": error_code}]`.
    pub fn error(status: u16, error_code: &str, message: &str) -> Fault {
        Fault::respond(
            status,
            json!([{ "message": message, "errorCode": error_code }]),
        )
    }

    pub fn respond(status: u16, body: Value) -> Fault {
        Fault::new(FaultAction::Respond { status, body })
    }

    pub fn html(status: u16, html: &str) -> Fault {
        Fault::respond(status, Value::String(html.to_owned()))
    }

    pub fn delay(delay: Duration) -> Fault {
        Fault::new(FaultAction::Delay {
            ms: delay.as_millis().try_into().unwrap_or(u64::MAX),
        })
    }

    pub fn close() -> Fault {
        Fault::new(FaultAction::Close)
    }

    pub fn times(self, times: u32) -> Fault {
        Fault { times, ..self }
    }

    pub fn on_path(self, substring: &str) -> Fault {
        Fault {
            path_contains: Some(substring.to_owned()),
            ..self
        }
    }

    pub(crate) fn matches(&self, path: &str) -> bool {
        self.path_contains
            .as_deref()
            .is_none_or(|s| path.contains(s))
    }
}
