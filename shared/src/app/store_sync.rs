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

use crate::app::ledger::{Ledger, LedgerError};
use crate::domain::{Currency, OrderId, OrderInfo};
use crate::formats::bitrix::{self, Answer, BitrixError, StoreOrder};
use crate::platform::retry::{retry, Backoff};
use crate::ports::store_api::{BitrixApi, Hook, HookError, HookSender};
use crate::ports::{Cursors, EventPublisher, LedgerStore, MarkerKind, Markers, StoreDirectory};

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
    /// The shop's outbound hooks.
    pub hooks: Arc<dyn HookSender>,
    /// `STORE_PULL_OVERLAP_MINUTES`: re-read before the watermark (late commits land with earlier `dateUpdate`).
    pub overlap_minutes: i64,
    /// `STORE_PULL_INITIAL_DAYS`: how far back the very first run looks.
    pub initial_days: i64,
    /// How payment state is written into the store.
    pub push: PushConfig,
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
        info.details.lines = d
            .lines
            .iter()
            .map(
                |(id, name, price, quantity, amount)| crate::domain::order::OrderLine {
                    id: id.clone(),
                    name: name.clone(),
                    price: *price,
                    quantity: quantity.clone(),
                    amount: *amount,
                },
            )
            .collect();
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
async fn page_details(
    api: &dyn BitrixApi,
    orders: &[StoreOrder],
    errors: &mut Vec<String>,
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
    errors.extend(failed.into_iter().map(|e| format!("sale.order.get {e}")));
    let mut out = std::collections::BTreeMap::new();
    for (key, raw) in results {
        match bitrix::order_details(&raw) {
            Ok(d) => {
                out.insert(key.trim_start_matches('o').to_owned(), d);
            }
            Err(e) => errors.push(format!("{key}: {e}")),
        }
    }
    Ok(out)
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
                s.auth_failed = matches!(e, BitrixError::Auth(_));
                s.errors.push(e.to_string());
                return Ok(s);
            }
        };
        s.pages += 1;
        let (orders, next) = page;
        let details = match page_details(deps.bitrix.as_ref(), &orders, &mut s.errors).await {
            Ok(d) => d,
            Err(e) => {
                warn!(error.message = %e, "order details unavailable; the watermark stays");
                s.errors.push(e.to_string());
                return Ok(s);
            }
        };
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
            let info = match info_for(
                o,
                details.get(&o.id),
                known.as_ref().and_then(|k| k.info.as_ref()),
            ) {
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
        deps.cursors.set_watermark(WATERMARK, &w).await?;
        s.watermark = Some(w);
    }
    // What the store now says may name waiting acquirer money's order.
    s.references = crate::app::resolve::settle(
        &ledger,
        deps.store.as_ref(),
        deps.directory.as_ref(),
        Some(&BitrixLookup(deps.bitrix.as_ref())),
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

pub use crate::platform::config::PushConfig;

/// What one push changed in the store.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PushReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub properties: bool,
    pub status: Option<String>,
}

/// `1 500` or `1 500,50`: how a Russian store shows money.
fn ru_amount(minor: i64) -> String {
    let rub = (minor / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in rub.chars().enumerate() {
        if i > 0 && (rub.len() - i) % 3 == 0 {
            grouped.push('\u{a0}');
        }
        grouped.push(c);
    }
    match minor % 100 {
        0 => grouped,
        k => format!("{grouped},{k:02}"),
    }
}

/// `Оплачено: 1 500 из 5 000 (30%)`.
pub fn paid_text(net: i64, total: i64, percent: Option<i64>) -> String {
    format!(
        "Оплачено: {} из {} ({}%)",
        ru_amount(net),
        ru_amount(total),
        percent.unwrap_or(0)
    )
}

/// `BITRIX_PAY_SYSTEMS`' key for the money's source (`tbank`, `bank`, `1c`, …).
fn source_of(payment: &crate::domain::PaymentRef) -> &'static str {
    payment.source().map_or("", crate::domain::Source::as_str)
}

fn store_datetime(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| t.to_offset(time::UtcOffset::from_hms(3, 0, 0).unwrap_or(time::UtcOffset::UTC)))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

async fn call(api: &dyn BitrixApi, method: &str, params: Value) -> Result<Answer, BitrixError> {
    // Within a message a short retry; a store busy for longer fails the message and SQS retries it later.
    call_with_backoff(api, method, &params, 2).await
}

/// Make the store show what the ledger knows about one order: one store payment per piece of money (found again by
/// `xmlId` = `paysync:<payment ref>`, so redeliveries change nothing), the paid-amount properties, the mapped status.
pub async fn push_order(
    api: &dyn BitrixApi,
    config: &PushConfig,
    order: &crate::domain::Order,
) -> Result<PushReport, PushError> {
    let mut report = PushReport::default();
    // Money for an order the store has not told us about has nowhere to go yet; the pull registers it and its
    // change event brings us back.
    let Some(info) = order.info.as_ref() else {
        return Ok(report);
    };
    let id = order.id.as_str();
    let listed = call(api, "sale.payment.list", json!({"filter": {"orderId": id}})).await?;
    let mut existing = bitrix::payments(&listed.result)?;
    let fallback_system = existing
        .iter()
        .find_map(|p| p.pay_system_id.clone())
        .or_else(|| config.pay_systems.get("default").cloned());
    for (payment, line) in &order.lines {
        if line.counted() == 0 && line.refunded() == 0 {
            continue;
        }
        let want = (line.counted() - line.refunded() - line.charged_back()).max(0);
        let xml_id = format!("paysync:{payment}");
        let external = payment.external();
        let system = config
            .pay_systems
            .get(source_of(payment))
            .cloned()
            .or_else(|| fallback_system.clone())
            .ok_or_else(|| {
                PushError::Config("no pay system id for this payment (BITRIX_PAY_SYSTEMS)".into())
            })?;
        // Ours (by xmlId), else the store's own unpaid payment for this money (the one checkout created).
        let found = existing
            .iter()
            .position(|p| p.xml_id.as_deref() == Some(xml_id.as_str()))
            .or_else(|| {
                let free: Vec<usize> = existing
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| {
                        !p.paid
                            && p.xml_id
                                .as_deref()
                                .is_none_or(|x| !x.starts_with("paysync:"))
                    })
                    .map(|(i, _)| i)
                    .collect();
                free.iter()
                    .copied()
                    .find(|&i| existing[i].sum == want)
                    .or_else(|| (free.len() == 1).then(|| free[0]))
            });
        let paid_at = store_datetime(line.paid_at_ms.unwrap_or(line.last_at_ms));
        match found {
            None if want > 0 => {
                let added = call(
                    api,
                    "sale.payment.add",
                    json!({"fields": {
                        "orderId": id, "paySystemId": system, "sum": crate::domain::money::format_minor(want),
                        "currency": info.currency.as_str(), "paid": "Y", "datePaid": paid_at,
                        "payVoucherNum": external, "psInvoiceId": external, "xmlId": xml_id,
                    }}),
                )
                .await?;
                existing.push(bitrix::payment(&added.result)?);
                report.added += 1;
            }
            None => {}
            Some(i) => {
                let p = existing[i].clone();
                let system = p.pay_system_id.clone().unwrap_or(system);
                let mine = p.xml_id.as_deref() == Some(xml_id.as_str());
                if mine && p.sum == want && p.paid == (want > 0) {
                    report.unchanged += 1;
                    continue;
                }
                if want == 0 {
                    // Returned in full: the store's documented way is to un-pay it and note the return.
                    call(
                        api,
                        "sale.payment.update",
                        json!({"id": p.id, "fields": {
                            "paySystemId": system, "paid": "N", "xmlId": xml_id,
                            "payReturnNum": external, "payReturnDate": store_datetime(line.last_at_ms),
                            "payReturnComment": "Возвращено покупателю (paysync)",
                        }}),
                    )
                    .await?;
                } else {
                    if p.paid && p.sum != want {
                        // Bitrix refuses to change the sum of a paid payment (SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM).
                        call(
                            api,
                            "sale.payment.update",
                            json!({"id": p.id, "fields": {"paySystemId": system, "paid": "N"}}),
                        )
                        .await?;
                    }
                    call(
                        api,
                        "sale.payment.update",
                        json!({"id": p.id, "fields": {
                            "paySystemId": system, "sum": crate::domain::money::format_minor(want), "paid": "Y",
                            "datePaid": paid_at, "payVoucherNum": external, "psInvoiceId": external, "xmlId": xml_id,
                        }}),
                    )
                    .await?;
                }
                existing[i].xml_id = Some(xml_id);
                existing[i].sum = want;
                existing[i].paid = want > 0;
                report.updated += 1;
            }
        }
    }
    report.properties = push_properties(api, config, order, id).await?;
    if let Some(status) = config.status_map.get(order.state().as_str()) {
        let current = info.details.status.as_ref().map(|(s, _)| s.as_str());
        if current != Some(status.as_str()) {
            call(
                api,
                "sale.order.update",
                json!({"id": id, "fields": {"statusId": status}}),
            )
            .await?;
            report.status = Some(status.clone());
        }
    }
    Ok(report)
}

/// Write the paid amount (and its display text) into the order's properties. `sale.propertyvalue.modify` deletes
/// what it is not given, so the full current list goes back with only our values changed.
async fn push_properties(
    api: &dyn BitrixApi,
    config: &PushConfig,
    order: &crate::domain::Order,
    id: &str,
) -> Result<bool, PushError> {
    let net = order.totals().net();
    let wanted: Vec<(&str, String)> = [
        config
            .paid_amount_code
            .as_deref()
            .map(|c| (c, crate::domain::money::format_minor(net))),
        config.paid_text_code.as_deref().map(|c| {
            (
                c,
                paid_text(net, order.total().unwrap_or(net), order.paid_percent()),
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect();
    if wanted.is_empty() {
        return Ok(false);
    }
    let listed = call(
        api,
        "sale.propertyvalue.list",
        json!({"filter": {"orderId": id}}),
    )
    .await?;
    let mut values = bitrix::property_values(&listed.result)?;
    let mut changed = false;
    for (code, value) in &wanted {
        match values.iter_mut().find(|v| v.code.as_deref() == Some(*code)) {
            Some(v) if v.value.as_str() == Some(value.as_str()) => {}
            Some(v) => {
                v.value = Value::String(value.clone());
                changed = true;
            }
            None => {
                // Not set on this order yet: the property's id comes from its definition.
                let props =
                    call(api, "sale.property.list", json!({"filter": {"code": code}})).await?;
                let prop_id = serde_json::from_str::<Value>(props.result.get())
                    .ok()
                    .and_then(|r| r["properties"].get(0).and_then(|p| p.get("id")).cloned())
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .ok_or_else(|| {
                        PushError::Config(format!("the store has no order property {code}"))
                    })?;
                values.push(bitrix::PropertyValue {
                    order_props_id: prop_id,
                    code: Some((*code).to_owned()),
                    value: Value::String(value.clone()),
                });
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(false);
    }
    let all: Vec<Value> = values
        .iter()
        .map(|v| json!({"orderPropsId": v.order_props_id, "value": v.value}))
        .collect();
    call(
        api,
        "sale.propertyvalue.modify",
        json!({"fields": {"order": {"id": id, "propertyValues": all}}}),
    )
    .await?;
    Ok(true)
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
        .bitrix
        .call(
            "sale.order.update",
            &json!({"id": order.as_str(), "fields": {"comments": text}}),
        )
        .await
    {
        warn!(order_id = %order, error.message = %e, "the store's refusal was not written on the order");
    }
}

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

/// One batch of the events queue: push each changed order (FIFO per order; see [`crate::platform::sqs_batch`]).
pub async fn handle_events(
    deps: &StoreDeps,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let config = &deps.push;
    crate::platform::sqs_batch::for_each_order(event, |order| async move {
        // Read once: the push and the hooks see the same version of the order.
        let Some(ledger_order) = deps.store.load_order(&order).await? else {
            return Ok(());
        };
        let report = match push_order(deps.bitrix.as_ref(), config, &ledger_order).await {
            Ok(r) => r,
            Err(e) => {
                if let PushError::Bitrix(BitrixError::Refused { .. }) = &e {
                    note_on_order(deps, &order, &e).await;
                }
                return Err(e);
            }
        };
        info!(order_id = %order, added = report.added, updated = report.updated, properties = report.properties, "store updated");
        if !config.hooks.is_empty() {
            fire_hooks(deps.markers.as_ref(), deps.hooks.as_ref(), config, &ledger_order).await?;
        }
        Ok::<(), PushError>(())
    })
    .await
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
