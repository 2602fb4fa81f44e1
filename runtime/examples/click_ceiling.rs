//! The ceiling of a click model on a simulated log: the AUC of the simulator's own hidden
//! preference on the held-out impressions, the ones a click teacher is measured on (impressions
//! of the mix's validation pairs in the cleaned log). No model of the log can rank clicks better
//! than the preference that drew them, so the teacher's `click_auc` is read beside it. A log
//! simulated with `--time-of-day STRENGTH` (the shipped one: 0.8) was also drawn from the hour:
//! pass the strength, and the ceiling is the click logit without its position term,
//! `CLICK_SLOPE * preference + time_of_day_logit(STRENGTH, ts)`, printed beside each part alone.
//!
//! ```sh
//! cargo run --release -p rubric-runtime --example click_ceiling -- \
//!     examples/job_match/job_match.policy examples/job_match/data/golden.jsonl 7 \
//!     RUN/stages/clean.clicks/KEY/clicks.clean.jsonl RUN/stages/mix/KEY/validation.jsonl 0.8
//! ```

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::data::clicks::Click;
use rubric_runtime::data::clicks::simulate::{
    CLICK_SLOPE, hidden_preferences, read_pairs, time_of_day_logit,
};
use rubric_runtime::label::engine::Engine;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::PathBuf;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (policy, golden, seed, clicks, validation, strength) = match args.as_slice() {
        [p, g, s, c, v] => (p, g, s, c, v, 0.0),
        [p, g, s, c, v, t] => (p, g, s, c, v, t.parse().map_err(|e| format!("`{t}`: {e}"))?),
        _ => {
            return Err(
                "usage: click_ceiling POLICY GOLDEN SEED CLEAN_CLICKS VALIDATION [STRENGTH]".into(),
            );
        }
    };
    let compiled = compile_file(&PathBuf::from(policy), &Options::default())
        .map_err(|e| format!("`{policy}`: {e}"))?;
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let seed: u64 = seed.parse().map_err(|e| format!("seed `{seed}`: {e}"))?;
    let mut input = std::io::BufReader::new(std::fs::File::open(golden)?);
    let pairs = read_pairs(&engine, &mut input).map_err(|e| format!("`{golden}`: {e}"))?;
    let preference: HashMap<(String, String), f64> = pairs
        .iter()
        .zip(hidden_preferences(&pairs, seed))
        .map(|(p, v)| ((p.query_id.clone(), p.candidate_id.clone()), v))
        .collect();
    let mut held: HashSet<(String, String)> = HashSet::new();
    for line in std::io::BufReader::new(std::fs::File::open(validation)?).lines() {
        let row: serde_json::Value = serde_json::from_str(&line?)?;
        if let (Some(q), Some(c)) = (row["query_id"].as_str(), row["candidate_id"].as_str()) {
            held.insert((q.to_string(), c.to_string()));
        }
    }
    let (mut scores, mut hours, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    for (i, line) in std::io::BufReader::new(std::fs::File::open(clicks)?)
        .lines()
        .enumerate()
    {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let click = Click::parse(i as u64 + 1, &line).map_err(|e| format!("`{clicks}`, {e}"))?;
        let key = (click.query_id, click.candidate_id);
        if held.contains(&key)
            && let Some(p) = preference.get(&key)
        {
            scores.push(*p);
            hours.push(time_of_day_logit(strength, click.ts));
            labels.push(click.clicked);
        }
    }
    let auc = |scores: &[f64]| {
        rubric_ml::metrics::roc_auc(scores, &labels)
            .ok_or("no held-out impression with both a click and a non-click")
    };
    let of = format!(
        "on {} held-out impressions ({} clicks)",
        scores.len(),
        labels.iter().filter(|c| **c).count()
    );
    if strength == 0.0 {
        println!(
            "hidden preference (the ceiling): click_auc={:.4} {of}",
            auc(&scores)?
        );
        return Ok(());
    }
    let both: Vec<f64> = scores
        .iter()
        .zip(&hours)
        .map(|(p, h)| CLICK_SLOPE * p + h)
        .collect();
    println!(
        "hidden preference alone: click_auc={:.4} {of}",
        auc(&scores)?
    );
    println!("time of day alone: click_auc={:.4}", auc(&hours)?);
    println!(
        "hidden preference and time of day (the ceiling): click_auc={:.4}",
        auc(&both)?
    );
    Ok(())
}
