//! The `rubric` command-line tool: clap parses, the libraries do the work. One file a
//! subcommand under `cmd/`.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // How freed memory is kept and candle's elementwise threads.
    // SAFETY: the first statement of `main`: no other thread runs yet.
    #[allow(unsafe_code)]
    unsafe {
        rubric_ml::process::prepare()
    };
    cmd::run(cmd::Cli::parse())
}
