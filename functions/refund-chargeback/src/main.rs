//! refund-chargeback: executes admitted refund requests through the acquirer that took the money (SQS FIFO
//! trigger, partial batch failures). Wiring only; the logic is `shared::app::refund_chargeback`.

use shared::app::refund_chargeback as function;
use shared::platform::{config::Env, runtime, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), runtime::Error> {
    telemetry::init_tracing();
    let config = Env::process().refund_chargeback()?;
    let deps = wiring::refund_chargeback(config, &Clients::from_env().await?)?;
    runtime::serve_event(|batch| async {
        Ok::<_, runtime::Error>(function::handle(&deps, batch).await)
    })
    .await
}
