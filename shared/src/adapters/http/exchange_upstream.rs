//! The store's 1C exchange endpoint behind exchange-1c's proxy mode: 1C's call goes out as it came (method, query,
//! the relayed headers, body), the answer comes back byte for byte. Redirects are not followed: 1C must see the
//! store's own.

use std::time::Duration;

use async_trait::async_trait;

use super::{client_with, read_capped, ReadError};
use crate::ports::store_api::{ExchangeUpstream, Relayed, UpstreamCall, UpstreamError};

/// `EXCHANGE_1C_UPSTREAM`: the store's `…/bitrix/admin/1c_exchange.php`.
pub struct HttpExchangeUpstream {
    client: reqwest::Client,
    url: String,
}

impl HttpExchangeUpstream {
    /// Gives up after `timeout` (`EXCHANGE_1C_UPSTREAM_TIMEOUT_MS`).
    pub fn with_timeout(url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        Ok(HttpExchangeUpstream {
            client: client_with(timeout, false)?,
            url: url.to_owned(),
        })
    }
}

fn failed(e: &reqwest::Error) -> UpstreamError {
    if e.is_timeout() {
        UpstreamError::Timeout
    } else {
        UpstreamError::Unreachable
    }
}

#[async_trait]
impl ExchangeUpstream for HttpExchangeUpstream {
    async fn relay(&self, call: UpstreamCall<'_>) -> Result<Relayed, UpstreamError> {
        let url = match call.query {
            Some(q) => format!("{}?{q}", self.url),
            None => self.url.clone(),
        };
        let answer = self
            .client
            .request(call.method.clone(), url)
            .headers(call.headers.clone())
            .body(call.body.to_vec())
            .send()
            .await
            .map_err(|e| failed(&e))?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = read_capped(answer, call.max_body)
            .await
            .map_err(|e| match e {
                ReadError::TooLarge(_) => UpstreamError::TooLarge,
                ReadError::Broken(e) => failed(&e),
            })?;
        Ok(Relayed {
            status,
            headers,
            body,
        })
    }
}
