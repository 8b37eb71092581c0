//! Sber's acquiring gateway (`/payment/rest`): `getOrderStatusExtended.do` and `refund.do`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{refund_answer, refund_error, refund_transport};
use crate::platform::config::Secret;
use crate::ports::acquirers::{RefundCall, RefundError, RefundGateway, RefundOutcome};

use super::{json_answer, transport};
use crate::domain::Currency;
use crate::formats::sber::{self, GatewayStatus};
use crate::ports::acquirers::{ProviderError, SberGateway};

pub struct HttpSberGateway {
    client: reqwest::Client,
    base_url: String,
    username: String,
    password: Secret,
}

impl HttpSberGateway {
    pub fn new(client: reqwest::Client, base_url: &str, username: &str, password: Secret) -> Self {
        HttpSberGateway {
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
            username: username.to_owned(),
            password,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StatusExtended {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    order_status: Option<i64>,
    #[serde(default)]
    order_number: Option<String>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    payment_amount_info: Option<AmountInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AmountInfo {
    #[serde(default)]
    approved_amount: Option<i64>,
    #[serde(default)]
    deposited_amount: Option<i64>,
    #[serde(default)]
    refunded_amount: Option<i64>,
}

#[async_trait]
impl SberGateway for HttpSberGateway {
    async fn order_status(&self, md_order: &str) -> Result<GatewayStatus, ProviderError> {
        const P: &str = "Sber";
        let resp = self
            .client
            .post(format!("{}/getOrderStatusExtended.do", self.base_url))
            .form(&[
                ("userName", self.username.as_str()),
                ("password", self.password.expose()),
                ("orderId", md_order),
            ])
            .send()
            .await
            .map_err(|e| transport(P, &e))?;
        let body: StatusExtended = json_answer(P, resp).await?;
        if let Some(code) = body.error_code.as_deref().filter(|c| *c != "0") {
            return Err(ProviderError::Malformed {
                provider: P,
                reason: format!("errorCode {code}"),
            });
        }
        let info = body.payment_amount_info;
        Ok(GatewayStatus {
            order_status: body.order_status,
            order_number: body.order_number,
            currency: body
                .currency
                .as_deref()
                .and_then(|c| Currency::from_numeric(c).ok()),
            amount: body.amount,
            approved: info.as_ref().and_then(|i| i.approved_amount),
            deposited: info.as_ref().and_then(|i| i.deposited_amount),
            refunded: info.as_ref().and_then(|i| i.refunded_amount),
        })
    }
}

/// Sber `refund.do` (userName/password). It has no idempotency key: when an earlier attempt's outcome is unknown,
/// the gateway's own refunded total (`getOrderStatusExtended.do`) tells whether it was executed.
pub struct SberRefunds {
    pub client: reqwest::Client,
    pub api_url: String,
    pub username: String,
    pub password: Secret,
    pub status: Arc<dyn SberGateway>,
}

#[async_trait]
impl RefundGateway for SberRefunds {
    fn expected_fact(&self, call: &RefundCall<'_>) -> Option<String> {
        Some(format!(
            "sber#{}",
            sber::callback_key(
                call.payment.external(),
                "refunded",
                true,
                Some(call.refunded_before + call.amount)
            )
        ))
    }

    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
        const P: &str = "Sber";
        let md_order = call.payment.external();
        let total = call.refunded_before + call.amount;
        let done = |total: i64| -> Result<RefundOutcome, RefundError> {
            let fact = sber::refund_fact(
                md_order,
                call.order.clone(),
                total,
                crate::platform::clock::now_ms(),
            )
            .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?;
            Ok(RefundOutcome::Done {
                fact: Box::new(fact),
                provider_id: None,
            })
        };
        if call.retry {
            let status = self
                .status
                .order_status(md_order)
                .await
                .map_err(|e| refund_error(P, e))?;
            if let Some(refunded) = status.refunded.filter(|r| *r >= total) {
                return done(refunded);
            }
        }
        let amount = call.amount.to_string();
        let resp = self
            .client
            .post(format!("{}/refund.do", self.api_url.trim_end_matches('/')))
            .form(&[
                ("userName", self.username.as_str()),
                ("password", self.password.expose()),
                ("orderId", md_order),
                ("amount", amount.as_str()),
            ])
            .send()
            .await
            .map_err(|e| refund_transport(P, &e))?;
        let bytes = refund_answer(P, resp).await?;
        let r: sber::RefundResponse = serde_json::from_slice(&bytes)
            .map_err(|e| RefundError::Transient(format!("{P}: unreadable answer: {e}")))?;
        if !r.ok() {
            return Err(RefundError::Permanent(format!(
                "{P}: {} (errorCode {})",
                r.error_message.as_deref().unwrap_or(""),
                r.error_code.as_deref().unwrap_or("")
            )));
        }
        done(total)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    use super::*;
    use crate::domain::{FactKind, OrderId, PaymentRef, RefundAmount, Source};

    const MD_ORDER: &str = "06cf5599-3f17-7c86-bdbc-bd7d00a8b38b";
    const STATUS_PATH: &str = "/payment/rest/getOrderStatusExtended.do";
    const REFUND_PATH: &str = "/payment/rest/refund.do";

    fn form(req: &wiremock::Request) -> Vec<(String, String)> {
        form_urlencoded::parse(&req.body).into_owned().collect()
    }

    async fn requests_to(server: &MockServer, p: &str) -> Vec<wiremock::Request> {
        server
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == p)
            .collect()
    }

    fn gateway(server: &MockServer) -> HttpSberGateway {
        HttpSberGateway::new(
            crate::adapters::http::client().unwrap(),
            &format!("{}/payment/rest/", server.uri()),
            "shop-api",
            Secret::new("sber-password"),
        )
    }

    async fn status_answer(server: &MockServer, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(STATUS_PATH))
            .respond_with(answer)
            .mount(server)
            .await;
    }

    fn status_json(refunded: i64) -> serde_json::Value {
        json!({
            "errorCode": "0", "errorMessage": "Успешно", "orderNumber": "7001_1", "orderStatus": 4,
            "amount": 500_000, "currency": "643",
            "paymentAmountInfo": {
                "paymentState": "REFUNDED", "approvedAmount": 500_000,
                "depositedAmount": 500_000, "refundedAmount": refunded
            }
        })
    }

    #[tokio::test]
    async fn the_order_status_is_asked_with_the_credentials_and_read_from_payment_amount_info() {
        let server = MockServer::start().await;
        status_answer(
            &server,
            ResponseTemplate::new(200).set_body_json(status_json(150_000)),
        )
        .await;
        let status = gateway(&server).order_status(MD_ORDER).await.unwrap();
        assert_eq!(
            status,
            GatewayStatus {
                order_status: Some(4),
                order_number: Some("7001_1".into()),
                currency: Some(Currency::RUB),
                amount: Some(500_000),
                approved: Some(500_000),
                deposited: Some(500_000),
                refunded: Some(150_000),
            }
        );
        let requests = requests_to(&server, STATUS_PATH).await;
        assert_eq!(requests.len(), 1);
        let mut sent = form(&requests[0]);
        sent.sort();
        assert_eq!(
            sent,
            [
                ("orderId".to_owned(), MD_ORDER.to_owned()),
                ("password".to_owned(), "sber-password".to_owned()),
                ("userName".to_owned(), "shop-api".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn an_answer_without_amount_info_leaves_the_amounts_unknown() {
        let server = MockServer::start().await;
        status_answer(
            &server,
            ResponseTemplate::new(200)
                .set_body_json(json!({"errorCode": "0", "amount": 100, "currency": "643"})),
        )
        .await;
        let status = gateway(&server).order_status(MD_ORDER).await.unwrap();
        assert_eq!(
            (
                status.amount,
                status.approved,
                status.deposited,
                status.refunded
            ),
            (Some(100), None, None, None)
        );
    }

    #[tokio::test]
    async fn an_error_code_other_than_zero_is_an_error() {
        let server = MockServer::start().await;
        status_answer(
            &server,
            ResponseTemplate::new(200)
                .set_body_json(json!({"errorCode": "6", "errorMessage": "Заказ не найден"})),
        )
        .await;
        match gateway(&server).order_status(MD_ORDER).await {
            Err(ProviderError::Malformed { provider, reason }) => {
                assert_eq!((provider, reason.as_str()), ("Sber", "errorCode 6"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_failing_gateway_is_unavailable_and_a_refusal_refused() {
        let server = MockServer::start().await;
        status_answer(&server, ResponseTemplate::new(503)).await;
        assert!(matches!(
            gateway(&server).order_status(MD_ORDER).await,
            Err(ProviderError::Unavailable {
                provider: "Sber",
                ..
            })
        ));
        let server = MockServer::start().await;
        status_answer(&server, ResponseTemplate::new(403)).await;
        assert!(matches!(
            gateway(&server).order_status(MD_ORDER).await,
            Err(ProviderError::Refused {
                provider: "Sber",
                status: 403
            })
        ));
        let server = MockServer::start().await;
        status_answer(
            &server,
            ResponseTemplate::new(200).set_body_string("<html/>"),
        )
        .await;
        assert!(matches!(
            gateway(&server).order_status(MD_ORDER).await,
            Err(ProviderError::Malformed { .. })
        ));
    }

    /// Refund 1 500,00 of `MD_ORDER` (5 000,00 captured, `refunded_before` already returned) with `refund.do`
    /// answering `answer`; the status endpoint on the same server.
    async fn refund(
        server: &MockServer,
        answer: ResponseTemplate,
        refunded_before: i64,
        retry: bool,
    ) -> (Result<RefundOutcome, RefundError>, Option<String>) {
        Mock::given(method("POST"))
            .and(path(REFUND_PATH))
            .respond_with(answer)
            .mount(server)
            .await;
        let refunds = SberRefunds {
            client: crate::adapters::http::client().unwrap(),
            api_url: format!("{}/payment/rest", server.uri()),
            username: "shop-api".into(),
            password: Secret::new("sber-password"),
            status: Arc::new(gateway(server)),
        };
        let order = OrderId::parse("7001").unwrap();
        let payment = PaymentRef::new(Source::Sber, MD_ORDER).unwrap();
        let call = RefundCall {
            order: &order,
            request_id: "refund#7001#1",
            payment: &payment,
            amount: 150_000,
            currency: Currency::RUB,
            refunded_before,
            captured: 500_000,
            reason: "returned goods",
            retry,
            pay_method: None,
            receipt: None,
            taxation: None,
            to_bank: None,
        };
        (refunds.refund(&call).await, refunds.expected_fact(&call))
    }

    fn ok() -> ResponseTemplate {
        ResponseTemplate::new(200)
            .set_body_json(json!({"errorCode": "0", "errorMessage": "Успешно"}))
    }

    fn total_refunded(outcome: &RefundOutcome) -> (String, FactKind) {
        let RefundOutcome::Done { fact, .. } = outcome else {
            panic!("not done: {outcome:?}")
        };
        (fact.id.as_str().to_owned(), fact.kind.clone())
    }

    #[tokio::test]
    async fn a_first_attempt_refunds_without_asking_and_reports_the_new_refunded_total() {
        let server = MockServer::start().await;
        status_answer(
            &server,
            ResponseTemplate::new(200).set_body_json(status_json(0)),
        )
        .await;
        let (out, expected) = refund(&server, ok(), 50_000, false).await;
        let (id, kind) = total_refunded(&out.unwrap());
        assert_eq!(id, format!("sber#{MD_ORDER}#refunded#1#200000"));
        assert_eq!(expected.as_deref(), Some(id.as_str()));
        assert_eq!(
            kind,
            FactKind::Refund {
                amount: RefundAmount::TotalRefunded(200_000)
            }
        );
        assert!(
            requests_to(&server, STATUS_PATH).await.is_empty(),
            "not asked"
        );
        let requests = requests_to(&server, REFUND_PATH).await;
        assert_eq!(requests.len(), 1);
        let mut sent = form(&requests[0]);
        sent.sort();
        assert_eq!(
            sent,
            [
                ("amount".to_owned(), "150000".to_owned()),
                ("orderId".to_owned(), MD_ORDER.to_owned()),
                ("password".to_owned(), "sber-password".to_owned()),
                ("userName".to_owned(), "shop-api".to_owned()),
            ]
        );
    }

    #[tokio::test]
    async fn a_retry_the_gateway_already_executed_is_not_refunded_again() {
        let server = MockServer::start().await;
        // 500,00 before and this attempt's 1 500,00: the gateway's total covers both.
        status_answer(
            &server,
            ResponseTemplate::new(200).set_body_json(status_json(200_000)),
        )
        .await;
        let (out, expected) = refund(&server, ok(), 50_000, true).await;
        let (id, kind) = total_refunded(&out.unwrap());
        assert_eq!(expected.as_deref(), Some(id.as_str()));
        assert_eq!(
            kind,
            FactKind::Refund {
                amount: RefundAmount::TotalRefunded(200_000)
            }
        );
        assert_eq!(requests_to(&server, STATUS_PATH).await.len(), 1);
        assert!(
            requests_to(&server, REFUND_PATH).await.is_empty(),
            "refund.do was not called again"
        );
    }

    #[tokio::test]
    async fn a_retry_the_gateway_did_not_execute_refunds() {
        let server = MockServer::start().await;
        // Only the earlier 500,00 is refunded: this attempt never reached the gateway.
        status_answer(
            &server,
            ResponseTemplate::new(200).set_body_json(status_json(50_000)),
        )
        .await;
        let (out, _) = refund(&server, ok(), 50_000, true).await;
        let (id, _) = total_refunded(&out.unwrap());
        assert_eq!(id, format!("sber#{MD_ORDER}#refunded#1#200000"));
        assert_eq!(requests_to(&server, STATUS_PATH).await.len(), 1);
        assert_eq!(requests_to(&server, REFUND_PATH).await.len(), 1);
    }

    #[tokio::test]
    async fn a_retry_whose_status_is_unavailable_is_transient_and_refunds_nothing() {
        let server = MockServer::start().await;
        status_answer(&server, ResponseTemplate::new(503)).await;
        let (out, _) = refund(&server, ok(), 0, true).await;
        assert!(matches!(out, Err(RefundError::Transient(_))), "{out:?}");
        assert!(requests_to(&server, REFUND_PATH).await.is_empty());
    }

    #[tokio::test]
    async fn a_refused_refund_is_permanent_and_a_failing_gateway_transient() {
        let server = MockServer::start().await;
        let (out, _) = refund(
            &server,
            ResponseTemplate::new(200).set_body_json(json!({"errorCode": "7", "errorMessage": "Сумма возврата превышает сумму списания"})),
            0,
            false,
        )
        .await;
        assert!(
            matches!(&out, Err(RefundError::Permanent(r)) if r.contains("errorCode 7") && r.contains("превышает")),
            "{out:?}"
        );
        let server = MockServer::start().await;
        let (out, _) = refund(&server, ResponseTemplate::new(502), 0, false).await;
        assert!(matches!(out, Err(RefundError::Transient(_))), "{out:?}");
        let server = MockServer::start().await;
        let (out, _) = refund(&server, ResponseTemplate::new(400), 0, false).await;
        assert!(matches!(out, Err(RefundError::Permanent(_))), "{out:?}");
    }
}
