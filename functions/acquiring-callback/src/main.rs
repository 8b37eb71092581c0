//! acquiring-callback: T-Bank, Sber and YooKassa payment notifications → ledger facts. Wiring only; the logic is
//! `shared::app::acquiring_callback`.

use shared::app::acquiring_callback as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().callback()?;
    let deps = wiring::acquiring_callback(config, &Clients::from_env().await?)?;
    runtime::serve_http(|req| function::handle(&deps, req)).await
}
