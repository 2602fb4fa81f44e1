//! `rubric compile POLICY --out DIR`: checks a policy and writes its labeling program, loss terms,
//! training plan and source map.

use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_compiler::Options;
use rubric_runtime::compile::{CompileError, compile_file, write_artefacts};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file (with its pipeline, if any).
    policy: PathBuf,
    /// Where to write the artefacts.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

/// Compiles a policy for a subcommand, printing diagnostics; `Err` holds the exit code.
pub fn compile_or_report(
    path: &Path,
    report: &ReportArgs,
) -> Result<rubric_runtime::compile::Compiled, ExitCode> {
    match compile_file(path, &Options::default()) {
        Ok(compiled) => {
            report.print(&compiled.checked);
            Ok(compiled)
        }
        Err(CompileError::Io(e)) => {
            eprintln!("error: cannot read `{}`: {e}", path.display());
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(CompileError::Invalid(checked)) => {
            report.print(&checked);
            eprintln!(
                "error: `{}` has {} error(s); fix them before compiling",
                path.display(),
                checked.error_count()
            );
            Err(ExitCode::from(EXIT_PROBLEMS))
        }
        Err(CompileError::NoPolicy(_)) => {
            eprintln!(
                "error: `{}` holds no policy (a module or a pipeline alone)",
                path.display()
            );
            Err(ExitCode::from(EXIT_USAGE))
        }
        Err(e @ CompileError::Internal(_)) => {
            eprintln!("error: `{}`: {e}", path.display());
            Err(ExitCode::from(EXIT_PROBLEMS))
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match write_artefacts(&compiled.lowered, &args.out) {
        Ok(files) => {
            for f in files {
                eprintln!("wrote {}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot write to `{}`: {e}", args.out.display());
            ExitCode::from(EXIT_USAGE)
        }
    }
}
