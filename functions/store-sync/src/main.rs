//! store-sync: on a schedule, brings the 1C-Bitrix store's changed orders into the ledger; on the events queue, writes
//! every payment change into the store. Wiring only; the logic is `shared::app::store_sync`.

use shared::app::store_sync as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().store_sync()?;
    let deps = wiring::store_sync(config, &Clients::from_env().await?)?;
    runtime::serve_event(|payload| function::handle(&deps, payload)).await
}
