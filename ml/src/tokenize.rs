//! Turning a pair's text into model input. A model initialized from a checkpoint uses the
//! checkpoint's own `tokenizer.json`; any other gets a WordPiece vocabulary learned here from the
//! training text and stored with the model. The library's trainer breaks ties between equally
//! frequent merges unpredictably (the same corpus gave different ids on consecutive runs), so
//! the vocabulary is learned by our own merge loop, whose ties go to the pieces learned first: the
//! same text always gives the same vocabulary, byte for byte. Normalization, pre-tokenization,
//! the `[CLS] query [SEP] candidate [SEP]` template and truncation are the library's, as BERT's.

use serde_json::{Value, json};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use tokenizers::{
    NormalizedString, Normalizer, PaddingParams, PreTokenizedString, PreTokenizer, Tokenizer,
    TruncationParams, TruncationStrategy,
};

/// The special tokens, first in every vocabulary learned here.
pub const SPECIAL: [&str; 5] = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// Characters always in the alphabet, so text the training corpus lacked (another language's
/// punctuation, digits) is not `[UNK]` as a whole word.
const ALWAYS: &str = "abcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The tokenizer's parts other than the model: BERT's, uncased.
fn pipeline_json(vocab: &BTreeMap<String, u32>) -> Value {
    let id = |t: &str| vocab.get(t).copied().unwrap_or(0);
    json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": SPECIAL.iter().map(|t| json!({
            "id": id(t), "content": t, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true
        })).collect::<Vec<_>>(),
        "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                       "strip_accents": null, "lowercase": true},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "post_processor": {"type": "BertProcessing", "sep": ["[SEP]", id("[SEP]")], "cls": ["[CLS]", id("[CLS]")]},
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    })
}

/// The words of a text as BERT's normalizer and pre-tokenizer split it.
fn words(text: &str, out: &mut HashMap<String, u64>) -> Result<(), String> {
    let normalizer = tokenizers::normalizers::BertNormalizer::new(true, true, None, true);
    let mut normalized = NormalizedString::from(text);
    normalizer
        .normalize(&mut normalized)
        .map_err(|e| e.to_string())?;
    let mut pre = PreTokenizedString::from(normalized.get());
    tokenizers::pre_tokenizers::bert::BertPreTokenizer
        .pre_tokenize(&mut pre)
        .map_err(|e| e.to_string())?;
    for (word, _, _) in pre.get_splits(
        tokenizers::OffsetReferential::Original,
        tokenizers::OffsetType::Char,
    ) {
        *out.entry(word.to_string()).or_insert(0) += 1;
    }
    Ok(())
}

/// Learns a WordPiece tokenizer of `vocab_size` tokens from `texts` (fewer when the text has no
/// more pairs to merge, more when the alphabet alone is larger): the special tokens, every
/// character (as a word's start and as a continuation `##c`), then the most frequent merges of
/// adjacent pieces, ties to the pair of pieces learned first.
pub fn learn_wordpiece<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    vocab_size: usize,
) -> Result<Tokenizer, String> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for t in texts {
        words(t, &mut counts)?;
    }
    // Pieces by id; the alphabet sorted, so ids do not depend on the order words were seen.
    let mut pieces: Vec<String> = Vec::new();
    let mut alphabet: BTreeSet<char> = ALWAYS.chars().collect();
    for w in counts.keys() {
        alphabet.extend(w.chars());
    }
    let mut id_of: HashMap<String, u32> = HashMap::new();
    let mut add = |piece: String, pieces: &mut Vec<String>| -> u32 {
        *id_of.entry(piece.clone()).or_insert_with(|| {
            pieces.push(piece);
            (pieces.len() - 1) as u32
        })
    };
    for s in SPECIAL {
        add(s.to_string(), &mut pieces);
    }
    for c in &alphabet {
        add(c.to_string(), &mut pieces);
        add(format!("##{c}"), &mut pieces);
    }
    // The words as sequences of piece ids, in a fixed order.
    let mut sorted: Vec<(&String, u64)> = counts.iter().map(|(w, c)| (w, *c)).collect();
    sorted.sort();
    let mut seqs: Vec<(Vec<u32>, u64)> = Vec::with_capacity(sorted.len());
    for (w, c) in sorted {
        let ids = w
            .chars()
            .enumerate()
            .map(|(i, ch)| {
                let piece = if i == 0 {
                    ch.to_string()
                } else {
                    format!("##{ch}")
                };
                add(piece, &mut pieces)
            })
            .collect();
        seqs.push((ids, c));
    }
    // Pair counts, the words each pair is in, and a heap of (count, earliest pair first).
    let mut pair_counts: HashMap<(u32, u32), u64> = HashMap::new();
    let mut where_: HashMap<(u32, u32), BTreeSet<usize>> = HashMap::new();
    for (w, (ids, c)) in seqs.iter().enumerate() {
        for p in ids.windows(2) {
            let key = (p[0], p[1]);
            *pair_counts.entry(key).or_insert(0) += c;
            where_.entry(key).or_default().insert(w);
        }
    }
    let mut heap: BinaryHeap<(u64, Reverse<(u32, u32)>)> =
        pair_counts.iter().map(|(k, c)| (*c, Reverse(*k))).collect();
    while pieces.len() < vocab_size {
        let Some((count, Reverse(pair))) = heap.pop() else {
            break;
        };
        if pair_counts.get(&pair) != Some(&count) || count == 0 {
            continue; // a stale entry
        }
        let (a, b) = pair;
        let right = pieces.get(b as usize).cloned().unwrap_or_default();
        let merged = format!(
            "{}{}",
            pieces.get(a as usize).cloned().unwrap_or_default(),
            right.strip_prefix("##").unwrap_or(&right)
        );
        let new = add(merged, &mut pieces);
        let words: Vec<usize> = where_
            .remove(&pair)
            .map(|s| s.into_iter().collect())
            .unwrap_or_default();
        let mut changed: BTreeSet<(u32, u32)> = BTreeSet::new();
        for w in words {
            let Some((ids, c)) = seqs.get_mut(w) else {
                continue;
            };
            for p in ids.windows(2) {
                let key = (p[0], p[1]);
                if let Some(n) = pair_counts.get_mut(&key) {
                    *n = n.saturating_sub(*c);
                }
                changed.insert(key);
            }
            let mut out = Vec::with_capacity(ids.len());
            let mut i = 0;
            while i < ids.len() {
                if i + 1 < ids.len() && ids[i] == a && ids[i + 1] == b {
                    out.push(new);
                    i += 2;
                } else {
                    out.push(ids[i]);
                    i += 1;
                }
            }
            *ids = out;
            for p in ids.windows(2) {
                let key = (p[0], p[1]);
                *pair_counts.entry(key).or_insert(0) += *c;
                where_.entry(key).or_default().insert(w);
                changed.insert(key);
            }
        }
        pair_counts.remove(&pair);
        for key in changed {
            if let Some(&n) = pair_counts.get(&key)
                && n > 0
            {
                heap.push((n, Reverse(key)));
            }
        }
    }
    let vocab: BTreeMap<String, u32> = pieces
        .iter()
        .enumerate()
        .map(|(i, p)| (p.clone(), i as u32))
        .collect();
    let json = pipeline_json(&vocab).to_string();
    Tokenizer::from_bytes(json.as_bytes()).map_err(|e| e.to_string())
}

/// A tokenized pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPair {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub mask: Vec<u32>,
}

/// Sets the tokenizer to truncate pairs to `max_len` tokens, trimming the longer side first so
/// both keep text, and to pad a batch to its longest pair.
pub fn configure_for_pairs(tokenizer: &mut Tokenizer, max_len: usize) -> Result<(), String> {
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_len,
            strategy: TruncationStrategy::LongestFirst,
            ..TruncationParams::default()
        }))
        .map_err(|e| e.to_string())?;
    tokenizer.with_padding(Some(PaddingParams::default()));
    Ok(())
}

/// Encodes a batch of (query text, candidate text) pairs as `[CLS] query [SEP] candidate [SEP]`,
/// exactly as the tokenizer's own pair encoding does (`encode((query, candidate), true)`, padded
/// to the batch's longest), with each distinct text tokenized once: the candidates of a ranking
/// share their query, which is not tokenized again for each of them.
pub fn encode_pairs(
    tokenizer: &Tokenizer,
    pairs: &[(String, String)],
) -> Result<Vec<EncodedPair>, String> {
    let encodings = match tokenizer.get_truncation() {
        Some(t)
            if t.strategy == TruncationStrategy::LongestFirst
                && t.direction == tokenizers::TruncationDirection::Right =>
        {
            encode_shared(tokenizer, pairs, t.max_length)?
        }
        // Other truncations: the library's own pair encoding, each pair whole.
        _ => {
            let inputs: Vec<tokenizers::EncodeInput> = pairs
                .iter()
                .map(|(q, c)| (q.as_str(), c.as_str()).into())
                .collect();
            tokenizer
                .encode_batch(inputs, true)
                .map_err(|e| e.to_string())?
        }
    };
    Ok(encodings
        .into_iter()
        .map(|e| EncodedPair {
            ids: e.get_ids().to_vec(),
            type_ids: e.get_type_ids().to_vec(),
            mask: e.get_attention_mask().to_vec(),
        })
        .collect())
}

/// Words of a side tokenized before the limit below is applied, per piece of the limit: a word
/// gives at least one word piece, so the first `limit` words hold the pieces the limit keeps
/// (checked: a cut text that gives fewer pieces than the limit, as words the normalizer removes
/// whole would, is tokenized whole).
const WORDS_PER_PIECE: usize = 1;

/// `text` up to the end of its `words`-th whitespace-separated word.
fn first_words(text: &str, words: usize) -> &str {
    let mut seen = 0;
    let mut in_word = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                seen += 1;
                if seen == words {
                    return &text[..i];
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    text
}

/// One side of a pair as the library encodes it under a truncation of `limit` pieces: it
/// tokenizes the side's pre-tokens in order until `limit` pieces are reached (the last
/// pre-token whole), and truncates the pair from there. Here the side is tokenized with no
/// truncation and cut at the same pre-token.
fn side(raw: &Tokenizer, text: &str, limit: usize) -> Result<tokenizers::Encoding, String> {
    let cut = first_words(text, limit.saturating_mul(WORDS_PER_PIECE).max(1));
    let mut e = raw.encode(cut, false).map_err(|e| e.to_string())?;
    if cut.len() < text.len() && e.len() < limit {
        e = raw.encode(text, false).map_err(|e| e.to_string())?;
    }
    let words = e.get_word_ids();
    let mut keep = e.len();
    let mut count = 0;
    for (i, w) in words.iter().enumerate() {
        count += 1;
        // The piece that reaches the limit: keep the rest of its pre-token, then stop.
        if count >= limit {
            keep = words[i + 1..]
                .iter()
                .position(|next| next != w)
                .map_or(e.len(), |p| i + 1 + p);
            break;
        }
    }
    if keep < e.len() {
        e.truncate(keep, 0, tokenizers::TruncationDirection::Right);
        // What was cut is never read: not carried into every pair's copy of this side.
        e.take_overflowing();
    }
    Ok(e)
}

fn encode_shared(
    tokenizer: &Tokenizer,
    pairs: &[(String, String)],
    limit: usize,
) -> Result<Vec<tokenizers::Encoding>, String> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut texts: Vec<&str> = Vec::new();
    let mut sides = Vec::with_capacity(pairs.len());
    for (q, c) in pairs {
        let mut slot = [0usize; 2];
        for (k, text) in [q.as_str(), c.as_str()].into_iter().enumerate() {
            slot[k] = *index.entry(text).or_insert_with(|| {
                texts.push(text);
                texts.len() - 1
            });
        }
        sides.push(slot);
    }
    let mut raw = tokenizer.clone();
    raw.with_truncation(None).map_err(|e| e.to_string())?;
    raw.with_padding(None);
    use rayon::prelude::*;
    let encoded = texts
        .par_iter()
        .map(|t| side(&raw, t, limit))
        .collect::<Result<Vec<_>, String>>()?;
    let mut out = Vec::with_capacity(pairs.len());
    for [a, b] in sides {
        let (Some(first), Some(second)) = (encoded.get(a), encoded.get(b)) else {
            return Err("a text of the batch was not encoded".to_string());
        };
        // The second sequence of a pair has type 1, as the library's pair encoding gives it.
        let mut second = second.clone();
        second.set_type_ids(vec![1; second.len()]);
        out.push(
            tokenizer
                .post_process(first.clone(), Some(second), true)
                .map_err(|e| e.to_string())?,
        );
    }
    if let Some(params) = tokenizer.get_padding() {
        tokenizers::utils::padding::pad_encodings(&mut out, params).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const CORPUS: &[&str] = &[
        "Senior backend engineer: Rust, PostgreSQL and Kafka. Remote within the EU.",
        "Backend developer with seven years of Rust and Go; looking for remote roles.",
        "Registered nurse, intensive care, night shifts; Berlin.",
        "Staff nurse in Berlin, ICU experience, open to relocation.",
        "Data engineer (Spark, Kafka, Airflow) for a payments company.",
    ];

    fn tokens(t: &Tokenizer, text: &str) -> Vec<String> {
        t.encode(text, false).unwrap().get_tokens().to_vec()
    }

    #[test]
    fn the_same_text_gives_the_same_vocabulary_every_time() {
        let a = learn_wordpiece(CORPUS.iter().copied(), 180).unwrap();
        for _ in 0..3 {
            let b = learn_wordpiece(CORPUS.iter().copied(), 180).unwrap();
            assert_eq!(a.to_string(false).unwrap(), b.to_string(false).unwrap());
        }
        // The order of the texts does not matter either.
        let reversed = learn_wordpiece(CORPUS.iter().rev().copied(), 180).unwrap();
        assert_eq!(
            a.to_string(false).unwrap(),
            reversed.to_string(false).unwrap()
        );
        assert_eq!(a.get_vocab_size(true), 180);
    }

    #[test]
    fn the_special_tokens_come_first() {
        let t = learn_wordpiece(CORPUS.iter().copied(), 100).unwrap();
        for (i, s) in SPECIAL.iter().enumerate() {
            assert_eq!(t.token_to_id(s), Some(i as u32), "{s}");
        }
    }

    #[test]
    fn frequent_words_become_tokens_and_rare_ones_split_into_pieces() {
        let t = learn_wordpiece(CORPUS.iter().copied(), 220).unwrap();
        assert_eq!(tokens(&t, "Rust backend"), ["rust", "backend"]);
        let split = tokens(&t, "Kubernetes");
        assert!(
            split.len() > 1 && split[1..].iter().all(|p| p.starts_with("##")),
            "{split:?}"
        );
        // Characters the corpus lacked are still pieces, not [UNK].
        assert!(!tokens(&t, "qxz 42").contains(&"[UNK]".to_string()));
    }

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
    /// of many pieces, odd and even limits.
    fn varied_pairs() -> Vec<(String, String)> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let words: Vec<&str> = CORPUS.iter().flat_map(|t| t.split_whitespace()).collect();
        let text = |rng: &mut rand_chacha::ChaCha8Rng, n: usize| -> String {
            let sep = if rng.random_bool(0.1) { "  \n" } else { " " };
            (0..n)
                .map(|_| match rng.random_range(0..10) {
                    0 => "Kubernetes-Operators,".to_string(),
                    1 => "qxzvbn".to_string(),
                    _ => words[rng.random_range(0..words.len())].to_string(),
                })
                .collect::<Vec<_>>()
                .join(sep)
        };
        let mut pairs: Vec<(String, String)> = Vec::new();
        for _ in 0..150 {
            let (a, b) = (rng.random_range(0..40), rng.random_range(0..40));
            pairs.push((text(&mut rng, a), text(&mut rng, b)));
        }
        let shared = text(&mut rng, 30);
        for _ in 0..10 {
            let b = rng.random_range(0..30);
            pairs.push((shared.clone(), text(&mut rng, b)));
        }
        pairs.push((String::new(), String::new()));
        pairs
    }

    #[test]
    fn shared_sides_give_exactly_the_librarys_pair_encoding() {
        for max_len in [16, 17, 24, 48] {
            let mut t = learn_wordpiece(CORPUS.iter().copied(), 200).unwrap();
            configure_for_pairs(&mut t, max_len).unwrap();
            let pairs = varied_pairs();
            let ours = encode_pairs(&t, &pairs).unwrap();
            let inputs: Vec<tokenizers::EncodeInput> = pairs
                .iter()
                .map(|(q, c)| (q.as_str(), c.as_str()).into())
                .collect();
            let theirs = t.encode_batch(inputs, true).unwrap();
            for ((o, t), p) in ours.iter().zip(&theirs).zip(&pairs) {
                assert_eq!(o.ids, t.get_ids(), "{max_len}: {p:?}");
                assert_eq!(o.type_ids, t.get_type_ids(), "{max_len}: {p:?}");
                assert_eq!(o.mask, t.get_attention_mask(), "{max_len}: {p:?}");
            }
        }
        assert_eq!(first_words("a b  c d", 2), "a b");
        assert_eq!(first_words("  a b", 5), "  a b");
    }
}
