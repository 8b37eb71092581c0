//! Streaming reader of 1C's CommerceML order/payment files (no DOM): quick-xml events, local names only.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::Reader;

use super::text::{decode, normalize_datetime, parse_price, parse_sum, TextError};
use super::{Counterparty, Document, Exchange, Item, Operation};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
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
pub fn read(bytes: &[u8]) -> Result<Exchange, ReadError> {
    let (text, _) = decode(bytes)?;
    read_str(&text)
}

pub fn read_str(text: &str) -> Result<Exchange, ReadError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut exchange = Exchange::default();
    let mut stack: Vec<String> = Vec::new();
    let mut open: Vec<Open> = Vec::new();
    let mut container: Option<usize> = None;
    let mut containers = 0usize;
    let mut buf = String::new();
    let mut seen_root = false;
    loop {
        let event = reader.read_event().map_err(|e| ReadError::Malformed {
            position: reader.error_position(),
            reason: e.to_string(),
        })?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = local(e.name().as_ref()).to_owned();
                if !seen_root {
                    if name != "КоммерческаяИнформация" {
                        return Err(ReadError::NotCommerceMl(name));
                    }
                    seen_root = true;
                    for attr in e.attributes().flatten() {
                        let value = attr
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map(|v| v.into_owned())
                            .unwrap_or_default();
                        match local(attr.key.as_ref()) {
                            "ВерсияСхемы" => set(&mut exchange.schema_version, &value),
                            "ДатаФормирования" => {
                                set(&mut exchange.generated_at, &value)
                            }
                            _ => {}
                        }
                    }
                }
                buf.clear();
                start(&name, &stack, &mut open, &mut container, &mut containers);
                stack.push(name);
                if is_empty {
                    end(&mut stack, &mut open, &mut exchange, &mut container, "");
                }
            }
            Event::End(_) => {
                let text = std::mem::take(&mut buf);
                end(&mut stack, &mut open, &mut exchange, &mut container, &text);
            }
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::CData(t) => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                if let Ok(Some(ch)) = r.resolve_char_ref() {
                    buf.push(ch);
                } else if let Some(s) = resolve_predefined_entity(&r) {
                    buf.push_str(s);
                } else {
                    return Err(ReadError::Malformed {
                        position: reader.buffer_position(),
                        reason: format!("unknown entity &{};", &*r),
                    });
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(name) = stack.last() {
        return Err(ReadError::Truncated(name.clone()));
    }
    if !seen_root {
        return Err(ReadError::Empty);
    }
    Ok(exchange)
}

/// Names of the elements below the open document, for dispatch.
fn rel<'a>(stack: &'a [String], open: &[Open]) -> &'a [String] {
    match open.last() {
        Some(o) => &stack[(o.depth + 1).min(stack.len())..],
        None => &[],
    }
}

fn start(
    name: &str,
    stack: &[String],
    open: &mut Vec<Open>,
    container: &mut Option<usize>,
    containers: &mut usize,
) {
    let parent = stack.last().map(String::as_str);
    if name == "Контейнер" && open.is_empty() {
        *container = Some(*containers);
        *containers += 1;
        return;
    }
    let new_doc = (name == "Документ" && open.is_empty())
        || (name == "ПодчиненныйДокумент"
            && parent == Some("ПодчиненныеДокументы")
            && !open.is_empty());
    if new_doc {
        open.push(Open {
            depth: stack.len(),
            doc: Document {
                container: *container,
                ..Document::default()
            },
            requisite: (None, None),
            item_requisite: (None, None),
        });
        return;
    }
    let Some(o) = open.last_mut() else { return };
    let r: Vec<&str> = stack[(o.depth + 1).min(stack.len())..]
        .iter()
        .map(String::as_str)
        .chain(std::iter::once(name))
        .collect();
    match r.as_slice() {
        ["Контрагенты", "Контрагент"] => {
            o.doc.counterparties.push(Counterparty::default())
        }
        ["Товары", "Товар"] => o.doc.items.push(Item::default()),
        ["ЗначенияРеквизитов", "ЗначениеРеквизита"] | ["ЗначениеРеквизита"] => {
            o.requisite = (None, None)
        }
        ["Товары", "Товар", "ЗначенияРеквизитов", "ЗначениеРеквизита"] => {
            o.item_requisite = (None, None)
        }
        _ => {}
    }
}

fn end(
    stack: &mut Vec<String>,
    open: &mut Vec<Open>,
    exchange: &mut Exchange,
    container: &mut Option<usize>,
    text: &str,
) {
    let closing_doc = open.last().is_some_and(|o| o.depth + 1 == stack.len());
    if closing_doc {
        stack.pop();
        if let Some(done) = open.pop() {
            match open.last_mut() {
                Some(parent) => parent.doc.subordinates.push(done.doc),
                None => exchange.documents.push(done.doc),
            }
        }
        return;
    }
    if open.is_empty() {
        if stack.last().map(String::as_str) == Some("Контейнер") {
            *container = None;
        }
        stack.pop();
        return;
    }
    let r: Vec<&str> = rel(stack, open).iter().map(String::as_str).collect();
    if let Some(o) = open.last_mut() {
        apply(o, &r, text);
    }
    stack.pop();
}

fn apply(o: &mut Open, path: &[&str], text: &str) {
    let d = &mut o.doc;
    match path {
        ["Ид"] => set(&mut d.id, text),
        ["Номер"] => set(&mut d.number, text),
        ["НомерВерсии"] => set(&mut d.version, text),
        ["Дата"] => set(&mut d.date, text),
        ["Время"] => set(&mut d.time, text),
        ["ХозОперация"] => d.operation = Operation::parse(text),
        ["Роль"] => set(&mut d.role, text),
        ["Валюта"] => set(&mut d.currency, text),
        ["Курс"] => set(&mut d.rate, text),
        ["Сумма"] => match parse_sum(text) {
            Ok(v) => d.amount = Some(v),
            Err(e) if !text.trim().is_empty() => d.problems.push(format!("Сумма: {e}")),
            Err(_) => {}
        },
        ["Основание"] => set(&mut d.base, text),
        ["Комментарий"] => set(&mut d.comment, text),
        ["ПометкаУдаления"] => d.deletion_mark = text.trim() == "true",
        ["Номер1С"] => set(&mut d.number_1c, text),
        ["Дата1С"] => set(&mut d.date_1c, text),
        ["Контрагенты", "Контрагент", field]
        | ["Контрагенты", "Контрагент", field, "Представление"] => {
            if let Some(c) = d.counterparties.last_mut() {
                let slot = match (*field, path.len()) {
                    ("Ид", 3) => &mut c.id,
                    ("Наименование", 3) => &mut c.name,
                    ("ПолноеНаименование", 3) | ("ОфициальноеНаименование", 3) => {
                        &mut c.full_name
                    }
                    ("Роль", 3) => &mut c.role,
                    ("ИНН", 3) => &mut c.inn,
                    ("КПП", 3) => &mut c.kpp,
                    ("АдресРегистрации", 4) | ("Адрес", 4) => &mut c.address,
                    _ => return,
                };
                if slot.is_none() {
                    set(slot, text);
                }
            }
        }
        ["Товары", "Товар", field] => {
            if let Some(item) = d.items.last_mut() {
                match *field {
                    "Ид" => set(&mut item.id, text),
                    "Наименование" => set(&mut item.name, text),
                    "Количество" => set(&mut item.quantity, text),
                    "ЦенаЗаЕдиницу" => match parse_price(text) {
                        Ok(v) => item.price = Some(v),
                        Err(e) => d.problems.push(format!("ЦенаЗаЕдиницу: {e}")),
                    },
                    "Сумма" => match parse_price(text) {
                        Ok(v) => item.amount = Some(v),
                        Err(e) => d.problems.push(format!("Товар/Сумма: {e}")),
                    },
                    _ => {}
                }
            }
        }
        ["Товары", "Товар", "ЗначенияРеквизитов", "ЗначениеРеквизита", field] => {
            match *field {
                "Наименование" => o.item_requisite.0 = Some(text.trim().to_owned()),
                "Значение" if o.item_requisite.1.is_none() => {
                    o.item_requisite.1 = Some(text.trim().to_owned())
                }
                _ => {}
            }
        }
        ["Товары", "Товар", "ЗначенияРеквизитов", "ЗначениеРеквизита"] => {
            if let (Some(n), Some(item)) = (o.item_requisite.0.take(), d.items.last_mut()) {
                item.requisites
                    .push((n, o.item_requisite.1.take().unwrap_or_default()));
            }
        }
        // Bitrix reads only the first Значение; some files omit the ЗначенияРеквизитов wrapper.
        ["ЗначенияРеквизитов", "ЗначениеРеквизита", field] | ["ЗначениеРеквизита", field] => {
            match *field {
                "Наименование" => o.requisite.0 = Some(text.trim().to_owned()),
                "Значение" if o.requisite.1.is_none() => {
                    o.requisite.1 = Some(text.trim().to_owned())
                }
                _ => {}
            }
        }
        ["ЗначенияРеквизитов", "ЗначениеРеквизита"] | ["ЗначениеРеквизита"] => {
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
            Err(ReadError::Truncated("Документ".into()))
        );
        assert!(matches!(
            read(b"<a><b></a>"),
            Err(ReadError::NotCommerceMl(_) | ReadError::Malformed { .. })
        ));
        let mismatched =
            "<КоммерческаяИнформация><Документ></Ид></Документ></КоммерческаяИнформация>";
        assert!(matches!(
            read(mismatched.as_bytes()),
            Err(ReadError::Malformed { .. })
        ));
        assert_eq!(read(b""), Err(ReadError::Empty));
        assert!(matches!(read(b"\xff\xfe\x00"), Err(ReadError::Encoding(_))));
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
