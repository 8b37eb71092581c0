//! The Lambda/AWS shell around the use cases: configuration read once at start-up, tracing, HTTP response helpers
//! for the Function URLs, the SQS partial-batch rule and the clock.

pub mod aws;
pub mod clock;
pub mod config;
pub mod http_response;
pub mod retry;
pub mod runtime;
pub mod sqs_batch;
pub mod telemetry;
