//! BERT's WordPiece without the `tokenizers` library's per-token work: the same normalizer,
//! pre-tokenizer and greedy longest-match as the library's `BertNormalizer`, `BertPreTokenizer`
//! and `WordPiece` model (checked equal to them), over bytes, with no string per token. ASCII is
//! handled by rule; the Latin letters, punctuation and currency signs beyond it by a table the
//! library's own normalizer and pre-tokenizer fill, one character at a time, when the fast path
//! is made. Text with any other character, or that may hold an added token, goes to the library.

use rustc_hash::FxHashMap;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{NormalizedString, Normalizer, PreTokenizedString, PreTokenizer, Tokenizer};

/// The characters beyond ASCII the table covers: Latin-1, Latin Extended-A and -B, combining
/// diacritics, general punctuation and currency signs. Each normalizes on its own there (the
/// normalizer's steps are per character, and canonical reordering only moves the combining marks
/// that stripping accents removes).
const TABLE: [(char, char); 5] = [
    ('\u{80}', '\u{24f}'),
    ('\u{300}', '\u{36f}'),
    ('\u{2000}', '\u{206f}'),
    ('\u{20a0}', '\u{20cf}'),
    ('\u{2190}', '\u{21ff}'),
];

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
    /// What each character of [`TABLE`] normalizes to, and how the pre-tokenizer treats it.
    table: FxHashMap<char, Vec<Normal>>,
    /// The added tokens' contents, lowercased: text that may hold one goes to the library,
    /// which splits them out first.
    added: Vec<Vec<u8>>,
    /// Their first bytes (both cases), to rule most text out at once.
    added_first: [bool; 256],
    /// Whether any is matched after normalization (then in text beyond ASCII too, which the
    /// check below does not normalize).
    added_normalized: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Byte {
    /// Removed by the normalizer (a control character, with `clean_text`).
    Removed,
    /// Separates words and is dropped.
    Space,
    /// A word of its own.
    Punctuation,
    Letter,
}

/// One normalized character: its UTF-8 and its class.
#[derive(Clone, Copy, Debug)]
struct Normal {
    utf8: [u8; 4],
    len: u8,
    class: Byte,
}

impl Normal {
    fn bytes(&self) -> &[u8] {
        &self.utf8[..usize::from(self.len)]
    }
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
        let added_normalized = tokenizer
            .get_added_tokens_decoder()
            .values()
            .any(|t| t.normalized);
        let mut added_first = [false; 256];
        for c in &added {
            added_first[usize::from(c[0])] = true;
            added_first[usize::from(c[0].to_ascii_uppercase())] = true;
        }
        let mut table = FxHashMap::default();
        for (lo, hi) in TABLE {
            for c in lo..=hi {
                table.insert(c, normalize_one(tokenizer, c)?);
            }
        }
        // A character that becomes one of an added token's (non-ASCII) first bytes: the table
        // could hide an added token, so such text goes to the library.
        if table
            .values()
            .flatten()
            .any(|n| added_first[usize::from(n.utf8[0])])
        {
            table.retain(|_, v| v.iter().all(|n| !added_first[usize::from(n.utf8[0])]));
        }
        Some(FastWordPiece {
            starts,
            continues,
            unk,
            max_chars: model.max_input_chars_per_word,
            clean_text,
            lowercase,
            table,
            added,
            added_first,
            added_normalized,
        })
    }

    /// Whether `text` takes the fast path: ASCII or characters of the table, with no added
    /// token in it (a text with one goes to the library, which splits added tokens out first).
    pub fn takes(&self, text: &str) -> bool {
        if !text.is_ascii()
            && !text
                .chars()
                .all(|c| c.is_ascii() || self.table.contains_key(&c))
        {
            return false;
        }
        let bytes = text.as_bytes();
        if !bytes.iter().any(|&b| self.added_first[usize::from(b)]) {
            return true;
        }
        if self.added_normalized && !text.is_ascii() {
            return false;
        }
        // Conservatively: the text with its control characters dropped (as the normalizer
        // drops them) and lowercased.
        let plain: Vec<u8> = bytes
            .iter()
            .filter(|&&b| !b.is_ascii() || self.class(b) != Byte::Removed)
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

    /// The pieces of `text` (one [`FastWordPiece::takes`]) up to the word in which the
    /// `limit`-th piece falls, whole: what the library keeps of a text it truncates to `limit`
    /// pieces before truncating the pair (`PreTokenizedString::tokenize_with_limit`).
    pub fn pieces(&self, text: &str, limit: usize) -> Vec<u32> {
        let mut cursor = Cursor {
            fast: self,
            ids: Vec::with_capacity(limit.min(text.len()) + 1),
            word: Vec::with_capacity(32),
            chars: 0,
            limit,
        };
        if text.is_ascii() {
            for &b in text.as_bytes() {
                let b = if self.lowercase {
                    b.to_ascii_lowercase()
                } else {
                    b
                };
                if cursor.feed(self.class(b), &[b]) {
                    return cursor.ids;
                }
            }
        } else {
            let mut utf8 = [0u8; 4];
            for c in text.chars() {
                if c.is_ascii() {
                    let b = c.encode_utf8(&mut utf8).as_bytes()[0];
                    let b = if self.lowercase {
                        b.to_ascii_lowercase()
                    } else {
                        b
                    };
                    if cursor.feed(self.class(b), &[b]) {
                        return cursor.ids;
                    }
                } else if let Some(normal) = self.table.get(&c) {
                    for n in normal {
                        if cursor.feed(n.class, n.bytes()) {
                            return cursor.ids;
                        }
                    }
                }
            }
        }
        cursor.flush();
        cursor.ids
    }

    /// Appends the pieces of `word` of `chars` characters: the longest piece of the vocabulary
    /// at each point, or one unknown piece for the whole word when some point has none.
    fn word(&self, word: &[u8], chars: usize, ids: &mut Vec<u32>) {
        let first = ids.len();
        if chars > self.max_chars {
            ids.push(self.unk);
            return;
        }
        let mut start = 0;
        while start < word.len() {
            let map = if start == 0 {
                &self.starts
            } else {
                &self.continues
            };
            // Ends inside a character never match: the vocabulary's pieces are whole UTF-8.
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
                    return;
                }
            }
        }
    }
}

/// The words of one text in the making.
struct Cursor<'a> {
    fast: &'a FastWordPiece,
    ids: Vec<u32>,
    word: Vec<u8>,
    /// Characters in `word`.
    chars: usize,
    limit: usize,
}

impl Cursor<'_> {
    /// Takes one normalized character; whether the limit is reached.
    fn feed(&mut self, class: Byte, bytes: &[u8]) -> bool {
        match class {
            Byte::Removed => false,
            Byte::Space => self.flush(),
            Byte::Punctuation => {
                if self.flush() {
                    return true;
                }
                self.word.extend_from_slice(bytes);
                self.chars = 1;
                self.flush()
            }
            Byte::Letter => {
                self.word.extend_from_slice(bytes);
                self.chars += 1;
                false
            }
        }
    }

    /// Ends the word in the making, if any; whether the limit is reached.
    fn flush(&mut self) -> bool {
        if self.word.is_empty() {
            return false;
        }
        self.fast.word(&self.word, self.chars, &mut self.ids);
        self.word.clear();
        self.chars = 0;
        self.ids.len() >= self.limit
    }
}

/// What the tokenizer's normalizer makes of `c` alone, each character classed as its
/// pre-tokenizer classes it (a space, a word of its own, or part of a word); `None` when either
/// fails.
fn normalize_one(tokenizer: &Tokenizer, c: char) -> Option<Vec<Normal>> {
    let mut normalized = NormalizedString::from(c.to_string());
    if let Some(n) = tokenizer.get_normalizer() {
        n.normalize(&mut normalized).ok()?;
    }
    let pre = tokenizer.get_pre_tokenizer()?;
    normalized
        .get()
        .chars()
        .map(|d| {
            // Between two letters, a space splits in two, a word of its own in three.
            let mut probe = PreTokenizedString::from(format!("a{d}a"));
            pre.pre_tokenize(&mut probe).ok()?;
            let splits = probe
                .get_splits(
                    tokenizers::OffsetReferential::Original,
                    tokenizers::OffsetType::Char,
                )
                .len();
            let class = match splits {
                1 => Byte::Letter,
                2 => Byte::Space,
                3 => Byte::Punctuation,
                _ => return None,
            };
            let mut utf8 = [0u8; 4];
            let len = d.encode_utf8(&mut utf8).len() as u8;
            Some(Normal { utf8, len, class })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::tokenize::learn_wordpiece;
    use proptest::prelude::*;

    use crate::tokenize::tests::CORPUS;

    /// Text beyond ASCII, so the vocabulary has pieces of it.
    const LATIN: &str = "Café in Zürich, Straße der Œuvre: naïve ǅ résumé — façade, Ærø, 5 € · ½";

    fn library(t: &Tokenizer, text: &str) -> Vec<u32> {
        t.encode(text, false).unwrap().get_ids().to_vec()
    }

    /// A tokenizer learned here, with an unknown-making limit and without the letters `jqz`
    /// as continuations, so words can fail and become `[UNK]`.
    fn tokenizer(max_chars: usize, drop: &str) -> Tokenizer {
        let t = learn_wordpiece(CORPUS.iter().copied().chain([LATIN]), 300).unwrap();
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
            "Café Zürich · Straße — “Œuvre” naïve résumé… 5€ a\u{a0}b e\u{301}t ǅ ÆØÅ",
        ] {
            if fast.takes(text) {
                assert_eq!(fast.pieces(text, usize::MAX), library(&t, text), "{text:?}");
            }
        }
        assert!(!fast.takes("is not [SEP] but"));
        assert!(!fast.takes("is not [sep] but"));
        assert!(fast.takes("café · naïve"));
        assert!(!fast.takes("Αθήνα"));
        assert!(!fast.takes("北京"));
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
        fn text_gives_the_librarys_pieces(
            text in "([a-zA-Z]{1,14}|[0-9]{1,3}|[ \t\r\n]{1,3}|[!-/:-@\\[-`{-~]|[\u{0}-\u{1f}\u{7f}]|[\u{80}-\u{24f}]{1,3}|[\u{300}-\u{36f}]|[\u{2000}-\u{206f}\u{20a0}-\u{20cf}\u{2190}-\u{21ff}]|[α-ω北]){0,40}"
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
