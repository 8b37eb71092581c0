//! T-Bank (Tinkoff) acquiring notifications, EACQ API v2: Token check and mapping to payment facts.
//!
//! Token = SHA-256 (lowercase hex) over the values of the root-level scalar fields except `Token`, plus
//! `Password`, sorted by key, concatenated. Numbers keep their literal digits, booleans are `true`/`false`,
//! nested objects (`DATA`, `Receipt`) and nulls are skipped.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::domain::{
    Currency, DomainError, FactId, FactKind, OrderId, PayMethod, PaymentFact, PaymentMethod,
    PaymentRef, RefRule, RefundAmount, Source, StoreReference,
};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TbankError {
    #[error("malformed notification: {0}")]
    Malformed(String),
    #[error("notification rejected: {0}")]
    Forbidden(&'static str),
}

impl From<DomainError> for TbankError {
    fn from(e: DomainError) -> Self {
        TbankError::Malformed(e.to_string())
    }
}

/// A notification whose Token and terminal were verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub terminal_key: String,
    pub order_id: String,
    pub success: bool,
    pub status: String,
    pub payment_id: String,
    pub error_code: String,
    /// "Текущая сумма транзакции" in kopecks.
    pub amount: i64,
    /// The payment method, when the notification tells it (see [`pay_method`]).
    pub pay_method: Option<PayMethod>,
}

/// The payment method a notification shows. T-Bank's notification has no field for it (EACQ OpenAPI v1.80,
/// `NotificationPayment`), but says it two ways:
/// * `Data.Source` / `DATA.Source` (added to notifications on 20.12.2024, changelog entry 44): `qrsbp` / `sbpqr` for
///   SBP, `TinkoffPay`, `SberPay`, `cards`, … (the `GetState` `Params` `Source` values);
/// * `Pan`, "замаскированный номер карты или телефона": a masked phone (`+7 (916) ***-**-21`, no `CardId`) is an SBP
///   payment, as in a genuine signed SBP notification (`OpenRbt/sbp_client@12ef3c9`,
///   `internal/api/rest/handlers/notification_test.go`); masked card digits (`430000******0777`) are a card.
pub fn pay_method(source: Option<&str>, pan: Option<&str>) -> Option<PayMethod> {
    if let Some(source) = source.map(str::trim).filter(|s| !s.is_empty()) {
        return Some(PayMethod::from(source));
    }
    let pan = pan.map(str::trim).filter(|p| !p.is_empty())?;
    if pan.starts_with('+') || pan.contains('(') {
        Some(PayMethod::Sbp)
    } else if pan.contains('*') && pan.bytes().any(|b| b.is_ascii_digit()) {
        Some(PayMethod::Card)
    } else {
        None
    }
}

/// `Data.Source` (or `DATA.Source`) of a notification body, when present.
fn data_source(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let data = v.get("Data").or_else(|| v.get("DATA"))?;
    data.get("Source")
        .or_else(|| data.get("source"))
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// Root scalar fields rendered as the Token algorithm wants them. `Token` itself is kept (callers skip it).
pub fn canonical_fields(body: &[u8]) -> Result<BTreeMap<String, String>, TbankError> {
    let raw: BTreeMap<String, &RawValue> = serde_json::from_slice(body)
        .map_err(|e| TbankError::Malformed(format!("not a JSON object: {e}")))?;
    let mut out = BTreeMap::new();
    for (key, value) in raw {
        let text = value.get();
        let rendered = match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str::<String>(text)
                .map_err(|e| TbankError::Malformed(format!("field {key}: {e}")))?,
            Some(b'{' | b'[') | None => continue,
            _ if text == "null" => continue,
            // true, false and numbers: the literal exactly as sent.
            _ => text.to_owned(),
        };
        out.insert(key, rendered);
    }
    Ok(out)
}

/// The Token for a set of canonical fields (request signing uses the same function).
pub fn token(fields: &BTreeMap<String, String>, password: &str) -> String {
    let mut with_password: BTreeMap<&str, &str> = fields
        .iter()
        .filter(|(k, _)| k.as_str() != "Token")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    with_password.insert("Password", password);
    let mut hasher = Sha256::new();
    for value in with_password.values() {
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn field<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str, TbankError> {
    fields
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| TbankError::Malformed(format!("field {name} is missing")))
}

/// Verify and parse the exact bytes received.
pub fn verify(body: &[u8], terminal_key: &str, password: &str) -> Result<Notification, TbankError> {
    let fields = canonical_fields(body)?;
    let given = fields
        .get("Token")
        .ok_or(TbankError::Forbidden("Token is missing"))?;
    let expected = token(&fields, password);
    if !bool::from(
        expected
            .as_bytes()
            .ct_eq(given.to_ascii_lowercase().as_bytes()),
    ) {
        return Err(TbankError::Forbidden("Token does not match"));
    }
    let terminal = field(&fields, "TerminalKey")?;
    if !bool::from(terminal.as_bytes().ct_eq(terminal_key.as_bytes())) {
        return Err(TbankError::Forbidden("TerminalKey is not ours"));
    }
    let amount_text = field(&fields, "Amount")?;
    let amount = if amount_text.bytes().all(|b| b.is_ascii_digit()) {
        amount_text.parse::<i64>().ok()
    } else {
        None
    }
    .ok_or_else(|| TbankError::Malformed("Amount is not a whole number of kopecks".into()))?;
    let success = match field(&fields, "Success")? {
        "true" => true,
        "false" => false,
        _ => return Err(TbankError::Malformed("Success is not a boolean".into())),
    };
    Ok(Notification {
        terminal_key: terminal.to_owned(),
        order_id: field(&fields, "OrderId")?.to_owned(),
        success,
        status: field(&fields, "Status")?.to_owned(),
        payment_id: field(&fields, "PaymentId")?.to_owned(),
        error_code: fields.get("ErrorCode").cloned().unwrap_or_default(),
        amount,
        pay_method: pay_method(
            data_source(body).as_deref(),
            fields.get("Pan").map(String::as_str),
        ),
    })
}

/// What `Amount` means in a `PARTIAL_REFUNDED` / `PARTIAL_REVERSED` notification.
///
/// T-Bank's notification table (EACQ protocol v1.8, table 4.2.1) defines `Amount` as "Текущая сумма транзакции в
/// копейках" — the transaction's *current* amount; `GetState` and the `Cancel` response (`NewAmount`) use the
/// same notion. After a partial refund the current amount is what is left of the payment, so the refund is
/// `captured − Amount`. Kept in this one function so that a different reading changes one place.
pub fn refund_amount(status: &str, amount: i64) -> RefundAmount {
    match status {
        "REFUNDED" => RefundAmount::Remaining(0),
        _ => RefundAmount::Remaining(amount),
    }
}

/// (PaymentId, Status) identifies a notification; partial operations repeat the status, so the amount is part of
/// their key, and a failure must not shadow a later success of the same status.
pub fn notification_key(payment_id: &str, status: &str, amount: i64, success: bool) -> String {
    let mut external = format!("{payment_id}#{status}");
    if status.starts_with("PARTIAL_") {
        external.push_str(&format!("#{amount}"));
    }
    if !success {
        external.push_str("#failed");
    }
    external
}

/// The answer of `POST /v2/Cancel`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct CancelResponse {
    pub success: bool,
    #[serde(default, deserialize_with = "string_or_number")]
    pub error_code: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub payment_id: String,
    #[serde(default)]
    pub original_amount: Option<i64>,
    #[serde(default)]
    pub new_amount: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub details: Option<String>,
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// The signed body of a `Cancel` (refund) request: `Amount` in kopecks, `ExternalRequestId` as the idempotency key
/// (a repeated request returns the state of the first instead of refunding again).
pub fn cancel_request(
    terminal_key: &str,
    password: &str,
    payment_id: &str,
    amount: i64,
    external_request_id: &str,
    qr_member_id: Option<&str>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "TerminalKey": terminal_key,
        "PaymentId": payment_id,
        "Amount": amount,
        "ExternalRequestId": external_request_id,
    });
    // A root scalar: signed with the rest.
    if let Some(bank) = qr_member_id {
        body["QrMemberId"] = bank.into();
    }
    signed(body, password)
}

/// The `Receipt` of a partial `Cancel` (T-Bank EACQ OpenAPI v1.80, `Receipt_FFD_105`): `Items` with `Name`, `Price`
/// and `Amount` in kopecks, `Quantity` as a number, `Tax`, `PaymentMethod` `full_payment`, `PaymentObject`
/// `commodity` or `service`; `Taxation`; `Email` and/or `Phone` (`+7…`). A nested object, so it is outside the
/// `Token` like every nested value. "При частичной — передаются товары, которые нужно отменить."
pub fn cancel_receipt(
    receipt: &crate::domain::receipt::Receipt,
    taxation: &str,
) -> serde_json::Value {
    let items: Vec<serde_json::Value> = receipt
        .items
        .iter()
        .map(|i| {
            let quantity = serde_json::from_str::<serde_json::Number>(&i.quantity).map_or(
                serde_json::Value::String(i.quantity.clone()),
                serde_json::Value::Number,
            );
            serde_json::json!({
                "Name": i.name, "Price": i.price, "Quantity": quantity, "Amount": i.amount,
                "Tax": i.vat.tbank_tax(), "PaymentMethod": "full_payment",
                "PaymentObject": if i.service { "service" } else { "commodity" },
            })
        })
        .collect();
    let mut r = serde_json::json!({"Taxation": taxation, "Items": items});
    if let Some(e) = &receipt.email {
        r["Email"] = e.clone().into();
    }
    if let Some(p) = &receipt.phone {
        r["Phone"] = p.clone().into();
    }
    r
}

/// A request body with its `Token`, computed over its root scalars exactly as a notification's (§4.2).
pub fn signed(mut body: serde_json::Value, password: &str) -> serde_json::Value {
    let fields = canonical_fields(body.to_string().as_bytes()).unwrap_or_default();
    body["Token"] = token(&fields, password).into();
    body
}

/// What is left of the payment after a `Cancel`, as its answer says: `NewAmount`, or 0 for `REFUNDED` (full);
/// `None` when a partial or still-running refund does not say.
pub fn cancel_remaining(resp: &CancelResponse) -> Option<i64> {
    match (resp.status.as_str(), resp.new_amount) {
        (_, Some(n)) => Some(n),
        ("REFUNDED", None) => Some(0),
        _ => None,
    }
}

/// The refund a successful `Cancel` reports, as the fact its notification will also produce (same id, same
/// "remaining" amount), so the notification that follows is a duplicate, not a second refund.
pub fn cancel_fact(
    resp: &CancelResponse,
    order_id: OrderId,
    now_ms: i64,
) -> Result<Option<PaymentFact>, TbankError> {
    if !resp.success || !matches!(resp.status.as_str(), "REFUNDED" | "PARTIAL_REFUNDED") {
        return Ok(None);
    }
    // Only a full refund says how much is left without `NewAmount` (nothing); a partial one that does not say
    // is not a refund we can count: the notification (or GetState) will tell.
    let Some(remaining) = cancel_remaining(resp) else {
        return Ok(None);
    };
    Ok(Some(PaymentFact::new(
        FactId::new(
            Source::Tbank,
            &notification_key(&resp.payment_id, &resp.status, remaining, true),
        )?,
        order_id,
        PaymentRef::new(Source::Tbank, &resp.payment_id)?,
        PaymentMethod::Card,
        Currency::RUB,
        FactKind::Refund {
            amount: refund_amount(&resp.status, remaining),
        },
        now_ms,
    )?))
}

/// The signed body of `POST /v2/GetState` (EACQ protocol v1.8 §2.11: `TerminalKey`, `PaymentId`, `Token`).
pub fn get_state_request(
    terminal_key: &str,
    password: &str,
    payment_id: &str,
) -> serde_json::Value {
    signed(
        serde_json::json!({"TerminalKey": terminal_key, "PaymentId": payment_id}),
        password,
    )
}

/// The answer of `POST /v2/GetState` (§2.11, table 2.11.2). `Success` is the request's, not the payment's.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct StateResponse {
    pub success: bool,
    #[serde(default, deserialize_with = "string_or_number")]
    pub error_code: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub payment_id: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub order_id: String,
    /// "Сумма операции в копейках": the payment's current amount, as in notifications.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    /// `[{"Key": "Route", "Value": "ACQ"}, {"Key": "Source", "Value": "qrsbp"}, …]` (EACQ OpenAPI v1.80,
    /// `Items_Params`): `Source` is the payment method.
    #[serde(default)]
    pub params: Vec<StateParam>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct StateParam {
    pub key: String,
    #[serde(default, deserialize_with = "string_or_number")]
    pub value: String,
}

impl StateResponse {
    /// The payment method `Params` names (`Source`).
    pub fn pay_method(&self) -> Option<PayMethod> {
        let source = self.params.iter().find(|p| p.key == "Source")?;
        pay_method(Some(&source.value), None)
    }
}

/// The answer of `POST /v2/GetQrState`, "статус возврата платежа по СБП" (EACQ OpenAPI v1.80, tag СБП): the
/// payment's `Status`, and when the SBP refused a refund, its code and words (`QrCancelCode` `I05043`,
/// `QrCancelMessage` "У клиента нет расчетного счета в этом банке. Попробуйте вернуть деньги на счет этого клиента в
/// другом банке"). The request is signed like `GetState`'s ([`get_state_request`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct QrStateResponse {
    pub success: bool,
    #[serde(default, deserialize_with = "string_or_number")]
    pub error_code: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub qr_cancel_code: Option<String>,
    #[serde(default)]
    pub qr_cancel_message: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl QrStateResponse {
    /// The SBP's refusal of the payment's refund, in words for 1C and the console; `None` while a refund is being
    /// processed or went through, or when the SBP said nothing.
    pub fn refund_refused(&self) -> Option<String> {
        let code = self
            .qr_cancel_code
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())?;
        if !self.success
            || matches!(
                self.status.as_str(),
                "ASYNC_REFUNDING" | "REFUNDING" | "REFUNDED" | "PARTIAL_REFUNDED"
            )
        {
            return None;
        }
        Some(format!(
            "СБП отклонила возврат ({code}): {}",
            self.qr_cancel_message
                .as_deref()
                .unwrap_or("причина не указана")
        ))
    }
}

/// Statuses after which nothing more happens to the payment by itself (table 2.11.3 and §2.2): paid, released,
/// refunded, or failed. `AUTHORIZED` is not among them: a held payment is still captured or released.
pub fn is_final_status(status: &str) -> bool {
    matches!(
        status,
        "CONFIRMED"
            | "REVERSED"
            | "PARTIAL_REVERSED"
            | "REFUNDED"
            | "PARTIAL_REFUNDED"
            | "REJECTED"
            | "AUTH_FAIL"
            | "DEADLINE_EXPIRED"
            | "CANCELED"
    )
}

/// Statuses T-Bank notifies with `Success: false` (the operation failed), so a status read by `GetState` gets the
/// same fact id as its notification (`<PaymentId>#<Status>#failed`).
fn failed_status(status: &str) -> bool {
    matches!(status, "REJECTED" | "AUTH_FAIL" | "DEADLINE_EXPIRED")
}

/// The fact `GetState`'s answer is, the same fact (same id) the payment's notification of that status would be;
/// `None` while the payment is in an intermediate or not-yet-paid status (`NEW`, `FORM_SHOWED`, `AUTHORIZING`,
/// `CONFIRMING`, `REFUNDING`, `ASYNC_REFUNDING`, …). A refused request (`Success: false`) is an error.
pub fn state_fact(
    resp: &StateResponse,
    terminal_key: &str,
    rules: &[RefRule],
    now_ms: i64,
) -> Result<Option<PaymentFact>, TbankError> {
    if !resp.success {
        return Err(TbankError::Malformed(format!(
            "GetState refused: ErrorCode {} {}",
            resp.error_code,
            resp.message.as_deref().unwrap_or("")
        )));
    }
    if !(is_final_status(&resp.status) || resp.status == "AUTHORIZED") {
        return Ok(None);
    }
    let amount = resp
        .amount
        .ok_or_else(|| TbankError::Malformed("GetState answered without Amount".into()))?;
    let note = Notification {
        terminal_key: terminal_key.to_owned(),
        order_id: resp.order_id.clone(),
        success: !failed_status(&resp.status),
        status: resp.status.clone(),
        payment_id: resp.payment_id.clone(),
        error_code: resp.error_code.clone(),
        amount,
        pay_method: resp.pay_method(),
    };
    to_fact(&note, rules, now_ms)
}

/// Map a verified notification to a fact; `None` for statuses that move no money (`NEW`, `FORM_SHOWED`, …).
///
/// The fact is on the payment's `unmatched:tbank:<PaymentId>` order and carries `OrderId` as the store reference
/// (read as `rules` say: a store's T-Bank module sends the order's account number, `IM-00392`, or a payment's,
/// `392/1`) with `PaymentId` as the invoice id; `crate::app::resolve` moves it to the store order it names.
pub fn to_fact(
    n: &Notification,
    rules: &[RefRule],
    now_ms: i64,
) -> Result<Option<PaymentFact>, TbankError> {
    let kind = if !n.success {
        FactKind::FailedAttempt {
            reason: format!("{} ErrorCode {}", n.status, n.error_code),
        }
    } else {
        match n.status.as_str() {
            "AUTHORIZED" => FactKind::Authorization { amount: n.amount },
            "CONFIRMED" => FactKind::Payment { amount: n.amount },
            "REVERSED" => FactKind::Reversal { remaining_hold: 0 },
            "PARTIAL_REVERSED" => FactKind::Reversal {
                remaining_hold: n.amount,
            },
            "REFUNDED" | "PARTIAL_REFUNDED" => FactKind::Refund {
                amount: refund_amount(&n.status, n.amount),
            },
            "REJECTED" | "AUTH_FAIL" | "DEADLINE_EXPIRED" | "CANCELED" | "3DS_CHECKING" => {
                FactKind::FailedAttempt {
                    reason: n.status.clone(),
                }
            }
            _ => return Ok(None),
        }
    };
    Ok(Some(
        PaymentFact::new(
            FactId::new(
                Source::Tbank,
                &notification_key(&n.payment_id, &n.status, n.amount, n.success),
            )?,
            OrderId::unmatched(&PaymentRef::new(Source::Tbank, &n.payment_id)?),
            PaymentRef::new(Source::Tbank, &n.payment_id)?,
            PaymentMethod::Card,
            Currency::RUB,
            kind,
            now_ms,
        )?
        .referring(StoreReference {
            raw: n.order_id.trim().to_owned(),
            rules: rules.to_vec(),
            invoice_id: Some(n.payment_id.clone()),
        })
        .paid_with(n.pay_method.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_of(body: &str, password: &str) -> String {
        token(&canonical_fields(body.as_bytes()).unwrap(), password)
    }

    #[test]
    fn known_answer_vectors() {
        let devportal = r#"{"TerminalKey":"1234567890DEMO","OrderId":"000000","Success":true,"Status":"AUTHORIZED","PaymentId":"0000000","ErrorCode":"0","Amount":1111,"CardId":"000000","Pan":"200000******0000","ExpDate":"1111","RebillId":"000000"}"#;
        assert_eq!(
            token_of(devportal, "11111111111"),
            "1c0964277d0213349243065a0d5b838b8e90d2d25f740d0f2767836e710e80c8"
        );
        // Nested objects are ignored even when they hold same-named scalars; the docs' all-strings form agrees.
        let nested = devportal.replace(
            r#""RebillId":"000000""#,
            r#""RebillId":"000000","Data":{"Amount":"5"},"Receipt":{"Items":[{"Amount":1}]},"Nothing":null"#,
        );
        assert_eq!(
            token_of(&nested, "11111111111"),
            token_of(devportal, "11111111111")
        );
        let as_strings = devportal
            .replace(r#""Success":true"#, r#""Success":"true""#)
            .replace(r#""Amount":1111"#, r#""Amount":"1111""#);
        assert_eq!(
            token_of(&as_strings, "11111111111"),
            token_of(devportal, "11111111111")
        );

        let eacq = r#"{"TerminalKey":"1321054611234DEMO","OrderId":"201709","Success":true,"Status":"AUTHORIZED","PaymentId":8742591,"ErrorCode":"0","Amount":9855,"CardId":322264,"Pan":"430000******0777","ExpDate":"1122","RebillId":101709}"#;
        assert_eq!(
            token_of(eacq, "Dfsfh56dgKl"),
            "b906d28e76c6428e37b25fcf86c0adc52c63d503013fdd632e300593d165766b"
        );
        assert_eq!(
            token_of(&eacq.replace("true", "false"), "Dfsfh56dgKl"),
            "014e237c74b5746cfff5b98459740afcd75e8d624156210857287397c4c8258e"
        );
        let init = r#"{"TerminalKey":"MerchantTerminalKey","Amount":19200,"OrderId":"00000","Description":"Подарочная карта на 1000 рублей","DATA":{"Phone":"+71234567890"},"Receipt":{"Email":"a@test.ru","Taxation":"osn","Items":[{"Name":"Товар","Price":19200,"Quantity":1,"Amount":19200,"Tax":"vat10"}]}}"#;
        assert_eq!(
            token_of(init, "11111111111111"),
            "72dd466f8ace0a37a1f740ce5fb78101712bc0665d91a8108c7c8a0ccd426db2"
        );
        let legacy = r#"{"TerminalKey":"TinkoffBankTest","Amount":"100000","OrderId":"TokenExample","Description":"test"}"#;
        assert_eq!(
            token_of(legacy, "123456"),
            "597c160c8c348fb14c63c820c54b712468923a74fd111ac6b0ecda01fb5f4716"
        );
        let int_order = r#"{"TerminalKey":"TinkoffBankTest","Amount":100000,"OrderId":100500,"Description":"test"}"#;
        assert_eq!(
            token_of(int_order, "123456"),
            "2f182d493f0488bde0750d1bdb8b1de3a10bbe0a38358a89c8ea93972a55f453"
        );
    }

    #[test]
    fn tampered_amount_is_refused() {
        let body = r#"{"TerminalKey":"1234567890DEMO","OrderId":"000000","Success":true,"Status":"AUTHORIZED","PaymentId":"0000000","ErrorCode":"0","Amount":1112,"CardId":"000000","Pan":"200000******0000","ExpDate":"1111","RebillId":"000000","Token":"1c0964277d0213349243065a0d5b838b8e90d2d25f740d0f2767836e710e80c8"}"#;
        assert_eq!(
            verify(body.as_bytes(), "1234567890DEMO", "11111111111"),
            Err(TbankError::Forbidden("Token does not match"))
        );
    }

    #[test]
    fn foreign_terminal_is_refused_even_with_a_valid_token() {
        let body = r#"{"TerminalKey":"1234567890DEMO","OrderId":"000000","Success":true,"Status":"AUTHORIZED","PaymentId":"0000000","ErrorCode":"0","Amount":1111,"CardId":"000000","Pan":"200000******0000","ExpDate":"1111","RebillId":"000000","Token":"1c0964277d0213349243065a0d5b838b8e90d2d25f740d0f2767836e710e80c8"}"#;
        assert_eq!(
            verify(body.as_bytes(), "OtherTerminal", "11111111111"),
            Err(TbankError::Forbidden("TerminalKey is not ours"))
        );
        let ok = verify(body.as_bytes(), "1234567890DEMO", "11111111111").unwrap();
        assert_eq!(ok.payment_id, "0000000");
        assert_eq!(ok.amount, 1111);
    }

    #[test]
    fn malformed_bodies_are_reported_not_panicked_on() {
        for body in ["", "[]", "{", "{\"Token\":1", "\u{0}"] {
            assert!(
                matches!(
                    verify(body.as_bytes(), "k", "p"),
                    Err(TbankError::Malformed(_))
                ),
                "{body:?}"
            );
        }
        assert_eq!(
            verify(b"{}", "k", "p"),
            Err(TbankError::Forbidden("Token is missing"))
        );
    }

    fn note(status: &str, success: bool, amount: i64) -> Notification {
        Notification {
            terminal_key: "T".into(),
            order_id: "42".into(),
            success,
            status: status.into(),
            payment_id: "777".into(),
            error_code: "0".into(),
            amount,
            pay_method: None,
        }
    }

    #[test]
    fn a_cancel_receipt_has_the_documented_shape_and_leaves_the_token_as_it_was() {
        use crate::domain::receipt::{Receipt, ReceiptItem, Vat};
        let receipt = Receipt {
            items: vec![
                ReceiptItem {
                    name: "Бумага A4".into(),
                    price: 25_050,
                    quantity: "1".into(),
                    amount: 25_050,
                    vat: Vat::Vat20,
                    service: false,
                },
                ReceiptItem {
                    name: "Курьер".into(),
                    price: 30_000,
                    quantity: "1".into(),
                    amount: 30_000,
                    vat: Vat::Vat20,
                    service: true,
                },
            ],
            email: None,
            phone: Some("+79031234567".into()),
        };
        let mut body = cancel_request(
            "TinkoffBankTest",
            "pw",
            "2304882",
            55_050,
            "k",
            Some("100000000004"),
        );
        assert_eq!(body["QrMemberId"], "100000000004", "a root scalar, signed");
        let token = body["Token"].clone();
        body["Receipt"] = cancel_receipt(&receipt, "osn");
        let fields = canonical_fields(body.to_string().as_bytes()).unwrap();
        assert_eq!(
            json_token(&fields, "pw"),
            token,
            "nested Receipt is outside the Token"
        );
        let r = &body["Receipt"];
        assert_eq!(
            (r["Taxation"].as_str(), r["Phone"].as_str()),
            (Some("osn"), Some("+79031234567"))
        );
        assert!(r.get("Email").is_none());
        assert_eq!(r["Items"][0]["Quantity"], 1);
        assert_eq!(r["Items"][0]["Tax"], "vat20");
        assert_eq!(r["Items"][1]["PaymentObject"], "service");
        let sum: i64 = r["Items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["Amount"].as_i64().unwrap())
            .sum();
        assert_eq!(sum, body["Amount"].as_i64().unwrap());
    }

    fn json_token(fields: &BTreeMap<String, String>, password: &str) -> serde_json::Value {
        serde_json::Value::String(token(fields, password))
    }

    const FIXTURE_PASSWORD: &str = "tbank-sbp-fixture-password";

    #[test]
    fn an_sbp_notification_is_told_apart_by_its_masked_phone_and_data_source_wins() {
        let confirmed = include_bytes!(
            "../../../tests/fixtures/acquiring/tbank__sbp-notification-confirmed.json"
        );
        let n = verify(confirmed, "1700000000000DEMO", FIXTURE_PASSWORD).unwrap();
        assert_eq!(n.pay_method, Some(PayMethod::Sbp));
        let fact = to_fact(&n, &[RefRule::PaymentNumber], 1).unwrap().unwrap();
        assert_eq!(fact.pay_method, Some(PayMethod::Sbp));
        assert_eq!(fact.kind, FactKind::Payment { amount: 150_000 });
        let tpay = include_bytes!(
            "../../../tests/fixtures/acquiring/tbank__tpay-notification-with-data-source.json"
        );
        let n = verify(tpay, "1700000000000DEMO", FIXTURE_PASSWORD).unwrap();
        assert_eq!(
            n.pay_method,
            Some(PayMethod::TPay),
            "Data is outside the Token, read apart"
        );
        // The card notifications of the protocol document: a card.
        assert_eq!(
            pay_method(None, Some("430000******0777")),
            Some(PayMethod::Card)
        );
        assert_eq!(pay_method(None, None), None);
        assert_eq!(pay_method(Some("qrsbp"), None), Some(PayMethod::Sbp));
        assert_eq!(pay_method(Some("sbpqr"), None), Some(PayMethod::Sbp));
        assert_eq!(pay_method(Some("SberPay"), None), Some(PayMethod::SberPay));
        assert_eq!(
            pay_method(Some("Installment"), None),
            Some(PayMethod::Other("installment".into()))
        );
        let state: StateResponse = serde_json::from_str(
            r#"{"Success":true,"ErrorCode":"0","Status":"CONFIRMED","PaymentId":"13660","OrderId":"21050","Amount":150000,
                "Params":[{"Key":"Route","Value":"ACQ"},{"Key":"Source","Value":"qrsbp"}]}"#,
        )
        .unwrap();
        assert_eq!(state.pay_method(), Some(PayMethod::Sbp));
        let fact = state_fact(&state, "T", &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert_eq!(fact.pay_method, Some(PayMethod::Sbp));
    }

    #[test]
    fn statuses_map_to_facts() {
        let f = to_fact(&note("CONFIRMED", true, 500), &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FactKind::Payment { amount: 500 });
        assert_eq!(f.id.as_str(), "tbank#777#CONFIRMED");
        assert_eq!(f.payment.as_str(), "tbank:777");
        let f = to_fact(&note("PARTIAL_REFUNDED", true, 300), &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            f.kind,
            FactKind::Refund {
                amount: RefundAmount::Remaining(300)
            }
        );
        assert_eq!(f.id.as_str(), "tbank#777#PARTIAL_REFUNDED#300");
        let f = to_fact(&note("REFUNDED", true, 0), &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert_eq!(
            f.kind,
            FactKind::Refund {
                amount: RefundAmount::Remaining(0)
            }
        );
        let f = to_fact(&note("REVERSED", true, 500), &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert_eq!(f.kind, FactKind::Reversal { remaining_hold: 0 });
        let f = to_fact(&note("REJECTED", true, 500), &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert!(matches!(f.kind, FactKind::FailedAttempt { .. }));
        let f = to_fact(&note("AUTHORIZED", false, 500), &[RefRule::Order], 1)
            .unwrap()
            .unwrap();
        assert!(matches!(f.kind, FactKind::FailedAttempt { .. }));
        assert_eq!(f.id.as_str(), "tbank#777#AUTHORIZED#failed");
        assert_eq!(
            to_fact(&note("FORM_SHOWED", true, 500), &[RefRule::Order], 1).unwrap(),
            None
        );
    }

    /// Issue #14, kind 7: a `Cancel` answer without `NewAmount` is never read as "everything refunded".
    #[test]
    fn a_cancel_answer_without_new_amount_counts_only_when_it_says_refunded() {
        let answer = |status: &str, new_amount: Option<i64>| CancelResponse {
            success: true,
            error_code: "0".into(),
            status: status.into(),
            payment_id: "700".into(),
            original_amount: Some(10_000),
            new_amount,
            message: None,
            details: None,
        };
        let order = OrderId::parse("1").unwrap();
        let partial = cancel_fact(&answer("PARTIAL_REFUNDED", Some(7_000)), order.clone(), 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            partial.kind,
            FactKind::Refund {
                amount: RefundAmount::Remaining(7_000)
            }
        );
        assert_eq!(
            cancel_fact(&answer("PARTIAL_REFUNDED", None), order.clone(), 0).unwrap(),
            None
        );
        assert_eq!(cancel_remaining(&answer("REFUNDING", None)), None);
        assert_eq!(cancel_remaining(&answer("REFUNDED", None)), Some(0));
    }

    #[test]
    fn get_state_gives_the_notifications_fact_and_waits_on_intermediate_statuses() {
        let answer = |status: &str, amount: i64| StateResponse {
            success: true,
            error_code: "0".into(),
            status: status.into(),
            payment_id: "8742591".into(),
            order_id: "IM-00392".into(),
            amount: Some(amount),
            message: None,
            params: Vec::new(),
        };
        let rules = [RefRule::OrderNumber];
        let polled = state_fact(&answer("CONFIRMED", 150_000), "T", &rules, 1)
            .unwrap()
            .unwrap();
        let notified = to_fact(
            &Notification {
                terminal_key: "T".into(),
                order_id: "IM-00392".into(),
                success: true,
                status: "CONFIRMED".into(),
                payment_id: "8742591".into(),
                error_code: "0".into(),
                amount: 150_000,
                pay_method: None,
            },
            &rules,
            2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (polled.id.as_str(), &polled.kind),
            (notified.id.as_str(), &notified.kind)
        );
        assert_eq!(polled.reference, notified.reference);
        for waiting in [
            "NEW",
            "FORM_SHOWED",
            "AUTHORIZING",
            "CONFIRMING",
            "ASYNC_REFUNDING",
        ] {
            assert_eq!(
                state_fact(&answer(waiting, 150_000), "T", &rules, 1).unwrap(),
                None
            );
        }
        let rejected = state_fact(&answer("REJECTED", 150_000), "T", &rules, 1)
            .unwrap()
            .unwrap();
        assert_eq!(rejected.id.as_str(), "tbank#8742591#REJECTED#failed");
        let partial = state_fact(&answer("PARTIAL_REFUNDED", 100_000), "T", &rules, 1)
            .unwrap()
            .unwrap();
        assert_eq!(partial.id.as_str(), "tbank#8742591#PARTIAL_REFUNDED#100000");
        let mut refused = answer("NEW", 0);
        refused.success = false;
        refused.error_code = "7".into();
        assert!(state_fact(&refused, "T", &rules, 1).is_err());
    }

    #[test]
    fn get_state_requests_are_signed_like_every_request() {
        let body = get_state_request("TinkoffBankTest", "secret", "10063");
        let fields = canonical_fields(body.to_string().as_bytes()).unwrap();
        assert_eq!(body["Token"], token(&fields, "secret"));
        assert_eq!(body["PaymentId"], "10063");
    }
}
