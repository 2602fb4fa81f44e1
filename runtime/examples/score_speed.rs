//! The time to rank one query's candidates with a model folder, without HTTP: each pair's record
//! built as the service builds it, then `Scorer::score` (texts, features, word pieces, the
//! forward pass, the predictions) inside a rayon pool, as `rubric serve` runs it, or with
//! `--caller-thread` from a thread outside the pool. Prints the median and the 99th percentile
//! of each part over the iterations of `--seconds`, as one JSON line. What `rubric serve` adds
//! on top (JSON in and out, the queue) is the rest of its latency (`serve/examples/load.rs`).
//!
//! ```sh
//! cargo run --release -p rubric-runtime --example score_speed -- MODEL_DIR \
//!     --query Q.json --candidates C.jsonl [--n 100] [--seconds 5] [--caller-thread]
//! ```

use rubric_runtime::encode::PairOf;
use rubric_runtime::scoring::Scorer;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error>;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

fn main() -> Result<(), Failure> {
    // Freed memory kept, as `rubric` keeps it.
    rubric_ml::process::keep_freed_memory();
    let mut args = std::env::args().skip(1);
    let (mut model, mut query, mut candidates) = (None, None, None);
    let (mut n, mut seconds, mut caller_thread) = (100usize, 5.0f64, false);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--query" => query = Some(PathBuf::from(value()?)),
            "--candidates" => candidates = Some(PathBuf::from(value()?)),
            "--n" => n = value()?.parse()?,
            "--seconds" => seconds = value()?.parse()?,
            "--caller-thread" => caller_thread = true,
            other if !other.starts_with("--") => model = Some(PathBuf::from(other)),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    let usage = "usage: score_speed MODEL_DIR --query Q.json --candidates C.jsonl [--n 100] \
                 [--seconds 5] [--caller-thread]";
    let (Some(model), Some(query), Some(candidates)) = (model, query, candidates) else {
        return Err(usage.into());
    };
    let scorer = Scorer::load(&model, None)?;
    let query: Value = serde_json::from_str(&std::fs::read_to_string(&query)?)?;
    let candidates: Vec<Value> = std::fs::read_to_string(&candidates)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(n)
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let pool = rayon::ThreadPoolBuilder::new().build()?;
    let (mut build, mut score) = (Vec::new(), Vec::new());
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < budget || runs < 10 {
        let t0 = Instant::now();
        let pairs: Vec<(PairOf<'_>, Option<jiff::Timestamp>)> = candidates
            .iter()
            .map(|c| (scorer.pair(&query, c), None))
            .collect();
        let t1 = Instant::now();
        let predictions = if caller_thread {
            scorer.score(&pairs)
        } else {
            pool.install(|| scorer.score(&pairs))
        };
        let t2 = Instant::now();
        if let Some(Err(e)) = predictions.iter().find(|p| p.is_err()) {
            return Err(e.clone().into());
        }
        if runs >= 3 {
            build.push((t1 - t0).as_secs_f64() * 1e3);
            score.push((t2 - t1).as_secs_f64() * 1e3);
        }
        runs += 1;
    }
    for v in [&mut build, &mut score] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "{}",
        serde_json::json!({
            "candidates": candidates.len(),
            "runs": build.len(),
            "threads": rayon::current_num_threads(),
            "precision": scorer.precision,
            "caller_thread": caller_thread,
            "build_p50_ms": percentile(&build, 0.5),
            "build_p99_ms": percentile(&build, 0.99),
            "score_p50_ms": percentile(&score, 0.5),
            "score_p99_ms": percentile(&score, 0.99),
        })
    );
    Ok(())
}
