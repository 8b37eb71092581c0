//! Payment state out: what the ledger knows about an order, written into the store (its payments, the paid-amount
//! properties, the mapped status).
//!
//! Every order of an invocation is pushed together, in `batch` calls of at most 50 commands (bitrix-rest.md §1.4;
//! a `batch` is one request against the store's limit): one batch reads every order (`sale.order.get`: its payments
//! and property values) and the paid-amount properties' definitions, the writes are planned from what was read
//! ([`plan_push`], pure), and the planned commands of all orders go out in as few batches as fit. A refused command
//! fails its own order only.

use serde::Serialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{call_with_backoff, PushConfig, PushError};
use crate::formats::bitrix::{self, BitrixError, PropertyDefinition, StoreOrderState};
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

/// Commands that go out in one `batch` call (the store's documented maximum).
pub const BATCH_COMMANDS: usize = 50;

/// The writes one order needs: `(method, parameters)` in the order they must run, and what they change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Planned {
    pub commands: Vec<(&'static str, Value)>,
    pub report: PushReport,
}

/// The property definition for `code` on an order of `person_type`: the one of that person type, else the only one.
/// Two or more that cannot be told apart are not guessed between.
fn definition<'a>(
    definitions: &'a [PropertyDefinition],
    code: &str,
    person_type: Option<&str>,
) -> Result<&'a PropertyDefinition, PushError> {
    let all: Vec<&PropertyDefinition> = definitions
        .iter()
        .filter(|d| d.code.as_deref() == Some(code))
        .collect();
    let of_type: Vec<&PropertyDefinition> = all
        .iter()
        .copied()
        .filter(|d| person_type.is_some() && d.person_type_id.as_deref() == person_type)
        .collect();
    match (of_type.as_slice(), all.as_slice()) {
        ([one], _) | ([], [one]) => Ok(one),
        ([], []) => Err(PushError::Config(format!(
            "the store has no order property {code}"
        ))),
        _ => Err(PushError::Config(format!(
            "the store defines order property {code} for several person types and this order's is not among them"
        ))),
    }
}

/// Plan what makes the store show what the ledger knows about one order, from the order's state in the store
/// (`sale.order.get`) and the paid-amount properties' definitions: one store payment per piece of money (found again
/// by `xmlId` = `paysync:<payment ref>`, so redeliveries change nothing), the paid-amount properties, the mapped
/// status. Pure; the commands are `sale.payment.add`/`update`, `sale.propertyvalue.modify` and `sale.order.update`.
pub fn plan_push(
    config: &PushConfig,
    order: &crate::domain::Order,
    store: &StoreOrderState,
    definitions: &[PropertyDefinition],
) -> Result<Planned, PushError> {
    let mut plan = Planned::default();
    // Money for an order the store has not told us about has nowhere to go yet; the pull registers it and its
    // change event brings us back.
    let Some(info) = order.info.as_ref() else {
        return Ok(plan);
    };
    let id = order.id.as_str();
    let mut existing = store.payments.clone();
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
                plan.commands
                    .push(("sale.payment.add", json!({ "fields": fields })));
                // Taken from here on: a later piece of money must not claim it as the store's free payment.
                existing.push(bitrix::StorePayment {
                    id: String::new(),
                    order_id: id.to_owned(),
                    paid: true,
                    sum: want,
                    pay_system_id: Some(system),
                    xml_id: Some(xml_id),
                    is_return: false,
                    account_number: None,
                    ps_invoice_id: None,
                    pay_system_name: None,
                });
                plan.report.added += 1;
            }
            None => {}
            Some(i) => {
                let p = existing[i].clone();
                let system = p.pay_system_id.clone().unwrap_or(system);
                let mine = p.xml_id.as_deref() == Some(xml_id.as_str());
                if mine && p.sum == want && p.paid == (want > 0) {
                    plan.report.unchanged += 1;
                    continue;
                }
                if want == 0 {
                    // Returned in full: the store's documented way is to un-pay it and note the return.
                    plan.commands.push((
                        "sale.payment.update",
                        json!({"id": p.id, "fields": {
                            "paySystemId": system, "paid": "N", "xmlId": xml_id,
                            "payReturnNum": external, "payReturnDate": store_datetime(line.last_at_ms),
                            "payReturnComment": "Возвращено покупателю (paysync)",
                        }}),
                    ));
                } else {
                    if p.paid && p.sum != want {
                        // Bitrix refuses to change the sum of a paid payment (SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM).
                        plan.commands.push((
                            "sale.payment.update",
                            json!({"id": p.id, "fields": {"paySystemId": system, "paid": "N"}}),
                        ));
                    }
                    let mut fields = json!({
                        "paySystemId": system, "sum": crate::domain::money::format_minor(want), "paid": "Y",
                        "datePaid": paid_at, "payVoucherNum": external, "psInvoiceId": external, "xmlId": xml_id,
                    });
                    if let Some(text) = &method_text {
                        fields["psStatusDescription"] = json!(text);
                    }
                    plan.commands
                        .push(("sale.payment.update", json!({"id": p.id, "fields": fields})));
                }
                existing[i].xml_id = Some(xml_id);
                existing[i].sum = want;
                existing[i].paid = want > 0;
                plan.report.updated += 1;
            }
        }
    }
    if let Some(modify) = plan_properties(config, order, store, definitions)? {
        plan.commands.push(("sale.propertyvalue.modify", modify));
        plan.report.properties = true;
    }
    if let Some(status) = config.status_map.get(order.state().as_str()) {
        let current = info.details.status.as_ref().map(|(s, _)| s.as_str());
        if current != Some(status.as_str()) {
            plan.commands.push((
                "sale.order.update",
                json!({"id": id, "fields": {"statusId": status}}),
            ));
            plan.report.status = Some(status.clone());
        }
    }
    Ok(plan)
}

/// The paid amount (and its display text) in the order's properties: `sale.propertyvalue.modify`'s parameters, or
/// `None` when the store shows them already. That method deletes what it is not given, so the full current list
/// goes back with only our values changed.
fn plan_properties(
    config: &PushConfig,
    order: &crate::domain::Order,
    store: &StoreOrderState,
    definitions: &[PropertyDefinition],
) -> Result<Option<Value>, PushError> {
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
    let mut values = store.property_values.clone();
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
                let d = definition(definitions, code, store.person_type_id.as_deref())?;
                values.push(bitrix::PropertyValue {
                    order_props_id: d.id.clone(),
                    code: Some((*code).to_owned()),
                    value: Value::String(value.clone()),
                });
                changed = true;
            }
        }
    }
    if !changed {
        return Ok(None);
    }
    let all: Vec<Value> = values
        .iter()
        .map(|v| json!({"orderPropsId": v.order_props_id, "value": v.value}))
        .collect();
    Ok(Some(
        json!({"fields": {"order": {"id": order.id.as_str(), "propertyValues": all}}}),
    ))
}

/// One `batch` call of `commands` (`key`, `method?query`), retried briefly when the store is busy; a store busy for
/// longer fails the messages and SQS brings them back. Writes are sent again only when the store said it did
/// nothing ([`BitrixError::nothing_done`]): after a timeout a `sale.payment.add` may have been done, and the
/// message's next run reads the order again and finds it by its `xmlId` instead of adding it twice.
async fn run_batch(
    api: &dyn BitrixApi,
    commands: &[(String, String)],
    writes: bool,
) -> Result<bitrix::BatchAnswer, BitrixError> {
    let cmd: serde_json::Map<String, Value> = commands
        .iter()
        .map(|(k, c)| (k.clone(), Value::String(c.clone())))
        .collect();
    let params = json!({"halt": 0, "cmd": cmd});
    let answer = if writes {
        crate::platform::retry::retry(
            crate::platform::retry::Backoff {
                first: std::time::Duration::from_millis(500),
                max: std::time::Duration::from_secs(8),
                attempts: 2,
            },
            || api.call("batch", &params),
            BitrixError::nothing_done,
        )
        .await?
    } else {
        call_with_backoff(api, "batch", &params, 2).await?
    };
    bitrix::batch_answer(&answer.result)
}

/// Make the store show what the ledger knows about each of `orders` (see [`plan_push`]), in as few `batch` calls
/// as fit: reads, then writes, 50 commands a call. One result per order, in the same order; a refused command or
/// an unreadable answer fails its own order, a failed call the orders it carried.
pub async fn push_orders(
    api: &dyn BitrixApi,
    config: &PushConfig,
    orders: &[&crate::domain::Order],
) -> Vec<Result<PushReport, PushError>> {
    let mut out: Vec<Option<Result<PushReport, PushError>>> = orders.iter().map(|_| None).collect();
    let known: Vec<usize> = (0..orders.len())
        .filter(|&i| orders[i].info.is_some())
        .collect();
    for (i, slot) in out.iter_mut().enumerate() {
        if orders[i].info.is_none() {
            *slot = Some(Ok(PushReport::default()));
        }
    }
    if known.is_empty() {
        return settled(out);
    }
    // Reads: the definitions first (they are needed by any order), then one `sale.order.get` per order.
    let codes: Vec<&str> = [
        config.paid_amount_code.as_deref(),
        config.paid_text_code.as_deref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut reads: Vec<(String, String)> = Vec::new();
    for (j, code) in codes.iter().enumerate() {
        match bitrix::command("sale.property.list", &json!({"filter": {"code": code}})) {
            Ok(c) => reads.push((format!("p{j}"), c)),
            Err(e) => return out_all(out, &e),
        }
    }
    for &i in &known {
        match bitrix::command("sale.order.get", &json!({"id": orders[i].id.as_str()})) {
            Ok(c) => reads.push((format!("o{i}"), c)),
            Err(e) => out[i] = Some(Err(e.into())),
        }
    }
    let mut read: std::collections::BTreeMap<
        String,
        Result<Box<serde_json::value::RawValue>, BitrixError>,
    > = std::collections::BTreeMap::new();
    for chunk in reads.chunks(BATCH_COMMANDS) {
        match run_batch(api, chunk, false).await {
            Ok(mut answer) => {
                for (key, command) in chunk {
                    let method = command.split('?').next().unwrap_or_default();
                    let got = match (answer.results.remove(key), answer.errors.remove(key)) {
                        (_, Some(e)) => Err(e.into_error(method)),
                        (Some(r), None) => Ok(r),
                        (None, None) => Err(BitrixError::Malformed(format!(
                            "batch: no answer to {method}"
                        ))),
                    };
                    read.insert(key.clone(), got);
                }
            }
            Err(e) => {
                for (key, _) in chunk {
                    read.insert(key.clone(), Err(e.clone()));
                }
            }
        }
    }
    let mut definitions: Vec<PropertyDefinition> = Vec::new();
    let mut definitions_error: Option<BitrixError> = None;
    for j in 0..codes.len() {
        match read.remove(&format!("p{j}")) {
            Some(Ok(r)) => match bitrix::property_definitions(&r) {
                Ok(d) => definitions.extend(d),
                Err(e) => definitions_error = Some(e),
            },
            Some(Err(e)) => definitions_error = Some(e),
            None => {}
        }
    }
    // Plans, then every order's commands in turn, 50 to a call.
    let mut writes: Vec<(usize, String, String)> = Vec::new();
    let mut reports: std::collections::BTreeMap<usize, PushReport> =
        std::collections::BTreeMap::new();
    for &i in &known {
        if out[i].is_some() {
            continue;
        }
        let planned = match read.remove(&format!("o{i}")) {
            Some(Ok(r)) => bitrix::order_state(&r)
                .map_err(PushError::from)
                .and_then(|state| plan_push(config, orders[i], &state, &definitions)),
            Some(Err(e)) => Err(e.into()),
            None => Err(BitrixError::Malformed("batch: the order was not read".into()).into()),
        };
        let planned = match (planned, &definitions_error) {
            // A definition that could not be read explains a missing one better than "no such property".
            (Err(PushError::Config(_)), Some(e)) => Err(e.clone().into()),
            (p, _) => p,
        };
        match planned {
            Ok(p) => {
                for (n, (method, params)) in p.commands.iter().enumerate() {
                    match bitrix::command(method, params) {
                        // Keys sort as the commands must run (the body's object is ordered by key).
                        Ok(c) => writes.push((i, format!("w{i:05}_{n:03}"), c)),
                        Err(e) => {
                            out[i] = Some(Err(e.into()));
                            break;
                        }
                    }
                }
                if out[i].is_none() {
                    reports.insert(i, p.report);
                } else {
                    writes.retain(|(o, _, _)| *o != i);
                }
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    let mut pending = writes.into_iter();
    loop {
        // Orders that failed in an earlier call send nothing more.
        let mut chunk: Vec<(usize, String, String)> = Vec::new();
        while chunk.len() < BATCH_COMMANDS {
            let Some(w) = pending.next() else { break };
            if out[w.0].is_none() {
                chunk.push(w);
            }
        }
        if chunk.is_empty() {
            break;
        }
        let commands: Vec<(String, String)> = chunk
            .iter()
            .map(|(_, k, c)| (k.clone(), c.clone()))
            .collect();
        match run_batch(api, &commands, true).await {
            Ok(mut answer) => {
                for (o, key, command) in &chunk {
                    let method = command.split('?').next().unwrap_or_default();
                    let failed = match (answer.errors.remove(key), answer.results.remove(key)) {
                        (Some(e), _) => Some(e.into_error(method)),
                        (None, None) => Some(BitrixError::Malformed(format!(
                            "batch: no answer to {method}"
                        ))),
                        (None, Some(_)) => None,
                    };
                    if let (Some(e), None) = (failed, &out[*o]) {
                        out[*o] = Some(Err(e.into()));
                    }
                }
            }
            Err(e) => {
                for (o, _, _) in &chunk {
                    if out[*o].is_none() {
                        out[*o] = Some(Err(e.clone().into()));
                    }
                }
            }
        }
    }
    for (i, report) in reports {
        if out[i].is_none() {
            out[i] = Some(Ok(report));
        }
    }
    settled(out)
}

/// Every order's result; one left without any (which the steps above do not leave) is reported, not guessed.
fn settled(out: Vec<Option<Result<PushReport, PushError>>>) -> Vec<Result<PushReport, PushError>> {
    out.into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Err(BitrixError::Malformed("the order was not pushed".into()).into())
            })
        })
        .collect()
}

/// Every order not yet settled fails with `e`.
fn out_all(
    out: Vec<Option<Result<PushReport, PushError>>>,
    e: &BitrixError,
) -> Vec<Result<PushReport, PushError>> {
    out.into_iter()
        .map(|o| o.unwrap_or_else(|| Err(e.clone().into())))
        .collect()
}

/// Make the store show what the ledger knows about one order: [`push_orders`] of one.
pub async fn push_order(
    api: &dyn BitrixApi,
    config: &PushConfig,
    order: &crate::domain::Order,
) -> Result<PushReport, PushError> {
    push_orders(api, config, &[order])
        .await
        .pop()
        .unwrap_or_else(|| Ok(PushReport::default()))
}
