//! `rubric quantize PIPELINE`: prunes and quantizes the pipeline's distilled student (after the
//! stages it reads, in the same run directory as `rubric run`) and prints what each step cost on
//! the held-out real pairs, how much smaller and faster the model became.

use super::EXIT_USAGE;
use super::report::ReportArgs;
use super::run::{How, run_pipeline};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file with its pipeline.
    pipeline: PathBuf,
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
    let compiled = match super::compile::compile_or_report(&args.pipeline, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let declares = compiled
        .lowered
        .training_plan
        .iter()
        .flat_map(|p| &p.stages)
        .any(|s| s.id == "quantize");
    if !declares {
        eprintln!(
            "error: `{}` declares no quantization: add `quantize int8` (optionally \
             `{{ prune heads below 0.01 }}`) to its pipeline",
            args.pipeline.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let how = How {
        only: None,
        upto: vec!["quantize".to_string()],
        until: None,
        device: args.device,
        ablations: Vec::new(),
        show_distill: false,
        show_quantize: true,
    };
    run_pipeline(&args.pipeline, args.dir, &args.report, how)
}
