//! The inference encoder against the candle model it runs: the same outputs in f32, close ones
//! in int8, pruning equal to masking, and quantized weights that read back as written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::encoder::{Encoder, Logits, Sequence};
use super::prune::{head_importance, heads_below, mean_change, prune};
use super::weights::TensorMap;
use super::{LayerKind, quantize};
use crate::model::{BertConfig, HeadSpec, PairBatch, PairEncoder, Pass};
use crate::params::Params;
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, HashMap};

const FEATURES: usize = 5;

fn spec() -> HeadSpec {
    HeadSpec {
        scores: vec!["skills".into(), "overall".into()],
        grades: vec!["good".into(), "fair".into(), "poor".into()],
        click: true,
    }
}

fn config() -> BertConfig {
    BertConfig::new(60, 32, 2, 4, 64, 24)
}

/// A random tiny model: its candle form and its tensors.
fn model(seed: u64, cfg: &BertConfig) -> (PairEncoder, TensorMap) {
    let params = Params::seeded(seed);
    let model = PairEncoder::new(
        cfg,
        FEATURES,
        &spec(),
        params.builder(DType::F32, &Device::Cpu),
    )
    .unwrap();
    // BERT's initial weights are small; larger ones make the layers do something measurable.
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
    for (name, var) in params.named() {
        if name.ends_with("LayerNorm.weight") {
            continue;
        }
        let t = var.as_tensor();
        let noise: Vec<f32> = (0..t.elem_count())
            .map(|_| rng.random_range(-0.3..0.3))
            .collect();
        var.set(&Tensor::from_vec(noise, t.shape(), &Device::Cpu).unwrap())
            .unwrap();
    }
    let tensors: HashMap<String, Tensor> = params
        .named()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    (model, TensorMap::from_candle(&tensors, "test").unwrap())
}

struct Pairs {
    ids: Vec<Vec<u32>>,
    types: Vec<Vec<u32>>,
    features: Vec<Vec<f32>>,
}

fn pairs(rng: &mut ChaCha8Rng, n: usize) -> Pairs {
    let mut p = Pairs {
        ids: vec![],
        types: vec![],
        features: vec![],
    };
    for _ in 0..n {
        let t = rng.random_range(3..=24);
        let split = rng.random_range(1..t);
        p.ids
            .push((0..t).map(|_| rng.random_range(0..60)).collect());
        p.types
            .push((0..t).map(|i| u32::from(i >= split)).collect());
        p.features
            .push((0..FEATURES).map(|_| rng.random_range(-1.0..1.0)).collect());
    }
    p
}

/// The pairs of one ranking: each begins with the same query, cut to a different length beside
/// its candidate (as longest-first truncation cuts it): `[CLS] query [SEP] candidate [SEP]`.
fn ranking(rng: &mut ChaCha8Rng, n: usize) -> Pairs {
    let query: Vec<u32> = (0..14).map(|_| rng.random_range(3..60)).collect();
    let mut p = Pairs {
        ids: vec![],
        types: vec![],
        features: vec![],
    };
    for _ in 0..n {
        let (q, c) = (rng.random_range(1..=14), rng.random_range(1..=7));
        let mut ids = vec![1];
        ids.extend(&query[..q]);
        ids.push(2);
        ids.extend((0..c).map(|_| rng.random_range(3..60)));
        ids.push(2);
        p.types
            .push((0..ids.len()).map(|i| u32::from(i > q + 1)).collect());
        p.ids.push(ids);
        p.features
            .push((0..FEATURES).map(|_| rng.random_range(-1.0..1.0)).collect());
    }
    p
}

fn seqs(p: &Pairs) -> Vec<Sequence<'_>> {
    (0..p.ids.len())
        .map(|i| Sequence {
            ids: &p.ids[i],
            types: &p.types[i],
            features: &p.features[i],
        })
        .collect()
}

/// The candle model's logits on the same pairs, padded to the longest.
fn candle_logits(model: &PairEncoder, p: &Pairs) -> Logits {
    let b = p.ids.len();
    let t = p.ids.iter().map(Vec::len).max().unwrap();
    let (mut ids, mut types, mut mask) = (vec![0u32; b * t], vec![0u32; b * t], vec![0u32; b * t]);
    for r in 0..b {
        for (i, (&id, &ty)) in p.ids[r].iter().zip(&p.types[r]).enumerate() {
            ids[r * t + i] = id;
            types[r * t + i] = ty;
            mask[r * t + i] = 1;
        }
    }
    let dev = Device::Cpu;
    let batch = PairBatch {
        ids: Tensor::from_vec(ids, (b, t), &dev).unwrap(),
        types: Tensor::from_vec(types, (b, t), &dev).unwrap(),
        mask: Tensor::from_vec(mask, (b, t), &dev).unwrap(),
        features: Some(Tensor::from_vec(p.features.concat(), (b, FEATURES), &dev).unwrap()),
    };
    let out = model.forward(&batch, &mut Pass::Eval).unwrap();
    let flat =
        |t: Option<Tensor>| t.map_or(vec![], |t| t.flatten_all().unwrap().to_vec1().unwrap());
    Logits {
        rows: b,
        scores: flat(out.score_logits),
        grades: flat(out.grade_logits),
        click: flat(out.click_logit),
    }
}

fn worst(a: &Logits, b: &Logits) -> f32 {
    assert_eq!(
        (a.scores.len(), a.grades.len(), a.click.len()),
        (b.scores.len(), b.grades.len(), b.click.len())
    );
    a.scores
        .iter()
        .chain(&a.grades)
        .chain(&a.click)
        .zip(b.scores.iter().chain(&b.grades).chain(&b.click))
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn the_f32_encoder_gives_the_candle_models_outputs_without_padding() {
    // One, two and three layers: the last runs on each sequence's first row alone.
    for layers in [1, 2, 3] {
        let cfg = BertConfig::new(60, 32, layers, 4, 64, 24);
        let (candle, map) = model(1, &cfg);
        let encoder = Encoder::new(&cfg, &spec(), FEATURES, &map).unwrap();
        assert!(!encoder.is_quantized());
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let random = [1, 2, 7, 19].map(|n| pairs(&mut rng, n));
        // A ranking's pairs share their first rows, computed once.
        let rankings = [2, 7, 19].map(|n| ranking(&mut rng, n));
        for p in random.iter().chain(&rankings) {
            let n = p.ids.len();
            let ours = encoder.forward(&seqs(p), None).unwrap();
            let theirs = candle_logits(&candle, p);
            assert_eq!(ours.rows, n);
            assert!(
                worst(&ours, &theirs) < 1e-4,
                "{layers} layers, {n} pairs: {}",
                worst(&ours, &theirs)
            );
        }
    }
}

#[test]
fn the_int8_encoder_stays_close_to_f32_and_reads_back_as_written() {
    let cfg = config();
    let (_, map) = model(3, &cfg);
    let f32_model = Encoder::new(&cfg, &spec(), FEATURES, &map).unwrap();
    let q = quantize(&map, &cfg, &LayerKind::ALL).unwrap();
    assert!(
        q.bytes() * 2 < map.bytes(),
        "{} of {}",
        q.bytes(),
        map.bytes()
    );
    let int8 = Encoder::new(&cfg, &spec(), FEATURES, &q).unwrap();
    assert!(int8.is_quantized());
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let p = pairs(&mut rng, 16);
    let a = f32_model.forward(&seqs(&p), None).unwrap();
    let b = int8.forward(&seqs(&p), None).unwrap();
    let change = mean_change(&a, &b);
    assert!(change > 0.0 && change < 0.02, "{change}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.int8.safetensors");
    q.write(&path, None).unwrap();
    // The same tensors are the same bytes.
    let again = dir.path().join("again.safetensors");
    q.write(&again, Some(("rubric.int8", "{}"))).unwrap();
    q.write(&path, Some(("rubric.int8", "{}"))).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        std::fs::read(&again).unwrap()
    );
    let back = Encoder::new(&cfg, &spec(), FEATURES, &TensorMap::read(&path).unwrap()).unwrap();
    assert_eq!(back.forward(&seqs(&p), None).unwrap(), b);
    // One pair alone gives what it gives in a batch.
    let one = int8.forward(&seqs(&p)[3..4], None).unwrap();
    assert!(
        worst(
            &one,
            &Logits {
                rows: 1,
                scores: b.scores[3 * 2..4 * 2].to_vec(),
                grades: b.grades[3 * 3..4 * 3].to_vec(),
                click: b.click[3..4].to_vec(),
            }
        ) < 1e-5
    );
}

/// A ranking's pairs, whose first rows the encoder computes once, give what each gives alone, in
/// f32 and in int8, whatever chunks the threads split them into.
#[test]
fn a_rankings_pairs_give_in_a_batch_what_each_gives_alone() {
    let cfg = config();
    let (_, map) = model(5, &cfg);
    let q = quantize(&map, &cfg, &LayerKind::ALL).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let p = ranking(&mut rng, 23);
    for weights in [&map, &q] {
        let encoder = Encoder::new(&cfg, &spec(), FEATURES, weights).unwrap();
        let alone: Vec<Logits> = seqs(&p)
            .chunks(1)
            .map(|one| encoder.forward(one, None).unwrap())
            .collect();
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let batch = pool.install(|| encoder.forward(&seqs(&p), None).unwrap());
            for (i, one) in alone.iter().enumerate() {
                let row = Logits {
                    rows: 1,
                    scores: batch.scores[i * 2..(i + 1) * 2].to_vec(),
                    grades: batch.grades[i * 3..(i + 1) * 3].to_vec(),
                    click: batch.click[i..i + 1].to_vec(),
                };
                let diff = worst(one, &row);
                assert!(diff < 1e-5, "pair {i}, {threads} threads: {diff}");
            }
        }
    }
}

/// Each mix of int8 and f32 layers (every kind alone left in f32, so each fused hand-over meets
/// an f32 neighbour) gives the same logits on one thread as on several, each sequence's own
/// whatever chunk it falls in, and stays close to the f32 model. The same bits where the layer
/// left in f32 is one a pair (the pooler, the features) or none multiplies (the embeddings);
/// within 1e-5 where it multiplies a chunk's rows at once: the f32 multiply may round a row
/// differently with the number of rows beside it (int8 products are exact integers).
#[test]
fn mixed_precisions_give_the_same_logits_on_one_thread_and_on_several() {
    let cfg = config();
    let (_, map) = model(8, &cfg);
    let f32_model = Encoder::new(&cfg, &spec(), FEATURES, &map).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    // More pairs than one chunk holds, on either pool.
    let p = pairs(&mut rng, 37);
    let reference = f32_model.forward(&seqs(&p), None).unwrap();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap();
    for f32_kind in LayerKind::ALL {
        let kinds: Vec<LayerKind> = LayerKind::ALL
            .into_iter()
            .filter(|k| *k != f32_kind)
            .collect();
        let q = quantize(&map, &cfg, &kinds).unwrap();
        let model = Encoder::new(&cfg, &spec(), FEATURES, &q).unwrap();
        let a = one.install(|| model.forward(&seqs(&p), None).unwrap());
        let b = three.install(|| model.forward(&seqs(&p), None).unwrap());
        match f32_kind {
            LayerKind::Attention
            | LayerKind::AttentionOutput
            | LayerKind::Intermediate
            | LayerKind::Output => {
                let diff = worst(&a, &b);
                assert!(diff <= 1e-5, "{f32_kind:?} in f32: {diff}");
            }
            _ => assert_eq!(a, b, "{f32_kind:?} in f32"),
        }
        let change = mean_change(&reference, &a);
        assert!(change < 0.02, "{f32_kind:?} in f32: {change}");
    }
}

#[test]
fn pruning_a_head_gives_what_masking_it_gives_and_the_candle_model_loads_it() {
    let cfg = config();
    let (_, map) = model(5, &cfg);
    let encoder = Encoder::new(&cfg, &spec(), FEATURES, &map).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let p = pairs(&mut rng, 12);
    let importance = head_importance(&encoder, &seqs(&p)).unwrap();
    assert_eq!(importance.len(), 2);
    assert!(importance.iter().flatten().all(|v| *v > 0.0));
    // Remove the two least important heads of layer 0 and one of layer 1.
    let mut order: Vec<usize> = (0..4).collect();
    order.sort_by(|&a, &b| importance[0][a].total_cmp(&importance[0][b]));
    let remove = BTreeMap::from([(0, vec![order[0], order[1]]), (1, vec![2])]);
    let (pruned_map, pruned_cfg) = prune(&map, &cfg, &remove).unwrap();
    assert_eq!(pruned_cfg.kept_heads(0).len(), 2);
    assert_eq!(pruned_cfg.pruned_heads["1"], vec![2]);
    assert!(pruned_cfg.parameter_count().unwrap() < cfg.parameter_count().unwrap());
    let pruned = Encoder::new(&pruned_cfg, &spec(), FEATURES, &pruned_map).unwrap();
    assert_eq!(pruned.heads(), vec![2, 3]);
    let mask = vec![
        (0..4).map(|h| h != order[0] && h != order[1]).collect(),
        vec![true, true, false, true],
    ];
    let masked = encoder.forward(&seqs(&p), Some(&mask)).unwrap();
    let ours = pruned.forward(&seqs(&p), None).unwrap();
    assert!(worst(&ours, &masked) < 1e-4, "{}", worst(&ours, &masked));
    // The candle model of the pruned configuration reads the pruned weights, by name.
    let tensors: HashMap<String, Tensor> = pruned_map
        .tensors
        .iter()
        .map(|(n, t)| {
            let super::weights::Values::F32(v) = &t.values else {
                panic!()
            };
            (
                n.clone(),
                Tensor::from_vec(v.clone(), t.shape.as_slice(), &Device::Cpu).unwrap(),
            )
        })
        .collect();
    let vb = candle_nn::VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu);
    let candle = PairEncoder::new(&pruned_cfg, FEATURES, &spec(), vb).unwrap();
    assert!(worst(&candle_logits(&candle, &p), &ours) < 1e-4);
    // Pruned heads serialize as Hugging Face writes them.
    let json = serde_json::to_value(&pruned_cfg).unwrap();
    assert_eq!(json["pruned_heads"]["1"], serde_json::json!([2]));
}

#[test]
fn heads_below_the_threshold_go_and_every_layer_keeps_one() {
    let importance = vec![vec![0.5, 0.001, 0.2], vec![0.001, 0.002, 0.0005]];
    let cut = heads_below(&importance, 0.01);
    assert_eq!(cut[&0], vec![1]);
    assert_eq!(cut[&1], vec![0, 2]);
}

#[test]
fn bad_pairs_and_masks_are_refused_with_the_pair_named() {
    let cfg = config();
    let (_, map) = model(7, &cfg);
    let encoder = Encoder::new(&cfg, &spec(), FEATURES, &map).unwrap();
    let f = [0.0; FEATURES];
    let long = [1u32; 30];
    for (ids, types, feats, expected) in [
        (&[1u32, 99][..], &[0u32, 0][..], &f[..], "vocabulary"),
        (&long[..], &long[..], &f[..], "positions"),
        (&[1, 2][..], &[0][..], &f[..], "type ids"),
        (&[1, 2][..], &[0, 5][..], &f[..], "type id 5"),
        (&[1, 2][..], &[0, 1][..], &f[..2], "numeric features"),
    ] {
        let ok = Sequence {
            ids: &[1, 2],
            types: &[0, 1],
            features: &f,
        };
        let bad = Sequence {
            ids,
            types,
            features: feats,
        };
        let err = encoder.forward(&[ok, bad], None).unwrap_err();
        assert!(err.contains("pair 1") && err.contains(expected), "{err}");
    }
    let err = encoder
        .forward(&[], Some(&vec![vec![true; 4]]))
        .unwrap_err();
    assert!(err.contains("head mask"), "{err}");
    // A weight of the wrong shape is named.
    let mut bad = map.clone();
    bad.tensors.get_mut("pooler.dense.bias").unwrap().shape = vec![31];
    let err = Encoder::new(&cfg, &spec(), FEATURES, &bad).err().unwrap();
    assert!(err.contains("pooler.dense.bias"), "{err}");
}
