//! `rubric distill PIPELINE [--ablations]`: distills the pipeline's student after the stages it
//! reads (the data stages and the teachers), in the same run directory as `rubric run`, and
//! prints the distillation report: the student beside each teacher on the held-out real pairs.
//! `--ablations` trains the same student with each part of the recipe left out, beside it.

use super::report::ReportArgs;
use super::run::{How, run_pipeline};
use rubric_runtime::distill::Variant;
use rubric_runtime::run::DISTILL_STAGE;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file with its pipeline.
    pipeline: PathBuf,
    /// Also train the student without each part of the recipe (single-teacher students, no
    /// drift penalty, no synthetic pairs, no temporal teacher, labels only) and report them.
    #[arg(long, conflicts_with = "ablation")]
    ablations: bool,
    /// Train this ablation only (repeatable): policy_only, click_only, no_drift,
    /// no_synthetic, no_temporal, labels_only.
    #[arg(long, value_name = "NAME", value_parser = ablation)]
    ablation: Vec<Variant>,
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
        ablations: if args.ablations {
            Variant::ABLATIONS.to_vec()
        } else {
            args.ablation
        },
        show_distill: true,
        show_quantize: false,
    };
    run_pipeline(&args.pipeline, args.dir, &args.report, how)
}

fn ablation(name: &str) -> Result<Variant, String> {
    Variant::ABLATIONS
        .into_iter()
        .find(|v| v.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Variant::ABLATIONS.iter().map(|v| v.name()).collect();
            format!(
                "`{name}` is not an ablation; the ablations are {}",
                names.join(", ")
            )
        })
}
