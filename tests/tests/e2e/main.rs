//! The end-to-end tests, one test binary (one link instead of ten on 2 cores): real handlers and SDK clients on
//! moto, local fakes of the providers, the bank and the store. `make test` starts moto and sets `AWS_ENDPOINT_URL`.
//! `security_logs.rs` stays a binary of its own: it captures the process's logs, which the other tests would share.

mod acquiring;
mod cases;
mod console;
mod console_browser;
mod exchange_1c;
mod exchange_1c_proxy;
mod faults;
mod iam;
mod process_kill;
mod refund_chargeback;
mod statement_pull;
mod status_sync;
mod store_sync;
