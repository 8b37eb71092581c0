//! Matching an incoming bank payment to the order(s) it pays. Pure: the credit and the open orders in, a decision out.
//!
//! 1. The purpose names invoices/orders: the order(s) carrying those numbers (exactly, else by the trailing number
//!    without prefix and leading zeros, `00-000123` = `123`, when that is unique). One order takes the whole amount:
//!    less than open is partial, more is overpaid. Several orders are split only when the amount equals what they
//!    have open together.
//! 2. No number: the one open order with exactly this amount and the payer's INN, as a weaker match.
//! 3. Otherwise unmatched, with the reason; the money is kept for people to resolve.

use std::collections::HashMap;

use crate::domain::{Order, OrderId, OrderState, Payer, PaymentMethod, PaymentRef};

/// A number a payment purpose names (read by `formats::purpose`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Invoice(String),
    Order(String),
}

/// An order that can still receive money.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OpenOrder {
    pub id: OrderId,
    pub number: Option<String>,
    /// Invoice numbers issued for the order (from 1C or the store).
    pub invoices: Vec<String>,
    /// The store's payment account numbers of the order (`392/1`), which shops print on invoices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payment_numbers: Vec<String>,
    /// Total minus what is already kept, minor units.
    pub open: i64,
    pub buyer_inn: Option<String>,
}

impl OpenOrder {
    /// An order that can still receive money: known to the store, not cancelled, not (fully) paid.
    pub fn of(order: &Order) -> Option<OpenOrder> {
        let info = order.info.as_ref()?;
        if order.cancelled()
            || !matches!(
                order.state(),
                OrderState::Unpaid | OrderState::PartiallyPaid
            )
        {
            return None;
        }
        Some(OpenOrder {
            id: order.id.clone(),
            number: info.number.clone(),
            invoices: info.details.invoices.clone(),
            payment_numbers: info
                .details
                .payments
                .iter()
                .filter_map(|p| p.account_number.clone())
                .collect(),
            open: info.total - order.totals().net().max(0),
            buyer_inn: info.details.buyer.as_ref().and_then(|b| b.inn.clone()),
        })
    }
}

/// Bank money that matched no order, kept on its `unmatched:` order until someone allocates it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnmatchedReceipt {
    pub order: OrderId,
    pub payment: PaymentRef,
    pub amount: i64,
    #[serde(default)]
    pub payer: Option<Payer>,
}

impl UnmatchedReceipt {
    /// The still-unallocated bank money of an `unmatched:` order.
    pub fn of(order: &Order) -> Option<UnmatchedReceipt> {
        if order.id.unmatched_source() != Some(crate::domain::Source::Bank) {
            return None;
        }
        let (payment, line) = order
            .lines
            .iter()
            .find(|(_, l)| l.method == PaymentMethod::BankTransfer && l.counted() > 0)?;
        Some(UnmatchedReceipt {
            order: order.id.clone(),
            payment: payment.clone(),
            amount: line.counted() - line.refunded(),
            payer: line.payer.clone(),
        })
    }
}

/// The unmatched receipt a payment document of 1C (amount, the order's buyer INN) allocates: the only one of
/// exactly that amount whose payer is that buyer, or, when the buyer's INN is not known, the only one of that
/// amount at all. Ambiguity allocates nothing: a person decides.
pub fn allocated<'a>(
    amount: i64,
    buyer_inn: Option<&str>,
    receipts: &'a [UnmatchedReceipt],
) -> Option<&'a UnmatchedReceipt> {
    let same_amount = receipts.iter().filter(|r| r.amount == amount);
    let candidates: Vec<&UnmatchedReceipt> = match buyer_inn {
        Some(inn) => same_amount
            .filter(|r| r.payer.as_ref().and_then(|p| p.inn.as_deref()) == Some(inn))
            .collect(),
        None => same_amount.collect(),
    };
    match candidates.as_slice() {
        [one] => Some(one),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credit<'a> {
    pub amount: i64,
    pub payer_inn: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confidence {
    /// The purpose names the order or its invoice.
    Reference,
    /// No number: the only open order with this exact amount and the payer's INN.
    AmountAndInn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    Order {
        order: OrderId,
        amount: i64,
        confidence: Confidence,
        /// Pays less than open.
        partial: bool,
        /// Pays more than open.
        overpaid: bool,
        /// Both INNs are known and differ (someone else paid): matched by number, flagged for a look.
        inn_mismatch: bool,
    },
    /// One payment for several orders whose open amounts add up to it exactly.
    Split(Vec<(OrderId, i64)>),
    Unmatched(&'static str),
}

/// `ЦБ-000123` → `123`: the trailing digits without leading zeros.
fn trailing_number(s: &str) -> Option<&str> {
    let digits_start = s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let digits = &s[digits_start..];
    let trimmed = digits.trim_start_matches('0');
    (!digits.is_empty()).then_some(if trimmed.is_empty() { "0" } else { trimmed })
}

fn names(order: &OpenOrder) -> impl Iterator<Item = &str> {
    order
        .number
        .iter()
        .chain(order.invoices.iter())
        .chain(order.payment_numbers.iter())
        .map(String::as_str)
}

/// Open orders indexed by number/invoice (exact, ASCII case-insensitive), by trailing number and by buyer INN, so
/// matching a statement of 100 000 operations against thousands of orders stays linear.
#[derive(Debug, Clone, Default)]
pub struct OpenOrders {
    orders: Vec<OpenOrder>,
    by_name: HashMap<String, Vec<usize>>,
    by_number: HashMap<String, Vec<usize>>,
    by_inn: HashMap<String, Vec<usize>>,
    by_id: HashMap<OrderId, usize>,
}

impl From<Vec<OpenOrder>> for OpenOrders {
    fn from(orders: Vec<OpenOrder>) -> Self {
        let mut index = OpenOrders::default();
        for (i, o) in orders.iter().enumerate() {
            for n in names(o) {
                let list = index.by_name.entry(n.to_ascii_lowercase()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
                if let Some(t) = trailing_number(n) {
                    let list = index.by_number.entry(t.to_owned()).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
            if let Some(inn) = &o.buyer_inn {
                index.by_inn.entry(inn.clone()).or_default().push(i);
            }
            index.by_id.insert(o.id.clone(), i);
        }
        index.orders = orders;
        index
    }
}

impl OpenOrders {
    /// Money an operation of this run paid: later operations see the order with less (or nothing) open.
    pub fn pay(&mut self, order: &OrderId, amount: i64) {
        if let Some(&i) = self.by_id.get(order) {
            if let Some(o) = self.orders.get_mut(i) {
                o.open -= amount;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.orders.iter().filter(|o| o.open > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn open(&self, ids: Option<&Vec<usize>>) -> Vec<&OpenOrder> {
        ids.into_iter()
            .flatten()
            .filter_map(|&i| self.orders.get(i))
            .filter(|o| o.open > 0)
            .collect()
    }

    /// The open orders a purpose's number names: exactly (a number or invoice), else a Bitrix payment account
    /// number `<order number>/<n>` by its order's number, else by the trailing number when that is unique and the
    /// order's buyer is not someone other than the payer (a zero-padded `000123` that contradicts the payer's INN
    /// is another company's order 123).
    fn referenced(&self, reference: &str, payer_inn: Option<&str>) -> Vec<&OpenOrder> {
        let exact = self.open(self.by_name.get(&reference.to_ascii_lowercase()));
        if !exact.is_empty() {
            return exact;
        }
        let reference = match reference.rsplit_once('/') {
            Some((order, n))
                if !order.is_empty() && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let exact = self.open(self.by_name.get(&order.to_ascii_lowercase()));
                if !exact.is_empty() {
                    return exact;
                }
                order
            }
            _ => reference,
        };
        let Some(wanted) = trailing_number(reference) else {
            return Vec::new();
        };
        let loose: Vec<&OpenOrder> = self
            .open(self.by_number.get(wanted))
            .into_iter()
            .filter(|o| match (payer_inn, o.buyer_inn.as_deref()) {
                (Some(p), Some(b)) => p == b,
                _ => true,
            })
            .collect();
        if loose.len() == 1 {
            loose
        } else {
            Vec::new()
        }
    }

    pub fn match_credit(&self, credit: Credit<'_>, references: &[Reference]) -> Matched {
        if !references.is_empty() {
            let mut found: Vec<&OpenOrder> = Vec::new();
            for r in references {
                let number = match r {
                    Reference::Invoice(n) | Reference::Order(n) => n,
                };
                for o in self.referenced(number, credit.payer_inn) {
                    if !found.iter().any(|f| f.id == o.id) {
                        found.push(o);
                    }
                }
            }
            return match found.as_slice() {
                [] => Matched::Unmatched("the purpose names no known order or invoice"),
                [one] => single(one, credit, Confidence::Reference),
                several => {
                    let open: i64 = several.iter().map(|o| o.open).sum();
                    if open == credit.amount {
                        Matched::Split(several.iter().map(|o| (o.id.clone(), o.open)).collect())
                    } else {
                        Matched::Unmatched(
                            "several orders named and the amount does not determine the split",
                        )
                    }
                }
            };
        }
        let Some(payer) = credit.payer_inn else {
            return Matched::Unmatched("no order number in the purpose and no payer INN");
        };
        let candidates: Vec<&OpenOrder> = self
            .open(self.by_inn.get(payer))
            .into_iter()
            .filter(|o| o.open == credit.amount)
            .collect();
        match candidates.as_slice() {
            [one] => single(one, credit, Confidence::AmountAndInn),
            [] => Matched::Unmatched(
                "no order number in the purpose and no open order of this amount for this payer",
            ),
            _ => Matched::Unmatched(
                "no order number in the purpose and several open orders of this amount",
            ),
        }
    }
}

fn single(order: &OpenOrder, credit: Credit<'_>, confidence: Confidence) -> Matched {
    let inn_mismatch =
        matches!((credit.payer_inn, order.buyer_inn.as_deref()), (Some(p), Some(b)) if p != b);
    Matched::Order {
        order: order.id.clone(),
        amount: credit.amount,
        confidence,
        partial: credit.amount < order.open,
        overpaid: credit.amount > order.open,
        inn_mismatch,
    }
}

/// Match against a plain list (builds the index; a run matching many operations keeps an [`OpenOrders`]).
pub fn match_credit(credit: Credit<'_>, references: &[Reference], orders: &[OpenOrder]) -> Matched {
    OpenOrders::from(orders.to_vec()).match_credit(credit, references)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, invoices: &[&str], open: i64, inn: Option<&str>) -> OpenOrder {
        OpenOrder {
            id: OrderId::parse(id).unwrap(),
            number: Some(id.into()),
            invoices: invoices.iter().map(|s| s.to_string()).collect(),
            payment_numbers: Vec::new(),
            open,
            buyer_inn: inn.map(str::to_owned),
        }
    }

    fn inv(n: &str) -> Reference {
        Reference::Invoice(n.into())
    }

    fn credit(amount: i64, inn: Option<&str>) -> Credit<'_> {
        Credit {
            amount,
            payer_inn: inn,
        }
    }

    fn orders() -> Vec<OpenOrder> {
        vec![
            order("5001", &["ЦБ-000183"], 500_000, Some("7701234567")),
            order("5002", &["211"], 100_000, Some("7701234567")),
            order("5003", &["ХИМ-ММР286"], 724_881, None),
            order("5004", &[], 250_000, Some("5009876543")),
            order("5005", &[], 250_000, Some("5009876543")),
            order("5006", &[], 99_900, Some("7812345678")),
        ]
    }

    #[test]
    fn open_orders_are_known_uncancelled_and_not_fully_paid() {
        use crate::domain::{
            Currency, FactId, FactKind, OrderInfo, PaymentFact, PaymentMethod, PaymentRef, Source,
        };
        let mut o = Order::new(OrderId::parse("7").unwrap());
        assert_eq!(OpenOrder::of(&o), None, "unknown to the store");
        let mut info = OrderInfo::new(Some("7".into()), 1000, Currency::RUB);
        info.details.invoices = vec!["ЦБ-7".into()];
        o.set_info(info);
        assert_eq!(
            OpenOrder::of(&o).map(|x| (x.open, x.invoices)),
            Some((1000, vec!["ЦБ-7".to_owned()]))
        );
        let pay = |n: &str, amount| {
            PaymentFact::new(
                FactId::new(Source::Bank, n).unwrap(),
                OrderId::parse("7").unwrap(),
                PaymentRef::new(Source::Bank, n).unwrap(),
                PaymentMethod::BankTransfer,
                Currency::RUB,
                FactKind::Payment { amount },
                1,
            )
            .unwrap()
        };
        o.apply(&pay("a", 300)).unwrap();
        assert_eq!(OpenOrder::of(&o).map(|x| x.open), Some(700));
        o.apply(&pay("b", 700)).unwrap();
        assert_eq!(OpenOrder::of(&o), None, "paid");
    }

    #[test]
    fn the_matching_table() {
        let os = orders();
        let id = |s: &str| OrderId::parse(s).unwrap();
        let cases: Vec<(&str, Credit<'_>, Vec<Reference>, Matched)> = vec![
            (
                "30 % advance by invoice number without prefix",
                credit(150_000, Some("7701234567")),
                vec![inv("183")],
                Matched::Order {
                    order: id("5001"),
                    amount: 150_000,
                    confidence: Confidence::Reference,
                    partial: true,
                    overpaid: false,
                    inn_mismatch: false,
                },
            ),
            (
                "the 70 % balance exactly",
                credit(500_000, Some("7701234567")),
                vec![inv("ЦБ-000183")],
                Matched::Order {
                    order: id("5001"),
                    amount: 500_000,
                    confidence: Confidence::Reference,
                    partial: false,
                    overpaid: false,
                    inn_mismatch: false,
                },
            ),
            (
                "overpayment is matched and flagged",
                credit(600_000, None),
                vec![inv("183")],
                Matched::Order {
                    order: id("5001"),
                    amount: 600_000,
                    confidence: Confidence::Reference,
                    partial: false,
                    overpaid: true,
                    inn_mismatch: false,
                },
            ),
            (
                "alphanumeric invoice, buyer INN unknown",
                credit(724_881, Some("1111111111")),
                vec![inv("ХИМ-ММР286")],
                Matched::Order {
                    order: id("5003"),
                    amount: 724_881,
                    confidence: Confidence::Reference,
                    partial: false,
                    overpaid: false,
                    inn_mismatch: false,
                },
            ),
            (
                "two invoices paid together, amounts determine the split",
                credit(600_000, Some("7701234567")),
                vec![inv("183"), inv("211")],
                Matched::Split(vec![(id("5001"), 500_000), (id("5002"), 100_000)]),
            ),
            (
                "two invoices, amount does not determine the split",
                credit(300_000, Some("7701234567")),
                vec![inv("183"), inv("211")],
                Matched::Unmatched(
                    "several orders named and the amount does not determine the split",
                ),
            ),
            (
                "unknown invoice",
                credit(100, None),
                vec![inv("999")],
                Matched::Unmatched("the purpose names no known order or invoice"),
            ),
            (
                "no number, unique amount and INN: weaker match",
                credit(99_900, Some("7812345678")),
                vec![],
                Matched::Order {
                    order: id("5006"),
                    amount: 99_900,
                    confidence: Confidence::AmountAndInn,
                    partial: false,
                    overpaid: false,
                    inn_mismatch: false,
                },
            ),
            (
                "no number, two open orders of that amount for the payer",
                credit(250_000, Some("5009876543")),
                vec![],
                Matched::Unmatched(
                    "no order number in the purpose and several open orders of this amount",
                ),
            ),
            (
                "no number, no INN",
                credit(99_900, None),
                vec![],
                Matched::Unmatched("no order number in the purpose and no payer INN"),
            ),
        ];
        for (name, c, refs, want) in cases {
            assert_eq!(match_credit(c, &refs, &os), want, "{name}");
        }
        // The INN flag, where both are known and differ.
        let m = match_credit(credit(100_000, Some("1234567890")), &[inv("211")], &os);
        assert!(matches!(
            m,
            Matched::Order {
                inn_mismatch: true,
                ..
            }
        ));
        // Loose number matching only when unique.
        let dup = vec![
            order("1", &["А-7"], 10, None),
            order("2", &["Б-07"], 10, None),
        ];
        assert_eq!(
            match_credit(credit(10, None), &[inv("7")], &dup),
            Matched::Unmatched("the purpose names no known order or invoice")
        );
    }

    /// Issue #14, kind 4 (case 07): a Bitrix payment account number names its order's number, never the order
    /// whose number is the payment's index; a loose (zero-padded) number that contradicts the payer is no match.
    #[test]
    fn payment_numbers_and_contradicting_payers() {
        let mut o392 = order("392", &[], 148_050, None);
        o392.number = Some("392".into());
        let mut o1 = order("1", &[], 99_000, None);
        o1.number = Some("1".into());
        let os = vec![o392, o1];
        let got = match_credit(credit(196_100, Some("7799000111")), &[inv("392/1")], &os);
        assert!(
            matches!(&got, Matched::Order { order, overpaid: true, .. } if order.as_str() == "392"),
            "{got:?}"
        );
        // When store-sync kept the order's payments, the payment number is one of the order's names outright.
        // (Order 392's number is IM-392 and another order is ZZ-392, so `392` alone names no one.)
        let mut os = os;
        os[0].number = Some("IM-392".into());
        os[0].payment_numbers = vec!["392/1".into()];
        os[1].number = Some("ZZ-392".into());
        assert!(matches!(
            match_credit(credit(196_100, None), &[inv("392")], &os),
            Matched::Unmatched(_)
        ));
        let got = match_credit(credit(196_100, Some("7799000111")), &[inv("392/1")], &os);
        assert!(
            matches!(&got, Matched::Order { order, overpaid: true, .. } if order.as_str() == "392"),
            "{got:?}"
        );
        // `000183` loosely names 5001, whose buyer is another company than the payer: not a match.
        let got = match_credit(
            credit(150_000, Some("9999999999")),
            &[inv("000183")],
            &orders(),
        );
        assert!(matches!(got, Matched::Unmatched(_)), "{got:?}");
        let got = match_credit(
            credit(150_000, Some("7701234567")),
            &[inv("000183")],
            &orders(),
        );
        assert!(matches!(got, Matched::Order { .. }), "{got:?}");
    }
}
