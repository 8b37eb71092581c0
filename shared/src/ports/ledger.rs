//! The ledger itself: orders and their facts, committed exactly once together with everything a change must keep
//! true (the outbox row, the money's holder, the read models), and the outbox read back by the sweeper.

use async_trait::async_trait;

use super::StoreError;
use crate::domain::matching::{OpenOrder, UnmatchedReceipt};
use crate::domain::settlement::Taking;
use crate::domain::watch::WatchEntry;
use crate::domain::{DirectoryEntry, Order, OrderEvent, OrderId, PaymentFact, PaymentRef};

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The fact was committed before (by an earlier delivery or a concurrent one).
    #[error("fact already recorded")]
    Duplicate,
    /// The order's version moved on since it was read; re-read and retry.
    #[error("order changed concurrently")]
    Conflict,
    /// The money is already held by another order (or another line): the fact would count it twice.
    #[error("money already held elsewhere")]
    Claimed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Money an order takes hold of: `payment` is counted on the order's line `line` (its own line, or a line that
/// links it). A piece of money belongs to one order's line only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub payment: PaymentRef,
    pub line: PaymentRef,
}

/// One atomic change of the ledger: the fact (if any), the order at its new version, the outbox row for the event,
/// the payment → order index rows it takes or lets go of, and the acquirer takings it adds.
#[derive(Debug)]
pub struct Commit<'a> {
    /// Version the order had when read; 0 = the order did not exist.
    pub expected_version: u64,
    pub order: &'a Order,
    pub fact: Option<&'a PaymentFact>,
    pub event: &'a OrderEvent,
    /// Refused with [`CommitError::Claimed`] when another order or line holds the money.
    pub claims: Vec<Claim>,
    /// Money a voided line lets go of, so that the order it really belongs to can take it.
    pub releases: Vec<PaymentRef>,
    pub taking: Option<Taking>,
    /// A closed business day (older than yesterday, Moscow) whose takings this change alters: its kept totals are
    /// no longer current (`ports::Takings::cache_day`).
    pub stale_day: Option<(crate::domain::Source, String)>,
    /// Store directory entries this change makes true (an order the store described: its number and payments).
    pub directory: Vec<DirectoryEntry>,
    /// The read models this change keeps, decided by the ledger service and written in the same transaction.
    pub projections: Projections,
}

/// What the read models say about an order after a change: computed once, by the ledger service
/// (`app::ledger::projections`), so no adapter decides a rule of the domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projections {
    /// The order's row among the orders that can still receive money; `None` removes it.
    pub open: Option<OpenOrder>,
    /// Its row among the bank money that matched no order (`unmatched:` orders only).
    pub unmatched: UnmatchedRow,
    /// An `unmatched:` order whose acquirer money still waits for its reference: kept in the waiting list until
    /// [`super::StoreDirectory::forget_unresolved`] drops it.
    pub awaiting_reference: bool,
    /// Questions for status-sync this change opens (kept with their schedule) …
    pub watch_opened: Vec<WatchEntry>,
    /// … and the keys of the ones it closes (the money settled; see `domain::watch`).
    pub watch_closed: Vec<String>,
    /// The order's breaks for a person (`domain::attention`) this change shows or changes (kept from the first
    /// change that showed them) …
    pub attention: Vec<crate::domain::attention::Item>,
    /// … and the kinds it settles (their rows go).
    pub attention_closed: Vec<crate::domain::attention::Kind>,
}

/// An order's row among the unmatched receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnmatchedRow {
    /// Not an `unmatched:` order: no row.
    NotUnmatched,
    /// Money still to be allocated.
    Keep(UnmatchedReceipt),
    /// Allocated (or voided): the row goes.
    Drop,
}

#[async_trait]
pub trait LedgerStore: Send + Sync {
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
    /// One change, atomically: refused with [`CommitError::Conflict`] when the order's version moved on,
    /// [`CommitError::Duplicate`] when the fact was recorded before, [`CommitError::Claimed`] when another order
    /// holds the money.
    async fn commit(&self, commit: Commit<'_>) -> Result<(), CommitError>;
    /// Which order a payment belongs to (for refunds that name only the payment).
    async fn order_for_payment(&self, payment: &PaymentRef) -> Result<Option<OrderId>, StoreError>;
    /// Every fact recorded on an order (for moving money whose reference resolved later).
    async fn order_facts(&self, order: &OrderId) -> Result<Vec<PaymentFact>, StoreError>;
    /// The outbox row of a committed but not yet announced change.
    async fn pending_event(
        &self,
        order: &OrderId,
        event_id: &str,
    ) -> Result<Option<OrderEvent>, StoreError>;
    async fn clear_pending(&self, order: &OrderId, event_id: &str) -> Result<(), StoreError>;
    /// Outbox rows created before `created_before_ms`, oldest first.
    async fn list_pending(
        &self,
        created_before_ms: i64,
        limit: usize,
    ) -> Result<Vec<OrderEvent>, StoreError>;
}
