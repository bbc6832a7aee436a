//! The Salesforce REST client: one PATCH per written event with a warm token.

mod client;
mod error;
mod session;

pub use client::{Credentials, SalesforceClient, WriteReport};
pub use error::{Class, SalesforceError};
