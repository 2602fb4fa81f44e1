//! A teacher as the trainer sees it (`rubric_ml::train::Task`): batches drawn by the mix sampler,
//! the loss the plan declares on every head, and the metrics of the validation split. Position
//! bias in clicks is learned by a training-only term: a bias per position added to the click
//! logit while training and left out when the model scores, so the click head learns what a
//! candidate is worth wherever it is shown.

use super::examples::{Example, Heads, on_levels};
use crate::data::mix::MixSampler;
use candle_core::{D, DType, Device, Result, Tensor};
use rubric_compiler::lower::plan::LossKind;
use rubric_ml::metrics::{
    KappaWeights, calibration_error, cohen_kappa, log_loss, mae, mean_ndcg_at_k, roc_auc, spearman,
};
use rubric_ml::model::{PairBatch, PairEncoder, Pass};
use rubric_ml::train::Task;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// A row's word pieces, unpadded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub ids: Vec<u32>,
    pub types: Vec<u32>,
}

/// The cut-off of the NDCG the teachers report.
pub const NDCG_K: usize = 10;
/// Rows per forward pass when scoring.
const SCORE_BATCH: usize = 64;

/// What hears each epoch's validation metrics.
pub type EpochHook<'a> = Box<dyn FnMut(&BTreeMap<String, f64>) + 'a>;

pub struct TeacherTask<'a> {
    pub model: &'a PairEncoder,
    pub heads: &'a Heads,
    pub train: &'a [Example],
    pub train_tokens: &'a [Tokens],
    pub validation: &'a [Example],
    pub validation_tokens: &'a [Tokens],
    pub batch: usize,
    pub real_share: f64,
    pub loss: LossKind,
    pub temperature: f64,
    /// One bias per impression position (training only), when the teacher learns clicks.
    pub position_bias: Option<Tensor>,
    pub device: Device,
    /// Hears each epoch's validation metrics.
    pub on_epoch: RefCell<EpochHook<'a>>,
}

/// A model's outputs on rows: a probability per score head, the grade it ranks first, the click
/// probability.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Predictions {
    pub scores: Vec<Vec<f64>>,
    pub grades: Vec<usize>,
    pub clicks: Vec<f64>,
}

fn sigmoid(z: &Tensor) -> Result<Tensor> {
    (z.neg()?.exp()? + 1.0)?.recip()
}

/// log(1 + e^z), stably.
fn softplus(z: &Tensor) -> Result<Tensor> {
    z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?
}

/// The mean of `loss` over the entries `mask` keeps (0 when it keeps none).
fn masked_mean(loss: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let kept = mask.sum_all()?.to_scalar::<f32>()?;
    (loss * mask)?.sum_all()? / f64::from(kept.max(1.0))
}

/// The sum over columns (targets) of each column's mean over the rows `mask` keeps: every target
/// weighs the same whatever the number of targets, as the grade and click terms do.
fn masked_column_means(loss: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let kept = mask.sum(0)?.clamp(1f32, f32::MAX)?;
    ((loss * mask)?.sum(0)? / kept)?.sum_all()
}

/// The loss of binary targets `y` in [0, 1] given logits `z`: squared error of the probability,
/// or cross-entropy (`bce`, and `kl`, which differs from it by the targets' entropy only).
pub fn binary_loss(kind: LossKind, z: &Tensor, y: &Tensor) -> Result<Tensor> {
    match kind {
        LossKind::Mse => (sigmoid(z)? - y)?.sqr(),
        LossKind::Bce | LossKind::Kl => softplus(z)? - (y * z)?,
    }
}

pub fn batch_of(
    rows: &[usize],
    examples: &[Example],
    tokens: &[Tokens],
    features: usize,
    device: &Device,
) -> Result<PairBatch> {
    let len = rows
        .iter()
        .filter_map(|&r| tokens.get(r))
        .map(|t| t.ids.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let n = rows.len();
    let (mut ids, mut types, mut mask) = (
        vec![0u32; n * len],
        vec![0u32; n * len],
        vec![0u32; n * len],
    );
    let mut feats = vec![0f32; n * features];
    for (b, &r) in rows.iter().enumerate() {
        if let Some(t) = tokens.get(r) {
            let at = b * len;
            ids[at..at + t.ids.len()].copy_from_slice(&t.ids);
            types[at..at + t.types.len()].copy_from_slice(&t.types);
            mask[at..at + t.ids.len()].fill(1);
        }
        if let Some(e) = examples.get(r)
            && e.features.len() == features
        {
            feats[b * features..(b + 1) * features].copy_from_slice(&e.features);
        }
    }
    Ok(PairBatch {
        ids: Tensor::from_vec(ids, (n, len), device)?,
        types: Tensor::from_vec(types, (n, len), device)?,
        mask: Tensor::from_vec(mask, (n, len), device)?,
        features: if features > 0 {
            Some(Tensor::from_vec(feats, (n, features), device)?)
        } else {
            None
        },
    })
}

impl TeacherTask<'_> {
    fn feature_width(&self) -> usize {
        self.train.first().map_or(0, |e| e.features.len())
    }
}

/// A model's raw outputs on rows, row-major: `rows × score_width` score logits, `rows ×
/// grade_width` grade logits, a click logit per row (empty where the model has no such head).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logits {
    pub rows: usize,
    pub score_width: usize,
    pub scores: Vec<f32>,
    pub grade_width: usize,
    pub grades: Vec<f32>,
    pub click: Vec<f32>,
}

fn sigmoid64(z: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(z)).exp())
}

impl Logits {
    /// Row `r`'s score logits.
    pub fn score_row(&self, r: usize) -> &[f32] {
        self.scores
            .get(r * self.score_width..(r + 1) * self.score_width)
            .unwrap_or(&[])
    }

    /// Row `r`'s grade logits.
    pub fn grade_row(&self, r: usize) -> &[f32] {
        self.grades
            .get(r * self.grade_width..(r + 1) * self.grade_width)
            .unwrap_or(&[])
    }

    /// The rows `rows`, in that order.
    pub fn select(&self, rows: &[usize]) -> Logits {
        let mut out = Logits {
            rows: rows.len(),
            score_width: self.score_width,
            grade_width: self.grade_width,
            ..Logits::default()
        };
        for &r in rows {
            out.scores.extend_from_slice(self.score_row(r));
            out.grades.extend_from_slice(self.grade_row(r));
            if let Some(z) = self.click.get(r) {
                out.click.push(*z);
            }
        }
        out
    }

    /// The outputs as predictions: probabilities, the grade ranked first.
    pub fn predictions(&self) -> Predictions {
        let scores = (0..self.score_width)
            .map(|k| {
                (0..self.rows)
                    .filter_map(|r| self.scores.get(r * self.score_width + k))
                    .map(|z| sigmoid64(*z))
                    .collect()
            })
            .collect();
        let grades = if self.grade_width == 0 {
            Vec::new()
        } else {
            (0..self.rows)
                .map(|r| {
                    let row = self.grade_row(r);
                    (0..row.len())
                        .max_by(|a, b| row[*a].total_cmp(&row[*b]).then(b.cmp(a)))
                        .unwrap_or(0)
                })
                .collect()
        };
        Predictions {
            scores,
            grades,
            clicks: self.click.iter().map(|z| sigmoid64(*z)).collect(),
        }
    }
}

/// A model's logits on `examples`, in batches, with no dropout and no position bias, detached
/// from any graph.
pub fn logits(
    model: &PairEncoder,
    examples: &[Example],
    tokens: &[Tokens],
    device: &Device,
) -> Result<Logits> {
    let features = examples.first().map_or(0, |e| e.features.len());
    let mut out = Logits {
        rows: examples.len(),
        ..Logits::default()
    };
    let all: Vec<usize> = (0..examples.len()).collect();
    for rows in all.chunks(SCORE_BATCH) {
        let batch = batch_of(rows, examples, tokens, features, device)?;
        let o = model.forward(&batch, &mut Pass::Eval)?;
        if let Some(z) = &o.score_logits {
            out.score_width = z.dim(1)?;
            out.scores
                .extend(z.detach().flatten_all()?.to_vec1::<f32>()?);
        }
        if let Some(z) = &o.grade_logits {
            out.grade_width = z.dim(1)?;
            out.grades
                .extend(z.detach().flatten_all()?.to_vec1::<f32>()?);
        }
        if let Some(z) = &o.click_logit {
            out.click.extend(z.detach().to_vec1::<f32>()?);
        }
    }
    Ok(out)
}

/// A model's outputs on `examples` (see [`logits`]).
pub fn predict(
    model: &PairEncoder,
    examples: &[Example],
    tokens: &[Tokens],
    device: &Device,
) -> Result<Predictions> {
    Ok(logits(model, examples, tokens, device)?.predictions())
}

impl Task for TeacherTask<'_> {
    fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        MixSampler::new(self.train.iter().map(|e| e.real), self.real_share, seed)
            .epoch(epoch, self.batch)
    }

    fn loss(&self, rows: &[usize], pass: &mut Pass) -> Result<Tensor> {
        let batch = batch_of(
            rows,
            self.train,
            self.train_tokens,
            self.feature_width(),
            &self.device,
        )?;
        let out = self.model.forward(&batch, pass)?;
        let n = rows.len();
        let t = self.temperature;
        let mut total = Tensor::new(0f32, &self.device)?;
        if let Some(z) = &out.score_logits {
            let s = self.heads.scores.len();
            let (mut y, mut m) = (vec![0f32; n * s], vec![0f32; n * s]);
            for (b, &r) in rows.iter().enumerate() {
                if let Some(e) = self.train.get(r) {
                    for (k, v) in e.scores.iter().enumerate().take(s) {
                        if v.is_finite() {
                            y[b * s + k] = *v;
                            m[b * s + k] = 1.0;
                        }
                    }
                }
            }
            let y = Tensor::from_vec(y, (n, s), &self.device)?;
            let m = Tensor::from_vec(m, (n, s), &self.device)?;
            let l = binary_loss(self.loss, &(z / t)?, &y)?;
            total = (total + masked_column_means(&l, &m)?)?;
        }
        if let Some(z) = &out.grade_logits {
            let g = self.heads.grades.len();
            let (mut y, mut m) = (vec![0f32; n * g], vec![0f32; n]);
            for (b, &r) in rows.iter().enumerate() {
                if let Some(k) = self.train.get(r).and_then(|e| e.grade)
                    && k < g
                {
                    y[b * g + k] = 1.0;
                    m[b] = 1.0;
                }
            }
            let y = Tensor::from_vec(y, (n, g), &self.device)?;
            let m = Tensor::from_vec(m, n, &self.device)?;
            let logp = candle_nn::ops::log_softmax(&(z / t)?, D::Minus1)?;
            let ce = (y * logp)?.sum(D::Minus1)?.neg()?;
            total = (total + masked_mean(&ce, &m)?)?;
        }
        if let Some(z) = &out.click_logit {
            let (mut y, mut m, mut pos) = (vec![0f32; n], vec![0f32; n], vec![0u32; n]);
            for (b, &r) in rows.iter().enumerate() {
                if let Some(e) = self.train.get(r)
                    && let Some(c) = e.click
                {
                    y[b] = f32::from(u8::from(c));
                    m[b] = 1.0;
                    pos[b] = e.position.saturating_sub(1);
                }
            }
            let mut z = (z / t)?;
            if let Some(bias) = &self.position_bias {
                let slots = bias.dim(0)? as u32;
                let pos: Vec<u32> = pos.into_iter().map(|p| p.min(slots - 1)).collect();
                let idx = Tensor::from_vec(pos, n, &self.device)?;
                z = (z + bias.index_select(&idx, 0)?)?;
            }
            let y = Tensor::from_vec(y, n, &self.device)?;
            let m = Tensor::from_vec(m, n, &self.device)?;
            let l = binary_loss(self.loss, &z, &y)?;
            total = (total + masked_mean(&l, &m)?)?;
        }
        total.to_dtype(DType::F32)
    }

    fn evaluate(&self) -> Result<BTreeMap<String, f64>> {
        let p = predict(
            self.model,
            self.validation,
            self.validation_tokens,
            &self.device,
        )?;
        let metrics = measure(self.heads, self.validation, &p);
        (self.on_epoch.borrow_mut())(&metrics);
        Ok(metrics)
    }
}

/// The metrics of predictions against the rows' targets, by name: per score head `spearman.X`
/// and `mae.X`, of the scores as reported (on the heads' levels where they have some, and then
/// `spearman.X.continuous` of the probabilities themselves); `policy_alignment` (mean Spearman
/// over the dimensions, and `policy_alignment.continuous` where any has levels), `policy_drift`
/// (mean absolute gap over every policy score); `grade_kappa` (quadratic weights) and
/// `grade_kappa_linear`; `ndcg@10` over each query's candidates, ranked by the overall score and
/// graded by the rubric's (over the queries with at least two, counted in `ndcg@10.queries`);
/// `click_auc`, `click_logloss`, `click_calibration`.
pub fn measure(heads: &Heads, examples: &[Example], p: &Predictions) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    let mut alignments = Vec::new();
    let mut continuous = Vec::new();
    let mut gaps = Vec::new();
    for (k, (name, dim)) in heads.scores.iter().enumerate() {
        let Some(predicted) = p.scores.get(k) else {
            continue;
        };
        let (truth, raw): (Vec<f64>, Vec<f64>) = examples
            .iter()
            .zip(predicted)
            .filter_map(|(e, g)| {
                let v = *e.scores.get(k)?;
                v.is_finite().then_some((f64::from(v), *g))
            })
            .unzip();
        let levels = heads.levels.get(name).map_or(&[][..], Vec::as_slice);
        let guess: Vec<f64> = raw.iter().map(|g| on_levels(levels, *g)).collect();
        if let Some(rho) = spearman(&guess, &truth) {
            out.insert(format!("spearman.{name}"), rho);
            if dim.is_some() {
                alignments.push(rho);
            }
        }
        if let Some(rho) = spearman(&raw, &truth) {
            if !levels.is_empty() {
                out.insert(format!("spearman.{name}.continuous"), rho);
            }
            if dim.is_some() {
                continuous.push(rho);
            }
        }
        if let Some(gap) = mae(&guess, &truth) {
            out.insert(format!("mae.{name}"), gap);
            gaps.push(gap);
        }
    }
    if alignments.is_empty()
        && let Some(&rho) = out.get("spearman.overall")
    {
        alignments.push(rho);
    }
    if !alignments.is_empty() {
        out.insert(
            "policy_alignment".to_string(),
            alignments.iter().sum::<f64>() / alignments.len() as f64,
        );
    }
    if !heads.levels.is_empty() && !continuous.is_empty() {
        out.insert(
            "policy_alignment.continuous".to_string(),
            continuous.iter().sum::<f64>() / continuous.len() as f64,
        );
    }
    if !gaps.is_empty() {
        out.insert(
            "policy_drift".to_string(),
            gaps.iter().sum::<f64>() / gaps.len() as f64,
        );
    }
    if !heads.grades.is_empty() {
        let (truth, guess): (Vec<usize>, Vec<usize>) = examples
            .iter()
            .zip(&p.grades)
            .filter_map(|(e, g)| Some((e.grade?, *g)))
            .unzip();
        let classes = heads.grades.len();
        if let Some(k) = cohen_kappa(&guess, &truth, classes, KappaWeights::Quadratic) {
            out.insert("grade_kappa".to_string(), k);
        }
        if let Some(k) = cohen_kappa(&guess, &truth, classes, KappaWeights::Linear) {
            out.insert("grade_kappa_linear".to_string(), k);
        }
    }
    // NDCG: each query's candidates, ranked by the predicted overall score (the mean of the
    // dimensions when there is no overall head), graded by the rubric's.
    let overall = heads
        .scores
        .iter()
        .position(|(n, d)| d.is_none() && n == "overall");
    let rank_by = |e: &Example, i: usize| -> Option<(f64, f64)> {
        match overall {
            Some(k) => {
                let truth = *e.scores.get(k)?;
                Some((
                    f64::from(if truth.is_finite() { truth } else { 0.0 }),
                    *p.scores.get(k)?.get(i)?,
                ))
            }
            None if !heads.scores.is_empty() => {
                let n = heads.scores.len() as f64;
                let truth: f64 = e
                    .scores
                    .iter()
                    .filter(|v| v.is_finite())
                    .map(|v| f64::from(*v))
                    .sum();
                let guess: f64 = p.scores.iter().filter_map(|h| h.get(i)).sum();
                Some((truth / n, guess / n))
            }
            None => None,
        }
    };
    if !heads.click && !heads.scores.is_empty() {
        let mut groups: BTreeMap<&str, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for (i, e) in examples.iter().enumerate() {
            if let Some((truth, guess)) = rank_by(e, i) {
                let g = groups.entry(e.query.as_str()).or_default();
                g.0.push(truth);
                g.1.push(guess);
            }
        }
        let queries: Vec<(&[f64], &[f64])> = groups
            .values()
            .filter(|(t, _)| t.len() >= 2)
            .map(|(t, g)| (t.as_slice(), g.as_slice()))
            .collect();
        let counted = queries.len();
        if let Some(ndcg) = mean_ndcg_at_k(queries, NDCG_K) {
            out.insert(format!("ndcg@{NDCG_K}"), ndcg);
            out.insert(format!("ndcg@{NDCG_K}.queries"), counted as f64);
        }
    }
    if heads.click {
        let (labels, probs): (Vec<bool>, Vec<f64>) = examples
            .iter()
            .zip(&p.clicks)
            .filter_map(|(e, q)| Some((e.click?, *q)))
            .unzip();
        if let Some(auc) = roc_auc(&probs, &labels) {
            out.insert("click_auc".to_string(), auc);
        }
        if let Some(l) = log_loss(&probs, &labels) {
            out.insert("click_logloss".to_string(), l);
        }
        if let Some(c) = calibration_error(&probs, &labels, 10) {
            out.insert("click_calibration".to_string(), c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dimension_with_levels_is_measured_on_them_and_its_probabilities_beside() {
        // Three scores, most pairs on 1: predictions each near its own, ordered at random
        // within a tie.
        let truth = [1.0f32, 1.0, 0.4, 1.0, 0.0, 1.0, 0.4, 1.0, 1.0, 0.0];
        let guess = [0.97, 0.99, 0.43, 0.93, 0.02, 0.95, 0.38, 0.98, 0.96, 0.05];
        let examples: Vec<Example> = truth
            .iter()
            .enumerate()
            .map(|(i, t)| Example {
                texts: (String::new(), String::new()),
                features: Vec::new(),
                scores: vec![*t],
                grade: None,
                click: None,
                position: 0,
                real: true,
                query: format!("q{i}"),
            })
            .collect();
        let p = Predictions {
            scores: vec![guess.to_vec()],
            ..Default::default()
        };
        let mut heads = Heads {
            scores: vec![("employment_type".to_string(), Some(0))],
            grades: Vec::new(),
            click: false,
            levels: Default::default(),
        };
        let continuous = measure(&heads, &examples, &p);
        let rho = continuous["spearman.employment_type"];
        assert!(rho < 0.95, "{rho}");
        assert!(!continuous.contains_key("policy_alignment.continuous"));

        heads
            .levels
            .insert("employment_type".to_string(), vec![0.0, 0.4, 1.0]);
        let on_levels = measure(&heads, &examples, &p);
        assert!((on_levels["spearman.employment_type"] - 1.0).abs() < 1e-12);
        assert!(on_levels["mae.employment_type"].abs() < 1e-6);
        assert_eq!(on_levels["spearman.employment_type.continuous"], rho);
        assert_eq!(on_levels["policy_alignment.continuous"], rho);
        assert!((on_levels["policy_alignment"] - 1.0).abs() < 1e-12);
    }
}
