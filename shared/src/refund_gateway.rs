//! Acquirer refund APIs behind one port. Each adapter turns a refund request into the provider's call, with an
//! idempotency key derived from the request id, and the provider's answer into either the refund fact (the same
//! fact, same id, the provider's notification will produce, so the notification is a duplicate), a pending state,
//! or an error that is worth retrying (timeouts, 5xx, 429) or not (the provider refused).

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::clients::{ApiError, SberGateway};
use crate::config::Secret;
use crate::domain::money::format_minor;
use crate::domain::{Currency, OrderId, PaymentFact, PaymentRef, Source};
use crate::formats::{sber, tbank, yookassa};

/// One refund to execute.
#[derive(Debug, Clone)]
pub struct RefundCall<'a> {
    pub order: &'a OrderId,
    /// The request's fact id: the idempotency key derives from it.
    pub request_id: &'a str,
    /// The acquirer payment it returns (`tbank:<PaymentId>`, `sber:<mdOrder>`, `yookassa:<payment id>`).
    pub payment: &'a PaymentRef,
    pub amount: i64,
    pub currency: Currency,
    /// What the ledger already counts as refunded on that payment.
    pub refunded_before: i64,
    /// What the payment captured.
    pub captured: i64,
    pub reason: &'a str,
    /// An earlier attempt was sent and its outcome is unknown (a timeout, a crash).
    pub retry: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RefundOutcome {
    /// Executed: the refund fact to record.
    Done {
        fact: Box<PaymentFact>,
        provider_id: Option<String>,
    },
    /// Accepted; the provider's notification (the fact `expect`) completes it.
    Pending {
        provider_id: Option<String>,
        expect: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundError {
    /// Timeout, connection failure, 5xx, 429: retry with the same key.
    #[error("{0}")]
    Transient(String),
    /// The provider refused for good; the request fails with this reason.
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait RefundGateway: Send + Sync {
    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError>;

    /// The fact id the acquirer's notification of this refund will have, when it can be known before the call.
    fn expected_fact(&self, _call: &RefundCall<'_>) -> Option<String> {
        None
    }
}

/// The same request id always gives the same key (32 hex characters fit every provider's limit).
pub fn idempotency_key(request_id: &str) -> String {
    let digest = hex::encode(Sha256::digest(request_id.as_bytes()));
    digest[..32].to_owned()
}

fn external(payment: &PaymentRef) -> &str {
    payment
        .as_str()
        .split_once(':')
        .map_or(payment.as_str(), |(_, id)| id)
}

fn api(provider: &str, e: ApiError) -> RefundError {
    match e {
        ApiError::Unavailable { reason, .. } => {
            RefundError::Transient(format!("{provider}: {reason}"))
        }
        other => RefundError::Permanent(other.to_string()),
    }
}

fn transport(provider: &str, e: &reqwest::Error) -> RefundError {
    RefundError::Transient(format!("{provider}: {}", crate::http::failure_kind(e)))
}

/// Reads the answer; 5xx and 429 are transient, other non-2xx permanent (with the body's first 300 characters).
async fn answer(provider: &str, resp: reqwest::Response) -> Result<Vec<u8>, RefundError> {
    let status = resp.status();
    let body = crate::http::read_capped(resp, 1024 * 1024)
        .await
        .map_err(|e| RefundError::Transient(format!("{provider}: {e}")))?;
    if status.is_success() {
        return Ok(body);
    }
    let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
    let reason = format!("{provider}: HTTP {} {text}", status.as_u16());
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(RefundError::Transient(reason))
    } else {
        Err(RefundError::Permanent(reason))
    }
}

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
            tbank::notification_key(external(call.payment), status, remaining.max(0), true)
        ))
    }

    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
        const P: &str = "T-Bank";
        let body = tbank::cancel_request(
            &self.terminal_key,
            self.password.expose(),
            external(call.payment),
            call.amount,
            &idempotency_key(call.request_id),
        );
        let resp = self
            .client
            .post(format!("{}/Cancel", self.api_url.trim_end_matches('/')))
            .json(&body)
            .send()
            .await
            .map_err(|e| transport(P, &e))?;
        let bytes = answer(P, resp).await?;
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
                let fact = tbank::cancel_fact(&r, call.order.clone(), crate::ledger::now_ms())
                    .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?
                    .ok_or_else(|| RefundError::Permanent(format!("{P}: no refund in answer")))?;
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
            "payment_id": external(call.payment),
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
            .map_err(|e| transport(P, &e))?;
        let bytes = answer(P, resp).await?;
        let refund: yookassa::Refund = serde_json::from_slice(&bytes)
            .map_err(|e| RefundError::Transient(format!("{P}: unreadable answer: {e}")))?;
        match refund.status.as_str() {
            "succeeded" => {
                let fact =
                    yookassa::refund_fact(&refund, call.order.clone(), crate::ledger::now_ms())
                        .map_err(|e| RefundError::Permanent(format!("{P}: {e}")))?
                        .ok_or_else(|| {
                            RefundError::Permanent(format!("{P}: no refund in answer"))
                        })?;
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
                external(call.payment),
                "refunded",
                true,
                Some(call.refunded_before + call.amount)
            )
        ))
    }

    async fn refund(&self, call: &RefundCall<'_>) -> Result<RefundOutcome, RefundError> {
        const P: &str = "Sber";
        let md_order = external(call.payment);
        let total = call.refunded_before + call.amount;
        let done = |total: i64| -> Result<RefundOutcome, RefundError> {
            let fact =
                sber::refund_fact(md_order, call.order.clone(), total, crate::ledger::now_ms())
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
                .map_err(|e| api(P, e))?;
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
            .map_err(|e| transport(P, &e))?;
        let bytes = answer(P, resp).await?;
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

/// The configured gateways, chosen by the payment's acquirer.
/// The refund API of every configured acquirer, keyed by the acquirer ([`Source`]).
#[derive(Default, Clone)]
pub struct Gateways(std::collections::BTreeMap<Source, Arc<dyn RefundGateway>>);

impl Gateways {
    /// With `gateway` as `acquirer`'s refund API.
    pub fn with(mut self, acquirer: Source, gateway: Arc<dyn RefundGateway>) -> Self {
        self.0.insert(acquirer, gateway);
        self
    }

    /// The refund API of the acquirer that took `payment`.
    pub fn for_payment(&self, payment: &PaymentRef) -> Result<&dyn RefundGateway, RefundError> {
        let acquirer = payment
            .source()
            .filter(|s| s.is_acquirer())
            .ok_or_else(|| {
                RefundError::Permanent(format!("{payment} was not taken by an acquirer"))
            })?;
        self.0.get(&acquirer).map(|g| g.as_ref()).ok_or_else(|| {
            RefundError::Permanent(format!(
                "{} refunds are not configured here",
                acquirer.display_name().unwrap_or(acquirer.as_str())
            ))
        })
    }
}
