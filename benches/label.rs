//! Labeling throughput on `job_match.policy` pairs (2 cores on the reference machine):
//! - the engine alone, on already decoded batches (goal: at least 2 million pairs per second);
//! - end to end from JSON lines (decode, label, write JSON), beside merely parsing the same lines
//!   into `serde_json::Value` with the same threads (goal: at least 80% of that throughput).
//!
//! Run: `cargo bench --bench label`; figures in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rayon::prelude::*;
use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::label::batch::PairBatch;
use rubric_runtime::label::decode::Decoder;
use rubric_runtime::label::engine::{Ctx, Engine, Events, Labels};
use rubric_runtime::label::value::Interner;
use rubric_runtime::label::{LabelOptions, label_stream};
use rubric_runtime::random_pairs::PairGenerator;
use std::hint::black_box;
use std::path::Path;

const PAIRS: usize = 100_000;

fn engine() -> Engine {
    let compiled = compile_file(Path::new("policies/job_match.policy"), &Options::default())
        .expect("compiles");
    Engine::new(compiled.lowered.labeling)
}

fn lines(engine: &Engine) -> Vec<String> {
    let mut g = PairGenerator::new(&engine.program, 42);
    (0..PAIRS).map(|_| g.pair().to_string()).collect()
}

fn bench(c: &mut Criterion) {
    let engine = engine();
    let lines = lines(&engine);
    let text = lines.join("\n") + "\n";

    // Decoded batches, as `rubric label` builds them: each keeps the interner its pairs were
    // decoded with.
    let decoder = Decoder::new(&engine.program);
    let batches: Vec<(Interner<'_>, PairBatch)> = lines
        .chunks(4096)
        .map(|chunk| {
            let mut strings = Interner::new(&engine.strings);
            let mut batch = PairBatch::new(&engine.program);
            for (i, l) in chunk.iter().enumerate() {
                let pair = decoder
                    .decode(i as u64 + 1, l, &mut strings)
                    .expect("valid pair");
                batch.push(&pair);
            }
            (strings, batch)
        })
        .collect();

    let mut group = c.benchmark_group("label");
    group.sample_size(10);
    group.throughput(Throughput::Elements(PAIRS as u64));
    group.bench_function(BenchmarkId::new("engine_decoded", PAIRS), |b| {
        b.iter(|| {
            batches.par_iter().for_each(|(strings, batch)| {
                let mut strings = strings.clone();
                let mut events = Events::new(engine.program.dimensions.len());
                let mut labels = Labels::default();
                let mut ctx = Ctx::new(&mut strings, &mut events, None);
                engine.label_batch(batch, &mut ctx, &mut labels);
                black_box(labels);
            });
        });
    });
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(BenchmarkId::new("parse_json_only", PAIRS), |b| {
        b.iter(|| {
            lines.par_iter().for_each(|l| {
                black_box(serde_json::from_str::<serde_json::Value>(l).expect("JSON"));
            });
        });
    });
    group.bench_function(BenchmarkId::new("end_to_end", PAIRS), |b| {
        b.iter(|| {
            let mut input = std::io::Cursor::new(text.as_bytes());
            let mut out = std::io::sink();
            black_box(
                label_stream(
                    &engine,
                    &mut input,
                    &mut out,
                    None,
                    LabelOptions::default(),
                    &mut |_| {},
                )
                .expect("labels"),
            );
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
