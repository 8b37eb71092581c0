//! Ports: the async traits the use cases depend on, each sized to its use, with their value types. Adapters
//! (`adapters::dynamo`, `adapters::sqs`, `adapters::http::*`, and the in-memory fakes of the unit tests) implement
//! them; `wiring` hands each use case the ones it needs.
//!
//! The ledger table behind [`ledger`], [`read_models`], [`cursors`] and [`exchange`] is one DynamoDB table; the
//! traits split it by what a use case does with it, not by where it is kept.

pub mod acquirers;
pub mod bank;
pub mod budget;
pub mod cursors;
pub mod events;
pub mod exchange;
pub mod ledger;
pub mod read_models;
pub mod sign_ins;
pub mod store_api;

pub use cursors::{Cursors, MarkerKind, Markers};
pub use events::{EventPublisher, EventsInbox, InboxError, InboxMessage, PublishError};
pub use exchange::{ExchangeSession, ExchangeStore, ImportProgress};
pub use ledger::{Claim, Commit, CommitError, LedgerStore, Projections, UnmatchedRow};
pub use read_models::{
    Attention, CachedDay, Feed1c, Histories, OrderHistory, OrderViews, StoreDirectory, Takings,
    Watchlist,
};
pub use sign_ins::SignIns;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ledger storage unavailable")]
    Unavailable(#[source] BoxError),
    #[error("stored item {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
}
