//! The pipeline's two artefacts: the loss terms the trainer builds its objective from (nothing
//! about losses is hard-coded downstream) and the training plan, a DAG of stages with their
//! configurations and declared inputs and outputs.

use super::SourceMap;
use super::ir::PolicyRef;
use crate::PolicyInfo;
use crate::source::Sources;
use crate::syntax::ast::*;
use serde::{Deserialize, Serialize};

pub const LOSS_TERMS_SCHEMA: &str = "rubric.loss-terms/1";
pub const TRAINING_PLAN_SCHEMA: &str = "rubric.training-plan/1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
pub struct TeacherObjective {
    pub teacher: String,
    pub targets: Vec<Target>,
    pub loss: LossKind,
    pub temperature: f64,
}

/// What a model predicts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "name")]
pub enum Target {
    /// Every dimension's score.
    Dimensions,
    /// One dimension's score.
    Dimension(String),
    Overall,
    Grades,
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
#[serde(rename_all = "snake_case", tag = "term")]
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
    DriftPenalty(DriftPenalty),
    Regularization {
        kind: String,
        weight: f64,
    },
}

/// Keeps the student on policy: a hinge on |student − reference| beyond a tolerance, per
/// dimension, with its weight rebalanced from measured drift.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DriftPenalty {
    pub weight: f64,
    pub tolerance: f64,
    /// What drift is measured against: the policy teacher's scores (default) or the rubric's
    /// labels.
    pub against: DriftReference,
    pub rebalance: Option<Rebalance>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftReference {
    PolicyTeacher,
    Rubric,
}

/// Every `every_epochs` epochs the weight is multiplied by measured drift / target drift,
/// clamped to [`min_factor`, `max_factor`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rebalance {
    pub every_epochs: u64,
    pub target_drift: f64,
    pub min_factor: f64,
    pub max_factor: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingPlan {
    pub schema: String,
    pub policy: PolicyRef,
    pub pipeline: String,
    /// In an order that respects their inputs (a topological order of the DAG).
    pub stages: Vec<Stage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    pub id: String,
    /// Artefacts this stage reads, by name (another stage's output or a declared data file).
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub config: StageConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "stage")]
pub enum StageConfig {
    Label {
        source: String,
        path: String,
    },
    Clean {
        source: String,
        path: String,
        rules: Vec<CleanRuleIr>,
    },
    Synthesize {
        from: String,
        settings: Vec<SettingIr>,
    },
    Mix {
        shares: Vec<(String, f64)>,
        validation: f64,
        seed: u64,
    },
    TrainTeacher {
        teacher: String,
        model: ModelIr,
        targets: Vec<Target>,
        loss: LossKind,
        train: Vec<SettingIr>,
        features: Vec<String>,
    },
    Distill {
        model: ModelIr,
        train: Vec<SettingIr>,
        features: Vec<String>,
        early_stop: Option<EarlyStopIr>,
    },
    Quantize {
        scheme: String,
        prune_heads_below: Option<f64>,
    },
    Evaluate {
        metrics: Vec<String>,
    },
    Monitor {
        alerts: Vec<AlertIr>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum CleanRuleIr {
    /// `drop NAME when CONDITION`: `condition` is the source text, for reports; `predicate` is
    /// what the cleaner evaluates on each record.
    DropWhen {
        name: String,
        condition: String,
        predicate: CleanExprIr,
    },
    OutliersSigma {
        field: String,
        sigma: f64,
    },
    OutliersQuantile {
        field: String,
        quantile: f64,
    },
    Duplicates {
        on: Vec<String>,
    },
}

/// A clean rule's condition over one click-log record: its fields and its session's statistics
/// (the names the checker allows, `check/pipeline.rs`). Durations are in seconds, percents are
/// fractions, and `when` arms are nested `if`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanExprIr {
    Number(f64),
    Text(String),
    Bool(bool),
    /// A click-log field or a session statistic, by name.
    Field(String),
    Not(Box<CleanExprIr>),
    Neg(Box<CleanExprIr>),
    Binary {
        op: super::ir::BinOp,
        lhs: Box<CleanExprIr>,
        rhs: Box<CleanExprIr>,
    },
    /// `value ?? default`: the default when the field is absent from the record.
    Coalesce {
        value: Box<CleanExprIr>,
        default: Box<CleanExprIr>,
    },
    If {
        cond: Box<CleanExprIr>,
        then: Box<CleanExprIr>,
        otherwise: Box<CleanExprIr>,
    },
    /// A construct a record-level condition has no meaning for (a call, a table lookup, a
    /// `match`, a list, `abstain`), kept as its text so the cleaner can name it in its error.
    Unsupported(String),
}

/// Lowers a clean rule's condition.
fn clean_expr(e: &Expr) -> CleanExprIr {
    use super::ir::BinOp;
    let boxed = |e: &Expr| Box::new(clean_expr(e));
    match &e.kind {
        ExprKind::Number(n) | ExprKind::Percent(n) => CleanExprIr::Number(*n),
        ExprKind::Duration(ms) => CleanExprIr::Number(ms / 1000.0),
        ExprKind::String(s) => CleanExprIr::Text(s.clone()),
        ExprKind::Bool(b) => CleanExprIr::Bool(*b),
        ExprKind::Path(segments) => CleanExprIr::Field(
            segments
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        ExprKind::Paren(inner) => clean_expr(inner),
        ExprKind::Unary { op, operand } => match op {
            UnaryOp::Not => CleanExprIr::Not(boxed(operand)),
            UnaryOp::Neg => CleanExprIr::Neg(boxed(operand)),
        },
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let op = match op {
                BinaryOp::Coalesce => {
                    return CleanExprIr::Coalesce {
                        value: boxed(lhs),
                        default: boxed(rhs),
                    };
                }
                BinaryOp::Or => BinOp::Or,
                BinaryOp::And => BinOp::And,
                BinaryOp::Eq => BinOp::Eq,
                BinaryOp::Ne => BinOp::Ne,
                BinaryOp::Lt => BinOp::Lt,
                BinaryOp::Le => BinOp::Le,
                BinaryOp::Gt => BinOp::Gt,
                BinaryOp::Ge => BinOp::Ge,
                BinaryOp::Union => BinOp::Union,
                BinaryOp::Intersect => BinOp::Intersect,
                BinaryOp::Add => BinOp::Add,
                BinaryOp::Sub => BinOp::Sub,
                BinaryOp::Mul => BinOp::Mul,
                BinaryOp::Div => BinOp::Div,
            };
            CleanExprIr::Binary {
                op,
                lhs: boxed(lhs),
                rhs: boxed(rhs),
            }
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => CleanExprIr::If {
            cond: boxed(cond),
            then: boxed(then),
            otherwise: boxed(otherwise),
        },
        ExprKind::When { arms, otherwise } => {
            let last = otherwise
                .as_deref()
                .map_or(CleanExprIr::Bool(false), clean_expr);
            arms.iter().rev().fold(last, |acc, arm| CleanExprIr::If {
                cond: boxed(&arm.condition),
                then: boxed(&arm.body),
                otherwise: Box::new(acc),
            })
        }
        ExprKind::Call { .. }
        | ExprKind::Lookup { .. }
        | ExprKind::Match { .. }
        | ExprKind::List(_)
        | ExprKind::Abstain => CleanExprIr::Unsupported(crate::check::expr::expr_text(e)),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingIr {
    pub key: String,
    pub value: SettingValueIr,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SettingValueIr {
    Number(f64),
    Text(String),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ModelIr {
    Encoder { settings: Vec<SettingIr> },
    Init { path: String },
    Unspecified,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopIr {
    pub metric: String,
    pub patience: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertIr {
    pub metric: String,
    pub op: String,
    /// Milliseconds for latencies; the metric's own unit otherwise.
    pub threshold: f64,
}

fn setting(s: &Setting) -> SettingIr {
    SettingIr {
        key: s.key.name.clone(),
        value: match &s.value {
            SettingValue::Number(n) | SettingValue::Percent(n) | SettingValue::Duration(n) => {
                SettingValueIr::Number(*n)
            }
            SettingValue::String(t) | SettingValue::Name(t) => SettingValueIr::Text(t.clone()),
            SettingValue::Bool(b) => SettingValueIr::Bool(*b),
        },
    }
}

fn loss_kind(name: &str) -> LossKind {
    match name {
        "bce" => LossKind::Bce,
        "kl" => LossKind::Kl,
        _ => LossKind::Mse,
    }
}

fn targets(names: &[Ident], info: &PolicyInfo) -> Vec<Target> {
    names
        .iter()
        .map(|n| match n.name.as_str() {
            "dimensions" => Target::Dimensions,
            "overall" => Target::Overall,
            "grades" => Target::Grades,
            "click" => Target::Click,
            other if info.dimensions.iter().any(|d| d.name == other) => {
                Target::Dimension(other.to_string())
            }
            other => Target::Dimension(other.to_string()),
        })
        .collect()
}

fn model(specs: &[ModelSpec]) -> ModelIr {
    match specs.first() {
        Some(ModelSpec::Encoder { settings, .. }) => ModelIr::Encoder {
            settings: settings.iter().map(setting).collect(),
        },
        Some(ModelSpec::Init { path, .. }) => ModelIr::Init { path: path.clone() },
        None => ModelIr::Unspecified,
    }
}

/// Lowers a checked pipeline.
pub(super) fn lower_pipeline(
    p: &PipelineDecl,
    policy: &PolicyRef,
    info: &PolicyInfo,
    source_map: &mut SourceMap,
    sources: &Sources,
) -> (LossTerms, TrainingPlan) {
    source_map.add(sources, "pipeline", p.name.span);
    let teachers: Vec<TeacherObjective> = p
        .teachers
        .iter()
        .map(|t| TeacherObjective {
            teacher: t.name.name.clone(),
            targets: targets(&t.predicts, info),
            loss: loss_kind(t.loss.as_ref().map_or("mse", |l| l.kind.name.as_str())),
            temperature: t
                .loss
                .as_ref()
                .and_then(|l| l.temperature)
                .map_or(1.0, |(v, _)| v),
        })
        .collect();
    let mut student_terms = Vec::new();
    if let Some(student) = p.students.first() {
        for (i, d) in student.distill.iter().enumerate() {
            source_map.add(sources, &format!("student[{i}]"), d.span);
            let teacher_targets = teachers
                .iter()
                .find(|t| t.teacher == d.teacher.name)
                .map(|t| t.targets.clone())
                .unwrap_or_default();
            student_terms.push(LossTerm::Distill {
                teacher: d.teacher.name.clone(),
                targets: teacher_targets,
                weight: d.weight,
                loss: loss_kind(&d.loss.kind.name),
                temperature: d.loss.temperature.map_or(1.0, |(v, _)| v),
            });
        }
        for d in &student.drift {
            source_map.add(
                sources,
                &format!("student[{}]", student_terms.len()),
                d.span,
            );
            student_terms.push(LossTerm::DriftPenalty(DriftPenalty {
                weight: d.weight,
                tolerance: d.tolerance,
                against: match d.against.as_ref().map(|a| a.name.as_str()) {
                    Some("rubric") => DriftReference::Rubric,
                    _ => DriftReference::PolicyTeacher,
                },
                rebalance: d.rebalance_every.map(|(every, _)| Rebalance {
                    every_epochs: every,
                    target_drift: d.tolerance,
                    min_factor: 0.5,
                    max_factor: 2.0,
                }),
            }));
        }
        for r in &student.regularize {
            let weight = match r.value {
                SettingValue::Number(n) | SettingValue::Percent(n) => n,
                _ => 0.0,
            };
            student_terms.push(LossTerm::Regularization {
                kind: r.key.name.clone(),
                weight,
            });
        }
    }
    let terms = LossTerms {
        schema: LOSS_TERMS_SCHEMA.to_string(),
        policy: policy.clone(),
        pipeline: p.name.name.clone(),
        teachers,
        student: student_terms,
    };

    // The stages, in dependency order.
    let mut stages: Vec<Stage> = Vec::new();
    let mut real_inputs: Vec<String> = Vec::new();
    let mut synthetic_inputs: Vec<String> = Vec::new();
    let mut click_data: Vec<String> = Vec::new();
    let data = p.data.first();
    for source in data.map(|d| d.sources.as_slice()).unwrap_or_default() {
        if source.clean.is_empty() {
            let id = format!("label.{}", source.name.name);
            stages.push(Stage {
                id: id.clone(),
                inputs: vec![source.path.clone()],
                outputs: vec![format!("{}.labels.jsonl", source.name.name)],
                config: StageConfig::Label {
                    source: source.name.name.clone(),
                    path: source.path.clone(),
                },
            });
            real_inputs.push(id);
        } else {
            let id = format!("clean.{}", source.name.name);
            stages.push(Stage {
                id: id.clone(),
                inputs: vec![source.path.clone()],
                outputs: vec![
                    format!("{}.clean.jsonl", source.name.name),
                    format!("{}.clean-report.json", source.name.name),
                ],
                config: StageConfig::Clean {
                    source: source.name.name.clone(),
                    path: source.path.clone(),
                    rules: source
                        .clean
                        .iter()
                        .map(|c| match c {
                            CleanRule::DropWhen {
                                name, condition, ..
                            } => CleanRuleIr::DropWhen {
                                name: name.name.clone(),
                                condition: crate::check::expr::expr_text(condition),
                                predicate: clean_expr(condition),
                            },
                            CleanRule::OutliersSigma { field, sigma, .. } => {
                                CleanRuleIr::OutliersSigma {
                                    field: field.name.clone(),
                                    sigma: *sigma,
                                }
                            }
                            CleanRule::OutliersQuantile {
                                field, quantile, ..
                            } => CleanRuleIr::OutliersQuantile {
                                field: field.name.clone(),
                                quantile: *quantile,
                            },
                            CleanRule::Duplicates { on, .. } => CleanRuleIr::Duplicates {
                                on: on.iter().map(|n| n.name.clone()).collect(),
                            },
                        })
                        .collect(),
                },
            });
            click_data.push(id);
        }
    }
    for s in data.map(|d| d.synthetic.as_slice()).unwrap_or_default() {
        let id = format!("synthesize.{}", s.from.name);
        stages.push(Stage {
            id: id.clone(),
            inputs: vec![format!("label.{}", s.from.name)],
            outputs: vec![format!("{}.synthetic.jsonl", s.from.name)],
            config: StageConfig::Synthesize {
                from: s.from.name.clone(),
                settings: s.settings.iter().map(setting).collect(),
            },
        });
        synthetic_inputs.push(id);
    }
    let mix = data.and_then(|d| d.mixes.first());
    let split = data.and_then(|d| d.splits.first());
    let mut mix_inputs = real_inputs.clone();
    mix_inputs.extend(synthetic_inputs.iter().cloned());
    stages.push(Stage {
        id: "mix".to_string(),
        inputs: mix_inputs,
        outputs: vec!["train.jsonl".to_string(), "validation.jsonl".to_string()],
        config: StageConfig::Mix {
            shares: mix
                .map(|m| {
                    m.shares
                        .iter()
                        .map(|(n, s, _)| (n.name.clone(), *s))
                        .collect()
                })
                .unwrap_or_else(|| vec![("real".to_string(), 1.0)]),
            validation: split.map_or(0.1, |s| s.validation),
            seed: split.and_then(|s| s.seed).unwrap_or(0),
        },
    });
    let mut teacher_ids = Vec::new();
    for t in &p.teachers {
        let id = format!("teacher.{}", t.name.name);
        let mut inputs = vec!["mix".to_string()];
        if t.predicts.iter().any(|x| x.name == "click") {
            inputs.extend(click_data.iter().cloned());
        }
        stages.push(Stage {
            id: id.clone(),
            inputs,
            outputs: vec![format!("{}.teacher.safetensors", t.name.name)],
            config: StageConfig::TrainTeacher {
                teacher: t.name.name.clone(),
                model: model(&t.model),
                targets: targets(&t.predicts, info),
                loss: loss_kind(t.loss.as_ref().map_or("mse", |l| l.kind.name.as_str())),
                train: t.train.iter().map(setting).collect(),
                features: t.features.iter().map(|f| f.name.clone()).collect(),
            },
        });
        teacher_ids.push(id);
    }
    if let Some(student) = p.students.first() {
        let mut inputs = vec!["mix".to_string()];
        inputs.extend(
            student
                .distill
                .iter()
                .map(|d| format!("teacher.{}", d.teacher.name))
                .filter(|id| teacher_ids.contains(id)),
        );
        stages.push(Stage {
            id: "distill".to_string(),
            inputs,
            outputs: vec!["student.safetensors".to_string()],
            config: StageConfig::Distill {
                model: model(&student.model),
                train: student.train.iter().map(setting).collect(),
                features: student.features.iter().map(|f| f.name.clone()).collect(),
                early_stop: student.early_stop.as_ref().map(|e| EarlyStopIr {
                    metric: e.metric.name.clone(),
                    patience: e.patience,
                }),
            },
        });
    }
    let mut last = "distill".to_string();
    if let Some(q) = p.quantize.first() {
        stages.push(Stage {
            id: "quantize".to_string(),
            inputs: vec![last.clone()],
            outputs: vec!["student.int8.safetensors".to_string()],
            config: StageConfig::Quantize {
                scheme: q.scheme.name.clone(),
                prune_heads_below: q.prune_heads_below.map(|(v, _)| v),
            },
        });
        last = "quantize".to_string();
    }
    let alerts: Vec<AlertIr> = p
        .monitors
        .iter()
        .flat_map(|m| m.alerts.iter())
        .map(|a| AlertIr {
            metric: a.metric.name.clone(),
            op: a.op.symbol().to_string(),
            threshold: match a.threshold {
                Threshold::Number(v) | Threshold::Percent(v) | Threshold::Duration(v) => v,
            },
        })
        .collect();
    let mut metrics: Vec<String> = vec![
        "policy_alignment".to_string(),
        "grade_kappa".to_string(),
        "policy_drift".to_string(),
    ];
    if p.teachers
        .iter()
        .any(|t| t.predicts.iter().any(|x| x.name == "click"))
    {
        metrics.push("click_auc".to_string());
    }
    for a in &alerts {
        if !metrics.contains(&a.metric) {
            metrics.push(a.metric.clone());
        }
    }
    stages.push(Stage {
        id: "evaluate".to_string(),
        inputs: vec![last.clone(), "mix".to_string()],
        outputs: vec!["evaluation.json".to_string()],
        config: StageConfig::Evaluate { metrics },
    });
    if !alerts.is_empty() {
        stages.push(Stage {
            id: "monitor".to_string(),
            inputs: vec![last, "evaluate".to_string()],
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
    (terms, plan)
}
