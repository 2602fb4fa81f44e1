//! One attention head of one sequence, as the inference encoder runs it: in f32 (the scores by
//! `dense::matmul`, softmax's numerators, the values' product, the division) and in int8
//! (`quant::attention`: the fused AVX-512 VNNI kernel where the CPU has it, and the portable
//! path through `gemm`), at the student's shape (96 word pieces, heads of 16) and a
//! MiniLM-sized one (128 word pieces, heads of 32). On the calling thread; throughput in heads
//! per second.
//!
//! Run: `cargo bench -p rubric-ml --offline --bench attention -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::kernels::softmax_numerators;
use rubric_ml::quant::attention::{AttentionPath, Head, Int8Attention, WEIGHT_SCALE};
use rubric_ml::quant::dense::{View, matmul};
use std::hint::black_box;

/// The f32 head: what `quant::encoder` runs for a head whose products stay f32.
fn f32_head(h: &Head<'_>, scale: f32, scores: &mut [f32], sums: &mut [f32], out: &mut [f32]) {
    let (t, hs, stride) = (h.rows, h.width, h.stride);
    let q = View {
        data: &h.block[h.q..],
        rows: t,
        cols: hs,
        row_stride: stride,
        col_stride: 1,
    };
    let kt = View {
        data: &h.block[h.k..],
        rows: hs,
        cols: t,
        row_stride: 1,
        col_stride: stride,
    };
    matmul(scores, t, q, kt, false).unwrap();
    softmax_numerators(scores, t, scale, sums);
    let v = View {
        data: &h.block[h.v..],
        rows: t,
        cols: hs,
        row_stride: stride,
        col_stride: 1,
    };
    matmul(out, hs, View::rows(scores, t, t), v, false).unwrap();
    for (row, &sum) in out.chunks_mut(hs).zip(sums.iter()) {
        let inv = 1.0 / sum;
        for v in row {
            *v *= inv;
        }
    }
}

fn bench(c: &mut Criterion) {
    for (name, t, width, heads) in [
        ("student t96 d16", 96, 16, 4),
        ("minilm t128 d32", 128, 32, 12),
    ] {
        let a = heads * width;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let block: Vec<f32> = (0..t * 3 * a)
            .map(|_| rng.random_range(-2.0..2.0))
            .collect();
        let h = Head {
            block: &block,
            stride: 3 * a,
            rows: t,
            queries: t,
            q: 0,
            k: a,
            v: 2 * a,
            width,
        };
        let scale = 1.0 / (width as f32).sqrt();
        let mut out = vec![0f32; t * width];
        let mut group = c.benchmark_group(format!("attention/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut scores = vec![0f32; t * t];
        let mut sums = vec![0f32; t];
        group.bench_function("f32", |b| {
            b.iter(|| f32_head(&h, scale, &mut scores, &mut sums, &mut out))
        });
        let mut int8 = Int8Attention::default();
        for path in [AttentionPath::Best, AttentionPath::Portable] {
            group.bench_function(format!("int8 {path:?}").to_lowercase(), |b| {
                b.iter(|| {
                    int8.head_on(path, &h, scale, WEIGHT_SCALE, &mut out, width)
                        .unwrap()
                })
            });
        }
        black_box(&out);
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
