//! statement-pull: scheduled bank statement pull and matching into the ledger. Wiring only; the logic is
//! `shared::app::statement_pull`.

use shared::app::statement_pull as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().statement_pull()?;
    let deps = wiring::statement_pull(config, &Clients::from_env().await?)?;
    runtime::serve_event(|_: serde_json::Value| function::handle(&deps)).await
}
