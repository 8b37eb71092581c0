//! 1CClientBankExchange (`kl_to_1c.txt`) bank statements, versions 1.01–1.03: a pure, line-based parser.
//!
//! Encoding is decided from the bytes (strict UTF-8 first, then windows-1251 or DOS cp866 by the header and by
//! which decoding reads as Russian). Every document is kept: one that misses fields carries its problems. A file
//! without `КонецФайла` is refused as incomplete. Direction comes from the statement's own accounts, not from the
//! `ДатаСписано`/`ДатаПоступило` keys (banks fill those inconsistently), which are only a fallback.

use encoding_rs::{Encoding, IBM866, WINDOWS_1251};

use crate::domain::money::parse_minor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    #[error("not a 1CClientBankExchange file (first line is not `1CClientBankExchange`)")]
    NotStatement,
    #[error("the file is incomplete: no `КонецФайла` (the last section opened at line {0})")]
    Truncated(usize),
    #[error("line {line}: `{found}` is not allowed inside {context}")]
    UnexpectedSection {
        line: usize,
        found: String,
        context: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Money credited to one of our accounts.
    Incoming,
    /// Money debited from one of our accounts.
    Outgoing,
    /// Between two of our accounts.
    Internal,
    Unknown,
}

/// One `СекцияРасчСчет` (balances of an account over an interval).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balance {
    pub account: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    pub opening: Option<i64>,
    pub credited: Option<i64>,
    pub debited: Option<i64>,
    pub closing: Option<i64>,
}

/// One `СекцияДокумент`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankDocument {
    /// `Платежное поручение`, `Банковский ордер`, …
    pub kind: String,
    /// Line where the section starts (1-based).
    pub line: usize,
    pub number: Option<String>,
    /// `дд.мм.гггг` as written.
    pub date: Option<String>,
    /// Minor units.
    pub amount: Option<i64>,
    pub payer_account: Option<String>,
    pub payer_inn: Option<String>,
    pub payer_name: Option<String>,
    pub payee_account: Option<String>,
    pub payee_inn: Option<String>,
    pub payee_name: Option<String>,
    /// `НазначениеПлатежа` plus any `НазначениеПлатежа1..6`.
    pub purpose: String,
    pub date_debited: Option<String>,
    pub date_credited: Option<String>,
    pub direction: Direction,
    /// Every key as written, unknown ones included, in file order.
    pub fields: Vec<(String, String)>,
    pub problems: Vec<String>,
}

impl BankDocument {
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub version: Option<String>,
    /// The encoding the file was read in.
    pub encoding: &'static str,
    pub sender: Option<String>,
    pub receiver: Option<String>,
    pub date_from: Option<String>,
    pub date_to: Option<String>,
    /// Our accounts: header `РасчСчет` lines and balance sections.
    pub accounts: Vec<String>,
    pub header: Vec<(String, String)>,
    pub balances: Vec<Balance>,
    pub documents: Vec<BankDocument>,
}

fn cyrillic_letters(text: &str) -> usize {
    text.chars()
        .filter(|c| matches!(c, 'А'..='я' | 'Ё' | 'ё'))
        .count()
}

/// Decode by the bytes: UTF-8 when valid, else the better-reading of windows-1251 and cp866 (the header's
/// `Кодировка` breaks a tie).
pub fn decode(bytes: &[u8]) -> (String, &'static str) {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    if let Ok(text) = simdutf8::basic::from_utf8(bytes) {
        return (text.to_owned(), "UTF-8");
    }
    // Decide on a sample, decode the whole file once.
    let sample = &bytes[..bytes.len().min(64 * 1024)];
    let as_1251 = WINDOWS_1251.decode_without_bom_handling(sample).0;
    let as_866 = IBM866.decode_without_bom_handling(sample).0;
    let dos_declared = as_1251
        .lines()
        .take(10)
        .any(|l| l.trim().eq_ignore_ascii_case("Кодировка=DOS"));
    let (a, b) = (cyrillic_letters(&as_1251), cyrillic_letters(&as_866));
    let enc: &'static Encoding = if b > a || (b == a && dos_declared) {
        IBM866
    } else {
        WINDOWS_1251
    };
    (
        enc.decode_without_bom_handling(bytes).0.into_owned(),
        enc.name(),
    )
}

fn amount(key: &str, value: &str, problems: &mut Vec<String>) -> Option<i64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    match parse_minor(&v.replace(',', ".")) {
        Ok(a) => Some(a),
        Err(e) => {
            problems.push(format!("{key}: {e}"));
            None
        }
    }
}

fn non_empty(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn build_document(kind: String, line: usize, fields: Vec<(String, String)>) -> BankDocument {
    let mut problems = Vec::new();
    let get = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| non_empty(v))
    };
    let amount_value = fields
        .iter()
        .find(|(k, _)| k == "Сумма")
        .and_then(|(k, v)| amount(k, v, &mut problems));
    let mut purpose = get("НазначениеПлатежа").unwrap_or_default();
    for i in 1..=6 {
        if let Some(part) = get(&format!("НазначениеПлатежа{i}")) {
            if !purpose.is_empty() {
                purpose.push(' ');
            }
            purpose.push_str(&part);
        }
    }
    for required in ["Номер", "Дата", "Сумма"] {
        if get(required).is_none() {
            problems.push(format!("{required} is missing"));
        }
    }
    let payer_account = get("ПлательщикСчет").or_else(|| get("ПлательщикРасчСчет"));
    let payee_account = get("ПолучательСчет").or_else(|| get("ПолучательРасчСчет"));
    if payer_account.is_none() && payee_account.is_none() {
        problems.push("neither ПлательщикСчет nor ПолучательСчет is given".into());
    }
    BankDocument {
        kind,
        line,
        number: get("Номер"),
        date: get("Дата"),
        amount: amount_value,
        payer_name: get("Плательщик1").or_else(|| get("Плательщик")),
        payer_inn: get("ПлательщикИНН"),
        payer_account,
        payee_name: get("Получатель1").or_else(|| get("Получатель")),
        payee_inn: get("ПолучательИНН"),
        payee_account,
        purpose,
        date_debited: get("ДатаСписано"),
        date_credited: get("ДатаПоступило"),
        direction: Direction::Unknown,
        fields,
        problems,
    }
}

fn direction(doc: &BankDocument, own: &[String]) -> Direction {
    let is_own = |a: &Option<String>| a.as_ref().is_some_and(|a| own.iter().any(|o| o == a));
    match (is_own(&doc.payer_account), is_own(&doc.payee_account)) {
        (true, true) => Direction::Internal,
        (false, true) => Direction::Incoming,
        (true, false) => Direction::Outgoing,
        // Anonymised or foreign data: the bank's date keys are the only hint left.
        (false, false) => match (&doc.date_credited, &doc.date_debited) {
            (Some(_), None) => Direction::Incoming,
            (None, Some(_)) => Direction::Outgoing,
            _ => Direction::Unknown,
        },
    }
}

enum Section {
    Header,
    Balance(Balance),
    Document {
        kind: String,
        line: usize,
        fields: Vec<(String, String)>,
    },
}

/// Parse a whole statement.
pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let (text, encoding) = decode(bytes);
    let mut lines = text
        .split('\n')
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
    let first = lines.by_ref().find(|(_, l)| !l.trim().is_empty());
    if first.map(|(_, l)| l.trim()) != Some("1CClientBankExchange") {
        return Err(StatementError::NotStatement);
    }
    let mut st = Statement {
        version: None,
        encoding,
        sender: None,
        receiver: None,
        date_from: None,
        date_to: None,
        accounts: Vec::new(),
        header: Vec::new(),
        balances: Vec::new(),
        documents: Vec::new(),
    };
    let mut section = Section::Header;
    let mut section_line = 1;
    let mut finished = false;
    for (no, raw) in lines {
        let line = raw.trim_start_matches('\u{feff}');
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((k, v)) => (k.trim(), v),
            None => (line.trim(), ""),
        };
        match (key, &mut section) {
            ("КонецФайла", Section::Header) => {
                finished = true;
                break;
            }
            ("КонецФайла", _) => return Err(StatementError::Truncated(section_line)),
            ("СекцияРасчСчет", Section::Header) => {
                section = Section::Balance(Balance::default());
                section_line = no;
            }
            ("СекцияДокумент", Section::Header) => {
                section = Section::Document {
                    kind: value.trim().to_owned(),
                    line: no,
                    fields: Vec::new(),
                };
                section_line = no;
            }
            (
                "СекцияРасчСчет" | "СекцияДокумент",
                Section::Balance(_) | Section::Document { .. },
            ) => {
                return Err(StatementError::UnexpectedSection {
                    line: no,
                    found: key.to_owned(),
                    context: if matches!(section, Section::Balance(_)) {
                        "СекцияРасчСчет"
                    } else {
                        "СекцияДокумент"
                    },
                })
            }
            ("КонецРасчСчет", Section::Balance(b)) => {
                if let Some(a) = &b.account {
                    if !st.accounts.contains(a) {
                        st.accounts.push(a.clone());
                    }
                }
                st.balances.push(std::mem::take(b));
                section = Section::Header;
            }
            ("КонецДокумента", Section::Document { kind, line, fields }) => {
                st.documents.push(build_document(
                    std::mem::take(kind),
                    *line,
                    std::mem::take(fields),
                ));
                section = Section::Header;
            }
            ("КонецРасчСчет" | "КонецДокумента", _) => {
                return Err(StatementError::UnexpectedSection {
                    line: no,
                    found: key.to_owned(),
                    context: "the file header",
                })
            }
            (_, Section::Header) => {
                match key {
                    "ВерсияФормата" => st.version = non_empty(value),
                    "Отправитель" => st.sender = non_empty(value),
                    "Получатель" => st.receiver = non_empty(value),
                    "ДатаНачала" => st.date_from = non_empty(value),
                    "ДатаКонца" => st.date_to = non_empty(value),
                    "РасчСчет" => {
                        if let Some(a) = non_empty(value) {
                            if !st.accounts.contains(&a) {
                                st.accounts.push(a);
                            }
                        }
                    }
                    _ => {}
                }
                st.header.push((key.to_owned(), value.to_owned()));
            }
            (_, Section::Balance(b)) => {
                let mut ignored = Vec::new();
                match key {
                    "РасчСчет" => b.account = non_empty(value),
                    "ДатаНачала" => b.date_from = non_empty(value),
                    "ДатаКонца" => b.date_to = non_empty(value),
                    "НачальныйОстаток" => {
                        b.opening = amount(key, value, &mut ignored)
                    }
                    "ВсегоПоступило" => b.credited = amount(key, value, &mut ignored),
                    "ВсегоСписано" => b.debited = amount(key, value, &mut ignored),
                    "КонечныйОстаток" => {
                        b.closing = amount(key, value, &mut ignored)
                    }
                    _ => {}
                }
            }
            (_, Section::Document { fields, .. }) => {
                fields.push((key.to_owned(), value.to_owned()))
            }
        }
    }
    if !finished {
        return Err(StatementError::Truncated(section_line));
    }
    let own = st.accounts.clone();
    for doc in &mut st.documents {
        doc.direction = direction(doc, &own);
    }
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::fixtures_dir;

    fn fixture(name: &str) -> Statement {
        let bytes = std::fs::read(fixtures_dir().join("statements").join(name)).unwrap();
        parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn sum(st: &Statement, d: Direction) -> (usize, i64) {
        let docs: Vec<_> = st.documents.iter().filter(|x| x.direction == d).collect();
        (docs.len(), docs.iter().map(|x| x.amount.unwrap_or(0)).sum())
    }

    #[test]
    fn sber_business_online_103_with_daily_balances() {
        let st = fixture("tochka-public__odin_palace__statement-137442_input.txt");
        assert_eq!(
            (st.version.as_deref(), st.encoding),
            (Some("1.03"), "windows-1251")
        );
        assert_eq!(st.sender.as_deref(), Some("Сбербанк Бизнес Онлайн"));
        assert_eq!(st.accounts, ["40802000000000000549"]);
        assert_eq!(st.documents.len(), 129);
        assert_eq!(st.balances.len(), 26);
        assert_eq!(sum(&st, Direction::Incoming), (103, 102_735_616));
        assert_eq!(sum(&st, Direction::Outgoing), (26, 64_226_831));
        let kinds = st
            .documents
            .iter()
            .filter(|d| d.kind == "Банковский ордер")
            .count();
        assert_eq!(kinds, 6);
        assert!(
            st.documents.iter().all(|d| d.problems.is_empty()),
            "{:?}",
            st.documents.iter().find(|d| !d.problems.is_empty())
        );
        // The balance chain is continuous.
        for w in st.balances.windows(2) {
            assert_eq!(w[0].closing, w[1].opening);
        }
    }

    #[test]
    fn vtb_102_crlf_with_anonymised_payers() {
        let st = fixture("kilylabs__client-bank-exchange-php__one_day.txt");
        assert_eq!(st.version.as_deref(), Some("1.02"));
        assert_eq!(st.documents.len(), 13);
        assert_eq!(st.balances.len(), 1);
        let b = &st.balances[0];
        assert_eq!(
            (b.opening, b.credited, b.debited, b.closing),
            (
                Some(4_532_991),
                Some(4_000_000),
                Some(4_118_400),
                Some(4_414_591)
            )
        );
        assert_eq!(sum(&st, Direction::Incoming).1, 4_000_000);
        assert_eq!(sum(&st, Direction::Outgoing).1, 4_118_400);
        assert!(st.documents[0].field("КвитанцияСодержание").is_some());
    }

    #[test]
    fn quirks_are_handled_and_broken_files_refused() {
        let text = "1CClientBankExchange\nВерсияФормата=1.03\nКодировка=Windows\nРасчСчет=40702810000000000001\nРасчСчет=40702810000000000002\n\nСекцияДокумент=Платежное поручение\nНомер=FDC240\nДата=01.12.2026\nСумма=1500\nПлательщикСчет=40702810999999999999\nПолучательСчет=40702810000000000002\nНазначениеПлатежа=Хоз расходы {53=33798.03}\nНовыйКлюч=сохранён\nКонецДокумента\nСекцияДокумент=Платежное поручение\nНомер=2\nПолучательСчет=40702810000000000001\nКонецДокумента\nКонецФайла";
        let st = parse(text.as_bytes()).unwrap();
        assert_eq!(st.accounts.len(), 2, "repeated header key");
        let d = &st.documents[0];
        assert_eq!(
            (d.amount, d.direction),
            (Some(150_000), Direction::Incoming)
        );
        assert_eq!(d.purpose, "Хоз расходы {53=33798.03}");
        assert_eq!(d.field("НовыйКлюч"), Some("сохранён"));
        let incomplete = &st.documents[1];
        assert_eq!(incomplete.problems, ["Дата is missing", "Сумма is missing"]);
        // cp866 (DOS) and UTF-8 read the same.
        let (dos, _, _) = IBM866.encode(text);
        assert_eq!(parse(&dos).unwrap().documents[0].purpose, d.purpose);
        assert_eq!(parse(&dos).unwrap().encoding, "IBM866");
        let truncated = text.replace("\nКонецФайла", "");
        assert!(matches!(
            parse(truncated.as_bytes()),
            Err(StatementError::Truncated(_))
        ));
        let unclosed = text.replace("КонецДокумента\nКонецФайла", "КонецФайла");
        assert!(matches!(
            parse(unclosed.as_bytes()),
            Err(StatementError::Truncated(_))
        ));
        assert_eq!(parse(b"hello"), Err(StatementError::NotStatement));
        assert_eq!(parse(b""), Err(StatementError::NotStatement));
    }
}

/// Every statement fixture as a readable listing: operations, balances and each document's problems. A change in
/// what the parser reads shows up as a snapshot diff.
#[cfg(test)]
mod snapshots {
    use std::fmt::Write as _;

    use crate::domain::money::format_minor;
    use crate::statement::{from_file, from_tbank, BankOperation};
    use crate::testing::fixtures_dir;

    fn op_line(out: &mut String, op: &BankOperation) {
        let _ = writeln!(
            out,
            "  {} {} №{} {} {} | {} inn {} | {}{}",
            op.date,
            if op.incoming { "in " } else { "out" },
            op.number,
            format_minor(op.amount),
            op.account,
            op.counterparty_account.as_deref().unwrap_or("-"),
            op.counterparty_inn.as_deref().unwrap_or("-"),
            op.purpose,
            if op.is_final { "" } else { " [not final]" }
        );
    }

    #[test]
    fn every_statement_fixture() {
        let dir = fixtures_dir().join("statements");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n != "purposes.txt")
            .collect();
        names.sort();
        assert!(names.len() >= 4, "{names:?}");
        for name in names {
            let bytes = std::fs::read(dir.join(&name)).unwrap();
            let mut out = String::new();
            if name.ends_with(".json") {
                let page = crate::formats::tbank_statement::parse_page(&bytes).unwrap();
                let _ = writeln!(out, "next cursor: {:?}", page.next_cursor);
                for raw in &page.operations {
                    match from_tbank(raw) {
                        Some(op) => op_line(&mut out, &op),
                        None => {
                            let _ = writeln!(out, "  (no money of ours) {}", raw.id);
                        }
                    }
                }
            } else {
                let st = super::parse(&bytes).unwrap();
                let _ = writeln!(
                    out,
                    "version {:?}, {}, accounts {:?}, {} documents",
                    st.version,
                    st.encoding,
                    st.accounts,
                    st.documents.len()
                );
                for b in &st.balances {
                    let _ = writeln!(
                        out,
                        "  balance {:?} {:?}..{:?}: {:?} +{:?} -{:?} = {:?}",
                        b.account,
                        b.date_from,
                        b.date_to,
                        b.opening,
                        b.credited,
                        b.debited,
                        b.closing
                    );
                }
                for doc in &st.documents {
                    match from_file(doc) {
                        Some(op) => op_line(&mut out, &op),
                        None => {
                            let _ = writeln!(
                                out,
                                "  line {}: {:?} {}",
                                doc.line, doc.direction, doc.kind
                            );
                        }
                    }
                    for p in &doc.problems {
                        let _ = writeln!(out, "    problem: {p}");
                    }
                }
            }
            let snapshot = name.replace(['.', '-'], "_");
            insta::assert_snapshot!(snapshot, out);
        }
    }
}
