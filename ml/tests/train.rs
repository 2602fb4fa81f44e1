//! The trainer on a small feature model and a click task with a known answer: it learns, a fixed
//! seed gives the same weights, early stopping stops and keeps the best epoch's weights, and a
//! run killed with SIGKILL at random points and resumed from its checkpoint ends on exactly the
//! weights of an unbroken run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candle_core::{D, DType, Device, Result, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::metrics::roc_auc;
use rubric_ml::model::{FeatureBatch, FeatureConfig, FeatureModel, HeadSpec, Pass};
use rubric_ml::params::Params;
use rubric_ml::train::{EarlyStopping, Task, TrainSettings, train};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Clicks that depend on the features through a known rule: clicked when 2a − b + noise > 0.
struct Clicks {
    model: FeatureModel,
    features: Vec<[f32; 3]>,
    labels: Vec<f32>,
    validation: Vec<usize>,
    train: Vec<usize>,
    /// A metric that never improves, for the early-stopping test.
    flat: bool,
}

impl Clicks {
    fn new(params: &Params, flat: bool) -> Clicks {
        let cfg = FeatureConfig {
            numeric: 3,
            categorical: vec![],
            embedding: 0,
            hidden: vec![16],
            dropout: 0.1,
        };
        let spec = HeadSpec {
            click: true,
            ..HeadSpec::default()
        };
        let model =
            FeatureModel::new(&cfg, &spec, params.builder(DType::F32, &Device::Cpu)).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let (mut features, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..400 {
            let f = [
                rng.random_range(-1.0f32..1.0),
                rng.random_range(-1.0..1.0),
                rng.random_range(-1.0..1.0),
            ];
            let noise: f32 = rng.random_range(-0.3..0.3);
            labels.push(f32::from(2.0 * f[0] - f[1] + noise > 0.0));
            features.push(f);
        }
        Clicks {
            model,
            features,
            labels,
            validation: (300..400).collect(),
            train: (0..300).collect(),
            flat,
        }
    }

    fn logits(&self, rows: &[usize], pass: &mut Pass) -> Result<Tensor> {
        let flat: Vec<f32> = rows.iter().flat_map(|&r| self.features[r]).collect();
        let batch = FeatureBatch {
            numeric: Some(Tensor::from_vec(flat, (rows.len(), 3), &Device::Cpu)?),
            categorical: None,
        };
        self.model
            .forward(&batch, pass)?
            .click_logit
            .ok_or_else(|| candle_core::Error::Msg("no click head".into()))
    }
}

impl Task for Clicks {
    fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        let mut rows = self.train.clone();
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(
            seed ^ epoch.wrapping_mul(0x9e37_79b9),
        ));
        rows.chunks(16).map(<[usize]>::to_vec).collect()
    }

    fn loss(&self, rows: &[usize], pass: &mut Pass) -> Result<Tensor> {
        let z = self.logits(rows, pass)?;
        let y = Tensor::from_vec(
            rows.iter().map(|&r| self.labels[r]).collect::<Vec<f32>>(),
            rows.len(),
            &Device::Cpu,
        )?;
        // Binary cross-entropy with logits: max(z, 0) − z·y + log(1 + e^−|z|).
        let loss = (z.relu()? - (&z * &y)? + ((z.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
        loss.mean(D::Minus1)
    }

    fn evaluate(&self) -> Result<BTreeMap<String, f64>> {
        let z = self
            .logits(&self.validation, &mut Pass::Eval)?
            .to_vec1::<f32>()?;
        let scores: Vec<f64> = z.iter().map(|&v| f64::from(v)).collect();
        let labels: Vec<bool> = self
            .validation
            .iter()
            .map(|&r| self.labels[r] > 0.5)
            .collect();
        let auc = if self.flat {
            0.5
        } else {
            roc_auc(&scores, &labels).unwrap_or(0.5)
        };
        Ok(BTreeMap::from([("click_auc".to_string(), auc)]))
    }
}

fn settings(epochs: u64) -> TrainSettings {
    TrainSettings {
        epochs,
        accumulate: 2,
        lr: 0.02,
        warmup: 5,
        clip_norm: 1.0,
        weight_decay: 0.01,
        seed: 7,
        early_stop: None,
        checkpoint_every: 1,
    }
}

/// Each tensor's values as bits, by name, for comparisons to the bit.
fn bits(tensors: impl IntoIterator<Item = (String, Tensor)>) -> BTreeMap<String, Vec<u32>> {
    let as_bits = |t: Tensor| -> Vec<u32> {
        let values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        values.iter().map(|x| x.to_bits()).collect()
    };
    tensors.into_iter().map(|(n, t)| (n, as_bits(t))).collect()
}

fn weights(params: &Params) -> BTreeMap<String, Vec<u32>> {
    bits(params.tensors())
}

fn saved_weights(dir: &Path) -> BTreeMap<String, Vec<u32>> {
    let path = dir.join("checkpoint/model.safetensors");
    bits(candle_core::safetensors::load(path, &Device::Cpu).unwrap())
}

#[test]
fn training_learns_the_rule_and_a_seed_gives_the_same_weights() {
    let run = || {
        let params = Params::seeded(1);
        let task = Clicks::new(&params, false);
        let report = train(&params, &task, &settings(8), None, &mut |_, _| {}).unwrap();
        (weights(&params), report)
    };
    let (a, report) = run();
    let auc = report.state.history.last().unwrap().metrics["click_auc"];
    assert!(
        auc > 0.95,
        "validation AUC {auc}: {:?}",
        report.state.history
    );
    let first = report.state.history[0].mean_loss;
    let last = report.state.history.last().unwrap().mean_loss;
    assert!(last < first * 0.7, "the loss went from {first} to {last}");
    assert_eq!(
        report.state.step,
        8 * 10,
        "19 batches of 16 in pairs: 10 steps an epoch"
    );
    assert_eq!(run().0, a, "the same seed gave other weights");
}

#[test]
fn early_stopping_stops_when_the_metric_stops_improving() {
    let params = Params::seeded(1);
    let task = Clicks::new(&params, true);
    let mut s = settings(20);
    s.early_stop = Some(EarlyStopping {
        metric: "click_auc".into(),
        higher_is_better: true,
        patience: 2,
        min_delta: 0.0,
    });
    let report = train(&params, &task, &s, None, &mut |_, _| {}).unwrap();
    assert!(report.state.stopped_early);
    assert_eq!(
        report.state.history.len(),
        3,
        "the first epoch sets the best, two more fail to beat it"
    );
    s.early_stop.as_mut().unwrap().metric = "ndcg_at_10".into();
    let err = train(
        &Params::seeded(1),
        &Clicks::new(&Params::seeded(1), true),
        &s,
        None,
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("ndcg_at_10"), "{err}");
}

/// The click task with a metric that peaks after the second epoch, and the weights it had then.
struct Peaked<'a> {
    clicks: Clicks,
    params: &'a Params,
    epochs: Cell<u64>,
    at_peak: RefCell<BTreeMap<String, Vec<u32>>>,
}

impl Peaked<'_> {
    fn new(params: &Params) -> Peaked<'_> {
        Peaked {
            clicks: Clicks::new(params, false),
            params,
            epochs: Cell::new(0),
            at_peak: RefCell::new(BTreeMap::new()),
        }
    }
}

impl Task for Peaked<'_> {
    fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
        self.clicks.batches(seed, epoch)
    }

    fn loss(&self, rows: &[usize], pass: &mut Pass) -> Result<Tensor> {
        self.clicks.loss(rows, pass)
    }

    fn evaluate(&self) -> Result<BTreeMap<String, f64>> {
        let epoch = self.epochs.get();
        self.epochs.set(epoch + 1);
        if epoch == 1 {
            *self.at_peak.borrow_mut() = weights(self.params);
        }
        let peak = -((epoch as f64) - 1.0).powi(2);
        Ok(BTreeMap::from([("peak".to_string(), peak)]))
    }
}

#[test]
fn early_stopping_keeps_the_best_epochs_weights_even_across_a_resume() {
    let mut s = settings(4);
    s.early_stop = Some(EarlyStopping {
        metric: "peak".into(),
        higher_is_better: true,
        patience: 10,
        min_delta: 0.0,
    });
    let dir = tempfile::tempdir().unwrap();
    let params = Params::seeded(1);
    let task = Peaked::new(&params);
    let report = train(&params, &task, &s, Some(dir.path()), &mut |_, _| {}).unwrap();
    assert_eq!(report.state.history.len(), 4, "patience 10 never stops it");
    assert_eq!(report.state.best_epoch, Some(1));
    assert_eq!(report.state.kept().unwrap().epoch, 1);
    let at_peak = task.at_peak.borrow().clone();
    assert_eq!(
        weights(&params),
        at_peak,
        "the run ended on the last epoch's weights"
    );
    assert_ne!(
        saved_weights(dir.path()),
        at_peak,
        "the last checkpoint holds the last epoch's weights"
    );
    // A run started again on the finished checkpoint ends on the same best weights.
    let again = Params::seeded(2);
    let task = Peaked::new(&again);
    let report = train(&again, &task, &s, Some(dir.path()), &mut |_, _| {}).unwrap();
    assert!(report.resumed);
    assert_eq!(weights(&again), at_peak);
}

/// The child's side of the kill test: train into `RUBRIC_TRAIN_DIR` (resuming from what is
/// there) and exit.
#[test]
fn child_trains_into_a_folder() {
    let Some(dir) = std::env::var_os("RUBRIC_TRAIN_DIR") else {
        return;
    };
    let params = Params::seeded(1);
    let task = Clicks::new(&params, false);
    train(
        &params,
        &task,
        &settings(12),
        Some(Path::new(&dir)),
        &mut |_, _| {
            std::thread::sleep(Duration::from_millis(2));
        },
    )
    .unwrap();
}

fn child(dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_trains_into_a_folder",
            "--exact",
            "--test-threads",
            "1",
        ])
        .env("RUBRIC_TRAIN_DIR", dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_run_killed_at_random_points_resumes_to_the_same_bits() {
    let whole = tempfile::tempdir().unwrap();
    assert!(child(whole.path()).wait().unwrap().success());
    let expected = saved_weights(whole.path());

    let broken = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut kills = 0;
    loop {
        let mut c = child(broken.path());
        let delay = rng.random_range(20..250);
        std::thread::sleep(Duration::from_millis(delay));
        if c.try_wait().unwrap().is_some() {
            break;
        }
        c.kill().unwrap();
        c.wait().unwrap();
        kills += 1;
        assert!(kills < 200, "the run never finished between kills");
    }
    assert!(
        kills >= 3,
        "only {kills} kills landed: the run is too short to test"
    );
    // One more start finds the run complete and changes nothing.
    assert!(child(broken.path()).wait().unwrap().success());
    assert_eq!(
        saved_weights(broken.path()),
        expected,
        "after {kills} kills"
    );
    let left: Vec<String> = std::fs::read_dir(broken.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["checkpoint"], "{left:?}");
}
