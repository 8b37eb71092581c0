//! outbox-sweeper: scheduled re-announcement of committed but unannounced ledger changes, and retry of 1C uploads
//! the exchange-1c proxy tapped but could not apply. Wiring only; the logic is `shared::app::outbox_sweeper`.

use shared::app::outbox_sweeper as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().sweeper()?;
    let deps = wiring::outbox_sweeper(config, &Clients::from_env().await?)?;
    runtime::serve_event(|_: serde_json::Value| function::handle(&deps, function::GRACE_MS)).await
}
