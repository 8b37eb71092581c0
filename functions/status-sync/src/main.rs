//! status-sync: scheduled status checks at the acquirers for every payment and refund whose notification has not
//! come (yet). Wiring only; the logic is `shared::app::status_sync`.

use shared::app::status_sync as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().status_sync()?;
    let deps = wiring::status_sync(config, &Clients::from_env().await?)?;
    runtime::serve_event(|_: serde_json::Value| function::handle(&deps)).await
}
