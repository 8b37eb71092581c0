//! The shop's outbound hooks: fired once per (hook, order, state), remembered in [`Markers`].

use serde_json::json;
use time::OffsetDateTime;

use super::{PushConfig, PushError};
use crate::ports::store_api::{Hook, HookSender};
use crate::ports::{MarkerKind, Markers};

/// Fire the hooks configured for the order's state, once per (hook, order, state): the event id is
/// `<order id>#<state>`, the same on every retry, so a receiver deduplicates on it. A failed POST fails the message
/// (SQS retries it); a delivered one is remembered in the ledger table and not sent again.
pub async fn fire_hooks(
    markers: &dyn Markers,
    hooks: &dyn HookSender,
    config: &PushConfig,
    order: &crate::domain::Order,
) -> Result<usize, PushError> {
    let state = order.state().as_str();
    let mut sent = 0;
    for hook in config
        .hooks
        .iter()
        .filter(|h| h.on.iter().any(|s| s == state))
    {
        let event_id = format!("{}#{state}", order.id);
        let marker = format!(
            "{}#{event_id}",
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(hook.url.as_bytes()))[..16]
        );
        if markers
            .marker(MarkerKind::HookDelivered, &marker)
            .await?
            .is_some()
        {
            continue;
        }
        let t = order.totals();
        let body = json!({
            "id": event_id,
            "type": format!("order.{state}"),
            "order_id": order.id.as_str(),
            "number": order.info.as_ref().and_then(|i| i.number.clone()),
            "state": state,
            "total": order.total(),
            "paid": t.net(),
            "paid_percent": order.paid_percent(),
            "currency": order.currency().as_str(),
        })
        .to_string();
        hooks
            .send(Hook {
                url: &hook.url,
                secret: &hook.secret,
                event_id: &event_id,
                body: &body,
            })
            .await?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        markers
            .set_marker(MarkerKind::HookDelivered, &marker, &now.to_string())
            .await?;
        sent += 1;
    }
    Ok(sent)
}
