//! The shop's outbound hooks (`STORE_HOOKS`): a JSON POST signed with the hook's secret, so the receiver can check
//! it came from paysync and deduplicate on the event id.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::ports::store_api::{Hook, HookError, HookSender};

/// `X-Paysync-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

pub struct HttpHooks {
    pub client: reqwest::Client,
}

#[async_trait]
impl HookSender for HttpHooks {
    async fn send(&self, hook: Hook<'_>) -> Result<(), HookError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let resp = self
            .client
            .post(hook.url)
            .header("content-type", "application/json")
            .header("x-paysync-event-id", hook.event_id)
            .header(
                "x-paysync-signature",
                sign(hook.secret.expose(), now, hook.body),
            )
            .body(hook.body.to_owned())
            .send()
            .await
            .map_err(|_| HookError::Unreachable {
                event_id: hook.event_id.to_owned(),
            })?;
        if !resp.status().is_success() {
            return Err(HookError::Refused {
                event_id: hook.event_id.to_owned(),
                status: resp.status().as_u16(),
            });
        }
        Ok(())
    }
}
