//! The DynamoDB store. Every write is a single conditional `UpdateItem`, so that a claim
//! keeps an event stored earlier for a retry (its body and attempts).

use std::collections::HashMap;
use std::io::{Read, Write};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ReturnValue, ReturnValuesOnConditionCheckFailure,
    ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use flate2::{read::GzDecoder, write::GzEncoder, Compression};

use super::*;

type Item = HashMap<String, AttributeValue>;

pub struct DynamoDbStore {
    client: Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoDbStore {
            client,
            table: table.into(),
        }
    }

    fn update(
        &self,
        key: &str,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key))
    }
}

impl IdempotencyStore for DynamoDbStore {
    async fn claim(&self, r: &ClaimRequest<'_>) -> Result<Claim, StoreError> {
        let result = self
            .update(r.key)
            .update_expression(
                "SET #status = :in_progress, #hash = :hash, #family = :family, #type = :type, \
                 #lease = :lease, #expires = :expires, #updated = :now_ms",
            )
            .condition_expression(
                "attribute_not_exists(#pk) OR #expires < :now \
                 OR (#status = :in_progress AND #lease < :now_ms) \
                 OR ((#status = :queued OR #status = :dead) AND #hash = :hash)",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#pk", "pk"),
                ("#status", "status"),
                ("#hash", "body_sha256"),
                ("#family", "family"),
                ("#type", "webhook_type"),
                ("#lease", "lease_until"),
                ("#expires", "expires_at"),
                ("#updated", "updated_at"),
            ])))
            .expression_attribute_values(":in_progress", s(Status::InProgress.as_str()))
            .expression_attribute_values(":queued", s(Status::Queued.as_str()))
            .expression_attribute_values(":dead", s(Status::Dead.as_str()))
            .expression_attribute_values(":hash", s(r.body_sha256))
            .expression_attribute_values(":family", s(r.family))
            .expression_attribute_values(":type", s(r.webhook_type))
            .expression_attribute_values(":lease", n(r.lease_until_ms))
            .expression_attribute_values(":expires", n(r.now_ms / 1000 + RETENTION_SECS))
            .expression_attribute_values(":now", n(r.now_ms / 1000))
            .expression_attribute_values(":now_ms", n(r.now_ms))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let was_stored = output
                    .attributes()
                    .is_some_and(|old| old.contains_key("event_body"));
                Ok(Claim::Acquired {
                    previous: was_stored.then_some(Status::Queued),
                })
            }
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.err() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item().cloned(),
                    _ => None,
                };
                let old = match old {
                    Some(old) => old,
                    // Emulators may omit the old item; read it instead.
                    None => self
                        .get(r.key)
                        .await?
                        .ok_or_else(|| StoreError("claim refused but no item".into()))?,
                };
                Ok(Claim::Taken(existing(&old)?))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn advance_order(&self, stamp: &OrderStamp, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .update(&order_key(stamp))
            .update_expression("SET #version = :version, #updated = :now_ms")
            .condition_expression("attribute_not_exists(#version) OR #version <= :version")
            .set_expression_attribute_names(Some(names(&[
                ("#version", "version"),
                ("#updated", "updated_at"),
            ])))
            .expression_attribute_values(":version", n(stamp.version))
            .expression_attribute_values(":now_ms", n(now_ms))
            .send()
            .await;
        applied(result)
    }

    async fn finish(&self, key: &str, finish: &Finish<'_>) -> Result<(), StoreError> {
        let request = match *finish {
            Finish::Completed { outcome, now_ms } => self
                .update(key)
                .update_expression(
                    "SET #status = :status, #outcome = :outcome, #expires = :expires, #updated = :now_ms \
                     REMOVE #lease, #body, #code, #message, #parked, #due, #first",
                )
                .set_expression_attribute_names(Some(names(&[
                    ("#status", "status"),
                    ("#outcome", "outcome"),
                    ("#expires", "expires_at"),
                    ("#updated", "updated_at"),
                    ("#lease", "lease_until"),
                    ("#body", "event_body"),
                    ("#code", "error_code"),
                    ("#message", "error_message"),
                    ("#parked", "parked"),
                    ("#due", "due_at"),
                    ("#first", "first_parked_at"),
                ])))
                .expression_attribute_values(":status", s(Status::Completed.as_str()))
                .expression_attribute_values(":outcome", s(outcome))
                .expression_attribute_values(":expires", n(now_ms / 1000 + RETENTION_SECS))
                .expression_attribute_values(":now_ms", n(now_ms)),
            Finish::Parked { status, body, error_code, error_message, now_ms, due_at_ms } => self
                .update(key)
                .update_expression(
                    "SET #status = :status, #parked = :status, #due = :due, #first = if_not_exists(#first, :now_ms), \
                     #body = :body, #code = :code, #message = :message, \
                     #attempts = if_not_exists(#attempts, :zero) + :one, #expires = :expires, #updated = :now_ms \
                     REMOVE #lease",
                )
                .set_expression_attribute_names(Some(names(&[
                    ("#status", "status"),
                    ("#parked", "parked"),
                    ("#due", "due_at"),
                    ("#first", "first_parked_at"),
                    ("#body", "event_body"),
                    ("#code", "error_code"),
                    ("#message", "error_message"),
                    ("#attempts", "attempts"),
                    ("#expires", "expires_at"),
                    ("#updated", "updated_at"),
                    ("#lease", "lease_until"),
                ])))
                .expression_attribute_values(":status", s(status.as_str()))
                .expression_attribute_values(":due", n(due_at_ms))
                .expression_attribute_values(":body", AttributeValue::B(Blob::new(gzip(body))))
                .expression_attribute_values(":code", s(error_code))
                .expression_attribute_values(":message", s(error_message))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":expires", n(now_ms / 1000 + RETENTION_SECS))
                .expression_attribute_values(":now_ms", n(now_ms)),
        };
        request.send().await.map(drop).map_err(unavailable)
    }

    async fn release(&self, key: &str, previous: Option<Status>) -> Result<(), StoreError> {
        match previous {
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .condition_expression("#status = :in_progress")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":in_progress", s(Status::InProgress.as_str()))
                .send()
                .await
                .map(drop)
                .map_err(unavailable),
            Some(status) => self
                .update(key)
                .update_expression("SET #status = :status REMOVE #lease")
                .set_expression_attribute_names(Some(names(&[
                    ("#status", "status"),
                    ("#lease", "lease_until"),
                ])))
                .expression_attribute_values(":status", s(status.as_str()))
                .send()
                .await
                .map(drop)
                .map_err(unavailable),
        }
    }

    async fn load(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        self.get(key).await?.map(|item| stored(&item)).transpose()
    }

    async fn parked(
        &self,
        status: Status,
        due_by_ms: Option<i64>,
        limit: usize,
    ) -> Result<Vec<StoredDelivery>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PARKED_INDEX)
                .expression_attribute_names("#parked", "parked")
                .expression_attribute_values(":status", s(status.as_str()))
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            query = match due_by_ms {
                Some(by) => query
                    .key_condition_expression("#parked = :status AND #due <= :by")
                    .expression_attribute_names("#due", "due_at")
                    .expression_attribute_values(":by", n(by)),
                None => query.key_condition_expression("#parked = :status"),
            };
            let page = query.send().await.map_err(unavailable)?;
            for item in page.items() {
                found.push(stored(item)?);
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(found)
    }

    async fn claim_due(
        &self,
        key: &str,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Option<StoredDelivery>, StoreError> {
        let result = self
            .update(key)
            .update_expression("SET #status = :in_progress, #lease = :lease, #due = :lease")
            .condition_expression(
                "#parked = :queued AND #due <= :now_ms \
                 AND (#status = :queued OR (#status = :in_progress AND #lease < :now_ms))",
            )
            .set_expression_attribute_names(Some(names(&[
                ("#status", "status"),
                ("#lease", "lease_until"),
                ("#due", "due_at"),
                ("#parked", "parked"),
            ])))
            .expression_attribute_values(":in_progress", s(Status::InProgress.as_str()))
            .expression_attribute_values(":queued", s(Status::Queued.as_str()))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":now_ms", n(now_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => output.attributes.as_ref().map(stored).transpose(),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(None)
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn requeue(&self, key: &str, now_ms: i64) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression(
                "SET #status = :queued, #parked = :queued, #due = :now_ms, #first = :now_ms",
            )
            .condition_expression("#status = :failed OR #status = :dead")
            .set_expression_attribute_names(Some(names(&[
                ("#status", "status"),
                ("#parked", "parked"),
                ("#due", "due_at"),
                ("#first", "first_parked_at"),
            ])))
            .expression_attribute_values(":queued", s(Status::Queued.as_str()))
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":dead", s(Status::Dead.as_str()))
            .expression_attribute_values(":now_ms", n(now_ms))
            .send()
            .await;
        applied(result)
    }

    async fn load_checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(key)
            .await?
            .and_then(|item| item.get("checkpoint").and_then(|v| v.as_s().ok()).cloned()))
    }

    async fn save_checkpoint(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        match value {
            Some(value) => self
                .update(key)
                .update_expression("SET #checkpoint = :value")
                .expression_attribute_names("#checkpoint", "checkpoint")
                .expression_attribute_values(":value", s(value))
                .send()
                .await
                .map(drop)
                .map_err(unavailable),
            None => self
                .client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(key))
                .send()
                .await
                .map(drop)
                .map_err(unavailable),
        }
    }
}

impl DynamoDbStore {
    async fn get(&self, key: &str) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }
}

fn existing(item: &Item) -> Result<Existing, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let status = text("status")
        .and_then(|s| Status::parse(&s))
        .ok_or_else(|| StoreError("a delivery item has no valid status".into()))?;
    Ok(Existing {
        status,
        body_sha256: text("body_sha256").unwrap_or_default(),
        error_code: text("error_code"),
        error_message: text("error_message"),
    })
}

fn stored(item: &Item) -> Result<StoredDelivery, StoreError> {
    let text = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let number = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
    };
    let body = match item.get("event_body").and_then(|v| v.as_b().ok()) {
        Some(blob) => Some(gunzip(blob.as_ref())?),
        None => None,
    };
    let existing = existing(item)?;
    Ok(StoredDelivery {
        key: text("pk").unwrap_or_default(),
        status: existing.status,
        family: text("family").unwrap_or_default(),
        webhook_type: text("webhook_type").unwrap_or_default(),
        attempts: number("attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0),
        error_code: existing.error_code,
        error_message: existing.error_message,
        first_parked_at_ms: number("first_parked_at"),
        due_at_ms: number("due_at"),
        body,
    })
}

/// Creates the table with the schema of template.yaml (for tests and the local run).
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attribute = |name: &str, kind| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(kind)
            .build()
            .expect("complete")
    };
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("complete")
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name(PARKED_INDEX)
        .key_schema(key("parked", KeyType::Hash))
        .key_schema(key("due_at", KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(INDEXED.iter().map(|a| a.to_string()).collect()))
                .build(),
        )
        .build()
        .expect("complete");
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S))
        .attribute_definitions(attribute("parked", ScalarAttributeType::S))
        .attribute_definitions(attribute("due_at", ScalarAttributeType::N))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(index)
        .send()
        .await
        .map_err(unavailable)?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name("expires_at")
        .enabled(true)
        .build()
        .expect("complete");
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(unavailable)?;
    Ok(())
}

/// What the parked index carries besides its keys: all an operator listing shows.
const INDEXED: [&str; 7] = [
    "status",
    "family",
    "webhook_type",
    "attempts",
    "error_code",
    "error_message",
    "first_parked_at",
];

/// A conditional update's verdict: applied, or refused by its condition.
fn applied<T, R>(result: Result<T, SdkError<UpdateItemError, R>>) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            Ok(false)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn names(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(alias, name)| (alias.to_string(), name.to_string()))
        .collect()
}

/// Lago invoices with many fees run to hundreds of kilobytes; compressed JSON stays far
/// below DynamoDB's 400 KB item limit.
fn gzip(body: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(body)
        .expect("writing to memory cannot fail");
    encoder.finish().expect("writing to memory cannot fail")
}

fn gunzip(data: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut body = Vec::new();
    GzDecoder::new(data)
        .read_to_end(&mut body)
        .map_err(|_| StoreError("a stored event body is corrupt".into()))?;
    Ok(body)
}

fn unavailable<E: ProvideErrorMetadata, R>(error: SdkError<E, R>) -> StoreError {
    let detail = match &error {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "no answer".to_owned(),
        _ => "request failed".to_owned(),
    };
    StoreError(detail)
}
