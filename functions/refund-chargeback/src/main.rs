//! refund-chargeback: executes admitted refund requests through the acquirer that took the money (SQS FIFO
//! trigger, partial batch failures). Wiring only; the logic is `shared::refund_chargeback`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().refund_chargeback()?;
    let aws = shared::aws::sdk_config().await;
    let deps =
        shared::refund_chargeback::RefundDeps::new(&config, &aws, shared::clients::http_client()?);
    run(service_fn(|event: LambdaEvent<SqsEvent>| async {
        Ok::<SqsBatchResponse, Error>(shared::refund_chargeback::handle(&deps, event.payload).await)
    }))
    .await
}
