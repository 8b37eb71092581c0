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

/// The order a message names (`{"order_id": …}`), if it is readable.
pub fn order_of(body: &str) -> Option<OrderId> {
    serde_json::from_str::<Work>(body)
        .ok()
        .and_then(|w| OrderId::parse(w.order_id).ok())
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
        let order = record.body.as_deref().and_then(order_of);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;

    fn batch(messages: &[(&str, &str, &str)]) -> SqsEvent {
        let records: Vec<_> = messages
            .iter()
            .map(|(id, group, body)| {
                json!({"messageId": id, "body": body, "attributes": {"MessageGroupId": group}})
            })
            .collect();
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn order(id: &str) -> String {
        json!({ "order_id": id }).to_string()
    }

    fn failed(r: &SqsBatchResponse) -> Vec<String> {
        r.batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect()
    }

    #[tokio::test]
    async fn a_failed_message_fails_the_rest_of_its_group_unprocessed_and_other_groups_go_on() {
        let seen = Mutex::new(Vec::new());
        let event = batch(&[
            ("m1", "A", &order("A")),
            ("m2", "B", &order("B")),
            ("m3", "A", &order("A")),
            ("m4", "B", &order("B")),
        ]);
        let out = for_each_order(event, |o| {
            let seen = &seen;
            let n = seen.lock().map(|s| s.len()).unwrap_or_default();
            async move {
                seen.lock().unwrap().push(o.to_string());
                // The first message of A fails.
                if n == 0 {
                    Err("store busy")
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(failed(&out), ["m1", "m3"], "A's later message is held back");
        assert_eq!(
            *seen.lock().unwrap(),
            ["A", "B", "B"],
            "m3 was never processed"
        );
    }

    #[tokio::test]
    async fn an_unreadable_message_fails_alone_with_its_group_and_is_not_processed() {
        let calls = Mutex::new(0);
        let event = batch(&[
            ("m1", "A", "not json"),
            ("m2", "A", &order("A")),
            ("m3", "B", &order("B")),
        ]);
        let out = for_each_order(event, |_| {
            *calls.lock().unwrap() += 1;
            async { Ok::<(), &str>(()) }
        })
        .await;
        assert_eq!(failed(&out), ["m1", "m2"]);
        assert_eq!(*calls.lock().unwrap(), 1, "only B's message ran");
    }
}
