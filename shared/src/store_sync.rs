//! `store-sync`, orders in: on a schedule, the store's orders changed since the last run (`sale.order.list`,
//! `>=dateUpdate` with an overlap, 50 per page) are registered in the ledger. The pull is the source of truth:
//! Bitrix's event webhooks are never redelivered, so they can only make it come sooner.
//!
//! Registering is idempotent (an unchanged order commits nothing), so re-reading the overlap, or repeating a run
//! that died halfway, changes nothing. An order the ledger only knew from its money (`unknown_order`) is
//! completed in place: same order id, its payments kept.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::{info, warn};

use crate::domain::{Currency, OrderId, OrderInfo};
use crate::formats::bitrix::{self, Answer, BitrixError, StoreOrder};
use crate::ledger::{Ledger, LedgerError};
use crate::ports::{EventPublisher, LedgerStore};

/// The store's REST API (an inbound webhook URL), one call at a time.
#[async_trait]
pub trait BitrixApi: Send + Sync {
    async fn call(&self, method: &str, params: &Value) -> Result<Answer, BitrixError>;
}

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
            .map_err(|e| {
                BitrixError::Busy(if e.is_timeout() {
                    "timeout".into()
                } else {
                    "connection failed".into()
                })
            })?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|_| BitrixError::Busy("answer cut off".into()))?;
        bitrix::answer(method, status, &body)
    }
}

/// Retry a busy store (rate limit, 5xx, timeout) with growing pauses, then give up for this run.
pub async fn call_with_backoff(
    api: &dyn BitrixApi,
    method: &str,
    params: &Value,
    attempts: u32,
) -> Result<Answer, BitrixError> {
    let mut last = BitrixError::Busy("not tried".into());
    for attempt in 0..attempts.max(1) {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(250 * (1 << attempt.min(5)))).await;
        }
        match api.call(method, params).await {
            Err(e @ BitrixError::Busy(_)) => last = e,
            other => return other,
        }
    }
    Err(last)
}

pub struct StoreDeps {
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    pub bitrix: Arc<dyn BitrixApi>,
    /// `STORE_PULL_OVERLAP_MINUTES`: re-read before the watermark (late commits land with earlier `dateUpdate`).
    pub overlap_minutes: i64,
    /// `STORE_PULL_INITIAL_DAYS`: how far back the very first run looks.
    pub initial_days: i64,
}

impl StoreDeps {
    /// The real adapters: DynamoDB, SQS and the store's webhook.
    pub fn new(
        config: &crate::config::StoreConfig,
        aws: &aws_config::SdkConfig,
        http: reqwest::Client,
    ) -> Self {
        let (store, events) = crate::adapters::aws_ledger(&config.ledger, aws);
        StoreDeps {
            store,
            events,
            bitrix: Arc::new(HttpBitrix {
                client: http,
                webhook_url: config.webhook_url.expose().to_owned(),
            }),
            overlap_minutes: config.overlap_minutes,
            initial_days: config.initial_days,
        }
    }
}

/// What one pull did (the function's JSON answer).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PullSummary {
    pub pages: usize,
    pub fetched: usize,
    /// Orders new to the ledger or changed in the store.
    pub changed: usize,
    pub unchanged: usize,
    /// Orders whose money came first and that are now known.
    pub completed: usize,
    pub from: String,
    pub watermark: Option<String>,
    pub errors: Vec<String>,
}

const WATERMARK: &str = "bitrix-orders";
const SELECT: &[&str] = &[
    "id",
    "accountNumber",
    "price",
    "currency",
    "statusId",
    "canceled",
    "payed",
    "dateInsert",
    "dateUpdate",
    "personTypeId",
    "userId",
    "userDescription",
];

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// What the ledger should know about a store order, on top of what it knew (1C's details, invoices).
fn info_for(o: &StoreOrder, known: Option<&OrderInfo>) -> Result<OrderInfo, String> {
    let currency = Currency::parse(&o.currency).map_err(|e| format!("order {}: {e}", o.id))?;
    let mut info = known
        .cloned()
        .unwrap_or_else(|| OrderInfo::new(None, o.price, currency));
    info.number = Some(o.account_number.clone().unwrap_or_else(|| o.id.clone()));
    info.total = o.price;
    info.currency = currency;
    info.cancelled = o.canceled;
    if o.date_insert.is_some() {
        info.details.created.clone_from(&o.date_insert);
    }
    if let Some(id) = &o.status_id {
        // The list gives the status id only; a name learned before (from 1C) is kept.
        let name = info
            .details
            .status
            .as_ref()
            .filter(|(known, _)| known == id)
            .map_or_else(|| id.clone(), |(_, n)| n.clone());
        info.details.status = Some((id.clone(), name));
    }
    if o.comment.is_some() {
        info.details.comment.clone_from(&o.comment);
    }
    Ok(info)
}

/// One run of the order pull.
pub async fn pull_orders(deps: &StoreDeps) -> Result<PullSummary, LedgerError> {
    let mut s = PullSummary::default();
    let now = OffsetDateTime::now_utc();
    let from = match deps.store.watermark(WATERMARK).await? {
        Some(w) => OffsetDateTime::parse(&w, &Rfc3339)
            .map(|t| t - time::Duration::minutes(deps.overlap_minutes))
            .unwrap_or(now - time::Duration::days(deps.initial_days)),
        None => now - time::Duration::days(deps.initial_days),
    };
    s.from = rfc3339(from);
    let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
    let mut newest: Option<OffsetDateTime> = None;
    let mut start = 0u64;
    for _ in 0..10_000 {
        let params = json!({
            "select": SELECT,
            "filter": {">=dateUpdate": s.from},
            "order": {"dateUpdate": "asc", "id": "asc"},
            "start": start,
        });
        let page = match call_with_backoff(deps.bitrix.as_ref(), "sale.order.list", &params, 4)
            .await
            .and_then(|a| Ok((bitrix::orders(&a.result)?, a.next)))
        {
            Ok(page) => page,
            Err(e) => {
                warn!(error.message = %e, "order pull stopped; the watermark stays");
                s.errors.push(e.to_string());
                return Ok(s);
            }
        };
        s.pages += 1;
        let (orders, next) = page;
        for o in &orders {
            s.fetched += 1;
            let id = match OrderId::parse(o.id.clone()) {
                Ok(id) => id,
                Err(e) => {
                    s.errors.push(format!("order {:?}: {e}", o.id));
                    continue;
                }
            };
            let known = deps.store.load_order(&id).await?;
            let info = match info_for(o, known.as_ref().and_then(|k| k.info.as_ref())) {
                Ok(info) => info,
                Err(e) => {
                    s.errors.push(e);
                    continue;
                }
            };
            let was_unknown = known.as_ref().is_some_and(|k| k.info.is_none());
            match ledger.register_order(&id, info).await? {
                Some(_) => {
                    s.changed += 1;
                    s.completed += usize::from(was_unknown);
                }
                None => s.unchanged += 1,
            }
            if let Some(t) = o
                .date_update
                .as_deref()
                .and_then(|d| OffsetDateTime::parse(d, &Rfc3339).ok())
            {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
        match next {
            Some(n) if n > start => start = n,
            _ => break,
        }
    }
    if let Some(t) = newest {
        let w = rfc3339(t);
        deps.store.set_watermark(WATERMARK, &w).await?;
        s.watermark = Some(w);
    }
    info!(
        pages = s.pages,
        fetched = s.fetched,
        changed = s.changed,
        completed = s.completed,
        "store orders pulled"
    );
    Ok(s)
}
