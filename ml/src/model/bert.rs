//! A trainable BERT-family encoder, shaped like candle's own models (a serde `Config`,
//! `new(cfg, vb)` with Hugging Face's parameter names, `forward`) but built for training: the
//! fused kernels with their own backward (`kernels/`: attention, dropout that really drops,
//! GELU, layer norm and the bias), dropout's masks from a seeded generator. A Hugging Face BERT
//! checkpoint (`config.json`, `model.safetensors`) loads into it by name, and what it saves
//! reads back in the same layout.

use crate::kernels::{self, AttentionDropout, Kernels};
use candle_core::{Module, Result, Tensor, bail};
use candle_nn::{Embedding, Init, VarBuilder};
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A BERT `config.json`: the fields the encoder reads (others are kept by the file, ignored here).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: String,
    #[serde(default = "default_dropout")]
    pub hidden_dropout_prob: f64,
    #[serde(default = "default_dropout")]
    pub attention_probs_dropout_prob: f64,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    /// Attention heads removed by pruning, by layer (Hugging Face's convention: the layer's
    /// index as a string, the removed heads' original indices). A pruned layer's query, key and
    /// value have a row block per kept head, and its output projection a column block each.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pruned_heads: BTreeMap<String, Vec<usize>>,
}

fn default_act() -> String {
    "gelu".to_string()
}
fn default_dropout() -> f64 {
    0.1
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}
fn default_model_type() -> String {
    "bert".to_string()
}

impl BertConfig {
    /// A configuration of the given shape with BERT's other defaults.
    pub fn new(
        vocab_size: usize,
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
        max_position_embeddings: usize,
    ) -> BertConfig {
        BertConfig {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            hidden_act: default_act(),
            hidden_dropout_prob: default_dropout(),
            attention_probs_dropout_prob: default_dropout(),
            max_position_embeddings,
            type_vocab_size: default_type_vocab(),
            layer_norm_eps: default_eps(),
            initializer_range: default_init_range(),
            model_type: default_model_type(),
            pruned_heads: BTreeMap::new(),
        }
    }

    /// The width of one attention head.
    pub fn head_size(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    /// The original indices of the heads layer `layer` keeps, in order.
    pub fn kept_heads(&self, layer: usize) -> Vec<usize> {
        let pruned = self.pruned_heads.get(&layer.to_string());
        (0..self.num_attention_heads)
            .filter(|h| pruned.is_none_or(|p| !p.contains(h)))
            .collect()
    }

    /// How many parameters the encoder has (None past `usize`).
    pub fn parameter_count(&self) -> Option<usize> {
        let h = self.hidden_size;
        let rows = self
            .vocab_size
            .checked_add(self.max_position_embeddings)?
            .checked_add(self.type_vocab_size)?;
        let embeddings = rows.checked_mul(h)?.checked_add(2 * h)?;
        // Per layer: query, key and value (h → a, with biases) and the output projection
        // (a → h, with a bias), where a is the kept heads' width; two h×i projections with
        // biases; two norms.
        let i = self.intermediate_size;
        let mut total = embeddings;
        for layer in 0..self.num_hidden_layers {
            let a = self.kept_heads(layer).len().checked_mul(self.head_size())?;
            let attention = h
                .checked_mul(a)?
                .checked_add(a)?
                .checked_mul(3)?
                .checked_add(a.checked_mul(h)?)?
                .checked_add(h)?;
            let rest = h
                .checked_mul(i)?
                .checked_mul(2)?
                .checked_add(i)?
                .checked_add(h.checked_mul(5)?)?;
            total = total.checked_add(attention)?.checked_add(rest)?;
        }
        Some(total)
    }

    /// The problems of a configuration, checked before any tensor is allocated from it.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(format!("`{name}` is 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(format!(
                "`hidden_size` {} is not a multiple of `num_attention_heads` {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if !matches!(
            self.hidden_act.as_str(),
            "gelu" | "gelu_new" | "gelu_python"
        ) {
            return Err(format!(
                "`hidden_act` {:?} is not supported (gelu is)",
                self.hidden_act
            ));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(format!("`{name}` {p} is not in [0, 1)"));
            }
        }
        for (layer, heads) in &self.pruned_heads {
            let index = layer
                .parse::<usize>()
                .ok()
                .filter(|l| *l < self.num_hidden_layers);
            if index.is_none() {
                return Err(format!(
                    "`pruned_heads` names layer {layer:?}, and the encoder has {} layers",
                    self.num_hidden_layers
                ));
            }
            if let Some(h) = heads.iter().find(|h| **h >= self.num_attention_heads) {
                return Err(format!(
                    "`pruned_heads` of layer {layer} names head {h}, and a layer has {} heads",
                    self.num_attention_heads
                ));
            }
            let mut unique = heads.clone();
            unique.sort_unstable();
            unique.dedup();
            if unique.len() != heads.len() {
                return Err(format!(
                    "`pruned_heads` of layer {layer} names a head twice"
                ));
            }
            if unique.len() >= self.num_attention_heads {
                return Err(format!(
                    "`pruned_heads` removes every head of layer {layer}: a layer keeps at least one"
                ));
            }
        }
        // Bounds on what a configuration may make anyone allocate (the loader lists a tensor per
        // layer before it reads one): 1,024 layers, and 2^32 parameters in all.
        if self.num_hidden_layers > MAX_LAYERS {
            return Err(format!(
                "`num_hidden_layers` {} is more than {MAX_LAYERS}",
                self.num_hidden_layers
            ));
        }
        let count = self.parameter_count();
        if count.is_none_or(|c| c > MAX_PARAMETERS) {
            return Err(format!(
                "the encoder would have more than {MAX_PARAMETERS} parameters (`vocab_size` {}, `hidden_size` {}, `intermediate_size` {}, `max_position_embeddings` {}, `type_vocab_size` {})",
                self.vocab_size,
                self.hidden_size,
                self.intermediate_size,
                self.max_position_embeddings,
                self.type_vocab_size
            ));
        }
        Ok(())
    }
}

/// The most layers a configuration may have.
pub const MAX_LAYERS: usize = 1024;
/// The most parameters an encoder may have.
pub const MAX_PARAMETERS: usize = 1 << 32;

/// A forward pass: evaluation (no dropout) or training (dropout from this generator).
pub enum Pass<'a> {
    Eval,
    Train(&'a mut ChaCha8Rng),
}

impl Pass<'_> {
    /// The same pass, borrowed again for a sub-layer.
    pub fn reborrow(&mut self) -> Pass<'_> {
        match self {
            Pass::Eval => Pass::Eval,
            Pass::Train(rng) => Pass::Train(rng),
        }
    }

    /// A seed for dropout that runs outside the graph (the fused attention's), drawn from the
    /// pass's generator; none in evaluation.
    pub fn seed(&mut self) -> Option<u64> {
        match self {
            Pass::Eval => None,
            Pass::Train(rng) => Some(rng.next_u64()),
        }
    }

    /// Inverted dropout: each element kept with probability 1 − p and scaled by 1 / (1 − p);
    /// the fused kernel where it runs, its mask drawn from one seed of the pass's generator.
    pub fn dropout(&mut self, x: &Tensor, p: f64) -> Result<Tensor> {
        let Pass::Train(rng) = self else {
            return Ok(x.clone());
        };
        if p <= 0.0 {
            return Ok(x.clone());
        }
        if Kernels::for_tensor(x) == Kernels::Fused {
            return kernels::dropout(x, p as f32, rng.next_u64());
        }
        let scale = (1.0 / (1.0 - p)) as f32;
        let mask: Vec<f32> = (0..x.elem_count())
            .map(|_| if rng.random::<f64>() < p { 0.0 } else { scale })
            .collect();
        let mask = Tensor::from_vec(mask, x.shape(), x.device())?.to_dtype(x.dtype())?;
        x * mask
    }
}

/// A layer norm with learned weight and bias (`weight`, `bias`), on the fused kernel.
#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    pub fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<LayerNorm> {
        Ok(LayerNorm {
            weight: vb.get_with_hints(size, "weight", Init::Const(1.0))?,
            bias: vb.get_with_hints(size, "bias", Init::Const(0.0))?,
            eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Kernels::for_tensor(x).layer_norm(x, &self.weight, &self.bias, self.eps)
    }
}

/// A linear layer `x Wᵀ + b` over the last dimension, under Hugging Face's names (`weight`
/// `[out, in]`, `bias`): one matrix product over all the leading dimensions, the bias written
/// with it by the fused op ([`kernels::linear`]), whose backward sums the gradient's rows in
/// one pass (candle-nn's `Linear` adds it by broadcasting, whose backward was 9 % of a training
/// step) and gives the weight's gradient in its own layout.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Linear {
        Linear { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (outputs, inputs) = self.weight.dims2()?;
        let mut dims = x.dims().to_vec();
        match dims.last_mut() {
            Some(last) if *last == inputs => *last = outputs,
            _ => bail!(
                "a linear layer of {inputs} inputs was given a tensor of shape {:?}",
                x.dims()
            ),
        }
        // Rows in, rows out: a reshape is a node of the graph whose backward copies the whole
        // gradient, so the encoder runs on `[rows, hidden]` and none is made for it.
        let rows_in = x.rank() == 2 && x.is_contiguous();
        let rows = x.elem_count() / inputs.max(1);
        let x = if rows_in {
            x.clone()
        } else {
            x.contiguous()?.reshape((rows, inputs))?
        };
        let y = match &self.bias {
            Some(bias) => Kernels::for_tensor(&x).linear(&x, &self.weight, bias)?,
            None => x.matmul(&self.weight.t()?)?,
        };
        if rows_in { Ok(y) } else { y.reshape(dims) }
    }
}

/// A linear layer initialized as BERT's are (normal, standard deviation `initializer_range`;
/// bias zero).
pub fn linear(input: usize, output: usize, range: f64, vb: VarBuilder) -> Result<Linear> {
    let weight = vb.get_with_hints(
        (output, input),
        "weight",
        Init::Randn {
            mean: 0.0,
            stdev: range,
        },
    )?;
    let bias = vb.get_with_hints(output, "bias", Init::Const(0.0))?;
    Ok(Linear::new(weight, Some(bias)))
}

fn embedding(count: usize, size: usize, range: f64, vb: VarBuilder) -> Result<Embedding> {
    let weight = vb.get_with_hints(
        (count, size),
        "weight",
        Init::Randn {
            mean: 0.0,
            stdev: range,
        },
    )?;
    Ok(Embedding::new(weight, size))
}

struct Embeddings {
    words: Embedding,
    positions: Embedding,
    types: Embedding,
    norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Embeddings> {
        let r = cfg.initializer_range;
        Ok(Embeddings {
            words: embedding(cfg.vocab_size, cfg.hidden_size, r, vb.pp("word_embeddings"))?,
            positions: embedding(
                cfg.max_position_embeddings,
                cfg.hidden_size,
                r,
                vb.pp("position_embeddings"),
            )?,
            types: embedding(
                cfg.type_vocab_size,
                cfg.hidden_size,
                r,
                vb.pp("token_type_embeddings"),
            )?,
            norm: LayerNorm::new(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    fn forward(&self, ids: &Tensor, types: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let (_, len) = ids.dims2()?;
        let positions = Tensor::arange(0u32, len as u32, ids.device())?;
        let x = self
            .words
            .forward(ids)?
            .broadcast_add(&self.positions.forward(&positions)?)?
            .add(&self.types.forward(types)?)?;
        pass.dropout(&self.norm.forward(&x)?, self.dropout)
    }
}

struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    norm: LayerNorm,
    heads: usize,
    head_size: usize,
    attention_dropout: f64,
    dropout: f64,
}

impl Attention {
    fn new(cfg: &BertConfig, layer: usize, vb: VarBuilder) -> Result<Attention> {
        let (h, r) = (cfg.hidden_size, cfg.initializer_range);
        let heads = cfg.kept_heads(layer).len();
        let a = heads * cfg.head_size();
        let own = vb.pp("self");
        Ok(Attention {
            query: linear(h, a, r, own.pp("query"))?,
            key: linear(h, a, r, own.pp("key"))?,
            value: linear(h, a, r, own.pp("value"))?,
            output: linear(a, h, r, vb.pp("output").pp("dense"))?,
            norm: LayerNorm::new(h, cfg.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            heads,
            head_size: cfg.head_size(),
            attention_dropout: cfg.attention_probs_dropout_prob,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    /// `[batch, len, hidden]` → `[batch, heads, len, head_size]`.
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.head_size))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// The attention of [`kernels::attention`] composed of candle's differentiable ops (the
    /// reference, and the path on devices the fused kernel does not run on).
    fn composed(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &Tensor,
        pass: &mut Pass,
    ) -> Result<Tensor> {
        let (b, _, _, t) = mask.dims4()?;
        let split = |x: &Tensor| self.split(&x.reshape((b, t, ()))?);
        let (q, k, v) = (split(q)?, split(k)?, split(v)?);
        let scores = (q.matmul(&k.t()?)? / (self.head_size as f64).sqrt())?.broadcast_add(mask)?;
        let probs = Kernels::for_tensor(&scores).softmax_last_dim(&scores)?;
        let probs = pass.dropout(&probs, self.attention_dropout)?;
        probs
            .matmul(&v)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((b * t, self.heads * self.head_size))
    }

    /// `mask`: `[batch, 1, 1, len]`, 0 for tokens and a large negative number for padding.
    fn forward(&self, x: &Tensor, mask: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let (q, k, v) = (
            self.query.forward(x)?,
            self.key.forward(x)?,
            self.value.forward(x)?,
        );
        let context = match Kernels::for_tensor(x) {
            Kernels::Fused => {
                let dropout = match pass.seed() {
                    Some(seed) if self.attention_dropout > 0.0 => Some(AttentionDropout {
                        p: self.attention_dropout as f32,
                        seed,
                    }),
                    _ => None,
                };
                kernels::attention(&q, &k, &v, mask, self.heads, dropout)?
            }
            Kernels::Composed => self.composed(&q, &k, &v, mask, pass)?,
        };
        let out = pass.dropout(&self.output.forward(&context)?, self.dropout)?;
        self.norm.forward(&(out + x)?)
    }
}

struct FeedForward {
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    dropout: f64,
}

impl FeedForward {
    fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<FeedForward> {
        let (h, i, r) = (
            cfg.hidden_size,
            cfg.intermediate_size,
            cfg.initializer_range,
        );
        Ok(FeedForward {
            intermediate: linear(h, i, r, vb.pp("intermediate").pp("dense"))?,
            output: linear(i, h, r, vb.pp("output").pp("dense"))?,
            norm: LayerNorm::new(h, cfg.layer_norm_eps, vb.pp("output").pp("LayerNorm"))?,
            dropout: cfg.hidden_dropout_prob,
        })
    }

    fn forward(&self, x: &Tensor, pass: &mut Pass) -> Result<Tensor> {
        let hidden = self.intermediate.forward(x)?;
        let hidden = Kernels::for_tensor(&hidden).gelu(&hidden)?;
        let out = pass.dropout(&self.output.forward(&hidden)?, self.dropout)?;
        self.norm.forward(&(out + x)?)
    }
}

struct Layer {
    attention: Attention,
    feed_forward: FeedForward,
}

/// The encoder: embeddings and `num_hidden_layers` transformer layers, under Hugging Face's
/// names (`embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`,
/// ...).
pub struct Bert {
    embeddings: Embeddings,
    layers: Vec<Layer>,
    pub config: BertConfig,
}

impl Bert {
    pub fn new(cfg: &BertConfig, vb: VarBuilder) -> Result<Bert> {
        if let Err(problem) = cfg.validate() {
            bail!("the encoder's configuration: {problem}");
        }
        let embeddings = Embeddings::new(cfg, vb.pp("embeddings"))?;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| {
                let vb = vb.pp("encoder").pp("layer").pp(i);
                Ok(Layer {
                    attention: Attention::new(cfg, i, vb.pp("attention"))?,
                    feed_forward: FeedForward::new(cfg, vb.clone())?,
                })
            })
            .collect::<Result<Vec<Layer>>>()?;
        Ok(Bert {
            embeddings,
            layers,
            config: cfg.clone(),
        })
    }

    /// The hidden states `[batch, len, hidden]` of token ids and type ids `[batch, len]` (u32)
    /// and an attention mask `[batch, len]` (1 for a token, 0 for padding).
    pub fn forward(
        &self,
        ids: &Tensor,
        types: &Tensor,
        mask: &Tensor,
        pass: &mut Pass,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        if t > self.config.max_position_embeddings {
            bail!(
                "a sequence of {t} tokens is longer than the encoder's {} positions",
                self.config.max_position_embeddings
            );
        }
        let dtype = self.embeddings.words.embeddings().dtype();
        // 0 where attended, a large negative number at padding, broadcast over heads and queries.
        let mask = ((mask.to_dtype(dtype)?.ones_like()? - mask.to_dtype(dtype)?)? * -1e4)?
            .reshape((b, 1, 1, t))?;
        // The layers run on the sequences' rows, `[batch × len, hidden]` (see `Linear`).
        let h = self.config.hidden_size;
        let mut x = self
            .embeddings
            .forward(ids, types, pass)?
            .reshape((b * t, h))?;
        for layer in &self.layers {
            x = layer.attention.forward(&x, &mask, &mut pass.reborrow())?;
            x = layer.feed_forward.forward(&x, &mut pass.reborrow())?;
        }
        x.reshape((b, t, h))
    }

    /// The mean of the hidden states over the tokens the mask keeps (sentence-transformers'
    /// pooling), `[batch, hidden]`.
    pub fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let mask = mask.to_dtype(hidden.dtype())?.unsqueeze(2)?;
        let sum = hidden.broadcast_mul(&mask)?.sum(1)?;
        let count = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        sum.broadcast_div(&count)
    }
}
