//! The batched u8×i8→i32 matrix multiply at the heart of int8 inference: weights packed once into
//! 64-byte lines (16 output channels × 4 consecutive k bytes), and three kernels over that one
//! layout, chosen at run time: AVX-512 VNNI (`vpdpbusd`), exact AVX2 (widened to i16,
//! `vpmaddwd`) and portable Rust. Every kernel is exact: equal to `reference` bit for bit.

use rayon::prelude::*;
use std::fmt;
use std::sync::OnceLock;

/// Output channels in one line of the packed layout.
const LANES: usize = 16;
/// Consecutive k bytes held by one 32-bit lane of a line.
const KGROUP: usize = 4;
/// Lines side by side in one panel: the VNNI kernel's 64 output channels.
const PANEL_LINES: usize = 4;
/// Output channels of a full panel.
const PANEL_COLS: usize = LANES * PANEL_LINES;
/// Row counts of the parallel split are a multiple of this (every kernel's row block divides it).
const PAR_ROW_ALIGN: usize = 24;
/// Multiply-adds (m·n·k) below which `par_gemm` stays on one thread: about 40 µs of VNNI work,
/// several times what waking rayon's workers costs.
const PAR_MIN_WORK: usize = 1 << 22;

/// The largest k at which no sum can overflow i32: k · 255 · 128 ≤ `i32::MAX`.
pub const MAX_K: usize = (i32::MAX as usize) / (255 * 128);

/// One 64-byte line of packed weights: 16 output channels × 4 consecutive k bytes, channel-major.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(64))]
struct Line([i8; LANES * KGROUP]);

/// A line of zeros: the padding of every panel.
const ZERO_LINE: Line = Line([0; LANES * KGROUP]);

/// Weights [n, k] (row-major, i8, one row per output channel) packed for the kernels.
///
/// Layout: k is padded with zeros to `k4 = ⌈k/4⌉` groups of 4 and n to `n16 = ⌈n/16⌉` lines of 16
/// channels. Channels are cut into panels of 4 lines (64 channels; the last panel may have fewer
/// lines); panel `p` starts at line `p · 4 · k4` and stores, for each k group `g`, its lines
/// `v = 0..nv` at `g · nv + v`. Inside a line, channel `j`'s 4 bytes are at `4j..4j + 4`. Zero
/// padding contributes nothing to any sum.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PackedWeights {
    n: usize,
    k: usize,
    k4: usize,
    n16: usize,
    lines: Vec<Line>,
    col_sums: Vec<i32>,
}

impl fmt::Debug for PackedWeights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedWeights")
            .field("n", &self.n)
            .field("k", &self.k)
            .finish_non_exhaustive()
    }
}

impl PackedWeights {
    /// Packs row-major `[n, k]` weights; errors on a length other than `n · k`, an empty shape, or
    /// a k above [`MAX_K`] (where i32 sums could overflow).
    pub fn pack(weights: &[i8], n: usize, k: usize) -> Result<PackedWeights, String> {
        let mut packed = PackedWeights::default();
        packed.repack(weights, n, k)?;
        Ok(packed)
    }

    /// Packs `weights` as [`PackedWeights::pack`] does, into this value's memory (attention
    /// packs each head's keys and values anew, and keeps one buffer for them).
    pub fn repack(&mut self, weights: &[i8], n: usize, k: usize) -> Result<(), String> {
        if n == 0 || k == 0 {
            return Err(format!(
                "weights need at least one output channel and one input, got n = {n}, k = {k}"
            ));
        }
        if k > MAX_K {
            return Err(format!(
                "k = {k} is above {MAX_K}, where i32 sums of u8 × i8 products could overflow"
            ));
        }
        if n.checked_mul(k) != Some(weights.len()) {
            return Err(format!(
                "weights have {} values, expected n × k = {n} × {k}",
                weights.len()
            ));
        }
        let k4 = k.div_ceil(KGROUP);
        let n16 = n.div_ceil(LANES);
        (self.n, self.k, self.k4, self.n16) = (n, k, k4, n16);
        self.lines.clear();
        self.lines.resize(n16 * k4, ZERO_LINE);
        self.col_sums.clear();
        for (channel, row) in weights.chunks_exact(k).enumerate() {
            // Group g of this channel is at `first + g · step`, bytes `at..at + 4`.
            let (first, at) = self.position(channel, 0);
            let step = self.panel_lines(channel / PANEL_COLS);
            let groups = row.chunks_exact(KGROUP);
            let rest = groups.remainder();
            for (g, bytes) in groups.enumerate() {
                if let (Some(line), Ok(bytes)) = (
                    self.lines.get_mut(first + g * step),
                    <[i8; KGROUP]>::try_from(bytes),
                ) {
                    line.0[at..at + KGROUP].copy_from_slice(&bytes);
                }
            }
            if !rest.is_empty()
                && let Some(line) = self.lines.get_mut(first + (k / KGROUP) * step)
            {
                line.0[at..at + rest.len()].copy_from_slice(rest);
            }
            self.col_sums.push(row.iter().map(|&x| i32::from(x)).sum());
        }
        Ok(())
    }

    /// Output channels (rows of the unpacked weights).
    pub fn n(&self) -> usize {
        self.n
    }

    /// Inputs per output channel.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Σ_k w[n,k] per output channel (for the zero-point correction).
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }

    /// The weights back in [n, k] row-major (for saving / tests).
    pub fn unpack(&self) -> Vec<i8> {
        let mut weights = vec![0i8; self.n * self.k];
        for (channel, row) in weights.chunks_exact_mut(self.k).enumerate() {
            for (g, bytes) in row.chunks_mut(KGROUP).enumerate() {
                let (line, at) = self.position(channel, g);
                let len = bytes.len();
                bytes.copy_from_slice(&self.lines[line].0[at..at + len]);
            }
        }
        weights
    }

    /// Number of panels (of up to 64 channels).
    fn panels(&self) -> usize {
        self.n16.div_ceil(PANEL_LINES)
    }

    /// Lines side by side in panel `p`: 4, or fewer in the last panel.
    fn panel_lines(&self, p: usize) -> usize {
        PANEL_LINES.min(self.n16 - p * PANEL_LINES)
    }

    /// The lines of panel `p`, `k4 · panel_lines(p)` of them.
    fn panel(&self, p: usize) -> &[Line] {
        let start = p * PANEL_LINES * self.k4;
        &self.lines[start..start + self.k4 * self.panel_lines(p)]
    }

    /// The line and byte offset of channel `channel`'s k group `g`.
    fn position(&self, channel: usize, g: usize) -> (usize, usize) {
        let (p, in_panel) = (channel / PANEL_COLS, channel % PANEL_COLS);
        let (v, j) = (in_panel / LANES, in_panel % LANES);
        let line = p * PANEL_LINES * self.k4 + g * self.panel_lines(p) + v;
        (line, j * KGROUP)
    }
}

/// A kernel family; every one gives the same (exact) results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// AVX-512 VNNI: `vpdpbusd` on 512-bit registers, 6 rows × 64 channels per block.
    Vnni512,
    /// AVX2: bytes widened to i16 and multiplied with `vpmaddwd` (exact, no i16 saturation).
    Avx2,
    /// Plain Rust, for any target.
    Portable,
}

impl Path {
    /// Every path, fastest first.
    pub const ALL: [Path; 3] = [Path::Vnni512, Path::Avx2, Path::Portable];

    /// The best path this CPU runs (detected once, then cached).
    pub fn detect() -> Path {
        static BEST: OnceLock<Path> = OnceLock::new();
        *BEST.get_or_init(|| {
            Path::ALL
                .into_iter()
                .find(|path| path.available())
                .unwrap_or(Path::Portable)
        })
    }

    /// Whether this CPU runs the path.
    pub fn available(self) -> bool {
        match self {
            Path::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Path::Vnni512 => x86::has_vnni512(),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => x86::has_avx2(),
            #[cfg(not(target_arch = "x86_64"))]
            Path::Vnni512 | Path::Avx2 => false,
        }
    }

    /// A short lowercase name (`vnni512`, `avx2`, `portable`) for logs and benchmarks.
    pub fn name(self) -> &'static str {
        match self {
            Path::Vnni512 => "vnni512",
            Path::Avx2 => "avx2",
            Path::Portable => "portable",
        }
    }
}

/// out[m, n] = Σ_k a[m, k]·w[n, k]; a row-major [m, k] (row stride k), out row-major [m, n].
///
/// Runs the best path of this CPU ([`Path::detect`]) on the calling thread.
pub fn gemm(a: &[u8], m: usize, w: &PackedWeights, out: &mut [i32]) -> Result<(), String> {
    gemm_with(Path::detect(), a, m, w, out)
}

/// [`gemm`] on a chosen path; errors if this CPU lacks the path or a length disagrees with the
/// shapes.
pub fn gemm_with(
    path: Path,
    a: &[u8],
    m: usize,
    w: &PackedWeights,
    out: &mut [i32],
) -> Result<(), String> {
    check_shapes(a, m, w, out)?;
    if !path.available() {
        return Err(format!("this CPU cannot run the `{}` kernels", path.name()));
    }
    if m == 0 {
        return Ok(());
    }
    match path {
        Path::Portable => {
            portable::gemm(a, w, out);
            Ok(())
        }
        #[cfg(target_arch = "x86_64")]
        Path::Vnni512 => x86::gemm_vnni512(a, m, w, out),
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => x86::gemm_avx2(a, w, out),
        #[cfg(not(target_arch = "x86_64"))]
        Path::Vnni512 | Path::Avx2 => {
            Err(format!("this CPU cannot run the `{}` kernels", path.name()))
        }
    }
}

/// Splits the rows over rayon's threads when the work is large enough to pay (else same as gemm).
pub fn par_gemm(a: &[u8], m: usize, w: &PackedWeights, out: &mut [i32]) -> Result<(), String> {
    check_shapes(a, m, w, out)?;
    let path = Path::detect();
    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(w.n).saturating_mul(w.k);
    if threads < 2 || work < PAR_MIN_WORK || m < 2 * PAR_ROW_ALIGN {
        return gemm_with(path, a, m, w, out);
    }
    // Four tasks per thread so a thread slowed by other work does not hold up the rest.
    let rows = m
        .div_ceil(4 * threads)
        .next_multiple_of(PAR_ROW_ALIGN)
        .max(PAR_ROW_ALIGN);
    out.par_chunks_mut(rows * w.n)
        .zip(a.par_chunks(rows * w.k))
        .try_for_each(|(out, a)| gemm_with(path, a, out.len() / w.n, w, out))
}

/// The exact reference: plain i32 loops over unpacked weights.
///
/// `a` is `[m, k]`, `w` is `[n, k]` and `out` is `[m, n]`, all row-major; rows missing from a
/// slice shorter than its shape leave the matching outputs untouched. Exact up to k = [`MAX_K`];
/// beyond it a sum may wrap (as it would in the kernels).
pub fn reference(a: &[u8], m: usize, k: usize, w: &[i8], n: usize, out: &mut [i32]) {
    if k == 0 || n == 0 {
        return;
    }
    for (a_row, out_row) in a.chunks_exact(k).zip(out.chunks_exact_mut(n)).take(m) {
        for (o, w_row) in out_row.iter_mut().zip(w.chunks_exact(k)) {
            let mut sum = 0i32;
            for (&x, &y) in a_row.iter().zip(w_row) {
                sum = sum.wrapping_add(i32::from(x) * i32::from(y));
            }
            *o = sum;
        }
    }
}

/// Checks that `a` is `[m, k]` and `out` is `[m, n]` for the packed weights.
fn check_shapes(a: &[u8], m: usize, w: &PackedWeights, out: &[i32]) -> Result<(), String> {
    if m.checked_mul(w.k) != Some(a.len()) {
        return Err(format!(
            "activations have {} values, expected m × k = {m} × {}",
            a.len(),
            w.k
        ));
    }
    if m.checked_mul(w.n) != Some(out.len()) {
        return Err(format!(
            "the output has {} values, expected m × n = {m} × {}",
            out.len(),
            w.n
        ));
    }
    Ok(())
}

/// The portable kernel: one row against one line (16 channels) at a time, 16 i32 sums of 4
/// products each per k group, in plain Rust that compilers vectorize for the target's baseline
/// SIMD (about 5–7 GOPS with x86-64's SSE2, a fallback rather than a fast path).
mod portable {
    use super::{KGROUP, LANES, PANEL_COLS, PackedWeights};

    /// `out = a · wᵀ`; the caller has checked the shapes.
    pub(super) fn gemm(a: &[u8], w: &PackedWeights, out: &mut [i32]) {
        let (k, n) = (w.k, w.n);
        let mut padded = vec![0u8; w.k4 * KGROUP];
        for (a_row, out_row) in a.chunks_exact(k).zip(out.chunks_exact_mut(n)) {
            padded[..k].copy_from_slice(a_row);
            for p in 0..w.panels() {
                let nv = w.panel_lines(p);
                let panel = w.panel(p);
                for v in 0..nv {
                    let mut acc = [0i32; LANES];
                    for (x, group) in padded.chunks_exact(KGROUP).zip(panel.chunks_exact(nv)) {
                        let x = [
                            i32::from(x[0]),
                            i32::from(x[1]),
                            i32::from(x[2]),
                            i32::from(x[3]),
                        ];
                        for (o, wj) in acc.iter_mut().zip(group[v].0.chunks_exact(KGROUP)) {
                            *o += x[0] * i32::from(wj[0])
                                + x[1] * i32::from(wj[1])
                                + x[2] * i32::from(wj[2])
                                + x[3] * i32::from(wj[3]);
                        }
                    }
                    let col0 = p * PANEL_COLS + v * LANES;
                    let cols = LANES.min(n - col0);
                    out_row[col0..col0 + cols].copy_from_slice(&acc[..cols]);
                }
            }
        }
    }
}

/// Quantizes rows of activations as `linear::quantize_activations` does, on AVX-512 where the
/// CPU has it; `false` where it does not (or the shapes do not fit), and the caller quantizes.
pub(crate) fn quantize_rows_fast(
    x: &[f32],
    m: usize,
    k: usize,
    values: &mut [u8],
    scales: &mut [f32],
    zeros: &mut [i32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if x86::has_avx512() {
        return x86::quantize_rows_avx512(x, m, k, values, scales, zeros).is_ok();
    }
    let _ = (x, m, k, values, scales, zeros);
    false
}

/// The x86-64 kernels. The only unsafe code of the module: SIMD loads and stores through raw
/// pointers, each behind a check of the bounds it relies on.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use super::{KGROUP, LANES, Line, PANEL_COLS, PackedWeights};
    use std::arch::x86_64::*;

    /// Rows per VNNI register block: 6 rows × 4 lines = 24 accumulators + 4 weight registers.
    const VNNI_ROWS: usize = 6;
    /// Rows per cache block of the VNNI driver: its activations stay in L1/L2 while every panel
    /// (at most 64 × k bytes, 24 KiB at k = 384) is swept over them.
    const VNNI_CHUNK_ROWS: usize = 16 * VNNI_ROWS;
    /// Rows per AVX2 register block: 6 rows × 2 quads = 12 accumulators of the 16 registers.
    const AVX2_ROWS: usize = 6;

    /// Whether the CPU has AVX-512 F, BW and VNNI.
    pub(super) fn has_vnni512() -> bool {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
    }

    /// Whether the CPU has AVX2.
    pub(super) fn has_avx2() -> bool {
        is_x86_feature_detected!("avx2")
    }

    /// The error for a block whose bounds do not hold (never expected: the drivers cut blocks
    /// inside checked shapes).
    fn out_of_bounds(kernel: &str) -> String {
        format!("internal error: a `{kernel}` block does not fit its buffers")
    }

    /// VNNI `out = a · wᵀ`; the caller has checked the shapes and that `m > 0`.
    pub(super) fn gemm_vnni512(
        a: &[u8],
        m: usize,
        w: &PackedWeights,
        out: &mut [i32],
    ) -> Result<(), String> {
        if !has_vnni512() {
            return Err("this CPU cannot run the `vnni512` kernels".to_string());
        }
        // SAFETY: the CPU has every feature `vnni512_driver` enables (checked just above).
        unsafe { vnni512_driver(a, m, w, out) }
    }

    /// Sweeps blocks of `VNNI_CHUNK_ROWS` rows: for each panel, every `VNNI_ROWS`-row register
    /// block of the chunk.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn vnni512_driver(
        a: &[u8],
        m: usize,
        w: &PackedWeights,
        out: &mut [i32],
    ) -> Result<(), String> {
        let (k, n, k4) = (w.k, w.n, w.k4);
        let width = k4 * KGROUP;
        let mut padded = Vec::new();
        for chunk0 in (0..m).step_by(VNNI_CHUNK_ROWS) {
            let rows = VNNI_CHUNK_ROWS.min(m - chunk0);
            let a_chunk = &a[chunk0 * k..(chunk0 + rows) * k];
            // Rows whose k is not a multiple of 4 are copied with zero padding, so the kernel
            // always reads whole 4-byte groups.
            let (a_chunk, lda) = if k == width {
                (a_chunk, k)
            } else {
                padded.clear();
                padded.resize(rows * width, 0u8);
                for (dst, src) in padded.chunks_exact_mut(width).zip(a_chunk.chunks_exact(k)) {
                    dst[..k].copy_from_slice(src);
                }
                (padded.as_slice(), width)
            };
            let out_chunk = &mut out[chunk0 * n..(chunk0 + rows) * n];
            for p in 0..w.panels() {
                let nv = w.panel_lines(p);
                let panel = w.panel(p);
                let col0 = p * PANEL_COLS;
                let cols = PANEL_COLS.min(n - col0);
                for r0 in (0..rows).step_by(VNNI_ROWS) {
                    let mr = VNNI_ROWS.min(rows - r0);
                    let block = Block {
                        a: &a_chunk[r0 * lda..],
                        lda,
                        k4,
                        w: panel,
                        out: &mut out_chunk[r0 * n + col0..],
                        ldo: n,
                        cols,
                    };
                    match mr {
                        1 => vnni512_lines::<1>(nv, block)?,
                        2 => vnni512_lines::<2>(nv, block)?,
                        3 => vnni512_lines::<3>(nv, block)?,
                        4 => vnni512_lines::<4>(nv, block)?,
                        5 => vnni512_lines::<5>(nv, block)?,
                        _ => vnni512_lines::<VNNI_ROWS>(nv, block)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// One register block's operands: `MR` rows of `a` (stride `lda`, at least `k4 · 4` readable
    /// bytes each), a panel of `k4 · NV` weight lines, and `MR` output rows (stride `ldo`) of which
    /// the first `cols` values are written.
    struct Block<'a> {
        a: &'a [u8],
        lda: usize,
        k4: usize,
        w: &'a [Line],
        out: &'a mut [i32],
        ldo: usize,
        cols: usize,
    }

    impl Block<'_> {
        /// Whether the block's slices hold everything an `mr`-row, `nv`-line kernel touches.
        fn fits(&self, mr: usize, nv: usize) -> bool {
            mr >= 1
                && self.cols > (nv - 1) * LANES
                && self.cols <= nv * LANES
                && self.lda >= self.k4 * KGROUP
                && self.w.len() == self.k4 * nv
                && self.a.len() >= (mr - 1) * self.lda + self.k4 * KGROUP
                && self.out.len() >= (mr - 1) * self.ldo + self.cols
        }
    }

    /// Checks the block's bounds, then runs the `MR`-row VNNI kernel for a panel of `nv` lines.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn vnni512_lines<const MR: usize>(nv: usize, block: Block<'_>) -> Result<(), String> {
        if !(1..=4).contains(&nv) || !block.fits(MR, nv) {
            return Err(out_of_bounds("vnni512"));
        }
        let Block {
            a,
            lda,
            k4,
            w,
            out,
            ldo,
            cols,
        } = block;
        let (a, w, out) = (a.as_ptr(), w.as_ptr(), out.as_mut_ptr());
        // SAFETY: `fits` checked that `a` holds `MR` rows of `k4 · 4` bytes at stride `lda`, `w`
        // holds `k4 · nv` lines and `out` holds `MR` rows of `cols ≤ nv · 16` values at stride
        // `ldo`: exactly what the kernel reads and writes. The CPU features are this function's.
        unsafe {
            match nv {
                1 => vnni512_kernel::<MR, 1>(a, lda, k4, w, out, ldo, cols),
                2 => vnni512_kernel::<MR, 2>(a, lda, k4, w, out, ldo, cols),
                3 => vnni512_kernel::<MR, 3>(a, lda, k4, w, out, ldo, cols),
                _ => vnni512_kernel::<MR, 4>(a, lda, k4, w, out, ldo, cols),
            }
        }
        Ok(())
    }

    /// `MR` rows × `NV` lines (16 channels each) of output: per k group, `NV` weight loads, then
    /// per row one 4-byte broadcast and `NV` `vpdpbusd`s into independent accumulators.
    ///
    /// # Safety
    /// `a + r·lda` must have `k4 · 4` readable bytes for `r < MR`, `w` must have `k4 · NV` lines,
    /// `out + r·ldo` must have `cols` writable values for `r < MR`, with `cols ≤ NV · 16`, and the
    /// CPU must have AVX-512 F, BW and VNNI.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[inline]
    unsafe fn vnni512_kernel<const MR: usize, const NV: usize>(
        a: *const u8,
        lda: usize,
        k4: usize,
        w: *const Line,
        out: *mut i32,
        ldo: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm512_setzero_si512(); NV]; MR];
        let mut wp = w.cast::<__m512i>();
        let mut ap = a;
        for _ in 0..k4 {
            let mut wv = [_mm512_setzero_si512(); NV];
            for (v, reg) in wv.iter_mut().enumerate() {
                // SAFETY: line `g · NV + v` of the `k4 · NV` lines (caller's contract); lines are
                // 64-byte aligned (`Line` is `align(64)`).
                *reg = unsafe { _mm512_load_si512(wp.add(v)) };
            }
            for (r, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY: bytes `4g..4g + 4` of row `r`, inside its `k4 · 4` readable bytes.
                let x = unsafe { ap.add(r * lda).cast::<i32>().read_unaligned() };
                let x = _mm512_set1_epi32(x);
                for (reg, &wv) in acc_row.iter_mut().zip(&wv) {
                    *reg = _mm512_dpbusd_epi32(*reg, x, wv);
                }
            }
            // SAFETY: stays within (or one past the end of) the lines and row bytes.
            unsafe {
                wp = wp.add(NV);
                ap = ap.add(KGROUP);
            }
        }
        for (r, acc_row) in acc.iter().enumerate() {
            for (v, &reg) in acc_row.iter().enumerate() {
                let col = v * LANES;
                // SAFETY: row `r`'s values `col..col + 16` (or the first `cols - col` of them
                // under the mask) lie inside its `cols` writable values.
                unsafe {
                    let dst = out.add(r * ldo + col);
                    if col + LANES <= cols {
                        _mm512_storeu_si512(dst.cast::<__m512i>(), reg);
                    } else if col < cols {
                        let mask = ((1u32 << (cols - col)) - 1) as u16;
                        _mm512_mask_storeu_epi32(dst, mask, reg);
                    }
                }
            }
        }
    }

    /// AVX2 `out = a · wᵀ`; the caller has checked the shapes.
    pub(super) fn gemm_avx2(a: &[u8], w: &PackedWeights, out: &mut [i32]) -> Result<(), String> {
        if !has_avx2() {
            return Err("this CPU cannot run the `avx2` kernels".to_string());
        }
        // SAFETY: the CPU has AVX2, the one feature `avx2_driver` enables (checked just above).
        unsafe { avx2_driver(a, w, out) }
    }

    /// Per block of `AVX2_ROWS` rows: widen the rows' bytes to i16 once (4 per `u64`, k padded
    /// with zeros), then sweep every half line (8 channels) of every panel.
    #[target_feature(enable = "avx2")]
    fn avx2_driver(a: &[u8], w: &PackedWeights, out: &mut [i32]) -> Result<(), String> {
        let (k, n, k4) = (w.k, w.n, w.k4);
        let mut wide = vec![0u64; AVX2_ROWS * k4];
        for (a_block, out_block) in a.chunks(AVX2_ROWS * k).zip(out.chunks_mut(AVX2_ROWS * n)) {
            let mr = a_block.len() / k;
            for (dst, src) in wide.chunks_exact_mut(k4).zip(a_block.chunks_exact(k)) {
                let groups = src.chunks_exact(KGROUP);
                let tail = groups.remainder();
                for (d, bytes) in dst.iter_mut().zip(groups) {
                    *d = widen([bytes[0], bytes[1], bytes[2], bytes[3]]);
                }
                if !tail.is_empty() {
                    let mut bytes = [0u8; KGROUP];
                    bytes[..tail.len()].copy_from_slice(tail);
                    dst[k4 - 1] = widen(bytes);
                }
            }
            for p in 0..w.panels() {
                let nv = w.panel_lines(p);
                let panel = w.panel(p);
                for half in 0..2 * nv {
                    let col0 = p * PANEL_COLS + half * (LANES / 2);
                    if col0 >= n {
                        break;
                    }
                    let cols = (LANES / 2).min(n - col0);
                    let block = Avx2Block {
                        a: &wide,
                        k4,
                        w: panel,
                        nv,
                        half,
                        out: &mut out_block[col0..],
                        ldo: n,
                        cols,
                    };
                    match mr {
                        1 => avx2_block::<1>(block)?,
                        2 => avx2_block::<2>(block)?,
                        3 => avx2_block::<3>(block)?,
                        4 => avx2_block::<4>(block)?,
                        5 => avx2_block::<5>(block)?,
                        _ => avx2_block::<AVX2_ROWS>(block)?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Four bytes as four little-endian u16 lanes of a `u64`.
    #[inline]
    fn widen(bytes: [u8; KGROUP]) -> u64 {
        let x = u64::from(u32::from_le_bytes(bytes));
        (x & 0xff) | ((x & 0xff00) << 8) | ((x & 0xff_0000) << 16) | ((x & 0xff00_0000) << 24)
    }

    /// One AVX2 register block's operands: `MR` rows of widened activations (`k4` `u64`s each,
    /// contiguous), a panel of `k4 · nv` lines of which half line `half` (8 channels) is used, and
    /// `MR` output rows (stride `ldo`) of which the first `cols ≤ 8` values are written.
    struct Avx2Block<'a> {
        a: &'a [u64],
        k4: usize,
        w: &'a [Line],
        nv: usize,
        half: usize,
        out: &'a mut [i32],
        ldo: usize,
        cols: usize,
    }

    /// Checks the block's bounds, then runs the `MR`-row AVX2 kernel.
    #[target_feature(enable = "avx2")]
    fn avx2_block<const MR: usize>(block: Avx2Block<'_>) -> Result<(), String> {
        let Avx2Block {
            a,
            k4,
            w,
            nv,
            half,
            out,
            ldo,
            cols,
        } = block;
        let fits = MR >= 1
            && (1..=LANES / 2).contains(&cols)
            && half < 2 * nv
            && w.len() == k4 * nv
            && a.len() >= MR * k4
            && out.len() >= (MR - 1) * ldo + cols;
        if !fits {
            return Err(out_of_bounds("avx2"));
        }
        // SAFETY: checked just above: `a` holds `MR · k4` values, `w` holds `k4 · nv` lines with
        // half line `half < 2 · nv` inside each group of `nv` lines, and `out` holds `MR` rows of
        // `cols ≤ 8` values at stride `ldo`. The CPU features are this function's.
        unsafe {
            avx2_kernel::<MR>(
                a.as_ptr(),
                k4,
                w.as_ptr(),
                nv,
                half,
                out.as_mut_ptr(),
                ldo,
                cols,
            )
        };
        Ok(())
    }

    /// `MR` rows × 8 channels: per k group, two 16-byte weight quads (4 channels × 4 k) widened
    /// to i16, and per row a broadcast of its 4 widened bytes and two `vpmaddwd`s, whose i32 pairs
    /// (k0·w0 + k1·w1, k2·w2 + k3·w3) are summed at the end. Exact: every product fits i16 × i16
    /// → i32 and no step saturates.
    ///
    /// # Safety
    /// `a` must have `MR · k4` values, `w` must have `k4 · nv` lines with `half < 2 · nv`,
    /// `out + r·ldo` must have `cols ≤ 8` writable values for `r < MR`, and the CPU must have
    /// AVX2.
    #[target_feature(enable = "avx2")]
    #[inline]
    #[allow(clippy::too_many_arguments)]
    unsafe fn avx2_kernel<const MR: usize>(
        a: *const u64,
        k4: usize,
        w: *const Line,
        nv: usize,
        half: usize,
        out: *mut i32,
        ldo: usize,
        cols: usize,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; MR];
        // Half line `half` of group 0: line `half / 2`, bytes `32 · (half % 2)..`.
        // SAFETY: inside the first group's `nv` lines since `half < 2 · nv`.
        let w0 = unsafe { w.add(half / 2).cast::<u8>().add(32 * (half % 2)) };
        let stride = nv * size_of::<Line>();
        for g in 0..k4 {
            // SAFETY: 32 bytes of half line `half` in group `g < k4`, inside the `k4 · nv` lines.
            let (w0, w1) = unsafe {
                let wp = w0.add(g * stride);
                (
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.cast::<__m128i>())),
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(wp.add(16).cast::<__m128i>())),
                )
            };
            for (r, acc_row) in acc.iter_mut().enumerate() {
                // SAFETY: value `r · k4 + g` of the `MR · k4` values.
                let x = unsafe { a.add(r * k4 + g).read() };
                let x = _mm256_set1_epi64x(x as i64);
                acc_row[0] = _mm256_add_epi32(acc_row[0], _mm256_madd_epi16(x, w0));
                acc_row[1] = _mm256_add_epi32(acc_row[1], _mm256_madd_epi16(x, w1));
            }
        }
        let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(cols as i32), lane);
        for (r, acc_row) in acc.iter().enumerate() {
            // Lanes hold [c0 c0 c1 c1 | c2 c2 c3 c3] and [c4 c4 c5 c5 | c6 c6 c7 c7]; the
            // horizontal add gives [c0 c1 c4 c5 | c2 c3 c6 c7], the permute puts them in order.
            let sums = _mm256_hadd_epi32(acc_row[0], acc_row[1]);
            let sums = _mm256_permute4x64_epi64::<0b11_01_10_00>(sums);
            // SAFETY: row `r`'s first `cols` values are writable; with `cols < 8` the mask writes
            // only those (a masked-off lane is neither written nor faulted on).
            unsafe {
                let dst = out.add(r * ldo);
                if cols == LANES / 2 {
                    _mm256_storeu_si256(dst.cast::<__m256i>(), sums);
                } else {
                    _mm256_maskstore_epi32(dst, mask, sums);
                }
            }
        }
    }

    /// Whether the CPU has AVX-512 F and BW (the row quantizer's).
    pub(super) fn has_avx512() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")
    }

    /// [`crate::quant::linear::quantize_activations`] on AVX-512: the same arithmetic, in the
    /// same order, so the same bytes, scales and zero points; each row's range in vector
    /// registers rather than folded through memory.
    pub(crate) fn quantize_rows_avx512(
        x: &[f32],
        m: usize,
        k: usize,
        values: &mut [u8],
        scales: &mut [f32],
        zeros: &mut [i32],
    ) -> Result<(), String> {
        if !has_avx512() {
            return Err("this CPU cannot run the `avx512` row quantizer".to_string());
        }
        let n = m.checked_mul(k).ok_or_else(|| out_of_bounds("quantize"))?;
        if k == 0 || x.len() < n || values.len() < n || scales.len() < m || zeros.len() < m {
            return Err(out_of_bounds("quantize"));
        }
        // SAFETY: the CPU has AVX-512 F and BW (checked above); the buffers hold `m` rows of
        // `k` (checked above).
        unsafe { quantize_avx512(x, m, k, values, scales, zeros) };
        Ok(())
    }

    /// Rows quantized side by side: a row's range is a chain of comparisons and two folds,
    /// then a few scalar steps, which overlap across rows.
    const QUANTIZE_ROWS: usize = 4;

    /// # Safety
    /// `x` and `values` must hold `m · k` values, `scales` and `zeros` `m`, and the CPU must
    /// have AVX-512 F and BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn quantize_avx512(
        x: &[f32],
        m: usize,
        k: usize,
        values: &mut [u8],
        scales: &mut [f32],
        zeros: &mut [i32],
    ) {
        let mut r = 0;
        while r + QUANTIZE_ROWS <= m {
            // SAFETY: rows `r..r + QUANTIZE_ROWS` are inside the buffers (caller's contract).
            unsafe { quantize_block::<QUANTIZE_ROWS>(x, r, k, values, scales, zeros) };
            r += QUANTIZE_ROWS;
        }
        for r in r..m {
            // SAFETY: row `r` is inside the buffers (caller's contract).
            unsafe { quantize_block::<1>(x, r, k, values, scales, zeros) };
        }
    }

    /// Rows `first..first + R` of [`quantize_avx512`].
    ///
    /// # Safety
    /// Those rows must be inside `x`, `values`, `scales` and `zeros`, and the CPU must have
    /// AVX-512 F and BW.
    // Row `j` indexes several arrays of the block at once.
    #[allow(clippy::needless_range_loop)]
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn quantize_block<const R: usize>(
        x: &[f32],
        first: usize,
        k: usize,
        values: &mut [u8],
        scales: &mut [f32],
        zeros: &mut [i32],
    ) {
        let full = k / LANES;
        let tail = k % LANES;
        let mask = ((1u32 << tail) - 1) as u16;
        let round = _mm512_set1_ps(crate::kernels::ROUND);
        let round_bits = _mm512_set1_epi32(crate::kernels::ROUND.to_bits() as i32);
        let top = _mm512_set1_ps(255.0);
        let bottom = _mm512_setzero_ps();
        // SAFETY (every load and store below): row `first + j` is `x[(first + j)·k..][..k]`
        // (and so in `values`), inside them (caller's contract); value `c·16 + 16 ≤ k` for
        // `c < full`, the tail under its mask.
        let p: [*const f32; R] =
            std::array::from_fn(|j| unsafe { x.as_ptr().add((first + j) * k) });
        let q: [*mut u8; R] =
            std::array::from_fn(|j| unsafe { values.as_mut_ptr().add((first + j) * k) });
        // The range always holds 0 (as `kernels::row_range`); masked lanes load 0.
        let (mut lo, mut hi) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
        for c in 0..full {
            for j in 0..R {
                let v = unsafe { _mm512_loadu_ps(p[j].add(c * LANES)) };
                lo[j] = _mm512_min_ps(v, lo[j]);
                hi[j] = _mm512_max_ps(v, hi[j]);
            }
        }
        if tail > 0 {
            for j in 0..R {
                let v = unsafe { _mm512_maskz_loadu_ps(mask, p[j].add(full * LANES)) };
                lo[j] = _mm512_min_ps(v, lo[j]);
                hi[j] = _mm512_max_ps(v, hi[j]);
            }
        }
        let mut inv = [_mm512_setzero_ps(); R];
        let mut offset = [_mm512_setzero_ps(); R];
        for j in 0..R {
            let (lo, hi) = (_mm512_reduce_min_ps(lo[j]), _mm512_reduce_max_ps(hi[j]));
            let range = hi - lo;
            let scale = if range > 0.0 && range < f32::INFINITY {
                range / 255.0
            } else {
                1.0
            };
            let inverse = 1.0 / scale;
            let zero = ((-lo * inverse + 0.5) as i32).clamp(0, 255);
            scales[first + j] = scale;
            zeros[first + j] = zero;
            inv[j] = _mm512_set1_ps(inverse);
            offset[j] = _mm512_set1_ps(zero as f32);
        }
        // y = v·inv + z, clamped to [0, 255] (NaN to 0), rounded to nearest even.
        let quantize = |v: __m512, j: usize| {
            let y = _mm512_add_ps(_mm512_mul_ps(v, inv[j]), offset[j]);
            let y = _mm512_max_ps(_mm512_min_ps(top, y), bottom);
            _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(y, round)), round_bits)
        };
        for c in 0..full {
            for j in 0..R {
                unsafe {
                    let v = _mm512_loadu_ps(p[j].add(c * LANES));
                    let bytes = _mm512_cvtepi32_epi8(quantize(v, j));
                    _mm_storeu_si128(q[j].add(c * LANES).cast::<__m128i>(), bytes);
                }
            }
        }
        if tail > 0 {
            for j in 0..R {
                unsafe {
                    let v = _mm512_maskz_loadu_ps(mask, p[j].add(full * LANES));
                    _mm512_mask_cvtepi32_storeu_epi8(
                        q[j].add(full * LANES).cast::<i8>(),
                        mask,
                        quantize(v, j),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random_case(rng: &mut ChaCha8Rng, m: usize, k: usize, n: usize) -> (Vec<u8>, Vec<i8>) {
        let a = (0..m * k).map(|_| rng.random::<u8>()).collect();
        let w = (0..n * k).map(|_| rng.random::<i8>()).collect();
        (a, w)
    }

    fn expected(a: &[u8], m: usize, k: usize, w: &[i8], n: usize) -> Vec<i32> {
        let mut out = vec![0; m * n];
        reference(a, m, k, w, n, &mut out);
        out
    }

    /// Every available path, `gemm` and `par_gemm` equal the reference on this case.
    fn check_all_paths(a: &[u8], m: usize, k: usize, w: &[i8], n: usize) {
        let want = expected(a, m, k, w, n);
        let packed = PackedWeights::pack(w, n, k).unwrap();
        for path in Path::ALL.into_iter().filter(|p| p.available()) {
            let mut got = vec![i32::MIN; m * n];
            gemm_with(path, a, m, &packed, &mut got).unwrap();
            assert_eq!(got, want, "{} m={m} k={k} n={n}", path.name());
        }
        let mut got = vec![i32::MIN; m * n];
        gemm(a, m, &packed, &mut got).unwrap();
        assert_eq!(got, want, "gemm m={m} k={k} n={n}");
        let mut got = vec![i32::MIN; m * n];
        par_gemm(a, m, &packed, &mut got).unwrap();
        assert_eq!(got, want, "par_gemm m={m} k={k} n={n}");
    }

    #[test]
    fn reference_matches_a_hand_computed_product() {
        // [1 2; 3 4] · [[1 -1], [2 0], [-3 5]]ᵀ, worked by hand.
        let a = [1u8, 2, 3, 4];
        let w = [1i8, -1, 2, 0, -3, 5];
        let mut out = [0i32; 6];
        reference(&a, 2, 2, &w, 3, &mut out);
        assert_eq!(out, [-1, 2, 7, -1, 6, 11]);
    }

    #[test]
    fn every_path_is_exact_on_random_odd_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x9e11);
        let ks = [1, 2, 3, 4, 5, 7, 63, 64, 65, 127, 257, 300];
        for case in 0..160 {
            let m = rng.random_range(1..=37);
            let n = rng.random_range(1..=70);
            let k = if case < ks.len() * 4 {
                ks[case % ks.len()]
            } else {
                rng.random_range(1..=300)
            };
            let (a, w) = random_case(&mut rng, m, k, n);
            check_all_paths(&a, m, k, &w, n);
        }
    }

    #[test]
    fn every_path_is_exact_at_every_small_n_and_m() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for n in 1..=70 {
            let m = 1 + n % 13;
            let k = 1 + n % 9;
            let (a, w) = random_case(&mut rng, m, k, n);
            check_all_paths(&a, m, k, &w, n);
        }
    }

    #[test]
    fn every_path_is_exact_at_the_extremes() {
        for (k, n, m) in [
            (1, 1, 1),
            (5, 17, 7),
            (64, 64, 13),
            (257, 70, 37),
            (1536, 20, 3),
        ] {
            let a = vec![255u8; m * k];
            for value in [-128i8, 127, -1] {
                let w = vec![value; n * k];
                check_all_paths(&a, m, k, &w, n);
                let want = i32::from(value) * 255 * k as i32;
                assert!(expected(&a, m, k, &w, n).iter().all(|&x| x == want));
            }
            // Alternating extremes, so lanes and groups differ.
            let w: Vec<i8> = (0..n * k)
                .map(|i| if i % 3 == 0 { -128 } else { 127 })
                .collect();
            check_all_paths(&a, m, k, &w, n);
        }
    }

    #[test]
    fn every_path_is_exact_at_the_largest_k() {
        let (m, n, k) = (2, 3, MAX_K);
        let a = vec![255u8; m * k];
        let w = vec![-128i8; n * k];
        check_all_paths(&a, m, k, &w, n);
        assert!(PackedWeights::pack(&vec![0; MAX_K + 1], 1, MAX_K + 1).is_err());
    }

    #[test]
    fn every_path_is_exact_on_the_student_shapes() {
        let mut rng = ChaCha8Rng::seed_from_u64(96);
        for (batch, k, n) in [
            (1, 64, 64),
            (2, 64, 192),
            (1, 64, 256),
            (3, 256, 64),
            (1, 384, 100),
        ] {
            let m = 96 * batch;
            let (a, w) = random_case(&mut rng, m, k, n);
            check_all_paths(&a, m, k, &w, n);
        }
    }

    #[test]
    fn par_gemm_splits_large_work_exactly() {
        // m · n · k = 1,000 · 96 · 129 is above the threshold, and 1,000 rows split unevenly.
        let mut rng = ChaCha8Rng::seed_from_u64(1000);
        let (m, k, n) = (1000, 129, 96);
        let (a, w) = random_case(&mut rng, m, k, n);
        let packed = PackedWeights::pack(&w, n, k).unwrap();
        let mut single = vec![0; m * n];
        gemm(&a, m, &packed, &mut single).unwrap();
        let mut par = vec![0; m * n];
        par_gemm(&a, m, &packed, &mut par).unwrap();
        assert_eq!(par, single);
        assert_eq!(single, expected(&a, m, k, &w, n));
    }

    #[test]
    fn zero_rows_is_an_empty_product() {
        let packed = PackedWeights::pack(&[1, 2, 3], 1, 3).unwrap();
        for path in Path::ALL.into_iter().filter(|p| p.available()) {
            gemm_with(path, &[], 0, &packed, &mut []).unwrap();
        }
        par_gemm(&[], 0, &packed, &mut []).unwrap();
    }

    #[test]
    fn wrong_sizes_are_errors() {
        let packed = PackedWeights::pack(&[1; 12], 3, 4).unwrap();
        let mut out = vec![0; 6];
        for path in Path::ALL.into_iter().filter(|p| p.available()) {
            let err = gemm_with(path, &[1; 7], 2, &packed, &mut out).unwrap_err();
            assert_eq!(err, "activations have 7 values, expected m × k = 2 × 4");
            let err = gemm_with(path, &[1; 8], 2, &packed, &mut out[..5]).unwrap_err();
            assert_eq!(err, "the output has 5 values, expected m × n = 2 × 3");
        }
        assert!(gemm(&[1; 9], 2, &packed, &mut out).is_err());
        assert!(par_gemm(&[1; 8], 3, &packed, &mut out).is_err());
        assert!(gemm(&[1; 8], usize::MAX, &packed, &mut out).is_err());
    }

    #[test]
    fn bad_weights_are_errors() {
        assert_eq!(
            PackedWeights::pack(&[1; 5], 2, 3).unwrap_err(),
            "weights have 5 values, expected n × k = 2 × 3"
        );
        assert!(PackedWeights::pack(&[], 0, 3).is_err());
        assert!(PackedWeights::pack(&[], 3, 0).is_err());
        assert!(PackedWeights::pack(&[1], usize::MAX, 2).is_err());
    }

    #[test]
    fn an_unavailable_path_is_an_error() {
        let packed = PackedWeights::pack(&[1; 4], 1, 4).unwrap();
        assert!(Path::Portable.available());
        assert!(Path::detect().available());
        for path in Path::ALL.into_iter().filter(|p| !p.available()) {
            let err = gemm_with(path, &[1; 4], 1, &packed, &mut [0]).unwrap_err();
            assert!(err.contains(path.name()), "{err}");
        }
        // The direct entries check the CPU themselves too.
        #[cfg(target_arch = "x86_64")]
        if !Path::Vnni512.available() {
            assert!(x86::gemm_vnni512(&[1; 4], 1, &packed, &mut [0]).is_err());
        }
    }

    #[test]
    fn detect_picks_the_fastest_available_path() {
        let best = Path::ALL.into_iter().find(|p| p.available()).unwrap();
        assert_eq!(Path::detect(), best);
        let names: Vec<_> = Path::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(names, ["vnni512", "avx2", "portable"]);
    }

    #[test]
    fn col_sums_are_the_row_sums_of_the_weights() {
        let w = [1i8, -2, 3, 127, 127, 127, -128, -128, 0, 5, 5, 5];
        let packed = PackedWeights::pack(&w, 4, 3).unwrap();
        assert_eq!(packed.col_sums(), [2, 381, -256, 15]);
        assert_eq!((packed.n(), packed.k()), (4, 3));
    }

    #[test]
    fn the_padding_is_zero() {
        // n = 17, k = 5: one full line, one line holding 1 channel, groups padded to 8 bytes.
        let w: Vec<i8> = (0..17 * 5).map(|i| (i % 255 - 127) as i8).collect();
        let packed = PackedWeights::pack(&w, 17, 5).unwrap();
        let nonzero = packed.lines.iter().flat_map(|l| l.0).filter(|&x| x != 0);
        let expected_nonzero = w.iter().filter(|&&x| x != 0).count();
        assert_eq!(nonzero.count(), expected_nonzero);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn pack_unpack_round_trips(
            (n, k, w) in (1usize..=80, 1usize..=70).prop_flat_map(|(n, k)| {
                (Just(n), Just(k), proptest::collection::vec(any::<i8>(), n * k))
            })
        ) {
            let packed = PackedWeights::pack(&w, n, k).unwrap();
            prop_assert_eq!(packed.unpack(), w.clone());
            let sums: Vec<i32> =
                w.chunks(k).map(|r| r.iter().map(|&x| i32::from(x)).sum()).collect();
            prop_assert_eq!(packed.col_sums(), sums.as_slice());
        }

        #[test]
        fn every_path_is_exact_on_arbitrary_shapes(
            (m, k, n, seed) in (1usize..=20, 1usize..=90, 1usize..=70, any::<u64>())
        ) {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let (a, w) = random_case(&mut rng, m, k, n);
            check_all_paths(&a, m, k, &w, n);
        }
    }
}
