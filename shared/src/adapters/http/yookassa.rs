//! YooKassa's API (`/v3`): payment and refund look-ups and refunds.

use async_trait::async_trait;

use super::{refund_answer, refund_transport};
use crate::platform::config::Secret;
use crate::ports::acquirers::{
    idempotency_key, RefundCall, RefundError, RefundGateway, RefundOutcome,
};

use super::{body, by_status, transport};
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
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(by_status(P, status));
        }
        let bytes = body(P, resp).await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ProviderError::Malformed {
                provider: P,
                reason: e.to_string(),
            })
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
        let body = serde_json::json!({
            "payment_id": call.payment.external(),
            "amount": {"value": format_minor(call.amount), "currency": call.currency.as_str()},
            "description": description,
        });
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
