//! Acquirer settlements: the lump credit an acquirer (T-Bank, Sber, YooKassa) pays out for a day's card takings,
//! minus its fee. Pure: a bank operation and the ledger's card takings in, a reconciliation report out.
//!
//! A settlement is never an order payment. It is checked against what the ledger recorded for that acquirer on
//! the business day(s) it covers: captured minus refunded is what the acquirer owes; the difference to the credit
//! is its fee. The report is a mismatch when no takings are known, when more arrived than was taken, when the
//! fee differs from the one the purpose states, or when it is implausibly high.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::domain::bank_operation::BankOperation;
use crate::domain::money::parse_minor;
use crate::domain::{FactKind, PaymentFact, PaymentLine, Source};

/// Russian acquirers close their business day on Moscow time (UTC+3, no DST).
const MOSCOW_OFFSET_MS: i64 = 3 * 3600 * 1000;
/// Above this share of the takings (basis points) a "fee" is rather a missing payment or refund.
pub const MAX_FEE_BP: i64 = 500;
/// A purpose range longer than this is not trusted (a typo, or not a settlement period).
const MAX_DAYS: i64 = 31;

/// Payer INNs of the acquirers we take settlements from.
pub const ACQUIRERS: &[(&str, Source)] = &[
    ("7710140679", Source::Tbank),
    ("7707083893", Source::Sber),
    ("7750005725", Source::Yookassa),
];

/// What one card fact changed on the acquirer's side: kept per fact so a day's takings are an exact sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taking {
    /// The acquirer, or `bank` for transfers a bank statement brought.
    pub acquirer: Source,
    /// Moscow business day, `YYYY-MM-DD`.
    pub day: String,
    pub fact_id: String,
    pub captured: i64,
    pub refunded: i64,
    /// The acquirer's own fee for the payment this fact captured, when it states fees per payment (YooKassa
    /// `income_amount`); `None` when it does not, or when the fact captured nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
}

/// `YYYY-MM-DD` of a moment on Moscow time.
pub fn business_day(at_ms: i64) -> String {
    let days = (at_ms + MOSCOW_OFFSET_MS).div_euclid(86_400_000);
    let date = time::Date::from_julian_day(
        i32::try_from(days + 2_440_588).unwrap_or(2_440_588), // 1970-01-01
    )
    .unwrap_or(time::Date::MIN);
    iso(date)
}

/// Who took the money a fact reports: its acquirer, or the bank for a bank statement's own fact. Money a person or
/// 1C moved between orders is not taken again.
fn taker_of_fact(fact: &PaymentFact) -> Option<Source> {
    Source::parse(fact.id.as_str().split_once('#')?.0)
        .filter(|s| s.is_acquirer() || *s == Source::Bank)
}

/// The taking a card fact adds, from its line before and after the fact (`None` when it moves no card money).
pub fn taking(
    fact: &PaymentFact,
    before: Option<&PaymentLine>,
    after: Option<&PaymentLine>,
) -> Option<Taking> {
    let acquirer = taker_of_fact(fact)?;
    if matches!(
        fact.kind,
        FactKind::OrderCancelled | FactKind::RefundRequested { .. }
    ) {
        return None;
    }
    let of = |l: Option<&PaymentLine>| l.map_or((0, 0), |l| (l.counted(), l.refunded()));
    let (c0, r0) = of(before);
    let (c1, r1) = of(after);
    let (captured, refunded) = (c1 - c0, r1 - r0);
    let fee = after
        .and_then(|l| l.fee)
        .filter(|_| captured > 0 && before.is_none_or(|b| b.counted() == 0));
    (captured != 0 || refunded != 0).then(|| Taking {
        acquirer,
        day: business_day(fact.at_ms),
        fact_id: fact.id.to_string(),
        captured,
        refunded,
        fee,
    })
}

/// A credit recognised as an acquirer's payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    pub key: String,
    pub acquirer: Source,
    pub credited: i64,
    /// Business days covered.
    pub days: Vec<String>,
    /// The fee the purpose states, if it does.
    pub stated_fee: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementReport {
    pub key: String,
    pub acquirer: Source,
    pub days: Vec<String>,
    pub credited: i64,
    /// Card facts of those days.
    pub payments: usize,
    pub captured: i64,
    pub refunded: i64,
    /// Fee = captured − refunded − credited.
    pub fee: i64,
    pub stated_fee: Option<i64>,
    /// The sum of the acquirer's per-payment fees, when it stated one for every payment of those days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_fees: Option<i64>,
    pub reconciled: bool,
    pub problems: Vec<String>,
}

fn patterns() -> Option<&'static (Regex, Regex, Regex)> {
    static P: OnceLock<Option<(Regex, Regex, Regex)>> = OnceLock::new();
    P.get_or_init(|| {
        let date = r"(\d{1,2})\.(\d{1,2})\.(\d{4}|\d{2})";
        Some((
            Regex::new(&format!(r"(?i)\bс\s*{date}\D{{1,12}}?по\s*{date}")).ok()?,
            Regex::new(&format!(
                r"(?i)(?:\bза|реестр\p{{L}}*(?:\s*№\s*\S+)?(?:\s+от)?)\s*{date}"
            ))
            .ok()?,
            Regex::new(r"(?i)\bком(?:исси[яиюей]|\.)[^\d]{0,30}?(\d{1,3}(?:[ \u{a0}]\d{3})+(?:[.,\-]\d{1,2})?|\d+(?:[.,\-]\d{1,2})?)").ok()?,
        ))
    })
    .as_ref()
}

fn date_of(caps: &regex::Captures<'_>, first: usize) -> Option<time::Date> {
    let num = |i: usize| caps.get(i).and_then(|m| m.as_str().parse::<i32>().ok());
    let (d, m, mut y) = (num(first)?, num(first + 1)?, num(first + 2)?);
    if y < 100 {
        y += 2000;
    }
    time::Date::from_calendar_date(
        y,
        time::Month::try_from(u8::try_from(m).ok()?).ok()?,
        u8::try_from(d).ok()?,
    )
    .ok()
}

/// `YYYY-MM-DD`.
pub fn iso(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// The business days a settlement's purpose names (`за 05.03.2024`, `с 01.03.2024 по 03.03.2024`, `Дата реестра
/// 04.03.2024`, `по реестру № 12 от 04.03.2024`); without any,
/// the day before the credit (acquirers pay out the previous day's takings).
pub fn covered_days(purpose: &str, credit_date: &str) -> Vec<String> {
    let mut days: Vec<String> = Vec::new();
    if let Some((range, single, _)) = patterns() {
        for caps in range.captures_iter(purpose) {
            if let (Some(from), Some(to)) = (date_of(&caps, 1), date_of(&caps, 4)) {
                let span = (to - from).whole_days();
                if (0..MAX_DAYS).contains(&span) {
                    let mut d = from;
                    loop {
                        days.push(iso(d));
                        match d.next_day() {
                            Some(next) if d < to => d = next,
                            _ => break,
                        }
                    }
                }
            }
        }
        if days.is_empty() {
            days.extend(
                single
                    .captures_iter(purpose)
                    .filter_map(|c| date_of(&c, 1))
                    .map(iso),
            );
        }
    }
    if days.is_empty() {
        let previous = time::Date::parse(
            credit_date,
            &time::format_description::well_known::Iso8601::DATE,
        )
        .ok()
        .and_then(time::Date::previous_day);
        days.extend(previous.map(iso));
    }
    days.sort();
    days.dedup();
    days
}

/// The fee a purpose states (`Комиссия 123.45`, `ком. 12-34`), in minor units.
pub fn stated_fee(purpose: &str) -> Option<i64> {
    let (_, _, fee) = patterns()?;
    let caps = fee.captures(purpose)?;
    let number: String = caps
        .get(1)?
        .as_str()
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| if matches!(c, ',' | '-') { '.' } else { c })
        .collect();
    parse_minor(&number).ok()
}

/// An incoming credit from an acquirer, as a settlement.
pub fn recognise(op: &BankOperation) -> Option<Settlement> {
    if !op.incoming {
        return None;
    }
    let inn = op.counterparty_inn.as_deref()?;
    let acquirer = ACQUIRERS.iter().find(|(i, _)| *i == inn)?.1;
    Some(Settlement {
        key: op.key(),
        acquirer,
        credited: op.amount,
        days: covered_days(&op.purpose, &op.date),
        stated_fee: stated_fee(&op.purpose),
    })
}

fn rubles(minor: i64) -> String {
    format!("{} RUB", crate::domain::money::format_minor(minor))
}

/// Compare a settlement with the card takings the ledger has for its acquirer and days.
pub fn reconcile(s: &Settlement, takings: &[Taking]) -> SettlementReport {
    let ours: Vec<&Taking> = takings
        .iter()
        .filter(|t| t.acquirer == s.acquirer && s.days.contains(&t.day))
        .collect();
    let captured: i64 = ours.iter().map(|t| t.captured).sum();
    let refunded: i64 = ours.iter().map(|t| t.refunded).sum();
    let expected = captured - refunded;
    let fee = expected - s.credited;
    // Per-payment fees count only when every payment of those days has one: a partial sum explains nothing.
    let captures: Vec<&&Taking> = ours.iter().filter(|t| t.captured > 0).collect();
    let payment_fees = (!captures.is_empty() && captures.iter().all(|t| t.fee.is_some()))
        .then(|| captures.iter().filter_map(|t| t.fee).sum::<i64>());
    let mut problems = Vec::new();
    if ours.is_empty() {
        problems.push(format!(
            "no {} card payments recorded for {}",
            s.acquirer,
            s.days.join(", ")
        ));
    } else if fee < 0 {
        problems.push(format!(
            "credited {} more than the card payments recorded ({})",
            rubles(-fee),
            rubles(expected)
        ));
    } else if let Some(stated) = s.stated_fee {
        if stated != fee {
            problems.push(format!(
                "the bank states a fee of {}, the takings leave {}",
                rubles(stated),
                rubles(fee)
            ));
        }
    } else if let Some(known) = payment_fees {
        if known != fee {
            problems.push(format!(
                "the payments' own fees add up to {}, the payout leaves {}",
                rubles(known),
                rubles(fee)
            ));
        }
    } else if i128::from(fee) * 10_000 > i128::from(expected) * i128::from(MAX_FEE_BP) {
        problems.push(format!(
            "fee {} is above {}% of the takings {}",
            rubles(fee),
            MAX_FEE_BP / 100,
            rubles(expected)
        ));
    }
    SettlementReport {
        key: s.key.clone(),
        acquirer: s.acquirer,
        days: s.days.clone(),
        credited: s.credited,
        payments: ours.len(),
        captured,
        refunded,
        fee,
        stated_fee: s.stated_fee,
        payment_fees,
        reconciled: problems.is_empty(),
        problems,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(inn: &str, amount: i64, purpose: &str) -> BankOperation {
        BankOperation {
            account: "40702810900000012345".into(),
            date: "2026-11-06".into(),
            number: "77".into(),
            amount,
            incoming: true,
            counterparty_account: Some("30232810000000000001".into()),
            counterparty_inn: Some(inn.into()),
            counterparty_name: None,
            purpose: purpose.into(),
            is_final: true,
        }
    }

    fn t(acquirer: Source, day: &str, captured: i64, refunded: i64) -> Taking {
        Taking {
            acquirer,
            day: day.into(),
            fact_id: format!("{acquirer}#{day}#{captured}#{refunded}"),
            captured,
            refunded,
            fee: None,
        }
    }

    #[test]
    fn a_capture_takes_its_payments_stated_fee_once() {
        use crate::domain::{Currency, FactId, Order, OrderId, PaymentMethod, PaymentRef};
        let payment = PaymentRef::new(Source::Yookassa, "p1").unwrap();
        let fact = |ext: &str, kind| {
            PaymentFact::new(
                FactId::new(Source::Yookassa, ext).unwrap(),
                OrderId::parse("7").unwrap(),
                payment.clone(),
                PaymentMethod::Card,
                Currency::RUB,
                kind,
                1_795_824_000_000,
            )
            .unwrap()
        };
        let paid =
            fact("payment#p1#succeeded", FactKind::Payment { amount: 200 }).with_fee(Some(3));
        let mut order = Order::new(OrderId::parse("7").unwrap());
        order.apply(&paid).unwrap();
        let after = order.lines.get(&payment);
        assert_eq!(taking(&paid, None, after).unwrap().fee, Some(3));
        let refund = fact(
            "refund#r1",
            FactKind::Refund {
                amount: crate::domain::RefundAmount::Delta(50),
            },
        );
        let before = after.cloned();
        order.apply(&refund).unwrap();
        let t = taking(&refund, before.as_ref(), order.lines.get(&payment)).unwrap();
        assert_eq!((t.refunded, t.fee), (50, None), "the fee is the capture's");
    }

    #[test]
    fn per_payment_fees_explain_a_payout_or_show_where_it_differs() {
        let s = Settlement {
            key: "k".into(),
            acquirer: Source::Yookassa,
            credited: 0,
            days: vec!["2026-11-06".into()],
            stated_fee: None,
        };
        let with_fee = |captured, fee| Taking {
            fee,
            ..t(Source::Yookassa, "2026-11-06", captured, 0)
        };
        // 1 000,00 + 500,00 taken, fees 35,00 + 17,50 stated per payment, 50,00 refunded: 1 397,50 owed.
        let takings = [
            with_fee(100_000, Some(3_500)),
            with_fee(50_000, Some(1_750)),
            t(Source::Yookassa, "2026-11-06", 0, 5_000),
        ];
        let exact = reconcile(
            &Settlement {
                credited: 139_750,
                ..s.clone()
            },
            &takings,
        );
        assert_eq!((exact.payment_fees, exact.fee), (Some(5_250), 5_250));
        assert!(exact.reconciled, "{:?}", exact.problems);
        let short = reconcile(
            &Settlement {
                credited: 139_700,
                ..s.clone()
            },
            &takings,
        );
        assert!(!short.reconciled);
        assert_eq!(
            short.problems,
            ["the payments' own fees add up to 52.50 RUB, the payout leaves 53.00 RUB"]
        );
        // One payment without a stated fee: the sum explains nothing, the plausibility check applies.
        let partial = [with_fee(100_000, Some(3_500)), with_fee(50_000, None)];
        let r = reconcile(
            &Settlement {
                credited: 145_000,
                ..s
            },
            &partial,
        );
        assert_eq!(r.payment_fees, None);
        assert!(r.reconciled, "{:?}", r.problems);
    }

    #[test]
    fn business_days_are_moscow_days() {
        // 2026-11-05 21:00 UTC is already the 6th in Moscow.
        assert_eq!(business_day(1_793_912_400_000), "2026-11-06");
        assert_eq!(business_day(1_793_912_399_999), "2026-11-05");
        assert_eq!(business_day(0), "1970-01-01");
    }

    #[test]
    fn days_and_fees_come_from_the_purpose() {
        assert_eq!(
            covered_days(
                "Возмещение по операциям эквайринга за 05.11.2026. Комиссия 123.45",
                "2026-11-06"
            ),
            ["2026-11-05"]
        );
        assert_eq!(
            covered_days("Перевод средств по операциям с ПК с 01.11.26 по 03.11.26 по договору 123 от 01.01.2020", "2026-11-04"),
            ["2026-11-01", "2026-11-02", "2026-11-03"]
        );
        assert_eq!(
            covered_days(
                "Перечисление денежных средств по договору 123 от 01.01.2020",
                "2026-11-01"
            ),
            ["2026-10-31"]
        );
        assert_eq!(
            covered_days("Зачисление средств по операциям эквайринга. Мерчант 1234567. Дата реестра 04.03.2024. Комиссия 1987.65. Возврат покупки 0.00", "2024-03-05"),
            ["2024-03-04"]
        );
        assert_eq!(
            covered_days(
                "Перечисление по реестру № 77-1 от 02.03.2024 по договору 123 от 01.01.2020",
                "2024-03-05"
            ),
            ["2024-03-02"]
        );
        assert_eq!(
            stated_fee("... Комиссия 123.45 руб. НДС не облагается"),
            Some(12_345)
        );
        assert_eq!(stated_fee("... ком. 1 234-50"), Some(123_450));
        assert_eq!(stated_fee("Комиссия банка: 1234,50"), Some(123_450));
        assert_eq!(stated_fee("за 05.11.2026"), None);
    }

    #[test]
    fn only_credits_from_acquirers_are_settlements() {
        assert!(recognise(&op("7707083893", 1, "")).is_some());
        assert!(recognise(&op("7702000001", 1, "Оплата по счету № 5")).is_none());
        let mut out = op("7710140679", 1, "");
        out.incoming = false;
        assert!(recognise(&out).is_none());
    }

    #[test]
    fn a_settlement_reconciles_against_its_days_takings() {
        let takings = [
            t(Source::Tbank, "2026-11-05", 300_000, 0),
            t(Source::Tbank, "2026-11-05", 200_000, 0),
            t(Source::Tbank, "2026-11-05", 0, 50_000),
            t(Source::Tbank, "2026-11-04", 999_999, 0),
            t(Source::Sber, "2026-11-05", 777_777, 0),
        ];
        let s = recognise(&op(
            "7710140679",
            441_000,
            "Перевод по операциям эквайринга за 05.11.2026. Комиссия 90.00",
        ))
        .unwrap();
        let r = reconcile(&s, &takings);
        assert!(r.reconciled, "{:?}", r.problems);
        assert_eq!(
            (r.payments, r.captured, r.refunded, r.fee),
            (3, 500_000, 50_000, 9_000)
        );

        // The bank says 90.00, the takings leave 100.00: someone has to look.
        let s = recognise(&op("7710140679", 440_000, "за 05.11.2026. Комиссия 90.00")).unwrap();
        let r = reconcile(&s, &takings);
        assert!(!r.reconciled);
        assert_eq!(r.fee, 10_000);

        // More than was taken, nothing taken, an implausible fee.
        assert!(
            !reconcile(
                &recognise(&op("7710140679", 460_000, "за 05.11.2026")).unwrap(),
                &takings
            )
            .reconciled
        );
        assert!(
            !reconcile(
                &recognise(&op("7750005725", 1_000, "за 05.11.2026")).unwrap(),
                &takings
            )
            .reconciled
        );
        let low = reconcile(
            &recognise(&op("7710140679", 400_000, "за 05.11.2026")).unwrap(),
            &takings,
        );
        assert!(!low.reconciled, "{} of 450 000 is over 5%", low.fee);
        let fine = reconcile(
            &recognise(&op("7710140679", 440_000, "за 05.11.2026")).unwrap(),
            &takings,
        );
        assert!(fine.reconciled, "{:?}", fine.problems);
    }
}
