//! `rubric score MODEL --query Q.json --candidates C.jsonl [--top K]`: ranks candidates for one
//! query with a trained model folder (a quantize or distill stage's `model/`), printing each
//! candidate's predicted dimension scores and grade, best first. Candidates are scored in
//! batches of `--batch`, with a progress bar on large files.

use super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_runtime::encode::PairOf;
use rubric_runtime::scoring::{Precision, Prediction, Scorer};
use serde_json::Value;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model folder (`model/` of a quantize or distill stage).
    model: PathBuf,
    /// The query: one JSON record of the policy's first role.
    #[arg(long, value_name = "FILE")]
    query: PathBuf,
    /// The candidates: JSON lines, one record of the policy's second role a line.
    #[arg(long, value_name = "FILE")]
    candidates: PathBuf,
    /// Print only the best K.
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    top: Option<u64>,
    /// Candidates scored at once.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..))]
    batch: u64,
    /// Score with the f32 weights even where int8 ones are there.
    #[arg(long)]
    f32: bool,
    /// The impression's time (RFC 3339), for a model that reads the hour or the day; without
    /// it those features are zero, as for a pair with no impression.
    #[arg(long, value_name = "TIME")]
    time: Option<String>,
    /// `table` for people, `jsonl` for tools (one ranked candidate a line).
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = ["table", "jsonl"])]
    format: String,
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// The candidates with their line numbers.
fn read_candidates(path: &Path) -> Result<Vec<(usize, Value)>, String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| format!("`{}`, line {}: {e}", path.display(), i + 1))?;
        if !value.is_object() {
            return Err(format!(
                "`{}`, line {}: a candidate is a JSON object (a record)",
                path.display(),
                i + 1
            ));
        }
        out.push((i + 1, value));
    }
    Ok(out)
}

struct Ranked {
    line: usize,
    id: Value,
    prediction: Prediction,
}

/// The model folder's scorer (in f32 with `f32`, else as the folder has it), or the exit
/// status after saying why not.
pub fn load(model: &Path, f32: bool) -> Result<Scorer, ExitCode> {
    Scorer::load(model, f32.then_some(Precision::F32)).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}

pub fn run(args: Args) -> ExitCode {
    let scorer = match load(&args.model, args.f32) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let time = match args
        .time
        .as_deref()
        .map(str::parse::<jiff::Timestamp>)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: `--time`: {e} (an RFC 3339 time such as 2026-12-07T20:00:00Z)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (query, candidates) = match read_json(&args.query)
        .and_then(|q| {
            if q.is_object() {
                Ok(q)
            } else {
                Err(format!(
                    "`{}`: the query is a JSON object (a record)",
                    args.query.display()
                ))
            }
        })
        .and_then(|q| read_candidates(&args.candidates).map(|c| (q, c)))
    {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    let bar = if candidates.len() >= 4 * args.batch as usize {
        let bar = ProgressBar::new(candidates.len() as u64);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("scoring [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Some(bar)
    } else {
        None
    };
    let mut ranked = Vec::with_capacity(candidates.len());
    let mut problems = 0;
    for chunk in candidates.chunks(args.batch as usize) {
        let pairs: Vec<(PairOf<'_>, Option<jiff::Timestamp>)> = chunk
            .iter()
            .map(|(_, c)| (scorer.pair(&query, c), time))
            .collect();
        for ((line, c), result) in chunk.iter().zip(scorer.score(&pairs)) {
            match result {
                Ok(prediction) => ranked.push(Ranked {
                    line: *line,
                    id: c.get("id").cloned().unwrap_or(Value::Null),
                    prediction,
                }),
                Err(e) => {
                    problems += 1;
                    eprintln!("error: `{}`, line {line}: {e}", args.candidates.display());
                }
            }
        }
        if let Some(bar) = &bar {
            bar.inc(chunk.len() as u64);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    ranked.sort_by(|a, b| {
        b.prediction
            .score
            .total_cmp(&a.prediction.score)
            .then(a.line.cmp(&b.line))
    });
    ranked.truncate(args.top.map_or(usize::MAX, |k| k as usize));
    let text = if args.format == "jsonl" {
        jsonl(&ranked)
    } else {
        table(&ranked, &scorer)
    };
    let mut out = std::io::stdout().lock();
    if out.write_all(text.as_bytes()).is_err() {
        return ExitCode::from(EXIT_USAGE);
    }
    if problems > 0 {
        eprintln!("{problems} candidates could not be scored");
        return ExitCode::from(EXIT_PROBLEMS);
    }
    ExitCode::SUCCESS
}

fn jsonl(ranked: &[Ranked]) -> String {
    let mut out = String::new();
    for (i, r) in ranked.iter().enumerate() {
        let scores: serde_json::Map<String, Value> = r
            .prediction
            .scores
            .iter()
            .map(|(n, v)| (n.clone(), Value::from(*v)))
            .collect();
        let line = serde_json::json!({
            "rank": i + 1,
            "line": r.line,
            "id": r.id,
            "score": r.prediction.score,
            "scores": scores,
            "grade": r.prediction.grade,
            "click": r.prediction.click,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

fn table(ranked: &[Ranked], scorer: &Scorer) -> String {
    use std::fmt::Write as _;
    let heads = &scorer.card.heads;
    let mut out = String::new();
    let _ = write!(out, "{:>4}  {:<14} {:>6}", "rank", "candidate", "score");
    for n in &heads.scores {
        let _ = write!(out, " {:>10}", truncate(n, 10));
    }
    if !heads.grades.is_empty() {
        let _ = write!(out, "  {:<10}", "grade");
    }
    if heads.click {
        let _ = write!(out, " {:>6}", "click");
    }
    out.push('\n');
    for (i, r) in ranked.iter().enumerate() {
        let id = match &r.id {
            Value::Null => format!("line {}", r.line),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(
            out,
            "{:>4}  {:<14} {:>6.3}",
            i + 1,
            truncate(&id, 14),
            r.prediction.score
        );
        for (_, v) in &r.prediction.scores {
            let _ = write!(out, " {v:>10.3}");
        }
        if let Some(g) = &r.prediction.grade {
            let _ = write!(out, "  {g:<10}");
        }
        if let Some(c) = r.prediction.click {
            let _ = write!(out, " {c:>6.3}");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} candidates; model `{}` ({}, policy {} v{})",
        ranked.len(),
        scorer.card.name,
        match scorer.precision {
            Precision::Int8 => "int8",
            Precision::F32 => "f32",
        },
        scorer.card.policy.name,
        scorer.card.policy.version
    );
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
