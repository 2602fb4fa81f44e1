//! `rubric data golden`: PLACEHOLDER (uncommitted skeleton)

use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> ExitCode {
    eprintln!("error: PLACEHOLDER, replaced by its owner");
    ExitCode::from(super::super::EXIT_USAGE)
}
