//! The events lambda-bench sends: the OpenAPI-derived samples of `samples/` (which carry
//! the stand-in's Account), each written event a new Lago object, so each is a real write.

use std::path::PathBuf;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One function binary and the webhook types it writes, as (type, sample body) pairs taken in turn.
pub struct Function {
    pub binary: &'static str,
    pub route: &'static str,
    /// The envelope's `object_type`.
    object_type: &'static str,
    types: &'static [(&'static str, &'static str)],
}

/// In this order: credit notes link to the invoices written before them, so each costs one call.
pub const FUNCTIONS: [Function; 4] = [
    Function {
        binary: "customer-webhook",
        route: "customer",
        object_type: "customer",
        types: &[
            ("customer.created", "customer.updated"),
            ("customer.updated", "customer.updated"),
        ],
    },
    Function {
        binary: "subscription-webhook",
        route: "subscription",
        object_type: "subscription",
        types: &[
            ("subscription.started", "subscription.started"),
            ("subscription.updated", "subscription.started"),
            ("subscription.terminated", "subscription.terminated"),
        ],
    },
    Function {
        binary: "invoice-webhook",
        route: "invoice",
        object_type: "invoice",
        types: &[
            ("invoice.created", "invoice.created"),
            ("invoice.generated", "invoice.created"),
            (
                "invoice.payment_status_updated",
                "invoice.payment_status_updated",
            ),
        ],
    },
    Function {
        binary: "credit-note-webhook",
        route: "credit-note",
        object_type: "credit_note",
        types: &[
            ("credit_note.created", "credit_note.created"),
            ("credit_note.generated", "credit_note.created"),
        ],
    },
];

/// 2025-03-01T00:00:00Z: event `i` carries this plus `i` seconds, so each is newer.
const BASE_EPOCH: i64 = 1_740_787_200;

impl Function {
    /// Written event `i`: the `i`-th type in turn, about the new object `bench-<type>-<i>`.
    pub fn written(&self, i: usize) -> Vec<u8> {
        let (webhook_type, sample_name) = self.types[i % self.types.len()];
        edit(sample_name, webhook_type, |object| {
            object["lago_id"] = json!(lago_id(self.object_type, i));
            set_updated_at(object, BASE_EPOCH + i as i64);
            if self.object_type == "credit_note" {
                object["lago_invoice_id"] = json!(lago_id("invoice", i));
            }
        })
    }

    /// Written event `i` again, carrying an older state than the one written.
    pub fn older(&self, i: usize) -> Vec<u8> {
        let (webhook_type, sample_name) = self.types[i % self.types.len()];
        edit(sample_name, webhook_type, |object| {
            object["lago_id"] = json!(lago_id(self.object_type, i));
            set_updated_at(object, BASE_EPOCH - 86_400);
            if self.object_type == "subscription" {
                object["status"] = json!("pending");
            }
            if self.object_type == "credit_note" {
                object["lago_invoice_id"] = json!(lago_id("invoice", i));
            }
        })
    }

    /// A writing type about a customer without a Salesforce Account id.
    pub fn unlinked(&self, i: usize) -> Vec<u8> {
        let (webhook_type, sample_name) = self.types[0];
        edit(sample_name, webhook_type, |object| {
            object["lago_id"] = json!(format!("unlinked-{i}"));
            let customer = if self.object_type == "customer" {
                object
            } else {
                &mut object["customer"]
            };
            customer["external_salesforce_id"] = Value::Null;
            customer["integration_customers"] = json!([]);
        })
    }

    /// An event of another family, which Lago sends to endpoints without an event filter.
    pub fn foreign(&self) -> Vec<u8> {
        let (webhook_type, sample_name) = if self.object_type == "invoice" {
            ("customer.updated", "customer.updated")
        } else {
            ("invoice.created", "invoice.created")
        };
        edit(sample_name, webhook_type, |_| {})
    }
}

fn lago_id(object_type: &str, i: usize) -> String {
    format!("bench-{object_type}-{i}")
}

fn set_updated_at(object: &mut Value, epoch: i64) {
    // Subscriptions have no updated_at; their status orders them.
    if object.get("updated_at").is_some() {
        let at = OffsetDateTime::from_unix_timestamp(epoch).expect("a valid time");
        object["updated_at"] = json!(at.format(&Rfc3339).expect("RFC 3339"));
    }
}

/// `samples/<sample_name>.json` as `webhook_type`, its object changed by `change`.
fn edit(sample_name: &str, webhook_type: &str, change: impl FnOnce(&mut Value)) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../samples")
        .join(format!("{sample_name}.json"));
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let mut body: Value = serde_json::from_slice(&text).expect("a JSON sample");
    body["webhook_type"] = json!(webhook_type);
    let object_type = body["object_type"]
        .as_str()
        .expect("object_type")
        .to_owned();
    change(&mut body[object_type]);
    serde_json::to_vec(&body).expect("JSON")
}
