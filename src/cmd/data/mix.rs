//! `rubric data mix`: real and synthetic pairs into training batches that hold the declared
//! real share and a validation split of real pairs, as the pipeline's `mix` and `split` say
//! (flags override); writes `train.jsonl`, `validation.jsonl` and `manifest.json`.

use super::super::compile::compile_or_report;
use super::super::report::ReportArgs;
use super::super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_runtime::data::mix::{MixError, MixInput, MixOptions, mix, parse_share, plan_settings};
use rubric_runtime::label::engine::Engine;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy that labels the real pairs (the validation split is stratified by its overall
    /// grade); with a pipeline, also where the shares, split and batch size are read from.
    #[arg(long, visible_alias = "pipeline")]
    policy: PathBuf,
    /// The real (golden) pairs.
    #[arg(long)]
    real: PathBuf,
    /// The synthetic pairs.
    #[arg(long)]
    synthetic: PathBuf,
    /// Share of real rows in every batch [default: the pipeline's `mix real N%`, else 30%].
    #[arg(long, value_name = "PCT")]
    real_share: Option<String>,
    /// Rows per batch [default: the first teacher's `train { batch }`, else 32].
    #[arg(long)]
    batch: Option<usize>,
    /// Share of real pairs held out for validation [default: the pipeline's `split validation`,
    /// else 10%].
    #[arg(long, value_name = "PCT")]
    validation: Option<String>,
    /// Seed of the split and the batch order [default: the pipeline's `split ... seed`, else 0].
    #[arg(long)]
    seed: Option<u64>,
    /// The folder to write into (created if needed).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

fn share(
    flag: &str,
    given: &Option<String>,
    plan: Option<f64>,
    default: f64,
) -> Result<f64, ExitCode> {
    match given {
        Some(v) => parse_share(v).ok_or_else(|| {
            eprintln!("error: `{flag} {v}` is not a share like `30%`");
            ExitCode::from(EXIT_USAGE)
        }),
        None => Ok(plan.unwrap_or(default)),
    }
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let plan = compiled
        .lowered
        .training_plan
        .as_ref()
        .map(plan_settings)
        .unwrap_or_default();
    let engine = Engine::new(compiled.lowered.labeling);
    let real_share = match share("--real-share", &args.real_share, plan.real_share, 0.3) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let validation = match share("--validation", &args.validation, plan.validation, 0.1) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let options = MixOptions {
        real_share,
        batch: args.batch.or(plan.batch).unwrap_or(32),
        validation,
        seed: args.seed.or(plan.seed).unwrap_or(0),
    };
    let inputs = MixInput::read(&args.real).and_then(|r| Ok((r, MixInput::read(&args.synthetic)?)));
    let (real, synthetic) = match inputs {
        Ok(x) => x,
        Err(e) => return report(e),
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create `{}`: {e}", args.out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let open = |name: &str| {
        let path = args.out.join(name);
        File::create(&path).map(BufWriter::new).map_err(|e| {
            eprintln!("error: cannot write `{}`: {e}", path.display());
            ExitCode::from(EXIT_USAGE)
        })
    };
    let (mut train, mut validation_out) = match (open("train.jsonl"), open("validation.jsonl")) {
        (Ok(t), Ok(v)) => (t, v),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let bar = ProgressBar::new(0);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} mixing [{bar:30}] {pos}/{len} batches")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let result = mix(
        &engine,
        real,
        synthetic,
        &options,
        &mut train,
        &mut validation_out,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    );
    bar.finish_and_clear();
    match result {
        Ok(manifest) => {
            let path = args.out.join("manifest.json");
            if let Err(e) = std::fs::write(&path, manifest.json()) {
                eprintln!("error: cannot write `{}`: {e}", path.display());
                return ExitCode::from(EXIT_USAGE);
            }
            print!("{}", manifest.report());
            eprintln!(
                "wrote train.jsonl, validation.jsonl and manifest.json in {}",
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => report(e),
    }
}

fn report(e: MixError) -> ExitCode {
    eprintln!("error: {e}");
    match e {
        MixError::Io(_) | MixError::Options(_) => ExitCode::from(EXIT_USAGE),
        MixError::Row { .. } => ExitCode::from(EXIT_PROBLEMS),
    }
}
