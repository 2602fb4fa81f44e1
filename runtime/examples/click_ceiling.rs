//! The ceiling of a click model on a simulated log: the AUC of the simulator's own hidden
//! preference on the held-out impressions, the ones a click teacher is measured on (impressions
//! of the mix's validation pairs in the cleaned log). No model of the log can rank clicks better
//! than the preference that drew them, so the teacher's `click_auc` is read beside it.
//!
//! ```sh
//! cargo run --release -p rubric-runtime --example click_ceiling -- \
//!     examples/job_match/job_match.policy examples/job_match/data/golden.jsonl 7 \
//!     RUN/stages/clean.clicks/KEY/clicks.clean.jsonl RUN/stages/mix/KEY/validation.jsonl
//! ```

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::data::clicks::Click;
use rubric_runtime::data::clicks::simulate::{hidden_preferences, read_pairs};
use rubric_runtime::label::engine::Engine;
use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::PathBuf;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [policy, golden, seed, clicks, validation] = args.as_slice() else {
        return Err("usage: click_ceiling POLICY GOLDEN SEED CLEAN_CLICKS VALIDATION".into());
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
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
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
            labels.push(click.clicked);
        }
    }
    let auc = rubric_ml::metrics::roc_auc(&scores, &labels)
        .ok_or("no held-out impression with both a click and a non-click")?;
    println!(
        "hidden preference (the ceiling): click_auc={auc:.4} on {} held-out impressions ({} clicks)",
        scores.len(),
        labels.iter().filter(|c| **c).count()
    );
    Ok(())
}
