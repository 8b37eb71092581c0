pub mod dynamo;
pub mod memory;
pub mod sqs;
