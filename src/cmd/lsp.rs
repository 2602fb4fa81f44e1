//! `rubric lsp`: the language server over standard input and output (`rubric-lsp` does the work).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the standard library's files for go to definition (default: the user's
    /// cache directory, `rubric/stdlib` under `$XDG_CACHE_HOME` or `~/.cache`).
    #[arg(long, value_name = "DIR")]
    stdlib_dir: Option<PathBuf>,
    /// Accepted for editors that pass it; standard input and output are the only transport.
    #[arg(long, hide = true)]
    stdio: bool,
}

pub fn run(args: Args) -> ExitCode {
    let mut config = rubric_lsp::Config::default();
    if let Some(dir) = args.stdlib_dir {
        config.stdlib_dir = dir;
    }
    match rubric_lsp::run_stdio(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(super::EXIT_USAGE)
        }
    }
}
