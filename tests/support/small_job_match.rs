//! The job_match example made small for tests of `rubric run`, `rubric train` and `rubric
//! distill`: the first golden pairs and click-log rows, 200 synthetic pairs, and tiny teachers
//! and student (hidden 16, one layer, one or two epochs) in place of the example's, so that a
//! debug build trains them in seconds; and how those tests read a run's lines and edit the
//! policy.

use std::collections::BTreeMap;
use std::path::Path;

/// The example's pipeline with its teachers made tiny; the rest (data, student, quantize,
/// monitor) as shipped.
pub const TINY_TEACHERS: &str = "  teacher policy {
    model encoder { layers 1, hidden 16, heads 2, max_len 48, vocab 400 }
    predicts dimensions, overall, grades
    loss mse
    train { epochs 1, lr 3e-3, batch 16 }
    features [query.seniority, candidate.seniority, query.required_skills, candidate.skills]
  }
  teacher click {
    model encoder { layers 1, hidden 16, heads 2, max_len 48, vocab 400 }
    predicts click
    loss bce
    train { epochs 2, lr 1e-2, batch 32 }
    features [hour_of_day]
  }
";

/// The example's student made tiny (its distillation terms, drift penalty and early stopping as
/// shipped).
pub const TINY_STUDENT: [(&str, &str); 2] = [
    (
        "model encoder { layers 2, hidden 64, heads 4, max_len 96, vocab 4096 }",
        "model encoder { layers 1, hidden 16, heads 2, max_len 48, vocab 400 }",
    ),
    (
        "train { epochs 4, lr 0.002, batch 32, warmup 5% }",
        "train { epochs 2, lr 3e-3, batch 16 }",
    ),
];

/// A project folder holding `job_match.policy` (the example with [`TINY_TEACHERS`],
/// [`TINY_STUDENT`] and 200 synthetic pairs) and the first `golden` pairs and `clicks` rows of
/// its data.
pub fn project(golden: usize, clicks: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string("examples/job_match/job_match.policy").unwrap();
    let small = policy.replace("count 20000", "count 200");
    assert_ne!(small, policy, "the example's synthetic count moved");
    let start = small
        .find("  teacher policy {")
        .expect("the example's policy teacher");
    let end = small
        .find("  /// The served model")
        .or_else(|| small.find("  student {"))
        .expect("the example's student");
    let mut student = small[end..].to_string();
    for (shipped, tiny) in TINY_STUDENT {
        assert!(
            student.contains(shipped),
            "the example's student moved: {shipped}"
        );
        student = student.replacen(shipped, tiny, 1);
    }
    let tiny = format!("{}{TINY_TEACHERS}{student}", &small[..start]);
    std::fs::write(dir.path().join("job_match.policy"), tiny).unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    for (file, lines) in [("golden.jsonl", golden), ("clicks.jsonl", clicks)] {
        let text =
            std::fs::read_to_string(Path::new("examples/job_match/data").join(file)).unwrap();
        let head: String = text.lines().take(lines).map(|l| format!("{l}\n")).collect();
        std::fs::write(dir.path().join("data").join(file), head).unwrap();
    }
    dir
}

/// What happened to each stage in a run's lines: `done`, `skipped`, `not run` or `failed`.
pub fn statuses(stderr: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in stderr.lines() {
        let line = line.trim_start();
        for status in ["done", "skipped", "not run", "failed"] {
            if let Some(rest) = line.strip_prefix(status).filter(|r| r.starts_with("  ")) {
                let stage = rest.split_whitespace().next().unwrap().to_string();
                map.insert(stage, status.to_string());
            }
        }
    }
    map
}

/// The stages with this status, sorted.
pub fn with(statuses: &BTreeMap<String, String>, status: &str) -> Vec<String> {
    statuses
        .iter()
        .filter(|(_, s)| *s == status)
        .map(|(k, _)| k.clone())
        .collect()
}

/// Replaces the first `from` in the project's policy with `to`.
pub fn edit(project: &Path, from: &str, to: &str) {
    let path = project.join("job_match.policy");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "`{from}` is not in the policy");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}
