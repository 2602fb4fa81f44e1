//! The `rubric` binary as a new user first meets it (issue 10): closed pipes, files that cannot
//! be read, empty inputs, option values, exit statuses and what `--help` and the summary say.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

#[path = "support/cli.rs"]
mod cli;
use cli::{rubric, stderr, stdout};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// Runs `rubric ARGS` with standard output a pipe whose reading end is closed before the
/// command starts, as `rubric ... | head -1` leaves it once `head` has its line.
fn rubric_into_closed_pipe(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("the rubric binary runs")
}

#[test]
fn a_closed_pipe_ends_reports_quietly() {
    let policy = root().join("policies/job_match.policy");
    let pairs = root().join("examples/job_match/data/golden.jsonl");
    let pair = std::fs::read_to_string(&pairs)
        .ok()
        .and_then(|t| t.lines().next().map(str::to_string))
        .unwrap_or_default();
    let runs: Vec<Vec<&str>> = vec![
        vec!["test", path(&policy)],
        vec!["stats", "--policy", path(&policy), "--pairs", path(&pairs)],
        vec!["trace", "--policy", path(&policy), "--pair", &pair],
        vec!["explain"],
        vec!["explain", "weights_sum"],
        vec![
            "label",
            "--policy",
            path(&policy),
            "--pairs",
            path(&pairs),
            "--out",
            "-",
        ],
    ];
    for args in runs {
        let out = rubric_into_closed_pipe(&args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

#[test]
fn quarantined_rows_exit_one_and_help_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let policy = root().join("policies/job_match.policy");
    let golden =
        std::fs::read_to_string(root().join("examples/job_match/data/golden.jsonl")).unwrap();
    let mut rows: Vec<&str> = golden.lines().take(3).collect();
    rows.push("{\"id\": \"bad\", \"query\": 1}");
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, rows.join("\n") + "\n").unwrap();
    let (labels, quarantine) = (dir.path().join("out.jsonl"), dir.path().join("q.jsonl"));
    let out = rubric(&[
        "label",
        "--policy",
        path(&policy),
        "--pairs",
        path(&pairs),
        "--out",
        path(&labels),
        "--quarantine",
        path(&quarantine),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("labeled 3 of 4 rows with `job_match` (1 quarantined)"),
        "{}",
        stderr(&out)
    );
    let help = stdout(&rubric(&["label", "--help"]));
    assert!(
        help.contains("exit status is still 1 when a row was quarantined"),
        "{help}"
    );
}

#[test]
fn stats_and_diff_fail_when_no_pair_could_be_labeled() {
    let dir = tempfile::tempdir().unwrap();
    let policy = root().join("policies/job_match.policy");
    let other = root().join("policies/feed_ranking.policy");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    // Pairs of another policy's schema: not one of them decodes for `job_match`.
    let foreign = dir.path().join("foreign.jsonl");
    std::fs::write(
        &foreign,
        "{\"id\": \"a\", \"query\": {\"user\": 1}, \"candidate\": {\"post\": 2}}\n\
         {\"id\": \"b\", \"query\": {\"user\": 3}, \"candidate\": {\"post\": 4}}\n",
    )
    .unwrap();
    for (pairs, says) in [
        (&empty, "holds no pairs"),
        (&foreign, "none of the 2 pair(s)"),
    ] {
        let stats = rubric(&["stats", "--policy", path(&policy), "--pairs", path(pairs)]);
        assert_eq!(stats.status.code(), Some(1), "{}", stderr(&stats));
        assert!(stderr(&stats).contains(says), "{}", stderr(&stats));
        assert_eq!(stdout(&stats), "", "no report of nothing");
        let diff = rubric(&["diff", path(&policy), path(&other), "--pairs", path(pairs)]);
        assert_eq!(diff.status.code(), Some(1), "{}", stderr(&diff));
        assert!(stderr(&diff).contains(says), "{}", stderr(&diff));
    }
}

#[test]
fn min_coverage_is_a_percent_not_a_fraction() {
    let policy = root().join("policies/job_match.policy");
    let p = path(&policy);
    for ok in ["95", "95%", "100", "0"] {
        let out = rubric(&["test", p, "--min-coverage", ok]);
        assert_eq!(out.status.code(), Some(0), "{ok}: {}", stderr(&out));
    }
    let fraction = rubric(&["test", p, "--min-coverage", "0.95"]);
    assert_eq!(fraction.status.code(), Some(2));
    assert!(
        stderr(&fraction).contains("reads as 0.95%") && stderr(&fraction).contains("like `95`"),
        "{}",
        stderr(&fraction)
    );
    let above = rubric(&["test", p, "--min-coverage", "101"]);
    assert_eq!(above.status.code(), Some(2));
    assert!(stderr(&above).contains("at most 100"), "{}", stderr(&above));
}

#[test]
fn a_file_that_is_not_utf8_is_an_error_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("p.policy");
    std::fs::write(&latin1, b"// r\xe9sum\xe9\npolicy p version 1 {}\n").unwrap();
    let out = rubric(&["check", "--error-format", "plain", path(&latin1)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rubric::syntax::not_utf8"), "{err}");
    assert!(err.contains("the byte 0xE9 cannot be read"), "{err}");
    assert!(
        err.contains("line 1, column 5"),
        "the line and column: {err}"
    );
    assert!(err.contains("checked 1 file: 2 errors"), "{err}");
}

#[test]
fn a_missing_file_counts_as_an_error_in_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.policy");
    let out = rubric(&["check", path(&missing)]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("checked 1 file: 1 error, 0 warnings"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_empty_file_holds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.policy");
    std::fs::write(&empty, "").unwrap();
    let out = rubric(&["check", path(&empty)]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("rubric::syntax::empty_file"), "{err}");
    assert!(
        err.contains("rubric new NAME"),
        "the help says what to write: {err}"
    );
}

/// A policy whose example fails on its third `expect`, seven lines below the example's name.
const FAILING_EXAMPLE: &str = r#"policy p version 1 {
  entity A { x: number }
  pair query: A, candidate: A
  dimension d weight 100% { score = clamp(query.x, 0, 1) }
  grade overall { good when overall >= 0.5  poor otherwise }
  example "a middling pair" {
    query { x: 0.6 }
    candidate { x: 0 }
    expect d >= 0.5
    expect overall.grade == good
    expect overall == 0.7
  }
}
"#;

#[test]
fn a_failing_expect_is_reported_at_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.policy");
    std::fs::write(&policy, FAILING_EXAMPLE).unwrap();
    let out = rubric(&["test", path(&policy)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let shown = path(&policy).to_string();
    assert!(
        stdout(&out).contains(&format!("FAIL  a middling pair  {shown}:6")),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains(&format!("{shown}:11: expected `overall == 0.7`, got 0.6")),
        "{}",
        stdout(&out)
    );
}

/// Scores whose binary arithmetic lands just off a decimal: 0.7 × 0.77 + 0.3 × 0.87 is
/// 0.7999999999999999, 0.7 × 0.85 + 0.3 × 0.95 is 0.8799999999999999, 0.1 + 0.7 is
/// 0.7999999999999999.
const NEAR_DECIMALS: &str = r#"policy p version 1 {
  entity A { a: number, b: number }
  pair query: A, candidate: A
  dimension a weight 70% { score = clamp(query.a, 0, 1) }
  dimension b weight 30% { score = clamp(query.b, 0, 1) }
  grade overall { good when overall >= 0.8  poor otherwise }
  rule sum_of_tenths {
    when a == 0.8
    floor overall at 0.1
    because "a rule reads the rounded score"
  }
  example "a weighted mean a hair below 0.8" {
    query { a: 0.77, b: 0.87 }
    candidate { a: 0, b: 0 }
    expect overall == 0.8
    expect overall >= 0.8
    expect overall.grade == good
  }
  example "a sum of tenths" {
    query { a: 0.8, b: 0.8 }
    candidate { a: 0, b: 0 }
    expect a == 0.8
    expect rule sum_of_tenths fires
  }
}
"#;

#[test]
fn scores_are_rounded_to_six_decimals_before_grades_expectations_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.policy");
    std::fs::write(&policy, NEAR_DECIMALS).unwrap();
    let test = rubric(&["test", path(&policy)]);
    assert_eq!(
        test.status.code(),
        Some(0),
        "{}{}",
        stdout(&test),
        stderr(&test)
    );
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"id\": \"x\", \"query\": {\"a\": 0.85, \"b\": 0.95}, \"candidate\": {\"a\": 0, \"b\": 0}}\n",
    )
    .unwrap();
    let out = rubric(&[
        "label",
        "--policy",
        path(&policy),
        "--pairs",
        path(&pairs),
        "--out",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"overall\":0.88,"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("0.8799999"), "{}", stdout(&out));
}

#[test]
fn a_failing_score_expectation_never_prints_the_expected_value() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.policy");
    // 0.7999999999999999 rounds to 0.8: `== 0.8000001` compares 0.8 with 0.8 (six decimals),
    // and `> 0.8` fails showing `got 0.8`, not a value that looks like the expected one.
    let text = NEAR_DECIMALS.replace(
        "expect overall >= 0.8\n",
        "expect overall > 0.8\n    expect overall == 0.8000004\n",
    );
    std::fs::write(&policy, text).unwrap();
    let test = rubric(&["test", path(&policy)]);
    let shown = stdout(&test);
    assert_eq!(test.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains("expected `overall > 0.8`, got 0.8"),
        "{shown}"
    );
    // Compared at six decimals, `== 0.8000004` holds: it must not fail as `0.8`, `got 0.8`.
    assert!(
        !shown.contains("expected `overall == 0.8`, got 0.8"),
        "{shown}"
    );
}

#[test]
fn completions_cover_the_subcommands_and_their_options() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = rubric(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for word in [
            "check",
            "label",
            "completions",
            "min-coverage",
            "quarantine",
        ] {
            assert!(script.contains(word), "{shell}: no `{word}` in\n{script}");
        }
    }
    let unknown = rubric(&["completions", "tcsh"]);
    assert_eq!(unknown.status.code(), Some(2), "{}", stderr(&unknown));
}

#[test]
fn progress_bars_stay_off_when_stderr_is_not_a_terminal() {
    let policy = root().join("policies/job_match.policy");
    let pairs = root().join("examples/job_match/data/golden.jsonl");
    let stats = rubric(&["stats", "--policy", path(&policy), "--pairs", path(&pairs)]);
    assert_eq!(stats.status.code(), Some(0), "{}", stderr(&stats));
    assert_eq!(
        stderr(&stats),
        "",
        "nothing but the report, and that on stdout"
    );
    let diff = rubric(&[
        "diff",
        path(&policy),
        path(&policy),
        "--pairs",
        path(&pairs),
    ]);
    assert_eq!(diff.status.code(), Some(0), "{}", stderr(&diff));
    assert_eq!(stderr(&diff), "");
}

#[test]
fn fmt_check_prints_a_unified_diff_of_what_would_change() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.policy");
    std::fs::write(
        &policy,
        "policy p version 1 {\n  entity A { x: number }\n  pair query: A, candidate: A\n  dimension d weight 100% { score = clamp(query.x,0,1) }\n  grade overall { good when overall >= 0.5  poor otherwise }\n}\n",
    )
    .unwrap();
    let before = std::fs::read_to_string(&policy).unwrap();
    let out = rubric(&["fmt", "--check", path(&policy)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = stdout(&out);
    let shown = path(&policy);
    assert!(
        diff.contains(&format!("--- {shown}\n+++ {shown} (formatted)\n@@ ")),
        "{diff}"
    );
    assert!(
        diff.contains("\n-  dimension d weight 100% { score = clamp(query.x,0,1) }\n"),
        "{diff}"
    );
    assert!(
        diff.contains("\n+    score = clamp(query.x, 0, 1)\n"),
        "{diff}"
    );
    assert_eq!(
        std::fs::read_to_string(&policy).unwrap(),
        before,
        "--check writes nothing"
    );
}
