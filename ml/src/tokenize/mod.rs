//! Turning a pair's text into model input. A model initialized from a checkpoint uses the
//! checkpoint's own `tokenizer.json`; any other gets a WordPiece vocabulary learned here from the
//! training text and stored with the model. The library's trainer breaks ties between equally
//! frequent merges unpredictably (the same corpus gave different ids on consecutive runs), so
//! the vocabulary is learned by our own merge loop, whose ties go to the pieces learned first: the
//! same text always gives the same vocabulary, byte for byte. Normalization, pre-tokenization,
//! the `[CLS] query [SEP] candidate [SEP]` template and truncation are the library's, as BERT's;
//! `pairs` gives exactly the library's pair encoding, faster (`wordpiece`: BERT's tokenizer on
//! ASCII text without the library's per-token work).

mod pairs;
mod wordpiece;

pub use pairs::{EncodedPair, PairTokenizer, encode_pairs};
pub use wordpiece::FastWordPiece;

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Text to learn test vocabularies from (shared with `pairs` and `wordpiece`).
    pub(crate) const CORPUS: &[&str] = &[
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
}
