//! The message announced on the events queue after every committed change of an order.

use serde::{Deserialize, Serialize};

use super::fact::{PayMethod, PaymentFact, PaymentMethod};
use super::money::Currency;
use super::order::{Order, OrderState};
use super::refund::RefundStatus;

/// What caused the change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactSummary {
    pub id: String,
    pub kind: String,
    pub payment: String,
    pub amount: Option<i64>,
    pub currency: Currency,
    /// The payment method the acquirer reported with this fact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_method: Option<PayMethod>,
}

impl From<&PaymentFact> for FactSummary {
    fn from(f: &PaymentFact) -> Self {
        FactSummary {
            id: f.id.to_string(),
            kind: f.kind.name().to_owned(),
            payment: f.payment.to_string(),
            amount: f.kind.stated_amount(),
            currency: f.currency,
            pay_method: f.pay_method.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundView {
    pub id: String,
    pub amount: i64,
    pub status: RefundStatus,
    pub reason: String,
    #[serde(default)]
    pub detail: Option<String>,
    /// The refund went with its fiscal receipt through the acquirer's receipts service.
    #[serde(default)]
    pub receipt_sent: bool,
    /// Money went back (or must go back by transfer) and no receipt was sent: the shop's cashbox owes one.
    #[serde(default)]
    pub receipt_owed: bool,
}

/// One piece of money of the order (an acquirer payment, a bank transfer, cash), in minor units of the order's
/// currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentView {
    /// `tbank:<PaymentId>`, `yookassa:<id>`, `bank:<…>`, `console:<…>`, …
    pub payment: String,
    /// How the ledger counts it: `card` (acquirer money), `bank_transfer`, `cash`, `other`.
    pub method: PaymentMethod,
    /// The payment method as the acquirer reported it (`card`, `sbp`, `sberpay`, `tpay`, `yoomoney`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_method: Option<PayMethod>,
    pub paid: i64,
    pub refunded: i64,
    pub charged_back: i64,
    /// The acquirer's fee for this payment, when it states one per payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
    /// The acquirer's receipts service issued the payment's fiscal receipt.
    #[serde(default)]
    pub receipt_sent: bool,
    /// A fiscal receipt is owed for this money and nobody issued one (the store or a cashbox must).
    #[serde(default)]
    pub receipt_owed: bool,
}

/// A snapshot of the order's payment state after one change. Consumers keep the highest `version` they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderEvent {
    /// Unique per change: the fact id, or `info#<order>#<version>` for order data changes. Also the SQS dedup id.
    pub event_id: String,
    pub order_id: String,
    pub version: u64,
    pub state: OrderState,
    pub currency: Currency,
    pub total: Option<i64>,
    pub paid: i64,
    pub refunded: i64,
    pub charged_back: i64,
    pub held: i64,
    pub net: i64,
    pub paid_percent: Option<i64>,
    pub paid_at_ms: Option<i64>,
    /// Refunds requested and not finished yet (executed by refund-chargeback).
    #[serde(default)]
    pub refund_requested: i64,
    /// Every refund request and how far it got (a failed one carries the acquirer's reason).
    #[serde(default)]
    pub refunds: Vec<RefundView>,
    /// Every piece of money of the order (voided ones left out).
    #[serde(default)]
    pub payments: Vec<PaymentView>,
    pub flags: Vec<String>,
    pub cause: Option<FactSummary>,
    pub at_ms: i64,
}

impl OrderEvent {
    /// Whether the change carries refund work (requested or sent refunds): the publisher routes only these to
    /// refund-chargeback's queue.
    pub fn has_refund_work(&self) -> bool {
        self.refunds
            .iter()
            .any(|r| matches!(r.status, RefundStatus::Requested | RefundStatus::Sent))
    }

    pub fn snapshot(
        event_id: String,
        order: &Order,
        cause: Option<&PaymentFact>,
        at_ms: i64,
    ) -> Self {
        let t = order.totals();
        OrderEvent {
            event_id,
            order_id: order.id.to_string(),
            version: order.version,
            state: order.state(),
            currency: order.currency(),
            total: order.total(),
            paid: t.paid,
            refunded: t.refunded,
            charged_back: t.charged_back,
            held: t.held,
            net: t.net(),
            paid_percent: order.paid_percent(),
            paid_at_ms: order.paid_at_ms(),
            refund_requested: order.refund_claimed(),
            refunds: order
                .refund_requests
                .iter()
                .map(|(id, r)| RefundView {
                    id: id.clone(),
                    amount: r.amount,
                    status: r.status,
                    reason: r.reason.clone(),
                    detail: r.detail.clone(),
                    receipt_sent: r.receipt_sent,
                    receipt_owed: !r.receipt_sent
                        && matches!(
                            r.status,
                            RefundStatus::Succeeded | RefundStatus::AwaitingTransfer
                        ),
                })
                .collect(),
            payments: order
                .lines
                .iter()
                .filter(|(_, l)| !l.voided && (l.counted() > 0 || l.held() > 0 || l.refunded() > 0))
                .map(|(p, l)| PaymentView {
                    payment: p.to_string(),
                    method: l.method,
                    pay_method: l.pay_method.clone(),
                    paid: l.counted(),
                    refunded: l.refunded(),
                    charged_back: l.charged_back(),
                    fee: l.fee,
                    receipt_sent: l.receipt_issued,
                    receipt_owed: l.receipt_owed(),
                })
                .collect(),
            flags: order.flags().into_iter().map(str::to_owned).collect(),
            cause: cause.map(FactSummary::from),
            at_ms,
        }
    }
}
