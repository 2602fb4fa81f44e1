//! `rubric trace --policy P --pair JSON`: labels one pair and explains every value, pointing at
//! the policy's lines.

use super::compile::compile_or_report;
use super::out;
use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_runtime::label::engine::Engine;
use rubric_runtime::trace::trace_pair;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long)]
    policy: PathBuf,
    /// The pair as a JSON object, or `@FILE` to read it from a file.
    #[arg(long)]
    pair: String,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let text = match args.pair.strip_prefix('@') {
        // One pair: a record of 16 MiB is far past any real one.
        Some(path) => match super::files::read_bounded(std::path::Path::new(path), 16 << 20) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{path}`: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => args.pair.clone(),
    };
    let source_map = compiled.lowered.source_map.clone();
    let engine = Engine::new(compiled.lowered.labeling);
    match trace_pair(&engine, &source_map, &text) {
        Ok(trace) => {
            out::print(&trace);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "error: the pair: {}",
                e.to_string().trim_start_matches("line 1: ")
            );
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}
