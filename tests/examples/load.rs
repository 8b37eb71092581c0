//! Load against `cargo lambda watch` + moto: thousands of signed T-Bank notifications, every one sent three times,
//! shuffled, over many concurrent connections; then the invariants are checked on the ledger and the queue:
//! every distinct payment counted exactly once, each order's paid total equal to the sum of its facts, and every
//! change announced exactly once per fact. Run with `make load` (starts moto and `cargo lambda watch`).
//!
//! Args: ORDERS CONCURRENCY. Env: LOAD_URL (acquiring-callback base), LEDGER_TABLE, EVENTS_QUEUE_URL,
//! TBANK_TERMINAL_KEY, TBANK_PASSWORD, AWS_ENDPOINT_URL.

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shared::adapters::dynamo::DynamoLedgerStore;
use shared::domain::{OrderEvent, OrderId};
use shared::ports::LedgerStore;
use tokio::sync::Semaphore;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let orders: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let url = format!("{}/tbank", env("LOAD_URL").trim_end_matches('/'));
    let (terminal, password) = (env("TBANK_TERMINAL_KEY"), env("TBANK_PASSWORD"));

    // Per order: an authorization and a capture of the same payment (2 facts), each delivered 3 times.
    let mut notes = Vec::new();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..orders {
        let order = format!("load-{i}");
        let amount = 10_000 + i64::try_from(i).unwrap_or(0) * 7;
        expected.insert(order.clone(), amount);
        for status in ["AUTHORIZED", "CONFIRMED"] {
            let note = shared::testing::tbank_sign(
                &json!({"TerminalKey": terminal, "OrderId": order, "Success": true, "Status": status,
                        "PaymentId": format!("{}", 900_000 + i), "ErrorCode": "0", "Amount": amount}),
                &password,
            );
            for _ in 0..3 {
                notes.push(note.to_string());
            }
        }
    }
    // The store describes its orders first (as store-sync would): a notification names an order only if the store
    // has it. Those announcements are the store's, not the load's, so they stay off the queue counted below.
    let sdk = shared::platform::aws::sdk_config().await;
    let store = DynamoLedgerStore::new(aws_sdk_dynamodb::Client::new(&sdk), env("LEDGER_TABLE"));
    let quiet = shared::adapters::memory::MemoryPublisher::default();
    for (order, amount) in &expected {
        shared::app::ledger::Ledger::new(&store, &quiet)
            .register_order(
                &OrderId::parse(order.clone()).expect("id"),
                shared::domain::OrderInfo::new(
                    Some(order.clone()),
                    *amount,
                    shared::domain::Currency::RUB,
                ),
            )
            .await
            .expect("register order");
    }
    // Deterministic shuffle: duplicates and reorderings interleave.
    paysync_e2e::Rng(0x9e37_79b9_7f4a_7c15).shuffle(&mut notes);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let gate = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(notes.len());
    for body in notes {
        let (client, url, gate) = (client.clone(), url.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await.expect("semaphore");
            let t = Instant::now();
            // A 5xx is what a provider would retry: retry it the same way.
            for _ in 0..20 {
                match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => return (t.elapsed(), true),
                    Ok(r) if r.status().is_client_error() => return (t.elapsed(), false),
                    _ => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            (t.elapsed(), false)
        }));
    }
    let mut latencies = Vec::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (d, ok) = t.await.expect("task");
        latencies.push(d);
        failed += usize::from(!ok);
    }
    let wall = started.elapsed();
    latencies.sort_unstable();
    let q = |p: f64| paysync_e2e::percentile(&latencies, p).as_secs_f64() * 1000.0;
    println!(
        "{} notifications ({} orders x 2 facts x 3 deliveries), concurrency {concurrency}: {:.0} req/s, p50 {:.1} ms, p99 {:.1} ms, failed {failed}",
        latencies.len(),
        orders,
        latencies.len() as f64 / wall.as_secs_f64(),
        q(0.5),
        q(0.99)
    );

    // Invariants on the ledger.
    let mut wrong = 0;
    for (order, amount) in &expected {
        let o = store
            .load_order(&OrderId::parse(order.clone()).expect("id"))
            .await
            .expect("read")
            .expect("order recorded");
        let facts = o.applied.len();
        if o.totals().paid != *amount || facts != 2 {
            wrong += 1;
            eprintln!(
                "{order}: paid {} of {amount}, {facts} facts",
                o.totals().paid
            );
        }
    }
    // Every change announced exactly once per fact.
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = env("EVENTS_QUEUE_URL");
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut duplicates = 0;
    loop {
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default();
        if got.is_empty() {
            break;
        }
        for m in got {
            let e: OrderEvent = serde_json::from_str(m.body().unwrap_or_default()).expect("event");
            if !seen.insert(e.event_id) {
                duplicates += 1;
            }
            sqs.delete_message()
                .queue_url(&queue)
                .set_receipt_handle(m.receipt_handle)
                .send()
                .await
                .expect("delete");
        }
    }
    let facts = expected.len() * 2;
    println!(
        "invariants: {} orders wrong, {} events for {facts} facts, {duplicates} duplicate announcements",
        wrong,
        seen.len()
    );
    assert_eq!(
        (wrong, failed),
        (0, 0),
        "every payment counted exactly once"
    );
    assert_eq!(
        (seen.len(), duplicates),
        (facts, 0),
        "every change announced exactly once"
    );
}
