//! Money whose outcome the acquirer knows and we do not yet: what status-sync asks the acquirer about when the
//! notification is late or never comes. Pure: an order in, the set of its open questions out, and the schedule on
//! which a question is asked again.
//!
//! An order needs watching for
//! - a store payment the store shows as started at an acquirer (`paySystemId` is the acquirer's entry of
//!   `BITRIX_PAY_SYSTEMS`, `psInvoiceId` is the acquirer's payment id, as 1C-Bitrix's own handlers record it) whose
//!   money the ledger has not seen settle;
//! - an acquirer line that is authorized and neither captured nor released;
//! - a refund request handed to the acquirer (`sent`, `pending`) that has not come back.
//!
//! A callback whose amount could not be learned (Sber without amounts) is watched too, but by the callback itself:
//! it is not visible in the order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fact::{OrderId, PaymentRef, Source};
use super::order::{is_acquirer, Order, PaymentLine};
use super::refund::RefundStatus;

/// What is asked about one piece of money.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Question {
    /// The payment's own outcome (paid, held, failed, released).
    Payment,
    /// A refund request's outcome: the request's fact id and the acquirer's refund id when known.
    Refund {
        request: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
    },
    /// A look-up a callback owes (a Sber callback without its amount, acknowledged): asked like `Payment`, but no
    /// order change opens or closes it, only its answer does, so nothing the store says can drop it.
    Owed,
}

/// One open question: which order, which money, what about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub order: OrderId,
    pub payment: PaymentRef,
    pub question: Question,
}

impl Watch {
    /// The question's stable key: `<order>#<payment ref>#payment`, `…#refund#<request fact id>` or `…#owed`. The
    /// order is part of it: money waiting on its `unmatched:` order and the store order it will move to each have
    /// their own question, and closing one never drops the other.
    pub fn key(&self) -> String {
        let (order, payment) = (&self.order, &self.payment);
        match &self.question {
            Question::Payment => format!("{order}#{payment}#payment"),
            Question::Refund { request, .. } => format!("{order}#{payment}#refund#{request}"),
            Question::Owed => format!("{order}#{payment}#owed"),
        }
    }

    /// The acquirer asked (every watched payment is an acquirer's).
    pub fn acquirer(&self) -> Option<Source> {
        self.payment.source().filter(|s| s.is_acquirer())
    }
}

/// A line whose payment outcome is known: captured, failed, voided or its hold released.
fn payment_settled(line: &PaymentLine) -> bool {
    line.captured > 0 || line.failed || line.voided || line.hold_released
}

/// Every open question of `order`, by key.
pub fn watches(order: &Order) -> BTreeMap<String, Watch> {
    let mut out = BTreeMap::new();
    let mut add = |w: Watch| {
        out.insert(w.key(), w);
    };
    if let Some(info) = &order.info {
        for p in &info.details.payments {
            let (Some(acquirer), Some(invoice)) = (p.acquirer, p.ps_invoice_id.as_deref()) else {
                continue;
            };
            // The store's flag counts too: a payment marked paid by hand is nobody's question.
            if p.paid || !acquirer.is_acquirer() {
                continue;
            }
            let Ok(payment) = PaymentRef::new(acquirer, invoice) else {
                continue;
            };
            if order.lines.get(&payment).is_some_and(payment_settled) {
                continue;
            }
            add(Watch {
                order: order.id.clone(),
                payment,
                question: Question::Payment,
            });
        }
    }
    for (payment, line) in &order.lines {
        if is_acquirer(payment) && line.authorized > 0 && !payment_settled(line) {
            add(Watch {
                order: order.id.clone(),
                payment: payment.clone(),
                question: Question::Payment,
            });
        }
    }
    for (request, r) in &order.refund_requests {
        let Some(payment) = r.line.as_ref().filter(|p| is_acquirer(p)) else {
            continue;
        };
        if matches!(r.status, RefundStatus::Sent | RefundStatus::Pending) {
            add(Watch {
                order: order.id.clone(),
                payment: payment.clone(),
                question: Question::Refund {
                    request: request.clone(),
                    provider_id: r.provider_id.clone(),
                },
            });
        }
    }
    out
}

/// An open question with its schedule, as kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEntry {
    pub watch: Watch,
    /// When the question was first opened (ms since the epoch): its age decides how often it is asked.
    pub since_ms: i64,
    /// When it is asked next.
    pub due_ms: i64,
    /// How often it was asked.
    #[serde(default)]
    pub checks: u32,
}

impl WatchEntry {
    /// A question opened at `now_ms`, asked at the next run.
    pub fn new(watch: Watch, now_ms: i64) -> Self {
        WatchEntry {
            watch,
            since_ms: now_ms,
            due_ms: now_ms,
            checks: 0,
        }
    }

    pub fn key(&self) -> String {
        self.watch.key()
    }
}

/// What one change of an order does to its questions: the ones it opens and the keys of the ones it closes.
pub fn changed(before: &Order, after: &Order) -> (Vec<Watch>, Vec<String>) {
    changed_since(&watches(before), after)
}

/// [`changed`], from the questions the order had before (`was`, from [`watches`]).
pub fn changed_since(was: &BTreeMap<String, Watch>, after: &Order) -> (Vec<Watch>, Vec<String>) {
    let now = watches(after);
    let opened = now
        .iter()
        .filter(|(k, w)| was.get(*k) != Some(w))
        .map(|(_, w)| w.clone())
        .collect();
    let closed = was
        .keys()
        .filter(|k| !now.contains_key(*k))
        .cloned()
        .collect();
    (opened, closed)
}

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;
const DAY_MS: i64 = 24 * HOUR_MS;

/// How often a question is asked, by its age: every minute for the first 15 minutes (most payments finish there),
/// hourly up to 3 days, then daily up to `give_up_after_ms` (the acquirer's archive limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub give_up_after_ms: i64,
}

impl Backoff {
    /// When to ask next after asking at `now_ms` a question first seen at `since_ms`; `None`: give up (a person
    /// decides, the question is flagged `status_unknown`).
    pub fn next(&self, since_ms: i64, now_ms: i64) -> Option<i64> {
        let age = (now_ms - since_ms).max(0);
        if age >= self.give_up_after_ms {
            return None;
        }
        let step = if age < 15 * MINUTE_MS {
            MINUTE_MS
        } else if age < 3 * DAY_MS {
            HOUR_MS
        } else {
            DAY_MS
        };
        Some(now_ms + step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reference::StorePaymentInfo;
    use crate::domain::{
        Currency, FactId, FactKind, OrderInfo, PaymentFact, PaymentMethod, RefundProgress,
    };

    fn order_with_store_payment(acquirer: Option<Source>, paid: bool) -> Order {
        let mut o = Order::new(OrderId::parse("7001").unwrap());
        let mut info = OrderInfo::new(Some("7001".into()), 500_000, Currency::RUB);
        info.details.payments = vec![StorePaymentInfo {
            id: "900".into(),
            account_number: Some("7001/1".into()),
            sum: 500_000,
            pay_system_id: Some("5".into()),
            ps_invoice_id: Some("8742591".into()),
            paid,
            acquirer,
        }];
        o.set_info(info);
        o
    }

    fn fact(id: &str, kind: FactKind) -> PaymentFact {
        PaymentFact::new(
            FactId::new(Source::Tbank, id).unwrap(),
            OrderId::parse("7001").unwrap(),
            PaymentRef::new(Source::Tbank, "8742591").unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            kind,
            1,
        )
        .unwrap()
    }

    #[test]
    fn a_store_payment_started_at_an_acquirer_is_watched_until_its_money_settles() {
        let mut o = order_with_store_payment(Some(Source::Tbank), false);
        let w = watches(&o);
        assert_eq!(w.keys().collect::<Vec<_>>(), ["7001#tbank:8742591#payment"]);
        let before = o.clone();
        o.apply(&fact(
            "8742591#AUTHORIZED",
            FactKind::Authorization { amount: 500_000 },
        ))
        .unwrap();
        assert_eq!(watches(&o).len(), 1, "held, not captured: still a question");
        assert_eq!(changed(&before, &o), (Vec::new(), Vec::new()));
        let held = o.clone();
        o.apply(&fact(
            "8742591#CONFIRMED",
            FactKind::Payment { amount: 500_000 },
        ))
        .unwrap();
        assert!(watches(&o).is_empty());
        assert_eq!(
            changed(&held, &o),
            (Vec::new(), vec!["7001#tbank:8742591#payment".to_owned()])
        );
    }

    #[test]
    fn a_payment_of_no_acquirer_or_already_paid_in_the_store_is_no_question() {
        assert!(watches(&order_with_store_payment(None, false)).is_empty());
        assert!(watches(&order_with_store_payment(Some(Source::Bank), false)).is_empty());
        assert!(watches(&order_with_store_payment(Some(Source::Tbank), true)).is_empty());
    }

    #[test]
    fn a_refund_handed_to_the_acquirer_is_watched_until_it_comes_back() {
        let mut o = order_with_store_payment(Some(Source::Tbank), false);
        o.apply(&fact(
            "8742591#CONFIRMED",
            FactKind::Payment { amount: 500_000 },
        ))
        .unwrap();
        let ask = PaymentFact::new(
            FactId::new(Source::OneC, "ret-1").unwrap(),
            OrderId::parse("7001").unwrap(),
            PaymentRef::new(Source::OneC, "ret-1").unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::RefundRequested {
                amount: 100_000,
                reason: "Брак".into(),
                method: PaymentMethod::Card,
                retries: None,
                to_bank: None,
            },
            2,
        )
        .unwrap()
        .with_payment(PaymentRef::new(Source::Tbank, "8742591").unwrap());
        o.apply(&ask).unwrap();
        assert!(
            watches(&o).is_empty(),
            "requested: refund-chargeback's work"
        );
        let before = o.clone();
        let sent = PaymentFact::new(
            FactId::new(Source::Refund, "1c#ret-1#sent").unwrap(),
            OrderId::parse("7001").unwrap(),
            PaymentRef::new(Source::Refund, "1c#ret-1").unwrap(),
            PaymentMethod::Other,
            Currency::RUB,
            FactKind::RefundProgress(RefundProgress {
                request: "1c#ret-1".into(),
                status: RefundStatus::Sent,
                provider_id: None,
                expect: None,
                detail: None,
                with_receipt: false,
            }),
            3,
        )
        .unwrap();
        o.apply(&sent).unwrap();
        let (opened, closed) = changed(&before, &o);
        assert_eq!(
            opened.iter().map(Watch::key).collect::<Vec<_>>(),
            ["7001#tbank:8742591#refund#1c#ret-1"]
        );
        assert!(closed.is_empty());
    }

    #[test]
    fn questions_are_asked_every_minute_then_hourly_then_daily_then_given_up() {
        let b = Backoff {
            give_up_after_ms: 30 * DAY_MS,
        };
        assert_eq!(b.next(0, 5 * MINUTE_MS), Some(6 * MINUTE_MS));
        assert_eq!(b.next(0, 20 * MINUTE_MS), Some(20 * MINUTE_MS + HOUR_MS));
        assert_eq!(b.next(0, 4 * DAY_MS), Some(5 * DAY_MS));
        assert_eq!(b.next(0, 30 * DAY_MS), None);
    }
}
