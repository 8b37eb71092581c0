//! console: the web page where the accountant and the shop manager see the money and settle what the robot
//! cannot. Wiring only; the routes and pages are this crate's library, the logic `shared::app::console`.

use shared::platform::{config::Env, telemetry};
use shared::wiring::{self, Clients};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    telemetry::init_tracing();
    let config = Env::process().console()?;
    let deps = wiring::console(&config, &Clients::from_env().await?);
    let app = console::service(console::Console::new(deps, &config));
    lambda_http::run(app).await
}
