//! A trained model read back for scoring pairs outside the training pipeline: `rubric score`,
//! `rubric serve` and the quantize stage's measurements. It needs only its folder (weights,
//! tokenizer, card): the card says which fields to read, how to encode the features and what
//! each head predicts. Pairs run through the inference encoder (`rubric_ml::quant::encoder`),
//! in int8 where the folder holds `model.int8.safetensors`, else in f32.

use crate::encode::{PairOf, Records, TextField, texts_by_role};
use crate::teach::examples::{Example, on_levels};
use crate::teach::features::{RecordColumns, Row};
use crate::teach::task::{Logits, Tokens};
use crate::teach::{ModelCard, POSITION_BIAS, read_card};
use jiff::Timestamp;
use rayon::prelude::*;
use rubric_ml::checkpoint::{self, WEIGHTS};
use rubric_ml::model::BertConfig;
use rubric_ml::quant::encoder::{Encoder, Sequence};
use rubric_ml::quant::weights::TensorMap;
use rubric_ml::tokenize::{PairTokenizer, configure_for_pairs};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

/// The int8 weights beside a model's f32 ones (the format is in docs/models.md).
pub const INT8_WEIGHTS: &str = "model.int8.safetensors";
/// The `format` in an int8 file's header.
pub const INT8_FORMAT: &str = "rubric.int8/1";
/// The int8 file's one header entry: a JSON object of its `format`, the kinds of layer in int8
/// (`int8_layers`) and how weights and activations are quantized.
pub const INT8_METADATA: &str = "rubric.int8";
/// Pairs encoded at once: bounds the memory a large request takes.
const CHUNK: usize = 256;

/// Which weights a model scores with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    Int8,
    F32,
}

/// What a model predicts for one pair.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Prediction {
    /// The ranking key: the overall score where the model predicts one, else the click
    /// probability, else the mean of its scores, else the best grade's probability.
    pub score: f64,
    /// Each score head's prediction in [0, 1], by name (dimensions, `overall`); a dimension with
    /// levels on the card ([`crate::teach::examples::Levels`]) on the nearest of them.
    pub scores: Vec<(String, f64)>,
    /// The grade ranked first.
    pub grade: Option<String>,
    /// The click probability.
    pub click: Option<f64>,
}

/// A pair's two texts (query side, candidate side) and its numeric features.
type Encoded = ((String, String), Vec<f32>);

/// A model ready to score pairs.
pub struct Scorer {
    pub card: ModelCard,
    pub config: BertConfig,
    pub precision: Precision,
    /// SHA-256 of the weights it scores with: the model's version.
    pub version: String,
    pub dir: PathBuf,
    /// The model's tokenizer, prepared for batches of pairs.
    tokenizer: PairTokenizer,
    encoder: Encoder,
    fields: Vec<TextField>,
}

fn sigmoid(z: f32) -> f64 {
    1.0 / (1.0 + (-f64::from(z)).exp())
}

/// SHA-256 of a file, hex.
pub fn file_hash(path: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

impl Scorer {
    /// Reads the model in `dir` (a distill or quantize stage's `model/`), in `precision`, or,
    /// when `None`, in int8 where the folder has int8 weights.
    pub fn load(dir: &Path, precision: Option<Precision>) -> Result<Scorer, String> {
        let card = read_card(dir)?;
        let int8 = dir.join(INT8_WEIGHTS);
        let precision = precision.unwrap_or(if int8.exists() {
            Precision::Int8
        } else {
            Precision::F32
        });
        let config = checkpoint::read_config(dir).map_err(|e| e.to_string())?;
        let tokenizer = checkpoint::read_tokenizer(dir, &config).map_err(|e| e.to_string())?;
        let (map, file) = match precision {
            Precision::Int8 => {
                if !int8.exists() {
                    return Err(format!(
                        "`{}` has no int8 weights (`{INT8_WEIGHTS}`): quantize it (`rubric \
                         quantize PIPELINE`) or score in f32",
                        dir.display()
                    ));
                }
                (TensorMap::read(&int8)?, int8)
            }
            Precision::F32 => {
                let path = dir.join(WEIGHTS);
                (TensorMap::read(&path)?, path)
            }
        };
        let version = file_hash(&file)?;
        Scorer::new(card, config, tokenizer, &map, precision, version, dir)
    }

    /// A scorer of weights already in memory.
    pub fn new(
        card: ModelCard,
        config: BertConfig,
        mut tokenizer: Tokenizer,
        map: &TensorMap,
        precision: Precision,
        version: String,
        dir: &Path,
    ) -> Result<Scorer, String> {
        if card.roles.len() < 2 {
            return Err(format!(
                "the card of `{}` does not name the policy's roles (a model trained by an older \
                 rubric): train it again",
                dir.display()
            ));
        }
        let fields = card
            .inputs
            .reads
            .iter()
            .map(|f| {
                let role = card
                    .roles
                    .iter()
                    .position(|r| *r == f.role)
                    .ok_or_else(|| {
                        format!(
                            "the card reads `{}.{}`, and names no such role",
                            f.role, f.field
                        )
                    })?;
                Ok(TextField {
                    role,
                    field: f.field.clone(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let mut map = map.clone();
        map.tensors.remove(POSITION_BIAS);
        let encoder = Encoder::new(&config, &card.heads, card.features.width(), &map)?;
        configure_for_pairs(&mut tokenizer, card.max_len)?;
        Ok(Scorer {
            tokenizer: PairTokenizer::new(&tokenizer)?,
            card,
            config,
            precision,
            version,
            dir: dir.to_path_buf(),
            encoder,
            fields,
        })
    }

    /// The pair of a query and a candidate under the policy's roles, the records borrowed.
    pub fn pair<'a>(&'a self, query: &'a Value, candidate: &'a Value) -> PairOf<'a> {
        let role = |i: usize| self.card.roles.get(i).map_or("", String::as_str);
        PairOf {
            roles: [role(0), role(1)],
            records: [query, candidate],
        }
    }

    /// Each pair's prediction, in order; a pair that cannot be encoded gets its own error
    /// (naming the field), and the others are scored. A pair is a pair object or a [`PairOf`].
    pub fn score<R: Records + Sync>(
        &self,
        pairs: &[(R, Option<Timestamp>)],
    ) -> Vec<Result<Prediction, String>> {
        let mut out: Vec<Result<Prediction, String>> = Vec::with_capacity(pairs.len());
        let roles: Vec<&str> = self.card.roles.iter().map(String::as_str).collect();
        let features = &self.card.features;
        for chunk in pairs.chunks(CHUNK) {
            let queries = self.shared_queries(chunk);
            // Each pair's texts and features, on rayon's threads (a served request's hundred
            // candidates are the model thread's work between forward passes).
            let encoded: Vec<Result<Encoded, String>> = chunk
                .par_iter()
                .map(|(pair, ts)| {
                    let t = texts_by_role(&roles, &self.fields, pair).map_err(|e| e.to_string())?;
                    let mut f = Vec::with_capacity(features.width());
                    let query = roles.first().and_then(|role| pair.record(role));
                    let known = queries
                        .iter()
                        .find(|(q, _)| query.is_some_and(|query| std::ptr::eq(*q, query)))
                        .map(|(_, columns)| columns);
                    features.encode_with(&Row { pair, ts: *ts }, known, &mut f)?;
                    Ok((t, f))
                })
                .collect();
            let mut texts = Vec::with_capacity(chunk.len());
            let mut features = Vec::with_capacity(chunk.len());
            let mut slots = Vec::with_capacity(chunk.len());
            for e in encoded {
                match e {
                    Ok((t, f)) => {
                        slots.push(out.len());
                        texts.push(t);
                        features.push(f);
                        out.push(Err(String::new()));
                    }
                    Err(e) => out.push(Err(e)),
                }
            }
            let predicted = self.predict(&texts, &features).and_then(|p| {
                if p.len() == slots.len() {
                    Ok(p)
                } else {
                    Err(format!(
                        "the model predicted {} of {} pairs",
                        p.len(),
                        slots.len()
                    ))
                }
            });
            match predicted {
                Ok(p) => {
                    for (slot, p) in slots.into_iter().zip(p) {
                        out[slot] = Ok(p);
                    }
                }
                // The chunk's encodable pairs share the model's error.
                Err(e) => {
                    for slot in slots {
                        out[slot] = Err(e.clone());
                    }
                }
            }
        }
        out
    }

    /// The query records that several of `pairs` hold (the same record, not an equal one: a
    /// ranking's candidates share its query's), each with its own feature columns, encoded
    /// once for all of its pairs. A query whose columns fail is left out: each of its pairs
    /// reports the error.
    fn shared_queries<'p, R: Records>(
        &self,
        pairs: &'p [(R, Option<Timestamp>)],
    ) -> Vec<(&'p Value, RecordColumns)> {
        let Some(role) = self.card.roles.first() else {
            return Vec::new();
        };
        let mut counted: Vec<(&Value, usize)> = Vec::new();
        for query in pairs.iter().filter_map(|(pair, _)| pair.record(role)) {
            match counted.iter_mut().find(|(q, _)| std::ptr::eq(*q, query)) {
                Some((_, n)) => *n += 1,
                None => counted.push((query, 1)),
            }
        }
        counted
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .filter_map(|(query, _)| {
                let columns = self.card.features.encode_record(role, query).ok()?;
                Some((query, columns))
            })
            .collect()
    }

    fn predict(
        &self,
        texts: &[(String, String)],
        features: &[Vec<f32>],
    ) -> Result<Vec<Prediction>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encoded = self.tokenizer.encode(texts)?;
        let tokens: Vec<(Vec<u32>, Vec<u32>)> = encoded
            .into_iter()
            .map(|mut e| {
                // Padding (where the tokenizer pads) comes last: cut off in place.
                let n = e.mask.iter().filter(|m| **m == 1).count();
                e.ids.truncate(n);
                e.type_ids.truncate(n);
                (e.ids, e.type_ids)
            })
            .collect();
        let seqs: Vec<Sequence<'_>> = tokens
            .iter()
            .zip(features)
            .map(|((ids, types), f)| Sequence {
                ids,
                types,
                features: f,
            })
            .collect();
        let l = self.encoder.forward(&seqs, None)?;
        Ok((0..l.rows).map(|r| self.prediction(&l, r)).collect())
    }

    fn prediction(&self, l: &rubric_ml::quant::encoder::Logits, r: usize) -> Prediction {
        let spec = &self.card.heads;
        let (s, g) = (spec.scores.len(), spec.grades.len());
        let row = &l.scores[r * s..(r + 1) * s];
        let grade_row = &l.grades[r * g..(r + 1) * g];
        let best = (0..g).max_by(|&a, &b| grade_row[a].total_cmp(&grade_row[b]).then(b.cmp(&a)));
        let click = l.click.get(r).map(|z| sigmoid(*z));
        // The ranking key from the probabilities themselves: levels would only add ties.
        let score = spec
            .scores
            .iter()
            .position(|n| n == "overall")
            .and_then(|k| row.get(k).map(|z| sigmoid(*z)))
            .or(click)
            .or_else(|| {
                (!row.is_empty())
                    .then(|| row.iter().map(|z| sigmoid(*z)).sum::<f64>() / row.len() as f64)
            })
            .or_else(|| {
                best.map(|b| {
                    let max = grade_row[b];
                    let total: f64 = grade_row.iter().map(|z| f64::from(z - max).exp()).sum();
                    1.0 / total
                })
            })
            .unwrap_or(0.0);
        let scores = spec
            .scores
            .iter()
            .zip(row)
            .map(|(n, z)| {
                let levels = self.card.levels.get(n).map_or(&[][..], Vec::as_slice);
                (n.clone(), on_levels(levels, sigmoid(*z)))
            })
            .collect();
        Prediction {
            score,
            scores,
            grade: best.and_then(|b| spec.grades.get(b).cloned()),
            click,
        }
    }

    /// The encoder it scores with.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }
}

/// Rows as the encoder's input: each row's word pieces and features.
pub fn sequences<'a>(tokens: &'a [Tokens], rows: &'a [Example]) -> Vec<Sequence<'a>> {
    tokens
        .iter()
        .zip(rows)
        .map(|(t, e)| Sequence {
            ids: &t.ids,
            types: &t.types,
            features: &e.features,
        })
        .collect()
}

/// An encoder's outputs as the training code's `Logits`, which the metrics read.
pub fn task_logits(encoder: &Encoder, l: rubric_ml::quant::encoder::Logits) -> Logits {
    Logits {
        rows: l.rows,
        score_width: encoder.spec.scores.len(),
        scores: l.scores,
        grade_width: encoder.spec.grades.len(),
        grades: l.grades,
        click: l.click,
    }
}
