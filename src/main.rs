//! The `rubric` command-line tool: clap parses, the libraries do the work. One file a
//! subcommand under `cmd/`.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    cmd::run(cmd::Cli::parse())
}
