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
        // 1C's query joins one the configured URL may already have.
        let url = match call.query {
            Some(q) if self.url.contains('?') => format!("{}&{q}", self.url),
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

#[cfg(test)]
mod tests {
    use http::header::{HeaderName, HeaderValue};
    use http::{HeaderMap, Method, StatusCode};
    use wiremock::matchers::{body_bytes, header, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    const EXCHANGE: &str = "/bitrix/admin/1c_exchange.php";

    fn upstream(server: &MockServer, timeout: Duration) -> HttpExchangeUpstream {
        HttpExchangeUpstream::with_timeout(&format!("{}{EXCHANGE}", server.uri()), timeout).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    async fn relay(
        up: &HttpExchangeUpstream,
        method: &Method,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        max_body: usize,
    ) -> Result<Relayed, UpstreamError> {
        up.relay(UpstreamCall {
            method,
            query,
            headers,
            body,
            max_body,
        })
        .await
    }

    #[tokio::test]
    async fn the_call_goes_out_as_it_came_and_the_answer_comes_back_byte_for_byte() {
        let server = MockServer::start().await;
        // A CommerceML chunk and the store's answer, both windows-1251: not UTF-8.
        let (sent, _, _) = encoding_rs::WINDOWS_1251.encode("<Документ>Оплата</Документ>");
        let (answer, _, _) = encoding_rs::WINDOWS_1251.encode("success\nФайл принят");
        assert!(std::str::from_utf8(&answer).is_err());
        Mock::given(method("POST"))
            .and(path(EXCHANGE))
            .and(query_param("type", "sale"))
            .and(query_param("mode", "file"))
            .and(query_param("filename", "orders.xml"))
            .and(header("cookie", "PHPSESSID=abc123"))
            .and(header("content-type", "application/octet-stream"))
            .and(body_bytes(sent.to_vec()))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "text/plain; charset=windows-1251")
                    .insert_header("x-bitrix-exchange", "1")
                    .set_body_bytes(answer.to_vec()),
            )
            .expect(1)
            .mount(&server)
            .await;
        let up = upstream(&server, Duration::from_secs(5));
        let out = relay(
            &up,
            &Method::POST,
            Some("type=sale&mode=file&filename=orders.xml"),
            &headers(&[
                ("cookie", "PHPSESSID=abc123"),
                ("content-type", "application/octet-stream"),
            ]),
            &sent,
            1024,
        )
        .await
        .unwrap();
        assert_eq!(out.status, StatusCode::OK);
        assert_eq!(out.body, answer.to_vec());
        assert_eq!(
            out.headers.get("content-type").unwrap(),
            "text/plain; charset=windows-1251"
        );
        assert_eq!(out.headers.get("x-bitrix-exchange").unwrap(), "1");
        server.verify().await;
    }

    #[tokio::test]
    async fn a_call_without_a_query_goes_to_the_bare_url_and_an_error_status_comes_back_as_is() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(EXCHANGE))
            .respond_with(ResponseTemplate::new(503).set_body_string("failure\nmaintenance"))
            .mount(&server)
            .await;
        let out = relay(
            &upstream(&server, Duration::from_secs(5)),
            &Method::GET,
            None,
            &HeaderMap::new(),
            b"",
            1024,
        )
        .await
        .unwrap();
        assert_eq!(out.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(out.body, b"failure\nmaintenance");
        let received = server.received_requests().await.unwrap();
        assert_eq!(received.len(), 1);
        assert_eq!(received[0].url.query(), None);
    }

    #[tokio::test]
    async fn a_redirect_is_handed_back_not_followed() {
        let server = MockServer::start().await;
        Mock::given(path(EXCHANGE))
            .respond_with(
                ResponseTemplate::new(302)
                    .insert_header("location", "/auth/?backurl=/bitrix/admin/"),
            )
            .mount(&server)
            .await;
        Mock::given(path("/auth/"))
            .respond_with(ResponseTemplate::new(200).set_body_string("login form"))
            .expect(0)
            .mount(&server)
            .await;
        let out = relay(
            &upstream(&server, Duration::from_secs(5)),
            &Method::GET,
            Some("type=sale&mode=checkauth"),
            &HeaderMap::new(),
            b"",
            1024,
        )
        .await
        .unwrap();
        assert_eq!(out.status, StatusCode::FOUND);
        assert_eq!(
            out.headers.get("location").unwrap(),
            "/auth/?backurl=/bitrix/admin/"
        );
        assert!(out.body.is_empty());
        server.verify().await;
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_is_too_large() {
        let server = MockServer::start().await;
        Mock::given(path(EXCHANGE))
            .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![0xC0; 1025]))
            .mount(&server)
            .await;
        let up = upstream(&server, Duration::from_secs(5));
        let none = HeaderMap::new();
        let call = |max| relay(&up, &Method::GET, None, &none, b"", max);
        assert_eq!(call(1024).await.unwrap_err(), UpstreamError::TooLarge);
        assert_eq!(
            call(1025).await.unwrap().body.len(),
            1025,
            "the limit itself is fine"
        );
    }

    #[tokio::test]
    async fn a_slow_store_times_out_and_an_absent_one_is_unreachable() {
        let server = MockServer::start().await;
        Mock::given(path(EXCHANGE))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string("success")
                    .set_delay(Duration::from_millis(1500)),
            )
            .mount(&server)
            .await;
        let slow = relay(
            &upstream(&server, Duration::from_millis(300)),
            &Method::GET,
            None,
            &HeaderMap::new(),
            b"",
            1024,
        )
        .await;
        assert_eq!(slow.unwrap_err(), UpstreamError::Timeout);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let absent = HttpExchangeUpstream::with_timeout(
            &format!("http://127.0.0.1:{port}{EXCHANGE}"),
            Duration::from_secs(2),
        )
        .unwrap();
        assert_eq!(
            relay(&absent, &Method::GET, None, &HeaderMap::new(), b"", 1024)
                .await
                .unwrap_err(),
            UpstreamError::Unreachable
        );
    }
}
