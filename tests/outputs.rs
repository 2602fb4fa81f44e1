//! Nothing lost, nothing torn: an output that aliases an input or another output is refused
//! before anything is opened (the input intact), a failed run keeps the previous output, and
//! `rubric label` and `rubric data clean` killed at any point leave either the old output or the
//! complete new one, never a part of it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const POLICY: &str = "policies/job_match.policy";
const GOLDEN: &str = "examples/job_match/data/golden.jsonl";
const CLICKS: &str = "examples/job_match/data/clicks.jsonl";

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .output()
        .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn copy(from: &str, dir: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    to
}

#[test]
fn outputs_that_alias_an_input_or_each_other_are_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = copy(GOLDEN, dir.path(), "pairs.jsonl");
    let clicks = copy(CLICKS, dir.path(), "clicks.jsonl");
    let before = std::fs::read(&pairs).unwrap();
    let other = dir.path().join("other.jsonl");
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "label",
            "--policy",
            POLICY,
            "--pairs",
            s(&pairs),
            "--out",
            s(&pairs),
        ],
        vec![
            "label",
            "--policy",
            POLICY,
            "--pairs",
            s(&pairs),
            "--out",
            s(&other),
            "--quarantine",
            s(&pairs),
        ],
        vec![
            "label",
            "--policy",
            POLICY,
            "--pairs",
            s(&pairs),
            "--out",
            s(&other),
            "--quarantine",
            s(&other),
        ],
        vec![
            "data",
            "synth",
            "--policy",
            POLICY,
            "--golden",
            s(&pairs),
            "--count",
            "5",
            "--out",
            s(&pairs),
        ],
    ];
    for args in &cases {
        let o = rubric(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("would destroy the input") || err.contains("are the same file"),
            "{args:?}: {err}"
        );
        assert_eq!(
            std::fs::read(&pairs).unwrap(),
            before,
            "{args:?} changed the input"
        );
        assert!(!other.exists(), "{args:?} wrote an output");
    }
    let clicks_before = std::fs::read(&clicks).unwrap();
    let report = dir.path().join("report.json");
    let o = rubric(&[
        "data",
        "clean",
        "--pipeline",
        POLICY,
        "--clicks",
        s(&clicks),
        "--out",
        s(&clicks),
        "--report",
        s(&report),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(std::fs::read(&clicks).unwrap(), clicks_before);
}

#[test]
fn a_failed_run_keeps_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("labels.jsonl");
    std::fs::write(&out, "the previous labels\n").unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"p1\"}\nnot json\n").unwrap();
    let o = rubric(&[
        "label",
        "--policy",
        POLICY,
        "--pairs",
        s(&bad),
        "--out",
        s(&out),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "the previous labels\n"
    );
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
}

/// Runs `args` to completion for the complete output, then again and again killed after growing
/// delays; after each kill `out` is the old content or the complete new one.
fn killed_at_any_point_leaves_old_or_new(args: &[&str], out: &Path) {
    let new = {
        // Exit 1 is fine: rows set aside in a quarantine still give a complete output.
        let o = rubric(args);
        assert!(
            matches!(o.status.code(), Some(0 | 1)),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::fs::read(out).unwrap()
    };
    let old = b"the previous output\n".to_vec();
    let mut torn_chances = 0;
    for delay_ms in [5u64, 20, 40, 80, 120, 200, 300, 450, 700, 1000] {
        std::fs::write(out, &old).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let killed = child.try_wait().unwrap().is_none();
        let _ = child.kill();
        child.wait().unwrap();
        let now = std::fs::read(out).unwrap();
        assert!(
            now == old || now == new,
            "killed after {delay_ms} ms: {} bytes, neither the old {} nor the new {}",
            now.len(),
            old.len(),
            new.len()
        );
        if killed && now == old {
            torn_chances += 1;
        }
    }
    assert!(torn_chances > 0, "no run was killed while writing");
}

#[test]
fn label_killed_at_any_point_leaves_the_old_labels_or_the_new() {
    let dir = tempfile::tempdir().unwrap();
    // Ten times the golden set: long enough to be caught mid-write.
    let text = std::fs::read_to_string(GOLDEN).unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, text.repeat(10)).unwrap();
    let out = dir.path().join("labels.jsonl");
    killed_at_any_point_leaves_old_or_new(
        &[
            "label",
            "--policy",
            POLICY,
            "--pairs",
            s(&pairs),
            "--out",
            s(&out),
        ],
        &out,
    );
}

#[test]
fn clean_killed_at_any_point_leaves_the_old_log_or_the_new() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(CLICKS).unwrap();
    let clicks = dir.path().join("clicks.jsonl");
    std::fs::write(&clicks, text.repeat(20)).unwrap();
    let out = dir.path().join("clean.jsonl");
    let report = dir.path().join("report.json");
    killed_at_any_point_leaves_old_or_new(
        &[
            "data",
            "clean",
            "--pipeline",
            POLICY,
            "--clicks",
            s(&clicks),
            "--out",
            s(&out),
            "--report",
            s(&report),
            "--quarantine",
            s(&dir.path().join("q.jsonl")),
        ],
        &out,
    );
}
