//! The quantize stage: the distilled student pruned of its least important attention heads (as
//! the pipeline's `prune heads below X` says) and its linear layers turned to int8, each step's
//! cost measured on the held-out real pairs (and their impressions) against the f32 student.
//! Writes the pruned f32 model in Hugging Face layout with `model.int8.safetensors` beside it,
//! and a report.

use crate::data::golden::pairs::read_pairs;
use crate::distill::measure_split;
use crate::label::engine::Engine;
use crate::scoring::{INT8_FORMAT, INT8_METADATA, INT8_WEIGHTS, sequences, task_logits};
use crate::teach::examples::{Example, Heads, RowMaker, Sources, join_clicks};
use crate::teach::{CARD, MODEL_DIR, POSITION_BIAS, read_card, roles_of};
use rubric_compiler::lower::plan::QuantizeConfig;
use rubric_ml::checkpoint::{self, WEIGHTS};
use rubric_ml::quant::encoder::{Encoder, Logits as EncoderLogits, Sequence};
use rubric_ml::quant::prune::{head_importance, heads_below, mean_change, prune};
use rubric_ml::quant::weights::TensorMap;
use rubric_ml::quant::{LayerKind, quantize as quantize_weights};
use rubric_ml::tokenize::configure_for_pairs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// The report's file in the stage's outputs.
pub const REPORT: &str = "report.json";
/// The report's schema.
pub const REPORT_SCHEMA: &str = "rubric.quantize-report/1";
/// The declared rule for layers that stay f32: a kind of layer whose quantization alone moves
/// the held-out predicted probabilities by more than this on average stays f32.
pub const KEEP_F32_ABOVE: f64 = 0.01;
/// Rows timed for the speed figures.
const TIMED_ROWS: usize = 256;

/// What quantizing one kind of layer alone costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerCost {
    pub kind: LayerKind,
    /// Mean absolute change of the predicted probabilities, against the (pruned) f32 model.
    pub change: f64,
    /// Whether it runs in int8 (else the rule kept it f32).
    pub int8: bool,
}

/// The pruning step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pruning {
    pub threshold: f64,
    /// Each head's importance, `[layer][head]`.
    pub importance: Vec<Vec<f64>>,
    /// The heads removed, by layer (original indices).
    pub removed: BTreeMap<String, Vec<usize>>,
    pub heads_before: usize,
    pub heads_after: usize,
    /// Mean absolute change of the predicted probabilities, pruned against unpruned.
    pub change: f64,
}

/// One model's figures on the held-out rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    pub metrics: BTreeMap<String, f64>,
    /// Bytes of its weights file.
    pub bytes: u64,
}

/// What the stage reports: the report (the same bytes for the same inputs), and the speed of
/// each model on this machine (pairs per second in batches of 32), kept out of it.
pub struct QuantizeOutcome {
    pub report: QuantizeReport,
    pub pairs_per_second: BTreeMap<String, f64>,
}

/// What the stage did and what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeReport {
    pub schema: String,
    pub scheme: String,
    /// Pairs and impressions measured on.
    pub rows: usize,
    pub pairs: usize,
    pub pruning: Option<Pruning>,
    pub layers: Vec<LayerCost>,
    pub keep_f32_above: f64,
    /// The distilled student as it came.
    pub f32: Measured,
    /// After pruning, in f32 (equal to `f32` when nothing was pruned).
    pub pruned: Measured,
    pub int8: Measured,
    /// (f32 − int8) / f32 of each metric where higher is better, in percent.
    pub relative_loss: BTreeMap<String, f64>,
    /// The distilled student's f32 weights file's bytes / the int8 file's.
    pub compression: f64,
    pub parameters_before: usize,
    pub parameters_after: usize,
}

/// The student to quantize and what to measure it on.
pub struct QuantizeJob<'a> {
    pub engine: &'a Engine,
    pub config: &'a QuantizeConfig,
    /// The distill stage's `model/`.
    pub student: &'a Path,
    pub sources: Sources<'a>,
}

/// The held-out rows of a model: each validation pair, then each of their impressions when the
/// model has a click head; and how many are pairs.
fn held_out(
    engine: &Engine,
    heads: &Heads,
    card: &crate::teach::ModelCard,
    sources: &Sources<'_>,
) -> Result<(Vec<Example>, usize), String> {
    let read = |p: &Path| read_pairs(p).map_err(|e| e.to_string());
    let validation = read(sources.validation)?;
    let mut maker = RowMaker::new(engine, heads, &card.inputs, card.features.clone())?;
    let mut rows = validation
        .iter()
        .map(|r| maker.make(r, sources.validation, None))
        .collect::<Result<Vec<_>, String>>()?;
    let pairs = rows.len();
    if heads.click
        && let Some(clicks) = sources.clicks
    {
        let pool = read(sources.pool)?;
        let joined = join_clicks(&pool, &validation, sources.pool, clicks)?;
        for (index, click) in &joined.validation {
            if let Some(row) = validation.get(*index) {
                rows.push(maker.make(row, sources.validation, Some(click))?);
            }
        }
    }
    Ok((rows, pairs))
}

/// Pairs per second of `encoder` on up to [`TIMED_ROWS`] rows, in batches of 32.
fn speed(encoder: &Encoder, seqs: &[Sequence<'_>]) -> Result<f64, String> {
    let seqs = &seqs[..seqs.len().min(TIMED_ROWS)];
    if seqs.is_empty() {
        return Ok(0.0);
    }
    encoder.forward(&seqs[..seqs.len().min(32)], None)?;
    let start = Instant::now();
    for chunk in seqs.chunks(32) {
        encoder.forward(chunk, None)?;
    }
    Ok(seqs.len() as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

/// Prunes and quantizes the student, writes `out/model/` and returns the report.
pub fn quantize(job: &QuantizeJob<'_>, out: &Path) -> Result<QuantizeOutcome, String> {
    let dir = job.student;
    let mut card = read_card(dir)?;
    card.roles = roles_of(job.engine);
    let heads = card.heads_for(job.engine)?;
    let ckpt = checkpoint::load(dir, &candle_core::Device::Cpu).map_err(|e| e.to_string())?;
    let mut map = TensorMap::from_candle(&ckpt.tensors, &dir.join(WEIGHTS).display().to_string())?;
    map.tensors.remove(POSITION_BIAS);
    let config = ckpt.config;
    let mut tokenizer = ckpt.tokenizer;
    let (rows, pairs) = held_out(job.engine, &heads, &card, &job.sources)?;
    if rows.is_empty() {
        return Err("there are no held-out pairs to measure the quantized student on".to_string());
    }
    let saved = tokenizer.clone();
    configure_for_pairs(&mut tokenizer, card.max_len)?;
    let tokens = crate::teach::tokenize(&tokenizer, &rows)?;
    let seqs = sequences(&tokens, &rows);
    let spec = &card.heads;
    let width = card.features.width();

    // Each model's outputs on the held-out rows, once: its metrics, and what pruning and each
    // kind of layer's quantization change are measured against.
    let mut pairs_per_second = BTreeMap::new();
    let mut measure =
        |name: &str, encoder: &Encoder, bytes: u64| -> Result<(Measured, EncoderLogits), String> {
            let out = encoder.forward(&seqs, None)?;
            pairs_per_second.insert(name.to_string(), speed(encoder, &seqs)?);
            let metrics = measure_split(&heads, &rows, pairs, &task_logits(encoder, out.clone()));
            Ok((Measured { metrics, bytes }, out))
        };
    let parameters_before = config.parameter_count().unwrap_or(0);
    let original = Encoder::new(&config, spec, width, &map)?;
    let (f32_measured, original_out) = measure("f32", &original, map.bytes() as u64)?;

    // Pruning, by each head's measured importance.
    let (pruned_map, pruned_config, importance) = match job.config.prune_heads_below {
        Some(threshold) => {
            let importance = head_importance(&original, &seqs)?;
            let (m, c) = prune(&map, &config, &heads_below(&importance, threshold))?;
            (m, c, Some((threshold, importance)))
        }
        None => (map.clone(), config.clone(), None),
    };
    let pruned = Encoder::new(&pruned_config, spec, width, &pruned_map)?;
    let (pruned_measured, reference) = measure("pruned", &pruned, pruned_map.bytes() as u64)?;
    let pruning = importance.map(|(threshold, importance)| Pruning {
        threshold,
        heads_before: importance.iter().map(Vec::len).sum(),
        heads_after: pruned.heads().iter().sum(),
        removed: pruned_config.pruned_heads.clone(),
        change: mean_change(&original_out, &reference),
        importance,
    });

    // Each kind of layer alone, then every kind the rule lets through.
    let mut layers = Vec::new();
    for kind in LayerKind::ALL {
        let q = quantize_weights(&pruned_map, &pruned_config, &[kind])?;
        let e = Encoder::new(&pruned_config, spec, width, &q)?;
        let change = mean_change(&reference, &e.forward(&seqs, None)?);
        layers.push(LayerCost {
            kind,
            change,
            int8: change <= KEEP_F32_ABOVE,
        });
    }
    let kinds: Vec<LayerKind> = layers.iter().filter(|l| l.int8).map(|l| l.kind).collect();
    let quantized = quantize_weights(&pruned_map, &pruned_config, &kinds)?;
    let int8 = Encoder::new(&pruned_config, spec, width, &quantized)?;
    let (int8_measured, _) = measure("int8", &int8, quantized.bytes() as u64)?;

    // The model folder: the pruned f32 model in Hugging Face layout, the int8 weights, the card.
    let model_dir = out.join(MODEL_DIR);
    checkpoint::save_map(&model_dir, &pruned_config, &pruned_map, &saved)
        .map_err(|e| e.to_string())?;
    // One header entry (`INT8_METADATA`), a JSON object with sorted keys: the same weights are
    // the same bytes.
    let metadata = crate::compile::deterministic_json(&serde_json::json!({
        "format": INT8_FORMAT,
        "weights": "int8 per output channel (symmetric): NAME.weight.q and NAME.weight.scale",
        "activations": "u8 per row (asymmetric), quantized at run time; with \
                        attention_products, each head's queries (u8) and keys (i8) per head, \
                        values (i8) per column, softmax weights (u8) at \
                        encoder.layer.L.attention.self.weights.scale",
        "int8_layers": kinds,
    }));
    quantized.write(
        &model_dir.join(INT8_WEIGHTS),
        Some((INT8_METADATA, metadata.trim_end())),
    )?;
    let parameters_after = pruned_config.parameter_count().unwrap_or(0);
    card.parameters = card
        .parameters
        .saturating_sub(parameters_before.saturating_sub(parameters_after));
    card.metrics = int8_measured.metrics.clone();
    let card_path = model_dir.join(CARD);
    crate::atomic::write(
        &card_path,
        crate::compile::deterministic_json(&card).as_bytes(),
    )
    .map_err(|e| format!("cannot write `{}`: {e}", card_path.display()))?;

    let file_bytes = |name: &str| {
        std::fs::metadata(model_dir.join(name))
            .map(|m| m.len())
            .map_err(|e| format!("cannot read `{}`: {e}", model_dir.join(name).display()))
    };
    let f32_bytes = file_bytes(WEIGHTS)?;
    let original_bytes = std::fs::metadata(dir.join(WEIGHTS))
        .map(|m| m.len())
        .map_err(|e| format!("cannot read `{}`: {e}", dir.join(WEIGHTS).display()))?;
    let int8_bytes = file_bytes(INT8_WEIGHTS)?;
    let mut relative_loss = BTreeMap::new();
    for (k, before) in &f32_measured.metrics {
        if let Some(after) = int8_measured.metrics.get(k)
            && higher_is_better(k)
            && *before != 0.0
        {
            relative_loss.insert(k.clone(), (before - after) / before.abs() * 100.0);
        }
    }
    let report = QuantizeReport {
        schema: REPORT_SCHEMA.to_string(),
        scheme: "int8".to_string(),
        rows: rows.len(),
        pairs,
        pruning,
        layers,
        keep_f32_above: KEEP_F32_ABOVE,
        f32: Measured {
            bytes: original_bytes,
            ..f32_measured
        },
        pruned: Measured {
            bytes: f32_bytes,
            ..pruned_measured
        },
        int8: Measured {
            bytes: int8_bytes,
            ..int8_measured
        },
        relative_loss,
        compression: original_bytes as f64 / int8_bytes.max(1) as f64,
        parameters_before,
        parameters_after,
    };
    Ok(QuantizeOutcome {
        report,
        pairs_per_second,
    })
}

/// The metrics a relative loss is reported for.
fn higher_is_better(metric: &str) -> bool {
    !metric.ends_with(".queries")
        && (metric.starts_with("grade_kappa")
            || metric.starts_with("ndcg@")
            || metric.starts_with("policy_alignment")
            || metric == "click_auc"
            || metric == "blended")
}

/// The report as a table, for `rubric quantize`, with each model's speed where known.
pub fn table(r: &QuantizeReport, pairs_per_second: &BTreeMap<String, f64>) -> String {
    use std::fmt::Write as _;
    let metrics = ["grade_kappa", "ndcg@10", "policy_alignment", "click_auc"];
    let shown: Vec<&str> = metrics
        .into_iter()
        .filter(|m| r.f32.metrics.contains_key(*m))
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<12} {:>10} {:>9}", "model", "bytes", "pairs/s");
    for m in &shown {
        let _ = write!(out, " {m:>16}");
    }
    out.push('\n');
    for (key, name, m) in [
        ("f32", "f32", &r.f32),
        ("pruned", "pruned f32", &r.pruned),
        ("int8", "int8", &r.int8),
    ] {
        let speed = pairs_per_second
            .get(key)
            .map_or_else(|| "-".to_string(), |v| format!("{v:.0}"));
        let _ = write!(out, "{name:<12} {:>10} {speed:>9}", m.bytes);
        for k in &shown {
            let _ = write!(
                out,
                " {:>16.4}",
                m.metrics.get(*k).copied().unwrap_or(f64::NAN)
            );
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "on {} held-out real pairs and {} impressions",
        r.pairs,
        r.rows - r.pairs
    );
    if let Some(p) = &r.pruning {
        let _ = writeln!(
            out,
            "pruning: {} of {} heads kept (importance below {} removed); predictions moved {:.4} on average",
            p.heads_after, p.heads_before, p.threshold, p.change
        );
        for (l, layer) in p.importance.iter().enumerate() {
            let shown: Vec<String> = layer.iter().map(|v| format!("{v:.4}")).collect();
            let _ = writeln!(out, "  layer {l} head importance: {}", shown.join(" "));
        }
    }
    for l in &r.layers {
        let _ = writeln!(
            out,
            "{:<17} alone moves predictions {:.4}: {}",
            serde_json::to_value(l.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            l.change,
            if l.int8 {
                "int8".to_string()
            } else {
                format!("kept f32 (above {})", r.keep_f32_above)
            }
        );
    }
    for (k, v) in &r.relative_loss {
        if shown.contains(&k.as_str()) {
            let _ = writeln!(out, "relative loss in {k}: {v:.2}%");
        }
    }
    let _ = writeln!(
        out,
        "{:.1}x smaller than the f32 student; {} → {} encoder parameters",
        r.compression, r.parameters_before, r.parameters_after
    );
    out
}
