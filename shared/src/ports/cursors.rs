//! Small durable notes: where a pull stopped ([`Cursors`]) and what was done once and must not be done again
//! ([`Markers`]). Kept in the ledger table.

use async_trait::async_trait;

use super::StoreError;

/// Where a scheduled pull stopped: a statement source (`tbank-api:<account>`), the store's order pull.
#[async_trait]
pub trait Cursors: Send + Sync {
    /// `None` before the first run.
    async fn watermark(&self, source: &str) -> Result<Option<String>, StoreError>;
    async fn set_watermark(&self, source: &str, value: &str) -> Result<(), StoreError>;
}

/// What a marker records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// A hook delivered for `<hook>#<order id>#<state>` (its value: the unix second it was sent).
    HookDelivered,
    /// The store refused a payment change of an order (its value: the reason, for a person).
    StoreError,
    /// What store-sync last told the store about an order (its value: `{"version","state","paid","at_ms"}`).
    StoreTold,
}

impl MarkerKind {
    /// The key prefix in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            MarkerKind::HookDelivered => "hook",
            MarkerKind::StoreError => "store-error",
            MarkerKind::StoreTold => "store-told",
        }
    }
}

/// Named notes that something happened, kept apart from the cursors.
#[async_trait]
pub trait Markers: Send + Sync {
    async fn marker(&self, kind: MarkerKind, key: &str) -> Result<Option<String>, StoreError>;
    async fn set_marker(&self, kind: MarkerKind, key: &str, value: &str) -> Result<(), StoreError>;
}
