//! Fused kernels for training on candle: GELU, softmax over the last dimension, layer norm, a
//! linear layer (`linear.rs`) and a bias alone, multi-head attention (`attention.rs`) and
//! dropout (`dropout.rs`), each a candle custom op **with its own backward**, its loops
//! compiled for AVX-512 and AVX2 beside the baseline. candle's fused softmax and layer norm have
//! no backward and silently stop gradients (only the layers after them train), and its composed
//! GELU and softmax are several times slower than PyTorch's (STACK_NOTES.md). Each forward here
//! is one pass over the rows; each backward is one fused op of its own (recorded by nobody: the
//! gradient of a gradient is not needed). The tests hold forward and backward equal to the
//! unfused composition of candle's differentiable ops.
//!
//! f32 on the CPU; other dtypes and devices get a clear error naming the op (a CUDA build runs
//! the unfused composition: [`Kernels::Composed`]).

use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, D, DType, Error, Layout, Result, Shape, Tensor,
    bail,
};
use rayon::prelude::*;

mod attention;
mod dropout;
mod linear;
// Intrinsics: `unsafe` by the language, each use's bounds argued beside it.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod rows_x86;
pub use attention::{AttentionDropout, attention};
pub use dropout::{dropout, dropout_kept};
pub use linear::linear;

/// Which implementation a model's layers use: the fused kernels (CPU, f32) or candle's
/// differentiable composition (any device and dtype; the reference the kernels are checked
/// against).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kernels {
    #[default]
    Fused,
    Composed,
}

impl Kernels {
    /// The fused kernels where they run (f32 on the CPU), else the composition.
    pub fn for_tensor(x: &Tensor) -> Kernels {
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            Kernels::Fused
        } else {
            Kernels::Composed
        }
    }

    pub fn gelu(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused => gelu(x),
            Kernels::Composed => x.gelu_erf(),
        }
    }

    pub fn softmax_last_dim(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused => softmax_last_dim(x),
            Kernels::Composed => candle_nn::ops::softmax(x, D::Minus1),
        }
    }

    /// `x · weightᵀ + bias` over rows `x` (`[rows, in]`, contiguous).
    pub fn linear(self, x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused => linear(x, weight, bias),
            Kernels::Composed => x.matmul(&weight.t()?)?.broadcast_add(bias),
        }
    }

    pub fn add_bias(self, x: &Tensor, bias: &Tensor) -> Result<Tensor> {
        match self {
            Kernels::Fused => add_bias(x, bias),
            Kernels::Composed => x.broadcast_add(bias),
        }
    }

    pub fn layer_norm(
        self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f64,
    ) -> Result<Tensor> {
        match self {
            Kernels::Fused => layer_norm(x, weight, bias, eps),
            Kernels::Composed => layer_norm_composed(x, weight, bias, eps),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading and writing storage

/// The f32 elements a contiguous layout covers.
fn f32s<'a>(op: &str, storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else {
        let dtype = candle_core::backend::BackendStorage::dtype(storage);
        bail!("{op}: the fused kernel takes f32, not {dtype:?}");
    };
    let Some((start, end)) = layout.contiguous_offsets() else {
        bail!("{op}: the input has to be contiguous");
    };
    data.get(start..end)
        .ok_or_else(|| Error::Msg(format!("{op}: the layout lies outside its storage")))
}

/// The length of the last dimension (the rows' width) of a non-empty shape.
fn row_width(op: &str, shape: &Shape) -> Result<usize> {
    match shape.dims().last() {
        Some(&w) if w > 0 => Ok(w),
        _ => bail!("{op}: the input needs a last dimension of at least one element, got {shape:?}"),
    }
}

fn same_shape(op: &str, a: &Layout, b: &Layout) -> Result<()> {
    if a.shape() != b.shape() {
        bail!("{op}: shapes {:?} and {:?} differ", a.shape(), b.shape());
    }
    Ok(())
}

/// An op of two f32 inputs of one shape, computed over their rows in parallel: `f(out, a, b)`
/// for each row (the last dimension), or for each `chunk` of elements when the op is
/// elementwise.
fn pairwise(
    op: &str,
    (s1, l1): (&CpuStorage, &Layout),
    (s2, l2): (&CpuStorage, &Layout),
    chunk: Option<usize>,
    f: impl Fn(&mut [f32], &[f32], &[f32]) + Sync,
) -> Result<(CpuStorage, Shape)> {
    same_shape(op, l1, l2)?;
    let a = f32s(op, s1, l1)?;
    let b = f32s(op, s2, l2)?;
    let width = match chunk {
        Some(c) => c,
        None => row_width(op, l1.shape())?,
    };
    let mut out = vec![0f32; a.len()];
    out.par_chunks_mut(width)
        .zip(a.par_chunks(width).zip(b.par_chunks(width)))
        .for_each(|(out, (a, b))| f(out, a, b));
    Ok(output(out, l1.shape()))
}

fn output(values: Vec<f32>, shape: &Shape) -> (CpuStorage, Shape) {
    (CpuStorage::F32(values), shape.clone())
}

// ---------------------------------------------------------------------------------------------
// The same functions on plain rows, for inference outside candle's graph (`quant::encoder`):
// each runs a whole block of rows in one call compiled for AVX-512 and AVX2 beside the baseline
// (chosen at run time), with reductions over 16 independent lanes so they vectorize.

/// The lanes of the row reductions below.
const LANES: usize = 16;

/// `[LANES]` folded to one value by halves (a tree the compiler keeps in vector registers).
#[inline(always)]
fn fold_lanes(a: [f32; LANES], f: impl Fn(f32, f32) -> f32) -> f32 {
    let b: [f32; 8] = std::array::from_fn(|i| f(a[i], a[i + 8]));
    let c: [f32; 4] = std::array::from_fn(|i| f(b[i], b[i + 4]));
    f(f(c[0], c[2]), f(c[1], c[3]))
}

#[inline(always)]
pub(crate) fn max2(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

#[inline(always)]
fn min2(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// The maximum of a row, over [`LANES`] lanes (comparisons, not `f32::max`, whose NaN rule
/// keeps the compiler from vectorizing the reduction).
#[inline(always)]
fn row_max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = max2(*a, v);
        }
    }
    rest.iter().fold(fold_lanes(acc, max2), |m, &v| max2(m, v))
}

#[inline(always)]
fn row_sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    fold_lanes(acc, |a, b| a + b) + rest.iter().sum::<f32>()
}

/// A row's mean and 1 / standard deviation, over [`LANES`] lanes.
#[inline(always)]
fn moments(x: &[f32], eps: f32) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = row_sum(x) / n;
    let mut acc = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += (v - mean) * (v - mean);
        }
    }
    let squares =
        fold_lanes(acc, |a, b| a + b) + rest.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>();
    (mean, 1.0 / (squares / n + eps).sqrt())
}

/// Σ a ⊙ b over [`LANES`] lanes.
#[inline(always)]
fn row_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let rest: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (ca, cb) in ca.zip(cb) {
        for ((s, &a), &b) in acc.iter_mut().zip(ca).zip(cb) {
            *s += a * b;
        }
    }
    fold_lanes(acc, |a, b| a + b) + rest
}

/// e^x for x ≤ 0 (softmax's shifted scores): [`exp`] without its upper clamp and its branch;
/// below −87 it gives about 1e−38 rather than 0, nothing beside the row's maximum of 1.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    let x = max2(x, -87.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let mut p = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    // n as a whole number read from the shifted float's low bits (a float-to-int cast would
    // saturate, one element at a time): 2^n built in the exponent bits.
    let whole = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    p * f32::from_bits(((whole + 127) as u32) << 23)
}

/// 1.5 × 2^23: adding it rounds a float of magnitude below 2^22 to a whole number, held in the
/// sum's low mantissa bits.
pub const ROUND: f32 = 12_582_912.0;

/// `x` rounded to the nearest whole number, as an integer (|x| < 2^22), with no float-to-int
/// cast, so loops over it vectorize.
#[inline(always)]
pub fn round_to_int(x: f32) -> i32 {
    (x + ROUND).to_bits().wrapping_sub(ROUND.to_bits()) as i32
}

/// The exact GELU of every element, in place.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
pub fn gelu_in_place(x: &mut [f32]) {
    for x in x.iter_mut() {
        *x = 0.5 * *x * (1.0 + erf(*x * FRAC_1_SQRT_2));
    }
}

/// Softmax's numerators of each row of `width` values of `x`, each value first multiplied by
/// `scale` (attention's 1 / √d), in place: e^(v·scale − max), the row's maximum subtracted
/// first, their sum in `sums` (one a row). The caller divides, where it is cheapest: attention
/// divides its few outputs a row, not the row's `width` weights.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
pub fn softmax_numerators(x: &mut [f32], width: usize, scale: f32, sums: &mut [f32]) {
    for (row, sum) in x.chunks_exact_mut(width.max(1)).zip(sums.iter_mut()) {
        let max = row_max(row) * scale;
        // The exponentials and their sum in one pass, the sum over lanes.
        let mut acc = [0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (a, v) in acc.iter_mut().zip(c.iter_mut()) {
                *v = exp_nonpositive(*v * scale - max);
                *a += *v;
            }
        }
        let mut total = fold_lanes(acc, |a, b| a + b);
        for v in chunks.into_remainder() {
            *v = exp_nonpositive(*v * scale - max);
            total += *v;
        }
        *sum = total;
    }
}

/// `x + residual`, then layer norm, of each row of the weight's width, in place: by hand on
/// AVX-512 (`rows_x86`, the same bits), else the loop below.
pub fn add_layer_norm_rows(
    x: &mut [f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    #[cfg(target_arch = "x86_64")]
    if rows_x86::add_layer_norm_rows(x, residual, weight, bias, eps).is_some() {
        return;
    }
    add_layer_norm_rows_portable(x, residual, weight, bias, eps);
}

/// [`add_layer_norm_rows`]'s loop, for any CPU.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
pub fn add_layer_norm_rows_portable(
    x: &mut [f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    let width = weight.len().max(1);
    for (r, row) in x.chunks_exact_mut(width).enumerate() {
        if let Some(res) = residual.and_then(|res| res.get(r * width..(r + 1) * width)) {
            for (a, &b) in row.iter_mut().zip(res) {
                *a += b;
            }
        }
        let (mean, rstd) = moments(row, eps);
        for ((v, &w), &b) in row.iter_mut().zip(weight).zip(bias) {
            *v = (*v - mean) * rstd * w + b;
        }
    }
}

/// The minimum and maximum of a row and 0 (comparisons over [`LANES`] lanes), for quantization.
#[inline(always)]
pub fn row_range(x: &[f32]) -> (f32, f32) {
    let mut lo = [0f32; LANES];
    let mut hi = [0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        let c: &[f32; LANES] = c.try_into().unwrap_or(&[0.0; LANES]);
        for i in 0..LANES {
            lo[i] = min2(lo[i], c[i]);
            hi[i] = max2(hi[i], c[i]);
        }
    }
    let (mut a, mut b) = (fold_lanes(lo, min2), fold_lanes(hi, max2));
    for &v in rest {
        a = min2(a, v);
        b = max2(b, v);
    }
    (a, b)
}

// ---------------------------------------------------------------------------------------------
// GELU

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// erf for f32 as a rational function of x² on [-3.83, 3.83] (beyond it erf is ±1 in f32):
/// Eigen's `generic_fast_erf_float`, a few ULP from the exact value, with no branch and no
/// call, so the loops over it vectorize (libm's `erff` took 7.8 ns an element). Its Horner
/// steps are fused multiply-adds: one instruction each in the AVX2 and AVX-512 clones every
/// caller is compiled to (a call only in the baseline x86-64 clone, for CPUs without FMA), and
/// one rounding instead of two.
#[inline(always)]
fn erf(x: f32) -> f32 {
    const ALPHA: [f32; 7] = [
        -2.726_142_3e-10,
        2.770_681_4e-8,
        -2.101_024e-6,
        -5.692_506_4e-5,
        -7.349_906_3e-4,
        -2.954_6e-3,
        -1.609_603_3e-2,
    ];
    const BETA: [f32; 5] = [
        -1.456_607_2e-5,
        -2.133_740_6e-4,
        -1.682_827e-3,
        -7.373_329_3e-3,
        -1.426_474e-2,
    ];
    let x = x.clamp(-3.832_507, 3.832_507);
    let x2 = x * x;
    let mut p = ALPHA[0];
    for a in &ALPHA[1..] {
        p = p.mul_add(x2, *a);
    }
    let mut q = BETA[0];
    for b in &BETA[1..] {
        q = q.mul_add(x2, *b);
    }
    x * p / q
}

/// e^x for f32 by range reduction (x = n ln 2 + r, |r| ≤ ln 2 / 2) and a degree-6 polynomial
/// for e^r, scaled by 2^n through the exponent bits: within 2 ULP of `f32::exp` on the range
/// softmax and the GELU's density use, with no call, so the loops over it vectorize.
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Below -87.3 the result is under f32's smallest normal number: flushed to 0.
    let x = x.clamp(-87.3, 88.7);
    // Rounded to the nearest whole number by adding and removing 1.5 × 2^23 (no call to
    // `roundf`, which this target has no instruction for).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    // ln 2 in two parts, so r keeps its precision.
    let r = x - n * 0.693_145_75 - n * 1.428_606_8e-6;
    let mut p = 1.0 / 720.0;
    for c in [1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + c;
    }
    let scale = f32::from_bits(((n as i32 + 127).clamp(0, 255) as u32) << 23);
    if x <= -87.3 { 0.0 } else { p * scale }
}

/// The exact GELU, x Φ(x) with Φ the normal distribution function (`erf`), as BERT uses it.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Gelu)
}

struct Gelu;

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "gelu"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s("gelu", storage, layout)?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(4096)
            .zip(x.par_chunks(4096))
            .for_each(|(y, x)| gelu_rows(y, x));
        Ok(output(y, layout.shape()))
    }

    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = arg.apply_op2_no_bwd(&grad_res.contiguous()?, &GeluBackward)?;
        Ok(Some(grad))
    }
}

/// `y = GELU(x)`, element by element.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn gelu_rows(y: &mut [f32], x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y = 0.5 * x * (1.0 + erf(x * FRAC_1_SQRT_2));
    }
}

/// `out = g · d/dx GELU(x)`, element by element.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn gelu_backward_rows(out: &mut [f32], x: &[f32], g: &[f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
        let cdf = 0.5 * (1.0 + erf(x * FRAC_1_SQRT_2));
        let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
        *o = g * (cdf + x * pdf);
    }
}

/// d/dx x Φ(x) = Φ(x) + x φ(x), times the incoming gradient.
struct GeluBackward;

impl CustomOp2 for GeluBackward {
    fn name(&self) -> &'static str {
        "gelu-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // Elementwise: any chunk of the elements is a "row".
        pairwise(
            "gelu-backward",
            (s1, l1),
            (s2, l2),
            Some(4096),
            gelu_backward_rows,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax over the last dimension

/// Softmax over the last dimension, numerically stable (the row's maximum is subtracted).
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(Softmax)
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32s("softmax", storage, layout)?;
        let width = row_width("softmax", layout.shape())?;
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(width)
            .zip(x.par_chunks(width))
            .for_each(|(y, x)| {
                y.copy_from_slice(x);
                softmax_in_place(y);
            });
        Ok(output(y, layout.shape()))
    }

    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad_res: &Tensor) -> Result<Option<Tensor>> {
        let grad = res.apply_op2_no_bwd(&grad_res.contiguous()?, &SoftmaxBackward)?;
        Ok(Some(grad))
    }
}

/// dx = y ⊙ (g − Σ g ⊙ y) per row, from the softmax's result y and the incoming gradient g.
struct SoftmaxBackward;

impl CustomOp2 for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        pairwise("softmax-backward", (s1, l1), (s2, l2), None, |out, y, g| {
            out.copy_from_slice(g);
            softmax_backward_in_place(out, y, 1.0);
        })
    }
}

/// A row's softmax, in place: numerically stable (the row's maximum is subtracted).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn softmax_in_place(row: &mut [f32]) {
    let max = row_max(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / row_sum(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// The gradient through a row's softmax, in place of the incoming gradient `g`: `scale · y ⊙
/// (g − Σ g ⊙ y)`, from the softmax's result `y`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn softmax_backward_in_place(g: &mut [f32], y: &[f32], scale: f32) {
    let dot = row_dot(g, y);
    for (g, &y) in g.iter_mut().zip(y) {
        *g = y * (*g - dot) * scale;
    }
}

// ---------------------------------------------------------------------------------------------
// Bias

/// `x + bias`, the bias added to each row (the last dimension). Its backward sums the incoming
/// gradient's rows in one pass for the bias: candle's broadcast backward reduces over the leading
/// dimensions with a strided walk, which took 9 % of a training step of a 2 × 128 encoder.
pub fn add_bias(x: &Tensor, bias: &Tensor) -> Result<Tensor> {
    let width = x.dim(D::Minus1)?;
    if bias.dims() != [width] {
        bail!(
            "add-bias: the bias has shape {:?}; the input's rows have {width} elements",
            bias.dims()
        );
    }
    x.contiguous()?.apply_op2(&bias.contiguous()?, AddBias)
}

/// Rows per block when rows are summed in parallel: enough work per block to pay for the task.
fn rows_per_block(width: usize) -> usize {
    (65_536 / width).max(1)
}

struct AddBias;

impl CustomOp2 for AddBias {
    fn name(&self) -> &'static str {
        "add-bias"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = f32s("add-bias", s1, l1)?;
        let bias = f32s("add-bias", s2, l2)?;
        let width = row_width("add-bias", l1.shape())?;
        if bias.len() != width {
            bail!("add-bias: a bias of {} for rows of {width}", bias.len());
        }
        let block = width * rows_per_block(width);
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut(block)
            .zip(x.par_chunks(block))
            .for_each(|(y, x)| add_bias_rows(y, x, bias));
        Ok(output(y, l1.shape()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = grad_res.contiguous()?;
        let dbias = g.apply_op1_no_bwd(&ColumnSums)?;
        Ok((Some(g), Some(dbias)))
    }
}

/// `y = x + bias`, row by row (rows of the bias's width).
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn add_bias_rows(y: &mut [f32], x: &[f32], bias: &[f32]) {
    for (y, x) in y
        .chunks_mut(bias.len().max(1))
        .zip(x.chunks(bias.len().max(1)))
    {
        for ((y, &x), &b) in y.iter_mut().zip(x).zip(bias) {
            *y = x + b;
        }
    }
}

/// Each column's sum over a block of rows of `width`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn column_sums(g: &[f32], width: usize) -> Vec<f32> {
    let mut sums = vec![0f32; width];
    for row in g.chunks(width.max(1)) {
        for (s, &v) in sums.iter_mut().zip(row) {
            *s += v;
        }
    }
    sums
}

/// The sum of a tensor's rows: `[..., width]` → `[width]`.
pub(crate) struct ColumnSums;

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "column-sums"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = f32s("column-sums", storage, layout)?;
        let width = row_width("column-sums", layout.shape())?;
        let partial: Vec<Vec<f32>> = g
            .par_chunks(width * rows_per_block(width))
            .map(|g| column_sums(g, width))
            .collect();
        let mut sums = vec![0f32; width];
        for p in partial {
            for (s, p) in sums.iter_mut().zip(p) {
                *s += p;
            }
        }
        Ok(output(sums, &Shape::from_dims(&[width])))
    }
}

// ---------------------------------------------------------------------------------------------
// Layer norm

/// Layer norm over the last dimension with a learned scale and shift, as BERT uses it:
/// `(x − mean) / sqrt(var + eps) * weight + bias`, the variance without Bessel's correction.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let width = x.dim(D::Minus1)?;
    for (name, t) in [("weight", weight), ("bias", bias)] {
        if t.dims() != [width] {
            bail!(
                "layer-norm: the {name} has shape {:?}; the input's rows have {width} elements",
                t.dims()
            );
        }
    }
    x.contiguous()?.apply_op3(
        &weight.contiguous()?,
        &bias.contiguous()?,
        LayerNorm { eps: eps as f32 },
    )
}

/// The same layer norm composed of candle's differentiable ops (the reference, and the path on
/// devices the fused kernel does not run on).
pub fn layer_norm_composed(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
    centered
        .broadcast_div(&(var + eps)?.sqrt()?)?
        .broadcast_mul(weight)?
        .broadcast_add(bias)
}

struct LayerNorm {
    eps: f32,
}

/// Layer norm of each row of `x` (rows of the weight's width) into `y`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn layer_norm_rows(y: &mut [f32], x: &[f32], w: &[f32], b: &[f32], eps: f32) {
    let width = w.len().max(1);
    for (y, x) in y.chunks_mut(width).zip(x.chunks(width)) {
        let (mean, rstd) = moments(x, eps);
        for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
            *y = (x - mean) * rstd * w + b;
        }
    }
}

/// The input's gradient of each row's layer norm (rows of the weight's width), into `out`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn layer_norm_input_backward_rows(out: &mut [f32], x: &[f32], g: &[f32], w: &[f32], eps: f32) {
    let width = w.len().max(1);
    let n = width as f32;
    for ((out, x), g) in out
        .chunks_mut(width)
        .zip(x.chunks(width))
        .zip(g.chunks(width))
    {
        let (mean, rstd) = moments(x, eps);
        // Σ g ⊙ w and Σ g ⊙ w ⊙ x̂ over [`LANES`] lanes.
        let (mut sum_g, mut sum_gx) = ([0f32; LANES], [0f32; LANES]);
        let (cx, cg, cw) = (
            x.chunks_exact(LANES),
            g.chunks_exact(LANES),
            w.chunks_exact(LANES),
        );
        let (mut rest_g, mut rest_gx) = (0f32, 0f32);
        for ((&x, &g), &w) in cx
            .remainder()
            .iter()
            .zip(cg.remainder())
            .zip(cw.remainder())
        {
            rest_g += g * w;
            rest_gx += g * w * (x - mean) * rstd;
        }
        for ((cx, cg), cw) in cx.zip(cg).zip(cw) {
            for i in 0..LANES {
                let gw = cg[i] * cw[i];
                sum_g[i] += gw;
                sum_gx[i] += gw * (cx[i] - mean) * rstd;
            }
        }
        let add = |a: f32, b: f32| a + b;
        let mean_g = (fold_lanes(sum_g, add) + rest_g) / n;
        let mean_gx = (fold_lanes(sum_gx, add) + rest_gx) / n;
        for (((o, &x), &g), &w) in out.iter_mut().zip(x).zip(g).zip(w) {
            let xhat = (x - mean) * rstd;
            *o = rstd * (g * w - mean_g - xhat * mean_gx);
        }
    }
}

/// Σ g ⊙ x̂ and Σ g over a block of rows of `width`, as `[2 × width]`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn layer_norm_param_sums(x: &[f32], g: &[f32], width: usize, eps: f32) -> Vec<f32> {
    let mut sums = vec![0f32; 2 * width];
    for (x, g) in x.chunks(width.max(1)).zip(g.chunks(width.max(1))) {
        let (mean, rstd) = moments(x, eps);
        let (dw, db) = sums.split_at_mut(width);
        for (((dw, db), &x), &g) in dw.iter_mut().zip(db.iter_mut()).zip(x).zip(g) {
            *dw += g * (x - mean) * rstd;
            *db += g;
        }
    }
    sums
}

impl CustomOp3 for LayerNorm {
    fn name(&self) -> &'static str {
        "layer-norm"
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
        let x = f32s("layer-norm", s1, l1)?;
        let w = f32s("layer-norm", s2, l2)?;
        let b = f32s("layer-norm", s3, l3)?;
        let width = row_width("layer-norm", l1.shape())?;
        let eps = self.eps;
        let mut y = vec![0f32; x.len()];
        let block = width * rows_per_block(width);
        y.par_chunks_mut(block)
            .zip(x.par_chunks(block))
            .for_each(|(y, x)| layer_norm_rows(y, x, w, b, eps));
        Ok(output(y, l1.shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        weight: &Tensor,
        _bias: &Tensor,
        _res: &Tensor,
        grad_res: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = grad_res.contiguous()?;
        let eps = self.eps;
        let dx = x.apply_op3_no_bwd(weight, &g, &LayerNormInputBackward { eps })?;
        let sums = x.apply_op2_no_bwd(&g, &LayerNormParamBackward { eps })?;
        let dw = sums.get(0)?;
        let db = sums.get(1)?;
        Ok((Some(dx), Some(dw), Some(db)))
    }
}

/// dx = rstd · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)) with ĝ = g ⊙ weight, per row.
struct LayerNormInputBackward {
    eps: f32,
}

impl CustomOp3 for LayerNormInputBackward {
    fn name(&self) -> &'static str {
        "layer-norm-input-backward"
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
        same_shape("layer-norm-input-backward", l1, l3)?;
        let x = f32s("layer-norm-input-backward", s1, l1)?;
        let w = f32s("layer-norm-input-backward", s2, l2)?;
        let g = f32s("layer-norm-input-backward", s3, l3)?;
        let width = row_width("layer-norm-input-backward", l1.shape())?;
        let eps = self.eps;
        let mut out = vec![0f32; x.len()];
        let block = width * rows_per_block(width);
        out.par_chunks_mut(block)
            .zip(x.par_chunks(block).zip(g.par_chunks(block)))
            .for_each(|(out, (x, g))| layer_norm_input_backward_rows(out, x, g, w, eps));
        Ok(output(out, l1.shape()))
    }
}

/// The weight's and the bias's gradients, summed over the rows: a `[2, width]` tensor of
/// Σ g ⊙ x̂ and Σ g.
struct LayerNormParamBackward {
    eps: f32,
}

impl CustomOp2 for LayerNormParamBackward {
    fn name(&self) -> &'static str {
        "layer-norm-param-backward"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        same_shape("layer-norm-param-backward", l1, l2)?;
        let x = f32s("layer-norm-param-backward", s1, l1)?;
        let g = f32s("layer-norm-param-backward", s2, l2)?;
        let width = row_width("layer-norm-param-backward", l1.shape())?;
        let eps = self.eps;
        // Per block of rows, then summed: the rows run in parallel, each block keeps its sums.
        let rows_per_block = rows_per_block(width);
        let partial: Vec<Vec<f32>> = x
            .par_chunks(width * rows_per_block)
            .zip(g.par_chunks(width * rows_per_block))
            .map(|(x, g)| layer_norm_param_sums(x, g, width, eps))
            .collect();
        let mut sums = vec![0f32; 2 * width];
        for p in partial {
            for (s, p) in sums.iter_mut().zip(p) {
                *s += p;
            }
        }
        Ok(output(sums, &Shape::from_dims(&[2, width])))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random tensor of `dims`, values in [-scale, scale].
    fn random(rng: &mut ChaCha8Rng, dims: &[usize], scale: f32) -> Tensor {
        let n: usize = dims.iter().product();
        let data: Vec<f32> = (0..n).map(|_| rng.random_range(-scale..=scale)).collect();
        Tensor::from_vec(data, dims, &Device::Cpu).unwrap()
    }

    /// The largest |a − b| / max(|b|, 1) over the elements: relative where values are large,
    /// absolute where they are near zero.
    fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        a.iter()
            .zip(&b)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
            .fold(0.0, f32::max)
    }

    /// Random shapes with odd sizes: 1 to 3 leading dimensions and a last one of 1 to 70.
    fn shapes(rng: &mut ChaCha8Rng) -> Vec<Vec<usize>> {
        (0..24)
            .map(|_| {
                let lead = rng.random_range(1..=3);
                let mut dims: Vec<usize> = (0..lead).map(|_| rng.random_range(1..=7)).collect();
                dims.push(rng.random_range(1..=70));
                dims
            })
            .collect()
    }

    /// Forward and backward of a fused op against the composition: the loss is a random
    /// weighting of the output, so every output element's gradient differs.
    fn agree(
        name: &str,
        inputs: &[Tensor],
        fused: impl Fn(&[Tensor]) -> Result<Tensor>,
        composed: impl Fn(&[Tensor]) -> Result<Tensor>,
        rng: &mut ChaCha8Rng,
    ) {
        let vars: Vec<Var> = inputs
            .iter()
            .map(|t| Var::from_tensor(t).unwrap())
            .collect();
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (a, b) = (fused(&tensors).unwrap(), composed(&tensors).unwrap());
        let err = relative_error(&a, &b);
        assert!(err <= 1e-4, "{name} forward {:?}: {err}", inputs[0].dims());
        let weights = random(rng, a.dims(), 1.0);
        let ga = (a * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = (b * &weights)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        for (i, v) in vars.iter().enumerate() {
            let (da, db) = (ga.get(v).unwrap(), gb.get(v).unwrap());
            let err = relative_error(da, db);
            assert!(
                err <= 1e-4,
                "{name} backward of input {i} {:?}: {err}",
                v.dims()
            );
        }
    }

    /// The AVX-512 add-and-norm gives the portable loop's bits: widths with and without a tail,
    /// row counts around its blocks of four, with a residual, without, and with one too short
    /// for some rows (those rows are normalized without it).
    #[test]
    fn the_hand_written_layer_norm_gives_the_portable_ones_bits() {
        #[cfg(target_arch = "x86_64")]
        if !rows_x86::available() {
            eprintln!("skipped: this CPU has no AVX-512 F");
            return;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for width in [1usize, 7, 15, 16, 17, 64, 100, 384] {
            for rows in [1, 3, 4, 5, 9] {
                let x: Vec<f32> = (0..rows * width)
                    .map(|_| rng.random_range(-3.0..5.0))
                    .collect();
                let res: Vec<f32> = (0..rows * width)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                let w: Vec<f32> = (0..width).map(|_| rng.random_range(0.5..1.5)).collect();
                let b: Vec<f32> = (0..width).map(|_| rng.random_range(-0.5..0.5)).collect();
                let short = &res[..(rows * width).saturating_sub(width + 1)];
                for residual in [None, Some(&res[..]), Some(short)] {
                    let (mut fast, mut portable) = (x.clone(), x.clone());
                    add_layer_norm_rows(&mut fast, residual, &w, &b, 1e-12);
                    add_layer_norm_rows_portable(&mut portable, residual, &w, &b, 1e-12);
                    let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&fast),
                        bits(&portable),
                        "{rows} × {width}, residual {:?}",
                        residual.map(<[f32]>::len)
                    );
                }
            }
        }
    }

    #[test]
    fn the_fast_erf_is_within_a_few_ulp_of_libm() {
        let mut worst = 0f32;
        for i in -100_000..=100_000 {
            let x = i as f32 * 6e-5;
            let (a, b) = (erf(x), libm::erff(x));
            worst = worst.max((a - b).abs() / b.abs().max(1e-30));
        }
        assert!(worst < 5e-7, "{worst}");
        assert!((erf(10.0) - 1.0).abs() <= 3e-7 && (erf(-10.0) + 1.0).abs() <= 3e-7);
    }

    /// Numerators over their sum give softmax (f64 reference), at widths around the lanes, with
    /// a row of very negative scores whose maximum still counts.
    #[test]
    fn softmax_numerators_over_their_sum_are_softmax() {
        let mut rng = ChaCha8Rng::seed_from_u64(21);
        for width in [1, 3, 15, 16, 17, 33, 96, 100] {
            let rows = 4;
            let mut x: Vec<f32> = (0..rows * width)
                .map(|_| rng.random_range(-30.0..30.0))
                .collect();
            for v in &mut x[..width] {
                *v -= 500.0;
            }
            let scale = 0.25;
            let before = x.clone();
            let mut sums = vec![0f32; rows];
            softmax_numerators(&mut x, width, scale, &mut sums);
            for r in 0..rows {
                let row = &before[r * width..(r + 1) * width];
                let max = row.iter().fold(f64::MIN, |m, &v| m.max(f64::from(v)));
                let e: Vec<f64> = row
                    .iter()
                    .map(|&v| ((f64::from(v) - max) * f64::from(scale)).exp())
                    .collect();
                let total: f64 = e.iter().sum();
                for (i, e) in e.iter().enumerate() {
                    let got = f64::from(x[r * width + i] / sums[r]);
                    assert!((got - e / total).abs() < 1e-6, "{width} {r} {i}: {got}");
                }
            }
        }
    }

    #[test]
    fn the_fast_exp_is_within_a_few_ulp_of_std() {
        let mut worst = 0f32;
        for i in -870_000..=880_000 {
            let x = i as f32 * 1e-4;
            let (a, b) = (exp(x), x.exp());
            worst = worst.max((a - b).abs() / b);
        }
        assert!(worst < 4e-7, "{worst}");
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn gelu_agrees_with_the_composition_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for dims in shapes(&mut rng) {
            let x = random(&mut rng, &dims, 6.0);
            agree("gelu", &[x], |t| gelu(&t[0]), |t| t[0].gelu_erf(), &mut rng);
        }
    }

    #[test]
    fn softmax_agrees_with_the_composition_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for dims in shapes(&mut rng) {
            let x = random(&mut rng, &dims, 8.0);
            agree(
                "softmax",
                &[x],
                |t| softmax_last_dim(&t[0]),
                |t| candle_nn::ops::softmax(&t[0], D::Minus1),
                &mut rng,
            );
        }
    }

    #[test]
    fn layer_norm_agrees_with_the_composition_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for dims in shapes(&mut rng) {
            let width = *dims.last().unwrap();
            let x = random(&mut rng, &dims, 3.0);
            let w = random(&mut rng, &[width], 2.0);
            let b = random(&mut rng, &[width], 1.0);
            agree(
                "layer norm",
                &[x, w, b],
                |t| layer_norm(&t[0], &t[1], &t[2], 1e-12),
                |t| layer_norm_composed(&t[0], &t[1], &t[2], 1e-12),
                &mut rng,
            );
        }
    }

    /// Random shapes, and one of more rows than a block sums (the partial sums are added).
    #[test]
    fn add_bias_agrees_with_the_composition_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut all = shapes(&mut rng);
        all.push(vec![3, 700, 33]);
        for dims in all {
            let width = *dims.last().unwrap();
            let x = random(&mut rng, &dims, 3.0);
            let b = random(&mut rng, &[width], 1.0);
            agree(
                "add bias",
                &[x, b],
                |t| add_bias(&t[0], &t[1]),
                |t| t[0].broadcast_add(&t[1]),
                &mut rng,
            );
        }
    }

    /// Attention composed of candle's ops: heads split by transposing, scores scaled and masked,
    /// softmax, the weights times `kept` (`[batch, heads, len, len]`) where given, the values'
    /// product, heads joined.
    fn attention_composed(
        t: &[Tensor],
        mask: &Tensor,
        heads: usize,
        kept: Option<&Tensor>,
    ) -> Result<Tensor> {
        let (b, len, width) = t[0].dims3()?;
        let hs = width / heads;
        let split = |x: &Tensor| -> Result<Tensor> {
            x.reshape((b, len, heads, hs))?
                .transpose(1, 2)?
                .contiguous()
        };
        let (q, k, v) = (split(&t[0])?, split(&t[1])?, split(&t[2])?);
        let scores = (q.matmul(&k.t()?)? / (hs as f64).sqrt())?
            .broadcast_add(&mask.reshape((b, 1, 1, len))?)?;
        let mut weights = candle_nn::ops::softmax(&scores, D::Minus1)?;
        if let Some(kept) = kept {
            weights = (weights * kept)?;
        }
        weights
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b, len, width))
    }

    /// Random attention shapes (batch, len, heads, head size) with odd sizes, one larger, and a
    /// mask that pads the end of some sequences (each keeps at least one token).
    fn attention_cases(rng: &mut ChaCha8Rng) -> Vec<(Vec<usize>, Tensor)> {
        let mut dims: Vec<Vec<usize>> = (0..16)
            .map(|_| {
                vec![
                    rng.random_range(1..=3),
                    rng.random_range(1..=9),
                    rng.random_range(1..=3),
                    rng.random_range(1..=8),
                ]
            })
            .collect();
        dims.push(vec![2, 37, 2, 16]);
        dims.into_iter()
            .map(|d| {
                let (b, len) = (d[0], d[1]);
                let mut mask = vec![0f32; b * len];
                for row in mask.chunks_mut(len) {
                    let tokens = rng.random_range(1..=len);
                    row[tokens..].fill(-1e4);
                }
                (d, Tensor::from_vec(mask, (b, len), &Device::Cpu).unwrap())
            })
            .collect()
    }

    #[test]
    fn attention_agrees_with_the_composition_forward_and_backward() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for (d, mask) in attention_cases(&mut rng) {
            let (b, len, heads, hs) = (d[0], d[1], d[2], d[3]);
            let inputs: Vec<Tensor> = (0..3)
                .map(|_| random(&mut rng, &[b, len, heads * hs], 2.0))
                .collect();
            agree(
                "attention",
                &inputs,
                |t| attention(&t[0], &t[1], &t[2], &mask, heads, None),
                |t| attention_composed(t, &mask, heads, None),
                &mut rng,
            );
            // The same sequences as rows, `[batch × len, width]`, as the encoder passes them.
            let (rows, width) = (b * len, heads * hs);
            let as_rows: Vec<Tensor> = inputs
                .iter()
                .map(|x| x.reshape((rows, width)).unwrap())
                .collect();
            agree(
                "attention on rows",
                &as_rows,
                |t| attention(&t[0], &t[1], &t[2], &mask, heads, None),
                |t| {
                    let t: Vec<Tensor> = t
                        .iter()
                        .map(|x| x.reshape((b, len, width)))
                        .collect::<Result<_>>()?;
                    attention_composed(&t, &mask, heads, None)?.reshape((rows, width))
                },
                &mut rng,
            );
        }
    }

    /// With dropout, the fused op drops the weights `dropout_kept` names (one stream per
    /// sequence and head) and scales the rest: the composition given that mask agrees.
    #[test]
    fn attention_with_dropout_agrees_with_the_composition_given_its_mask() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let p = 0.3f32;
        for (d, mask) in attention_cases(&mut rng) {
            let (b, len, heads, hs) = (d[0], d[1], d[2], d[3]);
            let seed = rng.random::<u64>();
            let kept: Vec<f32> = (0..b * heads)
                .flat_map(|stream| dropout_kept(seed, stream as u64, len * len, p))
                .map(|keep| if keep { 1.0 / (1.0 - p) } else { 0.0 })
                .collect();
            let kept = Tensor::from_vec(kept, (b, heads, len, len), &Device::Cpu).unwrap();
            let inputs: Vec<Tensor> = (0..3)
                .map(|_| random(&mut rng, &[b, len, heads * hs], 2.0))
                .collect();
            let dropout = Some(AttentionDropout { p, seed });
            agree(
                "attention with dropout",
                &inputs,
                |t| attention(&t[0], &t[1], &t[2], &mask, heads, dropout),
                |t| attention_composed(t, &mask, heads, Some(&kept)),
                &mut rng,
            );
        }
    }

    /// The fused dropout multiplies by the mask `dropout_kept` draws, one stream per 16,384
    /// elements, forward and backward: shapes below and across a stream's end.
    #[test]
    fn dropout_agrees_with_a_multiplication_by_its_mask() {
        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let p = 0.25f32;
        let mut all = shapes(&mut rng);
        all.push(vec![3, 100, 70]);
        for dims in all {
            let n: usize = dims.iter().product();
            let seed = rng.random::<u64>();
            let mask: Vec<f32> = (0..n.div_ceil(16_384))
                .flat_map(|stream| dropout_kept(seed, stream as u64, 16_384, p))
                .take(n)
                .map(|keep| if keep { 1.0 / (1.0 - p) } else { 0.0 })
                .collect();
            let mask = Tensor::from_vec(mask, dims.as_slice(), &Device::Cpu).unwrap();
            let x = random(&mut rng, &dims, 3.0);
            agree(
                "dropout",
                &[x],
                |t| dropout(&t[0], p, seed),
                |t| &t[0] * &mask,
                &mut rng,
            );
        }
        let x = random(&mut rng, &[4, 5], 1.0);
        assert_eq!(
            dropout(&x, 0.0, 1).unwrap().to_vec2::<f32>().unwrap(),
            x.to_vec2::<f32>().unwrap()
        );
        let err = dropout(&x, 1.0, 1).unwrap_err().to_string();
        assert!(err.contains("dropout") && err.contains("[0, 1)"), "{err}");
    }

    #[test]
    fn dropout_keeps_one_minus_p_and_each_stream_draws_its_own() {
        let kept = dropout_kept(9, 0, 200_000, 0.1);
        let share = kept.iter().filter(|&&k| k).count() as f64 / kept.len() as f64;
        assert!((share - 0.9).abs() < 0.003, "{share}");
        assert_eq!(kept, dropout_kept(9, 0, 200_000, 0.1));
        assert_ne!(kept[..64], dropout_kept(9, 1, 64, 0.1)[..]);
        assert!(dropout_kept(9, 0, 1000, 0.0).iter().all(|&k| k));
    }

    #[test]
    fn attention_refuses_shapes_that_do_not_fit_with_a_clear_error() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((2, 3, 8), DType::F32, &dev).unwrap();
        let mask = Tensor::zeros((2, 3), DType::F32, &dev).unwrap();
        let short = Tensor::zeros((2, 3, 6), DType::F32, &dev).unwrap();
        let err = attention(&q, &short, &q, &mask, 2, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("keys") && err.contains("[2, 3, 6]"), "{err}");
        let err = attention(&q, &q, &q, &mask, 3, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("8 columns") && err.contains("3 heads"),
            "{err}"
        );
        let err = attention(&q, &q, &q, &q, 2, None).unwrap_err().to_string();
        assert!(err.contains("mask"), "{err}");
        // Rows that are not whole sequences of the mask's length.
        let rows = Tensor::zeros((7, 8), DType::F32, &dev).unwrap();
        let err = attention(&rows, &rows, &rows, &mask, 2, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("7 rows") && err.contains("[2, 3]"), "{err}");
        let dropout = Some(AttentionDropout { p: 1.0, seed: 0 });
        let err = attention(&q, &q, &q, &mask, 2, dropout)
            .unwrap_err()
            .to_string();
        assert!(err.contains("dropout") && err.contains('1'), "{err}");
    }

    #[test]
    fn kernels_refuse_what_they_do_not_compute_with_a_clear_error() {
        let x = Tensor::zeros((2, 3), DType::F64, &Device::Cpu).unwrap();
        let err = gelu(&x).unwrap_err().to_string();
        assert!(err.contains("gelu") && err.contains("f32"), "{err}");
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::ones(4, DType::F32, &Device::Cpu).unwrap();
        let err = layer_norm(&x, &w, &w, 1e-5).unwrap_err().to_string();
        assert!(err.contains("weight") && err.contains('3'), "{err}");
        let err = add_bias(&x, &w).unwrap_err().to_string();
        assert!(err.contains("add-bias") && err.contains('3'), "{err}");
        assert_eq!(Kernels::for_tensor(&x), Kernels::Fused);
    }

    #[test]
    fn a_transposed_input_is_made_contiguous_first() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let x = random(&mut rng, &[5, 9], 3.0).t().unwrap();
        let a = softmax_last_dim(&x).unwrap();
        let b = candle_nn::ops::softmax(&x, D::Minus1).unwrap();
        assert!(relative_error(&a, &b) <= 1e-6);
    }
}
