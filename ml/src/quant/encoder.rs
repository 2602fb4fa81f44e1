//! The pair encoder for inference, outside candle's graph: the same forward pass as
//! `model::PairEncoder` (embeddings, transformer layers, pooler, feature layers, heads) over
//! plain buffers, each linear layer f32 or int8 as its weights say. Each sequence runs at its
//! own length (no padding), several sequences share each matrix multiply, and the sequences of a
//! batch are split over rayon's threads. Rows that sequences share at their start (a ranking's
//! query, before each candidate) are embedded and projected once. A head mask removes attention
//! heads without changing the weights, which is how pruning measures a head's importance.

use super::attention::{Head, Int8Attention, WEIGHT_SCALE};
use super::linear::{Dense, Epilogue, Input, Linear, QLinear, Quantized, Scratch, grown};
use super::weights::{QUANTIZED, SCALE, TensorMap};
use crate::kernels::{add_layer_norm_rows, gelu_in_place, softmax_numerators};
use crate::model::{BertConfig, HeadSpec};
use crate::quant::dense::{View, matmul};
use rayon::prelude::*;

/// One pair to encode: word-piece ids and type ids of `[CLS] query [SEP] candidate [SEP]`
/// (no padding), and its numeric features.
#[derive(Clone, Copy, Debug)]
pub struct Sequence<'a> {
    pub ids: &'a [u32],
    pub types: &'a [u32],
    pub features: &'a [f32],
}

/// The heads' logits of a batch, row-major.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logits {
    pub rows: usize,
    /// `[rows, scores]`.
    pub scores: Vec<f32>,
    /// `[rows, grades]`.
    pub grades: Vec<f32>,
    /// `[rows]`, empty without a click head.
    pub click: Vec<f32>,
}

/// The most sequences that share one chunk's multiplies (about 800 rows of 96 word pieces:
/// larger chunks were slower at batch 100 on the example's student, their buffers out of cache).
const MAX_CHUNK: usize = 8;

/// Which heads each layer keeps (`mask[layer][head]`), over the heads the model has.
pub type HeadMask = Vec<Vec<bool>>;

/// Word embeddings, f32 or int8 per row.
#[derive(Clone)]
enum Words {
    F32(Vec<f32>),
    Int8 { values: Vec<i8>, scales: Vec<f32> },
}

#[derive(Clone)]
struct Norm {
    weight: Vec<f32>,
    bias: Vec<f32>,
}

#[derive(Clone)]
struct Layer {
    /// Query, key and value in one `[3 a, h]` layer (a: the kept heads' width).
    qkv: Linear,
    heads: usize,
    /// The scale of the attention weights' u8 codes, where its two products run in int8.
    int8_attention: Option<f32>,
    output: Linear,
    attention_norm: Norm,
    intermediate: Linear,
    down: Linear,
    output_norm: Norm,
}

/// A loaded model, ready to encode pairs.
#[derive(Clone)]
pub struct Encoder {
    pub config: BertConfig,
    pub spec: HeadSpec,
    pub features: usize,
    words: Words,
    positions: Vec<f32>,
    types: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
    pooler: Linear,
    feature_layers: Option<(Linear, Linear)>,
    score_head: Option<Dense>,
    grade_head: Option<Dense>,
    click_head: Option<Dense>,
}

fn dense(map: &TensorMap, name: &str, n: usize, k: usize) -> Result<Dense, String> {
    Dense::new(
        map.f32(&format!("{name}.weight"), &[n, k])?.to_vec(),
        map.f32(&format!("{name}.bias"), &[n])?.to_vec(),
        n,
        k,
    )
}

/// Layers `names` (each `[n_i, k]`) stacked into one, int8 when every one of them is
/// quantized, f32 when none is.
fn stacked(map: &TensorMap, names: &[String], ns: &[usize], k: usize) -> Result<Linear, String> {
    let quantized: Vec<bool> = names
        .iter()
        .map(|n| map.is_quantized(&format!("{n}.weight")))
        .collect();
    let n: usize = ns.iter().sum();
    let mut bias = Vec::with_capacity(n);
    for (name, &rows) in names.iter().zip(ns) {
        bias.extend_from_slice(map.f32(&format!("{name}.bias"), &[rows])?);
    }
    if quantized.iter().all(|q| *q) {
        let mut q = Vec::with_capacity(n * k);
        let mut scales = Vec::with_capacity(n);
        for (name, &rows) in names.iter().zip(ns) {
            q.extend_from_slice(map.i8(&format!("{name}.weight{QUANTIZED}"), &[rows, k])?);
            scales.extend_from_slice(map.f32(&format!("{name}.weight{SCALE}"), &[rows])?);
        }
        Ok(Linear::Int8(QLinear::new(&q, scales, bias, n, k)?))
    } else if quantized.iter().all(|q| !*q) {
        let mut w = Vec::with_capacity(n * k);
        for (name, &rows) in names.iter().zip(ns) {
            w.extend_from_slice(map.f32(&format!("{name}.weight"), &[rows, k])?);
        }
        Ok(Linear::F32(Dense::new(w, bias, n, k)?))
    } else {
        Err(format!(
            "`{}`: {} are quantized alike or not at all",
            map.source,
            names.join(", ")
        ))
    }
}

/// Layer `l`'s attention-weight scale, where the map has one: between 1/255 (every u8 code
/// used) and 1.
fn weight_scale(map: &TensorMap, l: usize) -> Result<Option<f32>, String> {
    let name = super::attention_weight_scale(l);
    if !map.tensors.contains_key(&name) {
        return Ok(None);
    }
    let s = map.f32(&name, &[1])?[0];
    if !(WEIGHT_SCALE..=1.0).contains(&s) {
        return Err(format!(
            "`{}`, tensor `{name}`: {s} is outside {WEIGHT_SCALE}..=1 (the u8 codes of weights up \
             to 1 at that scale)",
            map.source
        ));
    }
    Ok(Some(s))
}

fn norm(map: &TensorMap, name: &str, h: usize) -> Result<Norm, String> {
    Ok(Norm {
        weight: map.f32(&format!("{name}.weight"), &[h])?.to_vec(),
        bias: map.f32(&format!("{name}.bias"), &[h])?.to_vec(),
    })
}

fn optional_head(map: &TensorMap, name: &str, n: usize, k: usize) -> Result<Option<Dense>, String> {
    (n > 0).then(|| dense(map, name, n, k)).transpose()
}

/// Rows of a batch in flight through the layers: the hidden states of several sequences.
#[derive(Default)]
struct Work {
    x: Vec<f32>,
    /// `x` quantized, where the layer that wrote `x` also quantized it for an int8 one after.
    qx: Quantized,
    qkv: Vec<f32>,
    context: Vec<f32>,
    inner: Vec<f32>,
    /// `inner` quantized, for an int8 down-projection.
    qinner: Quantized,
    scores: Vec<f32>,
    /// The rows no earlier sequence shares, embedded, and their first query, key and value
    /// projections (see [`Shared`]).
    unique_x: Vec<f32>,
    unique_qkv: Vec<f32>,
    /// Each attention row's softmax denominator.
    sums: Vec<f32>,
    scratch: Scratch,
    int8_attention: Int8Attention,
}

thread_local! {
    /// Each thread's buffers, kept between calls: a served model allocates them (and the
    /// kernel maps and zeroes their pages) once, not once a request.
    static WORK: std::cell::RefCell<Option<Work>> = const { std::cell::RefCell::new(None) };
}

impl Encoder {
    /// The encoder of `config` from `map`: f32 weights as the checkpoint saves them, or int8
    /// where the map holds a layer's `.weight.q` and `.weight.scale` (see `weights`).
    pub fn new(
        config: &BertConfig,
        spec: &HeadSpec,
        features: usize,
        map: &TensorMap,
    ) -> Result<Encoder, String> {
        config
            .validate()
            .map_err(|e| format!("`{}`: the configuration: {e}", map.source))?;
        let h = config.hidden_size;
        let i = config.intermediate_size;
        let words = if map.is_quantized("embeddings.word_embeddings.weight") {
            Words::Int8 {
                values: map
                    .i8(
                        "embeddings.word_embeddings.weight.q",
                        &[config.vocab_size, h],
                    )?
                    .to_vec(),
                scales: map
                    .f32(
                        "embeddings.word_embeddings.weight.scale",
                        &[config.vocab_size],
                    )?
                    .to_vec(),
            }
        } else {
            Words::F32(
                map.f32("embeddings.word_embeddings.weight", &[config.vocab_size, h])?
                    .to_vec(),
            )
        };
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let heads = config.kept_heads(l).len();
            let a = heads * config.head_size();
            let qkv_names: Vec<String> = ["query", "key", "value"]
                .iter()
                .map(|n| format!("{p}.attention.self.{n}"))
                .collect();
            layers.push(Layer {
                qkv: stacked(map, &qkv_names, &[a, a, a], h)?,
                heads,
                int8_attention: weight_scale(map, l)?,
                output: stacked(map, &[format!("{p}.attention.output.dense")], &[h], a)?,
                attention_norm: norm(map, &format!("{p}.attention.output.LayerNorm"), h)?,
                intermediate: stacked(map, &[format!("{p}.intermediate.dense")], &[i], h)?,
                down: stacked(map, &[format!("{p}.output.dense")], &[h], i)?,
                output_norm: norm(map, &format!("{p}.output.LayerNorm"), h)?,
            });
        }
        Ok(Encoder {
            config: config.clone(),
            spec: spec.clone(),
            features,
            words,
            positions: map
                .f32(
                    "embeddings.position_embeddings.weight",
                    &[config.max_position_embeddings, h],
                )?
                .to_vec(),
            types: map
                .f32(
                    "embeddings.token_type_embeddings.weight",
                    &[config.type_vocab_size, h],
                )?
                .to_vec(),
            embedding_norm: norm(map, "embeddings.LayerNorm", h)?,
            layers,
            pooler: stacked(map, &["pooler.dense".to_string()], &[h], h)?,
            feature_layers: if features == 0 {
                None
            } else {
                Some((
                    stacked(map, &["features.dense".to_string()], &[h], features)?,
                    stacked(map, &["features.output".to_string()], &[h], h)?,
                ))
            },
            score_head: optional_head(map, "heads.scores", spec.scores.len(), h)?,
            grade_head: optional_head(map, "heads.grades", spec.grades.len(), h)?,
            click_head: optional_head(map, "heads.click", usize::from(spec.click), h)?,
        })
    }

    /// The same f32 model with each transformer layer's linear layers on candle's Q8_0
    /// `QMatMul` (the peer of our int8 kernel in `ml/benches/student.rs`).
    pub fn to_candle_q8(&self) -> Result<Encoder, String> {
        let mut out = self.clone();
        for l in &mut out.layers {
            for linear in [&mut l.qkv, &mut l.output, &mut l.intermediate, &mut l.down] {
                *linear = linear.to_candle_q8()?;
            }
        }
        Ok(out)
    }

    /// Whether any layer runs in int8.
    pub fn is_quantized(&self) -> bool {
        matches!(self.words, Words::Int8 { .. })
            || matches!(self.pooler, Linear::Int8(_))
            || self.layers.iter().any(|l| {
                l.int8_attention.is_some()
                    || [&l.qkv, &l.output, &l.intermediate, &l.down]
                        .iter()
                        .any(|x| matches!(x, Linear::Int8(_)))
            })
    }

    /// Heads each layer has now (after pruning).
    pub fn heads(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.heads).collect()
    }

    fn check(&self, r: usize, s: &Sequence<'_>) -> Result<(), String> {
        let c = &self.config;
        if s.ids.is_empty() || s.ids.len() != s.types.len() {
            return Err(format!(
                "pair {r}: {} ids and {} type ids (at least one, as many of each)",
                s.ids.len(),
                s.types.len()
            ));
        }
        if s.ids.len() > c.max_position_embeddings {
            return Err(format!(
                "pair {r}: {} word pieces, more than the model's {} positions",
                s.ids.len(),
                c.max_position_embeddings
            ));
        }
        if let Some(id) = s.ids.iter().find(|&&id| id as usize >= c.vocab_size) {
            return Err(format!(
                "pair {r}: word piece {id} is outside the vocabulary of {}",
                c.vocab_size
            ));
        }
        if let Some(t) = s.types.iter().find(|&&t| t as usize >= c.type_vocab_size) {
            return Err(format!(
                "pair {r}: type id {t} is outside the model's {}",
                c.type_vocab_size
            ));
        }
        if s.features.len() != self.features {
            return Err(format!(
                "pair {r}: {} numeric features, and the model reads {}",
                s.features.len(),
                self.features
            ));
        }
        Ok(())
    }

    /// The logits of every sequence, in order. `mask` (one flag per kept head of each layer)
    /// removes heads as pruning would.
    pub fn forward(
        &self,
        seqs: &[Sequence<'_>],
        mask: Option<&HeadMask>,
    ) -> Result<Logits, String> {
        for (r, s) in seqs.iter().enumerate() {
            self.check(r, s)?;
        }
        if let Some(m) = mask
            && (m.len() != self.layers.len()
                || m.iter().zip(&self.layers).any(|(m, l)| m.len() != l.heads))
        {
            return Err("the head mask does not match the model's heads".to_string());
        }
        let threads = rayon::current_num_threads().max(1);
        if seqs.len() <= 1 {
            return self.chunk(seqs, mask, true);
        }
        // About two chunks a thread, so sequences of unequal lengths even out, and at most
        // `MAX_CHUNK` sequences a chunk, so a chunk's buffers stay in cache (on one thread
        // too, where rayon runs the chunks in turn: a whole batch at once is slower).
        let size = seqs.len().div_ceil(threads * 2).clamp(1, MAX_CHUNK);
        let parts = seqs
            .par_chunks(size)
            .map(|c| self.chunk(c, mask, false))
            .collect::<Result<Vec<Logits>, String>>()?;
        let mut out = Logits::default();
        for p in parts {
            out.rows += p.rows;
            out.scores.extend(p.scores);
            out.grades.extend(p.grades);
            out.click.extend(p.click);
        }
        Ok(out)
    }

    /// The sequences of one chunk, on one thread (`parallel`: the int8 multiplies split their
    /// rows over the threads instead).
    fn chunk(
        &self,
        seqs: &[Sequence<'_>],
        mask: Option<&HeadMask>,
        parallel: bool,
    ) -> Result<Logits, String> {
        let c = &self.config;
        let h = c.hidden_size;
        let rows: usize = seqs.iter().map(|s| s.ids.len()).sum();
        let mut w = WORK
            .with(|cell| cell.borrow_mut().take())
            .unwrap_or_default();
        // `x` exactly as long as this chunk needs (`resize` shortens too: its length is the
        // rows in flight); the other buffers at least as long. Every value is written before
        // it is read.
        w.x.resize(rows * h, 0.0);
        grown(&mut w.inner, rows * c.intermediate_size);
        let out = self.layers_and_heads(seqs, mask, parallel, rows, &mut w);
        WORK.with(|cell| *cell.borrow_mut() = Some(w));
        out
    }

    fn layers_and_heads(
        &self,
        seqs: &[Sequence<'_>],
        mask: Option<&HeadMask>,
        parallel: bool,
        rows: usize,
        w: &mut Work,
    ) -> Result<Logits, String> {
        let c = &self.config;
        let shared = Shared::of(seqs);
        // The first layer's query, key and value rows, where they were projected once for
        // the rows sequences share.
        let mut projected = false;
        match self.layers.first().filter(|_| shared.unique < rows) {
            Some(first) => {
                self.embed(seqs, Some(&shared), &mut w.unique_x);
                let (h, n) = (c.hidden_size, first.qkv.n());
                grown(&mut w.unique_qkv, shared.unique * n);
                first.qkv.forward_fused(
                    Input::f32(&w.unique_x),
                    shared.unique,
                    &mut w.unique_qkv,
                    Epilogue::Plain,
                    None,
                    &mut w.scratch,
                    parallel,
                )?;
                shared.expand(seqs, &w.unique_x, h, &mut w.x);
                grown(&mut w.qkv, rows * n);
                shared.expand(seqs, &w.unique_qkv, n, &mut w.qkv);
                projected = true;
            }
            None => self.embed(seqs, None, &mut w.x),
        }
        let mut rows = rows;
        let last = self.layers.len().checked_sub(1);
        if last.is_none() {
            first_rows(seqs, w, c.hidden_size);
        }
        let eps = c.layer_norm_eps as f32;
        // Whether `w.qx` holds `w.x`'s bytes (the embeddings' are not fused).
        let mut x_quantized = false;
        for (l, layer) in self.layers.iter().enumerate() {
            if !(l == 0 && projected) {
                self.project(layer, w, x_quantized, parallel)?;
            }
            // The last layer's outputs are read at each sequence's first word piece only (the
            // pooler's): its keys and values need every row, the rest of it those rows alone.
            let first_only = Some(l) == last;
            self.attention(
                seqs,
                layer,
                mask.and_then(|m| m.get(l)),
                w,
                (parallel, first_only),
            )?;
            if first_only {
                rows = seqs.len();
            }
            // Each layer quantizes its output for the int8 layer after it while the rows are
            // in cache: the GELU's for the down-projection, the add-and-norm's for the next
            // layer's attention.
            let down_int8 = layer.down.is_int8();
            layer.intermediate.forward_fused(
                Input {
                    rows: &w.x,
                    quantized: layer.intermediate.is_int8().then_some(&w.qx),
                },
                rows,
                &mut w.inner,
                Epilogue::Gelu,
                down_int8.then_some(&mut w.qinner),
                &mut w.scratch,
                parallel,
            )?;
            x_quantized = self.layers.get(l + 1).is_some_and(|n| n.qkv.is_int8());
            layer.down.forward_fused(
                Input {
                    rows: &w.inner,
                    quantized: down_int8.then_some(&w.qinner),
                },
                rows,
                &mut w.x,
                layer.output_norm.add_norm(eps),
                x_quantized.then_some(&mut w.qx),
                &mut w.scratch,
                parallel,
            )?;
        }
        self.pool_and_heads(seqs.len(), seqs, &w.x, &mut w.scratch)
    }

    /// The embeddings of each sequence's rows, one after another, into `x` (sized here): with
    /// `shared`, only the rows it computes (each sequence's from the first it does not share).
    fn embed(&self, seqs: &[Sequence<'_>], shared: Option<&Shared>, x: &mut Vec<f32>) {
        let h = self.config.hidden_size;
        let eps = self.config.layer_norm_eps as f32;
        let skip = |i: usize| shared.and_then(|s| s.from.get(i)).map_or(0, |&(_, n)| n);
        let rows: usize = (seqs.iter().enumerate())
            .map(|(i, s)| s.ids.len().saturating_sub(skip(i)))
            .sum();
        x.resize(rows * h, 0.0);
        let mut rows = x.chunks_exact_mut(h);
        'all: for (i, s) in seqs.iter().enumerate() {
            let pieces = s.ids.iter().zip(s.types).enumerate().skip(skip(i));
            for (p, (&id, &t)) in pieces {
                let Some(row) = rows.next() else {
                    break 'all;
                };
                let (id, t) = (id as usize, t as usize);
                let pos = &self.positions[p * h..(p + 1) * h];
                let ty = &self.types[t * h..(t + 1) * h];
                match &self.words {
                    Words::F32(wv) => {
                        for (((y, &w), &p), &t) in
                            row.iter_mut().zip(&wv[id * h..]).zip(pos).zip(ty)
                        {
                            *y = w + p + t;
                        }
                    }
                    Words::Int8 { values, scales } => {
                        let s = scales[id];
                        for (((y, &w), &p), &t) in
                            row.iter_mut().zip(&values[id * h..]).zip(pos).zip(ty)
                        {
                            *y = f32::from(w) * s + p + t;
                        }
                    }
                }
            }
        }
        let norm = &self.embedding_norm;
        add_layer_norm_rows(x, None, &norm.weight, &norm.bias, eps);
    }

    /// A layer's query, key and value rows of `w.x`, into `w.qkv` (`x_quantized`: `w.qx`
    /// holds `w.x`'s bytes).
    fn project(
        &self,
        layer: &Layer,
        w: &mut Work,
        x_quantized: bool,
        parallel: bool,
    ) -> Result<(), String> {
        let rows = w.x.len() / self.config.hidden_size;
        grown(&mut w.qkv, rows * layer.qkv.n());
        let input = Input {
            rows: &w.x,
            quantized: x_quantized.then_some(&w.qx),
        };
        let plain = Epilogue::Plain;
        layer.qkv.forward_fused(
            input,
            rows,
            &mut w.qkv,
            plain,
            None,
            &mut w.scratch,
            parallel,
        )
    }

    /// One layer's attention over `w.qkv` (its query, key and value rows, projected) and its
    /// add-and-norm over `w.x`; with `first_only`, for each sequence's first row alone, leaving
    /// `w.x` one row a sequence.
    fn attention(
        &self,
        seqs: &[Sequence<'_>],
        layer: &Layer,
        keep: Option<&Vec<bool>>,
        w: &mut Work,
        (parallel, first_only): (bool, bool),
    ) -> Result<(), String> {
        let c = &self.config;
        let (h, hs) = (c.hidden_size, c.head_size());
        let a = layer.heads * hs;
        let rows = w.x.len() / h;
        // Every head writes its own columns; a masked head's stay 0.
        let out_rows = if first_only { seqs.len() } else { rows };
        if keep.is_some() {
            w.context.clear();
            w.context.resize(out_rows * a, 0.0);
        } else {
            grown(&mut w.context, out_rows * a);
        }
        let scale = 1.0 / (hs as f32).sqrt();
        let mut start = 0;
        for (i, s) in seqs.iter().enumerate() {
            let t = s.ids.len();
            let (queries, at) = if first_only { (1, i) } else { (t, start) };
            grown(&mut w.scores, queries * t);
            let block = &w.qkv[start * 3 * a..(start + t) * 3 * a];
            for head in 0..layer.heads {
                if keep.is_some_and(|k| !k[head]) {
                    continue;
                }
                if let Some(weight_scale) = layer.int8_attention {
                    let h = Head {
                        block,
                        stride: 3 * a,
                        rows: t,
                        queries,
                        q: head * hs,
                        k: a + head * hs,
                        v: 2 * a + head * hs,
                        width: hs,
                    };
                    let context = &mut w.context[at * a + head * hs..];
                    w.int8_attention.head(&h, scale, weight_scale, context, a)?;
                    continue;
                }
                let q = View {
                    data: &block[head * hs..],
                    rows: queries,
                    cols: hs,
                    row_stride: 3 * a,
                    col_stride: 1,
                };
                let kt = View {
                    data: &block[a + head * hs..],
                    rows: hs,
                    cols: t,
                    row_stride: 1,
                    col_stride: 3 * a,
                };
                let scores = &mut w.scores[..queries * t];
                matmul(scores, t, q, kt, false)?;
                let sums = grown(&mut w.sums, queries);
                softmax_numerators(scores, t, scale, sums);
                let v = View {
                    data: &block[2 * a + head * hs..],
                    rows: t,
                    cols: hs,
                    row_stride: 3 * a,
                    col_stride: 1,
                };
                let context = &mut w.context[at * a + head * hs..];
                matmul(
                    context,
                    a,
                    View::rows(&w.scores[..queries * t], queries, t),
                    v,
                    false,
                )?;
                // Softmax's division, over the head's outputs rather than its weights.
                for (row, &sum) in context.chunks_mut(a).zip(&w.sums[..queries]) {
                    let inv = 1.0 / sum;
                    for v in &mut row[..hs] {
                        *v *= inv;
                    }
                }
            }
            start += t;
        }
        if first_only {
            first_rows(seqs, w, h);
        }
        let intermediate_int8 = layer.intermediate.is_int8();
        layer.output.forward_fused(
            Input::f32(&w.context),
            out_rows,
            &mut w.x,
            layer.attention_norm.add_norm(c.layer_norm_eps as f32),
            intermediate_int8.then_some(&mut w.qx),
            &mut w.scratch,
            parallel,
        )
    }

    /// The pooler, feature layers and heads over `first`, each sequence's first row.
    fn pool_and_heads(
        &self,
        b: usize,
        seqs: &[Sequence<'_>],
        first: &[f32],
        scratch: &mut Scratch,
    ) -> Result<Logits, String> {
        let h = self.config.hidden_size;
        let mut pooled = vec![0f32; b * h];
        self.pooler
            .forward(&first[..b * h], b, &mut pooled, scratch, false)?;
        for v in pooled.iter_mut() {
            *v = v.tanh();
        }
        if let Some((dense, output)) = &self.feature_layers {
            let f: Vec<f32> = seqs
                .iter()
                .flat_map(|s| s.features.iter().copied())
                .collect();
            let mut x1 = vec![0f32; b * h];
            dense.forward(&f, b, &mut x1, scratch, false)?;
            gelu_in_place(&mut x1);
            let mut x2 = vec![0f32; b * h];
            output.forward(&x1, b, &mut x2, scratch, false)?;
            gelu_in_place(&mut x2);
            for (p, v) in pooled.iter_mut().zip(&x2) {
                *p += v;
            }
        }
        let head = |d: &Option<Dense>| -> Result<Vec<f32>, String> {
            match d {
                None => Ok(Vec::new()),
                Some(d) => {
                    let mut out = vec![0f32; b * d.n];
                    d.forward(&pooled, b, &mut out)?;
                    Ok(out)
                }
            }
        };
        Ok(Logits {
            rows: b,
            scores: head(&self.score_head)?,
            grades: head(&self.grade_head)?,
            click: head(&self.click_head)?,
        })
    }
}

/// The rows each sequence of a chunk shares with an earlier one: the same word pieces and types
/// from the start, so the same embeddings and the same first query, key and value projections.
/// A ranking's pairs all begin with its query (cut to a different length beside each
/// candidate): those rows are computed once a chunk, not once a pair.
struct Shared {
    /// Each sequence's earlier sequence and the rows it shares with it (0: none), which is
    /// also its first row computed.
    from: Vec<(usize, usize)>,
    /// The rows computed: all but the shared ones.
    unique: usize,
}

impl Shared {
    fn of(seqs: &[Sequence<'_>]) -> Shared {
        let mut from = Vec::with_capacity(seqs.len());
        let mut unique = 0;
        for (i, s) in seqs.iter().enumerate() {
            let mut best = (i, 0);
            for (j, earlier) in seqs[..i].iter().enumerate() {
                let n = s
                    .ids
                    .iter()
                    .zip(s.types)
                    .zip(earlier.ids.iter().zip(earlier.types))
                    .take_while(|(a, b)| a == b)
                    .count();
                if n > best.1 {
                    best = (j, n);
                }
            }
            from.push(best);
            unique += s.ids.len() - best.1;
        }
        Shared { from, unique }
    }

    /// Rows of `width` computed for the unique rows (`unique`, one after another) spread to
    /// every row of every sequence (`full`, sized here), the shared ones copied from the
    /// earlier sequence's.
    fn expand(&self, seqs: &[Sequence<'_>], unique: &[f32], width: usize, full: &mut Vec<f32>) {
        let rows: usize = seqs.iter().map(|s| s.ids.len()).sum();
        full.resize(rows * width, 0.0);
        let mut starts = Vec::with_capacity(seqs.len());
        let (mut start, mut at) = (0, 0);
        for (s, &(j, n)) in seqs.iter().zip(&self.from) {
            let t = s.ids.len();
            if n > 0 {
                // Sequence `j` comes earlier: its rows are in place, before these.
                let from = starts.get(j).copied().unwrap_or(start);
                full.copy_within(from * width..(from + n) * width, start * width);
            }
            let own = (t - n) * width;
            full[(start + n) * width..(start + t) * width].copy_from_slice(&unique[at..at + own]);
            starts.push(start);
            at += own;
            start += t;
        }
    }
}

/// Keeps each sequence's first row of `w.x`, in order, and sizes `w.x` for one row a sequence.
fn first_rows(seqs: &[Sequence<'_>], w: &mut Work, h: usize) {
    let mut start = 0;
    for (i, s) in seqs.iter().enumerate() {
        // `start >= i`: each row moves down or stays, after the rows before it.
        w.x.copy_within(start * h..(start + 1) * h, i * h);
        start += s.ids.len();
    }
    let b = seqs.len();
    w.x.truncate(b * h);
}

impl Norm {
    /// The add-and-norm epilogue of the layer before this norm.
    fn add_norm(&self, eps: f32) -> Epilogue<'_> {
        Epilogue::AddNorm {
            weight: &self.weight,
            bias: &self.bias,
            eps,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_shares_its_longest_common_start_with_an_earlier_one() {
        let ids: [&[u32]; 4] = [
            &[1, 7, 8, 2, 5, 2],
            &[1, 7, 2, 9, 2],
            &[1, 7, 8, 9, 2, 4, 2],
            &[3, 2],
        ];
        let types: Vec<Vec<u32>> = ids.iter().map(|s| vec![0; s.len()]).collect();
        let mut seqs: Vec<Sequence<'_>> = ids
            .iter()
            .zip(&types)
            .map(|(ids, types)| Sequence {
                ids,
                types,
                features: &[],
            })
            .collect();
        let shared = Shared::of(&seqs);
        assert_eq!(shared.from, vec![(0, 0), (0, 2), (0, 3), (3, 0)]);
        assert_eq!(shared.unique, 6 + 3 + 4 + 2);
        // The same pieces of another type are other rows.
        let other = vec![0, 0, 1, 1, 1, 1, 1];
        seqs[2].types = &other;
        assert_eq!(Shared::of(&seqs).from[2], (0, 2));

        // Each sequence's rows (one number a row: its sequence and position) from the unique
        // ones: the shared ones copied from the earlier sequence's.
        let shared = Shared::of(&seqs[..3]);
        let unique: Vec<f32> = [(0, 0..6), (1, 2..5), (2, 2..7)]
            .into_iter()
            .flat_map(|(s, positions)| positions.map(move |p| (10 * s + p) as f32))
            .collect();
        let mut full = Vec::new();
        shared.expand(&seqs[..3], &unique, 1, &mut full);
        let expected = [
            0., 1., 2., 3., 4., 5., 0., 1., 12., 13., 14., 0., 1., 22., 23., 24., 25., 26.,
        ];
        assert_eq!(full, expected);
    }
}
