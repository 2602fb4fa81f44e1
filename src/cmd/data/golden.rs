//! `rubric data golden`: builds a golden set of job/candidate pairs from O*NET 29.3 and
//! SkillSpan, labeled by the policy and sampled across its grades; writes `OUT/golden.jsonl` and
//! prints a summary.

use super::super::compile::compile_or_report;
use super::super::files;
use super::super::report::ReportArgs;
use super::super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_runtime::data::golden::{GoldenError, GoldenOptions, Progress, build_golden};
use rubric_runtime::label::engine::Engine;
use std::path::PathBuf;
use std::process::ExitCode;

/// The file written in `--out`.
pub const GOLDEN_FILE: &str = "golden.jsonl";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The O*NET 29.3 database folder (tab-separated text files).
    #[arg(long)]
    onet: PathBuf,
    /// The SkillSpan folder (`train.json`, `dev.json`, `test.json`).
    #[arg(long)]
    skillspan: PathBuf,
    /// The policy that labels the pairs (its `Job` and `Candidate` entities shape the records).
    #[arg(long)]
    policy: PathBuf,
    /// Seed of the random stream: the same seed gives the same bytes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// How many pairs to write.
    #[arg(long, default_value_t = 3000)]
    pairs: usize,
    /// The folder to write `golden.jsonl` into (created if needed).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = Engine::new(compiled.lowered.labeling);
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create `{}`: {e}", args.out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let path = args.out.join(GOLDEN_FILE);
    let mut out = match files::create(&path) {
        Ok(out) => out,
        Err(code) => return code,
    };
    let bar = ProgressBar::new(args.pairs as u64);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} pairs")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let result = build_golden(
        &args.onet,
        &args.skillspan,
        &engine,
        GoldenOptions {
            seed: args.seed,
            pairs: args.pairs,
        },
        &mut out,
        &mut |p| match p {
            Progress::Reading(file) => bar.set_message(format!("reading {file}")),
            Progress::Sampling { kept, .. } => {
                bar.set_message("sampling");
                bar.set_position(kept as u64);
            }
        },
    );
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            if let Err(code) = files::commit(out) {
                return code;
            }
            print!("{}", summary.report());
            eprintln!("wrote {}", path.display());
            if summary.pairs < args.pairs {
                eprintln!(
                    "warning: only {} of the {} pairs asked for could be drawn",
                    summary.pairs, args.pairs
                );
            }
            ExitCode::SUCCESS
        }
        Err(e @ (GoldenError::Io(_) | GoldenError::NoOccupations)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}
