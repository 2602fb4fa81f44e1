//! The feature click model on the real Open Bandit sample, for comparison with scikit-learn's
//! logistic regression on the same split (`benches/obd_logreg.py`; both run by
//! `benches/obd_click_model.sh`). This example owns only that measurement: it reads the
//! random-policy "all" campaign (10,000 impressions) from the pinned `obp-0.4.1` wheel, splits it
//! by time (the file is in timestamp order, checked here: the first 80% of the rows train, the
//! last 20% test), trains `rubric_ml::model::FeatureModel` with a click head through
//! `rubric_ml::train::train`, and prints the test AUC and log loss, the rows and CTR of each split
//! and the training wall time.
//!
//! Inputs: categorical `item_id`, `position`, `user_feature_0..3` (ids from the training split,
//! id 0 for a value it never saw) and one numeric, the affinity of the shown item
//! (`user-item_affinity_<item_id>`), standardized with the training split's mean and deviation.
//! Model: embeddings of 8, one hidden layer of 32, dropout 0.1. Training: binary cross-entropy on
//! the click logit, batches of 256 shuffled per epoch (ChaCha8 from the seed, the epoch as its
//! stream), 5 epochs, AdamW at 3e-3 decaying linearly (no warm-up), weight decay 0.01, gradients
//! clipped to norm 1.0, seed 7. The test split is measured after each epoch; nothing is chosen
//! on it (no early stopping), the last epoch's figures are the result.
//!
//! Run: `cargo run --release -p rubric-runtime --example obd_click_model [WHEEL]`; the wheel is
//! the argument, else `RUBRIC_OBP_WHEEL`, else `~/.cache/rubric/obp/obp-0.4.1-py3-none-any.whl`.

use candle_core::{DType, Device, Tensor, bail};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rubric_compiler::lower::plan::LossKind;
use rubric_ml::metrics::{log_loss, roc_auc};
use rubric_ml::model::{FeatureBatch, FeatureConfig, FeatureModel, HeadSpec, Pass};
use rubric_ml::params::Params;
use rubric_ml::train::{Task, TrainSettings, train};
use rubric_runtime::data::obd::{
    BehaviorPolicy, Campaign, OBP_WHEEL, OBP_WHEEL_ENV, member_path, read_sample,
};
use rubric_runtime::teach::task::binary_loss;
use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

/// The categorical columns, in the model's order.
const CATEGORICAL: [&str; 6] = [
    "item_id",
    "position",
    "user_feature_0",
    "user_feature_1",
    "user_feature_2",
    "user_feature_3",
];
const TRAIN_SHARE_PERCENT: usize = 80;
const BATCH: usize = 256;
/// Rows per forward pass when scoring the test split.
const SCORE_BATCH: usize = 2048;

/// One impression as the models read it.
struct Row {
    categorical: [String; 6],
    affinity: f64,
    clicked: bool,
    propensity: f64,
}

/// A split encoded for the model: ids `[rows, 6]` row-major, the standardized affinity, labels.
struct Encoded {
    ids: Vec<u32>,
    numeric: Vec<f32>,
    clicks: Vec<bool>,
}

impl Encoded {
    fn batch(&self, rows: &[usize], device: &Device) -> candle_core::Result<FeatureBatch> {
        let width = CATEGORICAL.len();
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut numeric = Vec::with_capacity(rows.len());
        for &r in rows {
            ids.extend_from_slice(&self.ids[r * width..(r + 1) * width]);
            numeric.push(self.numeric[r]);
        }
        Ok(FeatureBatch {
            numeric: Some(Tensor::from_vec(numeric, (rows.len(), 1), device)?),
            categorical: Some(Tensor::from_vec(ids, (rows.len(), width), device)?),
        })
    }

    fn labels(&self, rows: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let y: Vec<f32> = rows
            .iter()
            .map(|&r| f32::from(u8::from(self.clicks[r])))
            .collect();
        Tensor::from_vec(y, rows.len(), device)
    }
}

/// What the training split fixes: each categorical column's ids (from 1; 0 is unseen) and the
/// affinity's mean and deviation.
struct Encoding {
    vocab: Vec<HashMap<String, u32>>,
    mean: f64,
    std: f64,
}

impl Encoding {
    fn fit(train: &[Row]) -> Encoding {
        let mut vocab: Vec<HashMap<String, u32>> = vec![HashMap::new(); CATEGORICAL.len()];
        for row in train {
            for (map, value) in vocab.iter_mut().zip(&row.categorical) {
                let next = map.len() as u32 + 1;
                map.entry(value.clone()).or_insert(next);
            }
        }
        let n = train.len().max(1) as f64;
        let mean = train.iter().map(|r| r.affinity).sum::<f64>() / n;
        let var = train
            .iter()
            .map(|r| (r.affinity - mean).powi(2))
            .sum::<f64>()
            / n;
        // A constant column is centred only (as scikit-learn's StandardScaler does).
        let std = if var > 0.0 { var.sqrt() } else { 1.0 };
        Encoding { vocab, mean, std }
    }

    /// Each column's number of ids, the unknown one included.
    fn sizes(&self) -> Vec<usize> {
        self.vocab.iter().map(|m| m.len() + 1).collect()
    }

    fn encode(&self, rows: &[Row]) -> Encoded {
        let mut ids = Vec::with_capacity(rows.len() * CATEGORICAL.len());
        for row in rows {
            for (map, value) in self.vocab.iter().zip(&row.categorical) {
                ids.push(map.get(value).copied().unwrap_or(0));
            }
        }
        Encoded {
            ids,
            numeric: rows
                .iter()
                .map(|r| ((r.affinity - self.mean) / self.std) as f32)
                .collect(),
            clicks: rows.iter().map(|r| r.clicked).collect(),
        }
    }
}

/// The wheel: the first argument, else `RUBRIC_OBP_WHEEL`, else the cached download.
fn wheel_path() -> Result<PathBuf, Box<dyn Error>> {
    let how = format!(
        "download the pinned wheel with `python3 -m pip download obp==0.4.1 --no-deps \
         --only-binary=:all: --python-version 3.9 -d ~/.cache/rubric/obp`, or point \
         {OBP_WHEEL_ENV} at a copy"
    );
    if let Some(arg) = std::env::args_os().nth(1) {
        return Ok(PathBuf::from(arg));
    }
    if let Some(set) = std::env::var_os(OBP_WHEEL_ENV) {
        let path = PathBuf::from(set);
        if !path.is_file() {
            return Err(format!(
                "{OBP_WHEEL_ENV} names `{}`, which is not a file: {how}",
                path.display()
            )
            .into());
        }
        return Ok(path);
    }
    let Some(home) = std::env::var_os("HOME") else {
        return Err(format!("{OBP_WHEEL_ENV} is not set and neither is HOME: {how}").into());
    };
    let path = PathBuf::from(home)
        .join(".cache/rubric/obp")
        .join(OBP_WHEEL);
    if !path.is_file() {
        return Err(format!(
            "{OBP_WHEEL_ENV} is not set and `{}` does not exist: {how}",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// The random-policy "all" sample with the columns the click format leaves out (the user
/// features and the shown item's affinity), checked row by row against `read_sample`, which
/// also checks the wheel's SHA-256 and that every row's fields are well formed.
fn read_rows(wheel: &std::path::Path) -> Result<Vec<Row>, Box<dyn Error>> {
    let (policy, campaign) = (BehaviorPolicy::Random, Campaign::All);
    let clicks = read_sample(wheel, policy, campaign)?;
    if let Some(w) = clicks.windows(2).position(|w| w[1].ts < w[0].ts) {
        return Err(format!(
            "the sample is not in timestamp order (row {} is earlier than row {}): a time split needs it",
            w + 2,
            w + 1
        )
        .into());
    }
    let member = member_path(policy, campaign);
    let file = std::fs::File::open(wheel)
        .map_err(|e| format!("cannot read `{}`: {e}", wheel.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("`{}` is not a readable wheel: {e}", wheel.display()))?;
    let mut text = String::new();
    archive
        .by_name(&member)
        .map_err(|e| format!("no `{member}` in `{}`: {e}", wheel.display()))?
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot inflate `{member}`: {e}"))?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let headers = reader.headers()?.clone();
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("`{member}` has no `{name}` column"))
    };
    let categorical_cols = CATEGORICAL
        .iter()
        .map(|name| column(name))
        .collect::<Result<Vec<_>, _>>()?;
    let (click_col, propensity_col) = (column("click")?, column("propensity_score")?);
    let mut rows = Vec::with_capacity(clicks.len());
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("`{member}`, line {line}: {e}"))?;
        let field = |col: usize| {
            record
                .get(col)
                .ok_or_else(|| format!("`{member}`, line {line}: a field is missing"))
        };
        let mut categorical: [String; 6] = Default::default();
        for (slot, &col) in categorical.iter_mut().zip(&categorical_cols) {
            *slot = field(col)?.to_string();
        }
        let affinity_name = format!("user-item_affinity_{}", categorical[0]);
        let affinity_text = field(column(&affinity_name)?)?;
        let affinity: f64 = affinity_text.parse().map_err(|e| {
            format!("`{member}`, line {line}: `{affinity_name}` = \"{affinity_text}\": {e}")
        })?;
        let clicked = field(click_col)? == "1";
        let propensity: f64 = field(propensity_col)?
            .parse()
            .map_err(|e| format!("`{member}`, line {line}: `propensity_score`: {e}"))?;
        let Some(checked) = clicks.get(i) else {
            return Err(format!("`{member}` has more rows than `read_sample` read").into());
        };
        if checked.clicked != clicked || checked.position.to_string() != categorical[1] {
            return Err(
                format!("`{member}`, line {line}: disagrees with `read_sample`'s row").into(),
            );
        }
        rows.push(Row {
            categorical,
            affinity,
            clicked,
            propensity,
        });
    }
    if rows.len() != clicks.len() {
        return Err(format!(
            "`{member}`: {} rows here, {} from `read_sample`",
            rows.len(),
            clicks.len()
        )
        .into());
    }
    Ok(rows)
}

/// The click model as the trainer sees it.
struct ClickTask<'a> {
    model: &'a FeatureModel,
    train: &'a Encoded,
    test: &'a Encoded,
    device: Device,
}

impl ClickTask<'_> {
    /// The click probability of every test row.
    fn predict(&self) -> candle_core::Result<Vec<f64>> {
        let rows: Vec<usize> = (0..self.test.clicks.len()).collect();
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(SCORE_BATCH) {
            let batch = self.test.batch(chunk, &self.device)?;
            let Some(z) = self.model.forward(&batch, &mut Pass::Eval)?.click_logit else {
                bail!("the model has no click head");
            };
            out.extend(
                z.to_vec1::<f32>()?
                    .into_iter()
                    .map(|z| 1.0 / (1.0 + (-f64::from(z)).exp())),
            );
        }
        Ok(out)
    }
}

impl Task for ClickTask<'_> {
    fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(epoch);
        let mut order: Vec<usize> = (0..self.train.clicks.len()).collect();
        order.shuffle(&mut rng);
        order.chunks(BATCH).map(<[usize]>::to_vec).collect()
    }

    /// Binary cross-entropy with logits, stably: softplus(z) − y·z, averaged over the batch.
    fn loss(&self, rows: &[usize], pass: &mut Pass) -> candle_core::Result<Tensor> {
        let batch = self.train.batch(rows, &self.device)?;
        let Some(z) = self.model.forward(&batch, pass)?.click_logit else {
            bail!("the model has no click head");
        };
        let y = self.train.labels(rows, &self.device)?;
        binary_loss(LossKind::Bce, &z, &y)?.mean_all()
    }

    fn evaluate(&self) -> candle_core::Result<BTreeMap<String, f64>> {
        let p = self.predict()?;
        let mut metrics = BTreeMap::new();
        if let Some(auc) = roc_auc(&p, &self.test.clicks) {
            metrics.insert("auc".to_string(), auc);
        }
        if let Some(loss) = log_loss(&p, &self.test.clicks) {
            metrics.insert("log_loss".to_string(), loss);
        }
        Ok(metrics)
    }
}

fn ctr(rows: &[Row]) -> (usize, f64) {
    let clicks = rows.iter().filter(|r| r.clicked).count();
    (clicks, clicks as f64 / rows.len().max(1) as f64)
}

fn main() -> Result<(), Box<dyn Error>> {
    let wheel = wheel_path()?;
    let rows = read_rows(&wheel)?;
    let cut = rows.len() * TRAIN_SHARE_PERCENT / 100;
    let (train_rows, test_rows) = rows.split_at(cut);
    if train_rows.is_empty() || test_rows.is_empty() {
        return Err(format!("{} rows cannot be split 80/20", rows.len()).into());
    }
    let propensities: Vec<f64> = rows.iter().map(|r| r.propensity).collect();
    let (lo, hi) = propensities
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(*p), hi.max(*p))
        });
    let (train_clicks, train_ctr) = ctr(train_rows);
    let (test_clicks, test_ctr) = ctr(test_rows);
    println!(
        "sample: {} rows of `{}` (random policy, propensity {lo}..{hi}), in timestamp order",
        rows.len(),
        member_path(BehaviorPolicy::Random, Campaign::All)
    );
    println!(
        "split (time order, first 80% train, last 20% test): train rows={} clicks={train_clicks} ctr={train_ctr:.5}; test rows={} clicks={test_clicks} ctr={test_ctr:.5}",
        train_rows.len(),
        test_rows.len()
    );

    let encoding = Encoding::fit(train_rows);
    let train_set = encoding.encode(train_rows);
    let test_set = encoding.encode(test_rows);
    let device = Device::Cpu;
    let config = FeatureConfig {
        numeric: 1,
        categorical: encoding.sizes(),
        embedding: 8,
        hidden: vec![32],
        dropout: 0.1,
    };
    let spec = HeadSpec {
        scores: vec![],
        grades: vec![],
        click: true,
    };
    let settings = TrainSettings {
        epochs: 5,
        accumulate: 1,
        lr: 3e-3,
        warmup: 0,
        clip_norm: 1.0,
        weight_decay: 0.01,
        seed: 7,
        early_stop: None,
        checkpoint_every: 0,
    };
    let params = Params::seeded(settings.seed);
    let model = FeatureModel::new(&config, &spec, params.builder(DType::F32, &device))?;
    let task = ClickTask {
        model: &model,
        train: &train_set,
        test: &test_set,
        device,
    };
    println!(
        "feature model: categorical sizes {:?} (unseen = id 0), {} parameters",
        config.categorical,
        params.count()
    );
    let start = Instant::now();
    let report = train(&params, &task, &settings, None, &mut |_, _| {})?;
    let seconds = start.elapsed().as_secs_f64();
    for epoch in &report.state.history {
        let metric = |name: &str| {
            epoch
                .metrics
                .get(name)
                .map_or("undefined".to_string(), |v| format!("{v:.4}"))
        };
        println!(
            "  epoch {}: train loss {:.5}, test auc {} logloss {}",
            epoch.epoch + 1,
            epoch.mean_loss,
            metric("auc"),
            metric("log_loss")
        );
    }
    let p = task.predict()?;
    let Some(auc) = roc_auc(&p, &test_set.clicks) else {
        return Err("the test split needs both clicks and non-clicks for an AUC".into());
    };
    let Some(loss) = log_loss(&p, &test_set.clicks) else {
        return Err("the test split is empty".into());
    };
    let constant = vec![train_ctr; test_set.clicks.len()];
    if let Some(base) = log_loss(&constant, &test_set.clicks) {
        println!("baseline (the training CTR for every test row): logloss={base:.5}");
    }
    println!(
        "rubric feature model: auc={auc:.4} logloss={loss:.5} train_rows={} test_rows={} seconds={seconds:.2}",
        train_rows.len(),
        test_rows.len()
    );
    Ok(())
}
