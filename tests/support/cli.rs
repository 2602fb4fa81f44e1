//! Running the built `rubric` binary from a test, and reading what it printed.

#![allow(dead_code, clippy::expect_used)]

use std::process::{Command, Output};

/// Runs `rubric ARGS` (colour off) to completion.
pub fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
