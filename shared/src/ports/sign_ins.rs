//! Failed console sign-ins per login, kept in the table so that every instance of the function slows guessing down
//! alike (an instance's memory would let a guesser spread over many); and sessions signed out, so that a copy of a
//! signed-out session's cookie opens nothing on any instance.

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
    /// Session `sid` is signed out; kept until `until_ms` (the session's own expiry, ms since the epoch), after
    /// which the session is refused anyway.
    async fn sign_out(&self, sid: &str, until_ms: i64) -> Result<(), StoreError>;
    /// Whether session `sid` was signed out (read consistently: a sign-out holds from the next request on).
    async fn signed_out(&self, sid: &str) -> Result<bool, StoreError>;
}
