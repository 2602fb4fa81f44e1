//! `rubric data synth`: expands a golden set with policy-guided synthetic pairs, as the
//! pipeline's `synthetic from golden { count, strategy }` says (flags override), never from a
//! pair of the validation split `rubric data mix` will hold out.

use super::super::compile::compile_or_report;
use super::super::files;
use super::super::report::ReportArgs;
use super::super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_compiler::lower::plan::{StageConfig, SynthesisStrategy, SynthesizeConfig};
use rubric_compiler::vocabulary::{Block, default_number};
use rubric_runtime::data::golden::pairs::read_pairs;
use rubric_runtime::data::mix::{parse_share, split_real};
use rubric_runtime::data::synth::paraphrase::{HttpParaphraser, Paraphraser};
use rubric_runtime::data::synth::{Strategy, SynthOptions, SynthOutputs, sources, synthesize};
use rubric_runtime::label::engine::Engine;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy that labels the pairs; with a pipeline, also where count, strategy and the
    /// validation split are read from.
    #[arg(long, visible_alias = "pipeline")]
    policy: PathBuf,
    /// The golden pairs to perturb (JSON lines, `source: "real"`).
    #[arg(long)]
    golden: PathBuf,
    /// How many synthetic pairs to write [default: the pipeline's `count`].
    #[arg(long)]
    count: Option<usize>,
    /// How to choose pairs [default: the pipeline's `strategy`].
    #[arg(long)]
    strategy: Option<String>,
    /// Seed of the perturbations: the same seed gives the same bytes [default: the pipeline's
    /// `seed`].
    #[arg(long)]
    seed: Option<u64>,
    /// The validation share held out of synthesis [default: the pipeline's `split validation`].
    #[arg(long, value_name = "PCT")]
    validation: Option<String>,
    /// The seed of the validation split [default: the pipeline's `split ... seed`].
    #[arg(long)]
    split_seed: Option<u64>,
    /// Where to write the synthetic pairs (JSON lines).
    #[arg(long)]
    out: PathBuf,
    /// Also write the synthetic pairs' labels here.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Paraphrase the real prose of each record with a model behind this OpenAI-compatible
    /// endpoint (`http://127.0.0.1:8000`); off by default.
    #[arg(long, requires = "paraphrase_model")]
    paraphrase_endpoint: Option<String>,
    /// The model name sent to the paraphrase endpoint.
    #[arg(long)]
    paraphrase_model: Option<String>,
    /// Seconds to wait for one paraphrase before keeping the text as written.
    #[arg(long, default_value_t = 30)]
    paraphrase_timeout: u64,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // The pipeline's synthesize stage; without one, the vocabulary's defaults.
    let plan = compiled
        .lowered
        .training_plan
        .as_ref()
        .and_then(|p| {
            p.stages.iter().find_map(|s| match &s.config {
                StageConfig::Synthesize(c) => Some(c.clone()),
                _ => None,
            })
        })
        .unwrap_or(SynthesizeConfig {
            from: "golden".to_string(),
            count: default_number(Block::Synthetic, "count") as u64,
            strategy: SynthesisStrategy::Coverage,
            seed: default_number(Block::Synthetic, "seed") as u64,
            paraphrase: 0.0,
            validation: default_number(Block::Split, "validation"),
            split_seed: default_number(Block::Split, "seed") as u64,
        });
    let engine = Engine::new(compiled.lowered.labeling);
    let count = args
        .count
        .unwrap_or(usize::try_from(plan.count).unwrap_or(usize::MAX));
    let strategy_name = args
        .strategy
        .unwrap_or_else(|| plan.strategy.name().to_string());
    let strategy: Strategy = match strategy_name.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let seed = args.seed.unwrap_or(plan.seed);
    let validation = match &args.validation {
        Some(v) => match parse_share(v) {
            Some(x) => x,
            None => {
                eprintln!("error: `--validation {v}` is not a share like `10%`");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => plan.validation,
    };
    let split_seed = args.split_seed.unwrap_or(plan.split_seed);
    let golden = match read_pairs(&args.golden) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    let split = match split_real(
        &engine,
        golden.clone(),
        &args.golden,
        validation,
        split_seed,
    ) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    let pool = sources(&golden, &split.validation);
    let mut outputs = vec![("--out", args.out.as_path())];
    if let Some(l) = &args.labels {
        outputs.push(("--labels", l.as_path()));
    }
    if let Err(code) = files::refuse_aliases(
        &[
            ("--golden", args.golden.as_path()),
            ("--policy", args.policy.as_path()),
        ],
        &outputs,
    ) {
        return code;
    }
    let mut out = match files::create(&args.out) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let mut labels = match args.labels.as_deref().map(files::create).transpose() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let mut http = match (&args.paraphrase_endpoint, &args.paraphrase_model) {
        (Some(url), Some(model)) => Some(HttpParaphraser::new(
            url,
            model,
            Duration::from_secs(args.paraphrase_timeout),
        )),
        _ => None,
    };
    let bar = ProgressBar::new(count as u64);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} synthesizing [{bar:30}] {pos}/{len} pairs")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let result = synthesize(
        &engine,
        &pool,
        &args.golden,
        SynthOptions {
            count,
            strategy,
            seed,
        },
        http.as_mut().map(|h| h as &mut dyn Paraphraser),
        SynthOutputs {
            pairs: &mut out,
            labels: labels.as_mut().map(|l| l as &mut dyn Write),
        },
        &mut |kept, _| bar.set_position(kept as u64),
    );
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            for f in std::iter::once(out).chain(labels) {
                if let Err(code) = files::commit(f) {
                    return code;
                }
            }
            println!(
                "held out of synthesis: {} golden pairs of the validation split ({:.1}%, seed {split_seed})",
                split.validation.len(),
                validation * 100.0
            );
            print!("{}", summary.report());
            if let Some(p) = &summary.paraphrase {
                for e in &p.errors {
                    eprintln!("warning: paraphrase failed: {e}");
                }
            }
            eprintln!("wrote {}", args.out.display());
            if summary.written < count {
                eprintln!(
                    "warning: only {} of the {count} pairs asked for could be made",
                    summary.written
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}
