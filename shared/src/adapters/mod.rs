//! The ports' implementations: DynamoDB and SQS through the AWS SDK, and every outbound HTTP client. An adapter
//! imports domain, formats, platform and ports, never a use case (`app`).

pub mod dynamo;
pub mod http;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod sqs;
