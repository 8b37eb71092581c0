//! Sber's acquiring gateway (`/payment/rest`): `getOrderStatusExtended.do` and `refund.do`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{refund_answer, refund_error, refund_transport};
use crate::platform::config::Secret;
use crate::ports::acquirers::{RefundCall, RefundError, RefundGateway, RefundOutcome};

use super::{body, by_status, transport};
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
        let status = resp.status();
        if !status.is_success() {
            return Err(by_status(P, status));
        }
        let bytes = body(P, resp).await?;
        let body: StatusExtended =
            serde_json::from_slice(&bytes).map_err(|e| ProviderError::Malformed {
                provider: P,
                reason: e.to_string(),
            })?;
        if let Some(code) = body.error_code.as_deref().filter(|c| *c != "0") {
            return Err(ProviderError::Malformed {
                provider: P,
                reason: format!("errorCode {code}"),
            });
        }
        let info = body.payment_amount_info;
        Ok(GatewayStatus {
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
