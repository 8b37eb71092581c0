//! paysync's common crate, in floors (bottom to top; each imports only the floors below it):
//!
//! - [`domain`]: the pure payment domain (orders, facts, money, matching, settlement); no I/O, no async.
//! - [`formats`]: one parser module per external format, bytes in, domain types out.
//! - [`platform`]: the Lambda/AWS shell (configuration, telemetry, HTTP responses, SQS batches, the clock).
//! - [`ports`]: the async traits the use cases depend on, and their value types.
//! - [`adapters`]: the ports' implementations (DynamoDB, SQS, every outbound HTTP client).
//! - [`app`]: one use case per function, named like it, plus the ledger service they share.
//! - [`wiring`]: the composition root the seven `functions/*` mains and the end-to-end tests both build from.
//!
//! `ARCHITECTURE.md` draws the floors and follows one payment through them.

pub mod adapters;
pub mod app;
pub mod domain;
pub mod formats;
pub mod platform;
pub mod ports;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod wiring;
