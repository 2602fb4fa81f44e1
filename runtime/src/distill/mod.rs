//! The distill stage of `rubric run` (and `rubric distill`): one compact student learns from
//! every teacher the student's loss terms name — their outputs cached once per checkpoint and
//! rows — held on policy by the drift penalty, whose weight is rebalanced from the drift
//! measured on validation as the plan says. It trains on the mix's pairs (in batches that hold
//! the mix's real share) and, when it learns clicks, on the log's impressions with their time;
//! it is measured beside each teacher on the same held-out real pairs and impressions.
//! Ablations train the same student with a part of the recipe left out.

pub mod cache;
pub mod objective;
pub mod report;

use crate::compile::deterministic_json;
use crate::data::clicks::Click;
use crate::data::golden::pairs::{PairRow, read_pairs};
use crate::data::mix::MixSampler;
use crate::label::engine::Engine;
use crate::teach::examples::{Example, Heads, RowMaker, Sources, fit, join_clicks, levels_of};
use crate::teach::task::{EpochHook, Logits, Tokens, batch_of, logits, measure};
use crate::teach::{
    CARD, CARD_SCHEMA, MODEL_DIR, ModelCard, Objective as CardObjective, Source, Start,
    TeacherObserver, TrainedModel, Training, model_start, position_bias, read_card,
    remove_checkpoints, tokenize,
};
use cache::TeacherOutputs;
use candle_core::{DType, Device, Tensor};
use objective::{
    Batch, DRIFT_MEASURED, DRIFT_WEIGHT, Objective, Outputs, RebalanceRecord, measured_drift,
    rebalance_factor, teachers_read,
};
use report::{DistillReport, ModelSummary};
use rubric_compiler::lower::plan::{
    Feature, LabelSource, LossTerm, ModelConfig, StudentConfig, Target,
};
use rubric_compiler::vocabulary::Direction;
use rubric_ml::checkpoint;
use rubric_ml::model::{HeadSpec, PairEncoder, Pass};
use rubric_ml::train::{EarlyStopping, EpochRecord, Task};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The student's name in its card and the report.
pub const STUDENT: &str = "student";

/// A student with a part of the recipe left out, or the whole recipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The recipe as the pipeline declares it.
    Full,
    /// Only the teachers of policy scores (and the drift penalty).
    PolicyOnly,
    /// Only the click teacher (no time), no drift penalty.
    ClickOnly,
    /// Every teacher, no drift penalty.
    NoDrift,
    /// The real pairs only.
    NoSynthetic,
    /// Without the teachers that read the impression's time.
    NoTemporal,
    /// No teacher: the rubric's labels and the log's clicks.
    LabelsOnly,
}

impl Variant {
    /// The ablations a report runs, in the order it shows them.
    pub const ABLATIONS: [Variant; 6] = [
        Variant::PolicyOnly,
        Variant::ClickOnly,
        Variant::NoDrift,
        Variant::NoSynthetic,
        Variant::NoTemporal,
        Variant::LabelsOnly,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Full => "student",
            Variant::PolicyOnly => "policy_only",
            Variant::ClickOnly => "click_only",
            Variant::NoDrift => "no_drift",
            Variant::NoSynthetic => "no_synthetic",
            Variant::NoTemporal => "no_temporal",
            Variant::LabelsOnly => "labels_only",
        }
    }

    /// What it leaves out, for the report.
    pub fn describe(self) -> &'static str {
        match self {
            Variant::Full => "every teacher, the drift penalty, real and synthetic pairs",
            Variant::PolicyOnly => {
                "the policy teachers only (the drift penalty and any `learn rubric` kept)"
            }
            Variant::ClickOnly => {
                "the click teacher only (any `learn SOURCE` kept), no drift penalty"
            }
            Variant::NoDrift => "every teacher, no drift penalty",
            Variant::NoSynthetic => "every teacher, the real pairs only",
            Variant::NoTemporal => "without the teachers that read the impression's time",
            Variant::LabelsOnly => "no teacher: the rubric's labels and the log's clicks",
        }
    }
}

fn reads_time(card: &ModelCard) -> bool {
    card.inputs
        .features
        .iter()
        .any(|f| matches!(f, Feature::HourOfDay | Feature::DayOfWeek))
}

fn predicts_policy(card: &ModelCard) -> bool {
    card.targets.iter().any(|t| !matches!(t, Target::Click))
}

/// The terms of a variant, or `None` where it is the same student as the full one (nothing to
/// leave out) or has nothing to learn from. `LabelsOnly` has no terms (`Some(empty)`).
pub fn variant_terms(
    variant: Variant,
    terms: &[LossTerm],
    cards: &BTreeMap<String, ModelCard>,
    has_synthetic: bool,
) -> Option<Vec<LossTerm>> {
    let teacher_of = |t: &LossTerm| match t {
        LossTerm::Distill { teacher, .. } => cards.get(teacher),
        _ => None,
    };
    let keep = |f: &dyn Fn(&LossTerm) -> bool| -> Option<Vec<LossTerm>> {
        let kept: Vec<LossTerm> = terms.iter().filter(|t| f(t)).cloned().collect();
        let distills = |ts: &[LossTerm]| {
            ts.iter()
                .filter(|t| matches!(t, LossTerm::Distill { .. }))
                .count()
        };
        (kept.len() < terms.len() && distills(&kept) > 0).then_some(kept)
    };
    // A single-teacher student keeps the ground truth of its side: the rubric's labels with the
    // policy teacher, the log's clicks with the click teacher.
    let learns = |t: &LossTerm, rubric: bool| match t {
        LossTerm::Learn { labels, .. } => matches!(labels, LabelSource::Rubric) == rubric,
        _ => false,
    };
    match variant {
        Variant::Full => Some(terms.to_vec()),
        Variant::PolicyOnly => keep(&|t| match t {
            LossTerm::Distill { .. } => teacher_of(t).is_some_and(predicts_policy),
            LossTerm::Learn { .. } => learns(t, true),
            _ => true,
        }),
        Variant::ClickOnly => {
            let clicks =
                |t: &LossTerm| teacher_of(t).is_some_and(|c| c.heads.click && !predicts_policy(c));
            let timeless = terms
                .iter()
                .any(|t| clicks(t) && teacher_of(t).is_some_and(|c| !reads_time(c)));
            keep(&|t| match t {
                LossTerm::Distill { .. } => {
                    clicks(t) && (!timeless || teacher_of(t).is_some_and(|c| !reads_time(c)))
                }
                LossTerm::Learn { .. } => learns(t, false),
                LossTerm::DriftPenalty(_) => false,
                LossTerm::L2 { .. } => true,
            })
        }
        Variant::NoDrift => keep(&|t| !matches!(t, LossTerm::DriftPenalty(_))),
        Variant::NoSynthetic => has_synthetic.then(|| terms.to_vec()),
        Variant::NoTemporal => keep(&|t| !teacher_of(t).is_some_and(reads_time)),
        Variant::LabelsOnly => Some(Vec::new()),
    }
}

/// The student's targets: every target of the teachers its terms distill and of the labels
/// it learns, in order.
pub fn student_targets(terms: &[LossTerm]) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for t in terms {
        if let LossTerm::Distill { targets, .. } | LossTerm::Learn { targets, .. } = t {
            for x in targets {
                if !out.contains(x) {
                    out.push(x.clone());
                }
            }
        }
    }
    // Scores first, in the teachers' order, then grades, then the click.
    let rank = |t: &Target| match t {
        Target::Dimension(_) | Target::Overall => 0,
        Target::Grades => 1,
        Target::Click => 2,
    };
    out.sort_by_key(rank);
    out
}

/// A trained teacher the student learns from.
pub struct TeacherModel {
    /// Its stage's `model/` folder.
    pub dir: PathBuf,
    /// The hash of its files (weights, tokenizer, card).
    pub checkpoint: String,
}

/// A student to distill, and what it needs besides its data.
pub struct DistillJob<'a> {
    pub engine: &'a Engine,
    pub config: &'a StudentConfig,
    /// The student's compiled loss terms (the full recipe; a variant leaves parts out).
    pub terms: &'a [LossTerm],
    /// The share of real rows in every batch (the mix's).
    pub real_share: f64,
    pub base: &'a Path,
    pub device: &'a Device,
    /// SHA-256 of the training plan.
    pub plan_hash: String,
    /// The stage's inputs by name, with their SHA-256.
    pub data: BTreeMap<String, String>,
    /// The teachers, by name.
    pub teachers: BTreeMap<String, TeacherModel>,
    /// The hash of the rows' sources: with a teacher's checkpoint, the key of its cached outputs.
    pub rows_hash: String,
    /// Where the teachers' outputs are cached.
    pub cache: &'a Path,
    /// The files of the pipeline's unlabeled pairs, which the teachers score for the student.
    pub unlabeled: Vec<PathBuf>,
}

/// What a distillation reports.
pub struct DistillOutcome {
    pub report: DistillReport,
    /// Seconds of the student's training and the rows it went through per second.
    pub seconds: f64,
    pub rows_per_second: f64,
    /// Rows the teachers scored (0 when every teacher's outputs came from the cache).
    pub teacher_rows_scored: u64,
}

/// An impression, or a pair with no impression, of a split.
#[derive(Clone)]
struct Item {
    index: usize,
    click: Option<Click>,
}

/// The rows of one model over the items of each split.
fn rows_of(
    maker: &mut RowMaker<'_>,
    splits: [(&[PairRow], &Path, &[Item]); 2],
) -> Result<[Vec<Example>; 2], String> {
    let mut out: [Vec<Example>; 2] = [Vec::new(), Vec::new()];
    for (k, (pairs, file, items)) in splits.into_iter().enumerate() {
        for item in items {
            if let Some(row) = pairs.get(item.index) {
                out[k].push(maker.make(row, file, item.click.as_ref())?);
            }
        }
    }
    Ok(out)
}

/// The rows of one model over the unlabeled pairs, after the training rows.
fn unlabeled_rows(
    maker: &mut RowMaker<'_>,
    files: &[(PathBuf, Vec<PairRow>)],
) -> Result<Vec<Example>, String> {
    let mut out = Vec::new();
    for (file, pairs) in files {
        for row in pairs {
            out.push(maker.make_unlabeled(row, file)?);
        }
    }
    Ok(out)
}

/// Metrics of predictions on validation rows: the policy's on the pairs (the first `pairs`
/// rows), the clicks' on the impressions (the rest); `blended` where both are measured.
pub fn measure_split(
    heads: &Heads,
    rows: &[Example],
    pairs: usize,
    logits: &Logits,
) -> BTreeMap<String, f64> {
    let policy = Heads {
        click: false,
        ..heads.clone()
    };
    let clicks = Heads {
        scores: Vec::new(),
        grades: Vec::new(),
        click: heads.click,
        levels: Default::default(),
    };
    let pairs = pairs.min(rows.len());
    let first: Vec<usize> = (0..pairs).collect();
    let rest: Vec<usize> = (pairs..rows.len()).collect();
    let mut out = measure(
        &policy,
        &rows[..pairs],
        &logits.select(&first).predictions(),
    );
    let impressions = logits.select(&rest).predictions();
    if heads.click {
        out.extend(measure(
            &clicks,
            &rows[pairs..],
            &crate::teach::task::Predictions {
                clicks: impressions.clicks,
                ..Default::default()
            },
        ));
    } else if let Some(k) = heads
        .scores
        .iter()
        .position(|(n, d)| d.is_none() && n == "overall")
    {
        // A model with no click head ranks impressions by its overall score.
        let (labels, scores): (Vec<bool>, Vec<f64>) = rows[pairs..]
            .iter()
            .zip(impressions.scores.get(k).into_iter().flatten())
            .filter_map(|(e, s)| Some((e.click?, *s)))
            .unzip();
        if let Some(auc) = rubric_ml::metrics::roc_auc(&scores, &labels) {
            out.insert(report::CLICK_AUC_BY_OVERALL.to_string(), auc);
        }
    }
    if let Some(b) = report::blended(&out) {
        out.insert(report::BLENDED.to_string(), b);
    }
    out
}

/// The rows as a teacher with `heads` sees their labels: each score target's label at the
/// teacher's column.
fn relabel(rows: &[Example], student: &Heads, teacher: &Heads) -> Vec<Example> {
    let map: Vec<Option<usize>> = teacher
        .scores
        .iter()
        .map(|(n, _)| student.scores.iter().position(|(m, _)| m == n))
        .collect();
    rows.iter()
        .map(|e| Example {
            scores: map
                .iter()
                .map(|k| k.and_then(|k| e.scores.get(k).copied()).unwrap_or(f32::NAN))
                .collect(),
            ..e.clone()
        })
        .collect()
}

struct StudentTask<'a> {
    model: &'a PairEncoder,
    heads: &'a Heads,
    train: &'a [Example],
    train_tokens: &'a [Tokens],
    validation: &'a [Example],
    validation_tokens: &'a [Tokens],
    validation_pairs: usize,
    teachers: &'a [TeacherOutputs],
    objective: &'a Objective,
    batch: usize,
    real_share: f64,
    position_bias: Option<Tensor>,
    weights: Vec<Tensor>,
    device: Device,
    epochs_done: Cell<u64>,
    on_epoch: RefCell<EpochHook<'a>>,
}

impl StudentTask<'_> {
    fn feature_width(&self) -> usize {
        self.train.first().map_or(0, |e| e.features.len())
    }
}

/// An epoch's batches of the rows, each holding the mix's share of real rows (pairs and
/// impressions are real; synthetic pairs are not).
pub fn batches(
    rows: &[Example],
    real_share: f64,
    seed: u64,
    epoch: u64,
    batch: usize,
) -> Vec<Vec<usize>> {
    MixSampler::new(rows.iter().map(|e| e.real), real_share, seed).epoch(epoch, batch)
}

impl Task for StudentTask<'_> {
    fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        batches(self.train, self.real_share, seed, epoch, self.batch)
    }

    fn loss(&self, rows: &[usize], pass: &mut Pass) -> candle_core::Result<Tensor> {
        let batch = batch_of(
            rows,
            self.train,
            self.train_tokens,
            self.feature_width(),
            &self.device,
        )?;
        let out = self.model.forward(&batch, pass)?;
        self.objective.loss(
            &Outputs {
                scores: out.score_logits.as_ref(),
                grades: out.grade_logits.as_ref(),
                click: out.click_logit.as_ref(),
            },
            &Batch {
                rows,
                examples: self.train,
                teachers: self.teachers,
                validation: false,
                position_bias: self.position_bias.as_ref(),
                weights: &self.weights,
                device: &self.device,
            },
        )
    }

    fn evaluate(&self) -> candle_core::Result<BTreeMap<String, f64>> {
        let l = logits(
            self.model,
            self.validation,
            self.validation_tokens,
            &self.device,
        )?;
        let mut metrics = measure_split(self.heads, self.validation, self.validation_pairs, &l);
        let epoch = self.epochs_done.get() + 1;
        self.epochs_done.set(epoch);
        if let Some((reference, _, rebalance)) = self.objective.drift()
            && l.score_width > 0
        {
            let pairs: Vec<usize> = (0..self.validation_pairs.min(l.rows)).collect();
            let z = Tensor::from_vec(
                l.select(&pairs).scores,
                (pairs.len(), l.score_width),
                &self.device,
            )?;
            let drift = measured_drift(
                &z,
                reference,
                &Batch {
                    rows: &pairs,
                    examples: self.validation,
                    teachers: self.teachers,
                    validation: true,
                    position_bias: None,
                    weights: &[],
                    device: &self.device,
                },
            )?;
            if let Some(drift) = drift {
                metrics.insert(DRIFT_MEASURED.to_string(), drift);
                if let Some(r) = rebalance
                    && r.every_epochs > 0
                    && epoch.is_multiple_of(r.every_epochs)
                {
                    let w = self.objective.drift_weight();
                    self.objective
                        .set_drift_weight(w * rebalance_factor(r, drift));
                }
            }
            metrics.insert(DRIFT_WEIGHT.to_string(), self.objective.drift_weight());
        }
        (self.on_epoch.borrow_mut())(&metrics);
        Ok(metrics)
    }

    fn resumed(&self, history: &[EpochRecord]) -> candle_core::Result<()> {
        self.epochs_done.set(history.len() as u64);
        if let Some(w) = history.last().and_then(|h| h.metrics.get(DRIFT_WEIGHT)) {
            self.objective.set_drift_weight(*w);
        }
        Ok(())
    }
}

/// The rebalances a training made, read from its epochs' records.
pub fn rebalances(
    history: &[EpochRecord],
    initial: f64,
    every: Option<u64>,
) -> Vec<RebalanceRecord> {
    let Some(every) = every.filter(|e| *e > 0) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut weight = initial;
    for (i, h) in history.iter().enumerate() {
        let epoch = i as u64 + 1;
        let (Some(&drift), Some(&new)) =
            (h.metrics.get(DRIFT_MEASURED), h.metrics.get(DRIFT_WEIGHT))
        else {
            continue;
        };
        if epoch.is_multiple_of(every) {
            out.push(RebalanceRecord {
                epoch,
                drift,
                old_weight: weight,
                new_weight: new,
            });
        }
        weight = new;
    }
    out
}

/// Whether the student's validation measures `metric`.
fn measures(metric: &str, heads: &Heads, drift: bool) -> bool {
    match metric {
        "policy_alignment" | "policy_drift" => !heads.scores.is_empty(),
        "grade_kappa" | "grade_kappa_linear" => !heads.grades.is_empty(),
        "ndcg@10" => !heads.scores.is_empty(),
        "click_auc" | "click_logloss" | "click_calibration" => heads.click,
        report::BLENDED => heads.click || heads.scores.iter().any(|(n, _)| n == "overall"),
        DRIFT_MEASURED => drift,
        _ => false,
    }
}

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Distills the student (`variant` of it) from its teachers. With `out`, writes it there
/// (`model/`, Hugging Face layout and its card); checkpoints go in `work/` meanwhile, so that a
/// killed run resumes there.
pub fn distill(
    job: &DistillJob<'_>,
    sources: &Sources<'_>,
    variant: Variant,
    out: Option<&Path>,
    work: &Path,
    observer: &mut dyn TeacherObserver,
) -> Result<DistillOutcome, String> {
    let c = job.config;
    let mut cards = BTreeMap::new();
    for name in teachers_read(job.terms) {
        let t = job.teachers.get(&name).ok_or_else(|| {
            format!("the student learns from the teacher `{name}`, which has not been trained")
        })?;
        cards.insert(name, read_card(&t.dir)?);
    }
    let read = |p: &Path| read_pairs(p).map_err(|e| e.to_string());
    let pool = read(sources.pool)?;
    let validation = read(sources.validation)?;
    // Pairs no label exists for: rows after the training rows, learned from the teachers alone.
    let unlabeled = job
        .unlabeled
        .iter()
        .map(|p| Ok((p.clone(), read(p)?)))
        .collect::<Result<Vec<_>, String>>()?;
    let unlabeled_count: usize = unlabeled.iter().map(|(_, rows)| rows.len()).sum();
    let has_synthetic = pool
        .iter()
        .any(|r| r.str_field("source") == Some("synthetic"));
    let terms = variant_terms(variant, job.terms, &cards, has_synthetic).ok_or_else(|| {
        format!(
            "the `{}` ablation leaves nothing out of this pipeline's student",
            variant.name()
        )
    })?;
    // A variant's student has the heads its terms train (the hard-label one, every head).
    let targets = student_targets(if variant == Variant::LabelsOnly {
        job.terms
    } else {
        &terms
    });
    if targets.is_empty() {
        return Err(
            "the student distills no teacher: add `distill TEACHER weight W loss L` \
                    to `student`"
                .to_string(),
        );
    }
    let mut heads = Heads::new(&targets, job.engine)?;

    // The rows: every pair of the pool, then (for a student of clicks) every impression.
    let pair_items = |rows: &[PairRow]| -> Vec<Item> {
        (0..rows.len())
            .map(|index| Item { index, click: None })
            .collect()
    };
    let (mut train_items, mut validation_items) = (pair_items(&pool), pair_items(&validation));
    let validation_pairs = validation_items.len();
    // The impressions are rows of every variant of a student of clicks (the same rows, the
    // same cached outputs), and measure a variant with no click head by its overall score.
    let mut unjoined = 0;
    if student_targets(job.terms).contains(&Target::Click) {
        let clicks = sources.clicks.ok_or_else(|| {
            "the student learns clicks, and the pipeline declares no click log: add one to \
             `data` (`clicks \"data/clicks.jsonl\" clean { ... }`)"
                .to_string()
        })?;
        let joined = join_clicks(&pool, &validation, sources.pool, clicks)?;
        unjoined = joined.unjoined;
        let impressions = |v: Vec<(usize, Click)>| {
            v.into_iter().map(|(index, click)| Item {
                index,
                click: Some(click),
            })
        };
        train_items.extend(impressions(joined.train));
        validation_items.extend(impressions(joined.validation));
    }

    // The teachers' outputs: from the cache, or scored once and cached.
    let mut teachers = Vec::new();
    let mut scored = 0u64;
    for (name, card) in &cards {
        let t = &job.teachers[name];
        let path = cache::file(job.cache, name, &t.checkpoint, &job.rows_hash);
        let (train_logits, validation_logits, hit) = match cache::load(
            &path,
            &card.heads,
            train_items.len() + unlabeled_count,
            validation_items.len(),
        ) {
            Some((a, b)) => (a, b, true),
            None => {
                observer.status(&format!("the teacher `{name}` scores the rows"));
                let model = TrainedModel::load(&t.dir, job.engine, job.device)?;
                let mut maker = RowMaker::new(
                    job.engine,
                    &model.heads,
                    &card.inputs,
                    card.features.clone(),
                )?;
                let [mut a, b] = rows_of(
                    &mut maker,
                    [
                        (&pool, sources.pool, &train_items),
                        (&validation, sources.validation, &validation_items),
                    ],
                )?;
                a.extend(unlabeled_rows(&mut maker, &unlabeled)?);
                let (a, b) = (model.logits(&a)?, model.logits(&b)?);
                scored += (a.rows + b.rows) as u64;
                cache::save(&path, &a, &b)?;
                (a, b, false)
            }
        };
        teachers.push(TeacherOutputs {
            teacher: name.clone(),
            heads: card.heads.clone(),
            train: train_logits,
            validation: validation_logits,
            file: path,
            hit,
        });
    }
    // `teachers_read` order, as the objective resolves them.
    let order = teachers_read(job.terms);
    teachers.sort_by_key(|t| order.iter().position(|n| *n == t.teacher));

    // The student's own rows.
    let source = match (&c.model, &job.teachers) {
        (ModelConfig::FromTeacher { teacher }, all) => Some(Source::open(
            &all.get(teacher)
                .ok_or_else(|| {
                    format!("the teacher `{teacher}` it starts from has not been trained")
                })?
                .dir,
        )?),
        _ => None,
    };
    let encoder = match source.as_ref().filter(|s| s.same_features(&c.inputs)) {
        Some(s) => s.card.features.clone(),
        None => fit(&c.inputs.features, &pool),
    };
    let mut maker = RowMaker::new(job.engine, &heads, &c.inputs, encoder)?;
    let [mut train_rows, validation_rows] = rows_of(
        &mut maker,
        [
            (&pool, sources.pool, &train_items),
            (&validation, sources.validation, &validation_items),
        ],
    )?;
    train_rows.extend(unlabeled_rows(&mut maker, &unlabeled)?);
    let features = maker.encoder().clone();
    if variant == Variant::NoSynthetic {
        let keep: Vec<usize> = (0..train_rows.len())
            .filter(|&i| train_rows[i].real)
            .collect();
        train_rows = keep.iter().map(|&i| train_rows[i].clone()).collect();
        for t in &mut teachers {
            t.train = t.train.select(&keep);
        }
    }
    heads.levels = levels_of(&heads.scores, &train_rows);
    let batch = usize::try_from(c.train.batch).map_err(fail)?.max(1);
    if train_rows.len() < batch {
        return Err(format!(
            "the student has {} training rows, fewer than one batch of {batch}: add data or \
             lower `train {{ batch }}`",
            train_rows.len()
        ));
    }
    let objective = if variant == Variant::LabelsOnly {
        Objective::labels(&heads)
    } else {
        Objective::new(&terms, &heads, &teachers)?
    };
    let initial_drift_weight = objective.drift_weight();

    let start = Start {
        model: &c.model,
        inputs: &c.inputs,
        seed: c.train.seed,
        dropout: c.regularize.dropout,
        base: job.base,
        device: job.device,
    };
    let (cfg, tokenizer, params) = model_start(&start, &train_rows, source.as_ref())?;
    let train_tokens = tokenize(&tokenizer, &train_rows)?;
    let validation_tokens = tokenize(&tokenizer, &validation_rows)?;
    let spec = HeadSpec {
        scores: heads.scores.iter().map(|(n, _)| n.clone()).collect(),
        grades: heads.grades.clone(),
        click: heads.click,
    };
    let vb = params.builder(DType::F32, job.device);
    let model = PairEncoder::new(&cfg, features.width(), &spec, vb.clone()).map_err(fail)?;
    let position_bias = if objective.learns_clicks(&heads) {
        Some(position_bias(&vb, &train_rows)?)
    } else {
        None
    };
    let weights: Vec<Tensor> = params
        .named()
        .into_iter()
        .filter(|(n, _)| n.ends_with(".weight") && !n.contains("LayerNorm"))
        .map(|(_, v)| v.as_tensor().clone())
        .collect();
    let parameters = params.count();

    let observer = RefCell::new(observer);
    let epochs = c.train.epochs;
    let epoch_seen = Cell::new(0u64);
    let task = StudentTask {
        model: &model,
        heads: &heads,
        train: &train_rows,
        train_tokens: &train_tokens,
        validation: &validation_rows,
        validation_tokens: &validation_tokens,
        validation_pairs,
        teachers: &teachers,
        objective: &objective,
        batch,
        real_share: if train_rows.iter().all(|e| e.real) {
            1.0
        } else {
            job.real_share
        },
        position_bias,
        weights,
        device: job.device.clone(),
        epochs_done: Cell::new(0),
        on_epoch: RefCell::new(Box::new(|metrics: &BTreeMap<String, f64>| {
            let shown: Vec<String> = metrics
                .iter()
                .filter(|(k, _)| !k.contains('.') || k.starts_with("drift_penalty."))
                .map(|(k, v)| format!("{k} {v:.4}"))
                .collect();
            epoch_seen.set(epoch_seen.get() + 1);
            observer.borrow_mut().note(&format!(
                "{} epoch {}/{epochs}: {}",
                variant.name(),
                epoch_seen.get(),
                shown.join(", ")
            ));
        })),
    };
    let steps_per_epoch =
        (task.batches(c.train.seed, 0).len() as u64).div_ceil(c.train.accumulate.max(1));
    if steps_per_epoch == 0 {
        return Err(format!(
            "the student draws no full batch of {batch} from its {} training rows at {:.0}% \
             real: add data or lower `train {{ batch }}`",
            train_rows.len(),
            task.real_share * 100.0
        ));
    }
    let drift = objective.drift().is_some();
    let early_stop = match &c.early_stop {
        // An ablation that does not measure the declared metric stops on the blended one.
        Some(e) if variant != Variant::Full && !measures(&e.metric, &heads, drift) => {
            measures(report::BLENDED, &heads, drift).then(|| EarlyStopping {
                metric: report::BLENDED.to_string(),
                higher_is_better: true,
                patience: e.patience,
                min_delta: e.min_delta,
            })
        }
        Some(e) if !measures(&e.metric, &heads, drift) => {
            return Err(format!(
                "`early_stop on {}`: the student does not measure it (it predicts {}); stop on \
                 one of its metrics, e.g. `policy_alignment` or `click_auc`",
                e.metric,
                targets
                    .iter()
                    .map(|t| match t {
                        Target::Dimension(d) => d.clone(),
                        Target::Overall => "overall".to_string(),
                        Target::Grades => "grades".to_string(),
                        Target::Click => "click".to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Some(e) => Some(EarlyStopping {
            metric: e.metric.clone(),
            higher_is_better: e.direction == Direction::Maximize,
            patience: e.patience,
            min_delta: e.min_delta,
        }),
        None => None,
    };
    let run = Training::new(&c.train, &c.regularize, steps_per_epoch, early_stop);
    let label = format!("{} ", variant.name());
    let (trained, seconds, rows_per_second) =
        run.train(&params, &task, work, batch, &observer, &label)?;
    let history = trained.state.history.clone();
    // The kept epoch's: the best on the early-stopping metric, when there is one.
    let metrics = trained
        .state
        .kept()
        .map(|h| h.metrics.clone())
        .unwrap_or_default();
    let every = objective
        .drift()
        .and_then(|(_, _, r)| r.map(|r| r.every_epochs));
    let rebalanced = rebalances(&history, initial_drift_weight, every);

    if let Some(out) = out {
        let model_dir = out.join(MODEL_DIR);
        checkpoint::save(&model_dir, &cfg, &params, &tokenizer).map_err(fail)?;
        let card = ModelCard {
            schema: CARD_SCHEMA.to_string(),
            name: STUDENT.to_string(),
            policy: job.engine.program.policy.clone(),
            plan: job.plan_hash.clone(),
            data: job.data.clone(),
            targets: targets.clone(),
            heads: spec.clone(),
            roles: crate::teach::roles_of(job.engine),
            levels: heads.levels.clone(),
            inputs: c.inputs.clone(),
            features: features.clone(),
            max_len: tokenizer
                .get_truncation()
                .map_or(cfg.max_position_embeddings, |t| t.max_length),
            objective: CardObjective::Student {
                terms: terms.clone(),
            },
            train: c.train.clone(),
            parameters,
            train_rows: train_rows.len(),
            validation_rows: validation_rows.len(),
            metrics: metrics.clone(),
            history: history.clone(),
        };
        let card_path = model_dir.join(CARD);
        crate::atomic::write(&card_path, deterministic_json(&card).as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", card_path.display()))?;
    }
    remove_checkpoints(work)?;

    // Each teacher on the same held-out rows.
    let mut teacher_summaries = Vec::new();
    for t in &teachers {
        let card = cards
            .get(&t.teacher)
            .ok_or_else(|| format!("the teacher `{}` has no card", t.teacher))?;
        let th = card.heads_for(job.engine)?;
        let rows = relabel(&validation_rows, &heads, &th);
        teacher_summaries.push(ModelSummary {
            name: t.teacher.clone(),
            parameters: card.parameters,
            metrics: measure_split(&th, &rows, validation_pairs, &t.validation),
            cache: Some(report::CacheUse {
                file: t
                    .file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                hit: t.hit,
            }),
        });
    }
    let student = ModelSummary {
        name: variant.name().to_string(),
        parameters,
        metrics,
        cache: None,
    };
    let report = DistillReport::new(
        variant,
        student,
        teacher_summaries,
        &terms,
        rebalanced,
        report::Rows {
            train: train_rows.len(),
            validation_pairs,
            validation_impressions: validation_rows.len() - validation_pairs,
            unjoined_clicks: unjoined,
            unlabeled: unlabeled_count,
        },
        history.len(),
        trained.state.stopped_early,
        trained.state.best_epoch.map(|e| e + 1),
    );
    Ok(DistillOutcome {
        report,
        seconds,
        rows_per_second,
        teacher_rows_scored: scored,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rubric_compiler::lower::plan::{DriftPenalty, DriftReference, LossKind, Rebalance, Warmup};

    fn row(real: bool, click: Option<bool>) -> Example {
        Example {
            texts: (String::new(), String::new()),
            features: Vec::new(),
            scores: Vec::new(),
            grade: None,
            click,
            position: 1,
            real,
            query: String::new(),
        }
    }

    #[test]
    fn every_batch_holds_the_mix_share_of_real_rows() {
        // Pairs, impressions (real) and synthetic pairs, interleaved.
        let rows: Vec<Example> = (0..500)
            .map(|i| match i % 5 {
                0 => row(true, None),
                1 => row(true, Some(i % 2 == 0)),
                _ => row(false, None),
            })
            .collect();
        for epoch in 0..3 {
            let all = batches(&rows, 0.3, 7, epoch, 20);
            assert!(!all.is_empty());
            for b in &all {
                assert_eq!(b.len(), 20);
                let real = b.iter().filter(|&&r| rows[r].real).count();
                assert_eq!(real, 6, "epoch {epoch}: {real} real rows of 20");
            }
        }
    }

    fn record(drift: f64, weight: f64) -> EpochRecord {
        EpochRecord {
            epoch: 0,
            mean_loss: 0.0,
            metrics: [
                (DRIFT_MEASURED.to_string(), drift),
                (DRIFT_WEIGHT.to_string(), weight),
            ]
            .into_iter()
            .collect(),
            steps: 0,
        }
    }

    #[test]
    fn the_rebalances_are_read_from_the_epochs_records() {
        let history = [
            record(0.2, 0.5),
            record(0.1, 1.0),
            record(0.08, 1.0),
            record(0.01, 0.5),
        ];
        let got = rebalances(&history, 0.5, Some(2));
        assert_eq!(
            got,
            [
                RebalanceRecord {
                    epoch: 2,
                    drift: 0.1,
                    old_weight: 0.5,
                    new_weight: 1.0
                },
                RebalanceRecord {
                    epoch: 4,
                    drift: 0.01,
                    old_weight: 1.0,
                    new_weight: 0.5
                },
            ]
        );
        assert!(rebalances(&history, 0.5, None).is_empty());
    }

    fn card(name: &str, targets: Vec<Target>, features: Vec<Feature>) -> ModelCard {
        let click = targets.contains(&Target::Click);
        ModelCard {
            schema: CARD_SCHEMA.to_string(),
            name: name.to_string(),
            policy: rubric_compiler::lower::ir::PolicyRef {
                name: "p".to_string(),
                version: 1,
                hash: String::new(),
            },
            plan: String::new(),
            data: BTreeMap::new(),
            targets,
            roles: vec!["query".to_string(), "candidate".to_string()],
            levels: Default::default(),
            heads: HeadSpec {
                scores: Vec::new(),
                grades: Vec::new(),
                click,
            },
            inputs: rubric_compiler::lower::plan::ModelInputs {
                reads: Vec::new(),
                features: features.clone(),
            },
            features: Default::default(),
            max_len: 8,
            objective: CardObjective::Teacher {
                loss: LossKind::Bce,
                temperature: 1.0,
            },
            train: rubric_compiler::lower::plan::TrainConfig {
                epochs: 1,
                lr: 1e-3,
                batch: 8,
                warmup: Warmup::Steps(0),
                accumulate: 1,
                clip_norm: 1.0,
                seed: 1,
            },
            parameters: 1,
            train_rows: 1,
            validation_rows: 1,
            metrics: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    fn distill_term(teacher: &str, targets: Vec<Target>) -> LossTerm {
        LossTerm::Distill {
            teacher: teacher.to_string(),
            targets,
            weight: 1.0,
            loss: LossKind::Mse,
            temperature: 1.0,
        }
    }

    #[test]
    fn each_ablation_leaves_out_its_part_of_the_recipe() {
        let policy = vec![Target::Overall, Target::Grades];
        let terms = vec![
            distill_term("policy", policy.clone()),
            distill_term("click", vec![Target::Click]),
            distill_term("temporal", vec![Target::Click]),
            LossTerm::Learn {
                labels: LabelSource::Rubric,
                targets: policy.clone(),
                weight: 0.1,
                loss: LossKind::Mse,
            },
            LossTerm::Learn {
                labels: LabelSource::Clicks {
                    source: "clicks".to_string(),
                },
                targets: vec![Target::Click],
                weight: 0.1,
                loss: LossKind::Bce,
            },
            LossTerm::DriftPenalty(DriftPenalty {
                weight: 0.5,
                tolerance: 0.05,
                against: DriftReference::Teacher {
                    name: "policy".to_string(),
                },
                targets: vec![Target::Overall],
                rebalance: Some(Rebalance {
                    every_epochs: 2,
                    target_drift: 0.05,
                    min_factor: 0.5,
                    max_factor: 2.0,
                }),
            }),
        ];
        let cards: BTreeMap<String, ModelCard> = [
            card("policy", policy, Vec::new()),
            card("click", vec![Target::Click], Vec::new()),
            card("temporal", vec![Target::Click], vec![Feature::HourOfDay]),
        ]
        .into_iter()
        .map(|c| (c.name.clone(), c))
        .collect();
        let names = |v: Variant| -> Vec<String> {
            variant_terms(v, &terms, &cards, true)
                .unwrap()
                .iter()
                .map(|t| match t {
                    LossTerm::Distill { teacher, .. } => teacher.clone(),
                    LossTerm::Learn { labels, .. } => match labels {
                        LabelSource::Rubric => "learn rubric".to_string(),
                        LabelSource::Clicks { source } => format!("learn {source}"),
                    },
                    LossTerm::DriftPenalty(_) => "drift".to_string(),
                    LossTerm::L2 { .. } => "l2".to_string(),
                })
                .collect()
        };
        let learned = ["learn rubric", "learn clicks"];
        assert_eq!(
            names(Variant::Full),
            [&["policy", "click", "temporal"][..], &learned, &["drift"]].concat()
        );
        // A single-teacher student keeps its side's ground truth.
        assert_eq!(
            names(Variant::PolicyOnly),
            ["policy", "learn rubric", "drift"]
        );
        assert_eq!(names(Variant::ClickOnly), ["click", "learn clicks"]);
        assert_eq!(
            names(Variant::NoDrift),
            [&["policy", "click", "temporal"][..], &learned].concat()
        );
        assert_eq!(
            names(Variant::NoTemporal),
            [&["policy", "click"][..], &learned, &["drift"]].concat()
        );
        assert!(names(Variant::LabelsOnly).is_empty());
        assert_eq!(names(Variant::NoSynthetic), names(Variant::Full));
        // Nothing to leave out: not run.
        assert!(variant_terms(Variant::NoSynthetic, &terms, &cards, false).is_none());
        let timeless = &terms[..2];
        assert!(variant_terms(Variant::NoTemporal, timeless, &cards, true).is_none());
        // The student's heads: scores, grades, the click.
        assert_eq!(
            student_targets(&terms),
            [Target::Overall, Target::Grades, Target::Click]
        );
    }
}
