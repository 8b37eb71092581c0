//! Payment → visible in 1C, end to end on the local stack: a signed T-Bank notification goes through
//! acquiring-callback into the ledger on moto, then 1C's `mode=query` through exchange-1c must show the order paid.
//! Prints p50/p90/p99/max over N payments. Run with `make latency` (starts moto).

#![allow(clippy::expect_used)]

use std::time::Instant;

use paysync_e2e::*;
use shared::formats::commerceml::read;
use shared::formats::commerceml::text::to_windows_1251;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let env = spawn_env().await;
    let one_c = OneC::connect(&env).await;
    one_c.mode("init", "&version=2.10", b"").await;
    let mut took = Vec::with_capacity(n);
    for i in 0..n {
        let order = format!("L{i}");
        env.register_order(&order, 100_000).await;
        // 1C has seen everything up to here.
        let _ = one_c.mode("query", "", b"").await;
        one_c.mode("success", "", b"").await;
        let note = tbank_note(&order, &format!("{}", 50_000 + i), "CONFIRMED", 100_000);
        let started = Instant::now();
        assert_eq!(env.post_tbank(&note).await.status, 200);
        let query = read(&to_windows_1251(&one_c.mode("query", "", b"").await)).expect("query");
        let paid = query
            .documents
            .iter()
            .any(|d| d.number.as_deref() == Some(order.as_str()) && d.paid_per_site());
        took.push(started.elapsed());
        assert!(paid, "order {order} not paid in 1C's query");
    }
    took.sort_unstable();
    let at = |q: f64| paysync_e2e::percentile(&took, q).as_secs_f64() * 1000.0;
    println!(
        "payment -> visible in 1C query, {n} payments: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}
