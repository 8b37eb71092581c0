//! Payment state out: what the ledger knows about an order, written into the store (its payments, the paid-amount
//! properties, the mapped status).

use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{call_with_backoff, PushConfig, PushError};
use crate::formats::bitrix::{self, Answer, BitrixError};
use crate::ports::store_api::BitrixApi;

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
        if i > 0 && (rub.len() - i).is_multiple_of(3) {
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

/// What the store shows of an order's payment state, as [`push_order`] writes it: each piece of money (`xmlId`, the
/// amount kept, whether paid), the paid amount and its text, and the status the state maps to. Two equal views write
/// the same things, so a push whose view equals the one last told (store-sync's `StoreTold` note) is skipped
/// without a call; an order with no money and no status to set shows nothing the store does not already show.
pub fn store_view(config: &PushConfig, order: &crate::domain::Order) -> Option<String> {
    let info = order.info.as_ref()?;
    let lines: Vec<(String, i64, Option<&str>)> = order
        .lines
        .iter()
        .filter(|(_, l)| l.counted() != 0 || l.refunded() != 0)
        .map(|(p, l)| {
            let want = (l.counted() - l.refunded() - l.charged_back()).max(0);
            (
                format!("paysync:{p}"),
                want,
                l.pay_method.as_ref().map(|m| m.as_str()),
            )
        })
        .collect();
    let net = order.totals().net();
    let status = config
        .status_map
        .get(order.state().as_str())
        .filter(|s| info.details.status.as_ref().map(|(id, _)| id) != Some(*s));
    if lines.is_empty() && net == 0 && status.is_none() {
        return None;
    }
    let view = json!({
        "lines": lines,
        "net": net,
        "text": paid_text(net, order.total().unwrap_or(net), order.paid_percent()),
        "status": config.status_map.get(order.state().as_str()),
    });
    Some(view.to_string())
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
        // The payment method the acquirer reported, where the store's payment form shows the payment system's
        // own status text (`psStatusDescription`, a documented `sale.payment` field; bitrix-rest.md).
        let method_text = line
            .pay_method
            .as_ref()
            .map(|m| format!("Способ оплаты: {}", m.display_ru()));
        match found {
            None if want > 0 => {
                let mut fields = json!({
                    "orderId": id, "paySystemId": system, "sum": crate::domain::money::format_minor(want),
                    "currency": info.currency.as_str(), "paid": "Y", "datePaid": paid_at,
                    "payVoucherNum": external, "psInvoiceId": external, "xmlId": xml_id,
                });
                if let Some(text) = &method_text {
                    fields["psStatusDescription"] = json!(text);
                }
                let added = call(api, "sale.payment.add", json!({ "fields": fields })).await?;
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
                    let mut fields = json!({
                        "paySystemId": system, "sum": crate::domain::money::format_minor(want), "paid": "Y",
                        "datePaid": paid_at, "payVoucherNum": external, "psInvoiceId": external, "xmlId": xml_id,
                    });
                    if let Some(text) = &method_text {
                        fields["psStatusDescription"] = json!(text);
                    }
                    call(
                        api,
                        "sale.payment.update",
                        json!({"id": p.id, "fields": fields}),
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
            // Nothing paid and nothing written before: the store already shows nothing paid (writing `0.00` would
            // re-save the order and move its update date).
            None if net == 0 => {}
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
