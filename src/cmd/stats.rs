//! `rubric stats --policy P --pairs IN`: labels a dataset and analyses the policy's labeling
//! functions: coverage, means, histograms and grades per dimension, the overall abstain rate and
//! grades, rule fire rates, runtime events and conflicting rules. `--json` for a JSON report.
//! Exit 1 when no pair could be labeled (an empty file, or pairs of another schema).

use super::compile::compile_or_report;
use super::out;
use super::progress::{self, Counted};
use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::ProgressBar;
use rubric_runtime::compile::deterministic_json;
use rubric_runtime::label::engine::Engine;
use rubric_runtime::stats::stats_stream;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy to label with.
    #[arg(long)]
    policy: PathBuf,
    /// Pairs, one JSON object a line (`-` for standard input).
    #[arg(long)]
    pairs: PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    report: ReportArgs,
}

/// Opens a JSON-lines input (`-` for standard input) behind a progress bar of the bytes read
/// (`doing` names the work on the bar); the caller clears the bar when done.
pub fn open_pairs(
    path: &std::path::Path,
    doing: &str,
) -> Result<(Counted<Box<dyn std::io::BufRead>>, ProgressBar), ExitCode> {
    let (input, size): (Box<dyn std::io::BufRead>, Option<u64>) = if path.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), None)
    } else {
        match std::fs::File::open(path) {
            Ok(f) => {
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(BufReader::with_capacity(1 << 20, f)), size)
            }
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", path.display());
                return Err(ExitCode::from(EXIT_USAGE));
            }
        }
    };
    let bar = progress::bar(size, doing);
    Ok((Counted::new(input, bar.clone()), bar))
}

/// Says that no pair of a dataset could be labeled (an empty file, or pairs of another schema),
/// with the first errors: a report of nothing would look like a clean one.
pub fn nothing_labeled(pairs: &std::path::Path, rows: u64, errors: &[String], policies: &str) {
    if rows == 0 {
        eprintln!("error: `{}` holds no pairs", pairs.display());
        eprintln!("help: the pairs are JSON objects, one a line");
        return;
    }
    eprintln!(
        "error: none of the {rows} pair(s) in `{}` could be labeled with {policies}",
        pairs.display()
    );
    for e in errors {
        eprintln!("  {e}");
    }
    eprintln!(
        "help: each pair needs the fields the policy's `pair` declares; `rubric trace --policy P --pair @FILE` shows one pair in detail"
    );
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = Engine::new(compiled.lowered.labeling);
    let (mut input, bar) = match open_pairs(&args.pairs, "analysing") {
        Ok(i) => i,
        Err(code) => return code,
    };
    let result = stats_stream(&engine, &mut input);
    bar.finish_and_clear();
    match result {
        Ok(report) if report.labeled == 0 => {
            nothing_labeled(
                &args.pairs,
                report.pairs,
                &report.unreadable_examples,
                &format!("`{}`", report.policy.name),
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
