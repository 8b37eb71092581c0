//! What needs a person: the breaks the robot cannot settle alone, one kind per list of the console's "Needs
//! attention" page. Pure: an order in, the breaks it has out; the ledger keeps one row per (kind, order) in the same
//! transaction as the change ([`crate::ports::Projections::attention`]), so a page reads a list, never the table.
//!
//! Two kinds are not about one order and are kept by their own writers: payout mismatches (statement-pull's
//! settlement reconciliation) and payments whose status nobody could learn (status-sync gives up).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fact::{OrderId, PaymentMethod, Source};
use super::matching::UnmatchedReceipt;
use super::money::Currency;
use super::order::{is_acquirer, Order, OrderState};
use super::settlement::SettlementReport;
use super::watch::{Question, WatchEntry};

/// One kind of break. The order is the console's order of lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Bank money that matched no order (statement-pull kept it on its `unmatched:` order).
    UnmatchedBank,
    /// Acquirer money whose reference names no store order yet.
    UnmatchedAcquirer,
    /// An order keeps more than its total (one source paid too much).
    Overpaid,
    /// An order paid twice: by card (an acquirer) and by bank transfer.
    DoublyPaid,
    /// A cancelled order keeps money nobody asked to return yet (`CANCEL_REFUND_POLICY=ask`).
    RefundDue,
    /// A refund the acquirer refused for good.
    RefundFailed,
    /// An acquirer's payout that does not reconcile with the card takings of its days.
    PayoutMismatch,
    /// Money kept on an order the store (or 1C) never described.
    UnknownOrder,
    /// A payment or refund whose outcome nobody could learn (status-sync gave up).
    StatusUnknown,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::UnmatchedBank,
        Kind::UnmatchedAcquirer,
        Kind::Overpaid,
        Kind::DoublyPaid,
        Kind::RefundDue,
        Kind::RefundFailed,
        Kind::PayoutMismatch,
        Kind::UnknownOrder,
        Kind::StatusUnknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::UnmatchedBank => "unmatched_bank",
            Kind::UnmatchedAcquirer => "unmatched_acquirer",
            Kind::Overpaid => "overpaid",
            Kind::DoublyPaid => "doubly_paid",
            Kind::RefundDue => "refund_due",
            Kind::RefundFailed => "refund_failed",
            Kind::PayoutMismatch => "payout_mismatch",
            Kind::UnknownOrder => "unknown_order",
            Kind::StatusUnknown => "status_unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A break as its row keeps it: which (`key`: the order id, the settlement's operation key or the question's key),
/// how much (`amount`, minor units of `currency`), a short `label` for the list (payer, order number, reason) and
/// since when (`since_ms`, ms since the epoch: the first change that showed it, kept on the order in
/// `Order::attention_since`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub kind: Kind,
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<OrderId>,
    pub amount: i64,
    pub currency: Currency,
    #[serde(default)]
    pub label: String,
    /// Payer INN and name when the money came from a bank (what a person searches by).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_inn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer_name: Option<String>,
    #[serde(default)]
    pub since_ms: i64,
}

/// The breaks of one order: kind → (amount, label, payer inn, payer name). Empty for an order that is fine.
pub type Breaks = BTreeMap<Kind, Item>;

fn item(order: &Order, kind: Kind, amount: i64, label: String) -> Item {
    let since_ms = order.attention_since.get(&kind).copied().unwrap_or(0);
    Item {
        kind,
        key: order.id.to_string(),
        order: Some(order.id.clone()),
        amount,
        currency: order.currency(),
        label,
        payer_inn: None,
        payer_name: None,
        since_ms,
    }
}

/// Keep on the order when each of its breaks was first shown: a new one from `now_ms`, a settled one forgotten.
pub fn mark(order: &mut Order, now_ms: i64) {
    let kinds: Vec<Kind> = of(order).into_keys().collect();
    order.attention_since.retain(|k, _| kinds.contains(k));
    for k in kinds {
        order.attention_since.entry(k).or_insert(now_ms);
    }
}

/// The breaks an order has now, with the time each was first shown (see [`mark`]).
pub fn of(order: &Order) -> Breaks {
    let mut out = Breaks::new();
    let mut put = |i: Item| {
        out.insert(i.kind, i);
    };
    let number = order
        .info
        .as_ref()
        .and_then(|i| i.number.clone())
        .unwrap_or_default();
    if let Some(receipt) = UnmatchedReceipt::of(order) {
        let payer = receipt.payer.clone().unwrap_or_default();
        let mut i = item(order, Kind::UnmatchedBank, receipt.amount, payer.purpose);
        i.payer_inn = payer.inn;
        i.payer_name = payer.name;
        put(i);
    }
    if order.id.is_unmatched() && order.id.unmatched_source() != Some(Source::Bank) {
        let waiting: i64 = order
            .lines
            .iter()
            .filter(|(p, l)| is_acquirer(p) && !l.voided)
            .map(|(_, l)| l.counted() - l.refunded())
            .filter(|v| *v > 0)
            .sum();
        if waiting > 0 {
            let reference = order
                .lines
                .values()
                .find_map(|l| l.reference.as_ref().map(|r| r.raw.clone()))
                .unwrap_or_default();
            put(item(order, Kind::UnmatchedAcquirer, waiting, reference));
        }
    }
    let t = order.totals();
    if !order.id.is_unmatched() {
        if order.info.is_none() && t.net() > 0 {
            put(item(order, Kind::UnknownOrder, t.net(), String::new()));
        }
        if order.state() == OrderState::Overpaid {
            let excess = t.net() - order.total().unwrap_or_default();
            let keeps = |pred: &dyn Fn(&super::fact::PaymentRef, PaymentMethod) -> bool| {
                order
                    .lines
                    .iter()
                    .any(|(p, l)| pred(p, l.method) && l.counted() - l.refunded() > 0)
            };
            let by_card = keeps(&|p, _| is_acquirer(p));
            let by_bank = keeps(&|_, m| m == PaymentMethod::BankTransfer);
            let kind = if by_card && by_bank {
                Kind::DoublyPaid
            } else {
                Kind::Overpaid
            };
            put(item(order, kind, excess, number.clone()));
        }
        let flags = order.flags();
        if flags.contains(&"refund_due") {
            put(item(
                order,
                Kind::RefundDue,
                order.refund_due(),
                number.clone(),
            ));
        }
        let failed: Vec<_> = order
            .refund_requests
            .values()
            .filter(|r| r.needs_a_person())
            .collect();
        if !failed.is_empty() {
            let amount = failed.iter().map(|r| r.amount).sum();
            let reason = failed
                .iter()
                .filter_map(|r| r.detail.clone())
                .next()
                .unwrap_or_default();
            put(item(order, Kind::RefundFailed, amount, reason));
        }
    }
    out
}

/// A payout that does not reconcile with the card takings of its days: kept under its operation key, the
/// difference (credited − expected, minor units) as its amount.
pub fn payout_mismatch(report: &SettlementReport, now_ms: i64) -> Option<Item> {
    if report.reconciled {
        return None;
    }
    let expected = report.captured - report.refunded - report.stated_fee.unwrap_or(0);
    Some(Item {
        kind: Kind::PayoutMismatch,
        key: report.key.clone(),
        order: None,
        amount: report.credited - expected,
        currency: Currency::RUB,
        label: format!(
            "{} {}: {}",
            report.acquirer,
            report.days.join(", "),
            report.problems.join("; ")
        ),
        payer_inn: None,
        payer_name: None,
        since_ms: now_ms,
    })
}

/// A question status-sync gave up on, as a break: its watch key, its order, what was asked.
pub fn status_unknown(entry: &WatchEntry) -> Item {
    let w = &entry.watch;
    let asked = match &w.question {
        Question::Payment | Question::Owed => format!("{}", w.payment),
        Question::Refund { request, .. } => format!("{} ({request})", w.payment),
    };
    Item {
        kind: Kind::StatusUnknown,
        key: entry.key(),
        order: Some(w.order.clone()),
        amount: 0,
        currency: Currency::RUB,
        label: asked,
        payer_inn: None,
        payer_name: None,
        since_ms: entry.since_ms,
    }
}

/// How a change moves an order's rows: the rows to write (new, or their amount or label changed) and the kinds whose
/// rows go. An order that did not change its breaks writes nothing.
pub fn changed(before: &Breaks, after: &Breaks) -> (Vec<Item>, Vec<Kind>) {
    let kept = after
        .values()
        .filter(|i| before.get(&i.kind) != Some(i))
        .cloned()
        .collect();
    let gone = before
        .keys()
        .filter(|k| !after.contains_key(k))
        .copied()
        .collect();
    (kept, gone)
}

/// Age buckets of the "Needs attention" lists: 0–1, 2–7, 8–30 and over 30 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Age {
    UpToOneDay,
    UpToAWeek,
    UpToAMonth,
    Older,
}

impl Age {
    pub const ALL: [Age; 4] = [Age::UpToOneDay, Age::UpToAWeek, Age::UpToAMonth, Age::Older];

    /// The bucket of a break open since `since_ms`, at `now_ms` (whole days elapsed).
    pub fn of(since_ms: i64, now_ms: i64) -> Age {
        let days = (now_ms - since_ms).max(0) / 86_400_000;
        match days {
            0..=1 => Age::UpToOneDay,
            2..=7 => Age::UpToAWeek,
            8..=30 => Age::UpToAMonth,
            _ => Age::Older,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fact::{FactId, FactKind, PaymentFact, PaymentRef};
    use crate::domain::order::OrderInfo;

    fn fact(source: Source, ext: &str, method: PaymentMethod, amount: i64) -> PaymentFact {
        PaymentFact::new(
            FactId::new(source, &format!("{ext}#paid")).unwrap(),
            OrderId::parse("7").unwrap(),
            PaymentRef::new(source, ext).unwrap(),
            method,
            Currency::RUB,
            FactKind::Payment { amount },
            1,
        )
        .unwrap()
    }

    fn order(total: i64) -> Order {
        let mut o = Order::new(OrderId::parse("7").unwrap());
        o.set_info(OrderInfo::new(Some("IM-7".into()), total, Currency::RUB));
        o
    }

    #[test]
    fn card_and_bank_for_one_order_is_doubly_paid_not_overpaid() {
        let mut o = order(5_000);
        o.apply(&fact(Source::Tbank, "1", PaymentMethod::Card, 5_000))
            .unwrap();
        assert!(of(&o).is_empty());
        o.apply(&fact(Source::Bank, "2", PaymentMethod::BankTransfer, 5_000))
            .unwrap();
        let b = of(&o);
        assert_eq!(b.keys().copied().collect::<Vec<_>>(), [Kind::DoublyPaid]);
        assert_eq!(b[&Kind::DoublyPaid].amount, 5_000);
        assert_eq!(b[&Kind::DoublyPaid].label, "IM-7");
    }

    #[test]
    fn two_card_payments_over_the_total_are_overpaid() {
        let mut o = order(5_000);
        o.apply(&fact(Source::Tbank, "1", PaymentMethod::Card, 5_000))
            .unwrap();
        o.apply(&fact(Source::Tbank, "2", PaymentMethod::Card, 1_000))
            .unwrap();
        assert_eq!(of(&o)[&Kind::Overpaid].amount, 1_000);
    }

    #[test]
    fn money_on_an_order_nobody_described_is_an_unknown_order() {
        let mut o = Order::new(OrderId::parse("7").unwrap());
        o.apply(&fact(Source::Sber, "1", PaymentMethod::Card, 700))
            .unwrap();
        assert_eq!(of(&o)[&Kind::UnknownOrder].amount, 700);
    }

    #[test]
    fn only_what_changed_is_written() {
        let mut o = order(5_000);
        o.apply(&fact(Source::Tbank, "1", PaymentMethod::Card, 6_000))
            .unwrap();
        let before = of(&o);
        assert_eq!(changed(&before, &before), (vec![], vec![]));
        let after = Breaks::new();
        assert_eq!(changed(&before, &after), (vec![], vec![Kind::Overpaid]));
        let (kept, gone) = changed(&after, &before);
        assert_eq!((kept.len(), gone.len()), (1, 0));
    }

    #[test]
    fn ages_fall_into_the_four_buckets() {
        let day = 86_400_000;
        assert_eq!(Age::of(0, day + 5), Age::UpToOneDay);
        assert_eq!(Age::of(0, 2 * day), Age::UpToAWeek);
        assert_eq!(Age::of(0, 30 * day), Age::UpToAMonth);
        assert_eq!(Age::of(0, 31 * day), Age::Older);
        assert_eq!(Age::of(10, 0), Age::UpToOneDay);
    }
}
