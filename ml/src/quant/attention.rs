//! Attention's two products in int8, for the inference encoder. For each head of a sequence:
//! the queries and keys to symmetric int8 codes with one scale each (the queries shifted by 128
//! to u8), the scores as exact integer dot products, softmax's numerators coded in u8 with a
//! fixed scale (each row's largest numerator is 1, so 1/255 uses every code), the values to int8
//! codes per column, and the weights × values product in integers again. Each output row is
//! divided by the sum of its row's weight codes, so the weights the values are averaged with sum
//! to one exactly.
//!
//! Two paths compute the same numbers bit for bit: a fused AVX-512 VNNI kernel for heads whose
//! width is a multiple of 16 (up to 64), and a portable one through `gemm` for any other head
//! or CPU.

use super::gemm::{PackedWeights, gemm};
use super::linear::grown;
use crate::kernels::{ROUND, max2, round_to_int, row_range};

/// The queries' zero point: their signed codes shifted to u8.
const ZERO: i32 = 128;

/// The scale of attention weights' u8 codes that uses all 256 of them.
pub const WEIGHT_SCALE: f32 = 1.0 / 255.0;

/// One head of one sequence: `rows` rows of `block` at `stride` values apart, the head's
/// queries, keys and values starting at columns `q`, `k` and `v`, each `width` wide; the first
/// `queries` rows ask (every row, or the first alone where only it is read).
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub block: &'a [f32],
    pub stride: usize,
    pub rows: usize,
    pub queries: usize,
    pub q: usize,
    pub k: usize,
    pub v: usize,
    pub width: usize,
}

impl Head<'_> {
    fn check(&self, out: &[f32], out_stride: usize) -> Result<(), String> {
        let fits = |col: usize| {
            col + self.width <= self.stride
                && self.rows >= 1
                && self.block.len() >= (self.rows - 1) * self.stride + col + self.width
        };
        if self.width == 0
            || self.queries == 0
            || self.queries > self.rows
            || !fits(self.q)
            || !fits(self.k)
            || !fits(self.v)
            || out_stride < self.width
            || out.len() < (self.queries - 1) * out_stride + self.width
        {
            return Err(format!(
                "internal error: an attention head of {} rows ({} asking) and width {} does not \
                 fit its buffers",
                self.rows, self.queries, self.width
            ));
        }
        Ok(())
    }
}

/// A symmetric quantizer's scale for values up to `max` in magnitude, and its inverse (0 for a
/// tensor of zeros, whose codes are all 0): `x ≈ scale · round(x · inverse)`.
#[inline(always)]
fn symmetric(max: f32) -> (f32, f32) {
    (max / 127.0, if max > 0.0 { 127.0 / max } else { 0.0 })
}

/// Buffers reused from head to head (and kept by each thread between batches).
#[derive(Default)]
pub struct Int8Attention {
    queries: Vec<u8>,
    keys: Vec<u8>,
    packed: PackedWeights,
    scores: Vec<i32>,
    weights: Vec<u8>,
    sums: Vec<f32>,
    values: Vec<i8>,
    value_scales: Vec<f32>,
    inverse: Vec<f32>,
    context: Vec<i32>,
    #[cfg(target_arch = "x86_64")]
    fused: x86::Buffers,
}

/// Which code runs a head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionPath {
    /// The fused AVX-512 VNNI kernel where the CPU and the head's width allow, else portable.
    Best,
    /// Through `gemm`, on any CPU and width.
    Portable,
}

impl Int8Attention {
    /// The head's attention output: `out[i · out_stride + d]` for each asking row `i` and
    /// column `d < width`; `scale` multiplies the scores (1/√width), `weight_scale` is the
    /// scale of the weights' u8 codes (from [`WEIGHT_SCALE`] to 1).
    pub fn head(
        &mut self,
        h: &Head<'_>,
        scale: f32,
        weight_scale: f32,
        out: &mut [f32],
        out_stride: usize,
    ) -> Result<(), String> {
        self.head_on(AttentionPath::Best, h, scale, weight_scale, out, out_stride)
    }

    /// [`Int8Attention::head`] on a chosen path (the paths agree bit for bit).
    pub fn head_on(
        &mut self,
        path: AttentionPath,
        h: &Head<'_>,
        scale: f32,
        weight_scale: f32,
        out: &mut [f32],
        out_stride: usize,
    ) -> Result<(), String> {
        h.check(out, out_stride)?;
        if !(WEIGHT_SCALE..=1.0).contains(&weight_scale) {
            return Err(format!(
                "the attention weights' scale {weight_scale} is outside {WEIGHT_SCALE}..=1"
            ));
        }
        let levels = 1.0 / weight_scale;
        #[cfg(target_arch = "x86_64")]
        if path == AttentionPath::Best && x86::runs(h) {
            return x86::head(&mut self.fused, h, (scale, levels), out, out_stride);
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = path;
        self.portable(h, scale, levels, out, out_stride)
    }

    fn portable(
        &mut self,
        h: &Head<'_>,
        scale: f32,
        levels: f32,
        out: &mut [f32],
        out_stride: usize,
    ) -> Result<(), String> {
        let (t, m, width) = (h.rows, h.queries, h.width);
        let width4 = width.next_multiple_of(4);
        let t4 = t.next_multiple_of(4);
        let at = |col: usize| &h.block[col..];

        // Queries (u8) and keys (i8, written as their bytes), one scale each, padded to whole
        // groups of 4.
        let (query_scale, inv) = symmetric(abs_max(at(h.q), h.stride, m, width));
        let queries = grown(&mut self.queries, m * width4);
        codes(at(h.q), h.stride, width, inv, ZERO, queries);
        let (key_scale, inv) = symmetric(abs_max(at(h.k), h.stride, t, width));
        let keys = grown(&mut self.keys, t * width4);
        codes(at(h.k), h.stride, width, inv, 0, keys);
        self.packed
            .repack(as_i8(&self.keys[..t * width4]), t, width4)?;
        let scores = grown(&mut self.scores, m * t);
        gemm(queries, m, &self.packed, scores)?;

        // Softmax's numerators, coded.
        let weights = grown(&mut self.weights, m * t4);
        let sums = grown(&mut self.sums, m);
        let factor = query_scale * key_scale * scale * std::f32::consts::LOG2_E;
        weight_rows(
            (scores, t),
            self.packed.col_sums(),
            (factor, levels),
            weights,
            sums,
        );

        // Values (i8, per column), transposed: a packed channel per column, keys along k.
        let values = grown(&mut self.values, width * t4);
        let value_scales = grown(&mut self.value_scales, width);
        column_codes(
            at(h.v),
            h.stride,
            (t, width),
            values,
            value_scales,
            grown(&mut self.inverse, width),
        );
        self.packed.repack(values, width, t4)?;
        let context = grown(&mut self.context, m * width);
        gemm(weights, m, &self.packed, context)?;
        outputs(context, width, value_scales, sums, out, out_stride);
        Ok(())
    }
}

/// The keys' codes as the i8 they are (the quantizer writes bytes).
fn as_i8(x: &[u8]) -> &[i8] {
    // SAFETY: u8 and i8 have the same size, alignment and validity (every bit pattern).
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts(x.as_ptr().cast::<i8>(), x.len())
    }
}

/// The largest magnitude (and 0) among `rows` rows of `width` values of `x`, `stride` apart.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn abs_max(x: &[f32], stride: usize, rows: usize, width: usize) -> f32 {
    (0..rows).fold(0f32, |m, r| {
        let (lo, hi) = row_range(&x[r * stride..r * stride + width]);
        max2(m, max2(-lo, hi))
    })
}

/// Codes of `out.len() / ⌈width/4⌉·4` rows of `width` values of `x` (`stride` apart):
/// `round(x · inv) + zero` as bytes, each row padded with `zero` to a multiple of 4.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn codes(x: &[f32], stride: usize, width: usize, inv: f32, zero: i32, out: &mut [u8]) {
    let width4 = width.next_multiple_of(4);
    for (r, dst) in out.chunks_exact_mut(width4).enumerate() {
        let row = &x[r * stride..r * stride + width];
        for (o, &v) in dst.iter_mut().zip(row) {
            *o = (round_to_int(v * inv) + zero) as u8;
        }
        dst[width..].fill(zero as u8);
    }
}

/// `t` rows of `width` values of `x` (`stride` apart) to symmetric codes per column, written
/// transposed: `out[d · t4 + j]` is row `j`'s code of column `d` (`t4` = t rounded up to 4,
/// the padding 0); `scales[d]` its column's scale.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn column_codes(
    x: &[f32],
    stride: usize,
    (t, width): (usize, usize),
    out: &mut [i8],
    scales: &mut [f32],
    inverse: &mut [f32],
) {
    let t4 = t.next_multiple_of(4);
    inverse.fill(0.0);
    for j in 0..t {
        for (m, &v) in inverse.iter_mut().zip(&x[j * stride..j * stride + width]) {
            *m = max2(*m, v.abs());
        }
    }
    for (s, m) in scales.iter_mut().zip(inverse.iter_mut()) {
        (*s, *m) = symmetric(*m);
    }
    for j in 0..t {
        let row = &x[j * stride..j * stride + width];
        for (d, (&v, &inv)) in row.iter().zip(&*inverse).enumerate() {
            out[d * t4 + j] = round_to_int(v * inv) as i8;
        }
    }
    for d in 0..width {
        out[d * t4 + t..(d + 1) * t4].fill(0);
    }
}

/// Each asking row's softmax weights as u8 codes and the sum of its codes, from the integer
/// scores `acc` (`[rows, t]`, Σ (query code + 128) · key code), the keys' sums of codes
/// (`col_sums`, the zero point's share), `factor` (query scale · key scale · 1/√d · log₂ e: the
/// scores in powers of 2) and `levels`
/// (the code of a weight of 1). `out` has rows of `t` rounded up to 4, the padding 0.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn weight_rows(
    (acc, t): (&mut [i32], usize),
    col_sums: &[i32],
    (factor, levels): (f32, f32),
    out: &mut [u8],
    sums: &mut [f32],
) {
    let t4 = t.next_multiple_of(4);
    let cubic = code_cubic(levels);
    for (row, (dst, sum)) in acc
        .chunks_exact_mut(t)
        .zip(out.chunks_exact_mut(t4).zip(sums.iter_mut()))
    {
        let mut max = i32::MIN;
        for (a, &c) in row.iter_mut().zip(col_sums) {
            *a -= ZERO * c;
            max = max.max(*a);
        }
        let mut total = 0i32;
        for (o, &a) in dst.iter_mut().zip(row.iter()) {
            let code = weight_code((a - max) as f32 * factor, &cubic);
            *o = code as u8;
            total += code;
        }
        dst[t..].fill(0);
        *sum = total as f32;
    }
}

/// A cubic for 2^f on f ∈ [−½, ½], the highest power first: relative error below 7.5e−5, a
/// fiftieth of a weight code (fitted to the minimax error on Chebyshev nodes).
const EXP2_CUBIC: [f32; 4] = [0.055_171_657, 0.242_611_13, 0.693_260_97, 0.999_928_06];

/// [`EXP2_CUBIC`] times `levels` (the code of a weight of 1), so the polynomial gives codes.
#[inline(always)]
fn code_cubic(levels: f32) -> [f32; 4] {
    EXP2_CUBIC.map(|c| c * levels)
}

/// The code of a softmax numerator, `levels` · 2^x for a score `x` (≤ 0, in powers of 2)
/// below its row's maximum (`cubic` from [`code_cubic`]): 2^n · (levels · 2^f) with n = round(x),
/// the second factor a cubic in f.
#[inline(always)]
fn weight_code(x: f32, cubic: &[f32; 4]) -> i32 {
    let x = max2(x, -126.0);
    let shifted = x + ROUND;
    let f = x - (shifted - ROUND);
    let p = cubic[0]
        .mul_add(f, cubic[1])
        .mul_add(f, cubic[2])
        .mul_add(f, cubic[3]);
    let whole = shifted.to_bits().wrapping_sub(ROUND.to_bits()) as i32;
    round_to_int(p * f32::from_bits(((whole + 127) as u32) << 23))
}

/// `out[i · out_stride + d] = context[i, d] · (scales[d] · 1/sums[i])`.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512vl+avx512dq+fma",
    "x86_64+avx2+fma"
))]
fn outputs(
    context: &[i32],
    width: usize,
    scales: &[f32],
    sums: &[f32],
    out: &mut [f32],
    out_stride: usize,
) {
    for (i, (acc, &sum)) in context.chunks_exact(width).zip(sums).enumerate() {
        let inv = 1.0 / sum;
        let dst = &mut out[i * out_stride..i * out_stride + width];
        for ((o, &a), &s) in dst.iter_mut().zip(acc).zip(scales) {
            *o = a as f32 * (s * inv);
        }
    }
}

/// The fused AVX-512 VNNI head, for widths of 16, 32, 48 or 64: keys in 16-key groups of
/// `vpdpbusd` lines (a query's scores for 16 keys in one register), each row's scores, maximum,
/// numerators and codes without leaving registers and L1, values in lines of 16 columns × 4 keys.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::{Head, ZERO, symmetric};
    use crate::kernels::ROUND;
    use crate::quant::linear::grown;
    use std::arch::x86_64::*;

    /// Lanes of a register: keys of a group, columns of a line.
    const LANES: usize = 16;
    /// Rows of weights multiplied with the values at once (independent accumulators).
    const ROWS: usize = 4;
    /// Asking rows whose scores are computed before any of their weights.
    const BLOCK: usize = 8;

    /// Whether this CPU and the head's width run the fused kernel.
    pub(super) fn runs(h: &Head<'_>) -> bool {
        h.width.is_multiple_of(LANES)
            && h.width <= 4 * LANES
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }

    /// The fused kernel's buffers.
    #[derive(Default)]
    pub(super) struct Buffers {
        queries: Vec<u8>,
        key_codes: Vec<i8>,
        /// `[groups][width / 4][16]`: lane `j` of line `(g, d4)` is key `16g + j`'s codes of
        /// columns `4·d4..4·d4 + 4`.
        keys: Vec<i32>,
        /// `[groups][16]`: −128 · each key's sum of codes (the queries' zero point's share).
        corrections: Vec<i32>,
        scores: Vec<i32>,
        /// `[queries, t16]`.
        weights: Vec<u8>,
        sums: Vec<f32>,
        value_codes: Vec<i8>,
        /// `[t16 / 4][width / 16][16]`: lane `d` of line `(q, v)` is column `16v + d`'s codes
        /// of keys `4q..4q + 4`.
        values: Vec<i32>,
    }

    /// The sizes a head's buffers take.
    struct Shape {
        t: usize,
        m: usize,
        width: usize,
        groups: usize,
        t16: usize,
    }

    pub(super) fn head(
        b: &mut Buffers,
        h: &Head<'_>,
        (scale, levels): (f32, f32),
        out: &mut [f32],
        out_stride: usize,
    ) -> Result<(), String> {
        if !runs(h) {
            return Err("this CPU or head width cannot run the fused int8 attention".to_string());
        }
        let (t, m, width) = (h.rows, h.queries, h.width);
        let groups = t.div_ceil(LANES);
        let t16 = groups * LANES;
        grown(&mut b.queries, m * width);
        grown(&mut b.key_codes, t16 * width).fill(0);
        grown(&mut b.keys, t16 * width / 4);
        grown(&mut b.corrections, t16);
        grown(&mut b.scores, BLOCK * t16);
        grown(&mut b.weights, m * t16);
        grown(&mut b.sums, m);
        grown(&mut b.value_codes, t16 * width).fill(0);
        grown(&mut b.values, t16 * width / 4);
        let shape = Shape {
            t,
            m,
            width,
            groups,
            t16,
        };
        // SAFETY: the CPU has AVX-512 F, BW and VNNI and the width is 16..=64 in steps of 16
        // (`runs`); `h.check` (by the caller) bounds the head's rows and `out`; the buffers were
        // just sized for `shape`.
        let args = (scale, levels);
        unsafe {
            match width / LANES {
                1 => fused::<1>(b, h, &shape, args, out, out_stride),
                2 => fused::<2>(b, h, &shape, args, out, out_stride),
                3 => fused::<3>(b, h, &shape, args, out, out_stride),
                _ => fused::<4>(b, h, &shape, args, out, out_stride),
            }
        }
        Ok(())
    }

    /// The largest magnitude (and 0) of `rows` rows of `nv` registers at `x`, `stride` apart.
    ///
    /// # Safety
    /// Every row's `16 · nv` values must be readable; AVX-512 F.
    #[target_feature(enable = "avx512f")]
    unsafe fn abs_max(x: *const f32, stride: usize, rows: usize, nv: usize) -> f32 {
        let mut max = _mm512_setzero_ps();
        for r in 0..rows {
            for v in 0..nv {
                // SAFETY: values `16v..16v + 16` of row `r` (caller's contract).
                let x = unsafe { _mm512_loadu_ps(x.add(r * stride + v * LANES)) };
                max = _mm512_max_ps(max, _mm512_abs_ps(x));
            }
        }
        _mm512_reduce_max_ps(max)
    }

    /// `round(x · inv)` in each lane, as `kernels::round_to_int` rounds (|x · inv| ≤ 255).
    #[target_feature(enable = "avx512f")]
    fn round(x: __m512, inv: __m512) -> __m512i {
        let rounded = _mm512_add_ps(_mm512_mul_ps(x, inv), _mm512_set1_ps(ROUND));
        _mm512_sub_epi32(
            _mm512_castps_si512(rounded),
            _mm512_set1_epi32(ROUND.to_bits() as i32),
        )
    }

    /// `super::weight_code` in each lane, the same numbers: n by rounding to nearest even (as
    /// adding and subtracting `ROUND` does), 2^n · p by `vscalefps` (exact, as the product with
    /// 2^n built in the exponent bits is), the code by conversion (codes are far below 2^22,
    /// where it agrees with `round_to_int`).
    #[target_feature(enable = "avx512f")]
    fn weight_code(x: __m512, cubic: &[__m512; 4]) -> __m512i {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-126.0));
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(x);
        let f = _mm512_sub_ps(x, n);
        let p = _mm512_fmadd_ps(cubic[0], f, cubic[1]);
        let p = _mm512_fmadd_ps(p, f, cubic[2]);
        let p = _mm512_fmadd_ps(p, f, cubic[3]);
        _mm512_cvtps_epi32(_mm512_scalef_ps(p, n))
    }

    /// # Safety
    /// The CPU must have AVX-512 F, BW and VNNI; `s.width` is `16 · NV` (NV of 1 to 4); the head's
    /// `s.t` rows hold its columns (checked by `Head::check`), `out` holds `s.m` rows of
    /// `s.width` at `out_stride`, and `b`'s buffers are sized for `s` (by `head`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn fused<const NV: usize>(
        b: &mut Buffers,
        h: &Head<'_>,
        s: &Shape,
        (scale, levels): (f32, f32),
        out: &mut [f32],
        out_stride: usize,
    ) {
        let (nv, d4s) = (NV, 4 * NV);
        let x = h.block.as_ptr();
        let stride = h.stride;
        let bytes = |v: __m512i| _mm512_cvtepi32_epi8(v);

        // Keys: codes row by row, then gathered into lines, and 128 · Σ codes per key.
        // SAFETY (every block below): rows `< s.t` of the head's columns are in the block;
        // buffer offsets stay below the sizes `head` gave them for `s`.
        let (key_scale, inv) = symmetric(unsafe { abs_max(x.add(h.k), stride, s.t, nv) });
        let inv_k = _mm512_set1_ps(inv);
        for j in 0..s.t {
            for v in 0..nv {
                unsafe {
                    let x = _mm512_loadu_ps(x.add(j * stride + h.k + v * LANES));
                    let dst = b.key_codes.as_mut_ptr().add(j * s.width + v * LANES);
                    _mm_storeu_si128(dst.cast(), bytes(round(x, inv_k)));
                }
            }
        }
        let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
        let rows_apart = _mm512_mullo_epi32(lane, _mm512_set1_epi32(d4s as i32));
        let zeros = _mm512_set1_epi32(i32::from_ne_bytes([ZERO as u8; 4]));
        for g in 0..s.groups {
            let mut correction = _mm512_setzero_si512();
            for d4 in 0..d4s {
                unsafe {
                    // Dword `d4` of keys `16g..16g + 16`: rows `d4s` dwords apart.
                    let base = b.key_codes.as_ptr().cast::<i32>().add(g * LANES * d4s + d4);
                    let line = _mm512_i32gather_epi32::<4>(rows_apart, base.cast());
                    _mm512_storeu_si512(
                        b.keys.as_mut_ptr().add((g * d4s + d4) * LANES).cast(),
                        line,
                    );
                    correction = _mm512_dpbusd_epi32(correction, zeros, line);
                }
            }
            // Negated: each score's sum starts from it.
            let correction = _mm512_sub_epi32(_mm512_setzero_si512(), correction);
            unsafe {
                _mm512_storeu_si512(b.corrections.as_mut_ptr().add(g * LANES).cast(), correction)
            };
        }

        // Queries: codes + 128.
        let (query_scale, inv) = symmetric(unsafe { abs_max(x.add(h.q), stride, s.m, nv) });
        let inv_q = _mm512_set1_ps(inv);
        let zero = _mm512_set1_epi32(ZERO);
        for i in 0..s.m {
            for v in 0..nv {
                unsafe {
                    let x = _mm512_loadu_ps(x.add(i * stride + h.q + v * LANES));
                    let code = _mm512_add_epi32(round(x, inv_q), zero);
                    let dst = b.queries.as_mut_ptr().add(i * s.width + v * LANES);
                    _mm_storeu_si128(dst.cast(), bytes(code));
                }
            }
        }

        // Each asking row: scores, their maximum, the weights' codes and their sum.
        let factor = _mm512_set1_ps(query_scale * key_scale * scale * std::f32::consts::LOG2_E);
        let cubic = super::code_cubic(levels).map(|c| _mm512_set1_ps(c));
        let last = s.t - (s.groups - 1) * LANES;
        let valid = |g: usize| -> u16 {
            if g + 1 < s.groups {
                u16::MAX
            } else {
                ((1u32 << last) - 1) as u16
            }
        };
        // In blocks of rows, each step over the whole block before the next, so that one row's
        // reductions overlap the next row's work rather than wait on each other.
        let keys = Keys {
            lines: b.keys.as_ptr(),
            corrections: b.corrections.as_ptr(),
            groups: s.groups,
            last: valid(s.groups - 1),
            t16: s.t16,
        };
        let mut maxes = [0i32; BLOCK];
        for first in (0..s.m).step_by(BLOCK) {
            let rows = BLOCK.min(s.m - first);
            let mut r = 0;
            while r < rows {
                // SAFETY: asking rows `first + r..` (one or two of them) and their scores' rows of
                // the block, inside the buffers `head` sized.
                unsafe {
                    let queries = b.queries.as_ptr().add((first + r) * s.width);
                    let out = b.scores.as_mut_ptr().add(r * s.t16);
                    if r + 1 < rows {
                        keys.scores::<NV, 2>(queries, out, &mut maxes[r..r + 2]);
                        r += 2;
                    } else {
                        keys.scores::<NV, 1>(queries, out, &mut maxes[r..r + 1]);
                        r += 1;
                    }
                }
            }
            for (r, &row_max) in maxes.iter().enumerate().take(rows) {
                let i = first + r;
                let scores = unsafe { b.scores.as_ptr().add(r * s.t16) };
                let max = _mm512_set1_epi32(row_max);
                let mut total = _mm512_setzero_si512();
                for g in 0..s.groups {
                    let score = unsafe { _mm512_loadu_si512(scores.add(g * LANES).cast()) };
                    let x = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(score, max)), factor);
                    let code = _mm512_maskz_mov_epi32(valid(g), weight_code(x, &cubic));
                    total = _mm512_add_epi32(total, code);
                    unsafe {
                        let dst = b.weights.as_mut_ptr().add(i * s.t16 + g * LANES);
                        _mm_storeu_si128(dst.cast(), bytes(code));
                    }
                }
                b.sums[i] = _mm512_reduce_add_epi32(total) as f32;
            }
        }

        // Values: codes per column, then four keys' codes interleaved into each line.
        let mut max = [_mm512_setzero_ps(); 4];
        for j in 0..s.t {
            for (v, m) in max.iter_mut().enumerate().take(nv) {
                let x = unsafe { _mm512_loadu_ps(x.add(j * stride + h.v + v * LANES)) };
                *m = _mm512_max_ps(*m, _mm512_abs_ps(x));
            }
        }
        let hundred27 = _mm512_set1_ps(127.0);
        let value_scales = max.map(|m| _mm512_div_ps(m, hundred27));
        let inverses = max.map(|m| {
            _mm512_maskz_div_ps(
                _mm512_cmp_ps_mask::<_CMP_GT_OQ>(m, _mm512_setzero_ps()),
                hundred27,
                m,
            )
        });
        for j in 0..s.t {
            for (v, &inv) in inverses.iter().enumerate().take(nv) {
                unsafe {
                    let x = _mm512_loadu_ps(x.add(j * stride + h.v + v * LANES));
                    let dst = b.value_codes.as_mut_ptr().add(j * s.width + v * LANES);
                    _mm_storeu_si128(dst.cast(), bytes(round(x, inv)));
                }
            }
        }
        for quad in 0..s.t16 / 4 {
            for v in 0..nv {
                unsafe {
                    let row = |r: usize| {
                        let src = b
                            .value_codes
                            .as_ptr()
                            .add((4 * quad + r) * s.width + v * LANES);
                        _mm_loadu_si128(src.cast())
                    };
                    let (k0, k1, k2, k3) = (row(0), row(1), row(2), row(3));
                    let (lo01, hi01) = (_mm_unpacklo_epi8(k0, k1), _mm_unpackhi_epi8(k0, k1));
                    let (lo23, hi23) = (_mm_unpacklo_epi8(k2, k3), _mm_unpackhi_epi8(k2, k3));
                    let dst = b
                        .values
                        .as_mut_ptr()
                        .add((quad * nv + v) * LANES)
                        .cast::<__m128i>();
                    _mm_storeu_si128(dst, _mm_unpacklo_epi16(lo01, lo23));
                    _mm_storeu_si128(dst.add(1), _mm_unpackhi_epi16(lo01, lo23));
                    _mm_storeu_si128(dst.add(2), _mm_unpacklo_epi16(hi01, hi23));
                    _mm_storeu_si128(dst.add(3), _mm_unpackhi_epi16(hi01, hi23));
                }
            }
        }

        // Weights × values, `ROWS` rows at a time, then scaled into `out`.
        let pv = Products {
            weights: b.weights.as_ptr(),
            t16: s.t16,
            values: b.values.as_ptr(),
            sums: b.sums.as_ptr(),
            scales: value_scales,
            out: out.as_mut_ptr(),
            out_stride,
        };
        let mut i = 0;
        while i < s.m {
            let rows = ROWS.min(s.m - i);
            // SAFETY: rows `i..i + rows` of `s.m`, `nv` lines (the caller's contract).
            unsafe {
                if rows == ROWS {
                    pv.rows::<NV, ROWS>(i)
                } else {
                    pv.rows::<NV, 1>(i)
                }
            }
            i += if rows == ROWS { ROWS } else { 1 };
        }
    }

    /// The weights × values product's operands (`fused` sized and filled them).
    struct Products {
        /// `[m, t16]` u8 codes.
        weights: *const u8,
        t16: usize,
        /// `[t16 / 4][nv]` lines.
        values: *const i32,
        sums: *const f32,
        scales: [__m512; 4],
        out: *mut f32,
        out_stride: usize,
    }

    impl Products {
        /// Output rows `i..i + R` over `NV` lines of 16 columns: `R · NV` accumulators in
        /// registers, one `vpdpbusd` each per 4 keys.
        ///
        /// # Safety
        /// Rows `i..i + R` of the weights and outputs and `NV` lines of values exist (see
        /// `fused`); AVX-512 F, BW and VNNI.
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn rows<const NV: usize, const R: usize>(&self, i: usize) {
            let mut acc = [[_mm512_setzero_si512(); NV]; R];
            for quad in 0..self.t16 / 4 {
                let mut lines = [_mm512_setzero_si512(); NV];
                for (v, line) in lines.iter_mut().enumerate() {
                    // SAFETY: line `(quad, v)` of the values.
                    *line = unsafe {
                        _mm512_loadu_si512(self.values.add((quad * NV + v) * LANES).cast())
                    };
                }
                for (r, acc) in acc.iter_mut().enumerate() {
                    // SAFETY: bytes `4·quad..4·quad + 4` of weight row `i + r`.
                    let w = unsafe {
                        self.weights
                            .add((i + r) * self.t16 + 4 * quad)
                            .cast::<i32>()
                            .read_unaligned()
                    };
                    let w = _mm512_set1_epi32(w);
                    for (a, &line) in acc.iter_mut().zip(&lines) {
                        *a = _mm512_dpbusd_epi32(*a, w, line);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                // SAFETY: row `i + r`'s sum and its `16 · NV` outputs.
                unsafe {
                    let inv = _mm512_set1_ps(1.0 / *self.sums.add(i + r));
                    for (v, &a) in acc.iter().enumerate() {
                        let y = _mm512_mul_ps(
                            _mm512_cvtepi32_ps(a),
                            _mm512_mul_ps(self.scales[v], inv),
                        );
                        _mm512_storeu_ps(self.out.add((i + r) * self.out_stride + v * LANES), y);
                    }
                }
            }
        }
    }

    /// The keys' lines, for the scores of asking rows.
    struct Keys {
        lines: *const i32,
        /// Negated zero-point shares, one a key.
        corrections: *const i32,
        groups: usize,
        /// The keys of the last group (a mask).
        last: u16,
        t16: usize,
    }

    impl Keys {
        /// The integer scores of `R` asking rows (codes at `queries`, `16 · NV` bytes apart)
        /// against every key, into rows of `out` (`t16` apart), and each row's maximum: the
        /// rows' query bytes broadcast once, each key line loaded once for the `R` rows.
        ///
        /// # Safety
        /// `R` rows of queries and of `out`, `groups · 4 · NV` lines and `groups · 16`
        /// corrections; `maxes.len() == R`; AVX-512 F, BW and VNNI.
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        #[inline]
        unsafe fn scores<const NV: usize, const R: usize>(
            &self,
            queries: *const u8,
            out: *mut i32,
            maxes: &mut [i32],
        ) {
            let mut q = [[_mm512_setzero_si512(); 16]; R];
            for (r, q) in q.iter_mut().enumerate() {
                for (d4, q) in q.iter_mut().enumerate().take(4 * NV) {
                    // SAFETY: bytes `4·d4..4·d4 + 4` of query row `r`.
                    let v = unsafe {
                        queries
                            .add(r * 16 * NV + 4 * d4)
                            .cast::<i32>()
                            .read_unaligned()
                    };
                    *q = _mm512_set1_epi32(v);
                }
            }
            let mut max = [_mm512_set1_epi32(i32::MIN); R];
            for g in 0..self.groups {
                // SAFETY: group `g`'s corrections.
                let start = unsafe { _mm512_loadu_si512(self.corrections.add(g * LANES).cast()) };
                let mut acc = [start; R];
                for d4 in 0..4 * NV {
                    // SAFETY: line `(g, d4)`.
                    let line = unsafe {
                        _mm512_loadu_si512(self.lines.add((g * 4 * NV + d4) * LANES).cast())
                    };
                    for (a, q) in acc.iter_mut().zip(&q) {
                        *a = _mm512_dpbusd_epi32(*a, q[d4], line);
                    }
                }
                let keep = if g + 1 < self.groups {
                    u16::MAX
                } else {
                    self.last
                };
                for (r, (a, m)) in acc.iter().zip(max.iter_mut()).enumerate() {
                    // SAFETY: scores `16g..16g + 16` of row `r`.
                    unsafe { _mm512_storeu_si512(out.add(r * self.t16 + g * LANES).cast(), *a) };
                    *m = _mm512_mask_max_epi32(*m, keep, *m, *a);
                }
            }
            for (out, m) in maxes.iter_mut().zip(max) {
                *out = _mm512_reduce_max_epi32(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A head of `t` rows and `width` columns in a block of three such heads side by side plus
    /// `extra` columns (so the head does not start at column 0), values in ±`range`.
    struct Case {
        block: Vec<f32>,
        stride: usize,
        t: usize,
        width: usize,
        offset: usize,
    }

    impl Case {
        fn random(rng: &mut ChaCha8Rng, t: usize, width: usize, range: f32) -> Case {
            let offset = rng.random_range(0..5);
            let stride = offset + 3 * width + rng.random_range(0..3);
            let block = (0..t * stride)
                .map(|_| rng.random_range(-range..range))
                .collect();
            Case {
                block,
                stride,
                t,
                width,
                offset,
            }
        }

        /// Every key replaced by `f` of itself.
        fn map_keys(&mut self, f: impl Fn(f32) -> f32) {
            for r in 0..self.t {
                let start = r * self.stride + self.offset + self.width;
                for v in &mut self.block[start..start + self.width] {
                    *v = f(*v);
                }
            }
        }

        fn head(&self, queries: usize) -> Head<'_> {
            Head {
                block: &self.block,
                stride: self.stride,
                rows: self.t,
                queries,
                q: self.offset,
                k: self.offset + self.width,
                v: self.offset + 2 * self.width,
                width: self.width,
            }
        }
    }

    /// Attention in f64, the reference: softmax(q kᵀ · scale) v for the asking rows.
    fn exact(h: &Head<'_>, scale: f32) -> Vec<f64> {
        let at = |r: usize, c: usize| f64::from(h.block[r * h.stride + c]);
        let mut out = vec![0f64; h.queries * h.width];
        for i in 0..h.queries {
            let scores: Vec<f64> = (0..h.rows)
                .map(|j| {
                    (0..h.width)
                        .map(|d| at(i, h.q + d) * at(j, h.k + d))
                        .sum::<f64>()
                        * f64::from(scale)
                })
                .collect();
            let max = scores.iter().cloned().fold(f64::MIN, f64::max);
            let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
            let total: f64 = e.iter().sum();
            for d in 0..h.width {
                out[i * h.width + d] =
                    (0..h.rows).map(|j| e[j] * at(j, h.v + d)).sum::<f64>() / total;
            }
        }
        out
    }

    fn run(path: AttentionPath, h: &Head<'_>, scale: f32) -> Vec<f32> {
        let mut out = vec![f32::NAN; h.queries * h.width];
        Int8Attention::default()
            .head_on(path, h, scale, WEIGHT_SCALE, &mut out, h.width)
            .unwrap();
        out
    }

    /// The largest error against the reference, over the largest value magnitude.
    fn relative_error(got: &[f32], want: &[f64], h: &Head<'_>) -> f64 {
        let top = (0..h.rows)
            .flat_map(|r| (0..h.width).map(move |d| (r, d)))
            .map(|(r, d)| f64::from(h.block[r * h.stride + h.v + d]).abs())
            .fold(1e-30, f64::max);
        got.iter()
            .zip(want)
            .map(|(&g, &w)| (f64::from(g) - w).abs())
            .fold(0.0, f64::max)
            / top
    }

    #[test]
    fn both_paths_give_the_same_bits_on_random_heads() {
        let mut rng = ChaCha8Rng::seed_from_u64(31);
        for case in 0..300 {
            let width = [16, 32, 48, 64][case % 4];
            let t = rng.random_range(1..=70);
            let range = [0.05, 1.0, 6.0][case % 3];
            let c = Case::random(&mut rng, t, width, range);
            for queries in [t, 1] {
                let h = c.head(queries);
                let scale = 1.0 / (width as f32).sqrt();
                let best = run(AttentionPath::Best, &h, scale);
                let portable = run(AttentionPath::Portable, &h, scale);
                assert_eq!(
                    best.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "t {t}, width {width}, {queries} asking"
                );
            }
        }
    }

    #[test]
    fn int8_attention_stays_close_to_exact_attention() {
        let mut rng = ChaCha8Rng::seed_from_u64(32);
        let mut worst = 0f64;
        for case in 0..200 {
            // Widths the fused kernel runs and ones only the portable path does.
            let width = [16, 32, 12, 20, 5][case % 5];
            let t = rng.random_range(1..=100);
            let c = Case::random(&mut rng, t, width, 2.0);
            let h = c.head(t);
            let scale = 1.0 / (width as f32).sqrt();
            let want = exact(&h, scale);
            for path in [AttentionPath::Best, AttentionPath::Portable] {
                let got = run(path, &h, scale);
                let e = relative_error(&got, &want, &h);
                worst = worst.max(e);
                assert!(e < 0.03, "t {t}, width {width}, {path:?}: error {e}");
            }
        }
        assert!(worst > 1e-4, "int8 is never exact: {worst}");
    }

    #[test]
    fn without_the_zero_point_share_the_scores_would_be_wrong() {
        // Keys all positive make the zero point's share large: an output equal to the exact one
        // within the tolerance above shows it is subtracted.
        let mut rng = ChaCha8Rng::seed_from_u64(33);
        let mut c = Case::random(&mut rng, 40, 16, 2.0);
        c.map_keys(f32::abs);
        let h = c.head(40);
        let want = exact(&h, 0.25);
        for path in [AttentionPath::Best, AttentionPath::Portable] {
            assert!(relative_error(&run(path, &h, 0.25), &want, &h) < 0.03);
        }
    }

    #[test]
    fn a_row_of_equal_scores_averages_the_values_and_zeros_give_zeros() {
        let mut rng = ChaCha8Rng::seed_from_u64(34);
        let mut c = Case::random(&mut rng, 20, 16, 1.0);
        // Zero keys: every score 0, every weight the same.
        c.map_keys(|_| 0.0);
        let h = c.head(20);
        for path in [AttentionPath::Best, AttentionPath::Portable] {
            let got = run(path, &h, 0.25);
            for d in 0..c.width {
                let mean = (0..c.t)
                    .map(|r| c.block[r * c.stride + h.v + d])
                    .sum::<f32>()
                    / c.t as f32;
                for i in 0..c.t {
                    assert!((got[i * c.width + d] - mean).abs() < 0.01, "{path:?}");
                }
            }
        }
        let zeros = Case {
            block: vec![0.0; c.block.len()],
            ..c
        };
        for path in [AttentionPath::Best, AttentionPath::Portable] {
            assert!(run(path, &zeros.head(20), 0.25).iter().all(|&v| v == 0.0));
        }
    }

    #[test]
    fn heads_that_do_not_fit_and_bad_scales_are_errors() {
        let mut rng = ChaCha8Rng::seed_from_u64(35);
        let c = Case::random(&mut rng, 8, 16, 1.0);
        let mut out = vec![0f32; 8 * 16];
        let mut a = Int8Attention::default();
        let h = c.head(8);
        for bad in [0.0, 1.0 / 300.0, 1.5, f32::NAN] {
            assert!(a.head(&h, 0.25, bad, &mut out, 16).is_err(), "{bad}");
        }
        let too_many = Head { queries: 9, ..h };
        assert!(a.head(&too_many, 0.25, WEIGHT_SCALE, &mut out, 16).is_err());
        let outside = Head {
            v: c.stride - 8,
            ..h
        };
        assert!(a.head(&outside, 0.25, WEIGHT_SCALE, &mut out, 16).is_err());
        assert!(a.head(&h, 0.25, WEIGHT_SCALE, &mut out[..100], 16).is_err());
    }
}
