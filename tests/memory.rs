//! The memory promises of docs/clicks.md and docs/engine.md, held on modest inputs: `rubric data
//! clean` grows with distinct sessions, not rows, and `rubric label` does not grow with its
//! input. Each command runs twice, on an input and on a longer one (cleaning: 15,000 rows, then
//! 150,000 over the same 1,000 sessions; labeling: 9,000 pairs, three batches already, then
//! 36,000), and the second's peak resident set may exceed the first's by a few MiB only: a
//! command that kept its rows would grow by about the input's size, well above. The peak is the
//! child's `VmHWM` (Linux), read every 2 ms until it exits. The large-input figures are
//! benchmarks, not tests: `benches/clean_memory.sh` and BENCHMARKS.md.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::random_pairs::PairGenerator;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// What the longer input's peak may add to the shorter one's (allocator and scheduling noise).
const SLACK_KIB: u64 = 8 * 1024;

/// Runs `rubric args`; its peak resident set in KiB. Panics with its stderr when it fails.
fn peak_kib(args: &[&str]) -> u64 {
    let err = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(err.reopen().unwrap())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    let status = loop {
        // VmHWM only grows; the last reading before exit is at most 2 ms short of the peak.
        if let Ok(text) = std::fs::read_to_string(&status_file)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
    assert!(status.success(), "rubric {args:?}: {stderr}");
    assert!(peak > 0, "no peak read for rubric {args:?}");
    peak
}

/// A click log of `rows` rows over `sessions` sessions, interleaved round-robin as a live log is.
fn click_log(path: &Path, rows: usize, sessions: usize) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..rows {
        let (s, k) = (i % sessions, i / sessions);
        let secs = s * 7 + k * 20;
        let clicked = (i * 7919) % 5 == 0;
        write!(
            f,
            "{{\"query_id\":\"q-{}\",\"candidate_id\":\"c-{i}\",\"ts\":\"2026-11-{:02}T{:02}:{:02}:{:02}Z\",\
             \"position\":{},\"clicked\":{clicked},\"session\":\"s-{s}\"",
            s % 97,
            1 + secs / 86_400,
            secs / 3600 % 24,
            secs / 60 % 60,
            secs % 60,
            k % 10 + 1,
        )
        .unwrap();
        if clicked {
            write!(f, ",\"dwell_seconds\":{}", 5 + (i * 31) % 90).unwrap();
        }
        writeln!(f, "}}").unwrap();
    }
    f.flush().unwrap();
}

#[test]
fn cleaning_grows_with_sessions_not_rows() {
    let dir = tempfile::tempdir().unwrap();
    let peak = |rows: usize, name: &str| {
        let log = dir.path().join(format!("{name}.jsonl"));
        click_log(&log, rows, 1_000);
        let out = dir.path().join(format!("{name}.clean.jsonl"));
        let report = dir.path().join(format!("{name}.report.json"));
        let p = |x: &Path| x.to_str().unwrap().to_string();
        let kib = peak_kib(&[
            "data",
            "clean",
            "--pipeline",
            "policies/job_match.policy",
            "--clicks",
            &p(&log),
            "--out",
            &p(&out),
            "--report",
            &p(&report),
        ]);
        let size = std::fs::metadata(&log).unwrap().len() / 1024;
        (kib, size)
    };
    let (small, _) = peak(15_000, "small");
    let (large, large_log_kib) = peak(150_000, "large");
    assert!(
        large <= small + SLACK_KIB,
        "ten times the rows over the same 1,000 sessions: peak {small} KiB, then {large} KiB \
         (the longer log is {large_log_kib} KiB)"
    );
    assert!(
        large_log_kib > 2 * SLACK_KIB,
        "the longer log is too short to tell"
    );
}

#[test]
fn labeling_does_not_grow_with_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = compile_file(Path::new("policies/job_match.policy"), &Options::default())
        .expect("compiles");
    let mut generator = PairGenerator::new(&compiled.lowered.labeling, 11);
    let pairs: Vec<String> = (0..3_000).map(|_| generator.pair().to_string()).collect();
    let peak = |copies: usize, name: &str| {
        let input = dir.path().join(format!("{name}.jsonl"));
        let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
        for _ in 0..copies {
            for p in &pairs {
                writeln!(f, "{p}").unwrap();
            }
        }
        f.flush().unwrap();
        drop(f);
        let out = dir.path().join(format!("{name}.labels.jsonl"));
        let kib = peak_kib(&[
            "label",
            "--policy",
            "policies/job_match.policy",
            "--pairs",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        (kib, std::fs::metadata(&input).unwrap().len() / 1024)
    };
    let (small, _) = peak(3, "small");
    let (large, large_input_kib) = peak(12, "large");
    assert!(
        large <= small + SLACK_KIB,
        "four times the pairs: peak {small} KiB, then {large} KiB (the longer input is \
         {large_input_kib} KiB)"
    );
    assert!(
        large_input_kib > 2 * SLACK_KIB,
        "the longer input is too short to tell"
    );
}
