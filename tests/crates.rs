//! Crate boundaries: the language server links the compiler and project loading only, never
//! the runtime's data and network crates or the ML half.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn the_language_server_links_neither_the_runtime_nor_the_ml_half() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "rubric-lsp",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
            "--offline",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(crates.contains(&"rubric-compiler") && crates.contains(&"rubric-project"));
    for banned in [
        "rubric-runtime",
        "rubric-ml",
        "candle-core",
        "candle-nn",
        "tokenizers",
        "ureq",
        "zip",
        "csv",
        "pulldown-cmark",
    ] {
        assert!(
            !crates.contains(&banned),
            "rubric-lsp links {banned}:\n{tree}"
        );
    }
}
