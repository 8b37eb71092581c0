//! paysync's common crate: the pure payment domain, the ledger service and its ports, AWS adapters, one parser
//! module per external format, provider API clients and the handlers the thin `functions/*` binaries run.

pub mod adapters;
pub mod aws;
pub mod callback;
pub mod clients;
pub mod config;
pub mod domain;
pub mod exchange1c;
pub mod formats;
pub mod http;
pub mod ledger;
pub mod ports;
pub mod reconcile;
pub mod refund_chargeback;
pub mod refund_gateway;
pub mod resolve;
pub mod settlement;
pub mod sqs_batch;
pub mod statement;
pub mod statement_pull;
pub mod store_sync;
pub mod sweeper;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
