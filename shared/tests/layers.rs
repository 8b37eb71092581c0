//! The floors of `shared` (issue #15): the pure `domain` and `formats` know nothing of AWS, Lambda, HTTP clients or
//! the async runtime, and no adapter reaches into a function's use case. A guard that reads the sources, so an
//! import that breaks a floor fails `make test` with the file and the line.

// A test of the source tree: an unreadable file should stop it loudly.
#![allow(clippy::expect_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `file:line: text` of every line under `folder` that names one of `forbidden`, outside `#[cfg(test)]` tails.
fn offending(folder: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src")
        .join(folder);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(!files.is_empty(), "no sources under {}", root.display());
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("source");
        // Test modules may use what they like (tokio::test, fixtures).
        let production = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (n, line) in production.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn domain_and_formats_are_pure() {
    for folder in ["domain", "formats"] {
        let found = offending(folder, &["aws_", "lambda_", "reqwest", "tokio"]);
        assert!(
            found.is_empty(),
            "{folder} must stay pure:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn no_adapter_imports_a_use_case() {
    let use_cases = [
        "crate::callback",
        "crate::exchange1c",
        "crate::refund_chargeback",
        "crate::statement_pull",
        "crate::store_sync",
        "crate::sweeper",
        "crate::resolve",
    ];
    let found = offending("adapters", &use_cases);
    assert!(
        found.is_empty(),
        "adapters import use cases:\n{}",
        found.join("\n")
    );
}
