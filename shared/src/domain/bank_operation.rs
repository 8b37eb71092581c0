//! Bank operations from any source (1CClientBankExchange files, the T-Bank API) in one shape, with one
//! deduplication key, and what an incoming payment means for the ledger once matched.
//!
//! The key is built from the payment itself (our account, document date, document number, amount, the other
//! side's account), not from a source's own operation id, so the same money seen through the API and in a file,
//! or in overlapping windows, is one fact.

use crate::domain::matching::Matched;
use crate::domain::{
    Currency, DomainError, FactId, FactKind, OrderId, Payer, PaymentFact, PaymentMethod,
    PaymentRef, Source,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankOperation {
    /// Our account the money moved on.
    pub account: String,
    /// `YYYY-MM-DD` of the payment document.
    pub date: String,
    pub number: String,
    pub amount: i64,
    pub incoming: bool,
    /// The other side.
    pub counterparty_account: Option<String>,
    pub counterparty_inn: Option<String>,
    pub counterparty_name: Option<String>,
    pub purpose: String,
    /// Authorisations (API) can still change and are not applied.
    pub is_final: bool,
}

impl BankOperation {
    /// Stable across sources and re-reads.
    pub fn key(&self) -> String {
        format!(
            "{}#{}#{}#{}#{}",
            self.account,
            self.date,
            self.number,
            self.amount,
            self.counterparty_account.as_deref().unwrap_or("-")
        )
    }
}

/// `YYYY-MM-DD` of a statement date: `DD.MM.YYYY` as a file writes it, or an API timestamp taken as the Moscow
/// business date (`2026-11-28T22:30:00Z` is 29 November in Moscow), so that the same money read from the API and
/// from a file gets one key.
pub fn business_date(text: &str) -> Option<String> {
    let t = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339) {
        let moscow = time::UtcOffset::from_hms(3, 0, 0).ok()?;
        let d = at.to_offset(moscow).date();
        return Some(format!(
            "{:04}-{:02}-{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        ));
    }
    if let [d, m, y] = t.split('.').collect::<Vec<_>>().as_slice() {
        if y.len() == 4 && d.len() <= 2 && m.len() <= 2 {
            return Some(format!("{y}-{m:0>2}-{d:0>2}"));
        }
    }
    let date = t.get(..10)?;
    (date.as_bytes().get(4) == Some(&b'-')).then(|| date.to_owned())
}

impl BankOperation {
    pub fn payment_ref(&self) -> Result<PaymentRef, DomainError> {
        PaymentRef::new(Source::Bank, &self.key())
    }

    pub fn payer(&self) -> Payer {
        Payer {
            inn: self.counterparty_inn.clone(),
            name: self.counterparty_name.clone(),
            account: self.counterparty_account.clone(),
            date: Some(self.date.clone()),
            purpose: self.purpose.clone(),
        }
    }
}

/// Ledger facts for an incoming payment and how it matched. Unmatched money is recorded too (never dropped), on
/// an `unmatched:` order that keeps it visible until someone (or 1C's payment document) resolves it.
///
/// `booked_by_1c`: the line of the matched order where 1C already booked this money (its payment document came
/// first); the operation is linked to it instead of counted again.
pub fn facts(
    op: &BankOperation,
    matched: &Matched,
    booked_by_1c: Option<&PaymentRef>,
    at_ms: i64,
) -> Result<Vec<PaymentFact>, DomainError> {
    let key = op.key();
    let payment = op.payment_ref()?;
    let fact = |suffix: &str, order: OrderId, payment: PaymentRef, amount: i64| {
        PaymentFact::new(
            FactId::new(Source::Bank, &format!("{key}{suffix}"))?,
            order,
            payment,
            PaymentMethod::BankTransfer,
            Currency::RUB,
            FactKind::Payment { amount },
            at_ms,
        )
        .map(|f| f.paid_by(op.payer()))
    };
    Ok(match (matched, booked_by_1c) {
        (Matched::Order { order, amount, .. }, Some(line)) => {
            vec![fact("", order.clone(), line.clone(), *amount)?.linking(payment.as_str())]
        }
        (Matched::Order { order, amount, .. }, None) => {
            vec![fact("", order.clone(), payment, *amount)?]
        }
        // The first part carries the operation's own ref, so the money stays claimable by one order only.
        (Matched::Split(parts), _) => parts
            .iter()
            .enumerate()
            .map(|(i, (order, amount))| {
                let part = if i == 0 {
                    payment.clone()
                } else {
                    PaymentRef::new(Source::Bank, &format!("{key}#{order}"))?
                };
                fact(&format!("#{order}"), order.clone(), part, *amount)
            })
            .collect::<Result<_, _>>()?,
        (Matched::Unmatched(_), _) => {
            vec![fact("", OrderId::unmatched(&payment), payment, op.amount)?]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::matching::{match_credit, Confidence, Credit, OpenOrder};
    use crate::formats::client_bank_exchange::{from_file, parse};
    use crate::formats::tbank_statement::{from_tbank, parse_page};

    #[test]
    fn the_same_money_through_the_api_and_a_file_has_one_key() {
        let api = parse_page(
            r#"{"operations":[{"operationId":"u-1","operationStatus":"Transaction","typeOfOperation":"Сredit","accountNumber":"40702810900000012345","docDate":"2024-03-05T00:00:00Z","documentNumber":"1001","accountAmount":1500.0,"payPurpose":"Оплата по счету № 1024","payer":{"acct":"40702810000000000111","inn":"7702000001"},"receiver":{"acct":"40702810900000012345"}}]}"#.as_bytes(),
        )
        .unwrap();
        let file = "1CClientBankExchange\nВерсияФормата=1.03\nКодировка=Windows\nРасчСчет=40702810900000012345\nСекцияДокумент=Платежное поручение\nНомер=1001\nДата=05.03.2024\nСумма=1500.00\nПлательщикСчет=40702810000000000111\nПлательщикИНН=7702000001\nПолучательСчет=40702810900000012345\nНазначениеПлатежа=Оплата по счету № 1024\nКонецДокумента\nКонецФайла\n";
        let st = parse(file.as_bytes()).unwrap();
        let a = from_tbank(&api.operations[0], "40702810900000012345").unwrap();
        let f = from_file(&st.documents[0]).unwrap();
        assert_eq!(a.key(), f.key());
        assert!(a.incoming && f.incoming);
        assert_eq!((a.amount, f.amount), (150_000, 150_000));
    }

    #[test]
    fn matched_split_and_unmatched_money_become_facts() {
        let op = BankOperation {
            account: "40702810900000012345".into(),
            date: "2024-03-05".into(),
            number: "1001".into(),
            amount: 150_000,
            incoming: true,
            counterparty_account: Some("40702810000000000111".into()),
            counterparty_inn: Some("7702000001".into()),
            counterparty_name: None,
            purpose: "Оплата по счету № 1024".into(),
            is_final: true,
        };
        let open = vec![OpenOrder {
            id: OrderId::parse("5001").unwrap(),
            number: Some("5001".into()),
            invoices: vec!["1024".into()],
            payment_numbers: Vec::new(),
            open: 500_000,
            buyer_inn: Some("7702000001".into()),
        }];
        let refs = crate::formats::purpose::PurposePatterns::new()
            .unwrap()
            .references(&op.purpose);
        let m = match_credit(
            Credit {
                amount: op.amount,
                payer_inn: op.counterparty_inn.as_deref(),
            },
            &refs,
            &open,
        );
        assert!(matches!(
            m,
            Matched::Order {
                partial: true,
                confidence: Confidence::Reference,
                ..
            }
        ));
        let f = facts(&op, &m, None, 1).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].order_id.as_str(), "5001");
        assert_eq!(f[0].kind, FactKind::Payment { amount: 150_000 });
        let unmatched = facts(&op, &Matched::Unmatched("x"), None, 1).unwrap();
        assert!(unmatched[0]
            .order_id
            .as_str()
            .starts_with("unmatched:bank:"));
        let split = facts(
            &op,
            &Matched::Split(vec![
                (OrderId::parse("a").unwrap(), 100_000),
                (OrderId::parse("b").unwrap(), 50_000),
            ]),
            None,
            1,
        )
        .unwrap();
        assert_eq!(
            split
                .iter()
                .map(|f| f.kind.stated_amount().unwrap())
                .sum::<i64>(),
            150_000
        );
        assert_ne!(split[0].id, split[1].id);
    }

    /// Issue #14, kind 7: the API's UTC timestamps and a file's local dates give the same Moscow business date
    /// around midnight UTC, so one payment read both ways has one key.
    #[test]
    fn api_timestamps_are_moscow_business_dates() {
        assert_eq!(
            business_date("2026-11-28T22:30:00Z").as_deref(),
            Some("2026-11-29")
        );
        assert_eq!(
            business_date("2026-11-28T20:59:59Z").as_deref(),
            Some("2026-11-28")
        );
        assert_eq!(
            business_date("2026-11-28T21:00:00Z").as_deref(),
            Some("2026-11-29")
        );
        assert_eq!(
            business_date("2026-11-29T00:30:00+03:00").as_deref(),
            Some("2026-11-29")
        );
        assert_eq!(business_date("29.11.2026").as_deref(), Some("2026-11-29"));
        assert_eq!(business_date("2026-11-29").as_deref(), Some("2026-11-29"));
        let api = crate::formats::tbank_statement::parse_page(
            r#"{"operations":[{"operationId":"m-1","operationStatus":"Transaction","typeOfOperation":"Credit","operationDate":"2026-11-28T22:30:00Z","documentNumber":"7","accountAmount":10.0,"payPurpose":"x","counterParty":{"account":"40702810000000000111","inn":"7702000001"}}]}"#.as_bytes(),
        )
        .unwrap();
        let file = "1CClientBankExchange\nВерсияФормата=1.03\nКодировка=Windows\nРасчСчет=40702810900000012345\nСекцияДокумент=Платежное поручение\nНомер=7\nДата=29.11.2026\nСумма=10.00\nПлательщикСчет=40702810000000000111\nПлательщикИНН=7702000001\nПолучательСчет=40702810900000012345\nНазначениеПлатежа=x\nКонецДокумента\nКонецФайла\n";
        let st = parse(file.as_bytes()).unwrap();
        let a = from_tbank(&api.operations[0], "40702810900000012345").unwrap();
        let f = from_file(&st.documents[0]).unwrap();
        assert_eq!(a.key(), f.key());
    }
}
