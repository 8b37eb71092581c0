//! What 1C's documents mean for the ledger. Pure: a document and the order as the ledger has it in, facts out.
//!
//! - A payment document with an amount is money keyed by its `Ид` + `НомерВерсии`: re-posting a file changes
//!   nothing. When the order already holds the same money from another source (our card payment that 1C booked as
//!   `Эквайринговая операция`, a bank receipt statement-pull applied), the document is *linked* to that line
//!   instead of adding money; a payment that matches nothing is new money (an overpayment if the order was paid).
//! - An order-level "paid per 1C" without an amount settles whatever is still open (`SettledInFull`), never on top of
//!   money already held.
//! - A cancelled or un-paid payment document voids its own line (never a line it was merely linked to).
//! - Cancellation of the order (`Отменен`, `ПометкаУдаления`) cancels it in the ledger; if money is kept, it
//!   also asks for it back (`RefundRequested`).
//! - A return document (`ПризнакВозврата=true`) is a refund request for `refund-chargeback`; it moves no money
//!   until the refund is executed and reported.

use crate::domain::Lookup;
use crate::domain::{
    Currency, DomainError, FactId, FactKind, Order, OrderId, PaymentFact, PaymentMethod,
    PaymentRef, Source,
};
use crate::formats::commerceml::text::{datetime_ms, normalize_datetime};
use crate::formats::commerceml::{Document, Operation};

/// A reason a document was not applied, worded like Bitrix's import errors.
pub fn doc_error(doc: &Document, text: &str) -> String {
    let id = doc.id.as_deref().or(doc.number.as_deref()).unwrap_or("?");
    format!("Документ с Ид - {id}. {text}")
}

/// The trailing number of an account number with a prefix (`ИМ-00392` → `00392`, `392`): what is left when 1C
/// or a numbering template added one. `None` when there is no prefix to strip.
fn without_prefix(number: &str) -> Vec<String> {
    let digits: String = number
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if digits.is_empty() || digits.len() == number.len() {
        return Vec::new();
    }
    let mut out = vec![digits.clone()];
    let trimmed = digits.trim_start_matches('0');
    if !trimmed.is_empty() && trimmed != digits {
        out.push(trimmed.to_owned());
    }
    out
}

/// How 1C names an order in an order document: `Ид` (the site's order id, echoed from `query`; a GUID for
/// documents 1C created) and `Номер` (the site's account number). Tried the way Bitrix's own CommerceML import
/// finds an order (`sale` module, `CSaleOrderLoader`): the id, then the account number, then the number as an id,
/// then the number without a prefix.
fn order_doc_lookups(doc: &Document) -> Vec<Lookup> {
    let mut out = Vec::new();
    if let Some(id) = doc.id.as_deref().filter(|v| !v.trim().is_empty()) {
        out.push(Lookup::OrderId(id.trim().to_owned()));
    }
    if let Some(n) = doc.number.as_deref().filter(|v| !v.trim().is_empty()) {
        let n = n.trim();
        out.push(Lookup::OrderNumber(n.to_owned()));
        out.push(Lookup::OrderId(n.to_owned()));
        for stripped in without_prefix(n) {
            out.push(Lookup::OrderNumber(stripped.clone()));
            out.push(Lookup::OrderId(stripped));
        }
    }
    out
}

/// The look-ups that find the order a document is about, most certain first: an order document's own `Ид` and
/// `Номер`; a payment's `Основание` (the order's `Номер` as 1C knows it) or the parent order of a 2.10
/// subordinate document. Each names an order only if the store described it (`crate::app::resolve`).
pub fn order_lookups(doc: &Document, parent: Option<&Document>) -> Vec<Lookup> {
    match doc.operation {
        Operation::Order => order_doc_lookups(doc),
        _ => match doc.base.as_deref().filter(|b| !b.trim().is_empty()) {
            Some(base) => {
                let base = base.trim();
                let mut out = vec![
                    Lookup::OrderNumber(base.to_owned()),
                    Lookup::OrderId(base.to_owned()),
                ];
                for stripped in without_prefix(base) {
                    out.push(Lookup::OrderNumber(stripped.clone()));
                    out.push(Lookup::OrderId(stripped));
                }
                out
            }
            None => parent.map(order_doc_lookups).unwrap_or_default(),
        },
    }
}

fn method(op: &Operation) -> PaymentMethod {
    match op {
        Operation::PaymentCash => PaymentMethod::Cash,
        Operation::PaymentCashless => PaymentMethod::BankTransfer,
        Operation::PaymentCard => PaymentMethod::Card,
        _ => PaymentMethod::Other,
    }
}

fn when(doc: &Document, offset_minutes: i32, now_ms: i64) -> i64 {
    let text = doc
        .paid_date_1c()
        .map(str::to_owned)
        .or_else(|| crate::formats::commerceml::read::document_datetime(doc));
    text.as_deref()
        .and_then(normalize_datetime)
        .and_then(|t| datetime_ms(&t, offset_minutes))
        .unwrap_or(now_ms)
}

fn err(doc: &Document) -> impl Fn(DomainError) -> String + '_ {
    move |e| doc_error(doc, &e.to_string())
}

/// Facts for one document of an order the ledger holds as `current` (if it holds it at all).
pub fn facts_for(
    doc: &Document,
    order_id: &OrderId,
    current: Option<&Order>,
    offset_minutes: i32,
    now_ms: i64,
    refund_on_cancel: bool,
) -> Result<Vec<PaymentFact>, String> {
    let Some(doc_id) = doc.id.as_deref().or(doc.number.as_deref()) else {
        return Err(doc_error(doc, "Документ без Ид не загружен"));
    };
    let version = doc.version.as_deref().unwrap_or("-");
    let currency = current.map_or(Currency::RUB, Order::currency);
    let at = when(doc, offset_minutes, now_ms);
    let e = err(doc);
    let fact = |external: &str, payment: PaymentRef, method: PaymentMethod, kind: FactKind| {
        PaymentFact::new(
            FactId::new(Source::OneC, external)?,
            order_id.clone(),
            payment,
            method,
            currency,
            kind,
            at,
        )
    };
    let mut out = Vec::new();
    match &doc.operation {
        Operation::Order => {
            let settle = PaymentRef::new(Source::OneC, &format!("order:{order_id}")).map_err(&e)?;
            if doc.paid_per_1c() && !doc.cancelled() {
                out.push(
                    fact(
                        &format!("order#{doc_id}#paid"),
                        settle.clone(),
                        PaymentMethod::Other,
                        FactKind::SettledInFull,
                    )
                    .map_err(&e)?,
                );
            }
            if doc.cancelled() {
                out.push(
                    fact(
                        &format!("order#{doc_id}#cancelled"),
                        settle.clone(),
                        PaymentMethod::Other,
                        FactKind::OrderCancelled,
                    )
                    .map_err(&e)?,
                );
                // Cancelling a paid order asks for the money back, one request per payment that still keeps money
                // (each goes back the way it came), unless the policy is to ask a person first.
                if let (true, Some(order)) = (refund_on_cancel, current) {
                    let mut asked = order.refund_claimed();
                    for (payment, line) in &order.lines {
                        let claimed: i64 = order
                            .refund_requests
                            .values()
                            .filter(|r| r.status.is_open() && r.line.as_ref() == Some(payment))
                            .map(|r| r.amount)
                            .sum();
                        let free = line.counted() - line.refunded() - line.charged_back() - claimed;
                        if free <= 0 {
                            continue;
                        }
                        asked += free;
                        out.push(
                            fact(
                                &format!("order#{doc_id}#cancel-refund#{payment}"),
                                payment.clone(),
                                line.method,
                                FactKind::RefundRequested {
                                    amount: free,
                                    reason: "Заказ отменен в 1С".into(),
                                    method: line.method,
                                    retries: None,
                                    to_bank: None,
                                },
                            )
                            .map_err(&e)?,
                        );
                    }
                    // What 1C settled without an amount has no line of money: it is asked back on the settling line.
                    let rest = order.totals().net() - asked;
                    if rest > 0 {
                        out.push(
                            fact(
                                &format!("order#{doc_id}#cancel-refund#rest"),
                                settle,
                                PaymentMethod::Other,
                                FactKind::RefundRequested {
                                    amount: rest,
                                    reason: "Заказ отменен в 1С".into(),
                                    method: PaymentMethod::Other,
                                    retries: None,
                                    to_bank: None,
                                },
                            )
                            .map_err(&e)?,
                        );
                    }
                }
            }
        }
        op if op.is_payment() => {
            let Some(amount) = doc.amount else {
                return Err(doc_error(doc, "Не указана сумма оплаты"));
            };
            let method = method(op);
            let own = PaymentRef::new(Source::OneC, doc_id).map_err(&e)?;
            if doc.is_return() {
                // A return document asks for money back; refund-chargeback executes it through the acquirer, or as a
                // bank transfer / cash return for money that did not come by card.
                if !doc.cancelled() {
                    out.push(
                        fact(
                            &format!("{doc_id}#{version}#refund"),
                            own,
                            method,
                            FactKind::RefundRequested {
                                amount,
                                reason: doc
                                    .return_reason()
                                    .unwrap_or("Возврат по документу 1С")
                                    .to_owned(),
                                method,
                                retries: None,
                                to_bank: None,
                            },
                        )
                        .map_err(&e)?,
                    );
                }
                return Ok(out);
            }
            let link_key = crate::domain::link(Source::OneC, doc_id);
            let lines = current.map(|o| &o.lines);
            if doc.paid_per_1c() && !doc.cancelled() {
                // Money we already hold from another source: the line this document was linked to before, or an
                // unlinked line of the same kind and amount.
                let linked = lines.and_then(|lines| {
                    lines
                        .iter()
                        .find(|(_, l)| l.linked.contains(&link_key))
                        .or_else(|| {
                            lines.iter().find(|(r, l)| {
                                r.source() != Some(crate::domain::Source::OneC)
                                    && l.method == method
                                    && !l.voided
                                    && l.linked.is_empty()
                                    && l.counted() == amount
                            })
                        })
                        .map(|(r, _)| r.clone())
                });
                let f = match linked {
                    Some(target) => fact(
                        &format!("{doc_id}#{version}"),
                        target,
                        method,
                        FactKind::Payment { amount },
                    )
                    .map_err(&e)?
                    .linking(link_key),
                    None => fact(
                        &format!("{doc_id}#{version}"),
                        own,
                        method,
                        FactKind::Payment { amount },
                    )
                    .map_err(&e)?,
                };
                out.push(f);
            } else if lines.is_some_and(|l| l.get(&own).is_some_and(|line| line.counted() > 0)) {
                out.push(
                    fact(
                        &format!("{doc_id}#{version}#void"),
                        own,
                        method,
                        FactKind::Void {
                            reason: "payment document cancelled or unpaid in 1C".into(),
                        },
                    )
                    .map_err(&e)?,
                );
            }
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderInfo;

    fn payment(op: Operation, id: &str, version: &str, amount: i64, paid: bool) -> Document {
        Document {
            id: Some(id.into()),
            version: Some(version.into()),
            operation: op,
            amount: Some(amount),
            base: Some("5001".into()),
            requisites: vec![("Оплачен".into(), if paid { "true" } else { "false" }.into())],
            ..Document::default()
        }
    }

    fn order_with_card_payment() -> Order {
        let id = OrderId::parse("5001").unwrap();
        let mut o = Order::new(id.clone());
        o.set_info(OrderInfo::new(Some("5001".into()), 500_000, Currency::RUB));
        let f = PaymentFact::new(
            FactId::new(Source::Tbank, "9#CONFIRMED").unwrap(),
            id,
            PaymentRef::new(Source::Tbank, "9").unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount: 500_000 },
            1,
        )
        .unwrap();
        o.apply(&f).unwrap();
        o
    }

    fn apply_all(o: &mut Order, doc: &Document) {
        let id = o.id.clone();
        for f in facts_for(doc, &id, Some(o), 180, 0, true).unwrap() {
            o.apply(&f).unwrap();
        }
    }

    #[test]
    fn acquiring_echo_from_1c_links_instead_of_adding() {
        let mut o = order_with_card_payment();
        let echo = payment(Operation::PaymentCard, "doc-1", "v1", 500_000, true);
        apply_all(&mut o, &echo);
        assert_eq!(o.totals().paid, 500_000);
        // A new version of the same document stays linked; a real second card payment is overpayment.
        apply_all(
            &mut o,
            &payment(Operation::PaymentCard, "doc-1", "v2", 500_000, true),
        );
        assert_eq!(o.totals().paid, 500_000);
        apply_all(
            &mut o,
            &payment(Operation::PaymentCard, "doc-2", "v1", 500_000, true),
        );
        assert_eq!(o.totals().paid, 1_000_000);
        assert_eq!(o.state(), crate::domain::OrderState::Overpaid);
    }

    #[test]
    fn bank_and_cash_payments_from_1c_count_and_can_be_voided() {
        let id = OrderId::parse("5001").unwrap();
        let mut o = Order::new(id.clone());
        o.set_info(OrderInfo::new(Some("5001".into()), 500_000, Currency::RUB));
        apply_all(
            &mut o,
            &payment(Operation::PaymentCashless, "b-1", "v1", 150_000, true),
        );
        apply_all(
            &mut o,
            &payment(Operation::PaymentCash, "c-1", "v1", 350_000, true),
        );
        assert_eq!(o.state(), crate::domain::OrderState::Paid);
        let mut cancelled = payment(Operation::PaymentCash, "c-1", "v2", 350_000, true);
        cancelled.requisites.push(("Отменен".into(), "true".into()));
        apply_all(&mut o, &cancelled);
        assert_eq!(o.totals().paid, 150_000);
    }

    #[test]
    fn order_level_paid_and_cancel_and_refused_documents() {
        let mut o = order_with_card_payment();
        o.set_info(OrderInfo::new(Some("5001".into()), 600_000, Currency::RUB));
        let order_doc = Document {
            id: Some("guid-o".into()),
            number: Some("5001".into()),
            operation: Operation::Order,
            requisites: vec![("Дата оплаты по 1С".into(), "2021-02-18T9:49:02".into())],
            ..Document::default()
        };
        apply_all(&mut o, &order_doc);
        assert_eq!(
            o.totals().paid,
            600_000,
            "settles the open 100 000, not another 600 000"
        );
        let mut refund = payment(Operation::PaymentCard, "r-1", "v1", 100, true);
        refund
            .requisites
            .push(("ПризнакВозврата".into(), "true".into()));
        refund
            .requisites
            .push(("Причина к Возврату".into(), "Брак".into()));
        let id = o.id.clone();
        let facts = facts_for(&refund, &id, Some(&o), 180, 0, true).unwrap();
        assert_eq!(
            facts[0].kind,
            FactKind::RefundRequested {
                amount: 100,
                reason: "Брак".into(),
                method: PaymentMethod::Card,
                retries: None,
                to_bank: None,
            }
        );
        apply_all(&mut o, &refund);
        assert_eq!(o.totals().paid, 600_000, "a request moves no money");
        assert_eq!(
            o.refund_requests.values().map(|r| r.amount).sum::<i64>(),
            100
        );
        let mut no_sum = payment(Operation::PaymentCash, "n-1", "v1", 1, true);
        no_sum.amount = None;
        assert!(facts_for(&no_sum, &id, Some(&o), 180, 0, true).is_err());
        let cancel = Document {
            deletion_mark: true,
            ..order_doc
        };
        apply_all(&mut o, &cancel);
        assert!(o.cancelled());
        assert_eq!(
            o.refund_claimed(),
            600_000,
            "cancelling a paid order asks back everything it keeps, once (the 100 asked before included)"
        );
        assert!(o
            .refund_requests
            .values()
            .all(|r| r.status != crate::domain::RefundStatus::Refused));
    }
}
