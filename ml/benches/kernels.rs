//! The fused kernels against candle's composition of the same functions, forward and forward +
//! backward, at the shapes of a MiniLM-sized encoder (batch 32 × 128 tokens, hidden 384,
//! intermediate 1,536, 12 heads): GELU on `[4096, 1536]`, softmax on `[32, 12, 128, 128]`, layer
//! norm on `[4096, 384]`. Results in BENCHMARKS.md.
//!
//! Run: `cargo bench -p rubric-ml --bench kernels -- --warm-up-time 1 --measurement-time 4`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candle_core::{Device, Tensor, Var};
use criterion::{Criterion, criterion_group, criterion_main};
use rubric_ml::kernels::Kernels;
use std::hint::black_box;

fn random(dims: &[usize]) -> Tensor {
    Tensor::randn(0f32, 1.0, dims, &Device::Cpu).unwrap()
}

fn bench(c: &mut Criterion) {
    let gelu_in = random(&[4096, 1536]);
    let soft_in = random(&[32, 12, 128, 128]);
    let norm_in = random(&[4096, 384]);
    let w = Var::from_tensor(&random(&[384])).unwrap();
    let b = Var::from_tensor(&random(&[384])).unwrap();
    for kernels in [Kernels::Fused, Kernels::Composed] {
        let name = format!("{kernels:?}").to_lowercase();
        let mut group = c.benchmark_group(format!("kernels/{name}"));
        group.sample_size(10);
        group.bench_function("gelu forward", |bch| {
            bch.iter(|| black_box(kernels.gelu(&gelu_in).unwrap()))
        });
        group.bench_function("softmax forward", |bch| {
            bch.iter(|| black_box(kernels.softmax_last_dim(&soft_in).unwrap()))
        });
        group.bench_function("layer norm forward", |bch| {
            bch.iter(|| {
                black_box(
                    kernels
                        .layer_norm(&norm_in, w.as_tensor(), b.as_tensor(), 1e-12)
                        .unwrap(),
                )
            })
        });
        let x = Var::from_tensor(&gelu_in).unwrap();
        group.bench_function("gelu forward+backward", |bch| {
            bch.iter(|| {
                black_box(
                    kernels
                        .gelu(x.as_tensor())
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .backward()
                        .unwrap(),
                )
            })
        });
        let x = Var::from_tensor(&soft_in).unwrap();
        group.bench_function("softmax forward+backward", |bch| {
            bch.iter(|| {
                let y = kernels.softmax_last_dim(x.as_tensor()).unwrap();
                black_box((y.sqr().unwrap()).sum_all().unwrap().backward().unwrap())
            })
        });
        let x = Var::from_tensor(&norm_in).unwrap();
        group.bench_function("layer norm forward+backward", |bch| {
            bch.iter(|| {
                let y = kernels
                    .layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-12)
                    .unwrap();
                black_box(y.sqr().unwrap().sum_all().unwrap().backward().unwrap())
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
