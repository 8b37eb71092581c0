//! Outbound HTTP clients of provider APIs, behind small traits so handlers can be tested with fakes.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use crate::config::Secret;
use crate::domain::Currency;
use crate::formats::sber::GatewayStatus;
use crate::formats::yookassa::{self, Payment, Refund};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
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

/// Requests to acquirers must finish well inside T-Bank's 10 s wait for synchronous notifications.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(6))
        .build()
}

fn transport(provider: &'static str, e: &reqwest::Error) -> ApiError {
    ApiError::Unavailable {
        provider,
        reason: crate::http::failure_kind(e).into(),
    }
}

/// The answer's body, at most 1 MiB (provider objects are a few KB).
async fn body(provider: &'static str, resp: reqwest::Response) -> Result<Vec<u8>, ApiError> {
    crate::http::read_capped(resp, 1024 * 1024)
        .await
        .map_err(|e| ApiError::Unavailable {
            provider,
            reason: e.to_string(),
        })
}

fn by_status(provider: &'static str, status: reqwest::StatusCode) -> ApiError {
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        ApiError::Unavailable {
            provider,
            reason: format!("HTTP {}", status.as_u16()),
        }
    } else {
        ApiError::Refused {
            provider,
            status: status.as_u16(),
        }
    }
}

#[async_trait]
pub trait YooKassaApi: Send + Sync {
    /// `GET /payments/{id}`; `None` when YooKassa does not know the id.
    async fn payment(&self, id: &str) -> Result<Option<Payment>, ApiError>;
    /// `GET /refunds/{id}`; `None` when YooKassa does not know the id.
    async fn refund(&self, id: &str) -> Result<Option<Refund>, ApiError>;
}

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
    ) -> Result<Option<T>, ApiError> {
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
            .map_err(|e| ApiError::Malformed {
                provider: P,
                reason: e.to_string(),
            })
    }
}

#[async_trait]
impl YooKassaApi for HttpYooKassa {
    async fn payment(&self, id: &str) -> Result<Option<Payment>, ApiError> {
        self.get("payments", id).await
    }

    async fn refund(&self, id: &str) -> Result<Option<Refund>, ApiError> {
        self.get("refunds", id).await
    }
}

#[async_trait]
pub trait SberGateway: Send + Sync {
    /// `getOrderStatusExtended.do` for a gateway order id (`mdOrder`).
    async fn order_status(&self, md_order: &str) -> Result<GatewayStatus, ApiError>;
}

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
    async fn order_status(&self, md_order: &str) -> Result<GatewayStatus, ApiError> {
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
            serde_json::from_slice(&bytes).map_err(|e| ApiError::Malformed {
                provider: P,
                reason: e.to_string(),
            })?;
        if let Some(code) = body.error_code.as_deref().filter(|c| *c != "0") {
            return Err(ApiError::Malformed {
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
