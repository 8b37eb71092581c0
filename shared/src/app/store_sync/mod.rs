//! `store-sync`: the 1C-Bitrix store's side of every order. On a schedule it pulls the store's changed orders into
//! the ledger ([`pull`]); on the events queue it writes every payment change into the store ([`push`]) and fires the
//! shop's outbound hooks ([`hooks`]). The store is reached only through the `BitrixApi` and `HookSender` ports.

mod budget;
mod hooks;
mod pull;
mod push;
#[cfg(test)]
mod tests;

pub use crate::platform::config::PushConfig;
pub use budget::Budgeted;
pub use hooks::fire_hooks;
pub use pull::{pull_orders, PullSummary};
pub use push::{paid_text, plan_push, push_order, push_orders, Planned, PushReport};

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::app::ledger::LedgerError;
use crate::domain::OrderId;
use crate::formats::bitrix::{self, Answer, BitrixError};
use crate::platform::retry::{retry, Backoff};
use crate::ports::store_api::{BitrixApi, HookError, HookSender};
use crate::ports::{Cursors, EventPublisher, LedgerStore, MarkerKind, Markers, StoreDirectory};

pub struct StoreDeps {
    pub store: Arc<dyn LedgerStore>,
    /// What the store described, and the acquirer money waiting for its reference.
    pub directory: Arc<dyn StoreDirectory>,
    /// Where the order pull stopped.
    pub cursors: Arc<dyn Cursors>,
    /// Hooks delivered, refusals noted.
    pub markers: Arc<dyn Markers>,
    pub events: Arc<dyn EventPublisher>,
    pub bitrix: Arc<dyn BitrixApi>,
    /// The deployment's share of the store's REST limit: every call of `bitrix` is taken from it first.
    pub budget: Arc<dyn crate::ports::budget::RequestBudget>,
    /// The shop's outbound hooks.
    pub hooks: Arc<dyn HookSender>,
    /// `STORE_PULL_OVERLAP_MINUTES`: re-read before the watermark (late commits land with earlier `dateUpdate`).
    pub overlap_minutes: i64,
    /// `STORE_PULL_INITIAL_DAYS`: how far back the very first run looks.
    pub initial_days: i64,
    /// How payment state is written into the store.
    pub push: PushConfig,
    /// The events queue read by store-sync itself, to push more orders per `batch` than Lambda hands it.
    pub inbox: Option<Arc<dyn crate::ports::EventsInbox>>,
    /// `STORE_PUSH_ORDERS`: the most orders one invocation pushes together (handed and taken).
    pub push_orders: usize,
}

impl StoreDeps {
    /// The store's API behind the deployment's budget.
    pub fn api(&self, priority: crate::ports::budget::Priority) -> Budgeted<'_> {
        Budgeted {
            api: self.bitrix.as_ref(),
            budget: self.budget.as_ref(),
            priority,
        }
    }
}

/// The store's own answer to a reference look-up (`crate::app::resolve`): `sale.order.list` by `id` or `accountNumber`,
/// `sale.payment.list` by `id`, `accountNumber` or `psInvoiceId` (filters on the REST fields documented for
/// `sale.order.list` / `sale.payment.list`; see `shared/reference/bitrix-rest.md`).
pub struct BitrixLookup<'a>(pub &'a dyn BitrixApi);

#[async_trait]
impl crate::app::resolve::StoreLookup for BitrixLookup<'_> {
    async fn find(
        &self,
        lookup: &crate::domain::Lookup,
    ) -> Result<Option<crate::domain::DirectoryEntry>, crate::ports::BoxError> {
        use crate::domain::{DirectoryEntry, Lookup};
        let (method, field, value) = match lookup {
            Lookup::OrderId(v) => ("sale.order.list", "id", v),
            Lookup::OrderNumber(v) => ("sale.order.list", "accountNumber", v),
            Lookup::Payment { id, .. } => ("sale.payment.list", "id", id),
            Lookup::PaymentNumber(v) => ("sale.payment.list", "accountNumber", v),
            Lookup::Invoice(v) => ("sale.payment.list", "psInvoiceId", v),
        };
        // Ids go as numbers, as Bitrix's own examples write them (`{"filter":{"id":1187}}`); numbers as strings.
        let filter_value = match (field, value.parse::<u64>()) {
            ("id", Ok(n)) => json!(n),
            _ => json!(value),
        };
        let answer =
            call_with_backoff(self.0, method, &json!({"filter": {field: filter_value}}), 2).await?;
        let key = lookup.directory_key().unwrap_or_default();
        if method == "sale.order.list" {
            // An exact match only: the filter is the store's, the check is ours.
            let found = bitrix::orders(&answer.result)?
                .into_iter()
                .find(|o| match lookup {
                    Lookup::OrderId(v) => &o.id == v,
                    _ => o.account_number.as_deref() == Some(value.as_str()),
                });
            return Ok(found.map(|o| DirectoryEntry {
                key,
                order_id: o.id,
                pay_system: None,
            }));
        }
        let found = bitrix::payments(&answer.result)?
            .into_iter()
            .find(|p| match lookup {
                Lookup::Payment { id, .. } => &p.id == id,
                Lookup::PaymentNumber(v) => p.account_number.as_deref() == Some(v.as_str()),
                _ => p.ps_invoice_id.as_deref() == Some(value.as_str()),
            });
        Ok(found
            .filter(|p| !p.order_id.is_empty())
            .map(|p| DirectoryEntry {
                key,
                order_id: p.order_id,
                pay_system: p.pay_system_id,
            }))
    }
}

/// Retry a busy store (rate limit, 5xx, timeout) with growing pauses, then give up for this run.
pub async fn call_with_backoff(
    api: &dyn BitrixApi,
    method: &str,
    params: &Value,
    attempts: u32,
) -> Result<Answer, BitrixError> {
    let policy = Backoff {
        first: Duration::from_millis(500),
        max: Duration::from_secs(8),
        attempts: attempts.max(1) as usize,
    };
    retry(
        policy,
        || api.call(method, params),
        |e| matches!(e, BitrixError::Busy(_)),
    )
    .await
}

/// A change the store refused (after the documented workarounds): said on the order itself, where the shop's
/// manager looks, and kept in the ledger table (`WATERMARK#store-error#<order>`). The message still fails, so SQS
/// retries it and, after `maxReceiveCount`, parks it in the DLQ (alarmed).
async fn note_on_order(deps: &StoreDeps, order: &OrderId, e: &PushError) {
    warn!(order_id = %order, error.message = %e, "the store refused a payment change");
    let text = format!("paysync: the store refused a payment change: {e}");
    // Best effort, both: the message fails anyway and is retried; a note that could not be kept is logged.
    if let Err(e) = deps
        .markers
        .set_marker(MarkerKind::StoreError, order.as_str(), &text)
        .await
    {
        warn!(order_id = %order, error.message = %e, "the store's refusal was not kept in the ledger");
    }
    if let Err(e) = deps
        .api(crate::ports::budget::Priority::Push)
        .call(
            "sale.order.update",
            &json!({"id": order.as_str(), "fields": {"comments": text}}),
        )
        .await
    {
        warn!(order_id = %order, error.message = %e, "the store's refusal was not written on the order");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("outbound hook failed: {0}")]
    Hook(#[from] HookError),
    #[error(transparent)]
    Store(#[from] crate::ports::StoreError),
    #[error(transparent)]
    Bitrix(#[from] BitrixError),
    #[error("store-sync is not configured for this: {0}")]
    Config(String),
}

/// What one order of an invocation needs: nothing (the store shows it already), or a push.
enum Need {
    Nothing(crate::domain::Order),
    Push(crate::domain::Order, Option<String>),
}

/// Read an order and what the store was last told of it, and decide whether the store must be written.
async fn need_of(deps: &StoreDeps, order: &OrderId) -> Result<Option<Need>, PushError> {
    // Read once: the push and the hooks see the same version of the order.
    let Some(ledger_order) = deps.store.load_order(order).await? else {
        return Ok(None);
    };
    let view = push::store_view(&deps.push, &ledger_order);
    let last: Option<serde_json::Value> = deps
        .markers
        .marker(MarkerKind::StoreTold, order.as_str())
        .await?
        .and_then(|t| serde_json::from_str(&t).ok());
    let told_view = last.as_ref().and_then(|t| t["view"].as_str());
    // Only real changes: nothing new to show (an order registered or re-read with the same payment state, a
    // redelivered message) costs no call to the store.
    if view.as_deref() == told_view || (view.is_none() && last.is_none()) {
        info!(order_id = %order, "the store shows this already; nothing to write");
        return Ok(Some(Need::Nothing(ledger_order)));
    }
    Ok(Some(Need::Push(ledger_order, view)))
}

/// After a push: note what the store was told (for the console's order page and the next "only real changes"),
/// then fire the shop's hooks.
async fn after_push(
    deps: &StoreDeps,
    ledger_order: &crate::domain::Order,
    view: Option<String>,
    report: &PushReport,
) -> Result<(), PushError> {
    let order = &ledger_order.id;
    info!(order_id = %order, added = report.added, updated = report.updated, properties = report.properties, "store updated");
    // The store has it either way; a note that could not be kept is logged, not retried.
    let told = serde_json::json!({
        "version": ledger_order.version,
        "state": ledger_order.state().as_str(),
        "paid": ledger_order.totals().net(),
        "at_ms": crate::platform::clock::now_ms(),
        "view": view,
    });
    if let Err(e) = deps
        .markers
        .set_marker(MarkerKind::StoreTold, order.as_str(), &told.to_string())
        .await
    {
        warn!(order_id = %order, error.message = %e, "what the store was told was not noted");
    }
    if !deps.push.hooks.is_empty() {
        fire_hooks(
            deps.markers.as_ref(),
            deps.hooks.as_ref(),
            &deps.push,
            ledger_order,
        )
        .await?;
    }
    Ok(())
}

/// Push every order of `orders` that the store does not show yet, together ([`push::push_orders`]: one `batch` of
/// reads, then the writes 50 commands a call), and fire the hooks. `Ok` or the reason, per order.
pub async fn push_changed(
    deps: &StoreDeps,
    orders: &[OrderId],
) -> BTreeMap<OrderId, Result<(), PushError>> {
    let mut out = BTreeMap::new();
    let needs = futures_util::future::join_all(orders.iter().map(|o| need_of(deps, o))).await;
    let mut to_push: Vec<(crate::domain::Order, Option<String>)> = Vec::new();
    for (order, need) in orders.iter().zip(needs) {
        match need {
            Err(e) => {
                out.insert(order.clone(), Err(e));
            }
            Ok(None) => {
                out.insert(order.clone(), Ok(()));
            }
            Ok(Some(Need::Nothing(ledger_order))) => {
                let hooks = if deps.push.hooks.is_empty() {
                    Ok(())
                } else {
                    fire_hooks(
                        deps.markers.as_ref(),
                        deps.hooks.as_ref(),
                        &deps.push,
                        &ledger_order,
                    )
                    .await
                    .map(|_| ())
                };
                out.insert(order.clone(), hooks);
            }
            Ok(Some(Need::Push(ledger_order, view))) => to_push.push((ledger_order, view)),
        }
    }
    if to_push.is_empty() {
        return out;
    }
    let api = deps.api(crate::ports::budget::Priority::Push);
    let refs: Vec<&crate::domain::Order> = to_push.iter().map(|(o, _)| o).collect();
    let reports = push::push_orders(&api, &deps.push, &refs).await;
    for ((ledger_order, view), report) in to_push.into_iter().zip(reports) {
        let result = match report {
            Ok(report) => after_push(deps, &ledger_order, view, &report).await,
            Err(e) => {
                if let PushError::Bitrix(BitrixError::Refused { .. }) = &e {
                    note_on_order(deps, &ledger_order.id, &e).await;
                }
                Err(e)
            }
        };
        out.insert(ledger_order.id.clone(), result);
    }
    out
}

/// One batch of the events queue. Lambda hands a FIFO function at most 10 messages; with an inbox
/// (`STORE_PUSH_ORDERS` above 10) store-sync takes more of the queue itself, up to that many, so one store `batch`
/// carries many orders' writes. Every order named is pushed once, from its latest ledger state; the messages of an
/// order that failed are reported failed (the handed ones) or left to come back after the visibility timeout (the
/// taken ones), the rest are done.
pub async fn handle_events(
    deps: &StoreDeps,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    use crate::platform::sqs_batch::order_of;
    let handed: Vec<(String, Option<OrderId>)> = event
        .records
        .iter()
        .map(|r| {
            (
                r.message_id.clone().unwrap_or_default(),
                r.body.as_deref().and_then(order_of),
            )
        })
        .collect();
    let mut taken: Vec<crate::ports::InboxMessage> = Vec::new();
    if let Some(inbox) = &deps.inbox {
        let room = deps.push_orders.saturating_sub(handed.len());
        if room > 0 {
            match inbox.take(room).await {
                Ok(t) => taken = t,
                // The handed messages are enough to go on with.
                Err(e) => warn!(error.message = %e, "could not take more of the events queue"),
            }
        }
    }
    let mut orders: Vec<OrderId> = Vec::new();
    for order in handed
        .iter()
        .filter_map(|(_, o)| o.clone())
        .chain(taken.iter().filter_map(|m| order_of(&m.body)))
    {
        if !orders.contains(&order) {
            orders.push(order);
        }
    }
    let results = push_changed(deps, &orders).await;
    let failed = |o: &Option<OrderId>| {
        o.as_ref()
            .is_none_or(|o| results.get(o).is_none_or(Result::is_err))
    };
    for (order, result) in &results {
        if let Err(e) = result {
            warn!(order_id = %order, error.message = %e, "order not pushed; its messages come back");
        }
    }
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for (id, order) in &handed {
        if order.is_none() {
            warn!(message_id = %id, "unreadable message; it goes to the DLQ after its retries");
        }
        if failed(order) {
            response.add_failure(id.clone());
        }
    }
    if let Some(inbox) = &deps.inbox {
        let (done, left): (Vec<_>, Vec<_>) =
            taken.into_iter().partition(|m| !failed(&order_of(&m.body)));
        if !left.is_empty() {
            warn!(
                messages = left.len(),
                "taken messages left to come back after their visibility timeout"
            );
        }
        if !done.is_empty() {
            if let Err(e) = inbox.done(&done).await {
                // They come back and find the store already showing them: no call, then done.
                warn!(error.message = %e, "handled messages not deleted; they come back and change nothing");
            }
        }
    }
    response
}

#[derive(Debug, thiserror::Error)]
pub enum StoreSyncError {
    #[error("the events queue's batch is unreadable: {0}")]
    Batch(#[from] serde_json::Error),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The store refused the webhook: the invocation fails, so the errors alarm tells someone to fix it.
    #[error("the store refused the webhook: {0}")]
    Auth(String),
}

/// One invocation: the events queue sends `Records` (push each changed order; the answer is the partial batch
/// response), the schedule sends an EventBridge event (pull the changed orders; the answer is the
/// [`PullSummary`]).
pub async fn handle(deps: &StoreDeps, payload: Value) -> Result<Value, StoreSyncError> {
    if payload.get("Records").is_some() {
        let batch = serde_json::from_value(payload)?;
        return Ok(serde_json::to_value(handle_events(deps, batch).await)?);
    }
    let summary = pull_orders(deps).await?;
    if summary.auth_failed {
        return Err(StoreSyncError::Auth(summary.errors.join("; ")));
    }
    Ok(serde_json::to_value(summary)?)
}
