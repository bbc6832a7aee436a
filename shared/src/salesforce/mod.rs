//! The Salesforce REST client: one PATCH per written event with a warm token; sObject
//! Collections and describe for the backfill and the operator's check.

mod client;
mod collections;
mod describe;
mod error;
mod session;

pub use client::{SalesforceClient, WriteReport};
pub use collections::{AccountUpdate, RecordResult, MAX_COLLECTION};
pub use describe::{SchemaProblem, EXPECTED_SCHEMA};
pub use error::{Class, SalesforceError};
