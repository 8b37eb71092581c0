//! Refund requests: money a source (1C, a cancellation) asks to return to the buyer, and how far it got.
//!
//! A request is admitted or refused when it is applied, under the order's optimistic lock, against what the order
//! still keeps: paid − refunded − charged back − what other open requests already claim. Two concurrent requests
//! that together exceed the money are therefore serialised, and the second is refused.
//!
//! The route follows the money: a card payment goes back through its acquirer (`refund-chargeback` executes it), a
//! bank transfer or cash is returned by the shop (1C gets a return document to pay by transfer) and is completed when
//! the outgoing payment shows in a statement.

use serde::{Deserialize, Serialize};

use super::fact::{PaymentFact, PaymentRef};
pub use super::refund_status::{RefundProgress, RefundStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    pub amount: i64,
    pub reason: String,
    /// The payment it returns.
    #[serde(default)]
    pub line: Option<PaymentRef>,
    pub status: RefundStatus,
    /// The acquirer's id of the refund, once known.
    #[serde(default)]
    pub provider_id: Option<String>,
    /// The fact (the acquirer's own notification of this refund) whose arrival completes the request.
    #[serde(default)]
    pub expect: Option<String>,
    /// Why it was refused or failed, as the acquirer said.
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub at_ms: i64,
    /// A failed request a person tried again: the request (fact id) that retries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retried_by: Option<String>,
    /// The refund went with its fiscal receipt through the acquirer's receipts service.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub receipt_sent: bool,
    /// An SBP refund to another bank of the buyer (its SBP member id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_bank: Option<String>,
}

impl RefundRequest {
    /// Failed for good and not tried again: a person must decide.
    pub fn needs_a_person(&self) -> bool {
        self.status == RefundStatus::Failed && self.retried_by.is_none()
    }
}

/// The fact that moves refund request `request` of `order` to `status` (id `<request>#<status>`, so each step is
/// recorded once), as refund-chargeback and status-sync report it.
pub fn progress_fact(
    order: &super::fact::OrderId,
    request: &str,
    status: RefundStatus,
    provider_id: Option<String>,
    expect: Option<String>,
    detail: Option<String>,
    at_ms: i64,
) -> Result<PaymentFact, super::DomainError> {
    use super::fact::{FactId, FactKind, PaymentMethod, Source};
    PaymentFact::new(
        FactId::new(Source::Refund, &format!("{request}#{}", status.as_str()))?,
        order.clone(),
        PaymentRef::new(Source::Refund, request)?,
        PaymentMethod::Other,
        super::money::Currency::RUB,
        FactKind::RefundProgress(RefundProgress {
            request: request.to_owned(),
            status,
            provider_id,
            expect,
            detail,
            with_receipt: false,
        }),
        at_ms,
    )
}

impl RefundRequest {
    /// Apply a progress report; a step back (a late `sent` after `succeeded`) changes nothing.
    pub fn advance(&mut self, p: &RefundProgress) {
        if p.status.rank() <= self.status.rank() {
            return;
        }
        self.status = p.status;
        if p.provider_id.is_some() {
            self.provider_id.clone_from(&p.provider_id);
        }
        if p.expect.is_some() {
            self.expect.clone_from(&p.expect);
        }
        if p.detail.is_some() {
            self.detail.clone_from(&p.detail);
        }
        self.receipt_sent |= p.with_receipt;
    }

    /// Whether a refund fact that just arrived is this request coming back.
    pub fn completed_by(&self, fact: &PaymentFact, refunded_delta: i64) -> bool {
        if !self.status.is_open() {
            return false;
        }
        if self.expect.as_deref() == Some(fact.id.as_str()) {
            return true;
        }
        // A transfer the shop made shows up as a refund on the same line, for the same amount.
        self.status == RefundStatus::AwaitingTransfer
            && self.line.as_ref() == Some(&fact.payment)
            && refunded_delta == self.amount
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        Currency, FactId, FactKind, Order, OrderId, OrderInfo, OrderState, PaymentMethod,
        RefundAmount, Source,
    };

    fn fact(
        source: Source,
        ext: &str,
        payment: &str,
        method: PaymentMethod,
        kind: FactKind,
    ) -> PaymentFact {
        PaymentFact::new(
            FactId::new(source, ext).unwrap(),
            OrderId::parse("5001").unwrap(),
            PaymentRef::new(source, payment).unwrap(),
            method,
            Currency::RUB,
            kind,
            1,
        )
        .unwrap()
    }

    fn request(ext: &str, payment_source: Source, payment: &str, amount: i64) -> PaymentFact {
        fact(
            Source::OneC,
            ext,
            "x",
            PaymentMethod::Card,
            FactKind::RefundRequested {
                amount,
                reason: "Брак".into(),
                method: PaymentMethod::Card,
                retries: None,
                to_bank: None,
            },
        )
        .with_payment(PaymentRef::new(payment_source, payment).unwrap())
    }

    fn paid_by_card(amount: i64) -> Order {
        let mut o = Order::new(OrderId::parse("5001").unwrap());
        o.set_info(OrderInfo::new(Some("5001".into()), amount, Currency::RUB));
        o.apply(&fact(
            Source::Tbank,
            "p1#CONFIRMED",
            "p1",
            PaymentMethod::Card,
            FactKind::Payment { amount },
        ))
        .unwrap();
        o
    }

    #[test]
    fn requests_beyond_what_the_order_keeps_are_refused_one_after_another() {
        let mut o = paid_by_card(100_000);
        o.apply(&request("r1", Source::Tbank, "p1", 60_000))
            .unwrap();
        o.apply(&request("r2", Source::Tbank, "p1", 50_000))
            .unwrap();
        let r1 = &o.refund_requests["1c#r1"];
        let r2 = &o.refund_requests["1c#r2"];
        assert_eq!(
            (r1.status, r1.line.as_ref().map(PaymentRef::as_str)),
            (RefundStatus::Requested, Some("tbank:p1"))
        );
        assert_eq!(r2.status, RefundStatus::Refused);
        assert!(
            r2.detail.as_deref().unwrap().contains("400.00"),
            "{:?}",
            r2.detail
        );
        assert_eq!(o.refund_claimed(), 60_000);
        assert_eq!(o.totals().paid, 100_000, "a request moves no money");
    }

    #[test]
    fn money_goes_back_the_way_it_came() {
        let mut o = paid_by_card(100_000);
        o.apply(&fact(
            Source::Bank,
            "b1",
            "b1",
            PaymentMethod::BankTransfer,
            FactKind::Payment { amount: 50_000 },
        ))
        .unwrap();
        o.apply(&request("r1", Source::Bank, "b1", 50_000)).unwrap();
        o.apply(&request("r2", Source::OneC, "anything", 30_000))
            .unwrap();
        assert_eq!(
            o.refund_requests["1c#r1"].status,
            RefundStatus::AwaitingTransfer
        );
        assert_eq!(o.refund_requests["1c#r2"].status, RefundStatus::Requested);
        assert_eq!(
            o.refund_requests["1c#r2"]
                .line
                .as_ref()
                .map(PaymentRef::as_str),
            Some("tbank:p1"),
            "a request naming no payment goes to the card"
        );
        // The transfer shows in a statement as a refund on the bank line: the request is done.
        o.apply(&fact(
            Source::Bank,
            "out-1",
            "b1",
            PaymentMethod::BankTransfer,
            FactKind::Refund {
                amount: RefundAmount::Delta(50_000),
            },
        ))
        .unwrap();
        assert_eq!(o.refund_requests["1c#r1"].status, RefundStatus::Succeeded);
    }

    #[test]
    fn progress_only_moves_forward_and_the_acquirers_report_completes_it() {
        let mut o = paid_by_card(100_000);
        o.apply(&request("r1", Source::Tbank, "p1", 40_000))
            .unwrap();
        let progress = |ext: &str, status, expect: Option<&str>| {
            fact(
                Source::Refund,
                ext,
                "p1",
                PaymentMethod::Card,
                FactKind::RefundProgress(RefundProgress {
                    request: "1c#r1".into(),
                    status,
                    provider_id: None,
                    expect: expect.map(str::to_owned),
                    detail: None,
                    with_receipt: false,
                }),
            )
        };
        o.apply(&progress(
            "1c#r1#pending",
            RefundStatus::Pending,
            Some("tbank#p1#PARTIAL_REFUNDED#60000"),
        ))
        .unwrap();
        o.apply(&progress("1c#r1#sent", RefundStatus::Sent, None))
            .unwrap();
        assert_eq!(o.refund_requests["1c#r1"].status, RefundStatus::Pending);
        o.apply(&fact(
            Source::Tbank,
            "p1#PARTIAL_REFUNDED#60000",
            "p1",
            PaymentMethod::Card,
            FactKind::Refund {
                amount: RefundAmount::Remaining(60_000),
            },
        ))
        .unwrap();
        let r = &o.refund_requests["1c#r1"];
        assert_eq!(r.status, RefundStatus::Succeeded);
        assert_eq!((o.totals().refunded, o.refund_claimed()), (40_000, 0));
        assert_eq!(o.state(), OrderState::PartiallyPaid);
    }

    #[test]
    fn a_chargeback_after_a_full_refund_never_makes_the_order_owe() {
        let mut o = paid_by_card(100_000);
        o.apply(&fact(
            Source::Tbank,
            "p1#REFUNDED",
            "p1",
            PaymentMethod::Card,
            FactKind::Refund {
                amount: RefundAmount::Remaining(0),
            },
        ))
        .unwrap();
        o.apply(&fact(
            Source::Tbank,
            "p1#CHARGEBACK",
            "p1",
            PaymentMethod::Card,
            FactKind::Chargeback { amount: 100_000 },
        ))
        .unwrap();
        let t = o.totals();
        assert_eq!((t.paid, t.net()), (100_000, 0));
        assert_eq!(o.state(), OrderState::Refunded);
        assert!(o.flags().contains(&"refund_exceeds_payment"));
        o.apply(&request("late", Source::Tbank, "p1", 1)).unwrap();
        assert_eq!(o.refund_requests["1c#late"].status, RefundStatus::Refused);
    }
}
