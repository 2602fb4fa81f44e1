//! The linear layers of the inference engine: f32 (through `dense`), and int8 — weights signed
//! per output channel, activations unsigned per row quantized at run time, the zero point
//! corrected with the weights' precomputed column sums and the dequantization fused with the
//! bias: y[m, n] = sₐ[m] · s_w[n] · (Σₖ a[m, k] w[n, k] − zₐ[m] · Σₖ w[n, k]) + b[n].

use super::dense::{View, matmul};
use super::gemm::{PackedWeights, gemm, par_gemm};

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
    if !super::gemm::quantize_rows_fast(x, m, k, &mut out.values, &mut out.scales, &mut out.zeros) {
        quantize_activations_portable(x, m, k, out);
    }
}

/// [`quantize_activations`] in portable code (vectorized by the compiler).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
pub fn quantize_activations_portable(x: &[f32], m: usize, k: usize, out: &mut Quantized) {
    out.values.resize(m * k, 0);
    out.scales.resize(m, 0.0);
    out.zeros.resize(m, 0);
    for (((row, q), scale), zero) in x
        .chunks_exact(k)
        .zip(out.values.chunks_exact_mut(k))
        .zip(out.scales.iter_mut())
        .zip(out.zeros.iter_mut())
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
        let (n, k) = (self.weights.n(), self.weights.k());
        quantize_activations(x, m, k, &mut scratch.quantized);
        scratch.acc.resize(m * n, 0);
        if parallel {
            par_gemm(
                &scratch.quantized.values,
                m,
                &self.weights,
                &mut scratch.acc,
            )?;
        } else {
            gemm(
                &scratch.quantized.values,
                m,
                &self.weights,
                &mut scratch.acc,
            )?;
        }
        dequantize(
            &scratch.acc,
            &scratch.quantized,
            self.weights.col_sums(),
            &self.scales,
            &self.bias,
            n,
            out,
        );
        Ok(())
    }
}

/// The f32 outputs of the integer products: the zero point corrected with the column sums,
/// scaled by the row's and the channel's scales, plus the bias.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn dequantize(
    acc: &[i32],
    q: &Quantized,
    sums: &[i32],
    scales: &[f32],
    bias: &[f32],
    n: usize,
    out: &mut [f32],
) {
    for (((row, acc), &sa), &za) in out
        .chunks_exact_mut(n)
        .zip(acc.chunks_exact(n))
        .zip(&q.scales)
        .zip(&q.zeros)
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

    pub fn n(&self) -> usize {
        match self {
            Linear::F32(d) => d.n,
            Linear::Int8(q) => q.n(),
            Linear::CandleQ8(c) => c.n,
        }
    }

    pub fn forward(
        &self,
        x: &[f32],
        m: usize,
        out: &mut [f32],
        scratch: &mut Scratch,
        parallel: bool,
    ) -> Result<(), String> {
        match self {
            Linear::F32(d) => d.forward(x, m, out),
            Linear::Int8(q) => q.forward(x, m, out, scratch, parallel),
            Linear::CandleQ8(c) => c.forward(x, m, out),
        }
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
