//! SQS FIFO adapter of the events port: one message group per order, deduplicated by event id.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use sha2::{Digest, Sha256};

use crate::domain::OrderEvent;
use crate::ports::{EventPublisher, PublishError};

pub struct SqsEventPublisher {
    client: Client,
    queue_url: String,
    refunds_queue_url: Option<String>,
}

impl SqsEventPublisher {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsEventPublisher {
            client,
            queue_url: queue_url.into(),
            refunds_queue_url: None,
        }
    }

    /// Changes that leave refund work are announced on this queue too (for `refund-chargeback`).
    pub fn with_refunds_queue(mut self, url: Option<String>) -> Self {
        self.refunds_queue_url = url;
        self
    }

    async fn send(
        &self,
        queue_url: &str,
        event: &OrderEvent,
        body: &str,
    ) -> Result<(), PublishError> {
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .message_group_id(sqs_safe_id(&event.order_id))
            // Always hashed: event ids can exceed 128 characters.
            .message_deduplication_id(hex::encode(Sha256::digest(event.event_id.as_bytes())))
            .send()
            .await
            .map_err(|e| PublishError(Box::new(e.into_service_error())))?;
        Ok(())
    }
}

/// SQS allows only ASCII alphanumerics and punctuation, up to 128 characters, in group and dedup ids. Order ids
/// from 1C may hold Cyrillic, so anything else is replaced by its SHA-256.
pub fn sqs_safe_id(id: &str) -> String {
    let ok = !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        id.to_owned()
    } else {
        hex::encode(Sha256::digest(id.as_bytes()))
    }
}

#[async_trait]
impl EventPublisher for SqsEventPublisher {
    async fn publish(&self, event: &OrderEvent) -> Result<(), PublishError> {
        let body = serde_json::to_string(event).map_err(|e| PublishError(Box::new(e)))?;
        self.send(&self.queue_url, event, &body).await?;
        // Both sends share the dedup id: an outbox re-send after a partial failure adds nothing within SQS's window,
        // and consumers keep the highest version after it.
        if let Some(refunds) = &self.refunds_queue_url {
            if event.has_refund_work() {
                self.send(refunds, event, &body).await?;
            }
        }
        Ok(())
    }
}

/// The events queue read by its consumer itself ([`crate::ports::EventsInbox`]): `ReceiveMessage` (10 at a time,
/// no wait; the queue's own visibility timeout) and `DeleteMessageBatch`. FIFO still holds: SQS returns no message
/// of an order whose earlier message is in flight, wherever it is.
pub struct SqsEventsInbox {
    client: Client,
    queue_url: String,
}

impl SqsEventsInbox {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        SqsEventsInbox {
            client,
            queue_url: queue_url.into(),
        }
    }
}

fn inbox_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> crate::ports::InboxError {
    crate::ports::InboxError(Box::new(e))
}

#[async_trait]
impl crate::ports::EventsInbox for SqsEventsInbox {
    async fn take(
        &self,
        max: usize,
    ) -> Result<Vec<crate::ports::InboxMessage>, crate::ports::InboxError> {
        let mut taken = Vec::new();
        while taken.len() < max {
            let want = (max - taken.len()).min(10);
            let got = self
                .client
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(i32::try_from(want).unwrap_or(10))
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| inbox_error(e.into_service_error()))?;
            let messages = got.messages.unwrap_or_default();
            let empty = messages.is_empty();
            taken.extend(messages.into_iter().filter_map(|m| {
                Some(crate::ports::InboxMessage {
                    message_id: m.message_id?,
                    receipt_handle: m.receipt_handle?,
                    body: m.body.unwrap_or_default(),
                })
            }));
            if empty {
                break;
            }
        }
        Ok(taken)
    }

    async fn done(
        &self,
        messages: &[crate::ports::InboxMessage],
    ) -> Result<(), crate::ports::InboxError> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&m.receipt_handle)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(inbox_error)?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| inbox_error(e.into_service_error()))?;
            if let Some(f) = out.failed.first() {
                return Err(crate::ports::InboxError(
                    format!(
                        "delete refused: {} {}",
                        f.code,
                        f.message.as_deref().unwrap_or("")
                    )
                    .into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_are_kept_when_sqs_accepts_them_and_hashed_otherwise() {
        assert_eq!(sqs_safe_id("1001"), "1001");
        assert_eq!(sqs_safe_id("ЦБ-0001").len(), 64);
        assert_eq!(sqs_safe_id("a b").len(), 64);
        assert_eq!(sqs_safe_id(&"x".repeat(129)).len(), 64);
    }
}
