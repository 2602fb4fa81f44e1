//! The job_match example made small for tests of `rubric run` and `rubric train`: the first
//! golden pairs and click-log rows, 200 synthetic pairs, and tiny teachers (hidden 16, one layer,
//! one epoch) in place of the example's, so that a debug build trains them in seconds.

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

/// A project folder holding `job_match.policy` (the example with [`TINY_TEACHERS`] and 200
/// synthetic pairs) and the first `golden` pairs and `clicks` rows of its data.
pub fn project(golden: usize, clicks: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let policy = std::fs::read_to_string("examples/job_match/job_match.policy").unwrap();
    let small = policy.replace("count 20000", "count 200");
    assert_ne!(small, policy, "the example's synthetic count moved");
    let start = small
        .find("  teacher policy {")
        .expect("the example's policy teacher");
    let end = small.find("  student {").expect("the example's student");
    let tiny = format!("{}{TINY_TEACHERS}{}", &small[..start], &small[end..]);
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
