//! CommerceML reader vs Python's ElementTree on the same generated file, in one run.
//!
//! `cargo run --release -p shared --example commerceml_compare -- [ORDERS]` (or `make bench-cml`): generates the
//! file, times parse + extraction (best of 5), measures the peak memory of a parse in a child process, runs
//! `scripts/cml_etree.py` on the same file and prints both and the ratio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use shared::formats::commerceml::{read, synthetic};

fn peak_rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--parse-once") {
        // Child mode: read + parse + extract once, report peak RSS.
        let bytes = std::fs::read(&args[2]).unwrap();
        let x = read(&bytes).unwrap();
        let r = synthetic::extract(&x);
        println!("{} {}", peak_rss_kb(), r.0);
        return;
    }
    let orders: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("target").join(format!("cml-{orders}.xml"));
    let text = synthetic::generate(orders);
    std::fs::write(&path, text.as_bytes()).unwrap();
    let size = text.len();
    drop(text);
    let bytes = std::fs::read(&path).unwrap();
    let mut best = f64::MAX;
    let mut result = (0, 0, 0, 0);
    for _ in 0..5 {
        let start = Instant::now();
        let x = read(&bytes).unwrap();
        result = synthetic::extract(&x);
        best = best.min(start.elapsed().as_secs_f64());
    }
    let child = Command::new(std::env::current_exe().unwrap())
        .arg("--parse-once")
        .arg(&path)
        .output()
        .unwrap();
    let child_out = String::from_utf8_lossy(&child.stdout);
    let rust_peak: u64 = child_out
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let rust_mbs = size as f64 / best / 1e6;
    println!(
        "file: {orders} orders, {} documents, {:.1} MB",
        result.0,
        size as f64 / 1e6
    );
    println!(
        "rust quick-xml reader: {:.1} ms, {rust_mbs:.1} MB/s, peak RSS {:.1} MB (whole process)",
        best * 1e3,
        rust_peak as f64 / 1024.0
    );
    let python = std::env::var("PAYSYNC_PYTHON").unwrap_or_else(|_| "python3".into());
    match Command::new(&python)
        .arg(root.join("scripts/cml_etree.py"))
        .arg(&path)
        .output()
    {
        Ok(out) if out.status.success() => {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let py_s = v["seconds"].as_f64().unwrap();
            assert_eq!(
                v["documents"].as_u64(),
                Some(result.0 as u64),
                "both extract the same documents"
            );
            assert_eq!(v["paid"].as_u64(), Some(result.1 as u64));
            assert_eq!(v["returns"].as_u64(), Some(result.2 as u64));
            assert_eq!(v["sum"].as_i64(), Some(result.3));
            println!(
                "python ElementTree:    {:.1} ms, {:.1} MB/s, peak RSS {:.1} MB (whole process)",
                py_s * 1e3,
                v["mb_per_s"].as_f64().unwrap(),
                v["peak_rss_kb"].as_f64().unwrap() / 1024.0
            );
            println!("speed ratio (python time / rust time): {:.1}x", py_s / best);
        }
        other => println!("python baseline did not run: {other:?}"),
    }
}
