//! The f32 matrix multiply of the inference engine: a bounds-checked view over the `gemm`
//! crate (the one candle's CPU backend multiplies with), reading operands in place through
//! their strides, so attention reads each head straight out of the fused QKV rows.

/// A matrix of `rows` × `cols` inside a slice: element (r, c) at `r * row_stride + c * col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> View<'a> {
    /// A row-major matrix.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major `[cols, rows]` matrix, read in place.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> View<'a> {
        View {
            data,
            rows,
            cols,
            row_stride: 1,
            col_stride: rows,
        }
    }

    /// The largest index the view reads, or an error when it falls outside the slice.
    fn check(&self, what: &str) -> Result<(), String> {
        if self.rows == 0 || self.cols == 0 {
            return Ok(());
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .and_then(|a| (self.cols - 1).checked_mul(self.col_stride).map(|b| (a, b)))
            .and_then(|(a, b)| a.checked_add(b));
        match last {
            Some(last) if last < self.data.len() && to_isize(self.row_stride).is_some() => Ok(()),
            _ => Err(format!(
                "the {what} matrix ({} × {}, strides {} and {}) does not fit its {} values",
                self.rows,
                self.cols,
                self.row_stride,
                self.col_stride,
                self.data.len()
            )),
        }
    }
}

fn to_isize(v: usize) -> Option<isize> {
    isize::try_from(v).ok()
}

/// `out[m, n] = a[m, k] · b[k, n]` (plus what `out` held, with `accumulate`), `out` row-major
/// with row stride `out_stride`. Single-threaded: the engine parallelizes over sequences.
pub fn matmul(
    out: &mut [f32],
    out_stride: usize,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
) -> Result<(), String> {
    matmul_on(out, out_stride, a, b, accumulate, gemm::Parallelism::None)
}

/// [`matmul`] on the threads of rayon's pool (one product split over them).
pub fn par_matmul(
    out: &mut [f32],
    out_stride: usize,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
) -> Result<(), String> {
    let threads = match rayon::current_num_threads() {
        0 | 1 => gemm::Parallelism::None,
        n => gemm::Parallelism::Rayon(n),
    };
    matmul_on(out, out_stride, a, b, accumulate, threads)
}

fn matmul_on(
    out: &mut [f32],
    out_stride: usize,
    a: View<'_>,
    b: View<'_>,
    accumulate: bool,
    threads: gemm::Parallelism,
) -> Result<(), String> {
    if a.cols != b.rows {
        return Err(format!(
            "cannot multiply a {} × {} matrix by a {} × {} one",
            a.rows, a.cols, b.rows, b.cols
        ));
    }
    a.check("left")?;
    b.check("right")?;
    let (m, n, k) = (a.rows, b.cols, a.cols);
    if m == 0 || n == 0 {
        return Ok(());
    }
    if n > out_stride
        || (m - 1)
            .checked_mul(out_stride)
            .and_then(|v| v.checked_add(n))
            .is_none_or(|end| end > out.len())
    {
        return Err(format!(
            "the {m} × {n} product does not fit its output of {} values at row stride {out_stride}",
            out.len()
        ));
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                out[r * out_stride..r * out_stride + n].fill(0.0);
            }
        }
        return Ok(());
    }
    let strides = [
        out_stride,
        a.row_stride,
        a.col_stride,
        b.row_stride,
        b.col_stride,
    ];
    let [os, ars, acs, brs, bcs] = strides.map(|s| to_isize(s).unwrap_or(isize::MAX));
    if [os, ars, acs, brs, bcs].contains(&isize::MAX) {
        return Err("a stride is too large".to_string());
    }
    multiply(
        out, os, a.data, ars, acs, b.data, brs, bcs, m, n, k, accumulate, threads,
    );
    Ok(())
}

#[allow(unsafe_code, clippy::too_many_arguments)]
fn multiply(
    out: &mut [f32],
    os: isize,
    a: &[f32],
    ars: isize,
    acs: isize,
    b: &[f32],
    brs: isize,
    bcs: isize,
    m: usize,
    n: usize,
    k: usize,
    accumulate: bool,
    threads: gemm::Parallelism,
) {
    // SAFETY: `matmul` checked that every index the product reads, (m−1)·rs + (k−1)·cs of `a`
    // and (k−1)·rs + (n−1)·cs of `b`, and writes, (m−1)·os + n − 1 of `out`, is inside its
    // slice, that all strides fit an isize, and that m, n, k are non-zero; `out` is borrowed
    // mutably, so nothing else reads or writes it meanwhile.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            os,
            accumulate,
            a.as_ptr(),
            acs,
            ars,
            b.as_ptr(),
            bcs,
            brs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            threads,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn naive(a: View<'_>, b: View<'_>) -> Vec<f32> {
        let mut out = vec![0f32; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                let mut s = 0f32;
                for i in 0..a.cols {
                    s += a.data[r * a.row_stride + i * a.col_stride]
                        * b.data[i * b.row_stride + c * b.col_stride];
                }
                out[r * b.cols + c] = s;
            }
        }
        out
    }

    #[test]
    fn strided_products_agree_with_the_naive_loops() {
        let a: Vec<f32> = (0..7 * 5).map(|i| (i as f32 * 0.37).sin()).collect();
        let w: Vec<f32> = (0..3 * 5).map(|i| (i as f32 * 0.11).cos()).collect();
        // a [7, 5] · wᵀ where w is [3, 5] row-major.
        let (av, bv) = (View::rows(&a, 7, 5), View::transposed(&w, 5, 3));
        let mut out = vec![0f32; 21];
        matmul(&mut out, 3, av, bv, false).unwrap();
        for (x, y) in out.iter().zip(naive(av, bv)) {
            assert!((x - y).abs() < 1e-5, "{x} {y}");
        }
        // Accumulating adds to what was there.
        let before = out.clone();
        matmul(&mut out, 3, av, bv, true).unwrap();
        for (x, y) in out.iter().zip(before) {
            assert!((x - 2.0 * y).abs() < 1e-5);
        }
    }

    #[test]
    fn views_that_overrun_their_slice_are_refused() {
        let a = vec![0f32; 10];
        let bad = View::rows(&a, 3, 4);
        let mut out = vec![0f32; 12];
        let err = matmul(&mut out, 4, bad, View::rows(&a, 4, 2), false).unwrap_err();
        assert!(err.contains("left"), "{err}");
        let err = matmul(
            &mut out[..3],
            2,
            View::rows(&a, 2, 2),
            View::rows(&a, 2, 2),
            false,
        )
        .unwrap_err();
        assert!(err.contains("output"), "{err}");
    }
}
