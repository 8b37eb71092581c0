//! exchange-1c: the site side of 1C's CommerceML "sale" exchange. Wiring only.

use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init_tracing();
    let config = shared::config::Env::process().exchange_1c()?;
    let aws = shared::aws::sdk_config().await;
    let deps = shared::exchange1c::ExchangeDeps::new(config, &aws)?;
    // Byte-exact responses: 1C expects windows-1251 bodies.
    shared::http::run_byte_exact(|req| shared::exchange1c::respond(&deps, req)).await
}
