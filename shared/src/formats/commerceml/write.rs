//! The site's `mode=query` answer: complete order documents with the ledger's payment state, in the schema version
//! 1C asked for, shaped like 1C-Bitrix's own export (root `Формат…` attributes, site-side requisite names).

use std::fmt::Write as _;

use quick_xml::escape::escape;

use super::{Counterparty, Item, Operation, SchemaVersion};
use crate::domain::money::format_minor;

/// A payment (or refund) of the order, as a document 1C can post (2.10 and 3.1 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPayment {
    pub id: String,
    pub number: String,
    /// `YYYY-MM-DDTHH:MM:SS`
    pub datetime: String,
    pub operation: Operation,
    pub amount: i64,
    pub is_return: bool,
    pub return_reason: Option<String>,
    pub method: Option<String>,
    /// The payment method the acquirer reported, in words (`СБП`, `Банковская карта`, `SberPay`): the requisite
    /// `Вид оплаты`. Bitrix's own export has no such requisite (its `Метод оплаты` is the pay system's name, and
    /// nothing in it tells SBP from a card: `sale/general/export.php`, `SALE_EXPORT_PAY_SYSTEM`), so it is an
    /// addition 1C reads when its exchange settings map it, and ignores otherwise.
    pub pay_kind: Option<String>,
    /// Executed (`Оплачено`); a return the shop still has to pay by transfer is not.
    pub done: bool,
}

/// An order as the site tells 1C about it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QueryOrder {
    pub id: String,
    pub number: String,
    /// `YYYY-MM-DDTHH:MM:SS`
    pub created: String,
    /// Currency as 1C knows it (Bitrix writes `руб`).
    pub currency: String,
    pub total: i64,
    pub comment: Option<String>,
    pub buyer: Option<Counterparty>,
    pub items: Vec<Item>,
    /// Delivery as a service row (`ORDER_DELIVERY`), with its price.
    pub delivery: Option<(String, i64)>,
    pub cancelled: bool,
    /// Site status id and name, e.g. `("P", "Оплачен, формируется к отправке")`.
    pub status: Option<(String, String)>,
    pub paid: bool,
    /// `YYYY-MM-DDTHH:MM:SS`
    pub paid_at: Option<String>,
    pub payment_document: Option<String>,
    pub payment_method: Option<String>,
    /// The payment method of the order's money in words (`СБП`), as [`QueryPayment::pay_kind`].
    pub pay_kind: Option<String>,
    /// Kept so far (paid − refunded): the seed's PAID_AMOUNT.
    pub paid_amount: i64,
    pub payments: Vec<QueryPayment>,
    /// Refunds that failed or were refused, in words, for the accountant (`Статус возврата`).
    pub refund_notes: Vec<String>,
}

fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    escape(s)
}

fn leaf(out: &mut String, indent: usize, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "{:indent$}<{name}>{}</{name}>",
        "",
        esc(value),
        indent = indent
    );
}

fn requisites(out: &mut String, indent: usize, pairs: &[(&str, String)]) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(out, "{:indent$}<ЗначенияРеквизитов>", "", indent = indent);
    for (name, value) in pairs {
        let _ = writeln!(
            out,
            "{:indent$}<ЗначениеРеквизита>",
            "",
            indent = indent + 2
        );
        leaf(out, indent + 4, "Наименование", name);
        leaf(out, indent + 4, "Значение", value);
        let _ = writeln!(
            out,
            "{:indent$}</ЗначениеРеквизита>",
            "",
            indent = indent + 2
        );
    }
    let _ = writeln!(out, "{:indent$}</ЗначенияРеквизитов>", "", indent = indent);
}

fn bool_str(b: bool) -> String {
    if b { "true" } else { "false" }.to_owned()
}

/// Site-side date-time (`2007-10-16 15:44:47`), as Bitrix writes `Дата оплаты`.
pub fn site_datetime(iso: &str) -> String {
    iso.replacen('T', " ", 1)
}

fn split_datetime(iso: &str) -> (&str, &str) {
    iso.split_once('T').unwrap_or((iso, "00:00:00"))
}

fn counterparty(out: &mut String, indent: usize, c: &Counterparty) {
    let _ = writeln!(out, "{:indent$}<Контрагенты>", "", indent = indent);
    let _ = writeln!(out, "{:indent$}<Контрагент>", "", indent = indent + 2);
    let i = indent + 4;
    if let Some(v) = &c.id {
        leaf(out, i, "Ид", v);
    }
    if let Some(v) = &c.name {
        leaf(out, i, "Наименование", v);
    }
    leaf(out, i, "Роль", c.role.as_deref().unwrap_or("Покупатель"));
    if let Some(v) = c.full_name.as_ref().or(c.name.as_ref()) {
        leaf(out, i, "ПолноеНаименование", v);
    }
    if let Some(v) = &c.inn {
        leaf(out, i, "ИНН", v);
    }
    if let Some(v) = &c.kpp {
        leaf(out, i, "КПП", v);
    }
    if let Some(v) = &c.address {
        let _ = writeln!(out, "{:i$}<АдресРегистрации>", "", i = i);
        leaf(out, i + 2, "Представление", v);
        let _ = writeln!(out, "{:i$}</АдресРегистрации>", "", i = i);
    }
    let _ = writeln!(out, "{:indent$}</Контрагент>", "", indent = indent + 2);
    let _ = writeln!(out, "{:indent$}</Контрагенты>", "", indent = indent);
}

fn item(out: &mut String, indent: usize, it: &Item, service: bool) {
    let _ = writeln!(out, "{:indent$}<Товар>", "", indent = indent);
    let i = indent + 2;
    if let Some(v) = &it.id {
        leaf(out, i, "Ид", v);
    }
    if let Some(v) = &it.name {
        leaf(out, i, "Наименование", v);
    }
    let _ = writeln!(out, "{:i$}<БазоваяЕдиница Код=\"796\" НаименованиеПолное=\"Штука\" МеждународноеСокращение=\"PCE\">шт</БазоваяЕдиница>", "", i = i);
    if let Some(v) = it.price {
        leaf(out, i, "ЦенаЗаЕдиницу", &format_minor(v));
    }
    leaf(out, i, "Количество", it.quantity.as_deref().unwrap_or("1"));
    if let Some(v) = it.amount {
        leaf(out, i, "Сумма", &format_minor(v));
    }
    let mut reqs: Vec<(&str, String)> = vec![
        (
            "ВидНоменклатуры",
            if service {
                "Услуга"
            } else {
                "Товар"
            }
            .to_owned(),
        ),
        (
            "ТипНоменклатуры",
            if service {
                "Услуга"
            } else {
                "Товар"
            }
            .to_owned(),
        ),
    ];
    reqs.extend(it.requisites.iter().map(|(n, v)| (n.as_str(), v.clone())));
    requisites(out, i, &reqs);
    let _ = writeln!(out, "{:indent$}</Товар>", "", indent = indent);
}

pub fn payment_doc(
    out: &mut String,
    indent: usize,
    tag: &str,
    p: &QueryPayment,
    order: &QueryOrder,
) {
    let _ = writeln!(out, "{:indent$}<{tag}>", "", indent = indent);
    let i = indent + 2;
    let (date, time) = split_datetime(&p.datetime);
    leaf(out, i, "Ид", &p.id);
    leaf(out, i, "Номер", &p.number);
    leaf(out, i, "Дата", date);
    leaf(out, i, "ХозОперация", p.operation.as_str());
    leaf(out, i, "Роль", "Продавец");
    leaf(out, i, "Валюта", &order.currency);
    leaf(out, i, "Курс", "1");
    leaf(out, i, "Сумма", &format_minor(p.amount));
    leaf(out, i, "Время", time);
    leaf(out, i, "Основание", &order.number);
    let mut reqs: Vec<(&str, String)> = vec![
        ("Оплачено", bool_str(p.done)),
        (
            "Дата оплаты",
            if p.done {
                site_datetime(&p.datetime)
            } else {
                String::new()
            },
        ),
        ("Признак возврата", bool_str(p.is_return)),
        ("Отменен", bool_str(false)),
    ];
    if let Some(r) = &p.return_reason {
        reqs.push(("Причина к возврату", r.clone()));
    }
    if let Some(m) = &p.method {
        reqs.push(("Метод оплаты", m.clone()));
    }
    if let Some(k) = &p.pay_kind {
        reqs.push(("Вид оплаты", k.clone()));
    }
    requisites(out, i, &reqs);
    let _ = writeln!(out, "{:indent$}</{tag}>", "", indent = indent);
}

fn order_doc(out: &mut String, indent: usize, o: &QueryOrder, version: SchemaVersion) {
    let _ = writeln!(out, "{:indent$}<Документ>", "", indent = indent);
    let i = indent + 2;
    let (date, time) = split_datetime(&o.created);
    leaf(out, i, "Ид", &o.id);
    leaf(out, i, "Номер", &o.number);
    leaf(out, i, "Дата", date);
    leaf(out, i, "ХозОперация", Operation::Order.as_str());
    leaf(out, i, "Роль", "Продавец");
    leaf(out, i, "Валюта", &o.currency);
    leaf(out, i, "Курс", "1");
    leaf(out, i, "Сумма", &format_minor(o.total));
    if let Some(buyer) = &o.buyer {
        counterparty(out, i, buyer);
    }
    leaf(out, i, "Время", time);
    if let Some(c) = &o.comment {
        leaf(out, i, "Комментарий", c);
    }
    if !o.items.is_empty() || o.delivery.is_some() {
        let _ = writeln!(out, "{:i$}<Товары>", "", i = i);
        for it in &o.items {
            item(out, i + 2, it, false);
        }
        if let Some((name, price)) = &o.delivery {
            let row = Item {
                id: Some("ORDER_DELIVERY".into()),
                name: Some(name.clone()),
                price: Some(*price),
                quantity: Some("1".into()),
                amount: Some(*price),
                requisites: Vec::new(),
            };
            item(out, i + 2, &row, true);
        }
        let _ = writeln!(out, "{:i$}</Товары>", "", i = i);
    }
    let mut reqs: Vec<(&str, String)> = Vec::new();
    if let Some(at) = &o.paid_at {
        reqs.push(("Дата оплаты", site_datetime(at)));
    }
    if let Some(n) = &o.payment_document {
        reqs.push(("Номер платежного документа", n.clone()));
    }
    if let Some(m) = &o.payment_method {
        reqs.push(("Метод оплаты", m.clone()));
    }
    if let Some(k) = &o.pay_kind {
        reqs.push(("Вид оплаты", k.clone()));
    }
    reqs.push(("Заказ оплачен", bool_str(o.paid)));
    reqs.push(("Сумма оплаты", format_minor(o.paid_amount)));
    reqs.push(("Отменен", bool_str(o.cancelled)));
    if let Some((id, name)) = &o.status {
        reqs.push(("Статус заказа", format!("[{id}] {name}")));
        reqs.push(("Статуса заказа ИД", id.clone()));
    }
    if !o.refund_notes.is_empty() {
        reqs.push(("Статус возврата", o.refund_notes.join("; ")));
    }
    requisites(out, i, &reqs);
    if version == SchemaVersion::V210 && !o.payments.is_empty() {
        let _ = writeln!(out, "{:i$}<ПодчиненныеДокументы>", "", i = i);
        for p in &o.payments {
            payment_doc(out, i + 2, "ПодчиненныйДокумент", p, o);
        }
        let _ = writeln!(out, "{:i$}</ПодчиненныеДокументы>", "", i = i);
    }
    let _ = writeln!(out, "{:indent$}</Документ>", "", indent = indent);
}

/// The whole `mode=query` document as text (declared windows-1251; encode with `text::to_windows_1251`).
pub fn write_query(orders: &[QueryOrder], version: SchemaVersion, generated_at: &str) -> String {
    let mut out = String::with_capacity(1024 + orders.len() * 2048);
    out.push_str("<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n");
    let ns = if version == SchemaVersion::V31 {
        " xmlns=\"urn:1C.ru:commerceml_3\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<КоммерческаяИнформация{ns} ВерсияСхемы=\"{}\" ДатаФормирования=\"{}\" ФорматДаты=\"ДФ=yyyy-MM-dd; ДЛФ=DT\" \
         ФорматВремени=\"ДФ=ЧЧ:мм:сс; ДЛФ=T\" РазделительДатаВремя=\"T\" ФорматСуммы=\"ЧЦ=18; ЧДЦ=2; ЧРД=.\" \
         ФорматКоличества=\"ЧЦ=18; ЧДЦ=2; ЧРД=.\">",
        version.as_str(),
        esc(generated_at)
    );
    for o in orders {
        if version == SchemaVersion::V31 {
            out.push_str("  <Контейнер>\n");
            order_doc(&mut out, 4, o, version);
            for p in &o.payments {
                payment_doc(&mut out, 4, "Документ", p, o);
            }
            out.push_str("  </Контейнер>\n");
        } else {
            order_doc(&mut out, 2, o, version);
        }
    }
    out.push_str("</КоммерческаяИнформация>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::commerceml::text::{parse_sum, to_windows_1251};
    use crate::formats::commerceml::{read, Document};

    fn order() -> QueryOrder {
        QueryOrder {
            id: "5001".into(),
            number: "5001".into(),
            created: "2026-11-27T10:15:00".into(),
            currency: "руб".into(),
            total: 500_000,
            comment: Some("Позвонить <до> 18:00 & не позже".into()),
            buyer: Some(Counterparty {
                id: Some("7#buyer#ООО Ромашка".into()),
                name: Some("ООО «Ромашка»".into()),
                inn: Some("7701234567".into()),
                address: Some("Москва, ул. Ленина, 1".into()),
                ..Counterparty::default()
            }),
            items: vec![Item {
                id: Some("sku-1".into()),
                name: Some("Чайник — «Электро» ✓".into()),
                price: Some(490_000),
                quantity: Some("1".into()),
                amount: Some(490_000),
                requisites: vec![],
            }],
            delivery: Some(("Курьер".into(), 10_000)),
            cancelled: false,
            status: Some(("P".into(), "Оплачен частично".into())),
            paid: false,
            paid_at: None,
            payment_document: None,
            payment_method: Some("T-Bank".into()),
            pay_kind: None,
            paid_amount: 100_000,
            payments: vec![
                QueryPayment {
                    id: "tbank#1#CONFIRMED".into(),
                    number: "1".into(),
                    datetime: "2026-11-27T10:20:00".into(),
                    operation: Operation::PaymentCard,
                    amount: 150_000,
                    is_return: false,
                    return_reason: None,
                    method: Some("T-Bank".into()),
                    pay_kind: None,
                    done: true,
                },
                QueryPayment {
                    id: "tbank#1#PARTIAL_REFUNDED#100000".into(),
                    number: "1-R1".into(),
                    datetime: "2026-11-27T12:00:00".into(),
                    operation: Operation::PaymentCard,
                    amount: 50_000,
                    is_return: true,
                    return_reason: Some("Возврат части".into()),
                    method: None,
                    pay_kind: None,
                    done: true,
                },
            ],
            refund_notes: Vec::new(),
        }
    }

    /// The payment state 1C would read from an order document we wrote.
    fn state(d: &Document) -> (bool, i64, bool, Option<String>) {
        (
            d.paid_per_site(),
            d.requisite("Сумма оплаты")
                .and_then(|v| parse_sum(v).ok())
                .unwrap_or(-1),
            d.cancelled(),
            d.status_id().map(str::to_owned),
        )
    }

    #[test]
    fn what_query_emits_reads_back_to_the_same_payment_state_in_every_version() {
        let o = order();
        for v in ["2.03", "2.05", "2.08", "2.09", "2.10", "3.1"] {
            let version = SchemaVersion::parse(Some(v));
            let bytes = to_windows_1251(&write_query(
                std::slice::from_ref(&o),
                version,
                "2026-11-28T00:00:00",
            ));
            let x = read(&bytes).unwrap_or_else(|e| panic!("{v}: {e}"));
            assert_eq!(x.schema_version.as_deref(), Some(version.as_str().as_str()));
            let doc = &x.documents[0];
            assert_eq!(doc.operation, Operation::Order);
            assert_eq!(
                (doc.id.as_deref(), doc.amount),
                (Some("5001"), Some(500_000)),
                "{v}"
            );
            assert_eq!(state(doc), (false, 100_000, false, Some("P".into())), "{v}");
            assert_eq!(doc.comment, o.comment, "{v}");
            assert_eq!(
                doc.buyer().and_then(|b| b.inn.clone()).as_deref(),
                Some("7701234567")
            );
            assert_eq!(doc.items.len(), 2, "{v}: goods and the delivery row");
            assert_eq!(doc.items[1].id.as_deref(), Some("ORDER_DELIVERY"));
            let payments: Vec<&Document> = match version {
                SchemaVersion::V210 => doc.subordinates.iter().collect(),
                SchemaVersion::V31 => x.documents[1..]
                    .iter()
                    .filter(|d| d.container == doc.container)
                    .collect(),
                SchemaVersion::V2 { .. } => vec![],
            };
            if matches!(version, SchemaVersion::V2 { .. }) {
                assert_eq!(
                    x.documents.len(),
                    1,
                    "{v}: payment state travels as order requisites only"
                );
                continue;
            }
            let seen: Vec<(i64, bool, Option<&str>)> = payments
                .iter()
                .map(|p| (p.amount.unwrap(), p.is_return(), p.base.as_deref()))
                .collect();
            assert_eq!(
                seen,
                vec![(150_000, false, Some("5001")), (50_000, true, Some("5001"))],
                "{v}"
            );
            assert_eq!(payments[1].return_reason(), Some("Возврат части"));
        }
    }

    #[test]
    fn a_payment_names_its_method_as_a_requisite_1c_can_map() {
        let mut o = order();
        o.payments[0].pay_kind = Some("СБП".into());
        for v in ["2.10", "3.1"] {
            let xml = write_query(
                &[o.clone()],
                SchemaVersion::parse(Some(v)),
                "2026-11-27T12:00:00",
            );
            assert!(
                xml.contains("<Наименование>Вид оплаты</Наименование>")
                    && xml.contains("<Значение>СБП</Значение>"),
                "{v}: {xml}"
            );
            assert_eq!(
                xml.matches("Вид оплаты").count(),
                1,
                "only the paid one says it"
            );
            assert!(
                xml.contains("Эквайринговая операция"),
                "still an acquirer's operation"
            );
        }
        // Before 2.10 there are no payment documents: the order itself says it.
        o.pay_kind = Some("СБП".into());
        let xml = write_query(
            &[o],
            SchemaVersion::parse(Some("2.05")),
            "2026-11-27T12:00:00",
        );
        assert_eq!(
            xml.matches("<Наименование>Вид оплаты</Наименование>")
                .count(),
            1,
            "{xml}"
        );
    }

    #[test]
    fn paid_order_carries_the_site_requisites_and_no_orders_is_a_bare_root() {
        let mut o = order();
        o.paid = true;
        o.paid_at = Some("2026-11-27T10:20:00".into());
        o.payment_document = Some("tbank:1".into());
        let x = read(&to_windows_1251(&write_query(
            &[o],
            SchemaVersion::parse(Some("2.05")),
            "2026-11-28T00:00:00",
        )))
        .unwrap();
        let d = &x.documents[0];
        assert!(d.paid_per_site());
        assert_eq!(d.requisite("Дата оплаты"), Some("2026-11-27 10:20:00"));
        assert_eq!(d.requisite("Номер платежного документа"), Some("tbank:1"));
        let empty = write_query(&[], SchemaVersion::parse(None), "2026-11-28T00:00:00");
        assert_eq!(read(&to_windows_1251(&empty)).unwrap().documents.len(), 0);
        assert!(empty.starts_with("<?xml version=\"1.0\" encoding=\"windows-1251\"?>"));
    }
}
