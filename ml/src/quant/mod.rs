//! int8 inference of the pair encoder: the batched u8×i8 matrix multiply (`gemm`), linear
//! layers quantized per output channel (`linear`, `weights`), attention's two products in int8
//! (`attention`), attention-head pruning (`prune`),
//! and the plain-Rust encoder (`encoder`) that runs a quantized (or f32) model without
//! recording a graph.

pub mod attention;
pub mod dense;
pub mod encoder;
pub mod gemm;
pub mod linear;
pub mod prune;
pub mod weights;

use crate::model::BertConfig;
use serde::{Deserialize, Serialize};
use weights::TensorMap;

/// The layers of the encoder that quantization may turn to int8, and attention's products.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerKind {
    /// The word embeddings (per row).
    WordEmbeddings,
    /// Each layer's query, key and value (together: they run as one multiply).
    Attention,
    /// Inside each layer's attention, the scores (queries × keys) and the weighted sum of the
    /// values: no weights, both sides quantized at run time (see `attention`).
    AttentionProducts,
    /// Each layer's attention output projection.
    AttentionOutput,
    /// Each layer's feed-forward up-projection (before the GELU).
    Intermediate,
    /// Each layer's feed-forward down-projection (after the GELU).
    Output,
    /// The pooler (once a pair).
    Pooler,
    /// The two layers over the numeric features (once a pair; the first is as wide as the
    /// features, hundreds of one-hot and multi-hot slots).
    Features,
}

impl LayerKind {
    pub const ALL: [LayerKind; 8] = [
        LayerKind::WordEmbeddings,
        LayerKind::Attention,
        LayerKind::AttentionProducts,
        LayerKind::AttentionOutput,
        LayerKind::Intermediate,
        LayerKind::Output,
        LayerKind::Pooler,
        LayerKind::Features,
    ];

    /// The weights of this kind in `map`, a model of `config` (none for attention's products).
    pub fn weights(self, config: &BertConfig, map: &TensorMap) -> Vec<String> {
        let per_layer = |parts: &[&str]| -> Vec<String> {
            (0..config.num_hidden_layers)
                .flat_map(|l| {
                    parts
                        .iter()
                        .map(move |p| format!("encoder.layer.{l}.{p}.weight"))
                })
                .collect()
        };
        match self {
            LayerKind::WordEmbeddings => vec!["embeddings.word_embeddings.weight".to_string()],
            LayerKind::Attention => per_layer(&[
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
            ]),
            LayerKind::AttentionProducts => Vec::new(),
            LayerKind::AttentionOutput => per_layer(&["attention.output.dense"]),
            LayerKind::Intermediate => per_layer(&["intermediate.dense"]),
            LayerKind::Output => per_layer(&["output.dense"]),
            LayerKind::Pooler => vec!["pooler.dense.weight".to_string()],
            LayerKind::Features => ["features.dense.weight", "features.output.weight"]
                .into_iter()
                .filter(|n| map.tensors.contains_key(*n))
                .map(str::to_string)
                .collect(),
        }
    }
}

/// The name of layer `layer`'s attention-weight scale: the scale of the u8 codes of its softmax
/// weights, whose presence runs the layer's attention products in int8.
pub fn attention_weight_scale(layer: usize) -> String {
    format!("encoder.layer.{layer}.attention.self.weights.scale")
}

/// The weights of `map` with the layers of `kinds` in int8 (per output channel; the word
/// embeddings per row), and with attention's products in int8 when `kinds` names them (each
/// layer's [`attention_weight_scale`] added). The heads stay f32: a few outputs once a pair.
pub fn quantize(
    map: &TensorMap,
    config: &BertConfig,
    kinds: &[LayerKind],
) -> Result<TensorMap, String> {
    let mut out = map.clone();
    for kind in kinds {
        for name in kind.weights(config, map) {
            out.quantize_rows(&name)?;
        }
        if *kind == LayerKind::AttentionProducts {
            for l in 0..config.num_hidden_layers {
                out.tensors.insert(
                    attention_weight_scale(l),
                    weights::Stored::f32(vec![1], vec![attention::WEIGHT_SCALE]),
                );
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
