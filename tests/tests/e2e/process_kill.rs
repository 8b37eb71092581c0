//! A real process killed (SIGKILL) between the ledger commit and the announcement: nothing is lost and nothing
//! is counted or announced twice, whether the provider redelivers or only the sweeper finds the change.

// Test helpers: a failed setup step should stop the test loudly.
#![allow(clippy::expect_used)]

use std::os::unix::process::ExitStatusExt;

use paysync_e2e::*;

/// Run acquiring-callback in a child process that dies right after committing `note`.
fn killed_after_commit(env: &TestEnv, note: &serde_json::Value) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_killed_after_commit"))
        .env("LEDGER_TABLE", &env.table)
        .env("EVENTS_QUEUE_URL", &env.queue_url)
        .env("TBANK_TERMINAL_KEY", TBANK_TERMINAL)
        .env("TBANK_PASSWORD", TBANK_PASSWORD)
        .env("NOTE", note.to_string())
        .output()
        .expect("run the child");
    assert_eq!(
        out.status.signal(),
        Some(9),
        "killed, not exited: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn a_process_killed_between_commit_and_announce_loses_nothing() {
    let env = spawn_env().await;
    env.register_order("7601", 150_000).await;
    env.register_order("7602", 90_000).await;
    env.drain_queue().await;
    let redelivered = tbank_note("7601", "7601", "CONFIRMED", 150_000);
    let abandoned = tbank_note("7602", "7602", "CONFIRMED", 90_000);
    killed_after_commit(&env, &redelivered);
    killed_after_commit(&env, &abandoned);

    // Committed, not announced: both changes wait in the outbox, the queue is empty.
    for (order, paid) in [("7601", 150_000), ("7602", 90_000)] {
        assert_eq!(env.facts(order).await.len(), 1);
        assert_eq!(env.order(order).await.expect("order").totals().paid, paid);
    }
    assert_eq!(env.outbox().await.len(), 2);
    assert!(env.drain_queue().await.is_empty());

    // T-Bank got no answer and delivers again: counted once, announced now.
    let reply = env.post_tbank(&redelivered).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert_eq!(env.facts("7601").await.len(), 1);
    assert_eq!(
        env.order("7601").await.expect("order").totals().paid,
        150_000
    );

    // The other provider gave up: the scheduled sweeper announces its change.
    let deps = env.sweeper_deps();
    let report = shared::app::outbox_sweeper::handle(&deps, 0)
        .await
        .expect("sweep");
    assert_eq!((report.outbox.found, report.outbox.announced), (1, 1));

    let events = env.drain_queue().await;
    let mut orders: Vec<&str> = events.iter().map(|e| e.order_id.as_str()).collect();
    orders.sort_unstable();
    assert_eq!(orders, ["7601", "7602"], "each change announced once");
    assert!(env.outbox().await.is_empty());
}
