//! BERT's WordPiece on ASCII text without the `tokenizers` library's per-token work: the same
//! normalizer, pre-tokenizer and greedy longest-match as the library's `BertNormalizer`,
//! `BertPreTokenizer` and `WordPiece` model (checked equal to them), over bytes, with no string
//! per token. Text that is not ASCII or that may hold an added token goes to the library.

use rustc_hash::FxHashMap;
use tokenizers::Tokenizer;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;

/// A tokenizer's WordPiece, where its parts are BERT's own (see [`FastWordPiece::of`]).
#[derive(Clone, Debug)]
pub struct FastWordPiece {
    /// Every piece, for the start of a word.
    starts: FxHashMap<Box<[u8]>, u32>,
    /// The pieces that continue a word, without their prefix (`##`).
    continues: FxHashMap<Box<[u8]>, u32>,
    unk: u32,
    max_chars: usize,
    clean_text: bool,
    lowercase: bool,
    /// The added tokens' contents, lowercased: text that may hold one goes to the library,
    /// which splits them out first.
    added: Vec<Vec<u8>>,
    /// Their first bytes (both cases), to rule most text out at once.
    added_first: [bool; 256],
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    /// Removed by the normalizer (a control character, with `clean_text`).
    Removed,
    /// Separates words and is dropped.
    Space,
    /// A word of its own.
    Punctuation,
    Letter,
}

impl FastWordPiece {
    /// The fast path for `tokenizer`, when its normalizer is `BertNormalizer` (or none), its
    /// pre-tokenizer `BertPreTokenizer` and its model `WordPiece`; `None` otherwise.
    pub fn of(tokenizer: &Tokenizer) -> Option<FastWordPiece> {
        let (clean_text, lowercase) = match tokenizer.get_normalizer() {
            Some(NormalizerWrapper::BertNormalizer(n)) => (n.clean_text, n.lowercase),
            None => (false, false),
            Some(_) => return None,
        };
        if !matches!(
            tokenizer.get_pre_tokenizer(),
            Some(PreTokenizerWrapper::BertPreTokenizer(_))
        ) {
            return None;
        }
        let ModelWrapper::WordPiece(model) = tokenizer.get_model() else {
            return None;
        };
        use tokenizers::Model;
        let vocab = model.get_vocab();
        let unk = *vocab.get(&model.unk_token)?;
        let prefix = model.continuing_subword_prefix.as_bytes();
        let mut starts = FxHashMap::default();
        let mut continues = FxHashMap::default();
        for (piece, id) in vocab {
            let bytes = piece.as_bytes();
            if let Some(rest) = bytes.strip_prefix(prefix) {
                continues.insert(rest.into(), id);
            }
            starts.insert(bytes.into(), id);
        }
        let added: Vec<Vec<u8>> = tokenizer
            .get_added_tokens_decoder()
            .values()
            .map(|t| t.content.to_ascii_lowercase().into_bytes())
            .filter(|c| !c.is_empty())
            .collect();
        let mut added_first = [false; 256];
        for c in &added {
            added_first[usize::from(c[0])] = true;
            added_first[usize::from(c[0].to_ascii_uppercase())] = true;
        }
        Some(FastWordPiece {
            starts,
            continues,
            unk,
            max_chars: model.max_input_chars_per_word,
            clean_text,
            lowercase,
            added,
            added_first,
        })
    }

    /// Whether `text` takes the fast path: ASCII, with no added token in it (a text with one
    /// goes to the library, which splits added tokens out before normalizing).
    pub fn takes(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        if !text.is_ascii() {
            return false;
        }
        if !bytes.iter().any(|&b| self.added_first[usize::from(b)]) {
            return true;
        }
        // Conservatively: the text with its control characters dropped (as the normalizer
        // drops them) and lowercased.
        let plain: Vec<u8> = bytes
            .iter()
            .filter(|&&b| self.class(b) != Byte::Removed)
            .map(u8::to_ascii_lowercase)
            .collect();
        !self
            .added
            .iter()
            .any(|c| plain.windows(c.len()).any(|w| w == c.as_slice()))
    }

    fn class(&self, b: u8) -> Byte {
        match b {
            b'\t' | b'\n' | b'\r' | b' ' => Byte::Space,
            // `BertNormalizer`'s clean_text drops other control characters (vertical tab and
            // form feed among them); without it, those two still split words.
            0x0b | 0x0c if !self.clean_text => Byte::Space,
            0..=0x1f | 0x7f if self.clean_text => Byte::Removed,
            _ if b.is_ascii_punctuation() => Byte::Punctuation,
            _ => Byte::Letter,
        }
    }

    /// The pieces of an ASCII `text` (see [`FastWordPiece::takes`]) up to the word in which
    /// the `limit`-th piece falls, whole: what the library keeps of a text it truncates to
    /// `limit` pieces before truncating the pair (`PreTokenizedString::tokenize_with_limit`).
    pub fn pieces(&self, text: &str, limit: usize) -> Vec<u32> {
        let mut ids = Vec::with_capacity(limit.min(text.len()) + 1);
        let mut word: Vec<u8> = Vec::with_capacity(32);
        for &b in text.as_bytes() {
            match self.class(b) {
                Byte::Removed => {}
                Byte::Space => {
                    if self.word(&mut word, &mut ids) && ids.len() >= limit {
                        return ids;
                    }
                }
                Byte::Punctuation => {
                    if self.word(&mut word, &mut ids) && ids.len() >= limit {
                        return ids;
                    }
                    word.push(b);
                    if self.word(&mut word, &mut ids) && ids.len() >= limit {
                        return ids;
                    }
                }
                Byte::Letter => word.push(if self.lowercase {
                    b.to_ascii_lowercase()
                } else {
                    b
                }),
            }
        }
        self.word(&mut word, &mut ids);
        ids
    }

    /// Appends the pieces of `word` (then empties it): the longest piece of the vocabulary at
    /// each point, or one unknown piece for the whole word when some point has none. Whether
    /// there was a word.
    fn word(&self, word: &mut Vec<u8>, ids: &mut Vec<u32>) -> bool {
        if word.is_empty() {
            return false;
        }
        let first = ids.len();
        if word.len() > self.max_chars {
            ids.push(self.unk);
            word.clear();
            return true;
        }
        let mut start = 0;
        while start < word.len() {
            let map = if start == 0 {
                &self.starts
            } else {
                &self.continues
            };
            let found = (start + 1..=word.len())
                .rev()
                .find_map(|end| map.get(&word[start..end]).map(|&id| (id, end)));
            match found {
                Some((id, end)) => {
                    ids.push(id);
                    start = end;
                }
                None => {
                    ids.truncate(first);
                    ids.push(self.unk);
                    break;
                }
            }
        }
        word.clear();
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tokenize::learn_wordpiece;
    use proptest::prelude::*;

    const CORPUS: &[&str] = &[
        "Senior backend engineer: Rust, PostgreSQL and Kafka. Remote within the EU.",
        "Backend developer with seven years of Rust and Go; looking for remote roles.",
        "Registered nurse, intensive care, night shifts; Berlin.",
        "Data engineer (Spark, Kafka, Airflow) for a payments company.",
    ];

    fn library(t: &Tokenizer, text: &str) -> Vec<u32> {
        t.encode(text, false).unwrap().get_ids().to_vec()
    }

    /// A tokenizer learned here, with an unknown-making limit and without the letters `jqz`
    /// as continuations, so words can fail and become `[UNK]`.
    fn tokenizer(max_chars: usize, drop: &str) -> Tokenizer {
        let t = learn_wordpiece(CORPUS.iter().copied(), 300).unwrap();
        let mut json: serde_json::Value =
            serde_json::from_str(&t.to_string(false).unwrap()).unwrap();
        let vocab = json["model"]["vocab"].as_object_mut().unwrap();
        for c in drop.chars() {
            vocab.remove(&format!("##{c}"));
        }
        json["model"]["max_input_chars_per_word"] = max_chars.into();
        Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn fixed_texts_give_the_librarys_pieces() {
        let t = tokenizer(12, "jqz");
        let fast = FastWordPiece::of(&t).unwrap();
        for text in [
            "",
            "   ",
            "Rust, PostgreSQL & Kafka!!",
            "a\u{1}b c\u{7f}d\x0be\x0cf\tg\r\nh",
            "supercalifragilistic word",
            "jazz quiz zzz",
            "don't-stop: 3.14 (x)[y]{z}",
            "[sep] is not [SEP] but [PAD]",
        ] {
            if fast.takes(text) {
                assert_eq!(fast.pieces(text, usize::MAX), library(&t, text), "{text:?}");
            }
        }
        assert!(!fast.takes("is not [SEP] but"));
        assert!(!fast.takes("is not [sep] but"));
        assert!(!fast.takes("café"));
        assert!(fast.takes("[ not special ]"));
    }

    #[test]
    fn a_limit_keeps_the_word_it_falls_in_whole() {
        let t = tokenizer(100, "");
        let fast = FastWordPiece::of(&t).unwrap();
        let text = "backend engineer, kubernetes rust";
        let all = fast.pieces(text, usize::MAX);
        for limit in 0..all.len() + 2 {
            let some = fast.pieces(text, limit);
            assert!(all.starts_with(&some), "{limit}");
            assert!(some.len() >= limit.min(all.len()), "{limit}");
        }
        // `kubernetes` is several pieces: a limit inside it keeps them all.
        let at = fast
            .pieces("backend engineer, kubernetes", usize::MAX)
            .len();
        assert_eq!(fast.pieces(text, at - 1).len(), at);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn ascii_text_gives_the_librarys_pieces(
            text in "([a-zA-Z]{1,14}|[0-9]{1,3}|[ \t\r\n]{1,3}|[!-/:-@\\[-`{-~]|[\u{0}-\u{1f}\u{7f}]){0,40}"
        ) {
            for (max_chars, drop) in [(100, ""), (6, "jqzx")] {
                let t = tokenizer(max_chars, drop);
                let fast = FastWordPiece::of(&t).unwrap();
                if fast.takes(&text) {
                    prop_assert_eq!(fast.pieces(&text, usize::MAX), library(&t, &text));
                }
            }
        }
    }
}
