//! What a model predicts for a pair, whatever its body: a head for every target a training plan
//! can name (each dimension's score and the overall score, the overall grade's logits, the
//! click logit), over a pooled vector. Two bodies: the pair encoder (BERT over the pair's text,
//! with numeric features joined before the heads) and the feature model (an MLP over numeric
//! and categorical features, for click logs that carry no text, such as the Open Bandit sample).

use super::bert::{Bert, BertConfig, Linear, Pass, linear};
use crate::kernels::Kernels;
use candle_core::{D, Module, Result, Tensor, bail};
use candle_nn::{Embedding, Init, VarBuilder};
use serde::{Deserialize, Serialize};

/// The targets a model has heads for, in a fixed order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadSpec {
    /// Scores in [0, 1], one output each: the dimensions' names, and `overall`.
    pub scores: Vec<String>,
    /// The overall grades, one logit each (empty: no grade head).
    pub grades: Vec<String>,
    /// A click logit.
    pub click: bool,
}

/// A batch of model outputs, `None` where the model has no such head.
#[derive(Debug)]
pub struct Outputs {
    /// `[batch, scores]`, logits of the scores (a sigmoid gives the score).
    pub score_logits: Option<Tensor>,
    /// `[batch, grades]`.
    pub grade_logits: Option<Tensor>,
    /// `[batch]`.
    pub click_logit: Option<Tensor>,
}

/// The heads over a `[batch, width]` vector.
pub struct Heads {
    scores: Option<Linear>,
    grades: Option<Linear>,
    click: Option<Linear>,
    pub spec: HeadSpec,
}

impl Heads {
    pub fn new(width: usize, spec: &HeadSpec, range: f64, vb: VarBuilder) -> Result<Heads> {
        if spec.scores.is_empty() && spec.grades.is_empty() && !spec.click {
            bail!("a model needs at least one head: a score, the grades or the click");
        }
        let head = |n: usize, name: &str| -> Result<Option<Linear>> {
            if n == 0 {
                Ok(None)
            } else {
                linear(width, n, range, vb.pp(name)).map(Some)
            }
        };
        Ok(Heads {
            scores: head(spec.scores.len(), "scores")?,
            grades: head(spec.grades.len(), "grades")?,
            click: head(usize::from(spec.click), "click")?,
            spec: spec.clone(),
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Outputs> {
        let apply = |l: &Option<Linear>| l.as_ref().map(|l| l.forward(x)).transpose();
        Ok(Outputs {
            score_logits: apply(&self.scores)?,
            grade_logits: apply(&self.grades)?,
            click_logit: apply(&self.click)?
                .map(|t| t.squeeze(D::Minus1))
                .transpose()?,
        })
    }
}

/// A tokenized batch of pairs: ids, type ids and mask `[batch, len]`, and the numeric features
/// `[batch, features]` when the model reads some.
pub struct PairBatch {
    pub ids: Tensor,
    pub types: Tensor,
    pub mask: Tensor,
    pub features: Option<Tensor>,
}

/// The pair encoder: BERT over `[CLS] query [SEP] candidate [SEP]`, BERT's pooler (`pooler.dense`,
/// tanh over the first token), numeric features through two GELU layers (`features.dense`,
/// `features.output`) added to it, then the heads (`heads.*`).
pub struct PairEncoder {
    pub bert: Bert,
    pooler: Linear,
    features: Option<(Linear, Linear)>,
    heads: Heads,
    dropout: f64,
}

impl PairEncoder {
    pub fn new(
        cfg: &BertConfig,
        features: usize,
        spec: &HeadSpec,
        vb: VarBuilder,
    ) -> Result<PairEncoder> {
        let bert = Bert::new(cfg, vb.clone())?;
        let (h, r) = (cfg.hidden_size, cfg.initializer_range);
        Ok(PairEncoder {
            bert,
            pooler: linear(h, h, r, vb.pp("pooler").pp("dense"))?,
            features: if features == 0 {
                None
            } else {
                // He initialization: the GELU layers start in their non-linear range, where
                // BERT's small initial weights would leave them nearly linear.
                let he = |fan_in: usize| (2.0 / fan_in as f64).sqrt();
                Some((
                    linear(features, h, he(features), vb.pp("features").pp("dense"))?,
                    linear(h, h, he(h), vb.pp("features").pp("output"))?,
                ))
            },
            heads: Heads::new(h, spec, r, vb.pp("heads"))?,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    pub fn spec(&self) -> &HeadSpec {
        &self.heads.spec
    }

    pub fn forward(&self, batch: &PairBatch, pass: &mut Pass) -> Result<Outputs> {
        let hidden =
            self.bert
                .forward(&batch.ids, &batch.types, &batch.mask, &mut pass.reborrow())?;
        let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
        let mut pooled = self.pooler.forward(&first)?.tanh()?;
        match (&self.features, &batch.features) {
            (Some((dense, output)), Some(f)) => {
                let x = Kernels::for_tensor(f).gelu(&dense.forward(f)?)?;
                let x = Kernels::for_tensor(&x).gelu(&output.forward(&x)?)?;
                pooled = (pooled + x)?;
            }
            (None, None) => {}
            (Some(_), None) => bail!("the model reads numeric features and the batch has none"),
            (None, Some(_)) => bail!("the batch has numeric features and the model reads none"),
        }
        let pooled = pass.dropout(&pooled, self.dropout)?;
        self.heads.forward(&pooled)
    }
}

/// The feature model's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureConfig {
    /// Numeric inputs.
    pub numeric: usize,
    /// Each categorical input's number of values (ids 0..n).
    pub categorical: Vec<usize>,
    /// Width of each categorical input's embedding.
    pub embedding: usize,
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    pub dropout: f64,
}

/// A batch for the feature model: numeric `[batch, numeric]` (f32) and categorical ids
/// `[batch, categorical]` (u32).
pub struct FeatureBatch {
    pub numeric: Option<Tensor>,
    pub categorical: Option<Tensor>,
}

/// An MLP over numeric features and embedded categorical ones (`categorical.N`, `mlp.N`), ReLU
/// between layers, then the heads.
pub struct FeatureModel {
    embeddings: Vec<Embedding>,
    layers: Vec<Linear>,
    heads: Heads,
    config: FeatureConfig,
}

impl FeatureModel {
    pub fn new(cfg: &FeatureConfig, spec: &HeadSpec, vb: VarBuilder) -> Result<FeatureModel> {
        if cfg.numeric == 0 && cfg.categorical.is_empty() {
            bail!("the feature model needs at least one input");
        }
        if cfg.categorical.contains(&0) || (!cfg.categorical.is_empty() && cfg.embedding == 0) {
            bail!("each categorical input needs at least one value and an embedding width");
        }
        let range = 0.02;
        let embeddings = cfg
            .categorical
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let w = vb.pp("categorical").pp(i).get_with_hints(
                    (n, cfg.embedding),
                    "weight",
                    Init::Randn {
                        mean: 0.0,
                        stdev: 1.0 / (cfg.embedding as f64).sqrt(),
                    },
                )?;
                Ok(Embedding::new(w, cfg.embedding))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut width = cfg.numeric + cfg.categorical.len() * cfg.embedding;
        let mut layers = Vec::new();
        for (i, &h) in cfg.hidden.iter().enumerate() {
            if h == 0 {
                bail!("hidden layer {i} of the feature model has width 0");
            }
            let w = vb.pp("mlp").pp(i).get_with_hints(
                (h, width),
                "weight",
                Init::Randn {
                    mean: 0.0,
                    stdev: (2.0 / width as f64).sqrt(),
                },
            )?;
            let b = vb
                .pp("mlp")
                .pp(i)
                .get_with_hints(h, "bias", Init::Const(0.0))?;
            layers.push(Linear::new(w, Some(b)));
            width = h;
        }
        Ok(FeatureModel {
            embeddings,
            layers,
            heads: Heads::new(width, spec, range, vb.pp("heads"))?,
            config: cfg.clone(),
        })
    }

    pub fn forward(&self, batch: &FeatureBatch, pass: &mut Pass) -> Result<Outputs> {
        let mut parts: Vec<Tensor> = Vec::new();
        match (&batch.numeric, self.config.numeric) {
            (Some(n), w) if w > 0 => parts.push(n.clone()),
            (None, 0) => {}
            _ => bail!(
                "the batch's numeric features do not match the model's {}",
                self.config.numeric
            ),
        }
        match (&batch.categorical, self.embeddings.is_empty()) {
            (Some(c), false) => {
                for (i, e) in self.embeddings.iter().enumerate() {
                    parts.push(e.forward(&c.narrow(1, i, 1)?.squeeze(1)?)?);
                }
            }
            (None, true) => {}
            _ => bail!("the batch's categorical features do not match the model's"),
        }
        let mut x = Tensor::cat(&parts, 1)?;
        for layer in &self.layers {
            x = pass.dropout(&layer.forward(&x)?.relu()?, self.config.dropout)?;
        }
        self.heads.forward(&x)
    }
}
