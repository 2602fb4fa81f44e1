//! Multi-head self-attention as one candle custom op with its own backward: every head of every
//! sequence (scores, the key mask, softmax, dropout on the weights, the values' product) read
//! straight out of the `[batch, len, heads × head]` projections and written back in that layout.
//! candle's composition splits the heads with transposing copies, multiplies each sequence's
//! heads by one `gemm` call apiece, and draws dropout element by element through the graph; here
//! the sequences run in parallel, each head's products single-threaded (`quant::dense::matmul`).
//!
//! The forward pass keeps the softmax weights (and the dropout's kept elements) for the
//! backward pass, which is one op of its own computing the three inputs' gradients.

use super::dropout::{apply_kept, check_probability, fill_kept, keep_scale};
use super::{f32s, output, softmax_backward_in_place, softmax_in_place};
use crate::quant::dense::{View, matmul};
use candle_core::{
    CpuStorage, CustomOp3, DType, Error, Layout, Result, Shape, Storage, Tensor, bail,
};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

/// Dropout on the attention weights: each weight dropped with probability `p` (the kept ones
/// scaled by 1 / (1 − p)), the masks drawn from `seed` as [`super::dropout_kept`] draws them,
/// one stream per sequence and head (stream `sequence × heads + head`), so they do not depend
/// on the threads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionDropout {
    pub p: f32,
    pub seed: u64,
}

/// Self-attention of `q`, `k`, `v` (`[batch, len, heads × head_size]`, or the same rows as
/// `[batch × len, heads × head_size]`: the projections as they come out of their linear layers)
/// with `mask` (`batch × len` values, its last dimension `len`, added to every query's score of
/// that key: 0 for a token, a large negative number for padding). Returns the context in the
/// queries' shape: the heads side by side, as the output projection reads them. f32 on the CPU.
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    mask: &Tensor,
    heads: usize,
    dropout: Option<AttentionDropout>,
) -> Result<Tensor> {
    let (batch, len, width) = match *q.dims() {
        [batch, len, width] => (batch, len, width),
        // Rows of sequences one after the other: the mask's last dimension is their length.
        [rows, width] => match mask.dims().last() {
            Some(&len) if len > 0 && rows % len == 0 => (rows / len, len, width),
            _ => bail!(
                "attention: {rows} rows of queries are not whole sequences of a mask of shape \
                 {:?}",
                mask.dims()
            ),
        },
        _ => bail!(
            "attention: queries of shape {:?}, not [batch, len, width] or [batch × len, width]",
            q.dims()
        ),
    };
    for (name, t) in [("key", k), ("value", v)] {
        if t.dims() != q.dims() {
            bail!(
                "attention: the {name}s have shape {:?}, the queries {:?}",
                t.dims(),
                q.dims()
            );
        }
    }
    if heads == 0 || width % heads != 0 {
        bail!("attention: {width} columns do not split into {heads} heads");
    }
    if mask.elem_count() != batch * len {
        bail!(
            "attention: a mask of shape {:?} for {batch} sequences of {len}",
            mask.dims()
        );
    }
    if let Some(d) = dropout {
        check_probability("attention", d.p)?;
    }
    let dropout = dropout.filter(|d| d.p > 0.0);
    let mask = mask.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
    let op = Attention {
        shape: Heads {
            batch,
            len,
            heads,
            head_size: width / heads,
        },
        dims: q.dims().to_vec(),
        mask,
        dropout,
        saved: Mutex::new(None),
    };
    q.contiguous()?
        .apply_op3(&k.contiguous()?, &v.contiguous()?, op)
}

#[derive(Clone, Copy, Debug)]
struct Heads {
    batch: usize,
    len: usize,
    heads: usize,
    head_size: usize,
}

impl Heads {
    fn width(self) -> usize {
        self.heads * self.head_size
    }

    /// One sequence's rows of a projection.
    fn sequence(self) -> usize {
        self.len * self.width()
    }

    /// One sequence's weights, all heads.
    fn weights(self) -> usize {
        self.heads * self.len * self.len
    }

    /// Head `h` of one sequence's rows of a projection, `len × head_size`.
    fn head<'a>(self, rows: &'a [f32], h: usize) -> View<'a> {
        View {
            data: rows.get(h * self.head_size..).unwrap_or(&[]),
            rows: self.len,
            cols: self.head_size,
            row_stride: self.width(),
            col_stride: 1,
        }
    }

    /// The transpose of [`Heads::head`], `head_size × len`, read in place.
    fn head_transposed<'a>(self, rows: &'a [f32], h: usize) -> View<'a> {
        View {
            data: rows.get(h * self.head_size..).unwrap_or(&[]),
            rows: self.head_size,
            cols: self.len,
            row_stride: 1,
            col_stride: self.width(),
        }
    }

    fn check(self, op: &str, name: &str, values: &[f32]) -> Result<()> {
        if values.len() != self.batch * self.sequence() {
            bail!(
                "{op}: the {name} hold {} values, not {} × {} × {}",
                values.len(),
                self.batch,
                self.len,
                self.width()
            );
        }
        Ok(())
    }
}

/// What the forward pass keeps for the backward one: the softmax weights `[batch, heads, len,
/// len]` and, with dropout, which of them it kept.
struct Saved {
    weights: Vec<f32>,
    kept: Vec<bool>,
}

struct Attention {
    shape: Heads,
    /// The queries' dimensions, the context's too.
    dims: Vec<usize>,
    mask: Vec<f32>,
    dropout: Option<AttentionDropout>,
    saved: Mutex<Option<Arc<Saved>>>,
}

fn matmul_err(e: String) -> Error {
    Error::Msg(format!("attention: {e}"))
}

/// Empty slices, one per sequence, where dropout keeps no record.
fn per_sequence<T>(values: &mut [T], chunk: usize, batch: usize) -> Vec<&mut [T]> {
    if values.is_empty() {
        (0..batch).map(|_| <&mut [T]>::default()).collect()
    } else {
        values.chunks_mut(chunk.max(1)).collect()
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "attention"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let sh = self.shape;
        let (q, k, v) = (
            f32s("attention", s1, l1)?,
            f32s("attention", s2, l2)?,
            f32s("attention", s3, l3)?,
        );
        for (name, values) in [("queries", q), ("keys", k), ("values", v)] {
            sh.check("attention", name, values)?;
        }
        let (t, seq) = (sh.len, sh.sequence());
        let scale = 1.0 / (sh.head_size as f32).sqrt();
        let mut context = vec![0f32; sh.batch * seq];
        let mut weights = vec![0f32; sh.batch * sh.weights()];
        let mut kept = vec![
            false;
            if self.dropout.is_some() {
                weights.len()
            } else {
                0
            }
        ];
        let kept_chunks = per_sequence(&mut kept, sh.weights(), sh.batch);
        context
            .par_chunks_mut(seq.max(1))
            .zip(weights.par_chunks_mut(sh.weights().max(1)))
            .zip(kept_chunks)
            .enumerate()
            .try_for_each(|(i, ((context, weights), kept))| -> Result<()> {
                let rows = i * seq..(i + 1) * seq;
                let (q, k, v) = (&q[rows.clone()], &k[rows.clone()], &v[rows]);
                let mask = &self.mask[i * t..(i + 1) * t];
                let mut dropped = vec![0f32; if self.dropout.is_some() { t * t } else { 0 }];
                for h in 0..sh.heads {
                    let w = &mut weights[h * t * t..(h + 1) * t * t];
                    matmul(w, t, sh.head(q, h), sh.head_transposed(k, h), false)
                        .map_err(matmul_err)?;
                    for row in w.chunks_mut(t) {
                        for (s, &m) in row.iter_mut().zip(mask) {
                            *s = *s * scale + m;
                        }
                        softmax_in_place(row);
                    }
                    let applied: &[f32] = match self.dropout {
                        Some(d) => {
                            let stream = (i * sh.heads + h) as u64;
                            let kept = &mut kept[h * t * t..(h + 1) * t * t];
                            fill_kept(kept, d.seed, stream, d.p);
                            apply_kept(&mut dropped, w, kept, keep_scale(d.p));
                            &dropped
                        }
                        None => w,
                    };
                    matmul(
                        &mut context[h * sh.head_size..],
                        sh.width(),
                        View::rows(applied, t, t),
                        sh.head(v, h),
                        false,
                    )
                    .map_err(matmul_err)?;
                }
                Ok(())
            })?;
        let mut saved = self
            .saved
            .lock()
            .map_err(|_| Error::Msg("attention: a thread panicked holding its weights".into()))?;
        *saved = Some(Arc::new(Saved { weights, kept }));
        Ok(output(context, &Shape::from_dims(&self.dims)))
    }

    fn bwd(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let saved = self
            .saved
            .lock()
            .map_err(|_| Error::Msg("attention: a thread panicked holding its weights".into()))?
            .clone();
        let Some(saved) = saved else {
            bail!("attention backward: the forward pass kept no weights");
        };
        let grads = q.apply_op3_no_bwd(
            k,
            v,
            &AttentionBackward {
                shape: self.shape,
                dims: self.dims.clone(),
                dropout: self.dropout,
                saved,
                grad: grad_res.contiguous()?,
            },
        )?;
        Ok((
            Some(grads.get(0)?),
            Some(grads.get(1)?),
            Some(grads.get(2)?),
        ))
    }
}

/// The gradients of the queries, keys and values, `[3, ...]` of the queries' dimensions, from
/// the context's gradient and what the forward pass kept.
struct AttentionBackward {
    shape: Heads,
    /// The queries' dimensions, each gradient's.
    dims: Vec<usize>,
    dropout: Option<AttentionDropout>,
    saved: Arc<Saved>,
    grad: Tensor,
}

impl CustomOp3 for AttentionBackward {
    fn name(&self) -> &'static str {
        "attention-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        const OP: &str = "attention-backward";
        let sh = self.shape;
        let (q, k, v) = (f32s(OP, s1, l1)?, f32s(OP, s2, l2)?, f32s(OP, s3, l3)?);
        let (storage, layout) = self.grad.storage_and_layout();
        let Storage::Cpu(grad) = &*storage else {
            bail!("{OP}: the gradient is not on the CPU");
        };
        let g = f32s(OP, grad, layout)?;
        for (name, values) in [("queries", q), ("keys", k), ("values", v), ("gradients", g)] {
            sh.check(OP, name, values)?;
        }
        if self.saved.weights.len() != sh.batch * sh.weights() {
            bail!("{OP}: the kept weights do not match the inputs");
        }
        let (t, seq) = (sh.len, sh.sequence());
        let scale = 1.0 / (sh.head_size as f32).sqrt();
        let mut out = vec![0f32; 3 * sh.batch * seq];
        let (dq, rest) = out.split_at_mut(sh.batch * seq);
        let (dk, dv) = rest.split_at_mut(sh.batch * seq);
        dq.par_chunks_mut(seq.max(1))
            .zip(dk.par_chunks_mut(seq.max(1)))
            .zip(dv.par_chunks_mut(seq.max(1)))
            .enumerate()
            .try_for_each(|(i, ((dq, dk), dv))| -> Result<()> {
                let rows = i * seq..(i + 1) * seq;
                let (q, k, v, g) = (
                    &q[rows.clone()],
                    &k[rows.clone()],
                    &v[rows.clone()],
                    &g[rows],
                );
                let mut applied = vec![0f32; t * t];
                let mut dw = vec![0f32; t * t];
                for h in 0..sh.heads {
                    let at = (i * sh.heads + h) * t * t;
                    let w = &self.saved.weights[at..at + t * t];
                    let kept = match self.dropout {
                        Some(d) => {
                            let kept = self.saved.kept.get(at..at + t * t).ok_or_else(|| {
                                Error::Msg(format!("{OP}: the dropout's record is short"))
                            })?;
                            Some((kept, keep_scale(d.p)))
                        }
                        None => None,
                    };
                    // The weights the values were multiplied by.
                    match kept {
                        Some((kept, scale)) => apply_kept(&mut applied, w, kept, scale),
                        None => applied.copy_from_slice(w),
                    }
                    // dV = Aᵀ dC; dA = dC Vᵀ.
                    matmul(
                        &mut dv[h * sh.head_size..],
                        sh.width(),
                        View::transposed(&applied, t, t),
                        sh.head(g, h),
                        false,
                    )
                    .map_err(matmul_err)?;
                    matmul(&mut dw, t, sh.head(g, h), sh.head_transposed(v, h), false)
                        .map_err(matmul_err)?;
                    if let Some((kept, inv)) = kept {
                        for (d, &keep) in dw.iter_mut().zip(kept) {
                            *d = if keep { *d * inv } else { 0.0 };
                        }
                    }
                    // Through softmax: dS = W ⊙ (dW − Σ dW ⊙ W), scaled as the scores were.
                    for (d, w) in dw.chunks_mut(t).zip(w.chunks(t)) {
                        softmax_backward_in_place(d, w, scale);
                    }
                    // dQ = dS K; dK = dSᵀ Q.
                    matmul(
                        &mut dq[h * sh.head_size..],
                        sh.width(),
                        View::rows(&dw, t, t),
                        sh.head(k, h),
                        false,
                    )
                    .map_err(matmul_err)?;
                    matmul(
                        &mut dk[h * sh.head_size..],
                        sh.width(),
                        View::transposed(&dw, t, t),
                        sh.head(q, h),
                        false,
                    )
                    .map_err(matmul_err)?;
                }
                Ok(())
            })?;
        let dims: Vec<usize> = std::iter::once(3)
            .chain(self.dims.iter().copied())
            .collect();
        Ok(output(out, &Shape::from_dims(&dims)))
    }
}
