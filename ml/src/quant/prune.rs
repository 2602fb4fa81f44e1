//! Attention-head pruning by measured importance: a head's importance is how much the model's
//! predictions move, on average, when that head alone is removed (each predicted probability —
//! every score, every grade's probability, the click — compared with and without it, over the
//! given pairs). Heads below the pipeline's `prune heads below X` are cut out of the weights
//! (their query, key and value rows and their columns of the output projection), and the
//! configuration records them as Hugging Face does (`pruned_heads`).

use super::encoder::{Encoder, HeadMask, Logits, Sequence};
use super::weights::{Stored, TensorMap, Values};
use crate::model::BertConfig;
use std::collections::BTreeMap;

fn sigmoid(x: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(x)).exp())
}

fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    let e: Vec<f64> = row.iter().map(|v| f64::from(v - max).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.into_iter().map(|v| v / sum).collect()
}

/// Every predicted probability of a batch, row by row.
pub fn probabilities(l: &Logits) -> Vec<f64> {
    let mut out: Vec<f64> = l.scores.iter().map(|v| sigmoid(*v)).collect();
    if l.rows > 0 && !l.grades.is_empty() {
        for row in l.grades.chunks(l.grades.len() / l.rows) {
            out.extend(softmax(row));
        }
    }
    out.extend(l.click.iter().map(|v| sigmoid(*v)));
    out
}

/// The mean absolute difference of two batches' predicted probabilities.
pub fn mean_change(a: &Logits, b: &Logits) -> f64 {
    let (pa, pb) = (probabilities(a), probabilities(b));
    if pa.is_empty() {
        return 0.0;
    }
    pa.iter().zip(&pb).map(|(x, y)| (x - y).abs()).sum::<f64>() / pa.len() as f64
}

/// Each head's importance, `[layer][head]` over the heads the model has now.
pub fn head_importance(encoder: &Encoder, seqs: &[Sequence<'_>]) -> Result<Vec<Vec<f64>>, String> {
    let base = encoder.forward(seqs, None)?;
    let heads = encoder.heads();
    let full: HeadMask = heads.iter().map(|&n| vec![true; n]).collect();
    let mut out = Vec::with_capacity(heads.len());
    for (l, &n) in heads.iter().enumerate() {
        let mut layer = Vec::with_capacity(n);
        for h in 0..n {
            let mut mask = full.clone();
            mask[l][h] = false;
            let masked = encoder.forward(seqs, Some(&mask))?;
            layer.push(mean_change(&base, &masked));
        }
        out.push(layer);
    }
    Ok(out)
}

/// The heads to remove, by layer (positions among the heads the layer has now): those whose
/// importance is below `threshold`, keeping at least the most important head of every layer.
pub fn heads_below(importance: &[Vec<f64>], threshold: f64) -> BTreeMap<usize, Vec<usize>> {
    let mut out = BTreeMap::new();
    for (l, layer) in importance.iter().enumerate() {
        let mut remove: Vec<usize> = (0..layer.len()).filter(|&h| layer[h] < threshold).collect();
        if remove.len() == layer.len() {
            // The most important head stays (ties: the first).
            let best = (0..layer.len())
                .max_by(|&a, &b| layer[a].total_cmp(&layer[b]).then(b.cmp(&a)))
                .unwrap_or(0);
            remove.retain(|&h| h != best);
        }
        if !remove.is_empty() {
            out.insert(l, remove);
        }
    }
    out
}

fn rows_of(t: &Stored, keep: &[usize], block: usize, name: &str) -> Result<Stored, String> {
    let Values::F32(v) = &t.values else {
        return Err(format!("`{name}` is quantized: prune before quantizing"));
    };
    let width = t.shape.get(1).copied().unwrap_or(1);
    let mut out = Vec::with_capacity(keep.len() * block * width);
    for &h in keep {
        let start = h * block * width;
        out.extend_from_slice(
            v.get(start..start + block * width)
                .ok_or_else(|| format!("`{name}` has fewer rows than its heads need"))?,
        );
    }
    let mut shape = t.shape.clone();
    shape[0] = keep.len() * block;
    Ok(Stored::f32(shape, out))
}

fn columns_of(t: &Stored, keep: &[usize], block: usize, name: &str) -> Result<Stored, String> {
    let (Values::F32(v), [rows, cols]) = (&t.values, t.shape.as_slice()) else {
        return Err(format!(
            "`{name}` is not an f32 matrix: prune before quantizing"
        ));
    };
    let mut out = Vec::with_capacity(rows * keep.len() * block);
    for row in v.chunks_exact(*cols) {
        for &h in keep {
            out.extend_from_slice(
                row.get(h * block..(h + 1) * block)
                    .ok_or_else(|| format!("`{name}` has fewer columns than its heads need"))?,
            );
        }
    }
    Ok(Stored::f32(vec![*rows, keep.len() * block], out))
}

/// The weights and configuration without the heads `remove` names (positions among each
/// layer's current heads).
pub fn prune(
    map: &TensorMap,
    config: &BertConfig,
    remove: &BTreeMap<usize, Vec<usize>>,
) -> Result<(TensorMap, BertConfig), String> {
    let mut out = map.clone();
    let mut cfg = config.clone();
    let hs = config.head_size();
    for (&l, cut) in remove {
        let current = config.kept_heads(l);
        let keep: Vec<usize> = (0..current.len()).filter(|h| !cut.contains(h)).collect();
        if keep.is_empty() || cut.iter().any(|&h| h >= current.len()) {
            return Err(format!(
                "cannot remove heads {cut:?} of layer {l}, which has {} heads",
                current.len()
            ));
        }
        let p = format!("encoder.layer.{l}.attention");
        for part in ["query", "key", "value"] {
            for what in ["weight", "bias"] {
                let name = format!("{p}.self.{part}.{what}");
                let t = out
                    .tensors
                    .get(&name)
                    .ok_or_else(|| format!("`{}` has no tensor `{name}`", map.source))?;
                let pruned = rows_of(t, &keep, hs, &name)?;
                out.tensors.insert(name, pruned);
            }
        }
        let name = format!("{p}.output.dense.weight");
        let t = out
            .tensors
            .get(&name)
            .ok_or_else(|| format!("`{}` has no tensor `{name}`", map.source))?;
        let pruned = columns_of(t, &keep, hs, &name)?;
        out.tensors.insert(name, pruned);
        let entry = cfg.pruned_heads.entry(l.to_string()).or_default();
        entry.extend(cut.iter().map(|&h| current[h]));
        entry.sort_unstable();
    }
    cfg.validate()
        .map_err(|e| format!("the pruned configuration: {e}"))?;
    Ok((out, cfg))
}
