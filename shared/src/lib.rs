//! Everything the four webhook functions share: each function binary only picks its
//! [`Family`] and calls [`entrypoint::run`].
//!
//! Reading order: [`lago`] (what Lago sends), [`signature`], [`mapping`] (Lago object in,
//! Salesforce record out), [`salesforce`], [`store`] (idempotency and ordering),
//! [`secrets`], [`pipeline`] (the steps and the answers of the contract), [`entrypoint`],
//! [`redrive`] (the scheduled retry of stored events), [`transport`] (the one HTTP stack),
//! [`lago_api`] (Lago's REST API: the functions' reads of one object, the operator
//! commands' lists) and [`backfill`] (the initial sync).

// The Lambda runtime's layered service future is deeper than the default limit allows.
#![recursion_limit = "256"]

pub mod backfill;
pub mod clock;
pub mod config;
pub mod entrypoint;
pub mod family;
pub mod lago;
pub mod lago_api;
pub mod mapping;
pub mod outbound;
pub mod pipeline;
pub mod redrive;
pub mod salesforce;
pub mod secrets;
pub mod signature;
pub mod store;
pub mod telemetry;
pub mod transport;

pub use family::Family;
