//! The one trainer every model goes through: epochs of batches the task draws (the runtime's mix
//! sampler, for pairs), gradient accumulation, the optimizer with its schedule and clipping,
//! evaluation on the validation split after every epoch, early stopping on the declared metric
//! (the run ends on the weights of its best epoch on that metric), and checkpoints after every
//! optimizer step group a run asks for. Nothing in it knows a model: a [`Task`] gives the loss of
//! a batch and the validation metrics.
//!
//! Determinism: dropout draws from a generator seeded by the run's seed and the step, and the
//! task's batches depend only on the seed and the epoch, so the state to resume from is the
//! weights, the optimizer's moments and a position (epoch, batch): a killed run resumed from its
//! last checkpoint ends on the same bits as an unbroken one.

use crate::model::Pass;
use crate::optim::{AdamW, AdamWConfig, learning_rate};
use crate::params::Params;
use candle_core::{Device, Result, Tensor, bail};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// What the trainer trains on.
pub trait Task {
    /// The batches of an epoch, as row indexes; the same for the same seed and epoch.
    fn batches(&self, seed: u64, epoch: u64) -> Vec<Vec<usize>>;
    /// The mean loss of a batch's rows.
    fn loss(&self, rows: &[usize], pass: &mut Pass) -> Result<Tensor>;
    /// Metrics on the validation split, by name.
    fn evaluate(&self) -> Result<BTreeMap<String, f64>>;
    /// Hears the epochs a resumed run had finished, before it goes on: a task whose loss
    /// changes between epochs (a rebalanced weight) takes up where they left it.
    fn resumed(&self, _history: &[EpochRecord]) -> Result<()> {
        Ok(())
    }
}

/// Early stopping: stop when `metric` has not improved by `min_delta` for `patience` epochs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EarlyStopping {
    pub metric: String,
    pub higher_is_better: bool,
    pub patience: u64,
    pub min_delta: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TrainSettings {
    pub epochs: u64,
    /// Micro-batches per optimizer step.
    pub accumulate: u64,
    pub lr: f64,
    /// Warm-up steps (optimizer steps).
    pub warmup: u64,
    /// Clip the global gradient norm to this (0: no clipping).
    pub clip_norm: f64,
    pub weight_decay: f64,
    pub seed: u64,
    pub early_stop: Option<EarlyStopping>,
    /// Write a checkpoint every this many optimizer steps (0: at the end of each epoch only).
    pub checkpoint_every: u64,
}

/// One epoch's record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    pub epoch: u64,
    pub mean_loss: f64,
    pub metrics: BTreeMap<String, f64>,
    pub steps: u64,
}

/// Where a run is: saved with each checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    pub schema: u32,
    /// Optimizer steps taken.
    pub step: u64,
    /// The epoch in progress and how many of its batches are done.
    pub epoch: u64,
    pub batch: u64,
    /// The sum of this epoch's losses so far and their count.
    pub loss_sum: f64,
    pub loss_count: u64,
    pub history: Vec<EpochRecord>,
    /// The best value of the early-stopping metric, and the epochs since it improved.
    pub best: Option<f64>,
    pub since_best: u64,
    pub stopped_early: bool,
    /// The epoch of the best value: the weights a run with early stopping ends on.
    #[serde(default)]
    pub best_epoch: Option<u64>,
}

impl TrainState {
    /// The record of the epoch whose weights the run ends on: the best on the early-stopping
    /// metric where there is one, else the last.
    pub fn kept(&self) -> Option<&EpochRecord> {
        match self.best_epoch {
            Some(e) => self.history.iter().find(|h| h.epoch == e),
            None => self.history.last(),
        }
    }
}

/// The run's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    pub state: TrainState,
    /// Whether this call resumed from a checkpoint.
    pub resumed: bool,
}

const STATE: &str = "state.json";
const WEIGHTS: &str = "model.safetensors";
const MOMENTS: &str = "optimizer.safetensors";
/// The weights of the best epoch so far, with early stopping.
const BEST: &str = "best.safetensors";
/// The checkpoint folder; `checkpoint.next` is written first and renamed over it.
const CHECKPOINT: &str = "checkpoint";

/// Trains `params` on `task`; with `dir`, resumes from its checkpoint when there is one and
/// writes checkpoints there. `progress` hears every optimizer step (step, loss).
pub fn train(
    params: &Params,
    task: &dyn Task,
    settings: &TrainSettings,
    dir: Option<&Path>,
    progress: &mut dyn FnMut(u64, f64),
) -> Result<TrainReport> {
    if settings.epochs == 0 || settings.accumulate == 0 {
        bail!("training needs at least one epoch and one micro-batch per step");
    }
    let config = AdamWConfig {
        weight_decay: settings.weight_decay,
        ..AdamWConfig::default()
    };
    let mut optimizer = AdamW::new(params.named(), config)?;
    let mut state = TrainState {
        schema: 1,
        ..TrainState::default()
    };
    let mut resumed = false;
    // The best epoch's weights, copied (a variable's tensor is updated in place).
    let mut best: Option<HashMap<String, Tensor>> = None;
    if let Some(dir) = dir {
        recover(dir)?;
    }
    if let Some(dir) = dir
        && let Some(saved) = read_checkpoint(&dir.join(CHECKPOINT))?
    {
        restore(params, &mut optimizer, &saved)?;
        best = saved.best;
        state = saved.state;
        task.resumed(&state.history)?;
        resumed = true;
    }
    let steps_per_epoch = {
        let n = task.batches(settings.seed, 0).len() as u64;
        n.div_ceil(settings.accumulate)
    };
    let total = steps_per_epoch * settings.epochs;
    while state.epoch < settings.epochs && !state.stopped_early {
        let batches = task.batches(settings.seed, state.epoch);
        let groups: Vec<&[Vec<usize>]> = batches.chunks(settings.accumulate as usize).collect();
        let start = state.batch as usize;
        for (i, group) in groups.iter().enumerate().skip(start) {
            let mut grads = optimizer.gradients_start();
            let mut loss_sum = 0f64;
            for (k, rows) in group.iter().enumerate() {
                let mut rng = step_rng(settings.seed, state.step, k);
                let loss = task.loss(rows, &mut Pass::Train(&mut rng))?;
                loss_sum += loss.to_scalar::<f32>().map(f64::from)?;
                optimizer.accumulate(&mut grads, &loss.backward()?)?;
            }
            let lr = learning_rate(state.step, total, settings.warmup, settings.lr);
            optimizer.step(&grads, lr, settings.clip_norm)?;
            let loss = loss_sum / group.len() as f64;
            state.step += 1;
            state.batch = i as u64 + 1;
            state.loss_sum += loss;
            state.loss_count += 1;
            progress(state.step, loss);
            let due = settings.checkpoint_every > 0
                && state.step.is_multiple_of(settings.checkpoint_every);
            if due && let Some(dir) = dir {
                write_checkpoint(dir, params, &optimizer, &state, best.as_ref())?;
            }
        }
        let metrics = task.evaluate()?;
        state.history.push(EpochRecord {
            epoch: state.epoch,
            mean_loss: state.loss_sum / state.loss_count.max(1) as f64,
            metrics: metrics.clone(),
            steps: state.step,
        });
        if let Some(stop) = &settings.early_stop {
            let Some(&value) = metrics.get(&stop.metric) else {
                bail!(
                    "early stopping is on `{}`, which the evaluation does not measure",
                    stop.metric
                );
            };
            let better = match state.best {
                None => true,
                Some(best) if stop.higher_is_better => value > best + stop.min_delta,
                Some(best) => value < best - stop.min_delta,
            };
            if better {
                state.best = Some(value);
                state.best_epoch = Some(state.epoch);
                state.since_best = 0;
                best = Some(copied(params)?);
            } else {
                state.since_best += 1;
                state.stopped_early = state.since_best >= stop.patience;
            }
        }
        state.epoch += 1;
        state.batch = 0;
        state.loss_sum = 0.0;
        state.loss_count = 0;
        if let Some(dir) = dir {
            write_checkpoint(dir, params, &optimizer, &state, best.as_ref())?;
        }
    }
    // With early stopping, the run ends on its best epoch's weights.
    if let Some(epoch) = state.best_epoch
        && state.history.last().map(|h| h.epoch) != Some(epoch)
    {
        let Some(best) = &best else {
            bail!("the checkpoint has no weights of the best epoch ({epoch})");
        };
        for (name, var) in params.named() {
            let Some(t) = best.get(&name) else {
                bail!("the best epoch's weights have no `{name}`");
            };
            var.set(t)?;
        }
    }
    Ok(TrainReport { state, resumed })
}

/// Every variable's values, copied out of the variable.
fn copied(params: &Params) -> Result<HashMap<String, Tensor>> {
    params
        .named()
        .into_iter()
        .map(|(name, var)| Ok((name, var.as_tensor().copy()?)))
        .collect()
}

/// The dropout generator of micro-batch `k` of step `step`.
fn step_rng(seed: u64, step: u64, k: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(step.wrapping_mul(1 << 16).wrapping_add(k as u64));
    rng
}

struct Saved {
    state: TrainState,
    weights: HashMap<String, Tensor>,
    moments: HashMap<String, Tensor>,
    best: Option<HashMap<String, Tensor>>,
}

fn io(path: &Path, e: impl std::fmt::Display) -> candle_core::Error {
    candle_core::Error::Msg(format!("`{}`: {e}", path.display()))
}

fn read_checkpoint(dir: &Path) -> Result<Option<Saved>> {
    let state_path = dir.join(STATE);
    if !state_path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&state_path).map_err(|e| io(&state_path, e))?;
    let state: TrainState = serde_json::from_str(&text).map_err(|e| io(&state_path, e))?;
    let load = |name: &str| {
        let path = dir.join(name);
        candle_core::safetensors::load(&path, &Device::Cpu).map_err(|e| io(&path, e))
    };
    let best = if dir.join(BEST).is_file() {
        Some(load(BEST)?)
    } else {
        None
    };
    Ok(Some(Saved {
        state,
        weights: load(WEIGHTS)?,
        moments: load(MOMENTS)?,
        best,
    }))
}

fn restore(params: &Params, optimizer: &mut AdamW, saved: &Saved) -> Result<()> {
    for (name, var) in params.named() {
        let Some(t) = saved.weights.get(&name) else {
            bail!("the checkpoint has no weights for `{name}`");
        };
        if t.shape() != var.shape() {
            bail!(
                "the checkpoint's `{name}` is {:?}; the model's is {:?}",
                t.shape(),
                var.shape()
            );
        }
        var.set(t)?;
    }
    optimizer.restore(saved.state.step, &saved.moments)
}

/// Writes the checkpoint whole or not at all: into `checkpoint.next/`, synced, then renamed
/// over `checkpoint/` (the old one moved aside first and removed after).
fn write_checkpoint(
    dir: &Path,
    params: &Params,
    optimizer: &AdamW,
    state: &TrainState,
    best: Option<&HashMap<String, Tensor>>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let next: PathBuf = dir.join(format!("{CHECKPOINT}.next"));
    let old: PathBuf = dir.join(format!("{CHECKPOINT}.old"));
    let current: PathBuf = dir.join(CHECKPOINT);
    if next.exists() {
        std::fs::remove_dir_all(&next).map_err(|e| io(&next, e))?;
    }
    std::fs::create_dir_all(&next).map_err(|e| io(&next, e))?;
    candle_core::safetensors::save(&params.tensors(), next.join(WEIGHTS))?;
    let (_, moments) = optimizer.state()?;
    candle_core::safetensors::save(&moments, next.join(MOMENTS))?;
    let json = serde_json::to_string_pretty(state).map_err(|e| io(&next, e))?;
    std::fs::write(next.join(STATE), json + "\n").map_err(|e| io(&next, e))?;
    let mut written = vec![WEIGHTS, MOMENTS, STATE];
    if let Some(best) = best {
        candle_core::safetensors::save(best, next.join(BEST))?;
        written.push(BEST);
    }
    for name in written {
        let path = next.join(name);
        std::fs::File::open(&path)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(&path, e))?;
    }
    if current.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        }
        std::fs::rename(&current, &old).map_err(|e| io(&current, e))?;
    }
    std::fs::rename(&next, &current).map_err(|e| io(&next, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    Ok(())
}

/// Where a killed run left its last complete checkpoint, if a rename was cut short: a
/// `checkpoint.old/` with no `checkpoint/` is moved back. What else a kill left is removed: the
/// previous checkpoint beside a complete one (killed before removing it), and a
/// `checkpoint.next/` (never the one to resume from: it is complete only once renamed).
fn recover(dir: &Path) -> Result<()> {
    let (old, current) = (dir.join(format!("{CHECKPOINT}.old")), dir.join(CHECKPOINT));
    let next = dir.join(format!("{CHECKPOINT}.next"));
    if old.is_dir() && !current.exists() {
        std::fs::rename(&old, &current).map_err(|e| io(&old, e))?;
    }
    for leftover in [old, next] {
        if leftover.exists() {
            std::fs::remove_dir_all(&leftover).map_err(|e| io(&leftover, e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn folders(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn recovery_keeps_the_last_complete_checkpoint_and_nothing_a_kill_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let make = |name: &str, mark: &str| {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join(STATE), mark).unwrap();
        };
        // Killed after the new checkpoint was in place, before the old one was removed, with a
        // later one half written.
        make(CHECKPOINT, "new");
        make("checkpoint.old", "old");
        make("checkpoint.next", "half");
        recover(dir.path()).unwrap();
        assert_eq!(folders(dir.path()), [CHECKPOINT]);
        let state = |d: &Path| std::fs::read_to_string(d.join(CHECKPOINT).join(STATE)).unwrap();
        assert_eq!(state(dir.path()), "new");
        // Killed between the two renames: the previous checkpoint is the one to resume from.
        let cut = tempfile::tempdir().unwrap();
        for (name, mark) in [("checkpoint.old", "old"), ("checkpoint.next", "next")] {
            std::fs::create_dir_all(cut.path().join(name)).unwrap();
            std::fs::write(cut.path().join(name).join(STATE), mark).unwrap();
        }
        recover(cut.path()).unwrap();
        assert_eq!(folders(cut.path()), [CHECKPOINT]);
        assert_eq!(state(cut.path()), "old");
    }
}
