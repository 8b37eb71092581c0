//! The pure payment domain: no AWS, HTTP or async types. Orders, facts and money; matching bank money to orders
//! ([`matching`]); acquirer payouts ([`settlement`]); bank operations from any statement ([`bank_operation`]).

pub mod attention;
pub mod bank_operation;
pub mod daybook;
pub mod event;
pub mod fact;
pub mod matching;
pub mod money;
pub mod order;
pub mod receipt;
pub mod reference;
pub mod refund;
pub mod refund_status;
pub mod settlement;
pub mod watch;

pub use event::{FactSummary, OrderEvent};
pub use fact::{
    link, link_source, moved_to, moved_to_link, Audit, FactId, FactKind, OrderId, PayMethod, Payer,
    PaymentFact, PaymentMethod, PaymentRef, RefundAmount, Role, Source,
};
pub use money::{Currency, Money, MoneyError};
pub use order::{is_acquirer, ApplyOutcome, Order, OrderInfo, OrderState, PaymentLine, Totals};
pub use reference::{DirectoryEntry, Lookup, RefRule, StorePaymentInfo, StoreReference};
pub use refund::{RefundProgress, RefundRequest, RefundStatus};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{0} is empty")]
    EmptyId(&'static str),
    #[error("{0} is not acceptable: {1:?}")]
    BadId(&'static str, String),
    #[error("negative amount {0}")]
    NegativeAmount(i64),
    #[error("fact {fact} does not belong to order {order}")]
    WrongOrder { fact: String, order: String },
    #[error(transparent)]
    Money(#[from] MoneyError),
}
