//! subscription → `Lago_Subscription__c`, upserted by `Lago_Id__c`.

use super::values::{date_opt, date_value};
use super::*;
use crate::lago::Subscription;

pub const OBJECT: &str = "Lago_Subscription__c";

pub(super) fn plan(subscription: &Subscription) -> Result<Plan, MappingError> {
    let account = embedded_account(&subscription.customer, "subscription")?;
    let lago_id = required("lago_id", &subscription.lago_id)?;
    let start = subscription
        .started_at
        .as_deref()
        .or(subscription.subscription_at.as_deref());

    let mut record = Record::default();
    record
        .set(
            "Name",
            name(&[&subscription.name, &subscription.plan_code], lago_id),
        )
        .set("Account__c", Value::String(account))
        .set_opt("External_Id__c", text_opt(&subscription.external_id, 255))
        .set_opt("Plan_Code__c", text_opt(&subscription.plan_code, 255))
        .set_opt("Plan_Name__c", text_opt(&plan_name(subscription), 255))
        .set_opt("Status__c", enum_opt(&subscription.status, |s| s.as_str()))
        .set_opt(
            "Billing_Time__c",
            enum_opt(&subscription.billing_time, |b| b.as_str()),
        )
        .try_set_opt("Start_Date__c", start.map(|v| date_value("started_at", v)))?;
    end_dates(&mut record, subscription)?;
    // The serializer has no updated_at; the status only moves forward, so it orders.
    let version = subscription.status.as_ref().map(|s| i64::from(s.rank()));
    let mut plan = upsert(OBJECT, lago_id, record, None, version);
    if let Some(external_id) = subscription
        .external_id
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        plan.lago_ref = external_id.to_owned();
    }
    Ok(plan)
}

/// How the subscription ends or ended, as UTC dates.
fn end_dates(record: &mut Record, subscription: &Subscription) -> Result<(), MappingError> {
    record
        .try_set_opt(
            "Termination_Date__c",
            date_opt("terminated_at", &subscription.terminated_at),
        )?
        .try_set_opt(
            "Ending_Date__c",
            date_opt("ending_at", &subscription.ending_at),
        )?
        .try_set_opt(
            "Trial_Ended_Date__c",
            date_opt("trial_ended_at", &subscription.trial_ended_at),
        )?
        .try_set_opt(
            "Canceled_Date__c",
            date_opt("canceled_at", &subscription.canceled_at),
        )?;
    Ok(())
}

/// `plan.name`, when the webhook embeds the plan (Lago's API lists do not).
fn plan_name(subscription: &Subscription) -> Option<String> {
    subscription
        .plan
        .as_ref()
        .and_then(|plan| plan.name.clone())
}
