//! YooKassa's API (`/v3`): payment and refund look-ups and refunds.

use async_trait::async_trait;

use super::{refund_answer, refund_transport};
use crate::platform::config::Secret;
use crate::ports::acquirers::{
    idempotency_key, RefundCall, RefundError, RefundGateway, RefundOutcome,
};

use super::{json_answer, transport};
use crate::domain::money::format_minor;
use crate::formats::yookassa::{self, Payment, Refund};
use crate::ports::acquirers::{ProviderError, YooKassaApi};

pub struct HttpYooKassa {
    client: reqwest::Client,
    base_url: String,
    shop_id: String,
    secret_key: Secret,
}

impl HttpYooKassa {
    pub fn new(client: reqwest::Client, base_url: &str, shop_id: &str, secret_key: Secret) -> Self {
        HttpYooKassa {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            shop_id: shop_id.to_owned(),
            secret_key,
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        id: &str,
    ) -> Result<Option<T>, ProviderError> {
        const P: &str = "YooKassa";
        if !yookassa::is_valid_object_id(id) {
            return Ok(None);
        }
        let resp = self
            .client
            .get(format!("{}/{kind}/{id}", self.base_url))
            .basic_auth(&self.shop_id, Some(self.secret_key.expose()))
            .send()
            .await
            .map_err(|e| transport(P, &e))?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        json_answer(P, resp).await.map(Some)
    }
}

#[async_trait]
impl YooKassaApi for HttpYooKassa {
    async fn payment(&self, id: &str) -> Result<Option<Payment>, ProviderError> {
        self.get("payments", id).await
    }

    async fn refund(&self, id: &str) -> Result<Option<Refund>, ProviderError> {
        self.get("refunds", id).await
    }
}

/// YooKassa `POST /v3/refunds`, Basic auth, `Idempotence-Key`.
pub struct YooKassaRefunds {
    pub client: reqwest::Client,
    pub api_url: String,
    pub shop_id: String,
    pub secret_key: Secret,
}

#[async_trait]
impl RefundGateway for YooKassaRefunds {
    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
        const P: &str = "YooKassa";
        let description: String = call.reason.chars().take(250).collect();
        let mut body = serde_json::json!({
            "payment_id": call.payment.external(),
            "amount": {"value": format_minor(call.amount), "currency": call.currency.as_str()},
            "description": description,
        });
        if let Some(receipt) = call.receipt {
            body["receipt"] = yookassa::refund_receipt(receipt, call.currency);
        }
        let resp = self
            .client
            .post(format!("{}/refunds", self.api_url.trim_end_matches('/')))
            .basic_auth(&self.shop_id, Some(self.secret_key.expose()))
            .header("Idempotence-Key", idempotency_key(call.request_id))
            .json(&body)
            .send()
            .await
            .map_err(|e| refund_transport(P, &e))?;
        let bytes = refund_answer(P, resp).await?;
        let refund: yookassa::Refund = serde_json::from_slice(&bytes)
            .map_err(|e| RefundError::Transient(format!("{P}: unreadable answer: {e}")))?;
        match refund.status.as_str() {
            "succeeded" => {
                let fact = yookassa::refund_fact(
                    &refund,
                    call.order.clone(),
                    crate::platform::clock::now_ms(),
                )
                .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?
                .ok_or_else(|| RefundError::Permanent(format!("{P}: no refund in answer")))?;
                Ok(RefundOutcome::Done {
                    fact: Box::new(fact),
                    provider_id: Some(refund.id),
                })
            }
            "pending" => Ok(RefundOutcome::Pending {
                expect: Some(format!("yookassa#refund#{}", refund.id)),
                provider_id: Some(refund.id),
            }),
            _ => Err(RefundError::Permanent(format!(
                "{P}: refund {} {}",
                refund.id, refund.status
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::domain::{Currency, FactKind, OrderId, PaymentRef, RefundAmount, Source};

    const SHOP: &str = "506751";
    const SECRET: &str = "test_secret_key";
    const PAYMENT_ID: &str = "2d6c1b3a-000f-5000-9000-1e7c3b1a9f2e";
    const REFUND_ID: &str = "2d6c1c00-0015-5000-8000-18db351245c7";

    fn basic() -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{SHOP}:{SECRET}"))
        )
    }

    /// The API at `/v3`, answering `answer` to an authenticated GET of `object_path` (anything else: 404).
    async fn api(object_path: &str, answer: ResponseTemplate) -> (MockServer, HttpYooKassa) {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path(object_path))
            .and(header("authorization", basic().as_str()))
            .respond_with(answer)
            .mount(&server)
            .await;
        let api = HttpYooKassa::new(
            crate::adapters::http::client().unwrap(),
            &format!("{}/v3/", server.uri()),
            SHOP,
            Secret::new(SECRET),
        );
        (server, api)
    }

    fn payment_json() -> serde_json::Value {
        json!({
            "id": PAYMENT_ID, "status": "succeeded", "paid": true,
            "amount": {"value": "1500.00", "currency": "RUB"},
            "metadata": {"BX_PAYMENT_NUMBER": "392/1"},
            "captured_at": "2026-11-28T10:00:00.000Z", "created_at": "2026-11-28T09:59:00.000Z",
        })
    }

    #[tokio::test]
    async fn a_known_payment_is_read_with_basic_auth() {
        let (server, api) = api(
            &format!("/v3/payments/{PAYMENT_ID}"),
            ResponseTemplate::new(200).set_body_json(payment_json()),
        )
        .await;
        let p = api.payment(PAYMENT_ID).await.unwrap().expect("found");
        assert_eq!(
            (p.id.as_str(), p.status.as_str(), p.amount.value.as_str()),
            (PAYMENT_ID, "succeeded", "1500.00")
        );
        assert_eq!(p.metadata["BX_PAYMENT_NUMBER"], "392/1");
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_known_refund_is_read_from_the_refunds_path() {
        let (_server, api) = api(
            &format!("/v3/refunds/{REFUND_ID}"),
            ResponseTemplate::new(200).set_body_json(json!({
                "id": REFUND_ID, "payment_id": PAYMENT_ID, "status": "succeeded",
                "amount": {"value": "500.00", "currency": "RUB"}
            })),
        )
        .await;
        let r = api.refund(REFUND_ID).await.unwrap().expect("found");
        assert_eq!(
            (r.payment_id.as_str(), r.amount.value.as_str()),
            (PAYMENT_ID, "500.00")
        );
        // The same id as a payment is another path: not found.
        assert_eq!(api.payment(REFUND_ID).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unknown_object_is_none() {
        let (_server, api) = api(
            &format!("/v3/payments/{PAYMENT_ID}"),
            ResponseTemplate::new(404).set_body_json(json!({
                "type": "error", "code": "not_found", "description": "Payment not found"
            })),
        )
        .await;
        assert_eq!(api.payment(PAYMENT_ID).await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_failing_api_is_unavailable_and_a_refusal_is_refused() {
        for status in [500, 503, 429] {
            let (_server, api) = api(
                &format!("/v3/payments/{PAYMENT_ID}"),
                ResponseTemplate::new(status),
            )
            .await;
            match api.payment(PAYMENT_ID).await {
                Err(ProviderError::Unavailable { provider, reason }) => {
                    assert_eq!((provider, reason), ("YooKassa", format!("HTTP {status}")))
                }
                other => panic!("HTTP {status}: {other:?}"),
            }
        }
        let (_server, api) = api(
            &format!("/v3/payments/{PAYMENT_ID}"),
            ResponseTemplate::new(401)
                .set_body_json(json!({"type": "error", "code": "invalid_credentials"})),
        )
        .await;
        assert!(matches!(
            api.payment(PAYMENT_ID).await,
            Err(ProviderError::Refused {
                provider: "YooKassa",
                status: 401
            })
        ));
    }

    #[tokio::test]
    async fn wrong_credentials_are_refused_by_the_api_not_passed_as_someone_else() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(header("authorization", basic().as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(payment_json()))
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(401))
            .with_priority(10)
            .mount(&server)
            .await;
        let wrong = HttpYooKassa::new(
            crate::adapters::http::client().unwrap(),
            &format!("{}/v3", server.uri()),
            SHOP,
            Secret::new("another-secret"),
        );
        assert!(matches!(
            wrong.payment(PAYMENT_ID).await,
            Err(ProviderError::Refused { status: 401, .. })
        ));
    }

    #[tokio::test]
    async fn a_malformed_answer_is_malformed() {
        for body in [
            &b"{\"id\": \"x\""[..],
            b"<html>maintenance</html>",
            b"{\"id\":\"x\"}",
        ] {
            let (_server, api) = api(
                &format!("/v3/payments/{PAYMENT_ID}"),
                ResponseTemplate::new(200).set_body_bytes(body.to_vec()),
            )
            .await;
            assert!(
                matches!(
                    api.payment(PAYMENT_ID).await,
                    Err(ProviderError::Malformed {
                        provider: "YooKassa",
                        ..
                    })
                ),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[tokio::test]
    async fn an_invalid_object_id_is_never_requested() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::any())
            .respond_with(ResponseTemplate::new(200).set_body_json(payment_json()))
            .mount(&server)
            .await;
        let api = HttpYooKassa::new(
            crate::adapters::http::client().unwrap(),
            &server.uri(),
            SHOP,
            Secret::new(SECRET),
        );
        let too_long = "a".repeat(65);
        for id in [
            "",
            "../refunds/x",
            "a b",
            "x?y=1",
            "платёж",
            too_long.as_str(),
        ] {
            assert_eq!(api.payment(id).await.unwrap(), None, "{id:?}");
            assert_eq!(api.refund(id).await.unwrap(), None, "{id:?}");
        }
        assert!(server.received_requests().await.unwrap().is_empty());
    }

    async fn refund_with(
        answer: ResponseTemplate,
    ) -> (Result<RefundOutcome, RefundError>, Vec<wiremock::Request>) {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/v3/refunds"))
            .respond_with(answer)
            .mount(&server)
            .await;
        let gateway = YooKassaRefunds {
            client: crate::adapters::http::client().unwrap(),
            api_url: format!("{}/v3/", server.uri()),
            shop_id: SHOP.into(),
            secret_key: Secret::new(SECRET),
        };
        let order = OrderId::parse("7001").unwrap();
        let payment = PaymentRef::new(Source::Yookassa, PAYMENT_ID).unwrap();
        let out = gateway
            .refund(&RefundCall {
                order: &order,
                request_id: "refund#7001#1",
                payment: &payment,
                amount: 150_000,
                currency: Currency::RUB,
                refunded_before: 0,
                captured: 500_000,
                reason: "Возврат по заявке покупателя",
                retry: false,
                pay_method: None,
                receipt: None,
                taxation: None,
                to_bank: None,
            })
            .await;
        (out, server.received_requests().await.unwrap())
    }

    fn refund_answer_json(status: &str) -> serde_json::Value {
        json!({
            "id": REFUND_ID, "payment_id": PAYMENT_ID, "status": status,
            "amount": {"value": "1500.00", "currency": "RUB"},
            "created_at": "2026-11-28T12:00:00.000Z"
        })
    }

    #[tokio::test]
    async fn a_refund_posts_the_payment_a_decimal_amount_and_the_idempotence_key() {
        let (out, requests) =
            refund_with(ResponseTemplate::new(200).set_body_json(refund_answer_json("succeeded")))
                .await;
        assert_eq!(requests.len(), 1);
        let r = &requests[0];
        assert_eq!(
            r.headers
                .get("idempotence-key")
                .and_then(|v| v.to_str().ok()),
            Some(idempotency_key("refund#7001#1").as_str())
        );
        assert_eq!(
            r.headers.get("authorization").and_then(|v| v.to_str().ok()),
            Some(basic().as_str())
        );
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({
                "payment_id": PAYMENT_ID,
                "amount": {"value": "1500.00", "currency": "RUB"},
                "description": "Возврат по заявке покупателя",
            })
        );
        let RefundOutcome::Done { fact, provider_id } = out.unwrap() else {
            panic!("not done")
        };
        assert_eq!(provider_id.as_deref(), Some(REFUND_ID));
        assert_eq!(
            fact.id.as_str(),
            format!("yookassa#refund#{REFUND_ID}").as_str()
        );
        assert_eq!(fact.order_id.as_str(), "7001");
        assert_eq!(
            fact.kind,
            FactKind::Refund {
                amount: RefundAmount::Delta(150_000)
            }
        );
    }

    #[tokio::test]
    async fn a_pending_refund_waits_for_its_notification() {
        let (out, _) =
            refund_with(ResponseTemplate::new(200).set_body_json(refund_answer_json("pending")))
                .await;
        assert_eq!(
            out.unwrap(),
            RefundOutcome::Pending {
                provider_id: Some(REFUND_ID.into()),
                expect: Some(format!("yookassa#refund#{REFUND_ID}")),
            }
        );
    }

    #[tokio::test]
    async fn a_failing_api_is_transient_and_a_refused_or_canceled_refund_permanent() {
        let (out, _) = refund_with(ResponseTemplate::new(500)).await;
        assert!(matches!(out, Err(RefundError::Transient(_))), "{out:?}");
        let (out, _) = refund_with(ResponseTemplate::new(429)).await;
        assert!(matches!(out, Err(RefundError::Transient(_))), "{out:?}");
        let (out, _) = refund_with(ResponseTemplate::new(400).set_body_json(json!({
            "type": "error", "code": "invalid_request", "description": "Refund amount exceeds payment"
        })))
        .await;
        assert!(
            matches!(&out, Err(RefundError::Permanent(r)) if r.contains("HTTP 400") && r.contains("exceeds")),
            "{out:?}"
        );
        let (out, _) =
            refund_with(ResponseTemplate::new(200).set_body_json(refund_answer_json("canceled")))
                .await;
        assert!(
            matches!(&out, Err(RefundError::Permanent(r)) if r.contains("canceled")),
            "{out:?}"
        );
    }
}
