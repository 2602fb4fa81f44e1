//! The `rubric` binary end to end: exit statuses, the three error formats, `explain`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write_policy(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("p.policy");
    std::fs::write(&path, text).expect("write");
    (dir, path)
}

const CLEAN: &str = r#"policy p version 1 {
  entity A { x: number }
  pair query: A, candidate: A
  dimension d weight 100% { score = clamp(query.x, 0, 1) }
  grade overall { good when overall >= 0.5  poor otherwise }
}
"#;

#[test]
fn a_clean_policy_exits_zero() {
    let (_dir, path) = write_policy(CLEAN);
    let out = rubric(&["check", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("0 errors, 0 warnings"));
}

#[test]
fn warnings_alone_exit_zero_and_are_printed() {
    let (_dir, path) = write_policy(&CLEAN.replace("clamp(query.x, 0, 1)", "query.x"));
    let out = rubric(&["check", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("rubric::check::score_unproven"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_exit_one_and_name_the_file_and_line() {
    let (_dir, path) = write_policy(&CLEAN.replace("weight 100%", "weight 90%"));
    let out = rubric(&["check", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("rubric::check::weights_sum"), "{err}");
    assert!(err.contains("p.policy:4:"), "{err}");
    assert!(err.contains("add up to 90%"), "{err}");
}

#[test]
fn an_unreadable_file_exits_two() {
    let out = rubric(&["check", "/nonexistent/x.policy"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read `/nonexistent/x.policy`"));
}

#[test]
fn usage_errors_exit_two() {
    assert_eq!(rubric(&["check"]).status.code(), Some(2));
    assert_eq!(rubric(&["frobnicate"]).status.code(), Some(2));
}

#[test]
fn json_format_prints_one_object_per_diagnostic() {
    let (_dir, path) = write_policy(
        &CLEAN
            .replace("weight 100%", "weight 90%")
            .replace("x: number", "x: numbr"),
    );
    let out = rubric(&[
        "check",
        "--error-format",
        "json",
        path.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let lines: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let codes: Vec<&str> = lines.iter().filter_map(|v| v["code"].as_str()).collect();
    assert_eq!(
        codes,
        [
            "rubric::resolve::unknown_type",
            "rubric::check::weights_sum"
        ]
    );
    assert_eq!(lines[0]["severity"], "error");
    assert!(
        lines[0]["filename"]
            .as_str()
            .unwrap_or_default()
            .ends_with("p.policy")
    );
    assert_eq!(lines[0]["labels"][0]["span"]["length"], 5);
}

#[test]
fn plain_format_narrates() {
    let (_dir, path) = write_policy(&CLEAN.replace("weight 100%", "weight 90%"));
    let out = rubric(&[
        "check",
        "--error-format",
        "plain",
        path.to_str().unwrap_or_default(),
    ]);
    let err = stderr(&out);
    assert!(
        err.contains("diagnostic code: rubric::check::weights_sum"),
        "{err}"
    );
    assert!(!err.contains('╭'), "{err}");
}

#[test]
fn several_files_are_all_checked() {
    let (_a, good) = write_policy(CLEAN);
    let (_b, bad) = write_policy(&CLEAN.replace("weight 100%", "weight 90%"));
    let out = rubric(&[
        "check",
        good.to_str().unwrap_or_default(),
        bad.to_str().unwrap_or_default(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("checked 2 files: 1 error, 0 warnings"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn explain_prints_the_long_explanation() {
    let out = rubric(&["explain", "rubric::check::weights_sum"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("# rubric::check::weights_sum"));
    let short = rubric(&["explain", "weights_sum"]);
    assert_eq!(stdout(&short), stdout(&out));
}

#[test]
fn explain_without_a_code_lists_every_code() {
    let out = rubric(&["explain"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).lines().count(),
        rubric_compiler::Code::ALL.len()
    );
}

#[test]
fn explain_an_unknown_code_suggests_one() {
    let out = rubric(&["explain", "weight_sum"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("did you mean `rubric::check::weights_sum`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_explanation_names_its_code_and_severity() {
    for code in rubric_compiler::Code::ALL {
        let text = code.explanation();
        let severity = match code.severity() {
            rubric_compiler::Severity::Error => "error",
            rubric_compiler::Severity::Warning => "warning",
        };
        assert!(
            text.starts_with(&format!("# {} ({severity})", code.as_str())),
            "{code}: explanation header"
        );
        assert!(text.contains("## How to fix"), "{code}: no fix section");
    }
}

#[test]
fn codes_are_unique_by_their_short_name() {
    let mut seen = std::collections::BTreeSet::new();
    for code in rubric_compiler::Code::ALL {
        let short = code.as_str().rsplit("::").next().unwrap_or_default();
        assert!(seen.insert(short), "two codes end in `{short}`");
        assert_eq!(rubric_compiler::Code::parse(code.as_str()), Some(*code));
    }
}

#[test]
fn fmt_rewrites_a_file_and_check_reports_it() {
    let (_dir, path) = write_policy(
        "policy p version 1 {\n  entity A { x: number } // the record\n  pair query: A, candidate: A\n  dimension d weight 100% { score = clamp(query.x,0,1) }\n  grade overall { good when overall >= 0.5  poor otherwise }\n}\n",
    );
    let p = path.to_str().unwrap_or_default();
    let check = rubric(&["fmt", "--check", p]);
    assert_eq!(check.status.code(), Some(1));
    assert!(stdout(&check).contains("p.policy"));
    let fmt = rubric(&["fmt", p]);
    assert_eq!(fmt.status.code(), Some(0), "{}", stderr(&fmt));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("// the record"), "{text}");
    assert!(text.contains("clamp(query.x, 0, 1)"), "{text}");
    assert_eq!(rubric(&["fmt", "--check", p]).status.code(), Some(0));
    assert_eq!(rubric(&["check", p]).status.code(), Some(0));
}
