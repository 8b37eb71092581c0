//! outbox-sweeper: scheduled re-announcement of committed but unannounced ledger changes, and retry of 1C uploads
//! the exchange-1c proxy tapped but could not apply. Wiring only.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().sweeper()?;
    let aws = shared::aws::sdk_config().await;
    let deps = shared::sweeper::SweeperDeps::new(
        &config.ledger,
        config.utc_offset_minutes,
        config.refund_on_cancel,
        &aws,
    );
    run(service_fn(|_: LambdaEvent<Value>| async {
        let report = shared::sweeper::handle(&deps, shared::sweeper::GRACE_MS).await?;
        Ok::<_, Error>(serde_json::to_value(report)?)
    }))
    .await
}
