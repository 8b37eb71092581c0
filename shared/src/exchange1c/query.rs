//! The ledger's orders as the documents `mode=query` sends to 1C.

use time::{OffsetDateTime, UtcOffset};

use crate::domain::{Currency, Order, OrderState, PaymentMethod};
use crate::formats::commerceml::write::{QueryOrder, QueryPayment};
use crate::formats::commerceml::{Counterparty, Item, Operation};

/// `YYYY-MM-DDTHH:MM:SS` in 1C's local offset.
pub fn local_datetime(ms: i64, offset_minutes: i32) -> String {
    let offset =
        UtcOffset::from_whole_seconds(offset_minutes.saturating_mul(60)).unwrap_or(UtcOffset::UTC);
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn operation(method: PaymentMethod) -> Operation {
    match method {
        PaymentMethod::Card => Operation::PaymentCard,
        PaymentMethod::Cash => Operation::PaymentCash,
        PaymentMethod::BankTransfer | PaymentMethod::Other => Operation::PaymentCashless,
    }
}

fn provider_name(payment: &str) -> Option<&'static str> {
    match payment.split(':').next() {
        Some("tbank") => Some("T-Bank"),
        Some("sber") => Some("Сбербанк"),
        Some("yookassa") => Some("ЮKassa"),
        Some("bank") => Some("Банковский перевод"),
        _ => None,
    }
}

/// The order document for 1C: what the store told the ledger, plus the ledger's payment truth.
pub fn query_order(order: &Order, offset_minutes: i32, now_ms: i64) -> QueryOrder {
    let info = order.info.as_ref();
    let details = info.map(|i| &i.details);
    let totals = order.totals();
    let paid = matches!(order.state(), OrderState::Paid | OrderState::Overpaid);
    let paid_at = order
        .paid_at_ms()
        .map(|ms| local_datetime(ms, offset_minutes));
    // Money 1C itself booked is not echoed back as documents; everything else is.
    let mut payments = Vec::new();
    for (payment, line) in &order.lines {
        if payment.as_str().starts_with("1c:") || line.voided {
            continue;
        }
        let datetime = local_datetime(line.paid_at_ms.unwrap_or(line.last_at_ms), offset_minutes);
        let number = payment
            .as_str()
            .split_once(':')
            .map_or(payment.as_str(), |(_, n)| n)
            .to_owned();
        if line.counted() > 0 {
            payments.push(QueryPayment {
                id: payment.to_string(),
                number: number.clone(),
                datetime: datetime.clone(),
                operation: operation(line.method),
                amount: line.counted(),
                is_return: false,
                return_reason: None,
                method: provider_name(payment.as_str()).map(str::to_owned),
            });
        }
        if line.refunded() > 0 {
            payments.push(QueryPayment {
                id: format!("{payment}#refund"),
                number: format!("{number}-R"),
                datetime: local_datetime(line.last_at_ms, offset_minutes),
                operation: operation(line.method),
                amount: line.refunded(),
                is_return: true,
                return_reason: Some("Возврат покупателю".into()),
                method: provider_name(payment.as_str()).map(str::to_owned),
            });
        }
    }
    let payment_document = order
        .lines
        .iter()
        .find(|(r, l)| !r.as_str().starts_with("1c:") && l.counted() > 0)
        .map(|(r, _)| r.to_string());
    QueryOrder {
        id: order.id.to_string(),
        number: info
            .and_then(|i| i.number.clone())
            .unwrap_or_else(|| order.id.to_string()),
        created: details
            .and_then(|d| d.created.clone())
            .unwrap_or_else(|| local_datetime(now_ms, offset_minutes)),
        currency: match order.currency() {
            c if c == Currency::RUB => "руб".to_owned(),
            c => c.to_string(),
        },
        total: order.total().unwrap_or(totals.net().max(0)),
        comment: details.and_then(|d| d.comment.clone()),
        buyer: details
            .and_then(|d| d.buyer.as_ref())
            .map(|b| Counterparty {
                id: b.id.clone(),
                name: b.name.clone(),
                full_name: b.full_name.clone(),
                role: Some("Покупатель".into()),
                inn: b.inn.clone(),
                kpp: b.kpp.clone(),
                address: b.address.clone(),
            }),
        items: details
            .map(|d| {
                d.lines
                    .iter()
                    .map(|l| Item {
                        id: l.id.clone(),
                        name: Some(l.name.clone()),
                        price: Some(l.price),
                        quantity: Some(l.quantity.clone()),
                        amount: Some(l.amount),
                        requisites: Vec::new(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        delivery: details.and_then(|d| d.delivery.clone()),
        cancelled: order.cancelled(),
        status: details.and_then(|d| d.status.clone()),
        paid,
        paid_at: if paid { paid_at } else { None },
        payment_document: if paid { payment_document } else { None },
        payment_method: details.and_then(|d| d.payment_method.clone()).or_else(|| {
            order
                .lines
                .keys()
                .find_map(|r| provider_name(r.as_str()))
                .map(str::to_owned)
        }),
        paid_amount: totals.net().max(0),
        payments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_time_is_in_1c_offset() {
        assert_eq!(local_datetime(0, 180), "1970-01-01T03:00:00");
        assert_eq!(local_datetime(1_795_824_000_000, 0), "2026-11-28T00:00:00");
    }
}
