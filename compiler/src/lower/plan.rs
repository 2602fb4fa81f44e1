//! The pipeline's two artefacts, the contract every stage reads: the loss terms the trainers
//! build their objectives from (nothing about losses is hard-coded downstream) and the training
//! plan, a DAG of stages with typed configurations whose every default was resolved here from
//! the pipeline vocabulary (`crate::vocabulary`), so no stage invents one.

use super::SourceMap;
use super::ir::{LabelingProgram, PolicyRef, ValueType};
use crate::PolicyInfo;
use crate::source::Sources;
use crate::syntax::ast::*;
use crate::vocabulary::{self, Block, Direction, MetricUnit};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use super::clean::{CleanExprIr, CleanRuleIr};

pub const LOSS_TERMS_SCHEMA: &str = "rubric.loss-terms/3";
pub const TRAINING_PLAN_SCHEMA: &str = "rubric.training-plan/3";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossTerms {
    pub schema: String,
    pub policy: PolicyRef,
    pub pipeline: String,
    /// What each teacher is trained on, by teacher.
    pub teachers: Vec<TeacherObjective>,
    /// The student's objective: the sum of these terms.
    pub student: Vec<LossTerm>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherObjective {
    pub teacher: String,
    pub targets: Vec<Target>,
    pub loss: LossKind,
    pub temperature: f64,
}

/// What a model predicts. `predicts dimensions` is resolved to one target per dimension of the
/// policy, in declaration order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Target {
    /// One dimension's score.
    Dimension(String),
    /// The overall score.
    Overall,
    /// The distribution over the overall grades.
    Grades,
    /// The click probability.
    Click,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    Mse,
    Bce,
    Kl,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "term", deny_unknown_fields)]
pub enum LossTerm {
    /// Match a teacher's outputs on its targets.
    Distill {
        teacher: String,
        targets: Vec<Target>,
        weight: f64,
        loss: LossKind,
        /// Softening of logits before comparison (1 = none).
        temperature: f64,
    },
    /// Learn the ground truth itself (`learn rubric|SOURCE`): the rubric's labels of the pairs
    /// on `targets` (scores by the term's loss, grades by cross-entropy, or squared error with
    /// `mse`), or a click log's clicks (with a training-only bias per position).
    Learn {
        labels: LabelSource,
        targets: Vec<Target>,
        weight: f64,
        loss: LossKind,
    },
    DriftPenalty(DriftPenalty),
    /// `weight × Σ w²` over the student's weights (`regularize l2`); present when above 0.
    L2 {
        weight: f64,
    },
}

/// Where a `learn` term's labels come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LabelSource {
    /// The rubric's labels of the training pairs: each dimension's score, the overall score and
    /// grade.
    Rubric,
    /// The clicks of the click log declared as `source`, on its cleaned impressions.
    Clicks { source: String },
}

/// Keeps the student on policy: a hinge on |student − reference| beyond a tolerance, per
/// policy target, with its weight rebalanced from measured drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftPenalty {
    pub weight: f64,
    pub tolerance: f64,
    /// What drift is measured against.
    pub against: DriftReference,
    /// The policy targets the penalty compares (the reference's targets).
    pub targets: Vec<Target>,
    pub rebalance: Option<Rebalance>,
}

/// The reference of the drift penalty: a named teacher's scores, or the rubric's labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DriftReference {
    Teacher { name: String },
    Rubric,
}

/// Every `every_epochs` epochs the weight is multiplied by measured drift / `target_drift`,
/// clamped to [`min_factor`, `max_factor`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rebalance {
    pub every_epochs: u64,
    pub target_drift: f64,
    pub min_factor: f64,
    pub max_factor: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingPlan {
    pub schema: String,
    pub policy: PolicyRef,
    pub pipeline: String,
    /// In an order that respects their inputs (a topological order of the DAG).
    pub stages: Vec<Stage>,
}

impl TrainingPlan {
    /// The stage with this id.
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    pub id: String,
    /// What this stage reads: other stages' outputs and declared files.
    pub inputs: Vec<StageInput>,
    /// The files it writes, by name (in its own output folder).
    pub outputs: Vec<String>,
    pub config: StageConfig,
}

/// One input of a stage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageInput {
    /// Every output of another stage, by its id.
    Stage(String),
    /// A file declared in the pipeline, relative to the pipeline's file.
    File(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage", deny_unknown_fields)]
pub enum StageConfig {
    /// Labels a declared source of pairs with the policy.
    Label {
        source: String,
        path: String,
    },
    /// Cleans a declared click log.
    Clean {
        source: String,
        path: String,
        rules: Vec<CleanRuleIr>,
    },
    Synthesize(SynthesizeConfig),
    Mix(MixConfig),
    TrainTeacher(TeacherConfig),
    Distill(StudentConfig),
    Quantize(QuantizeConfig),
    Evaluate {
        metrics: Vec<String>,
    },
    Monitor {
        alerts: Vec<Alert>,
    },
}

/// `synthetic from SOURCE { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthesizeConfig {
    pub from: String,
    pub count: u64,
    pub strategy: SynthesisStrategy,
    pub seed: u64,
    /// Share of records whose prose is paraphrased (0: none).
    pub paraphrase: f64,
    /// The validation split that synthesis must never draw from (the mix's).
    pub validation: f64,
    pub split_seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SynthesisStrategy {
    Coverage,
    Uniform,
    Boundary,
}

impl SynthesisStrategy {
    pub fn name(self) -> &'static str {
        match self {
            SynthesisStrategy::Coverage => "coverage",
            SynthesisStrategy::Uniform => "uniform",
            SynthesisStrategy::Boundary => "boundary",
        }
    }
}

/// `mix real P synthetic P` and `split validation P seed N`: what the mix stage splits and pools,
/// and the share of real rows the trainers' sampler holds in every batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixConfig {
    pub real_share: f64,
    pub synthetic_share: f64,
    /// Share of real pairs held out for validation, stratified by overall grade.
    pub validation: f64,
    /// Seed of the split and of every epoch's batch order.
    pub seed: u64,
}

/// `teacher NAME { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeacherConfig {
    pub teacher: String,
    pub model: ModelConfig,
    pub targets: Vec<Target>,
    pub loss: LossKind,
    pub temperature: f64,
    pub train: TrainConfig,
    pub regularize: Regularization,
    pub inputs: ModelInputs,
}

/// `student { ... }`: its objective is the loss terms' `student` list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudentConfig {
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub regularize: Regularization,
    pub inputs: ModelInputs,
    pub early_stop: Option<EarlyStop>,
    /// The `unlabeled NAME "path"` sources: pairs no label exists for, which the teachers score
    /// and the student learns by its distillation terms alone (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unlabeled: Vec<UnlabeledPairs>,
}

/// A source of pairs with no label, by name and path (relative to the pipeline's file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlabeledPairs {
    pub source: String,
    pub path: String,
}

/// What a model reads: the text of each side of the pair and the structured features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelInputs {
    /// `reads [...]`, or by default every `text` field of the query, then of the candidate, in
    /// declaration order. Each side's fields are joined into one text, one per line. Empty
    /// (`reads []`): the model reads no text, only its features.
    pub reads: Vec<InputField>,
    /// `features [...]`, in the order written.
    pub features: Vec<Feature>,
}

/// A field of one of the pair's roles.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputField {
    pub role: String,
    pub field: String,
}

/// A structured input and how it is encoded as numbers. A missing value (an optional field left
/// out) is all zeros.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Feature {
    /// A number, scaled by the training pairs' median and interquartile range (and compressed
    /// beyond them), and whether it is missing.
    Number { role: String, field: String },
    /// 1 for true, 0 for false.
    Bool { role: String, field: String },
    /// One of the values, one-hot. `values` are an enum's in declaration order; empty for a
    /// string, whose values are the training pairs' most frequent ones (the rest share a slot).
    OneOf {
        role: String,
        field: String,
        values: Vec<String>,
    },
    /// Any of the values (a set or a list), multi-hot; `values` as for `OneOf`.
    AnyOf {
        role: String,
        field: String,
        values: Vec<String>,
    },
    /// The impression's hour (0–23, UTC), one-hot: only in models that learn from clicks.
    HourOfDay,
    /// The impression's day of the week (Monday first), one-hot.
    DayOfWeek,
}

impl Feature {
    /// The name the pipeline wrote: `query.seniority`, `hour_of_day`.
    pub fn name(&self) -> String {
        match self {
            Feature::Number { role, field }
            | Feature::Bool { role, field }
            | Feature::OneOf { role, field, .. }
            | Feature::AnyOf { role, field, .. } => format!("{role}.{field}"),
            Feature::HourOfDay => "hour_of_day".to_string(),
            Feature::DayOfWeek => "day_of_week".to_string(),
        }
    }
}

/// A model's architecture, or the checkpoint it starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum ModelConfig {
    Encoder(EncoderConfig),
    /// A checkpoint in Hugging Face layout, relative to the pipeline's file.
    Init {
        path: String,
    },
    /// The trained weights of a teacher of the pipeline (a stage this one reads).
    FromTeacher {
        teacher: String,
    },
}

/// `model encoder { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub intermediate: u64,
    pub max_len: u64,
    pub vocab: u64,
}

/// `train { ... }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub epochs: u64,
    pub lr: f64,
    pub batch: u64,
    pub warmup: Warmup,
    pub accumulate: u64,
    pub clip_norm: f64,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Warmup {
    Steps(u64),
    /// A fraction of all optimizer steps.
    Fraction(f64),
}

/// `regularize ...`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regularization {
    pub weight_decay: f64,
    pub dropout: f64,
    /// The weight of the L2 loss term (also in the loss terms when above 0).
    pub l2: f64,
}

/// `early_stop on METRIC patience N`: stop after `patience` epochs without an improvement of
/// more than `min_delta` in `direction`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStop {
    pub metric: String,
    pub direction: Direction,
    pub patience: u64,
    pub min_delta: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuantizeConfig {
    pub scheme: QuantScheme,
    pub prune_heads_below: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantScheme {
    Int8,
}

/// `alert METRIC OP THRESHOLD`, the threshold in the metric's unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alert {
    pub metric: String,
    pub op: String,
    pub threshold: f64,
    pub unit: MetricUnit,
}

/// Why an artefact could not be read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArtefactError {
    /// Not JSON, or JSON without a `schema` string.
    Malformed { what: &'static str, message: String },
    /// Written by another version of rubric.
    Schema {
        what: &'static str,
        found: String,
        expected: &'static str,
    },
}

impl std::fmt::Display for ArtefactError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArtefactError::Malformed { what, message } => {
                write!(f, "the {what} is not readable: {message}")
            }
            ArtefactError::Schema {
                what,
                found,
                expected,
            } => write!(
                f,
                "the {what} has schema `{found}`, but this rubric reads `{expected}`; compile the \
                 policy again with this rubric (`rubric compile`)"
            ),
        }
    }
}

impl std::error::Error for ArtefactError {}

/// Reads an artefact written by [`serde_json`], checking its schema version first so a
/// mismatch says so instead of naming a missing field.
pub fn read_artefact<T: DeserializeOwned>(
    text: &str,
    what: &'static str,
    expected: &'static str,
) -> Result<T, ArtefactError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ArtefactError::Malformed {
            what,
            message: e.to_string(),
        })?;
    let Some(found) = value.get("schema").and_then(|s| s.as_str()) else {
        return Err(ArtefactError::Malformed {
            what,
            message: "it has no `schema`".to_string(),
        });
    };
    if found != expected {
        return Err(ArtefactError::Schema {
            what,
            found: found.to_string(),
            expected,
        });
    }
    serde_json::from_value(value).map_err(|e| ArtefactError::Malformed {
        what,
        message: e.to_string(),
    })
}

impl TrainingPlan {
    pub fn from_json(text: &str) -> Result<TrainingPlan, ArtefactError> {
        read_artefact(text, "training plan", TRAINING_PLAN_SCHEMA)
    }
}

impl LossTerms {
    pub fn from_json(text: &str) -> Result<LossTerms, ArtefactError> {
        read_artefact(text, "loss terms", LOSS_TERMS_SCHEMA)
    }
}

// ---------------------------------------------------------------------------------------------
// Lowering: every value read from the pipeline or, when left out, from the vocabulary.

/// A number setting as written, or its vocabulary default.
fn number(settings: &[Setting], block: Block, key: &str) -> f64 {
    settings
        .iter()
        .find(|s| s.key.name == key)
        .and_then(|s| match s.value {
            SettingValue::Number(n) | SettingValue::Percent(n) | SettingValue::Duration(n) => {
                Some(n)
            }
            _ => None,
        })
        .unwrap_or_else(|| vocabulary::default_number(block, key))
}

/// A whole-number setting (the checker proved it whole and in range).
fn count(settings: &[Setting], block: Block, key: &str) -> u64 {
    number(settings, block, key).max(0.0) as u64
}

fn encoder(settings: &[Setting]) -> Result<EncoderConfig, String> {
    let required = |key: &str| {
        settings
            .iter()
            .any(|s| s.key.name == key)
            .then(|| count(settings, Block::Encoder, key))
            .ok_or_else(|| format!("`model encoder` without `{key}` passed the check"))
    };
    let hidden = required("hidden")?;
    let given = |key: &str| settings.iter().any(|s| s.key.name == key);
    Ok(EncoderConfig {
        layers: required("layers")?,
        hidden,
        heads: required("heads")?,
        intermediate: if given("intermediate") {
            count(settings, Block::Encoder, "intermediate")
        } else {
            4 * hidden
        },
        max_len: count(settings, Block::Encoder, "max_len"),
        vocab: count(settings, Block::Encoder, "vocab"),
    })
}

fn model(specs: &[ModelSpec], owner: &str) -> Result<ModelConfig, String> {
    match specs.first() {
        Some(ModelSpec::Encoder { settings, .. }) => encoder(settings).map(ModelConfig::Encoder),
        Some(ModelSpec::Init { path, .. }) => Ok(ModelConfig::Init { path: path.clone() }),
        Some(ModelSpec::FromTeacher { teacher, .. }) => Ok(ModelConfig::FromTeacher {
            teacher: teacher.name.clone(),
        }),
        None => Err(format!("{owner} without a `model` passed the check")),
    }
}

fn train(settings: &[Setting]) -> TrainConfig {
    let warmup = match settings.iter().find(|s| s.key.name == "warmup") {
        Some(Setting {
            value: SettingValue::Percent(p),
            ..
        }) => Warmup::Fraction(*p),
        _ => Warmup::Steps(count(settings, Block::Train, "warmup")),
    };
    TrainConfig {
        epochs: count(settings, Block::Train, "epochs"),
        lr: number(settings, Block::Train, "lr"),
        batch: count(settings, Block::Train, "batch"),
        warmup,
        accumulate: count(settings, Block::Train, "accumulate"),
        clip_norm: number(settings, Block::Train, "clip_norm"),
        seed: count(settings, Block::Train, "seed"),
    }
}

fn regularization(settings: &[Setting]) -> Regularization {
    Regularization {
        weight_decay: number(settings, Block::Regularize, "weight_decay"),
        dropout: number(settings, Block::Regularize, "dropout"),
        l2: number(settings, Block::Regularize, "l2"),
    }
}

fn loss_kind(name: &str) -> Result<LossKind, String> {
    match name {
        "mse" => Ok(LossKind::Mse),
        "bce" => Ok(LossKind::Bce),
        "kl" => Ok(LossKind::Kl),
        other => Err(format!("the loss `{other}` passed the check")),
    }
}

fn temperature(loss: Option<&LossDecl>) -> f64 {
    loss.and_then(|l| l.temperature).map_or(
        vocabulary::default_number(Block::Loss, "temperature"),
        |(v, _)| v,
    )
}

/// A model's `reads` and `features`, resolved against the pair's roles.
fn model_inputs(
    reads: &[Ident],
    reads_written: bool,
    features: &[Ident],
    program: &LabelingProgram,
) -> Result<ModelInputs, String> {
    let field_type = |name: &str| -> Result<(String, String, ValueType), String> {
        let (role, field) = name
            .split_once('.')
            .ok_or_else(|| format!("the input `{name}` passed the check without a role"))?;
        let ty = program
            .roles
            .iter()
            .find(|r| r.name == role)
            .and_then(|r| program.entities.get(r.entity as usize))
            .and_then(|e| e.fields.iter().find(|f| f.name == field))
            .map(|f| f.ty.clone())
            .ok_or_else(|| format!("the unknown input `{name}` passed the check"))?;
        Ok((role.to_string(), field.to_string(), ty))
    };
    let values = |ty: &ValueType| -> Vec<String> {
        match ty {
            ValueType::Enum { index } => program
                .enums
                .get(*index as usize)
                .map(|e| e.values.clone())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    };
    // No `reads`: every text field; `reads []`: no text at all.
    let reads = if reads.is_empty() && !reads_written {
        program
            .roles
            .iter()
            .flat_map(|r| {
                let fields = program
                    .entities
                    .get(r.entity as usize)
                    .map(|e| e.fields.as_slice())
                    .unwrap_or_default();
                fields
                    .iter()
                    .filter(|f| f.ty == ValueType::Text)
                    .map(|f| InputField {
                        role: r.name.clone(),
                        field: f.name.clone(),
                    })
            })
            .collect()
    } else {
        reads
            .iter()
            .map(|r| {
                let (role, field, _) = field_type(&r.name)?;
                Ok(InputField { role, field })
            })
            .collect::<Result<_, String>>()?
    };
    let features = features
        .iter()
        .map(|f| match f.name.as_str() {
            "hour_of_day" => Ok(Feature::HourOfDay),
            "day_of_week" => Ok(Feature::DayOfWeek),
            name => {
                let (role, field, ty) = field_type(name)?;
                Ok(match ty {
                    ValueType::Number => Feature::Number { role, field },
                    ValueType::Bool => Feature::Bool { role, field },
                    ValueType::String | ValueType::Enum { .. } => Feature::OneOf {
                        values: values(&ty),
                        role,
                        field,
                    },
                    ValueType::Set { of } | ValueType::List { of }
                        if matches!(*of, ValueType::String | ValueType::Enum { .. }) =>
                    {
                        Feature::AnyOf {
                            values: values(&of),
                            role,
                            field,
                        }
                    }
                    other => {
                        return Err(format!(
                            "the feature `{name}` of type {other:?} passed the check"
                        ));
                    }
                })
            }
        })
        .collect::<Result<_, String>>()?;
    Ok(ModelInputs { reads, features })
}

/// The targets a teacher predicts, `dimensions` resolved to the policy's dimensions.
fn targets(names: &[Ident], info: &PolicyInfo) -> Result<Vec<Target>, String> {
    let mut out: Vec<Target> = Vec::new();
    let mut push = |t: Target| {
        if !out.contains(&t) {
            out.push(t);
        }
    };
    for n in names {
        match n.name.as_str() {
            "dimensions" => {
                for d in &info.dimensions {
                    push(Target::Dimension(d.name.clone()));
                }
            }
            "overall" => push(Target::Overall),
            "grades" => push(Target::Grades),
            "click" => push(Target::Click),
            other if info.dimensions.iter().any(|d| d.name == other) => {
                push(Target::Dimension(other.to_string()))
            }
            other => return Err(format!("the target `{other}` passed the check")),
        }
    }
    Ok(out)
}

/// Whether a target is one of the policy's scores (what drift is measured on).
/// The scores the rubric labels: each dimension's, in declaration order, then the overall.
fn rubric_scores(info: &PolicyInfo) -> Vec<Target> {
    let mut all: Vec<Target> = info
        .dimensions
        .iter()
        .map(|d| Target::Dimension(d.name.clone()))
        .collect();
    all.push(Target::Overall);
    all
}

fn is_policy_target(t: &Target) -> bool {
    matches!(t, Target::Dimension(_) | Target::Overall)
}

/// Lowers a checked pipeline. An `Err` is an internal error: something the checker should have
/// refused reached the lowering, which says so instead of inventing a value.
pub(super) fn lower_pipeline(
    p: &PipelineDecl,
    policy: &PolicyRef,
    info: &PolicyInfo,
    program: &LabelingProgram,
    source_map: &mut SourceMap,
    sources: &Sources,
) -> Result<(LossTerms, TrainingPlan), String> {
    source_map.add(sources, "pipeline", p.name.span);
    let mut teachers: Vec<TeacherObjective> = Vec::new();
    for t in &p.teachers {
        let loss = t.loss.as_ref().ok_or_else(|| {
            format!(
                "the teacher `{}` without a `loss` passed the check",
                t.name.name
            )
        })?;
        teachers.push(TeacherObjective {
            teacher: t.name.name.clone(),
            targets: targets(&t.predicts, info)?,
            loss: loss_kind(&loss.kind.name)?,
            temperature: temperature(Some(loss)),
        });
    }
    let student = p
        .students
        .first()
        .ok_or_else(|| "a pipeline without a `student` passed the check".to_string())?;
    let mut student_terms = Vec::new();
    for (i, d) in student.distill.iter().enumerate() {
        source_map.add(sources, &format!("student[{i}]"), d.span);
        let teacher = teachers
            .iter()
            .find(|t| t.teacher == d.teacher.name)
            .ok_or_else(|| {
                format!(
                    "distilling from the undeclared `{}` passed the check",
                    d.teacher.name
                )
            })?;
        student_terms.push(LossTerm::Distill {
            teacher: d.teacher.name.clone(),
            targets: teacher.targets.clone(),
            weight: d.weight,
            loss: loss_kind(&d.loss.kind.name)?,
            temperature: temperature(Some(&d.loss)),
        });
    }
    for l in &student.learn {
        source_map.add(
            sources,
            &format!("student[{}]", student_terms.len()),
            l.span,
        );
        let (labels, targets) = if l.from.name == "rubric" {
            let mut all = rubric_scores(info);
            all.push(Target::Grades);
            (LabelSource::Rubric, all)
        } else {
            (
                LabelSource::Clicks {
                    source: l.from.name.clone(),
                },
                vec![Target::Click],
            )
        };
        student_terms.push(LossTerm::Learn {
            labels,
            targets,
            weight: l.weight,
            loss: loss_kind(&l.loss.kind.name)?,
        });
    }
    for d in &student.drift {
        source_map.add(
            sources,
            &format!("student[{}]", student_terms.len()),
            d.span,
        );
        // `against policy` (the default) is the policy teacher: the teacher named `policy`, else
        // the first one the student distills from that predicts policy scores; without one,
        // the rubric's own labels.
        let policy_teacher = teachers
            .iter()
            .find(|t| t.teacher == "policy")
            .or_else(|| {
                student.distill.iter().find_map(|d| {
                    teachers.iter().find(|t| {
                        t.teacher == d.teacher.name && t.targets.iter().any(is_policy_target)
                    })
                })
            })
            .filter(|t| t.targets.iter().any(is_policy_target));
        let (against, reference_targets) =
            match (d.against.as_ref().map(|a| a.name.as_str()), policy_teacher) {
                (Some("rubric"), _) | (_, None) => (DriftReference::Rubric, rubric_scores(info)),
                (_, Some(t)) => (
                    DriftReference::Teacher {
                        name: t.teacher.clone(),
                    },
                    t.targets
                        .iter()
                        .filter(|x| is_policy_target(x))
                        .cloned()
                        .collect(),
                ),
            };
        student_terms.push(LossTerm::DriftPenalty(DriftPenalty {
            weight: d.weight,
            tolerance: d.tolerance,
            against,
            targets: reference_targets,
            rebalance: d.rebalance_every.map(|(every, _)| Rebalance {
                every_epochs: every,
                target_drift: d.tolerance,
                min_factor: vocabulary::default_number(Block::Drift, "rebalance_min_factor"),
                max_factor: vocabulary::default_number(Block::Drift, "rebalance_max_factor"),
            }),
        }));
    }
    let student_regularization = regularization(&student.regularize);
    if student_regularization.l2 > 0.0 {
        student_terms.push(LossTerm::L2 {
            weight: student_regularization.l2,
        });
    }
    let terms = LossTerms {
        schema: LOSS_TERMS_SCHEMA.to_string(),
        policy: policy.clone(),
        pipeline: p.name.name.clone(),
        teachers: teachers.clone(),
        student: student_terms,
    };

    // The stages, in dependency order.
    let mut stages: Vec<Stage> = Vec::new();
    let mut real_inputs: Vec<StageInput> = Vec::new();
    let mut synthetic_inputs: Vec<StageInput> = Vec::new();
    let mut click_data: Vec<StageInput> = Vec::new();
    let data = p.data.first();
    let split = data.and_then(|d| d.splits.first());
    let validation = split.map_or(
        vocabulary::default_number(Block::Split, "validation"),
        |s| s.validation,
    );
    let split_seed = split
        .and_then(|s| s.seed)
        .unwrap_or(vocabulary::default_number(Block::Split, "seed") as u64);
    let mut unlabeled: Vec<UnlabeledPairs> = Vec::new();
    for source in data.map(|d| d.sources.as_slice()).unwrap_or_default() {
        let name = &source.name.name;
        if source.unlabeled {
            unlabeled.push(UnlabeledPairs {
                source: name.clone(),
                path: source.path.clone(),
            });
        } else if source.clean.is_empty() {
            let id = format!("label.{name}");
            stages.push(Stage {
                id: id.clone(),
                inputs: vec![StageInput::File(source.path.clone())],
                outputs: vec![format!("{name}.labels.jsonl")],
                config: StageConfig::Label {
                    source: name.clone(),
                    path: source.path.clone(),
                },
            });
            real_inputs.push(StageInput::Stage(id));
        } else {
            let id = format!("clean.{name}");
            stages.push(Stage {
                id: id.clone(),
                inputs: vec![StageInput::File(source.path.clone())],
                outputs: vec![
                    format!("{name}.clean.jsonl"),
                    format!("{name}.quarantine.jsonl"),
                    format!("{name}.clean-report.json"),
                ],
                config: StageConfig::Clean {
                    source: name.clone(),
                    path: source.path.clone(),
                    rules: source.clean.iter().map(super::clean::clean_rule).collect(),
                },
            });
            click_data.push(StageInput::Stage(id));
        }
    }
    for s in data.map(|d| d.synthetic.as_slice()).unwrap_or_default() {
        let id = format!("synthesize.{}", s.from.name);
        let strategy = match s.settings.iter().find(|x| x.key.name == "strategy") {
            Some(Setting {
                value: SettingValue::Name(n),
                ..
            }) => n.as_str(),
            _ => match vocabulary::setting(Block::Synthetic, "strategy").map(|r| r.default) {
                Some(vocabulary::Default::Name(n)) => n,
                _ => return Err("the vocabulary has no default synthesis strategy".to_string()),
            },
        };
        let strategy = match strategy {
            "coverage" => SynthesisStrategy::Coverage,
            "uniform" => SynthesisStrategy::Uniform,
            "boundary" => SynthesisStrategy::Boundary,
            other => return Err(format!("the strategy `{other}` passed the check")),
        };
        let paraphrase = match s.settings.iter().find(|x| x.key.name == "paraphrase") {
            Some(Setting {
                value: SettingValue::Bool(b),
                ..
            }) => f64::from(u8::from(*b)),
            Some(Setting {
                value: SettingValue::Number(v) | SettingValue::Percent(v),
                ..
            }) => *v,
            _ => 0.0,
        };
        stages.push(Stage {
            id: id.clone(),
            inputs: vec![StageInput::Stage(format!("label.{}", s.from.name))],
            outputs: vec![format!("{}.synthetic.jsonl", s.from.name)],
            config: StageConfig::Synthesize(SynthesizeConfig {
                from: s.from.name.clone(),
                count: count(&s.settings, Block::Synthetic, "count"),
                strategy,
                seed: count(&s.settings, Block::Synthetic, "seed"),
                paraphrase,
                validation,
                split_seed,
            }),
        });
        synthetic_inputs.push(StageInput::Stage(id));
    }
    let mix = data.and_then(|d| d.mixes.first());
    let share = |kind: &str| {
        mix.and_then(|m| m.shares.iter().find(|(n, _, _)| n.name == kind))
            .map(|(_, s, _)| *s)
    };
    let (real_share, synthetic_share) = match (share("real"), share("synthetic")) {
        (Some(r), Some(s)) => (r, s),
        (Some(r), None) => (r, 1.0 - r),
        (None, Some(s)) => (1.0 - s, s),
        // No `mix`: every synthetic pair joins the real ones in their natural proportion.
        (None, None) if synthetic_inputs.is_empty() => (1.0, 0.0),
        (None, None) => return Err("synthetic data without a `mix` passed the check".to_string()),
    };
    let mut mix_inputs = real_inputs.clone();
    mix_inputs.extend(synthetic_inputs.iter().cloned());
    stages.push(Stage {
        id: "mix".to_string(),
        inputs: mix_inputs,
        outputs: vec![
            "pool.jsonl".to_string(),
            "validation.jsonl".to_string(),
            "mix-report.json".to_string(),
        ],
        config: StageConfig::Mix(MixConfig {
            real_share,
            synthetic_share,
            validation,
            seed: split_seed,
        }),
    });
    let mut teacher_ids = Vec::new();
    for (t, objective) in p.teachers.iter().zip(&teachers) {
        let id = format!("teacher.{}", t.name.name);
        let mut inputs = vec![StageInput::Stage("mix".to_string())];
        if objective.targets.contains(&Target::Click) {
            inputs.extend(click_data.iter().cloned());
        }
        if let Some(ModelSpec::FromTeacher { teacher, .. }) = t.model.first() {
            inputs.push(StageInput::Stage(format!("teacher.{}", teacher.name)));
        }
        stages.push(Stage {
            id: id.clone(),
            inputs,
            outputs: vec!["model".to_string()],
            config: StageConfig::TrainTeacher(TeacherConfig {
                teacher: t.name.name.clone(),
                model: model(&t.model, &format!("the teacher `{}`", t.name.name))?,
                targets: objective.targets.clone(),
                loss: objective.loss,
                temperature: objective.temperature,
                train: train(&t.train),
                regularize: regularization(&t.regularize),
                inputs: model_inputs(&t.reads, t.reads_span.is_some(), &t.features, program)?,
            }),
        });
        teacher_ids.push(id);
    }
    let mut inputs = vec![StageInput::Stage("mix".to_string())];
    if let Some(ModelSpec::FromTeacher { teacher, .. }) = student.model.first() {
        inputs.push(StageInput::Stage(format!("teacher.{}", teacher.name)));
    }
    for d in &student.distill {
        let id = format!("teacher.{}", d.teacher.name);
        let input = StageInput::Stage(id.clone());
        if teacher_ids.contains(&id) && !inputs.contains(&input) {
            inputs.push(input);
        }
    }
    // A student that learns clicks also learns from the log's impressions (and their time).
    let learns_clicks = student.distill.iter().any(|d| {
        teachers
            .iter()
            .any(|t| t.teacher == d.teacher.name && t.targets.contains(&Target::Click))
    }) || student.learn.iter().any(|l| l.from.name != "rubric");
    if learns_clicks {
        inputs.extend(click_data.iter().cloned());
    }
    inputs.extend(unlabeled.iter().map(|u| StageInput::File(u.path.clone())));
    let early_stop = match &student.early_stop {
        Some(e) => {
            let metric = vocabulary::metric(&e.metric.name).ok_or_else(|| {
                format!(
                    "early stopping on the unknown `{}` passed the check",
                    e.metric.name
                )
            })?;
            Some(EarlyStop {
                metric: e.metric.name.clone(),
                direction: metric.direction,
                patience: e.patience,
                min_delta: vocabulary::default_number(Block::EarlyStop, "min_delta"),
            })
        }
        None => None,
    };
    stages.push(Stage {
        id: "distill".to_string(),
        inputs,
        outputs: vec!["model".to_string(), "report.json".to_string()],
        config: StageConfig::Distill(StudentConfig {
            model: model(&student.model, "the student")?,
            train: train(&student.train),
            regularize: student_regularization,
            inputs: model_inputs(
                &student.reads,
                student.reads_span.is_some(),
                &student.features,
                program,
            )?,
            early_stop,
            unlabeled,
        }),
    });
    let mut last = "distill".to_string();
    if let Some(q) = p.quantize.first() {
        let scheme = match q.scheme.name.as_str() {
            "int8" => QuantScheme::Int8,
            other => {
                return Err(format!(
                    "the quantization scheme `{other}` passed the check"
                ));
            }
        };
        // The quantized student is measured against the f32 one on the held-out real pairs
        // (and, for a student of clicks, their impressions).
        let mut inputs = vec![
            StageInput::Stage(last.clone()),
            StageInput::Stage("mix".to_string()),
        ];
        if learns_clicks {
            inputs.extend(click_data.iter().cloned());
        }
        stages.push(Stage {
            id: "quantize".to_string(),
            inputs,
            outputs: vec!["model".to_string(), "report.json".to_string()],
            config: StageConfig::Quantize(QuantizeConfig {
                scheme,
                prune_heads_below: q.prune_heads_below.map(|(v, _)| v),
            }),
        });
        last = "quantize".to_string();
    }
    let mut alerts: Vec<Alert> = Vec::new();
    for a in p.monitors.iter().flat_map(|m| m.alerts.iter()) {
        let metric = vocabulary::metric(&a.metric.name).ok_or_else(|| {
            format!(
                "an alert on the unknown `{}` passed the check",
                a.metric.name
            )
        })?;
        alerts.push(Alert {
            metric: a.metric.name.clone(),
            op: a.op.symbol().to_string(),
            threshold: match a.threshold {
                Threshold::Number(v) | Threshold::Percent(v) | Threshold::Duration(v) => v,
            },
            unit: metric.unit,
        });
    }
    let mut metrics: Vec<String> = vec![
        "policy_alignment".to_string(),
        "grade_kappa".to_string(),
        "policy_drift".to_string(),
        "ndcg@10".to_string(),
    ];
    if teachers.iter().any(|t| t.targets.contains(&Target::Click)) {
        metrics.push("click_auc".to_string());
    }
    for a in &alerts {
        if !metrics.contains(&a.metric) {
            metrics.push(a.metric.clone());
        }
    }
    stages.push(Stage {
        id: "evaluate".to_string(),
        inputs: vec![
            StageInput::Stage(last.clone()),
            StageInput::Stage("mix".to_string()),
        ],
        outputs: vec!["evaluation.json".to_string()],
        config: StageConfig::Evaluate { metrics },
    });
    if !alerts.is_empty() {
        stages.push(Stage {
            id: "monitor".to_string(),
            inputs: vec![
                StageInput::Stage(last),
                StageInput::Stage("evaluate".to_string()),
            ],
            outputs: vec!["monitor.json".to_string()],
            config: StageConfig::Monitor { alerts },
        });
    }
    let plan = TrainingPlan {
        schema: TRAINING_PLAN_SCHEMA.to_string(),
        policy: policy.clone(),
        pipeline: p.name.name.clone(),
        stages,
    };
    Ok((terms, plan))
}
