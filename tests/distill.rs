//! `rubric distill` end to end on a small copy of the job_match example (tiny teachers and
//! student): the student is written with its report, the drift penalty's weight is rebalanced
//! on the declared epochs by the documented factor, a student re-run reads the teachers' cached
//! outputs (no teacher scores a row), a larger drift weight lowers measured drift, and the
//! ablations train beside the student and are read back on a second run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/small_job_match.rs"]
mod small_job_match;

use small_job_match::{edit, statuses, with};

/// The tiny student's training, as the support writes it.
const STUDENT_TRAIN: &str = "train { epochs 2, lr 3e-3, batch 16 }";
const DRIFT: &str = "drift penalty 0.5 tolerance 0.05 rebalance every 2 epochs";

fn distill(project: &Path, runs: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .arg("distill")
        .arg(project.join("job_match.policy"))
        .arg("--dir")
        .arg(runs)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rubric distill failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The latest distill stage's folder.
fn distill_dir(runs: &Path) -> PathBuf {
    let latest: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(runs.join("latest.json")).unwrap()).unwrap();
    runs.join("stages/distill").join(&latest["distill"])
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_student_is_distilled_rebalanced_and_reruns_from_the_teachers_cache() {
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    // Four epochs: the weight is rebalanced after the second and the fourth.
    edit(
        project.path(),
        STUDENT_TRAIN,
        "train { epochs 4, lr 3e-3, batch 16 }",
    );
    let out = distill(project.path(), &runs, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = statuses(&stderr);
    assert!(
        with(&first, "done").contains(&"distill".to_string()),
        "{stderr}"
    );
    assert!(!first.contains_key("quantize"), "{stderr}");
    // The table: each teacher, then the student.
    let table = String::from_utf8_lossy(&out.stdout);
    for line in [
        "policy (teacher)",
        "click (teacher)",
        "student",
        "fewer parameters",
    ] {
        assert!(table.contains(line), "{line}: {table}");
    }

    let dir = distill_dir(&runs);
    let report = json(&dir.join("report.json"));
    assert_eq!(report["schema"], "rubric.distill-report/1");
    let card = json(&dir.join("model/rubric.json"));
    assert_eq!(card["name"], "student");
    assert_eq!(card["objective"]["kind"], "student");
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(dir.join("model").join(file).exists(), "{file}");
    }
    let student = &report["student"]["metrics"];
    for metric in [
        "policy_alignment",
        "grade_kappa",
        "ndcg@10",
        "click_auc",
        "blended",
    ] {
        assert!(student[metric].is_number(), "{metric}: {student}");
    }
    // The rebalances: after epochs 2 and 4, the weight times measured / tolerated drift,
    // clamped to [0.5, 2].
    let rebalances = report["rebalances"].as_array().unwrap();
    assert_eq!(
        rebalances
            .iter()
            .map(|r| r["epoch"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 4]
    );
    let mut weight = 0.5;
    for r in rebalances {
        let drift = r["drift"].as_f64().unwrap();
        assert_eq!(r["old_weight"].as_f64().unwrap(), weight);
        let want = weight * (drift / 0.05).clamp(0.5, 2.0);
        let got = r["new_weight"].as_f64().unwrap();
        assert!((got - want).abs() < 1e-9, "{r}: want {want}");
        weight = got;
    }
    // The teachers scored the rows once, into the cache.
    let manifest = json(&dir.join("manifest.json"));
    assert!(manifest["figures"]["teacher_rows_scored"].as_f64().unwrap() > 0.0);
    for t in report["teachers"].as_array().unwrap() {
        assert_eq!(t["cache"]["hit"], false, "{t}");
    }

    // Another student: only the distill stage runs, from the cached outputs.
    edit(
        project.path(),
        "train { epochs 4, lr 3e-3, batch 16 }",
        "train { epochs 2, lr 2e-3, batch 16 }",
    );
    let out = distill(project.path(), &runs, &[]);
    let again = statuses(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(with(&again, "done"), ["distill"], "{again:?}");
    let dir = distill_dir(&runs);
    let manifest = json(&dir.join("manifest.json"));
    assert_eq!(manifest["figures"]["teacher_rows_scored"], 0.0);
    let report = json(&dir.join("report.json"));
    for t in report["teachers"].as_array().unwrap() {
        assert_eq!(t["cache"]["hit"], true, "{t}");
    }
    assert_eq!(report["rebalances"].as_array().unwrap().len(), 1);
}

#[test]
fn a_larger_drift_weight_holds_the_student_closer_to_the_policy_teacher() {
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    let drift_at = |weight: &str, from: &str| -> f64 {
        edit(
            project.path(),
            from,
            &format!("drift penalty {weight} tolerance 0"),
        );
        distill(project.path(), &runs, &[]);
        let report = json(&distill_dir(&runs).join("report.json"));
        report["student"]["metrics"]["drift_penalty.drift"]
            .as_f64()
            .unwrap()
    };
    let free = drift_at("0", DRIFT);
    let held = drift_at("20", "drift penalty 0 tolerance 0");
    assert!(held < free, "drift {held} with weight 20, {free} with none");
}

#[test]
fn a_student_learns_the_ground_truth_where_the_pipeline_asks() {
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    edit(
        project.path(),
        DRIFT,
        &format!(
            "learn rubric weight 0.5 loss mse\n    learn clicks weight 0.2 loss bce\n    {DRIFT}"
        ),
    );
    distill(project.path(), &runs, &[]);
    let report = json(&distill_dir(&runs).join("report.json"));
    let learned: Vec<&Value> = report["objective"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["term"] == "learn")
        .collect();
    assert_eq!(learned.len(), 2, "{}", report["objective"]);
    assert_eq!(learned[0]["labels"]["kind"], "rubric");
    assert_eq!(learned[0]["weight"], 0.5);
    assert_eq!(learned[1]["labels"]["source"], "clicks");
    // The student learned the log's clicks through a bias per position (a student that only
    // distills the click teacher has none).
    let weights = std::fs::read(distill_dir(&runs).join("model/model.safetensors")).unwrap();
    let header = String::from_utf8_lossy(&weights[..8192.min(weights.len())]).to_string();
    assert!(header.contains("training.position_bias"), "{header}");
    assert!(report["student"]["metrics"]["click_auc"].is_number());
}

#[test]
fn unlabeled_pairs_are_scored_by_the_teachers_and_learned_by_the_student() {
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    // Pairs of the example the project's golden set does not hold, with no label.
    let golden = std::fs::read_to_string("examples/job_match/data/golden.jsonl").unwrap();
    let extra = |from: usize, n: usize| -> String {
        golden
            .lines()
            .skip(from)
            .take(n)
            .map(|l| format!("{l}\n"))
            .collect()
    };
    let file = project.path().join("data/extra.jsonl");
    std::fs::write(&file, extra(300, 40)).unwrap();
    edit(
        project.path(),
        "    golden \"data/golden.jsonl\"",
        "    golden \"data/golden.jsonl\"\n    unlabeled extra \"data/extra.jsonl\"",
    );
    let rows = |runs: &Path| {
        let report = json(&distill_dir(runs).join("report.json"));
        let manifest = json(&distill_dir(runs).join("manifest.json"));
        (
            report["rows"].clone(),
            manifest["figures"]["unlabeled_rows"].clone(),
            manifest["figures"]["teacher_rows_scored"].clone(),
        )
    };
    distill(project.path(), &runs, &[]);
    let (first, figure, _) = rows(&runs);
    assert_eq!(first["unlabeled"], 40, "{first}");
    assert_eq!(figure, 40.0);

    // Other unlabeled pairs: the teachers score the rows again (their cache is keyed by them).
    std::fs::write(&file, extra(340, 50)).unwrap();
    distill(project.path(), &runs, &[]);
    let (second, _, scored) = rows(&runs);
    assert_eq!(second["unlabeled"], 50, "{second}");
    assert_eq!(
        second["train"].as_u64().unwrap(),
        first["train"].as_u64().unwrap() + 10
    );
    assert!(scored.as_f64().unwrap() > 0.0, "{scored}");
}

#[test]
fn ablations_train_beside_the_student_and_are_read_back() {
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    let out = distill(project.path(), &runs, &["--ablations"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let dir = distill_dir(&runs).with_extension("ablations");
    let report = json(&dir.join("ablations.json"));
    let students: Vec<&str> = report["students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["variant"].as_str().unwrap())
        .collect();
    assert_eq!(
        students,
        [
            "full",
            "policy_only",
            "click_only",
            "no_drift",
            "no_synthetic",
            "no_temporal",
            "labels_only"
        ]
    );
    // The tiny click teacher reads the hour: it is a temporal teacher too.
    assert_eq!(report["skipped"], Value::Array(Vec::new()));
    for s in &students[1..] {
        assert!(table.contains(&format!("\n{s:<18}")), "{s}: {table}");
    }
    assert!(report["multi_teacher_gain"].is_number(), "{report}");
    // The table names the single-teacher student the gain is measured against.
    assert!(
        ["policy_only", "click_only"]
            .iter()
            .any(|v| table.contains(&format!("against `{v}`'s, the best single-teacher"))),
        "{table}"
    );
    // A single-teacher student of policy has no click head: it is ranked by its overall score.
    let policy_only = &report["students"][1]["metrics"];
    assert!(policy_only["click_auc"].is_null());
    assert!(
        policy_only["click_auc_by_overall"].is_number(),
        "{policy_only}"
    );

    // A second run trains nothing.
    let out = distill(project.path(), &runs, &["--ablations"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains(" epoch "), "{stderr}");
    assert_eq!(json(&dir.join("ablations.json")), report);

    // One ablation by name: read back too.
    let out = distill(project.path(), &runs, &["--ablation", "click_only"]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains(" epoch "));
    let one = json(&dir.join("ablations.json"));
    let variants: Vec<&str> = one["students"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["variant"].as_str().unwrap())
        .collect();
    assert_eq!(variants, ["full", "click_only"]);
    assert_eq!(one["students"][1], report["students"][2]);
    let wrong = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(["distill", "x.policy", "--ablation", "no_teachers"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("labels_only"));
}
