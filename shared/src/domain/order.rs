//! The order aggregate: payment lines merged from facts, running totals and the derived payment state.
//!
//! Every line is a join-semilattice (max of amounts, min of "what is left", union of keyed deltas), so applying a
//! set of facts in any order, any number of times, gives the same order.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::fact::{
    FactKind, OrderId, PayMethod, Payer, PaymentFact, PaymentMethod, PaymentRef, RefundAmount,
};
use super::money::Currency;
use super::refund::{RefundRequest, RefundStatus};
use super::DomainError;

/// Money an acquirer took (and can give back through its refund API).
pub fn is_acquirer(p: &PaymentRef) -> bool {
    p.source().is_some_and(super::fact::Source::is_acquirer)
}

/// What the store (or 1C) says about the order itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    pub number: Option<String>,
    /// Order total in minor units.
    pub total: i64,
    pub currency: Currency,
    #[serde(default)]
    pub cancelled: bool,
    /// What a complete order document needs (for 1C, when paysync is its only order-exchange peer).
    #[serde(default)]
    pub details: OrderDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Buyer {
    pub id: Option<String>,
    pub name: Option<String>,
    pub full_name: Option<String>,
    pub inn: Option<String>,
    pub kpp: Option<String>,
    pub address: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub id: Option<String>,
    pub name: String,
    /// Price per unit, minor units.
    pub price: i64,
    /// Quantity as the store writes it ("1", "2.5").
    pub quantity: String,
    pub amount: i64,
    /// The store's VAT rate of the line as written (Bitrix basket `vatRate`: `0.2`, `0.22`, `0`; `None`: no rate set,
    /// i.e. without VAT), what a refund's fiscal receipt names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_rate: Option<String>,
    /// Whether the price includes the VAT (Bitrix basket `vatIncluded`; `None`: not said).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat_included: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDetails {
    /// `YYYY-MM-DDTHH:MM:SS`, store local time.
    pub created: Option<String>,
    pub buyer: Option<Buyer>,
    pub lines: Vec<OrderLine>,
    /// Delivery service name and price (minor units).
    pub delivery: Option<(String, i64)>,
    pub comment: Option<String>,
    /// Store status id and name.
    pub status: Option<(String, String)>,
    pub payment_method: Option<String>,
    /// Invoice numbers issued for the order (what bank payment purposes refer to).
    #[serde(default)]
    pub invoices: Vec<String>,
    /// The store's payments of the order (`sale.order.get`), what acquirer references name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payments: Vec<super::reference::StorePaymentInfo>,
}

impl OrderInfo {
    pub fn new(number: Option<String>, total: i64, currency: Currency) -> Self {
        OrderInfo {
            number,
            total,
            currency,
            cancelled: false,
            details: OrderDetails::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    Unpaid,
    PartiallyPaid,
    /// Money is kept but the order's total is not known (the store has not described it): never `paid`, because
    /// nobody can say the money covers the order. 1C and the store are told the amount only.
    PaidUnknownTotal,
    Paid,
    Overpaid,
    Refunded,
    Cancelled,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Unpaid => "unpaid",
            OrderState::PartiallyPaid => "partially_paid",
            OrderState::PaidUnknownTotal => "paid_unknown_total",
            OrderState::Paid => "paid",
            OrderState::Overpaid => "overpaid",
            OrderState::Refunded => "refunded",
            OrderState::Cancelled => "cancelled",
        }
    }
}

/// Everything known about one piece of money (one acquirer payment, one bank transfer, one cash receipt).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentLine {
    pub method: PaymentMethod,
    pub currency: Currency,
    #[serde(default)]
    pub authorized: i64,
    #[serde(default)]
    pub captured: i64,
    /// Smallest "still held" amount reported by a partial reversal.
    #[serde(default)]
    pub hold_left: Option<i64>,
    #[serde(default)]
    pub hold_released: bool,
    #[serde(default)]
    pub failed: bool,
    /// Individual refunds keyed by the fact that reported them.
    #[serde(default)]
    pub refund_deltas: BTreeMap<String, i64>,
    /// Largest cumulative "refunded so far" reported.
    #[serde(default)]
    pub refunded_total: i64,
    /// Smallest "left of the payment after refunds" reported.
    #[serde(default)]
    pub remaining: Option<i64>,
    #[serde(default)]
    pub chargebacks: BTreeMap<String, i64>,
    /// Earliest time money was reported received on this line.
    #[serde(default)]
    pub paid_at_ms: Option<i64>,
    /// The source withdrew this payment (see `FactKind::Void`).
    #[serde(default)]
    pub voided: bool,
    /// Order-level "paid in full" without an amount: covers whatever the other lines leave open.
    #[serde(default)]
    pub settles_remainder: bool,
    /// Documents of other sources linked to this line (e.g. `1c:<Ид>`).
    #[serde(default)]
    pub linked: BTreeSet<String>,
    /// Who paid, when a bank reported it (the first report kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payer: Option<Payer>,
    /// The acquirer's reference to the store (the smallest reported, so any arrival order gives the same line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<super::reference::StoreReference>,
    /// The payment method the acquirer reported (the smallest, should two reports differ: any arrival order gives
    /// the same line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pay_method: Option<PayMethod>,
    /// The acquirer's fee for this payment, minor units (the largest reported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<i64>,
    /// The acquirer's receipts service issued the payment's fiscal receipt.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receipt_issued: bool,
    #[serde(default)]
    pub last_at_ms: i64,
}

impl PaymentLine {
    fn new(method: PaymentMethod, currency: Currency) -> Self {
        PaymentLine {
            method,
            currency,
            authorized: 0,
            captured: 0,
            hold_left: None,
            hold_released: false,
            failed: false,
            refund_deltas: BTreeMap::new(),
            refunded_total: 0,
            remaining: None,
            chargebacks: BTreeMap::new(),
            paid_at_ms: None,
            last_at_ms: 0,
            voided: false,
            settles_remainder: false,
            linked: BTreeSet::new(),
            payer: None,
            reference: None,
            pay_method: None,
            fee: None,
            receipt_issued: false,
        }
    }

    /// Money a fiscal receipt is owed for and nobody issued one: acquirer money without the acquirer's receipt, cash,
    /// a transfer from a person. A transfer from an organisation (a 10-digit INN) needs none: 54-FZ applies to
    /// settlements with individuals.
    pub fn receipt_owed(&self) -> bool {
        let organisation = self
            .payer
            .as_ref()
            .and_then(|p| p.inn.as_deref())
            .is_some_and(|inn| inn.len() == 10);
        let b2b = self.method == PaymentMethod::BankTransfer && organisation;
        let exempt = self.receipt_issued || b2b || self.settles_remainder;
        self.counted() > 0 && !exempt
    }

    /// Captured money that still counts (a voided line counts nothing).
    pub fn counted(&self) -> i64 {
        if self.voided {
            0
        } else {
            self.captured
        }
    }

    fn merge(&mut self, fact: &PaymentFact) {
        // Deterministic whatever the arrival order.
        self.method = self.method.min(fact.method);
        self.last_at_ms = self.last_at_ms.max(fact.at_ms);
        let key = fact.id.as_str().to_owned();
        if let Some(doc) = &fact.links {
            self.linked.insert(doc.clone());
        }
        if self.payer.is_none() {
            self.payer.clone_from(&fact.payer);
        }
        if let Some(r) = &fact.reference {
            if self.reference.as_ref().is_none_or(|known| r < known) {
                self.reference = Some(r.clone());
            }
        }
        if let Some(m) = &fact.pay_method {
            if self.pay_method.as_ref().is_none_or(|known| m < known) {
                self.pay_method = Some(m.clone());
            }
        }
        if let Some(fee) = fact.fee {
            self.fee = Some(self.fee.map_or(fee, |f| f.max(fee)));
        }
        self.receipt_issued |= fact.receipt_issued;
        match &fact.kind {
            FactKind::Authorization { amount } => self.authorized = self.authorized.max(*amount),
            FactKind::Payment { amount } => {
                self.captured = self.captured.max(*amount);
                self.paid_at_ms = Some(self.paid_at_ms.map_or(fact.at_ms, |t| t.min(fact.at_ms)));
            }
            FactKind::Reversal { remaining_hold } => {
                if *remaining_hold == 0 {
                    self.hold_released = true;
                } else {
                    self.hold_left = Some(
                        self.hold_left
                            .map_or(*remaining_hold, |h| h.min(*remaining_hold)),
                    );
                }
            }
            FactKind::Refund { amount } => match amount {
                RefundAmount::Delta(v) => {
                    self.refund_deltas.insert(key, *v);
                }
                RefundAmount::TotalRefunded(v) => self.refunded_total = self.refunded_total.max(*v),
                RefundAmount::Remaining(v) => {
                    self.remaining = Some(self.remaining.map_or(*v, |r| r.min(*v)))
                }
            },
            FactKind::Chargeback { amount } => {
                self.chargebacks.insert(key, *amount);
            }
            FactKind::FailedAttempt { .. } => self.failed = true,
            FactKind::Void { .. } => self.voided = true,
            FactKind::SettledInFull => {
                self.settles_remainder = true;
                self.paid_at_ms = Some(self.paid_at_ms.map_or(fact.at_ms, |t| t.min(fact.at_ms)));
            }
            // Handled on the order, never reaches a line.
            FactKind::OrderCancelled
            | FactKind::RefundRequested { .. }
            | FactKind::RefundWaived { .. }
            | FactKind::RefundProgress(_) => {}
        }
    }

    pub fn refunded(&self) -> i64 {
        if self.voided {
            return 0;
        }
        let deltas: i64 = self
            .refund_deltas
            .values()
            .copied()
            .fold(0, i64::saturating_add);
        let from_remaining = self
            .remaining
            .map_or(0, |r| self.captured.saturating_sub(r).max(0));
        deltas.max(self.refunded_total).max(from_remaining)
    }

    pub fn charged_back(&self) -> i64 {
        if self.voided {
            return 0;
        }
        self.chargebacks
            .values()
            .copied()
            .fold(0, i64::saturating_add)
    }

    /// Funds held on the card but not captured.
    pub fn held(&self) -> i64 {
        if self.captured > 0 || self.hold_released || self.failed || self.voided {
            0
        } else {
            self.hold_left
                .map_or(self.authorized, |h| h.min(self.authorized))
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// The fact was applied before: nothing changes.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Totals {
    pub paid: i64,
    pub refunded: i64,
    pub charged_back: i64,
    pub held: i64,
}

impl Totals {
    /// Money kept: paid minus refunds and chargebacks, never below zero (a chargeback after a full refund is
    /// flagged `refund_exceeds_payment`, it does not make the order owe money in the ledger's view).
    pub fn net(&self) -> i64 {
        self.paid
            .saturating_sub(self.refunded)
            .saturating_sub(self.charged_back)
            .max(0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    #[serde(default)]
    pub info: Option<OrderInfo>,
    #[serde(default)]
    pub lines: BTreeMap<PaymentRef, PaymentLine>,
    /// Ids of every fact applied (the idempotency set).
    #[serde(default)]
    pub applied: BTreeSet<String>,
    /// Facts by which a source cancelled the order.
    #[serde(default)]
    pub cancelled_by: BTreeSet<String>,
    /// Refunds sources asked for, by the request's fact id. Executed by `refund-chargeback`.
    #[serde(default)]
    pub refund_requests: BTreeMap<String, RefundRequest>,
    /// Money a person decided a cancelled order keeps, by the deciding fact's id (`FactKind::RefundWaived`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub waived: BTreeMap<String, i64>,
    /// When each of its breaks for a person was first shown (`domain::attention`), ms since the epoch; kept by the
    /// ledger service at every change.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attention_since: BTreeMap<super::attention::Kind, i64>,
    /// Optimistic-lock version; 0 = never stored.
    #[serde(default)]
    pub version: u64,
}

impl Order {
    pub fn new(id: OrderId) -> Self {
        Order {
            id,
            info: None,
            lines: BTreeMap::new(),
            applied: BTreeSet::new(),
            cancelled_by: BTreeSet::new(),
            refund_requests: BTreeMap::new(),
            waived: BTreeMap::new(),
            attention_since: BTreeMap::new(),
            version: 0,
        }
    }

    /// Apply a fact. Idempotent: a fact already applied is a [`ApplyOutcome::Duplicate`] and changes nothing.
    pub fn apply(&mut self, fact: &PaymentFact) -> Result<ApplyOutcome, DomainError> {
        if fact.order_id != self.id {
            return Err(DomainError::WrongOrder {
                fact: fact.id.to_string(),
                order: self.id.to_string(),
            });
        }
        if !self.applied.insert(fact.id.as_str().to_owned()) {
            return Ok(ApplyOutcome::Duplicate);
        }
        match &fact.kind {
            FactKind::OrderCancelled => {
                self.cancelled_by.insert(fact.id.as_str().to_owned());
                return Ok(ApplyOutcome::Applied);
            }
            FactKind::RefundRequested {
                amount,
                reason,
                retries,
                to_bank,
                ..
            } => {
                let mut request = self.admit(fact, *amount, reason);
                request.to_bank.clone_from(to_bank);
                if let Some(failed) = retries
                    .as_ref()
                    .and_then(|r| self.refund_requests.get_mut(r))
                {
                    failed.retried_by = Some(fact.id.as_str().to_owned());
                }
                self.refund_requests
                    .insert(fact.id.as_str().to_owned(), request);
                return Ok(ApplyOutcome::Applied);
            }
            FactKind::RefundWaived { amount, .. } => {
                self.waived.insert(fact.id.as_str().to_owned(), *amount);
                return Ok(ApplyOutcome::Applied);
            }
            FactKind::RefundProgress(p) => {
                if let Some(r) = self.refund_requests.get_mut(&p.request) {
                    r.advance(p);
                }
                return Ok(ApplyOutcome::Applied);
            }
            _ => {}
        }
        let line = self
            .lines
            .entry(fact.payment.clone())
            .or_insert_with(|| PaymentLine::new(fact.method, fact.currency));
        let refunded_before = line.refunded();
        line.merge(fact);
        let refunded_delta = line.refunded() - refunded_before;
        // The acquirer's (or the bank statement's) report of a refund we asked for completes the request; it is
        // the same money, counted once on the line.
        if matches!(fact.kind, FactKind::Refund { .. }) {
            for r in self.refund_requests.values_mut() {
                if r.completed_by(fact, refunded_delta) {
                    r.status = RefundStatus::Succeeded;
                    break;
                }
            }
        }
        Ok(ApplyOutcome::Applied)
    }

    /// Money a person decided the (cancelled) order keeps.
    pub fn waived_total(&self) -> i64 {
        self.waived.values().copied().fold(0, i64::saturating_add)
    }

    /// What a refund decision is about: money a cancelled order keeps that nobody asked back or decided to keep.
    pub fn refund_due(&self) -> i64 {
        if !self.cancelled() {
            return 0;
        }
        (self.totals().net() - self.refund_claimed() - self.waived_total()).max(0)
    }

    /// Money open refund requests already claim.
    pub fn refund_claimed(&self) -> i64 {
        self.refund_requests
            .values()
            .filter(|r| r.status.is_open())
            .map(|r| r.amount)
            .fold(0, i64::saturating_add)
    }

    /// Admit a refund request against what the order keeps, and route it by the payment it returns.
    fn admit(&self, fact: &PaymentFact, amount: i64, reason: &str) -> RefundRequest {
        let mut request = RefundRequest {
            amount,
            reason: reason.to_owned(),
            line: None,
            status: RefundStatus::Refused,
            provider_id: None,
            expect: None,
            detail: None,
            at_ms: fact.at_ms,
            retried_by: None,
            receipt_sent: false,
            to_bank: None,
        };
        let available = self.totals().net() - self.refund_claimed();
        if amount <= 0 || amount > available {
            request.detail = Some(format!(
                "{} exceeds what the order keeps ({})",
                super::money::format_minor(amount),
                super::money::format_minor(available.max(0))
            ));
            return request;
        }
        let claimed_on = |p: &PaymentRef| -> i64 {
            self.refund_requests
                .values()
                .filter(|r| r.status.is_open() && r.line.as_ref() == Some(p))
                .map(|r| r.amount)
                .sum()
        };
        let free = |p: &PaymentRef, l: &PaymentLine| {
            l.counted() - l.refunded() - l.charged_back() - claimed_on(p)
        };
        let mut candidates: Vec<(&PaymentRef, i64)> = self
            .lines
            .iter()
            .map(|(p, l)| (p, free(p, l)))
            .filter(|(_, f)| *f >= amount)
            .collect();
        // The payment the source named, then card payments (back the way they came), the larger first.
        candidates.sort_by_key(|(p, f)| (*p != &fact.payment, !is_acquirer(p), -f));
        let chosen = candidates.first().map(|(p, _)| (*p).clone()).or_else(|| {
            // Money 1C settled without an amount has no line of its own to return from but the settling one.
            self.lines
                .iter()
                .find(|(_, l)| l.settles_remainder && !l.voided)
                .map(|(p, _)| p.clone())
        });
        match chosen {
            Some(p) => {
                request.status = if is_acquirer(&p) {
                    RefundStatus::Requested
                } else {
                    RefundStatus::AwaitingTransfer
                };
                request.line = Some(p);
            }
            None => request.detail = Some("no single payment of the order covers it".into()),
        }
        request
    }

    pub fn has_applied(&self, fact_id: &str) -> bool {
        self.applied.contains(fact_id)
    }

    /// Set what the store knows about the order. Returns whether anything changed.
    pub fn set_info(&mut self, info: OrderInfo) -> bool {
        if self.info.as_ref() == Some(&info) {
            return false;
        }
        self.info = Some(info);
        true
    }

    /// The order's currency: the store's, else the currency of the money received (RUB preferred).
    pub fn currency(&self) -> Currency {
        if let Some(info) = &self.info {
            return info.currency;
        }
        if self.lines.values().any(|l| l.currency == Currency::RUB) {
            return Currency::RUB;
        }
        self.lines
            .values()
            .map(|l| l.currency)
            .min()
            .unwrap_or(Currency::RUB)
    }

    /// Totals over the lines in the order's currency. Money in another currency is kept on its line and flagged.
    pub fn totals(&self) -> Totals {
        let currency = self.currency();
        let totals = self.lines.values().filter(|l| l.currency == currency).fold(
            Totals::default(),
            |t, l| Totals {
                paid: t.paid.saturating_add(l.counted()),
                refunded: t.refunded.saturating_add(l.refunded()),
                charged_back: t.charged_back.saturating_add(l.charged_back()),
                held: t.held.saturating_add(l.held()),
            },
        );
        // An order-level "paid in full" covers what is open, never more: money already held is not doubled.
        let settled = self
            .lines
            .values()
            .any(|l| l.settles_remainder && !l.voided);
        match self.total() {
            Some(total) if settled && totals.net() < total => Totals {
                paid: totals.paid.saturating_add(total - totals.net()),
                ..totals
            },
            _ => totals,
        }
    }

    /// Whether the order is cancelled, by the store or by a source.
    pub fn cancelled(&self) -> bool {
        self.info.as_ref().is_some_and(|i| i.cancelled) || !self.cancelled_by.is_empty()
    }

    pub fn total(&self) -> Option<i64> {
        self.info.as_ref().map(|i| i.total)
    }

    pub fn state(&self) -> OrderState {
        let t = self.totals();
        let net = t.net();
        let cancelled = self.cancelled();
        if net <= 0 {
            if cancelled {
                OrderState::Cancelled
            } else if t.paid > 0 {
                OrderState::Refunded
            } else {
                OrderState::Unpaid
            }
        } else {
            match self.total() {
                None => OrderState::PaidUnknownTotal,
                Some(total) if net < total => OrderState::PartiallyPaid,
                Some(total) if net == total => OrderState::Paid,
                Some(_) => OrderState::Overpaid,
            }
        }
    }

    /// Share of the order total kept, in whole percent (floor), when the total is known.
    pub fn paid_percent(&self) -> Option<i64> {
        let total = self.total().filter(|t| *t > 0)?;
        let net = i128::from(self.totals().net().max(0));
        i64::try_from(net * 100 / i128::from(total)).ok()
    }

    /// When the order got its money: the earliest receipt on any line (only while something is kept).
    pub fn paid_at_ms(&self) -> Option<i64> {
        if self.totals().net() <= 0 {
            return None;
        }
        self.lines.values().filter_map(|l| l.paid_at_ms).min()
    }

    /// Acquirer money on an `unmatched:` order whose reference to the store has not resolved yet: the lines
    /// still counting, with what the acquirer sent.
    pub fn awaiting_reference(&self) -> Vec<(PaymentRef, super::reference::StoreReference)> {
        if !self.id.is_unmatched() {
            return Vec::new();
        }
        self.lines
            .iter()
            .filter(|(p, l)| is_acquirer(p) && !l.voided)
            .filter_map(|(p, l)| Some((p.clone(), l.reference.clone()?)))
            .collect()
    }

    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.info.is_none() {
            flags.push("unknown_order");
        }
        let currency = self.currency();
        if self.lines.values().any(|l| l.currency != currency) {
            flags.push("currency_mismatch");
        }
        let t = self.totals();
        if t.refunded.saturating_add(t.charged_back) > t.paid {
            flags.push("refund_exceeds_payment");
        }
        if t.charged_back > 0 {
            flags.push("chargeback");
        }
        // Cancelled with money kept and nobody asked for it back yet (`CANCEL_REFUND_POLICY=ask`), nor decided to
        // keep it.
        if self.cancelled() && t.net() > self.refund_claimed().saturating_add(self.waived_total()) {
            flags.push("refund_due");
        }
        if self
            .refund_requests
            .values()
            .any(RefundRequest::needs_a_person)
        {
            flags.push("refund_failed");
        }
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fact::{FactId, Source};
    use proptest::prelude::*;

    fn order_id() -> OrderId {
        OrderId::parse("1001").unwrap()
    }

    fn fact(source: Source, ext: &str, payment: &str, kind: FactKind, at_ms: i64) -> PaymentFact {
        PaymentFact::new(
            FactId::new(source, ext).unwrap(),
            order_id(),
            PaymentRef::new(source, payment).unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            kind,
            at_ms,
        )
        .unwrap()
    }

    #[test]
    fn a_line_keeps_the_method_and_fee_whatever_the_order_of_reports() {
        let paid = fact(
            Source::Yookassa,
            "p#succeeded",
            "p",
            FactKind::Payment { amount: 200 },
            2,
        )
        .paid_with(Some(PayMethod::Sbp))
        .with_fee(Some(3));
        let refund = fact(
            Source::Yookassa,
            "r#1",
            "p",
            FactKind::Refund {
                amount: RefundAmount::Delta(50),
            },
            3,
        );
        let both_ways = [
            [paid.clone(), refund.clone()],
            [refund.clone(), paid.clone()],
        ];
        let mut seen = Vec::new();
        for facts in both_ways {
            let mut o = order_with_total(200);
            for f in &facts {
                o.apply(f).unwrap();
            }
            let line = o.lines.values().next().unwrap().clone();
            assert_eq!(line.pay_method, Some(PayMethod::Sbp));
            assert_eq!(line.fee, Some(3));
            let event = crate::domain::OrderEvent::snapshot("e".into(), &o, Some(&paid), 4);
            let view = &event.payments[0];
            assert_eq!(
                (view.paid, view.refunded, view.fee, view.pay_method.clone()),
                (200, 50, Some(3), Some(PayMethod::Sbp))
            );
            assert_eq!(event.cause.unwrap().pay_method, Some(PayMethod::Sbp));
            seen.push(line);
        }
        assert_eq!(seen[0], seen[1]);
        // On the queue: the method by its name.
        let o = {
            let mut o = order_with_total(200);
            o.apply(&paid).unwrap();
            o
        };
        let json =
            serde_json::to_value(crate::domain::OrderEvent::snapshot("e".into(), &o, None, 4))
                .unwrap();
        assert_eq!(json["payments"][0]["pay_method"], "sbp");
        assert_eq!(json["payments"][0]["fee"], 3);
        // An older event without payments still reads.
        let mut old = json.clone();
        old.as_object_mut().unwrap().remove("payments");
        assert!(serde_json::from_value::<crate::domain::OrderEvent>(old).is_ok());
    }

    #[test]
    fn a_receipt_is_owed_for_money_nobody_receipted_except_an_organisations_transfer() {
        let card = fact(
            Source::Tbank,
            "1#CONFIRMED",
            "1",
            FactKind::Payment { amount: 100 },
            1,
        );
        let mut o = order_with_total(300);
        o.apply(&card).unwrap();
        let line = |o: &Order, p: &str, s: Source| o.lines[&PaymentRef::new(s, p).unwrap()].clone();
        assert!(line(&o, "1", Source::Tbank).receipt_owed());
        // The same payment where T-Bank issues the shop's receipts (`RECEIPTS=tbank`).
        let mut o2 = order_with_total(300);
        o2.apply(&card.clone().receipted_by(&[Source::Tbank]))
            .unwrap();
        let l = line(&o2, "1", Source::Tbank);
        assert!(l.receipt_issued && !l.receipt_owed());
        // Only payments are receipted by the acquirer's word; another acquirer's list changes nothing.
        assert!(
            !card
                .clone()
                .receipted_by(&[Source::Yookassa])
                .receipt_issued
        );
        let refund = fact(
            Source::Tbank,
            "1#REFUNDED",
            "1",
            FactKind::Refund {
                amount: RefundAmount::Remaining(0),
            },
            2,
        );
        assert!(!refund.receipted_by(&[Source::Tbank]).receipt_issued);
        // A transfer from an organisation needs none; from a person it does.
        let transfer = |ext: &str, inn: &str| {
            let mut f = fact(Source::Bank, ext, ext, FactKind::Payment { amount: 100 }, 1);
            f.method = PaymentMethod::BankTransfer;
            f.paid_by(Payer {
                inn: Some(inn.into()),
                ..Payer::default()
            })
        };
        o.apply(&transfer("b1", "7707083893")).unwrap();
        o.apply(&transfer("b2", "500100732259")).unwrap();
        assert!(!line(&o, "b1", Source::Bank).receipt_owed());
        assert!(line(&o, "b2", Source::Bank).receipt_owed());
    }

    fn order_with_total(total: i64) -> Order {
        let mut o = Order::new(order_id());
        o.set_info(OrderInfo::new(Some("1001".into()), total, Currency::RUB));
        o
    }

    #[test]
    fn partial_payments_run_to_paid() {
        let mut o = order_with_total(500_000);
        o.apply(&fact(
            Source::Tbank,
            "1#CONFIRMED",
            "1",
            FactKind::Payment { amount: 150_000 },
            1,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::PartiallyPaid);
        assert_eq!(o.paid_percent(), Some(30));
        o.apply(&fact(
            Source::Tbank,
            "2#CONFIRMED",
            "2",
            FactKind::Payment { amount: 350_000 },
            2,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::Paid);
        assert_eq!(o.totals().paid, 500_000);
        assert_eq!(o.paid_at_ms(), Some(1));
    }

    #[test]
    fn confirmed_before_authorized_keeps_the_payment_and_holds_nothing() {
        let mut o = order_with_total(9855);
        o.apply(&fact(
            Source::Tbank,
            "8#CONFIRMED",
            "8",
            FactKind::Payment { amount: 9855 },
            2,
        ))
        .unwrap();
        o.apply(&fact(
            Source::Tbank,
            "8#AUTHORIZED",
            "8",
            FactKind::Authorization { amount: 9855 },
            1,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::Paid);
        assert_eq!(o.totals().held, 0);
    }

    #[test]
    fn duplicate_fact_changes_nothing() {
        let mut o = order_with_total(100);
        let f = fact(Source::Sber, "x", "x", FactKind::Payment { amount: 100 }, 1);
        assert_eq!(o.apply(&f).unwrap(), ApplyOutcome::Applied);
        let before = o.clone();
        assert_eq!(o.apply(&f).unwrap(), ApplyOutcome::Duplicate);
        assert_eq!(o, before);
    }

    #[test]
    fn same_money_seen_twice_is_merged_not_added() {
        let mut o = order_with_total(100);
        o.apply(&fact(
            Source::Tbank,
            "7#CONFIRMED",
            "7",
            FactKind::Payment { amount: 100 },
            1,
        ))
        .unwrap();
        // Another fact about the same payment (e.g. a resend with another status key) does not add money.
        o.apply(&fact(
            Source::Tbank,
            "7#CONFIRMED#again",
            "7",
            FactKind::Payment { amount: 100 },
            2,
        ))
        .unwrap();
        assert_eq!(o.totals().paid, 100);
    }

    #[test]
    fn remaining_style_refunds_need_the_captured_amount() {
        let mut o = order_with_total(10_000);
        o.apply(&fact(
            Source::Tbank,
            "5#PARTIAL_REFUNDED#7000",
            "5",
            FactKind::Refund {
                amount: RefundAmount::Remaining(7_000),
            },
            3,
        ))
        .unwrap();
        assert_eq!(o.totals().refunded, 0);
        o.apply(&fact(
            Source::Tbank,
            "5#CONFIRMED",
            "5",
            FactKind::Payment { amount: 10_000 },
            1,
        ))
        .unwrap();
        assert_eq!(o.totals().refunded, 3_000);
        assert_eq!(o.state(), OrderState::PartiallyPaid);
        o.apply(&fact(
            Source::Tbank,
            "5#REFUNDED",
            "5",
            FactKind::Refund {
                amount: RefundAmount::Remaining(0),
            },
            4,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::Refunded);
    }

    #[test]
    fn unknown_order_is_flagged_and_still_counts_money() {
        let mut o = Order::new(order_id());
        o.apply(&fact(
            Source::Yookassa,
            "p",
            "p",
            FactKind::Payment { amount: 100 },
            1,
        ))
        .unwrap();
        // Issue #14, kind 7: money without a known total is not "paid"; once the total is known, it is.
        assert_eq!(o.state(), OrderState::PaidUnknownTotal);
        assert_eq!(o.state().as_str(), "paid_unknown_total");
        assert!(o.flags().contains(&"unknown_order"));
        o.set_info(OrderInfo::new(None, 100, Currency::RUB));
        assert_eq!(o.state(), OrderState::Paid);
        o.set_info(OrderInfo::new(None, 500, Currency::RUB));
        assert_eq!(o.state(), OrderState::PartiallyPaid);
    }

    #[test]
    fn foreign_currency_is_kept_apart_and_flagged() {
        let mut o = order_with_total(100);
        let mut f = fact(
            Source::Yookassa,
            "u",
            "u",
            FactKind::Payment { amount: 100 },
            1,
        );
        f.currency = Currency::parse("USD").unwrap();
        o.apply(&f).unwrap();
        assert_eq!(o.totals().paid, 0);
        assert!(o.flags().contains(&"currency_mismatch"));
    }

    #[test]
    fn fact_for_another_order_is_refused() {
        let mut o = Order::new(OrderId::parse("other").unwrap());
        let f = fact(Source::Sber, "x", "x", FactKind::Payment { amount: 1 }, 1);
        assert!(matches!(o.apply(&f), Err(DomainError::WrongOrder { .. })));
    }

    #[test]
    fn cancelled_order_without_money_is_cancelled() {
        let mut o = order_with_total(100);
        o.set_info(OrderInfo {
            cancelled: true,
            ..OrderInfo::new(None, 100, Currency::RUB)
        });
        assert_eq!(o.state(), OrderState::Cancelled);
    }

    #[test]
    fn order_level_paid_covers_only_what_is_open() {
        let mut o = order_with_total(500_000);
        o.apply(&fact(
            Source::Tbank,
            "1#CONFIRMED",
            "1",
            FactKind::Payment { amount: 150_000 },
            1,
        ))
        .unwrap();
        o.apply(&fact(
            Source::OneC,
            "order#v1",
            "order:1001",
            FactKind::SettledInFull,
            2,
        ))
        .unwrap();
        assert_eq!((o.totals().paid, o.state()), (500_000, OrderState::Paid));
        // A later real payment is not absorbed by the settlement: it is an overpayment.
        o.apply(&fact(
            Source::Tbank,
            "2#CONFIRMED",
            "2",
            FactKind::Payment { amount: 350_000 },
            3,
        ))
        .unwrap();
        assert_eq!((o.totals().paid, o.state()), (500_000, OrderState::Paid));
        o.apply(&fact(
            Source::Tbank,
            "3#CONFIRMED",
            "3",
            FactKind::Payment { amount: 1_000 },
            4,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::Overpaid);
    }

    #[test]
    fn voided_line_stops_counting_and_cancellation_by_a_source_cancels() {
        let mut o = order_with_total(100);
        o.apply(&fact(
            Source::OneC,
            "p#v1",
            "p",
            FactKind::Payment { amount: 100 },
            1,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::Paid);
        o.apply(&fact(
            Source::OneC,
            "p#v2",
            "p",
            FactKind::Void {
                reason: "Отменен".into(),
            },
            2,
        ))
        .unwrap();
        assert_eq!(o.totals().paid, 0);
        o.apply(&fact(
            Source::OneC,
            "order#v3",
            "order",
            FactKind::OrderCancelled,
            3,
        ))
        .unwrap();
        assert_eq!(o.state(), OrderState::Cancelled);
        assert!(o.lines.values().all(|l| l.captured == 0 || l.voided));
    }

    #[test]
    fn linked_document_merges_into_the_line_it_names() {
        let mut o = order_with_total(100);
        o.apply(&fact(
            Source::Tbank,
            "7#CONFIRMED",
            "7",
            FactKind::Payment { amount: 100 },
            1,
        ))
        .unwrap();
        let mut echo = fact(
            Source::OneC,
            "doc-1#v1",
            "7",
            FactKind::Payment { amount: 100 },
            2,
        )
        .linking("1c:doc-1");
        echo.payment = PaymentRef::new(Source::Tbank, "7").unwrap();
        o.apply(&echo).unwrap();
        assert_eq!(o.totals().paid, 100);
        assert!(o.lines.values().next().unwrap().linked.contains("1c:doc-1"));
    }

    fn arb_fact() -> impl Strategy<Value = PaymentFact> {
        let payments = prop::sample::select(vec!["p1", "p2", "p3"]);
        let kinds = prop_oneof![
            (1i64..100_000).prop_map(|a| FactKind::Authorization { amount: a }),
            (1i64..100_000).prop_map(|a| FactKind::Payment { amount: a }),
            (0i64..100_000).prop_map(|a| FactKind::Reversal { remaining_hold: a }),
            (1i64..100_000).prop_map(|a| FactKind::Refund {
                amount: RefundAmount::Delta(a)
            }),
            (1i64..100_000).prop_map(|a| FactKind::Refund {
                amount: RefundAmount::TotalRefunded(a)
            }),
            (0i64..100_000).prop_map(|a| FactKind::Refund {
                amount: RefundAmount::Remaining(a)
            }),
            (1i64..100_000).prop_map(|a| FactKind::Chargeback { amount: a }),
            Just(FactKind::FailedAttempt {
                reason: "declined".into()
            }),
        ];
        (payments, kinds, 0u32..1000, 0i64..1_000_000)
            .prop_map(|(p, kind, n, at)| fact(Source::Tbank, &format!("{p}#{n}"), p, kind, at))
    }

    proptest! {
        #[test]
        fn any_permutation_of_a_history_gives_the_same_order(
            history in prop::collection::vec(arb_fact(), 1..12),
            seed in any::<u64>(),
        ) {
            // A fact id always names the same content: keep the first of any generated id clash.
            let mut seen = std::collections::BTreeSet::new();
            let history: Vec<PaymentFact> =
                history.into_iter().filter(|f| seen.insert(f.id.clone())).collect();
            let mut in_order = order_with_total(150_000);
            for f in &history {
                in_order.apply(f).unwrap();
            }
            // Deterministic shuffle from the seed, and every fact delivered twice.
            let mut shuffled: Vec<&PaymentFact> = history.iter().chain(history.iter()).collect();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                let j = usize::try_from(s % (i as u64 + 1)).unwrap();
                shuffled.swap(i, j);
            }
            let mut permuted = order_with_total(150_000);
            for f in shuffled {
                permuted.apply(f).unwrap();
            }
            prop_assert_eq!(&permuted, &in_order);
            prop_assert_eq!(permuted.state(), in_order.state());
            prop_assert_eq!(permuted.totals(), in_order.totals());
        }
    }
}
