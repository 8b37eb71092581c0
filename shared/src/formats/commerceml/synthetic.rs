//! Synthetic 1C uploads for benchmarks and load tests: orders with buyers, goods and requisites, and a payment
//! document for every other order.

use std::fmt::Write as _;

/// A 2.08-style 1C → site file with `orders` orders (UTF-8 with BOM, like 1C writes).
pub fn generate(orders: usize) -> String {
    let mut out = String::with_capacity(orders * 2600);
    out.push('\u{feff}');
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<КоммерческаяИнформация xmlns=\"urn:1C.ru:commerceml_210\" ВерсияСхемы=\"2.08\" ДатаФормирования=\"2026-11-27T12:00:00\">\n");
    for i in 0..orders {
        let n = 100_000 + i;
        let _ = write!(
            out,
            "  <Документ>\n    <Ид>{n:08x}-7149-11eb-80c0-7085c2ddb497</Ид>\n    <НомерВерсии>AAAAEAAAAAA=</НомерВерсии>\n    <Номер>{n}</Номер>\n    <Дата>2026-11-27</Дата>\n    <ХозОперация>Заказ товара</ХозОперация>\n    <Роль>Продавец</Роль>\n    <Валюта>руб</Валюта>\n    <Курс>1</Курс>\n    <Сумма>{}.{:02}</Сумма>\n    <Контрагенты>\n      <Контрагент>\n        <Ид>{n}#buyer#Иванов Иван</Ид>\n        <Наименование>ООО «Ромашка-{n}»</Наименование>\n        <Роль>Покупатель</Роль>\n        <ПолноеНаименование>Общество с ограниченной ответственностью «Ромашка-{n}»</ПолноеНаименование>\n        <ИНН>77{n:08}</ИНН>\n      </Контрагент>\n    </Контрагенты>\n    <Время>9:49:02</Время>\n    <Товары>\n",
            1000 + i % 9000,
            i % 100
        );
        for k in 0..3 {
            let _ = write!(
                out,
                "      <Товар>\n        <Ид>sku-{k}-{}</Ид>\n        <Наименование>Товар №{k} &quot;модель {}&quot;</Наименование>\n        <ЦенаЗаЕдиницу>{}.5000</ЦенаЗаЕдиницу>\n        <Количество>{}</Количество>\n        <Сумма>{}.00</Сумма>\n      </Товар>\n",
                i % 500,
                i % 37,
                100 + k,
                k + 1,
                (100 + k) * (k + 1)
            );
        }
        out.push_str("    </Товары>\n    <ЗначенияРеквизитов>\n");
        let paid = i % 3 == 0;
        for (name, value) in [
            ("Проведен", "true".to_owned()),
            ("Оплачен", paid.to_string()),
            (
                "Дата оплаты по 1С",
                if paid {
                    "2026-11-27T9:49:02".to_owned()
                } else {
                    "T".to_owned()
                },
            ),
            ("Номер оплаты по 1С", format!("ТДЦУ-{n:06}")),
            ("Статуса заказа ИД", "P".to_owned()),
        ] {
            let _ = write!(
                out,
                "      <ЗначениеРеквизита>\n        <Наименование>{name}</Наименование>\n        <Значение>{value}</Значение>\n      </ЗначениеРеквизита>\n"
            );
        }
        out.push_str("    </ЗначенияРеквизитов>\n  </Документ>\n");
        if i % 2 == 1 {
            let _ = write!(
                out,
                "  <Документ>\n    <Ид>pay-{n}</Ид>\n    <Номер>ПП-{n}</Номер>\n    <Дата>2026-11-27</Дата>\n    <ХозОперация>Выплата безналичных денег</ХозОперация>\n    <Роль>Продавец</Роль>\n    <Валюта>руб</Валюта>\n    <Курс>1</Курс>\n    <Сумма>{},00</Сумма>\n    <Основание>{n}</Основание>\n    <ЗначенияРеквизитов>\n      <ЗначениеРеквизита>\n        <Наименование>Оплачен</Наименование>\n        <Значение>true</Значение>\n      </ЗначениеРеквизита>\n      <ЗначениеРеквизита>\n        <Наименование>ПризнакВозврата</Наименование>\n        <Значение>{}</Значение>\n      </ЗначениеРеквизита>\n    </ЗначенияРеквизитов>\n  </Документ>\n",
                300 + i % 700,
                i % 10 == 9
            );
        }
    }
    out.push_str("</КоммерческаяИнформация>\n");
    out
}

/// The extraction both the Rust reader and the Python ElementTree script perform: per document its id, amount,
/// "paid per 1C" and return flag. Returns (documents, paid documents, returns, sum of amounts).
pub fn extract(x: &super::Exchange) -> (usize, usize, usize, i64) {
    x.documents.iter().fold((0, 0, 0, 0), |(d, p, r, s), doc| {
        (
            d + 1,
            p + usize::from(doc.paid_per_1c()),
            r + usize::from(doc.is_return()),
            s + doc.amount.unwrap_or(0),
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn synthetic_file_reads_back() {
        let x = super::super::read(super::generate(30).as_bytes()).unwrap();
        assert_eq!(super::extract(&x).0, 45);
        assert!(x.documents.iter().all(|d| d.problems.is_empty()));
    }
}
