//! `statement-pull`: on a schedule, take new bank operations from every configured source, match incoming
//! payments to open orders and record them in the ledger. Re-reading overlapping windows changes nothing (facts
//! are keyed by the payment itself); a watermark per source keeps each run short.

use std::sync::Arc;

use serde::Serialize;
use tracing::{info, warn};

use crate::app::ledger::{Ledger, LedgerError, Recorded};
use crate::domain::bank_operation::{facts, BankOperation};
use crate::domain::matching::{Confidence, Credit, Matched, OpenOrders};
use crate::domain::settlement::{self, SettlementReport};
use crate::domain::{
    link_source, Currency, FactId, FactKind, Order, OrderId, PaymentFact, PaymentMethod,
    PaymentRef, RefundAmount, Source,
};
use crate::formats::purpose::{PurposePatterns, Reference};
use crate::platform::clock::now_ms;
use crate::ports::bank::{Fetched, StatementSource};
use crate::ports::{Cursors, EventPublisher, LedgerStore, OrderViews, StoreDirectory, Takings};

pub struct PullDeps {
    pub store: Arc<dyn LedgerStore>,
    /// Open orders to match, and the unmatched money.
    pub views: Arc<dyn OrderViews>,
    /// The acquirers' card takings settlements are reconciled against.
    pub takings: Arc<dyn Takings>,
    /// Where each source stopped.
    pub cursors: Arc<dyn Cursors>,
    /// What the store described (a purpose's payment number names an order only there).
    pub directory: Arc<dyn StoreDirectory>,
    pub events: Arc<dyn EventPublisher>,
    /// `STATEMENT_SOURCES`, in order.
    pub sources: Vec<Arc<dyn StatementSource>>,
    pub patterns: PurposePatterns,
    /// Days re-read before the watermark on every run.
    pub overlap_days: i64,
}

/// What one source's run did (the function's JSON answer lists one per source).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    pub source: String,
    pub fetched: usize,
    pub new: usize,
    pub duplicates: usize,
    pub matched: usize,
    pub partial: usize,
    pub overpaid: usize,
    pub unmatched: usize,
    /// Acquirer payouts: recognised, never counted as order payments; reconciled against the day's card takings.
    pub settlements: usize,
    pub settlement_mismatches: usize,
    pub settlement_reports: Vec<SettlementReport>,
    /// Bank operations 1C had booked already (its payment document came first): linked, not counted again.
    pub linked_to_1c: usize,
    /// Outgoing returns to buyers that name their order.
    pub refunds: usize,
    /// Outgoing or not yet final.
    pub skipped: usize,
    /// Operations the source returned that cannot be used (no date, no amount, neither credit nor debit): each
    /// logged with its reason, and the watermark stays before them so a fixed source is read again.
    pub unusable: usize,
    pub errors: Vec<String>,
}

fn date_days_ago(days: i64) -> String {
    settlement::iso((time::OffsetDateTime::now_utc() - time::Duration::days(days)).date())
}

/// The line of `order` where 1C booked exactly this bank money before the statement brought it (1C's payment
/// document came first): a bank-transfer line of its own, not voided, not linked to a bank operation yet.
fn booked_by_1c(order: &Order, amount: i64) -> Option<PaymentRef> {
    order
        .lines
        .iter()
        .find(|(r, l)| {
            r.source() == Some(Source::OneC)
                && l.method == PaymentMethod::BankTransfer
                && !l.voided
                && l.counted() == amount
                && !l
                    .linked
                    .iter()
                    .any(|x| link_source(x) == Some(Source::Bank))
        })
        .map(|(r, _)| r.clone())
}

/// An outgoing payment that returns a buyer's money: its purpose says `возврат` and names exactly one order that
/// keeps at least that much, paid by this counterparty when the buyer's INN is known.
async fn refunded_order(deps: &PullDeps, op: &BankOperation) -> Result<Option<Order>, LedgerError> {
    if !op.purpose.to_lowercase().contains("возврат") {
        return Ok(None);
    }
    let mut found: Vec<Order> = Vec::new();
    for r in deps.patterns.references(&op.purpose) {
        let (Reference::Invoice(n) | Reference::Order(n)) = r;
        // The number as the store knows it (an order or payment account number, `392/1` by its order's
        // number), or an order id the store described; never a number taken for an id.
        let mut lookups = vec![
            crate::domain::Lookup::PaymentNumber(n.clone()),
            crate::domain::Lookup::OrderNumber(n.clone()),
        ];
        if let Some((order_number, _)) = n.rsplit_once('/') {
            lookups.push(crate::domain::Lookup::OrderNumber(order_number.to_owned()));
        }
        lookups.push(crate::domain::Lookup::OrderId(n.clone()));
        let mut id = None;
        for lookup in &lookups {
            if let Some(order) = crate::app::resolve::described_order(
                deps.store.as_ref(),
                deps.directory.as_ref(),
                lookup,
            )
            .await?
            {
                id = Some(order);
                break;
            }
        }
        let Some(id) = id else { continue };
        let Some(order) = deps.store.load_order(&id).await? else {
            continue;
        };
        if found.iter().any(|f| f.id == order.id) {
            continue;
        }
        let buyer_inn = order
            .info
            .as_ref()
            .and_then(|i| i.details.buyer.as_ref())
            .and_then(|b| b.inn.as_deref());
        let same_payer = match (buyer_inn, op.counterparty_inn.as_deref()) {
            (Some(b), Some(p)) => b == p,
            _ => true,
        };
        if order.info.is_some() && same_payer && order.totals().net() >= op.amount {
            found.push(order);
        }
    }
    Ok(match found.len() {
        1 => found.pop(),
        _ => None,
    })
}

async fn apply_operation(
    deps: &PullDeps,
    op: &BankOperation,
    open: &mut OpenOrders,
    s: &mut SourceSummary,
) -> Result<(), LedgerError> {
    let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
    if !op.is_final {
        s.skipped += 1;
        return Ok(());
    }
    if let Some(settlement) = settlement::recognise(op) {
        let mut takings = Vec::new();
        for day in &settlement.days {
            takings.extend(deps.takings.card_takings(settlement.acquirer, day).await?);
        }
        let report = settlement::reconcile(&settlement, &takings);
        if deps.takings.record_settlement(&report).await? {
            s.settlements += 1;
            if !report.reconciled {
                s.settlement_mismatches += 1;
                warn!(key = %report.key, acquirer = %report.acquirer, problems = ?report.problems, "acquirer settlement does not reconcile");
            }
            s.settlement_reports.push(report);
        } else {
            s.duplicates += 1;
        }
        return Ok(());
    }
    if !op.incoming {
        let Some(order) = refunded_order(deps, op).await? else {
            s.skipped += 1;
            return Ok(());
        };
        // The refund lands on the bank line it returns when there is exactly one, else on a line of its own.
        let bank_lines: Vec<&PaymentRef> = order
            .lines
            .iter()
            .filter(|(_, l)| l.method == PaymentMethod::BankTransfer && l.counted() >= op.amount)
            .map(|(r, _)| r)
            .collect();
        let line = match bank_lines.as_slice() {
            [one] => (*one).clone(),
            _ => op.payment_ref()?,
        };
        let fact = PaymentFact::new(
            FactId::new(Source::Bank, &op.key())?,
            order.id.clone(),
            line,
            PaymentMethod::BankTransfer,
            Currency::RUB,
            FactKind::Refund {
                amount: RefundAmount::Delta(op.amount),
            },
            now_ms(),
        )?
        .paid_by(op.payer());
        match ledger.record(&fact).await? {
            Recorded::Applied(_) => {
                s.new += 1;
                s.refunds += 1;
            }
            Recorded::Duplicate => s.duplicates += 1,
        }
        return Ok(());
    }
    let refs = deps.patterns.references(&op.purpose);
    let credit = Credit {
        amount: op.amount,
        payer_inn: op.counterparty_inn.as_deref(),
    };
    let matched = open.match_credit(credit, &refs);
    // 1C may have booked this money before the statement brought it: link, do not count twice.
    let booked = match &matched {
        Matched::Order { order, amount, .. } => deps
            .store
            .load_order(order)
            .await?
            .and_then(|o| booked_by_1c(&o, *amount)),
        _ => None,
    };
    let mut matched = matched;
    if matches!(matched, Matched::Unmatched(_)) {
        // An order 1C already marked paid with this money is no longer open; find it by the number named.
        for r in &refs {
            let (Reference::Invoice(n) | Reference::Order(n)) = r;
            let Ok(id) = OrderId::parse(n.clone()) else {
                continue;
            };
            if let Some(line) = deps
                .store
                .load_order(&id)
                .await?
                .and_then(|o| booked_by_1c(&o, op.amount))
            {
                matched = Matched::Order {
                    order: id,
                    amount: op.amount,
                    confidence: Confidence::Reference,
                    partial: false,
                    overpaid: false,
                    inn_mismatch: false,
                };
                return record_matched(&ledger, op, &matched, Some(&line), open, s).await;
            }
        }
    }
    record_matched(&ledger, op, &matched, booked.as_ref(), open, s).await
}

async fn record_matched(
    ledger: &Ledger<'_>,
    op: &BankOperation,
    matched: &Matched,
    booked: Option<&PaymentRef>,
    open: &mut OpenOrders,
    s: &mut SourceSummary,
) -> Result<(), LedgerError> {
    let mut all_new = true;
    for fact in facts(op, matched, booked, now_ms())? {
        match ledger.record(&fact).await? {
            Recorded::Applied(_) => {}
            Recorded::Duplicate => all_new = false,
        }
    }
    if !all_new {
        s.duplicates += 1;
        return Ok(());
    }
    s.new += 1;
    // Later operations of the same run see what this one paid.
    let mut paid = |order: &OrderId, amount: i64| open.pay(order, amount);
    match matched {
        Matched::Order {
            order,
            amount,
            partial,
            overpaid,
            ..
        } => {
            s.matched += 1;
            s.partial += usize::from(*partial);
            s.overpaid += usize::from(*overpaid);
            if booked.is_some() {
                s.linked_to_1c += 1;
            } else {
                paid(order, *amount);
            }
        }
        Matched::Split(parts) => {
            s.matched += 1;
            for (order, amount) in parts {
                paid(order, *amount);
            }
        }
        Matched::Unmatched(reason) => {
            s.unmatched += 1;
            info!(key = %op.key(), reason, "bank payment kept unmatched");
        }
    }
    Ok(())
}

/// One run over every source.
pub async fn handle(deps: &PullDeps) -> Result<Vec<SourceSummary>, LedgerError> {
    let mut summaries = Vec::new();
    for source in &deps.sources {
        let id = source.id();
        let mut s = SourceSummary {
            source: id.clone(),
            ..SourceSummary::default()
        };
        let from = match deps.cursors.watermark(&id).await? {
            // Re-read a safety overlap: late postings land with earlier dates.
            Some(w) => {
                let back =
                    time::Date::parse(&w, &time::format_description::well_known::Iso8601::DATE)
                        .map(|d| settlement::iso(d - time::Duration::days(deps.overlap_days)));
                back.unwrap_or_else(|_| date_days_ago(30))
            }
            None => date_days_ago(30),
        };
        let today = date_days_ago(0);
        let Fetched {
            operations: ops,
            unusable,
            other,
        } = match source.fetch(&from).await {
            Ok(fetched) => fetched,
            Err(e) => {
                warn!(source = %id, error.message = %e, "statement source failed; watermark kept");
                s.errors.push(e.to_string());
                summaries.push(s);
                continue;
            }
        };
        s.fetched = ops.len() + unusable.len() + other;
        s.unusable = unusable.len();
        s.skipped += other;
        for (op, reason) in &unusable {
            warn!(source = %id, operation = %op, reason, "bank operation cannot be used; counted, watermark kept");
            s.errors.push(format!("operation {op}: {reason}"));
        }
        let mut open = OpenOrders::from(deps.views.open_orders(10_000).await?);
        for op in &ops {
            apply_operation(deps, op, &mut open, &mut s).await?;
        }
        // Never past an operation that was not recorded: it is read again once the source can give it.
        if unusable.is_empty() {
            deps.cursors.set_watermark(&id, &today).await?;
        }
        info!(source = %id, fetched = s.fetched, new = s.new, matched = s.matched, unmatched = s.unmatched, "statement pulled");
        summaries.push(s);
    }
    Ok(summaries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::order::Buyer;
    use crate::domain::{OrderInfo, OrderState};

    struct Env {
        store: Arc<MemoryLedgerStore>,
        deps: PullDeps,
    }

    fn env() -> Env {
        let store = Arc::new(MemoryLedgerStore::default());
        let deps = PullDeps {
            store: store.clone(),
            views: store.clone(),
            takings: store.clone(),
            cursors: store.clone(),
            directory: store.clone(),
            events: Arc::new(MemoryPublisher::default()),
            sources: Vec::new(),
            patterns: PurposePatterns::new().unwrap(),
            overlap_days: 3,
        };
        Env { store, deps }
    }

    impl Env {
        fn ledger(&self) -> Ledger<'_> {
            Ledger::new(self.deps.store.as_ref(), self.deps.events.as_ref())
        }

        async fn register(&self, id: &str, total: i64, inn: Option<&str>) {
            let mut info = OrderInfo::new(Some(id.into()), total, Currency::RUB);
            info.details.buyer = inn.map(|inn| Buyer {
                inn: Some(inn.into()),
                ..Buyer::default()
            });
            self.ledger()
                .register_order(&OrderId::parse(id).unwrap(), info)
                .await
                .unwrap();
        }

        async fn record(
            &self,
            source: Source,
            ext: &str,
            order: &str,
            method: PaymentMethod,
            kind: FactKind,
            at_ms: i64,
        ) {
            let f = PaymentFact::new(
                FactId::new(source, &format!("{ext}#1")).unwrap(),
                OrderId::parse(order).unwrap(),
                PaymentRef::new(source, ext).unwrap(),
                method,
                Currency::RUB,
                kind,
                at_ms,
            )
            .unwrap();
            self.ledger().record(&f).await.unwrap();
        }

        async fn run(&self, ops: &[BankOperation]) -> SourceSummary {
            let mut s = SourceSummary::default();
            let mut open = OpenOrders::from(self.deps.views.open_orders(100).await.unwrap());
            for op in ops {
                apply_operation(&self.deps, op, &mut open, &mut s)
                    .await
                    .unwrap();
            }
            s
        }

        fn order(&self, id: &str) -> Order {
            self.store.order(id).unwrap()
        }
    }

    fn op(number: &str, incoming: bool, amount: i64, inn: &str, purpose: &str) -> BankOperation {
        BankOperation {
            account: "40702810900000012345".into(),
            date: "2024-03-05".into(),
            number: number.into(),
            amount,
            incoming,
            counterparty_account: Some("40702810000000000111".into()),
            counterparty_inn: Some(inn.into()),
            counterparty_name: None,
            purpose: purpose.into(),
            is_final: true,
        }
    }

    /// 2024-03-04 12:00 Moscow.
    const MARCH_4: i64 = 1_709_542_800_000;

    #[tokio::test]
    async fn acquirer_settlements_reconcile_against_the_days_card_payments_and_pay_no_order() {
        let e = env();
        e.register("7001", 6_000_000, None).await;
        e.register("7002", 4_075_308, None).await;
        let pay = |amount| FactKind::Payment { amount };
        e.record(
            Source::Tbank,
            "901",
            "7001",
            PaymentMethod::Card,
            pay(6_000_000),
            MARCH_4,
        )
        .await;
        e.record(
            Source::Tbank,
            "902",
            "7002",
            PaymentMethod::Card,
            pay(4_075_308),
            MARCH_4,
        )
        .await;
        // Another day and another acquirer do not belong to this payout.
        e.record(
            Source::Tbank,
            "903",
            "7003",
            PaymentMethod::Card,
            pay(100),
            MARCH_4 + 86_400_000,
        )
        .await;
        e.record(
            Source::Sber,
            "904",
            "7004",
            PaymentMethod::Card,
            pay(100),
            MARCH_4,
        )
        .await;
        let purpose = "Зачисление средств по операциям эквайринга. Мерчант 1234567. Дата реестра 04.03.2024. Комиссия 1987.65. Возврат покупки 0.00";
        let good = op("1003", true, 9_876_543, "7710140679", purpose);
        let short = op("1005", true, 9_800_000, "7710140679", purpose);
        let s = e.run(&[good.clone(), short]).await;
        assert_eq!(
            (s.settlements, s.settlement_mismatches, s.matched, s.new),
            (2, 1, 0, 0)
        );
        let ok = &s.settlement_reports[0];
        assert!(ok.reconciled, "{:?}", ok.problems);
        assert_eq!((ok.payments, ok.captured, ok.fee), (2, 10_075_308, 198_765));
        let bad = &s.settlement_reports[1];
        assert!(!bad.reconciled);
        assert_eq!(bad.fee, 275_308);
        assert!(bad.problems[0].contains("1987.65"), "{:?}", bad.problems);
        // The payout is nobody's order payment.
        assert_eq!(e.order("7001").totals().paid, 6_000_000);
        assert!(e.store.unmatched_receipts(10).await.unwrap().is_empty());
        // Re-read: reported once.
        let again = e.run(&[good]).await;
        assert_eq!((again.settlements, again.duplicates), (0, 1));
    }

    #[tokio::test]
    async fn a_return_to_the_buyer_naming_the_order_is_a_refund_and_supplier_payments_are_not() {
        let e = env();
        e.register("5001", 500_000, Some("7702000001")).await;
        let paid = e
            .run(&[op(
                "1",
                true,
                600_000,
                "7702000001",
                "Оплата по счету № 5001",
            )])
            .await;
        assert_eq!((paid.matched, paid.overpaid), (1, 1));
        assert_eq!(e.order("5001").state(), OrderState::Overpaid);
        let s = e
            .run(&[
                op(
                    "2",
                    false,
                    100_000,
                    "7702000001",
                    "Возврат излишне перечисленных средств по счету № 5001",
                ),
                // Our own purchase that happens to name an invoice 5001 of a supplier.
                op(
                    "3",
                    false,
                    100_000,
                    "7730000009",
                    "Оплата по счету № 5001 за бумагу",
                ),
                // A return to somebody else.
                op("4", false, 100_000, "7730000009", "Возврат по счету № 5001"),
            ])
            .await;
        assert_eq!((s.refunds, s.skipped), (1, 2));
        let order = e.order("5001");
        assert_eq!(
            (order.totals().paid, order.totals().refunded, order.state()),
            (600_000, 100_000, OrderState::Paid)
        );
        // The refund sits on the line it returns.
        assert_eq!(order.lines.len(), 1);
        let again = e
            .run(&[op(
                "2",
                false,
                100_000,
                "7702000001",
                "Возврат излишне перечисленных средств по счету № 5001",
            )])
            .await;
        assert_eq!((again.refunds, again.duplicates), (0, 1));
    }

    #[tokio::test]
    async fn money_1c_booked_before_the_statement_is_linked_not_counted_again() {
        let e = env();
        e.register("5001", 500_000, None).await;
        e.register("5002", 300_000, None).await;
        let bank = PaymentMethod::BankTransfer;
        // 1C booked the 30 % advance of 5001 and all of 5002 before statement-pull ran.
        e.record(
            Source::OneC,
            "adv-1",
            "5001",
            bank,
            FactKind::Payment { amount: 150_000 },
            MARCH_4,
        )
        .await;
        e.record(
            Source::OneC,
            "pay-2",
            "5002",
            bank,
            FactKind::Payment { amount: 300_000 },
            MARCH_4,
        )
        .await;
        let ops = [
            op(
                "11",
                true,
                150_000,
                "7702000001",
                "Аванс 30% по счету № 5001",
            ),
            op("12", true, 300_000, "7702000002", "Оплата по счету № 5002"),
        ];
        let s = e.run(&ops).await;
        assert_eq!((s.new, s.linked_to_1c, s.unmatched), (2, 2, 0), "{s:?}");
        assert_eq!(e.order("5001").totals().paid, 150_000);
        assert_eq!(e.order("5001").state(), OrderState::PartiallyPaid);
        assert_eq!(e.order("5002").totals().paid, 300_000);
        // The balance then comes as new money; the re-read changes nothing.
        let s = e
            .run(&[
                ops[0].clone(),
                ops[1].clone(),
                op("13", true, 350_000, "7702000001", "Оплата по счету № 5001"),
            ])
            .await;
        assert_eq!((s.new, s.duplicates, s.matched), (1, 2, 1));
        assert_eq!(e.order("5001").state(), OrderState::Paid);
        assert_eq!(e.order("5001").totals().paid, 500_000);
    }
}
