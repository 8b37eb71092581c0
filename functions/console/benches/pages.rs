//! The console's pages over a ledger of 10 000 orders: the overview (the lists of what needs a person, 30 days of
//! figures per source, the chart, the HTML) and the "Needs attention" page (nine lists, the HTML), each from the
//! use case's reads to the rendered page. The ledger is the in-memory fake of the ports, so this measures paysync's
//! own work per page; DynamoDB's requests (a fixed number per page, `tests/tests/e2e/console.rs`) come on top.
//!
//! `cargo bench -p console --bench pages`; after criterion's report, p50/p99 over 200 renders of each are printed.

// A benchmark: a failed setup step should stop it loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use console::fmt::Lang;
use console::pages::{self, Ctx};
use criterion::{criterion_group, Criterion};
use shared::adapters::memory::{MemoryLedgerStore, MemoryPublisher};
use shared::app::console::{daybook, needs_attention, ConsoleDeps, LIST_LIMIT};
use shared::app::ledger::Ledger;
use shared::domain::settlement::business_day;
use shared::domain::{
    Currency, FactId, FactKind, OrderId, OrderInfo, Payer, PaymentFact, PaymentMethod, PaymentRef,
    Role, Source,
};

const ORDERS: usize = 10_000;
const DAY_MS: i64 = 86_400_000;

/// 10 000 orders over 30 days: most paid by card (T-Bank, Sber, YooKassa in turn), every tenth by bank transfer,
/// every twentieth overpaid; 1 000 bank receipts that matched nothing.
fn ledger(rt: &tokio::runtime::Runtime) -> (Arc<MemoryLedgerStore>, ConsoleDeps) {
    let store = Arc::new(MemoryLedgerStore::default());
    let events = Arc::new(MemoryPublisher::default());
    let now = shared::platform::clock::now_ms();
    rt.block_on(async {
        let ledger = Ledger::new(store.as_ref(), events.as_ref());
        for n in 0..ORDERS {
            let id = OrderId::parse(format!("{}", 100_000 + n)).expect("id");
            let total = 1_000 + i64::try_from(n % 97).unwrap_or(0) * 1_250;
            ledger
                .register_order(
                    &id,
                    OrderInfo::new(Some(format!("IM-{n}")), total, Currency::RUB),
                )
                .await
                .expect("register");
            let at = now - i64::try_from(n % 30).unwrap_or(0) * DAY_MS;
            let source = if n % 10 == 9 {
                Source::Bank
            } else {
                [Source::Tbank, Source::Sber, Source::Yookassa][n % 3]
            };
            let method = if source == Source::Bank {
                PaymentMethod::BankTransfer
            } else {
                PaymentMethod::Card
            };
            let paid = if n % 20 == 0 { total + 500 } else { total };
            let fact = PaymentFact::new(
                FactId::new(source, &format!("p{n}")).expect("fact id"),
                id,
                PaymentRef::new(source, &format!("p{n}")).expect("ref"),
                method,
                Currency::RUB,
                FactKind::Payment { amount: paid },
                at,
            )
            .expect("fact");
            ledger.record(&fact).await.expect("record");
        }
        for n in 0..ORDERS / 10 {
            let payment = PaymentRef::new(Source::Bank, &format!("unmatched-{n}")).expect("ref");
            let fact = PaymentFact::new(
                FactId::new(Source::Bank, &format!("unmatched-{n}")).expect("fact id"),
                OrderId::unmatched(&payment),
                payment,
                PaymentMethod::BankTransfer,
                Currency::RUB,
                FactKind::Payment {
                    amount: 10_000 + i64::try_from(n).unwrap_or(0),
                },
                now - i64::try_from(n % 40).unwrap_or(0) * DAY_MS,
            )
            .expect("fact")
            .paid_by(Payer {
                inn: Some("7707083893".into()),
                name: Some(format!("ООО \"Покупатель {n}\"")),
                purpose: "Оплата по договору".into(),
                ..Payer::default()
            });
            ledger.record(&fact).await.expect("record");
        }
    });
    let deps = ConsoleDeps {
        store: store.clone(),
        views: store.clone(),
        directory: store.clone(),
        markers: store.clone(),
        takings: store.clone(),
        events,
        attention: store.clone(),
        histories: store.clone(),
        sign_ins: store.clone(),
    };
    (store, deps)
}

fn ctx() -> Ctx {
    Ctx {
        base: "/lambda-url/console".into(),
        lang: Lang::Ru,
        user: Some(("anna".into(), Role::Accountant)),
        csrf: "0123456789abcdef0123456789abcdef".into(),
        here: "/".into(),
    }
}

async fn overview(deps: &ConsoleDeps) -> usize {
    let now = shared::platform::clock::now_ms();
    let lists = needs_attention(deps, now, LIST_LIMIT).await.expect("lists");
    let today = business_day(now);
    let figures = daybook(deps, &today, 30).await.expect("daybook");
    let svg = console::chart::svg(&console::chart::per_day(&figures), Lang::Ru);
    let yesterday = business_day(now - DAY_MS);
    pages::overview(&ctx(), &lists, &figures, &today, &yesterday, svg.as_deref())
        .into_string()
        .len()
}

async fn attention(deps: &ConsoleDeps) -> usize {
    let now = shared::platform::clock::now_ms();
    let lists = needs_attention(deps, now, LIST_LIMIT).await.expect("lists");
    pages::attention(&ctx(), &lists, now).into_string().len()
}

fn percentiles(name: &str, rt: &tokio::runtime::Runtime, mut page: impl FnMut() -> usize) {
    let mut took: Vec<Duration> = (0..200)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(page());
            start.elapsed()
        })
        .collect();
    took.sort();
    let _ = rt;
    eprintln!(
        "{name}: p50 {:.2?}, p99 {:.2?} over {} renders",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
        took.len()
    );
}

fn pages_over_10k_orders(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (_store, deps) = ledger(&rt);
    let mut group = c.benchmark_group("console 10k orders");
    group.sample_size(30);
    group.bench_function("overview", |b| b.iter(|| rt.block_on(overview(&deps))));
    group.bench_function("needs attention", |b| {
        b.iter(|| rt.block_on(attention(&deps)))
    });
    group.finish();
    percentiles("overview", &rt, || rt.block_on(overview(&deps)));
    percentiles("needs attention", &rt, || rt.block_on(attention(&deps)));
}

criterion_group!(benches, pages_over_10k_orders);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
