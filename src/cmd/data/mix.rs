//! `rubric data mix`: the mix stage alone. Splits the real pairs (a validation split
//! stratified by overall grade) and pools the rest with the synthetic pairs, as the pipeline's
//! `mix` and `split` say (flags override); writes `pool.jsonl`, `validation.jsonl` and
//! `manifest.json`. Batches are drawn from the pool by the trainers' sampler, every epoch anew.

use super::super::compile::compile_or_report;
use super::super::files;
use super::super::report::ReportArgs;
use super::super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_compiler::lower::plan::{MixConfig, StageConfig};
use rubric_compiler::vocabulary::{Block, default_number};
use rubric_runtime::data::mix::{MixError, MixInput, MixOptions, mix, parse_share};
use rubric_runtime::label::engine::Engine;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy that labels the real pairs (the validation split is stratified by its overall
    /// grade); with a pipeline, also where the shares and the split are read from.
    #[arg(long, visible_alias = "pipeline")]
    policy: PathBuf,
    /// The real (golden) pairs.
    #[arg(long)]
    real: PathBuf,
    /// The synthetic pairs.
    #[arg(long)]
    synthetic: Option<PathBuf>,
    /// Share of real rows in every batch [default: the pipeline's `mix real N%`].
    #[arg(long, value_name = "PCT")]
    real_share: Option<String>,
    /// Share of real pairs held out for validation [default: the pipeline's `split validation`].
    #[arg(long, value_name = "PCT")]
    validation: Option<String>,
    /// Seed of the split and the batch order [default: the pipeline's `split ... seed`].
    #[arg(long)]
    seed: Option<u64>,
    /// The folder to write into (created if needed).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

fn share(flag: &str, given: &Option<String>, plan: f64) -> Result<f64, ExitCode> {
    match given {
        Some(v) => parse_share(v).ok_or_else(|| {
            eprintln!("error: `{flag} {v}` is not a share like `30%`");
            ExitCode::from(EXIT_USAGE)
        }),
        None => Ok(plan),
    }
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The pipeline's mix stage; a policy without a pipeline mixes by the vocabulary's defaults.
    let plan = compiled
        .lowered
        .training_plan
        .as_ref()
        .and_then(|p| {
            p.stages.iter().find_map(|s| match &s.config {
                StageConfig::Mix(m) => Some(m.clone()),
                _ => None,
            })
        })
        .unwrap_or(MixConfig {
            real_share: 1.0,
            synthetic_share: 0.0,
            validation: default_number(Block::Split, "validation"),
            seed: default_number(Block::Split, "seed") as u64,
        });
    let engine = Engine::new(compiled.lowered.labeling);
    let real_share = match share("--real-share", &args.real_share, plan.real_share) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let validation = match share("--validation", &args.validation, plan.validation) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let options = MixOptions {
        real_share,
        validation,
        seed: args.seed.unwrap_or(plan.seed),
    };
    let (pool_path, validation_path) = (
        args.out.join("pool.jsonl"),
        args.out.join("validation.jsonl"),
    );
    let manifest_path = args.out.join("manifest.json");
    let mut inputs = vec![("--real", args.real.as_path())];
    if let Some(s) = &args.synthetic {
        inputs.push(("--synthetic", s.as_path()));
    }
    if let Err(code) = files::refuse_aliases(
        &inputs,
        &[
            ("the pool", pool_path.as_path()),
            ("the validation split", validation_path.as_path()),
            ("the manifest", manifest_path.as_path()),
        ],
    ) {
        return code;
    }
    let real = match MixInput::read(&args.real) {
        Ok(r) => r,
        Err(e) => return report(e),
    };
    let synthetic = match args.synthetic.as_deref().map(MixInput::read).transpose() {
        Ok(s) => s,
        Err(e) => return report(e),
    };
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create `{}`: {e}", args.out.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let (mut pool, mut validation_out) =
        match (files::create(&pool_path), files::create(&validation_path)) {
            (Ok(t), Ok(v)) => (t, v),
            (Err(code), _) | (_, Err(code)) => return code,
        };
    match mix(
        &engine,
        real,
        synthetic,
        &options,
        &mut pool,
        &mut validation_out,
    ) {
        Ok(manifest) => {
            for f in [pool, validation_out] {
                if let Err(code) = files::commit(f) {
                    return code;
                }
            }
            if let Err(code) = files::write(&manifest_path, manifest.json()) {
                return code;
            }
            print!("{}", manifest.report());
            eprintln!(
                "wrote pool.jsonl, validation.jsonl and manifest.json in {}",
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
