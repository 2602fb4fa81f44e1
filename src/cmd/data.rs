//! `rubric data ...`: the data stage's subcommands, one file each under `data/`.

mod clean;
mod clicks;
mod golden;
mod mix;
mod synth;

use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Build a golden set of job/candidate pairs from O*NET and SkillSpan.
    Golden(golden::Args),
    /// Simulate a click log for pairs (position bias, hidden preference, noise, bots).
    Clicks(clicks::Args),
    /// Clean a click log as the pipeline's `clean` block says; report what was dropped.
    Clean(clean::Args),
    /// Expand a golden set with policy-guided synthetic pairs.
    Synth(synth::Args),
    /// Mix real and synthetic pairs into batches and a validation split.
    Mix(mix::Args),
}

pub fn run(command: Command) -> ExitCode {
    match command {
        Command::Golden(args) => golden::run(args),
        Command::Clicks(args) => clicks::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Synth(args) => synth::run(args),
        Command::Mix(args) => mix::run(args),
    }
}
