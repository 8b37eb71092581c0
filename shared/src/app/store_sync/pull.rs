//! Orders in: on a schedule, the store's orders changed since the last run (`sale.order.list`, `>=dateUpdate` with
//! an overlap, 50 per page) are registered in the ledger. The pull is the source of truth: Bitrix's event webhooks
//! are never redelivered, so they can only make it come sooner.
//!
//! Registering is idempotent (an unchanged order commits nothing), so re-reading the overlap, or repeating a run
//! that died halfway, changes nothing. An order the ledger only knew from its money (`unknown_order`) is
//! completed in place: same order id, its payments kept.

use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tracing::{info, warn};

use super::{call_with_backoff, BitrixLookup, PushConfig, StoreDeps};
use crate::app::ledger::{Ledger, LedgerError};
use crate::domain::{Currency, OrderId, OrderInfo};
use crate::formats::bitrix::{self, BitrixError, StoreOrder};
use crate::ports::store_api::BitrixApi;

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
    /// The store refused the webhook: nothing will work until someone fixes it (the function fails, so it alarms).
    pub auth_failed: bool,
    /// Acquirer money waiting for its reference to name a store order (`crate::app::resolve::settle`).
    pub references: crate::app::resolve::SettleReport,
}

const WATERMARK: &str = "bitrix-orders";
/// Waiting references looked at per run (each may cost a few REST calls).
const SETTLE_PER_RUN: usize = 50;
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

/// Buyer fields from the store's order property codes (the standard ones of 1C-Bitrix's person types).
fn buyer_from(
    user_id: Option<&str>,
    props: &[(String, String)],
    known: Option<&crate::domain::order::Buyer>,
) -> Option<crate::domain::order::Buyer> {
    let mut b = known.cloned().unwrap_or_default();
    let mut any = false;
    for (code, value) in props {
        let slot = match code.to_ascii_uppercase().as_str() {
            "FIO" | "NAME" | "CONTACT_PERSON" => &mut b.name,
            "COMPANY" => &mut b.full_name,
            "EMAIL" => &mut b.email,
            "PHONE" => &mut b.phone,
            "ADDRESS" | "COMPANY_ADR" => &mut b.address,
            "INN" => &mut b.inn,
            "KPP" => &mut b.kpp,
            _ => continue,
        };
        *slot = Some(value.clone());
        any = true;
    }
    if b.name.is_none() {
        b.name.clone_from(&b.full_name);
    }
    if let Some(id) = user_id {
        b.id = Some(id.to_owned());
        any = true;
    }
    any.then_some(b)
}

/// What the ledger should know about a store order, on top of what it knew (1C's details, invoices).
fn info_for(
    o: &StoreOrder,
    details: Option<&bitrix::StoreOrderDetails>,
    known: Option<&OrderInfo>,
    push: &PushConfig,
) -> Result<OrderInfo, String> {
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
    if let Some(d) = details {
        info.details.lines.clone_from(&d.lines);
        if d.delivery.is_some() {
            info.details.delivery.clone_from(&d.delivery);
        }
        if d.pay_system.is_some() {
            info.details.payment_method.clone_from(&d.pay_system);
        }
        info.details.payments = d
            .payments
            .iter()
            .map(|p| crate::domain::StorePaymentInfo {
                id: p.id.clone(),
                account_number: p.account_number.clone(),
                sum: p.sum,
                pay_system_id: p.pay_system_id.clone(),
                ps_invoice_id: p.ps_invoice_id.clone(),
                paid: p.paid,
                acquirer: p
                    .pay_system_id
                    .as_deref()
                    .and_then(|id| push.acquirer_of(id)),
            })
            .collect();
        info.details.buyer = buyer_from(
            o.user_id.as_deref(),
            &d.properties,
            info.details.buyer.as_ref(),
        );
    }
    Ok(info)
}

/// `sale.order.get` for a page of orders in one `batch` call (≤ 50 commands): lines, delivery, buyer properties.
/// Each order's details by order id; the ids whose `sale.order.get` the store answered with an error (or with
/// details we cannot read) go to `failed`, with the reason in `errors`.
async fn page_details(
    api: &dyn BitrixApi,
    orders: &[StoreOrder],
    errors: &mut Vec<String>,
    failed_ids: &mut std::collections::BTreeSet<String>,
) -> Result<std::collections::BTreeMap<String, bitrix::StoreOrderDetails>, BitrixError> {
    let cmd: serde_json::Map<String, Value> = orders
        .iter()
        .take(50)
        .map(|o| {
            (
                format!("o{}", o.id),
                Value::String(format!("sale.order.get?id={}", o.id)),
            )
        })
        .collect();
    if cmd.is_empty() {
        return Ok(std::collections::BTreeMap::new());
    }
    let answer = call_with_backoff(api, "batch", &json!({"halt": 0, "cmd": cmd}), 4).await?;
    let (results, failed) = bitrix::batch_results(&answer.result)?;
    for e in failed {
        // `o<id>: <error>`, as `batch_results` reports a failed command.
        if let Some(key) = e.split(':').next() {
            failed_ids.insert(key.trim_start_matches('o').to_owned());
        }
        errors.push(format!("sale.order.get {e}"));
    }
    let mut out = std::collections::BTreeMap::new();
    for (key, raw) in results {
        let id = key.trim_start_matches('o').to_owned();
        match bitrix::order_details(&raw) {
            Ok(d) => {
                out.insert(id, d);
            }
            Err(e) => {
                errors.push(format!("{key}: {e}"));
                failed_ids.insert(id);
            }
        }
    }
    Ok(out)
}

/// The watermark may not pass `updated`, an order the pull could not take in full.
fn hold(held: &mut Option<OffsetDateTime>, updated: Option<OffsetDateTime>) {
    if let Some(t) = updated {
        *held = Some(held.map_or(t, |h| h.min(t)));
    }
}

/// One run of the order pull. Each page of 50 orders costs two calls: the list, and one `batch` of
/// `sale.order.get` for their lines, delivery and buyer.
pub async fn pull_orders(deps: &StoreDeps) -> Result<PullSummary, LedgerError> {
    let mut s = PullSummary::default();
    let now = OffsetDateTime::now_utc();
    let from = match deps.cursors.watermark(WATERMARK).await? {
        Some(w) => OffsetDateTime::parse(&w, &Rfc3339)
            .map(|t| t - time::Duration::minutes(deps.overlap_minutes))
            .unwrap_or(now - time::Duration::days(deps.initial_days)),
        None => now - time::Duration::days(deps.initial_days),
    };
    s.from = rfc3339(from);
    let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
    let mut newest: Option<OffsetDateTime> = None;
    // The update time of the earliest order left unregistered: the watermark never passes it.
    let mut held: Option<OffsetDateTime> = None;
    // The pull yields to payment pushes: it takes calls only while the reserve is left for them.
    let api = deps.api(crate::ports::budget::Priority::Pull);
    let mut start = 0u64;
    for _ in 0..10_000 {
        let params = json!({
            "select": SELECT,
            "filter": {">=dateUpdate": s.from},
            "order": {"dateUpdate": "asc", "id": "asc"},
            "start": start,
        });
        let page = match call_with_backoff(&api, "sale.order.list", &params, 4)
            .await
            .and_then(|a| Ok((bitrix::orders(&a.result)?, a.next)))
        {
            Ok(page) => page,
            Err(e) => {
                warn!(error.message = %e, "order pull stopped; the watermark stays");
                s.auth_failed = matches!(e, BitrixError::Auth(_));
                s.errors.push(e.to_string());
                return Ok(s);
            }
        };
        s.pages += 1;
        let (orders, next) = page;
        let mut failed_ids = std::collections::BTreeSet::new();
        let details = match page_details(&api, &orders, &mut s.errors, &mut failed_ids).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error.message = %e, "order details unavailable; the watermark stays");
                s.errors.push(e.to_string());
                return Ok(s);
            }
        };
        for o in &orders {
            s.fetched += 1;
            let updated = o
                .date_update
                .as_deref()
                .and_then(|d| OffsetDateTime::parse(d, &Rfc3339).ok());
            // An order not registered now holds the watermark at its update time, so the next pull reads it
            // again (counted in `errors`, never dropped).
            let id = match OrderId::parse(o.id.clone()) {
                Ok(id) => id,
                Err(e) => {
                    hold(&mut held, updated);
                    s.errors.push(format!("order {:?}: {e}", o.id));
                    continue;
                }
            };
            // The store refused this order's details: what the list says is registered now (the money can find
            // it), and the watermark stays before it, so its lines and payments come with the next pull.
            if failed_ids.contains(&o.id) {
                warn!(order = %o.id, "order details refused; registered without them, read again next pull");
                hold(&mut held, updated);
            }
            let known = deps.store.load_order(&id).await?;
            let info = match info_for(
                o,
                details.get(&o.id),
                known.as_ref().and_then(|k| k.info.as_ref()),
                &deps.push,
            ) {
                Ok(info) => info,
                Err(e) => {
                    warn!(order = %o.id, reason = %e, "store order not registered; the watermark stays before it");
                    hold(&mut held, updated);
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
            if let Some(t) = updated {
                newest = Some(newest.map_or(t, |n| n.max(t)));
            }
        }
        match next {
            Some(n) if n > start => start = n,
            _ => break,
        }
    }
    if let Some(t) = newest.map(|n| held.map_or(n, |h| h.min(n))) {
        let w = rfc3339(t);
        deps.cursors.set_watermark(WATERMARK, &w).await?;
        s.watermark = Some(w);
    }
    // What the store now says may name waiting acquirer money's order.
    s.references = crate::app::resolve::settle(
        &ledger,
        deps.store.as_ref(),
        deps.directory.as_ref(),
        Some(&BitrixLookup(&api)),
        SETTLE_PER_RUN,
    )
    .await?;
    info!(
        pages = s.pages,
        fetched = s.fetched,
        changed = s.changed,
        completed = s.completed,
        "store orders pulled"
    );
    Ok(s)
}
