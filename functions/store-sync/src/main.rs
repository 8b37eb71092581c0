//! store-sync: on a schedule, brings the 1C-Bitrix store's changed orders into the ledger; on the events queue, writes
//! every payment change into the store. Wiring only; the logic is `shared::store_sync`.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().store_sync()?;
    let aws = shared::aws::sdk_config().await;
    let deps = shared::store_sync::StoreDeps::new(&config, &aws, shared::clients::http_client()?);
    run(service_fn(|event: LambdaEvent<Value>| async {
        // The events queue sends `Records`; the schedule sends an EventBridge event.
        if event.payload.get("Records").is_some() {
            let batch = serde_json::from_value(event.payload)?;
            let response = shared::store_sync::handle_events(&deps, &config.push, batch).await;
            return Ok::<_, Error>(serde_json::to_value(response)?);
        }
        let summary = shared::store_sync::pull_orders(&deps).await?;
        if summary.auth_failed {
            // A refused webhook fails the invocation: the errors alarm tells someone to fix it.
            return Err(summary.errors.join("; ").into());
        }
        Ok(serde_json::to_value(summary)?)
    }))
    .await
}
