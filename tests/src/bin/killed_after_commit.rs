//! acquiring-callback wired as its `main` does, except that the process is killed (SIGKILL, no unwinding, no
//! cleanup) the moment the ledger has committed a change and is about to announce it. Used by
//! `tests/tests/process_kill.rs`; reads the function's own environment plus `NOTE` (the T-Bank notification body).

use std::sync::Arc;

use shared::domain::OrderEvent;
use shared::ports::{EventPublisher, PublishError};
use shared::testing::function_url_request;

struct KillOnPublish;

#[async_trait::async_trait]
impl EventPublisher for KillOnPublish {
    async fn publish(&self, _: &OrderEvent) -> Result<(), PublishError> {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        // SIGKILL is not instant to the caller; nothing after this line may run.
        loop {
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = shared::platform::config::Env::process().callback()?;
    let clients = shared::wiring::Clients::from_env().await?;
    let mut deps = shared::wiring::acquiring_callback(config, &clients)?;
    deps.events = Arc::new(KillOnPublish);
    let note = std::env::var("NOTE")?;
    let req = function_url_request(
        "POST",
        "/lambda-url/acquiring-callback/tbank",
        "",
        Some("application/json"),
        note.as_bytes(),
        "91.194.226.10",
    );
    let resp = shared::app::acquiring_callback::handle(&deps, req)
        .await
        .unwrap_or_else(|e| match e {});
    // Reaching this means the change was not committed (or the kill did not happen).
    println!("answered {} without being killed", resp.status());
    Ok(())
}
