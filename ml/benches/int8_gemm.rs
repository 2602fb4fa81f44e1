//! The int8 matrix multiply (`rubric_ml::quant::gemm`) against candle at the pair encoder's
//! shapes: the student's GEMMs at batch 32 × 96 tokens (m = 3,072 rows; k = 64 → n = 64, fused
//! QKV k = 64 → n = 192, FFN up k = 64 → n = 256, FFN down k = 256 → n = 64) and a teacher's FFN up
//! projection (m = 4,096, k = 384, n = 1,536). Per shape: every kernel path this CPU runs on one
//! thread, `par_gemm` on rayon's pool, candle's f32 `matmul` (its default threads, and inside a
//! one-thread pool) and candle's `QMatMul` with Q8_0 weights. Throughput is in operations
//! (2·m·n·k per product), so criterion's `elem/s` reads as ops/s. Before the groups it prints the
//! measured `vpdpbusd` peak of one core (independent chains in registers), the ceiling for
//! "% of peak".
//!
//! Run: `cargo bench -p rubric-ml --offline --bench int8_gemm -- --warm-up-time 1 --measurement-time 3`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::quant::gemm::{PackedWeights, Path, gemm_with, par_gemm};
use std::hint::black_box;
use std::time::Duration;

/// One benchmarked product: `[m, k] · [n, k]ᵀ`.
struct Shape {
    name: &'static str,
    m: usize,
    k: usize,
    n: usize,
}

const SHAPES: [Shape; 5] = [
    Shape {
        name: "student k64 n64 (projection)",
        m: 3072,
        k: 64,
        n: 64,
    },
    Shape {
        name: "student k64 n192 (fused qkv)",
        m: 3072,
        k: 64,
        n: 192,
    },
    Shape {
        name: "student k64 n256 (ffn up)",
        m: 3072,
        k: 64,
        n: 256,
    },
    Shape {
        name: "student k256 n64 (ffn down)",
        m: 3072,
        k: 256,
        n: 64,
    },
    Shape {
        name: "teacher k384 n1536 (ffn up)",
        m: 4096,
        k: 384,
        n: 1536,
    },
];

/// The `vpdpbusd` peak of one core: 16 independent accumulator chains in registers.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod peak {
    use std::arch::x86_64::*;
    use std::hint::black_box;
    use std::time::Instant;

    /// Independent accumulators: more than `vpdpbusd`'s latency × issue rate.
    const CHAINS: usize = 16;

    /// `iters` rounds of one `vpdpbusd` per chain; returns a sum so nothing is optimized away.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    fn dpbusd_chains(iters: u64, seed: i32) -> i32 {
        let x = _mm512_set1_epi32(seed);
        let y = _mm512_set1_epi32(seed ^ 0x0101_0101);
        let mut acc = [_mm512_setzero_si512(); CHAINS];
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_dpbusd_epi32(*a, x, y);
            }
        }
        let sum = acc
            .into_iter()
            .fold(_mm512_setzero_si512(), |s, a| _mm512_add_epi32(s, a));
        _mm512_reduce_add_epi32(sum)
    }

    /// Giga-operations per second (2 per u8 × i8 multiply-add), best of 5 runs; `None` without
    /// AVX-512 VNNI.
    pub fn gops() -> Option<f64> {
        let vnni = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni");
        if !vnni {
            return None;
        }
        let iters = 20_000_000u64;
        let mut best = 0f64;
        for _ in 0..5 {
            let start = Instant::now();
            // SAFETY: the CPU has AVX-512 F, BW and VNNI (checked above).
            let r = unsafe { dpbusd_chains(black_box(iters), black_box(0x0302_0107)) };
            let secs = start.elapsed().as_secs_f64();
            black_box(r);
            let ops = iters as f64 * CHAINS as f64 * 64.0 * 2.0;
            best = best.max(ops / secs / 1e9);
        }
        Some(best)
    }
}

/// No `vpdpbusd` off x86-64.
#[cfg(not(target_arch = "x86_64"))]
mod peak {
    /// Always `None`.
    pub fn gops() -> Option<f64> {
        None
    }
}

fn bench(c: &mut Criterion) {
    match peak::gops() {
        Some(gops) => println!("vpdpbusd peak, one thread: {gops:.1} GOPS"),
        None => println!("vpdpbusd peak: no AVX-512 VNNI on this CPU"),
    }
    println!("rayon threads: {}", rayon::current_num_threads());
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    for shape in &SHAPES {
        let Shape { name, m, k, n } = *shape;
        let a: Vec<u8> = (0..m * k).map(|_| rng.random()).collect();
        let w: Vec<i8> = (0..n * k).map(|_| rng.random()).collect();
        let packed = PackedWeights::pack(&w, n, k).unwrap();
        let mut out = vec![0i32; m * n];

        let x = Tensor::from_vec(
            a.iter().map(|&v| f32::from(v)).collect::<Vec<_>>(),
            (m, k),
            &Device::Cpu,
        )
        .unwrap();
        let wf = Tensor::from_vec(
            w.iter().map(|&v| f32::from(v)).collect::<Vec<_>>(),
            (n, k),
            &Device::Cpu,
        )
        .unwrap();
        let wt = wf.t().unwrap();
        let q8 = QMatMul::from_qtensor(QTensor::quantize(&wf, GgmlDType::Q8_0).unwrap()).unwrap();

        let mut group = c.benchmark_group(format!("int8_gemm/{name}"));
        group.sample_size(10);
        group.warm_up_time(Duration::from_secs(1));
        group.measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements((2 * m * n * k) as u64));
        for path in Path::ALL.into_iter().filter(|p| p.available()) {
            group.bench_function(path.name(), |b| {
                b.iter(|| gemm_with(path, black_box(&a), m, &packed, &mut out).unwrap())
            });
        }
        group.bench_function(format!("par_gemm ({})", Path::detect().name()), |b| {
            b.iter(|| par_gemm(black_box(&a), m, &packed, &mut out).unwrap())
        });
        group.bench_function("candle f32 matmul", |b| {
            b.iter(|| black_box(x.matmul(&wt).unwrap()))
        });
        group.bench_function("candle f32 matmul, 1 thread", |b| {
            b.iter(|| one_thread.install(|| black_box(x.matmul(&wt).unwrap())))
        });
        group.bench_function("candle q8_0 qmatmul", |b| {
            b.iter(|| black_box(q8.forward(&x).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
