//! The stages `rubric run` executes, each a thin call into the same code as its `rubric data`
//! or `rubric train` command, reading only its typed configuration and its resolved inputs and
//! writing into its own (partial) output folder.

use super::{DISTILL_STAGE, ResolvedInput, RunObserver, RunStage, Runner, StageManifest};
use crate::compile::{deterministic_json, sha256_hex};
use crate::data::clean::{CleanOptions, CleanOutputs, clean};
use crate::data::golden::pairs::read_pairs;
use crate::data::mix::{MixInput, MixOptions, mix, split_real};
use crate::data::synth::{Strategy, SynthOptions, SynthOutputs, sources, synthesize};
use crate::label::engine::Engine;
use crate::label::{LabelOptions, label_stream};
use rubric_compiler::lower::plan::{Stage, StageConfig, SynthesisStrategy, TrainingPlan};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

/// What a finished stage reports.
pub struct StageOutcome {
    pub summary: String,
    pub figures: BTreeMap<String, f64>,
    /// Wall-clock measurements, kept apart from the figures (they differ run to run).
    pub timings: BTreeMap<String, f64>,
}

/// The stages this version executes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Document,
    Label,
    Clean,
    Synthesize,
    Mix,
    Teacher,
    Distill,
    Quantize,
}

/// How this version executes a stage, or why it does not yet.
pub fn kind(stage: RunStage<'_>) -> Result<Kind, &'static str> {
    let RunStage::Plan(stage) = stage else {
        return Ok(Kind::Document);
    };
    match stage.config {
        StageConfig::Label { .. } => Ok(Kind::Label),
        StageConfig::Clean { .. } => Ok(Kind::Clean),
        StageConfig::Synthesize(_) => Ok(Kind::Synthesize),
        StageConfig::Mix(_) => Ok(Kind::Mix),
        StageConfig::TrainTeacher(_) => Ok(Kind::Teacher),
        StageConfig::Distill(_) => Ok(Kind::Distill),
        StageConfig::Quantize(_) => Ok(Kind::Quantize),
        StageConfig::Evaluate { .. } => Err("evaluation is not in this version of rubric yet"),
        StageConfig::Monitor { .. } => Err("monitoring is not in this version of rubric yet"),
    }
}

/// Whether a stage's result depends on the policy's rubric (its labeling program). Cleaning
/// a click log does not: a weight edit leaves it alone.
pub fn reads_policy(stage: &Stage) -> bool {
    !matches!(stage.config, StageConfig::Clean { .. })
}

type Done = BTreeMap<String, (PathBuf, StageManifest)>;

/// What a stage runs with: the runner, its resolved inputs, the stages done, its output folder.
pub struct Context<'a> {
    pub runner: &'a Runner<'a>,
    pub inputs: &'a [ResolvedInput],
    pub done: &'a Done,
    /// The stage's (partial) output folder.
    pub out: &'a Path,
    /// Where models train.
    pub device: &'a str,
    /// The run's cache of the teachers' outputs.
    pub cache: &'a Path,
}

/// Runs one stage into `context.out`.
pub fn execute(
    kind: Kind,
    stage: RunStage<'_>,
    context: &Context<'_>,
    observer: &mut dyn RunObserver,
) -> Result<StageOutcome, String> {
    let Context {
        runner,
        inputs,
        done,
        out,
        ..
    } = *context;
    let plan = runner.plan;
    let stage = match stage {
        RunStage::Document => return document(runner, out),
        RunStage::Plan(stage) => stage,
    };
    let progress = &mut |d: u64, t: u64| observer.progress(d, t);
    match (kind, &stage.config) {
        (Kind::Label, StageConfig::Label { source, path }) => {
            label(runner, source, &runner.base.join(path), out, progress)
        }
        (Kind::Clean, StageConfig::Clean { source, path, .. }) => {
            clean_log(plan, source, &runner.base.join(path), out, progress)
        }
        (Kind::Synthesize, StageConfig::Synthesize(config)) => {
            let golden = source_file(runner, &config.from)?;
            let strategy = match config.strategy {
                SynthesisStrategy::Coverage => Strategy::Coverage,
                other => {
                    return Err(format!(
                        "the `{}` synthesis strategy is not in this version of rubric yet; \
                         write `strategy coverage`",
                        other.name()
                    ));
                }
            };
            if config.paraphrase > 0.0 {
                return Err(
                    "paraphrasing needs a model endpoint, which `rubric run` is not given: \
                     leave `paraphrase` out of the pipeline and paraphrase with `rubric data \
                     synth --paraphrase-endpoint`"
                        .to_string(),
                );
            }
            let engine = Engine::new(runner.compiled.lowered.labeling.clone());
            let rows = read_pairs(&golden).map_err(|e| e.to_string())?;
            let split = split_real(
                &engine,
                rows.clone(),
                &golden,
                config.validation,
                config.split_seed,
            )
            .map_err(|e| e.to_string())?;
            let pool = sources(&rows, &split.validation);
            let path = out.join(format!("{}.synthetic.jsonl", config.from));
            let mut pairs = create(&path)?;
            let count = usize::try_from(config.count).unwrap_or(usize::MAX);
            let summary = synthesize(
                &engine,
                &pool,
                &golden,
                SynthOptions {
                    count,
                    strategy,
                    seed: config.seed,
                },
                None,
                SynthOutputs {
                    pairs: &mut pairs,
                    labels: None,
                },
                &mut |kept, _| progress(kept as u64, config.count),
            )
            .map_err(|e| e.to_string())?;
            pairs.flush().map_err(|e| write_error(&path, e))?;
            let mut figures = BTreeMap::new();
            figures.insert("pairs".to_string(), summary.written as f64);
            figures.insert(
                "clause_coverage".to_string(),
                ratio(summary.coverage.covered, summary.coverage.total),
            );
            Ok(StageOutcome {
                summary: format!(
                    "{} synthetic pairs, clause coverage {}/{}",
                    summary.written, summary.coverage.covered, summary.coverage.total
                ),
                figures,
                timings: BTreeMap::new(),
            })
        }
        (Kind::Mix, StageConfig::Mix(config)) => {
            let mut real: Vec<PathBuf> = Vec::new();
            let mut synthetic: Vec<PathBuf> = Vec::new();
            let mut real_name = String::new();
            for input in &stage.inputs {
                let rubric_compiler::lower::plan::StageInput::Stage(id) = input else {
                    continue;
                };
                match plan.stage(id).map(|s| &s.config) {
                    Some(StageConfig::Label { source, path }) => {
                        real.push(source_file(runner, source)?);
                        real_name = path.clone();
                    }
                    Some(StageConfig::Synthesize(_)) => {
                        let dir = done
                            .get(id)
                            .map(|(d, _)| d)
                            .ok_or_else(|| format!("its input stage `{id}` has not run"))?;
                        synthetic.extend(
                            inputs
                                .iter()
                                .filter(|i| i.path.starts_with(dir))
                                .map(|i| i.path.clone()),
                        );
                    }
                    _ => {}
                }
            }
            let (Some(real_path), true, true) =
                (real.first(), real.len() == 1, synthetic.len() <= 1)
            else {
                return Err(format!(
                    "the mix reads one source of real pairs and at most one of synthetic pairs; \
                     this pipeline has {} and {}",
                    real.len(),
                    synthetic.len()
                ));
            };
            let engine = Engine::new(runner.compiled.lowered.labeling.clone());
            let real_input = MixInput::read(real_path).map_err(|e| e.to_string())?;
            let synthetic_input = synthetic
                .first()
                .map(|p| MixInput::read(p))
                .transpose()
                .map_err(|e| e.to_string())?;
            let pool_path = out.join("pool.jsonl");
            let validation_path = out.join("validation.jsonl");
            let mut pool = create(&pool_path)?;
            let mut validation = create(&validation_path)?;
            let mut manifest = mix(
                &engine,
                real_input,
                synthetic_input,
                &MixOptions::from_plan(config),
                &mut pool,
                &mut validation,
            )
            .map_err(|e| e.to_string())?;
            // The report names its inputs as the run does, not by where this run directory is.
            for (kind, record) in manifest.inputs.iter_mut() {
                let named = inputs
                    .iter()
                    .find(|i| Path::new(&record.path) == i.path)
                    .map(|i| i.name.clone());
                record.path = match (kind.as_str(), named) {
                    (_, Some(name)) => name,
                    ("real", None) => real_name.clone(),
                    (_, None) => record.path.clone(),
                };
            }
            let report = out.join("mix-report.json");
            crate::atomic::write(&report, manifest.json().as_bytes())
                .map_err(|e| write_error(&report, e))?;
            let c = &manifest.counts;
            let mut figures = BTreeMap::new();
            figures.insert("validation".to_string(), c.validation as f64);
            figures.insert("real_pool".to_string(), c.real_pool as f64);
            figures.insert("synthetic_pool".to_string(), c.synthetic_pool as f64);
            figures.insert("real_share".to_string(), config.real_share);
            Ok(StageOutcome {
                summary: format!(
                    "pool of {} real + {} synthetic pairs ({:.0}% real in every batch), {} held out for validation",
                    c.real_pool,
                    c.synthetic_pool,
                    config.real_share * 100.0,
                    c.validation
                ),
                figures,
                timings: BTreeMap::new(),
            })
        }
        (Kind::Teacher, StageConfig::TrainTeacher(config)) => {
            teacher(stage, config, context, observer)
        }
        (Kind::Distill, StageConfig::Distill(config)) => {
            distill_stage(stage, config, context, observer)
        }
        (Kind::Quantize, StageConfig::Quantize(config)) => {
            quantize_stage(stage, config, context, observer)
        }
        _ => Err(format!(
            "the stage `{}` has a configuration its kind does not take",
            stage.id
        )),
    }
}

/// Reports a teacher's training to the run's observer.
struct TeacherLines<'o> {
    observer: &'o mut dyn RunObserver,
}

impl crate::teach::TeacherObserver for TeacherLines<'_> {
    fn progress(&mut self, done: u64, total: u64) {
        self.observer.progress(done, total);
    }

    fn status(&mut self, text: &str) {
        self.observer.status(text);
    }

    fn note(&mut self, text: &str) {
        self.observer.note(text);
    }
}

/// The input of a stage that another stage wrote under this file name.
fn stage_file<'i>(inputs: &'i [ResolvedInput], stage: &str, file: &str) -> Option<&'i Path> {
    let name = format!("stage:{stage}/{file}");
    inputs
        .iter()
        .find(|i| i.name == name)
        .map(|i| i.path.as_path())
}

/// The mix's real share, and the pairs and click log a model stage reads.
fn model_sources<'i>(
    stage: &Stage,
    context: &Context<'i>,
) -> Result<(f64, crate::teach::examples::Sources<'i>), String> {
    use rubric_compiler::lower::plan::StageInput;
    let plan = context.runner.plan;
    let real_share = plan
        .stages
        .iter()
        .find_map(|s| match &s.config {
            StageConfig::Mix(m) => Some(m.real_share),
            _ => None,
        })
        .unwrap_or(1.0);
    let pool = stage_file(context.inputs, "mix", "pool.jsonl").ok_or_else(|| missing("mix"))?;
    let validation =
        stage_file(context.inputs, "mix", "validation.jsonl").ok_or_else(|| missing("mix"))?;
    let mut clicks = None;
    for input in &stage.inputs {
        if let StageInput::Stage(id) = input
            && let Some(StageConfig::Clean { source, .. }) = plan.stage(id).map(|s| &s.config)
        {
            clicks = Some(
                stage_file(context.inputs, id, &format!("{source}.clean.jsonl"))
                    .ok_or_else(|| missing(id))?,
            );
        }
    }
    Ok((
        real_share,
        crate::teach::examples::Sources {
            pool,
            validation,
            clicks,
        },
    ))
}

fn missing(what: &str) -> String {
    format!("its input `{what}` is missing; run the stages before it")
}

fn teacher(
    stage: &Stage,
    config: &rubric_compiler::lower::plan::TeacherConfig,
    context: &Context<'_>,
    observer: &mut dyn RunObserver,
) -> Result<StageOutcome, String> {
    let runner = context.runner;
    let plan = runner.plan;
    let (real_share, sources) = model_sources(stage, context)?;
    let from_teacher = match &config.model {
        rubric_compiler::lower::plan::ModelConfig::FromTeacher { teacher } => {
            let id = format!("teacher.{teacher}");
            let config =
                stage_file(context.inputs, &id, "model/config.json").ok_or_else(|| missing(&id))?;
            config.parent().map(Path::to_path_buf)
        }
        _ => None,
    };
    let device = rubric_ml::device::by_name(context.device)?;
    let engine = Engine::new(runner.compiled.lowered.labeling.clone());
    let job = crate::teach::TeacherJob {
        engine: &engine,
        config,
        real_share,
        base: &runner.base,
        device: &device,
        plan_hash: sha256_hex(deterministic_json(plan).as_bytes()),
        data: context
            .inputs
            .iter()
            .map(|i| (i.name.clone(), i.sha256.clone()))
            .collect(),
        from_teacher,
    };
    // Checkpoints beside the partial folder: a killed run resumes from them.
    let work = context.out.with_extension("train");
    let outcome = crate::teach::train_teacher(
        &job,
        &sources,
        context.out,
        &work,
        &mut TeacherLines { observer },
    )?;
    let card = &outcome.card;
    let mut figures: BTreeMap<String, f64> =
        card.metrics.iter().map(|(k, v)| (k.clone(), *v)).collect();
    figures.insert("parameters".to_string(), card.parameters as f64);
    figures.insert("train_rows".to_string(), card.train_rows as f64);
    figures.insert("validation_rows".to_string(), card.validation_rows as f64);
    figures.insert("epochs".to_string(), card.history.len() as f64);
    let mut timings = BTreeMap::new();
    timings.insert("train_seconds".to_string(), outcome.seconds);
    timings.insert("train_rows_per_second".to_string(), outcome.rows_per_second);
    if card.heads.click {
        figures.insert(
            "unjoined_clicks".to_string(),
            outcome.unjoined_clicks as f64,
        );
    }
    let headline: Vec<String> = ["policy_alignment", "grade_kappa", "ndcg@10", "click_auc"]
        .iter()
        .filter_map(|k| card.metrics.get(*k).map(|v| format!("{k} {v:.3}")))
        .collect();
    Ok(StageOutcome {
        summary: format!(
            "{} on {} held-out rows; {:.2} M parameters",
            if headline.is_empty() {
                "trained".to_string()
            } else {
                headline.join(", ")
            },
            card.validation_rows,
            card.parameters as f64 / 1e6,
        ),
        figures,
        timings,
    })
}

/// The distillation job of the distill stage's inputs.
fn distill_job<'c>(
    stage: &Stage,
    config: &'c rubric_compiler::lower::plan::StudentConfig,
    context: &Context<'c>,
    engine: &'c Engine,
    device: &'c candle_core::Device,
) -> Result<
    (
        crate::distill::DistillJob<'c>,
        crate::teach::examples::Sources<'c>,
    ),
    String,
> {
    use rubric_compiler::lower::plan::StageInput;
    let runner = context.runner;
    let terms = runner
        .compiled
        .lowered
        .loss_terms
        .as_ref()
        .map(|t| t.student.as_slice())
        .ok_or_else(|| "the pipeline's loss terms were not compiled".to_string())?;
    let (real_share, sources) = model_sources(stage, context)?;
    let mut teachers = BTreeMap::new();
    for input in &stage.inputs {
        let StageInput::Stage(id) = input else {
            continue;
        };
        let Some(StageConfig::TrainTeacher(t)) = runner.plan.stage(id).map(|s| &s.config) else {
            continue;
        };
        let prefix = format!("stage:{id}/{}/", crate::teach::MODEL_DIR);
        let files: Vec<(&str, &str)> = context
            .inputs
            .iter()
            .filter(|i| i.name.starts_with(&prefix))
            .map(|i| (i.name.as_str(), i.sha256.as_str()))
            .collect();
        let dir = stage_file(
            context.inputs,
            id,
            &format!("{}/config.json", crate::teach::MODEL_DIR),
        )
        .and_then(Path::parent)
        .ok_or_else(|| missing(id))?;
        teachers.insert(
            t.teacher.clone(),
            crate::distill::TeacherModel {
                dir: dir.to_path_buf(),
                checkpoint: sha256_hex(deterministic_json(&files).as_bytes()),
            },
        );
    }
    // The rows are the pool's and validation's pairs, the log's impressions for a student of
    // clicks, and the unlabeled pairs: their sources' hashes and what the student predicts say
    // which.
    let is_unlabeled = |name: &str| config.unlabeled.iter().any(|u| u.path == name);
    let sourced: Vec<(&str, &str)> = context
        .inputs
        .iter()
        .filter(|i| {
            i.name.starts_with("stage:mix/")
                || (i.name.starts_with("stage:clean.") && i.name.ends_with(".clean.jsonl"))
                || is_unlabeled(&i.name)
        })
        .map(|i| (i.name.as_str(), i.sha256.as_str()))
        .collect();
    let rows_hash = sha256_hex(
        deterministic_json(&(
            sourced,
            crate::distill::student_targets(terms),
            crate::distill::cache::CACHE_VERSION,
        ))
        .as_bytes(),
    );
    let job = crate::distill::DistillJob {
        engine,
        config,
        terms,
        real_share,
        base: &runner.base,
        device,
        plan_hash: sha256_hex(deterministic_json(runner.plan).as_bytes()),
        data: context
            .inputs
            .iter()
            .map(|i| (i.name.clone(), i.sha256.clone()))
            .collect(),
        teachers,
        rows_hash,
        cache: context.cache,
        unlabeled: config
            .unlabeled
            .iter()
            .map(|u| {
                context
                    .inputs
                    .iter()
                    .find(|i| i.name == u.path)
                    .map(|i| i.path.clone())
                    .ok_or_else(|| missing(&u.path))
            })
            .collect::<Result<_, String>>()?,
    };
    Ok((job, sources))
}

fn distill_stage(
    stage: &Stage,
    config: &rubric_compiler::lower::plan::StudentConfig,
    context: &Context<'_>,
    observer: &mut dyn RunObserver,
) -> Result<StageOutcome, String> {
    use crate::distill::{Variant, distill, report};
    let device = rubric_ml::device::by_name(context.device)?;
    let engine = Engine::new(context.runner.compiled.lowered.labeling.clone());
    let (job, sources) = distill_job(stage, config, context, &engine, &device)?;
    let work = context.out.with_extension("train");
    let outcome = distill(
        &job,
        &sources,
        Variant::Full,
        Some(context.out),
        &work,
        &mut TeacherLines { observer },
    )?;
    let r = &outcome.report;
    let path = context.out.join(report::REPORT);
    crate::atomic::write(&path, deterministic_json(r).as_bytes())
        .map_err(|e| write_error(&path, std::io::Error::other(e.to_string())))?;
    let mut figures: BTreeMap<String, f64> = r
        .student
        .metrics
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    figures.insert("parameters".to_string(), r.student.parameters as f64);
    figures.insert("train_rows".to_string(), r.rows.train as f64);
    if r.rows.unlabeled > 0 {
        figures.insert("unlabeled_rows".to_string(), r.rows.unlabeled as f64);
    }
    figures.insert("epochs".to_string(), r.epochs as f64);
    figures.insert("rebalances".to_string(), r.rebalances.len() as f64);
    figures.insert(
        "teacher_rows_scored".to_string(),
        outcome.teacher_rows_scored as f64,
    );
    for t in &r.teachers {
        for (k, v) in &t.metrics {
            figures.insert(format!("teacher.{}.{k}", t.name), *v);
        }
    }
    for x in &r.retention {
        figures.insert(format!("retention.{}.{}", x.teacher, x.metric), x.ratio);
    }
    for (t, ratio) in &r.compression {
        figures.insert(format!("compression.{t}"), *ratio);
    }
    let mut timings = BTreeMap::new();
    timings.insert("train_seconds".to_string(), outcome.seconds);
    timings.insert("train_rows_per_second".to_string(), outcome.rows_per_second);
    Ok(StageOutcome {
        summary: distill_summary(r),
        figures,
        timings,
    })
}

fn quantize_stage(
    stage: &Stage,
    config: &rubric_compiler::lower::plan::QuantizeConfig,
    context: &Context<'_>,
    observer: &mut dyn RunObserver,
) -> Result<StageOutcome, String> {
    use crate::quantize::{QuantizeJob, REPORT, quantize};
    let engine = Engine::new(context.runner.compiled.lowered.labeling.clone());
    let (_, sources) = model_sources(stage, context)?;
    let student = context
        .done
        .get(DISTILL_STAGE)
        .map(|(dir, _)| dir.join(crate::teach::MODEL_DIR))
        .ok_or_else(|| missing(DISTILL_STAGE))?;
    observer.note("measuring heads, pruning and quantizing the student");
    let started = std::time::Instant::now();
    let outcome = quantize(
        &QuantizeJob {
            engine: &engine,
            config,
            student: &student,
            sources,
        },
        context.out,
    )?;
    let r = &outcome.report;
    let path = context.out.join(REPORT);
    crate::atomic::write(&path, deterministic_json(r).as_bytes())
        .map_err(|e| write_error(&path, std::io::Error::other(e.to_string())))?;
    let mut figures = BTreeMap::new();
    for (prefix, m) in [("f32", &r.f32), ("pruned", &r.pruned), ("int8", &r.int8)] {
        for (k, v) in &m.metrics {
            figures.insert(format!("{prefix}.{k}"), *v);
        }
        figures.insert(format!("{prefix}.bytes"), m.bytes as f64);
    }
    for (k, v) in &r.relative_loss {
        figures.insert(format!("relative_loss.{k}"), *v);
    }
    figures.insert("compression".to_string(), r.compression);
    figures.insert("parameters".to_string(), r.parameters_after as f64);
    if let Some(p) = &r.pruning {
        figures.insert("heads_before".to_string(), p.heads_before as f64);
        figures.insert("heads_after".to_string(), p.heads_after as f64);
    }
    for l in &r.layers {
        figures.insert(
            format!(
                "layer_change.{}",
                serde_json::to_value(l.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
            l.change,
        );
    }
    let mut timings = BTreeMap::new();
    timings.insert(
        "quantize_seconds".to_string(),
        started.elapsed().as_secs_f64(),
    );
    for (model, v) in &outcome.pairs_per_second {
        timings.insert(format!("{model}.pairs_per_second"), *v);
    }
    Ok(StageOutcome {
        summary: quantize_summary(r),
        figures,
        timings,
    })
}

/// One line: what pruning and int8 cost, and how much smaller the model is (no timing: the
/// manifest is the same bytes for the same inputs, its timings aside).
fn quantize_summary(r: &crate::quantize::QuantizeReport) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &r.pruning {
        parts.push(format!(
            "{} of {} heads kept",
            p.heads_after, p.heads_before
        ));
    }
    for m in ["grade_kappa", "ndcg@10", "click_auc"] {
        if let (Some(a), Some(b)) = (r.f32.metrics.get(m), r.int8.metrics.get(m)) {
            parts.push(format!("{m} {a:.3} → {b:.3}"));
        }
    }
    parts.push(format!("{:.1}x smaller", r.compression));
    parts.join(", ")
}

/// One line: the student's headline metrics, what it retains, its size.
fn distill_summary(r: &crate::distill::report::DistillReport) -> String {
    let mut parts: Vec<String> = ["grade_kappa", "ndcg@10", "click_auc"]
        .iter()
        .filter_map(|k| {
            let v = r.student.metrics.get(*k)?;
            let kept = r
                .retention
                .iter()
                .find(|x| x.metric == *k)
                .map(|x| format!(" ({:.0}% of {})", x.ratio * 100.0, x.teacher))
                .unwrap_or_default();
            Some(format!("{k} {v:.3}{kept}"))
        })
        .collect();
    let fewest = r
        .compression
        .values()
        .fold(None, |m: Option<f64>, v| Some(m.map_or(*v, |m| m.min(*v))));
    parts.push(match fewest {
        Some(x) => format!(
            "{:.2} M parameters ({x:.1}x fewer)",
            r.student.parameters as f64 / 1e6
        ),
        None => format!("{:.2} M parameters", r.student.parameters as f64 / 1e6),
    });
    parts.join(", ")
}

/// Trains each of `variants` of the distill stage's student (or reads it back from `dir`), and
/// writes `ablations.json` there.
pub fn ablations(
    stage: &Stage,
    context: &Context<'_>,
    variants: &[crate::distill::Variant],
    dir: &Path,
    observer: &mut dyn RunObserver,
) -> Result<crate::distill::report::AblationReport, String> {
    use crate::distill::report::{AblationReport, AblationRow, DistillReport, REPORT};
    use crate::distill::{Variant, distill, variant_terms};
    let StageConfig::Distill(config) = &stage.config else {
        return Err(format!("the stage `{}` is not a student's", stage.id));
    };
    let device = rubric_ml::device::by_name(context.device)?;
    let engine = Engine::new(context.runner.compiled.lowered.labeling.clone());
    let (job, sources) = distill_job(stage, config, context, &engine, &device)?;
    let read = |path: &Path| -> Option<DistillReport> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    };
    let full = read(&context.out.join(REPORT)).ok_or_else(|| {
        format!(
            "cannot read the student's `{}`; run the distill stage again",
            context.out.join(REPORT).display()
        )
    })?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    let row = |r: &DistillReport| AblationRow {
        variant: r.variant,
        recipe: r.recipe.clone(),
        parameters: r.student.parameters,
        metrics: r.student.metrics.clone(),
        epochs: r.epochs,
    };
    let mut rows = vec![row(&full)];
    let mut skipped = Vec::new();
    let mut cards = BTreeMap::new();
    for (name, t) in &job.teachers {
        cards.insert(name.clone(), crate::teach::read_card(&t.dir)?);
    }
    let has_synthetic = full.rows.train > 0
        && read_pairs(sources.pool)
            .map_err(|e| e.to_string())?
            .iter()
            .any(|r| r.str_field("source") == Some("synthetic"));
    for variant in Variant::ABLATIONS
        .into_iter()
        .filter(|v| variants.contains(v))
    {
        if variant_terms(variant, job.terms, &cards, has_synthetic).is_none() {
            let why = match variant {
                Variant::NoSynthetic => "the pool has no synthetic pairs",
                Variant::NoTemporal => "no teacher reads the impression's time",
                Variant::NoDrift => "the student has no drift penalty",
                _ => "it would leave nothing out, or nothing to learn from",
            };
            skipped.push((variant, why.to_string()));
            continue;
        }
        let path = dir.join(format!("{}.json", variant.name()));
        let report = match read(&path) {
            Some(r) if r.variant == variant => r,
            _ => {
                observer.started(&format!("{}.{}", stage.id, variant.name()));
                let work = dir.join(format!("{}.train", variant.name()));
                let outcome = distill(
                    &job,
                    &sources,
                    variant,
                    None,
                    &work,
                    &mut TeacherLines {
                        observer: &mut *observer,
                    },
                )?;
                crate::atomic::write(&path, deterministic_json(&outcome.report).as_bytes())
                    .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
                outcome.report
            }
        };
        observer.ablation(variant.name(), &distill_summary(&report));
        rows.push(row(&report));
    }
    let report = AblationReport::new(rows, skipped);
    let path = dir.join("ablations.json");
    crate::atomic::write(&path, deterministic_json(&report).as_bytes())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))?;
    Ok(report)
}

/// The file of a declared source of pairs.
fn source_file(runner: &Runner<'_>, source: &str) -> Result<PathBuf, String> {
    runner
        .plan
        .stages
        .iter()
        .find_map(|s| match &s.config {
            StageConfig::Label { source: name, path } if name == source => {
                Some(runner.base.join(path))
            }
            _ => None,
        })
        .ok_or_else(|| format!("the pipeline declares no source of pairs `{source}`"))
}

fn create(path: &Path) -> Result<BufWriter<File>, String> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|e| write_error(path, e))
}

fn write_error(path: &Path, e: std::io::Error) -> String {
    format!("cannot write `{}`: {e}", path.display())
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn document(runner: &Runner<'_>, out: &Path) -> Result<StageOutcome, String> {
    let document = crate::doc::policy_document(runner.compiled);
    let files = crate::doc::write_document(&document, out).map_err(|e| e.to_string())?;
    Ok(StageOutcome {
        summary: format!("{} files", files.len()),
        figures: BTreeMap::new(),
        timings: BTreeMap::new(),
    })
}

fn label(
    runner: &Runner<'_>,
    source: &str,
    path: &Path,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<StageOutcome, String> {
    let engine = Engine::new(runner.compiled.lowered.labeling.clone());
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let file = File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let labels_path = out.join(format!("{source}.labels.jsonl"));
    let mut labels = create(&labels_path)?;
    let summary = label_stream(
        &engine,
        &mut input,
        &mut labels,
        None,
        LabelOptions::default(),
        &mut |bytes| progress(bytes, total),
    )
    .map_err(|e| format!("`{}`, {e}", path.display()))?;
    labels.flush().map_err(|e| write_error(&labels_path, e))?;
    let mut figures = BTreeMap::new();
    figures.insert("pairs".to_string(), summary.labeled as f64);
    Ok(StageOutcome {
        summary: format!("{} pairs labeled", summary.labeled),
        figures,
        timings: BTreeMap::new(),
    })
}

fn clean_log(
    plan: &TrainingPlan,
    source: &str,
    path: &Path,
    out: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<StageOutcome, String> {
    let total = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let kept_path = out.join(format!("{source}.clean.jsonl"));
    let quarantine_path = out.join(format!("{source}.quarantine.jsonl"));
    let mut kept = create(&kept_path)?;
    let mut quarantine = create(&quarantine_path)?;
    let owned = path.to_path_buf();
    let open = move || -> std::io::Result<Box<dyn BufRead>> {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(&owned)?,
        )))
    };
    let report = clean(
        plan,
        Some(source),
        &open,
        &CleanOptions {
            known_pairs: None,
            quarantine: true,
        },
        CleanOutputs {
            kept: &mut kept,
            quarantine: Some(&mut quarantine),
            dropped: None,
        },
        &mut |p| {
            let passes = p.passes.max(1) as u64;
            progress(
                (p.pass.saturating_sub(1) as u64) * total + p.bytes,
                total * passes,
            )
        },
    )
    .map_err(|e| format!("`{}`: {e}", path.display()))?;
    kept.flush().map_err(|e| write_error(&kept_path, e))?;
    quarantine
        .flush()
        .map_err(|e| write_error(&quarantine_path, e))?;
    let report_path = out.join(format!("{source}.clean-report.json"));
    crate::atomic::write(&report_path, report.to_json().as_bytes())
        .map_err(|e| write_error(&report_path, e))?;
    let r = &report.rows;
    let mut figures = BTreeMap::new();
    figures.insert("rows_in".to_string(), r.rows_in as f64);
    figures.insert("kept".to_string(), r.kept as f64);
    figures.insert("dropped".to_string(), r.dropped as f64);
    figures.insert("quarantined".to_string(), r.quarantined as f64);
    Ok(StageOutcome {
        summary: format!(
            "{} rows in: {} kept, {} dropped, {} quarantined",
            r.rows_in, r.kept, r.dropped, r.quarantined
        ),
        figures,
        timings: BTreeMap::new(),
    })
}
