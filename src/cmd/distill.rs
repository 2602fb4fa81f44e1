//! `rubric distill PIPELINE [--ablations]`: distills the pipeline's student after the stages it
//! reads (the data stages and the teachers), in the same run directory as `rubric run`, and
//! prints the distillation report: the student beside each teacher on the held-out real pairs.
//! `--ablations` trains the same student with each part of the recipe left out, beside it.

use super::report::ReportArgs;
use super::run::{How, run_pipeline};
use rubric_runtime::run::DISTILL_STAGE;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file with its pipeline.
    pipeline: PathBuf,
    /// Also train the student without each part of the recipe (single-teacher students, no
    /// drift penalty, no synthetic pairs, no temporal teacher, labels only) and report them.
    #[arg(long)]
    ablations: bool,
    /// The run directory [default: `runs/<pipeline name>` beside the policy].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Where models train: `cpu`, or `cuda` / `cuda:N` in a build with the `cuda` feature.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let how = How {
        only: None,
        upto: vec![DISTILL_STAGE.to_string()],
        until: None,
        device: args.device,
        ablations: args.ablations,
        show_distill: true,
    };
    run_pipeline(&args.pipeline, args.dir, &args.report, how)
}
