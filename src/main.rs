//! The `rubric` command-line tool: clap parses, the libraries do the work. One file a
//! subcommand under `cmd/`.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Before any thread: training frees and allocates megabytes at every step.
    rubric_ml::alloc::keep_freed_memory();
    cmd::run(cmd::Cli::parse())
}
