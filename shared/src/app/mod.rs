//! The use cases: one module per function, named like it, over the ports only (no adapter is built or imported
//! here), and the services they share: [`ledger`] (exactly-once facts with their outbox) and [`resolve`]
//! (acquirer money finding its store order).

pub mod acquiring_callback;
pub mod console;
pub mod exchange_1c;
pub mod ledger;
pub mod outbox_sweeper;
pub mod refund_chargeback;
pub mod resolve;
pub mod statement_pull;
pub mod status_sync;
pub mod store_sync;
