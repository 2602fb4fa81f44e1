//! A model's trainable parameters: named candle variables created through a `VarBuilder`,
//! initialized from a seed (each variable from its own stream, keyed by its name, so the same
//! seed gives the same weights whatever order the layers are built in) or taken from a
//! checkpoint's tensors where it has them (`model init "path"`). candle-nn's `VarMap` draws
//! from an unseeded generator, so it cannot give the same weights twice.

use candle_core::{DType, Device, Result, Shape, Tensor, Var, bail};
use candle_nn::{Init, VarBuilder, var_builder::SimpleBackend};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// The variables of one model, by name (`encoder.layer.0.attention.self.query.weight`).
#[derive(Clone)]
pub struct Params {
    inner: Arc<Inner>,
}

struct Inner {
    seed: u64,
    /// Tensors to start from, by name (a checkpoint's), checked against the shape asked for.
    initial: HashMap<String, Tensor>,
    vars: Mutex<BTreeMap<String, Var>>,
}

impl Params {
    /// Parameters drawn from `seed`.
    pub fn seeded(seed: u64) -> Params {
        Params::starting_from(seed, HashMap::new())
    }

    /// Parameters that take a checkpoint's tensor where it has one of the name, and are drawn
    /// from `seed` elsewhere (new heads on a pre-trained encoder).
    pub fn starting_from(seed: u64, initial: HashMap<String, Tensor>) -> Params {
        Params {
            inner: Arc::new(Inner {
                seed,
                initial,
                vars: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// A builder whose `get`s create (or return) these parameters.
    pub fn builder(&self, dtype: DType, device: &Device) -> VarBuilder<'static> {
        VarBuilder::from_backend(Box::new(self.clone()), dtype, device.clone())
    }

    fn vars(&self) -> MutexGuard<'_, BTreeMap<String, Var>> {
        self.inner.vars.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every variable, by name.
    pub fn named(&self) -> Vec<(String, Var)> {
        self.vars()
            .iter()
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }

    /// The checkpoint's tensors that no layer asked for (a sign of a mismatched checkpoint).
    pub fn unused_initial(&self) -> Vec<String> {
        let vars = self.vars();
        let mut unused: Vec<String> = self
            .inner
            .initial
            .keys()
            .filter(|k| !vars.contains_key(*k))
            .cloned()
            .collect();
        unused.sort();
        unused
    }

    /// How many numbers the parameters hold.
    pub fn count(&self) -> usize {
        self.vars().values().map(|v| v.elem_count()).sum()
    }

    /// The current values, by name (for saving).
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.vars()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect()
    }
}

/// A generator for one variable: the seed and the variable's name, hashed (FNV-1a).
fn stream(seed: u64, name: &str) -> ChaCha8Rng {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64 ^ seed, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    ChaCha8Rng::seed_from_u64(h)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn initial_values(shape: &Shape, init: Init, rng: &mut ChaCha8Rng) -> Result<Vec<f32>> {
    let n = shape.elem_count();
    Ok(match init {
        Init::Const(c) => vec![c as f32; n],
        Init::Randn { mean, stdev } => (0..n)
            .map(|_| (mean + stdev * normal(rng)) as f32)
            .collect(),
        Init::Uniform { lo, up } => (0..n).map(|_| rng.random_range(lo..=up) as f32).collect(),
        Init::Kaiming { .. } => {
            // Kaiming uniform for a [out, in] weight: bound sqrt(6 / fan_in) / sqrt(2) (linear).
            let fan_in = shape.dims().last().copied().unwrap_or(1).max(1);
            let bound = (3.0 / fan_in as f64).sqrt();
            (0..n)
                .map(|_| rng.random_range(-bound..=bound) as f32)
                .collect()
        }
    })
}

impl SimpleBackend for Params {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        init: Init,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor> {
        let mut vars = self.vars();
        if let Some(v) = vars.get(name) {
            if v.shape() != &shape {
                bail!(
                    "the parameter `{name}` is {:?} here and {shape:?} there",
                    v.shape()
                );
            }
            return Ok(v.as_tensor().clone());
        }
        let tensor = match self.inner.initial.get(name) {
            Some(t) => {
                if t.shape() != &shape {
                    bail!(
                        "the checkpoint's tensor `{name}` has shape {:?}; the model needs {shape:?}",
                        t.shape()
                    );
                }
                t.to_dtype(dtype)?.to_device(device)?
            }
            None => {
                let values = initial_values(&shape, init, &mut stream(self.inner.seed, name))?;
                Tensor::from_vec(values, shape, device)?.to_dtype(dtype)?
            }
        };
        let var = Var::from_tensor(&tensor)?;
        let out = var.as_tensor().clone();
        vars.insert(name.to_string(), var);
        Ok(out)
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _device: &Device) -> Result<Tensor> {
        match self.vars().get(name) {
            Some(v) => Ok(v.as_tensor().clone()),
            None => bail!("no parameter `{name}`"),
        }
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.vars().contains_key(name) || self.inner.initial.contains_key(name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn build(params: &Params, names: &[&str]) -> Vec<Vec<f32>> {
        let vb = params.builder(DType::F32, &Device::Cpu);
        names
            .iter()
            .map(|n| {
                vb.get_with_hints(
                    (3, 4),
                    n,
                    Init::Randn {
                        mean: 0.0,
                        stdev: 0.02,
                    },
                )
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_weights_in_any_build_order() {
        let a = build(&Params::seeded(7), &["x", "y"]);
        let b = build(&Params::seeded(7), &["y", "x"]);
        assert_eq!(a[0], b[1]);
        assert_eq!(a[1], b[0]);
        assert_ne!(a[0], a[1]);
        assert_ne!(build(&Params::seeded(8), &["x"])[0], a[0]);
        let mean = a[0].iter().sum::<f32>() / 12.0;
        assert!(mean.abs() < 0.02, "{mean}");
    }

    #[test]
    fn a_checkpoint_tensor_is_taken_and_its_shape_checked() {
        let t = Tensor::ones((3, 4), DType::F32, &Device::Cpu).unwrap();
        let params = Params::starting_from(
            1,
            HashMap::from([
                ("x".to_string(), t),
                (
                    "gone".to_string(),
                    Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
                ),
            ]),
        );
        assert_eq!(build(&params, &["x"])[0], vec![1.0; 12]);
        assert_eq!(params.unused_initial(), ["gone"]);
        let vb = params.builder(DType::F32, &Device::Cpu);
        let err = vb.get((5, 4), "gone").unwrap_err().to_string();
        assert!(err.contains("`gone`") && err.contains("[2]"), "{err}");
        assert_eq!(params.count(), 12);
    }
}
