//! The DynamoDB store, with the in-memory store's semantics ([`verdict`] decides for both).
//! Each change of an item is one conditional request, as atomic as the other store's
//! changes under its mutex.

use std::collections::HashMap;
use std::io::Read;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use flate2::read::GzDecoder;

use super::schema::{DUE_AT, EXPIRES_AT, KEY, PARKED};
use super::*;

type Item = HashMap<String, AttributeValue>;

/// The attributes of a record's lease, which its release removes.
const HOLDER: [(&str, &str); 6] = [
    ("#holder", "holder"),
    ("#hash", "holder_hash"),
    ("#token", "token"),
    ("#lease", "lease_until"),
    ("#parked", PARKED),
    ("#due", DUE_AT),
];
const LET_GO: &str = "REMOVE #holder, #hash, #token, #lease, #parked, #due";

/// A stored event's flag: its sync issue is open in Salesforce.
const ISSUE_OPEN: &str = "issue_open";

/// No newer state is written than `:version` ([`version_bound`]).
const NOT_OLDER: &str = "(attribute_not_exists(#written) OR #written <= :version)";

/// How often a take is tried when its refusal reads as no refusal: the item changed between
/// the refusal and the read (an emulator that does not return the refusing item is read).
const ATTEMPTS: usize = 3;

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

    fn update(&self, key: &str) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(KEY, s(key))
    }

    async fn get(&self, key: &str, consistent: bool) -> Result<Option<Item>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(KEY, s(key))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(output.item)
    }

    /// Sends a conditional update and returns the item as it was before, or as it refused
    /// the update (empty when there is none).
    async fn swap(&self, key: &str, request: UpdateItemFluentBuilder) -> Result<Swap, StoreError> {
        let result = request
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Swap::Applied(output.attributes.unwrap_or_default())),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(refusal) => refusal.item,
                    _ => None,
                };
                let old = match old {
                    Some(old) => old,
                    // Emulators may omit the old item; read it instead.
                    None => self.get(key, true).await?.unwrap_or_default(),
                };
                Ok(Swap::Refused(old))
            }
            Err(e) => Err(unavailable(e)),
        }
    }
}

enum Swap {
    Applied(Item),
    Refused(Item),
}

impl RecordGuard for DynamoDbStore {
    async fn take(&self, take: &Take<'_>) -> Result<Taken, StoreError> {
        let key = record_key(take.record);
        let mut condition = format!(
            "(attribute_not_exists(#holder) \
             OR (#holder = :delivery AND #hash = :hash AND #lease < :now_ms)) \
             AND attribute_not_exists(#done.#r) AND {NOT_OLDER}"
        );
        let mut aliases = names(&HOLDER);
        aliases.extend(names(&[
            ("#family", "family"),
            ("#ref", "lago_ref"),
            ("#done", "done"),
            ("#stored", "stored"),
            ("#r", remembered_key(take.delivery)),
            ("#written", "written"),
        ]));
        if !take.retry {
            condition += " AND attribute_not_exists(#stored.#k)";
            aliases.insert("#k".into(), take.delivery.into());
        }
        for _ in 0..ATTEMPTS {
            let token = token();
            // The maps are created here, so that a release can set and remove their entries.
            let request = self
                .update(&key)
                .update_expression(
                    "SET #holder = :delivery, #hash = :hash, #token = :token, #lease = :lease, \
                     #parked = :held, #due = :lease, #family = :family, #ref = :ref, \
                     #done = if_not_exists(#done, :empty), #stored = if_not_exists(#stored, :empty)",
                )
                .condition_expression(&condition)
                .set_expression_attribute_names(Some(aliases.clone()))
                .expression_attribute_values(":delivery", s(take.delivery))
                .expression_attribute_values(":hash", s(take.body_sha256))
                .expression_attribute_values(":token", s(&token))
                .expression_attribute_values(":lease", n(take.lease_until_ms))
                .expression_attribute_values(":held", s(HELD))
                .expression_attribute_values(":family", s(take.family))
                .expression_attribute_values(":ref", s(take.lago_ref))
                .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
                .expression_attribute_values(":now_ms", n(take.now_ms))
                .expression_attribute_values(":version", version_bound(take.version));
            match self.swap(&key, request).await? {
                Swap::Applied(old) => {
                    let lease = lease(take.record, take.delivery, take.body_sha256, token, &old)?;
                    return Ok(Taken::Leased(lease));
                }
                Swap::Refused(old) => {
                    if let Some(refusal) = verdict(&view(&old)?, take) {
                        return Ok(refusal);
                    }
                }
            }
        }
        Err(StoreError(
            "the record kept changing while being taken".into(),
        ))
    }

    async fn release(
        &self,
        lease: &Lease,
        release: &Release,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut aliases = names(&HOLDER);
        let mut request = self
            .update(&record_key(&lease.record))
            .condition_expression("#token = :token")
            .expression_attribute_values(":token", s(&lease.token));
        let expression = match release {
            Release::Written { version, now_ms } => {
                aliases.extend(names(&[
                    ("#done", "done"),
                    ("#stored", "stored"),
                    ("#k", &lease.delivery),
                    ("#r", remembered_key(&lease.delivery)),
                ]));
                request = request.expression_attribute_values(
                    ":done",
                    s(&format!("{now_ms} {}", remembered_hash(&lease.body_sha256))),
                );
                let mut set = "SET #done.#r = :done".to_owned();
                let mut remove = format!("{LET_GO}, #stored.#k");
                if let Some(version) = version {
                    set += ", #written = :version";
                    aliases.insert("#written".into(), "written".into());
                    request = request.expression_attribute_values(":version", n(*version));
                }
                if let Some(evicted) = &lease.evict {
                    remove += ", #done.#evicted";
                    aliases.insert("#evicted".into(), evicted.clone());
                }
                format!("{set} {remove}")
            }
            Release::Stored(status) => {
                aliases.extend(names(&[("#stored", "stored"), ("#k", &lease.delivery)]));
                request = request.expression_attribute_values(":status", s(status.as_str()));
                format!("SET #stored.#k = :status {LET_GO}")
            }
            Release::Abandoned => LET_GO.to_owned(),
        };
        let result = request
            .update_expression(expression)
            .set_expression_attribute_names(Some(aliases))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        Ok(conditional(result)?.map(|output| {
            let mut waiting = waiting(&output.attributes.unwrap_or_default());
            waiting.sort();
            waiting
        }))
    }

    async fn await_parent(&self, parent: &str, child: &str) -> Result<bool, StoreError> {
        // A string set: ADD creates it, so the first waiting child needs no other write.
        let output = self
            .update(&record_key(parent))
            .update_expression("ADD #waiting :child")
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_values(":child", AttributeValue::Ss(vec![child.to_owned()]))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(view(&output.attributes.unwrap_or_default())?.was_written())
    }

    async fn parent_linked(&self, parent: &str, children: &[String]) -> Result<(), StoreError> {
        if children.is_empty() {
            return Ok(());
        }
        let result = self
            .update(&record_key(parent))
            .update_expression("DELETE #waiting :children")
            .condition_expression("attribute_exists(#pk)")
            .expression_attribute_names("#waiting", "waiting")
            .expression_attribute_names("#pk", KEY)
            .expression_attribute_values(":children", AttributeValue::Ss(children.to_vec()))
            .send()
            .await;
        conditional(result).map(drop)
    }

    async fn lapsed(&self, now_ms: i64, limit: usize) -> Result<Vec<Lapsed>, StoreError> {
        let mut found = Vec::new();
        let mut start = None;
        while found.len() < limit {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PARKED_INDEX)
                .key_condition_expression("#parked = :held AND #due <= :now_ms")
                .expression_attribute_names("#parked", PARKED)
                .expression_attribute_names("#due", DUE_AT)
                .expression_attribute_values(":held", s(HELD))
                .expression_attribute_values(":now_ms", n(now_ms))
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for indexed in page.items() {
                // The index lags behind the table and lacks the holder: read the record.
                let key = text(indexed, KEY).unwrap_or_default();
                let Some(item) = self.get(&key, true).await? else {
                    continue;
                };
                let (Some(record), Some(holder)) =
                    (key.strip_prefix(&record_key("")), view(&item)?.holder)
                else {
                    continue;
                };
                if holder.lease_until_ms <= now_ms {
                    found.push(Lapsed {
                        record: record.to_owned(),
                        delivery: holder.delivery,
                        family: text(&item, "family").unwrap_or_default(),
                        lago_ref: text(&item, "lago_ref").unwrap_or_default(),
                        lease_until_ms: holder.lease_until_ms,
                    });
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        Ok(found)
    }

    async fn take_lapsed(
        &self,
        lapsed: &Lapsed,
        version: Option<i64>,
        now_ms: i64,
        lease_until_ms: i64,
    ) -> Result<Taken, StoreError> {
        let key = record_key(&lapsed.record);
        for _ in 0..ATTEMPTS {
            let token = token();
            let request = self
                .update(&key)
                .update_expression("SET #token = :token, #lease = :lease, #due = :lease")
                .condition_expression(format!(
                    "#holder = :delivery AND #lease < :now_ms AND {NOT_OLDER}"
                ))
                .set_expression_attribute_names(Some(names(&[
                    ("#holder", "holder"),
                    ("#token", "token"),
                    ("#lease", "lease_until"),
                    ("#due", DUE_AT),
                    ("#written", "written"),
                ])))
                .expression_attribute_values(":delivery", s(&lapsed.delivery))
                .expression_attribute_values(":token", s(&token))
                .expression_attribute_values(":lease", n(lease_until_ms))
                .expression_attribute_values(":now_ms", n(now_ms))
                .expression_attribute_values(":version", version_bound(version));
            let old = match self.swap(&key, request).await? {
                Swap::Applied(old) => {
                    let hash = text(&old, "holder_hash").unwrap_or_default();
                    let lease = lease(&lapsed.record, &lapsed.delivery, &hash, token, &old)?;
                    return Ok(Taken::Leased(lease));
                }
                Swap::Refused(old) => view(&old)?,
            };
            let holder = match old.holder {
                Some(h) if h.delivery == lapsed.delivery && h.lease_until_ms < now_ms => h,
                other => {
                    return Ok(Taken::Busy {
                        holder: other.map(|h| h.delivery).unwrap_or_default(),
                    })
                }
            };
            let written = match (old.written, version) {
                (Some(written), Some(version)) if written > version => written,
                _ => continue,
            };
            // Nothing is left to write: the lease ends here, unless it was taken meanwhile.
            let result = self
                .update(&key)
                .update_expression(LET_GO)
                .condition_expression("#token = :token")
                .set_expression_attribute_names(Some(names(&HOLDER)))
                .expression_attribute_values(":token", s(&holder.token))
                .send()
                .await;
            if conditional(result)?.is_some() {
                return Ok(Taken::Older { written });
            }
        }
        Err(StoreError(
            "the record kept changing while being recovered".into(),
        ))
    }

    async fn written(&self, record: &str) -> Result<Option<i64>, StoreError> {
        let item = self.get(&record_key(record), true).await?;
        Ok(item.and_then(|item| number(&item, "written")))
    }
}

/// The lease of a take that replaced the record item `old`.
fn lease(
    record: &str,
    delivery: &str,
    body_sha256: &str,
    token: String,
    old: &Item,
) -> Result<Lease, StoreError> {
    let view = view(old)?;
    Ok(Lease {
        record: record.to_owned(),
        delivery: delivery.to_owned(),
        body_sha256: body_sha256.to_owned(),
        token,
        written: view.written,
        evict: eviction(&view),
    })
}

fn view(item: &Item) -> Result<RecordView, StoreError> {
    let map = |name: &str| {
        item.get(name)
            .and_then(|v| v.as_m().ok())
            .into_iter()
            .flatten()
    };
    let done = map("done")
        .map(|(delivery, value)| {
            let (at, hash) = value
                .as_s()
                .ok()
                .and_then(|v| v.split_once(' '))
                .and_then(|(at, hash)| Some((at.parse::<i64>().ok()?, hash.to_owned())))
                .ok_or_else(|| StoreError("a record item is corrupt".into()))?;
            Ok((delivery.clone(), (at, hash)))
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(RecordView {
        written: number(item, "written"),
        holder: text(item, "holder").map(|delivery| Holder {
            delivery,
            body_sha256: text(item, "holder_hash").unwrap_or_default(),
            token: text(item, "token").unwrap_or_default(),
            lease_until_ms: number(item, "lease_until").unwrap_or_default(),
        }),
        done,
        stored: map("stored")
            .map(|(delivery, _)| delivery.clone())
            .collect(),
        waiting: waiting(item).into_iter().collect(),
    })
}

fn waiting(item: &Item) -> Vec<String> {
    item.get("waiting")
        .and_then(|v| v.as_ss().ok())
        .cloned()
        .unwrap_or_default()
}

/// What [`DynamoDbStore::migrate`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Migrated {
    /// Versions of the ordering guard of 0.x (`order#<record>`) carried to the record items.
    pub versions: u64,
    /// Stored events of 0.x whose TTL was removed, so that they never expire.
    pub stored_events: u64,
}

impl DynamoDbStore {
    /// Brings a table written by the previous design (one `order#` item per record, stored
    /// events with a TTL) to this one, once, after the upgrade: each record item gets the
    /// newest version the old guard knew, so an older state still arriving is skipped; no
    /// stored event expires. Idempotent; one scan of the table, an operator's command.
    pub async fn migrate(&self) -> Result<Migrated, StoreError> {
        let mut migrated = Migrated::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression(
                    "begins_with(#pk, :order) OR (attribute_exists(#parked) AND attribute_exists(#expires))",
                )
                .expression_attribute_names("#pk", KEY)
                .expression_attribute_names("#parked", PARKED)
                .expression_attribute_names("#expires", EXPIRES_AT)
                .expression_attribute_values(":order", s("order#"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in page.items() {
                let key = text(item, KEY).unwrap_or_default();
                match (key.strip_prefix("order#"), number(item, "version")) {
                    (Some(record), Some(version)) => {
                        migrated.versions += u64::from(self.carry_version(record, version).await?)
                    }
                    // A stored event of 0.x: its TTL goes, its parked status stays.
                    (None, _) if text(item, PARKED).is_some_and(|p| p != HELD) => {
                        let result = self
                            .update(&key)
                            .update_expression("REMOVE #expires")
                            .condition_expression("attribute_exists(#parked)")
                            .expression_attribute_names("#expires", EXPIRES_AT)
                            .expression_attribute_names("#parked", PARKED)
                            .send()
                            .await;
                        migrated.stored_events += u64::from(conditional(result)?.is_some());
                    }
                    _ => {}
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(migrated);
            }
        }
    }

    /// Raises the record's written version to `version` (the old guard stamped states with
    /// `updated_at` alone: its milliseconds × the stages' room, the lowest stage).
    async fn carry_version(&self, record: &str, version: i64) -> Result<bool, StoreError> {
        let version = match record.split_once('/') {
            Some(("Lago_Invoice__c" | "Lago_Credit_Note__c", _)) => {
                version.saturating_mul(crate::mapping::STAGES)
            }
            _ => version,
        };
        let result = self
            .update(&record_key(record))
            .update_expression("SET #written = :version")
            .condition_expression("attribute_not_exists(#written) OR #written < :version")
            .expression_attribute_names("#written", "written")
            .expression_attribute_values(":version", n(version))
            .send()
            .await;
        Ok(conditional(result)?.is_some())
    }
}

impl EventQueue for DynamoDbStore {
    async fn park(&self, p: &Park<'_>) -> Result<bool, StoreError> {
        // Failed or dead, its sync issue is opened: the flag stays until it completes.
        let opens_issue = matches!(p.status, Status::Failed | Status::Dead);
        let issue = if opens_issue { ", #issue = :open" } else { "" };
        let mut request = self
            .update(p.key)
            // No TTL: a stored event is kept until it is completed or discarded.
            .update_expression(format!(
                "SET #status = :status, #parked = :status, #due = :due, #record = :record, \
                 #family = :family, #type = :type, #hash = :hash, #body = :body, #code = :code, \
                 #message = :message, #attempts = if_not_exists(#attempts, :zero) + :one, \
                 #first = if_not_exists(#first, :now_ms), #updated = :now_ms{issue} \
                 REMOVE #expires, #lease, #outcome"
            ))
            .set_expression_attribute_names(Some(names(&[
                ("#status", "status"),
                ("#parked", PARKED),
                ("#due", DUE_AT),
                ("#record", "record"),
                ("#family", "family"),
                ("#type", "webhook_type"),
                ("#hash", "body_sha256"),
                ("#body", "event_body"),
                ("#code", "error_code"),
                ("#message", "error_message"),
                ("#attempts", "attempts"),
                ("#first", "first_parked_at"),
                ("#updated", "updated_at"),
                ("#expires", EXPIRES_AT),
                ("#lease", "lease_until"),
                ("#outcome", "outcome"),
            ])))
            .expression_attribute_values(":status", s(p.status.as_str()))
            .expression_attribute_values(":due", n(p.due_at_ms))
            .expression_attribute_values(":record", s(p.record))
            .expression_attribute_values(":family", s(p.family))
            .expression_attribute_values(":type", s(p.webhook_type))
            .expression_attribute_values(":hash", s(p.body_sha256))
            .expression_attribute_values(
                ":body",
                AttributeValue::B(Blob::new(super::compressed(p.body))),
            )
            .expression_attribute_values(":code", s(p.error_code))
            .expression_attribute_values(":message", s(p.error_message))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now_ms", n(p.now_ms));
        if opens_issue {
            request = request
                .expression_attribute_names("#issue", ISSUE_OPEN)
                .expression_attribute_values(":open", AttributeValue::Bool(true));
        }
        if p.only_if_new {
            request = request
                .condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", KEY);
        }
        Ok(conditional(request.send().await)?.is_some())
    }

    async fn load(&self, key: &str) -> Result<Option<StoredDelivery>, StoreError> {
        self.get(key, true)
            .await?
            .map(|item| stored(&item))
            .transpose()
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
                .expression_attribute_names("#parked", PARKED)
                .expression_attribute_values(":status", s(status.as_str()))
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start);
            query = match due_by_ms {
                Some(by) => query
                    .key_condition_expression("#parked = :status AND #due <= :by")
                    .expression_attribute_names("#due", DUE_AT)
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
                ("#due", DUE_AT),
                ("#parked", PARKED),
            ])))
            .expression_attribute_values(":in_progress", s(Status::InProgress.as_str()))
            .expression_attribute_values(":queued", s(Status::Queued.as_str()))
            .expression_attribute_values(":lease", n(lease_until_ms))
            .expression_attribute_values(":now_ms", n(now_ms))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match conditional(result)? {
            Some(output) => output.attributes.as_ref().map(stored).transpose(),
            None => Ok(None),
        }
    }

    async fn complete(&self, key: &str, outcome: &str, now_ms: i64) -> Result<(), StoreError> {
        let result = self
            .update(key)
            .update_expression(
                "SET #status = :completed, #outcome = :outcome, #expires = :expires, \
                 #updated = :now_ms REMOVE #body, #code, #message, #parked, #due, #lease, #issue",
            )
            // An update creates the item it does not find.
            .condition_expression("attribute_exists(#pk)")
            .set_expression_attribute_names(Some(names(&[
                ("#pk", KEY),
                ("#status", "status"),
                ("#outcome", "outcome"),
                ("#expires", EXPIRES_AT),
                ("#updated", "updated_at"),
                ("#body", "event_body"),
                ("#code", "error_code"),
                ("#message", "error_message"),
                ("#parked", PARKED),
                ("#due", DUE_AT),
                ("#lease", "lease_until"),
                ("#issue", ISSUE_OPEN),
            ])))
            .expression_attribute_values(":completed", s(Status::Completed.as_str()))
            .expression_attribute_values(":outcome", s(outcome))
            .expression_attribute_values(":expires", n(now_ms / 1000 + RETENTION_SECS))
            .expression_attribute_values(":now_ms", n(now_ms))
            .send()
            .await;
        conditional(result).map(drop)
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
                ("#parked", PARKED),
                ("#due", DUE_AT),
                ("#first", "first_parked_at"),
            ])))
            .expression_attribute_values(":queued", s(Status::Queued.as_str()))
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":dead", s(Status::Dead.as_str()))
            .expression_attribute_values(":now_ms", n(now_ms))
            .send()
            .await;
        Ok(conditional(result)?.is_some())
    }

    async fn discard(&self, key: &str) -> Result<bool, StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, s(key))
            .condition_expression("#status = :failed OR #status = :dead")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":failed", s(Status::Failed.as_str()))
            .expression_attribute_values(":dead", s(Status::Dead.as_str()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        let Some(deleted) = conditional(result)? else {
            return Ok(false);
        };
        if let Some(record) = deleted
            .attributes
            .as_ref()
            .and_then(|old| text(old, "record"))
        {
            // The record's deliveries no longer answer from the discarded event; a record
            // item that is gone stays gone.
            let result = self
                .update(&record_key(&record))
                .update_expression("REMOVE #stored.#k")
                .condition_expression("attribute_exists(#pk)")
                .set_expression_attribute_names(Some(names(&[
                    ("#pk", KEY),
                    ("#stored", "stored"),
                    ("#k", key),
                ])))
                .send()
                .await;
            conditional(result)?;
        }
        Ok(true)
    }
}

fn stored(item: &Item) -> Result<StoredDelivery, StoreError> {
    let body = match item.get("event_body").and_then(|v| v.as_b().ok()) {
        Some(blob) => Some(gunzip(blob.as_ref())?),
        None => None,
    };
    Ok(StoredDelivery {
        key: text(item, KEY).unwrap_or_default(),
        record: text(item, "record").unwrap_or_default(),
        status: text(item, "status")
            .and_then(|s| Status::parse(&s))
            .ok_or_else(|| StoreError("a stored event has no valid status".into()))?,
        family: text(item, "family").unwrap_or_default(),
        webhook_type: text(item, "webhook_type").unwrap_or_default(),
        body_sha256: text(item, "body_sha256").unwrap_or_default(),
        attempts: number(item, "attempts")
            .and_then(|a| u32::try_from(a).ok())
            .unwrap_or(0),
        error_code: text(item, "error_code"),
        error_message: text(item, "error_message"),
        first_parked_at_ms: number(item, "first_parked_at"),
        due_at_ms: number(item, DUE_AT),
        body,
        issue_open: item
            .get(ISSUE_OPEN)
            .and_then(|v| v.as_bool().ok())
            .is_some_and(|open| *open),
    })
}

impl Checkpoints for DynamoDbStore {
    async fn load_checkpoint(&self, key: &str) -> Result<Option<String>, StoreError> {
        let item = self.get(key, true).await?;
        Ok(item.and_then(|item| text(&item, "checkpoint")))
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
                .key(KEY, s(key))
                .send()
                .await
                .map(drop)
                .map_err(unavailable),
        }
    }
}

impl CustomerLinks for DynamoDbStore {
    async fn link(&self, lago_customer_id: &str, account_id: &str) -> Result<(), StoreError> {
        // No TTL: a link holds until Lago reports another.
        self.update(&customer_key(lago_customer_id))
            .update_expression("SET #account = :account")
            .expression_attribute_names("#account", "account")
            .expression_attribute_values(":account", s(account_id))
            .send()
            .await
            .map(drop)
            .map_err(unavailable)
    }

    async fn linked_account(&self, lago_customer_id: &str) -> Result<Option<String>, StoreError> {
        // A link changes rarely: an eventually consistent read, at half the cost, will do.
        let item = self.get(&customer_key(lago_customer_id), false).await?;
        Ok(item.and_then(|item| text(&item, "account")))
    }
}

/// A conditional write's output, or `None` when its condition refused it.
fn conditional<T, E: ProvideErrorMetadata, R>(
    result: Result<T, SdkError<E, R>>,
) -> Result<Option<T>, StoreError> {
    match result {
        Ok(output) => Ok(Some(output)),
        Err(SdkError::ServiceError(e))
            if e.err().code() == Some("ConditionalCheckFailedException") =>
        {
            Ok(None)
        }
        Err(e) => Err(unavailable(e)),
    }
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn number(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// The `:version` of [`NOT_OLDER`]: a state the payload cannot order is written as it comes.
fn version_bound(version: Option<i64>) -> AttributeValue {
    n(version.unwrap_or(i64::MAX))
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

fn gunzip(data: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut body = Vec::new();
    GzDecoder::new(data)
        .read_to_end(&mut body)
        .map_err(|_| StoreError("a stored event body is corrupt".into()))?;
    Ok(body)
}

pub(super) fn unavailable<E: ProvideErrorMetadata, R>(error: SdkError<E, R>) -> StoreError {
    let detail = match &error {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "no answer".to_owned(),
        _ => "request failed".to_owned(),
    };
    StoreError(detail)
}
