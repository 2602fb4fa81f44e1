//! `rubric new`: PLACEHOLDER (uncommitted skeleton)

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("error: PLACEHOLDER, replaced by its owner");
    ExitCode::from(super::EXIT_USAGE)
}
