//! The `Lago_Sync_Issue__c` record of a stored event that ended `failed` or `dead`
//! (contract §6): upserted by the event's delivery key, open while the event waits for an
//! operator, resolved once it syncs.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{values, SalesforceWrite, Target};

pub const ISSUE_OBJECT: &str = "Lago_Sync_Issue__c";
/// The issue's external id: the stored event's key.
pub const ISSUE_KEY_FIELD: &str = "Delivery_Key__c";

/// What the event was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueEvent<'a> {
    /// The stored event's key, `delivery#<family>#<unique key>`.
    pub key: &'a str,
    pub family: &'a str,
    pub webhook_type: &'a str,
    /// The Lago id of the event's object, when the event could be mapped.
    pub lago_id: Option<&'a str>,
    /// The Account the event names, when it names one.
    pub account: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueState<'a> {
    /// The event ended `failed` or `dead` at `failed_at_ms`, after `attempts` tries.
    Open {
        code: &'a str,
        message: &'a str,
        attempts: u32,
        failed_at_ms: i64,
        /// When the event first failed, sent only when this failure opens the issue (an
        /// upsert cannot say "only if not set").
        first_failed_at_ms: Option<i64>,
    },
    /// The event synced at `at_ms`.
    Resolved { at_ms: i64 },
}

/// The upsert of the issue of `event` in `state`. Fields that are unknown are left out,
/// so a resolution never clears what the open issue said.
pub fn issue_write(event: &IssueEvent<'_>, state: &IssueState<'_>) -> SalesforceWrite {
    let mut fields = Map::new();
    let mut set = |field: &str, value: Value| {
        fields.insert(field.to_owned(), value);
    };
    // Without a plan the name falls back to the key's unique part; a resolution, which
    // may lack the plan too, keeps the name the open issue had.
    let name_id = event
        .lago_id
        .or_else(|| matches!(state, IssueState::Open { .. }).then(|| unique_part(event.key)));
    if let Some(id) = name_id {
        set("Name", values::text(&format!("{} {id}", event.family), 80));
    }
    set("Family__c", values::text(event.family, 255));
    set("Webhook_Type__c", values::text(event.webhook_type, 255));
    if let Some(lago_id) = event.lago_id {
        set("Lago_Id__c", values::text(lago_id, 255));
    }
    if let Some(account) = event.account.filter(|a| !a.is_empty()) {
        set("Account__c", Value::String(account.to_owned()));
    }
    match state {
        IssueState::Open {
            code,
            message,
            attempts,
            failed_at_ms,
            first_failed_at_ms,
        } => {
            set("Status__c", Value::String("open".into()));
            set("Error_Code__c", values::text(code, 255));
            set("Error_Message__c", values::text(message, 32_768));
            set("Attempts__c", Value::from((*attempts).min(999_999)));
            set("Last_Failed_At__c", datetime(*failed_at_ms));
            if let Some(first) = first_failed_at_ms {
                set("First_Failed_At__c", datetime(*first));
            }
            // Failing again after a resolution opens the issue again.
            set("Resolved_At__c", Value::Null);
        }
        IssueState::Resolved { at_ms } => {
            set("Status__c", Value::String("resolved".into()));
            set("Resolved_At__c", datetime(*at_ms));
        }
    }
    SalesforceWrite {
        target: Target::UpsertBy {
            object: ISSUE_OBJECT,
            field: ISSUE_KEY_FIELD,
            value: event.key.to_owned(),
        },
        fields,
        reference: None,
        details: None,
    }
}

/// `<unique key>` of `delivery#<family>#<unique key>`.
fn unique_part(key: &str) -> &str {
    key.splitn(3, '#').nth(2).unwrap_or(key)
}

/// A Salesforce DateTime, UTC, to the second.
fn datetime(epoch_ms: i64) -> Value {
    let at = OffsetDateTime::from_unix_timestamp(epoch_ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    Value::String(at.format(&Rfc3339).expect("a UTC datetime formats"))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    const KEY: &str = "delivery#invoice#u-1";
    const T1: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const T2: i64 = 1_767_225_661_500; // 2026-01-01T00:01:01.5Z

    fn event<'a>(lago_id: Option<&'a str>, account: Option<&'a str>) -> IssueEvent<'a> {
        IssueEvent {
            key: KEY,
            family: "invoice",
            webhook_type: "invoice.created",
            lago_id,
            account,
        }
    }

    fn open(attempts: u32, first: Option<i64>) -> IssueState<'static> {
        IssueState::Open {
            code: "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            message: "refused",
            attempts,
            failed_at_ms: T2,
            first_failed_at_ms: first,
        }
    }

    #[test]
    fn builds_the_issue_record() {
        let long = "x".repeat(100);
        let cases: Vec<(&str, IssueEvent, IssueState, Value)> = vec![
            (
                "first failure of a mapped event",
                event(Some("inv-1"), Some("001000000000001AAA")),
                open(1, Some(T2)),
                json!({
                    "Name": "invoice inv-1", "Family__c": "invoice",
                    "Webhook_Type__c": "invoice.created", "Lago_Id__c": "inv-1",
                    "Account__c": "001000000000001AAA", "Status__c": "open",
                    "Error_Code__c": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "Error_Message__c": "refused", "Attempts__c": 1,
                    "Last_Failed_At__c": "2026-01-01T00:01:01Z",
                    "First_Failed_At__c": "2026-01-01T00:01:01Z",
                    "Resolved_At__c": null,
                }),
            ),
            (
                "an unmappable event is named by its key, has no lago id nor account",
                event(None, None),
                open(4, None),
                json!({
                    "Name": "invoice u-1", "Family__c": "invoice",
                    "Webhook_Type__c": "invoice.created", "Status__c": "open",
                    "Error_Code__c": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "Error_Message__c": "refused", "Attempts__c": 4,
                    "Last_Failed_At__c": "2026-01-01T00:01:01Z", "Resolved_At__c": null,
                }),
            ),
            (
                "the name is cut to 80",
                event(Some(&long), Some("")),
                open(2, Some(T1)),
                json!({
                    "Name": format!("invoice {}", "x".repeat(72)), "Family__c": "invoice",
                    "Webhook_Type__c": "invoice.created", "Lago_Id__c": long,
                    "Status__c": "open", "Error_Code__c": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                    "Error_Message__c": "refused", "Attempts__c": 2,
                    "Last_Failed_At__c": "2026-01-01T00:01:01Z",
                    "First_Failed_At__c": "2026-01-01T00:00:00Z", "Resolved_At__c": null,
                }),
            ),
            (
                "resolved, with the plan",
                event(Some("inv-1"), Some("001000000000001AAA")),
                IssueState::Resolved { at_ms: T1 },
                json!({
                    "Name": "invoice inv-1", "Family__c": "invoice",
                    "Webhook_Type__c": "invoice.created", "Lago_Id__c": "inv-1",
                    "Account__c": "001000000000001AAA", "Status__c": "resolved",
                    "Resolved_At__c": "2026-01-01T00:00:00Z",
                }),
            ),
            (
                "resolved without a plan keeps the open issue's name",
                event(None, None),
                IssueState::Resolved { at_ms: T1 },
                json!({
                    "Family__c": "invoice", "Webhook_Type__c": "invoice.created",
                    "Status__c": "resolved", "Resolved_At__c": "2026-01-01T00:00:00Z",
                }),
            ),
        ];
        for (case, event, state, expected) in cases {
            let write = issue_write(&event, &state);
            assert_eq!(
                write.target,
                Target::UpsertBy {
                    object: ISSUE_OBJECT,
                    field: ISSUE_KEY_FIELD,
                    value: KEY.into()
                },
                "{case}"
            );
            assert_eq!(write.reference, None, "{case}");
            assert_eq!(Value::Object(write.fields), expected, "{case}");
        }
    }
}
