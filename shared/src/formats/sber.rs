//! Sber acquiring (RBS/BPC ecom gateway) callbacks: checksum verification and mapping to payment facts.
//!
//! Checksum = HMAC-SHA256(callback token, "name1;value1;…;nameN;valueN;") over every received parameter except
//! `checksum` and `sign_alias`, URL-decoded, sorted by name (code-point order); uppercase hex.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::{
    Currency, DomainError, FactId, FactKind, OrderId, PayMethod, PaymentFact, PaymentMethod,
    PaymentRef, RefRule, RefundAmount, Source, StoreReference,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SberError {
    #[error("malformed callback: {0}")]
    Malformed(String),
    #[error("callback rejected: {0}")]
    Forbidden(&'static str),
}

impl From<DomainError> for SberError {
    fn from(e: DomainError) -> Self {
        SberError::Malformed(e.to_string())
    }
}

/// Parameters of a callback (query string or form body), decoded, in received order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parse `a=1&b=2`. A repeated name is refused: the signed string would be ambiguous.
    pub fn parse(raw: &[u8]) -> Result<Self, SberError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in form_urlencoded::parse(raw) {
            if out.iter().any(|(name, _)| *name == k) {
                return Err(SberError::Malformed(format!("parameter {k} is repeated")));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `name;value;` for every signed parameter, sorted by name.
    pub fn signed_string(&self) -> String {
        let mut pairs: Vec<&(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| k != "checksum" && k != "sign_alias")
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.iter().fold(String::new(), |mut acc, (k, v)| {
            acc.push_str(k);
            acc.push(';');
            acc.push_str(v);
            acc.push(';');
            acc
        })
    }

    /// Check the symmetric checksum in constant time (case-insensitive hex).
    pub fn verify(&self, key: &str) -> Result<(), SberError> {
        let given = self
            .get("checksum")
            .ok_or(SberError::Forbidden("checksum is missing"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
            .map_err(|_| SberError::Forbidden("callback token unusable"))?;
        mac.update(self.signed_string().as_bytes());
        let expected = hex::encode_upper(mac.finalize().into_bytes());
        if bool::from(
            expected
                .as_bytes()
                .ct_eq(given.to_ascii_uppercase().as_bytes()),
        ) {
            Ok(())
        } else {
            Err(SberError::Forbidden("checksum does not match"))
        }
    }

    fn amount(&self, name: &str) -> Result<Option<i64>, SberError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|a| *a >= 0 && v.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        SberError::Malformed(format!("{name} is not an amount in minor units"))
                    })
            })
            .transpose()
    }
}

/// Amounts from the gateway's `getOrderStatusExtended.do`, asked when a callback does not carry them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatewayStatus {
    /// `orderStatus`: `0` registered, not paid; `1` pre-authorised (held); `2` paid; `3` authorisation cancelled;
    /// `4` refunded; `5` ACS authentication started; `6` declined (reference §2.3).
    pub order_status: Option<i64>,
    pub order_number: Option<String>,
    pub currency: Option<Currency>,
    pub amount: Option<i64>,
    pub approved: Option<i64>,
    pub deposited: Option<i64>,
    pub refunded: Option<i64>,
}

/// The payment method of a Sber payment: the callback's `paymentWay` (RBS values: `CARD`, `CARD_BINDING`, `APPLE_PAY`,
/// `GOOGLE_PAY_CARD`, `SAMSUNG_PAY`, … are cards, wallets of a card included; `SBRF_SBOL` "оплата через Сбербанк
/// Онлайн", `SBERPAY` and `SBERID` are SberPay; `SBP_C2B` is SBP on the same RBS platform), else the SBP operation
/// ids of an SBP callback's `additionalParams` (`extTransactionId` "Идентификатор Операции СБП C2B", `qrcId`; Sber ecom
/// OpenAPI v1.0.6, `CallbackRequest`). A real callback: `orderNumber=7208_1&paymentWay=SBRF_SBOL&mdOrder=…
/// &operation=deposited&status=1`.
pub fn pay_method(payment_way: Option<&str>, sbp_operation: bool) -> Option<PayMethod> {
    let way = payment_way.map(str::trim).filter(|w| !w.is_empty());
    match way.map(str::to_ascii_uppercase).as_deref() {
        Some(w) if w.starts_with("SBP") => Some(PayMethod::Sbp),
        Some("SBRF_SBOL" | "SBERPAY" | "SBERID") => Some(PayMethod::SberPay),
        Some(w)
            if w.starts_with("CARD")
                || w.contains("_PAY")
                || w.starts_with("ANDROID_PAY")
                || w == "IPOS" =>
        {
            Some(PayMethod::Card)
        }
        Some(w) => Some(PayMethod::from(w)),
        None if sbp_operation => Some(PayMethod::Sbp),
        None => None,
    }
}

/// What the mapping needs from the gateway, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Nothing,
    GatewayStatus,
}

/// A verified callback, ready to become a fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    pub md_order: String,
    pub order_number: Option<String>,
    pub operation: String,
    pub success: bool,
    params: Params,
}

impl Callback {
    pub fn from_params(params: Params) -> Result<Self, SberError> {
        let required = |name: &str| {
            params
                .get(name)
                .map(str::to_owned)
                .ok_or_else(|| SberError::Malformed(format!("parameter {name} is missing")))
        };
        let success = match required("status")?.as_str() {
            "1" => true,
            "0" => false,
            _ => return Err(SberError::Malformed("status is neither 1 nor 0".into())),
        };
        Ok(Callback {
            md_order: required("mdOrder")?,
            order_number: params.get("orderNumber").map(str::to_owned),
            operation: required("operation")?,
            success,
            params,
        })
    }

    /// The amount this callback's fact needs, from the callback itself.
    fn own_amount(&self) -> Result<Option<i64>, SberError> {
        let p = &self.params;
        Ok(match self.operation.as_str() {
            "approved" => p.amount("approvedAmount")?.or(p.amount("amount")?),
            "deposited" => p.amount("depositedAmount")?.or(p.amount("amount")?),
            "refunded" => p.amount("refundedAmount")?,
            _ => None,
        })
    }

    /// Whether the gateway must be asked before [`Callback::to_fact`].
    pub fn needs(&self) -> Result<Need, SberError> {
        let moves_money = self.success
            && matches!(
                self.operation.as_str(),
                "approved" | "deposited" | "refunded"
            );
        if moves_money && (self.own_amount()?.is_none() || self.order_number.is_none()) {
            Ok(Need::GatewayStatus)
        } else {
            Ok(Need::Nothing)
        }
    }

    /// Map to a fact; `None` for operations that move no money (bindings). `gateway` fills what is missing.
    ///
    /// The fact is on `unmatched:sber:<mdOrder>` and carries `orderNumber` as the store reference, read as `rules`
    /// say (Bitrix's own handler: `<payment id>_<pay system id>[_<attempt>]`; the RBS module: `<order>_<n>`),
    /// with `mdOrder` as the invoice id; `crate::app::resolve` moves it to the store order it names.
    pub fn to_fact(
        &self,
        gateway: Option<&GatewayStatus>,
        rules: &[RefRule],
        now_ms: i64,
    ) -> Result<Option<PaymentFact>, SberError> {
        let missing = |what: &str| {
            SberError::Malformed(format!(
                "{what} is unknown: not in the callback nor from the gateway"
            ))
        };
        let own = self.own_amount()?;
        let amount =
            |from_gateway: Option<i64>| own.or(from_gateway).ok_or_else(|| missing("amount"));
        let g = gateway.cloned().unwrap_or_default();
        let mut key_amount = None;
        let kind = if !self.success {
            FactKind::FailedAttempt {
                reason: format!("{} status 0", self.operation),
            }
        } else {
            match self.operation.as_str() {
                "approved" => FactKind::Authorization {
                    amount: amount(g.approved.or(g.amount))?,
                },
                "deposited" => FactKind::Payment {
                    amount: amount(g.deposited.or(g.amount))?,
                },
                "reversed" => FactKind::Reversal { remaining_hold: 0 },
                "refunded" => {
                    // One callback per refund; the cumulative total both orders them and keys them apart.
                    let total = amount(g.refunded)?;
                    key_amount = Some(total);
                    FactKind::Refund {
                        amount: RefundAmount::TotalRefunded(total),
                    }
                }
                "declinedByTimeout" | "declinedCardPresent" => FactKind::FailedAttempt {
                    reason: self.operation.clone(),
                },
                _ => return Ok(None),
            }
        };
        let currency = match self.params.get("currency") {
            Some(code) => {
                Currency::from_numeric(code).map_err(|e| SberError::Malformed(e.to_string()))?
            }
            None => g.currency.unwrap_or(Currency::RUB),
        };
        let payment = PaymentRef::new(Source::Sber, &self.md_order)?;
        let reference = StoreReference {
            raw: self
                .order_number
                .clone()
                .or(g.order_number)
                .unwrap_or_default()
                .trim()
                .to_owned(),
            rules: rules.to_vec(),
            invoice_id: Some(self.md_order.clone()),
        };
        let external = callback_key(&self.md_order, &self.operation, self.success, key_amount);
        Ok(Some(
            PaymentFact::new(
                FactId::new(Source::Sber, &external)?,
                OrderId::unmatched(&payment),
                payment,
                PaymentMethod::Card,
                currency,
                kind,
                now_ms,
            )?
            .referring(reference)
            .paid_with(self.pay_method()),
        ))
    }

    /// The payment method the callback shows (see [`pay_method`]).
    pub fn pay_method(&self) -> Option<PayMethod> {
        let p = &self.params;
        pay_method(
            p.get("paymentWay"),
            p.get("extTransactionId").is_some() || p.get("qrcId").is_some(),
        )
    }
}

/// The facts the gateway's callbacks would have brought for an order in the state `getOrderStatusExtended.do`
/// reports, with the same fact ids (each is built as that callback, its amounts filled from `status`), and whether
/// the order is settled (nothing more happens by itself):
///
/// | `orderStatus` | facts | settled |
/// |---|---|---|
/// | `1` held | `approved` | no (captured or released later) |
/// | `2` paid | `deposited`, and `refunded` with the cumulative total when `refundedAmount` > 0 | yes |
/// | `3` released | `reversed` | yes |
/// | `4` refunded | `deposited`, `refunded` (total) | yes |
/// | `6` declined | `declinedByTimeout` (a failed attempt) | yes |
/// | `0`, `5`, absent | none | no |
pub fn status_facts(
    md_order: &str,
    status: &GatewayStatus,
    rules: &[RefRule],
    now_ms: i64,
) -> Result<(Vec<PaymentFact>, bool), SberError> {
    let (operations, settled): (&[&str], bool) = match status.order_status {
        Some(1) => (&["approved"], false),
        Some(2) if status.refunded.is_some_and(|r| r > 0) => (&["deposited", "refunded"], true),
        Some(2) => (&["deposited"], true),
        Some(3) => (&["reversed"], true),
        Some(4) => (&["deposited", "refunded"], true),
        Some(6) => (&["declinedByTimeout"], true),
        _ => (&[], false),
    };
    let mut facts = Vec::new();
    for operation in operations {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("mdOrder", md_order)
            .append_pair("operation", operation)
            .append_pair("status", "1");
        if let Some(number) = &status.order_number {
            query.append_pair("orderNumber", number);
        }
        let callback = Callback::from_params(Params::parse(query.finish().as_bytes())?)?;
        facts.extend(callback.to_fact(Some(status), rules, now_ms)?);
    }
    Ok((facts, settled))
}

/// What identifies a callback: `(mdOrder, operation, status)`, plus the cumulative refunded total for refunds (one
/// callback per refund).
pub fn callback_key(md_order: &str, operation: &str, success: bool, total: Option<i64>) -> String {
    let mut external = format!("{md_order}#{operation}#{}", u8::from(success));
    if let Some(total) = total {
        external.push_str(&format!("#{total}"));
    }
    external
}

/// The answer of `refund.do` (`errorCode` `0` is success; others carry `errorMessage`).
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponse {
    #[serde(default)]
    pub error_code: Option<String>,
    #[serde(default)]
    pub error_message: Option<String>,
}

impl RefundResponse {
    pub fn ok(&self) -> bool {
        matches!(self.error_code.as_deref(), None | Some("0"))
    }
}

/// A refund `refund.do` executed, as the fact its `refunded` callback will also produce: keyed and valued by the
/// cumulative refunded total, so the callback that follows is a duplicate, not a second refund.
pub fn refund_fact(
    md_order: &str,
    order_id: OrderId,
    total_refunded: i64,
    now_ms: i64,
) -> Result<PaymentFact, SberError> {
    Ok(PaymentFact::new(
        FactId::new(
            Source::Sber,
            &callback_key(md_order, "refunded", true, Some(total_refunded)),
        )?,
        order_id,
        PaymentRef::new(Source::Sber, md_order)?,
        PaymentMethod::Card,
        Currency::RUB,
        FactKind::Refund {
            amount: RefundAmount::TotalRefunded(total_refunded),
        },
        now_ms,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payment_way_or_an_sbp_operation_id_names_the_method() {
        let callback =
            |q: &str| Callback::from_params(Params::parse(q.as_bytes()).unwrap()).unwrap();
        // A real callback (securepayments.sberbank.ru wiki, callback page).
        let sbol = callback(
            "orderNumber=7208_1&paymentWay=SBRF_SBOL&mdOrder=8f3d48ce-f3b4-710a-bbd5-c9b001c152ee&operation=deposited&status=1&amount=50000",
        );
        assert_eq!(sbol.pay_method(), Some(PayMethod::SberPay));
        let fact = sbol.to_fact(None, &[RefRule::Order], 1).unwrap().unwrap();
        assert_eq!(fact.pay_method, Some(PayMethod::SberPay));
        let sbp = callback(
            "orderNumber=7208_1&mdOrder=8f3d48ce&operation=deposited&status=1&amount=50000&extTransactionId=A4071123456",
        );
        assert_eq!(sbp.pay_method(), Some(PayMethod::Sbp));
        assert_eq!(pay_method(Some("CARD"), false), Some(PayMethod::Card));
        assert_eq!(
            pay_method(Some("GOOGLE_PAY_CARD"), false),
            Some(PayMethod::Card)
        );
        assert_eq!(pay_method(Some("SBP_C2B"), false), Some(PayMethod::Sbp));
        assert_eq!(pay_method(None, false), None);
    }

    const DOC: &str = "mdOrder=06cf5599-3f17-7c86-bdbc-bd7d00a8b38b&operation=approved&orderNumber=2003&status=1&checksum=EAF2FB72CAB99FD5067F4BA493DD84F4D79C1589FDE8ED29622F0F07215AA972";

    #[test]
    fn documented_vector_verifies_in_any_parameter_order() {
        let p = Params::parse(DOC.as_bytes()).unwrap();
        assert_eq!(
            p.signed_string(),
            "mdOrder;06cf5599-3f17-7c86-bdbc-bd7d00a8b38b;operation;approved;orderNumber;2003;status;1;"
        );
        assert_eq!(p.verify("ooc7slpvc61k7sf7ma7p4hrefr"), Ok(()));
        let shuffled = "status=1&checksum=eaf2fb72cab99fd5067f4ba493dd84f4d79c1589fde8ed29622f0f07215aa972&orderNumber=2003&operation=approved&mdOrder=06cf5599-3f17-7c86-bdbc-bd7d00a8b38b&sign_alias=SHA-256+with+RSA";
        assert_eq!(
            Params::parse(shuffled.as_bytes())
                .unwrap()
                .verify("ooc7slpvc61k7sf7ma7p4hrefr"),
            Ok(())
        );
    }

    #[test]
    fn real_gateway_vector_without_amount_verifies() {
        let q = "mdOrder=ceea9fd0-e2bb-72b6-ceea-9fd00014d255&orderNumber=50967&checksum=1238F85DF6A28D0A5D41B7937717FD09E1A4005A7A5A67F1E08D64040E23889D&operation=deposited&status=0";
        let p = Params::parse(q.as_bytes()).unwrap();
        assert_eq!(p.verify("rdte9jhiau3b2uj5nevmcl25v0"), Ok(()));
        let cb = Callback::from_params(p).unwrap();
        assert_eq!(cb.needs().unwrap(), Need::Nothing);
        let fact = cb.to_fact(None, &[RefRule::Order], 1).unwrap().unwrap();
        assert!(matches!(fact.kind, FactKind::FailedAttempt { .. }));
    }

    #[test]
    fn wrong_key_or_tampered_parameter_is_refused() {
        let p = Params::parse(DOC.as_bytes()).unwrap();
        assert_eq!(
            p.verify("yourSecretToken"),
            Err(SberError::Forbidden("checksum does not match"))
        );
        let tampered = DOC.replace("orderNumber=2003", "orderNumber=2004");
        assert_eq!(
            Params::parse(tampered.as_bytes())
                .unwrap()
                .verify("ooc7slpvc61k7sf7ma7p4hrefr"),
            Err(SberError::Forbidden("checksum does not match"))
        );
        let unsigned = "mdOrder=x&operation=approved&status=1";
        assert_eq!(
            Params::parse(unsigned.as_bytes()).unwrap().verify("k"),
            Err(SberError::Forbidden("checksum is missing"))
        );
        assert!(matches!(
            Params::parse(b"a=1&a=2"),
            Err(SberError::Malformed(_))
        ));
    }

    #[test]
    fn operations_map_to_facts_and_ask_the_gateway_when_amounts_are_absent() {
        let cb = Callback::from_params(
            Params::parse(
                b"mdOrder=m1&operation=deposited&orderNumber=7&status=1&amount=150000&currency=643",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(cb.needs().unwrap(), Need::Nothing);
        let f = cb.to_fact(None, &[RefRule::Order], 1).unwrap().unwrap();
        assert_eq!(f.kind, FactKind::Payment { amount: 150_000 });
        assert_eq!(f.id.as_str(), "sber#m1#deposited#1");
        // Recorded on the payment's own `unmatched:` order, with `orderNumber` kept as the store reference.
        assert_eq!(f.order_id.as_str(), "unmatched:sber:m1");
        let r = f.reference.as_ref().unwrap();
        assert_eq!((r.raw.as_str(), r.invoice_id.as_deref()), ("7", Some("m1")));

        let cb = Callback::from_params(
            Params::parse(b"mdOrder=m1&operation=refunded&orderNumber=7&status=1").unwrap(),
        )
        .unwrap();
        assert_eq!(cb.needs().unwrap(), Need::GatewayStatus);
        assert!(cb.to_fact(None, &[RefRule::Order], 1).is_err());
        let g = GatewayStatus {
            refunded: Some(50_000),
            ..GatewayStatus::default()
        };
        let f = cb.to_fact(Some(&g), &[RefRule::Order], 1).unwrap().unwrap();
        assert_eq!(
            f.kind,
            FactKind::Refund {
                amount: RefundAmount::TotalRefunded(50_000)
            }
        );
        assert_eq!(f.id.as_str(), "sber#m1#refunded#1#50000");

        let cb = Callback::from_params(
            Params::parse(b"mdOrder=m1&operation=bindingCreated&status=1").unwrap(),
        )
        .unwrap();
        assert_eq!(cb.to_fact(None, &[RefRule::Order], 1).unwrap(), None);
        assert!(Callback::from_params(
            Params::parse(b"mdOrder=m1&operation=approved&status=2").unwrap()
        )
        .is_err());
    }

    #[test]
    fn a_gateway_status_gives_the_facts_its_callbacks_would_have() {
        let rules = [RefRule::Order];
        let status = |order_status: i64, refunded: Option<i64>| GatewayStatus {
            order_status: Some(order_status),
            order_number: Some("2003".into()),
            currency: Some(Currency::RUB),
            amount: Some(500_000),
            approved: Some(500_000),
            deposited: Some(500_000),
            refunded,
        };
        let md = "06cf5599-3f17-7c86-bdbc-bd7d00a8b38b";
        let (paid, settled) = status_facts(md, &status(2, None), &rules, 1).unwrap();
        assert!(settled);
        let callback = Callback::from_params(
            Params::parse(
                format!("mdOrder={md}&operation=deposited&orderNumber=2003&status=1&amount=500000")
                    .as_bytes(),
            )
            .unwrap(),
        )
        .unwrap()
        .to_fact(None, &rules, 2)
        .unwrap()
        .unwrap();
        assert_eq!(paid.len(), 1);
        assert_eq!((&paid[0].id, &paid[0].kind), (&callback.id, &callback.kind));
        assert_eq!(paid[0].reference, callback.reference);
        let (refunded, _) = status_facts(md, &status(2, Some(150_000)), &rules, 1).unwrap();
        assert_eq!(
            refunded
                .iter()
                .map(|f| f.id.as_str().to_owned())
                .collect::<Vec<_>>(),
            [
                format!("sber#{md}#deposited#1"),
                format!("sber#{md}#refunded#1#150000")
            ]
        );
        let (held, settled) = status_facts(md, &status(1, None), &rules, 1).unwrap();
        assert_eq!(
            (held[0].kind.clone(), settled),
            (FactKind::Authorization { amount: 500_000 }, false)
        );
        for waiting in [0, 5] {
            assert_eq!(
                status_facts(md, &status(waiting, None), &rules, 1).unwrap(),
                (Vec::new(), false)
            );
        }
        let (declined, settled) = status_facts(md, &status(6, None), &rules, 1).unwrap();
        assert!(settled && matches!(declined[0].kind, FactKind::FailedAttempt { .. }));
    }
}
