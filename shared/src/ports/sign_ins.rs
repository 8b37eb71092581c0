//! Failed console sign-ins per login, kept in the table so that every instance of the function slows guessing down
//! alike (an instance's memory would let a guesser spread over many).

use async_trait::async_trait;

use super::StoreError;

#[async_trait]
pub trait SignIns: Send + Sync {
    /// Failures since the last success (`count`) and when the last one was (ms since the epoch).
    async fn failures(&self, login: &str) -> Result<(u32, i64), StoreError>;
    /// One more failure at `at_ms`, counted atomically; the new count.
    async fn failed(&self, login: &str, at_ms: i64) -> Result<u32, StoreError>;
    /// A successful sign-in clears the count.
    async fn succeeded(&self, login: &str) -> Result<(), StoreError>;
}
