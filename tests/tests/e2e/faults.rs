//! Fault injection under a small load, each fault followed by the ledger and queue invariants (see
//! `paysync_e2e::faults`). `make faults` runs the same scenarios at scale.

use paysync_e2e::faults::{report, run, Fault, Outcome, Scenario};

/// Run `fault` on a small load; the invariants must hold. Returns the outcome for fault-specific checks.
async fn holds(fault: Fault, seed: u64) -> Outcome {
    let out = run(Scenario {
        fault,
        orders: 12,
        concurrency: 16,
        seed,
    })
    .await;
    println!("{}\n{}", Outcome::HEADER, report(fault, &out));
    assert!(out.violations.is_empty(), "{}", report(fault, &out));
    assert_eq!(out.facts, out.events, "one announcement per fact");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_without_faults() {
    holds(Fault::Baseline, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_the_process_dies_anywhere_even_between_commit_and_announce() {
    let out = holds(Fault::Kill, 11).await;
    assert!(out.kills > 0, "the fault was injected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_moto_restarts_mid_run() {
    holds(Fault::MotoRestart, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_moto_freezes() {
    holds(Fault::MotoFreeze, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_when_sqs_is_down() {
    let out = holds(Fault::SqsDown, 13).await;
    assert!(
        out.failed_attempts > 0,
        "SQS was down while notifications came in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_under_a_duplicate_storm() {
    holds(Fault::DuplicateStorm, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invariants_hold_with_skewed_clocks_and_reordered_sources() {
    holds(Fault::ClockSkew, 7).await;
}
