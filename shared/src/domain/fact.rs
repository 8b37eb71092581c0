//! Payment facts: one per external event, keyed by `(source, external id)`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::money::Currency;
use super::refund_status::RefundProgress;
use super::DomainError;

const MAX_ID_LEN: usize = 256;

fn check_id(what: &'static str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::EmptyId(what));
    }
    if value.len() > MAX_ID_LEN || value.chars().any(char::is_control) {
        return Err(DomainError::BadId(what, value.chars().take(40).collect()));
    }
    Ok(())
}

const UNMATCHED_PREFIX: &str = "unmatched:";

/// Where a document a line is linked to comes from (`1c:<Ид>`, `bank:<operation>`; see [`link`]).
pub fn link_source(link: &str) -> Option<Source> {
    Source::parse(link.split_once(':')?.0)
}

/// A line's link to a document of `source` (`1c:<Ид>`, `bank:<operation key>`), as [`link_source`] reads it.
pub fn link(source: Source, document: &str) -> String {
    format!("{}:{document}", source.as_str())
}

const MOVED_PREFIX: &str = "order:";

/// The link money leaves on its `unmatched:` line when it moves to the order its reference named
/// (`order:<id>`), so an interrupted move is finished, never repeated.
pub fn moved_to_link(order: &OrderId) -> String {
    format!("{MOVED_PREFIX}{order}")
}

/// The order a [`moved_to_link`] names.
pub fn moved_to(link: &str) -> Option<OrderId> {
    OrderId::parse(link.strip_prefix(MOVED_PREFIX)?.to_owned()).ok()
}

/// The store's order id (what the buyer's order is known by in 1C-Bitrix), or a synthetic id for money whose
/// order is not known yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderId(String);

impl OrderId {
    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        let value = value.into();
        check_id("order id", &value)?;
        Ok(OrderId(value.trim().to_owned()))
    }

    /// Id for money that arrived without any order reference, so it is still recorded (never dropped).
    pub fn unmatched(payment: &PaymentRef) -> Self {
        OrderId(format!("{UNMATCHED_PREFIX}{}", payment.0))
    }

    /// Money waiting for its order (`unmatched:<payment ref>`), not an order of the store's.
    pub fn is_unmatched(&self) -> bool {
        self.0.starts_with(UNMATCHED_PREFIX)
    }

    /// The money an `unmatched:` order holds, and where it came from.
    pub fn unmatched_source(&self) -> Option<Source> {
        let payment = self.0.strip_prefix(UNMATCHED_PREFIX)?;
        Source::parse(payment.split_once(':')?.0)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for OrderId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        OrderId::parse(value)
    }
}

impl From<OrderId> for String {
    fn from(value: OrderId) -> Self {
        value.0
    }
}

/// Where a fact came from. Part of every fact id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Tbank,
    Sber,
    Yookassa,
    Bank,
    #[serde(rename = "1c")]
    OneC,
    Store,
    /// `refund-chargeback`'s own reports on refund requests.
    Refund,
    /// A person in paysync's console (a cash payment recorded by hand, money allocated, a refund approved); the
    /// fact carries who, when and why ([`Audit`]).
    Console,
}

impl Source {
    /// Every source, so that a new one is named everywhere a `match` must learn it.
    pub const ALL: [Source; 8] = [
        Source::Tbank,
        Source::Sber,
        Source::Yookassa,
        Source::Bank,
        Source::OneC,
        Source::Store,
        Source::Refund,
        Source::Console,
    ];

    /// The acquirers: money they took can go back through their refund API.
    pub const ACQUIRERS: [Source; 3] = [Source::Tbank, Source::Sber, Source::Yookassa];

    /// The source named by a payment ref's or fact id's prefix (`tbank`, `1c`, …).
    pub fn parse(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }

    pub fn is_acquirer(self) -> bool {
        Source::ACQUIRERS.contains(&self)
    }

    /// How a person (and 1C's `Метод оплаты`) names where the money came from; `None` for sources that take no money
    /// themselves.
    pub fn display_name(self) -> Option<&'static str> {
        match self {
            Source::Tbank => Some("T-Bank"),
            Source::Sber => Some("Сбербанк"),
            Source::Yookassa => Some("ЮKassa"),
            Source::Bank => Some("Банковский перевод"),
            Source::OneC | Source::Store | Source::Refund | Source::Console => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Tbank => "tbank",
            Source::Sber => "sber",
            Source::Yookassa => "yookassa",
            Source::Bank => "bank",
            Source::OneC => "1c",
            Source::Store => "store",
            Source::Refund => "refund",
            Source::Console => "console",
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Stable idempotency key of a fact: `<source>#<external id>`, e.g. `tbank#8742591#CONFIRMED`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FactId(String);

impl FactId {
    pub fn new(source: Source, external: &str) -> Result<Self, DomainError> {
        check_id("external id", external)?;
        Ok(FactId(format!("{}#{}", source.as_str(), external.trim())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FactId {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        check_id("fact id", &value)?;
        Ok(FactId(value))
    }
}

impl From<FactId> for String {
    fn from(value: FactId) -> Self {
        value.0
    }
}

/// What identifies one piece of money across sources, e.g. `tbank:8742591` or `yookassa:<payment id>`.
/// Facts with the same payment ref describe the same money and are merged, never added.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentRef(String);

impl PaymentRef {
    pub fn new(source: Source, external: &str) -> Result<Self, DomainError> {
        check_id("payment id", external)?;
        Ok(PaymentRef(format!(
            "{}:{}",
            source.as_str(),
            external.trim()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Where the money was reported from (`tbank:8742591` → T-Bank).
    pub fn source(&self) -> Option<Source> {
        Source::parse(self.0.split_once(':')?.0)
    }

    /// The source's own id of the money (`tbank:8742591` → `8742591`).
    pub fn external(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, e)| e)
    }
}

impl fmt::Display for PaymentRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PaymentRef {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        check_id("payment ref", &value)?;
        Ok(PaymentRef(value))
    }
}

impl From<PaymentRef> for String {
    fn from(value: PaymentRef) -> Self {
        value.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Card,
    BankTransfer,
    Cash,
    Other,
}

/// The payment method of acquirer money as the acquirer reports it: a card, SBP (the Faster Payments System, paid
/// by QR or link from the buyer's bank app), a wallet (SberPay, T-Pay, YooMoney) or another the acquirer names.
///
/// Sources: YooKassa `payment_method.type` (`bank_card`, `sbp`, `sberbank` = SberPay, `tinkoff_bank` = T-Pay,
/// `yoo_money`; https://yookassa.ru/developers/api#payment_object_payment_method); T-Bank notifications of SBP
/// payments and `GetQr`/`GetQrState` (`shared/reference/acquiring-notifications.md`); Sber `paymentWay`.
/// Serialized as its lower-case name (`card`, `sbp`, `sberpay`, `tpay`, `yoomoney`, or the acquirer's own word).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum PayMethod {
    Card,
    Sbp,
    SberPay,
    TPay,
    YooMoney,
    /// Another method, in the acquirer's word (lower case, at most 40 of `[a-z0-9_]`).
    Other(String),
}

impl PayMethod {
    pub fn as_str(&self) -> &str {
        match self {
            PayMethod::Card => "card",
            PayMethod::Sbp => "sbp",
            PayMethod::SberPay => "sberpay",
            PayMethod::TPay => "tpay",
            PayMethod::YooMoney => "yoomoney",
            PayMethod::Other(s) => s,
        }
    }

    /// As 1C and the store's manager read it.
    pub fn display_ru(&self) -> &str {
        match self {
            PayMethod::Card => "Банковская карта",
            PayMethod::Sbp => "СБП",
            PayMethod::SberPay => "SberPay",
            PayMethod::TPay => "T-Pay",
            PayMethod::YooMoney => "ЮMoney",
            PayMethod::Other(s) => s,
        }
    }

    /// Whether refunds of it follow SBP's rules (T-Bank: asynchronous, `ExternalRequestId` ignored).
    pub fn is_sbp(&self) -> bool {
        matches!(self, PayMethod::Sbp)
    }
}

impl From<String> for PayMethod {
    /// Our own names and the acquirers' words for the same methods; anything else kept, sanitized.
    fn from(value: String) -> Self {
        let word = value.trim().to_ascii_lowercase();
        match word.as_str() {
            "card" | "bank_card" | "cards" => PayMethod::Card,
            "sbp" | "qr" | "qrsbp" | "sbpqr" | "sbp_c2b" | "sbp_c2b_binding" => PayMethod::Sbp,
            "sberpay" | "sberbank" | "sber_pay" | "sbrf_sbol" | "sberid" => PayMethod::SberPay,
            "tpay" | "t-pay" | "tinkoff_bank" | "tinkoffpay" | "tinkoff_pay" | "t_pay" => {
                PayMethod::TPay
            }
            "yoomoney" | "yoo_money" => PayMethod::YooMoney,
            _ => PayMethod::Other(
                word.chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .take(40)
                    .collect(),
            ),
        }
    }
}

impl From<&str> for PayMethod {
    fn from(value: &str) -> Self {
        PayMethod::from(value.to_owned())
    }
}

impl From<PayMethod> for String {
    fn from(value: PayMethod) -> Self {
        value.as_str().to_owned()
    }
}

/// How a refund's amount is stated by its source. Providers differ, and mixing them up double-counts refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "as", content = "minor", rename_all = "snake_case")]
pub enum RefundAmount {
    /// The amount of this one refund (YooKassa refund object, a 1C return document).
    Delta(i64),
    /// Everything refunded on the payment so far (Sber `refundedAmount`).
    TotalRefunded(i64),
    /// What is left of the payment after the refund (T-Bank `Amount`, "current transaction amount"); 0 = full.
    Remaining(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FactKind {
    /// Funds held on the card, not yet captured.
    Authorization {
        amount: i64,
    },
    /// Money received (captured card payment, bank transfer, cash).
    Payment {
        amount: i64,
    },
    /// A hold released; `remaining_hold` is what stays held (0 = fully released).
    Reversal {
        remaining_hold: i64,
    },
    Refund {
        amount: RefundAmount,
    },
    Chargeback {
        amount: i64,
    },
    /// A payment attempt that failed or expired; moves no money.
    FailedAttempt {
        reason: String,
    },
    /// A source withdrew a payment it had reported (1C cancelled or deleted the payment document): the line no
    /// longer counts. Once voided, a line stays voided.
    Void {
        reason: String,
    },
    /// The source says the order is paid in full without naming an amount (1C's order-level "paid"): whatever is
    /// still open counts as paid by this source, never on top of money already held.
    SettledInFull,
    /// The source cancelled the order.
    OrderCancelled,
    /// A source asks for money to be returned to the buyer (1C return document, cancellation of a paid order).
    /// Moves no money by itself: `refund-chargeback` executes it and the provider's refund completes it.
    RefundRequested {
        amount: i64,
        reason: String,
        /// How the money should go back, as the source said (card, bank transfer, cash).
        method: PaymentMethod,
        /// The failed request this one tries again (a person's retry in the console): that one stops asking for
        /// attention.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retries: Option<String>,
        /// An SBP refund to another bank of the buyer: the bank's SBP member id (T-Bank `QrMemberId`, "Код банка
        /// в классификации СБП, в который нужно выполнить возврат", from `QrMembersList`), after the SBP refused the
        /// refund to the bank that paid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_bank: Option<String>,
    },
    /// A person decided that a cancelled order keeps `amount` (nothing goes back; the goods were delivered, the
    /// buyer took a credit): the order no longer asks for a refund decision. Moves no money.
    RefundWaived {
        amount: i64,
        reason: String,
    },
    /// `refund-chargeback` reports how far a request got (sent, pending at the acquirer, failed, succeeded).
    RefundProgress(RefundProgress),
}

impl FactKind {
    pub fn name(&self) -> &'static str {
        match self {
            FactKind::Authorization { .. } => "authorization",
            FactKind::Payment { .. } => "payment",
            FactKind::Reversal { .. } => "reversal",
            FactKind::Refund { .. } => "refund",
            FactKind::Chargeback { .. } => "chargeback",
            FactKind::FailedAttempt { .. } => "failed_attempt",
            FactKind::Void { .. } => "void",
            FactKind::SettledInFull => "settled_in_full",
            FactKind::OrderCancelled => "order_cancelled",
            FactKind::RefundRequested { .. } => "refund_requested",
            FactKind::RefundWaived { .. } => "refund_waived",
            FactKind::RefundProgress(_) => "refund_progress",
        }
    }

    /// The amount as the source stated it (for humans and logs).
    pub fn stated_amount(&self) -> Option<i64> {
        match self {
            FactKind::Authorization { amount }
            | FactKind::Payment { amount }
            | FactKind::Chargeback { amount }
            | FactKind::RefundRequested { amount, .. }
            | FactKind::RefundWaived { amount, .. } => Some(*amount),
            FactKind::Reversal { remaining_hold } => Some(*remaining_hold),
            FactKind::Refund { amount } => Some(match amount {
                RefundAmount::Delta(v)
                | RefundAmount::TotalRefunded(v)
                | RefundAmount::Remaining(v) => *v,
            }),
            FactKind::FailedAttempt { .. }
            | FactKind::Void { .. }
            | FactKind::SettledInFull
            | FactKind::OrderCancelled
            | FactKind::RefundProgress(_) => None,
        }
    }
}

/// One thing a source told us about money of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFact {
    pub id: FactId,
    pub order_id: OrderId,
    pub payment: PaymentRef,
    pub method: PaymentMethod,
    pub currency: Currency,
    #[serde(flatten)]
    pub kind: FactKind,
    /// When it happened (provider time if known, else receive time), Unix milliseconds.
    pub at_ms: i64,
    /// A source document this fact merges into an existing line (1C echoing money we already hold), e.g.
    /// `1c:<Ид>`; recorded on the line so that one line is linked to one such document only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<String>,
    /// Who paid and why, as the bank reported it: what a person (or 1C's later document) needs to resolve money
    /// that matched no order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    /// The acquirer's reference to the store, as received (what its order may be); kept on the line so that
    /// money whose order is not known yet can find it later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<super::reference::StoreReference>,
    /// Who decided it, for facts a person recorded in the console (the audit trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audit>,
    /// The payment method as the acquirer reported it (acquirer money only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_method: Option<PayMethod>,
    /// The acquirer's fee for this payment, minor units, when the acquirer states it per payment (YooKassa: `amount`
    /// − `income_amount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
    /// The acquirer's receipts service issued this payment's fiscal receipt (YooKassa `receipt_registration:
    /// succeeded`, or an acquirer named in `RECEIPTS`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receipt_issued: bool,
}

/// A person's decision: who (`user`, the console login, and the `role` it had), and why (`reason`, as typed). The
/// time is the fact's `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub user: String,
    pub role: Role,
    pub reason: String,
}

/// What a console user may do (`CONSOLE_USERS`; the rules are `app::console::may`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads everything, decides nothing.
    Viewer,
    /// Allocates money, accepts payout mismatches, records and reverses manual payments.
    Accountant,
    /// Everything an accountant does, and approves or denies refunds.
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Accountant => "accountant",
            Role::Manager => "manager",
        }
    }
}

/// The other side of a bank payment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// `YYYY-MM-DD` of the payment document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default)]
    pub purpose: String,
}

impl PaymentFact {
    pub fn new(
        id: FactId,
        order_id: OrderId,
        payment: PaymentRef,
        method: PaymentMethod,
        currency: Currency,
        kind: FactKind,
        at_ms: i64,
    ) -> Result<Self, DomainError> {
        if let Some(amount) = kind.stated_amount() {
            if amount < 0 {
                return Err(DomainError::NegativeAmount(amount));
            }
        }
        Ok(PaymentFact {
            id,
            order_id,
            payment,
            method,
            currency,
            kind,
            at_ms,
            links: None,
            payer: None,
            reference: None,
            audit: None,
            pay_method: None,
            fee: None,
            receipt_issued: false,
        })
    }

    /// Mark a payment the acquirer itself reports receipted.
    pub fn receipted(mut self, issued: bool) -> Self {
        self.receipt_issued |= issued && matches!(self.kind, FactKind::Payment { .. });
        self
    }

    /// Mark a payment whose acquirer is one of those issuing the shop's receipts (`RECEIPTS`) as receipted.
    pub fn receipted_by(mut self, acquirers: &[Source]) -> Self {
        let by_acquirer = self
            .payment
            .source()
            .is_some_and(|s| acquirers.contains(&s));
        if by_acquirer && matches!(self.kind, FactKind::Payment { .. }) {
            self.receipt_issued = true;
        }
        self
    }

    /// The payment method the acquirer reported.
    pub fn paid_with(mut self, method: Option<PayMethod>) -> Self {
        self.pay_method = method;
        self
    }

    /// The acquirer's fee for this payment (minor units; a negative one is not a fee and is dropped).
    pub fn with_fee(mut self, fee: Option<i64>) -> Self {
        self.fee = fee.filter(|f| *f >= 0);
        self
    }

    /// Carry the acquirer's reference to the store (see [`super::reference`]).
    pub fn referring(mut self, reference: super::reference::StoreReference) -> Self {
        self.reference = Some(reference);
        self
    }

    /// The same fact on another order (money whose reference resolved after it was recorded).
    pub fn on_order(mut self, order_id: OrderId) -> Self {
        self.order_id = order_id;
        self
    }

    /// Mark the fact as another source's view of money already on `payment`'s line.
    pub fn linking(mut self, document: impl Into<String>) -> Self {
        self.links = Some(document.into());
        self
    }

    /// The same fact about another line (a refund request naming the payment it returns).
    pub fn with_payment(mut self, payment: PaymentRef) -> Self {
        self.payment = payment;
        self
    }

    /// Record who decided it (a person in the console).
    pub fn decided_by(mut self, audit: Audit) -> Self {
        self.audit = Some(audit);
        self
    }

    pub fn paid_by(mut self, payer: Payer) -> Self {
        self.payer = Some(payer);
        self
    }
}
