//! `rubric run` end to end on a small copy of the job_match example: the data stages and the
//! (tiny) teachers run, a second run skips them all, a `///` edit re-runs only the policy
//! document, a weight edit re-runs labeling and what follows it but not cleaning, and runs
//! killed at any point, training included, finish with the bytes of an uninterrupted run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The stages this version runs (the rest are `not run`).
const STAGES: [&str; 9] = [
    "document",
    "label.golden",
    "clean.clicks",
    "synthesize.golden",
    "mix",
    "teacher.policy",
    "teacher.click",
    "distill",
    "quantize",
];

#[path = "support/small_job_match.rs"]
mod small_job_match;

use small_job_match::{edit, with};

/// The job_match example made small: 300 golden pairs, 3,000 click-log rows, 200 synthetic
/// pairs, tiny teachers and student.
fn project() -> tempfile::TempDir {
    small_job_match::project(300, 3000)
}

fn command(project: &Path, run_dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rubric"));
    c.arg("run")
        .arg(project.join("job_match.policy"))
        .arg("--dir")
        .arg(run_dir);
    c
}

fn run(project: &Path, run_dir: &Path) -> Output {
    let out = command(project, run_dir).output().unwrap();
    assert!(
        out.status.success(),
        "rubric run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// What happened to each stage of a run.
fn statuses(out: &Output) -> BTreeMap<String, String> {
    small_job_match::statuses(&String::from_utf8_lossy(&out.stderr))
}

fn sorted(stages: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = stages.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn stages_rerun_only_when_what_they_read_changes() {
    let project = project();
    let runs = project.path().join("runs");

    let first = statuses(&run(project.path(), &runs));
    assert_eq!(with(&first, "done"), sorted(&STAGES), "{first:?}");
    assert_eq!(with(&first, "not run"), sorted(&["evaluate", "monitor"]));

    // Nothing changed: nothing runs.
    let again = statuses(&run(project.path(), &runs));
    assert_eq!(with(&again, "skipped"), sorted(&STAGES), "{again:?}");

    // Prose: only the policy document.
    edit(
        project.path(),
        "/// # Job ↔ candidate match\n",
        "/// # Job ↔ candidate matching\n",
    );
    let prose = statuses(&run(project.path(), &runs));
    assert_eq!(with(&prose, "done"), sorted(&["document"]), "{prose:?}");
    // A comment too.
    edit(
        project.path(),
        "  dimension skill_match",
        "  // the heaviest\n  dimension skill_match",
    );
    let comment = statuses(&run(project.path(), &runs));
    assert_eq!(with(&comment, "done"), sorted(&["document"]), "{comment:?}");

    // Weights: labeling and everything after it, never cleaning.
    edit(
        project.path(),
        "skill_match weight 30%",
        "skill_match weight 25%",
    );
    edit(
        project.path(),
        "seniority weight 15%",
        "seniority weight 20%",
    );
    let weights = statuses(&run(project.path(), &runs));
    assert_eq!(
        with(&weights, "done"),
        sorted(&[
            "document",
            "label.golden",
            "synthesize.golden",
            "mix",
            "teacher.policy",
            "teacher.click",
            "distill",
            "quantize"
        ]),
        "{weights:?}"
    );
    assert_eq!(with(&weights, "skipped"), sorted(&["clean.clicks"]));

    // Each stage's manifest records what evaluation and reports need.
    let latest: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(runs.join("latest.json")).unwrap()).unwrap();
    let mix_dir = runs.join("stages/mix").join(&latest["mix"]);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(mix_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["stage"], "mix");
    assert!(manifest["inputs"]["stage:synthesize.golden/golden.synthetic.jsonl"].is_string());
    assert!(manifest["outputs"]["pool.jsonl"]["rows"].as_u64().unwrap() > 200);
    assert!(manifest["figures"]["validation"].as_f64().unwrap() > 0.0);
    assert!(manifest["seconds"].as_f64().is_some());
}

#[test]
fn one_stage_alone_and_a_failing_stage_name_themselves() {
    let project = project();
    let runs = project.path().join("runs");
    // A stage whose inputs have not run says which to run first.
    let out = command(project.path(), &runs)
        .args(["--stage", "mix"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stage `mix` failed"), "{stderr}");
    assert!(stderr.contains("`label.golden` has not run"), "{stderr}");
    assert!(stderr.contains("--stage mix"), "{stderr}");

    let out = command(project.path(), &runs)
        .args(["--stage", "label.golden"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(with(&statuses(&out), "done"), sorted(&["label.golden"]));

    // A missing input: the stage fails naming itself, the file and the cause; the finished
    // stages are kept.
    std::fs::remove_file(project.path().join("data/golden.jsonl")).unwrap();
    let out = command(project.path(), &runs).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stage `label.golden` failed"), "{stderr}");
    assert!(stderr.contains("golden.jsonl"), "{stderr}");
    assert!(
        stderr.contains("--stage label.golden"),
        "the command that re-runs it alone: {stderr}"
    );
    let kept = std::fs::read_dir(runs.join("stages/label.golden"))
        .unwrap()
        .count();
    assert_eq!(kept, 1, "the finished stage is kept");
}

/// Every file under the run's stages, by relative path; manifests without their timings.
fn contents(runs: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![runs.join("stages")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let mut bytes = std::fs::read(&path).unwrap();
            if path.file_name().is_some_and(|n| n == "manifest.json") {
                let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                v["seconds"] = serde_json::Value::Null;
                v["timings"] = serde_json::Value::Null;
                bytes = v.to_string().into_bytes();
            }
            out.insert(path.strip_prefix(runs).unwrap().to_path_buf(), bytes);
        }
    }
    out
}

fn partial_exists(runs: &Path) -> bool {
    let Ok(stages) = std::fs::read_dir(runs.join("stages")) else {
        return false;
    };
    stages.filter_map(Result::ok).any(|stage| {
        std::fs::read_dir(stage.path()).is_ok_and(|keys| {
            keys.filter_map(Result::ok)
                .any(|k| k.file_name().to_string_lossy().ends_with(".partial"))
        })
    })
}

#[test]
fn a_killed_run_finishes_with_the_bytes_of_an_uninterrupted_one() {
    let project = project();
    let whole = project.path().join("whole");
    run(project.path(), &whole);
    let want = contents(&whole);

    let killed = project.path().join("killed");
    let mut mid_stage = 0;
    // Kill it as soon as a stage is half written, again and again, until a run gets through.
    for _ in 0..12 {
        let mut child = command(project.path(), &killed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success());
                break true;
            }
            if partial_exists(&killed) && start.elapsed() > Duration::from_millis(20) {
                child.kill().unwrap();
                child.wait().unwrap();
                mid_stage += 1;
                break false;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        if finished {
            break;
        }
    }
    assert!(mid_stage >= 1, "no run was caught mid-stage");
    // Whatever the kills left, one more run completes it.
    run(project.path(), &killed);
    assert!(
        !partial_exists(&killed),
        "a half-written stage was left behind"
    );
    let got = contents(&killed);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &want {
        assert!(got[path] == *bytes, "{} differs", path.display());
    }
}
