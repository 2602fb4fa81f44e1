//! A batch of (query, candidate) texts as model input, exactly as the tokenizer's own pair
//! encoding gives it (`encode((query, candidate), true)`: each side tokenized up to the
//! truncation's length, the longer side truncated first, the post-processor's template,
//! padding), at serving speed: each distinct text is tokenized once ([`FastWordPiece`] where it
//! takes the text), and the pair is assembled from the template the post-processor is read for
//! once, not by the library per pair.

use super::wordpiece::FastWordPiece;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use tokenizers::{
    Encoding, Model, OffsetType, PaddingDirection, PaddingParams, PaddingStrategy, PreTokenizer,
    Token, Tokenizer, TruncationDirection, TruncationStrategy,
};

/// A tokenized pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPair {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub mask: Vec<u32>,
}

/// What the post-processor puts around and between the two sides of a pair.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Special { id: u32, type_id: u32 },
    First { type_id: u32 },
    Second { type_id: u32 },
}

/// Ids no vocabulary holds, standing for the two sides while the template is read.
const FIRST: u32 = u32::MAX;
const SECOND: u32 = u32::MAX - 1;

/// A tokenizer prepared for encoding pairs (build it once, encode many batches).
pub struct PairTokenizer {
    /// The tokenizer as configured (its own pair encoding, where the fast one does not apply).
    tokenizer: Tokenizer,
    /// The same without truncation or padding, for one side at a time.
    raw: Tokenizer,
    fast: Option<FastWordPiece>,
    /// Where the tokenizer truncates the longest side first from the right (else the library
    /// encodes each pair).
    plan: Option<Plan>,
}

struct Plan {
    template: Vec<Part>,
    /// The truncation's length: how far each side is tokenized.
    limit: usize,
    /// The most pieces the two sides keep together (the length less the template's own).
    budget: usize,
}

impl PairTokenizer {
    pub fn new(tokenizer: &Tokenizer) -> Result<PairTokenizer, String> {
        let mut raw = tokenizer.clone();
        raw.with_truncation(None).map_err(|e| e.to_string())?;
        raw.with_padding(None);
        let plan = match tokenizer.get_truncation() {
            Some(t)
                if t.strategy == TruncationStrategy::LongestFirst
                    && t.direction == TruncationDirection::Right =>
            {
                let template = read_template(&raw)?;
                let added = template.as_ref().map_or(0, |t| {
                    t.iter()
                        .filter(|p| matches!(p, Part::Special { .. }))
                        .count()
                });
                let budget = t.max_length.checked_sub(added).ok_or_else(|| {
                    format!(
                        "the tokenizer truncates pairs to {} pieces, fewer than the {added} its \
                         template adds",
                        t.max_length
                    )
                })?;
                template.map(|template| Plan {
                    template,
                    limit: t.max_length,
                    budget,
                })
            }
            _ => None,
        };
        Ok(PairTokenizer {
            tokenizer: tokenizer.clone(),
            fast: FastWordPiece::of(&raw),
            raw,
            plan,
        })
    }

    /// The pairs, in order (see the module's note).
    pub fn encode(&self, pairs: &[(String, String)]) -> Result<Vec<EncodedPair>, String> {
        let Some(plan) = &self.plan else {
            return self.library_pairs(pairs);
        };
        let mut index: FxHashMap<&str, usize> = FxHashMap::default();
        let mut texts: Vec<&str> = Vec::new();
        let mut slots = Vec::with_capacity(pairs.len());
        for (q, c) in pairs {
            let mut slot = [0usize; 2];
            for (k, text) in [q.as_str(), c.as_str()].into_iter().enumerate() {
                slot[k] = *index.entry(text).or_insert_with(|| {
                    texts.push(text);
                    texts.len() - 1
                });
            }
            slots.push(slot);
        }
        let sides = texts
            .par_iter()
            .map(|t| self.side(t, plan.limit))
            .collect::<Result<Vec<Vec<u32>>, String>>()?;
        let mut out = Vec::with_capacity(pairs.len());
        for [a, b] in slots {
            let (Some(first), Some(second)) = (sides.get(a), sides.get(b)) else {
                return Err("a text of the batch was not tokenized".to_string());
            };
            let (n1, n2) = longest_first(first.len(), second.len(), plan.budget);
            out.push(assemble(&plan.template, &first[..n1], &second[..n2]));
        }
        if let Some(params) = self.tokenizer.get_padding() {
            pad(&mut out, params);
        }
        Ok(out)
    }

    /// The pieces of `text` up to the word in which the `limit`-th falls.
    fn side(&self, text: &str, limit: usize) -> Result<Vec<u32>, String> {
        if let Some(fast) = &self.fast
            && fast.takes(text)
        {
            return Ok(fast.pieces(text, limit));
        }
        // The library's own steps (`TokenizerImpl::encode_single_sequence` under a truncation).
        let t = &self.raw;
        let mut pre = t
            .get_added_vocabulary()
            .extract_and_normalize(t.get_normalizer(), text);
        if let Some(p) = t.get_pre_tokenizer() {
            p.pre_tokenize(&mut pre).map_err(|e| e.to_string())?;
        }
        let model = t.get_model();
        pre.tokenize_with_limit(
            |n| model.tokenize(n.get()),
            limit,
            TruncationDirection::Right,
        )
        .map_err(|e| e.to_string())?;
        let e = pre
            .into_encoding(None, 0, OffsetType::None)
            .map_err(|e| e.to_string())?;
        Ok(e.get_ids().to_vec())
    }

    /// Each pair by the library's own pair encoding.
    fn library_pairs(&self, pairs: &[(String, String)]) -> Result<Vec<EncodedPair>, String> {
        let inputs: Vec<tokenizers::EncodeInput> = pairs
            .iter()
            .map(|(q, c)| (q.as_str(), c.as_str()).into())
            .collect();
        Ok(self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|e| EncodedPair {
                ids: e.get_ids().to_vec(),
                type_ids: e.get_type_ids().to_vec(),
                mask: e.get_attention_mask().to_vec(),
            })
            .collect())
    }
}

/// Encodes a batch of pairs with a [`PairTokenizer`] made for it (make one and keep it to
/// encode many batches).
pub fn encode_pairs(
    tokenizer: &Tokenizer,
    pairs: &[(String, String)],
) -> Result<Vec<EncodedPair>, String> {
    PairTokenizer::new(tokenizer)?.encode(pairs)
}

/// The template of a pair, read from what the post-processor makes of one stand-in piece per
/// side; `None` when that is not one of each side with special pieces around them.
fn read_template(raw: &Tokenizer) -> Result<Option<Vec<Part>>, String> {
    let side = |id: u32, type_id: u32| {
        Encoding::from_tokens(vec![Token::new(id, String::new(), (0, 0))], type_id)
    };
    let e = raw
        .post_process(side(FIRST, 0), Some(side(SECOND, 1)), true)
        .map_err(|e| e.to_string())?;
    let parts: Vec<Part> = e
        .get_ids()
        .iter()
        .zip(e.get_type_ids())
        .map(|(&id, &type_id)| match id {
            FIRST => Part::First { type_id },
            SECOND => Part::Second { type_id },
            id => Part::Special { id, type_id },
        })
        .collect();
    use tokenizers::PostProcessor;
    let count = |f: fn(&Part) -> bool| parts.iter().filter(|p| f(p)).count();
    let added = raw.get_post_processor().map_or(0, |p| p.added_tokens(true));
    let well_formed = count(|p| matches!(p, Part::First { .. })) == 1
        && count(|p| matches!(p, Part::Second { .. })) == 1
        && count(|p| matches!(p, Part::Special { .. })) == added;
    Ok(well_formed.then_some(parts))
}

fn assemble(template: &[Part], first: &[u32], second: &[u32]) -> EncodedPair {
    let n = template.len() + first.len() + second.len();
    let mut ids = Vec::with_capacity(n);
    let mut type_ids = Vec::with_capacity(n);
    for part in template {
        match *part {
            Part::Special { id, type_id } => {
                ids.push(id);
                type_ids.push(type_id);
            }
            Part::First { type_id } => {
                ids.extend_from_slice(first);
                type_ids.resize(ids.len(), type_id);
            }
            Part::Second { type_id } => {
                ids.extend_from_slice(second);
                type_ids.resize(ids.len(), type_id);
            }
        }
    }
    let mask = vec![1; ids.len()];
    EncodedPair {
        ids,
        type_ids,
        mask,
    }
}

/// Padding as the library's `pad_encodings` does it.
fn pad(pairs: &mut [EncodedPair], params: &PaddingParams) {
    let mut length = match params.strategy {
        PaddingStrategy::Fixed(n) => n,
        PaddingStrategy::BatchLongest => pairs.iter().map(|p| p.ids.len()).max().unwrap_or(0),
    };
    if let Some(m) = params.pad_to_multiple_of
        && m > 0
        && length % m > 0
    {
        length += m - length % m;
    }
    for p in pairs {
        let Some(extra) = length.checked_sub(p.ids.len()).filter(|e| *e > 0) else {
            continue;
        };
        let fill = |v: &mut Vec<u32>, value: u32| match params.direction {
            PaddingDirection::Right => v.resize(v.len() + extra, value),
            PaddingDirection::Left => {
                v.splice(0..0, std::iter::repeat_n(value, extra));
            }
        };
        fill(&mut p.ids, params.pad_id);
        fill(&mut p.type_ids, params.pad_type_id);
        fill(&mut p.mask, 0);
    }
}

/// How many pieces two sides of `n1` and `n2` keep under a budget of `budget`: the library's
/// longest-first truncation (`tokenizers::utils::truncation::truncate_encodings`).
fn longest_first(n1: usize, n2: usize, budget: usize) -> (usize, usize) {
    if n1 + n2 <= budget {
        return (n1, n2);
    }
    let swap = n1 > n2;
    let mut short = n1.min(n2);
    let mut long = if short > budget {
        short
    } else {
        short.max(budget - short)
    };
    if short + long > budget {
        short = budget / 2;
        long = short + budget % 2;
    }
    let (a, b) = if swap { (long, short) } else { (short, long) };
    (a.min(n1), b.min(n2))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tokenize::tests::CORPUS;
    use crate::tokenize::{configure_for_pairs, learn_wordpiece};

    #[test]
    fn a_pair_is_truncated_on_both_sides_and_keeps_both() {
        let mut t = learn_wordpiece(CORPUS.iter().copied(), 200).unwrap();
        configure_for_pairs(&mut t, 16).unwrap();
        let long = CORPUS.join(" ");
        let pairs = vec![
            (long.clone(), long.clone()),
            ("rust".to_string(), "nurse".to_string()),
        ];
        let encoded = encode_pairs(&t, &pairs).unwrap();
        let (cls, sep) = (
            t.token_to_id("[CLS]").unwrap(),
            t.token_to_id("[SEP]").unwrap(),
        );
        let first = &encoded[0];
        assert_eq!(first.ids.len(), 16);
        assert_eq!(first.ids[0], cls);
        assert_eq!(first.ids.iter().filter(|&&i| i == sep).count(), 2);
        let candidate = first.type_ids.iter().filter(|&&t| t == 1).count();
        assert!((6..=8).contains(&candidate), "{:?}", first.type_ids);
        // The short pair is padded to the batch's length with a zero mask.
        let second = &encoded[1];
        assert_eq!(second.ids.len(), 16);
        assert_eq!(second.mask.iter().filter(|&&m| m == 1).count(), 5);
        assert_eq!(second.ids[5], t.token_to_id("[PAD]").unwrap());
    }

    /// Pairs of every shape: long and short sides, shared texts, empty ones, punctuation, words
    /// of many pieces, text the fast path leaves to the library, odd and even limits.
    fn varied_pairs() -> Vec<(String, String)> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let words: Vec<&str> = CORPUS.iter().flat_map(|t| t.split_whitespace()).collect();
        let text = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> String {
            let sep = if rng.random_bool(0.1) { "  \n" } else { " " };
            (0..n)
                .map(|_| match rng.random_range(0..14) {
                    0 => "Kubernetes-Operators,".to_string(),
                    1 => "qxzvbn".to_string(),
                    2 => "Zürich".to_string(),
                    3 => "[SEP]".to_string(),
                    4 => "\u{1}".to_string(),
                    _ => words[rng.random_range(0..words.len())].to_string(),
                })
                .collect::<Vec<_>>()
                .join(sep)
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for _ in 0..300 {
            let (a, b) = (rng.random_range(0..60), rng.random_range(0..60));
            pairs.push((text(&mut rng, a), text(&mut rng, b)));
        }
        let shared = text(&mut rng, 30);
        for _ in 0..10 {
            let b = rng.random_range(0..30);
            pairs.push((shared.clone(), text(&mut rng, b)));
        }
        pairs.push((String::new(), String::new()));
        pairs.push(("a \u{1} \u{2}".to_string(), "b".to_string()));
        pairs
    }

    #[test]
    fn shared_sides_give_exactly_the_librarys_pair_encoding() {
        for max_len in [5, 16, 17, 24, 48, 49] {
            let mut t = learn_wordpiece(CORPUS.iter().copied(), 200).unwrap();
            configure_for_pairs(&mut t, max_len).unwrap();
            assert_the_librarys(&t, &varied_pairs());
        }
    }

    /// Our encoding of `pairs` is the library's own, piece for piece, type for type, padding
    /// included.
    fn assert_the_librarys(t: &Tokenizer, pairs: &[(String, String)]) {
        let ours = encode_pairs(t, pairs).unwrap();
        let inputs: Vec<tokenizers::EncodeInput> = pairs
            .iter()
            .map(|(q, c)| (q.as_str(), c.as_str()).into())
            .collect();
        let theirs = t.encode_batch(inputs, true).unwrap();
        let max_len = t.get_truncation().map(|t| t.max_length);
        for ((o, t), p) in ours.iter().zip(&theirs).zip(pairs) {
            assert_eq!(o.ids, t.get_ids(), "{max_len:?}: {p:?}");
            assert_eq!(o.type_ids, t.get_type_ids(), "{max_len:?}: {p:?}");
            assert_eq!(o.mask, t.get_attention_mask(), "{max_len:?}: {p:?}");
        }
    }

    #[test]
    fn a_budget_smaller_than_the_template_is_an_error() {
        let mut t = learn_wordpiece(CORPUS.iter().copied(), 200).unwrap();
        configure_for_pairs(&mut t, 2).unwrap();
        let e = PairTokenizer::new(&t).err().unwrap();
        assert!(e.contains("fewer than the 3"), "{e}");
    }

    /// Real text: the job_match example's descriptions and profiles (long, with punctuation,
    /// some not ASCII), truncated as the example's models truncate them.
    #[test]
    fn the_examples_pairs_give_exactly_the_librarys_pair_encoding() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/job_match/data/golden.jsonl"
        );
        let golden = std::fs::read_to_string(path).unwrap();
        let mut texts: Vec<String> = Vec::new();
        for line in golden.lines().take(150) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            for side in ["query", "candidate"] {
                let strings: Vec<&str> = v[side]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter_map(|f| f.as_str())
                    .collect();
                texts.push(strings.join("\n"));
            }
        }
        let mut t = learn_wordpiece(texts.iter().map(String::as_str), 1500).unwrap();
        let pairs: Vec<(String, String)> = texts
            .chunks_exact(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .chain(texts.chunks_exact(2).map(|p| (p[1].clone(), p[0].clone())))
            .collect();
        assert!(texts.iter().any(|t| !t.is_ascii()));
        for max_len in [33, 96, 512] {
            configure_for_pairs(&mut t, max_len).unwrap();
            assert_the_librarys(&t, &pairs);
        }
    }
}
