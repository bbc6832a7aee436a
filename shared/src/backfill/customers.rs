//! The customers by `external_id`, for subscriptions: Lago's subscription list does not
//! embed the customer (lago-webhooks.md §6), whose Account id the mapping needs. Filled
//! while the Accounts are written; read again only when that happened in an earlier run.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::lago_api::{LagoApi, LagoApiError, Listing};

/// What the mapping reads from a customer to find its Account.
const KEPT_FIELDS: [&str; 4] = [
    "lago_id",
    "external_id",
    "external_salesforce_id",
    "integration_customers",
];

#[derive(Default)]
pub(super) struct Directory {
    by_external_id: HashMap<String, Value>,
    /// The next page expected for the directory to be complete.
    next_page: u32,
    complete: bool,
}

impl Directory {
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Takes a page of the customers list; complete once pages 1..=last were all seen.
    pub fn add_page(&mut self, page: u32, items: &[Value], last: bool) {
        if page != self.next_page.max(1) {
            return;
        }
        for customer in items {
            if let Some(id) = customer.get("external_id").and_then(Value::as_str) {
                let kept: Map<String, Value> = KEPT_FIELDS
                    .iter()
                    .filter_map(|k| customer.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect();
                self.by_external_id
                    .insert(id.to_owned(), Value::Object(kept));
            }
        }
        self.next_page = page + 1;
        self.complete = last;
    }

    pub async fn load(
        &mut self,
        lago: &LagoApi,
        customer: Option<&str>,
        per_page: u32,
    ) -> Result<(), LagoApiError> {
        *self = Directory::default();
        let mut page = Some(1);
        while let Some(number) = page {
            let read = lago
                .page(Listing::Customers, number, per_page, customer)
                .await?;
            self.add_page(number, &read.items, read.next_page.is_none());
            page = read.next_page;
        }
        Ok(())
    }

    /// Embeds the subscription's customer, as the webhooks carry it.
    pub fn embed(&self, subscription: &mut Value) {
        let customer = subscription
            .get("external_customer_id")
            .and_then(Value::as_str)
            .and_then(|id| self.by_external_id.get(id))
            .cloned();
        if let (Some(customer), Some(object)) = (customer, subscription.as_object_mut()) {
            object.insert("customer".to_owned(), customer);
        }
    }
}
