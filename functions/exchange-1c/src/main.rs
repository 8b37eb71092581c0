//! exchange-1c: the site side of 1C's CommerceML "sale" exchange. Wiring only; the logic is
//! `shared::app::exchange_1c`.

use shared::app::exchange_1c as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().exchange_1c()?;
    let deps = wiring::exchange_1c(config, &Clients::from_env().await?)?;
    // Byte-exact responses: 1C expects windows-1251 bodies.
    runtime::serve_byte_exact(|req| function::respond(&deps, req)).await
}
