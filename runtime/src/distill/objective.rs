//! The student's objective, built only from the compiled loss terms: a term per teacher (its
//! outputs, softened by the term's temperature, compared with the student's by the term's
//! loss), the policy-drift penalty (a hinge on the student's distance from the reference beyond
//! the tolerance, its weight rebalanced from the drift measured on validation), L2, and the
//! ground truth itself (`learn`: the rubric's labels, the log's clicks), which is also the whole
//! of the hard-label baseline a report sets beside the student.

use super::cache::TeacherOutputs;
use crate::teach::examples::{Example, Heads};
use crate::teach::task::binary_loss;
use candle_core::{D, DType, Device, Result, Tensor};
use rubric_compiler::lower::plan::{
    DriftReference, LabelSource, LossKind, LossTerm, Rebalance, Target,
};
use serde::{Deserialize, Serialize};
use std::cell::Cell;

/// A compiled term, resolved against the student's heads and the teachers' cached outputs.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    /// Match a teacher's outputs.
    Distill {
        /// Index into the teachers' outputs.
        teacher: usize,
        weight: f64,
        loss: LossKind,
        temperature: f64,
        /// (student score column, teacher score column) per score target.
        scores: Vec<(usize, usize)>,
        grades: bool,
        click: bool,
    },
    /// Stay within `tolerance` of the reference's policy scores.
    Drift {
        reference: Reference,
        tolerance: f64,
        rebalance: Option<Rebalance>,
    },
    /// `weight × Σ w²` over the student's weight matrices.
    L2 { weight: f64 },
    /// Ground truth: the rubric's labels of the student's score columns `scores` and of its
    /// grade (`grades`), and the log's clicks (`click`, with the position's bias), each by
    /// `loss` (grades by cross-entropy, or squared error of the distribution with `mse`).
    Labels {
        weight: f64,
        loss: LossKind,
        scores: Vec<usize>,
        grades: bool,
        click: bool,
    },
}

/// What the drift penalty measures against, per student score column.
#[derive(Clone, Debug, PartialEq)]
pub enum Reference {
    /// (student column, teacher column) of a teacher's outputs.
    Teacher {
        teacher: usize,
        columns: Vec<(usize, usize)>,
    },
    /// Student columns whose rows' rubric labels are the reference.
    Rubric { columns: Vec<usize> },
}

/// One rebalance of the drift penalty's weight.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RebalanceRecord {
    /// One-based: the epoch after which the weight changed.
    pub epoch: u64,
    /// Mean absolute gap from the reference on the validation pairs.
    pub drift: f64,
    pub old_weight: f64,
    pub new_weight: f64,
}

/// The metric the drift penalty's weight is recorded under after each epoch, so that a resumed
/// run takes up the rebalanced weight.
pub const DRIFT_WEIGHT: &str = "drift_penalty.weight";
/// The measured drift from the penalty's reference after each epoch.
pub const DRIFT_MEASURED: &str = "drift_penalty.drift";

/// The student's objective: the parts, and the drift penalty's current weight.
#[derive(Debug)]
pub struct Objective {
    pub parts: Vec<Part>,
    drift_weight: Cell<f64>,
}

/// The teachers a set of terms reads, by name, in the order they first appear.
pub fn teachers_read(terms: &[LossTerm]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in terms {
        let name = match t {
            LossTerm::Distill { teacher, .. } => Some(teacher),
            LossTerm::DriftPenalty(d) => match &d.against {
                DriftReference::Teacher { name } => Some(name),
                DriftReference::Rubric => None,
            },
            LossTerm::L2 { .. } | LossTerm::Learn { .. } => None,
        };
        if let Some(name) = name
            && !out.contains(name)
        {
            out.push(name.clone());
        }
    }
    out
}

/// The student's column of a score target.
fn column(heads: &Heads, target: &Target) -> Option<usize> {
    let name = match target {
        Target::Dimension(d) => d.as_str(),
        Target::Overall => "overall",
        _ => return None,
    };
    heads.scores.iter().position(|(n, _)| n == name)
}

/// A teacher's score column of a target.
fn teacher_column(t: &TeacherOutputs, target: &Target) -> Option<usize> {
    let name = match target {
        Target::Dimension(d) => d.as_str(),
        Target::Overall => "overall",
        _ => return None,
    };
    t.heads.scores.iter().position(|n| n == name)
}

impl Objective {
    /// Resolves `terms` against the student's heads and the teachers' outputs (in
    /// [`teachers_read`] order). A target neither side has is left out of its term.
    pub fn new(
        terms: &[LossTerm],
        heads: &Heads,
        teachers: &[TeacherOutputs],
    ) -> std::result::Result<Objective, String> {
        let find = |name: &str| {
            teachers
                .iter()
                .position(|t| t.teacher == name)
                .ok_or_else(|| format!("the outputs of the teacher `{name}` were not read"))
        };
        let mut parts = Vec::new();
        let mut drift_weight = 0.0;
        for term in terms {
            match term {
                LossTerm::Distill {
                    teacher,
                    targets,
                    weight,
                    loss,
                    temperature,
                } => {
                    let k = find(teacher)?;
                    let t = &teachers[k];
                    let scores = targets
                        .iter()
                        .filter_map(|x| Some((column(heads, x)?, teacher_column(t, x)?)))
                        .collect();
                    parts.push(Part::Distill {
                        teacher: k,
                        weight: *weight,
                        loss: *loss,
                        temperature: *temperature,
                        scores,
                        grades: targets.contains(&Target::Grades)
                            && !heads.grades.is_empty()
                            && t.heads.grades.len() == heads.grades.len(),
                        click: targets.contains(&Target::Click) && heads.click && t.heads.click,
                    });
                }
                LossTerm::DriftPenalty(d) => {
                    let reference = match &d.against {
                        DriftReference::Teacher { name } => {
                            let k = find(name)?;
                            let t = &teachers[k];
                            Reference::Teacher {
                                teacher: k,
                                columns: d
                                    .targets
                                    .iter()
                                    .filter_map(|x| {
                                        Some((column(heads, x)?, teacher_column(t, x)?))
                                    })
                                    .collect(),
                            }
                        }
                        DriftReference::Rubric => Reference::Rubric {
                            columns: d.targets.iter().filter_map(|x| column(heads, x)).collect(),
                        },
                    };
                    drift_weight = d.weight;
                    parts.push(Part::Drift {
                        reference,
                        tolerance: d.tolerance,
                        rebalance: d.rebalance.clone(),
                    });
                }
                LossTerm::L2 { weight } => parts.push(Part::L2 { weight: *weight }),
                LossTerm::Learn {
                    labels,
                    targets,
                    weight,
                    loss,
                } => parts.push(match labels {
                    LabelSource::Rubric => Part::Labels {
                        weight: *weight,
                        loss: *loss,
                        scores: targets.iter().filter_map(|x| column(heads, x)).collect(),
                        grades: targets.contains(&Target::Grades) && !heads.grades.is_empty(),
                        click: false,
                    },
                    LabelSource::Clicks { .. } => Part::Labels {
                        weight: *weight,
                        loss: *loss,
                        scores: Vec::new(),
                        grades: false,
                        click: heads.click,
                    },
                }),
            }
        }
        Ok(Objective {
            parts,
            drift_weight: Cell::new(drift_weight),
        })
    }

    /// The hard-label objective: the rubric's labels and the log's clicks on every head, as a
    /// teacher learns them (`mse` on scores).
    pub fn labels(heads: &Heads) -> Objective {
        Objective {
            parts: vec![Part::Labels {
                weight: 1.0,
                loss: LossKind::Mse,
                scores: (0..heads.scores.len()).collect(),
                grades: !heads.grades.is_empty(),
                click: heads.click,
            }],
            drift_weight: Cell::new(0.0),
        }
    }

    /// The drift penalty's part, if the objective has one.
    pub fn drift(&self) -> Option<(&Reference, f64, Option<&Rebalance>)> {
        self.parts.iter().find_map(|p| match p {
            Part::Drift {
                reference,
                tolerance,
                rebalance,
            } => Some((reference, *tolerance, rebalance.as_ref())),
            _ => None,
        })
    }

    pub fn drift_weight(&self) -> f64 {
        self.drift_weight.get()
    }

    pub fn set_drift_weight(&self, weight: f64) {
        self.drift_weight.set(weight);
    }

    /// Whether the objective learns from the log's clicks themselves (and so needs a
    /// training-only bias per position).
    pub fn learns_clicks(&self, heads: &Heads) -> bool {
        heads.click
            && self
                .parts
                .iter()
                .any(|p| matches!(p, Part::Labels { click: true, .. }))
    }
}

/// The student's outputs on a batch, as the model gave them.
pub struct Outputs<'o> {
    pub scores: Option<&'o Tensor>,
    pub grades: Option<&'o Tensor>,
    pub click: Option<&'o Tensor>,
}

/// A batch's rows, and what every part reads of them.
pub struct Batch<'b> {
    pub rows: &'b [usize],
    pub examples: &'b [Example],
    /// The teachers' outputs on the same rows (by row index).
    pub teachers: &'b [TeacherOutputs],
    /// Which split the teachers' outputs are read from.
    pub validation: bool,
    /// The training-only bias per impression position, for click labels.
    pub position_bias: Option<&'b Tensor>,
    /// The student's weight matrices, for L2.
    pub weights: &'b [Tensor],
    pub device: &'b Device,
}

fn sigmoid(z: &Tensor) -> Result<Tensor> {
    (z.neg()?.exp()? + 1.0)?.recip()
}

/// The mean over rows of each column's loss, summed over columns.
fn column_means(loss: &Tensor) -> Result<Tensor> {
    loss.mean(0)?.sum_all()
}

/// The mean of `loss` over the entries `mask` keeps (0 when it keeps none), per column summed.
fn masked_column_means(loss: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let kept = mask.sum(0)?.clamp(1f32, f32::MAX)?;
    ((loss * mask)?.sum(0)? / kept)?.sum_all()
}

/// The binary entropy of probabilities, elementwise (the floor of the cross-entropy against
/// them: subtracting it makes the term a divergence, 0 when the two agree).
fn binary_entropy(p: &Tensor) -> Result<Tensor> {
    let eps = 1e-7;
    let p = p.clamp(eps, 1.0 - eps)?;
    let q = (p.neg()? + 1.0)?;
    ((&p * p.log()?)? + (&q * q.log()?)?)?.neg()
}

/// A teacher's score logits of `columns`, `[rows, columns]`.
fn teacher_scores(b: &Batch<'_>, teacher: usize, columns: &[(usize, usize)]) -> Result<Tensor> {
    let logits = b.teachers[teacher].split(b.validation);
    let mut out = Vec::with_capacity(b.rows.len() * columns.len());
    for &r in b.rows {
        let row = logits.score_row(r);
        for &(_, c) in columns {
            out.push(row.get(c).copied().unwrap_or(0.0));
        }
    }
    Tensor::from_vec(out, (b.rows.len(), columns.len()), b.device)
}

fn student_columns(z: &Tensor, columns: &[usize], device: &Device) -> Result<Tensor> {
    let idx: Vec<u32> = columns.iter().map(|&c| c as u32).collect();
    z.index_select(&Tensor::from_vec(idx, columns.len(), device)?, 1)
}

/// Binary outputs compared: squared error of the softened probabilities (`mse`), or the
/// divergence of the student's from the teacher's (`bce`, `kl`: the same gradients), times T².
fn binary_distill(kind: LossKind, zs: &Tensor, zt: &Tensor, t: f64) -> Result<Tensor> {
    let p = sigmoid(&(zt / t)?)?;
    let zs = (zs / t)?;
    match kind {
        LossKind::Mse => (sigmoid(&zs)? - p)?.sqr(),
        LossKind::Bce | LossKind::Kl => {
            (binary_loss(LossKind::Bce, &zs, &p)? - binary_entropy(&p)?)? * (t * t)
        }
    }
}

impl Objective {
    /// The loss of a batch: the sum of the parts.
    pub fn loss(&self, out: &Outputs<'_>, b: &Batch<'_>) -> Result<Tensor> {
        let n = b.rows.len();
        let mut total = Tensor::new(0f32, b.device)?;
        for part in &self.parts {
            let term = match part {
                Part::Distill {
                    teacher,
                    weight,
                    loss,
                    temperature,
                    scores,
                    grades,
                    click,
                } => {
                    let t = *temperature;
                    let mut sum = Tensor::new(0f32, b.device)?;
                    if let Some(z) = out.scores
                        && !scores.is_empty()
                    {
                        let cols: Vec<usize> = scores.iter().map(|(s, _)| *s).collect();
                        let zs = student_columns(z, &cols, b.device)?;
                        let zt = teacher_scores(b, *teacher, scores)?;
                        sum = (sum + column_means(&binary_distill(*loss, &zs, &zt, t)?)?)?;
                    }
                    if *grades && let Some(z) = out.grades {
                        let logits = b.teachers[*teacher].split(b.validation);
                        let g = logits.grade_width;
                        let mut zt = Vec::with_capacity(n * g);
                        for &r in b.rows {
                            zt.extend_from_slice(logits.grade_row(r));
                        }
                        let zt = Tensor::from_vec(zt, (n, g), b.device)?;
                        let p = rubric_ml::kernels::softmax_last_dim(&(zt / t)?)?;
                        let l = match loss {
                            LossKind::Mse => {
                                let q = rubric_ml::kernels::softmax_last_dim(&(z / t)?)?;
                                (q - p)?.sqr()?.sum(D::Minus1)?
                            }
                            LossKind::Bce | LossKind::Kl => {
                                let logq = candle_nn::ops::log_softmax(&(z / t)?, D::Minus1)?;
                                let logp = p.clamp(1e-7, 1.0)?.log()?;
                                ((&p * (logp - logq)?)?.sum(D::Minus1)? * (t * t))?
                            }
                        };
                        sum = (sum + l.mean_all()?)?;
                    }
                    if *click && let Some(z) = out.click {
                        let logits = b.teachers[*teacher].split(b.validation);
                        let zt: Vec<f32> = b
                            .rows
                            .iter()
                            .map(|&r| logits.click.get(r).copied().unwrap_or(0.0))
                            .collect();
                        let zt = Tensor::from_vec(zt, n, b.device)?;
                        sum = (sum + binary_distill(*loss, z, &zt, t)?.mean_all()?)?;
                    }
                    (sum * *weight)?
                }
                Part::Drift {
                    reference,
                    tolerance,
                    ..
                } => {
                    let weight = self.drift_weight.get();
                    match (out.scores, weight > 0.0) {
                        (Some(z), true) => (drift_hinge(z, reference, *tolerance, b)? * weight)?,
                        _ => continue,
                    }
                }
                Part::L2 { weight } => {
                    let mut sum = Tensor::new(0f32, b.device)?;
                    for w in b.weights {
                        sum = (sum + w.sqr()?.sum_all()?)?;
                    }
                    (sum * *weight)?
                }
                Part::Labels {
                    weight,
                    loss,
                    scores,
                    grades,
                    click,
                } => (labels_loss(out, b, *loss, scores, *grades, *click)? * *weight)?,
            };
            total = (total + term)?;
        }
        total.to_dtype(DType::F32)
    }
}

/// The student's scores and the reference's, `[rows, columns]` each, and which entries count
/// (a rubric label the rubric abstained on does not).
fn against_reference(
    z: &Tensor,
    reference: &Reference,
    b: &Batch<'_>,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    let n = b.rows.len();
    match reference {
        Reference::Teacher { teacher, columns } if !columns.is_empty() => {
            let cols: Vec<usize> = columns.iter().map(|(s, _)| *s).collect();
            let s = sigmoid(&student_columns(z, &cols, b.device)?)?;
            let r = sigmoid(&teacher_scores(b, *teacher, columns)?)?;
            let m = Tensor::ones((n, cols.len()), DType::F32, b.device)?;
            Ok(Some((s, r, m)))
        }
        Reference::Rubric { columns } if !columns.is_empty() => {
            let s = sigmoid(&student_columns(z, columns, b.device)?)?;
            let (mut r, mut m) = (vec![0f32; n * columns.len()], vec![0f32; n * columns.len()]);
            for (i, &row) in b.rows.iter().enumerate() {
                let Some(e) = b.examples.get(row) else {
                    continue;
                };
                for (k, &c) in columns.iter().enumerate() {
                    if let Some(v) = e.scores.get(c).filter(|v| v.is_finite()) {
                        r[i * columns.len() + k] = *v;
                        m[i * columns.len() + k] = 1.0;
                    }
                }
            }
            let r = Tensor::from_vec(r, (n, columns.len()), b.device)?;
            let m = Tensor::from_vec(m, (n, columns.len()), b.device)?;
            Ok(Some((s, r, m)))
        }
        _ => Ok(None),
    }
}

/// The mean over the reference's columns of the rows' mean `max(0, |student − reference| −
/// tolerance)`.
fn drift_hinge(z: &Tensor, reference: &Reference, tolerance: f64, b: &Batch<'_>) -> Result<Tensor> {
    let Some((s, r, m)) = against_reference(z, reference, b)? else {
        return Tensor::new(0f32, b.device);
    };
    let columns = s.dim(1)?.max(1) as f64;
    let hinge = ((s - r)?.abs()? - tolerance)?.relu()?;
    masked_column_means(&hinge, &m)? / columns
}

/// The mean absolute gap from the reference over the rows, per column, then over columns: the
/// drift the penalty's weight is rebalanced from (`None` without a reference column).
pub fn measured_drift(z: &Tensor, reference: &Reference, b: &Batch<'_>) -> Result<Option<f64>> {
    let Some((s, r, m)) = against_reference(z, reference, b)? else {
        return Ok(None);
    };
    let columns = s.dim(1)?.max(1) as f64;
    let gap = (s - r)?.abs()?;
    let v = (masked_column_means(&gap, &m)? / columns)?.to_scalar::<f32>()?;
    Ok(Some(f64::from(v)))
}

/// The ground-truth loss, as a teacher learns: each of the score columns `scores` against the
/// rubric's score by `loss`, the grades' cross-entropy (squared error with `mse`), the clicks'
/// loss (with the position's bias), each where a row has the label.
fn labels_loss(
    out: &Outputs<'_>,
    b: &Batch<'_>,
    loss: LossKind,
    scores: &[usize],
    grades: bool,
    click: bool,
) -> Result<Tensor> {
    let n = b.rows.len();
    let mut total = Tensor::new(0f32, b.device)?;
    if let Some(z) = out.scores
        && !scores.is_empty()
    {
        let s = scores.len();
        let (mut y, mut m) = (vec![0f32; n * s], vec![0f32; n * s]);
        for (i, &r) in b.rows.iter().enumerate() {
            if let Some(e) = b.examples.get(r) {
                for (k, &c) in scores.iter().enumerate() {
                    if let Some(v) = e.scores.get(c).filter(|v| v.is_finite()) {
                        y[i * s + k] = *v;
                        m[i * s + k] = 1.0;
                    }
                }
            }
        }
        let y = Tensor::from_vec(y, (n, s), b.device)?;
        let m = Tensor::from_vec(m, (n, s), b.device)?;
        let z = student_columns(z, scores, b.device)?;
        let l = binary_loss(loss, &z, &y)?;
        total = (total + masked_column_means(&l, &m)?)?;
    }
    if grades && let Some(z) = out.grades {
        let g = z.dim(1)?;
        let (mut y, mut m) = (vec![0f32; n * g], vec![0f32; n]);
        for (i, &r) in b.rows.iter().enumerate() {
            if let Some(k) = b.examples.get(r).and_then(|e| e.grade)
                && k < g
            {
                y[i * g + k] = 1.0;
                m[i] = 1.0;
            }
        }
        let y = Tensor::from_vec(y, (n, g), b.device)?;
        let m = Tensor::from_vec(m, (n, 1), b.device)?;
        let l = match loss {
            LossKind::Mse => {
                let q = rubric_ml::kernels::softmax_last_dim(z)?;
                (q - y)?.sqr()?.sum_keepdim(D::Minus1)?
            }
            LossKind::Bce | LossKind::Kl => {
                let logp = candle_nn::ops::log_softmax(z, D::Minus1)?;
                (y * logp)?.sum_keepdim(D::Minus1)?.neg()?
            }
        };
        total = (total + masked_column_means(&l, &m)?)?;
    }
    if click && let Some(z) = out.click {
        let (mut y, mut m, mut pos) = (vec![0f32; n], vec![0f32; n], vec![0u32; n]);
        for (i, &r) in b.rows.iter().enumerate() {
            if let Some(e) = b.examples.get(r)
                && let Some(c) = e.click
            {
                y[i] = f32::from(u8::from(c));
                m[i] = 1.0;
                pos[i] = e.position.saturating_sub(1);
            }
        }
        let mut z = z.clone();
        if let Some(bias) = b.position_bias {
            let slots = bias.dim(0)? as u32;
            let pos: Vec<u32> = pos.into_iter().map(|p| p.min(slots - 1)).collect();
            z = (z + bias.index_select(&Tensor::from_vec(pos, n, b.device)?, 0)?)?;
        }
        let y = Tensor::from_vec(y, (n, 1), b.device)?;
        let m = Tensor::from_vec(m, (n, 1), b.device)?;
        let l = binary_loss(loss, &z.unsqueeze(1)?, &y)?;
        total = (total + masked_column_means(&l, &m)?)?;
    }
    Ok(total)
}

/// The factor a rebalance multiplies the weight by: measured over tolerated drift, clamped.
pub fn rebalance_factor(rebalance: &Rebalance, drift: f64) -> f64 {
    if rebalance.target_drift <= 0.0 {
        return rebalance.max_factor;
    }
    (drift / rebalance.target_drift).clamp(rebalance.min_factor, rebalance.max_factor)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::teach::task::Logits;
    use candle_core::Var;
    use rubric_ml::model::HeadSpec;

    /// A fixed stream of numbers in [-1, 1).
    fn numbers(seed: u64, n: usize) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn example(click: Option<bool>, score: f32) -> Example {
        Example {
            texts: (String::new(), String::new()),
            features: Vec::new(),
            scores: vec![score],
            grade: None,
            click,
            position: 1,
            real: true,
            query: String::new(),
        }
    }

    fn heads(click: bool, scores: &[&str]) -> Heads {
        Heads {
            scores: scores.iter().map(|s| (s.to_string(), None)).collect(),
            grades: Vec::new(),
            click,
            levels: Default::default(),
        }
    }

    fn teacher(click: Vec<f32>, scores: Vec<f32>, width: usize) -> TeacherOutputs {
        let rows = click.len().max(scores.len() / width.max(1));
        let logits = Logits {
            rows,
            score_width: width,
            scores,
            grade_width: 0,
            grades: Vec::new(),
            click,
        };
        TeacherOutputs {
            teacher: "click".to_string(),
            heads: HeadSpec {
                scores: if width > 0 {
                    vec!["overall".to_string()]
                } else {
                    Vec::new()
                },
                grades: Vec::new(),
                click: true,
            },
            train: logits.clone(),
            validation: logits,
            file: std::path::PathBuf::new(),
            hit: false,
        }
    }

    /// A linear click model `x·w` fitted by gradient descent on the objective.
    fn fit(
        objective: &Objective,
        x: &Tensor,
        rows: &[Example],
        teachers: &[TeacherOutputs],
    ) -> Tensor {
        let device = Device::Cpu;
        let w = Var::zeros(x.dim(1).unwrap(), DType::F32, &device).unwrap();
        let all: Vec<usize> = (0..rows.len()).collect();
        for _ in 0..400 {
            let z = x
                .matmul(&w.as_tensor().unsqueeze(1).unwrap())
                .unwrap()
                .squeeze(1)
                .unwrap();
            let out = Outputs {
                scores: None,
                grades: None,
                click: Some(&z),
            };
            let batch = Batch {
                rows: &all,
                examples: rows,
                teachers,
                validation: false,
                position_bias: None,
                weights: &[],
                device: &device,
            };
            let loss = objective.loss(&out, &batch).unwrap();
            let g = loss.backward().unwrap();
            let grad = g.get(w.as_tensor()).unwrap();
            w.set(&(w.as_tensor() - (grad * 2.0).unwrap()).unwrap())
                .unwrap();
        }
        w.as_tensor().clone()
    }

    #[test]
    fn a_student_of_a_teacher_beats_one_of_the_noisy_clicks_the_teacher_smooths() {
        // Clicks drawn from a known probability; a teacher that knows it. Few training rows:
        // the clicks' noise misleads the student that learns from them alone.
        let (d, n, held) = (8usize, 48usize, 4000usize);
        let truth = numbers(1, d);
        let device = Device::Cpu;
        let draw = |seed: u64, rows: usize| {
            let x = numbers(seed, rows * d);
            let u = numbers(seed + 100, rows);
            let logits: Vec<f32> = (0..rows)
                .map(|r| 2.0 * (0..d).map(|k| x[r * d + k] * truth[k]).sum::<f32>())
                .collect();
            let clicks: Vec<bool> = logits
                .iter()
                .zip(&u)
                .map(|(z, u)| (u + 1.0) / 2.0 < 1.0 / (1.0 + (-z).exp()))
                .collect();
            (
                Tensor::from_vec(x, (rows, d), &device).unwrap(),
                logits,
                clicks,
            )
        };
        let (x, logits, clicks) = draw(2, n);
        let (x_held, _, clicks_held) = draw(3, held);
        let rows: Vec<Example> = clicks.iter().map(|c| example(Some(*c), f32::NAN)).collect();
        let teachers = vec![teacher(logits, Vec::new(), 0)];
        let student = heads(true, &[]);
        let distilled = Objective::new(
            &[LossTerm::Distill {
                teacher: "click".to_string(),
                targets: vec![Target::Click],
                weight: 1.0,
                loss: LossKind::Bce,
                temperature: 1.0,
            }],
            &student,
            &teachers,
        )
        .unwrap();
        let auc = |w: &Tensor| {
            let z: Vec<f64> = x_held
                .matmul(&w.unsqueeze(1).unwrap())
                .unwrap()
                .squeeze(1)
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
                .into_iter()
                .map(f64::from)
                .collect();
            rubric_ml::metrics::roc_auc(&z, &clicks_held).unwrap()
        };
        let from_teacher = auc(&fit(&distilled, &x, &rows, &teachers));
        let from_clicks = auc(&fit(&Objective::labels(&student), &x, &rows, &teachers));
        eprintln!("held-out click AUC: distilled {from_teacher:.4}, hard labels {from_clicks:.4}");
        assert!(
            from_teacher > from_clicks + 0.01,
            "distilled {from_teacher:.4}, hard labels {from_clicks:.4}"
        );
    }

    #[test]
    fn a_learn_term_is_its_labels_loss_on_its_own_heads_times_its_weight() {
        let device = Device::Cpu;
        // Three rows: a pair the rubric scored 0.9, one it abstained on, an impression clicked
        // at position 2 (with a score too).
        let mut rows = vec![
            example(None, 0.9),
            example(None, f32::NAN),
            example(Some(true), 0.2),
        ];
        rows[2].position = 2;
        let student = heads(true, &["overall"]);
        let (zs, zc) = ([0.5f32, -1.0, 2.0], [0.3f32, 0.0, -0.4]);
        let scores = Tensor::from_vec(zs.to_vec(), (3, 1), &device).unwrap();
        let click = Tensor::from_vec(zc.to_vec(), 3, &device).unwrap();
        let loss_of = |term: LossTerm| {
            let objective = Objective::new(&[term], &student, &[]).unwrap();
            let batch = Batch {
                rows: &[0, 1, 2],
                examples: &rows,
                teachers: &[],
                validation: false,
                position_bias: None,
                weights: &[],
                device: &device,
            };
            let out = Outputs {
                scores: Some(&scores),
                grades: None,
                click: Some(&click),
            };
            f64::from(
                objective
                    .loss(&out, &batch)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap(),
            )
        };
        let sigmoid = |z: f32| 1.0 / (1.0 + f64::from(-z).exp());
        // The rubric's labels: squared error of the two scored rows, the abstention left out;
        // the click head untouched.
        let rubric = loss_of(LossTerm::Learn {
            labels: LabelSource::Rubric,
            targets: vec![Target::Overall, Target::Grades],
            weight: 2.0,
            loss: LossKind::Mse,
        });
        let mse = ((sigmoid(zs[0]) - 0.9).powi(2) + (sigmoid(zs[2]) - 0.2).powi(2)) / 2.0;
        assert!(
            (rubric - 2.0 * mse).abs() < 1e-5,
            "{rubric} against {}",
            2.0 * mse
        );
        // The log's clicks: the one impression's cross-entropy; the scores untouched.
        let clicks = loss_of(LossTerm::Learn {
            labels: LabelSource::Clicks {
                source: "clicks".to_string(),
            },
            targets: vec![Target::Click],
            weight: 0.5,
            loss: LossKind::Bce,
        });
        let bce = -sigmoid(zc[2]).ln();
        assert!(
            (clicks - 0.5 * bce).abs() < 1e-5,
            "{clicks} against {}",
            0.5 * bce
        );
        // Learning clicks puts the position's bias in; learning the rubric does not.
        let learns = |labels: LabelSource| {
            Objective::new(
                &[LossTerm::Learn {
                    labels,
                    targets: Vec::new(),
                    weight: 1.0,
                    loss: LossKind::Bce,
                }],
                &student,
                &[],
            )
            .unwrap()
            .learns_clicks(&student)
        };
        assert!(learns(LabelSource::Clicks {
            source: "clicks".to_string()
        }));
        assert!(!learns(LabelSource::Rubric));
    }

    #[test]
    fn the_drift_hinge_is_zero_within_the_tolerance_and_the_rebalance_is_clamped() {
        let device = Device::Cpu;
        // Student probabilities 0.5 on two rows; the teacher's 0.52 and 0.8.
        let teacher_logits = vec![(0.52f32 / 0.48).ln(), (0.8f32 / 0.2).ln()];
        let teachers = vec![teacher(vec![0.0, 0.0], teacher_logits, 1)];
        let rows = vec![example(None, 0.5), example(None, 0.9)];
        let z = Tensor::zeros((2, 1), DType::F32, &device).unwrap();
        let reference = Reference::Teacher {
            teacher: 0,
            columns: vec![(0, 0)],
        };
        let batch = Batch {
            rows: &[0, 1],
            examples: &rows,
            teachers: &teachers,
            validation: true,
            position_bias: None,
            weights: &[],
            device: &device,
        };
        let hinge = |tolerance: f64| {
            drift_hinge(&z, &reference, tolerance, &batch)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
        };
        // Gaps 0.02 and 0.3: beyond 0.05, only the second, by 0.25; the mean over rows.
        assert!((hinge(0.05) - 0.125).abs() < 1e-5, "{}", hinge(0.05));
        assert!(hinge(0.5).abs() < 1e-7);
        let drift = measured_drift(&z, &reference, &batch).unwrap().unwrap();
        assert!((drift - 0.16).abs() < 1e-5, "{drift}");
        // Against the rubric's labels: 0.5 and 0.9.
        let rubric = Reference::Rubric { columns: vec![0] };
        let drift = measured_drift(&z, &rubric, &batch).unwrap().unwrap();
        assert!((drift - 0.2).abs() < 1e-5, "{drift}");

        let r = Rebalance {
            every_epochs: 2,
            target_drift: 0.05,
            min_factor: 0.5,
            max_factor: 2.0,
        };
        assert!((rebalance_factor(&r, 0.075) - 1.5).abs() < 1e-12);
        assert_eq!(rebalance_factor(&r, 0.5), 2.0);
        assert_eq!(rebalance_factor(&r, 0.001), 0.5);
    }
}
