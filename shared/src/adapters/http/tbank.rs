//! T-Bank's acquiring API (`/v2`): refunds through `Cancel`.

use async_trait::async_trait;

use super::{refund_answer, refund_transport};
use crate::platform::config::Secret;
use crate::ports::acquirers::{
    idempotency_key, RefundCall, RefundError, RefundGateway, RefundOutcome,
};

use crate::formats::tbank;

/// T-Bank `POST /v2/Cancel`, Token-signed, `ExternalRequestId` = the idempotency key.
pub struct TbankRefunds {
    pub client: reqwest::Client,
    pub api_url: String,
    pub terminal_key: String,
    pub password: Secret,
}

#[async_trait]
impl RefundGateway for TbankRefunds {
    fn expected_fact(&self, call: &RefundCall<'_>) -> Option<String> {
        let remaining = call.captured - call.refunded_before - call.amount;
        let status = if remaining <= 0 {
            "REFUNDED"
        } else {
            "PARTIAL_REFUNDED"
        };
        Some(format!(
            "tbank#{}",
            tbank::notification_key(call.payment.external(), status, remaining.max(0), true)
        ))
    }

    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
        const P: &str = "T-Bank";
        let body = tbank::cancel_request(
            &self.terminal_key,
            self.password.expose(),
            call.payment.external(),
            call.amount,
            &idempotency_key(call.request_id),
        );
        let resp = self
            .client
            .post(format!("{}/Cancel", self.api_url.trim_end_matches('/')))
            .json(&body)
            .send()
            .await
            .map_err(|e| refund_transport(P, &e))?;
        let bytes = refund_answer(P, resp).await?;
        let r: tbank::CancelResponse = serde_json::from_slice(&bytes)
            .map_err(|e| RefundError::Transient(format!("{P}: unreadable answer: {e}")))?;
        if !r.success {
            return Err(RefundError::Permanent(format!(
                "{P}: {} {} (ErrorCode {})",
                r.message.as_deref().unwrap_or(""),
                r.details.as_deref().unwrap_or(""),
                r.error_code
            )));
        }
        match r.status.as_str() {
            "REFUNDED" | "PARTIAL_REFUNDED" if tbank::cancel_remaining(&r).is_some() => {
                let fact =
                    tbank::cancel_fact(&r, call.order.clone(), crate::platform::clock::now_ms())
                        .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?
                        .ok_or_else(|| {
                            RefundError::Permanent(format!("{P}: no refund in answer"))
                        })?;
                Ok(RefundOutcome::Done {
                    fact: Box::new(fact),
                    provider_id: None,
                })
            }
            // A partial refund whose answer does not say what is left is not counted as everything refunded:
            // it stays pending until T-Bank's notification says how much it was.
            "REFUNDED" | "PARTIAL_REFUNDED" | "REFUNDING" | "ASYNC_REFUNDING" => {
                let expect = tbank::cancel_remaining(&r).map(|remaining| {
                    let status = if remaining == 0 {
                        "REFUNDED"
                    } else {
                        "PARTIAL_REFUNDED"
                    };
                    format!(
                        "tbank#{}",
                        tbank::notification_key(&r.payment_id, status, remaining, true)
                    )
                });
                Ok(RefundOutcome::Pending {
                    provider_id: None,
                    expect,
                })
            }
            other => Err(RefundError::Permanent(format!(
                "{P}: Cancel answered status {other}"
            ))),
        }
    }
}
