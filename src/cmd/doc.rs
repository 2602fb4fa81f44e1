//! `rubric doc POLICY --out DIR`: writes the policy document for reviewers, generated from the
//! policy's `///` prose and its rubric, as `DIR/<policy>.md` and `DIR/<policy>.html`.

use super::EXIT_USAGE;
use super::compile::compile_or_report;
use super::report::ReportArgs;
use rubric_runtime::doc::{policy_document, write_document};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    policy: PathBuf,
    /// The directory to write `<policy>.md` and `<policy>.html` into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let document = policy_document(&compiled);
    match write_document(&document, &args.out) {
        Ok(files) => {
            for f in files {
                eprintln!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
