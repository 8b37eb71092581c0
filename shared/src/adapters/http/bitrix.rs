//! The 1C-Bitrix store's REST API through an inbound webhook: `POST <webhook>/<method>.json` with JSON parameters
//! (REST documentation: `shared/reference/bitrix-rest.md`). The answer, including Bitrix's own error JSON and its
//! `QUERY_LIMIT_EXCEEDED`, is read by `formats::bitrix::answer`.

use async_trait::async_trait;
use serde_json::Value;

use super::{failure_kind, read_capped, ReadError};
use crate::formats::bitrix::{self, Answer, BitrixError};
use crate::ports::store_api::BitrixApi;

/// A `batch` of 50 full orders stays well under this.
const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// `BITRIX_WEBHOOK_URL` = `https://<portal>/rest/<user id>/<webhook code>/`.
pub struct HttpBitrix {
    pub client: reqwest::Client,
    pub webhook_url: String,
}

#[async_trait]
impl BitrixApi for HttpBitrix {
    async fn call(&self, method: &str, params: &Value) -> Result<Answer, BitrixError> {
        let url = format!("{}/{method}.json", self.webhook_url.trim_end_matches('/'));
        let resp = self
            .client
            .post(url)
            .json(params)
            .send()
            .await
            .map_err(|e| BitrixError::Busy(failure_kind(&e).into()))?;
        let status = resp.status().as_u16();
        let body = read_capped(resp, MAX_ANSWER).await.map_err(|e| match e {
            ReadError::TooLarge(_) => BitrixError::Malformed(e.to_string()),
            ReadError::Broken(_) => BitrixError::Busy("answer cut off".into()),
        })?;
        bitrix::answer(method, status, &body)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;

    async fn store(answer: ResponseTemplate) -> (MockServer, HttpBitrix) {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(answer)
            .mount(&server)
            .await;
        let api = HttpBitrix {
            client: crate::adapters::http::client().unwrap(),
            webhook_url: format!("{}/rest/1/secret-code/", server.uri()),
        };
        (server, api)
    }

    #[tokio::test]
    async fn a_call_posts_its_json_to_the_method_under_the_webhook_and_reads_the_answer() {
        let server = MockServer::start().await;
        let params = json!({"filter": {">=dateUpdate": "2026-11-28T10:00:00+03:00"}, "start": 50});
        Mock::given(method("POST"))
            .and(path("/rest/1/secret-code/sale.order.list.json"))
            .and(header("content-type", "application/json"))
            .and(body_json(&params))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                r#"{"result":{"orders":[{"id":236,"accountNumber":"392","price":1480.50,"currency":"RUB"}]},"next":100,"total":120,"time":{}}"#,
                "application/json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let api = HttpBitrix {
            client: crate::adapters::http::client().unwrap(),
            webhook_url: format!("{}/rest/1/secret-code/", server.uri()),
        };
        let answer = api.call("sale.order.list", &params).await.unwrap();
        assert_eq!((answer.total, answer.next), (Some(120), Some(100)));
        let orders = bitrix::orders(&answer.result).unwrap();
        assert_eq!(
            (orders[0].id.as_str(), orders[0].price),
            ("236", 148_050),
            "money from its literal"
        );
        server.verify().await;
    }

    #[tokio::test]
    async fn a_webhook_url_without_its_trailing_slash_reaches_the_same_method() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/rest/1/secret-code/batch.json"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"result": {"result": {}}})),
            )
            .expect(1)
            .mount(&server)
            .await;
        let api = HttpBitrix {
            client: crate::adapters::http::client().unwrap(),
            webhook_url: format!("{}/rest/1/secret-code", server.uri()),
        };
        api.call("batch", &json!({"cmd": {}})).await.unwrap();
        server.verify().await;
    }

    #[tokio::test]
    async fn the_query_limit_is_busy() {
        let (_server, api) = store(ResponseTemplate::new(503).set_body_json(
            json!({"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}),
        ))
        .await;
        match api.call("sale.order.list", &json!({})).await {
            Err(BitrixError::Busy(reason)) => {
                assert_eq!(reason, "HTTP 503 QUERY_LIMIT_EXCEEDED")
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refusal_names_the_method_code_and_description() {
        let (_server, api) = store(ResponseTemplate::new(400).set_body_json(json!({
            "error": "ERROR_CORE", "error_description": "SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM"
        })))
        .await;
        assert_eq!(
            api.call("sale.payment.update", &json!({"id": 1}))
                .await
                .unwrap_err(),
            BitrixError::Refused {
                method: "sale.payment.update".into(),
                code: "ERROR_CORE".into(),
                description: "SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM".into(),
            }
        );
        let (_server, api) = store(ResponseTemplate::new(401).set_body_json(
            json!({"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"}),
        ))
        .await;
        assert!(matches!(
            api.call("sale.order.list", &json!({})).await,
            Err(BitrixError::Auth(a)) if a.contains("NO_AUTH_FOUND")
        ));
    }

    #[tokio::test]
    async fn an_answer_larger_than_the_cap_is_refused() {
        let mut body = br#"{"result":{"orders":[]},"padding":""#.to_vec();
        body.resize(MAX_ANSWER + 1, b'x');
        let (_server, api) = store(ResponseTemplate::new(200).set_body_bytes(body)).await;
        assert!(matches!(
            api.call("sale.order.list", &json!({})).await,
            Err(BitrixError::Malformed(m)) if m.contains(&MAX_ANSWER.to_string())
        ));
        // At the cap it is read.
        let mut body = br#"{"result":{"orders":[]},"padding":""#.to_vec();
        body.resize(MAX_ANSWER - 2, b'x');
        body.extend_from_slice(b"\"}");
        let (_server, api) = store(ResponseTemplate::new(200).set_body_bytes(body)).await;
        assert!(api.call("sale.order.list", &json!({})).await.is_ok());
    }

    #[tokio::test]
    async fn an_unreachable_store_is_busy() {
        // A port that was just free: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let api = HttpBitrix {
            client: crate::adapters::http::client().unwrap(),
            webhook_url: format!("http://127.0.0.1:{port}/rest/1/x/"),
        };
        assert!(matches!(
            api.call("sale.order.list", &json!({})).await,
            Err(BitrixError::Busy(reason)) if reason == "connection failed"
        ));
    }
}
