//! The table's schema, which template.yaml declares for deployed stacks and
//! [`create_table`] for tests and local runs; a test keeps the two the same.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use super::dynamodb::unavailable;
use super::{StoreError, PARKED_INDEX};

/// The partition key (string) of every item.
pub const KEY: &str = "pk";
/// The index's partition (string): a stored event's status, or [`super::HELD`].
pub const PARKED: &str = "parked";
/// The index's sort key (number, ms): when a stored event is due, or a lease's end.
pub const DUE_AT: &str = "due_at";
/// DynamoDB's TTL attribute (epoch seconds); stored events waiting for a retry or an
/// operator never carry it.
pub const EXPIRES_AT: &str = "expires_at";

/// What the index carries besides its keys: all an operator listing shows. Changing it
/// replaces the index of deployed stacks.
pub const INDEXED: [&str; 7] = [
    "status",
    "family",
    "webhook_type",
    "attempts",
    "error_code",
    "error_message",
    "first_parked_at",
];

/// Creates the table with the schema of template.yaml.
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
        .key_schema(key(PARKED, KeyType::Hash))
        .key_schema(key(DUE_AT, KeyType::Range))
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .set_non_key_attributes(Some(INDEXED.map(str::to_owned).to_vec()))
                .build(),
        )
        .build()
        .expect("complete");
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(KEY, ScalarAttributeType::S))
        .attribute_definitions(attribute(PARKED, ScalarAttributeType::S))
        .attribute_definitions(attribute(DUE_AT, ScalarAttributeType::N))
        .key_schema(key(KEY, KeyType::Hash))
        .global_secondary_indexes(index)
        .send()
        .await
        .map_err(unavailable)?;
    let ttl = TimeToLiveSpecification::builder()
        .attribute_name(EXPIRES_AT)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The table resource of template.yaml, comments dropped and whitespace collapsed.
    fn template_table() -> String {
        let mut lines = include_str!("../../../template.yaml")
            .lines()
            .skip_while(|line| *line != "  IdempotencyTable:");
        lines
            .next()
            .expect("template.yaml declares IdempotencyTable");
        lines
            .take_while(|line| line.is_empty() || line.starts_with("    "))
            .filter(|line| !line.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn template_yaml_declares_the_schema_create_table_creates() {
        let table = template_table();
        let expected = [
            "BillingMode: PAY_PER_REQUEST".to_owned(),
            format!(
                "AttributeDefinitions: - AttributeName: {KEY} AttributeType: S \
                 - AttributeName: {PARKED} AttributeType: S \
                 - AttributeName: {DUE_AT} AttributeType: \"N\" KeySchema:"
            ),
            format!(
                "KeySchema: - AttributeName: {KEY} KeyType: HASH GlobalSecondaryIndexes: \
                 - IndexName: {PARKED_INDEX} KeySchema: - AttributeName: {PARKED} KeyType: HASH \
                 - AttributeName: {DUE_AT} KeyType: RANGE Projection: ProjectionType: INCLUDE \
                 NonKeyAttributes: [{}] TimeToLiveSpecification:",
                INDEXED.join(", ")
            ),
            format!("TimeToLiveSpecification: AttributeName: {EXPIRES_AT} Enabled: true"),
        ];
        for fragment in expected {
            assert!(
                table.contains(&fragment),
                "template.yaml's IdempotencyTable lacks `{fragment}`:\n{table}"
            );
        }
    }
}
