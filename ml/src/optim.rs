//! The optimizer every model trains with: AdamW with decoupled weight decay on the weights only
//! (not on biases or layer norms' scales and shifts: candle-nn's decays every variable), gradient
//! clipping by global norm and gradient accumulation (neither is in candle-nn), a learning rate
//! set each step by a warm-up-then-linear-decay schedule, and a variable without a gradient
//! reported by name (candle-nn skips it silently). Its state (step and moments) saves and loads
//! exactly, so a resumed run takes the same steps as an unbroken one. On the CPU a step is one
//! fused pass per variable (its moments in place, the weights updated in their own storage); on
//! other devices, candle's tensor ops.

use candle_core::backprop::GradStore;
use candle_core::{
    CpuStorage, DType, Device, InplaceOp2, Layout, Result, Storage, Tensor, Var, bail,
};
use rayon::prelude::*;
use std::collections::HashMap;
use std::sync::Mutex;

/// AdamW's constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        }
    }
}

/// Whether a parameter is decayed: weights of linear layers and embeddings are; biases and
/// layer norms' scales and shifts are not (as BERT trains).
pub fn decays(name: &str) -> bool {
    !(name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm"))
}

struct Slot {
    name: String,
    var: Var,
    decay: bool,
    moments: Moments,
}

/// A variable's first and second moments.
enum Moments {
    /// For an f32 variable on the CPU: updated in place by the fused step.
    Cpu { m: Vec<f32>, v: Vec<f32> },
    /// Elsewhere: replaced at each step by candle's ops.
    Tensors { m: Tensor, v: Tensor },
}

impl Moments {
    fn zeros(var: &Var, fused: bool) -> Result<Moments> {
        if fused && var.device().is_cpu() && var.dtype() == DType::F32 {
            let n = var.elem_count();
            Ok(Moments::Cpu {
                m: vec![0.0; n],
                v: vec![0.0; n],
            })
        } else {
            Ok(Moments::Tensors {
                m: var.zeros_like()?,
                v: var.zeros_like()?,
            })
        }
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    /// The global gradient norm before clipping.
    pub grad_norm: f64,
    /// Whether clipping scaled the gradients down.
    pub clipped: bool,
    pub lr: f64,
}

pub struct AdamW {
    slots: Vec<Slot>,
    config: AdamWConfig,
    step: u64,
}

impl AdamW {
    /// An optimizer over named variables (in the order given; the names key its saved state).
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        AdamW::build(vars, config, true)
    }

    /// The same optimizer stepping with candle's tensor ops on every device (the reference the
    /// fused step is checked against).
    pub fn composed(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<AdamW> {
        AdamW::build(vars, config, false)
    }

    fn build(vars: Vec<(String, Var)>, config: AdamWConfig, fused: bool) -> Result<AdamW> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                Ok(Slot {
                    decay: decays(&name),
                    moments: Moments::zeros(&var, fused)?,
                    name,
                    var,
                })
            })
            .collect::<Result<Vec<Slot>>>()?;
        Ok(AdamW {
            slots,
            config,
            step: 0,
        })
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The names of the variables that are (and are not) decayed.
    pub fn decayed(&self) -> Vec<(&str, bool)> {
        self.slots
            .iter()
            .map(|s| (s.name.as_str(), s.decay))
            .collect()
    }

    /// The summed gradient of each variable, in slot order, contiguous (the norm and the update
    /// read it as one slice); an error names those without one.
    fn gradients(&self, grads: &Gradients) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.slots.len());
        let mut missing = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            match grads.sums.get(i).and_then(Option::as_ref) {
                Some(g) => out.push(g.contiguous()?),
                None => missing.push(s.name.as_str()),
            }
        }
        if !missing.is_empty() {
            bail!(
                "{} of {} parameters received no gradient: {}",
                missing.len(),
                self.slots.len(),
                missing.join(", ")
            );
        }
        Ok(out)
    }

    /// An empty accumulator for this optimizer's variables.
    pub fn gradients_start(&self) -> Gradients {
        Gradients {
            sums: vec![None; self.slots.len()],
            count: 0,
        }
    }

    /// Adds one micro-batch's gradients to `into`.
    pub fn accumulate(&self, into: &mut Gradients, grads: &GradStore) -> Result<()> {
        for (slot, sum) in self.slots.iter().zip(into.sums.iter_mut()) {
            if let Some(g) = grads.get(slot.var.as_tensor()) {
                let g = g.detach();
                *sum = Some(match sum.take() {
                    Some(s) => (s + g)?,
                    None => g,
                });
            }
        }
        into.count += 1;
        Ok(())
    }

    /// One update from the mean of the accumulated gradients: clipped to `clip_norm` (when
    /// positive) by their global norm, at learning rate `lr`.
    pub fn step(&mut self, grads: &Gradients, lr: f64, clip_norm: f64) -> Result<StepReport> {
        let gradients = self.gradients(grads)?;
        // The summed gradients' norm, then the mean's.
        let mut squares = 0f64;
        for g in &gradients {
            squares += sum_of_squares(g)?;
        }
        let mean = 1.0 / grads.count.max(1) as f64;
        let grad_norm = squares.sqrt() * mean;
        if !grad_norm.is_finite() {
            bail!("the gradient norm is {grad_norm}: a loss or an input is not finite");
        }
        let clipped = clip_norm > 0.0 && grad_norm > clip_norm;
        // From the summed gradient to the mean one, clipped.
        let scale = mean * if clipped { clip_norm / grad_norm } else { 1.0 };
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let (bias1, bias2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (slot, g) in self.slots.iter_mut().zip(gradients) {
            let decay = if slot.decay { lr * c.weight_decay } else { 0.0 };
            match &mut slot.moments {
                Moments::Cpu { m, v } => {
                    let update = Update {
                        constants: StepConstants {
                            scale: scale as f32,
                            beta1: c.beta1 as f32,
                            beta2: c.beta2 as f32,
                            bias1: bias1 as f32,
                            bias2: bias2 as f32,
                            eps: c.eps as f32,
                            lr: lr as f32,
                            keep: (1.0 - decay) as f32,
                        },
                        moments: Mutex::new((m.as_mut_slice(), v.as_mut_slice())),
                    };
                    slot.var.as_tensor().inplace_op2(&g, &update)?;
                }
                Moments::Tensors { m, v } => {
                    let g = (g * scale)?;
                    *m = ((&*m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
                    *v = ((&*v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
                    let update = ((&*m / bias1)? / ((&*v / bias2)?.sqrt()? + c.eps)?)?;
                    let mut w = slot.var.as_tensor().detach();
                    if decay > 0.0 {
                        w = (w * (1.0 - decay))?;
                    }
                    slot.var.set(&(w - (update * lr)?)?)?;
                }
            }
        }
        Ok(StepReport {
            grad_norm,
            clipped,
            lr,
        })
    }

    /// The moments, by `m.NAME` and `v.NAME`, and the step, for a checkpoint.
    pub fn state(&self) -> Result<(u64, HashMap<String, Tensor>)> {
        let mut tensors = HashMap::new();
        for s in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Cpu { m, v } => {
                    let shape = s.var.shape();
                    (
                        Tensor::from_slice(m, shape, &Device::Cpu)?,
                        Tensor::from_slice(v, shape, &Device::Cpu)?,
                    )
                }
                Moments::Tensors { m, v } => (m.clone(), v.clone()),
            };
            tensors.insert(format!("m.{}", s.name), m);
            tensors.insert(format!("v.{}", s.name), v);
        }
        Ok((self.step, tensors))
    }

    /// Restores a saved state; every moment must be there with its variable's shape.
    pub fn restore(&mut self, step: u64, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for s in &mut self.slots {
            let [m, v] = ["m", "v"].map(|kind| {
                let key = format!("{kind}.{}", s.name);
                let Some(t) = tensors.get(&key) else {
                    bail!("the optimizer state has no `{key}`");
                };
                if t.shape() != s.var.shape() {
                    bail!(
                        "the optimizer state's `{key}` is {:?}; the parameter is {:?}",
                        t.shape(),
                        s.var.shape()
                    );
                }
                Ok(t)
            });
            let (m, v) = (m?, v?);
            match &mut s.moments {
                Moments::Cpu { m: mm, v: vv } => {
                    *mm = m.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                    *vv = v.flatten_all()?.to_dtype(DType::F32)?.to_vec1()?;
                }
                Moments::Tensors { m: mm, v: vv } => {
                    *mm = m.to_device(s.var.device())?;
                    *vv = v.to_device(s.var.device())?;
                }
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Σ x² of a tensor, in f64: on the CPU over a contiguous tensor's f32 values in blocks summed
/// in order (the same bits on any number of threads), elsewhere by candle's ops.
fn sum_of_squares(x: &Tensor) -> Result<f64> {
    {
        let (storage, layout) = x.storage_and_layout();
        if let Some(values) = cpu_f32(&storage, layout) {
            let blocks: Vec<f64> = values.par_chunks(BLOCK).map(squares_f64).collect();
            return Ok(blocks.iter().sum());
        }
    }
    x.to_dtype(DType::F64)?.sqr()?.sum_all()?.to_scalar::<f64>()
}

/// A contiguous f32 CPU tensor's values.
fn cpu_f32<'a>(storage: &'a Storage, layout: &Layout) -> Option<&'a [f32]> {
    let Storage::Cpu(CpuStorage::F32(values)) = storage else {
        return None;
    };
    let (start, end) = layout.contiguous_offsets()?;
    values.get(start..end)
}

/// Elements per block of the fused step's parallel passes.
const BLOCK: usize = 1 << 14;

/// Σ x² in f64, over eight lanes.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn squares_f64(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let chunks = x.chunks_exact(8);
    let rest: f64 = chunks
        .remainder()
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    acc.iter().sum::<f64>() + rest
}

/// One AdamW step of an f32 CPU variable in place, from its summed gradient (the one source),
/// its moments updated in place too.
struct Update<'a> {
    constants: StepConstants,
    moments: Mutex<(&'a mut [f32], &'a mut [f32])>,
}

/// The numbers of one step, the same for every element.
#[derive(Clone, Copy, Debug)]
struct StepConstants {
    /// From the summed gradient to the clipped mean one.
    scale: f32,
    beta1: f32,
    beta2: f32,
    bias1: f32,
    bias2: f32,
    eps: f32,
    lr: f32,
    /// 1 − lr × weight decay (1 where the variable is not decayed).
    keep: f32,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "adamw-step"
    }

    fn cpu_fwd(&self, w: &mut CpuStorage, wl: &Layout, g: &CpuStorage, gl: &Layout) -> Result<()> {
        let (CpuStorage::F32(w), CpuStorage::F32(g)) = (w, g) else {
            bail!("adamw-step: the variable and its gradient must be f32");
        };
        let (Some((ws, we)), Some((gs, ge))) = (wl.contiguous_offsets(), gl.contiguous_offsets())
        else {
            bail!("adamw-step: the variable and its gradient must be contiguous");
        };
        let mut moments = self
            .moments
            .lock()
            .map_err(|_| candle_core::Error::Msg("adamw-step: poisoned moments".into()))?;
        let (m, v) = &mut *moments;
        let (Some(w), Some(g)) = (w.get_mut(ws..we), g.get(gs..ge)) else {
            bail!("adamw-step: a layout outside its storage");
        };
        if g.len() != w.len() || m.len() != w.len() || v.len() != w.len() {
            bail!(
                "adamw-step: {} weights, {} gradients, {} and {} moments",
                w.len(),
                g.len(),
                m.len(),
                v.len()
            );
        }
        let c = self.constants;
        w.par_chunks_mut(BLOCK)
            .zip(g.par_chunks(BLOCK))
            .zip(m.par_chunks_mut(BLOCK).zip(v.par_chunks_mut(BLOCK)))
            .for_each(|((w, g), (m, v))| adamw_block(c, w, g, m, v));
        Ok(())
    }
}

/// The step over one block of a variable's elements.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn adamw_block(c: StepConstants, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    let (b1, b2) = (c.beta1, c.beta2);
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
        let g = g * c.scale;
        *m = *m * b1 + g * (1.0 - b1);
        *v = *v * b2 + g * g * (1.0 - b2);
        let update = (*m / c.bias1) / ((*v / c.bias2).sqrt() + c.eps);
        *w = *w * c.keep - update * c.lr;
    }
}

/// Gradients summed over micro-batches (gradient accumulation), one per optimizer slot.
pub struct Gradients {
    sums: Vec<Option<Tensor>>,
    count: usize,
}

/// The learning rate of step `step` (from 0) of `total`: linear warm-up over `warmup` steps to
/// `base`, then linear decay to zero at `total`.
pub fn learning_rate(step: u64, total: u64, warmup: u64, base: f64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let left = total.saturating_sub(step) as f64;
    let span = total.saturating_sub(warmup).max(1) as f64;
    base * (left / span).clamp(0.0, 1.0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn var(values: &[f32]) -> Var {
        Var::from_tensor(&Tensor::new(values, &Device::Cpu).unwrap()).unwrap()
    }

    fn values(v: &Var) -> Vec<f32> {
        v.as_tensor().to_vec1().unwrap()
    }

    /// One AdamW step by hand, in f64, for one element.
    fn reference(w: f64, grads: &[f64], lr: f64, c: AdamWConfig, decay: bool) -> f64 {
        let (mut w, mut m, mut v) = (w, 0.0, 0.0);
        for (t, g) in grads.iter().enumerate() {
            let t = (t + 1) as i32;
            m = c.beta1 * m + (1.0 - c.beta1) * g;
            v = c.beta2 * v + (1.0 - c.beta2) * g * g;
            let update =
                (m / (1.0 - c.beta1.powi(t))) / ((v / (1.0 - c.beta2.powi(t))).sqrt() + c.eps);
            if decay {
                w *= 1.0 - lr * c.weight_decay;
            }
            w -= lr * update;
        }
        w
    }

    #[test]
    fn adamw_matches_the_update_by_hand_and_spares_biases_and_norms_from_decay() {
        let c = AdamWConfig {
            weight_decay: 0.1,
            ..AdamWConfig::default()
        };
        let (w, b) = (var(&[0.5, -1.0]), var(&[0.5, -1.0]));
        let mut opt = AdamW::new(
            vec![
                ("layer.weight".into(), w.clone()),
                ("layer.bias".into(), b.clone()),
            ],
            c,
        )
        .unwrap();
        assert_eq!(
            opt.decayed(),
            [("layer.weight", true), ("layer.bias", false)]
        );
        let mut seen: Vec<Vec<f64>> = vec![Vec::new(); 2];
        for _ in 0..3 {
            // loss = sum(w^2) + sum(b^2): gradient 2w, 2b.
            let loss = (w.as_tensor().sqr().unwrap().sum_all().unwrap()
                + b.as_tensor().sqr().unwrap().sum_all().unwrap())
            .unwrap();
            let mut acc = opt.gradients_start();
            opt.accumulate(&mut acc, &loss.backward().unwrap()).unwrap();
            for (i, x) in values(&w).iter().enumerate() {
                seen[i].push(2.0 * f64::from(*x));
            }
            opt.step(&acc, 0.01, 0.0).unwrap();
        }
        for (i, start) in [0.5, -1.0].iter().enumerate() {
            let want_w = reference(*start, &seen[i], 0.01, c, true);
            assert!(
                (f64::from(values(&w)[i]) - want_w).abs() < 1e-6,
                "{:?} vs {want_w}",
                values(&w)
            );
        }
        // The bias took the same gradients and is not multiplied by (1 - lr * decay): it stays
        // further from zero than the weight.
        assert!(values(&b)[0] > values(&w)[0]);
    }

    #[test]
    fn clipping_scales_the_global_norm_down_to_the_limit() {
        let a = var(&[3.0]);
        let b = var(&[4.0]);
        let mut opt = AdamW::new(
            vec![
                ("a.weight".into(), a.clone()),
                ("b.weight".into(), b.clone()),
            ],
            AdamWConfig::default(),
        )
        .unwrap();
        // Gradient (3, 4): norm 5.
        let loss = ((a.as_tensor() * 3.0).unwrap().sum_all().unwrap()
            + (b.as_tensor() * 4.0).unwrap().sum_all().unwrap())
        .unwrap();
        let mut acc = opt.gradients_start();
        opt.accumulate(&mut acc, &loss.backward().unwrap()).unwrap();
        let report = opt.step(&acc, 0.1, 1.0).unwrap();
        assert!((report.grad_norm - 5.0).abs() < 1e-9 && report.clipped);
        let (_, state) = opt.state().unwrap();
        // The first moment holds (1 - beta1) times the clipped gradient (0.6, 0.8).
        let m: f32 = state["m.a.weight"].to_vec1::<f32>().unwrap()[0];
        assert!((m - 0.1 * 0.6).abs() < 1e-7, "{m}");
    }

    #[test]
    fn accumulating_two_halves_equals_the_whole_batch() {
        let run = |halves: bool| {
            let w = var(&[1.0, 2.0]);
            let mut opt =
                AdamW::new(vec![("w.weight".into(), w.clone())], AdamWConfig::default()).unwrap();
            let xs = [[1.0f32, 0.5], [-2.0, 1.5]];
            let mut acc = opt.gradients_start();
            let loss_of = |rows: &[[f32; 2]]| {
                let flat: Vec<f32> = rows.iter().flatten().copied().collect();
                let x = Tensor::from_vec(flat, (rows.len(), 2), &Device::Cpu).unwrap();
                (x.broadcast_mul(w.as_tensor())
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .sqr()
                    .unwrap()
                    / rows.len() as f64)
                    .unwrap()
            };
            if halves {
                for row in &xs {
                    opt.accumulate(
                        &mut acc,
                        &loss_of(std::slice::from_ref(row)).backward().unwrap(),
                    )
                    .unwrap();
                }
            } else {
                // The mean of the two rows' losses, as one batch.
                let l = ((loss_of(&xs[..1]) + loss_of(&xs[1..])).unwrap() / 2.0).unwrap();
                opt.accumulate(&mut acc, &l.backward().unwrap()).unwrap();
            }
            opt.step(&acc, 0.1, 0.0).unwrap();
            values(&w)
        };
        let (a, b) = (run(true), run(false));
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() < 1e-6, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn a_parameter_without_a_gradient_is_named() {
        let (a, b) = (var(&[1.0]), var(&[1.0]));
        let mut opt = AdamW::new(
            vec![
                ("used.weight".into(), a.clone()),
                ("unused.weight".into(), b),
            ],
            AdamWConfig::default(),
        )
        .unwrap();
        let mut acc = opt.gradients_start();
        opt.accumulate(
            &mut acc,
            &a.as_tensor().sum_all().unwrap().backward().unwrap(),
        )
        .unwrap();
        let err = opt.step(&acc, 0.1, 0.0).unwrap_err().to_string();
        assert!(
            err.contains("unused.weight") && err.contains("1 of 2"),
            "{err}"
        );
    }

    #[test]
    fn a_restored_state_continues_exactly() {
        let train = |w: &Var, opt: &mut AdamW, steps: usize| {
            for _ in 0..steps {
                let loss = (w.as_tensor() - 3.0)
                    .unwrap()
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap();
                let mut acc = opt.gradients_start();
                opt.accumulate(&mut acc, &loss.backward().unwrap()).unwrap();
                opt.step(&acc, 0.05, 1.0).unwrap();
            }
        };
        let w = var(&[0.0, 1.0]);
        let mut opt =
            AdamW::new(vec![("w.weight".into(), w.clone())], AdamWConfig::default()).unwrap();
        train(&w, &mut opt, 10);
        let whole = values(&w);
        let w2 = var(&[0.0, 1.0]);
        let mut opt2 = AdamW::new(
            vec![("w.weight".into(), w2.clone())],
            AdamWConfig::default(),
        )
        .unwrap();
        train(&w2, &mut opt2, 4);
        let (step, state) = opt2.state().unwrap();
        let resumed = var(&values(&w2));
        let mut opt3 = AdamW::new(
            vec![("w.weight".into(), resumed.clone())],
            AdamWConfig::default(),
        )
        .unwrap();
        opt3.restore(step, &state).unwrap();
        train(&resumed, &mut opt3, 6);
        assert_eq!(values(&resumed), whole);
        assert!(
            opt3.restore(0, &HashMap::new())
                .unwrap_err()
                .to_string()
                .contains("m.w.weight")
        );
    }

    /// The fused CPU step and candle's composed ops take the same steps (within f32 rounding),
    /// over variables of several blocks, with decay, clipping and two micro-batches a step.
    #[test]
    fn the_fused_step_follows_the_composed_one() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 2 * BLOCK + 123;
        let start: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let targets: Vec<Vec<f32>> = (0..6)
            .map(|_| (0..n).map(|_| rng.random_range(-2.0..2.0)).collect())
            .collect();
        let run = |fused: bool| {
            let (w, b) = (var(&start), var(&start[..7]));
            let vars = vec![
                ("layer.weight".to_owned(), w.clone()),
                ("layer.bias".to_owned(), b.clone()),
            ];
            let config = AdamWConfig {
                weight_decay: 0.1,
                ..AdamWConfig::default()
            };
            let mut opt = if fused {
                AdamW::new(vars, config).unwrap()
            } else {
                AdamW::composed(vars, config).unwrap()
            };
            let mut reports = Vec::new();
            for (step, pair) in targets.chunks(2).enumerate() {
                let mut acc = opt.gradients_start();
                for t in pair {
                    let t = Tensor::new(t.as_slice(), &Device::Cpu).unwrap();
                    let loss = ((w.as_tensor() - &t)
                        .unwrap()
                        .sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        + b.as_tensor().sqr().unwrap().sum_all().unwrap())
                    .unwrap();
                    opt.accumulate(&mut acc, &loss.backward().unwrap()).unwrap();
                }
                // Clipped on the first steps only (the norm is about 2 × √n × 1.2).
                let clip = if step < 2 { 10.0 } else { 0.0 };
                reports.push(opt.step(&acc, 0.05, clip).unwrap());
            }
            let (_, state) = opt.state().unwrap();
            (
                values(&w),
                values(&b),
                reports,
                state["v.layer.weight"].to_vec1::<f32>().unwrap(),
            )
        };
        let (fused, composed) = (run(true), run(false));
        let close = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max)
        };
        // An update is m / √v: where a gradient nearly cancels, one rounding of it moves the
        // update by up to 1e-4 of the learning rate (0.05 here).
        assert!(
            close(&fused.0, &composed.0) < 1e-5,
            "{}",
            close(&fused.0, &composed.0)
        );
        assert!(close(&fused.1, &composed.1) < 1e-5);
        assert!(close(&fused.3, &composed.3) < 1e-6);
        for (a, b) in fused.2.iter().zip(&composed.2) {
            assert_eq!(a.clipped, b.clipped);
            assert!((a.grad_norm - b.grad_norm).abs() < 1e-6 * b.grad_norm);
        }
        assert!(fused.2[0].clipped && !fused.2[2].clipped);
    }

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let lr: Vec<f64> = (0..10).map(|s| learning_rate(s, 10, 4, 1.0)).collect();
        assert_eq!(&lr[..4], &[0.25, 0.5, 0.75, 1.0]);
        assert!(lr[4..].windows(2).all(|w| w[1] < w[0]));
        assert_eq!(learning_rate(10, 10, 4, 1.0), 0.0);
        assert_eq!(learning_rate(0, 10, 0, 2.0), 2.0);
    }
}
