//! T-Bank Business API statement pages (`GET /api/v1/statement`): operations and the `nextCursor` for paging.
//!
//! Amounts arrive as JSON numbers in rubles (`42000.5`); they are read from the literal digits into kopecks, never
//! through a float. `typeOfOperation` may be written with a Cyrillic `С` (`Сredit`). `Authorization` operations
//! are not final and are marked so.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::domain::bank_operation::{business_date, BankOperation};
use crate::domain::money::parse_minor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("not a statement page: {0}")]
    Malformed(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Credit,
    Debit,
    Other,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub account: Option<String>,
    pub inn: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    pub id: String,
    /// `Transaction` (final); `Authorization` operations can still change.
    pub is_final: bool,
    pub kind: Kind,
    pub account: Option<String>,
    /// `operationDate`, ISO 8601 UTC as sent.
    pub date: Option<String>,
    pub document_number: Option<String>,
    /// `docDate`: the payment document's date (what a 1CClientBankExchange file calls `Дата`).
    pub doc_date: Option<String>,
    /// Minor units of the account currency.
    pub amount: Option<i64>,
    pub currency_code: Option<String>,
    pub purpose: String,
    pub category: Option<String>,
    pub payer: Party,
    pub receiver: Party,
    /// `counterParty`: the other side when `payer`/`receiver` are not given (case 09: the Business API's
    /// operations may name only this).
    pub counter_party: Party,
    pub problems: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub operations: Vec<Operation>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireParty {
    acct: Option<String>,
    account: Option<String>,
    inn: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireOperation<'a> {
    operation_id: String,
    operation_status: Option<String>,
    type_of_operation: Option<String>,
    account_number: Option<String>,
    operation_date: Option<String>,
    document_number: Option<String>,
    doc_date: Option<String>,
    #[serde(borrow)]
    account_amount: Option<&'a RawValue>,
    #[serde(borrow)]
    operation_amount: Option<&'a RawValue>,
    account_currency_digital_code: Option<String>,
    pay_purpose: Option<String>,
    description: Option<String>,
    category: Option<String>,
    payer: Option<WireParty>,
    receiver: Option<WireParty>,
    counter_party: Option<WireParty>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePage<'a> {
    #[serde(borrow)]
    operations: Vec<WireOperation<'a>>,
    next_cursor: Option<String>,
}

fn party(p: Option<WireParty>) -> Party {
    p.map_or_else(Party::default, |p| Party {
        account: p.acct.or(p.account),
        inn: p.inn,
        name: p.name,
    })
}

/// Parse one page.
pub fn parse_page(body: &[u8]) -> Result<Page, PageError> {
    let wire: WirePage<'_> =
        serde_json::from_slice(body).map_err(|e| PageError::Malformed(e.to_string()))?;
    let operations = wire
        .operations
        .into_iter()
        .map(|o| {
            let mut problems = Vec::new();
            // The Cyrillic `С` (U+0421) written for a Latin `C` in T-Bank's own examples.
            let kind = match o.type_of_operation.as_deref().map(|t| t.replace('С', "C")) {
                Some(t) if t.eq_ignore_ascii_case("Credit") => Kind::Credit,
                Some(t) if t.eq_ignore_ascii_case("Debit") => Kind::Debit,
                _ => Kind::Other,
            };
            let literal = o.account_amount.or(o.operation_amount).map(RawValue::get);
            let amount = match literal.map(|l| parse_minor(l.trim_matches('"'))) {
                Some(Ok(a)) => Some(a),
                Some(Err(e)) => {
                    problems.push(format!("amount: {e}"));
                    None
                }
                None => {
                    problems.push("amount is missing".into());
                    None
                }
            };
            Operation {
                id: o.operation_id,
                is_final: o.operation_status.as_deref() == Some("Transaction"),
                kind,
                account: o.account_number,
                date: o.operation_date,
                document_number: o.document_number,
                doc_date: o.doc_date,
                amount,
                currency_code: o.account_currency_digital_code,
                purpose: o.pay_purpose.or(o.description).unwrap_or_default(),
                category: o.category,
                payer: party(o.payer),
                receiver: party(o.receiver),
                counter_party: party(o.counter_party),
                problems,
            }
        })
        .collect();
    Ok(Page {
        operations,
        next_cursor: wire.next_cursor.filter(|c| !c.is_empty()),
    })
}

/// A T-Bank API operation on `account` (the source's account, when the operation does not name its own) as an
/// operation of ours; `Err` names why it cannot be used (the caller counts and logs it, never drops it silently).
/// The other side is `payer` (credits) / `receiver` (debits), else `counterParty`.
pub fn from_tbank(op: &Operation, account: &str) -> Result<BankOperation, &'static str> {
    let incoming = match op.kind {
        Kind::Credit => true,
        Kind::Debit => false,
        Kind::Other => return Err("neither a credit nor a debit"),
    };
    let named = if incoming { &op.payer } else { &op.receiver };
    let other = if named == &Party::default() {
        &op.counter_party
    } else {
        named
    };
    Ok(BankOperation {
        account: op.account.clone().unwrap_or_else(|| account.to_owned()),
        date: op
            .doc_date
            .as_deref()
            .or(op.date.as_deref())
            .and_then(business_date)
            .ok_or("no readable date")?,
        number: op.document_number.clone().unwrap_or_else(|| op.id.clone()),
        amount: op.amount.ok_or("no readable amount")?,
        incoming,
        counterparty_account: other.account.clone(),
        counterparty_inn: other.inn.clone(),
        counterparty_name: other.name.clone(),
        purpose: op.purpose.clone(),
        is_final: op.is_final,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures_dir;

    fn page(n: u8) -> Page {
        let bytes = std::fs::read(fixtures_dir().join(format!(
            "statements/tbank-api__synthetic__statement-page{n}.json"
        )))
        .unwrap();
        parse_page(&bytes).unwrap()
    }

    #[test]
    fn synthetic_pages_parse_exactly() {
        let p1 = page(1);
        assert_eq!(p1.next_cursor.as_deref(), Some("c2"));
        let amounts: Vec<_> = p1.operations.iter().map(|o| (o.kind, o.amount)).collect();
        assert_eq!(
            amounts,
            [
                (Kind::Credit, Some(150_000)),
                (Kind::Credit, Some(4_200_050)),
                (Kind::Credit, Some(9_876_543)),
                (Kind::Debit, Some(1_200_000))
            ]
        );
        assert_eq!(p1.operations[0].payer.inn.as_deref(), Some("7702000001"));
        assert!(p1.operations[0]
            .purpose
            .starts_with("Оплата по счету № 1024"));
        let p2 = page(2);
        assert_eq!(p2.next_cursor, None);
        assert_eq!(
            p2.operations.iter().filter(|o| !o.is_final).count(),
            1,
            "the Authorization is not final"
        );
        assert!(p1
            .operations
            .iter()
            .chain(&p2.operations)
            .all(|o| o.problems.is_empty()));
    }

    #[test]
    fn unrepresentable_amounts_and_broken_pages() {
        let p = parse_page(br#"{"operations":[{"operationId":"x","accountAmount":0.333,"typeOfOperation":"Debit"}]}"#).unwrap();
        assert_eq!(p.operations[0].amount, None);
        assert_eq!(p.operations[0].problems.len(), 1);
        assert!(parse_page(b"{}").is_err());
        assert!(parse_page(b"not json").is_err());
    }
}
