//! Outbound HTTP, one policy for every adapter: one client builder ([`client`]), one capped body reader
//! ([`read_capped`]), one classification of a peer's status ([`classify`]: fine, retry later, refused for good) and
//! of a transport failure ([`failure_kind`]), and one retry helper with jitter (`platform::retry`). Each peer's
//! client is a module here: the acquirers ([`tbank`], [`sber`], [`yookassa`]), the store ([`bitrix`], [`hooks`]),
//! the bank ([`bank_api`]) and the store's 1C exchange behind the exchange-1c proxy ([`exchange_upstream`]).

pub mod bank_api;
pub mod bitrix;
pub mod exchange_upstream;
pub mod hooks;
pub mod sber;
pub mod tbank;
pub mod yookassa;

use std::time::Duration;

use reqwest::StatusCode;

use crate::ports::acquirers::{ProviderError, RefundError};

/// Largest provider object read (payments, refunds, status answers are a few KB).
const MAX_PROVIDER_ANSWER: usize = 1024 * 1024;

/// The client every adapter uses unless its peer needs other limits ([`client_with`]): requests to acquirers must
/// finish well inside T-Bank's 10 s wait for synchronous notifications.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    client_with(Duration::from_secs(6), true)
}

/// A client that gives up after `timeout` (connecting: half of it, at most 5 s); `follow_redirects = false` hands a
/// peer's redirect to the caller (1C must see the store's own redirects). Certificates are always checked.
pub fn client_with(
    timeout: Duration,
    follow_redirects: bool,
) -> Result<reqwest::Client, reqwest::Error> {
    let redirects = if follow_redirects {
        reqwest::redirect::Policy::default()
    } else {
        reqwest::redirect::Policy::none()
    };
    reqwest::Client::builder()
        .connect_timeout((timeout / 2).min(Duration::from_secs(5)))
        .timeout(timeout)
        .redirect(redirects)
        .build()
}

/// What a peer's HTTP status means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx (and, where redirects are not followed, 3xx: the caller reads them).
    Fine,
    /// 429 or 5xx: the peer is busy or down; retry later with the same request.
    Transient,
    /// Any other status: the peer refused this request, and repeating it will not help.
    Refused,
}

/// The one status classification every adapter uses.
pub fn classify(status: StatusCode) -> Verdict {
    if status.is_success() || status.is_redirection() {
        Verdict::Fine
    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::Transient
    } else {
        Verdict::Refused
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    #[error("answer broke off")]
    Broken(#[source] reqwest::Error),
}

/// What went wrong with a request to a peer, in words safe for logs and errors (no URL, no credentials).
pub fn failure_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    }
}

/// Read a peer's answer, refusing one larger than `max` (announced or actual) before it is all in memory: a
/// misbehaving bank, store or acquirer cannot exhaust the function's memory.
pub async fn read_capped(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, ReadError> {
    if resp
        .content_length()
        .is_some_and(|l| l > u64::try_from(max).unwrap_or(u64::MAX))
    {
        return Err(ReadError::TooLarge(max));
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Broken)? {
        if out.len() + chunk.len() > max {
            return Err(ReadError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

pub(crate) fn transport(provider: &'static str, e: &reqwest::Error) -> ProviderError {
    ProviderError::Unavailable {
        provider,
        reason: failure_kind(e).into(),
    }
}

/// The answer's body, at most [`MAX_PROVIDER_ANSWER`].
pub(crate) async fn body(
    provider: &'static str,
    resp: reqwest::Response,
) -> Result<Vec<u8>, ProviderError> {
    read_capped(resp, MAX_PROVIDER_ANSWER)
        .await
        .map_err(|e| ProviderError::Unavailable {
            provider,
            reason: e.to_string(),
        })
}

/// A provider's JSON answer: refused or unavailable by its status ([`by_status`]), else its body read (capped)
/// and parsed.
pub(crate) async fn json_answer<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    resp: reqwest::Response,
) -> Result<T, ProviderError> {
    let status = resp.status();
    if !status.is_success() {
        return Err(by_status(provider, status));
    }
    let bytes = body(provider, resp).await?;
    serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed {
        provider,
        reason: e.to_string(),
    })
}

pub(crate) fn by_status(provider: &'static str, status: StatusCode) -> ProviderError {
    match classify(status) {
        Verdict::Transient => ProviderError::Unavailable {
            provider,
            reason: format!("HTTP {}", status.as_u16()),
        },
        _ => ProviderError::Refused {
            provider,
            status: status.as_u16(),
        },
    }
}

pub(crate) fn refund_error(provider: &str, e: ProviderError) -> RefundError {
    match e {
        ProviderError::Unavailable { reason, .. } => {
            RefundError::Transient(format!("{provider}: {reason}"))
        }
        other => RefundError::Permanent(other.to_string()),
    }
}

pub(crate) fn refund_transport(provider: &str, e: &reqwest::Error) -> RefundError {
    RefundError::Transient(format!("{provider}: {}", failure_kind(e)))
}

/// Reads a refund call's answer; transient or refused by [`classify`], a refusal with the body's first 300
/// characters (the provider's reason).
pub(crate) async fn refund_answer(
    provider: &str,
    resp: reqwest::Response,
) -> Result<Vec<u8>, RefundError> {
    let status = resp.status();
    let body = read_capped(resp, MAX_PROVIDER_ANSWER)
        .await
        .map_err(|e| RefundError::Transient(format!("{provider}: {e}")))?;
    if status.is_success() {
        return Ok(body);
    }
    let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
    let reason = format!("{provider}: HTTP {} {text}", status.as_u16());
    match classify(status) {
        Verdict::Transient => Err(RefundError::Transient(reason)),
        _ => Err(RefundError::Permanent(reason)),
    }
}

#[cfg(test)]
mod capped_tests {
    use super::*;
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn answers_beyond_the_cap_are_refused() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 2048]))
            .mount(&server)
            .await;
        let get = || async { reqwest::get(server.uri()).await.unwrap() };
        assert_eq!(read_capped(get().await, 4096).await.unwrap().len(), 2048);
        assert!(matches!(
            read_capped(get().await, 1024).await,
            Err(ReadError::TooLarge(1024))
        ));
    }
}
