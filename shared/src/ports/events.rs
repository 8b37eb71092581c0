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
