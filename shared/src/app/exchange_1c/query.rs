//! The ledger's orders as the documents `mode=query` sends to 1C.

use time::{OffsetDateTime, UtcOffset};

use crate::domain::{Currency, Order, OrderState, PaymentMethod, PaymentRef, RefundStatus};

/// Why a line was refunded: the reason of the request it completed, else a plain "returned to the buyer".
fn refund_reason(order: &Order, payment: &PaymentRef) -> String {
    order
        .refund_requests
        .values()
        .find(|r| r.status == RefundStatus::Succeeded && r.line.as_ref() == Some(payment))
        .map_or_else(|| "Возврат покупателю".to_owned(), |r| r.reason.clone())
}
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

fn provider_name(payment: &crate::domain::PaymentRef) -> Option<&'static str> {
    payment
        .source()
        .and_then(crate::domain::Source::display_name)
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
        if payment.source() == Some(crate::domain::Source::OneC) || line.voided {
            continue;
        }
        let datetime = local_datetime(line.paid_at_ms.unwrap_or(line.last_at_ms), offset_minutes);
        let number = payment.external().to_owned();
        let pay_kind = line.pay_method.as_ref().map(|m| m.display_ru().to_owned());
        if line.counted() > 0 {
            payments.push(QueryPayment {
                id: payment.to_string(),
                number: number.clone(),
                datetime: datetime.clone(),
                operation: operation(line.method),
                amount: line.counted(),
                is_return: false,
                return_reason: None,
                method: provider_name(payment).map(str::to_owned),
                pay_kind: pay_kind.clone(),
                done: true,
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
                return_reason: Some(refund_reason(order, payment)),
                method: provider_name(payment).map(str::to_owned),
                pay_kind: pay_kind.clone(),
                done: true,
            });
        }
        if line.charged_back() > 0 {
            payments.push(QueryPayment {
                id: format!("{payment}#chargeback"),
                number: format!("{number}-CB"),
                datetime: local_datetime(line.last_at_ms, offset_minutes),
                operation: operation(line.method),
                amount: line.charged_back(),
                is_return: true,
                return_reason: Some("Chargeback: банк покупателя оспорил платеж".into()),
                method: provider_name(payment).map(str::to_owned),
                pay_kind: pay_kind.clone(),
                done: true,
            });
        }
    }
    // Money the shop has to return itself (a bank transfer or cash was paid): a return document still to be paid.
    let mut refund_notes = Vec::new();
    for (id, r) in &order.refund_requests {
        match r.status {
            RefundStatus::AwaitingTransfer => payments.push(QueryPayment {
                id: format!("refund:{id}"),
                number: format!("R-{}", id.rsplit('#').next().unwrap_or(id)),
                datetime: local_datetime(r.at_ms, offset_minutes),
                operation: Operation::PaymentCashless,
                amount: r.amount,
                is_return: true,
                return_reason: Some(format!("{}: вернуть покупателю переводом", r.reason)),
                method: Some("Банковский перевод".into()),
                pay_kind: None,
                done: false,
            }),
            RefundStatus::Failed | RefundStatus::Refused => refund_notes.push(format!(
                "возврат {} не выполнен: {}",
                crate::domain::money::format_minor(r.amount),
                r.detail.as_deref().unwrap_or("причина не указана")
            )),
            _ => {}
        }
    }
    let payment_document = order
        .lines
        .iter()
        .find(|(r, l)| r.source() != Some(crate::domain::Source::OneC) && l.counted() > 0)
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
                .find_map(|r| provider_name(r))
                .map(str::to_owned)
        }),
        // Schemas before 2.10 have no payment documents: the order says how it was paid.
        pay_kind: order
            .lines
            .values()
            .filter(|l| l.counted() > 0)
            .find_map(|l| l.pay_method.as_ref())
            .map(|m| m.display_ru().to_owned()),
        paid_amount: totals.net().max(0),
        payments,
        refund_notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(
        source: crate::domain::Source,
        ext: &str,
        payment: &str,
        method: PaymentMethod,
        kind: crate::domain::FactKind,
    ) -> crate::domain::PaymentFact {
        crate::domain::PaymentFact::new(
            crate::domain::FactId::new(source, ext).unwrap(),
            crate::domain::OrderId::parse("5001").unwrap(),
            PaymentRef::new(source, payment).unwrap(),
            method,
            Currency::RUB,
            kind,
            1_795_824_000_000,
        )
        .unwrap()
    }

    #[test]
    fn refunds_chargebacks_and_returns_to_pay_reach_1c_as_return_documents() {
        use crate::domain::{FactKind, OrderId, OrderInfo, RefundAmount, Source};
        let mut o = Order::new(OrderId::parse("5001").unwrap());
        o.set_info(OrderInfo::new(Some("5001".into()), 300_000, Currency::RUB));
        let card = PaymentMethod::Card;
        let bank = PaymentMethod::BankTransfer;
        for f in [
            fact(
                Source::Tbank,
                "t1#CONFIRMED",
                "t1",
                card,
                FactKind::Payment { amount: 100_000 },
            ),
            fact(
                Source::Tbank,
                "t1#REFUNDED",
                "t1",
                card,
                FactKind::Refund {
                    amount: RefundAmount::Remaining(0),
                },
            ),
            fact(
                Source::Sber,
                "s1#deposited",
                "s1",
                card,
                FactKind::Payment { amount: 100_000 },
            ),
            fact(
                Source::Sber,
                "s1#cb",
                "s1",
                card,
                FactKind::Chargeback { amount: 100_000 },
            ),
            fact(
                Source::Bank,
                "b1",
                "b1",
                bank,
                FactKind::Payment { amount: 100_000 },
            ),
            fact(
                Source::OneC,
                "ret-1",
                "b1",
                bank,
                FactKind::RefundRequested {
                    amount: 40_000,
                    reason: "Брак".into(),
                    method: bank,
                    retries: None,
                    to_bank: None,
                },
            ),
            fact(
                Source::OneC,
                "ret-2",
                "b1",
                bank,
                FactKind::RefundRequested {
                    amount: 90_000,
                    reason: "Ошибка".into(),
                    method: bank,
                    retries: None,
                    to_bank: None,
                },
            ),
        ] {
            o.apply(&f).unwrap();
        }
        let q = query_order(&o, 180, 0);
        let returns: Vec<(&str, i64, bool)> = q
            .payments
            .iter()
            .filter(|p| p.is_return)
            .map(|p| (p.return_reason.as_deref().unwrap_or(""), p.amount, p.done))
            .collect();
        assert_eq!(
            returns,
            [
                ("Chargeback: банк покупателя оспорил платеж", 100_000, true),
                ("Возврат покупателю", 100_000, true),
                ("Брак: вернуть покупателю переводом", 40_000, false),
            ]
        );
        assert_eq!(q.refund_notes.len(), 1, "{:?}", q.refund_notes);
        assert!(q.refund_notes[0].contains("900.00"));
    }

    #[test]
    fn local_time_is_in_1c_offset() {
        assert_eq!(local_datetime(0, 180), "1970-01-01T03:00:00");
        assert_eq!(local_datetime(1_795_824_000_000, 0), "2026-11-28T00:00:00");
    }
}
