//! `rubric fmt [--check] FILE...`: rewrites policy files in the one canonical layout, keeping
//! every comment and doc comment; `--check` writes nothing, prints a unified diff of what would
//! change and fails when a file would change.

use super::{EXIT_PROBLEMS, EXIT_USAGE};
use super::{files, out};
use rubric_compiler::format::format_source;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write nothing; print a unified diff of each file that is not formatted and exit 1 if
    /// there are any.
    #[arg(long)]
    check: bool,
}

pub fn run(args: Args) -> ExitCode {
    let (mut unformatted, mut unparsable, mut unreadable) = (0, 0, 0);
    for file in &args.files {
        let limit = rubric_compiler::Limits::default().max_file_bytes;
        let text = match files::read_bounded(file, limit) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", file.display());
                unreadable += 1;
                continue;
            }
        };
        let Some(formatted) = format_source(&text) else {
            eprintln!(
                "error: `{}` does not parse; `rubric check {}` shows why",
                file.display(),
                file.display()
            );
            unparsable += 1;
            continue;
        };
        if formatted == text {
            continue;
        }
        if args.check {
            out::print(layout_diff(&file.display().to_string(), &text, &formatted));
            unformatted += 1;
        } else if files::write(file, formatted).is_err() {
            unreadable += 1;
        } else {
            eprintln!("formatted {}", file.display());
        }
    }
    if unreadable > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if unparsable > 0 || unformatted > 0 {
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}

/// What formatting would change, as a unified diff (`--- FILE`, `+++ FILE (formatted)`).
fn layout_diff(shown: &str, text: &str, formatted: &str) -> String {
    rubric_runtime::textdiff::unified(text, formatted, shown, &format!("{shown} (formatted)"))
}
