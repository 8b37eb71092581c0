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
