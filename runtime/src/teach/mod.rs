//! The teacher stages of `rubric run`: a teacher learns the policy's judgement (the rubric's own
//! labels of the mixed real and synthetic pairs: dimension scores, the overall score, the grade)
//! or engagement (the cleaned click log, joined to its pairs), from what a served model sees —
//! the text the pipeline's `reads` names and its `features` — and is written in Hugging Face
//! layout with a card of what it was made from and how well it does on the held-out real pairs.
//! Nothing here is per model: the plan's typed configuration says everything.

pub mod examples;
pub mod features;
pub mod task;

use crate::compile::deterministic_json;
use crate::label::engine::Engine;
use candle_core::{DType, Device};
use candle_nn::Init;
use examples::{Heads, Sources, training_texts};
use features::FeatureEncoder;
use rubric_compiler::lower::ir::PolicyRef;
use rubric_compiler::lower::plan::{
    LossKind, LossTerm, ModelConfig, ModelInputs, Target, TeacherConfig, TrainConfig, Warmup,
};
use rubric_compiler::vocabulary::{self, Block};
use rubric_ml::checkpoint;
use rubric_ml::model::{BertConfig, HeadSpec, PairEncoder};
use rubric_ml::params::Params;
use rubric_ml::tokenize::{PairTokenizer, configure_for_pairs, learn_wordpiece};
use rubric_ml::train::{EpochRecord, TrainSettings, train};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;
use task::{TeacherTask, Tokens};
use tokenizers::Tokenizer;

/// The schema of a trained model's card, `model/rubric.json`.
pub const CARD_SCHEMA: &str = "rubric.model/1";
/// The card beside the Hugging Face files.
pub const CARD: &str = "rubric.json";
/// The folder of the trained model in a teacher or distill stage's outputs.
pub const MODEL_DIR: &str = "model";
/// The name of the training-only position bias in `model.safetensors` (not read when scoring).
pub const POSITION_BIAS: &str = "training.position_bias";
/// The most impression positions with a bias of their own; later ones share the last.
pub const MAX_POSITIONS: usize = 64;

/// What a trained model (a teacher, or the student) is: written beside its weights so that
/// distillation, evaluation and serving encode pairs exactly as training did, and reports say
/// what it was made from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    pub schema: String,
    /// The teacher's name, or `student`.
    pub name: String,
    pub policy: PolicyRef,
    /// SHA-256 of the training plan it was trained by.
    pub plan: String,
    /// Every input of the stage with its SHA-256.
    pub data: BTreeMap<String, String>,
    pub targets: Vec<Target>,
    pub heads: HeadSpec,
    /// The policy's roles in declaration order: a pair is `{ROLE: record, ...}`, and the first
    /// role's text is the query side of the encoded pair (what `rubric score` and `rubric
    /// serve` need to build pairs without the policy).
    #[serde(default)]
    pub roles: Vec<String>,
    /// The dimensions whose scores are reported on the rubric's few levels
    /// ([`examples::Levels`]); none on a card written before there were levels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub levels: examples::Levels,
    pub inputs: ModelInputs,
    /// The fitted features, in `inputs.features` order.
    pub features: FeatureEncoder,
    /// Word pieces of a (query, candidate) pair.
    pub max_len: usize,
    /// What it learned from.
    pub objective: Objective,
    pub train: TrainConfig,
    pub parameters: usize,
    pub train_rows: usize,
    pub validation_rows: usize,
    /// The held-out real pairs' metrics after the last epoch.
    pub metrics: BTreeMap<String, f64>,
    pub history: Vec<EpochRecord>,
}

impl ModelCard {
    /// The heads the model was trained with, its dimensions' levels among them.
    pub fn heads_for(&self, engine: &Engine) -> Result<Heads, String> {
        Ok(Heads {
            levels: self.levels.clone(),
            ..Heads::new(&self.targets, engine)?
        })
    }
}

/// A model's objective, as the loss terms declared it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Objective {
    /// A teacher's: its loss on every target, logits divided by the temperature.
    Teacher { loss: LossKind, temperature: f64 },
    /// The student's: the sum of the terms, with the drift penalty's weight as rebalanced.
    Student { terms: Vec<LossTerm> },
}

/// How a teacher stage reports while it trains.
pub trait TeacherObserver {
    /// Optimizer steps done of all.
    fn progress(&mut self, done: u64, total: u64);
    /// The latest loss, beside the progress bar.
    fn status(&mut self, text: &str);
    /// An epoch's validation metrics, kept in the log.
    fn note(&mut self, text: &str);
}

/// A teacher to train, and what it needs besides its data.
pub struct TeacherJob<'a> {
    pub engine: &'a Engine,
    pub config: &'a TeacherConfig,
    /// The share of real rows in every batch (the mix's).
    pub real_share: f64,
    /// The pipeline's folder: `model init` paths are relative to it.
    pub base: &'a Path,
    pub device: &'a Device,
    /// SHA-256 of the training plan.
    pub plan_hash: String,
    /// The stage's inputs by name, with their SHA-256.
    pub data: BTreeMap<String, String>,
    /// The model folder of the teacher this one starts from (`model from teacher NAME`).
    pub from_teacher: Option<std::path::PathBuf>,
}

/// What a trained teacher reports.
pub struct TeacherOutcome {
    pub card: ModelCard,
    /// Seconds of training and the rows it went through per second.
    pub seconds: f64,
    pub rows_per_second: f64,
    pub unjoined_clicks: u64,
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// How a model (a teacher, or the student) starts: what the plan says of it.
pub struct Start<'a> {
    pub model: &'a ModelConfig,
    pub inputs: &'a ModelInputs,
    pub seed: u64,
    pub dropout: f64,
    /// The pipeline's folder: `model init` paths are relative to it.
    pub base: &'a Path,
    pub device: &'a Device,
}

/// A checkpoint's configuration, tokenizer and the tensors `keep` wants, on the start's device.
fn checkpoint_start(
    start: &Start<'_>,
    dir: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<(BertConfig, Tokenizer, Params), String> {
    let ckpt = checkpoint::load(dir, &Device::Cpu).map_err(fail)?;
    let encoder = checkpoint::encoder_shapes(&ckpt.config);
    let tensors = ckpt
        .tensors
        .into_iter()
        .filter(|(n, _)| encoder.contains_key(n) || n.starts_with("pooler.") || keep(n))
        .map(|(n, t)| t.to_device(start.device).map(|t| (n, t)))
        .collect::<candle_core::Result<_>>()
        .map_err(fail)?;
    Ok((
        ckpt.config,
        ckpt.tokenizer,
        Params::starting_from(start.seed, tensors),
    ))
}

/// The teacher a model starts from (`model from teacher NAME`): its model folder and card.
pub struct Source {
    pub dir: std::path::PathBuf,
    pub card: ModelCard,
}

impl Source {
    pub fn open(dir: &Path) -> Result<Source, String> {
        Ok(Source {
            dir: dir.to_path_buf(),
            card: read_card(dir)?,
        })
    }

    /// Whether the two read the same features, so the trained feature layers (and the fitted
    /// encoding) carry over.
    pub fn same_features(&self, inputs: &ModelInputs) -> bool {
        self.card.inputs.features == inputs.features
    }
}

/// The encoder's configuration, tokenizer (set up for pairs) and starting weights; `train` are
/// the rows a new tokenizer is learned from.
pub fn model_start(
    start: &Start<'_>,
    train: &[examples::Example],
    source: Option<&Source>,
) -> Result<(BertConfig, Tokenizer, Params), String> {
    let default_len = vocabulary::default_number(Block::Encoder, "max_len") as usize;
    let (mut cfg, mut tokenizer, params) = match start.model {
        ModelConfig::Encoder(e) => {
            let texts = training_texts(train);
            let vocab = usize::try_from(e.vocab).map_err(fail)?;
            let tokenizer = learn_wordpiece(texts.iter().copied(), vocab)?;
            let size = |v: u64| usize::try_from(v).map_err(fail);
            let cfg = BertConfig::new(
                tokenizer.get_vocab_size(true),
                size(e.hidden)?,
                size(e.layers)?,
                size(e.heads)?,
                size(e.intermediate)?,
                size(e.max_len)?,
            );
            (cfg, tokenizer, Params::seeded(start.seed))
        }
        // The encoder and BERT's pooler start from the checkpoint; the heads are this
        // model's own (another model's may predict other things).
        ModelConfig::Init { path } => checkpoint_start(start, &start.base.join(path), |_| false)?,
        ModelConfig::FromTeacher { teacher } => {
            let source = source.ok_or_else(|| {
                format!("the teacher `{teacher}` it starts from has not been trained")
            })?;
            let keep_features = source.same_features(start.inputs);
            checkpoint_start(start, &source.dir, |n| {
                keep_features && n.starts_with("features.")
            })?
        }
    };
    cfg.hidden_dropout_prob = start.dropout;
    cfg.attention_probs_dropout_prob = start.dropout;
    cfg.validate()?;
    let max_len = match (start.model, source) {
        (ModelConfig::Encoder(_), _) => cfg.max_position_embeddings,
        (ModelConfig::FromTeacher { .. }, Some(s)) => s.card.max_len,
        _ => default_len.min(cfg.max_position_embeddings),
    };
    configure_for_pairs(&mut tokenizer, max_len)?;
    Ok((cfg, tokenizer, params))
}

/// What an earlier, killed run left while removing the checkpoints of `work`.
fn trash_of(work: &Path) -> std::path::PathBuf {
    work.with_extension("train.old")
}

fn remove_dir(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot remove `{}`: {e}", dir.display()))?;
    }
    Ok(())
}

/// Removes a finished model's checkpoints, moved aside first: a run killed while removing
/// leaves no half checkpoint to resume from.
pub fn remove_checkpoints(work: &Path) -> Result<(), String> {
    let trash = trash_of(work);
    remove_dir(&trash)?;
    if work.exists() {
        std::fs::rename(work, &trash)
            .map_err(|e| format!("cannot move `{}` aside: {e}", work.display()))?;
    }
    remove_dir(&trash)
}

/// The training-only bias per impression position of a model that learns the log's clicks
/// (the first [`MAX_POSITIONS`]; later ones share the last), starting at 0.
pub fn position_bias(
    vb: &candle_nn::VarBuilder<'_>,
    rows: &[examples::Example],
) -> Result<candle_core::Tensor, String> {
    let slots = rows
        .iter()
        .map(|e| e.position as usize)
        .max()
        .unwrap_or(1)
        .clamp(1, MAX_POSITIONS);
    vb.get_with_hints(slots, POSITION_BIAS, Init::Const(0.0))
        .map_err(fail)
}

/// A model's training as its `train` and `regularize` declare it.
pub struct Training {
    pub settings: TrainSettings,
    pub total_steps: u64,
}

impl Training {
    pub fn new(
        train: &TrainConfig,
        regularize: &rubric_compiler::lower::plan::Regularization,
        steps_per_epoch: u64,
        early_stop: Option<rubric_ml::train::EarlyStopping>,
    ) -> Training {
        let total_steps = steps_per_epoch * train.epochs;
        Training {
            settings: TrainSettings {
                epochs: train.epochs,
                accumulate: train.accumulate.max(1),
                lr: train.lr,
                warmup: match train.warmup {
                    Warmup::Steps(n) => n,
                    Warmup::Fraction(f) => (f * total_steps as f64).round() as u64,
                },
                clip_norm: train.clip_norm,
                weight_decay: regularize.weight_decay,
                seed: train.seed,
                early_stop,
                checkpoint_every: 0,
            },
            total_steps,
        }
    }

    /// Trains `params` on `task` with checkpoints in `work`, each step's loss shown after
    /// `label`; the report, the seconds it took and the rows it went through per second.
    pub fn train(
        &self,
        params: &Params,
        task: &dyn rubric_ml::train::Task,
        work: &Path,
        batch: usize,
        observer: &RefCell<&mut dyn TeacherObserver>,
        label: &str,
    ) -> Result<(rubric_ml::train::TrainReport, f64, f64), String> {
        let started = Instant::now();
        let report = train(
            params,
            task,
            &self.settings,
            Some(work),
            &mut |step, loss| {
                let mut o = observer.borrow_mut();
                o.progress(step, self.total_steps);
                o.status(&format!("{label}loss {loss:.4}"));
            },
        )
        .map_err(fail)?;
        let seconds = started.elapsed().as_secs_f64();
        let rows = report.state.step * self.settings.accumulate * batch as u64;
        let per_second = if seconds > 0.0 {
            rows as f64 / seconds
        } else {
            0.0
        };
        Ok((report, seconds, per_second))
    }
}

/// Every row's word pieces, unpadded.
pub fn tokenize(tokenizer: &Tokenizer, rows: &[examples::Example]) -> Result<Vec<Tokens>, String> {
    let mut out = Vec::with_capacity(rows.len());
    let encoder = PairTokenizer::new(tokenizer)?;
    for chunk in rows.chunks(1024) {
        let pairs: Vec<(String, String)> = chunk.iter().map(|e| e.texts.clone()).collect();
        for e in encoder.encode(&pairs)? {
            let n = e.mask.iter().filter(|m| **m == 1).count();
            out.push(Tokens {
                ids: e.ids.into_iter().take(n).collect(),
                types: e.type_ids.into_iter().take(n).collect(),
            });
        }
    }
    Ok(out)
}

/// Trains the teacher on `sources`, writes it to `out/model/` (Hugging Face layout and its
/// card), and keeps its checkpoints in `work/` meanwhile, so that a killed run resumes there.
pub fn train_teacher(
    job: &TeacherJob<'_>,
    sources: &Sources<'_>,
    out: &Path,
    work: &Path,
    observer: &mut dyn TeacherObserver,
) -> Result<TeacherOutcome, String> {
    let c = job.config;
    remove_dir(&trash_of(work))?;
    let mut heads = Heads::new(&c.targets, job.engine)?;
    let source = match (&c.model, &job.from_teacher) {
        (ModelConfig::FromTeacher { .. }, Some(dir)) => Some(Source::open(dir)?),
        _ => None,
    };
    let fitted = source
        .as_ref()
        .filter(|s| s.same_features(&c.inputs))
        .map(|s| &s.card.features);
    let examples = examples::build(job.engine, &heads, &c.inputs, fitted, sources)?;
    heads.levels = examples::levels_of(&heads.scores, &examples.train);
    let batch = usize::try_from(c.train.batch).map_err(fail)?.max(1);
    if examples.train.len() < batch {
        return Err(format!(
            "the teacher `{}` has {} training rows, fewer than one batch of {batch}: add data or \
             lower `train {{ batch }}`",
            c.teacher,
            examples.train.len()
        ));
    }
    let start = Start {
        model: &c.model,
        inputs: &c.inputs,
        seed: c.train.seed,
        dropout: c.regularize.dropout,
        base: job.base,
        device: job.device,
    };
    let (cfg, tokenizer, params) = model_start(&start, &examples.train, source.as_ref())?;
    let train_tokens = tokenize(&tokenizer, &examples.train)?;
    let validation_tokens = tokenize(&tokenizer, &examples.validation)?;
    let spec = HeadSpec {
        scores: heads.scores.iter().map(|(n, _)| n.clone()).collect(),
        grades: heads.grades.clone(),
        click: heads.click,
    };
    let vb = params.builder(DType::F32, job.device);
    let model =
        PairEncoder::new(&cfg, examples.features.width(), &spec, vb.clone()).map_err(fail)?;
    let position_bias = if heads.click {
        Some(position_bias(&vb, &examples.train)?)
    } else {
        None
    };
    let parameters = params.count();

    let observer = RefCell::new(observer);
    let epochs = c.train.epochs;
    let epoch_seen = RefCell::new(0u64);
    let task = TeacherTask {
        model: &model,
        heads: &heads,
        train: &examples.train,
        train_tokens: &train_tokens,
        validation: &examples.validation,
        validation_tokens: &validation_tokens,
        batch,
        // The mix's share holds where there are both kinds; clicks are of real pairs only.
        real_share: if examples.train.iter().all(|e| e.real) {
            1.0
        } else {
            job.real_share
        },
        loss: c.loss,
        temperature: c.temperature,
        position_bias,
        device: job.device.clone(),
        on_epoch: RefCell::new(Box::new(|metrics: &BTreeMap<String, f64>| {
            let mut seen = epoch_seen.borrow_mut();
            *seen += 1;
            let shown: Vec<String> = metrics
                .iter()
                .filter(|(k, _)| !k.contains('.'))
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect();
            observer
                .borrow_mut()
                .note(&format!("epoch {}/{epochs}: {}", *seen, shown.join(", ")));
        })),
    };
    let steps_per_epoch = (rubric_ml::train::Task::batches(&task, c.train.seed, 0).len() as u64)
        .div_ceil(c.train.accumulate.max(1));
    if steps_per_epoch == 0 {
        return Err(format!(
            "the teacher `{}` draws no full batch of {batch} from its {} training rows at {:.0}% \
             real: add data or lower `train {{ batch }}`",
            c.teacher,
            examples.train.len(),
            task.real_share * 100.0
        ));
    }
    let run = Training::new(&c.train, &c.regularize, steps_per_epoch, None);
    let (report, seconds, rows_per_second) =
        run.train(&params, &task, work, batch, &observer, "")?;
    let metrics = report
        .state
        .kept()
        .map(|h| h.metrics.clone())
        .unwrap_or_default();

    let model_dir = out.join(MODEL_DIR);
    checkpoint::save(&model_dir, &cfg, &params, &tokenizer).map_err(fail)?;
    let card = ModelCard {
        schema: CARD_SCHEMA.to_string(),
        name: c.teacher.clone(),
        policy: job.engine.program.policy.clone(),
        plan: job.plan_hash.clone(),
        data: job.data.clone(),
        targets: c.targets.clone(),
        heads: spec,
        roles: roles_of(job.engine),
        levels: heads.levels.clone(),
        inputs: c.inputs.clone(),
        features: examples.features.clone(),
        max_len: tokenizer
            .get_truncation()
            .map_or(cfg.max_position_embeddings, |t| t.max_length),
        objective: Objective::Teacher {
            loss: c.loss,
            temperature: c.temperature,
        },
        train: c.train.clone(),
        parameters,
        train_rows: examples.train.len(),
        validation_rows: examples.validation.len(),
        metrics,
        history: report.state.history.clone(),
    };
    let card_path = model_dir.join(CARD);
    crate::atomic::write(&card_path, deterministic_json(&card).as_bytes())
        .map_err(|e| format!("cannot write `{}`: {e}", card_path.display()))?;
    remove_checkpoints(work)?;
    Ok(TeacherOutcome {
        card,
        seconds,
        rows_per_second,
        unjoined_clicks: examples.unjoined_clicks,
    })
}

/// A trained model (a teacher, or the student) read back for scoring: its card, its tokenizer
/// and its frozen weights — plain tensors, not variables, so scoring records no graph.
pub struct TrainedModel {
    pub card: ModelCard,
    pub heads: Heads,
    pub model: PairEncoder,
    pub tokenizer: Tokenizer,
    device: Device,
}

impl TrainedModel {
    /// Reads `model_dir` (a teacher stage's `model/`) for the policy `engine` runs.
    pub fn load(
        model_dir: &Path,
        engine: &Engine,
        device: &Device,
    ) -> Result<TrainedModel, String> {
        let card = read_card(model_dir)?;
        let heads = card.heads_for(engine)?;
        let ckpt = checkpoint::load(model_dir, &Device::Cpu).map_err(fail)?;
        let tensors = ckpt
            .tensors
            .into_iter()
            .map(|(n, t)| t.to_device(device).map(|t| (n, t)))
            .collect::<candle_core::Result<_>>()
            .map_err(fail)?;
        let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, device);
        let model = PairEncoder::new(&ckpt.config, card.features.width(), &card.heads, vb)
            .map_err(|e| format!("`{}`: {e}", model_dir.display()))?;
        let mut tokenizer = ckpt.tokenizer;
        configure_for_pairs(&mut tokenizer, card.max_len)?;
        Ok(TrainedModel {
            card,
            heads,
            model,
            tokenizer,
            device: device.clone(),
        })
    }

    /// The teacher's outputs on rows built for its heads and inputs.
    pub fn score(&self, rows: &[examples::Example]) -> Result<task::Predictions, String> {
        let tokens = tokenize(&self.tokenizer, rows)?;
        task::predict(&self.model, rows, &tokens, &self.device).map_err(fail)
    }

    /// The model's logits on rows built for its heads and inputs.
    pub fn logits(&self, rows: &[examples::Example]) -> Result<task::Logits, String> {
        let tokens = tokenize(&self.tokenizer, rows)?;
        task::logits(&self.model, rows, &tokens, &self.device).map_err(fail)
    }
}

/// The policy's roles in declaration order, as a card records them.
pub fn roles_of(engine: &Engine) -> Vec<String> {
    engine
        .program
        .roles
        .iter()
        .map(|r| r.name.clone())
        .collect()
}

/// A trained model's card read back from its model folder.
pub fn read_card(model_dir: &Path) -> Result<ModelCard, String> {
    let path = model_dir.join(CARD);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let card: ModelCard =
        serde_json::from_str(&text).map_err(|e| format!("`{}`: {e}", path.display()))?;
    if card.schema != CARD_SCHEMA {
        return Err(format!(
            "`{}` is a `{}` card; this rubric reads `{CARD_SCHEMA}`",
            path.display(),
            card.schema
        ));
    }
    Ok(card)
}
