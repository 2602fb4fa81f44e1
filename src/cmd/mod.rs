//! Subcommands: each file parses its arguments (clap) and calls the libraries.

mod check;
mod compile;
mod completions;
mod data;
mod diff;
mod distill;
mod doc;
mod explain;
mod files;
mod fmt;
mod label;
mod lsp;
mod new;
mod out;
mod progress;
mod quantize;
mod report;
mod run;
mod score;
mod serve;
mod snapshot;
mod stats;
mod test;
mod trace;
mod train;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

/// rubric: turn a product policy into a production recommender model.
#[derive(Debug, Parser)]
#[command(name = "rubric", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policy files: syntax, names, types, score ranges, weights, grades, rules, examples
    /// and pipelines.
    Check(check::Args),
    /// Check a policy and write its labeling program, loss terms, training plan and source map.
    Compile(compile::Args),
    /// Label JSON-lines pairs with a policy.
    Label(label::Args),
    /// Run a policy's examples and report clause coverage.
    Test(test::Args),
    /// Label one pair and explain every value.
    Trace(trace::Args),
    /// Analyse a policy's labeling functions on a dataset: coverage, score histograms, grades,
    /// rule fire rates, runtime events and conflicting rules.
    Stats(stats::Args),
    /// Review a policy edit: label the same pairs with both versions and report what changed.
    Diff(diff::Args),
    /// Write (or `--check`) the snapshots of every policy under a directory: artefacts,
    /// examples' results and stats, beside each policy in `<name>.snap/`.
    Snapshot(snapshot::Args),
    /// Format policy files in the canonical layout (`--check` to verify only).
    Fmt(fmt::Args),
    /// Print the long explanation of a diagnostic code, like `rubric::check::weights_sum`.
    Explain(explain::Args),
    /// Render the policy document for reviewers (HTML and Markdown).
    Doc(doc::Args),
    /// Scaffold a new policy with a pipeline, an example and a test.
    New(new::Args),
    /// Run the language server over standard input and output.
    Lsp(lsp::Args),
    /// Run a policy's pipeline: every stage of its training plan whose inputs changed, in a run
    /// directory where each stage's outputs are named by the hash of what it read.
    Run(run::Args),
    /// Train the pipeline's teachers (or `--stage teacher.NAME`), after the data stages they
    /// read, in the same run directory as `rubric run`.
    Train(train::Args),
    /// Distill the pipeline's student from its teachers (after the stages it reads) and print
    /// the report; `--ablations` adds the student without each part of the recipe.
    Distill(distill::Args),
    /// Prune and quantize the pipeline's distilled student to int8 (after the stages it reads)
    /// and print what each step cost on the held-out pairs.
    Quantize(quantize::Args),
    /// Rank candidates for one query with a trained model folder.
    Score(score::Args),
    /// Serve a trained model folder over HTTP: rank, score, health and Prometheus metrics.
    Serve(serve::Args),
    /// Print a shell's completion script: bash, zsh, fish, elvish or powershell.
    Completions(completions::Args),
    /// Data: build a golden set, simulate or read click logs, clean, synthesize and mix.
    #[command(subcommand)]
    Data(data::Command),
}

/// How diagnostics are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ErrorFormat {
    /// Underlined source, for people.
    #[default]
    Human,
    /// Narrated text, for screen readers and logs.
    Plain,
    /// One JSON object a line, for tools.
    Json,
}

impl From<ErrorFormat> for rubric_compiler::ErrorFormat {
    fn from(f: ErrorFormat) -> Self {
        match f {
            ErrorFormat::Human => rubric_compiler::ErrorFormat::Human,
            ErrorFormat::Plain => rubric_compiler::ErrorFormat::Plain,
            ErrorFormat::Json => rubric_compiler::ErrorFormat::Json,
        }
    }
}

/// When to colour human output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

/// Exit statuses: 0 clean (warnings allowed), 1 problems in the input, 2 usage or IO errors.
pub const EXIT_PROBLEMS: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Check(args) => check::run(args),
        Command::Compile(args) => compile::run(args),
        Command::Label(args) => label::run(args),
        Command::Test(args) => test::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Doc(args) => doc::run(args),
        Command::New(args) => new::run(args),
        Command::Lsp(args) => lsp::run(args),
        Command::Run(args) => run::run(args),
        Command::Train(args) => train::run(args),
        Command::Distill(args) => distill::run(args),
        Command::Quantize(args) => quantize::run(args),
        Command::Score(args) => score::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Data(command) => data::run(command),
    }
}
