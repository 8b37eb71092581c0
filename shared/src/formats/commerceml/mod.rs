//! CommerceML 2.x / 3.1 documents of the 1C "sale" exchange: the model, a streaming reader and the `mode=query`
//! writer. Element names are matched by local name, whatever the namespace (none, `urn:1C.ru:commerceml_2`,
//! `…_210`, `…_3`).

pub mod enrich;
pub mod read;
pub mod synthetic;
pub mod text;
pub mod write;

pub use read::{read, CommerceMlError};

/// What `ХозОперация` says a document is. Bitrix understands these five; everything else is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    /// `Заказ товара`
    Order,
    /// `Выплата безналичных денег`
    PaymentCashless,
    /// `Выплата наличных денег`
    PaymentCash,
    /// `Эквайринговая операция`
    PaymentCard,
    /// `Отпуск товара`
    Shipment,
    Other(String),
}

impl Operation {
    pub fn parse(text: &str) -> Self {
        match text.trim() {
            "Заказ товара" => Operation::Order,
            "Выплата безналичных денег" => Operation::PaymentCashless,
            "Выплата наличных денег" => Operation::PaymentCash,
            "Эквайринговая операция" => Operation::PaymentCard,
            "Отпуск товара" => Operation::Shipment,
            other => Operation::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Operation::Order => "Заказ товара",
            Operation::PaymentCashless => "Выплата безналичных денег",
            Operation::PaymentCash => "Выплата наличных денег",
            Operation::PaymentCard => "Эквайринговая операция",
            Operation::Shipment => "Отпуск товара",
            Operation::Other(s) => s,
        }
    }

    pub fn is_payment(&self) -> bool {
        matches!(
            self,
            Operation::PaymentCashless | Operation::PaymentCash | Operation::PaymentCard
        )
    }
}

impl Default for Operation {
    fn default() -> Self {
        Operation::Other(String::new())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counterparty {
    pub id: Option<String>,
    pub name: Option<String>,
    pub full_name: Option<String>,
    pub role: Option<String>,
    pub inn: Option<String>,
    pub kpp: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Item {
    pub id: Option<String>,
    pub name: Option<String>,
    /// Price per unit in minor units (rounded to kopecks when 1C sends more decimals).
    pub price: Option<i64>,
    /// Quantity as written (`1`, `2.000`).
    pub quantity: Option<String>,
    pub amount: Option<i64>,
    pub requisites: Vec<(String, String)>,
}

impl Item {
    pub fn requisite(&self, name: &str) -> Option<&str> {
        find(&self.requisites, name)
    }
}

fn find<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
}

/// One `Документ` (or a 2.10 `ПодчиненныйДокумент`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// `Ид`: the 1C GUID (or the site id in site exports).
    pub id: Option<String>,
    pub number: Option<String>,
    /// `НомерВерсии`: changes whenever 1C changes the document.
    pub version: Option<String>,
    pub date: Option<String>,
    pub time: Option<String>,
    pub operation: Operation,
    pub role: Option<String>,
    pub currency: Option<String>,
    pub rate: Option<String>,
    /// `Сумма` in minor units.
    pub amount: Option<i64>,
    /// `Основание`: the order number a payment or shipment is based on.
    pub base: Option<String>,
    pub comment: Option<String>,
    /// Element `<ПометкаУдаления>`.
    pub deletion_mark: bool,
    pub number_1c: Option<String>,
    pub date_1c: Option<String>,
    pub counterparties: Vec<Counterparty>,
    pub items: Vec<Item>,
    /// `ЗначенияРеквизитов`, in file order, first `Значение` of each.
    pub requisites: Vec<(String, String)>,
    /// 2.10 `ПодчиненныеДокументы`: payments and shipments entered on the basis of this order.
    pub subordinates: Vec<Document>,
    /// CML 3.1: index of the `Контейнер` the document came in.
    pub container: Option<usize>,
    /// What could not be read; a document with problems is kept, never silently dropped.
    pub problems: Vec<String>,
}

/// Booleans count only when exactly `true` (as Bitrix reads them); 1C's Russian `Да` is accepted too.
fn is_true(v: Option<&str>) -> bool {
    matches!(v.map(str::trim), Some("true" | "Да" | "да"))
}

impl Document {
    pub fn requisite(&self, name: &str) -> Option<&str> {
        find(&self.requisites, name)
    }

    /// `Дата оплаты по 1С` when it is a real date (1C sends a lone `T` for "empty").
    pub fn paid_date_1c(&self) -> Option<&str> {
        self.requisite("Дата оплаты по 1С").filter(|d| d.len() > 1)
    }

    /// 1C says the order (or this payment) is paid.
    pub fn paid_per_1c(&self) -> bool {
        self.paid_date_1c().is_some() || is_true(self.requisite("Оплачен"))
    }

    pub fn payment_number_1c(&self) -> Option<&str> {
        self.requisite("Номер оплаты по 1С")
            .filter(|n| !n.is_empty())
    }

    pub fn cancelled(&self) -> bool {
        self.deletion_mark
            || is_true(self.requisite("Отменен"))
            || is_true(self.requisite("ПометкаУдаления"))
    }

    /// A payment document that returns money (`ПризнакВозврата`; the site-side spelling is accepted too).
    pub fn is_return(&self) -> bool {
        is_true(self.requisite("ПризнакВозврата")) || is_true(self.requisite("Признак возврата"))
    }

    pub fn return_reason(&self) -> Option<&str> {
        self.requisite("Причина к Возврату")
            .or_else(|| self.requisite("Причина к возврату"))
            .filter(|r| !r.is_empty())
    }

    /// Site-side "paid" (`Заказ оплачен`), as our own and Bitrix's `mode=query` write it.
    pub fn paid_per_site(&self) -> bool {
        is_true(self.requisite("Заказ оплачен"))
    }

    pub fn status_id(&self) -> Option<&str> {
        self.requisite("Статуса заказа ИД")
            .filter(|s| !s.is_empty())
    }

    pub fn posted(&self) -> bool {
        is_true(self.requisite("Проведен"))
    }

    pub fn buyer(&self) -> Option<&Counterparty> {
        self.counterparties
            .iter()
            .find(|c| c.role.as_deref() == Some("Покупатель"))
            .or_else(|| self.counterparties.first())
    }
}

/// A whole `КоммерческаяИнформация`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    pub schema_version: Option<String>,
    pub generated_at: Option<String>,
    pub documents: Vec<Document>,
}

/// Schema versions we write for `mode=query`, as 1C asked at `init`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SchemaVersion {
    /// 2.03–2.09: payment state as order-level requisites.
    V2 { minor: u8 },
    /// 2.10: also payment documents under `ПодчиненныеДокументы`.
    V210,
    /// CML 3.1: `Контейнер` with the order and its payment documents.
    V31,
}

impl SchemaVersion {
    /// From 1C's `version` parameter. Unknown or absent → Bitrix's default 2.05.
    pub fn parse(text: Option<&str>) -> Self {
        let Some(t) = text.map(str::trim) else {
            return SchemaVersion::V2 { minor: 5 };
        };
        let mut parts = t.splitn(2, '.');
        let major = parts.next().and_then(|m| m.parse::<u8>().ok());
        let minor_text = parts.next().unwrap_or("0");
        let minor = minor_text.parse::<u8>().ok();
        match (major, minor) {
            (Some(3), _) => SchemaVersion::V31,
            // Bitrix compares numerically: "2.1" is 2.10.
            (Some(2), Some(m)) if (minor_text.len() == 2 && m >= 10) || minor_text == "1" => {
                SchemaVersion::V210
            }
            (Some(2), Some(m)) if m >= 3 => SchemaVersion::V2 { minor: m.min(9) },
            _ => SchemaVersion::V2 { minor: 5 },
        }
    }

    pub fn as_str(self) -> String {
        match self {
            SchemaVersion::V2 { minor } => format!("2.{minor:02}"),
            SchemaVersion::V210 => "2.10".into(),
            SchemaVersion::V31 => "3.1".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions_from_1c() {
        assert_eq!(SchemaVersion::parse(None), SchemaVersion::V2 { minor: 5 });
        assert_eq!(
            SchemaVersion::parse(Some("2.08")),
            SchemaVersion::V2 { minor: 8 }
        );
        assert_eq!(SchemaVersion::parse(Some("2.10")), SchemaVersion::V210);
        assert_eq!(SchemaVersion::parse(Some("3.1")), SchemaVersion::V31);
        assert_eq!(
            SchemaVersion::parse(Some("junk")),
            SchemaVersion::V2 { minor: 5 }
        );
        assert_eq!(SchemaVersion::V2 { minor: 3 }.as_str(), "2.03");
    }
}
