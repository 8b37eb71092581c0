//! 1C-Bitrix REST (`sale` scope) as the store speaks it: the `{"result": …}` / `{"error": …}` envelope, orders,
//! payments and property values. Money fields are read from their JSON literals, never through `f64`; ids and flags
//! come as numbers or strings and are read leniently.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::domain::money::parse_minor;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitrixError {
    /// `QUERY_LIMIT_EXCEEDED` (503), `OPERATION_TIME_LIMIT` (429), other 5xx, timeouts: back off and retry.
    #[error("store busy or unreachable: {0}")]
    Busy(String),
    /// `NO_AUTH_FOUND`, `INVALID_CREDENTIALS`, `insufficient_scope`, … : the webhook is wrong; nothing will work.
    #[error("store refused the webhook: {0}")]
    Auth(String),
    /// The store refused this call (e.g. changing the sum of a paid payment).
    #[error("store refused {method}: {code} {description}")]
    Refused {
        method: String,
        code: String,
        description: String,
    },
    #[error("store answered something unreadable: {0}")]
    Malformed(String),
}

/// A successful answer: the `result` (raw, so money keeps its literal) and the paging keys.
#[derive(Debug)]
pub struct Answer {
    pub result: Box<RawValue>,
    pub total: Option<u64>,
    pub next: Option<u64>,
}

#[derive(Deserialize)]
struct Wire {
    #[serde(default)]
    result: Option<Box<RawValue>>,
    #[serde(default)]
    total: Option<u64>,
    #[serde(default)]
    next: Option<u64>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    error_description: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Classify an HTTP answer of `method`.
pub fn answer(method: &str, status: u16, body: &[u8]) -> Result<Answer, BitrixError> {
    let wire: Option<Wire> = serde_json::from_slice(body).ok();
    let code = wire
        .as_ref()
        .and_then(|w| w.error.as_ref())
        .map(text)
        .unwrap_or_default();
    let description = wire
        .as_ref()
        .and_then(|w| w.error_description.clone())
        .unwrap_or_default();
    let busy = status == 503 || status == 429 || status >= 500;
    if busy
        || matches!(
            code.as_str(),
            "QUERY_LIMIT_EXCEEDED" | "OPERATION_TIME_LIMIT" | "OVERLOAD_LIMIT"
        )
    {
        return Err(BitrixError::Busy(
            format!("HTTP {status} {code}").trim().to_owned(),
        ));
    }
    let auth_codes = [
        "NO_AUTH_FOUND",
        "INVALID_CREDENTIALS",
        "insufficient_scope",
        "expired_token",
        "ACCESS_DENIED",
        "user_access_error",
        "invalid_token",
    ];
    if status == 401 || status == 403 || auth_codes.contains(&code.as_str()) {
        return Err(BitrixError::Auth(
            format!("HTTP {status} {code} {description}")
                .trim()
                .to_owned(),
        ));
    }
    let Some(wire) = wire else {
        return Err(BitrixError::Malformed(format!(
            "{method}: HTTP {status}, not JSON"
        )));
    };
    match (wire.result, wire.error) {
        (Some(result), None) if (200..300).contains(&status) => Ok(Answer {
            result,
            total: wire.total,
            next: wire.next,
        }),
        _ => Err(BitrixError::Refused {
            method: method.to_owned(),
            code: if code.is_empty() {
                format!("HTTP {status}")
            } else {
                code
            },
            description,
        }),
    }
}

fn flag(v: &Option<Value>) -> bool {
    matches!(
        v.as_ref().map(text).as_deref(),
        Some("Y" | "y" | "true" | "1")
    )
}

fn money(field: &str, raw: Option<&RawValue>) -> Result<i64, BitrixError> {
    let literal = raw.map_or("0", RawValue::get).trim().trim_matches('"');
    parse_minor(if literal.is_empty() { "0" } else { literal })
        .map_err(|e| BitrixError::Malformed(format!("{field} {literal:?}: {e}")))
}

/// An order as `sale.order.list` / `sale.order.get` return it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOrder {
    pub id: String,
    pub account_number: Option<String>,
    /// Minor units.
    pub price: i64,
    pub currency: String,
    pub status_id: Option<String>,
    pub canceled: bool,
    pub payed: bool,
    pub date_insert: Option<String>,
    pub date_update: Option<String>,
    pub person_type_id: Option<String>,
    pub user_id: Option<String>,
    pub comment: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OrderWire<'a> {
    id: Value,
    #[serde(default)]
    account_number: Option<Value>,
    #[serde(default, borrow)]
    price: Option<&'a RawValue>,
    #[serde(default)]
    currency: Option<String>,
    #[serde(default)]
    status_id: Option<String>,
    #[serde(default)]
    canceled: Option<Value>,
    #[serde(default)]
    payed: Option<Value>,
    #[serde(default)]
    date_insert: Option<String>,
    #[serde(default)]
    date_update: Option<String>,
    #[serde(default)]
    person_type_id: Option<Value>,
    #[serde(default)]
    user_id: Option<Value>,
    #[serde(default)]
    user_description: Option<String>,
}

#[derive(Deserialize)]
struct OrdersWire<'a> {
    #[serde(borrow)]
    orders: Vec<OrderWire<'a>>,
}

impl TryFrom<OrderWire<'_>> for StoreOrder {
    type Error = BitrixError;
    fn try_from(o: OrderWire<'_>) -> Result<Self, BitrixError> {
        let id = text(&o.id);
        if id.is_empty() {
            return Err(BitrixError::Malformed("order without id".into()));
        }
        Ok(StoreOrder {
            price: money(&format!("order {id} price"), o.price)?,
            id,
            account_number: o
                .account_number
                .as_ref()
                .map(text)
                .filter(|s| !s.is_empty()),
            currency: o.currency.unwrap_or_else(|| "RUB".into()),
            status_id: o.status_id,
            canceled: flag(&o.canceled),
            payed: flag(&o.payed),
            date_insert: o.date_insert,
            date_update: o.date_update,
            person_type_id: o.person_type_id.as_ref().map(text),
            user_id: o.user_id.as_ref().map(text),
            comment: o.user_description.filter(|c| !c.trim().is_empty()),
        })
    }
}

/// `result.orders[]` of `sale.order.list`.
pub fn orders(result: &RawValue) -> Result<Vec<StoreOrder>, BitrixError> {
    let wire: OrdersWire<'_> = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.order.list: {e}")))?;
    wire.orders.into_iter().map(StoreOrder::try_from).collect()
}

/// A payment of the store's order (`sale.payment.list` / `add` / `update`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePayment {
    pub id: String,
    pub order_id: String,
    pub paid: bool,
    pub sum: i64,
    pub pay_system_id: Option<String>,
    pub xml_id: Option<String>,
    pub is_return: bool,
    /// `accountNumber`: `<order account number>/<n>` (`392/1`).
    pub account_number: Option<String>,
    /// `psInvoiceId`: the acquirer's payment id the store's handler recorded (T-Bank `PaymentId`, Sber `mdOrder`,
    /// YooKassa payment id).
    pub ps_invoice_id: Option<String>,
    /// `paySystemName` (`sale.order.get` only).
    pub pay_system_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentWire<'a> {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    order_id: Option<Value>,
    #[serde(default)]
    paid: Option<Value>,
    #[serde(default, borrow)]
    sum: Option<&'a RawValue>,
    #[serde(default)]
    pay_system_id: Option<Value>,
    #[serde(default)]
    xml_id: Option<Value>,
    #[serde(default)]
    is_return: Option<Value>,
    #[serde(default)]
    account_number: Option<Value>,
    #[serde(default)]
    ps_invoice_id: Option<Value>,
    #[serde(default)]
    pay_system_name: Option<String>,
}

impl TryFrom<PaymentWire<'_>> for StorePayment {
    type Error = BitrixError;
    fn try_from(p: PaymentWire<'_>) -> Result<Self, BitrixError> {
        let id = text(&p.id);
        Ok(StorePayment {
            sum: money(&format!("payment {id} sum"), p.sum)?,
            id,
            order_id: p.order_id.as_ref().map(text).unwrap_or_default(),
            paid: flag(&p.paid),
            pay_system_id: p.pay_system_id.as_ref().map(text).filter(|s| !s.is_empty()),
            xml_id: p.xml_id.as_ref().map(text).filter(|s| !s.is_empty()),
            is_return: flag(&p.is_return),
            account_number: p
                .account_number
                .as_ref()
                .map(text)
                .filter(|s| !s.is_empty()),
            ps_invoice_id: p
                .ps_invoice_id
                .as_ref()
                .map(text)
                .filter(|s| !s.trim().is_empty()),
            pay_system_name: p.pay_system_name.filter(|s| !s.trim().is_empty()),
        })
    }
}

#[derive(Deserialize)]
struct PaymentsWire<'a> {
    #[serde(borrow)]
    payments: Vec<PaymentWire<'a>>,
}

#[derive(Deserialize)]
struct OnePaymentWire<'a> {
    #[serde(borrow)]
    payment: PaymentWire<'a>,
}

/// `result.payments[]` of `sale.payment.list`.
pub fn payments(result: &RawValue) -> Result<Vec<StorePayment>, BitrixError> {
    let wire: PaymentsWire<'_> = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.payment.list: {e}")))?;
    wire.payments
        .into_iter()
        .map(StorePayment::try_from)
        .collect()
}

/// `result.payment` of `sale.payment.add` / `sale.payment.update`.
pub fn payment(result: &RawValue) -> Result<StorePayment, BitrixError> {
    let wire: OnePaymentWire<'_> = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.payment: {e}")))?;
    StorePayment::try_from(wire.payment)
}

/// An order property value (`sale.propertyvalue.list`); `value` is kept as JSON (files come as objects).
#[derive(Debug, Clone, PartialEq)]
pub struct PropertyValue {
    pub order_props_id: String,
    pub code: Option<String>,
    pub value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyValueWire {
    order_props_id: Value,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    value: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyValuesWire {
    property_values: Vec<PropertyValueWire>,
}

/// `result.propertyValues[]` of `sale.propertyvalue.list` / `modify`.
pub fn property_values(result: &RawValue) -> Result<Vec<PropertyValue>, BitrixError> {
    let wire: PropertyValuesWire = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.propertyvalue: {e}")))?;
    Ok(wire
        .property_values
        .into_iter()
        .map(|p| PropertyValue {
            order_props_id: text(&p.order_props_id),
            code: p.code,
            value: p.value,
        })
        .collect())
}

/// What `sale.order.get` adds to the list's fields: what a complete 1C order document needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOrderDetails {
    /// The basket: id, name, unit price, quantity as written, amount (minor units) and VAT rate.
    pub lines: Vec<crate::domain::order::OrderLine>,
    /// Delivery service name and price.
    pub delivery: Option<(String, i64)>,
    /// Order property values by code (buyer name, e-mail, phone, address, INN, …); file values are left out.
    pub properties: Vec<(String, String)>,
    pub pay_system: Option<String>,
    /// The order's payments (what acquirer references name: id, account number, pay system, `psInvoiceId`).
    pub payments: Vec<StorePayment>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BasketWire<'a> {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    xml_id: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    price: Option<&'a RawValue>,
    #[serde(default, borrow)]
    quantity: Option<&'a RawValue>,
    /// `vatRate`, "Ставка НДС" (`0.2`, `"0.20"`, or `null`), and `vatIncluded` (`Y`/`N`): the fields of
    /// `sale.basketitem.getFields` (https://dev.1c-bitrix.ru/rest_help/sale/basketitem/sale_basketitem_getFields.php).
    #[serde(default)]
    vat_rate: Option<Value>,
    #[serde(default)]
    vat_included: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ShipmentWire<'a> {
    #[serde(default, borrow)]
    price_delivery: Option<&'a RawValue>,
    #[serde(default)]
    delivery_name: Option<String>,
    #[serde(default)]
    system: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FullOrderWire<'a> {
    #[serde(default, borrow)]
    basket_items: Vec<BasketWire<'a>>,
    #[serde(default, borrow)]
    shipments: Vec<ShipmentWire<'a>>,
    #[serde(default)]
    property_values: Vec<PropertyValueWire>,
    #[serde(default, borrow)]
    payments: Vec<PaymentWire<'a>>,
}

#[derive(Deserialize)]
struct GetWire<'a> {
    #[serde(borrow)]
    order: FullOrderWire<'a>,
}

/// `price × quantity` exactly, for quantities with up to 3 decimals (half-up to the kopeck).
fn line_amount(price: i64, quantity: &str) -> Option<i64> {
    let (whole, frac) = quantity.split_once('.').unwrap_or((quantity, ""));
    let frac = frac.trim_end_matches('0');
    if frac.len() > 3 || whole.is_empty() && frac.is_empty() {
        return None;
    }
    let scaled: i128 = format!("{whole}{frac:0<3}").parse().ok()?;
    let value = i128::from(price) * scaled;
    i64::try_from((value + 500) / 1000).ok()
}

/// `result` of `sale.order.get`.
pub fn order_details(result: &RawValue) -> Result<StoreOrderDetails, BitrixError> {
    let wire: GetWire<'_> = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.order.get: {e}")))?;
    let o = wire.order;
    let mut lines = Vec::new();
    for b in o.basket_items {
        let price = money("basket price", b.price)?;
        let quantity = b
            .quantity
            .map_or("1", RawValue::get)
            .trim_matches('"')
            .to_owned();
        let amount = line_amount(price, &quantity)
            .ok_or_else(|| BitrixError::Malformed(format!("basket quantity {quantity:?}")))?;
        lines.push(crate::domain::order::OrderLine {
            id: b
                .xml_id
                .or(b.id)
                .as_ref()
                .map(text)
                .filter(|s| !s.is_empty()),
            name: b.name.unwrap_or_default(),
            price,
            quantity,
            amount,
            vat_rate: b
                .vat_rate
                .as_ref()
                .filter(|v| !v.is_null())
                .map(text)
                .filter(|s| !s.is_empty()),
            vat_included: b
                .vat_included
                .as_ref()
                .filter(|v| !v.is_null())
                .map(|_| flag(&b.vat_included)),
        });
    }
    let mut delivery = None;
    for sh in o.shipments.iter().filter(|s| !flag(&s.system)) {
        let price = money("priceDelivery", sh.price_delivery)?;
        delivery = Some((
            sh.delivery_name
                .clone()
                .unwrap_or_else(|| "Доставка".into()),
            price,
        ));
    }
    Ok(StoreOrderDetails {
        lines,
        delivery,
        properties: o
            .property_values
            .into_iter()
            .filter_map(|p| match (p.code, p.value) {
                (Some(code), Value::String(v)) if !v.trim().is_empty() => Some((code, v)),
                (Some(code), Value::Number(n)) => Some((code, n.to_string())),
                _ => None,
            })
            .collect(),
        payments: o
            .payments
            .into_iter()
            .map(StorePayment::try_from)
            .collect::<Result<Vec<_>, _>>()?,
        pay_system: None,
    })
    .map(|mut d| {
        d.pay_system = d.payments.iter().find_map(|p| p.pay_system_name.clone());
        // A payment without an id names nothing a reference could.
        d.payments.retain(|p| !p.id.is_empty());
        d
    })
}

/// Each command's result by its key, and each failed command's error.
pub type BatchResults = (
    std::collections::BTreeMap<String, Box<RawValue>>,
    Vec<String>,
);

/// `result` of `batch`: each command's result by its key, and each command's error.
pub fn batch_results(result: &RawValue) -> Result<BatchResults, BitrixError> {
    #[derive(Deserialize)]
    struct BatchWire {
        #[serde(default)]
        result: Option<std::collections::BTreeMap<String, Box<RawValue>>>,
        #[serde(default)]
        result_error: Option<Value>,
    }
    let wire: BatchWire = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("batch: {e}")))?;
    let errors = match wire.result_error {
        Some(Value::Object(m)) => m.into_iter().map(|(k, v)| format!("{k}: {v}")).collect(),
        _ => Vec::new(),
    };
    Ok((wire.result.unwrap_or_default(), errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_classified_as_the_reference_describes() {
        let ok = answer(
            "sale.order.list",
            200,
            br#"{"result":{"orders":[{"id":236,"accountNumber":"392","price":1480.5,"currency":"RUB","payed":"N","canceled":"N","statusId":"N","dateUpdate":"2026-11-28T10:00:00+03:00"}]},"next":50,"total":120,"time":{}}"#,
        )
        .unwrap();
        assert_eq!((ok.total, ok.next), (Some(120), Some(50)));
        let o = &orders(&ok.result).unwrap()[0];
        assert_eq!(
            (o.id.as_str(), o.price, o.account_number.as_deref()),
            ("236", 148_050, Some("392"))
        );
        assert!(!o.payed && !o.canceled);
        assert!(matches!(
            answer(
                "m",
                503,
                br#"{"error":"QUERY_LIMIT_EXCEEDED","error_description":"Too many requests"}"#
            ),
            Err(BitrixError::Busy(_))
        ));
        assert!(matches!(
            answer("m", 429, br#"{"error":"OPERATION_TIME_LIMIT"}"#),
            Err(BitrixError::Busy(_))
        ));
        assert!(matches!(
            answer(
                "m",
                401,
                br#"{"error":"NO_AUTH_FOUND","error_description":"Wrong authorization data"}"#
            ),
            Err(BitrixError::Auth(_))
        ));
        match answer(
            "sale.payment.update",
            400,
            br#"{"error":200640400001,"error_description":"payment does not exist"}"#,
        ) {
            Err(BitrixError::Refused { code, .. }) => assert_eq!(code, "200640400001"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            answer("m", 200, b"<html>"),
            Err(BitrixError::Malformed(_))
        ));
    }

    #[test]
    fn money_is_read_from_its_literal_and_ids_leniently() {
        let a = answer(
            "sale.payment.list",
            200,
            br#"{"result":{"payments":[{"id":"144","orderId":200,"paid":"Y","sum":"100.10","paySystemId":1,"xmlId":"paysync:tbank:1","isReturn":"N"},{"id":145,"orderId":"200","paid":"N","sum":0.1}]}}"#,
        )
        .unwrap();
        let p = payments(&a.result).unwrap();
        assert_eq!(
            (p[0].sum, p[0].paid, p[0].xml_id.as_deref()),
            (10_010, true, Some("paysync:tbank:1"))
        );
        assert_eq!(
            (p[1].id.as_str(), p[1].order_id.as_str(), p[1].sum),
            ("145", "200", 10)
        );
        let bad = answer(
            "sale.order.list",
            200,
            br#"{"result":{"orders":[{"id":1,"price":"1e3"}]}}"#,
        )
        .unwrap();
        assert!(orders(&bad.result).is_err());
    }

    #[test]
    fn a_full_order_gives_lines_delivery_and_buyer_properties() {
        let a = answer(
            "batch",
            200,
            br#"{"result":{"result":{"o236":{"order":{"id":236,
                "basketItems":[{"id":"255","name":"Paper A4","price":"250.50","quantity":"2.000","vatRate":0.2,"vatIncluded":"Y"},
                               {"id":256,"name":"Cable","price":99,"quantity":1.5}],
                "shipments":[{"id":1,"system":"Y","priceDelivery":0},{"id":338,"deliveryName":"Courier","priceDelivery":500}],
                "propertyValues":[{"code":"FIO","value":"Ivanova","orderPropsId":1},{"code":"FILE","value":{"src":"/x"},"orderPropsId":2}],
                "payments":[{"paySystemName":"Card Payment"}]}}},"result_error":[]}}"#,
        )
        .unwrap();
        let (results, errors) = batch_results(&a.result).unwrap();
        assert!(errors.is_empty());
        let d = order_details(&results["o236"]).unwrap();
        assert_eq!(d.lines[0].amount, 50_100);
        assert_eq!(
            (
                d.lines[1].price,
                d.lines[1].quantity.as_str(),
                d.lines[1].amount
            ),
            (9_900, "1.5", 14_850)
        );
        assert_eq!(
            (d.lines[0].vat_rate.as_deref(), d.lines[0].vat_included),
            (Some("0.2"), Some(true))
        );
        assert_eq!(
            (d.lines[1].vat_rate.as_deref(), d.lines[1].vat_included),
            (None, None)
        );
        assert_eq!(d.delivery, Some(("Courier".into(), 50_000)));
        assert_eq!(d.properties, [("FIO".to_owned(), "Ivanova".to_owned())]);
        assert_eq!(d.pay_system.as_deref(), Some("Card Payment"));
        assert_eq!(line_amount(333, "0.333"), Some(111));
        assert_eq!(line_amount(1, "0.0001"), None);
    }
}
