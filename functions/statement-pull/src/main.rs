//! statement-pull: scheduled bank statement pull and matching into the ledger. Wiring only.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().statement_pull()?;
    let aws = shared::aws::sdk_config().await;
    let (store, events) = shared::adapters::aws_ledger(&config.ledger, &aws);
    let deps = shared::statement_pull::PullDeps {
        store,
        events,
        http: shared::clients::http_client()?,
        sources: config.sources,
        bank_api_url: config.bank_api_url,
        patterns: shared::formats::purpose::PurposePatterns::new()?,
        overlap_days: config.overlap_days,
    };
    run(service_fn(|_: LambdaEvent<Value>| async {
        let summary = shared::statement_pull::handle(&deps).await?;
        Ok::<_, Error>(serde_json::to_value(summary)?)
    }))
    .await
}
