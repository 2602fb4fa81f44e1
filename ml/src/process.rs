//! Process-wide settings a training process needs before its first thread: how it keeps the
//! memory it frees, and how many threads candle's elementwise ops use. [`prepare`] makes both.

/// Both settings below, first thing in `main`.
///
/// # Safety
///
/// No other thread may run yet: it writes the environment ([`serial_candle_elementwise`]).
#[allow(unsafe_code)]
pub unsafe fn prepare() {
    keep_freed_memory();
    // SAFETY: passed on to the caller.
    unsafe { serial_candle_elementwise() };
}

/// Run candle's own elementwise ops on the calling thread (`CANDLE_NUM_THREADS=1`) unless the
/// environment already says otherwise. candle 0.11 spreads large elementwise ops over a pool of
/// its own beside rayon's, whose workers spin for a while after each op: on the 2-core machine of
/// `BENCHMARKS.md` the spinning worker took 22 % of the CPU samples of a training step at the
/// student's shape, and without it the medians of six alternating runs were 4-7 % faster (the
/// student's training step the same). The heavy elementwise work (GELU, softmax, layer norm,
/// attention, dropout) runs in this crate's kernels on rayon's threads either way.
/// Returns whether it set the variable. Call it before candle's first elementwise op (the pool
/// reads the variable once).
///
/// # Safety
///
/// No other thread may run yet: the environment is not synchronized (`std::env::set_var`).
#[allow(unsafe_code)]
pub unsafe fn serial_candle_elementwise() -> bool {
    const VAR: &str = "CANDLE_NUM_THREADS";
    if std::env::var_os(VAR).is_some() {
        return false;
    }
    // SAFETY: the caller guarantees that no other thread runs.
    unsafe { std::env::set_var(VAR, "1") };
    true
}

// Training allocates and frees tensors of megabytes at every step, and glibc's defaults hand such
// blocks back to the kernel, so the next step pays a page fault for every 4 KiB of them again.

/// The largest block glibc may serve from its heaps rather than from its own `mmap` (glibc's
/// ceiling for `M_MMAP_THRESHOLD` on 64-bit targets): a MiniLM-sized layer's activations at
/// batch 32 (25 MB) stay below it.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of a heap that glibc keeps rather than trims.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Keep freed blocks of up to 32 MiB for reuse instead of returning them to the kernel. Call it
/// once, at the start of the process (through [`prepare`]). On the 2-core machine of
/// `BENCHMARKS.md` it made training steps of 2 × 128 and 2 × 256 encoders 16-53 % faster in
/// alternating runs (page faults and the TLB shootdowns of `munmap` took a quarter of the step). Returns whether the
/// allocator took both settings; elsewhere than glibc it does nothing and returns false.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only sets two of the allocator's thresholds; it takes no pointers,
        // and glibc serializes it with allocation.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_takes_both_thresholds() {
        let taken = keep_freed_memory();
        assert_eq!(taken, cfg!(all(target_os = "linux", target_env = "gnu")));
        // A block above the old default threshold (128 KiB) is still allocated and freed.
        let block = vec![1u8; 4 << 20];
        assert_eq!(
            block.iter().map(|&b| usize::from(b)).sum::<usize>(),
            4 << 20
        );
    }
}
