//! The linear layers of the inference engine: f32 (through `dense`), and int8 — weights signed
//! per output channel, activations unsigned per row quantized at run time, the zero point
//! corrected with the weights' precomputed column sums and the dequantization fused with the
//! bias: y[m, n] = sₐ[m] · s_w[n] · (Σₖ a[m, k] w[n, k] − zₐ[m] · Σₖ w[n, k]) + b[n].

use super::dense::{View, matmul};
use super::gemm::{PackedWeights, gemm, par_gemm};
use crate::kernels::{add_layer_norm_rows, gelu_in_place};

/// An f32 layer: weight `[n, k]` row-major and bias `[n]`.
#[derive(Clone, Debug)]
pub struct Dense {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub n: usize,
    pub k: usize,
}

impl Dense {
    pub fn new(weight: Vec<f32>, bias: Vec<f32>, n: usize, k: usize) -> Result<Dense, String> {
        if weight.len() != n * k || bias.len() != n {
            return Err(format!(
                "a {n} × {k} layer needs {} weights and {n} biases, not {} and {}",
                n * k,
                weight.len(),
                bias.len()
            ));
        }
        Ok(Dense { weight, bias, n, k })
    }

    /// `out[m, n] = x[m, k] · wᵀ + b`.
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<(), String> {
        for row in out.chunks_exact_mut(self.n).take(m) {
            row.copy_from_slice(&self.bias);
        }
        matmul(
            out,
            self.n,
            View::rows(x, m, self.k),
            View::transposed(&self.weight, self.k, self.n),
            true,
        )
    }
}

/// An int8 layer: packed weights, their per-channel scales, and the f32 bias.
#[derive(Clone, Debug)]
pub struct QLinear {
    pub weights: PackedWeights,
    pub scales: Vec<f32>,
    pub bias: Vec<f32>,
}

/// The per-row quantization of a batch of activations.
#[derive(Debug, Default)]
pub struct Quantized {
    pub values: Vec<u8>,
    pub scales: Vec<f32>,
    pub zeros: Vec<i32>,
}

/// Unsigned 8-bit values of each row of `x` `[m, k]`, asymmetric over the row's range (which
/// always holds 0, so zero padding stays exact): x ≈ (q − z) · s. On AVX-512 by the x86
/// kernel (`gemm::quantize_rows_fast`, the same bytes), else by [`quantize_activations_portable`].
pub fn quantize_activations(x: &[f32], m: usize, k: usize, out: &mut Quantized) {
    out.values.resize(m * k, 0);
    out.scales.resize(m, 0.0);
    out.zeros.resize(m, 0);
    quantize_into(x, m, k, &mut out.values, &mut out.scales, &mut out.zeros);
}

/// [`quantize_activations`] into slices that hold `m` rows (a block of a larger batch).
fn quantize_into(
    x: &[f32],
    m: usize,
    k: usize,
    values: &mut [u8],
    scales: &mut [f32],
    zeros: &mut [i32],
) {
    if !super::gemm::quantize_rows_fast(x, m, k, values, scales, zeros) {
        quantize_rows_portable(x.get(..m * k).unwrap_or(x), k, values, scales, zeros);
    }
}

/// [`quantize_activations`] in portable code (vectorized by the compiler).
pub fn quantize_activations_portable(x: &[f32], m: usize, k: usize, out: &mut Quantized) {
    out.values.resize(m * k, 0);
    out.scales.resize(m, 0.0);
    out.zeros.resize(m, 0);
    quantize_rows_portable(
        &x[..(m * k).min(x.len())],
        k,
        &mut out.values,
        &mut out.scales,
        &mut out.zeros,
    );
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn quantize_rows_portable(
    x: &[f32],
    k: usize,
    values: &mut [u8],
    scales: &mut [f32],
    zeros: &mut [i32],
) {
    for (((row, q), scale), zero) in x
        .chunks_exact(k.max(1))
        .zip(values.chunks_exact_mut(k.max(1)))
        .zip(scales.iter_mut())
        .zip(zeros.iter_mut())
    {
        let (lo, hi) = crate::kernels::row_range(row);
        let range = hi - lo;
        // A row of zeros (or of non-finite values) keeps a scale of 1.
        *scale = if range > 0.0 && range < f32::INFINITY {
            range / 255.0
        } else {
            1.0
        };
        let inv = 1.0 / *scale;
        // Rounded to the nearest step: the zero point is whole, so the row's 0 maps exactly.
        *zero = ((-lo * inv + 0.5) as i32).clamp(0, 255);
        let offset = *zero as f32;
        for (q, &v) in q.iter_mut().zip(row) {
            // Clamped first, so the rounding trick's range holds for any input.
            let y = v * inv + offset;
            let y = if y > 255.0 { 255.0 } else { y };
            let y = if y > 0.0 { y } else { 0.0 };
            *q = crate::kernels::round_to_int(y) as u8;
        }
    }
}

impl QLinear {
    /// From int8 weights `[n, k]` and their scales.
    pub fn new(
        q: &[i8],
        scales: Vec<f32>,
        bias: Vec<f32>,
        n: usize,
        k: usize,
    ) -> Result<QLinear, String> {
        if scales.len() != n || bias.len() != n {
            return Err(format!(
                "a {n} × {k} int8 layer needs {n} scales and {n} biases, not {} and {}",
                scales.len(),
                bias.len()
            ));
        }
        Ok(QLinear {
            weights: PackedWeights::pack(q, n, k)?,
            scales,
            bias,
        })
    }

    pub fn n(&self) -> usize {
        self.weights.n()
    }

    /// `out[m, n] ≈ x[m, k] · wᵀ + b`, splitting the rows over threads with `parallel`.
    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
        parallel: bool,
    ) -> Result<(), String> {
        let plain = Epilogue::Plain;
        self.forward_fused(Input::f32(x), m, out, plain, None, scratch, parallel)
    }

    /// `out[m, n] ≈ x[m, k] · wᵀ + b` and what `epilogue` does after, its output quantized into
    /// `next` too where given. The input is quantized here unless `x.quantized` holds it. Row
    /// blocks are multiplied and finished one after the other, so each block's products,
    /// outputs and bytes stay in cache between the passes; with `parallel`, the rows of the
    /// multiply are split over the threads instead.
    #[allow(clippy::too_many_arguments)]
    fn forward_fused(
        &self,
        x: Input<'_>,
        m: usize,
        out: &mut [f32],
        epilogue: Epilogue<'_>,
        mut next: Option<&mut Quantized>,
        scratch: &mut Scratch,
        parallel: bool,
    ) -> Result<(), String> {
        let (n, k) = (self.weights.n(), self.weights.k());
        check_sizes(x.rows, m, k, out, n)?;
        let Scratch {
            quantized,
            acc,
            product,
        } = scratch;
        let q: &Quantized = match x.quantized {
            Some(q) if q.scales.len() >= m && q.values.len() >= m * k => q,
            _ => {
                quantize_activations(x.rows, m, k, quantized);
                quantized
            }
        };
        if let Some(next) = next.as_deref_mut() {
            grown(&mut next.values, m * n);
            grown(&mut next.scales, m);
            grown(&mut next.zeros, m);
        }
        let block = if parallel { m.max(1) } else { FUSED_ROWS };
        for start in (0..m).step_by(block) {
            let rows = block.min(m - start);
            let acc = grown(acc, rows * n);
            let a = &q.values[start * k..(start + rows) * k];
            if parallel {
                par_gemm(a, rows, &self.weights, acc)?;
            } else {
                gemm(a, rows, &self.weights, acc)?;
            }
            let out = &mut out[start * n..(start + rows) * n];
            let target = match epilogue {
                Epilogue::AddNorm { .. } => grown(product, rows * n),
                _ => &mut *out,
            };
            dequantize(
                acc,
                &q.scales[start..start + rows],
                &q.zeros[start..start + rows],
                self.weights.col_sums(),
                &self.scales,
                &self.bias,
                n,
                target,
            );
            epilogue.apply(out, &product[..]);
            if let Some(next) = next.as_deref_mut() {
                quantize_into(
                    out,
                    rows,
                    n,
                    &mut next.values[start * n..(start + rows) * n],
                    &mut next.scales[start..start + rows],
                    &mut next.zeros[start..start + rows],
                );
            }
        }
        Ok(())
    }
}

/// The first `len` values of `v`, grown (never shrunk) to hold them: buffers reused across
/// layers of different widths are zeroed once, not at every change of width.
pub(crate) fn grown<T: Clone + Default>(v: &mut Vec<T>, len: usize) -> &mut [T] {
    if v.len() < len {
        v.resize(len, T::default());
    }
    &mut v[..len]
}

/// Checks that `x` holds `m` rows of `k` and `out` `m` rows of `n`.
fn check_sizes(x: &[f32], m: usize, k: usize, out: &[f32], n: usize) -> Result<(), String> {
    if x.len() < m * k || out.len() < m * n {
        return Err(format!(
            "a {n} × {k} layer over {m} rows needs {} inputs and room for {} outputs, not {} and {}",
            m * k,
            m * n,
            x.len(),
            out.len()
        ));
    }
    Ok(())
}

/// Rows a fused int8 layer multiplies and finishes at a time (a multiple of the VNNI kernel's
/// row blocks): at the feed-forward's width, 96 KiB of products, in L2 between the passes.
const FUSED_ROWS: usize = 96;

/// A layer's input: f32 rows, and their bytes where the layer before quantized them.
#[derive(Clone, Copy, Debug)]
pub struct Input<'a> {
    pub rows: &'a [f32],
    pub quantized: Option<&'a Quantized>,
}

impl<'a> Input<'a> {
    /// Rows to quantize (where the layer is int8).
    pub fn f32(rows: &'a [f32]) -> Input<'a> {
        Input {
            rows,
            quantized: None,
        }
    }
}

/// What a layer does to its output rows after the multiply, while they are in cache.
#[derive(Clone, Copy, Debug)]
pub enum Epilogue<'a> {
    /// `out = x · wᵀ + b`.
    Plain,
    /// `out = GELU(x · wᵀ + b)`.
    Gelu,
    /// `out = LayerNorm(out + x · wᵀ + b)`: BERT's add-and-norm over the residual `out` holds.
    AddNorm {
        weight: &'a [f32],
        bias: &'a [f32],
        eps: f32,
    },
}

impl Epilogue<'_> {
    /// Finishes rows of `out`, the layer's products being in `out` itself or, for
    /// `AddNorm`, in `product`.
    fn apply(self, out: &mut [f32], product: &[f32]) {
        match self {
            Epilogue::Plain => {}
            Epilogue::Gelu => gelu_in_place(out),
            Epilogue::AddNorm { weight, bias, eps } => {
                add_layer_norm_rows(out, Some(product), weight, bias, eps)
            }
        }
    }
}

/// The f32 outputs of the integer products: the zero point corrected with the column sums,
/// scaled by the row's and the channel's scales, plus the bias.
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn dequantize(
    acc: &[i32],
    row_scales: &[f32],
    row_zeros: &[i32],
    sums: &[i32],
    scales: &[f32],
    bias: &[f32],
    n: usize,
    out: &mut [f32],
) {
    for (((row, acc), &sa), &za) in out
        .chunks_exact_mut(n)
        .zip(acc.chunks_exact(n))
        .zip(row_scales)
        .zip(row_zeros)
    {
        for ((((y, &a), &s), &c), &b) in row.iter_mut().zip(acc).zip(scales).zip(sums).zip(bias) {
            *y = (sa * s) * (a - za * c) as f32 + b;
        }
    }
}

/// Buffers an int8 layer reuses between calls.
#[derive(Debug, Default)]
pub struct Scratch {
    pub quantized: Quantized,
    pub acc: Vec<i32>,
    /// A block's products before an add-and-norm.
    pub product: Vec<f32>,
}

/// candle's own quantized layer (Q8_0 blocks of 32 weights, its CPU `QMatMul`), kept as the
/// peer our int8 kernel is measured against (`ml/benches/student.rs`).
#[derive(Clone, Debug)]
pub struct CandleQ8 {
    pub matmul: candle_core::quantized::QMatMul,
    pub bias: Vec<f32>,
    pub n: usize,
    pub k: usize,
}

impl CandleQ8 {
    /// From an f32 layer whose input width is a multiple of 32 (Q8_0's block).
    pub fn from_dense(d: &Dense) -> Result<CandleQ8, String> {
        use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
        let w = candle_core::Tensor::from_slice(&d.weight, (d.n, d.k), &candle_core::Device::Cpu)
            .map_err(|e| e.to_string())?;
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).map_err(|e| e.to_string())?;
        Ok(CandleQ8 {
            matmul: QMatMul::from_qtensor(q).map_err(|e| e.to_string())?,
            bias: d.bias.clone(),
            n: d.n,
            k: d.k,
        })
    }

    fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) -> Result<(), String> {
        use candle_core::Module;
        let t = candle_core::Tensor::from_slice(
            &x[..m * self.k],
            (m, self.k),
            &candle_core::Device::Cpu,
        )
        .and_then(|t| self.matmul.forward(&t))
        .and_then(|y| y.flatten_all())
        .and_then(|y| y.to_vec1::<f32>())
        .map_err(|e| e.to_string())?;
        for ((row, y), _) in out
            .chunks_exact_mut(self.n)
            .zip(t.chunks_exact(self.n))
            .zip(0..m)
        {
            for ((o, v), b) in row.iter_mut().zip(y).zip(&self.bias) {
                *o = v + b;
            }
        }
        Ok(())
    }
}

/// A layer of either precision.
#[derive(Clone, Debug)]
pub enum Linear {
    F32(Dense),
    Int8(QLinear),
    /// candle's Q8_0 layer, for comparison.
    CandleQ8(CandleQ8),
}

impl Linear {
    /// The same layer on candle's Q8_0 kernel, where its input width allows (else itself).
    pub fn to_candle_q8(&self) -> Result<Linear, String> {
        match self {
            Linear::F32(d) if d.k.is_multiple_of(32) => {
                Ok(Linear::CandleQ8(CandleQ8::from_dense(d)?))
            }
            other => Ok(other.clone()),
        }
    }

    /// Whether the layer multiplies in int8 (and so reads its input quantized).
    pub fn is_int8(&self) -> bool {
        matches!(self, Linear::Int8(_))
    }

    pub fn n(&self) -> usize {
        match self {
            Linear::F32(d) => d.n,
            Linear::Int8(q) => q.n(),
            Linear::CandleQ8(c) => c.n,
        }
    }

    /// `out[m, n] = x[m, k] · wᵀ + b`.
    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
        parallel: bool,
    ) -> Result<(), String> {
        self.forward_fused(
            Input::f32(x),
            m,
            out,
            Epilogue::Plain,
            None,
            scratch,
            parallel,
        )
    }

    /// The layer and then `epilogue` over `out`, the result quantized into `next` too where
    /// given (for an int8 layer after it). An int8 layer does it block by block while the
    /// rows are in cache; the others in whole passes.
    #[allow(clippy::too_many_arguments)]
    pub fn forward_fused(
        &self,
        x: Input<'_>,
        m: usize,
        out: &mut [f32],
        epilogue: Epilogue<'_>,
        next: Option<&mut Quantized>,
        scratch: &mut Scratch,
        parallel: bool,
    ) -> Result<(), String> {
        let n = self.n();
        let k = match self {
            Linear::F32(d) => d.k,
            Linear::Int8(q) => q.weights.k(),
            Linear::CandleQ8(c) => c.k,
        };
        check_sizes(x.rows, m, k, out, n)?;
        let into = |target: &mut [f32]| match self {
            Linear::F32(d) => d.forward(x.rows, m, target),
            Linear::CandleQ8(c) => c.forward(x.rows, m, target),
            Linear::Int8(_) => Ok(()),
        };
        match (self, epilogue) {
            (Linear::Int8(q), _) => {
                return q.forward_fused(x, m, out, epilogue, next, scratch, parallel);
            }
            (_, Epilogue::AddNorm { .. }) => into(grown(&mut scratch.product, m * n))?,
            _ => into(out)?,
        }
        let out = &mut out[..m * n];
        epilogue.apply(out, &scratch.product);
        if let Some(next) = next {
            quantize_activations(out, m, n, next);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::quant::weights::quantize_rows;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn the_int8_layer_is_close_to_the_f32_one() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for (m, k, n) in [(1, 5, 3), (7, 64, 64), (33, 256, 17), (96, 64, 192)] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-0.2..0.2)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            // Skewed activations, as after a GELU.
            let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-0.2..3.0)).collect();
            let dense = Dense::new(w.clone(), b.clone(), n, k).unwrap();
            let (q, s) = quantize_rows(&w, n, k);
            let int8 = QLinear::new(&q, s, b, n, k).unwrap();
            let (mut y, mut z) = (vec![0f32; m * n], vec![0f32; m * n]);
            dense.forward(&x, m, &mut y).unwrap();
            let mut scratch = Scratch::default();
            int8.forward(&x, m, &mut z, &mut scratch, false).unwrap();
            let scale = y.iter().fold(0f32, |a, v| a.max(v.abs()));
            let worst = y
                .iter()
                .zip(&z)
                .fold(0f32, |a, (p, q)| a.max((p - q).abs()));
            assert!(worst <= 0.02 * scale, "{m}×{k}×{n}: {worst} of {scale}");
            let mut par = vec![0f32; m * n];
            int8.forward(&x, m, &mut par, &mut scratch, true).unwrap();
            assert_eq!(par, z);
        }
    }

    /// Every epilogue, fused block by block, equals the plain layer followed by its pass, and
    /// the quantization it hands on equals quantizing the output afterwards, for both
    /// precisions, with and without a quantized input, over more rows than one block.
    #[test]
    fn fused_epilogues_equal_the_passes_they_replace() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let (k, n) = (24, 16);
        for m in [1, 5, FUSED_ROWS, FUSED_ROWS + 7, 2 * FUSED_ROWS + 1] {
            let w: Vec<f32> = (0..n * k).map(|_| rng.random_range(-0.3..0.3)).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-2.0..2.0)).collect();
            let residual: Vec<f32> = (0..m * n).map(|_| rng.random_range(-1.0..1.0)).collect();
            let gamma: Vec<f32> = (0..n).map(|_| rng.random_range(0.5..1.5)).collect();
            let beta: Vec<f32> = (0..n).map(|_| rng.random_range(-0.5..0.5)).collect();
            let (q, s) = quantize_rows(&w, n, k);
            let layers = [
                Linear::F32(Dense::new(w.clone(), b.clone(), n, k).unwrap()),
                Linear::Int8(QLinear::new(&q, s, b.clone(), n, k).unwrap()),
            ];
            let epilogues = [
                Epilogue::Plain,
                Epilogue::Gelu,
                Epilogue::AddNorm {
                    weight: &gamma,
                    bias: &beta,
                    eps: 1e-5,
                },
            ];
            let mut qx = Quantized::default();
            quantize_activations(&x, m, k, &mut qx);
            for layer in &layers {
                for epilogue in epilogues {
                    let mut scratch = Scratch::default();
                    let mut expected = vec![0f32; m * n];
                    layer
                        .forward(&x, m, &mut expected, &mut scratch, false)
                        .unwrap();
                    match epilogue {
                        Epilogue::Plain => {}
                        Epilogue::Gelu => gelu_in_place(&mut expected),
                        Epilogue::AddNorm { .. } => {
                            let mut r = residual.clone();
                            add_layer_norm_rows(&mut r, Some(&expected), &gamma, &beta, 1e-5);
                            expected = r;
                        }
                    }
                    let mut expected_q = Quantized::default();
                    quantize_activations(&expected, m, n, &mut expected_q);
                    for (quantized, parallel) in [(None, false), (Some(&qx), false), (None, true)] {
                        let mut out = residual.clone();
                        let mut next = Quantized::default();
                        let input = Input {
                            rows: &x,
                            quantized,
                        };
                        layer
                            .forward_fused(
                                input,
                                m,
                                &mut out,
                                epilogue,
                                Some(&mut next),
                                &mut scratch,
                                parallel,
                            )
                            .unwrap();
                        let what = format!("{layer:?} {epilogue:?} m {m}");
                        assert_eq!(out, expected, "{what}");
                        assert_eq!(next.values, expected_q.values, "{what}");
                        assert_eq!(next.scales, expected_q.scales, "{what}");
                        assert_eq!(next.zeros, expected_q.zeros, "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_fused_layer_refuses_buffers_too_small() {
        let layer = Linear::F32(Dense::new(vec![0.0; 6], vec![0.0; 2], 2, 3).unwrap());
        let mut out = vec![0f32; 3];
        let err = layer
            .forward_fused(
                Input::f32(&[0.0; 6]),
                2,
                &mut out,
                Epilogue::Gelu,
                None,
                &mut Scratch::default(),
                false,
            )
            .unwrap_err();
        assert!(err.contains("room for 4 outputs"), "{err}");
        let int8 = Linear::Int8(QLinear::new(&[0; 6], vec![1.0; 2], vec![0.0; 2], 2, 3).unwrap());
        let err = int8
            .forward(&[0.0; 3], 2, &mut [0.0; 4], &mut Scratch::default(), false)
            .unwrap_err();
        assert!(err.contains("needs 6 inputs"), "{err}");
    }

    #[test]
    fn the_fast_quantizer_gives_the_portable_ones_bytes() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for (m, k) in [
            (1, 1),
            (3, 15),
            (7, 16),
            (5, 17),
            (9, 64),
            (4, 250),
            (2, 256),
            (1, 300),
        ] {
            let mut x: Vec<f32> = (0..m * k).map(|_| rng.random_range(-3.0..5.0)).collect();
            // A row of zeros, a row of one sign, and values that are not finite.
            x[..k].fill(0.0);
            if m > 2 {
                for v in &mut x[k..2 * k] {
                    *v = v.abs() + 1.0;
                }
                x[2 * k] = f32::NAN;
                if k > 1 {
                    x[2 * k + 1] = f32::INFINITY;
                }
            }
            let (mut fast, mut portable) = (Quantized::default(), Quantized::default());
            quantize_activations(&x, m, k, &mut fast);
            quantize_activations_portable(&x, m, k, &mut portable);
            assert_eq!(fast.values, portable.values, "{m}×{k}");
            assert_eq!(fast.zeros, portable.zeros, "{m}×{k}");
            let bits = |q: &Quantized| q.scales.iter().map(|s| s.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fast), bits(&portable), "{m}×{k}");
        }
    }

    #[test]
    fn activations_keep_zero_exact_and_stay_within_half_a_step() {
        let x = [0.0, -1.0, 2.5, 0.3, 0.0, 0.0, 0.0, 0.0];
        let mut q = Quantized::default();
        quantize_activations(&x, 2, 4, &mut q);
        for (r, row) in x.chunks(4).enumerate() {
            for (i, v) in row.iter().enumerate() {
                let back = (i32::from(q.values[r * 4 + i]) - q.zeros[r]) as f32 * q.scales[r];
                assert!((back - v).abs() <= q.scales[r] / 2.0 + 1e-6, "{back} {v}");
                if *v == 0.0 {
                    assert_eq!(back, 0.0);
                }
            }
        }
    }
}
