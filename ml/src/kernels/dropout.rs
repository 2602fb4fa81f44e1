//! Inverted dropout as a candle custom op with its own backward: each element kept with
//! probability 1 − p and scaled by 1 / (1 − p), the mask drawn in parallel from counter-based
//! streams of one seed (so it does not depend on the threads) and kept for the backward pass.
//! candle's composition drew an f64 per element on one thread, built the mask as a tensor and
//! multiplied through the graph.

use super::{f32s, output};
use candle_core::{CpuStorage, CustomOp1, Error, Layout, Result, Shape, Tensor, bail};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Elements per stream of the mask: stream `i` draws elements `i · STREAM ..`.
const STREAM: usize = 16_384;

/// Which of `n` elements dropout keeps, from stream `stream` of `seed`: each a u32 draw at or
/// above p · 2^32.
pub fn dropout_kept(seed: u64, stream: u64, n: usize, p: f32) -> Vec<bool> {
    let mut kept = vec![false; n];
    fill_kept(&mut kept, seed, stream, p);
    kept
}

/// [`dropout_kept`] into `kept`.
pub(super) fn fill_kept(kept: &mut [bool], seed: u64, stream: u64, p: f32) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let threshold = (f64::from(p) * 4_294_967_296.0) as u64;
    for k in kept {
        *k = u64::from(rng.next_u32()) >= threshold;
    }
}

/// `p` as a dropout probability, or an error naming `op`.
pub(super) fn check_probability(op: &str, p: f32) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        bail!("{op}: a dropout probability of {p} is not in [0, 1)");
    }
    Ok(())
}

/// The scale of the elements a dropout of probability `p` keeps.
pub(super) fn keep_scale(p: f32) -> f32 {
    1.0 / (1.0 - p)
}

/// `out = x · scale` where `kept`, 0 where dropped: a mask applied to values or to gradients.
pub(super) fn apply_kept(out: &mut [f32], x: &[f32], kept: &[bool], scale: f32) {
    for ((o, &x), &keep) in out.iter_mut().zip(x).zip(kept) {
        *o = if keep { x * scale } else { 0.0 };
    }
}

/// Inverted dropout of `x` with probability `p` in [0, 1), its mask drawn from `seed`. f32 on
/// the CPU.
pub fn dropout(x: &Tensor, p: f32, seed: u64) -> Result<Tensor> {
    check_probability("dropout", p)?;
    if p == 0.0 {
        return Ok(x.clone());
    }
    x.contiguous()?.apply_op1(Dropout {
        p,
        seed,
        kept: Mutex::new(None),
    })
}

/// Which elements a dropout kept, one flag each, and the scale of the kept ones.
struct Mask {
    kept: Vec<bool>,
    scale: f32,
}

impl Mask {
    fn apply(&self, op: &str, x: &[f32]) -> Result<Vec<f32>> {
        if x.len() != self.kept.len() {
            bail!("{op}: {} values for a mask of {}", x.len(), self.kept.len());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(STREAM)
            .zip(x.par_chunks(STREAM).zip(self.kept.par_chunks(STREAM)))
            .for_each(|(y, (x, kept))| apply_kept(y, x, kept, self.scale));
        Ok(y)
    }
}

struct Dropout {
    p: f32,
    seed: u64,
    kept: Mutex<Option<Arc<Mask>>>,
}

fn poisoned() -> Error {
    Error::Msg("dropout: a thread panicked holding its mask".into())
}

impl CustomOp1 for Dropout {
    fn name(&self) -> &'static str {
        "dropout"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s("dropout", storage, layout)?;
        let mut kept = vec![false; x.len()];
        kept.par_chunks_mut(STREAM)
            .enumerate()
            .for_each(|(i, kept)| fill_kept(kept, self.seed, i as u64, self.p));
        let mask = Mask {
            kept,
            scale: keep_scale(self.p),
        };
        let y = mask.apply("dropout", x)?;
        *self.kept.lock().map_err(|_| poisoned())? = Some(Arc::new(mask));
        Ok(output(y, layout.shape()))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let Some(mask) = self.kept.lock().map_err(|_| poisoned())?.clone() else {
            bail!("dropout backward: the forward pass kept no mask");
        };
        let grad = grad_res
            .contiguous()?
            .apply_op1_no_bwd(&DropoutBackward { mask })?;
        Ok(Some(grad))
    }
}

/// The gradient through a dropout: the incoming one where the mask kept, scaled as the forward.
struct DropoutBackward {
    mask: Arc<Mask>,
}

impl CustomOp1 for DropoutBackward {
    fn name(&self) -> &'static str {
        "dropout-backward"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32s("dropout-backward", storage, layout)?;
        Ok(output(
            self.mask.apply("dropout-backward", g)?,
            layout.shape(),
        ))
    }
}
