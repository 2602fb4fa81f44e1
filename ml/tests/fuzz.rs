//! Fuzz target for the checkpoint loader: a small saved checkpoint (`config.json`,
//! `model.safetensors`, `tokenizer.json`) with byte-level edits to any of its files, or a file
//! replaced by any bytes or a header claiming anything. Loading must return a checkpoint or an
//! error that names one of the three files, never panic, and never allocate what a header
//! merely claims. Bounded in CI; `RUBRIC_FUZZ_SECONDS=N` runs longer (`tests/support/fuzzing.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

use candle_core::{DType, Device};
use fuzzing::{fail, fuzz};
use proptest::prelude::*;
use proptest::sample::Index;
use rubric_ml::checkpoint::{CONFIG, TOKENIZER, WEIGHTS, load, save};
use rubric_ml::model::{BertConfig, HeadSpec, PairEncoder};
use rubric_ml::params::Params;
use std::sync::OnceLock;
use tokenizers::Tokenizer;
use tokenizers::models::wordpiece::WordPiece;

/// The three files of a tiny checkpoint, as bytes.
fn seed() -> &'static [(String, Vec<u8>)] {
    static FILES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        let words: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b", "##c"]
            .map(String::from)
            .to_vec();
        std::fs::write(&vocab, words.join("\n")).unwrap();
        let tokenizer = Tokenizer::new(
            WordPiece::from_file(vocab.to_str().unwrap())
                .unk_token("[UNK]".into())
                .build()
                .unwrap(),
        );
        let cfg = BertConfig::new(12, 8, 1, 2, 16, 10);
        let params = Params::seeded(1);
        let spec = HeadSpec {
            click: true,
            ..HeadSpec::default()
        };
        PairEncoder::new(&cfg, 0, &spec, params.builder(DType::F32, &Device::Cpu)).unwrap();
        save(dir.path(), &cfg, &params, &tokenizer).unwrap();
        [CONFIG, WEIGHTS, TOKENIZER]
            .iter()
            .map(|f| (f.to_string(), std::fs::read(dir.path().join(f)).unwrap()))
            .collect()
    })
}

#[derive(Clone, Debug)]
enum Edit {
    /// Replace up to 8 bytes at a place with these.
    Overwrite(Index, Vec<u8>),
    Truncate(Index),
    Delete(Index, u8),
    /// Put a number (a length, a dimension) into the text of a JSON file or header.
    Number(Index, u64),
    /// The safetensors length prefix set to this.
    HeaderLength(u64),
    Bytes(Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Edit::Overwrite(i, b)),
        any::<Index>().prop_map(Edit::Truncate),
        (any::<Index>(), any::<u8>()).prop_map(|(i, n)| Edit::Delete(i, n)),
        (
            any::<Index>(),
            prop_oneof![0u64..100, Just(u64::MAX), Just(1 << 40), any::<u64>()]
        )
            .prop_map(|(i, n)| Edit::Number(i, n)),
        prop_oneof![any::<u64>(), 0u64..4096].prop_map(Edit::HeaderLength),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Edit::Bytes),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len) };
    match edit {
        Edit::Overwrite(i, b) => {
            let start = at(i, bytes.len());
            for (k, v) in b.iter().enumerate() {
                if let Some(x) = bytes.get_mut(start + k) {
                    *x = *v;
                }
            }
        }
        Edit::Truncate(i) => {
            let cut = at(i, bytes.len());
            bytes.truncate(cut);
        }
        Edit::Delete(i, n) => {
            let start = at(i, bytes.len());
            let end = (start + usize::from(*n)).min(bytes.len());
            bytes.drain(start..end);
        }
        Edit::Number(i, n) => {
            // At a digit of the text, if there is one at or after the place.
            let start = at(i, bytes.len());
            if let Some(p) = bytes.iter().skip(start).position(u8::is_ascii_digit) {
                let p = start + p;
                let end = p + bytes[p..].iter().take_while(|b| b.is_ascii_digit()).count();
                bytes.splice(p..end, n.to_string().into_bytes());
            }
        }
        Edit::HeaderLength(n) => {
            if bytes.len() >= 8 {
                bytes[..8].copy_from_slice(&n.to_le_bytes());
            }
        }
        Edit::Bytes(b) => *bytes = b.clone(),
    }
}

#[test]
fn fuzz_checkpoint_loader() {
    let files = seed();
    let strategy = prop::collection::vec((0usize..3, edit()), 1..4);
    fuzz("checkpoint", 128, strategy, |edits| {
        let dir = tempfile::tempdir().unwrap();
        let mut contents: Vec<Vec<u8>> = files.iter().map(|(_, b)| b.clone()).collect();
        for (file, e) in &edits {
            apply(&mut contents[*file], e);
        }
        for ((name, _), bytes) in files.iter().zip(&contents) {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        match load(dir.path(), &Device::Cpu) {
            Ok(checkpoint) => {
                // What loads is what the configuration says.
                checkpoint.config.validate().map_err(|m| {
                    fail(format!("a checkpoint loaded with a bad configuration: {m}"))
                })?;
                Ok(())
            }
            Err(e) => {
                let named = [CONFIG, WEIGHTS, TOKENIZER]
                    .iter()
                    .any(|f| e.path.ends_with(f));
                if named {
                    Ok(())
                } else {
                    Err(fail(format!("an error that names no checkpoint file: {e}")))
                }
            }
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Cases the target found, kept as plain tests

fn load_with(file: &str, edit: impl Fn(&mut Vec<u8>)) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in seed() {
        let mut bytes = bytes.clone();
        if name == file {
            edit(&mut bytes);
        }
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    load(dir.path(), &Device::Cpu)
        .err()
        .expect("an error")
        .to_string()
}

/// `"num_hidden_layers": 18446744073709551615` passed the checks and the loader listed a tensor
/// name per layer until memory ran out (SIGKILL).
#[test]
fn a_configuration_with_endless_layers_is_refused() {
    let err = load_with(CONFIG, |b| {
        let text = String::from_utf8(b.clone()).unwrap();
        *b = text
            .replace(
                "\"num_hidden_layers\": 1",
                "\"num_hidden_layers\": 18446744073709551615",
            )
            .into_bytes();
    });
    assert!(
        err.contains("config.json") && err.contains("num_hidden_layers"),
        "{err}"
    );
}

/// A `tokenizer.json` cut short made the tokenizer library panic (an `expect` in its decoder's
/// deserializer).
#[test]
fn a_truncated_tokenizer_is_an_error_not_a_panic() {
    let err = load_with(TOKENIZER, |b| b.truncate(139));
    assert!(
        err.contains("tokenizer.json") && err.contains("not JSON"),
        "{err}"
    );
}
