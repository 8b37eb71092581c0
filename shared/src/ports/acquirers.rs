//! The acquirers' APIs as the use cases see them: payment and refund status look-ups and refund execution, with
//! their value types and errors. The HTTP clients implementing them are in `adapters::http::{tbank, sber, yookassa}`.
//!
//! A refund gateway turns a refund request into the provider's call, with an idempotency key derived from the
//! request id, and the provider's answer into either the refund fact (the same fact, same id, the provider's
//! notification will produce, so the notification is a duplicate), a pending state, or an error that is worth
//! retrying (timeouts, 5xx, 429) or not (the provider refused).

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};

use crate::domain::{Currency, OrderId, PayMethod, PaymentFact, PaymentRef, Source};
use crate::formats::sber::GatewayStatus;
use crate::formats::tbank::StateResponse;
use crate::formats::yookassa::{Payment, Refund};

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Timeout, connection failure, 5xx, 429: worth retrying later.
    #[error("{provider} API unavailable: {reason}")]
    Unavailable {
        provider: &'static str,
        reason: String,
    },
    /// The provider refused the request (auth, bad id, …).
    #[error("{provider} API refused the request: HTTP {status}")]
    Refused { provider: &'static str, status: u16 },
    #[error("{provider} API answered something unreadable: {reason}")]
    Malformed {
        provider: &'static str,
        reason: String,
    },
}

#[async_trait]
pub trait YooKassaApi: Send + Sync {
    /// `GET /payments/{id}`; `None` when YooKassa does not know the id.
    async fn payment(&self, id: &str) -> Result<Option<Payment>, ProviderError>;
    /// `GET /refunds/{id}`; `None` when YooKassa does not know the id.
    async fn refund(&self, id: &str) -> Result<Option<Refund>, ProviderError>;
}

/// T-Bank's acquiring API as status-sync asks it.
#[async_trait]
pub trait TbankApi: Send + Sync {
    /// `POST /v2/GetState` for a payment (`PaymentId`); the answer as T-Bank gave it (`Success: false` included).
    async fn get_state(&self, payment_id: &str) -> Result<StateResponse, ProviderError>;
    /// `POST /v2/GetQrState` for an SBP payment: how its refund went at the SBP.
    async fn get_qr_state(
        &self,
        payment_id: &str,
    ) -> Result<crate::formats::tbank::QrStateResponse, ProviderError>;
}

#[async_trait]
pub trait SberGateway: Send + Sync {
    /// `getOrderStatusExtended.do` for a gateway order id (`mdOrder`).
    async fn order_status(&self, md_order: &str) -> Result<GatewayStatus, ProviderError>;
}

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
    /// The payment method the acquirer reported for the payment (SBP refunds follow other rules at T-Bank).
    pub pay_method: Option<&'a PayMethod>,
    /// The fiscal receipt of a partial refund, when the acquirer's receipts service issues the shop's receipts.
    pub receipt: Option<&'a crate::domain::receipt::Receipt>,
    /// `RECEIPT_TAXATION` (T-Bank's `Receipt.Taxation`).
    pub taxation: Option<&'a str>,
    /// An SBP refund to another bank of the buyer: its SBP member id (T-Bank `QrMemberId`).
    pub to_bank: Option<&'a str>,
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
