//! The `rubric` command-line tool: clap parses, the libraries do the work. One file a
//! subcommand under `cmd/`.

mod cmd;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cmd::Cli::parse();
    // Deep but legal policies recurse in the parser and checker: give them room.
    let worker = std::thread::Builder::new()
        .name("rubric".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || cmd::run(cli));
    match worker.map(|w| w.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("rubric: internal error; please report it with the input that caused it");
            ExitCode::from(3)
        }
    }
}
