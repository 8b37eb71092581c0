//! The bank as statement-pull sees it: a source of bank operations on our accounts since a date. Implemented by
//! `adapters::http::bank_api` (the T-Bank Business API and a 1CClientBankExchange file at a URL); a new bank API
//! is one more implementation, and `app::statement_pull` does not change.

use async_trait::async_trait;

use crate::domain::bank_operation::BankOperation;

/// What a source returned since a date.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The operations that move money of ours.
    pub operations: Vec<BankOperation>,
    /// Why each unusable operation cannot be used, as `(operation id or number, reason)`: counted and logged by
    /// the use case, and the watermark stays before them.
    pub unusable: Vec<(String, &'static str)>,
    /// Operations that move no money of ours (between our own accounts, neither a credit nor a debit).
    pub other: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementFetchError {
    /// The source refused or answered something unreadable (a bad token or URL, a malformed statement).
    #[error("{0}")]
    Refused(String),
    /// Unreachable, a 429 or a 5xx after the retries: tried again next run.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait StatementSource: Send + Sync {
    /// The source's stable name, its watermark key: `tbank-api:<account>`, `clientbank-url:<account>`.
    fn id(&self) -> String;
    /// Every operation dated `from` (`YYYY-MM-DD`) or later.
    async fn fetch(&self, from: &str) -> Result<Fetched, StatementFetchError>;
}
