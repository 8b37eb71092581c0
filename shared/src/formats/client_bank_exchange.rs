//! 1CClientBankExchange (`kl_to_1c.txt`) bank statements, versions 1.01–1.03: a pure, line-based parser.
//!
//! Encoding is decided from the bytes (strict UTF-8 first, then windows-1251 or DOS cp866 by the header and by
//! which decoding reads as Russian). Every document is kept: one that misses fields carries its problems. A file
//! without `КонецФайла` is refused as incomplete. Direction comes from the statement's own accounts, not from the
//! `ДатаСписано`/`ДатаПоступило` keys (banks fill those inconsistently), which are only a fallback.

use std::borrow::Cow;
use std::sync::OnceLock;

use encoding_rs::{Encoding, IBM866, WINDOWS_1251};

use crate::domain::bank_operation::{business_date, BankOperation};
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
    pub fields: Fields,
    pub problems: Vec<String>,
}

impl BankDocument {
    /// The first non-empty value of `key`, trimmed.
    pub fn field(&self, key: &str) -> Option<String> {
        self.fields
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.trim().to_owned())
            .find(|v| !v.is_empty())
    }
}

/// A document's `key=value` lines as the file has them: bytes in the file's encoding, one buffer per document,
/// decoded only when read. The parser matches the keys it knows on the bytes and decodes only their values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    raw: Vec<u8>,
    /// `(key start, key end = value start, value end)` in `raw`.
    spans: Vec<(u32, u32, u32)>,
    /// `None`: UTF-8.
    encoding: Option<&'static Encoding>,
}

impl Default for Fields {
    fn default() -> Self {
        Fields::new(None)
    }
}

impl Fields {
    fn new(encoding: Option<&'static Encoding>) -> Self {
        Fields {
            raw: Vec::with_capacity(1024),
            spans: Vec::with_capacity(32),
            encoding,
        }
    }

    fn push(&mut self, key: &[u8], value: &[u8]) {
        let at = |len: usize| u32::try_from(len).unwrap_or(u32::MAX);
        let start = at(self.raw.len());
        self.raw.extend_from_slice(key);
        let middle = at(self.raw.len());
        self.raw.extend_from_slice(value);
        self.spans.push((start, middle, at(self.raw.len())));
    }

    fn raw_iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&(a, b, c)| {
            (
                self.raw.get(a as usize..b as usize).unwrap_or_default(),
                self.raw.get(b as usize..c as usize).unwrap_or_default(),
            )
        })
    }

    /// Every line, decoded, in file order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
        self.raw_iter()
            .map(|(k, v)| (text(self.encoding, k), text(self.encoding, v)))
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

fn text<'a>(encoding: Option<&'static Encoding>, bytes: &'a [u8]) -> Cow<'a, str> {
    match encoding {
        None => String::from_utf8_lossy(bytes),
        Some(e) => e.decode_without_bom_handling(bytes).0,
    }
}

/// Keys as bytes in one encoding.
struct Keys {
    end_file: Vec<u8>,
    doc_start: Vec<u8>,
    doc_end: Vec<u8>,
    balance_start: Vec<u8>,
    /// In the order of `build_document`'s slots.
    document: Vec<Vec<u8>>,
    purpose: Vec<u8>,
}

const DOCUMENT_KEYS: [&str; 16] = [
    "Номер",
    "Дата",
    "ПлательщикСчет",
    "ПлательщикРасчСчет",
    "ПолучательСчет",
    "ПолучательРасчСчет",
    "Плательщик1",
    "Плательщик",
    "ПлательщикИНН",
    "Получатель1",
    "Получатель",
    "ПолучательИНН",
    "НазначениеПлатежа",
    "ДатаСписано",
    "ДатаПоступило",
    "Сумма",
];
const AMOUNT: usize = 15;
const PURPOSE: usize = 12;

impl Keys {
    fn new(encoding: Option<&'static Encoding>) -> Keys {
        let enc = |s: &str| match encoding {
            None => s.as_bytes().to_vec(),
            Some(e) => e.encode(s).0.into_owned(),
        };
        Keys {
            end_file: enc("КонецФайла"),
            doc_start: enc("СекцияДокумент"),
            doc_end: enc("КонецДокумента"),
            balance_start: enc("СекцияРасчСчет"),
            document: DOCUMENT_KEYS.iter().map(|k| enc(k)).collect(),
            purpose: enc("НазначениеПлатежа"),
        }
    }

    fn of(encoding: Option<&'static Encoding>) -> &'static Keys {
        static UTF8: OnceLock<Keys> = OnceLock::new();
        static CP1251: OnceLock<Keys> = OnceLock::new();
        static CP866: OnceLock<Keys> = OnceLock::new();
        let cell = match encoding {
            None => &UTF8,
            Some(e) if e == IBM866 => &CP866,
            Some(_) => &CP1251,
        };
        cell.get_or_init(|| Keys::new(encoding))
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

/// Cyrillic letters the bytes would be in windows-1251 (`А`..`я`, `Ё`, `ё`) and in cp866.
fn cyrillic_letters(bytes: &[u8]) -> (usize, usize) {
    bytes.iter().fold((0, 0), |(w, d), &b| {
        (
            w + usize::from(b >= 0xC0 || b == 0xA8 || b == 0xB8),
            d + usize::from((0x80..=0xAF).contains(&b) || (0xE0..=0xF1).contains(&b)),
        )
    })
}

/// The encoding of a statement (BOM already removed): `None` for UTF-8 when the bytes are valid UTF-8, else the
/// better-reading of windows-1251 and cp866 (the header's `Кодировка` breaks a tie).
pub fn detect(bytes: &[u8]) -> Option<&'static Encoding> {
    if simdutf8::basic::from_utf8(bytes).is_ok() {
        return None;
    }
    // Decide on a sample, counting letters on the raw bytes.
    let sample = &bytes[..bytes.len().min(16 * 1024)];
    let (a, b) = cyrillic_letters(sample);
    let dos_declared = || {
        let head = &bytes[..bytes.len().min(1024)];
        WINDOWS_1251
            .decode_without_bom_handling(head)
            .0
            .lines()
            .take(10)
            .any(|l| l.trim().eq_ignore_ascii_case("Кодировка=DOS"))
    };
    Some(if b > a || (b == a && dos_declared()) {
        IBM866
    } else {
        WINDOWS_1251
    })
}

/// The whole statement as text, and the encoding it was read in.
pub fn decode(bytes: &[u8]) -> (String, &'static str) {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    match detect(bytes) {
        None => (String::from_utf8_lossy(bytes).into_owned(), "UTF-8"),
        Some(enc) => (
            enc.decode_without_bom_handling(bytes).0.into_owned(),
            enc.name(),
        ),
    }
}

const BOM: &[u8] = b"\xef\xbb\xbf";

fn amount(key: &str, value: &str, problems: &mut Vec<String>) -> Option<i64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let parsed = if v.contains(',') {
        parse_minor(&v.replace(',', "."))
    } else {
        parse_minor(v)
    };
    match parsed {
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

fn build_document(kind: String, line: usize, fields: Fields) -> BankDocument {
    let keys = Keys::of(fields.encoding);
    let mut problems = Vec::new();
    // One pass over the bytes: the first non-empty value of each key we read (extra copies stay in `fields`).
    let mut slot: [Option<&[u8]>; 16] = [None; 16];
    let mut purpose_parts: [Option<&[u8]>; 6] = [None; 6];
    let mut amount_seen = false;
    for (key, value) in fields.raw_iter() {
        let v = value.trim_ascii();
        match keys.document.iter().position(|k| k == key) {
            Some(AMOUNT) => {
                // The first `Сумма` is the amount, even when empty.
                if !amount_seen {
                    amount_seen = true;
                    slot[AMOUNT] = Some(v);
                }
            }
            Some(i) => {
                if !v.is_empty() && slot[i].is_none() {
                    slot[i] = Some(v);
                }
            }
            None => {
                if let Some(n) = key
                    .strip_prefix(keys.purpose.as_slice())
                    .and_then(|d| std::str::from_utf8(d).ok())
                    .and_then(|d| d.parse::<usize>().ok())
                    .filter(|n| (1..=6).contains(n))
                {
                    if !v.is_empty() {
                        purpose_parts[n - 1].get_or_insert(v);
                    }
                }
            }
        }
    }
    let owned = |i: usize| -> Option<String> {
        let t = text(fields.encoding, slot[i]?);
        let t = t.trim();
        (!t.is_empty()).then(|| t.to_owned())
    };
    let amount_text = slot[AMOUNT].map(|v| text(fields.encoding, v));
    let amount_value = amount_text
        .as_deref()
        .and_then(|v| amount("Сумма", v, &mut problems));
    let mut purpose = owned(PURPOSE).unwrap_or_default();
    for part in purpose_parts.iter().flatten() {
        let part = text(fields.encoding, part);
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        if !purpose.is_empty() {
            purpose.push(' ');
        }
        purpose.push_str(part);
    }
    let number = owned(0);
    let date = owned(1);
    if number.is_none() {
        problems.push("Номер is missing".into());
    }
    if date.is_none() {
        problems.push("Дата is missing".into());
    }
    if amount_text.as_deref().is_none_or(|v| v.trim().is_empty()) {
        problems.push("Сумма is missing".into());
    }
    let payer_account = owned(2).or_else(|| owned(3));
    let payee_account = owned(4).or_else(|| owned(5));
    if payer_account.is_none() && payee_account.is_none() {
        problems.push("neither ПлательщикСчет nor ПолучательСчет is given".into());
    }
    BankDocument {
        kind,
        line,
        number,
        date,
        amount: amount_value,
        payer_name: owned(6).or_else(|| owned(7)),
        payer_inn: owned(8),
        payer_account,
        payee_name: owned(9).or_else(|| owned(10)),
        payee_inn: owned(11),
        payee_account,
        purpose,
        date_debited: owned(13),
        date_credited: owned(14),
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
        fields: Fields,
    },
}

/// Parse a whole statement: every document, directions from all of the statement's own accounts.
pub fn parse(bytes: &[u8]) -> Result<Statement, StatementError> {
    let mut documents = Vec::new();
    let mut st = parse_with(bytes, |doc| documents.push(doc))?;
    for doc in &mut documents {
        doc.direction = direction(doc, &st.accounts);
    }
    st.documents = documents;
    Ok(st)
}

/// Parse a statement handing out each document as soon as it is read (memory stays at one document beyond the
/// input, whatever the file's size); the returned [`Statement`] has no documents. Directions use the accounts
/// named before the document (the header and balance sections come first). A truncated file still ends in an
/// error after its documents were handed out: the caller discards them.
pub fn parse_with(
    bytes: &[u8],
    mut on_document: impl FnMut(BankDocument),
) -> Result<Statement, StatementError> {
    let bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
    let encoding = detect(bytes);
    let mut st = Statement {
        version: None,
        encoding: encoding.map_or("UTF-8", Encoding::name),
        sender: None,
        receiver: None,
        date_from: None,
        date_to: None,
        accounts: Vec::new(),
        header: Vec::new(),
        balances: Vec::new(),
        documents: Vec::new(),
    };
    let keys = Keys::of(encoding);
    let mut started = false;
    let mut section = Section::Header;
    let mut section_line = 1;
    let mut finished = false;
    let mut rest = bytes;
    let mut no = 0;
    while !rest.is_empty() {
        let (mut raw, next) = match memchr::memchr(b'\n', rest) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        rest = next;
        no += 1;
        while let [head @ .., b'\r'] = raw {
            raw = head;
        }
        if encoding.is_none() {
            raw = raw.strip_prefix(BOM).unwrap_or(raw);
        }
        if raw.trim_ascii().is_empty() {
            continue;
        }
        if !started {
            if text(encoding, raw).trim() != "1CClientBankExchange" {
                return Err(StatementError::NotStatement);
            }
            started = true;
            continue;
        }
        let (raw_key, raw_value) = match memchr::memchr(b'=', raw) {
            Some(i) => (raw[..i].trim_ascii(), &raw[i + 1..]),
            None => (raw.trim_ascii(), &[][..]),
        };
        // A document's lines stay bytes until a key is read.
        if let Section::Document { fields, .. } = &mut section {
            let control = raw_key == keys.doc_end.as_slice()
                || raw_key == keys.end_file.as_slice()
                || raw_key == keys.doc_start.as_slice()
                || raw_key == keys.balance_start.as_slice();
            if !control {
                fields.push(raw_key, raw_value);
                continue;
            }
        }
        let key_text = text(encoding, raw_key);
        let value_text = text(encoding, raw_value);
        let (key, value) = (key_text.as_ref(), value_text.as_ref());
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
                    fields: Fields::new(encoding),
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
                let mut doc = build_document(std::mem::take(kind), *line, std::mem::take(fields));
                doc.direction = direction(&doc, &st.accounts);
                on_document(doc);
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
            (_, Section::Document { fields, .. }) => fields.push(raw_key, raw_value),
        }
    }
    if !started {
        return Err(StatementError::NotStatement);
    }
    if !finished {
        return Err(StatementError::Truncated(section_line));
    }
    Ok(st)
}

/// A statement document as an operation on one of our accounts (`None` for what moves no money of ours).
pub fn from_file(doc: &BankDocument) -> Option<BankOperation> {
    let incoming = match doc.direction {
        Direction::Incoming => true,
        Direction::Outgoing => false,
        Direction::Internal | Direction::Unknown => return None,
    };
    let (account, other_account, other_inn, other_name) = if incoming {
        (
            &doc.payee_account,
            &doc.payer_account,
            &doc.payer_inn,
            &doc.payer_name,
        )
    } else {
        (
            &doc.payer_account,
            &doc.payee_account,
            &doc.payee_inn,
            &doc.payee_name,
        )
    };
    Some(BankOperation {
        account: account.clone().unwrap_or_default(),
        date: business_date(doc.date.as_deref()?)?,
        number: doc.number.clone()?,
        amount: doc.amount?,
        incoming,
        counterparty_account: other_account.clone(),
        counterparty_inn: other_inn.clone(),
        counterparty_name: other_name.clone(),
        purpose: doc.purpose.clone(),
        is_final: true,
    })
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
        assert_eq!(d.field("НовыйКлюч"), Some("сохранён".to_owned()));
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

    use super::from_file;
    use crate::domain::bank_operation::BankOperation;
    use crate::domain::money::format_minor;
    use crate::formats::tbank_statement::from_tbank;
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
                    match from_tbank(raw, "40702810900000012345") {
                        Ok(op) => op_line(&mut out, &op),
                        Err(_) => {
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
