//! Read models the ledger keeps in the same transaction as every change ([`super::Projections`]), each read by the
//! use case it exists for: statement matching and 1C allocation ([`OrderViews`]), acquirer payout reconciliation
//! ([`Takings`]), 1C's `query` feed ([`Feed1c`]), the store's directory of orders and payments
//! ([`StoreDirectory`]) and the questions status-sync asks the acquirers ([`Watchlist`]).

use async_trait::async_trait;

use super::StoreError;
use crate::domain::attention::{Item, Kind};
use crate::domain::daybook::DayTotals;
use crate::domain::matching::{OpenOrder, UnmatchedReceipt};
use crate::domain::settlement::{SettlementReport, Taking};
use crate::domain::watch::WatchEntry;
use crate::domain::{DirectoryEntry, Order, OrderEvent, OrderId, PaymentFact, Source};

/// What bank money can be matched to, and the money that matched nothing.
#[async_trait]
pub trait OrderViews: Send + Sync {
    /// Orders that can still receive money.
    async fn open_orders(&self, limit: usize) -> Result<Vec<OpenOrder>, StoreError>;
    /// Bank money that matched no order and is not allocated yet.
    async fn unmatched_receipts(&self, limit: usize) -> Result<Vec<UnmatchedReceipt>, StoreError>;
}

/// Acquirers' card takings per business day, and the settlements reconciled against them.
#[async_trait]
pub trait Takings: Send + Sync {
    /// Card takings of an acquirer on a business day (`YYYY-MM-DD`, Moscow).
    async fn card_takings(&self, acquirer: Source, day: &str) -> Result<Vec<Taking>, StoreError>;
    /// Keep a settlement's reconciliation; `false` when it was kept before (a re-read statement).
    async fn record_settlement(&self, report: &SettlementReport) -> Result<bool, StoreError>;
    /// The acquirer's settlements whose first covered day is within `from..=to` (`YYYY-MM-DD`): one query.
    async fn settlements(
        &self,
        acquirer: Source,
        from: &str,
        to: &str,
    ) -> Result<Vec<SettlementReport>, StoreError>;
    /// The kept totals of `source`'s closed days within `from..=to`: one query. A day a late fact changed since its
    /// totals were kept comes back without them.
    async fn cached_days(
        &self,
        source: Source,
        from: &str,
        to: &str,
    ) -> Result<Vec<CachedDay>, StoreError>;
    /// Keep a closed day's totals, computed from its takings while its row was at `rev` (empty: no row yet);
    /// `false` when a commit changed the day meanwhile (then nothing is kept, the next reader computes again).
    async fn cache_day(
        &self,
        source: Source,
        day: &str,
        totals: DayTotals,
        rev: &str,
    ) -> Result<bool, StoreError>;
}

/// A closed day as kept: its revision (the id of the last late fact of the day; empty before any) and, when still
/// current, its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedDay {
    pub day: String,
    pub rev: String,
    pub totals: Option<DayTotals>,
}

/// The orders 1C has not acknowledged since they changed.
#[async_trait]
pub trait Feed1c: Send + Sync {
    /// Orders changed since 1C last acknowledged them (`mode=success`), with the version that changed.
    async fn feed_1c(&self, limit: usize) -> Result<Vec<(OrderId, u64)>, StoreError>;
    /// Acknowledge feed entries; an entry whose order changed again since (another version) stays.
    async fn ack_feed_1c(&self, sent: &[(OrderId, u64)]) -> Result<(), StoreError>;
}

/// What the store said about its orders and payments, and the acquirer money still waiting to find its order.
#[async_trait]
pub trait StoreDirectory: Send + Sync {
    /// The store directory entry under `key` (`order-number:IM-00392`, `payment:1187`, …), as store-sync last
    /// learned it from the store.
    async fn directory(&self, key: &str) -> Result<Option<DirectoryEntry>, StoreError>;
    /// `unmatched:` orders holding acquirer money whose reference has not resolved yet.
    /// Kept by every commit of such an order; dropped only here, once its money moved, so a move interrupted
    /// half-way is finished by the next run.
    async fn unresolved(&self, limit: usize) -> Result<Vec<OrderId>, StoreError>;
    async fn forget_unresolved(&self, order: &OrderId) -> Result<(), StoreError>;
}

/// The questions status-sync asks the acquirers (`domain::watch`): opened and closed by the ledger's commits
/// ([`super::Projections`]), scheduled and settled by status-sync.
#[async_trait]
pub trait Watchlist: Send + Sync {
    /// Open a question outside an order change (a callback whose amount is owed); one already open keeps its
    /// schedule.
    async fn watch(&self, entry: &WatchEntry) -> Result<(), StoreError>;
    /// Questions due at `now_ms` (ms since the epoch), at most `limit`, the longest waiting first.
    async fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<WatchEntry>, StoreError>;
    /// Asked again at `due_ms`; `checks` answers so far.
    async fn reschedule(&self, key: &str, due_ms: i64, checks: u32) -> Result<(), StoreError>;
    /// The answer settled it (or the ledger already knows).
    async fn close(&self, key: &str) -> Result<(), StoreError>;
    /// Nobody could learn the outcome in time: closed here and kept for a person as `status_unknown`.
    async fn give_up(&self, entry: &WatchEntry) -> Result<(), StoreError>;
    /// The questions given up, for a person.
    async fn status_unknown(&self, limit: usize) -> Result<Vec<WatchEntry>, StoreError>;
}

/// What needs a person (`domain::attention`), for the console: one list per kind, read from its own rows.
#[async_trait]
pub trait Attention: Send + Sync {
    /// The breaks of one kind, at most `limit` (a `StatusUnknown` item is a question status-sync gave up: `key` is
    /// its watch key, `amount` 0).
    async fn attention(&self, kind: Kind, limit: usize) -> Result<Vec<Item>, StoreError>;
    /// A break kept outside any order (a payout mismatch) that a person accepted: its row goes and the decision
    /// (who, role, why; `at_ms`) is kept under `ACCEPTED#<kind>`, at once. `false` when the row was not there.
    async fn accept(
        &self,
        kind: Kind,
        key: &str,
        audit: &crate::domain::Audit,
        at_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// An order's whole story as the ledger keeps it: the order, every fact recorded on it (oldest first) and every
/// event its changes announced (by version).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderHistory {
    pub order: Option<Order>,
    pub facts: Vec<PaymentFact>,
    pub events: Vec<OrderEvent>,
}

/// The console's order page.
#[async_trait]
pub trait Histories: Send + Sync {
    /// One order's partition, read at once.
    async fn history(&self, order: &OrderId) -> Result<OrderHistory, StoreError>;
    /// Whether 1C has acknowledged the order's latest version (`mode=success`); `Some(v)`: version `v` waits.
    async fn waiting_for_1c(&self, order: &OrderId) -> Result<Option<u64>, StoreError>;
}
