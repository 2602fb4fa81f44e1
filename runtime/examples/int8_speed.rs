//! Pairs per second of a model folder's forward pass through the inference encoder, at batch
//! sizes of pairs of `--seq` word pieces: the f32 weights, the same weights quantized to int8
//! in memory (every kind of layer), and the f32 model with candle's Q8_0 `QMatMul` in its
//! transformer layers; with `--pruned DIR` (a quantize stage's `model/`) also that folder's
//! pruned f32 and int8 weights. Random word pieces and sparse features from a fixed seed, as
//! `benches/onnx_peer.py` times ONNX Runtime: `benches/int8_speed.sh` runs both side by side.
//! One JSON line per (model, batch).
//!
//! ```sh
//! cargo run --release -p rubric-runtime --example int8_speed -- RUN/stages/distill/KEY/model \
//!     [--pruned RUN/stages/quantize/KEY/model] [--batches 1,32,100] [--seq 96] [--seconds 3] [--only int8,f32]
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::quant::encoder::{Encoder, Sequence};
use rubric_ml::quant::weights::TensorMap;
use rubric_ml::quant::{LayerKind, quantize};
use rubric_runtime::scoring::INT8_WEIGHTS;
use rubric_runtime::teach::{POSITION_BIAS, read_card};
use std::path::Path;
use std::path::PathBuf;
use std::time::{Duration, Instant};

type Failure = Box<dyn std::error::Error>;

struct Options {
    model: PathBuf,
    pruned: Option<PathBuf>,
    batches: Vec<usize>,
    seq: usize,
    seconds: f64,
    /// The models to time (all when empty).
    only: Vec<String>,
}

fn options() -> Result<Options, Failure> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        model: PathBuf::new(),
        pruned: None,
        batches: vec![1, 32, 100],
        seq: 96,
        seconds: 3.0,
        only: Vec::new(),
    };
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--pruned" => o.pruned = Some(PathBuf::from(value()?)),
            "--batches" => {
                o.batches = value()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--seq" => o.seq = value()?.parse()?,
            "--seconds" => o.seconds = value()?.parse()?,
            "--only" => o.only = value()?.split(',').map(str::to_string).collect(),
            other if !other.starts_with("--") => o.model = PathBuf::from(other),
            other => return Err(format!("unknown option {other}").into()),
        }
    }
    if o.model.as_os_str().is_empty() {
        return Err("usage: int8_speed MODEL_DIR [--pruned DIR] [--batches 1,32,100] [--seq 96] [--seconds 3] [--only f32,int8,candle_q8_0,pruned_f32,pruned_int8]".into());
    }
    Ok(o)
}

/// Pairs of `seq` word pieces (the query the first half) and features 2% of them 1.
fn inputs(
    n: usize,
    seq: usize,
    vocab: usize,
    features: usize,
) -> Vec<(Vec<u32>, Vec<u32>, Vec<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    (0..n)
        .map(|_| {
            (
                (0..seq)
                    .map(|_| rng.random_range(5..vocab as u32))
                    .collect(),
                (0..seq).map(|i| u32::from(i >= seq / 2)).collect(),
                (0..features)
                    .map(|_| if rng.random_bool(0.02) { 1.0 } else { 0.0 })
                    .collect(),
            )
        })
        .collect()
}

fn time(name: &str, encoder: &Encoder, o: &Options) -> Result<(), Failure> {
    if !o.only.is_empty() && !o.only.iter().any(|n| n == name) {
        return Ok(());
    }
    for &batch in &o.batches {
        let data = inputs(batch, o.seq, encoder.config.vocab_size, encoder.features);
        let seqs: Vec<Sequence<'_>> = data
            .iter()
            .map(|(ids, types, f)| Sequence {
                ids,
                types,
                features: f,
            })
            .collect();
        for _ in 0..3 {
            encoder.forward(&seqs, None)?;
        }
        let budget = Duration::from_secs_f64(o.seconds);
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed() < budget {
            encoder.forward(&seqs, None)?;
            runs += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "peer": "rubric",
                "precision": name,
                "batch": batch,
                "seq": o.seq,
                "threads": rayon::current_num_threads(),
                "pairs_per_second": (runs as f64 * batch as f64) / secs,
                "ms_per_batch": secs * 1000.0 / runs as f64,
            })
        );
    }
    Ok(())
}

/// The encoder of a model folder's weights file `file`, and the weights.
fn encoder_of(dir: &Path, file: &str) -> Result<(Encoder, TensorMap), Failure> {
    let card = read_card(dir)?;
    let config = rubric_ml::checkpoint::read_config(dir)?;
    let mut map = TensorMap::read(&dir.join(file))?;
    map.tensors.remove(POSITION_BIAS);
    let encoder = Encoder::new(&config, &card.heads, card.features.width(), &map)?;
    Ok((encoder, map))
}

fn main() -> Result<(), Failure> {
    let o = options()?;
    let (encoder, map) = encoder_of(&o.model, "model.safetensors")?;
    let int8 = Encoder::new(
        &encoder.config,
        &encoder.spec,
        encoder.features,
        &quantize(&map, &encoder.config, &LayerKind::ALL)?,
    )?;
    time("f32", &encoder, &o)?;
    time("int8", &int8, &o)?;
    time("candle_q8_0", &encoder.to_candle_q8()?, &o)?;
    if let Some(dir) = &o.pruned {
        time("pruned_f32", &encoder_of(dir, "model.safetensors")?.0, &o)?;
        time("pruned_int8", &encoder_of(dir, INT8_WEIGHTS)?.0, &o)?;
    }
    Ok(())
}
