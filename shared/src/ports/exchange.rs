//! What exchange-1c keeps between 1C's calls: sessions, uploaded files in chunks, import progress, and in proxy
//! mode the uploads the store imported that the ledger still has to apply.

use async_trait::async_trait;

use super::StoreError;

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
