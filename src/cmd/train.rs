//! `rubric train PIPELINE [--stage teacher.NAME]`: trains the pipeline's teachers (or one), after
//! the data stages they read from, in the same run directory as `rubric run`: what is done and
//! unchanged is skipped, and a killed training resumes from its last checkpoint.

use super::EXIT_USAGE;
use super::report::ReportArgs;
use super::run::{How, run_pipeline};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file with its pipeline.
    pipeline: PathBuf,
    /// The teacher to train, as its stage (`teacher.policy`) or its name (`policy`)
    /// [default: every teacher].
    #[arg(long, value_name = "ID")]
    stage: Option<String>,
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
    let teachers: Vec<String> = match args.stage {
        Some(s) if s.starts_with("teacher.") => vec![s],
        Some(s) if s.contains('.') => {
            eprintln!(
                "error: `rubric train` trains teachers (`--stage teacher.NAME`); `{s}` is another \
                 stage: run it with `rubric run {} --stage {s}`",
                args.pipeline.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        Some(name) => vec![format!("teacher.{name}")],
        None => match teacher_stages(&args.pipeline, &args.report) {
            Ok(t) => t,
            Err(code) => return code,
        },
    };
    let how = How {
        only: None,
        upto: teachers,
        until: None,
        device: args.device,
        ablations: Vec::new(),
        show_distill: false,
        show_quantize: false,
    };
    run_pipeline(&args.pipeline, args.dir, &args.report, how)
}

/// Every teacher stage of the pipeline.
fn teacher_stages(
    pipeline: &std::path::Path,
    report: &ReportArgs,
) -> Result<Vec<String>, ExitCode> {
    let compiled = super::compile::compile_or_report(pipeline, report)?;
    let stages: Vec<String> = compiled
        .lowered
        .training_plan
        .iter()
        .flat_map(|p| &p.stages)
        .filter(|s| s.id.starts_with("teacher."))
        .map(|s| s.id.clone())
        .collect();
    if stages.is_empty() {
        eprintln!(
            "error: `{}` declares no teacher: add `teacher NAME {{ model ... predicts ... loss ... }}` to its pipeline",
            pipeline.display()
        );
        return Err(ExitCode::from(EXIT_USAGE));
    }
    Ok(stages)
}
