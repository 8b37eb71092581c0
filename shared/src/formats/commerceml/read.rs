//! Streaming reader of 1C's CommerceML order/payment files (no DOM): quick-xml events, local names only.
//!
//! Element names are interned into [`Tag`]s as they are read, so the element stack and path matching allocate
//! nothing per element.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::text::{decode, normalize_datetime, parse_price, parse_sum, TextError};
use super::{Counterparty, Document, Exchange, Item};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommerceMlError {
    #[error(transparent)]
    Encoding(#[from] TextError),
    #[error("malformed XML at byte {position}: {reason}")]
    Malformed { position: u64, reason: String },
    #[error("file ends inside <{0}>: it is truncated")]
    Truncated(String),
    #[error("not a CommerceML file: the root element is <{0}>, not <КоммерческаяИнформация>")]
    NotCommerceMl(String),
    #[error("the file is empty")]
    Empty,
}

/// The element names the reader cares about; everything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    Container,
    Document,
    Subordinates,
    Subordinate,
    Id,
    Number,
    Version,
    Date,
    Time,
    Operation,
    Role,
    Currency,
    Rate,
    Sum,
    Base,
    Comment,
    DeletionMark,
    Number1c,
    Date1c,
    Counterparties,
    Counterparty,
    Name,
    FullName,
    OfficialName,
    Inn,
    Kpp,
    RegAddress,
    Address,
    Presentation,
    Goods,
    Good,
    Price,
    Quantity,
    Requisites,
    Requisite,
    Value,
    Other,
}

const TAGS: &[(&str, Tag)] = &[
    ("Контейнер", Tag::Container),
    ("Документ", Tag::Document),
    ("ПодчиненныеДокументы", Tag::Subordinates),
    ("ПодчиненныйДокумент", Tag::Subordinate),
    ("Ид", Tag::Id),
    ("Номер", Tag::Number),
    ("НомерВерсии", Tag::Version),
    ("Дата", Tag::Date),
    ("Время", Tag::Time),
    ("ХозОперация", Tag::Operation),
    ("Роль", Tag::Role),
    ("Валюта", Tag::Currency),
    ("Курс", Tag::Rate),
    ("Сумма", Tag::Sum),
    ("Основание", Tag::Base),
    ("Комментарий", Tag::Comment),
    ("ПометкаУдаления", Tag::DeletionMark),
    ("Номер1С", Tag::Number1c),
    ("Дата1С", Tag::Date1c),
    ("Контрагенты", Tag::Counterparties),
    ("Контрагент", Tag::Counterparty),
    ("Наименование", Tag::Name),
    ("ПолноеНаименование", Tag::FullName),
    ("ОфициальноеНаименование", Tag::OfficialName),
    ("ИНН", Tag::Inn),
    ("КПП", Tag::Kpp),
    ("АдресРегистрации", Tag::RegAddress),
    ("Адрес", Tag::Address),
    ("Представление", Tag::Presentation),
    ("Товары", Tag::Goods),
    ("Товар", Tag::Good),
    ("ЦенаЗаЕдиницу", Tag::Price),
    ("Количество", Tag::Quantity),
    ("ЗначенияРеквизитов", Tag::Requisites),
    ("ЗначениеРеквизита", Tag::Requisite),
    ("Значение", Tag::Value),
];

impl Tag {
    fn of(local: &str) -> Tag {
        TAGS.iter()
            .find(|(n, _)| *n == local)
            .map_or(Tag::Other, |(_, t)| *t)
    }

    /// Elements whose text is a value (the rest only hold other elements).
    fn is_leaf(self) -> bool {
        !matches!(
            self,
            Tag::Container
                | Tag::Document
                | Tag::Subordinates
                | Tag::Subordinate
                | Tag::Counterparties
                | Tag::Counterparty
                | Tag::Goods
                | Tag::Good
                | Tag::Requisites
                | Tag::Requisite
                | Tag::RegAddress
                | Tag::Address
                | Tag::Other
        )
    }

    fn name(self) -> Option<&'static str> {
        TAGS.iter().find(|(_, t)| *t == self).map(|(n, _)| *n)
    }
}

/// A document being read, and how deep in the element stack it started.
struct Open {
    depth: usize,
    doc: Document,
    requisite: (Option<String>, Option<String>),
    item_requisite: (Option<String>, Option<String>),
}

fn local(name: &str) -> &str {
    name.rsplit_once(':').map_or(name, |(_, l)| l)
}

fn set(slot: &mut Option<String>, text: &str) {
    let t = text.trim();
    if !t.is_empty() {
        *slot = Some(t.to_owned());
    }
}

/// Parse a whole file (any encoding 1C or Bitrix writes).
pub fn read(bytes: &[u8]) -> Result<Exchange, CommerceMlError> {
    let (text, _) = decode(bytes)?;
    read_str(&text)
}

struct State {
    exchange: Exchange,
    stack: Vec<Tag>,
    /// Local name of the innermost open element, for the truncation message.
    last_name: String,
    open: Vec<Open>,
    container: Option<usize>,
    containers: usize,
}

pub fn read_str(text: &str) -> Result<Exchange, CommerceMlError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut st = State {
        exchange: Exchange::default(),
        stack: Vec::with_capacity(16),
        last_name: String::new(),
        open: Vec::new(),
        container: None,
        containers: 0,
    };
    // A value is usually one text event borrowed from the input; `buf` joins the pieces around entities.
    let mut piece: Option<std::borrow::Cow<'_, str>> = None;
    let mut buf = String::with_capacity(256);
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| CommerceMlError::Malformed {
                position: reader.error_position(),
                reason: e.to_string(),
            })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let qname = e.name();
                let raw = qname.as_ref();
                // Un-prefixed names (the common case) skip the search for a namespace prefix.
                let tag = match Tag::of(raw) {
                    Tag::Other => Tag::of(local(raw)),
                    known => known,
                };
                let name = if tag == Tag::Other { local(raw) } else { raw };
                if !seen_root {
                    if name != "КоммерческаяИнформация" {
                        return Err(CommerceMlError::NotCommerceMl(name.to_owned()));
                    }
                    seen_root = true;
                    for attr in e.attributes().flatten() {
                        let value = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|v| v.into_owned())
                            .unwrap_or_default();
                        match local(attr.key.as_ref()) {
                            "ВерсияСхемы" => {
                                set(&mut st.exchange.schema_version, &value)
                            }
                            "ДатаФормирования" => {
                                set(&mut st.exchange.generated_at, &value)
                            }
                            _ => {}
                        }
                    }
                }
                buf.clear();
                piece = None;
                if tag == Tag::Other {
                    st.last_name.clear();
                    st.last_name.push_str(name);
                }
                start(&mut st, tag);
                st.stack.push(tag);
                if is_empty {
                    end(&mut st, "");
                }
            }
            Event::End(_) => {
                match piece.take() {
                    Some(p) if buf.is_empty() => end(&mut st, &p),
                    Some(p) => {
                        buf.push_str(&p);
                        end(&mut st, &buf);
                    }
                    None => end(&mut st, &buf),
                }
                buf.clear();
            }
            // Only leaf values are read: the indentation between child elements is not even copied.
            Event::Text(t) if st.stack.last().is_some_and(|t| t.is_leaf()) => {
                if let Some(p) = piece.replace(t.xml10_content()) {
                    buf.push_str(&p);
                }
            }
            Event::CData(t) if st.stack.last().is_some_and(|t| t.is_leaf()) => {
                if let Some(p) = piece.replace(t.xml10_content()) {
                    buf.push_str(&p);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(p) = piece.take() {
                    buf.push_str(&p);
                }
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    buf.push(ch);
                } else if let Some(s) = resolve_predefined_entity(&r) {
                    buf.push_str(s);
                } else {
                    return Err(CommerceMlError::Malformed {
                        position: reader.buffer_position(),
                        reason: format!("unknown entity &{};", &*r),
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !st.stack.is_empty() {
        // Name the innermost element we know, else whatever was opened last.
        let name = st
            .stack
            .iter()
            .rev()
            .find_map(|t| t.name())
            .map_or_else(|| st.last_name.clone(), str::to_owned);
        return Err(CommerceMlError::Truncated(name));
    }
    if !seen_root {
        return Err(CommerceMlError::Empty);
    }
    Ok(st.exchange)
}

fn start(st: &mut State, tag: Tag) {
    let parent = st.stack.last().copied();
    if tag == Tag::Container && st.open.is_empty() {
        st.container = Some(st.containers);
        st.containers += 1;
        return;
    }
    let new_doc = (tag == Tag::Document && st.open.is_empty())
        || (tag == Tag::Subordinate && parent == Some(Tag::Subordinates) && !st.open.is_empty());
    if new_doc {
        st.open.push(Open {
            depth: st.stack.len(),
            doc: Document {
                container: st.container,
                ..Document::default()
            },
            requisite: (None, None),
            item_requisite: (None, None),
        });
        return;
    }
    let Some(o) = st.open.last_mut() else { return };
    let rel = &st.stack[(o.depth + 1).min(st.stack.len())..];
    match (rel, tag) {
        ([Tag::Counterparties], Tag::Counterparty) => {
            o.doc.counterparties.push(Counterparty::default())
        }
        ([Tag::Goods], Tag::Good) => o.doc.items.push(Item::default()),
        ([Tag::Requisites], Tag::Requisite) | ([], Tag::Requisite) => o.requisite = (None, None),
        ([Tag::Goods, Tag::Good, Tag::Requisites], Tag::Requisite) => {
            o.item_requisite = (None, None)
        }
        _ => {}
    }
}

fn end(st: &mut State, text: &str) {
    let closing_doc = st
        .open
        .last()
        .is_some_and(|o| o.depth + 1 == st.stack.len());
    if closing_doc {
        st.stack.pop();
        if let Some(done) = st.open.pop() {
            match st.open.last_mut() {
                Some(parent) => parent.doc.subordinates.push(done.doc),
                None => st.exchange.documents.push(done.doc),
            }
        }
        return;
    }
    if st.open.is_empty() {
        if st.stack.last() == Some(&Tag::Container) {
            st.container = None;
        }
        st.stack.pop();
        return;
    }
    if let Some(o) = st.open.last_mut() {
        let rel = &st.stack[(o.depth + 1).min(st.stack.len())..];
        apply(o, rel, text);
    }
    st.stack.pop();
}

fn apply(o: &mut Open, path: &[Tag], text: &str) {
    use Tag::*;
    let d = &mut o.doc;
    match path {
        [Id] => set(&mut d.id, text),
        [Number] => set(&mut d.number, text),
        [Version] => set(&mut d.version, text),
        [Date] => set(&mut d.date, text),
        [Time] => set(&mut d.time, text),
        [Operation] => d.operation = super::Operation::parse(text),
        [Role] => set(&mut d.role, text),
        [Currency] => set(&mut d.currency, text),
        [Rate] => set(&mut d.rate, text),
        [Sum] => match parse_sum(text) {
            Ok(v) => d.amount = Some(v),
            Err(e) if !text.trim().is_empty() => d.problems.push(format!("Сумма: {e}")),
            Err(_) => {}
        },
        [Base] => set(&mut d.base, text),
        [Comment] => set(&mut d.comment, text),
        [DeletionMark] => d.deletion_mark = text.trim() == "true",
        [Number1c] => set(&mut d.number_1c, text),
        [Date1c] => set(&mut d.date_1c, text),
        [Counterparties, Counterparty, field]
        | [Counterparties, Counterparty, field, Presentation] => {
            if let Some(c) = d.counterparties.last_mut() {
                let slot = match (*field, path.len()) {
                    (Id, 3) => &mut c.id,
                    (Name, 3) => &mut c.name,
                    (FullName | OfficialName, 3) => &mut c.full_name,
                    (Role, 3) => &mut c.role,
                    (Inn, 3) => &mut c.inn,
                    (Kpp, 3) => &mut c.kpp,
                    (RegAddress | Address, 4) => &mut c.address,
                    _ => return,
                };
                if slot.is_none() {
                    set(slot, text);
                }
            }
        }
        [Goods, Good, field] => {
            if let Some(item) = d.items.last_mut() {
                match field {
                    Id => set(&mut item.id, text),
                    Name => set(&mut item.name, text),
                    Quantity => set(&mut item.quantity, text),
                    Price => match parse_price(text) {
                        Ok(v) => item.price = Some(v),
                        Err(e) => d.problems.push(format!("ЦенаЗаЕдиницу: {e}")),
                    },
                    Sum => match parse_price(text) {
                        Ok(v) => item.amount = Some(v),
                        Err(e) => d.problems.push(format!("Товар/Сумма: {e}")),
                    },
                    _ => {}
                }
            }
        }
        [Goods, Good, Requisites, Requisite, field] => match field {
            Name => o.item_requisite.0 = Some(text.trim().to_owned()),
            Value if o.item_requisite.1.is_none() => {
                o.item_requisite.1 = Some(text.trim().to_owned())
            }
            _ => {}
        },
        [Goods, Good, Requisites, Requisite] => {
            if let (Some(n), Some(item)) = (o.item_requisite.0.take(), d.items.last_mut()) {
                item.requisites
                    .push((n, o.item_requisite.1.take().unwrap_or_default()));
            }
        }
        // Bitrix reads only the first Значение; some files omit the ЗначенияРеквизитов wrapper.
        [Requisites, Requisite, field] | [Requisite, field] => match field {
            Name => o.requisite.0 = Some(text.trim().to_owned()),
            Value if o.requisite.1.is_none() => o.requisite.1 = Some(text.trim().to_owned()),
            _ => {}
        },
        [Requisites, Requisite] | [Requisite] => {
            if let Some(n) = o.requisite.0.take() {
                d.requisites
                    .push((n, o.requisite.1.take().unwrap_or_default()));
            }
        }
        _ => {}
    }
}

/// Dates as 1C wrote them, normalised (`None` for 1C's empty `T`).
pub fn document_datetime(d: &Document) -> Option<String> {
    let date = d.date.as_deref()?;
    match d.time.as_deref() {
        Some(t) => normalize_datetime(&format!("{date}T{t}")),
        None => normalize_datetime(date),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::commerceml::Operation;

    #[test]
    fn tag_table_and_match_agree() {
        for (name, tag) in TAGS {
            assert_eq!(Tag::of(name), *tag);
            assert_eq!(tag.name(), Some(*name));
        }
        assert_eq!(Tag::of("Неизвестный"), Tag::Other);
    }
    use crate::testing::fixtures_dir;

    fn fixture(name: &str) -> Exchange {
        let bytes = std::fs::read(fixtures_dir().join("commerceml").join(name)).unwrap();
        read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn argentcrusade_209_two_paid_orders() {
        let x = fixture("ArgentCrusade__commerceml__documents-example.xml");
        assert_eq!(x.schema_version.as_deref(), Some("2.09"));
        assert_eq!(x.documents.len(), 2);
        let ids: Vec<_> = x
            .documents
            .iter()
            .map(|d| d.id.as_deref().unwrap())
            .collect();
        assert_eq!(ids, ["142", "235"]);
        let d = &x.documents[0];
        assert_eq!(d.operation, Operation::Order);
        assert!(d.paid_per_1c());
        assert_eq!(d.paid_date_1c(), Some("2015-06-29T15:39:10"));
        assert_eq!(d.payment_number_1c(), Some("ТДЦУ-000001"));
        assert_eq!(d.status_id(), Some("P"));
        assert!(d.posted() && !d.cancelled());
        assert_eq!(x.documents[1].payment_number_1c(), Some("ТДЦУ-000002"));
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert!(!d.items.is_empty());
    }

    #[test]
    fn dicrtarasov_208_with_bom_and_one_digit_hour() {
        let x = fixture("dicrtarasov__yii2-exchange1c__orders.xml");
        assert_eq!(x.schema_version.as_deref(), Some("2.08"));
        let d = &x.documents[0];
        assert_eq!(
            d.id.as_deref(),
            Some("24c82d03-7149-11eb-80c0-7085c2ddb497")
        );
        assert_eq!(d.number.as_deref(), Some("13838"));
        assert_eq!(d.amount, Some(151_500));
        assert_eq!(d.currency.as_deref(), Some("руб"));
        assert!(d.paid_per_1c());
        assert_eq!(
            d.paid_date_1c()
                .and_then(super::super::text::normalize_datetime)
                .as_deref(),
            Some("2021-02-18T09:49:02")
        );
        assert_eq!(d.items.len(), 2);
    }

    #[test]
    fn carono_203_windows_1251_site_export() {
        let x = fixture("carono__yii2-1c-exchange__to.xml");
        assert_eq!(x.schema_version.as_deref(), Some("2.03"));
        let d = &x.documents[0];
        assert_eq!((d.id.as_deref(), d.amount), (Some("20"), Some(968_342)));
        assert!(d.paid_per_site());
        assert_eq!(d.requisite("Дата оплаты"), Some("2007-10-16 15:44:47"));
        assert_eq!(
            d.requisite("Номер платежного документа"),
            Some("ТК000000026")
        );
        assert_eq!(d.requisite("Статус заказа"), Some("[F] Доставлен"));
        assert_eq!(
            d.buyer().and_then(|b| b.name.as_deref()),
            Some("Петр Петров")
        );
    }

    #[test]
    fn bitrix_205_query_response_unpaid_with_four_decimal_sums() {
        let x = fixture("dobromyslov__commerceml-parser__bitrix-query-response-full.xml");
        assert_eq!(x.schema_version.as_deref(), Some("2.05"));
        let sums: Vec<_> = x
            .documents
            .iter()
            .map(|d| (d.id.clone().unwrap(), d.amount.unwrap()))
            .collect();
        assert_eq!(
            sums,
            [("132".to_owned(), 23_174), ("133".to_owned(), 1_438_058)]
        );
        for d in &x.documents {
            assert!(!d.paid_per_site());
            assert_eq!(d.status_id(), Some("N"));
            assert!(!d.items.is_empty());
        }
    }

    #[test]
    fn malformed_truncated_and_foreign_files_are_errors() {
        let ok = "<КоммерческаяИнформация ВерсияСхемы=\"2.08\"><Документ><Ид>1</Ид></Документ></КоммерческаяИнформация>";
        assert_eq!(read(ok.as_bytes()).unwrap().documents.len(), 1);
        let cut = ok.replace("</Документ></КоммерческаяИнформация>", "");
        assert_eq!(
            read(cut.as_bytes()),
            Err(CommerceMlError::Truncated("Документ".into()))
        );
        assert!(matches!(
            read(b"<a><b></a>"),
            Err(CommerceMlError::NotCommerceMl(_) | CommerceMlError::Malformed { .. })
        ));
        let mismatched =
            "<КоммерческаяИнформация><Документ></Ид></Документ></КоммерческаяИнформация>";
        assert!(matches!(
            read(mismatched.as_bytes()),
            Err(CommerceMlError::Malformed { .. })
        ));
        assert_eq!(read(b""), Err(CommerceMlError::Empty));
        assert!(matches!(
            read(b"\xff\xfe\x00"),
            Err(CommerceMlError::Encoding(_))
        ));
    }

    #[test]
    fn payment_documents_containers_subordinates_and_quirks() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<КоммерческаяИнформация xmlns="urn:1C.ru:commerceml_3" ВерсияСхемы="3.1" ДатаФормирования="2015-08-13T22:25:56.526+03:00">
 <Контейнер>
  <Документ><Ид>o-1</Ид><Номер>77</Номер><ХозОперация>Заказ товара</ХозОперация><Сумма>5 000,00</Сумма>
   <ЗначенияРеквизитов><ЗначениеРеквизита><Наименование>Дата оплаты по 1С</Наименование><Значение>T</Значение></ЗначениеРеквизита></ЗначенияРеквизитов>
  </Документ>
  <Документ><Ид>p-1</Ид><НомерВерсии>AAAA</НомерВерсии><ХозОперация>Выплата безналичных денег</ХозОперация><Сумма>1500.0000</Сумма><Основание>77</Основание>
   <ЗначенияРеквизитов>
    <ЗначениеРеквизита><Наименование>Оплачен</Наименование><Значение>true</Значение></ЗначениеРеквизита>
    <ЗначениеРеквизита><Наименование>ПризнакВозврата</Наименование><Значение>true</Значение><Значение>false</Значение></ЗначениеРеквизита>
    <ЗначениеРеквизита><Наименование>Причина к Возврату</Наименование><Значение>Брак &amp; возврат</Значение></ЗначениеРеквизита>
   </ЗначенияРеквизитов>
  </Документ>
 </Контейнер>
 <Документ><Ид>o-2</Ид><ХозОперация>Заказ товара</ХозОперация><Сумма>0.3333</Сумма><ПометкаУдаления>true</ПометкаУдаления>
  <ПодчиненныеДокументы><ПодчиненныйДокумент><Ид>p-2</Ид><ХозОперация>Эквайринговая операция</ХозОперация><Сумма>10</Сумма></ПодчиненныйДокумент></ПодчиненныеДокументы>
  <ЗначениеРеквизита><Наименование>Статуса заказа ИД</Наименование><Значение>F</Значение></ЗначениеРеквизита>
 </Документ>
</КоммерческаяИнформация>"#;
        let x = read(xml.as_bytes()).unwrap();
        assert_eq!(x.documents.len(), 3);
        let (order, pay, other) = (&x.documents[0], &x.documents[1], &x.documents[2]);
        assert_eq!(
            (order.container, pay.container, other.container),
            (Some(0), Some(0), None)
        );
        assert_eq!(order.amount, Some(500_000));
        assert!(!order.paid_per_1c(), "a lone T is an empty date");
        assert_eq!(pay.operation, Operation::PaymentCashless);
        assert_eq!(
            (pay.amount, pay.base.as_deref()),
            (Some(150_000), Some("77"))
        );
        assert!(pay.paid_per_1c() && pay.is_return());
        assert_eq!(pay.return_reason(), Some("Брак & возврат"));
        assert!(other.cancelled());
        assert_eq!(other.amount, None);
        assert_eq!(
            other.problems.len(),
            1,
            "the unrepresentable sum is listed, the document kept"
        );
        assert_eq!(
            other.status_id(),
            Some("F"),
            "requisite without the wrapper"
        );
        assert_eq!(other.subordinates.len(), 1);
        assert_eq!(other.subordinates[0].operation, Operation::PaymentCard);
        assert_eq!(other.subordinates[0].amount, Some(1000));
    }
}
