//! Ports: the small async traits the handlers depend on. Adapters for DynamoDB/SQS and in-memory fakes implement them.

pub mod acquirers;
pub mod bank;
pub mod store_api;

use async_trait::async_trait;

use crate::domain::matching::UnmatchedReceipt;
use crate::domain::settlement::{SettlementReport, Taking};
use crate::domain::{Order, OrderEvent, OrderId, PaymentFact, PaymentRef, Source};

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger storage unavailable")]
    Unavailable(#[source] BoxError),
    #[error("stored item {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}

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
    /// Store directory entries this change makes true (an order the store described: its number and payments).
    pub directory: Vec<crate::domain::DirectoryEntry>,
}

#[async_trait]
pub trait LedgerStore: Send + Sync {
    async fn load_order(&self, id: &OrderId) -> Result<Option<Order>, StoreError>;
    async fn commit(&self, commit: Commit<'_>) -> Result<(), CommitError>;
    /// Which order a payment belongs to (for refunds that name only the payment).
    async fn order_for_payment(&self, payment: &PaymentRef) -> Result<Option<OrderId>, StoreError>;
    /// The store directory entry under `key` (`order-number:IM-00392`, `payment:1187`, …), as store-sync last
    /// learned it from the store.
    async fn directory(
        &self,
        key: &str,
    ) -> Result<Option<crate::domain::DirectoryEntry>, StoreError>;
    /// Every fact recorded on an order (for moving money whose reference resolved later).
    async fn order_facts(&self, order: &OrderId) -> Result<Vec<PaymentFact>, StoreError>;
    /// `unmatched:` orders holding acquirer money whose reference has not resolved yet.
    /// Kept by every commit of such an order; dropped only here, once its money moved, so a move interrupted
    /// half-way is finished by the next run.
    async fn unresolved(&self, limit: usize) -> Result<Vec<OrderId>, StoreError>;
    async fn forget_unresolved(&self, order: &OrderId) -> Result<(), StoreError>;
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
    /// Orders that can still receive money (for matching bank payments).
    async fn open_orders(
        &self,
        limit: usize,
    ) -> Result<Vec<crate::domain::matching::OpenOrder>, StoreError>;
    /// Bank money that matched no order and is not allocated yet.
    async fn unmatched_receipts(&self, limit: usize) -> Result<Vec<UnmatchedReceipt>, StoreError>;
    /// Card takings of an acquirer on a business day (`YYYY-MM-DD`, Moscow).
    async fn card_takings(&self, acquirer: Source, day: &str) -> Result<Vec<Taking>, StoreError>;
    /// Keep a settlement's reconciliation; `false` when it was kept before (a re-read statement).
    async fn record_settlement(&self, report: &SettlementReport) -> Result<bool, StoreError>;
    /// Where a statement source stopped (`None` before its first run).
    async fn watermark(&self, source: &str) -> Result<Option<String>, StoreError>;
    async fn set_watermark(&self, source: &str, value: &str) -> Result<(), StoreError>;
    /// Orders changed since 1C last acknowledged them (`mode=success`), with the version that changed.
    async fn feed_1c(&self, limit: usize) -> Result<Vec<(OrderId, u64)>, StoreError>;
    /// Acknowledge feed entries; an entry whose order changed again since (another version) stays.
    async fn ack_feed_1c(&self, sent: &[(OrderId, u64)]) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
#[error("event publishing failed")]
pub struct PublishError(#[source] pub BoxError);

#[async_trait]
pub trait EventPublisher: Send + Sync {
    async fn publish(&self, event: &OrderEvent) -> Result<(), PublishError>;
}

/// A 1C exchange session (`checkauth` → … ), kept in the ledger table with a TTL.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExchangeSession {
    /// The cookie value.
    pub id: String,
    /// The `sessid` 1C must send with every later call.
    pub sessid: String,
    /// CommerceML version 1C asked for at `init`.
    pub version: Option<String>,
    /// Orders (and the versions) the last `query` sent; `success` acknowledges exactly these.
    #[serde(default)]
    pub sent: Vec<(String, u64)>,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Progress of a `mode=import` that answered `progress`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportProgress {
    /// Documents already applied.
    pub next: usize,
    /// Error lines collected so far, appended to the final answer as Bitrix does.
    pub errors: Vec<String>,
    pub done: bool,
}

#[async_trait]
pub trait ExchangeStore: Send + Sync {
    async fn put_session(&self, session: &ExchangeSession) -> Result<(), StoreError>;
    async fn session(&self, id: &str) -> Result<Option<ExchangeSession>, StoreError>;
    /// Append a chunk of an uploaded file (1C splits files larger than `file_limit`).
    async fn append_chunk(
        &self,
        session: &str,
        file: &str,
        bytes: &[u8],
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// The whole uploaded file, chunks in order; `None` if nothing was uploaded under that name.
    async fn uploaded(&self, session: &str, file: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn import_progress(
        &self,
        session: &str,
        file: &str,
    ) -> Result<ImportProgress, StoreError>;
    async fn set_import_progress(
        &self,
        session: &str,
        file: &str,
        progress: &ImportProgress,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Proxy mode: the store imported this upload, and the ledger still has to apply it (retried on a schedule).
    async fn set_tap_pending(
        &self,
        key: &str,
        file: &str,
        pending: bool,
        expires_at: i64,
    ) -> Result<(), StoreError>;
    /// Uploads the store imported that the ledger has not fully applied yet, oldest first.
    async fn pending_taps(&self, limit: usize) -> Result<Vec<(String, String)>, StoreError>;
}
