//! `rubric data clicks` end to end: the same seed gives the same bytes (log and truth), another
//! seed another log; the injected rows are flagged in the truth file only; pairs without ids
//! give an error naming the line and field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::data::clicks::Click;
use rubric_runtime::random_pairs::PairGenerator;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

/// `n` schema-valid random pairs of job_match, ten candidates a query.
fn write_pairs(dir: &Path, n: usize) -> PathBuf {
    let compiled = compile_file(Path::new("policies/job_match.policy"), &Options::default())
        .expect("compiles");
    let mut g = PairGenerator::new(&compiled.lowered.labeling, 5);
    let mut text = String::new();
    for i in 0..n {
        let mut pair = g.pair();
        pair["query_id"] = format!("q-{}", i / 10).into();
        pair["candidate_id"] = format!("c-{i}").into();
        text.push_str(&pair.to_string());
        text.push('\n');
    }
    let path = dir.join("pairs.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

fn simulate(dir: &Path, pairs: &Path, seed: u64, name: &str) -> (Vec<u8>, Vec<u8>, String) {
    simulate_with(dir, pairs, seed, name, &["--sessions", "300"])
}

fn simulate_with(
    dir: &Path,
    pairs: &Path,
    seed: u64,
    name: &str,
    more: &[&str],
) -> (Vec<u8>, Vec<u8>, String) {
    let out = dir.join(format!("{name}.jsonl"));
    let seed = seed.to_string();
    let mut args = vec![
        "data",
        "clicks",
        "--policy",
        "policies/job_match.policy",
        "--pairs",
        pairs.to_str().unwrap(),
        "--seed",
        &seed,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(more);
    let o = rubric(&args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{stderr}");
    let truth = dir.join(format!("{name}.jsonl.truth.jsonl"));
    (
        std::fs::read(&out).unwrap(),
        std::fs::read(truth).unwrap(),
        stderr,
    )
}

#[test]
fn same_seed_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_pairs(dir.path(), 200);
    let (log_a, truth_a, summary) = simulate(dir.path(), &pairs, 7, "a");
    let (log_b, truth_b, _) = simulate(dir.path(), &pairs, 7, "b");
    let (log_c, _, _) = simulate(dir.path(), &pairs, 8, "c");
    assert_eq!(log_a, log_b);
    assert_eq!(truth_a, truth_b);
    assert_ne!(log_a, log_c);
    assert!(summary.contains("simulated 300 sessions"), "{summary}");
    assert!(
        summary.contains("human click rate by position: 1: "),
        "{summary}"
    );
    // Every row is a valid click of the documented format, and no flag leaks into the log.
    let text = String::from_utf8(log_a).unwrap();
    for (i, line) in text.lines().enumerate() {
        Click::parse(i as u64 + 1, line).unwrap();
        assert!(!line.contains("bot") && !line.contains("outlier"), "{line}");
    }
}

#[test]
fn pairs_without_ids_are_refused_with_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_pairs(dir.path(), 3);
    let text = std::fs::read_to_string(&pairs).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut second: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    second.as_object_mut().unwrap().remove("query_id");
    lines[1] = second.to_string();
    std::fs::write(&pairs, lines.join("\n")).unwrap();
    let out = dir.path().join("clicks.jsonl");
    let o = rubric(&[
        "data",
        "clicks",
        "--policy",
        "policies/job_match.policy",
        "--pairs",
        pairs.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("pairs.jsonl`, line 2: `query_id`: missing"),
        "{stderr}"
    );
}

#[test]
fn shares_outside_zero_to_one_are_usage_errors() {
    let o = rubric(&[
        "data",
        "clicks",
        "--policy",
        "p",
        "--pairs",
        "q",
        "--out",
        "o",
        "--bot-share",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("expected a share between 0 and 1, like 0.02, not `2`"),
        "{err}"
    );
}

/// `--list-len N`: every impression is at a position from 1 to N, each of them shown; 0 is a
/// usage error.
#[test]
fn list_len_sets_how_many_results_a_list_shows() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_pairs(dir.path(), 200);
    let run = |list_len: &str, name: &str| {
        let out = dir.path().join(format!("{name}.jsonl"));
        let o = rubric(&[
            "data",
            "clicks",
            "--policy",
            "policies/job_match.policy",
            "--pairs",
            pairs.to_str().unwrap(),
            "--seed",
            "3",
            "--sessions",
            "100",
            "--list-len",
            list_len,
            "--out",
            out.to_str().unwrap(),
        ]);
        let positions: std::collections::BTreeSet<u32> = std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .enumerate()
            .map(|(i, l)| Click::parse(i as u64 + 1, l).unwrap().position)
            .collect();
        (o, positions)
    };
    for (n, name) in [(4u32, "four"), (7, "seven")] {
        let (o, positions) = run(&n.to_string(), name);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(positions, (1..=n).collect(), "--list-len {n}");
    }
    let (o, _) = run("0", "zero");
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--list-len"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The human click rate of a log within three hours (UTC) of `hour`, the rows its truth file
/// flags left out.
fn click_rate_around(log: &[u8], truth: &[u8], hour: i64) -> f64 {
    let flagged: std::collections::HashSet<u64> = String::from_utf8_lossy(truth)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["line"]
                .as_u64()
                .unwrap()
        })
        .collect();
    let (mut rows, mut clicks) = (0u64, 0u64);
    for (i, line) in String::from_utf8_lossy(log).lines().enumerate() {
        let n = i as u64 + 1;
        let click = Click::parse(n, line).unwrap();
        let h = click.ts.as_second().rem_euclid(86_400) / 3_600;
        let d = (h - hour).rem_euclid(24);
        if flagged.contains(&n) || d.min(24 - d) > 3 {
            continue;
        }
        rows += 1;
        clicks += u64::from(click.clicked);
    }
    assert!(rows > 300, "{rows} impressions around {hour}h");
    clicks as f64 / rows as f64
}

/// `--time-of-day STRENGTH`: 0 is the default, byte for byte; a strength makes the evening
/// (around 20:00 UTC) click measurably more than the morning (around 08:00), the same seed
/// the same bytes, and the summary says so; a negative strength or not a number is a usage
/// error. 1,200 sessions 90 s apart span 30 hours, every hour of the day.
#[test]
fn time_of_day_makes_the_evening_click_more_than_the_morning() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_pairs(dir.path(), 200);
    let sessions = ["--sessions", "1200"];
    let (log, truth, _) = simulate_with(dir.path(), &pairs, 7, "default", &sessions);
    let zero = [sessions.as_slice(), &["--time-of-day", "0"]].concat();
    let (log_zero, truth_zero, _) = simulate_with(dir.path(), &pairs, 7, "zero", &zero);
    assert!(
        log == log_zero && truth == truth_zero,
        "--time-of-day 0 moved the log"
    );
    let (evening, morning) = (
        click_rate_around(&log, &truth, 20),
        click_rate_around(&log, &truth, 8),
    );
    assert!((evening - morning).abs() < 0.03, "{evening} vs {morning}");

    let on = [sessions.as_slice(), &["--time-of-day", "0.8"]].concat();
    let (log_on, truth_on, summary) = simulate_with(dir.path(), &pairs, 7, "on", &on);
    let (again, _, _) = simulate_with(dir.path(), &pairs, 7, "again", &on);
    assert_eq!(log_on, again);
    let (evening, morning) = (
        click_rate_around(&log_on, &truth_on, 20),
        click_rate_around(&log_on, &truth_on, 8),
    );
    assert!(evening > morning + 0.04, "{evening} vs {morning}");
    assert!(
        summary.contains(
            "time of day: +0.8 · cos(2π (hour − 20) / 24) logits; human click rate 17–23h "
        ),
        "{summary}"
    );

    for bad in ["-0.5", "strong", "inf"] {
        let o = rubric(&[
            "data",
            "clicks",
            "--policy",
            "p",
            "--pairs",
            "q",
            "--out",
            "o",
            &format!("--time-of-day={bad}"),
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!(
                "expected a strength in logits, 0 or more, like 0.8, not `{bad}`"
            )),
            "{err}"
        );
    }
}
