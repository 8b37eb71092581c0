//! The ledger service: applies facts exactly once and announces every committed change (transactional outbox).

use std::time::Duration;

use tracing::{info, warn};

use crate::domain::{
    ApplyOutcome, DomainError, Order, OrderEvent, OrderId, OrderInfo, PaymentFact,
};
use crate::ports::{Commit, CommitError, EventPublisher, LedgerStore, PublishError, StoreError};

const MAX_ATTEMPTS: u32 = 12;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("order {order} stayed contended after {attempts} attempts")]
    Contention { order: String, attempts: u32 },
    /// The change is committed and its outbox row kept; a redelivery or the sweeper announces it.
    #[error("change {event_id} committed but not announced yet")]
    Publish {
        event_id: String,
        #[source]
        source: PublishError,
    },
    #[error(transparent)]
    Domain(#[from] DomainError),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Applied(Box<OrderEvent>),
    /// Seen before; any announcement still owed was made.
    Duplicate,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub found: usize,
    pub announced: usize,
    pub failed: usize,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Exponential backoff with jitter for optimistic-lock conflicts.
async fn backoff(attempt: u32) {
    let base = 5u64.saturating_mul(1 << attempt.min(6)).min(200);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    tokio::time::sleep(Duration::from_millis(base + nanos % (base + 1))).await;
}

pub struct Ledger<'a> {
    store: &'a dyn LedgerStore,
    events: &'a dyn EventPublisher,
}

impl<'a> Ledger<'a> {
    pub fn new(store: &'a dyn LedgerStore, events: &'a dyn EventPublisher) -> Self {
        Ledger { store, events }
    }

    /// Record a fact: apply it to its order exactly once, commit fact + order + outbox row in one transaction,
    /// then announce. A duplicate is a no-op that still makes any owed announcement.
    #[tracing::instrument(skip_all, fields(fact_id = %fact.id, order_id = %fact.order_id))]
    pub async fn record(&self, fact: &PaymentFact) -> Result<Recorded, LedgerError> {
        for attempt in 0..MAX_ATTEMPTS {
            let mut order = self
                .store
                .load_order(&fact.order_id)
                .await?
                .unwrap_or_else(|| Order::new(fact.order_id.clone()));
            let expected_version = order.version;
            let new_line = !order.lines.contains_key(&fact.payment);
            if order.apply(fact)? == ApplyOutcome::Duplicate {
                self.announce_owed(&fact.order_id, fact.id.as_str()).await?;
                return Ok(Recorded::Duplicate);
            }
            order.version = expected_version + 1;
            let event = OrderEvent::snapshot(fact.id.to_string(), &order, Some(fact), now_ms());
            let commit = Commit {
                expected_version,
                order: &order,
                fact: Some(fact),
                event: &event,
                new_payment: new_line.then_some(&fact.payment),
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    info!(
                        state = event.state.as_str(),
                        paid = event.paid,
                        refunded = event.refunded,
                        "fact applied"
                    );
                    self.announce(&event).await?;
                    return Ok(Recorded::Applied(Box::new(event)));
                }
                Err(CommitError::Duplicate) => {
                    self.announce_owed(&fact.order_id, fact.id.as_str()).await?;
                    return Ok(Recorded::Duplicate);
                }
                Err(CommitError::Conflict) => backoff(attempt).await,
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(LedgerError::Contention {
            order: fact.order_id.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Create or update what the store knows about an order (total, number, cancelled). Announces a change.
    pub async fn register_order(
        &self,
        id: &OrderId,
        info: OrderInfo,
    ) -> Result<Option<OrderEvent>, LedgerError> {
        for attempt in 0..MAX_ATTEMPTS {
            let mut order = self
                .store
                .load_order(id)
                .await?
                .unwrap_or_else(|| Order::new(id.clone()));
            let expected_version = order.version;
            if !order.set_info(info.clone()) {
                return Ok(None);
            }
            order.version = expected_version + 1;
            let event_id = format!("info#{}#{}", id, order.version);
            let event = OrderEvent::snapshot(event_id, &order, None, now_ms());
            let commit = Commit {
                expected_version,
                order: &order,
                fact: None,
                event: &event,
                new_payment: None,
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    self.announce(&event).await?;
                    return Ok(Some(event));
                }
                Err(CommitError::Duplicate | CommitError::Conflict) => backoff(attempt).await,
                Err(CommitError::Store(e)) => return Err(e.into()),
            }
        }
        Err(LedgerError::Contention {
            order: id.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Announce outbox rows older than `grace_ms` (changes whose announcement failed and was not redelivered).
    pub async fn sweep(&self, grace_ms: i64, limit: usize) -> Result<SweepReport, LedgerError> {
        let pending = self.store.list_pending(now_ms() - grace_ms, limit).await?;
        let mut report = SweepReport {
            found: pending.len(),
            ..SweepReport::default()
        };
        for event in &pending {
            match self.announce(event).await {
                Ok(()) => report.announced += 1,
                Err(e) => {
                    warn!(event_id = %event.event_id, error.message = %e, "sweep could not announce");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }

    async fn announce(&self, event: &OrderEvent) -> Result<(), LedgerError> {
        self.events
            .publish(event)
            .await
            .map_err(|source| LedgerError::Publish {
                event_id: event.event_id.clone(),
                source,
            })?;
        let order = OrderId::parse(event.order_id.clone())?;
        // A leftover outbox row only causes a second, harmless announcement (consumers keep the highest version).
        if let Err(e) = self.store.clear_pending(&order, &event.event_id).await {
            warn!(event_id = %event.event_id, error.message = %e, "announced, outbox row not cleared");
        }
        Ok(())
    }

    async fn announce_owed(&self, order: &OrderId, event_id: &str) -> Result<(), LedgerError> {
        if let Some(event) = self.store.pending_event(order, event_id).await? {
            info!(
                event_id,
                "announcing a change committed by an earlier delivery"
            );
            self.announce(&event).await?;
        }
        Ok(())
    }
}
