//! acquiring-callback: T-Bank, Sber and YooKassa payment notifications → ledger facts. Wiring only.

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().callback()?;
    let aws = shared::aws::sdk_config().await;
    let deps = shared::callback::CallbackDeps::new(config, &aws)?;
    run(service_fn(|req| shared::callback::handle(&deps, req))).await
}
