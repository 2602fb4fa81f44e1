//! Training and forward throughput of the pair encoder (`rubric_ml::model::PairEncoder`) at the
//! teacher's and the students' shapes, in pairs per second: full training steps as the trainer
//! takes them (a forward pass with dropout 0.1, the loss of a policy teacher's heads, backward,
//! an AdamW step with clipping) and evaluation passes alone. `benches/teacher_speed.py` runs the
//! same architecture in PyTorch; `benches/teacher_speed.sh` runs both side by side. Outside CI.
//!
//! Run: `cargo bench -p rubric-ml --bench train_speed [-- SHAPE ...]`, where a shape is
//! `LAYERSxHIDDEN[hHEADS]` (say `6x384h12`; heads default to hidden / 64, at least 4). The default
//! runs `6x384h12 4x256h4 2x128h4`. The environment sets the rest: `SHAPES` (the shapes, when no
//! argument gives them), `STEPS` (timed steps, 10), `WARMUP` (2), `BATCH` (32), `SEQ` (128),
//! `VOCAB` (8192), `RAYON_NUM_THREADS` (the threads, all cores by default), `KEEP_FREED_MEMORY`
//! (1, as the `rubric` binary; 0 for glibc's defaults), `CANDLE_NUM_THREADS` (candle's own
//! elementwise threads: 1, as the `rubric` binary sets it, unless given). Each shape prints one
//! line: `candle shape=6x384 batch=32 seq=128 train_pairs_per_s=... forward_pairs_per_s=...
//! heads=12`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candle_core::{D, DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::model::{BertConfig, HeadSpec, Outputs, PairBatch, PairEncoder, Pass};
use rubric_ml::optim::{AdamW, AdamWConfig};
use rubric_ml::params::Params;
use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error>>;

/// Score heads and grades of a policy teacher.
const SCORES: usize = 10;
const GRADES: usize = 5;
const LR: f64 = 1e-4;
const CLIP_NORM: f64 = 1.0;
const DEFAULT_SHAPES: &str = "6x384h12 4x256h4 2x128h4";

#[derive(Clone, Copy, Debug)]
struct Shape {
    layers: usize,
    hidden: usize,
    heads: usize,
}

impl Shape {
    /// `LAYERSxHIDDEN` or `LAYERSxHIDDENhHEADS`.
    fn parse(s: &str) -> Res<Shape> {
        let bad = || format!("shape {s:?} is not LAYERSxHIDDEN[hHEADS], say 6x384h12");
        let (layers, rest) = s.split_once('x').ok_or_else(bad)?;
        let (hidden, heads) = match rest.split_once('h') {
            Some((h, n)) => (h, Some(n)),
            None => (rest, None),
        };
        let layers: usize = layers.parse().map_err(|_| bad())?;
        let hidden: usize = hidden.parse().map_err(|_| bad())?;
        let heads = match heads {
            Some(n) => n.parse().map_err(|_| bad())?,
            None => (hidden / 64).max(4),
        };
        Ok(Shape {
            layers,
            hidden,
            heads,
        })
    }
}

struct Settings {
    steps: usize,
    warmup: usize,
    batch: usize,
    seq: usize,
    vocab: usize,
}

fn env_usize(name: &str, default: usize) -> Res<usize> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v
            .trim()
            .parse()
            .map_err(|_| format!("{name}={v:?} is not a number"))?),
        _ => Ok(default),
    }
}

fn random_batch(rng: &mut ChaCha8Rng, s: &Settings) -> Res<PairBatch> {
    let (b, t) = (s.batch, s.seq);
    let ids: Vec<u32> = (0..b * t)
        .map(|_| rng.random_range(0..s.vocab as u32))
        .collect();
    // `[CLS] query [SEP] candidate [SEP]`: type 0 for the first half, 1 for the second.
    let types: Vec<u32> = (0..b * t).map(|i| u32::from(i % t >= t / 2)).collect();
    let dev = Device::Cpu;
    Ok(PairBatch {
        ids: Tensor::from_vec(ids, (b, t), &dev)?,
        types: Tensor::from_vec(types, (b, t), &dev)?,
        mask: Tensor::ones((b, t), DType::U32, &dev)?,
        features: None,
    })
}

/// Random targets: a score in [0, 1] per score head and a grade per row.
fn random_targets(rng: &mut ChaCha8Rng, s: &Settings) -> Res<(Tensor, Tensor)> {
    let scores: Vec<f32> = (0..s.batch * SCORES).map(|_| rng.random()).collect();
    let mut grades = vec![0f32; s.batch * GRADES];
    for row in 0..s.batch {
        grades[row * GRADES + rng.random_range(0..GRADES)] = 1.0;
    }
    let dev = Device::Cpu;
    Ok((
        Tensor::from_vec(scores, (s.batch, SCORES), &dev)?,
        Tensor::from_vec(grades, (s.batch, GRADES), &dev)?,
    ))
}

/// The teacher's loss with every target present: per score head the mean squared error of the
/// sigmoid, summed over heads, plus the mean cross-entropy of the grade logits.
fn loss(out: &Outputs, scores: &Tensor, grades: &Tensor) -> Res<Tensor> {
    let z = out.score_logits.as_ref().ok_or("no score logits")?;
    let p = (z.neg()?.exp()? + 1.0)?.recip()?;
    let mse = (p - scores)?.sqr()?.mean(0)?.sum_all()?;
    let g = out.grade_logits.as_ref().ok_or("no grade logits")?;
    let logp = candle_nn::ops::log_softmax(g, D::Minus1)?;
    let ce = (grades * logp)?.sum(D::Minus1)?.neg()?.mean_all()?;
    Ok((mse + ce)?)
}

/// Train and forward pairs per second at one shape.
fn measure(shape: Shape, s: &Settings) -> Res<(f64, f64)> {
    let cfg = BertConfig::new(
        s.vocab,
        shape.hidden,
        shape.layers,
        shape.heads,
        4 * shape.hidden,
        s.seq,
    );
    let spec = HeadSpec {
        scores: (0..SCORES).map(|i| format!("score{i}")).collect(),
        grades: (0..GRADES).map(|i| format!("grade{i}")).collect(),
        click: false,
    };
    let params = Params::seeded(0);
    let model = PairEncoder::new(&cfg, 0, &spec, params.builder(DType::F32, &Device::Cpu))?;
    let mut optimizer = AdamW::new(params.named(), AdamWConfig::default())?;
    let mut data = ChaCha8Rng::seed_from_u64(1);
    let batch = random_batch(&mut data, s)?;
    let (scores, grades) = random_targets(&mut data, s)?;
    let mut dropout = ChaCha8Rng::seed_from_u64(2);

    let mut train_step = || -> Res<f32> {
        let out = model.forward(&batch, &mut Pass::Train(&mut dropout))?;
        let l = loss(&out, &scores, &grades)?;
        let value = l.to_scalar::<f32>()?;
        let mut grads = optimizer.gradients_start();
        optimizer.accumulate(&mut grads, &l.backward()?)?;
        optimizer.step(&grads, LR, CLIP_NORM)?;
        Ok(value)
    };
    for _ in 0..s.warmup {
        black_box(train_step()?);
    }
    let start = Instant::now();
    let mut last = 0f32;
    for _ in 0..s.steps {
        last = black_box(train_step()?);
    }
    let train_s = start.elapsed().as_secs_f64();
    if !last.is_finite() {
        return Err(format!("the loss is {last}").into());
    }

    let forward = || -> Res<()> {
        let out = model.forward(&batch, &mut Pass::Eval)?;
        let z = out.score_logits.ok_or("no score logits")?;
        black_box(z.sum_all()?.to_scalar::<f32>()?);
        Ok(())
    };
    for _ in 0..s.warmup {
        forward()?;
    }
    let start = Instant::now();
    for _ in 0..s.steps {
        forward()?;
    }
    let forward_s = start.elapsed().as_secs_f64();
    let pairs = (s.batch * s.steps) as f64;
    Ok((pairs / train_s, pairs / forward_s))
}

fn main() -> Res<()> {
    // As the `rubric` binary does (`process::prepare`), unless `KEEP_FREED_MEMORY=0` (glibc's
    // defaults) or `CANDLE_NUM_THREADS` is set, to compare.
    let keep_freed =
        env_usize("KEEP_FREED_MEMORY", 1)? != 0 && rubric_ml::process::keep_freed_memory();
    // SAFETY: no other thread runs yet.
    #[allow(unsafe_code)]
    unsafe {
        rubric_ml::process::serial_candle_elementwise()
    };
    // `cargo bench` passes `--bench`; anything starting with `-` is not a shape.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let shapes = if args.is_empty() {
        let from_env = std::env::var("SHAPES").unwrap_or_default();
        let text = if from_env.trim().is_empty() {
            DEFAULT_SHAPES.to_string()
        } else {
            from_env
        };
        text.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(Shape::parse)
            .collect::<Res<Vec<_>>>()?
    } else {
        args.iter()
            .map(|a| Shape::parse(a))
            .collect::<Res<Vec<_>>>()?
    };
    let settings = Settings {
        steps: env_usize("STEPS", 10)?.max(1),
        warmup: env_usize("WARMUP", 2)?,
        batch: env_usize("BATCH", 32)?.max(1),
        seq: env_usize("SEQ", 128)?.max(1),
        vocab: env_usize("VOCAB", 8192)?.max(1),
    };
    println!(
        "candle threads={} (RAYON_NUM_THREADS={}, CANDLE_NUM_THREADS={}) steps={} warmup={} keep_freed_memory={keep_freed}",
        candle_core::utils::get_num_threads(),
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        std::env::var("CANDLE_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        settings.steps,
        settings.warmup
    );
    for shape in shapes {
        let (train, forward) = measure(shape, &settings)?;
        println!(
            "candle shape={}x{} batch={} seq={} train_pairs_per_s={train:.2} forward_pairs_per_s={forward:.2} heads={}",
            shape.layers, shape.hidden, settings.batch, settings.seq, shape.heads
        );
    }
    Ok(())
}
