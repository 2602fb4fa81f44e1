//! The models rubric trains: the pair encoder (a BERT-family encoder over the pair's text, with
//! heads for every target a plan can name) and the feature model (an MLP over numeric and
//! categorical features).

pub mod bert;
pub mod heads;

pub use bert::{Bert, BertConfig, Pass};
pub use heads::{
    FeatureBatch, FeatureConfig, FeatureModel, HeadSpec, Outputs, PairBatch, PairEncoder,
};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::params::Params;
    use candle_core::{DType, Device, Tensor, Var};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::collections::HashMap;

    fn spec() -> HeadSpec {
        HeadSpec {
            scores: vec!["skills".into(), "seniority".into(), "overall".into()],
            grades: vec!["good".into(), "fair".into(), "poor".into()],
            click: true,
        }
    }

    fn tiny() -> BertConfig {
        BertConfig::new(50, 16, 2, 2, 32, 24)
    }

    /// The tiny pair encoder with `features` numeric features, its variables in `params`.
    fn encoder(params: &Params, features: usize) -> PairEncoder {
        PairEncoder::new(
            &tiny(),
            features,
            &spec(),
            params.builder(DType::F32, &Device::Cpu),
        )
        .unwrap()
    }

    fn pair_batch(rng: &mut ChaCha8Rng, features: usize) -> PairBatch {
        let (b, t) = (4, 9);
        let ids: Vec<u32> = (0..b * t).map(|_| rng.random_range(0..50)).collect();
        let types: Vec<u32> = (0..b * t).map(|i| u32::from(i % t >= 5)).collect();
        // The last two tokens of the first row are padding.
        let mask: Vec<u32> = (0..b * t).map(|i| u32::from(!(i == 7 || i == 8))).collect();
        let dev = Device::Cpu;
        PairBatch {
            ids: Tensor::from_vec(ids, (b, t), &dev).unwrap(),
            types: Tensor::from_vec(types, (b, t), &dev).unwrap(),
            mask: Tensor::from_vec(mask, (b, t), &dev).unwrap(),
            features: (features > 0).then(|| {
                let f: Vec<f32> = (0..b * features)
                    .map(|_| rng.random_range(-1.0..1.0))
                    .collect();
                Tensor::from_vec(f, (b, features), &dev).unwrap()
            }),
        }
    }

    /// A loss that reads every output: random weights on each head's outputs.
    fn loss(out: &Outputs, rng: &mut ChaCha8Rng) -> Tensor {
        let mut total = Tensor::new(0f32, &Device::Cpu).unwrap();
        for t in [&out.score_logits, &out.grade_logits, &out.click_logit]
            .into_iter()
            .flatten()
        {
            let w: Vec<f32> = (0..t.elem_count())
                .map(|_| rng.random_range(0.5..1.5))
                .collect();
            let w = Tensor::from_vec(w, t.shape(), &Device::Cpu).unwrap();
            total = (total + (t * w).unwrap().sum_all().unwrap()).unwrap();
        }
        total
    }

    fn assert_every_parameter_gets_a_gradient(params: &Params, loss: &Tensor) {
        let grads = loss.backward().unwrap();
        let named = params.named();
        assert!(!named.is_empty());
        let mut missing = Vec::new();
        for (name, var) in &named {
            let norm = grads.get(var.as_tensor()).map(|g| {
                g.sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap()
            });
            if norm.is_none_or(|n| n == 0.0 || !n.is_finite()) {
                missing.push(format!("{name}: {norm:?}"));
            }
        }
        assert!(
            missing.is_empty(),
            "no gradient for {} of {}: {missing:#?}",
            missing.len(),
            named.len()
        );
    }

    #[test]
    fn every_parameter_of_the_pair_encoder_receives_a_gradient() {
        let params = Params::seeded(3);
        let model = encoder(&params, 5);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let batch = pair_batch(&mut rng, 5);
        let mut dropout = ChaCha8Rng::seed_from_u64(2);
        let out = model
            .forward(&batch, &mut Pass::Train(&mut dropout))
            .unwrap();
        assert_eq!(out.score_logits.as_ref().unwrap().dims(), [4, 3]);
        assert_eq!(out.grade_logits.as_ref().unwrap().dims(), [4, 3]);
        assert_eq!(out.click_logit.as_ref().unwrap().dims(), [4]);
        let names: Vec<String> = params.named().into_iter().map(|(n, _)| n).collect();
        for expected in [
            "embeddings.word_embeddings.weight",
            "embeddings.LayerNorm.weight",
            "encoder.layer.1.attention.self.query.weight",
            "encoder.layer.0.attention.output.LayerNorm.bias",
            "encoder.layer.0.intermediate.dense.weight",
            "encoder.layer.1.output.dense.bias",
            "pooler.dense.weight",
            "features.dense.weight",
            "heads.click.bias",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
        assert_every_parameter_gets_a_gradient(&params, &loss(&out, &mut rng));
    }

    /// The fused kernels (f32 on the CPU) against candle's composition (which f64 takes) in
    /// one pair encoder: the same weights give the same outputs and the same gradients.
    #[test]
    fn the_fused_encoder_agrees_with_the_composed_one_forward_and_backward() {
        // BERT's initialization (standard deviation 0.02) leaves attention nearly uniform, so
        // weights four times as large, for attention that depends on its queries and keys.
        let drawn = Params::seeded(3);
        encoder(&drawn, 5);
        let large: HashMap<String, Tensor> = drawn
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, (t * 4.0).unwrap()))
            .collect();
        let wide: HashMap<String, Tensor> = large
            .iter()
            .map(|(n, t)| (n.clone(), t.to_dtype(DType::F64).unwrap()))
            .collect();
        let params = Params::starting_from(0, large);
        let fused = encoder(&params, 5);
        let params64 = Params::starting_from(0, wide);
        let composed = PairEncoder::new(
            &tiny(),
            5,
            &spec(),
            params64.builder(DType::F64, &Device::Cpu),
        )
        .unwrap();
        assert!(params64.unused_initial().is_empty());
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let batch = pair_batch(&mut rng, 5);
        let batch64 = PairBatch {
            features: batch
                .features
                .as_ref()
                .map(|f| f.to_dtype(DType::F64).unwrap()),
            ids: batch.ids.clone(),
            types: batch.types.clone(),
            mask: batch.mask.clone(),
        };
        let a = fused.forward(&batch, &mut Pass::Eval).unwrap();
        let b = composed.forward(&batch64, &mut Pass::Eval).unwrap();
        let weights = |t: &Tensor| {
            let n = t.elem_count();
            Tensor::from_vec(
                (0..n)
                    .map(|i| 0.5 + i as f64 / n as f64)
                    .collect::<Vec<_>>(),
                t.shape(),
                &Device::Cpu,
            )
            .unwrap()
        };
        let (mut loss_a, mut loss_b) = (None::<Tensor>, None::<Tensor>);
        for (x, y) in [
            (&a.score_logits, &b.score_logits),
            (&a.grade_logits, &b.grade_logits),
            (&a.click_logit, &b.click_logit),
        ] {
            let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
            let x64 = x.to_dtype(DType::F64).unwrap();
            let diff = (&x64 - y).unwrap().abs().unwrap().max_all().unwrap();
            assert!(diff.to_scalar::<f64>().unwrap() < 1e-4, "{diff}");
            let w = weights(y);
            let la = (x * w.to_dtype(DType::F32).unwrap())
                .unwrap()
                .sum_all()
                .unwrap();
            let lb = (y * &w).unwrap().sum_all().unwrap();
            loss_a = Some(loss_a.map_or(la.clone(), |l| (l + la).unwrap()));
            loss_b = Some(loss_b.map_or(lb.clone(), |l| (l + lb).unwrap()));
        }
        let ga = loss_a.unwrap().backward().unwrap();
        let gb = loss_b.unwrap().backward().unwrap();
        let vars64: HashMap<String, Var> = params64.named().into_iter().collect();
        for (name, var) in params.named() {
            let da = ga
                .get(var.as_tensor())
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            let db = gb.get(vars64[&name].as_tensor()).unwrap();
            let scale = db
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            let diff = (&da - db).unwrap().abs().unwrap().max_all().unwrap();
            let diff = diff.to_scalar::<f64>().unwrap();
            // The key's bias moves every score of a query alike, which softmax ignores.
            let invariant = name.ends_with("attention.self.key.bias");
            assert!(invariant || scale > 1e-3, "{name}: a gradient of {scale}");
            assert!(diff <= 1e-4 * scale.max(1.0), "{name}: {diff} of {scale}");
        }
    }

    #[test]
    fn every_parameter_of_the_feature_model_receives_a_gradient() {
        let cfg = FeatureConfig {
            numeric: 3,
            categorical: vec![4, 7],
            embedding: 5,
            hidden: vec![16, 8],
            dropout: 0.1,
        };
        let params = Params::seeded(4);
        let model =
            FeatureModel::new(&cfg, &spec(), params.builder(DType::F32, &Device::Cpu)).unwrap();
        let dev = Device::Cpu;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        // Every categorical value appears, so every embedding row gets a gradient.
        let cats: Vec<u32> = (0..8u32).flat_map(|i| [i % 4, i % 7]).collect();
        let num: Vec<f32> = (0..24).map(|_| rng.random_range(-1.0..1.0)).collect();
        let batch = FeatureBatch {
            numeric: Some(Tensor::from_vec(num, (8, 3), &dev).unwrap()),
            categorical: Some(Tensor::from_vec(cats, (8, 2), &dev).unwrap()),
        };
        let out = model.forward(&batch, &mut Pass::Eval).unwrap();
        assert_every_parameter_gets_a_gradient(&params, &loss(&out, &mut rng));
    }

    fn outputs(model: &PairEncoder, batch: &PairBatch, pass: &mut Pass) -> Vec<f32> {
        model
            .forward(batch, pass)
            .unwrap()
            .score_logits
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    }

    #[test]
    fn dropout_drops_in_training_only_and_follows_its_seed() {
        let params = Params::seeded(3);
        let model = encoder(&params, 0);
        let batch = pair_batch(&mut ChaCha8Rng::seed_from_u64(1), 0);
        let eval = outputs(&model, &batch, &mut Pass::Eval);
        assert_eq!(eval, outputs(&model, &batch, &mut Pass::Eval));
        let train = |seed| {
            outputs(
                &model,
                &batch,
                &mut Pass::Train(&mut ChaCha8Rng::seed_from_u64(seed)),
            )
        };
        assert_ne!(train(1), eval, "dropout changed nothing");
        assert_eq!(train(1), train(1));
        assert_ne!(train(1), train(2));
        // The same seed builds the same model.
        let again = encoder(&Params::seeded(3), 0);
        assert_eq!(outputs(&again, &batch, &mut Pass::Eval), eval);
    }

    #[test]
    fn padding_does_not_change_the_tokens_it_is_beside() {
        // The first row with two padding tokens gives the same outputs as the row cut short.
        let model = encoder(&Params::seeded(9), 0);
        let batch = pair_batch(&mut ChaCha8Rng::seed_from_u64(1), 0);
        let full = outputs(&model, &batch, &mut Pass::Eval);
        let short = PairBatch {
            ids: batch.ids.narrow(0, 0, 1).unwrap().narrow(1, 0, 7).unwrap(),
            types: batch
                .types
                .narrow(0, 0, 1)
                .unwrap()
                .narrow(1, 0, 7)
                .unwrap(),
            mask: batch.mask.narrow(0, 0, 1).unwrap().narrow(1, 0, 7).unwrap(),
            features: None,
        };
        let cut = outputs(&model, &short, &mut Pass::Eval);
        for (a, b) in full.iter().take(3).zip(&cut) {
            assert!((a - b).abs() < 1e-5, "{full:?} vs {cut:?}");
        }
    }

    #[test]
    fn saved_weights_load_into_a_model_with_identical_outputs() {
        let params = Params::seeded(11);
        let model = encoder(&params, 2);
        let batch = pair_batch(&mut ChaCha8Rng::seed_from_u64(1), 2);
        let before = outputs(&model, &batch, &mut Pass::Eval);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        candle_core::safetensors::save(&params.tensors(), &path).unwrap();
        let loaded = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let params = Params::starting_from(999, loaded);
        let model = encoder(&params, 2);
        assert!(params.unused_initial().is_empty());
        assert_eq!(outputs(&model, &batch, &mut Pass::Eval), before);
        let _: Vec<Var> = params.named().into_iter().map(|(_, v)| v).collect();
    }

    #[test]
    fn a_configuration_that_cannot_work_is_refused_before_allocating() {
        let mut cfg = tiny();
        cfg.num_attention_heads = 3;
        let err = Bert::new(&cfg, Params::seeded(1).builder(DType::F32, &Device::Cpu))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not a multiple"), "{err}");
        let mut huge = tiny();
        huge.vocab_size = usize::MAX / 2;
        assert!(huge.validate().unwrap_err().contains("parameters"));
        let mut deep = tiny();
        deep.num_hidden_layers = usize::MAX;
        assert!(deep.validate().unwrap_err().contains("num_hidden_layers"));
        // MiniLM's shape: 22.7 M parameters.
        let minilm = BertConfig::new(30522, 384, 6, 12, 1536, 512);
        assert_eq!(minilm.parameter_count(), Some(22_565_376));
        let err = PairEncoder::new(
            &tiny(),
            0,
            &HeadSpec::default(),
            Params::seeded(1).builder(DType::F32, &Device::Cpu),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("at least one head"), "{err}");
    }
}
