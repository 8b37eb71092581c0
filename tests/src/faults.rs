//! Fault injection under load, followed by the ledger and queue invariants.
//!
//! A workload of signed acquirer notifications (T-Bank; YooKassa with its API for the clock-skew run) is
//! delivered several times each, shuffled, over many concurrent calls of the real callback handler, whose real
//! SDK clients reach a moto of the run's own through two switchable proxies (one for DynamoDB, one for SQS).
//! Providers behave as they do: a 5xx, a timeout or a dead process means "retry later", and some give up (Sber
//! stops after three failures) and only come back much later. While the load runs, one fault is injected:
//!
//! - `kill`: the handler is dropped at a random point of a third of its calls, as when the process dies; many
//!   land between the commit and the announcement (counted);
//! - `moto-restart`: every connection to moto is cut and refused for 300 ms, every 3 seconds;
//! - `moto-freeze`: moto is stopped (SIGSTOP) for 7.5 s (longer than an SDK operation), then 3.5 s (longer
//!   than one attempt), with 3 s between;
//! - `sqs-down`: SQS refuses connections for 1.5 s out of every 2 s, so commits succeed and announcements fail;
//! - `duplicate-storm`: every notification 25 times at once;
//! - `clock-skew`: YooKassa stamps its payments up to 6 hours off our clock and its refunds before the
//!   payments they return, arriving in any order; a sweeper whose clock runs 5 minutes ahead races the writers;
//! - `lost-notifications`: the orders' payments were started at T-Bank and paid, and every notification is lost;
//!   status-sync asks T-Bank (`GetState`, a fake that checks the Token as T-Bank does) and records what they
//!   would have said;
//! - `late-notifications`: half the notifications come before status-sync runs and half after it (each a
//!   duplicate of what status-sync recorded, or a status it never saw).
//!
//! The outbox sweeper runs on its schedule throughout (scaled down, see [`scheduled_sweeper`]).
//!
//! Then, as in production: the sweeper runs, the providers that gave up deliver again, and the invariants are
//! checked: every distinct payment fact counted exactly once, each order's totals equal to its facts replayed,
//! exact expected totals, an empty outbox, and every fact announced exactly once on the queue, with the newest
//! announcement of each order equal to its stored state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use shared::adapters::sqs::SqsEventPublisher;
use shared::app::ledger::Ledger;
use shared::domain::money::format_minor;
use shared::domain::{FactKind, Order, OrderId, PaymentFact};
use shared::platform::config::YooKassaVerify;
use shared::ports::{LedgerStore, Watchlist};
use shared::testing::function_url_request;
use tokio::sync::Semaphore;
use wiremock::{Mock, Request as MockRequest, Respond, ResponseTemplate};

use crate::{
    percentile, spawn_env_on, Endpoints, OwnMoto, Rng, Switch, TestEnv, TBANK_PASSWORD,
    TBANK_TERMINAL,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Baseline,
    Kill,
    MotoRestart,
    MotoFreeze,
    SqsDown,
    DuplicateStorm,
    ClockSkew,
    LostNotifications,
    LateNotifications,
}

impl Fault {
    pub const ALL: [Fault; 9] = [
        Fault::Baseline,
        Fault::Kill,
        Fault::MotoRestart,
        Fault::MotoFreeze,
        Fault::SqsDown,
        Fault::DuplicateStorm,
        Fault::ClockSkew,
        Fault::LostNotifications,
        Fault::LateNotifications,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Baseline => "baseline",
            Fault::Kill => "kill",
            Fault::MotoRestart => "moto-restart",
            Fault::MotoFreeze => "moto-freeze",
            Fault::SqsDown => "sqs-down",
            Fault::DuplicateStorm => "duplicate-storm",
            Fault::ClockSkew => "clock-skew",
            Fault::LostNotifications => "lost-notifications",
            Fault::LateNotifications => "late-notifications",
        }
    }

    pub fn parse(s: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == s)
    }

    fn copies(self) -> usize {
        if self == Fault::DuplicateStorm {
            25
        } else {
            3
        }
    }

    /// Providers that may give up after a failure (and deliver again much later).
    fn gives_up(self) -> bool {
        matches!(self, Fault::Kill | Fault::SqsDown)
    }

    /// The orders' payments were started at T-Bank, so status-sync has questions about them and runs.
    fn polls(self) -> bool {
        matches!(self, Fault::LostNotifications | Fault::LateNotifications)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub fault: Fault,
    pub orders: usize,
    pub concurrency: usize,
    pub seed: u64,
}

#[derive(Debug, Default)]
pub struct Outcome {
    pub deliveries: usize,
    pub attempts: usize,
    pub failed_attempts: usize,
    pub kills: usize,
    pub killed_after_commit: usize,
    pub abandoned: usize,
    pub swept: usize,
    /// Facts status-sync recorded (the notification had not brought them).
    pub polled: usize,
    /// How long status-sync took to ask about every question of the run.
    pub status_sync: Duration,
    pub facts: usize,
    pub events: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub violations: Vec<String>,
}

impl Outcome {
    pub fn row(&self, fault: Fault) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} / {} | {:.0} | {:.0} | {:.0} | {} |",
            fault.name(),
            self.deliveries,
            self.attempts,
            self.failed_attempts,
            self.kills,
            self.killed_after_commit,
            self.abandoned,
            self.swept,
            self.polled,
            self.facts,
            self.events,
            self.attempts as f64 / self.wall.as_secs_f64().max(1e-9),
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            if self.violations.is_empty() {
                "hold".to_owned()
            } else {
                format!("{} VIOLATED", self.violations.len())
            }
        )
    }

    pub const HEADER: &'static str = "| fault | deliveries | attempts | failed | kills | killed after commit | abandoned | swept | polled | facts / events | attempts/s | p50 ms | p99 ms | invariants |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";
}

/// A T-Bank payment of the workload, as T-Bank's `GetState` reports it once paid.
#[derive(Debug, Clone)]
pub struct TbankPayment {
    pub order: String,
    pub payment: String,
    pub amount: i64,
}

/// The fake T-Bank `POST /v2/GetState` (EACQ protocol v1.8 §2.11): a request whose `Token` does not verify, or
/// a `PaymentId` T-Bank does not know, gets `Success: false` with an error code, as T-Bank answers; a known
/// payment is `CONFIRMED` with its current amount.
pub struct TbankStates(pub HashMap<String, TbankPayment>);

impl Respond for TbankStates {
    fn respond(&self, request: &MockRequest) -> ResponseTemplate {
        let refused = |code: &str, message: &str| {
            ResponseTemplate::new(200).set_body_json(json!({
                "Success": false, "ErrorCode": code, "Message": message, "TerminalKey": TBANK_TERMINAL
            }))
        };
        let Ok(fields) = shared::formats::tbank::canonical_fields(&request.body) else {
            return refused("9999", "Неверные параметры");
        };
        let given = fields.get("Token").cloned().unwrap_or_default();
        if given != shared::formats::tbank::token(&fields, TBANK_PASSWORD)
            || fields.get("TerminalKey").map(String::as_str) != Some(TBANK_TERMINAL)
        {
            return refused(
                "204",
                "Неверный токен. Проверьте пару TerminalKey/SecretKey.",
            );
        }
        let id = fields.get("PaymentId").cloned().unwrap_or_default();
        match self.0.get(&id) {
            Some(p) => ResponseTemplate::new(200).set_body_json(json!({
                "TerminalKey": TBANK_TERMINAL, "OrderId": p.order, "Success": true, "Status": "CONFIRMED",
                "PaymentId": id, "ErrorCode": "0", "Amount": p.amount
            })),
            None => refused("7", "Неверный статус транзакции"),
        }
    }
}

/// status-sync, run as its schedule would until no question is due; what it recorded and how long it took.
pub async fn run_status_sync(
    env: &TestEnv,
    tbank_api: &str,
    violations: &mut Vec<String>,
) -> (usize, Duration) {
    let deps = env.status_sync_deps(format!("{tbank_api}/v2"));
    let started = Instant::now();
    let mut recorded = 0;
    // Runs on its schedule until nothing is due. A question whose answer could not be recorded (moto too slow to
    // answer in time) stays due and the next run asks again, as in AWS: what must hold is the end state.
    for _ in 0..10 {
        match shared::app::status_sync::handle(&deps).await {
            Ok(run) => {
                println!(
                    "status-sync run: {}",
                    serde_json::to_string(&run).unwrap_or_default()
                );
                recorded += run.providers.values().map(|p| p.recorded).sum::<usize>();
                if run.due == 0 {
                    return (recorded, started.elapsed());
                }
            }
            Err(e) => println!("status-sync run failed (the next run asks again): {e}"),
        }
    }
    violations.push("status-sync: questions still due after 10 runs".into());
    (recorded, started.elapsed())
}

/// One notification as a provider sends it.
#[derive(Debug, Clone)]
struct Delivery {
    provider: &'static str,
    body: String,
    order: String,
    fact: String,
}

struct Expected {
    paid: i64,
    refunded: i64,
    facts: BTreeSet<String>,
}

fn rfc3339(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The fake YooKassa API: `GET /v3/payments/{id}` and `GET /v3/refunds/{id}` answer the stored object.
struct YooKassaObjects(HashMap<String, Value>);

impl Respond for YooKassaObjects {
    fn respond(&self, request: &MockRequest) -> ResponseTemplate {
        match self.0.get(request.url.path()) {
            Some(v) => ResponseTemplate::new(200).set_body_json(v),
            None => ResponseTemplate::new(404).set_body_json(json!({
                "type": "error", "code": "not_found", "description": "object not found"
            })),
        }
    }
}

fn tbank_delivery(order: &str, payment: u64, status: &str, amount: i64) -> Delivery {
    let body = shared::testing::tbank_sign(
        &json!({"TerminalKey": TBANK_TERMINAL, "OrderId": order, "Success": true, "Status": status,
                "PaymentId": payment.to_string(), "ErrorCode": "0", "Amount": amount}),
        TBANK_PASSWORD,
    )
    .to_string();
    let fact = shared::formats::tbank::verify(body.as_bytes(), TBANK_TERMINAL, TBANK_PASSWORD)
        .ok()
        .and_then(|n| {
            shared::formats::tbank::to_fact(
                &n,
                &shared::domain::reference::parse_rules_or_default(
                    shared::platform::config::DEFAULT_TBANK_REFERENCE,
                ),
                0,
            )
            .ok()
            .flatten()
        })
        .map(|f| f.id.to_string())
        .unwrap_or_default();
    Delivery {
        provider: "tbank",
        body,
        order: order.to_owned(),
        fact,
    }
}

/// What a run delivers and expects: the notifications (copies shuffled), each order's expected totals and facts,
/// the YooKassa objects its API serves, and the T-Bank payments its `GetState` knows.
type Workload = (
    Vec<Delivery>,
    BTreeMap<String, Expected>,
    HashMap<String, Value>,
    Vec<TbankPayment>,
);

/// The workload: per order a 30 % advance and the 70 % balance, each authorized and captured (T-Bank); in the
/// clock-skew run the balance is a YooKassa payment stamped hours off, and a tenth of it is refunded with a
/// refund stamped before the payment.
fn workload(s: &Scenario, run: &str, rng: &mut Rng) -> Workload {
    let mut tbank = Vec::new();
    let mut deliveries = Vec::new();
    let mut expected = BTreeMap::new();
    let mut objects = HashMap::new();
    let now = shared::platform::clock::now_ms();
    for i in 0..s.orders {
        let order = format!("{run}-{i}");
        // T-Bank payment ids: numeric, unique within the run (each run has a moto of its own).
        let n = 1_000_000 + u64::try_from(i).unwrap_or(0);
        let total = 10_000 + i64::try_from(i).unwrap_or(0) * 137;
        let advance = total * 3 / 10;
        let balance = total - advance;
        let mut e = Expected {
            paid: total,
            refunded: 0,
            facts: BTreeSet::new(),
        };
        let mut mine = Vec::new();
        for status in ["AUTHORIZED", "CONFIRMED"] {
            mine.push(tbank_delivery(&order, n * 2, status, advance));
        }
        tbank.push(TbankPayment {
            order: order.clone(),
            payment: (n * 2).to_string(),
            amount: advance,
        });
        if s.fault == Fault::ClockSkew {
            let skew_h = i64::try_from(rng.below(13)).unwrap_or(0) - 6;
            let captured = now + skew_h * 3_600_000;
            let (pay, refund_id) = (format!("{run}-yk-{i}"), format!("{run}-ykr-{i}"));
            let refund = balance / 10;
            let payment = json!({
                "id": pay, "status": "succeeded", "paid": true,
                "amount": {"value": format_minor(balance), "currency": "RUB"},
                "created_at": rfc3339(captured - 5_000), "captured_at": rfc3339(captured),
                "metadata": {"order_id": order}, "test": false
            });
            let refund_obj = json!({
                "id": refund_id, "payment_id": pay, "status": "succeeded",
                "amount": {"value": format_minor(refund), "currency": "RUB"},
                "created_at": rfc3339(captured - 7_200_000)
            });
            objects.insert(format!("/v3/payments/{pay}"), payment.clone());
            objects.insert(format!("/v3/refunds/{refund_id}"), refund_obj.clone());
            mine.push(Delivery {
                provider: "yookassa",
                body:
                    json!({"type": "notification", "event": "payment.succeeded", "object": payment})
                        .to_string(),
                order: order.clone(),
                fact: format!("yookassa#payment#{pay}#succeeded"),
            });
            mine.push(Delivery {
                provider: "yookassa",
                body: json!({"type": "notification", "event": "refund.succeeded", "object": refund_obj})
                    .to_string(),
                order: order.clone(),
                fact: format!("yookassa#refund#{refund_id}"),
            });
            e.refunded = refund;
        } else {
            for status in ["AUTHORIZED", "CONFIRMED"] {
                mine.push(tbank_delivery(&order, n * 2 + 1, status, balance));
            }
            tbank.push(TbankPayment {
                order: order.clone(),
                payment: (n * 2 + 1).to_string(),
                amount: balance,
            });
        }
        if s.fault == Fault::LostNotifications {
            // Every notification lost: what status-sync reads is each payment's final status.
            mine.retain(|d| d.fact.contains("#CONFIRMED"));
            for d in &mine {
                e.facts.insert(d.fact.clone());
            }
            expected.insert(order, e);
            continue;
        }
        for d in &mine {
            e.facts.insert(d.fact.clone());
        }
        expected.insert(order, e);
        deliveries.extend(mine);
    }
    let copies = s.fault.copies();
    let mut all: Vec<Delivery> = Vec::with_capacity(deliveries.len() * copies);
    if s.fault == Fault::DuplicateStorm {
        // Copies side by side: with enough concurrency they run at the same time.
        for d in &deliveries {
            all.extend(std::iter::repeat_n(d.clone(), copies));
        }
    } else {
        for _ in 0..copies {
            all.extend(deliveries.iter().cloned());
        }
        rng.shuffle(&mut all);
    }
    (all, expected, objects, tbank)
}

fn request(d: &Delivery) -> lambda_http::Request {
    let ip = if d.provider == "yookassa" {
        "185.71.76.1"
    } else {
        "91.194.226.10"
    };
    function_url_request(
        "POST",
        &format!("/lambda-url/acquiring-callback/{}", d.provider),
        "",
        Some("application/json"),
        d.body.as_bytes(),
        ip,
    )
}

#[derive(Default)]
struct Counters {
    attempts: AtomicUsize,
    failed: AtomicUsize,
    kills: AtomicUsize,
    killed_after_commit: AtomicUsize,
}

enum Delivered {
    Ok(Duration),
    Abandoned,
    Never,
}

/// A provider delivering one notification: retries a 5xx, a timeout or a dead handler with backoff; may give up.
async fn deliver(
    env: Arc<TestEnv>,
    d: Delivery,
    fault: Option<Fault>,
    mut rng: Rng,
    counters: Arc<Counters>,
) -> Delivered {
    for attempt in 0..400u64 {
        counters.attempts.fetch_add(1, Ordering::Relaxed);
        let kill_after = (fault == Some(Fault::Kill) && rng.below(3) == 0)
            .then(|| Duration::from_millis(rng.below(120)));
        let started = Instant::now();
        let call = env.call(request(&d));
        let reply = match kill_after {
            Some(after) => tokio::time::timeout(after, call).await.ok(),
            None => tokio::time::timeout(Duration::from_secs(30), call)
                .await
                .ok(),
        };
        match reply {
            Some(r) if r.status == 200 => return Delivered::Ok(started.elapsed()),
            Some(r) if r.status < 500 => {
                tracing::error!(status = r.status, body = %r.body, fact = %d.fact, "refused for good");
                return Delivered::Never;
            }
            _ => {}
        }
        counters.failed.fetch_add(1, Ordering::Relaxed);
        if reply.is_none() && kill_after.is_some() {
            counters.kills.fetch_add(1, Ordering::Relaxed);
            if let Ok(id) = OrderId::parse(d.order.clone()) {
                if let Ok(Some(_)) = env.store.pending_event(&id, &d.fact).await {
                    counters.killed_after_commit.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if fault.is_some_and(Fault::gives_up) && rng.below(4) == 0 {
            return Delivered::Abandoned;
        }
        tokio::time::sleep(Duration::from_millis(20 + (attempt * 15).min(480))).await;
    }
    Delivered::Never
}

/// The scheduled outbox-sweeper, scaled down: every 5 s for rows older than 5 s (in AWS: every minute, rows older
/// than a minute). Either way a change whose announcement was lost is announced again well inside SQS's 5-minute
/// deduplication window, so a send that succeeded but whose answer was lost does not reach consumers twice.
async fn scheduled_sweeper(env: Arc<TestEnv>, stop: Arc<AtomicBool>) -> usize {
    let mut swept = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let ledger = Ledger::new(env.deps.store.as_ref(), env.deps.events.as_ref());
        if let Ok(r) = ledger.sweep(5_000, 1_000).await {
            swept += r.announced;
        }
    }
    swept
}

/// The fault's own disturbance, until `stop`.
async fn chaos(
    fault: Fault,
    moto: Arc<OwnMoto>,
    ddb: Arc<Switch>,
    sqs: Arc<Switch>,
    env: Arc<TestEnv>,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut swept = 0;
    while !stop.load(Ordering::Relaxed) {
        match fault {
            Fault::MotoRestart => {
                tokio::time::sleep(Duration::from_millis(2700)).await;
                ddb.set_up(false);
                sqs.set_up(false);
                tokio::time::sleep(Duration::from_millis(300)).await;
                ddb.set_up(true);
                sqs.set_up(true);
            }
            Fault::MotoFreeze => {
                // Longer than a whole SDK operation (7 s): the handler answers 5xx. Then longer than one attempt
                // (3 s): the SDK retries while moto still holds the first request, which it then applies.
                for frozen_ms in [7_500, 3_500] {
                    tokio::time::sleep(Duration::from_millis(3000)).await;
                    moto.set_frozen(true);
                    tokio::time::sleep(Duration::from_millis(frozen_ms)).await;
                    moto.set_frozen(false);
                }
            }
            Fault::SqsDown => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                sqs.set_up(false);
                tokio::time::sleep(Duration::from_millis(1500)).await;
                sqs.set_up(true);
            }
            Fault::ClockSkew => {
                // The sweeper's clock 5 minutes ahead: every fresh outbox row looks overdue to it.
                let ledger = Ledger::new(env.deps.store.as_ref(), env.deps.events.as_ref());
                if let Ok(r) = ledger.sweep(-300_000, 100).await {
                    swept += r.announced;
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            Fault::Baseline
            | Fault::Kill
            | Fault::DuplicateStorm
            | Fault::LostNotifications
            | Fault::LateNotifications => return 0,
        }
    }
    swept
}

async fn deliver_all(
    env: &Arc<TestEnv>,
    deliveries: Vec<Delivery>,
    fault: Option<Fault>,
    concurrency: usize,
    rng: &mut Rng,
    counters: &Arc<Counters>,
) -> (Vec<Duration>, Vec<Delivery>, Vec<Delivery>) {
    let gate = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(deliveries.len());
    for d in deliveries {
        let (env, gate, counters) = (env.clone(), gate.clone(), counters.clone());
        let r = Rng(rng.next_u64() | 1);
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            let out = deliver(env, d.clone(), fault, r, counters).await;
            (d, out)
        }));
    }
    let (mut ok, mut abandoned, mut never) = (Vec::new(), Vec::new(), Vec::new());
    for t in tasks {
        match t.await {
            Ok((_, Delivered::Ok(took))) => ok.push(took),
            Ok((d, Delivered::Abandoned)) => abandoned.push(d),
            Ok((d, Delivered::Never)) => never.push(d),
            Err(e) => tracing::error!(error = %e, "delivery task failed"),
        }
    }
    (ok, abandoned, never)
}

/// Run one scenario on a moto of its own and check the invariants.
pub async fn run(s: Scenario) -> Outcome {
    let moto = Arc::new(OwnMoto::start(None).await);
    let ddb = Arc::new(Switch::start(&moto.url()).await);
    let sqs = Arc::new(Switch::start(&moto.url()).await);
    let env = Arc::new(
        spawn_env_on(
            &moto.url(),
            Endpoints {
                dynamodb: Some(ddb.url.clone()),
                sqs: Some(sqs.url.clone()),
            },
            YooKassaVerify::Api,
        )
        .await,
    );
    let run_id = format!("{}{}", s.fault.name().replace('-', ""), s.seed % 1000);
    let mut rng = Rng(s.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let (deliveries, expected, objects, tbank) = workload(&s, &run_id, &mut rng);
    // The store describes its orders before their money comes (store-sync's pull): a notification's reference
    // resolves only against an order the store has. Where the payments were started at T-Bank, the store says so
    // (pay system, psInvoiceId), and status-sync has its questions.
    for (order, e) in &expected {
        if s.fault.polls() {
            let started: Vec<(String, i64)> = tbank
                .iter()
                .filter(|p| &p.order == order)
                .map(|p| (p.payment.clone(), p.amount))
                .collect();
            env.register_started_at_tbank(order, e.paid, &started).await;
        } else {
            env.register_order(order, e.paid).await;
        }
    }
    let tbank_api = wiremock::MockServer::start().await;
    Mock::given(wiremock::matchers::path("/v2/GetState"))
        .respond_with(TbankStates(
            tbank.into_iter().map(|p| (p.payment.clone(), p)).collect(),
        ))
        .mount(&tbank_api)
        .await;
    // Late notifications: half before status-sync runs, the rest after it.
    let (deliveries, late) = if s.fault == Fault::LateNotifications {
        let mut early = deliveries;
        let late = early.split_off(early.len() / 2);
        (early, late)
    } else {
        (deliveries, Vec::new())
    };
    // Those announcements are the store's, not the workload's: the invariants count one per payment fact.
    env.drain_queue().await;
    Mock::given(wiremock::matchers::method("GET"))
        .respond_with(YooKassaObjects(objects))
        .mount(&env.yookassa_api)
        .await;

    let mut out = Outcome {
        deliveries: deliveries.len(),
        ..Outcome::default()
    };
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let disturbance = tokio::spawn(chaos(
        s.fault,
        moto.clone(),
        ddb.clone(),
        sqs.clone(),
        env.clone(),
        stop.clone(),
    ));
    let sweeper = tokio::spawn(scheduled_sweeper(env.clone(), stop.clone()));
    let started = Instant::now();
    let (mut latencies, abandoned, never) = deliver_all(
        &env,
        deliveries,
        Some(s.fault),
        s.concurrency,
        &mut rng,
        &counters,
    )
    .await;
    out.wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    out.swept += disturbance.await.unwrap_or(0) + sweeper.await.unwrap_or(0);
    // Whatever the disturbance was doing when it stopped, everything is back up.
    moto.set_frozen(false);
    ddb.set_up(true);
    sqs.set_up(true);
    out.attempts = counters.attempts.load(Ordering::Relaxed);
    out.failed_attempts = counters.failed.load(Ordering::Relaxed);
    out.kills = counters.kills.load(Ordering::Relaxed);
    out.killed_after_commit = counters.killed_after_commit.load(Ordering::Relaxed);
    out.abandoned = abandoned.len();
    for d in &never {
        out.violations
            .push(format!("{}: never accepted ({})", d.fact, d.provider));
    }

    // What is committed so far must be consistent, whatever was abandoned.
    let _ = check_consistent(&env, &expected, &mut out.violations).await;

    if s.fault.polls() {
        let (polled, took) = run_status_sync(&env, &tbank_api.uri(), &mut out.violations).await;
        out.polled = polled;
        out.status_sync = took;
        let (mut late_latencies, abandoned, never) =
            deliver_all(&env, late, None, s.concurrency, &mut rng, &counters).await;
        latencies.append(&mut late_latencies);
        for d in abandoned.iter().chain(&never) {
            out.violations
                .push(format!("{}: a late notification was not accepted", d.fact));
        }
        match env.store.due(i64::MAX, 10_000).await {
            Ok(open) if open.is_empty() => {}
            Ok(open) => out.violations.push(format!(
                "{} questions left open, e.g. {}",
                open.len(),
                open[0].key()
            )),
            Err(e) => out.violations.push(format!("questions unreadable: {e}")),
        }
    }

    // The scheduled sweeper, then the providers that gave up deliver again (their next retry, days later).
    let sweep = |env: Arc<TestEnv>| async move {
        let events = SqsEventPublisher::new(env.sqs.clone(), &env.queue_url);
        Ledger::new(&env.store, &events).sweep(0, 10_000).await
    };
    match sweep(env.clone()).await {
        Ok(r) if r.failed == 0 => out.swept += r.announced,
        Ok(r) => out
            .violations
            .push(format!("sweeper could not announce {} rows", r.failed)),
        Err(e) => out.violations.push(format!("sweeper failed: {e}")),
    }
    let (_, still, never) =
        deliver_all(&env, abandoned, None, s.concurrency, &mut rng, &counters).await;
    for d in still.iter().chain(&never) {
        out.violations
            .push(format!("{}: not accepted on redelivery", d.fact));
    }
    if let Ok(r) = sweep(env.clone()).await {
        out.swept += r.announced;
    }
    latencies.sort_unstable();
    out.p50 = percentile(&latencies, 0.5);
    out.p99 = percentile(&latencies, 0.99);

    check_final(&env, &expected, &mut out).await;
    out
}

/// The orders read by [`check_consistent`], with their stored facts.
type Read = BTreeMap<String, (Order, Vec<PaymentFact>)>;

/// Facts are only those expected, each once; the order's totals are its facts replayed. Returns what it read.
async fn check_consistent(
    env: &TestEnv,
    expected: &BTreeMap<String, Expected>,
    violations: &mut Vec<String>,
) -> Read {
    let mut read = Read::new();
    for (order, e) in expected {
        let Ok(id) = OrderId::parse(order.clone()) else {
            violations.push(format!("{order}: bad id"));
            continue;
        };
        let facts = match env.store.facts(&id).await {
            Ok(f) => f,
            Err(err) => {
                violations.push(format!("{order}: facts unreadable: {err}"));
                continue;
            }
        };
        let ids: Vec<String> = facts.iter().map(|f| f.id.to_string()).collect();
        let distinct: BTreeSet<String> = ids.iter().cloned().collect();
        if distinct.len() != ids.len() {
            violations.push(format!("{order}: a fact stored twice: {ids:?}"));
        }
        if let Some(extra) = distinct.difference(&e.facts).next() {
            violations.push(format!("{order}: unexpected fact {extra}"));
        }
        let stored = match env.store.load_order(&id).await {
            Ok(o) => o,
            Err(err) => {
                violations.push(format!("{order}: unreadable: {err}"));
                continue;
            }
        };
        let Some(stored) = stored else {
            if !facts.is_empty() {
                violations.push(format!("{order}: facts without an order"));
            }
            continue;
        };
        if stored.applied != distinct {
            violations.push(format!(
                "{order}: applied {:?} but facts {:?}",
                stored.applied, distinct
            ));
        }
        // What the store said about the order is not a fact: it comes along, the money is replayed.
        let mut replay = Order::new(id.clone());
        replay.info.clone_from(&stored.info);
        for f in &facts {
            if let Err(err) = replay.apply(f) {
                violations.push(format!("{order}: replaying {} fails: {err}", f.id));
            }
        }
        if replay.totals() != stored.totals() || replay.state() != stored.state() {
            violations.push(format!(
                "{order}: stored {:?}/{:?} but its facts give {:?}/{:?}",
                stored.totals(),
                stored.state(),
                replay.totals(),
                replay.state()
            ));
        }
        read.insert(order.clone(), (stored, facts));
    }
    read
}

/// After the sweep and the late redeliveries: exact totals, empty outbox, one announcement per fact.
async fn check_final(env: &TestEnv, expected: &BTreeMap<String, Expected>, out: &mut Outcome) {
    let orders = check_consistent(env, expected, &mut out.violations).await;
    for (order, e) in expected {
        let Some((o, facts)) = orders.get(order) else {
            out.violations.push(format!("{order}: missing"));
            continue;
        };
        let t = o.totals();
        if (t.paid, t.refunded) != (e.paid, e.refunded) || o.applied != e.facts {
            out.violations.push(format!(
                "{order}: paid {} refunded {} with {} facts; expected {} / {} with {}",
                t.paid,
                t.refunded,
                o.applied.len(),
                e.paid,
                e.refunded,
                e.facts.len()
            ));
        }
        if e.refunded > 0 {
            let min_at = facts
                .iter()
                .filter(|f| matches!(f.kind, FactKind::Payment { .. }))
                .map(|f| f.at_ms)
                .min();
            if o.paid_at_ms() != min_at {
                out.violations.push(format!(
                    "{order}: paid at {:?}, earliest payment fact at {min_at:?}",
                    o.paid_at_ms()
                ));
            }
        }
        out.facts += o.applied.len();
    }
    match env.store.list_pending(i64::MAX, 100_000).await {
        Ok(rows) if rows.is_empty() => {}
        Ok(rows) => out
            .violations
            .push(format!("{} outbox rows never announced", rows.len())),
        Err(err) => out.violations.push(format!("outbox unreadable: {err}")),
    }
    let events = env.drain_queue().await;
    // One announcement per fact: the store's order registrations (`info#…`) are not the workload's, and one that
    // reached the queue after the drain before the run (a slow moto under load) must not count as a fact's.
    out.events = events
        .iter()
        .filter(|e| !e.event_id.starts_with("info#"))
        .count();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut newest: BTreeMap<String, (u64, i64, i64)> = BTreeMap::new();
    for e in &events {
        if !seen.insert(e.event_id.clone()) {
            out.violations
                .push(format!("{} announced twice", e.event_id));
        }
        let n = newest.entry(e.order_id.clone()).or_insert((0, 0, 0));
        if e.version > n.0 {
            *n = (e.version, e.paid, e.refunded);
        }
    }
    let all: BTreeSet<String> = expected.values().flat_map(|e| e.facts.clone()).collect();
    if let Some(missing) = all.difference(&seen).next() {
        out.violations.push(format!(
            "{} facts never announced, e.g. {missing}",
            all.difference(&seen).count()
        ));
    }
    for (order, (o, _)) in &orders {
        let t = o.totals();
        if newest.get(order) != Some(&(o.version, t.paid, t.refunded)) {
            out.violations.push(format!(
                "{order}: newest announcement {:?}, stored v{} paid {} refunded {}",
                newest.get(order),
                o.version,
                t.paid,
                t.refunded
            ));
        }
    }
}

/// A shared, printable summary for the example and the tests.
pub fn report(fault: Fault, out: &Outcome) -> String {
    let mut s = out.row(fault);
    for v in out.violations.iter().take(20) {
        s.push_str(&format!("\n    {v}"));
    }
    s
}
