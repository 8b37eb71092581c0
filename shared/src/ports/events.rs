//! Announcing committed ledger changes (the events queue; the refunds queue for refund work).

use async_trait::async_trait;

use super::BoxError;
use crate::domain::OrderEvent;

#[derive(Debug, thiserror::Error)]
#[error("event publishing failed")]
pub struct PublishError(#[source] pub BoxError);

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &OrderEvent) -> Result<(), PublishError>;
}

/// A message taken from the events queue by the consumer itself ([`EventsInbox::take`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxMessage {
    pub message_id: String,
    /// What [`EventsInbox::done`] deletes it by.
    pub receipt_handle: String,
    /// The announcement (`OrderEvent` JSON; its `order_id` is what store-sync reads).
    pub body: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the events queue did not answer")]
pub struct InboxError(#[source] pub BoxError);

/// More of the events queue than one invocation is handed. Lambda gives a FIFO queue's function at most 10
/// messages, while one store `batch` call carries the writes of 25 orders; store-sync takes more itself.
#[async_trait]
pub trait EventsInbox: Send + Sync {
    /// Up to `max` more messages, without waiting. Each stays hidden from every other consumer (and, FIFO, its
    /// order's later messages with it) until [`EventsInbox::done`] deletes it or its visibility timeout ends, when
    /// it comes back to be tried again.
    async fn take(&self, max: usize) -> Result<Vec<InboxMessage>, InboxError>;
    /// These are handled: delete them from the queue.
    async fn done(&self, messages: &[InboxMessage]) -> Result<(), InboxError>;
}
