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
