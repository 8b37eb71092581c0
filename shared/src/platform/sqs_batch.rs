//! SQS FIFO batches with partial failures: each message names an order (it is an `OrderEvent`; the ledger has the
//! rest). Once a message of a group fails, the group's later messages in the batch are reported failed too,
//! unprocessed, so one order's work is never reordered; other groups go on.

use std::collections::HashSet;
use std::fmt::Display;
use std::future::Future;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tracing::warn;

use crate::domain::OrderId;

#[derive(serde::Deserialize)]
struct Work {
    order_id: String,
}

pub async fn for_each_order<F, Fut, E>(event: SqsEvent, work: F) -> SqsBatchResponse
where
    F: Fn(OrderId) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    let mut response = SqsBatchResponse::default();
    let mut failed_groups: HashSet<String> = HashSet::new();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let group = record
            .attributes
            .get("MessageGroupId")
            .cloned()
            .unwrap_or_default();
        if failed_groups.contains(&group) {
            response.add_failure(id);
            continue;
        }
        let order = record
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str::<Work>(b).ok())
            .and_then(|w| OrderId::parse(w.order_id).ok());
        let Some(order) = order else {
            warn!(message_id = %id, "unreadable message; it goes to the DLQ after its retries");
            failed_groups.insert(group);
            response.add_failure(id);
            continue;
        };
        if let Err(e) = work(order).await {
            warn!(message_id = %id, error.message = %e, "message failed; SQS retries it");
            failed_groups.insert(group);
            response.add_failure(id);
        }
    }
    response
}
