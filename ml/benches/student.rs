//! The example's student scoring pairs, whole forward passes, at batch 1, 32 and 100 pairs of 96
//! word pieces: our inference encoder in int8 (every kind of layer), in f32 (same code, f32
//! multiplies), with candle's Q8_0 `QMatMul` in the transformer layers, and candle's own f32
//! model (`PairEncoder`, the training code's forward pass). Random weights of the example
//! student's shape (`examples/job_match`: 2 layers, hidden 64, 4 heads, intermediate 256, 4,096
//! word pieces, 2,000 feature slots), so the bench needs no trained model; pairs/s is
//! criterion's `elem/s`. Results in BENCHMARKS.md.
//!
//! Run: `cargo bench -p rubric-ml --offline --bench student -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candle_core::{DType, Device, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::model::{BertConfig, HeadSpec, PairBatch, PairEncoder, Pass};
use rubric_ml::params::Params;
use rubric_ml::quant::encoder::{Encoder, Sequence};
use rubric_ml::quant::weights::TensorMap;
use rubric_ml::quant::{LayerKind, quantize};
use std::collections::HashMap;
use std::hint::black_box;

const SEQ: usize = 96;
const FEATURES: usize = 2000;

fn spec() -> HeadSpec {
    HeadSpec {
        scores: (0..10).map(|i| format!("d{i}")).collect(),
        grades: (0..5).map(|i| format!("g{i}")).collect(),
        click: true,
    }
}

struct Pairs {
    ids: Vec<Vec<u32>>,
    types: Vec<Vec<u32>>,
    features: Vec<Vec<f32>>,
}

fn pairs(n: usize) -> Pairs {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut p = Pairs {
        ids: vec![],
        types: vec![],
        features: vec![],
    };
    for _ in 0..n {
        p.ids
            .push((0..SEQ).map(|_| rng.random_range(5..4096)).collect());
        p.types
            .push((0..SEQ).map(|i| u32::from(i >= SEQ / 2)).collect());
        // Sparse, as one-hot and multi-hot slots are.
        p.features.push(
            (0..FEATURES)
                .map(|_| if rng.random_bool(0.02) { 1.0 } else { 0.0 })
                .collect(),
        );
    }
    p
}

fn bench(c: &mut Criterion) {
    let cfg = BertConfig::new(4096, 64, 2, 4, 256, SEQ);
    let params = Params::seeded(3);
    let candle = PairEncoder::new(
        &cfg,
        FEATURES,
        &spec(),
        params.builder(DType::F32, &Device::Cpu),
    )
    .unwrap();
    let tensors: HashMap<String, Tensor> = params
        .named()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    let map = TensorMap::from_candle(&tensors, "random student").unwrap();
    let f32_model = Encoder::new(&cfg, &spec(), FEATURES, &map).unwrap();
    let int8_map = quantize(&map, &cfg, &LayerKind::ALL).unwrap();
    let int8 = Encoder::new(&cfg, &spec(), FEATURES, &int8_map).unwrap();
    let candle_q8 = f32_model.to_candle_q8().unwrap();
    eprintln!(
        "weights: f32 {} bytes, int8 {} bytes; rayon threads {}; int8 kernel {}",
        map.bytes(),
        int8_map.bytes(),
        rayon::current_num_threads(),
        rubric_ml::quant::gemm::Path::detect().name()
    );
    for batch in [1usize, 32, 100] {
        let p = pairs(batch);
        let seqs: Vec<Sequence<'_>> = (0..batch)
            .map(|i| Sequence {
                ids: &p.ids[i],
                types: &p.types[i],
                features: &p.features[i],
            })
            .collect();
        let dev = Device::Cpu;
        let padded = PairBatch {
            ids: Tensor::from_vec(p.ids.concat(), (batch, SEQ), &dev).unwrap(),
            types: Tensor::from_vec(p.types.concat(), (batch, SEQ), &dev).unwrap(),
            mask: Tensor::ones((batch, SEQ), DType::U32, &dev).unwrap(),
            features: Some(Tensor::from_vec(p.features.concat(), (batch, FEATURES), &dev).unwrap()),
        };
        let mut group = c.benchmark_group(format!("student/batch {batch}"));
        group.sample_size(10);
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function("rubric int8", |b| {
            b.iter(|| black_box(int8.forward(&seqs, None).unwrap()))
        });
        group.bench_function("rubric f32", |b| {
            b.iter(|| black_box(f32_model.forward(&seqs, None).unwrap()))
        });
        group.bench_function("candle QMatMul q8_0", |b| {
            b.iter(|| black_box(candle_q8.forward(&seqs, None).unwrap()))
        });
        group.bench_function("candle f32 model", |b| {
            b.iter(|| black_box(candle.forward(&padded, &mut Pass::Eval).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
