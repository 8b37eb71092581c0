//! The ledger service: applies facts exactly once and announces every committed change (transactional outbox).

use std::time::Duration;

use tracing::{info, warn};

use std::collections::BTreeMap;

use crate::domain::attention;
use crate::domain::matching::{OpenOrder, UnmatchedReceipt};
use crate::domain::settlement::Taking;
use crate::domain::watch::{self, Watch, WatchEntry};
use crate::domain::{
    link_source, ApplyOutcome, DomainError, Order, OrderEvent, OrderId, OrderInfo, PaymentFact,
    PaymentLine, PaymentRef, Source,
};
use crate::platform::clock::now_ms;
use crate::platform::retry::Backoff;
use crate::ports::{
    Claim, Commit, CommitError, EventPublisher, LedgerStore, Projections, PublishError, StoreError,
    UnmatchedRow,
};

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

/// Pauses between optimistic-lock conflicts: 5 ms doubling to 200 ms, with jitter, [`MAX_ATTEMPTS`] in all.
const CONFLICT_BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(5),
    max: Duration::from_millis(200),
    attempts: MAX_ATTEMPTS as usize,
};

async fn backoff(attempt: u32) {
    if let Some(pause) = CONFLICT_BACKOFF.pause(attempt as usize) {
        tokio::time::sleep(pause).await;
    }
}

/// The read models after a change of `order` (written by the store in the change's transaction): its open-orders
/// row, its unmatched-receipt row when it is an `unmatched:` order, and whether its acquirer money still waits for
/// its reference.
///
/// `watched` are the questions the order had before the change (`domain::watch::watches`); the ones the change
/// opens are kept from `now_ms`, the ones it closes are dropped.
pub fn projections(order: &Order, before: &Before, now_ms: i64) -> Projections {
    let unmatched = order.id.is_unmatched();
    let (opened, closed) = watch::changed_since(&before.watched, order);
    let (attention, attention_closed) = attention::changed(&before.breaks, &attention::of(order));
    Projections {
        attention,
        attention_closed,
        watch_opened: opened
            .into_iter()
            .map(|w| WatchEntry::new(w, now_ms))
            .collect(),
        watch_closed: closed,
        open: OpenOrder::of(order),
        unmatched: match (unmatched, UnmatchedReceipt::of(order)) {
            (false, _) => UnmatchedRow::NotUnmatched,
            (true, Some(receipt)) => UnmatchedRow::Keep(receipt),
            (true, None) => UnmatchedRow::Drop,
        },
        awaiting_reference: unmatched && !order.awaiting_reference().is_empty(),
    }
}

/// What the read models said of an order before a change: its questions for status-sync and its breaks for a
/// person.
#[derive(Debug, Default)]
pub struct Before {
    watched: BTreeMap<String, Watch>,
    breaks: attention::Breaks,
}

impl Before {
    pub fn of(order: &Order) -> Self {
        Before {
            watched: watch::watches(order),
            breaks: attention::of(order),
        }
    }
}

/// Money a fact makes its line hold (a new line's own ref; a bank payment it links) and money a void lets go of.
fn claims(
    fact: &PaymentFact,
    before: Option<&PaymentLine>,
    after: Option<&PaymentLine>,
) -> (Vec<Claim>, Vec<PaymentRef>) {
    let Some(after) = after else {
        return (Vec::new(), Vec::new());
    };
    let mut claims = Vec::new();
    if before.is_none() {
        claims.push(Claim {
            payment: fact.payment.clone(),
            line: fact.payment.clone(),
        });
    }
    if let Some(linked) = fact
        .links
        .as_deref()
        .filter(|l| link_source(l) == Some(Source::Bank))
    {
        if !before.is_some_and(|b| b.linked.contains(linked)) {
            if let Ok(payment) = PaymentRef::try_from(linked.to_owned()) {
                claims.push(Claim {
                    payment,
                    line: fact.payment.clone(),
                });
            }
        }
    }
    let mut releases = Vec::new();
    if after.voided && !before.is_some_and(|b| b.voided) {
        releases.push(fact.payment.clone());
        releases.extend(
            after
                .linked
                .iter()
                .filter(|l| link_source(l) == Some(Source::Bank))
                .filter_map(|l| PaymentRef::try_from(l.clone()).ok()),
        );
    }
    // A fact that creates and voids a line at once holds nothing (and one transaction cannot touch an item twice).
    claims.retain(|c| !releases.contains(&c.payment));
    (claims, releases)
}

/// The day a taking alters when it is older than yesterday (Moscow): a late fact, whose day's kept totals must be
/// computed again. Yesterday's and today's totals are never kept (the console reads them live).
fn closed_day(taking: Option<&Taking>, now_ms: i64) -> Option<(Source, String)> {
    let t = taking?;
    let yesterday = crate::domain::settlement::business_day(now_ms - 86_400_000);
    (t.day < yesterday).then(|| (t.acquirer, t.day.clone()))
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
            let before = order.lines.get(&fact.payment).cloned();
            let before_change = Before::of(&order);
            if order.apply(fact)? == ApplyOutcome::Duplicate {
                self.announce_owed(&fact.order_id, fact.id.as_str()).await?;
                return Ok(Recorded::Duplicate);
            }
            attention::mark(&mut order, now_ms());
            order.version = expected_version + 1;
            let event = OrderEvent::snapshot(fact.id.to_string(), &order, Some(fact), now_ms());
            let after = order.lines.get(&fact.payment);
            let (claims, releases) = claims(fact, before.as_ref(), after);
            let mut commit = Commit {
                expected_version,
                order: &order,
                fact: Some(fact),
                event: &event,
                claims,
                releases,
                stale_day: None,
                taking: crate::domain::settlement::taking(fact, before.as_ref(), after),
                directory: Vec::new(),
                projections: projections(&order, &before_change, now_ms()),
            };
            commit.stale_day = closed_day(commit.taking.as_ref(), now_ms());
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
                Err(CommitError::Claimed) => {
                    info!("money already held by another order or line; not counted again");
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
            let before_change = Before::of(&order);
            if !order.set_info(info.clone()) {
                return Ok(None);
            }
            attention::mark(&mut order, now_ms());
            order.version = expected_version + 1;
            let event_id = format!("info#{}#{}", id, order.version);
            let event = OrderEvent::snapshot(event_id, &order, None, now_ms());
            let directory = order.info.as_ref().map_or_else(Vec::new, |i| {
                crate::domain::reference::directory_entries(
                    id.as_str(),
                    i.number.as_deref(),
                    &i.details.payments,
                )
            });
            let commit = Commit {
                expected_version,
                order: &order,
                fact: None,
                event: &event,
                claims: Vec::new(),
                releases: Vec::new(),
                taking: None,
                stale_day: None,
                directory,
                projections: projections(&order, &before_change, now_ms()),
            };
            match self.store.commit(commit).await {
                Ok(()) => {
                    self.announce(&event).await?;
                    return Ok(Some(event));
                }
                Err(CommitError::Duplicate | CommitError::Conflict | CommitError::Claimed) => {
                    backoff(attempt).await
                }
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::{Currency, FactId, FactKind, PaymentMethod};

    /// A store whose first `conflicts` commits lose the optimistic lock (another writer got there first).
    struct Contended {
        inner: Arc<MemoryLedgerStore>,
        conflicts: AtomicUsize,
        commits: AtomicUsize,
    }

    impl Contended {
        fn new(conflicts: usize) -> Self {
            Contended {
                inner: Arc::new(MemoryLedgerStore::default()),
                conflicts: AtomicUsize::new(conflicts),
                commits: AtomicUsize::new(0),
            }
        }
    }

    #[async_trait]
    impl LedgerStore for Contended {
        async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError> {
            self.inner.load_order(id).await
        }
        async fn commit(&self, commit: Commit<'_>) -> Result<(), CommitError> {
            self.commits.fetch_add(1, Ordering::SeqCst);
            let left = self.conflicts.load(Ordering::SeqCst);
            if left > 0 {
                self.conflicts.store(left - 1, Ordering::SeqCst);
                return Err(CommitError::Conflict);
            }
            self.inner.commit(commit).await
        }
        async fn order_for_payment(&self, p: &PaymentRef) -> Result<Option<OrderId>, StoreError> {
            self.inner.order_for_payment(p).await
        }
        async fn order_facts(&self, order: &OrderId) -> Result<Vec<PaymentFact>, StoreError> {
            self.inner.order_facts(order).await
        }
        async fn pending_event(
            &self,
            order: &OrderId,
            event_id: &str,
        ) -> Result<Option<OrderEvent>, StoreError> {
            self.inner.pending_event(order, event_id).await
        }
        async fn clear_pending(&self, order: &OrderId, event_id: &str) -> Result<(), StoreError> {
            self.inner.clear_pending(order, event_id).await
        }
        async fn list_pending(
            &self,
            before: i64,
            limit: usize,
        ) -> Result<Vec<OrderEvent>, StoreError> {
            self.inner.list_pending(before, limit).await
        }
    }

    fn paid(id: &str, order: &str, payment: PaymentRef, amount: i64) -> PaymentFact {
        PaymentFact::new(
            FactId::new(Source::Tbank, id).unwrap(),
            OrderId::parse(order).unwrap(),
            payment,
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount },
            1,
        )
        .unwrap()
    }

    fn card(id: &str) -> PaymentRef {
        PaymentRef::new(Source::Tbank, id).unwrap()
    }

    #[tokio::test]
    async fn a_conflict_is_retried_on_the_order_read_again_and_committed_once() {
        let store = Contended::new(3);
        let events = MemoryPublisher::default();
        let ledger = Ledger::new(&store, &events);
        let out = ledger
            .record(&paid("p1#CONFIRMED", "7001", card("p1"), 150_000))
            .await
            .unwrap();
        assert!(matches!(out, Recorded::Applied(_)));
        assert_eq!(
            store.commits.load(Ordering::SeqCst),
            4,
            "3 conflicts, then the commit"
        );
        assert_eq!(events.events().len(), 1, "announced once");
        let order = store.inner.order("7001").unwrap();
        assert_eq!((order.version, order.totals().paid), (1, 150_000));
    }

    #[tokio::test]
    async fn contention_beyond_the_attempts_is_an_error_and_nothing_is_announced() {
        let store = Contended::new(usize::MAX);
        let events = MemoryPublisher::default();
        let err = Ledger::new(&store, &events)
            .record(&paid("p1#CONFIRMED", "7001", card("p1"), 150_000))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                LedgerError::Contention {
                    attempts: MAX_ATTEMPTS,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(store.commits.load(Ordering::SeqCst), MAX_ATTEMPTS as usize);
        assert!(events.events().is_empty());
        assert!(store.inner.order("7001").is_none());
    }

    #[tokio::test]
    async fn money_another_order_holds_is_not_counted_again() {
        let store = MemoryLedgerStore::default();
        let events = MemoryPublisher::default();
        let ledger = Ledger::new(&store, &events);
        ledger
            .record(&paid("p1#CONFIRMED", "7001", card("p1"), 150_000))
            .await
            .unwrap();
        // The same acquirer payment booked again under another order (a misdirected notification).
        let again = ledger
            .record(&paid("p1#CONFIRMED-elsewhere", "7002", card("p1"), 150_000))
            .await
            .unwrap();
        assert!(matches!(again, Recorded::Duplicate));
        assert!(
            store.order("7002").is_none(),
            "the second order holds nothing"
        );
        assert_eq!(store.order("7001").unwrap().totals().paid, 150_000);
        assert_eq!(events.events().len(), 1);
    }

    #[tokio::test]
    async fn a_redelivered_fact_announces_what_the_first_delivery_still_owed() {
        let store = MemoryLedgerStore::default();
        let events = MemoryPublisher::default();
        let ledger = Ledger::new(&store, &events);
        let fact = paid("p1#CONFIRMED", "7001", card("p1"), 150_000);
        events.set_failing(true);
        assert!(matches!(
            ledger.record(&fact).await,
            Err(LedgerError::Publish { .. })
        ));
        assert_eq!(store.outbox_len(), 1, "committed, announcement owed");
        events.set_failing(false);
        assert!(matches!(
            ledger.record(&fact).await.unwrap(),
            Recorded::Duplicate
        ));
        assert_eq!(events.events().len(), 1, "the owed event, once");
        assert_eq!(store.outbox_len(), 0);
        // A third delivery owes nothing.
        ledger.record(&fact).await.unwrap();
        assert_eq!(events.events().len(), 1);
        assert_eq!(
            store.order("7001").unwrap().totals().paid,
            150_000,
            "counted once"
        );
    }

    #[test]
    fn projections_follow_the_order() {
        let mut order = Order::new(OrderId::parse("7001").unwrap());
        order.set_info(OrderInfo::new(Some("7001".into()), 150_000, Currency::RUB));
        let p = projections(&order, &Before::default(), 1);
        assert!(p.open.is_some(), "an unpaid order can receive money");
        assert_eq!(p.unmatched, UnmatchedRow::NotUnmatched);
        assert!(!p.awaiting_reference);
        order
            .apply(&paid("p1#CONFIRMED", "7001", card("p1"), 150_000))
            .unwrap();
        assert!(
            projections(&order, &Before::default(), 1).open.is_none(),
            "a paid order takes no more"
        );
    }
}
