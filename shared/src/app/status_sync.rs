//! `status-sync`: no payment or refund is lost when its notification never arrives. Every minute it asks the
//! acquirers about the money whose outcome they know and the ledger does not (the questions of `domain::watch`,
//! kept by the ledger's commits), through their own status APIs: T-Bank `GetState`, Sber
//! `getOrderStatusExtended.do`, YooKassa `GET /v3/payments/{id}` and `GET /v3/refunds/{id}`.
//!
//! An answer becomes the same fact, with the same fact id, that the acquirer's notification would have produced
//! (`formats::tbank::state_fact`, `formats::sber::status_facts`, `formats::yookassa::payment_fact`), recorded the
//! same way (`crate::app::resolve::record_acquirer_fact`), so whichever comes first counts and the other is a
//! duplicate.
//!
//! A question is asked every minute for its first 15 minutes, hourly up to 3 days, then daily until
//! `STATUS_SYNC_GIVE_UP_DAYS`, when it is given up and flagged `status_unknown` for a person. A busy acquirer (429,
//! 5xx, a timeout) is not an answer: the question stays due and is asked next run; after a 429 the acquirer is not
//! asked again in this run. At most `STATUS_SYNC_CALLS_PER_RUN` calls go to one acquirer per run.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tracing::{error, info, warn};

use crate::app::ledger::{Ledger, LedgerError, Recorded};
use crate::app::resolve::record_acquirer_fact;
use crate::domain::watch::{Backoff, Question, WatchEntry};
use crate::domain::{PaymentFact, Source};
use crate::formats::{sber, tbank, yookassa};
use crate::platform::clock::now_ms;
use crate::platform::config::{AcquirerStatus, StatusSyncConfig};
use crate::ports::acquirers::{ProviderError, SberGateway, TbankApi, YooKassaApi};
use crate::ports::{EventPublisher, LedgerStore, StoreDirectory, Watchlist};

/// Questions read per run (more than all acquirers' call budgets together, so none starves another).
const DUE_PER_RUN: usize = 1_000;
/// No new call starts after this much of a run (the function's timeout is 60 s).
const RUN_BUDGET_MS: i64 = 40_000;
const DAY_MS: i64 = 24 * 3_600_000;

pub struct StatusSyncDeps {
    pub store: Arc<dyn LedgerStore>,
    pub events: Arc<dyn EventPublisher>,
    /// Where acquirer references resolve (as for notifications).
    pub directory: Arc<dyn StoreDirectory>,
    /// The questions, their schedule, and the ones given up.
    pub watchlist: Arc<dyn Watchlist>,
    pub tbank: Option<Arc<dyn TbankApi>>,
    pub sber: Option<Arc<dyn SberGateway>>,
    pub yookassa: Option<Arc<dyn YooKassaApi>>,
    pub config: StatusSyncConfig,
}

/// One acquirer's part of a run.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderRun {
    /// Questions asked.
    pub checked: usize,
    /// Answers that changed the ledger (a fact its notification had not brought).
    pub recorded: usize,
    /// Answers the ledger already knew, or that are not final yet.
    pub unchanged: usize,
    /// Questions nobody could answer in time: flagged `status_unknown` for a person.
    pub gave_up: usize,
    /// Calls that failed (busy, refused, unreadable) and answers the ledger could not record now; a busy
    /// acquirer's question, and an answer not recorded, is asked again next run.
    pub errors: usize,
}

/// What a run did (the function's JSON answer).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub due: usize,
    /// Due questions left for the next run (call budget, time budget, a throttled acquirer).
    pub deferred: usize,
    /// Per acquirer: `tbank`, `sber`, `yookassa`.
    pub providers: BTreeMap<String, ProviderRun>,
}

/// What an acquirer said about one question.
struct Answer {
    /// The facts its notifications would have brought (none while nothing happened yet).
    facts: Vec<PaymentFact>,
    /// Nothing more will happen by itself: the question is closed.
    settled: bool,
}

#[derive(Debug, thiserror::Error)]
enum AskError {
    /// 429, 5xx, a timeout: not an answer; asked again next run.
    #[error("{0}")]
    Busy(String),
    /// The acquirer refused, does not know the payment, or answered something unreadable.
    #[error("{0}")]
    Refused(String),
    /// This acquirer's API is not configured here.
    #[error("{0} status API is not configured")]
    NotConfigured(&'static str),
}

impl From<ProviderError> for AskError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::Unavailable { .. } => AskError::Busy(e.to_string()),
            other => AskError::Refused(other.to_string()),
        }
    }
}

fn is_refund(watch: &crate::domain::watch::Watch) -> bool {
    matches!(watch.question, Question::Refund { .. })
}

fn unreadable(e: impl std::fmt::Display) -> AskError {
    AskError::Refused(e.to_string())
}

fn configured<'a, T: ?Sized>(
    api: Option<&'a Arc<T>>,
    config: Option<&'a AcquirerStatus>,
    acquirer: Source,
) -> Result<(&'a T, &'a AcquirerStatus), AskError> {
    match (api, config) {
        (Some(api), Some(config)) => Ok((api.as_ref(), config)),
        _ => Err(AskError::NotConfigured(acquirer.as_str())),
    }
}

/// Ask the acquirer that took the money.
async fn ask(
    deps: &StatusSyncDeps,
    entry: &WatchEntry,
    acquirer: Source,
) -> Result<Answer, AskError> {
    let watch = &entry.watch;
    let external = watch.payment.external();
    let now = now_ms();
    match acquirer {
        Source::Tbank => {
            let (api, cfg) = configured(deps.tbank.as_ref(), deps.config.tbank.as_ref(), acquirer)?;
            let state = api.get_state(external).await?;
            let fact = tbank::state_fact(&state, &cfg.api.login, &cfg.reference, now)
                .map_err(unreadable)?;
            // An SBP refund the SBP refused never gets a notification: T-Bank keeps the payment `CONFIRMED` and
            // says why in GetQrState. The request fails with those words (a person can retry it to another bank).
            if let Question::Refund { request, .. } = &watch.question {
                let sbp = state.pay_method().is_some_and(|m| m.is_sbp());
                if sbp && state.status == "CONFIRMED" {
                    if let Some(why) = api.get_qr_state(external).await?.refund_refused() {
                        let failed = crate::domain::refund::progress_fact(
                            &watch.order,
                            request,
                            crate::domain::RefundStatus::Failed,
                            None,
                            None,
                            Some(format!("T-Bank: {why}")),
                            now,
                        )
                        .map_err(unreadable)?;
                        return Ok(Answer {
                            facts: vec![failed],
                            settled: false,
                        });
                    }
                }
            }
            Ok(Answer {
                facts: fact.into_iter().collect(),
                // A refund question closes when its request completes (the ledger's commit closes it).
                settled: !is_refund(watch) && tbank::is_final_status(&state.status),
            })
        }
        Source::Sber => {
            let (api, cfg) = configured(deps.sber.as_ref(), deps.config.sber.as_ref(), acquirer)?;
            let status = api.order_status(external).await?;
            let (facts, settled) =
                sber::status_facts(external, &status, &cfg.reference, now).map_err(unreadable)?;
            Ok(Answer {
                facts,
                settled: !is_refund(watch) && settled,
            })
        }
        Source::Yookassa => {
            let (api, cfg) = configured(
                deps.yookassa.as_ref(),
                deps.config.yookassa.as_ref(),
                acquirer,
            )?;
            match &watch.question {
                Question::Payment | Question::Owed => {
                    let payment = api.payment(external).await?.ok_or_else(|| {
                        AskError::Refused("YooKassa does not know the payment".into())
                    })?;
                    let fact =
                        yookassa::payment_fact(&payment, &cfg.order_keys, &cfg.reference, now)
                            .map_err(unreadable)?;
                    Ok(Answer {
                        facts: fact.into_iter().collect(),
                        settled: matches!(payment.status.as_str(), "succeeded" | "canceled"),
                    })
                }
                Question::Refund {
                    provider_id: Some(id),
                    ..
                } => {
                    let refund = api.refund(id).await?.ok_or_else(|| {
                        AskError::Refused("YooKassa does not know the refund".into())
                    })?;
                    if refund.status == "canceled" {
                        // YooKassa has no notification for a cancelled refund: this read is the only news. The
                        // request fails, its money is no longer claimed, and the commit closes the question.
                        let Question::Refund { request, .. } = &watch.question else {
                            return Err(AskError::Refused("not a refund question".into()));
                        };
                        let failed = crate::domain::refund::progress_fact(
                            &watch.order,
                            request,
                            crate::domain::RefundStatus::Failed,
                            Some(refund.id.clone()),
                            None,
                            Some("YooKassa cancelled the refund".into()),
                            now,
                        )
                        .map_err(unreadable)?;
                        return Ok(Answer {
                            facts: vec![failed],
                            settled: false,
                        });
                    }
                    let fact = yookassa::refund_fact(&refund, watch.order.clone(), now)
                        .map_err(unreadable)?;
                    Ok(Answer {
                        facts: fact.into_iter().collect(),
                        settled: false,
                    })
                }
                // Sent without an answer: no refund id to ask about; refund-chargeback's retry (same
                // Idempotence-Key) learns it.
                Question::Refund {
                    provider_id: None, ..
                } => Ok(Answer {
                    facts: Vec::new(),
                    settled: false,
                }),
            }
        }
        Source::Bank | Source::OneC | Source::Store | Source::Refund | Source::Console => Err(
            AskError::Refused(format!("{} is not an acquirer", acquirer.as_str())),
        ),
    }
}

/// Ask again later, or give up when the question is older than the acquirer keeps its payments.
///
/// The step counts from the run's start, less [`SLACK_MS`]: the next one-minute run starts about a minute after
/// this one did, and must find a one-minute question due.
async fn reschedule(
    deps: &StatusSyncDeps,
    entry: &WatchEntry,
    started: i64,
    run: &mut ProviderRun,
) -> Result<(), LedgerError> {
    let backoff = Backoff {
        give_up_after_ms: deps.config.give_up_days.saturating_mul(DAY_MS),
    };
    match backoff.next(entry.since_ms, started) {
        Some(due) => {
            deps.watchlist
                .reschedule(&entry.key(), due - SLACK_MS, entry.checks.saturating_add(1))
                .await?
        }
        None => {
            error!(payment = %entry.watch.payment, order = %entry.watch.order, checks = entry.checks, "payment status unknown: given up, a person must look");
            deps.watchlist.give_up(entry).await?;
            run.gave_up += 1;
        }
    }
    Ok(())
}

/// Questions asked at once (each a status call and, when it changed something, a ledger commit).
const CONCURRENCY: usize = 4;
/// How much earlier than its step a question falls due (a schedule's runs are not exactly a minute apart).
const SLACK_MS: i64 = 5_000;

/// Whether the question is still one its order has (`domain::watch::watches`): then only the order's own change
/// closes it (an answer that the acquirer calls final may still leave money the ledger has not settled: a hold
/// partly released, a refund of a payment the ledger never saw captured).
async fn still_the_orders(
    deps: &StatusSyncDeps,
    entry: &WatchEntry,
) -> Result<bool, crate::ports::StoreError> {
    let order = deps.store.load_order(&entry.watch.order).await?;
    Ok(order.is_some_and(|o| crate::domain::watch::watches(&o).contains_key(&entry.key())))
}

/// Ask about `entry` and record what the answer says; the facts recorded (`Ok(true)` when one changed the ledger).
async fn settle_one(
    deps: &StatusSyncDeps,
    ledger: &Ledger<'_>,
    entry: &WatchEntry,
    acquirer: Source,
) -> Result<Result<(bool, bool), AskError>, LedgerError> {
    let answer = match ask(deps, entry, acquirer).await {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    let mut changed = false;
    for fact in answer.facts {
        // The same fact the notification would be, receipt included.
        let fact = fact.receipted_by(&deps.config.receipts.by);
        let recorded =
            record_acquirer_fact(ledger, deps.store.as_ref(), deps.directory.as_ref(), fact)
                .await?;
        changed |= matches!(recorded, Recorded::Applied(_));
    }
    Ok(Ok((changed, answer.settled)))
}

/// One run: every due question, oldest first, within each acquirer's call budget, [`CONCURRENCY`] at a time.
pub async fn handle(deps: &StatusSyncDeps) -> Result<RunSummary, LedgerError> {
    let started = now_ms();
    let due = deps.watchlist.due(started, DUE_PER_RUN).await?;
    let mut summary = RunSummary {
        due: due.len(),
        ..RunSummary::default()
    };
    let mut calls: BTreeMap<Source, usize> = BTreeMap::new();
    let mut throttled: Vec<Source> = Vec::new();
    let mut busy: BTreeMap<Source, usize> = BTreeMap::new();
    let ledger = Ledger::new(deps.store.as_ref(), deps.events.as_ref());
    let mut queue = due.iter();
    loop {
        // The next questions to ask together; what a budget or a throttled acquirer holds back is deferred.
        let mut batch: Vec<(&WatchEntry, Source)> = Vec::new();
        for entry in queue.by_ref() {
            let Some(acquirer) = entry.watch.acquirer() else {
                warn!(key = %entry.key(), "a question about money no acquirer took; closed");
                deps.watchlist.close(&entry.key()).await?;
                continue;
            };
            let made = calls.entry(acquirer).or_default();
            if throttled.contains(&acquirer)
                || *made >= deps.config.calls_per_run
                || now_ms() - started > RUN_BUDGET_MS
            {
                summary.deferred += 1;
                continue;
            }
            *made += 1;
            batch.push((entry, acquirer));
            if batch.len() == CONCURRENCY {
                break;
            }
        }
        if batch.is_empty() {
            break;
        }
        let answers = futures_util::future::join_all(
            batch
                .iter()
                .map(|(entry, acquirer)| settle_one(deps, &ledger, entry, *acquirer)),
        )
        .await;
        for ((entry, acquirer), answer) in batch.into_iter().zip(answers) {
            let run = summary
                .providers
                .entry(acquirer.as_str().to_owned())
                .or_default();
            run.checked += 1;
            let answer = match answer {
                Ok(a) => a,
                // The ledger could not be written: this question stays due and the run goes on with the others.
                Err(e) => {
                    warn!(payment = %entry.watch.payment, error.message = %e, "status learned but not recorded; asked again next run");
                    run.errors += 1;
                    continue;
                }
            };
            match answer {
                Ok((changed, settled)) => {
                    if changed {
                        info!(payment = %entry.watch.payment, order = %entry.watch.order, "status read from the acquirer recorded");
                        run.recorded += 1;
                    } else {
                        run.unchanged += 1;
                    }
                    if settled && !still_the_orders(deps, entry).await? {
                        deps.watchlist.close(&entry.key()).await?;
                    } else {
                        reschedule(deps, entry, started, run).await?;
                    }
                }
                Err(AskError::Busy(reason)) => {
                    warn!(payment = %entry.watch.payment, error.message = %reason, "acquirer busy; asked again next run");
                    run.errors += 1;
                    // Not an answer: asked again at the next run (not before the questions behind it), and after a
                    // 429, or a batch's worth of failures, this acquirer waits for the next run.
                    deps.watchlist
                        .reschedule(&entry.key(), started + 60_000 - SLACK_MS, entry.checks)
                        .await?;
                    let failures = busy.entry(acquirer).or_default();
                    *failures += 1;
                    if (reason.contains("429") || *failures >= CONCURRENCY)
                        && !throttled.contains(&acquirer)
                    {
                        throttled.push(acquirer);
                    }
                }
                Err(e) => {
                    warn!(payment = %entry.watch.payment, error.message = %e, "status not learned");
                    run.errors += 1;
                    reschedule(deps, entry, started, run).await?;
                }
            }
        }
    }
    info!(
        due = summary.due,
        deferred = summary.deferred,
        "status-sync run"
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use proptest::prelude::*;

    use super::*;
    use crate::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
    use crate::domain::reference::{parse_rules_or_default, StorePaymentInfo};
    use crate::domain::watch::Watch;
    use crate::domain::{Currency, FactKind, OrderId, OrderInfo, OrderState, PaymentRef};
    use crate::formats::sber::GatewayStatus;
    use crate::formats::tbank::{Notification, StateResponse};
    use crate::formats::yookassa::{Payment, Refund};
    use crate::platform::config::{
        AcquirerApi, LedgerConfig, Secret, DEFAULT_SBER_REFERENCE, DEFAULT_TBANK_REFERENCE,
    };

    /// T-Bank as `GetState` sees it: a status and current amount per payment; `busy` answers 503 (or 429).
    #[derive(Default)]
    struct FakeTbank {
        states: Mutex<HashMap<String, (String, i64)>>,
        busy: Mutex<Option<u16>>,
        calls: Mutex<usize>,
        /// SBP payments (`Params` `Source` `qrsbp`).
        sbp: Mutex<std::collections::HashSet<String>>,
        /// SBP payments whose refund the SBP refused: GetQrState's `QrCancelMessage`.
        qr_refused: Mutex<HashMap<String, String>>,
    }

    impl FakeTbank {
        fn set(&self, payment: &str, status: &str, amount: i64) {
            self.states
                .lock()
                .unwrap()
                .insert(payment.into(), (status.into(), amount));
        }
    }

    #[async_trait]
    impl TbankApi for FakeTbank {
        async fn get_qr_state(
            &self,
            payment_id: &str,
        ) -> Result<crate::formats::tbank::QrStateResponse, ProviderError> {
            let refused = self.qr_refused.lock().unwrap().get(payment_id).cloned();
            Ok(crate::formats::tbank::QrStateResponse {
                success: true,
                error_code: "0".into(),
                status: "CONFIRMED".into(),
                qr_cancel_code: refused.as_ref().map(|_| "I05043".to_owned()),
                qr_cancel_message: refused,
                message: None,
            })
        }

        async fn get_state(&self, payment_id: &str) -> Result<StateResponse, ProviderError> {
            *self.calls.lock().unwrap() += 1;
            if let Some(status) = *self.busy.lock().unwrap() {
                return Err(ProviderError::Unavailable {
                    provider: "T-Bank",
                    reason: format!("HTTP {status}"),
                });
            }
            let Some((status, amount)) = self.states.lock().unwrap().get(payment_id).cloned()
            else {
                return Ok(StateResponse {
                    success: false,
                    error_code: "7".into(),
                    status: String::new(),
                    payment_id: payment_id.into(),
                    order_id: String::new(),
                    amount: None,
                    message: Some("Неверный статус транзакции".into()),
                    params: Vec::new(),
                });
            };
            Ok(StateResponse {
                success: true,
                error_code: "0".into(),
                status,
                payment_id: payment_id.into(),
                order_id: format!("IM-{payment_id}"),
                amount: Some(amount),
                message: None,
                params: if self.sbp.lock().unwrap().contains(payment_id) {
                    vec![crate::formats::tbank::StateParam {
                        key: "Source".into(),
                        value: "qrsbp".into(),
                    }]
                } else {
                    Vec::new()
                },
            })
        }
    }

    struct FakeSber(GatewayStatus);

    #[async_trait]
    impl SberGateway for FakeSber {
        async fn order_status(&self, _: &str) -> Result<GatewayStatus, ProviderError> {
            Ok(self.0.clone())
        }
    }

    #[derive(Default)]
    struct FakeYooKassa {
        refunds: HashMap<String, Refund>,
    }

    #[async_trait]
    impl YooKassaApi for FakeYooKassa {
        async fn payment(&self, _: &str) -> Result<Option<Payment>, ProviderError> {
            Ok(None)
        }
        async fn refund(&self, id: &str) -> Result<Option<Refund>, ProviderError> {
            Ok(self.refunds.get(id).cloned())
        }
    }

    struct Env {
        store: Arc<MemoryLedgerStore>,
        events: Arc<MemoryPublisher>,
        tbank: Arc<FakeTbank>,
        deps: StatusSyncDeps,
    }

    fn api() -> AcquirerApi {
        AcquirerApi {
            login: "T".into(),
            secret: Secret::new("pw"),
            api_url: "http://127.0.0.1:9".into(),
        }
    }

    fn env() -> Env {
        let store = Arc::new(MemoryLedgerStore::default());
        let events = Arc::new(MemoryPublisher::default());
        let tbank = Arc::new(FakeTbank::default());
        let status = |reference: &str| AcquirerStatus {
            api: api(),
            reference: parse_rules_or_default(reference),
            order_keys: Vec::new(),
        };
        let deps = StatusSyncDeps {
            store: store.clone(),
            events: events.clone(),
            directory: store.clone(),
            watchlist: store.clone(),
            tbank: Some(tbank.clone()),
            sber: None,
            yookassa: None,
            config: StatusSyncConfig {
                ledger: LedgerConfig {
                    table: "t".into(),
                    events_queue_url: "q".into(),
                    refunds_queue_url: None,
                },
                tbank: Some(status(DEFAULT_TBANK_REFERENCE)),
                sber: Some(status(DEFAULT_SBER_REFERENCE)),
                yookassa: Some(status("order_number,order")),
                calls_per_run: 100,
                give_up_days: 30,
                receipts: Default::default(),
            },
        };
        Env {
            store,
            events,
            tbank,
            deps,
        }
    }

    impl Env {
        fn ledger(&self) -> Ledger<'_> {
            Ledger::new(self.store.as_ref(), self.events.as_ref())
        }

        /// What store-sync registers: order `id` of `total`, its payment started at `acquirer` as `invoice`.
        async fn started(&self, id: &str, total: i64, acquirer: Source, invoice: &str) {
            let mut info = OrderInfo::new(Some(format!("IM-{invoice}")), total, Currency::RUB);
            info.details.payments = vec![StorePaymentInfo {
                id: format!("9{id}"),
                account_number: Some(format!("{id}/1")),
                sum: total,
                pay_system_id: Some("5".into()),
                ps_invoice_id: Some(invoice.into()),
                paid: false,
                acquirer: Some(acquirer),
            }];
            self.ledger()
                .register_order(&OrderId::parse(id).unwrap(), info)
                .await
                .unwrap();
        }

        /// T-Bank's notification of `status`, delivered as acquiring-callback records it.
        async fn notify(&self, payment: &str, status: &str, amount: i64) -> Recorded {
            let fact = tbank::to_fact(
                &Notification {
                    terminal_key: "T".into(),
                    order_id: format!("IM-{payment}"),
                    success: true,
                    status: status.into(),
                    payment_id: payment.into(),
                    error_code: "0".into(),
                    amount,
                    pay_method: None,
                },
                &parse_rules_or_default(DEFAULT_TBANK_REFERENCE),
                1,
            )
            .unwrap()
            .unwrap();
            record_acquirer_fact(
                &self.ledger(),
                self.store.as_ref(),
                self.store.as_ref(),
                fact,
            )
            .await
            .unwrap()
        }

        /// Make every open question due now (the schedule's minute has passed).
        async fn tick(&self) {
            for e in self.store.due(i64::MAX, 10_000).await.unwrap() {
                self.store.reschedule(&e.key(), 0, e.checks).await.unwrap();
            }
        }

        async fn open(&self) -> Vec<String> {
            self.store
                .due(i64::MAX, 10_000)
                .await
                .unwrap()
                .iter()
                .map(WatchEntry::key)
                .collect()
        }
    }

    fn tbank_run(s: &RunSummary) -> ProviderRun {
        s.providers.get("tbank").cloned().unwrap_or_default()
    }

    #[tokio::test]
    async fn a_lost_notification_is_learned_from_get_state_as_the_same_fact() {
        let e = env();
        e.started("7001", 150_000, Source::Tbank, "p1").await;
        assert_eq!(e.open().await, ["7001#tbank:p1#payment"]);
        // The buyer is still on the payment page.
        e.tbank.set("p1", "FORM_SHOWED", 150_000);
        let first = handle(&e.deps).await.unwrap();
        assert_eq!(
            tbank_run(&first),
            ProviderRun {
                checked: 1,
                unchanged: 1,
                ..ProviderRun::default()
            }
        );
        assert_eq!(
            handle(&e.deps).await.unwrap().due,
            0,
            "asked again in a minute, not now"
        );
        // Paid; T-Bank's notification never comes.
        e.tbank.set("p1", "CONFIRMED", 150_000);
        e.tick().await;
        let second = handle(&e.deps).await.unwrap();
        assert_eq!(
            (tbank_run(&second).checked, tbank_run(&second).recorded),
            (1, 1)
        );
        let order = e.store.order("7001").unwrap();
        assert_eq!(
            (order.state(), order.totals().paid),
            (OrderState::Paid, 150_000)
        );
        assert!(e.open().await.is_empty(), "settled: the question is closed");
        assert!(e
            .store
            .facts()
            .iter()
            .any(|f| f.id.as_str() == "tbank#p1#CONFIRMED"));
        // The notification arrives after all: a duplicate.
        assert!(matches!(
            e.notify("p1", "CONFIRMED", 150_000).await,
            Recorded::Duplicate
        ));
        assert_eq!(e.store.order("7001").unwrap().totals().paid, 150_000);
    }

    #[tokio::test]
    async fn a_busy_acquirer_is_asked_again_next_run_and_stops_being_asked_in_this_run() {
        let e = env();
        let all = CONCURRENCY + 2;
        for n in 1..=all {
            e.started(
                &format!("{}", 7000 + n),
                100_000,
                Source::Tbank,
                &format!("p{n}"),
            )
            .await;
        }
        *e.tbank.busy.lock().unwrap() = Some(503);
        let run = handle(&e.deps).await.unwrap();
        // A batch of failures and the acquirer is left alone for the rest of the run.
        assert_eq!(
            (
                tbank_run(&run).checked,
                tbank_run(&run).errors,
                run.deferred
            ),
            (CONCURRENCY, CONCURRENCY, all - CONCURRENCY)
        );
        assert_eq!(
            handle(&e.deps).await.unwrap().due,
            all - CONCURRENCY,
            "the busy ones wait for the next run, behind the others"
        );
        e.tick().await;
        *e.tbank.calls.lock().unwrap() = 0;
        *e.tbank.busy.lock().unwrap() = Some(429);
        let throttled = handle(&e.deps).await.unwrap();
        assert_eq!(
            (throttled.deferred, *e.tbank.calls.lock().unwrap()),
            (all - CONCURRENCY, CONCURRENCY)
        );
        *e.tbank.busy.lock().unwrap() = None;
        for n in 1..=all {
            let status = if n == 1 { "REJECTED" } else { "CONFIRMED" };
            e.tbank.set(&format!("p{n}"), status, 100_000);
        }
        e.tick().await;
        let answered = handle(&e.deps).await.unwrap();
        assert_eq!(tbank_run(&answered).recorded, all);
        assert!(e.open().await.is_empty());
        assert_eq!(e.store.order("7001").unwrap().state(), OrderState::Unpaid);
        assert_eq!(e.store.order("7002").unwrap().state(), OrderState::Paid);
    }

    #[tokio::test]
    async fn the_call_budget_leaves_the_rest_for_the_next_run() {
        let mut e = env();
        e.deps.config.calls_per_run = 2;
        for n in 1..=3 {
            e.started(&format!("700{n}"), 100_000, Source::Tbank, &format!("p{n}"))
                .await;
            e.tbank.set(&format!("p{n}"), "CONFIRMED", 100_000);
        }
        let run = handle(&e.deps).await.unwrap();
        assert_eq!((tbank_run(&run).checked, run.deferred), (2, 1));
        assert_eq!(
            handle(&e.deps).await.unwrap().providers["tbank"].recorded,
            1
        );
        assert!(e.open().await.is_empty());
    }

    #[tokio::test]
    async fn a_question_nobody_answers_in_time_is_given_up_for_a_person() {
        let e = env();
        let watch = Watch {
            order: OrderId::parse("7001").unwrap(),
            payment: PaymentRef::new(Source::Tbank, "p1").unwrap(),
            question: Question::Payment,
        };
        let month_ago = now_ms() - 31 * DAY_MS;
        e.store
            .watch(&WatchEntry::new(watch, month_ago))
            .await
            .unwrap();
        e.tbank.set("p1", "NEW", 100_000);
        let run = handle(&e.deps).await.unwrap();
        assert_eq!(tbank_run(&run).gave_up, 1);
        assert!(e.open().await.is_empty());
        let unknown = e.store.status_unknown(10).await.unwrap();
        assert_eq!(unknown[0].key(), "7001#tbank:p1#payment");
    }

    #[tokio::test]
    async fn a_sber_look_up_owed_by_a_callback_records_what_the_callback_would_have() {
        let mut e = env();
        e.started("2003", 500_000, Source::Sber, "md-1").await;
        e.deps.sber = Some(Arc::new(FakeSber(GatewayStatus {
            order_status: Some(2),
            order_number: Some("9002003_5".into()),
            currency: Some(Currency::RUB),
            amount: Some(500_000),
            approved: Some(500_000),
            deposited: Some(500_000),
            refunded: None,
        })));
        let run = handle(&e.deps).await.unwrap();
        assert_eq!(run.providers["sber"].recorded, 1);
        let order = e.store.order("2003").unwrap();
        assert_eq!(
            (order.state(), order.totals().paid),
            (OrderState::Paid, 500_000)
        );
        assert!(e
            .store
            .facts()
            .iter()
            .any(|f| f.id.as_str() == "sber#md-1#deposited#1"));
    }

    /// Order 7001 paid 1 500,00 at YooKassa and a 500,00 refund of it pending there (refund id `rf-1`).
    async fn with_a_pending_yookassa_refund(e: &Env) {
        let order = OrderId::parse("7001").unwrap();
        e.ledger()
            .register_order(
                &order,
                OrderInfo::new(Some("7001".into()), 150_000, Currency::RUB),
            )
            .await
            .unwrap();
        let payment =
            PaymentRef::new(Source::Yookassa, "2f9c1e77-000f-5001-9000-1a2b3c4d5e6f").unwrap();
        let fact = |id: &str, kind: FactKind, source: Source, on: PaymentRef| {
            PaymentFact::new(
                crate::domain::FactId::new(source, id).unwrap(),
                order.clone(),
                on,
                crate::domain::PaymentMethod::Card,
                Currency::RUB,
                kind,
                1,
            )
            .unwrap()
        };
        let l = e.ledger();
        l.record(&fact(
            "payment#p#succeeded",
            FactKind::Payment { amount: 150_000 },
            Source::Yookassa,
            payment.clone(),
        ))
        .await
        .unwrap();
        l.record(
            &fact(
                "ret-1",
                FactKind::RefundRequested {
                    amount: 50_000,
                    reason: "Брак".into(),
                    method: crate::domain::PaymentMethod::Card,
                    retries: None,
                    to_bank: None,
                },
                Source::OneC,
                PaymentRef::new(Source::OneC, "ret-1").unwrap(),
            )
            .with_payment(payment.clone()),
        )
        .await
        .unwrap();
        l.record(&fact(
            "1c#ret-1#pending",
            FactKind::RefundProgress(crate::domain::RefundProgress {
                request: "1c#ret-1".into(),
                status: crate::domain::RefundStatus::Pending,
                provider_id: Some("rf-1".into()),
                expect: Some("yookassa#refund#rf-1".into()),
                detail: None,
                with_receipt: false,
            }),
            Source::Refund,
            PaymentRef::new(Source::Refund, "1c#ret-1").unwrap(),
        ))
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_pending_yookassa_refund_is_read_back_and_completes_its_request() {
        let mut e = env();
        with_a_pending_yookassa_refund(&e).await;
        assert_eq!(
            e.open().await,
            ["7001#yookassa:2f9c1e77-000f-5001-9000-1a2b3c4d5e6f#refund#1c#ret-1"]
        );
        let refund: Refund = serde_json::from_value(serde_json::json!({
            "id": "rf-1", "payment_id": "2f9c1e77-000f-5001-9000-1a2b3c4d5e6f", "status": "succeeded",
            "amount": {"value": "500.00", "currency": "RUB"}, "created_at": "2026-11-30T10:00:00.000Z"
        }))
        .unwrap();
        e.deps.yookassa = Some(Arc::new(FakeYooKassa {
            refunds: HashMap::from([("rf-1".to_owned(), refund)]),
        }));
        let run = handle(&e.deps).await.unwrap();
        assert_eq!(run.providers["yookassa"].recorded, 1);
        let o = e.store.order("7001").unwrap();
        assert_eq!(o.totals().refunded, 50_000);
        assert_eq!(
            o.refund_requests["1c#ret-1"].status,
            crate::domain::RefundStatus::Succeeded
        );
        assert!(
            e.open().await.is_empty(),
            "the request completed: its question closed"
        );
    }

    /// An SBP refund at T-Bank: pending while the SBP processes it; the SBP's refusal (GetQrState) fails the request
    /// with its words; its completion (GetState `PARTIAL_REFUNDED`) completes it.
    #[tokio::test]
    async fn a_pending_sbp_refund_is_failed_by_the_sbps_refusal_or_completed_by_t_banks_state() {
        for refused in [true, false] {
            let e = env();
            let order = OrderId::parse("7101").unwrap();
            e.ledger()
                .register_order(
                    &order,
                    OrderInfo::new(Some("7101".into()), 150_000, Currency::RUB),
                )
                .await
                .unwrap();
            let payment = PaymentRef::new(Source::Tbank, "3269844626").unwrap();
            let fact = |source: Source, id: &str, on: PaymentRef, kind: FactKind| {
                PaymentFact::new(
                    crate::domain::FactId::new(source, id).unwrap(),
                    order.clone(),
                    on,
                    crate::domain::PaymentMethod::Card,
                    Currency::RUB,
                    kind,
                    1,
                )
                .unwrap()
            };
            let l = e.ledger();
            let paid = fact(
                Source::Tbank,
                "3269844626#CONFIRMED#150000",
                payment.clone(),
                FactKind::Payment { amount: 150_000 },
            )
            .paid_with(Some(crate::domain::PayMethod::Sbp));
            l.record(&paid).await.unwrap();
            let ask = fact(
                Source::OneC,
                "ret-1",
                PaymentRef::new(Source::OneC, "ret-1").unwrap(),
                FactKind::RefundRequested {
                    amount: 50_000,
                    reason: "Брак".into(),
                    method: crate::domain::PaymentMethod::Card,
                    retries: None,
                    to_bank: None,
                },
            )
            .with_payment(payment.clone());
            l.record(&ask).await.unwrap();
            l.record(&fact(
                Source::Refund,
                "1c#ret-1#pending",
                PaymentRef::new(Source::Refund, "1c#ret-1").unwrap(),
                FactKind::RefundProgress(crate::domain::RefundProgress {
                    request: "1c#ret-1".into(),
                    status: crate::domain::RefundStatus::Pending,
                    provider_id: None,
                    expect: Some("tbank#3269844626#PARTIAL_REFUNDED#100000".into()),
                    detail: None,
                    with_receipt: false,
                }),
            ))
            .await
            .unwrap();
            e.tbank.sbp.lock().unwrap().insert("3269844626".into());
            // Still being processed: nothing changes.
            e.tbank.set("3269844626", "ASYNC_REFUNDING", 150_000);
            handle(&e.deps).await.unwrap();
            let status =
                |e: &Env| e.store.order("7101").unwrap().refund_requests["1c#ret-1"].clone();
            assert_eq!(status(&e).status, crate::domain::RefundStatus::Pending);
            // The next question is due now (not in a minute).
            for w in e.store.due(i64::MAX, 10).await.unwrap() {
                e.store.reschedule(&w.key(), 0, w.checks).await.unwrap();
            }
            if refused {
                e.tbank.set("3269844626", "CONFIRMED", 150_000);
                e.tbank.qr_refused.lock().unwrap().insert(
                    "3269844626".into(),
                    "У клиента нет расчетного счета в этом банке".into(),
                );
                handle(&e.deps).await.unwrap();
                let r = status(&e);
                assert_eq!(r.status, crate::domain::RefundStatus::Failed);
                assert!(r.detail.unwrap_or_default().contains("I05043"));
                assert_eq!(e.store.order("7101").unwrap().totals().refunded, 0);
            } else {
                e.tbank.set("3269844626", "PARTIAL_REFUNDED", 100_000);
                handle(&e.deps).await.unwrap();
                assert_eq!(status(&e).status, crate::domain::RefundStatus::Succeeded);
                assert_eq!(e.store.order("7101").unwrap().totals().refunded, 50_000);
            }
            assert!(e.open().await.is_empty(), "the question closed");
        }
    }

    /// Notifications and polls in any order: every order paid once, every fact recorded and announced once.
    async fn interleaved(seed: u64, orders: usize) {
        let e = env();
        let mut steps: Vec<Option<usize>> = Vec::new();
        for n in 0..orders {
            e.started(
                &format!("{}", 8000 + n),
                100_000 + n as i64,
                Source::Tbank,
                &format!("q{n}"),
            )
            .await;
            e.tbank
                .set(&format!("q{n}"), "CONFIRMED", 100_000 + n as i64);
            // Each notification is delivered once or twice (a redelivery), or lost.
            for _ in 0..(seed as usize + n) % 3 {
                steps.push(Some(n));
            }
        }
        for _ in 0..3 {
            steps.push(None); // a status-sync run
        }
        let mut rng = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            | 1;
        for i in (1..steps.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            steps.swap(i, (rng % (i as u64 + 1)) as usize);
        }
        for step in steps {
            match step {
                Some(n) => {
                    e.notify(&format!("q{n}"), "CONFIRMED", 100_000 + n as i64)
                        .await;
                }
                None => {
                    e.tick().await;
                    handle(&e.deps).await.unwrap();
                }
            }
        }
        // The last run comes after every delivery (the schedule never stops).
        e.tick().await;
        handle(&e.deps).await.unwrap();
        for n in 0..orders {
            let o = e.store.order(&format!("{}", 8000 + n)).unwrap();
            assert_eq!(
                (o.state(), o.totals().paid),
                (OrderState::Paid, 100_000 + n as i64),
                "seed {seed}, order {n}"
            );
        }
        let paid_facts = e
            .store
            .facts()
            .iter()
            .filter(|f| matches!(f.kind, FactKind::Payment { .. }))
            .count();
        assert_eq!(
            paid_facts, orders,
            "seed {seed}: one payment fact per order"
        );
        let announced: Vec<String> = e
            .events
            .events()
            .iter()
            .filter(|ev| ev.event_id.contains("CONFIRMED"))
            .map(|ev| ev.event_id.clone())
            .collect();
        let mut unique = announced.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            (announced.len(), unique.len()),
            (orders, orders),
            "seed {seed}: announced once"
        );
        assert!(
            e.open().await.is_empty(),
            "seed {seed}: every question closed"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn polls_and_notifications_in_any_order_count_each_payment_once(seed in 0u64..10_000, orders in 1usize..12) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(interleaved(seed, orders));
        }
    }
    // Found by a review of status-sync: each asserted the right behaviour and failed before its fix.

    /// R1: PARTIAL_REVERSED is treated as final: the question is closed while the rest of the hold is open.
    #[tokio::test]
    async fn review_partial_reversal_keeps_the_rest_of_the_hold_watched() {
        let e = env();
        e.started("7001", 150_000, Source::Tbank, "p1").await;
        e.tbank.set("p1", "AUTHORIZED", 150_000);
        handle(&e.deps).await.unwrap();
        e.tbank.set("p1", "PARTIAL_REVERSED", 100_000);
        e.tick().await;
        handle(&e.deps).await.unwrap();
        let o = e.store.order("7001").unwrap();
        assert_eq!(o.totals().held, 100_000, "100 000 still held");
        assert_eq!(
            crate::domain::watch::watches(&o).len(),
            1,
            "the order still has its question"
        );
        assert_eq!(
            e.open().await,
            ["7001#tbank:p1#payment"],
            "the watchlist kept it"
        );
    }

    /// R2: a refund status read (CONFIRMED never seen) closes the question; the payment is never counted.
    #[tokio::test]
    async fn review_a_refunded_status_does_not_close_a_payment_the_ledger_never_saw() {
        let e = env();
        e.started("7001", 150_000, Source::Tbank, "p1").await;
        // Paid (CONFIRMED notification lost), then 50 000 refunded from T-Bank's cabinet.
        e.tbank.set("p1", "PARTIAL_REFUNDED", 100_000);
        handle(&e.deps).await.unwrap();
        let o = e.store.order("7001").unwrap();
        assert!(
            o.totals().paid > 0 || !e.open().await.is_empty(),
            "paid {} and no question left",
            o.totals().paid
        );
    }

    /// R3: money that waited on its `unmatched:` order moves to the store order; the move's commit on the
    /// unmatched order deletes the WATCH row the store order also needs (same key, one row).
    #[tokio::test]
    async fn review_moving_waiting_money_keeps_the_store_orders_question() {
        let e = env();
        // AUTHORIZED arrives before store-sync described order 7001: it waits on unmatched:tbank:p1.
        e.notify("p1", "AUTHORIZED", 150_000).await;
        assert_eq!(e.open().await, ["unmatched:tbank:p1#tbank:p1#payment"]);
        // store-sync describes 7001 (psInvoiceId p1), then settles the waiting money.
        e.started("7001", 150_000, Source::Tbank, "p1").await;
        let report =
            crate::app::resolve::settle(&e.ledger(), e.store.as_ref(), e.store.as_ref(), None, 10)
                .await
                .unwrap();
        assert_eq!(report.resolved, 1);
        let o = e.store.order("7001").unwrap();
        assert_eq!(o.totals().held, 150_000);
        assert_eq!(
            crate::domain::watch::watches(&o).keys().collect::<Vec<_>>(),
            ["7001#tbank:p1#payment"]
        );
        assert_eq!(
            e.open().await,
            ["7001#tbank:p1#payment"],
            "the held payment is still asked about"
        );
    }

    /// R4: a Sber callback without its amount is acknowledged and its look-up "owed" (acquiring_callback::owe_amount),
    /// but the owed row is the store payment's row: store-sync seeing the payment paid in Bitrix deletes it.
    #[tokio::test]
    async fn review_an_owed_sber_look_up_survives_the_store_marking_the_payment_paid() {
        let e = env();
        e.started("2003", 500_000, Source::Sber, "md-1").await;
        // owe_amount, exactly as acquiring-callback does it (the row exists: `attribute_not_exists` keeps it).
        let owed = Watch {
            order: OrderId::parse("2003").unwrap(),
            payment: PaymentRef::new(Source::Sber, "md-1").unwrap(),
            question: Question::Owed,
        };
        e.store
            .watch(&WatchEntry::new(owed, now_ms()))
            .await
            .unwrap();
        // Bitrix's own Sber handler marks the payment paid (return URL); store-sync registers that.
        let mut info = OrderInfo::new(Some("IM-md-1".into()), 500_000, Currency::RUB);
        info.details.payments = vec![StorePaymentInfo {
            id: "92003".into(),
            account_number: Some("2003/1".into()),
            sum: 500_000,
            pay_system_id: Some("5".into()),
            ps_invoice_id: Some("md-1".into()),
            paid: true,
            acquirer: Some(Source::Sber),
        }];
        e.ledger()
            .register_order(&OrderId::parse("2003").unwrap(), info)
            .await
            .unwrap();
        assert_eq!(
            e.store.order("2003").unwrap().totals().paid,
            0,
            "the ledger never saw the deposit"
        );
        assert_eq!(
            e.open().await,
            ["2003#sber:md-1#owed"],
            "the owed look-up survives"
        );
    }

    /// R5: a YooKassa refund that YooKassa cancelled is never answered: the request stays `pending` (its money
    /// claimed) and the question is asked until it is given up.
    #[tokio::test]
    async fn review_a_cancelled_yookassa_refund_fails_its_request() {
        let mut e = env();
        with_a_pending_yookassa_refund(&e).await;
        let refund: Refund = serde_json::from_value(serde_json::json!({
            "id": "rf-1", "payment_id": "2f9c1e77-000f-5001-9000-1a2b3c4d5e6f", "status": "canceled",
            "amount": {"value": "500.00", "currency": "RUB"}, "created_at": "2026-11-30T10:00:00.000Z"
        }))
        .unwrap();
        e.deps.yookassa = Some(Arc::new(FakeYooKassa {
            refunds: HashMap::from([("rf-1".to_owned(), refund)]),
        }));
        handle(&e.deps).await.unwrap();
        let o = e.store.order("7001").unwrap();
        assert_eq!(
            o.refund_requests["1c#ret-1"].status,
            crate::domain::RefundStatus::Failed,
            "YooKassa said canceled; the request must not claim the money ({})",
            o.refund_claimed()
        );
        assert!(e.open().await.is_empty(), "not asked daily until given up");
    }

    /// R6: the schedule's "every minute" is measured from the end of the call, so the next one-minute run (which
    /// starts one minute after this run started) does not find it due: first 15 minutes are asked every 2 minutes.
    #[test]
    fn review_a_one_minute_step_is_due_at_the_next_one_minute_run() {
        let b = Backoff {
            give_up_after_ms: 30 * DAY_MS,
        };
        let run_started = 1_000_000_i64;
        // status-sync counts the step from the run's start, less its slack: the call's time does not count, and
        // a next run that comes a couple of seconds early still finds the question due.
        let due = b.next(run_started, run_started).unwrap() - SLACK_MS;
        let next_run_started = run_started + 60_000 - 2_000;
        assert!(
            due <= next_run_started,
            "due {due} > next run {next_run_started}: skipped a minute"
        );
    }
}
