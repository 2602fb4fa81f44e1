//! The inference layer norm on AVX-512, by hand: the portable loop's arithmetic in the same order,
//! so the same bits. The compiler split that loop's 16-lane sums into eight pairs of lanes
//! (`vmovsd` loads, 2 floats at a time) and ran one row at a time, each row a chain of dependent
//! sums. Whole registers, four rows at a time: 24.5 ns a row of 64 (the served student's width)
//! against the loop's 42 ns (`cargo bench -p rubric-ml --bench rows`).

use std::arch::x86_64::*;

const LANES: usize = 16;

/// Whether [`add_layer_norm_rows`] can run here.
pub(super) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
}

/// [`super::add_layer_norm_rows`] on AVX-512 F: `x + residual`, then layer norm, of each row of
/// the weight's width, in place. `None` where the CPU lacks AVX-512 F or the sizes do not fit.
pub(super) fn add_layer_norm_rows(
    x: &mut [f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) -> Option<()> {
    if !available() || weight.is_empty() || bias.len() != weight.len() {
        return None;
    }
    // SAFETY: the CPU has AVX-512 F (checked above); every access below stays inside its slice.
    unsafe { add_layer_norm_avx512(x, residual, weight, bias, eps) };
    Some(())
}

/// `[LANES]` folded as `kernels::fold_lanes` folds them: by halves, then the two pairs.
#[inline]
#[target_feature(enable = "avx512f")]
fn fold_sum(a: __m512) -> f32 {
    let b = _mm256_add_ps(
        _mm512_castps512_ps256(a),
        _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)),
    );
    let c = _mm_add_ps(_mm256_castps256_ps128(b), _mm256_extractf128_ps(b, 1));
    // (c0 + c2, c1 + c3), then their sum.
    let d = _mm_add_ps(c, _mm_movehl_ps(c, c));
    _mm_cvtss_f32(_mm_add_ss(d, _mm_shuffle_ps(d, d, 1)))
}

/// The rows in flight together: a row's sums and their folds are a chain of dependent
/// additions, and the chains of four rows overlap (eight measured no faster).
const ROWS: usize = 4;

/// # Safety
/// The CPU has AVX-512 F, `weight` is not empty and `bias` is as long.
#[target_feature(enable = "avx512f")]
unsafe fn add_layer_norm_avx512(
    x: &mut [f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    let width = weight.len();
    let rows = x.len() / width;
    let mut r = 0;
    while r < rows {
        let here = if rows - r >= ROWS { ROWS } else { 1 };
        let block = &mut x[r * width..(r + here) * width];
        // The residual's rows for these, where it has them all (else each row's own check).
        let res = rows_of(residual, r, here, width);
        if here == ROWS && (residual.is_none() || res.is_some()) {
            // SAFETY: `block` and `res` hold `ROWS` rows of `width`.
            unsafe { norm_rows::<ROWS>(block, res, weight, bias, eps) };
        } else {
            for (i, row) in block.chunks_exact_mut(width).enumerate() {
                let res = rows_of(residual, r + i, 1, width);
                // SAFETY: `row` and `res` hold one row of `width`.
                unsafe { norm_rows::<1>(row, res, weight, bias, eps) };
            }
        }
        r += here;
    }
}

/// Rows `first..first + count` of `width` of `rows`, where it has them all. (A `match`, not
/// `Option::and_then`: that closure was compiled without AVX-512 and called once a block.)
#[inline(always)]
fn rows_of(rows: Option<&[f32]>, first: usize, count: usize, width: usize) -> Option<&[f32]> {
    match rows {
        Some(rows) => rows.get(first * width..(first + count) * width),
        None => None,
    }
}

/// `R` rows of `x` (and of `residual`, where given) normalized side by side.
///
/// # Safety
/// `x` holds `R` rows of `weight.len()` values, `residual` (if any) as many, `bias` as many as
/// `weight`; the CPU has AVX-512 F.
// Row `k` indexes several arrays of the block at once.
#[allow(clippy::needless_range_loop)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn norm_rows<const R: usize>(
    x: &mut [f32],
    residual: Option<&[f32]>,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    let width = weight.len();
    let full = width / LANES;
    let tail = full * LANES;
    let n = width as f32;
    let (w, b) = (weight.as_ptr(), bias.as_ptr());
    let p = x.as_mut_ptr();
    // SAFETY (every load and store below): row `k`'s values `c·16..c·16 + 16` are inside `x`
    // (and `residual`) at `k·width + c·16`, `c < full`; the weight's and bias's at `c·16`.
    let at = |k: usize, c: usize| k * width + c * LANES;
    if let Some(res) = residual {
        let q = res.as_ptr();
        for k in 0..R {
            for c in 0..full {
                unsafe {
                    let v = _mm512_add_ps(
                        _mm512_loadu_ps(p.add(at(k, c))),
                        _mm512_loadu_ps(q.add(at(k, c))),
                    );
                    _mm512_storeu_ps(p.add(at(k, c)), v);
                }
            }
            for i in tail..width {
                x[k * width + i] += res[k * width + i];
            }
        }
    }
    let mut acc = [_mm512_setzero_ps(); R];
    for c in 0..full {
        for k in 0..R {
            acc[k] = _mm512_add_ps(acc[k], unsafe { _mm512_loadu_ps(p.add(at(k, c))) });
        }
    }
    let mut mean = [0f32; R];
    for k in 0..R {
        let row = &x[k * width..(k + 1) * width];
        mean[k] = (fold_sum(acc[k]) + row[tail..].iter().sum::<f32>()) / n;
    }
    let m = mean.map(|mean| _mm512_set1_ps(mean));
    let mut acc = [_mm512_setzero_ps(); R];
    for c in 0..full {
        for k in 0..R {
            let d = _mm512_sub_ps(unsafe { _mm512_loadu_ps(p.add(at(k, c))) }, m[k]);
            acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(d, d));
        }
    }
    let mut rstd = [0f32; R];
    for k in 0..R {
        let row = &x[k * width..(k + 1) * width];
        let mean = mean[k];
        let squares = fold_sum(acc[k])
            + row[tail..]
                .iter()
                .map(|v| (v - mean) * (v - mean))
                .sum::<f32>();
        rstd[k] = 1.0 / (squares / n + eps).sqrt();
    }
    let s = rstd.map(|rstd| _mm512_set1_ps(rstd));
    for c in 0..full {
        let (wc, bc) = unsafe {
            (
                _mm512_loadu_ps(w.add(c * LANES)),
                _mm512_loadu_ps(b.add(c * LANES)),
            )
        };
        for k in 0..R {
            unsafe {
                let v = _mm512_sub_ps(_mm512_loadu_ps(p.add(at(k, c))), m[k]);
                let v = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(v, s[k]), wc), bc);
                _mm512_storeu_ps(p.add(at(k, c)), v);
            }
        }
    }
    for k in 0..R {
        for i in tail..width {
            let v = &mut x[k * width + i];
            *v = (*v - mean[k]) * rstd[k] * weight[i] + bias[i];
        }
    }
}
