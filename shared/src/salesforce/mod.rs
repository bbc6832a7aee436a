//! The Salesforce REST client: one call per written event with a warm token (a PATCH, or
//! one Composite request for an invoice with its line items); sObject Collections and
//! describe for the backfill and the operator's check.

mod client;
mod collections;
mod composite;
mod describe;
mod error;
mod query;
mod session;

pub use client::{SalesforceClient, WriteReport};
pub use collections::{AccountUpdate, RecordResult, MAX_COLLECTION};
pub use composite::{DetailOf, DETAILS_PER_CALL};
pub use describe::{SchemaProblem, EXPECTED_SCHEMA};
pub use error::{Class, SalesforceError};
pub use query::QueryPage;
