//! Generated Lago data shaped like the list endpoints answer it: customers with their
//! Account id, subscriptions without an embedded customer (joined by
//! `external_customer_id`), invoices and credit notes embedding their customer.

use serde_json::{json, Value};

use crate::events;

const SUBSCRIPTION_STATUSES: [&str; 5] =
    ["active", "pending", "terminated", "canceled", "incomplete"];

/// Fees of each generated invoice: its line items in Salesforce.
pub const FEES_PER_INVOICE: usize = 2;

#[derive(Debug, Clone, Default)]
pub struct Dataset {
    pub customers: Vec<Value>,
    pub subscriptions: Vec<Value>,
    pub invoices: Vec<Value>,
    pub credit_notes: Vec<Value>,
}

/// The 15-character Account id of customer `i` (seed it in the Salesforce stand-in).
pub fn account_id(i: usize) -> String {
    format!("001{i:012}")
}

impl Dataset {
    /// `customers` customers, each linked to its own Account, and the other records
    /// spread over them round-robin. Subscriptions cycle through the five statuses (the
    /// list's default filter shows only `active`); every tenth invoice is a draft (never
    /// written); each invoice has [`FEES_PER_INVOICE`] fees, which only its own endpoint
    /// shows, not the list; credit note `i` belongs to the `i`-th finalized invoice (Lago credits
    /// finalized invoices only), which need not be in the list.
    pub fn generate(
        customers: usize,
        subscriptions: usize,
        invoices: usize,
        credit_notes: usize,
    ) -> Dataset {
        let customer = |i: usize| {
            let mut c = events::customer_object(Some(&account_id(i)));
            c["lago_id"] = json!(format!("cus-{i:06}"));
            c["external_id"] = json!(format!("ext-{i:06}"));
            c["name"] = json!(format!("Customer {i}"));
            c
        };
        let customers_list: Vec<Value> = (0..customers).map(customer).collect();
        let owner = |i: usize| customer(i % customers.max(1));
        let subscriptions = (0..subscriptions)
            .map(|i| {
                let status = SUBSCRIPTION_STATUSES[i % SUBSCRIPTION_STATUSES.len()];
                let mut s = events::object(
                    "subscription",
                    &format!("sub-{i:06}"),
                    None,
                    json!({ "status": status }),
                );
                let c = owner(i);
                let object = s.as_object_mut().expect("an object");
                object.remove("customer");
                object.insert("external_customer_id".into(), c["external_id"].clone());
                object.insert("lago_customer_id".into(), c["lago_id"].clone());
                s
            })
            .collect();
        let invoices = (0..invoices)
            .map(|i| {
                let status = if i % 10 == 9 { "draft" } else { "finalized" };
                let lago_id = format!("inv-{i:06}");
                let fees = events::fees(&lago_id, FEES_PER_INVOICE);
                let mut v = events::object(
                    "invoice",
                    &lago_id,
                    None,
                    json!({ "status": status, "fees": fees }),
                );
                v["customer"] = owner(i);
                v
            })
            .collect();
        let credit_notes = (0..credit_notes)
            .map(|i| {
                // Invoices 9, 19, 29, … are the drafts.
                let invoice = i + i / 9;
                let mut n = events::object(
                    "credit_note",
                    &format!("cn-{i:06}"),
                    None,
                    json!({ "lago_invoice_id": format!("inv-{invoice:06}"), "invoice_number": format!("ACME-inv-{invoice:06}") }),
                );
                n["customer"] = owner(i);
                n
            })
            .collect();
        Dataset {
            customers: customers_list,
            subscriptions,
            invoices,
            credit_notes,
        }
    }

    /// The invoices the backfill writes (not the drafts).
    pub fn finalized_invoices(&self) -> usize {
        self.invoices
            .iter()
            .filter(|i| i["status"] != "draft")
            .count()
    }

    pub fn len(&self) -> usize {
        self.customers.len()
            + self.subscriptions.len()
            + self.invoices.len()
            + self.credit_notes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the customer has subscriptions or invoices, which is what keeps lago-api
    /// from changing its currency (`Customer#editable?`).
    pub(crate) fn is_billed(&self, external_id: &str) -> bool {
        self.subscriptions
            .iter()
            .chain(&self.invoices)
            .any(|record| external_customer_id(record) == Some(external_id))
    }

    pub(crate) fn list(&self, collection: &str) -> &[Value] {
        match collection {
            "customers" => &self.customers,
            "subscriptions" => &self.subscriptions,
            "invoices" => &self.invoices,
            "credit_notes" => &self.credit_notes,
            _ => &[],
        }
    }

    pub(crate) fn list_mut(&mut self, collection: &str) -> &mut Vec<Value> {
        match collection {
            "customers" => &mut self.customers,
            "subscriptions" => &mut self.subscriptions,
            "invoices" => &mut self.invoices,
            "credit_notes" => &mut self.credit_notes,
            other => panic!("no Lago list {other}"),
        }
    }
}

/// The customer a record belongs to: subscriptions name it, invoices and credit notes
/// embed it.
pub(crate) fn external_customer_id(record: &Value) -> Option<&str> {
    record
        .get("external_customer_id")
        .or_else(|| record.get("customer").and_then(|c| c.get("external_id")))
        .and_then(Value::as_str)
}
