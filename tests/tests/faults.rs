//! Fault injection under a small load, each fault followed by the ledger and queue invariants (see
//! `paysync_e2e::faults`). `make faults` runs the same scenarios at scale.

use paysync_e2e::faults::{report, run, Fault, Outcome, Scenario};

async fn holds(fault: Fault) {
    let out = run(Scenario {
        fault,
        orders: 12,
        concurrency: 16,
        seed: 7,
    })
    .await;
    println!("{}\n{}", Outcome::HEADER, report(fault, &out));
    assert!(out.violations.is_empty(), "{}", report(fault, &out));
    assert_eq!(out.facts, out.events, "one announcement per fact");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_without_faults() {
    holds(Fault::Baseline).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_the_process_dies_anywhere_even_between_commit_and_announce() {
    let out = run(Scenario {
        fault: Fault::Kill,
        orders: 12,
        concurrency: 16,
        seed: 11,
    })
    .await;
    println!("{}\n{}", Outcome::HEADER, report(Fault::Kill, &out));
    assert!(out.violations.is_empty(), "{}", report(Fault::Kill, &out));
    assert!(out.kills > 0, "the fault was injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_moto_restarts_mid_run() {
    holds(Fault::MotoRestart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_moto_freezes() {
    holds(Fault::MotoFreeze).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_sqs_is_down() {
    let out = run(Scenario {
        fault: Fault::SqsDown,
        orders: 12,
        concurrency: 16,
        seed: 13,
    })
    .await;
    println!("{}\n{}", Outcome::HEADER, report(Fault::SqsDown, &out));
    assert!(
        out.violations.is_empty(),
        "{}",
        report(Fault::SqsDown, &out)
    );
    assert!(
        out.failed_attempts > 0,
        "SQS was down while notifications came in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_under_a_duplicate_storm() {
    holds(Fault::DuplicateStorm).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_with_skewed_clocks_and_reordered_sources() {
    holds(Fault::ClockSkew).await;
}
