//! Fault injection at scale: each fault of `paysync_e2e::faults` under load, then the invariants; prints a
//! markdown table. Run with `make faults` (FAULT_ORDERS, FAULT_CONCURRENCY, FAULTS).
//!
//! Args: ORDERS CONCURRENCY [FAULT...]. Env: AWS_ENDPOINT_URL is not used (each run starts its own moto);
//! PAYSYNC_PYTHON is the venv's python with moto installed.

use paysync_e2e::faults::{report, run, Fault, Outcome, Scenario};

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let orders: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let faults: Vec<Fault> = {
        let named: Vec<Fault> = args.filter_map(|a| Fault::parse(&a)).collect();
        if named.is_empty() {
            Fault::ALL.to_vec()
        } else {
            named
        }
    };
    println!(
        "{orders} orders, concurrency {concurrency}\n\n{}",
        Outcome::HEADER
    );
    let mut violated = 0;
    for (i, fault) in faults.into_iter().enumerate() {
        let out = run(Scenario {
            fault,
            orders,
            concurrency,
            seed: 1000 + i as u64,
        })
        .await;
        violated += out.violations.len();
        println!("{}", report(fault, &out));
    }
    if violated > 0 {
        eprintln!("{violated} invariant violations");
        std::process::exit(1);
    }
}
