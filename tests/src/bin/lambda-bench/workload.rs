//! The events lambda-bench sends: the OpenAPI-derived samples of `samples/` (which carry
//! the stand-in's Account), each written event a new Lago object, so each is a real write;
//! and, for `--cost`, later states of those objects, customers linked only through Lago's
//! Salesforce integration, and the Lago API's records that the lookups read.

use std::path::PathBuf;

use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// One function binary and the webhook types it writes, as (type, sample body) pairs taken in turn.
pub struct Function {
    pub binary: &'static str,
    pub route: &'static str,
    /// The envelope's `object_type`.
    pub object_type: &'static str,
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
pub const BASE_EPOCH: i64 = 1_740_787_200;

impl Function {
    /// Written event `i`: the `i`-th type in turn, about the new object `bench-<type>-<i>`.
    pub fn written(&self, i: usize) -> Vec<u8> {
        self.state(i, i, BASE_EPOCH + i as i64)
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

    /// Object `i` in the state of its `kind`-th webhook type, updated at `epoch` seconds.
    pub fn state(&self, i: usize, kind: usize, epoch: i64) -> Vec<u8> {
        self.build(i, kind, |object| set_updated_at(object, epoch))
    }

    /// Object `i` in a state newer than `state(i, 0, …)` when `epoch` is later: for
    /// subscriptions, which have no `updated_at`, the terminated one.
    pub fn later(&self, i: usize, epoch: i64) -> Vec<u8> {
        let kind = if self.object_type == "subscription" {
            2
        } else {
            1
        };
        self.state(i, kind, epoch)
    }

    /// Object `i` (its first webhook type, updated at `epoch`) of the customer `customer`,
    /// linked to the stand-in's Account only through Lago's Salesforce integration: a
    /// customer event carries the integration; the other families embed the customer
    /// without it, as Lago does, so only Lago's API ([`lago_customer`]) tells the Account.
    pub fn integration_linked(&self, i: usize, customer: &str, epoch: i64) -> Vec<u8> {
        let is_customer = self.object_type == "customer";
        self.build(i, 0, |object| {
            set_updated_at(object, epoch);
            let embedded = if is_customer {
                object
            } else {
                &mut object["customer"]
            };
            embedded["lago_id"] = json!(format!("{customer}-lago-id"));
            embedded["external_id"] = json!(customer);
            embedded["external_salesforce_id"] = Value::Null;
            embedded["integration_customers"] = if is_customer {
                integration_link()
            } else {
                json!([])
            };
        })
    }

    /// Subscription `i` under the external id `external_id`, `active`, as the event type
    /// `kind` (0: started, 1: updated): two such events have the same status, which does
    /// not order them, so the second is written from Lago's current state.
    pub fn subscription_as(&self, i: usize, kind: usize, external_id: &str) -> Vec<u8> {
        assert_eq!(self.object_type, "subscription");
        self.build(i, kind, |object| {
            object["external_id"] = json!(external_id);
            object["status"] = json!("active");
        })
    }

    /// `body` with its credit note linked to invoice `invoice` (other families: unchanged).
    pub fn with_invoice(&self, body: Vec<u8>, invoice: usize) -> Vec<u8> {
        if self.object_type != "credit_note" {
            return body;
        }
        let mut body: Value = serde_json::from_slice(&body).expect("a JSON body");
        body["credit_note"]["lago_invoice_id"] = json!(lago_id("invoice", invoice));
        serde_json::to_vec(&body).expect("JSON")
    }

    /// Object `i` as its `kind`-th webhook type, changed by `change`.
    fn build(&self, i: usize, kind: usize, change: impl FnOnce(&mut Value)) -> Vec<u8> {
        let (webhook_type, sample_name) = self.types[kind % self.types.len()];
        edit(sample_name, webhook_type, |object| {
            object["lago_id"] = json!(lago_id(self.object_type, i));
            if self.object_type == "credit_note" {
                object["lago_invoice_id"] = json!(lago_id("invoice", i));
            }
            change(object);
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

/// The customer `external_id` as Lago's API shows it: linked to the stand-in's Account
/// through the Salesforce integration.
pub fn lago_customer(external_id: &str) -> Value {
    let mut customer = sync_testkit::events::customer_object(None);
    customer["lago_id"] = json!(format!("{external_id}-lago-id"));
    customer["external_id"] = json!(external_id);
    customer["integration_customers"] = integration_link();
    customer
}

/// Subscription `i` under `external_id`, `active`, as Lago's API shows it (no customer
/// embedded; the subscription show route finds it by external id and status).
pub fn lago_subscription(i: usize, external_id: &str) -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/subscription.started.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let body: Value = serde_json::from_slice(&text).expect("a JSON sample");
    let mut subscription = body["subscription"].clone();
    let customer = subscription["customer"]["external_id"].clone();
    subscription
        .as_object_mut()
        .expect("an object")
        .remove("customer");
    subscription["lago_id"] = json!(lago_id("subscription", i));
    subscription["external_id"] = json!(external_id);
    subscription["external_customer_id"] = customer;
    subscription["status"] = json!("active");
    subscription
}

fn integration_link() -> Value {
    json!([{
        "type": "salesforce",
        "external_customer_id": sync_testkit::events::ACCOUNT,
        "sync_with_provider": true,
    }])
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
