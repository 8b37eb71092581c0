//! The floors of `shared` (issue #15), bottom to top: `domain` → `formats` → `platform`, `ports` → `adapters` →
//! `app` → `wiring`. The pure `domain` and `formats` know nothing of AWS, Lambda, HTTP clients or the async
//! runtime; a floor imports nothing above it; the use cases (`app`) build no adapter and touch no AWS or HTTP
//! client (that is `wiring`'s job). A guard that reads the sources, so an import that breaks a floor fails
//! `make test` with the file and the line.

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
        // A `tests.rs` is a test module as a whole.
        if file.file_name().is_some_and(|n| n == "tests.rs") {
            continue;
        }
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

/// The floors above `floor`, as paths a `use` would name.
fn above(floor: &str) -> Vec<&'static str> {
    const ORDER: [(&str, &str); 7] = [
        ("domain", "crate::domain"),
        ("formats", "crate::formats"),
        ("platform", "crate::platform"),
        ("ports", "crate::ports"),
        ("adapters", "crate::adapters"),
        ("app", "crate::app"),
        ("wiring", "crate::wiring"),
    ];
    let rank = |name: &str| match name {
        // platform and ports stand side by side: neither imports the other's floor upwards.
        "ports" => 2,
        other => ORDER.iter().position(|(n, _)| *n == other).unwrap_or(0),
    };
    let mine = rank(floor);
    ORDER
        .iter()
        .filter(|(n, _)| rank(n) > mine)
        .map(|(_, path)| *path)
        .collect()
}

#[test]
fn no_floor_imports_one_above_it() {
    for floor in ["domain", "formats", "platform", "ports", "adapters", "app"] {
        let found = offending(floor, &above(floor));
        assert!(
            found.is_empty(),
            "{floor} imports a floor above it:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn use_cases_build_no_adapter_and_touch_no_client() {
    let found = offending(
        "app",
        &[
            "reqwest",
            "aws_sdk",
            "aws_config",
            "crate::adapters",
            "crate::wiring",
        ],
    );
    assert!(
        found.is_empty(),
        "the use cases must go through ports (wiring builds the adapters):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_guard_sees_a_floor_broken() {
    // The rule itself: a use of `crate::app` is above `adapters`, one of `crate::domain` is not.
    assert!(above("adapters").contains(&"crate::app"));
    assert!(!above("adapters").contains(&"crate::domain"));
    assert!(above("ports").contains(&"crate::adapters"));
    assert!(!above("ports").contains(&"crate::platform"));
}
