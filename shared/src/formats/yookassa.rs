//! YooKassa API v3 notifications and objects. YooKassa signs nothing: authenticity comes from re-reading the
//! object through the API (default) or from the source IP.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::domain::{
    Currency, DomainError, FactId, FactKind, Money, MoneyError, OrderId, PaymentFact,
    PaymentMethod, PaymentRef, RefRule, RefundAmount, Source, StoreReference,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum YooKassaError {
    #[error("malformed notification: {0}")]
    Malformed(String),
}

impl From<DomainError> for YooKassaError {
    fn from(e: DomainError) -> Self {
        YooKassaError::Malformed(e.to_string())
    }
}

impl From<MoneyError> for YooKassaError {
    fn from(e: MoneyError) -> Self {
        YooKassaError::Malformed(e.to_string())
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Amount {
    /// Decimal string in major units ("2.00", "1").
    pub value: String,
    pub currency: String,
}

impl Amount {
    pub fn money(&self) -> Result<Money, YooKassaError> {
        Ok(Money::parse_decimal(
            &self.value,
            Currency::parse(&self.currency)?,
        )?)
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Payment {
    pub id: String,
    pub status: String,
    pub amount: Amount,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub captured_at: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub cancellation_details: Option<Value>,
    /// How the buyer paid (`payment_method.type`: `bank_card`, `sbp`, `sberbank`, `tinkoff_bank`, `yoo_money`, …).
    #[serde(default)]
    pub payment_method: Option<MethodObject>,
    /// What the shop gets after YooKassa's fee (`amount` − fee), on a succeeded payment.
    #[serde(default)]
    pub income_amount: Option<Amount>,
    /// `pending` / `succeeded` / `canceled`: the payment's receipt at "Чеки от ЮKassa" (present only for shops using
    /// it; YooKassa API, payment object `receipt_registration`).
    #[serde(default)]
    pub receipt_registration: Option<String>,
}

/// The payment's `payment_method` object; only its `type` is read (the rest, such as a card's last digits or an
/// SBP operation's `sbp_operation_id`, is not the ledger's business). A method without its `type` says nothing;
/// it does not make the payment unreadable.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct MethodObject {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

impl Payment {
    /// The fee YooKassa kept, minor units: `amount` − `income_amount` (same currency), when both are stated.
    pub fn fee(&self) -> Result<Option<i64>, YooKassaError> {
        let Some(income) = &self.income_amount else {
            return Ok(None);
        };
        let (gross, net) = (self.amount.money()?, income.money()?);
        Ok((gross.currency == net.currency && net.minor <= gross.minor)
            .then_some(gross.minor - net.minor))
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub status: String,
    pub amount: Amount,
    #[serde(default)]
    pub created_at: Option<String>,
}

/// What a notification is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Payment(Payment),
    Refund(Refund),
    /// An event we do not act on (payouts, deals, payment methods); it still gets 200.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub event: String,
    pub subject: Subject,
}

impl Notification {
    /// The object id the notification names (the one to re-read).
    pub fn object_id(&self) -> Option<&str> {
        match &self.subject {
            Subject::Payment(p) => Some(&p.id),
            Subject::Refund(r) => Some(&r.id),
            Subject::Other(_) => None,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    event: String,
    object: Value,
}

pub fn parse_notification(body: &[u8]) -> Result<Notification, YooKassaError> {
    let env: Envelope = serde_json::from_slice(body)
        .map_err(|e| YooKassaError::Malformed(format!("not a notification: {e}")))?;
    if env.kind != "notification" {
        return Err(YooKassaError::Malformed(format!(
            "type {:?} is not \"notification\"",
            env.kind
        )));
    }
    let object = |what: &str| YooKassaError::Malformed(format!("object is not a {what}"));
    let subject = if env.event.starts_with("payment.") && env.event != "payment_method.active" {
        Subject::Payment(serde_json::from_value(env.object).map_err(|_| object("payment"))?)
    } else if env.event.starts_with("refund.") {
        Subject::Refund(serde_json::from_value(env.object).map_err(|_| object("refund"))?)
    } else {
        Subject::Other(env.event.clone())
    };
    Ok(Notification {
        event: env.event,
        subject,
    })
}

/// YooKassa object ids are short tokens; anything else must not reach a URL path.
pub fn is_valid_object_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn time_ms(text: Option<&str>) -> Option<i64> {
    let t = OffsetDateTime::parse(text?, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The metadata key Bitrix's own YooKassa handler writes: the store **payment** id (`$payment->getId()`,
/// `handlers/paysystem/yandexcheckout/handler.php`), never an order id.
pub const BITRIX_PAYMENT_KEY: &str = "BX_PAYMENT_NUMBER";

/// The store reference a payment's metadata carries: Bitrix's `BX_PAYMENT_NUMBER` as a payment id (or a payment
/// account number `392/1`), else the first of `order_keys` present, read as `rules` say. The YooKassa payment id
/// is the invoice id either way (the Bitrix handler keeps it as the payment's `PS_INVOICE_ID`).
pub fn store_reference(
    metadata: &Map<String, Value>,
    order_keys: &[String],
    rules: &[RefRule],
    payment_id: &str,
) -> StoreReference {
    let value = |k: &str| match metadata.get(k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let (raw, rules) = match value(BITRIX_PAYMENT_KEY) {
        Some(v) => (v, vec![RefRule::Payment, RefRule::PaymentNumber]),
        None => (
            order_keys
                .iter()
                .filter(|k| k.as_str() != BITRIX_PAYMENT_KEY)
                .find_map(|k| value(k))
                .unwrap_or_default(),
            rules.to_vec(),
        ),
    };
    StoreReference {
        raw,
        rules,
        invoice_id: Some(payment_id.to_owned()),
    }
}

/// Map a payment (as fetched, or as notified in IP mode) to a fact; `None` while it is `pending`.
///
/// The fact is on `unmatched:yookassa:<id>` with the metadata's store reference ([`store_reference`]);
/// `crate::app::resolve` moves it to the store order it names.
pub fn payment_fact(
    p: &Payment,
    order_keys: &[String],
    rules: &[RefRule],
    now_ms: i64,
) -> Result<Option<PaymentFact>, YooKassaError> {
    let money = p.amount.money()?;
    let kind = match p.status.as_str() {
        "waiting_for_capture" => FactKind::Authorization {
            amount: money.minor,
        },
        "succeeded" => FactKind::Payment {
            amount: money.minor,
        },
        "canceled" => FactKind::FailedAttempt {
            reason: p
                .cancellation_details
                .as_ref()
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .unwrap_or("canceled")
                .to_owned(),
        },
        _ => return Ok(None),
    };
    let payment = PaymentRef::new(Source::Yookassa, &p.id)?;
    let reference = store_reference(&p.metadata, order_keys, rules, &p.id);
    let fee = match kind {
        FactKind::Payment { .. } => p.fee()?,
        _ => None,
    };
    let method = p
        .payment_method
        .as_ref()
        .and_then(|m| m.kind.as_deref())
        .filter(|k| !k.trim().is_empty())
        .map(crate::domain::PayMethod::from);
    let at = time_ms(p.captured_at.as_deref().or(p.created_at.as_deref())).unwrap_or(now_ms);
    Ok(Some(
        PaymentFact::new(
            FactId::new(Source::Yookassa, &format!("payment#{}#{}", p.id, p.status))?,
            OrderId::unmatched(&payment),
            payment,
            PaymentMethod::Card,
            money.currency,
            kind,
            at,
        )?
        .referring(reference)
        .paid_with(method)
        .with_fee(fee)
        .receipted(p.receipt_registration.as_deref() == Some("succeeded")),
    ))
}

/// A refund's `receipt` object (YooKassa API, `POST /refunds` → `receipt`, `ReceiptData`): `customer` with the
/// e-mail and/or the phone as digits, one item per line with `description`, `quantity` (a decimal string, as
/// YooKassa's own refund examples write it), `amount` = the **unit price** (`{"value":"250.00","currency":"RUB"}`:
/// their example returns 2 × 250.00 + 100.00 = 600.00), `vat_code`, `payment_mode` `full_payment` and
/// `payment_subject` `commodity` or `service`. No `tax_system_code`: "Для Чеков от ЮKassa: параметр передавать не
/// нужно". Source: https://yookassa.ru/developers/payment-acceptance/scenario-extensions/54fz/refunds.
pub fn refund_receipt(receipt: &crate::domain::receipt::Receipt, currency: Currency) -> Value {
    let mut customer = Map::new();
    if let Some(e) = &receipt.email {
        customer.insert("email".into(), Value::String(e.clone()));
    }
    if let Some(p) = receipt.phone_digits() {
        customer.insert("phone".into(), Value::String(p));
    }
    let items: Vec<Value> = receipt
        .items
        .iter()
        .map(|i| {
            serde_json::json!({
                "description": i.name,
                "quantity": i.quantity,
                "amount": {"value": crate::domain::money::format_minor(i.price), "currency": currency.as_str()},
                "vat_code": i.vat.yookassa_code(),
                "payment_mode": "full_payment",
                "payment_subject": if i.service { "service" } else { "commodity" },
            })
        })
        .collect();
    serde_json::json!({"customer": customer, "items": items})
}

/// Map a succeeded refund to a fact on the order its payment belongs to; `None` unless `succeeded`.
pub fn refund_fact(
    r: &Refund,
    order_id: OrderId,
    now_ms: i64,
) -> Result<Option<PaymentFact>, YooKassaError> {
    if r.status != "succeeded" {
        return Ok(None);
    }
    let money = r.amount.money()?;
    Ok(Some(PaymentFact::new(
        FactId::new(Source::Yookassa, &format!("refund#{}", r.id))?,
        order_id,
        PaymentRef::new(Source::Yookassa, &r.payment_id)?,
        PaymentMethod::Card,
        money.currency,
        FactKind::Refund {
            amount: RefundAmount::Delta(money.minor),
        },
        time_ms(r.created_at.as_deref()).unwrap_or(now_ms),
    )?))
}

/// Whether a source address belongs to the trusted networks (IPv4-mapped IPv6 counts as IPv4).
pub fn ip_trusted(ip: IpAddr, networks: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refund_receipt_has_the_documented_shape() {
        use crate::domain::receipt::{Receipt, ReceiptItem, Vat};
        let documented: Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/acquiring/yookassa__refund-with-receipt.json"
        ))
        .unwrap();
        let receipt = Receipt {
            items: vec![ReceiptItem {
                name: "Product name 1".into(),
                price: 25_000,
                quantity: "2".into(),
                amount: 50_000,
                vat: Vat::Vat0,
                service: false,
            }],
            email: Some("email@email.ru".into()),
            phone: Some("+79000000000".into()),
        };
        let ours = refund_receipt(&receipt, Currency::RUB);
        let item = &ours["items"][0];
        for key in documented["receipt"]["items"][0]
            .as_object()
            .unwrap()
            .keys()
        {
            assert!(item.get(key).is_some(), "{key}");
        }
        assert_eq!(
            item["amount"], documented["receipt"]["items"][0]["amount"],
            "the unit price"
        );
        assert_eq!(item["vat_code"], 2);
        assert_eq!(
            ours["customer"]["phone"],
            documented["receipt"]["customer"]["phone"]
        );
        assert_eq!(ours["customer"]["email"], "email@email.ru");
    }

    #[test]
    fn an_sbp_payment_carries_its_method_and_fee() {
        let body = include_bytes!(
            "../../../tests/fixtures/acquiring/yookassa__sbp-payment-succeeded.json"
        );
        let Subject::Payment(p) = parse_notification(body).unwrap().subject else {
            panic!("a payment");
        };
        assert_eq!(p.fee().unwrap(), Some(3));
        let f = payment_fact(&p, &[], &[RefRule::Order], 7)
            .unwrap()
            .unwrap();
        assert_eq!(f.pay_method, Some(crate::domain::PayMethod::Sbp));
        assert_eq!(f.fee, Some(3));
        assert_eq!(f.kind, FactKind::Payment { amount: 200 });
        // A method object without its type (seen in tests of card data) reads as no method, not as an error.
        let mut untyped = p.clone();
        untyped.payment_method =
            serde_json::from_value(serde_json::json!({"card": {"last4": "4444"}})).unwrap();
        let f = payment_fact(&untyped, &[], &[RefRule::Order], 7)
            .unwrap()
            .unwrap();
        assert_eq!(f.pay_method, None);
        // A fee in another currency, or above the amount, is not a fee.
        let mut odd = p.clone();
        odd.income_amount = Some(Amount {
            value: "3.00".into(),
            currency: "RUB".into(),
        });
        assert_eq!(odd.fee().unwrap(), None);
    }

    use crate::platform::config::{parse_networks, YOOKASSA_NETWORKS};

    #[test]
    fn published_networks_match_the_documented_ip_table() {
        let nets = parse_networks(&YOOKASSA_NETWORKS.join(",")).unwrap();
        for (ip, trusted) in [
            ("185.71.76.1", true),
            ("185.71.76.31", true),
            ("185.71.76.32", false),
            ("185.71.77.10", true),
            ("77.75.153.127", true),
            ("77.75.153.128", false),
            ("77.75.156.11", true),
            ("77.75.156.12", false),
            ("77.75.156.35", true),
            ("77.75.154.200", true),
            ("77.75.154.127", false),
            ("2a02:5180::1", true),
            ("2a02:5180:0:1509::5", true),
            ("::ffff:185.71.77.5", true),
            ("1.2.3.4", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(ip_trusted(ip.parse().unwrap(), &nets), trusted, "{ip}");
        }
    }

    #[test]
    fn amounts_are_exact_and_events_map_to_facts() {
        let body = br#"{"type":"notification","event":"payment.succeeded","object":{"id":"p-1","status":"succeeded","amount":{"value":"0.96","currency":"RUB"},"metadata":{"order_id":"1001"},"captured_at":"2025-10-18T21:55:24.823Z"}}"#;
        let n = parse_notification(body).unwrap();
        let Subject::Payment(p) = &n.subject else {
            panic!("not a payment")
        };
        let keys = vec!["order_id".to_owned()];
        let f = payment_fact(p, &keys, &[RefRule::OrderNumber], 0)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FactKind::Payment { amount: 96 });
        // The order is what the reference resolves to, never the bare metadata value.
        assert_eq!(f.order_id.as_str(), "unmatched:yookassa:p-1");
        let r = f.reference.unwrap();
        assert_eq!(
            (r.raw.as_str(), r.invoice_id.as_deref()),
            ("1001", Some("p-1"))
        );
        assert_eq!(f.at_ms, 1_760_824_524_823);
        assert_eq!(f.id.as_str(), "yookassa#payment#p-1#succeeded");
    }

    #[test]
    fn bitrix_payment_number_is_a_payment_id_and_missing_metadata_leaves_the_invoice_id() {
        let keys: Vec<String> = crate::platform::config::DEFAULT_YOOKASSA_ORDER_KEYS
            .split(',')
            .map(str::to_owned)
            .collect();
        // What Bitrix's own handler writes (case 01): the payment id, with its pay system code and handler.
        let meta: Map<String, Value> = serde_json::from_str(
            r#"{"BX_PAYMENT_NUMBER":"1187","BX_PAYSYSTEM_CODE":"4","BX_HANDLER":"YANDEX_CHECKOUT","cms_name":"api_1c-bitrix","order_id":"5"}"#,
        )
        .unwrap();
        let r = store_reference(&meta, &keys, &[RefRule::Order], "2f9c");
        assert_eq!(r.raw, "1187");
        assert_eq!(r.rules, [RefRule::Payment, RefRule::PaymentNumber]);
        assert!(r
            .groups()
            .iter()
            .flatten()
            .all(|l| !matches!(l, crate::domain::Lookup::OrderId(_))));
        let p = Payment {
            id: "x".into(),
            status: "waiting_for_capture".into(),
            amount: Amount {
                value: "2.00".into(),
                currency: "RUB".into(),
            },
            metadata: Map::new(),
            captured_at: None,
            created_at: None,
            cancellation_details: None,
            payment_method: None,
            income_amount: None,
            receipt_registration: None,
        };
        let f = payment_fact(&p, &keys, &[RefRule::Order], 7)
            .unwrap()
            .unwrap();
        assert_eq!(f.order_id.as_str(), "unmatched:yookassa:x");
        assert_eq!(f.reference.as_ref().unwrap().raw, "");
        assert_eq!(f.kind, FactKind::Authorization { amount: 200 });
    }

    #[test]
    fn unknown_events_and_bad_envelopes() {
        let n = parse_notification(
            br#"{"type":"notification","event":"payout.succeeded","object":{}}"#,
        )
        .unwrap();
        assert_eq!(n.subject, Subject::Other("payout.succeeded".into()));
        assert!(parse_notification(
            br#"{"type":"notification","event":"payment.succeeded","object":{"id":1}}"#
        )
        .is_err());
        assert!(parse_notification(b"not json").is_err());
        assert!(is_valid_object_id("22d6d597-000f-5000-9000-145f6df21d6f"));
        assert!(!is_valid_object_id("../../v3/refunds"));
    }
}
