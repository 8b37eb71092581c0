//! Acquirer references to the store: what an acquirer's order reference may name in a 1C-Bitrix store, and the
//! look-ups that resolve it. Pure: the look-ups are answered by the ledger's store directory (what store-sync
//! learned) or by the store itself.
//!
//! Verified against the stock handlers (public 1C-Bitrix `sale` module mirror,
//! `avshatalov48/bitrix-core-business`, and vendor modules; see `shared/cases/01`, `02`):
//! - YooKassa (`handlers/paysystem/yandexcheckout/handler.php`): `metadata.BX_PAYMENT_NUMBER` = the Bitrix
//!   **payment** id (`$payment->getId()`), read back as a payment id by `getPaymentIdFromRequest()`; the handler
//!   also stores the YooKassa payment id as the payment's `PS_INVOICE_ID`.
//! - Sber (`handlers/paysystem/sberbankonline/handler.php`): `orderNumber` = `<payment id>_<pay system id>` and,
//!   from the second registration on, `_<attempt>`; `mdOrder` becomes the payment's `PS_INVOICE_ID`.
//! - The vendor RBS module (`rbs.payment`): `orderNumber` = `<order id>_<n>`, n = 0, 1, … until the gateway takes it.
//! - T-Bank modules: `OrderId` = the order's account number (`IM-00392` with a number template) or the payment's
//!   account number (`392/1`, `modules/sale/lib/internals/accountnumber.php`: `<order ACCOUNT_NUMBER>/<n>`).
//!
//! Money is never booked on an order because its id equals a number the acquirer sent: an order id or number only
//! resolves against an order the store described, and a payment id only against a payment the store has.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One thing an acquirer's reference may be, as a setting names it (`TBANK_REFERENCE=order_number,order`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefRule {
    /// The store's order id (`b_sale_order.ID`).
    Order,
    /// The order's account number (`ACCOUNT_NUMBER`, e.g. `IM-00392`; equal to the id in a stock store).
    OrderNumber,
    /// The store's payment id (`b_sale_order_payment.ID`).
    Payment,
    /// The payment's account number, `<order account number>/<n>` (`392/1`).
    PaymentNumber,
    /// Bitrix's Sber handler: `<payment id>_<pay system id>[_<attempt>]`.
    PaymentPaySystem,
    /// A vendor module's `<order id or number>_<attempt>` (RBS: `1043_0`), or `<order>-x-<attempt>`.
    OrderAttempt,
}

impl RefRule {
    pub const ALL: [RefRule; 6] = [
        RefRule::Order,
        RefRule::OrderNumber,
        RefRule::Payment,
        RefRule::PaymentNumber,
        RefRule::PaymentPaySystem,
        RefRule::OrderAttempt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefRule::Order => "order",
            RefRule::OrderNumber => "order_number",
            RefRule::Payment => "payment",
            RefRule::PaymentNumber => "payment_number",
            RefRule::PaymentPaySystem => "payment_paysystem",
            RefRule::OrderAttempt => "order_attempt",
        }
    }

    /// What this rule makes of `raw`: the look-ups to try (any that finds something resolves), or none when the
    /// reference cannot have this form.
    pub fn lookups(self, raw: &str) -> Vec<Lookup> {
        let raw = raw.trim();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        // Bitrix ids start at 1: `0` is never a payment or pay system id.
        let id = |s: &str| digits(s) && s.bytes().any(|b| b != b'0');
        match self {
            RefRule::Order if !raw.is_empty() => vec![Lookup::OrderId(raw.to_owned())],
            RefRule::OrderNumber if !raw.is_empty() => vec![Lookup::OrderNumber(raw.to_owned())],
            RefRule::Payment if id(raw) => vec![Lookup::Payment {
                id: raw.to_owned(),
                pay_system: None,
            }],
            RefRule::PaymentNumber => match raw.rsplit_once('/') {
                Some((order, n)) if !order.is_empty() && id(n) => {
                    vec![Lookup::PaymentNumber(raw.to_owned())]
                }
                _ => Vec::new(),
            },
            RefRule::PaymentPaySystem => {
                let parts: Vec<&str> = raw.split('_').collect();
                match parts.as_slice() {
                    [payment, system] | [payment, system, _] if id(payment) && id(system) => {
                        if parts.len() == 3 && !digits(parts[2]) {
                            return Vec::new();
                        }
                        vec![Lookup::Payment {
                            id: (*payment).to_owned(),
                            pay_system: Some((*system).to_owned()),
                        }]
                    }
                    _ => Vec::new(),
                }
            }
            // `_` (the RBS module), `-x-` (an integrator convention kept in cetera-labs' Sber plugin).
            RefRule::OrderAttempt => {
                match raw.rsplit_once("-x-").or_else(|| raw.rsplit_once('_')) {
                    Some((order, attempt)) if !order.is_empty() && digits(attempt) => vec![
                        Lookup::OrderNumber(order.to_owned()),
                        Lookup::OrderId(order.to_owned()),
                    ],
                    _ => Vec::new(),
                }
            }
            RefRule::Order | RefRule::OrderNumber | RefRule::Payment => Vec::new(),
        }
    }
}

impl fmt::Display for RefRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RefRule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RefRule::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                let all: Vec<&str> = RefRule::ALL.iter().map(|r| r.as_str()).collect();
                format!(
                    "unknown reference kind {s:?}; expected one of {}",
                    all.join(", ")
                )
            })
    }
}

/// A comma-separated, ordered list of rules (`order_number,order,payment_number`).
pub fn parse_rules(list: &str) -> Result<Vec<RefRule>, String> {
    let rules = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(RefRule::from_str)
        .collect::<Result<Vec<_>, _>>()?;
    if rules.is_empty() {
        return Err("names no reference kind".into());
    }
    Ok(rules)
}

/// [`parse_rules`] of a list known to be valid (the built-in defaults).
pub fn parse_rules_or_default(list: &str) -> Vec<RefRule> {
    parse_rules(list).unwrap_or_else(|_| vec![RefRule::OrderNumber])
}

/// One question to the store's data. Each has a definite answer from the store itself (its REST API), and the
/// ledger's store directory answers it from what store-sync pulled.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", content = "value", rename_all = "snake_case")]
pub enum Lookup {
    /// A store payment whose `psInvoiceId` is the acquirer's own payment id.
    Invoice(String),
    OrderId(String),
    OrderNumber(String),
    /// A store payment by id; with `pay_system`, only if the payment is of that pay system.
    Payment {
        id: String,
        pay_system: Option<String>,
    },
    PaymentNumber(String),
}

impl Lookup {
    /// The key of the directory entry that answers it (`payment:1187`); `None` for an order id, which the order
    /// itself answers.
    pub fn directory_key(&self) -> Option<String> {
        match self {
            Lookup::Invoice(v) => Some(format!("invoice:{v}")),
            Lookup::OrderId(_) => None,
            Lookup::OrderNumber(v) => Some(format!("order-number:{v}")),
            Lookup::Payment { id, .. } => Some(format!("payment:{id}")),
            Lookup::PaymentNumber(v) => Some(format!("payment-number:{v}")),
        }
    }

    /// Whether a directory entry of the right key also satisfies the look-up's conditions.
    pub fn accepts(&self, entry: &DirectoryEntry) -> bool {
        match self {
            Lookup::Payment {
                pay_system: Some(want),
                ..
            } => entry.pay_system.as_deref() == Some(want.as_str()),
            _ => true,
        }
    }
}

impl fmt::Display for Lookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lookup::Invoice(v) => write!(f, "store payment with psInvoiceId {v}"),
            Lookup::OrderId(v) => write!(f, "store order id {v}"),
            Lookup::OrderNumber(v) => write!(f, "store order number {v}"),
            Lookup::Payment {
                id,
                pay_system: Some(ps),
            } => write!(f, "store payment {id} of pay system {ps}"),
            Lookup::Payment { id, .. } => write!(f, "store payment {id}"),
            Lookup::PaymentNumber(v) => write!(f, "store payment number {v}"),
        }
    }
}

/// What the store's directory says about one key: the order it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    pub key: String,
    pub order_id: String,
    /// The payment's pay system id (payment entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_system: Option<String>,
}

/// An acquirer's reference to the store, as received, kept with the money until it resolves.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StoreReference {
    /// Exactly as the acquirer sent it (`1187_3_1`, `IM-00392`, `1187`); empty when it sent none.
    pub raw: String,
    /// What it may be, most likely first (the provider's setting, or fixed by the field it came in).
    pub rules: Vec<RefRule>,
    /// The acquirer's own payment id (T-Bank `PaymentId`, Sber `mdOrder`, YooKassa `id`), which Bitrix handlers
    /// write into the store payment's `psInvoiceId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invoice_id: Option<String>,
}

impl StoreReference {
    /// The look-ups in the order to try them, grouped per rule: first the acquirer's payment id against
    /// `psInvoiceId`, then each rule that can apply to `raw`.
    pub fn groups(&self) -> Vec<Vec<Lookup>> {
        let mut groups = Vec::new();
        if let Some(invoice) = self.invoice_id.as_deref().filter(|v| !v.trim().is_empty()) {
            groups.push(vec![Lookup::Invoice(invoice.trim().to_owned())]);
        }
        for rule in &self.rules {
            let lookups = rule.lookups(&self.raw);
            if !lookups.is_empty() {
                groups.push(lookups);
            }
        }
        groups
    }
}

impl fmt::Display for StoreReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rules: Vec<&str> = self.rules.iter().map(|r| r.as_str()).collect();
        write!(f, "{:?} as {}", self.raw, rules.join("|"))
    }
}

/// A store payment as store-sync keeps it (`sale.order.get` `payments[]`, `sale.payment.list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorePaymentInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    /// Minor units.
    pub sum: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_system_id: Option<String>,
    /// The acquirer's payment id the store's handler recorded (`PS_INVOICE_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ps_invoice_id: Option<String>,
    #[serde(default)]
    pub paid: bool,
    /// The acquirer the payment was started at, when its pay system is an acquirer's entry of
    /// `BITRIX_PAY_SYSTEMS` (status-sync asks it about `ps_invoice_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acquirer: Option<super::fact::Source>,
}

/// The directory entries an order the store described answers: its number, and per payment its id, account
/// number and `psInvoiceId`.
pub fn directory_entries(
    order_id: &str,
    number: Option<&str>,
    payments: &[StorePaymentInfo],
) -> Vec<DirectoryEntry> {
    let entry = |key: String, pay_system: Option<&String>| DirectoryEntry {
        key,
        order_id: order_id.to_owned(),
        pay_system: pay_system.cloned(),
    };
    let mut out = Vec::new();
    if let Some(n) = number.filter(|n| !n.trim().is_empty()) {
        out.push(entry(format!("order-number:{}", n.trim()), None));
    }
    for p in payments {
        out.push(entry(format!("payment:{}", p.id), p.pay_system_id.as_ref()));
        if let Some(n) = &p.account_number {
            out.push(entry(
                format!("payment-number:{n}"),
                p.pay_system_id.as_ref(),
            ));
        }
        if let Some(inv) = p.ps_invoice_id.as_ref().filter(|v| !v.trim().is_empty()) {
            out.push(entry(
                format!("invoice:{}", inv.trim()),
                p.pay_system_id.as_ref(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(raw: &str, rules: &str) -> StoreReference {
        StoreReference {
            raw: raw.into(),
            rules: parse_rules(rules).unwrap(),
            invoice_id: None,
        }
    }

    fn pay(id: &str, ps: Option<&str>) -> Lookup {
        Lookup::Payment {
            id: id.into(),
            pay_system: ps.map(Into::into),
        }
    }

    /// Table of references as stock handlers and modules write them (cases 01, 02 and their kind).
    #[test]
    fn each_handler_convention_gives_its_lookups_and_nothing_else() {
        let sber = "payment_paysystem,order_attempt,order_number";
        let cases: &[(&str, &str, Vec<Vec<Lookup>>)] = &[
            // Bitrix core Sber handler, first and second registration.
            (
                "1187_3",
                sber,
                vec![
                    vec![pay("1187", Some("3"))],
                    vec![
                        Lookup::OrderNumber("1187".into()),
                        Lookup::OrderId("1187".into()),
                    ],
                    vec![Lookup::OrderNumber("1187_3".into())],
                ],
            ),
            (
                "1187_3_1",
                sber,
                vec![
                    vec![pay("1187", Some("3"))],
                    vec![
                        Lookup::OrderNumber("1187_3".into()),
                        Lookup::OrderId("1187_3".into()),
                    ],
                    vec![Lookup::OrderNumber("1187_3_1".into())],
                ],
            ),
            // RBS module: attempt 0 cannot be a pay system id.
            (
                "1043_0",
                sber,
                vec![
                    vec![
                        Lookup::OrderNumber("1043".into()),
                        Lookup::OrderId("1043".into()),
                    ],
                    vec![Lookup::OrderNumber("1043_0".into())],
                ],
            ),
            ("1043", sber, vec![vec![Lookup::OrderNumber("1043".into())]]),
            (
                "1043-x-2",
                "order_attempt",
                vec![vec![
                    Lookup::OrderNumber("1043".into()),
                    Lookup::OrderId("1043".into()),
                ]],
            ),
            // T-Bank: an account number with a template, a payment account number.
            (
                "IM-00392",
                "order_number,order,payment_number",
                vec![
                    vec![Lookup::OrderNumber("IM-00392".into())],
                    vec![Lookup::OrderId("IM-00392".into())],
                ],
            ),
            (
                "392/1",
                "payment_number",
                vec![vec![Lookup::PaymentNumber("392/1".into())]],
            ),
            ("392", "payment_number", vec![]),
            // YooKassa BX_PAYMENT_NUMBER: a payment id, never an order.
            (
                "1187",
                "payment,payment_number",
                vec![vec![pay("1187", None)]],
            ),
            ("abc", "payment", vec![]),
            ("0", "payment", vec![]),
            ("12_ab_3", "payment_paysystem", vec![]),
        ];
        for (raw, rules, want) in cases {
            assert_eq!(&reference(raw, rules).groups(), want, "{raw} as {rules}");
        }
    }

    #[test]
    fn the_acquirer_payment_id_is_asked_first_and_a_pay_system_must_match() {
        let mut r = reference("1187_3_1", "payment_paysystem");
        r.invoice_id = Some("7c1f0a52".into());
        let groups = r.groups();
        assert_eq!(groups[0], vec![Lookup::Invoice("7c1f0a52".into())]);
        let entry = |ps: &str| DirectoryEntry {
            key: "payment:1187".into(),
            order_id: "1042".into(),
            pay_system: Some(ps.into()),
        };
        assert!(groups[1][0].accepts(&entry("3")));
        assert!(!groups[1][0].accepts(&entry("4")));
        assert_eq!(
            groups[1][0].directory_key().as_deref(),
            Some("payment:1187")
        );
    }

    #[test]
    fn settings_name_known_kinds_only() {
        assert!(parse_rules("order, order_number").is_ok());
        assert!(parse_rules("order,orderid")
            .unwrap_err()
            .contains("orderid"));
        assert!(parse_rules(" , ").is_err());
    }

    #[test]
    fn an_order_and_its_payments_make_directory_entries() {
        let p = StorePaymentInfo {
            id: "1187".into(),
            account_number: Some("1042/1".into()),
            sum: 148_050,
            pay_system_id: Some("3".into()),
            ps_invoice_id: Some("7c1f".into()),
            paid: false,
            acquirer: None,
        };
        let keys: Vec<String> = directory_entries("1042", Some("1042"), &[p])
            .into_iter()
            .map(|e| e.key)
            .collect();
        assert_eq!(
            keys,
            [
                "order-number:1042",
                "payment:1187",
                "payment-number:1042/1",
                "invoice:7c1f"
            ]
        );
    }
}
