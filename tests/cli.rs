//! The `rubric` binary end to end: exit statuses, the three error formats, `explain`; `compile`
//! writing its artefacts and source map; `label` with its summary, quarantine and `-` streams.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

#[path = "support/cli.rs"]
mod cli;
use cli::{rubric, stderr, stdout};

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

// ---------------------------------------------------------------------------------------------
// `rubric compile` and `rubric label`

const JOB_MATCH: &str = "policies/job_match.policy";

/// Runs `rubric` with `input` on its standard input.
fn rubric_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the rubric binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from a thread so that a child that writes before reading everything cannot block.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    out
}

#[test]
fn compile_writes_the_artefacts_and_a_source_map_pointing_into_the_policy() {
    use rubric_runtime::compile::{compile_file, deterministic_json};
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    let out = rubric(&["compile", JOB_MATCH, "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let names = [
        "labeling_program.json",
        "loss_terms.json",
        "training_plan.json",
        "source_map.json",
    ];
    let wrote: Vec<String> = names
        .iter()
        .map(|n| format!("wrote {}", out_dir.join(n).display()))
        .collect();
    assert_eq!(stderr(&out).lines().collect::<Vec<_>>(), wrote);
    // What the library lowers, byte for byte (its content is snapshotted in tests/artefacts.rs).
    let lowered = compile_file(
        std::path::Path::new(JOB_MATCH),
        &rubric_compiler::Options::default(),
    )
    .unwrap()
    .lowered;
    let read = |n: &str| std::fs::read_to_string(out_dir.join(n)).unwrap();
    assert_eq!(read(names[0]), deterministic_json(&lowered.labeling));
    assert_eq!(
        read(names[1]),
        deterministic_json(lowered.loss_terms.as_ref().unwrap())
    );
    assert_eq!(
        read(names[2]),
        deterministic_json(lowered.training_plan.as_ref().unwrap())
    );
    assert_eq!(read(names[3]), deterministic_json(&lowered.source_map));
    // The source map points into the policy: the first dimension's node spans its name.
    let program: serde_json::Value = serde_json::from_str(&read(names[0])).unwrap();
    let map: serde_json::Value = serde_json::from_str(&read(names[3])).unwrap();
    assert_eq!(map["files"][0], JOB_MATCH);
    let node = &map["nodes"]["dimensions[0]"];
    assert_eq!(node["file"], 0);
    let at = |k: &str| node[k].as_u64().unwrap() as usize;
    let text = std::fs::read_to_string(JOB_MATCH).unwrap();
    let line = text.lines().nth(at("line") - 1).unwrap();
    let name = line.get(at("column") - 1..at("end_column") - 1).unwrap();
    assert_eq!(name, program["dimensions"][0]["name"].as_str().unwrap());

    // Without a pipeline: the labeling program and the source map only.
    let (_p, path) = write_policy(CLEAN);
    let plain = dir.path().join("plain");
    let out = rubric(&[
        "compile",
        path.to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut files: Vec<String> = std::fs::read_dir(&plain)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["labeling_program.json", "source_map.json"]);

    // A policy with errors writes nothing and exits 1; an unwritable folder exits 2.
    let (_p, broken) = write_policy(&CLEAN.replace("weight 100%", "weight 90%"));
    let none = dir.path().join("none");
    let out = rubric(&[
        "compile",
        broken.to_str().unwrap(),
        "--out",
        none.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("fix them before compiling"));
    assert!(!none.exists());
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = rubric(&[
        "compile",
        JOB_MATCH,
        "--out",
        file.join("under").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot write to"), "{}", stderr(&out));
}

#[test]
fn label_reports_quarantines_and_streams_through_standard_input_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let golden = std::fs::read_to_string("examples/job_match/data/golden.jsonl").unwrap();
    let good: Vec<&str> = golden.lines().take(20).collect();
    let good_text = good.join("\n") + "\n";
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(&pairs, &good_text).unwrap();
    let labels = dir.path().join("labels.jsonl");
    let p = |path: &std::path::Path| path.to_str().unwrap().to_string();
    let label = |pairs: &str, out: &str, extra: &[&str]| {
        let mut args = vec![
            "label", "--policy", JOB_MATCH, "--pairs", pairs, "--out", out,
        ];
        args.extend_from_slice(extra);
        rubric(&args)
    };

    // Clean rows: exit 0, one label a row, the summary line.
    let o = label(&p(&pairs), &p(&labels), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("labeled 20 of 20 rows with `job_match` (0 quarantined)"),
        "{}",
        stderr(&o)
    );
    let from_file = std::fs::read(&labels).unwrap();
    assert_eq!(from_file.iter().filter(|b| **b == b'\n').count(), 20);

    // `--pairs -` and `--out -`: the same labels through standard input and output.
    let o = rubric_with_stdin(
        &["label", "--policy", JOB_MATCH, "--pairs", "-", "--out", "-"],
        good_text.as_bytes(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(o.stdout, from_file, "standard output holds the labels");
    assert!(
        stderr(&o).contains("labeled 20 of 20 rows"),
        "{}",
        stderr(&o)
    );

    // Two bad rows (lines 4 and 13): without a quarantine the run stops at the first, exit 1.
    let mut rows: Vec<String> = good.iter().map(|s| s.to_string()).collect();
    rows.insert(3, "{\"query\": ".to_string());
    rows.insert(12, "[1, 2]".to_string());
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, rows.join("\n") + "\n").unwrap();
    let o = label(&p(&bad), &p(&labels), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("line 4"), "{}", stderr(&o));
    assert!(stderr(&o).contains("--quarantine FILE"), "{}", stderr(&o));

    // With `--quarantine`: every good row labeled, the bad ones set aside with their lines,
    // rows = labeled + quarantined in the summary, and exit 1 because rows were set aside.
    let quarantine = dir.path().join("quarantine.jsonl");
    let o = label(&p(&bad), &p(&labels), &["--quarantine", &p(&quarantine)]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("labeled 20 of 22 rows with `job_match` (2 quarantined)"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&labels).unwrap(), from_file);
    let set_aside: Vec<serde_json::Value> = std::fs::read_to_string(&quarantine)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let lines: Vec<u64> = set_aside
        .iter()
        .map(|q| q["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [4, 13]);
    assert_eq!(set_aside[0]["row"], "{\"query\": ");
    assert_eq!(set_aside[1]["row"], "[1, 2]");
}

// ---------------------------------------------------------------------------------------------
// Flags

#[test]
fn color_always_colours_and_never_or_auto_off_a_terminal_does_not() {
    let (_dir, path) = write_policy(&CLEAN.replace("weight 100%", "weight 90%"));
    let p = path.to_str().unwrap();
    let esc = |o: &Output| stderr(o).contains('\u{1b}');
    let always = rubric(&["check", "--color", "always", p]);
    assert_eq!(always.status.code(), Some(1));
    assert!(esc(&always), "{}", stderr(&always));
    for color in ["never", "auto"] {
        let o = rubric(&["check", "--color", color, p]);
        assert_eq!(o.status.code(), Some(1));
        assert!(!esc(&o), "--color {color}: {}", stderr(&o));
        assert!(stderr(&o).contains("rubric::check::"), "{}", stderr(&o));
    }
    assert_eq!(
        rubric(&["check", "--color", "sometimes", p]).status.code(),
        Some(2)
    );
}

#[test]
fn max_file_bytes_and_max_depth_set_the_limits() {
    let (_dir, path) =
        write_policy(&CLEAN.replace("clamp(query.x, 0, 1)", "clamp(((((query.x)))), 0, 1)"));
    let p = path.to_str().unwrap();
    assert_eq!(rubric(&["check", p]).status.code(), Some(0));
    let size = std::fs::metadata(&path).unwrap().len();
    let at = rubric(&["check", "--max-file-bytes", &size.to_string(), p]);
    assert_eq!(at.status.code(), Some(0), "{}", stderr(&at));
    let under = rubric(&["check", "--max-file-bytes", &(size - 1).to_string(), p]);
    assert_eq!(under.status.code(), Some(1));
    assert!(
        stderr(&under).contains("rubric::syntax::too_large"),
        "{}",
        stderr(&under)
    );
    let shallow = rubric(&["check", "--max-depth", "3", p]);
    assert_eq!(shallow.status.code(), Some(1));
    assert!(
        stderr(&shallow).contains("rubric::syntax::too_deep"),
        "{}",
        stderr(&shallow)
    );
    let deep = rubric(&["check", "--max-depth", "64", p]);
    assert_eq!(deep.status.code(), Some(0), "{}", stderr(&deep));
    assert_eq!(
        rubric(&["check", "--max-depth", "-1", p]).status.code(),
        Some(2)
    );
}

#[test]
fn a_min_coverage_that_is_not_a_percent_is_a_usage_error() {
    for bad in ["abc", "1e2", "12,5", ""] {
        let o = rubric(&["test", JOB_MATCH, "--min-coverage", bad]);
        assert_eq!(o.status.code(), Some(2), "--min-coverage {bad:?}");
        assert!(
            stderr(&o).contains(&format!(
                "`--min-coverage {bad}`: it is not a percent like `95` or `87.5`"
            )),
            "{}",
            stderr(&o)
        );
    }
    // The shipped policy's examples reach every clause; a percent sign is accepted.
    for good in ["100", "100%", "99.5"] {
        let o = rubric(&["test", JOB_MATCH, "--min-coverage", good]);
        assert_eq!(o.status.code(), Some(0), "{good}: {}", stderr(&o));
    }
}
