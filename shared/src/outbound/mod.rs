//! Salesforce → Lago (contract §8): an Account flagged "Bill with Lago" reaches the project
//! as a Salesforce outbound message and becomes (or updates) its Lago customer. This module
//! reads the message and maps the Account; [`crate::pipeline`] pushes it through the same
//! record guard, store and redrive as the webhooks.

mod customer;
pub mod push;
pub mod soap;

pub use customer::{customer_push, CustomerPush};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The family name of these events in the store, the redrive and the metrics.
pub const FAMILY: &str = "account";
/// The `webhook_type` they are stored with.
pub const EVENT_TYPE: &str = "salesforce.account";

/// Equal in constant time, whatever the lengths: the digests are compared, not the values.
pub fn same_secret(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// An org id as Salesforce sends it (18 characters) against the configured one (15 or 18):
/// the 15-character prefix is the id, the last three only its case-safe checksum.
pub fn same_org(sent: &str, configured: &str) -> bool {
    let prefix = |id: &str| id.get(..15).unwrap_or(id).to_owned();
    same_secret(&prefix(sent), &prefix(configured))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_orgs_compare_exactly() {
        assert!(same_secret("tok", "tok"));
        assert!(!same_secret("tok", "tok2"));
        assert!(!same_secret("", "tok"));
        assert!(same_org("00D000000000001AAA", "00D000000000001"));
        assert!(same_org("00D000000000001AAA", "00D000000000001AAA"));
        assert!(!same_org("00D000000000002AAA", "00D000000000001"));
        assert!(!same_org("00D00000000000", "00D000000000001"));
    }
}
