//! A refund request's status and the progress reports that move it: plain values that facts carry
//! (`FactKind::RefundProgress`), kept apart from the request logic in `refund.rs` so that facts and requests do
//! not import each other.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Admitted; waits for `refund-chargeback`.
    Requested,
    /// Not a card payment: the shop returns it by bank transfer (or cash); a statement line completes it.
    AwaitingTransfer,
    /// Handed to the acquirer; its answer is not known yet (a timeout leaves it here; the retry uses the same key).
    Sent,
    /// The acquirer accepted it and will confirm by notification.
    Pending,
    Succeeded,
    /// The acquirer refused it for good.
    Failed,
    /// Not admitted: more than the order keeps, or nothing to return it from.
    Refused,
}

impl RefundStatus {
    /// Progress only moves forward, whatever order the facts arrive in.
    pub(super) fn rank(self) -> u8 {
        match self {
            RefundStatus::Requested => 0,
            RefundStatus::AwaitingTransfer | RefundStatus::Sent => 1,
            RefundStatus::Pending => 2,
            RefundStatus::Succeeded | RefundStatus::Failed | RefundStatus::Refused => 3,
        }
    }

    /// Still claims money of the order.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RefundStatus::Requested
                | RefundStatus::AwaitingTransfer
                | RefundStatus::Sent
                | RefundStatus::Pending
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Requested => "requested",
            RefundStatus::AwaitingTransfer => "awaiting_transfer",
            RefundStatus::Sent => "sent",
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
            RefundStatus::Refused => "refused",
        }
    }
}

/// A step of a request, reported by `refund-chargeback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundProgress {
    /// The request's fact id.
    pub request: String,
    pub status: RefundStatus,
    #[serde(default)]
    pub provider_id: Option<String>,
    #[serde(default)]
    pub expect: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// The refund went with its fiscal receipt through the acquirer's receipts service (`RECEIPTS`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_receipt: bool,
}
