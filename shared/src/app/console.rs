//! `console`: what a person sees and decides. The web layer (`functions/console`: routes, pages, sign-in) calls
//! these use cases; every decision becomes a ledger fact of source `console` carrying who, when and why
//! ([`crate::domain::Audit`]), recorded through the ledger service like every other fact, so it is committed
//! exactly once (its fact id is derived from the form's one-time token: a second submission is a duplicate) and
//! announced on the events queue, from which 1C and the store learn it.
//!
//! Reads come from the lists the ledger keeps (`ports::Attention`, `ports::Histories`): one query per list, never a
//! table scan.

use std::sync::Arc;

use futures_util::future::try_join_all;
use serde::Serialize;
use tracing::info;

use crate::app::ledger::{Ledger, LedgerError, Recorded};
use crate::domain::attention::{self, Age, Item, Kind};
use crate::domain::daybook::{self, day_figures, DayFigures, DayTotals};
use crate::domain::matching::UnmatchedReceipt;
use crate::domain::{
    Audit, Currency, FactId, FactKind, OrderEvent, OrderId, PaymentFact, PaymentMethod, PaymentRef,
    Role, Source,
};
use crate::ports::{
    Attention, EventPublisher, Histories, LedgerStore, MarkerKind, Markers, OrderHistory,
    OrderViews, SignIns, StoreDirectory, StoreError, Takings,
};

/// Rows one "Needs attention" list shows (the page says when there are more).
pub const LIST_LIMIT: usize = 500;

pub struct ConsoleDeps {
    pub store: Arc<dyn LedgerStore>,
    /// Open orders (search by amount or buyer INN).
    pub views: Arc<dyn OrderViews>,
    /// The store's directory (search by order number).
    pub directory: Arc<dyn StoreDirectory>,
    /// What store-sync told the store, and what the store refused.
    pub markers: Arc<dyn Markers>,
    /// Takings per day, the settlements and the kept totals of closed days.
    pub takings: Arc<dyn Takings>,
    pub events: Arc<dyn EventPublisher>,
    pub attention: Arc<dyn Attention>,
    pub histories: Arc<dyn Histories>,
    pub sign_ins: Arc<dyn SignIns>,
}

/// The decisions the console offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allocate,
    RecordPayment,
    Reverse,
    AcceptMismatch,
    DecideRefund,
    RetryRefund,
}

/// Whether `role` may take `action`: viewers decide nothing, accountants all but refunds, managers everything.
pub fn may(role: Role, action: Action) -> bool {
    match action {
        Action::Allocate
        | Action::RecordPayment
        | Action::Reverse
        | Action::AcceptMismatch
        | Action::RetryRefund => role >= Role::Accountant,
        Action::DecideRefund => role == Role::Manager,
    }
}

/// A person's decision as the console received it: who, with which role, why, and the form's one-time token
/// (`token`, 16–64 characters of `[A-Za-z0-9_-]`: the idempotency key of the facts it records).
#[derive(Debug, Clone)]
pub struct Decision {
    pub user: String,
    pub role: Role,
    pub reason: String,
    pub token: String,
    /// When it was decided, ms since the epoch.
    pub at_ms: i64,
}

impl Decision {
    fn audit(&self) -> Audit {
        Audit {
            user: self.user.clone(),
            role: self.role,
            reason: self.reason.clone(),
        }
    }

    fn fact_id(&self, part: &str) -> Result<FactId, ActionError> {
        Ok(
            FactId::new(Source::Console, &format!("{}#{part}", self.token))
                .map_err(LedgerError::from)?,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The user's role does not allow it.
    #[error("your role does not allow this")]
    Forbidden,
    /// The decision cannot be carried out as asked; the console words the reason in the person's language.
    #[error("{0}")]
    Refused(Refusal),
    #[error("no such order: {0}")]
    NotFound(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// Why a decision was not carried out. The console words each in Russian or English; amounts are kopecks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The form's one-time token is missing or malformed.
    #[error("the form is not valid; open it again")]
    FormNotValid,
    /// Every decision needs a reason for the audit trail.
    #[error("say why (the reason is kept in the audit trail)")]
    NoReason,
    /// The receipt holds no bank money to allocate.
    #[error("nothing to allocate")]
    NothingToAllocate,
    /// The money was allocated or returned already.
    #[error("this money is not waiting for an order any more (allocated or returned)")]
    NotWaiting,
    /// Only money that matched no order can be allocated; this is an order.
    #[error("only money that matched no order can be allocated; this is an order")]
    NotUnmatched,
    /// Each order may be named once in an allocation.
    #[error("an order is named twice; give it one part")]
    SameOrderTwice,
    /// The payment was reversed already.
    #[error("this payment was reversed already")]
    AlreadyReversed,
    /// A part without an order or with an amount of zero or less.
    #[error("every part needs an order and an amount above zero")]
    BadParts,
    /// The parts must add up to the receipt exactly (both in minor units of `currency`).
    #[error("the parts add up to {parts}, the receipt is {receipt} (minor units of {currency})")]
    PartsDoNotAddUp {
        parts: i64,
        receipt: i64,
        currency: Currency,
    },
    /// The form's token was used for a different allocation of the same money.
    #[error(
        "this form was already used for another allocation of this money; open the page again"
    )]
    FormAlreadyUsed,
    /// An amount of zero or less.
    #[error("the amount must be above zero")]
    AmountNotPositive,
    /// Only payments recorded by hand in the console may be reversed there.
    #[error("only payments recorded in the console can be reversed here")]
    NotManual,
    /// The order has no payment with that reference.
    #[error("the order has no such payment")]
    NoSuchPayment,
    /// Nothing is owed back on the order.
    #[error("the order has no refund to decide")]
    NoRefundDue,
    /// More was asked back than is owed (`at_most` in minor units of `currency`).
    #[error("at most {at_most} (minor units of {currency}) can be asked back")]
    MoreThanDue { at_most: i64, currency: Currency },
    /// The order has no refund request with that id.
    #[error("the order has no such refund request")]
    NoSuchRefund,
    /// The refund did not fail, or was tried again already.
    #[error("only a failed refund that was not tried again can be retried")]
    NotRetryable,
    /// The failed request names no payment to refund.
    #[error("the failed request names no payment")]
    RefundNamesNoPayment,
    /// The SBP bank code given for a refund is not one.
    #[error("the SBP bank code is not one (digits and letters, as QrMembersList gives them)")]
    NotABank,
    /// The payout mismatch was accepted already (or never existed).
    #[error("this payout is not waiting for a decision (accepted before?)")]
    PayoutNotWaiting,
}

impl From<Refusal> for ActionError {
    fn from(r: Refusal) -> Self {
        ActionError::Refused(r)
    }
}

impl From<StoreError> for ActionError {
    fn from(e: StoreError) -> Self {
        ActionError::Ledger(e.into())
    }
}

/// One list of the "Needs attention" page: its rows (oldest first), whether more exist than were read, and the
/// count and sum of each age bucket.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionList {
    pub kind: Kind,
    pub items: Vec<Item>,
    pub more: bool,
    pub buckets: Vec<(Age, usize, i64)>,
    pub total: i64,
}

impl AttentionList {
    fn of(kind: Kind, mut items: Vec<Item>, limit: usize, now_ms: i64) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        items.sort_by(|a, b| (a.since_ms, &a.key).cmp(&(b.since_ms, &b.key)));
        let buckets = Age::ALL
            .iter()
            .map(|age| {
                let of_age = items.iter().filter(|i| Age::of(i.since_ms, now_ms) == *age);
                let (count, sum) = of_age.fold((0, 0i64), |(c, s), i| (c + 1, s + i.amount));
                (*age, count, sum)
            })
            .collect();
        let total = items.iter().map(|i| i.amount).sum();
        AttentionList {
            kind,
            items,
            more,
            buckets,
            total,
        }
    }
}

/// Every "Needs attention" list, at most `limit` rows each: one query per kind, the nine at once.
pub async fn needs_attention(
    deps: &ConsoleDeps,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<AttentionList>, StoreError> {
    try_join_all(Kind::ALL.map(|kind| async move {
        let items = deps.attention.attention(kind, limit + 1).await?;
        Ok(AttentionList::of(kind, items, limit, now_ms))
    }))
    .await
}

/// Days read live, never from kept totals: today, yesterday and the day before (late facts of those days do not
/// mark the kept totals stale, see `app::ledger`).
const LIVE_DAYS: usize = 3;
/// The longest range one report covers.
pub const MAX_REPORT_DAYS: usize = 92;

/// Every source's figures for the `days` business days ending with `last` (`YYYY-MM-DD`, Moscow), oldest first,
/// source by source (`daybook::SOURCES`). Per source: one query for the kept totals, one for the settlements, one
/// per live day and one per closed day whose totals were not kept yet (then kept for the next reader).
pub async fn daybook(
    deps: &ConsoleDeps,
    last: &str,
    days: usize,
) -> Result<Vec<DayFigures>, StoreError> {
    let range = daybook::days_until(last, days.clamp(1, MAX_REPORT_DAYS));
    let live = daybook::days_until(last, LIVE_DAYS);
    let Some(live_from) = live.first() else {
        return Ok(Vec::new());
    };
    // The sources at once; each reads its days in turn.
    let per_source =
        try_join_all(daybook::SOURCES.map(|source| source_days(deps, source, &range, live_from)))
            .await?;
    Ok(per_source.into_iter().flatten().collect())
}

/// One source's figures for `range` (see [`daybook`]).
async fn source_days(
    deps: &ConsoleDeps,
    source: Source,
    range: &[String],
    live_from: &str,
) -> Result<Vec<DayFigures>, StoreError> {
    let (Some(from), Some(to)) = (range.first(), range.last()) else {
        return Ok(Vec::new());
    };
    let kept: std::collections::BTreeMap<String, crate::ports::CachedDay> = deps
        .takings
        .cached_days(source, from, to)
        .await?
        .into_iter()
        .map(|c| (c.day.clone(), c))
        .collect();
    let settlements = if source.is_acquirer() {
        deps.takings.settlements(source, from, to).await?
    } else {
        Vec::new()
    };
    let mut out = Vec::with_capacity(range.len());
    for day in range {
        let closed = day.as_str() < live_from;
        let totals = match kept.get(day) {
            Some(crate::ports::CachedDay {
                totals: Some(t), ..
            }) if closed => *t,
            row => {
                let t = DayTotals::of(&deps.takings.card_takings(source, day).await?);
                if closed {
                    deps.takings
                        .cache_day(source, day, t, row.map_or("", |r| r.rev.as_str()))
                        .await?;
                }
                t
            }
        };
        out.push(day_figures(source, day, totals, &settlements));
    }
    Ok(out)
}

/// The console's order page: the order's history, its breaks and whether 1C has its latest version.
#[derive(Debug, Clone)]
pub struct OrderPage {
    pub history: OrderHistory,
    pub breaks: attention::Breaks,
    /// `Some(v)`: 1C has not acknowledged version `v` yet; `None`: 1C has the latest.
    pub waiting_for_1c: Option<u64>,
    /// The unmatched bank receipt this order is, when it is one (what "allocate" moves).
    pub receipt: Option<UnmatchedReceipt>,
    /// What store-sync last told the store (version, state, paid, when), if it did.
    pub store_told: Option<StoreTold>,
    /// The store's last refusal of a payment change, if any.
    pub store_error: Option<String>,
}

/// What store-sync last told the store about an order (its `StoreTold` marker).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoreTold {
    pub version: u64,
    pub state: String,
    /// Net paid, minor units.
    pub paid: i64,
    pub at_ms: i64,
}

/// One order's page (`None`: no such order in the ledger). Four requests: its partition, its 1C feed row and the two
/// store-sync notes.
pub async fn order_page(deps: &ConsoleDeps, id: &OrderId) -> Result<Option<OrderPage>, StoreError> {
    let history = deps.histories.history(id).await?;
    let Some(order) = &history.order else {
        return Ok(None);
    };
    let breaks = attention::of(order);
    let receipt = UnmatchedReceipt::of(order);
    let waiting_for_1c = deps.histories.waiting_for_1c(id).await?;
    let store_told = deps
        .markers
        .marker(MarkerKind::StoreTold, id.as_str())
        .await?
        .and_then(|v| serde_json::from_str(&v).ok());
    let store_error = deps
        .markers
        .marker(MarkerKind::StoreError, id.as_str())
        .await?;
    Ok(Some(OrderPage {
        history,
        breaks,
        waiting_for_1c,
        receipt,
        store_told,
        store_error,
    }))
}

/// What a decision changed: the events it announced (none when it was carried out before).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub events: Vec<OrderEvent>,
    /// The decision had been carried out before (a second submission of the same form).
    pub repeated: bool,
}

impl Outcome {
    fn add(&mut self, recorded: Recorded) {
        match recorded {
            Recorded::Applied(e) => self.events.push(*e),
            Recorded::Duplicate => self.repeated = true,
        }
    }
}

fn check(decision: &Decision, action: Action) -> Result<(), ActionError> {
    if !may(decision.role, action) {
        return Err(ActionError::Forbidden);
    }
    let token_ok = (16..=64).contains(&decision.token.len())
        && decision
            .token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !token_ok {
        return Err(Refusal::FormNotValid.into());
    }
    if decision.reason.trim().is_empty() {
        return Err(Refusal::NoReason.into());
    }
    Ok(())
}

/// One decision's fact on `order`, about `payment`: its id from the form's token and `part`, its audit, recorded
/// through the ledger service (exactly once, announced).
struct Decided<'a> {
    order: &'a OrderId,
    payment: PaymentRef,
    method: PaymentMethod,
    currency: Currency,
}

async fn decide(
    deps: &ConsoleDeps,
    decision: &Decision,
    part: &str,
    on: Decided<'_>,
    kind: FactKind,
    payer: Option<crate::domain::Payer>,
    outcome: &mut Outcome,
) -> Result<(), ActionError> {
    let mut fact = PaymentFact::new(
        decision.fact_id(part)?,
        on.order.clone(),
        on.payment,
        on.method,
        on.currency,
        kind,
        decision.at_ms,
    )
    .map_err(LedgerError::from)?
    .decided_by(decision.audit());
    if let Some(p) = payer {
        fact = fact.paid_by(p);
    }
    outcome.add(
        Ledger::new(deps.store.as_ref(), deps.events.as_ref())
            .record(&fact)
            .await?,
    );
    Ok(())
}

/// An order the store (or 1C) described: money is never put on an order nobody knows.
async fn described(deps: &ConsoleDeps, id: &OrderId) -> Result<crate::domain::Order, ActionError> {
    deps.store
        .load_order(id)
        .await?
        .filter(|o| o.info.is_some() && !o.id.is_unmatched())
        .ok_or_else(|| ActionError::NotFound(id.to_string()))
}

/// Allocate unmatched bank money (the `unmatched:` order `receipt`) to orders: `parts` are (order, amount in minor
/// units), one part for the whole, several for a split; together they must be exactly the receipt's amount.
///
/// The receipt's line is voided (naming the orders), then each order gets a bank-transfer payment: the first on
/// the bank payment itself (so a statement read again finds the money held and counts it nowhere else), the others
/// on `<bank payment>#part<n>` lines. Carried out before (same token): nothing changes, `repeated` is set.
pub async fn allocate(
    deps: &ConsoleDeps,
    decision: &Decision,
    receipt: &OrderId,
    parts: &[(OrderId, i64)],
) -> Result<Outcome, ActionError> {
    check(decision, Action::Allocate)?;
    let order = deps
        .store
        .load_order(receipt)
        .await?
        .ok_or_else(|| ActionError::NotFound(receipt.to_string()))?;
    let void_id = decision.fact_id("allocates")?;
    let mut outcome = Outcome::default();
    let (payment, amount, currency, payer) = match UnmatchedReceipt::of(&order) {
        Some(r) => {
            let line = order.lines.get(&r.payment);
            let currency = line.map_or(Currency::RUB, |l| l.currency);
            (r.payment, r.amount, currency, r.payer)
        }
        // Voided by this very decision before (a second submission, or a first one cut short): finish it.
        None if order.has_applied(void_id.as_str()) => {
            let (p, l) = order
                .lines
                .iter()
                .find(|(_, l)| l.method == PaymentMethod::BankTransfer)
                .ok_or(Refusal::NothingToAllocate)?;
            (
                p.clone(),
                l.captured - l.refunded(),
                l.currency,
                l.payer.clone(),
            )
        }
        None if !receipt.is_unmatched() => return Err(Refusal::NotUnmatched.into()),
        None => return Err(Refusal::NotWaiting.into()),
    };
    if parts.is_empty() || parts.iter().any(|(_, a)| *a <= 0) {
        return Err(Refusal::BadParts.into());
    }
    let mut named: Vec<&OrderId> = parts.iter().map(|(o, _)| o).collect();
    named.sort();
    named.dedup();
    if named.len() != parts.len() {
        return Err(Refusal::SameOrderTwice.into());
    }
    let sum: i64 = parts.iter().map(|(_, a)| *a).sum();
    if sum != amount {
        return Err(Refusal::PartsDoNotAddUp {
            parts: sum,
            receipt: amount,
            currency,
        }
        .into());
    }
    for (target, _) in parts {
        described(deps, target).await?;
    }
    let plan: Vec<String> = parts
        .iter()
        .map(|(o, a)| format!("{o} ({})", crate::domain::money::format_minor(*a)))
        .collect();
    let reason = format!("allocated in the console to order {}", plan.join(", "));
    // A form sent again must be the same decision: its token carried out once, never with other parts (a browser's
    // Back, an edit and a resend would otherwise pay more than was received).
    if order.has_applied(void_id.as_str()) {
        let first = deps
            .store
            .order_facts(receipt)
            .await?
            .into_iter()
            .find(|f| f.id == void_id);
        let same =
            matches!(first.map(|f| f.kind), Some(FactKind::Void { reason: r }) if r == reason);
        if !same {
            return Err(Refusal::FormAlreadyUsed.into());
        }
    }
    let bank = |order, payment| Decided {
        order,
        payment,
        method: PaymentMethod::BankTransfer,
        currency,
    };
    let void = FactKind::Void { reason };
    decide(
        deps,
        decision,
        "allocates",
        bank(receipt, payment.clone()),
        void,
        None,
        &mut outcome,
    )
    .await?;
    for (n, (target, part)) in parts.iter().enumerate() {
        let line = if n == 0 {
            payment.clone()
        } else {
            PaymentRef::new(
                Source::Bank,
                &format!("{}#part{}", payment.external(), n + 1),
            )
            .map_err(LedgerError::from)?
        };
        let paid = FactKind::Payment { amount: *part };
        let step = format!("part{}", n + 1);
        decide(
            deps,
            decision,
            &step,
            bank(target, line),
            paid,
            payer.clone(),
            &mut outcome,
        )
        .await?;
    }
    info!(receipt = %receipt, user = %decision.user, parts = parts.len(), "unmatched money allocated in the console");
    Ok(outcome)
}

/// Record money a person took (cash, cash on delivery) on an order: a payment of `amount` minor units on a line of
/// its own (`console:<token>`), method `method`.
pub async fn record_payment(
    deps: &ConsoleDeps,
    decision: &Decision,
    order: &OrderId,
    amount: i64,
    method: PaymentMethod,
) -> Result<Outcome, ActionError> {
    check(decision, Action::RecordPayment)?;
    if amount <= 0 {
        return Err(Refusal::AmountNotPositive.into());
    }
    let known = described(deps, order).await?;
    let on = Decided {
        order,
        payment: PaymentRef::new(Source::Console, &decision.token).map_err(LedgerError::from)?,
        method,
        currency: known.currency(),
    };
    let mut outcome = Outcome::default();
    decide(
        deps,
        decision,
        "payment",
        on,
        FactKind::Payment { amount },
        None,
        &mut outcome,
    )
    .await?;
    Ok(outcome)
}

/// Reverse a payment a person recorded in the console (`payment` is its `console:` line): the line is voided and
/// stops counting. Money that came from an acquirer, a bank or 1C is not a person's to reverse.
pub async fn reverse(
    deps: &ConsoleDeps,
    decision: &Decision,
    order: &OrderId,
    payment: &PaymentRef,
) -> Result<Outcome, ActionError> {
    check(decision, Action::Reverse)?;
    if payment.source() != Some(Source::Console) {
        return Err(Refusal::NotManual.into());
    }
    let known = deps
        .store
        .load_order(order)
        .await?
        .ok_or_else(|| ActionError::NotFound(order.to_string()))?;
    let Some(line) = known.lines.get(payment) else {
        return Err(Refusal::NoSuchPayment.into());
    };
    // Reversed by another decision already (a second tab): not again. This very decision sent twice goes on and
    // is a duplicate.
    if line.voided && !known.has_applied(decision.fact_id("reverses")?.as_str()) {
        return Err(Refusal::AlreadyReversed.into());
    }
    let on = Decided {
        order,
        payment: payment.clone(),
        method: line.method,
        currency: line.currency,
    };
    let void = FactKind::Void {
        reason: format!("reversed in the console: {}", decision.reason),
    };
    let mut outcome = Outcome::default();
    decide(deps, decision, "reverses", on, void, None, &mut outcome).await?;
    Ok(outcome)
}

/// Approve the refund a cancelled order is waiting for (`refund_due`, manager only): `amount` (minor units; all
/// that is due when `None`) is asked back from the order's payments, card payments first and the larger first, one
/// request per payment, as a cancellation in 1C asks it; refund-chargeback then executes them.
pub async fn approve_refund(
    deps: &ConsoleDeps,
    decision: &Decision,
    order: &OrderId,
    amount: Option<i64>,
) -> Result<Outcome, ActionError> {
    check(decision, Action::DecideRefund)?;
    let known = described(deps, order).await?;
    if known.has_applied(decision.fact_id("refund#1")?.as_str()) {
        // This very decision was carried out before (the form sent twice).
        return Ok(Outcome {
            events: Vec::new(),
            repeated: true,
        });
    }
    let due = known.refund_due();
    if due == 0 {
        return Err(Refusal::NoRefundDue.into());
    }
    let amount = amount.unwrap_or(due);
    if amount <= 0 || amount > due {
        return Err(Refusal::MoreThanDue {
            at_most: due,
            currency: known.currency(),
        }
        .into());
    }
    let mut lines: Vec<(&PaymentRef, i64, PaymentMethod)> = known
        .lines
        .iter()
        .map(|(p, l)| (p, l.counted() - l.refunded() - l.charged_back(), l.method))
        .filter(|(_, free, _)| *free > 0)
        .collect();
    lines.sort_by_key(|(p, free, _)| (!crate::domain::is_acquirer(p), -free));
    let mut outcome = Outcome::default();
    let mut left = amount;
    for (n, (payment, free, method)) in lines.into_iter().enumerate() {
        if left <= 0 {
            break;
        }
        let part = free.min(left);
        left -= part;
        let on = Decided {
            order,
            payment: payment.clone(),
            method,
            currency: known.currency(),
        };
        let asked = FactKind::RefundRequested {
            amount: part,
            reason: decision.reason.clone(),
            method,
            retries: None,
            to_bank: None,
        };
        let step = format!("refund#{}", n + 1);
        decide(deps, decision, &step, on, asked, None, &mut outcome).await?;
    }
    Ok(outcome)
}

/// Deny the refund a cancelled order is waiting for (manager only): the order keeps what is due, and says who
/// decided it and why.
pub async fn deny_refund(
    deps: &ConsoleDeps,
    decision: &Decision,
    order: &OrderId,
) -> Result<Outcome, ActionError> {
    check(decision, Action::DecideRefund)?;
    let known = described(deps, order).await?;
    if known.has_applied(decision.fact_id("keeps")?.as_str()) {
        return Ok(Outcome {
            events: Vec::new(),
            repeated: true,
        });
    }
    let due = known.refund_due();
    if due == 0 {
        return Err(Refusal::NoRefundDue.into());
    }
    let on = Decided {
        order,
        payment: PaymentRef::new(Source::Console, &decision.token).map_err(LedgerError::from)?,
        method: PaymentMethod::Other,
        currency: known.currency(),
    };
    let kept = FactKind::RefundWaived {
        amount: due,
        reason: decision.reason.clone(),
    };
    let mut outcome = Outcome::default();
    decide(deps, decision, "keeps", on, kept, None, &mut outcome).await?;
    Ok(outcome)
}

/// Try a failed refund again: a new request for the same money on the same payment, naming the failed one, which
/// then no longer asks for attention. refund-chargeback executes it with a key of its own.
pub async fn retry_refund(
    deps: &ConsoleDeps,
    decision: &Decision,
    order: &OrderId,
    request: &str,
    to_bank: Option<String>,
) -> Result<Outcome, ActionError> {
    check(decision, Action::RetryRefund)?;
    // An SBP member id is a short code (`100000000004`); anything else is not one.
    let to_bank = to_bank
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    if to_bank
        .as_deref()
        .is_some_and(|b| b.len() > 32 || !b.bytes().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(Refusal::NotABank.into());
    }
    let known = deps
        .store
        .load_order(order)
        .await?
        .ok_or_else(|| ActionError::NotFound(order.to_string()))?;
    let id = decision.fact_id("retry")?;
    let Some(failed) = known.refund_requests.get(request) else {
        return Err(Refusal::NoSuchRefund.into());
    };
    if !failed.needs_a_person() && failed.retried_by.as_deref() != Some(id.as_str()) {
        return Err(Refusal::NotRetryable.into());
    }
    let Some(line) = failed.line.clone() else {
        return Err(Refusal::RefundNamesNoPayment.into());
    };
    let method = known
        .lines
        .get(&line)
        .map_or(PaymentMethod::Card, |l| l.method);
    let on = Decided {
        order,
        payment: line,
        method,
        currency: known.currency(),
    };
    let asked = FactKind::RefundRequested {
        amount: failed.amount,
        reason: decision.reason.clone(),
        method,
        retries: Some(request.to_owned()),
        to_bank,
    };
    let mut outcome = Outcome::default();
    decide(deps, decision, "retry", on, asked, None, &mut outcome).await?;
    Ok(outcome)
}

/// Accept a payout that does not reconcile (a fee the acquirer changed, a payout covering other days), with the
/// reason: it leaves the list and the decision is kept beside the settlement (no order changes, so nothing is
/// announced to 1C or the store).
pub async fn accept_mismatch(
    deps: &ConsoleDeps,
    decision: &Decision,
    key: &str,
) -> Result<(), ActionError> {
    check(decision, Action::AcceptMismatch)?;
    let accepted = deps
        .attention
        .accept(Kind::PayoutMismatch, key, &decision.audit(), decision.at_ms)
        .await?;
    if !accepted {
        return Err(Refusal::PayoutNotWaiting.into());
    }
    info!(key, user = %decision.user, "payout mismatch accepted in the console");
    Ok(())
}

/// What a search found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    /// The order (or `unmatched:` money) to open.
    pub order: OrderId,
    /// What matched, as the person can read it (`order id`, `order number`, `payment`, `amount`, `payer INN`,
    /// `payer name`, `buyer INN`).
    pub by: &'static str,
    pub amount: Option<i64>,
    pub label: String,
}

/// Search by order id or number, payment reference, amount (`amount_minor`, when the text was one), payer INN or
/// name: exact look-ups by key, then the lists of what needs a person and the open orders (one query each), never
/// the table.
pub async fn search(
    deps: &ConsoleDeps,
    text: &str,
    amount_minor: Option<i64>,
) -> Result<Vec<Hit>, StoreError> {
    let text = text.trim();
    let mut hits = Vec::new();
    if text.is_empty() {
        return Ok(hits);
    }
    let hit = |order: OrderId, by, amount, label: String| Hit {
        order,
        by,
        amount,
        label,
    };
    if let Ok(id) = OrderId::parse(text) {
        if let Some(o) = deps.store.load_order(&id).await? {
            let total = o.total();
            hits.push(hit(o.id, "order id", total, String::new()));
        }
    }
    if let Some(entry) = deps
        .directory
        .directory(&format!("order-number:{text}"))
        .await?
    {
        if let Ok(id) = OrderId::parse(entry.order_id) {
            hits.push(hit(id, "order number", None, text.to_owned()));
        }
    }
    if let Ok(payment) = PaymentRef::try_from(text.to_owned()) {
        if let Some(id) = deps.store.order_for_payment(&payment).await? {
            hits.push(hit(id, "payment", None, text.to_owned()));
        }
    }
    let digits = text.chars().all(|c| c.is_ascii_digit());
    let inn = digits && matches!(text.len(), 10 | 12);
    let needle = text.to_lowercase();
    for kind in Kind::ALL {
        for item in deps.attention.attention(kind, LIST_LIMIT).await? {
            let Some(order) = item.order.clone() else {
                continue;
            };
            let by = if Some(item.amount) == amount_minor {
                Some("amount")
            } else if inn && item.payer_inn.as_deref() == Some(text) {
                Some("payer INN")
            } else if !digits
                && needle.chars().count() >= 3
                && (item
                    .payer_name
                    .as_deref()
                    .is_some_and(|n| n.to_lowercase().contains(&needle))
                    || item.label.to_lowercase().contains(&needle))
            {
                Some("payer name")
            } else {
                None
            };
            if let Some(by) = by {
                let label = item.payer_name.clone().unwrap_or(item.label.clone());
                hits.push(hit(order, by, Some(item.amount), label));
            }
        }
    }
    for open in deps.views.open_orders(OPEN_LIMIT).await? {
        let by = if Some(open.open) == amount_minor {
            Some("amount")
        } else if inn && open.buyer_inn.as_deref() == Some(text) {
            Some("buyer INN")
        } else {
            None
        };
        if let Some(by) = by {
            hits.push(hit(
                open.id,
                by,
                Some(open.open),
                open.number.unwrap_or_default(),
            ));
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    hits.retain(|h| seen.insert((h.order.clone(), h.by)));
    Ok(hits)
}

/// Open orders a search reads (one query).
const OPEN_LIMIT: usize = 2_000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::{OrderInfo, OrderState, Payer};

    struct Env {
        store: Arc<MemoryLedgerStore>,
        events: Arc<MemoryPublisher>,
        deps: ConsoleDeps,
    }

    fn env() -> Env {
        let store = Arc::new(MemoryLedgerStore::default());
        let events = Arc::new(MemoryPublisher::default());
        let deps = ConsoleDeps {
            store: store.clone(),
            events: events.clone(),
            attention: store.clone(),
            views: store.clone(),
            directory: store.clone(),
            markers: store.clone(),
            takings: store.clone(),
            histories: store.clone(),
            sign_ins: store.clone(),
        };
        Env {
            store,
            events,
            deps,
        }
    }

    fn decision(role: Role, token: &str) -> Decision {
        Decision {
            user: "anna".into(),
            role,
            reason: "payment order 118 from OOO Romashka".into(),
            token: token.into(),
            at_ms: 1_000,
        }
    }

    async fn order(e: &Env, id: &str, total: i64) -> OrderId {
        let id = OrderId::parse(id).unwrap();
        Ledger::new(e.store.as_ref(), e.events.as_ref())
            .register_order(
                &id,
                OrderInfo::new(Some(format!("IM-{id}")), total, Currency::RUB),
            )
            .await
            .unwrap();
        id
    }

    async fn receipt(e: &Env, amount: i64) -> OrderId {
        let payment = PaymentRef::new(Source::Bank, "op-1").unwrap();
        let fact = PaymentFact::new(
            FactId::new(Source::Bank, "op-1").unwrap(),
            OrderId::unmatched(&payment),
            payment.clone(),
            PaymentMethod::BankTransfer,
            Currency::RUB,
            FactKind::Payment { amount },
            1,
        )
        .unwrap()
        .paid_by(Payer {
            inn: Some("7707083893".into()),
            name: Some("ООО <b>Ромашка</b>".into()),
            purpose: "Оплата без номера".into(),
            ..Payer::default()
        });
        Ledger::new(e.store.as_ref(), e.events.as_ref())
            .record(&fact)
            .await
            .unwrap();
        OrderId::unmatched(&payment)
    }

    #[tokio::test]
    async fn allocating_a_receipt_pays_the_order_once_and_clears_the_list() {
        let e = env();
        let target = order(&e, "501", 150_000).await;
        let from = receipt(&e, 150_000).await;
        let lists = needs_attention(&e.deps, 2_000, 10).await.unwrap();
        assert_eq!(lists[0].kind, Kind::UnmatchedBank);
        assert_eq!(lists[0].items.len(), 1);
        assert_eq!(lists[0].total, 150_000);
        let d = decision(Role::Accountant, "tok-0123456789abcdef");
        let first = allocate(&e.deps, &d, &from, &[(target.clone(), 150_000)])
            .await
            .unwrap();
        assert_eq!(first.events.len(), 2);
        let again = allocate(&e.deps, &d, &from, &[(target.clone(), 150_000)])
            .await
            .unwrap();
        assert!(again.repeated && again.events.is_empty());
        let paid = e.store.order("501").unwrap();
        assert_eq!(paid.state(), OrderState::Paid);
        assert_eq!(paid.totals().paid, 150_000);
        let lists = needs_attention(&e.deps, 2_000, 10).await.unwrap();
        assert!(lists[0].items.is_empty());
        let facts = e.store.history(&target).await.unwrap().facts;
        let audit = facts.iter().find_map(|f| f.audit.clone()).unwrap();
        assert_eq!(audit.user, "anna");
        assert_eq!(audit.role, Role::Accountant);
        // A different decision on money already allocated is refused, not counted again.
        let other = decision(Role::Accountant, "tok-another-decision-1");
        assert!(matches!(
            allocate(&e.deps, &other, &from, &[(target, 150_000)]).await,
            Err(ActionError::Refused(Refusal::NotWaiting))
        ));
    }

    #[tokio::test]
    async fn a_split_must_add_up_and_lands_on_each_order() {
        let e = env();
        let a = order(&e, "601", 100_000).await;
        let b = order(&e, "602", 50_000).await;
        let from = receipt(&e, 150_000).await;
        let d = decision(Role::Manager, "split-0123456789abcd");
        let short = allocate(
            &e.deps,
            &d,
            &from,
            &[(a.clone(), 100_000), (b.clone(), 40_000)],
        )
        .await;
        assert!(matches!(
            short,
            Err(ActionError::Refused(Refusal::PartsDoNotAddUp {
                parts: 140_000,
                receipt: 150_000,
                ..
            }))
        ));
        allocate(
            &e.deps,
            &d,
            &from,
            &[(a.clone(), 100_000), (b.clone(), 50_000)],
        )
        .await
        .unwrap();
        assert_eq!(e.store.order("601").unwrap().state(), OrderState::Paid);
        assert_eq!(e.store.order("602").unwrap().state(), OrderState::Paid);
        // The same form sent again with other parts (Back, edit, resend) is refused: nothing is paid twice.
        let c = order(&e, "603", 50_000).await;
        let other = [(a.clone(), 90_000), (b.clone(), 10_000), (c, 50_000)];
        assert!(matches!(
            allocate(&e.deps, &d, &from, &other).await,
            Err(ActionError::Refused(Refusal::FormAlreadyUsed))
        ));
        assert_eq!(e.store.order("603").unwrap().totals().paid, 0);
        // The very same form again changes nothing.
        let again = allocate(&e.deps, &d, &from, &[(a, 100_000), (b, 50_000)])
            .await
            .unwrap();
        assert!(again.repeated && again.events.is_empty());
    }

    #[tokio::test]
    async fn a_viewer_decides_nothing_and_unknown_orders_get_no_money() {
        let e = env();
        let from = receipt(&e, 1_000).await;
        let viewer = decision(Role::Viewer, "view-0123456789abcde");
        let nowhere = OrderId::parse("999").unwrap();
        assert!(matches!(
            allocate(&e.deps, &viewer, &from, &[(nowhere.clone(), 1_000)]).await,
            Err(ActionError::Forbidden)
        ));
        let accountant = decision(Role::Accountant, "acct-0123456789abcde");
        assert!(matches!(
            allocate(&e.deps, &accountant, &from, &[(nowhere, 1_000)]).await,
            Err(ActionError::NotFound(_))
        ));
        assert!(!may(Role::Accountant, Action::DecideRefund));
        assert!(may(Role::Manager, Action::DecideRefund));
    }

    /// A closed day's totals are computed once and kept; a late fact of that day makes them stale, and the next
    /// reader computes them again with it.
    #[tokio::test]
    async fn closed_days_are_kept_and_a_late_fact_makes_them_current_again() {
        let e = env();
        let now = crate::platform::clock::now_ms();
        let five_days_ago = now - 5 * 86_400_000;
        let day = crate::domain::settlement::business_day(five_days_ago);
        let today = crate::domain::settlement::business_day(now);
        let card = |ext: &str, amount: i64| {
            PaymentFact::new(
                FactId::new(Source::Tbank, &format!("{ext}#CONFIRMED")).unwrap(),
                OrderId::parse("801").unwrap(),
                PaymentRef::new(Source::Tbank, ext).unwrap(),
                PaymentMethod::Card,
                Currency::RUB,
                FactKind::Payment { amount },
                five_days_ago,
            )
            .unwrap()
        };
        let ledger = Ledger::new(e.store.as_ref(), e.events.as_ref());
        ledger.record(&card("1", 10_000)).await.unwrap();
        let taken = |figures: &[DayFigures]| {
            figures
                .iter()
                .find(|f| f.source == Source::Tbank && f.day == day)
                .map(|f| (f.taken, f.status))
        };
        let first = daybook(&e.deps, &today, 7).await.unwrap();
        assert_eq!(first.len(), 7 * daybook::SOURCES.len());
        assert_eq!(
            taken(&first),
            Some((10_000, daybook::DayStatus::AwaitingPayout))
        );
        let kept = e
            .store
            .cached_days(Source::Tbank, &day, &day)
            .await
            .unwrap();
        assert_eq!(kept[0].totals.map(|t| t.taken), Some(10_000));
        ledger.record(&card("2", 5_000)).await.unwrap();
        let stale = e
            .store
            .cached_days(Source::Tbank, &day, &day)
            .await
            .unwrap();
        assert_eq!(
            stale[0].totals, None,
            "a late fact makes the kept totals stale"
        );
        let again = daybook(&e.deps, &today, 7).await.unwrap();
        assert_eq!(
            taken(&again),
            Some((15_000, daybook::DayStatus::AwaitingPayout))
        );
    }

    /// A paid order, cancelled in 1C with `CANCEL_REFUND_POLICY=ask`: a refund to decide.
    async fn cancelled_paid(e: &Env, id: &str) -> OrderId {
        let order = order(e, id, 5_000).await;
        let ledger = Ledger::new(e.store.as_ref(), e.events.as_ref());
        let paid = PaymentFact::new(
            FactId::new(Source::Tbank, &format!("{id}#CONFIRMED")).unwrap(),
            order.clone(),
            PaymentRef::new(Source::Tbank, id).unwrap(),
            PaymentMethod::Card,
            Currency::RUB,
            FactKind::Payment { amount: 5_000 },
            1,
        )
        .unwrap();
        ledger.record(&paid).await.unwrap();
        let cancelled = PaymentFact::new(
            FactId::new(Source::OneC, &format!("order#{id}#cancelled")).unwrap(),
            order.clone(),
            PaymentRef::new(Source::OneC, &format!("order-{id}")).unwrap(),
            PaymentMethod::Other,
            Currency::RUB,
            FactKind::OrderCancelled,
            2,
        )
        .unwrap();
        ledger.record(&cancelled).await.unwrap();
        order
    }

    fn kinds(lists: &[AttentionList], kind: Kind) -> Vec<String> {
        lists
            .iter()
            .filter(|l| l.kind == kind)
            .flat_map(|l| l.items.iter().map(|i| i.key.clone()))
            .collect()
    }

    #[tokio::test]
    async fn a_manager_approves_or_denies_a_refund_and_an_accountant_cannot() {
        let e = env();
        let a = cancelled_paid(&e, "901").await;
        let b = cancelled_paid(&e, "902").await;
        let lists = needs_attention(&e.deps, 10, 10).await.unwrap();
        assert_eq!(kinds(&lists, Kind::RefundDue), ["901", "902"]);
        let accountant = decision(Role::Accountant, "appr-0123456789abcde");
        assert!(matches!(
            approve_refund(&e.deps, &accountant, &a, None).await,
            Err(ActionError::Forbidden)
        ));
        let manager = decision(Role::Manager, "appr-0123456789abcde");
        let approved = approve_refund(&e.deps, &manager, &a, None).await.unwrap();
        assert_eq!(approved.events.len(), 1);
        assert!(
            approved.events[0].has_refund_work(),
            "refund-chargeback gets it"
        );
        assert!(
            approve_refund(&e.deps, &manager, &a, None)
                .await
                .unwrap()
                .repeated
        );
        let keep = decision(Role::Manager, "keep-0123456789abcde");
        deny_refund(&e.deps, &keep, &b).await.unwrap();
        assert_eq!(e.store.order("902").unwrap().waived_total(), 5_000);
        let lists = needs_attention(&e.deps, 10, 10).await.unwrap();
        assert!(kinds(&lists, Kind::RefundDue).is_empty());
        // Nothing left to decide.
        let late = decision(Role::Manager, "late-0123456789abcde");
        assert!(matches!(
            deny_refund(&e.deps, &late, &b).await,
            Err(ActionError::Refused(Refusal::NoRefundDue))
        ));
    }

    #[tokio::test]
    async fn a_failed_refund_is_retried_once_and_leaves_the_list() {
        let e = env();
        let id = cancelled_paid(&e, "903").await;
        let manager = decision(Role::Manager, "appr-0123456789abcdf");
        approve_refund(&e.deps, &manager, &id, Some(2_000))
            .await
            .unwrap();
        let request = manager.fact_id("refund#1").unwrap().to_string();
        let failed = crate::domain::refund::progress_fact(
            &id,
            &request,
            crate::domain::RefundStatus::Failed,
            None,
            None,
            Some("card expired".into()),
            5,
        )
        .unwrap();
        Ledger::new(e.store.as_ref(), e.events.as_ref())
            .record(&failed)
            .await
            .unwrap();
        let lists = needs_attention(&e.deps, 10, 10).await.unwrap();
        assert_eq!(kinds(&lists, Kind::RefundFailed), ["903"]);
        let retry = decision(Role::Accountant, "rtry-0123456789abcde");
        let not_a_bank = decision(Role::Accountant, "rtry-bank-0123456789a");
        assert!(matches!(
            retry_refund(
                &e.deps,
                &not_a_bank,
                &id,
                &request,
                Some("100 000; DROP".into())
            )
            .await,
            Err(ActionError::Refused(Refusal::NotABank))
        ));
        let done = retry_refund(&e.deps, &retry, &id, &request, Some("100000000004".into()))
            .await
            .unwrap();
        assert!(done.events[0].has_refund_work());
        let o = e.store.order("903").unwrap();
        let again = o
            .refund_requests
            .values()
            .find(|r| r.to_bank.is_some())
            .unwrap();
        assert_eq!(
            again.to_bank.as_deref(),
            Some("100000000004"),
            "to the bank a person chose"
        );
        assert!(
            retry_refund(&e.deps, &retry, &id, &request, Some("100000000004".into()))
                .await
                .unwrap()
                .repeated
        );
        let lists = needs_attention(&e.deps, 10, 10).await.unwrap();
        assert!(kinds(&lists, Kind::RefundFailed).is_empty());
        let o = e.store.order("903").unwrap();
        assert_eq!(
            o.refund_requests[&request].retried_by,
            Some(retry.fact_id("retry").unwrap().to_string())
        );
    }

    #[tokio::test]
    async fn search_finds_money_by_amount_payer_inn_and_name() {
        let e = env();
        let from = receipt(&e, 150_000).await;
        order(&e, "1001", 99_900).await;
        let found = |q: &str, amount| {
            let deps = &e.deps;
            let q = q.to_owned();
            async move { search(deps, &q, amount).await.unwrap() }
        };
        let by_name = found("ромашка", None).await;
        assert_eq!(by_name.len(), 1);
        assert_eq!(
            (by_name[0].order.clone(), by_name[0].by),
            (from.clone(), "payer name")
        );
        assert_eq!(found("7707083893", None).await[0].by, "payer INN");
        assert_eq!(found("1 500,00", Some(150_000)).await[0].order, from);
        assert_eq!(found("999,00", Some(99_900)).await[0].by, "amount");
        assert_eq!(found("1001", None).await[0].by, "order id");
        assert!(found("nothing like it", None).await.is_empty());
    }

    #[tokio::test]
    async fn a_cash_payment_recorded_by_hand_can_be_reversed() {
        let e = env();
        let id = order(&e, "701", 5_000).await;
        let d = decision(Role::Accountant, "cash-0123456789abcde");
        record_payment(&e.deps, &d, &id, 1_500, PaymentMethod::Cash)
            .await
            .unwrap();
        let o = e.store.order("701").unwrap();
        assert_eq!(
            (o.state(), o.paid_percent()),
            (OrderState::PartiallyPaid, Some(30))
        );
        let line = PaymentRef::new(Source::Console, &d.token).unwrap();
        let undo = decision(Role::Accountant, "undo-0123456789abcde");
        reverse(&e.deps, &undo, &id, &line).await.unwrap();
        assert_eq!(e.store.order("701").unwrap().state(), OrderState::Unpaid);
        let card = PaymentRef::new(Source::Tbank, "1").unwrap();
        assert!(matches!(
            reverse(&e.deps, &undo, &id, &card).await,
            Err(ActionError::Refused(Refusal::NotManual))
        ));
        // The same form again is a duplicate; another tab's reversal of the reversed payment is refused.
        let version = e.store.order("701").unwrap().version;
        assert!(reverse(&e.deps, &undo, &id, &line).await.unwrap().repeated);
        let other_tab = decision(Role::Accountant, "undo-tab2-0123456789ab");
        assert!(matches!(
            reverse(&e.deps, &other_tab, &id, &line).await,
            Err(ActionError::Refused(Refusal::AlreadyReversed))
        ));
        assert_eq!(
            e.store.order("701").unwrap().version,
            version,
            "nothing changed"
        );
    }

    #[tokio::test]
    async fn an_allocation_names_each_order_once_and_only_unmatched_money_is_allocated() {
        let e = env();
        let a = order(&e, "801", 100_000).await;
        let from = receipt(&e, 150_000).await;
        let d = decision(Role::Accountant, "twice-0123456789abcd");
        assert!(matches!(
            allocate(
                &e.deps,
                &d,
                &from,
                &[(a.clone(), 75_000), (a.clone(), 75_000)]
            )
            .await,
            Err(ActionError::Refused(Refusal::SameOrderTwice))
        ));
        assert!(matches!(
            allocate(&e.deps, &d, &a, &[(a.clone(), 1_000)]).await,
            Err(ActionError::Refused(Refusal::NotUnmatched))
        ));
        assert_eq!(e.store.order("801").unwrap().totals().paid, 0);
    }
}
