//! The served model's element-wise row kernels, one thread, at the example student's widths
//! (a chunk of 768 word pieces: 8 pairs of 96): the add-and-norm of rows of 64 (by hand on
//! AVX-512 beside the portable loop), the activation quantizer on rows of 64 and 256 (AVX-512
//! beside portable) and GELU on rows of 256. Rows/s is criterion's `elem/s`. Results in
//! BENCHMARKS.md.
//!
//! Run: `cargo bench -p rubric-ml --offline --bench rows -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::kernels::{add_layer_norm_rows, add_layer_norm_rows_portable, gelu_in_place};
use rubric_ml::quant::linear::{Quantized, quantize_activations, quantize_activations_portable};
use std::hint::black_box;

const ROWS: usize = 768;

fn bench(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut random =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-3.0..3.0)).collect() };
    let (x64, res, x256) = (random(ROWS * 64), random(ROWS * 64), random(ROWS * 256));
    let (w, b) = (random(64), random(64));
    let mut group = c.benchmark_group("rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    let mut y = x64.clone();
    group.bench_function("add+layer norm 64/avx512", |bch| {
        bch.iter(|| {
            y.copy_from_slice(&x64);
            add_layer_norm_rows(black_box(&mut y), Some(&res), &w, &b, 1e-12)
        })
    });
    group.bench_function("add+layer norm 64/portable", |bch| {
        bch.iter(|| {
            y.copy_from_slice(&x64);
            add_layer_norm_rows_portable(black_box(&mut y), Some(&res), &w, &b, 1e-12)
        })
    });
    let mut q = Quantized::default();
    for (k, x) in [(64, &x64), (256, &x256)] {
        group.bench_function(format!("quantize {k}/avx512"), |bch| {
            bch.iter(|| quantize_activations(black_box(x), ROWS, k, &mut q))
        });
        group.bench_function(format!("quantize {k}/portable"), |bch| {
            bch.iter(|| quantize_activations_portable(black_box(x), ROWS, k, &mut q))
        });
    }
    let mut y = x256.clone();
    group.bench_function("gelu 256", |bch| {
        bch.iter(|| {
            y.copy_from_slice(&x256);
            gelu_in_place(black_box(&mut y))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
