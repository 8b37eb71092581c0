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

impl BitrixError {
    /// The store said it did nothing: its limit refused the request (503 `QUERY_LIMIT_EXCEEDED`, 429
    /// `OPERATION_TIME_LIMIT`). Only then may a write be sent again as it is; after a timeout or a cut-off answer it
    /// may have been done, so it is read again first.
    pub fn nothing_done(&self) -> bool {
        matches!(self, BitrixError::Busy(m) if m.starts_with("HTTP 503") || m.starts_with("HTTP 429"))
    }
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

/// The codes of a webhook the store does not accept (bitrix-rest.md, system errors).
const AUTH_CODES: &[&str] = &[
    "NO_AUTH_FOUND",
    "INVALID_CREDENTIALS",
    "insufficient_scope",
    "expired_token",
    "ACCESS_DENIED",
    "user_access_error",
    "invalid_token",
];

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
    if status == 401 || status == 403 || AUTH_CODES.contains(&code.as_str()) {
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

/// `result.payments[]` of `sale.payment.list`.
pub fn payments(result: &RawValue) -> Result<Vec<StorePayment>, BitrixError> {
    let wire: PaymentsWire<'_> = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.payment.list: {e}")))?;
    wire.payments
        .into_iter()
        .map(StorePayment::try_from)
        .collect()
}

/// An order property value (`propertyValues[]` of `sale.order.get`); `value` is kept as JSON (files come as objects).
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

impl From<PropertyValueWire> for PropertyValue {
    fn from(p: PropertyValueWire) -> Self {
        PropertyValue {
            order_props_id: text(&p.order_props_id),
            code: p.code,
            value: p.value,
        }
    }
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

/// One `batch` command: `method?query`, the parameters in PHP's query form (`fields[paid]=Y`,
/// `fields[order][propertyValues][0][value]=…`), percent-encoded.
///
/// Verified in the store's own code (rest module, `CRestProvider::methodsBatch` and
/// `CRestUtil::ParseBatchQuery`): each command goes through `parse_url` (the path is the method, so no `:` may come
/// before the `?`, and `#` must be encoded, which it is) and then `parse_str`, which decodes `%XX` and reads `+` as
/// a space. The same module then replaces `$result[key][field]` (also `$next`, `$total`, `$time`, `$error`) in every
/// decoded value with an earlier command's answer; a value holding such a text would be rewritten, so it is
/// refused here ([`BitrixError::Malformed`]) rather than written wrong. Parameters are a JSON object; a `null` goes
/// as an empty value, which is how PHP reads it back.
pub fn command(method: &str, params: &Value) -> Result<String, BitrixError> {
    fn rewritten(v: &Value) -> bool {
        match v {
            Value::String(s) => {
                let s = s.to_ascii_lowercase();
                ["$result[", "$next[", "$total[", "$time[", "$error["]
                    .iter()
                    .any(|m| s.contains(m))
            }
            Value::Array(a) => a.iter().any(rewritten),
            Value::Object(o) => o.values().any(rewritten),
            _ => false,
        }
    }
    if rewritten(params) {
        return Err(BitrixError::Malformed(format!(
            "{method}: a value holds `$result[…]`, which batch would replace"
        )));
    }
    // PHP's query form has no null: `key=` is what PHP itself reads as empty.
    fn no_nulls(v: &Value) -> Value {
        match v {
            Value::Null => Value::String(String::new()),
            Value::Array(a) => Value::Array(a.iter().map(no_nulls).collect()),
            Value::Object(o) => {
                Value::Object(o.iter().map(|(k, v)| (k.clone(), no_nulls(v))).collect())
            }
            other => other.clone(),
        }
    }
    if params.as_object().is_none_or(serde_json::Map::is_empty) {
        return Ok(method.to_owned());
    }
    let query = serde_qs::to_string(&no_nulls(params))
        .map_err(|e| BitrixError::Malformed(format!("{method}: {e}")))?;
    Ok(if query.is_empty() {
        method.to_owned()
    } else {
        format!("{method}?{query}")
    })
}

/// A command the store refused inside `batch`: `result_error[key]`, which the rest module fills with the command's
/// own error answer, `{"error": <code>, "error_description": <text>}` (`CRestProvider::methodsBatch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub code: String,
    pub description: String,
}

impl CommandError {
    /// Classified as the same answer to a call on its own would be (busy, webhook refused, or refused).
    pub fn into_error(self, method: &str) -> BitrixError {
        let busy = [
            "QUERY_LIMIT_EXCEEDED",
            "OPERATION_TIME_LIMIT",
            "OVERLOAD_LIMIT",
        ];
        if busy.contains(&self.code.as_str()) {
            return BitrixError::Busy(format!("{method}: {}", self.code));
        }
        if AUTH_CODES.contains(&self.code.as_str()) {
            return BitrixError::Auth(format!("{} {}", self.code, self.description));
        }
        BitrixError::Refused {
            method: method.to_owned(),
            code: self.code,
            description: self.description,
        }
    }
}

/// `result` of `batch`: each command's answer and each refused command's error, by the command's key.
#[derive(Debug, Default)]
pub struct BatchAnswer {
    pub results: std::collections::BTreeMap<String, Box<RawValue>>,
    pub errors: std::collections::BTreeMap<String, CommandError>,
}

/// Read `batch`'s `result`. The rest module answers with PHP arrays, so an empty set of results or errors comes as
/// `[]`, not `{}`, and a list of commands gets lists back (keys `0`, `1`, …); both are read.
pub fn batch_answer(result: &RawValue) -> Result<BatchAnswer, BitrixError> {
    #[derive(Deserialize)]
    struct BatchWire {
        #[serde(default)]
        result: Option<Box<RawValue>>,
        #[serde(default)]
        result_error: Option<Box<RawValue>>,
    }
    fn keyed(raw: Option<&RawValue>) -> Result<Vec<(String, Box<RawValue>)>, BitrixError> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        let bad = |e: serde_json::Error| BitrixError::Malformed(format!("batch: {e}"));
        if raw.get().trim_start().starts_with('[') {
            let list: Vec<Box<RawValue>> = serde_json::from_str(raw.get()).map_err(bad)?;
            return Ok(list
                .into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect());
        }
        if raw.get().trim() == "null" {
            return Ok(Vec::new());
        }
        let map: std::collections::BTreeMap<String, Box<RawValue>> =
            serde_json::from_str(raw.get()).map_err(bad)?;
        Ok(map.into_iter().collect())
    }
    let wire: BatchWire = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("batch: {e}")))?;
    let mut errors = std::collections::BTreeMap::new();
    for (key, raw) in keyed(wire.result_error.as_deref())? {
        let v: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
        errors.insert(
            key,
            CommandError {
                code: v.get("error").map(text).unwrap_or_default(),
                description: v.get("error_description").map(text).unwrap_or_default(),
            },
        );
    }
    Ok(BatchAnswer {
        results: keyed(wire.result.as_deref())?.into_iter().collect(),
        errors,
    })
}

/// An order's payment state in the store, as `sale.order.get` gives it: what store-sync must read before it writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreOrderState {
    /// `personTypeId`: the order's properties are defined per person type.
    pub person_type_id: Option<String>,
    pub payments: Vec<StorePayment>,
    /// Every property value of the order (`sale.propertyvalue.modify` deletes what it is not given back).
    pub property_values: Vec<PropertyValue>,
}

/// `result` of `sale.order.get`, read for its payments and property values.
pub fn order_state(result: &RawValue) -> Result<StoreOrderState, BitrixError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct StateWire<'a> {
        #[serde(default)]
        person_type_id: Option<Value>,
        #[serde(default, borrow)]
        payments: Vec<PaymentWire<'a>>,
        #[serde(default)]
        property_values: Vec<PropertyValueWire>,
    }
    #[derive(Deserialize)]
    struct Wire<'a> {
        #[serde(borrow)]
        order: StateWire<'a>,
    }
    let wire: Wire<'_> = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.order.get: {e}")))?;
    let o = wire.order;
    Ok(StoreOrderState {
        person_type_id: o
            .person_type_id
            .as_ref()
            .map(text)
            .filter(|s| !s.is_empty()),
        payments: o
            .payments
            .into_iter()
            .map(StorePayment::try_from)
            .collect::<Result<Vec<_>, _>>()?,
        property_values: o
            .property_values
            .into_iter()
            .map(PropertyValue::from)
            .collect(),
    })
}

/// An order property the store defines (`sale.property.list`): its id, code and person type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyDefinition {
    pub id: String,
    pub code: Option<String>,
    pub person_type_id: Option<String>,
}

/// `result.properties[]` of `sale.property.list`.
pub fn property_definitions(result: &RawValue) -> Result<Vec<PropertyDefinition>, BitrixError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct DefWire {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        person_type_id: Option<Value>,
    }
    #[derive(Deserialize)]
    struct Wire {
        properties: Vec<DefWire>,
    }
    let wire: Wire = serde_json::from_str(result.get())
        .map_err(|e| BitrixError::Malformed(format!("sale.property.list: {e}")))?;
    Ok(wire
        .properties
        .into_iter()
        .map(|d| PropertyDefinition {
            id: text(&d.id),
            code: d.code,
            person_type_id: d
                .person_type_id
                .as_ref()
                .map(text)
                .filter(|s| !s.is_empty()),
        })
        .filter(|d| !d.id.is_empty())
        .collect())
}

/// Each command's result by its key, and each failed command's error.
pub type BatchResults = (
    std::collections::BTreeMap<String, Box<RawValue>>,
    Vec<String>,
);

/// `result` of `batch`: each command's result by its key, and each command's error as `key: code description`.
pub fn batch_results(result: &RawValue) -> Result<BatchResults, BitrixError> {
    let answer = batch_answer(result)?;
    let errors = answer
        .errors
        .into_iter()
        .map(|(k, e)| {
            format!("{k}: {} {}", e.code, e.description)
                .trim()
                .to_owned()
        })
        .collect();
    Ok((answer.results, errors))
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

    /// What the store's `parse_str` reads back from a command: the same parameters, every byte intact.
    #[test]
    fn a_command_reads_back_as_its_parameters_through_phps_parse_str() {
        let params = serde_json::json!({"id": "901", "fields": {
            "paid": "Y", "sum": "1500.00", "datePaid": "2026-11-28T10:00:00+03:00",
            "psStatusDescription": "Способ оплаты: СБП", "xmlId": "paysync:tbank:61#a&b=c d%",
            "order": {"id": "7001", "propertyValues": [
                {"orderPropsId": "1", "value": "buyer@example.ru"},
                {"orderPropsId": "21", "value": "Оплачено: 1\u{a0}500 из 5\u{a0}000 (30%)"},
                {"orderPropsId": "2", "value": {"fileName": "rekv.pdf", "src": "/upload/rekv.pdf?x=1"}},
            ]},
        }});
        let c = command("sale.payment.update", &params).unwrap();
        let (method, query) = c.split_once('?').unwrap();
        assert_eq!(method, "sale.payment.update");
        assert!(!query.contains('#') && !query.contains(' '), "{query}");
        assert_eq!(crate::testing::php_parse_str(query), params);
        assert_eq!(
            command("sale.order.get", &serde_json::json!({})).unwrap(),
            "sale.order.get"
        );
        let c = command(
            "sale.propertyvalue.modify",
            &serde_json::json!({"v": [null, true, 2]}),
        )
        .unwrap();
        assert_eq!(
            crate::testing::php_parse_str(c.split_once('?').unwrap().1),
            serde_json::json!({"v": ["", "true", "2"]})
        );
    }

    #[test]
    fn a_value_batch_would_rewrite_is_refused() {
        let e = command(
            "sale.order.update",
            &serde_json::json!({"fields": {"comments": "see $RESULT[o1][id]"}}),
        )
        .unwrap_err();
        assert!(matches!(e, BitrixError::Malformed(m) if m.contains("$result")));
        assert!(command(
            "sale.order.update",
            &serde_json::json!({"fields": {"comments": "costs $5 [net]"}})
        )
        .is_ok());
    }

    #[test]
    fn a_batch_answer_gives_each_commands_result_or_error_in_the_stores_shapes() {
        let a = answer(
            "batch",
            200,
            br#"{"result":{"result":{"w0":{"payment":{"id":901}}},"result_error":{"w1":{"error":"ERROR_CORE","error_description":"SALE_PAYMENT_NOT_ALLOWED_CHANGE_SUM"},"w2":{"error":"QUERY_LIMIT_EXCEEDED","error_description":""},"w3":{"error":"NO_AUTH_FOUND","error_description":"Wrong"}},"result_total":[],"result_next":[],"result_time":[]},"time":{}}"#,
        )
        .unwrap();
        let mut b = batch_answer(&a.result).unwrap();
        assert_eq!(b.results.keys().collect::<Vec<_>>(), ["w0"]);
        assert!(matches!(
            b.errors.remove("w1").unwrap().into_error("sale.payment.update"),
            BitrixError::Refused { method, code, description }
                if method == "sale.payment.update" && code == "ERROR_CORE" && description.contains("CHANGE_SUM")
        ));
        assert!(matches!(
            b.errors.remove("w2").unwrap().into_error("m"),
            BitrixError::Busy(_)
        ));
        // Only the limit's own refusals say nothing was done.
        assert!(answer("batch", 503, br#"{"error":"QUERY_LIMIT_EXCEEDED"}"#)
            .unwrap_err()
            .nothing_done());
        assert!(answer("batch", 429, br#"{"error":"OPERATION_TIME_LIMIT"}"#)
            .unwrap_err()
            .nothing_done());
        assert!(!BitrixError::Busy("timeout".into()).nothing_done());
        assert!(!answer("batch", 500, b"").unwrap_err().nothing_done());
        assert!(matches!(
            b.errors.remove("w3").unwrap().into_error("m"),
            BitrixError::Auth(_)
        ));
        // PHP's empty arrays, and a list of commands answered by a list.
        let empty = answer(
            "batch",
            200,
            br#"{"result":{"result":[],"result_error":[]}}"#,
        )
        .unwrap();
        let b = batch_answer(&empty.result).unwrap();
        assert!(b.results.is_empty() && b.errors.is_empty());
        let listed = answer(
            "batch",
            200,
            br#"{"result":{"result":[{"a":1},{"b":2}],"result_error":[]}}"#,
        )
        .unwrap();
        assert_eq!(
            batch_answer(&listed.result)
                .unwrap()
                .results
                .keys()
                .collect::<Vec<_>>(),
            ["0", "1"]
        );
        assert!(batch_answer(
            &answer("batch", 200, br#"{"result":{"result":7}}"#)
                .unwrap()
                .result
        )
        .is_err());
    }

    #[test]
    fn an_orders_state_and_the_property_definitions_are_read_from_the_stores_answers() {
        let a = answer(
            "sale.order.get",
            200,
            br#"{"result":{"order":{"id":7001,"personTypeId":"2",
            "payments":[{"id":900,"orderId":7001,"paid":"N","sum":5000,"paySystemId":5,"xmlId":""}],
            "propertyValues":[{"id":11,"orderPropsId":1,"code":"EMAIL","value":"buyer@example.ru"},
                              {"id":12,"orderPropsId":"2","code":"FILE","value":{"src":"/x"}}]}}}"#,
        )
        .unwrap();
        let st = order_state(&a.result).unwrap();
        assert_eq!(st.person_type_id.as_deref(), Some("2"));
        assert_eq!(
            (
                st.payments[0].id.as_str(),
                st.payments[0].sum,
                st.payments[0].xml_id.as_deref()
            ),
            ("900", 500_000, None)
        );
        assert_eq!(
            st.property_values
                .iter()
                .map(|v| v.order_props_id.as_str())
                .collect::<Vec<_>>(),
            ["1", "2"]
        );
        let d = answer("sale.property.list", 200, br#"{"result":{"properties":[{"id":20,"code":"PAID_AMOUNT","personTypeId":1},{"id":"30","code":"PAID_AMOUNT","personTypeId":"2"}]}}"#).unwrap();
        let defs = property_definitions(&d.result).unwrap();
        assert_eq!(
            defs[1],
            PropertyDefinition {
                id: "30".into(),
                code: Some("PAID_AMOUNT".into()),
                person_type_id: Some("2".into())
            }
        );
    }
}
