//! `rubric check FILE...`: checks policy files and prints every diagnostic. Exit 0 when no file
//! has an error (warnings are printed), 1 when one has, 2 when a file cannot be read (counted as
//! an error in the summary). A file that is not UTF-8 is read, and reported where it goes wrong.

use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE, ErrorFormat};
use rubric_compiler::{Limits, Options};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Policy, module or pipeline files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
    /// Largest policy file, in bytes.
    #[arg(long, default_value_t = Limits::default().max_file_bytes)]
    max_file_bytes: usize,
    /// Deepest nesting of brackets, branches and operators.
    #[arg(long, default_value_t = Limits::default().max_depth)]
    max_depth: u32,
}

pub fn run(args: Args) -> ExitCode {
    let options = Options {
        limits: Limits {
            max_file_bytes: args.max_file_bytes,
            max_depth: args.max_depth,
        },
    };
    let (mut errors, mut warnings, mut unreadable) = (0, 0, 0);
    for file in &args.files {
        let checked = match rubric_runtime::project::check_file(file, &options) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", file.display());
                unreadable += 1;
                continue;
            }
        };
        errors += checked.error_count();
        warnings += checked.warning_count();
        args.report.print(&checked);
    }
    if args.report.error_format != ErrorFormat::Json {
        // A file that cannot be read is an error of the run: the summary must not say `0 errors`.
        let errors = errors + unreadable;
        let files = args.files.len();
        eprintln!(
            "checked {files} file{}: {errors} error{}, {warnings} warning{}",
            if files == 1 { "" } else { "s" },
            if errors == 1 { "" } else { "s" },
            if warnings == 1 { "" } else { "s" },
        );
    }
    if unreadable > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if errors > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}
