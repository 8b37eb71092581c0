//! The 1C-Bitrix store as store-sync and reference resolution see it: its REST API (through an inbound webhook)
//! and the shop's own outbound hooks. Implemented by `adapters::http::{bitrix, hooks}`.

use async_trait::async_trait;
use serde_json::Value;

use crate::formats::bitrix::{Answer, BitrixError};
use crate::platform::config::Secret;

/// The store's REST API, one call at a time: `method` (`sale.order.list`, `batch`, …) with its JSON parameters.
/// A rate limit, a 5xx or a timeout is [`BitrixError::Busy`]; the answer is read by `formats::bitrix::answer`.
#[async_trait]
pub trait BitrixApi: Send + Sync {
    async fn call(&self, method: &str, params: &Value) -> Result<Answer, BitrixError>;
}

/// Why a hook was not delivered (the message is retried).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("{event_id}: receiver unreachable")]
    Unreachable { event_id: String },
    #[error("{event_id}: receiver answered HTTP {status}")]
    Refused { event_id: String, status: u16 },
}

/// One hook delivery: a JSON `body` POSTed to `url`, signed with `secret`, under its stable `event_id`.
#[derive(Debug, Clone, Copy)]
pub struct Hook<'a> {
    pub url: &'a str,
    pub secret: &'a Secret,
    /// `<order id>#<state>`: the same on every retry, so the receiver deduplicates on it.
    pub event_id: &'a str,
    pub body: &'a str,
}

/// The shop's outbound hooks (`STORE_HOOKS`).
#[async_trait]
pub trait HookSender: Send + Sync {
    /// Deliver `hook`; `Ok` only on the receiver's 2xx.
    async fn send(&self, hook: Hook<'_>) -> Result<(), HookError>;
}

/// The store's own 1C exchange endpoint (1C-Bitrix `1c_exchange.php`) that exchange-1c relays to in proxy mode.
#[async_trait]
pub trait ExchangeUpstream: Send + Sync {
    /// Send 1C's call (`method`, its query string, the `headers` worth relaying, the body) and return the store's
    /// answer as it came: status, headers and body bytes (at most `max_body` of them).
    async fn relay(&self, call: UpstreamCall<'_>) -> Result<Relayed, UpstreamError>;
}

/// One call of 1C's, as relayed.
#[derive(Debug, Clone, Copy)]
pub struct UpstreamCall<'a> {
    pub method: &'a http::Method,
    pub query: Option<&'a str>,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    /// A longer answer is refused ([`UpstreamError::TooLarge`]).
    pub max_body: usize,
}

/// The store's answer, byte for byte.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    #[error("the store's exchange endpoint did not answer in time")]
    Timeout,
    #[error("the store's exchange endpoint is unreachable")]
    Unreachable,
    #[error("the store's answer is larger than a Lambda response can carry")]
    TooLarge,
}
