pub mod dynamo;
pub mod memory;
pub mod sqs;

use std::sync::Arc;

use crate::config::LedgerConfig;

/// The ledger's real adapters, as every function wires them: the DynamoDB table and the SQS events (and refunds)
/// queues.
pub fn aws_ledger(
    config: &LedgerConfig,
    aws: &aws_config::SdkConfig,
) -> (Arc<dynamo::DynamoLedgerStore>, Arc<sqs::SqsEventPublisher>) {
    (
        Arc::new(dynamo::DynamoLedgerStore::new(
            aws_sdk_dynamodb::Client::new(aws),
            &config.table,
        )),
        Arc::new(
            sqs::SqsEventPublisher::new(aws_sdk_sqs::Client::new(aws), &config.events_queue_url)
                .with_refunds_queue(config.refunds_queue_url.clone()),
        ),
    )
}
