//! What a test needs from outside the repository (the real data in `../shared/data`, the pinned
//! Open Bandit wheel, Chromium), checked in one place so that a missing one is never a silent
//! pass. Under `CI` (any value but empty, `0` or `false`) a missing prerequisite fails the test
//! with what to install. Elsewhere the test is skipped and says so where a reader sees it: one
//! `skipped: <test binary>::<test>: ...` line written straight to the terminal's standard error
//! (past libtest's output capture, so it shows in a plain `cargo test` run, just above the
//! test's own `... ok` line).

#![allow(dead_code, clippy::panic)]

use std::io::Write;

/// Whether this run is CI's: there a missing prerequisite is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// `found`, or, when it is `None`: under CI a panic saying what is `missing` and how to
/// `install` it; elsewhere a visible skip line and `None` (the caller returns).
pub fn prerequisite<T>(found: Option<T>, missing: &str, install: &str) -> Option<T> {
    if found.is_some() {
        return found;
    }
    let test = format!(
        "{}::{}",
        env!("CARGO_CRATE_NAME"),
        std::thread::current().name().unwrap_or("?")
    );
    if in_ci() {
        panic!("{test}: {missing} (CI=true, so this is a failure, not a skip); {install}");
    }
    // `eprintln!` is captured by the test harness and only shown for failing tests; a write to
    // the standard error handle itself is not.
    let line = format!("skipped: {test}: {missing}; {install}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    None
}
