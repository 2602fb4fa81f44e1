//! The optimizer every model trains with: AdamW with decoupled weight decay on the weights only
//! (not on biases or layer norms' scales and shifts: candle-nn's decays every variable), gradient
//! clipping by global norm and gradient accumulation (neither is in candle-nn), a learning rate
//! set each step by a warm-up-then-linear-decay schedule, and a variable without a gradient
//! reported by name (candle-nn skips it silently). Its state (step and moments) saves and loads
//! exactly, so a resumed run takes the same steps as an unbroken one.

use candle_core::backprop::GradStore;
use candle_core::{DType, Result, Tensor, Var, bail};
use std::collections::HashMap;

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
    m: Tensor,
    v: Tensor,
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
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                Ok(Slot {
                    decay: decays(&name),
                    m: var.zeros_like()?,
                    v: var.zeros_like()?,
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

    /// The gradient of each variable, in slot order; an error names those without one.
    fn gradients(&self, grads: &Gradients) -> Result<Vec<Tensor>> {
        let mut out = Vec::with_capacity(self.slots.len());
        let mut missing = Vec::new();
        for (i, s) in self.slots.iter().enumerate() {
            match grads.sums.get(i).and_then(Option::as_ref) {
                Some(g) => out.push((g / grads.count.max(1) as f64)?),
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
        let mut squares = 0f64;
        for g in &gradients {
            squares += g
                .to_dtype(DType::F64)?
                .sqr()?
                .sum_all()?
                .to_scalar::<f64>()?;
        }
        let grad_norm = squares.sqrt();
        if !grad_norm.is_finite() {
            bail!("the gradient norm is {grad_norm}: a loss or an input is not finite");
        }
        let clipped = clip_norm > 0.0 && grad_norm > clip_norm;
        let scale = if clipped { clip_norm / grad_norm } else { 1.0 };
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let (bias1, bias2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        for (slot, g) in self.slots.iter_mut().zip(gradients) {
            let g = (g * scale)?;
            let m = ((&slot.m * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&slot.v * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&m / bias1)? / ((&v / bias2)?.sqrt()? + c.eps)?)?;
            let mut w = slot.var.as_tensor().detach();
            if slot.decay && c.weight_decay > 0.0 {
                w = (w * (1.0 - lr * c.weight_decay))?;
            }
            slot.var.set(&(w - (update * lr)?)?)?;
            slot.m = m;
            slot.v = v;
        }
        Ok(StepReport {
            grad_norm,
            clipped,
            lr,
        })
    }

    /// The moments, by `m.NAME` and `v.NAME`, and the step, for a checkpoint.
    pub fn state(&self) -> (u64, HashMap<String, Tensor>) {
        let mut tensors = HashMap::new();
        for s in &self.slots {
            tensors.insert(format!("m.{}", s.name), s.m.clone());
            tensors.insert(format!("v.{}", s.name), s.v.clone());
        }
        (self.step, tensors)
    }

    /// Restores a saved state; every moment must be there with its variable's shape.
    pub fn restore(&mut self, step: u64, tensors: &HashMap<String, Tensor>) -> Result<()> {
        for s in &mut self.slots {
            for (kind, slot) in [("m", &mut s.m), ("v", &mut s.v)] {
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
                *slot = t.clone();
            }
        }
        self.step = step;
        Ok(())
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
        let (_, state) = opt.state();
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
        let (step, state) = opt2.state();
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

    #[test]
    fn the_schedule_warms_up_then_decays_to_zero() {
        let lr: Vec<f64> = (0..10).map(|s| learning_rate(s, 10, 4, 1.0)).collect();
        assert_eq!(&lr[..4], &[0.25, 0.5, 0.75, 1.0]);
        assert!(lr[4..].windows(2).all(|w| w[1] < w[0]));
        assert_eq!(learning_rate(10, 10, 4, 1.0), 0.0);
        assert_eq!(learning_rate(0, 10, 0, 2.0), 2.0);
    }
}
