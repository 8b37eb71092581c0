//! exchange-1c: the site side of 1C's CommerceML "sale" exchange. Wiring only.

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().exchange_1c()?;
    let aws = shared::aws::sdk_config().await;
    let deps = shared::exchange1c::ExchangeDeps::new(config, &aws);
    run(service_fn(|req| shared::exchange1c::handle(&deps, req))).await
}
