//! `rubric diff OLD.policy NEW.policy --pairs IN`: the review of a policy edit. Labels the same
//! pairs with both versions and reports the changes of overall scores and grades (a transition
//! matrix), per-dimension shifts, rules that fire on other pairs, and explains a sample of the
//! changed pairs (`--sample N`, the largest changes first). `--json` for a JSON report. Exit 1
//! when no pair could be labeled by both versions.

use super::compile::compile_or_report;
use super::out;
use super::report::ReportArgs;
use super::stats::{nothing_labeled, open_pairs};
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_runtime::compile::deterministic_json;
use rubric_runtime::diff::{DEFAULT_SAMPLE, diff_stream};
use rubric_runtime::label::engine::Engine;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy before the edit.
    old: PathBuf,
    /// The policy after the edit.
    new: PathBuf,
    /// Pairs, one JSON object a line (`-` for standard input).
    #[arg(long)]
    pairs: PathBuf,
    /// How many changed pairs to explain (grade changes first, then the largest changes of the
    /// overall score, ties by id).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_SAMPLE)]
    sample: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let old = match compile_or_report(&args.old, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let new = match compile_or_report(&args.new, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let old = Engine::new(old.lowered.labeling);
    let new = Engine::new(new.lowered.labeling);
    let (mut input, bar) = match open_pairs(&args.pairs, "comparing") {
        Ok(i) => i,
        Err(code) => return code,
    };
    let result = diff_stream(&old, &new, &mut input, args.sample);
    bar.finish_and_clear();
    match result {
        Ok(report) if report.compared == 0 => {
            nothing_labeled(
                &args.pairs,
                report.pairs,
                &report.unreadable_examples,
                "both versions of the policy",
            );
            ExitCode::from(EXIT_PROBLEMS)
        }
        Ok(report) => {
            if args.json {
                out::print(deterministic_json(&report));
            } else {
                out::print(report.to_text());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: reading `{}`: {e}", args.pairs.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
