//! `rubric stats`, `rubric diff` and `rubric snapshot` end to end, on pairs drawn from the
//! policy's own schema (2,000 pairs from seed 7: a fixed function of the seed).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::random_pairs::PairGenerator;
use std::path::{Path, PathBuf};
use std::process::Command;

const SEED: u64 = 7;
const PAIRS: usize = 2000;

fn rubric(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `n` pairs drawn for `policy`, as JSON lines.
fn pairs(policy: &Path, seed: u64, n: usize) -> String {
    let compiled = compile_file(policy, &Options::default()).expect("compiles");
    let mut generator = PairGenerator::new(&compiled.lowered.labeling, seed);
    (0..n)
        .map(|_| generator.pair().to_string() + "\n")
        .collect()
}

fn write_pairs(dir: &Path) -> PathBuf {
    let path = dir.join("job_match.pairs.jsonl");
    std::fs::write(
        &path,
        pairs(Path::new("policies/job_match.policy"), SEED, PAIRS),
    )
    .expect("write");
    path
}

/// job_match after an edit: five points of weight moved from industry to skills, and the
/// must-have skills cap fires below 40% coverage (was 50%) at 0.3 (was 0.35).
fn edited_job_match(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string("policies/job_match.policy").expect("read");
    let edits = [
        (
            "dimension skill_match weight 30%",
            "dimension skill_match weight 35%",
        ),
        (
            "dimension industry weight 10%",
            "dimension industry weight 5%",
        ),
        (
            "and coverage(query.required_skills, candidate.skills) < 0.5\n    cap overall at 0.35",
            "and coverage(query.required_skills, candidate.skills) < 0.4\n    cap overall at 0.3",
        ),
    ];
    let mut edited = text.clone();
    for (from, to) in edits {
        assert_eq!(edited.matches(from).count(), 1, "{from}");
        edited = edited.replace(from, to);
    }
    let path = dir.join("job_match.policy");
    std::fs::write(&path, edited).expect("write");
    path
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({snapshot_path => "snapshots/review", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!(name, text);
    });
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn stats_of_job_match() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_pairs(dir.path());
    let (code, stdout, stderr) = rubric(&[
        "stats",
        "--policy",
        "policies/job_match.policy",
        "--pairs",
        s(&data),
    ]);
    assert_eq!(code, 0, "{stderr}");
    snapshot("stats.job_match", &stdout);

    let (code, json, stderr) = rubric(&[
        "stats",
        "--policy",
        "policies/job_match.policy",
        "--pairs",
        s(&data),
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(report["pairs"], PAIRS);
    assert_eq!(report["labeled"], PAIRS);
    assert_eq!(report["dimensions"].as_array().map(Vec::len), Some(9));
    assert_eq!(
        report["dimensions"][0]["histogram"]
            .as_array()
            .map(Vec::len),
        Some(10)
    );
    let grades: u64 = report["overall"]["grades"]
        .as_array()
        .expect("grades")
        .iter()
        .map(|g| g["count"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(
        grades, PAIRS as u64,
        "every pair has one overall grade (or none)"
    );
}

#[test]
fn stats_read_standard_input_and_count_unreadable_rows() {
    let input =
        pairs(Path::new("policies/job_match.policy"), 3, 20) + "{\"id\": \"x\"}\n\nnot json\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args([
            "stats",
            "--policy",
            "policies/job_match.policy",
            "--pairs",
            "-",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("waits");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("pairs: 22 read, 20 labeled, 2 unreadable"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unreadable: line 21: `query`: missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("unreadable: line 23: not valid JSON"),
        "{stdout}"
    );
}

#[test]
fn stats_are_the_same_for_feed_ranking_twice() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("feed.jsonl");
    std::fs::write(
        &path,
        pairs(Path::new("policies/feed_ranking.policy"), SEED, 500),
    )
    .expect("write");
    let a = rubric(&[
        "stats",
        "--policy",
        "policies/feed_ranking.policy",
        "--pairs",
        s(&path),
    ]);
    let b = rubric(&[
        "stats",
        "--policy",
        "policies/feed_ranking.policy",
        "--pairs",
        s(&path),
    ]);
    assert_eq!(a.0, 0, "{}", a.2);
    assert_eq!(a, b);
    assert!(
        a.1.contains("pairs: 500 read, 500 labeled, 0 unreadable"),
        "{}",
        a.1
    );
}

#[test]
fn diff_of_a_job_match_edit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_pairs(dir.path());
    let edited = edited_job_match(dir.path());
    let (code, stdout, stderr) = rubric(&[
        "diff",
        "policies/job_match.policy",
        s(&edited),
        "--pairs",
        s(&data),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains(s(dir.path())),
        "no temp paths in the report"
    );
    snapshot("diff.job_match", &stdout);

    let (code, json, stderr) = rubric(&[
        "diff",
        "policies/job_match.policy",
        s(&edited),
        "--pairs",
        s(&data),
        "--sample",
        "2",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(report["compared"], PAIRS);
    assert_eq!(report["sample"].as_array().map(Vec::len), Some(2));
    let moved: Vec<(String, f64, f64)> = report["dimensions"]
        .as_array()
        .expect("dimensions")
        .iter()
        .filter(|d| d["old_weight"] != d["new_weight"])
        .map(|d| {
            (
                d["name"].as_str().unwrap_or_default().to_string(),
                d["old_weight"].as_f64().unwrap_or(-1.0),
                d["new_weight"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(
        moved,
        [
            ("skill_match".to_string(), 0.3, 0.35),
            ("industry".to_string(), 0.1, 0.05)
        ]
    );
}

#[test]
fn diff_of_a_policy_with_itself_is_empty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_pairs(dir.path());
    let (code, stdout, stderr) = rubric(&[
        "diff",
        "policies/job_match.policy",
        "policies/job_match.policy",
        "--pairs",
        s(&data),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("changed: 0 of 2000 pairs (0.0%)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rules: none changed (7 unchanged)"),
        "{stdout}"
    );
    assert!(stdout.contains("sample: no pair changed"), "{stdout}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

#[test]
fn snapshot_of_a_policy_repository() {
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path().join("policies");
    copy_dir(Path::new("policies"), &repo);
    std::fs::write(
        repo.join("job_match.pairs.jsonl"),
        pairs(Path::new("policies/job_match.policy"), SEED, 300),
    )
    .expect("write");
    // A module beside the policies is skipped.
    std::fs::create_dir_all(repo.join("shared")).expect("mkdir");
    std::fs::write(
        repo.join("shared/helpers.policy"),
        "module helpers {\n  fn half(x: number) -> number = x / 2\n}\n",
    )
    .expect("write");
    let tmp = s(dir.path()).to_string();
    let clean = |text: &str| text.replace(&tmp, "[TMP]");

    let (code, stdout, stderr) = rubric(&["snapshot", s(&repo)]);
    assert_eq!(code, 0, "{stderr}");
    snapshot("snapshot.write", &clean(&stdout));
    for file in [
        "job_match.snap/labeling_program.json",
        "job_match.snap/examples.txt",
        "job_match.snap/stats.txt",
        "feed_ranking.snap/labeling_program.json",
        "feed_ranking.snap/loss_terms.json",
        "feed_ranking.snap/training_plan.json",
        "feed_ranking.snap/examples.txt",
    ] {
        assert!(repo.join(file).is_file(), "{file}");
    }
    assert!(!repo.join("shared/helpers.snap").exists());
    assert!(!repo.join("feed_ranking.snap/stats.txt").exists());
    let examples = std::fs::read_to_string(repo.join("job_match.snap/examples.txt")).expect("read");
    assert!(
        examples.starts_with("pass  ") && examples.contains("  job_match.policy:"),
        "{examples}"
    );

    let (code, stdout, stderr) = rubric(&["snapshot", s(&repo), "--check"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(stdout, "2 policies checked: every snapshot is up to date\n");

    // An edit: the on-site cap goes from 0.3 to 0.25 (and an example now fails); a stale file.
    let policy = repo.join("job_match.policy");
    let text = std::fs::read_to_string(&policy).expect("read");
    assert_eq!(text.matches("cap overall at 0.3\n").count(), 1);
    std::fs::write(
        &policy,
        text.replace("cap overall at 0.3\n", "cap overall at 0.25\n"),
    )
    .expect("write");
    std::fs::write(repo.join("feed_ranking.snap/notes.txt"), "hand-written\n").expect("write");
    let before =
        std::fs::read_to_string(repo.join("job_match.snap/labeling_program.json")).expect("read");
    let (code, stdout, stderr) = rubric(&["snapshot", s(&repo), "--check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    snapshot("snapshot.check_after_edit", &clean(&stdout));
    let after =
        std::fs::read_to_string(repo.join("job_match.snap/labeling_program.json")).expect("read");
    assert_eq!(before, after, "--check writes nothing");
    assert!(repo.join("feed_ranking.snap/notes.txt").exists());

    // Writing brings it up to date again.
    let (code, stdout, stderr) = rubric(&["snapshot", s(&repo)]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        clean(&stdout).contains("removed [TMP]/policies/feed_ranking.snap/notes.txt"),
        "{stdout}"
    );
    let (code, _, _) = rubric(&["snapshot", s(&repo), "--check"]);
    assert_eq!(code, 0);
}

#[test]
fn snapshot_check_fails_on_a_broken_policy_and_a_missing_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("p.policy"),
        "policy p version 1 {\n  entity A { x: number }\n  pair query: A, candidate: A\n  dimension d weight 90% { score = clamp(query.x, 0, 1) }\n}\n",
    )
    .expect("write");
    let (code, stdout, stderr) = rubric(&["snapshot", s(dir.path()), "--check"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stderr.contains("rubric::check::weights_sum"), "{stderr}");
    assert!(stderr.contains("its snapshot is left as it is"), "{stderr}");
    let (code, _, stderr) = rubric(&["snapshot", "/nonexistent/policies", "--check"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("is not a directory"), "{stderr}");
}

/// `diff --pairs -` reads the pairs from standard input: the same report as from the file.
#[test]
fn diff_reads_standard_input() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = write_pairs(dir.path());
    let edited = edited_job_match(dir.path());
    let args = |pairs: &str| {
        vec![
            "diff".to_string(),
            "policies/job_match.policy".to_string(),
            s(&edited).to_string(),
            "--pairs".to_string(),
            pairs.to_string(),
            "--json".to_string(),
        ]
    };
    let (code, from_file, stderr) = rubric(
        &args(s(&data))
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{stderr}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args("-"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let input = std::fs::read(&data).expect("pairs");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        stdin.write_all(&input)
    });
    let out = child.wait_with_output().expect("waits");
    writer.join().expect("joins").expect("writes");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&from_file).expect("JSON");
    assert_eq!(report["compared"], PAIRS);
    assert_eq!(String::from_utf8_lossy(&out.stdout), from_file);
}
