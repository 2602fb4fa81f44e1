//! `rubric run PIPELINE`: runs the training plan's stages in a run directory, skipping those
//! whose inputs did not change; one line per stage and a summary. `rubric train` runs the same
//! way, up to the teachers.

use super::compile::compile_or_report;
use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_runtime::run::{RunObserver, RunOptions, Runner, StageManifest};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file with its pipeline.
    pipeline: PathBuf,
    /// The run directory [default: `runs/<pipeline name>` beside the policy].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Run only this stage (its input stages must have run), e.g. `mix` or `label.golden`.
    #[arg(long, value_name = "ID", conflicts_with = "until")]
    stage: Option<String>,
    /// Run the stages up to this one, in the plan's order, nothing after it, e.g. `mix` (the
    /// data stages, no training).
    #[arg(long, value_name = "ID")]
    until: Option<String>,
    /// Where models train: `cpu`, or `cuda` / `cuda:N` in a build with the `cuda` feature.
    #[arg(long, value_name = "DEVICE", default_value = "cpu")]
    device: String,
    #[command(flatten)]
    report: ReportArgs,
}

/// Prints a line per stage on standard error; a progress bar while one runs.
struct Lines {
    bar: Option<ProgressBar>,
    /// The running stage.
    stage: String,
}

impl Lines {
    fn line(&mut self, text: String) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        eprintln!("{text}");
    }
}

impl RunObserver for Lines {
    fn skipped(&mut self, m: &StageManifest) {
        self.line(format!(
            "  skipped  {:<22} {} (unchanged)",
            m.stage, m.summary
        ));
    }

    fn started(&mut self, stage: &str) {
        let bar = ProgressBar::new(0);
        bar.set_draw_target(ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("  running  {msg:<22} [{bar:30}] {percent}% {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_message(stage.to_string());
        self.stage = stage.to_string();
        self.bar = Some(bar);
    }

    fn status(&mut self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("{} {text}", self.stage));
        }
    }

    fn note(&mut self, text: &str) {
        match &self.bar {
            // Above the bar on a terminal; a plain line in a log.
            Some(bar) if !bar.is_hidden() => bar.println(format!("           {text}")),
            _ => eprintln!("           {text}"),
        }
    }

    fn progress(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done.min(total));
        }
    }

    fn finished(&mut self, m: &StageManifest) {
        let speed = m
            .timings
            .get("train_rows_per_second")
            .map(|r| format!(", {r:.0} rows/s"))
            .unwrap_or_default();
        self.line(format!(
            "  done     {:<22} {} ({:.1}s{speed})",
            m.stage, m.summary, m.seconds
        ));
    }

    fn ablation(&mut self, variant: &str, summary: &str) {
        let id = format!("{}.{variant}", rubric_runtime::run::DISTILL_STAGE);
        self.line(format!("  ablation {id:<22} {summary}"));
    }

    fn not_run(&mut self, stage: &str, why: &str) {
        self.line(format!("  not run  {stage:<22} {why}"));
    }
}

pub fn run(args: Args) -> ExitCode {
    let how = How {
        only: args.stage,
        upto: Vec::new(),
        until: args.until,
        device: args.device,
        ablations: Vec::new(),
        show_distill: false,
        show_quantize: false,
    };
    run_pipeline(&args.pipeline, args.dir, &args.report, how)
}

/// Which stages a command runs, and where models train.
pub struct How {
    pub only: Option<String>,
    pub upto: Vec<String>,
    pub until: Option<String>,
    pub device: String,
    /// Train the distill stage's ablations too.
    pub ablations: Vec<rubric_runtime::distill::Variant>,
    /// Print the distillation report's table (and the ablations') on standard output.
    pub show_distill: bool,
    /// Print the quantize stage's report on standard output.
    pub show_quantize: bool,
}

/// Compiles the pipeline and runs its stages as `how` says, reporting each.
pub fn run_pipeline(
    pipeline: &std::path::Path,
    dir: Option<PathBuf>,
    report: &ReportArgs,
    how: How,
) -> ExitCode {
    let started = Instant::now();
    let compiled = match compile_or_report(pipeline, report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(plan) = compiled.lowered.training_plan.as_ref() else {
        eprintln!(
            "error: `{}` holds no pipeline for its policy; add `pipeline NAME for {} {{ ... }}`",
            pipeline.display(),
            compiled.lowered.labeling.policy.name
        );
        return ExitCode::from(EXIT_USAGE);
    };
    let base = pipeline.parent().map(PathBuf::from).unwrap_or_default();
    let dir = dir.unwrap_or_else(|| base.join("runs").join(&plan.pipeline));
    let sources = compiled
        .checked
        .sources
        .iter()
        .map(|(_, file)| {
            let name = std::path::Path::new(&file.name)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (name, file.text.to_string())
        })
        .collect();
    let runner = Runner {
        compiled: &compiled,
        plan,
        base,
        sources,
    };
    eprintln!(
        "pipeline `{}` of `{}` in {}",
        plan.pipeline,
        plan.policy.name,
        dir.display()
    );
    let mut lines = Lines {
        bar: None,
        stage: String::new(),
    };
    let options = RunOptions {
        dir: dir.clone(),
        only: how.only,
        upto: how.upto,
        until: how.until,
        device: how.device,
        ablations: how.ablations,
    };
    match runner.run(&options, &mut lines) {
        Ok(summary) => {
            if let Some(bar) = lines.bar.take() {
                bar.finish_and_clear();
            }
            let mut parts = vec![
                format!("{} ran", summary.ran.len()),
                format!("{} unchanged", summary.skipped.len()),
            ];
            if !summary.not_run.is_empty() {
                parts.push(format!("{} not run", summary.not_run.len()));
            }
            eprintln!(
                "{} stages: {} in {:.1}s; outputs under {}",
                summary.ran.len() + summary.skipped.len() + summary.not_run.len(),
                parts.join(", "),
                started.elapsed().as_secs_f64(),
                dir.join("stages").display()
            );
            if how.show_distill {
                print_distill(&dir, summary.ablations.as_ref());
            }
            if how.show_quantize {
                print_quantize(&dir);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Some(bar) = lines.bar.take() {
                bar.abandon();
            }
            eprintln!("  failed   {:<22} {}", e.stage, e.cause);
            eprintln!(
                "error: {e}\nthe stages before it are kept; to run it alone once fixed: rubric run {} --dir {} --stage {}",
                pipeline.display(),
                dir.display(),
                e.stage
            );
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}

/// The latest stage `stage`'s file `file` in the run directory, parsed.
fn latest_report<T: serde::de::DeserializeOwned>(
    dir: &std::path::Path,
    stage: &str,
    file: &str,
) -> Option<Result<T, PathBuf>> {
    let latest: std::collections::BTreeMap<String, String> =
        serde_json::from_slice(&std::fs::read(dir.join("latest.json")).ok()?).ok()?;
    let path = dir
        .join("stages")
        .join(stage)
        .join(latest.get(stage)?)
        .join(file);
    Some(
        std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice::<T>(&b).ok())
            .ok_or(path),
    )
}

/// The quantize stage's report of the run, as a table.
fn print_quantize(dir: &std::path::Path) {
    use rubric_runtime::quantize::{QuantizeReport, REPORT, table};
    match latest_report::<QuantizeReport>(dir, "quantize", REPORT) {
        Some(Ok(r)) => {
            // The speeds are the manifest's timings (the report holds no timing).
            let speeds: std::collections::BTreeMap<String, f64> =
                latest_report::<serde_json::Value>(dir, "quantize", "manifest.json")
                    .and_then(Result::ok)
                    .and_then(|m| {
                        m.get("timings").and_then(|t| t.as_object()).map(|t| {
                            t.iter()
                                .filter_map(|(k, v)| {
                                    Some((
                                        k.strip_suffix(".pairs_per_second")?.to_string(),
                                        v.as_f64()?,
                                    ))
                                })
                                .collect()
                        })
                    })
                    .unwrap_or_default();
            print!("{}", table(&r, &speeds));
        }
        Some(Err(path)) => eprintln!(
            "warning: cannot read the quantization report `{}`",
            path.display()
        ),
        None => {}
    }
}

/// The distillation report of the run's latest distill stage, as tables.
fn print_distill(
    dir: &std::path::Path,
    ablations: Option<&rubric_runtime::distill::report::AblationReport>,
) {
    use rubric_runtime::distill::report::{DistillReport, REPORT, ablation_table, table};
    match latest_report::<DistillReport>(dir, rubric_runtime::run::DISTILL_STAGE, REPORT) {
        Some(Ok(report)) => print!("{}", table(&report)),
        Some(Err(path)) => eprintln!(
            "warning: cannot read the distillation report `{}`",
            path.display()
        ),
        None => return,
    }
    if let Some(a) = ablations {
        println!();
        print!("{}", ablation_table(a));
    }
}
