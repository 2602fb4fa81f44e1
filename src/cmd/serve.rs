//! `rubric serve MODEL --addr 127.0.0.1:PORT`: the ranking service (`rubric-serve`) over a
//! trained model folder, int8 where the folder has int8 weights. A pair's impression time is
//! the request's `time`, or the time it arrived: a model that reads the hour or the day sees the
//! hour it serves.

use super::EXIT_USAGE;
use rayon::prelude::*;
use rubric_runtime::scoring::{Precision, Scorer};
use rubric_serve::{ModelInfo, PairRequest, Prediction, Ranker, ServeConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The model folder (`model/` of a quantize or distill stage).
    model: PathBuf,
    /// Where to listen (a loopback address unless `--allow-non-loopback`).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Listen on an address other hosts can reach.
    #[arg(long)]
    allow_non_loopback: bool,
    /// Most candidates in one `/v1/rank` request.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    max_candidates: usize,
    /// Requests waiting for the model; one more is answered 503 at once.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// Most pairs scored in one model call (requests of several clients share it).
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_batch: usize,
    /// Milliseconds the model waits for other clients' requests to fill a batch.
    #[arg(long, value_name = "MS", default_value_t = 1.0)]
    batch_wait_ms: f64,
    /// Append one JSON line per scored pair here (docs/serving.md).
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,
    /// Serve the f32 weights even where int8 ones are there.
    #[arg(long)]
    f32: bool,
}

/// A model folder as the service's model.
struct FolderRanker {
    scorer: Scorer,
    /// The threads a batch is scored on. The model thread hands each batch to one of them
    /// (`install`), so the batch's sequential steps run on a pool thread too: scored from the
    /// model thread itself, the pool's idle threads spun beside it, three busy threads on two
    /// cores, and a ranking's 99th percentile was about twice its median (BENCHMARKS.md).
    pool: rayon::ThreadPool,
}

impl Ranker for FolderRanker {
    fn info(&self) -> ModelInfo {
        let card = &self.scorer.card;
        ModelInfo {
            name: card.name.clone(),
            policy: card.policy.name.clone(),
            policy_hash: card.policy.hash.clone(),
            version: self.scorer.version.clone(),
            quantized: self.scorer.precision == Precision::Int8,
        }
    }

    fn score(&self, pairs: &[PairRequest]) -> Vec<Result<Prediction, String>> {
        self.pool.install(|| self.score_here(pairs))
    }
}

impl FolderRanker {
    fn score_here(&self, pairs: &[PairRequest]) -> Vec<Result<Prediction, String>> {
        let now = jiff::Timestamp::now();
        // Each pair's records (borrowed: the query's is shared) and time.
        let (times, built): (Vec<Result<(), String>>, Vec<_>) = pairs
            .par_iter()
            .map(|p| {
                let time = match p.time.as_deref().map(str::parse::<jiff::Timestamp>) {
                    Some(Ok(t)) => Ok(t),
                    Some(Err(e)) => Err(format!("`time`: {e}")),
                    None => Ok(now),
                };
                (
                    time.clone().map(|_| ()),
                    (self.scorer.pair(&p.query, &p.candidate), time.ok()),
                )
            })
            .unzip();
        self.scorer
            .score(&built)
            .into_iter()
            .zip(times)
            .map(|(scored, time)| {
                time?;
                let p = scored?;
                Ok(Prediction {
                    score: p.score as f32,
                    scores: p.scores.into_iter().map(|(n, v)| (n, v as f32)).collect(),
                    grade: p.grade,
                    click: p.click.map(|c| c as f32),
                })
            })
            .collect()
    }
}

pub fn run(args: Args) -> ExitCode {
    let scorer = match super::score::load(&args.model, args.f32) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if !args.addr.ip().is_loopback() && !args.allow_non_loopback {
        eprintln!(
            "error: `--addr {}` is reachable from other hosts; serve on a loopback address \
             (127.0.0.1) or pass `--allow-non-loopback`",
            args.addr
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let config = ServeConfig {
        addr: args.addr,
        allow_non_loopback: args.allow_non_loopback,
        max_candidates: args.max_candidates,
        queue_capacity: args.queue,
        max_batch_pairs: args.max_batch,
        batch_wait: Duration::from_secs_f64(args.batch_wait_ms.max(0.0) / 1000.0),
        request_log: args.request_log,
        ..ServeConfig::default()
    };
    let pool = match rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("rubric-score-{i}"))
        .build()
    {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("error: cannot start the scoring threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rubric_serve::run(Arc::new(FolderRanker { scorer, pool }), config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
