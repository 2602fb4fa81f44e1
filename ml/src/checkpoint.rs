//! Hugging Face checkpoints in their usual layout (`config.json`, `model.safetensors`,
//! `tokenizer.json`): loaded as a model's initial weights (`model init "path"`), and written in
//! the same layout so other tools read what rubric trains. Everything a file says is checked
//! before it sizes an allocation: the configuration, the safetensors header (each tensor's
//! dtype, shape and byte range against the file's real length, and against the shapes the
//! configuration implies) and the tokenizer's vocabulary against the encoder's. Errors name the
//! file, and the tensor where there is one. No memory mapping: the file is read once it is known
//! to be what it says, so this module needs no `unsafe`.

use crate::model::BertConfig;
use crate::params::Params;
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tokenizers::Tokenizer;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer.json";

/// The most a `config.json` or a safetensors header may hold.
const MAX_JSON_BYTES: u64 = 16 * 1024 * 1024;

/// A checkpoint read from a folder.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: BertConfig,
    /// The encoder's tensors, in f32, by Hugging Face name (a `bert.` prefix removed).
    pub tensors: HashMap<String, Tensor>,
    pub tokenizer: Tokenizer,
}

/// Why a checkpoint could not be read or written.
#[derive(Debug)]
pub struct CheckpointError {
    /// The file at fault.
    pub path: PathBuf,
    /// The tensor at fault, if one is.
    pub tensor: Option<String>,
    pub message: String,
}

impl CheckpointError {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        CheckpointError {
            path: path.to_path_buf(),
            tensor: None,
            message: message.into(),
        }
    }

    fn tensor(path: &Path, tensor: &str, message: impl Into<String>) -> Self {
        CheckpointError {
            path: path.to_path_buf(),
            tensor: Some(tensor.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tensor {
            Some(t) => write!(
                f,
                "`{}`, tensor `{t}`: {}",
                self.path.display(),
                self.message
            ),
            None => write!(f, "`{}`: {}", self.path.display(), self.message),
        }
    }
}

impl std::error::Error for CheckpointError {}

/// Every tensor a BERT encoder of this configuration has, with its shape, by Hugging Face name.
pub fn encoder_shapes(cfg: &BertConfig) -> BTreeMap<String, Vec<usize>> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut shapes = BTreeMap::new();
    let mut add = |name: String, shape: Vec<usize>| {
        shapes.insert(name, shape);
    };
    add(
        "embeddings.word_embeddings.weight".into(),
        vec![cfg.vocab_size, h],
    );
    add(
        "embeddings.position_embeddings.weight".into(),
        vec![cfg.max_position_embeddings, h],
    );
    add(
        "embeddings.token_type_embeddings.weight".into(),
        vec![cfg.type_vocab_size, h],
    );
    add("embeddings.LayerNorm.weight".into(), vec![h]);
    add("embeddings.LayerNorm.bias".into(), vec![h]);
    for l in 0..cfg.num_hidden_layers {
        let p = format!("encoder.layer.{l}");
        // A layer with pruned heads keeps a block of rows (columns of the output projection)
        // per remaining head.
        let a = cfg.kept_heads(l).len() * cfg.head_size();
        for m in [
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
        ] {
            add(format!("{p}.{m}.weight"), vec![a, h]);
            add(format!("{p}.{m}.bias"), vec![a]);
        }
        add(format!("{p}.attention.output.dense.weight"), vec![h, a]);
        add(format!("{p}.attention.output.dense.bias"), vec![h]);
        add(format!("{p}.intermediate.dense.weight"), vec![i, h]);
        add(format!("{p}.intermediate.dense.bias"), vec![i]);
        add(format!("{p}.output.dense.weight"), vec![h, i]);
        add(format!("{p}.output.dense.bias"), vec![h]);
        for n in ["attention.output.LayerNorm", "output.LayerNorm"] {
            add(format!("{p}.{n}.weight"), vec![h]);
            add(format!("{p}.{n}.bias"), vec![h]);
        }
    }
    shapes
}

fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, CheckpointError> {
    let file = std::fs::File::open(path)
        .map_err(|e| CheckpointError::new(path, format!("cannot read it: {e}")))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CheckpointError::new(path, format!("cannot read it: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(CheckpointError::new(
            path,
            format!("it is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Reads the configuration and checks it.
pub fn read_config(dir: &Path) -> Result<BertConfig, CheckpointError> {
    let path = dir.join(CONFIG);
    let bytes = read_bounded(&path, MAX_JSON_BYTES)?;
    let config: BertConfig = serde_json::from_slice(&bytes)
        .map_err(|e| CheckpointError::new(&path, format!("not a BERT configuration: {e}")))?;
    config
        .validate()
        .map_err(|m| CheckpointError::new(&path, m))?;
    Ok(config)
}

/// One entry of a safetensors header.
#[derive(Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

fn dtype_size(dtype: &str) -> Option<usize> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "U8" | "I8" | "BOOL" => 1,
        _ => return None,
    })
}

/// The header of a safetensors file, checked against the file's length: every tensor's byte
/// range lies in the data and holds exactly its shape's elements.
fn read_header(path: &Path) -> Result<BTreeMap<String, HeaderEntry>, CheckpointError> {
    let io = |e: std::io::Error| CheckpointError::new(path, format!("cannot read it: {e}"));
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut n = [0u8; 8];
    file.read_exact(&mut n).map_err(|_| {
        CheckpointError::new(
            path,
            format!("{len} bytes: too short for a safetensors header"),
        )
    })?;
    let n = u64::from_le_bytes(n);
    if n > MAX_JSON_BYTES || n + 8 > len {
        return Err(CheckpointError::new(
            path,
            format!(
                "its header claims {n} bytes; the file has {len} (truncated, or not safetensors)"
            ),
        ));
    }
    let mut header = Vec::new();
    file.take(n).read_to_end(&mut header).map_err(io)?;
    let mut entries: BTreeMap<String, serde_json::Value> = serde_json::from_slice(&header)
        .map_err(|e| {
            CheckpointError::new(path, format!("its header is not safetensors JSON: {e}"))
        })?;
    entries.remove("__metadata__");
    let data_len = len - 8 - n;
    let mut out = BTreeMap::new();
    for (name, value) in entries {
        let entry: HeaderEntry = serde_json::from_value(value).map_err(|e| {
            CheckpointError::tensor(path, &name, format!("a malformed header entry: {e}"))
        })?;
        let size = dtype_size(&entry.dtype).ok_or_else(|| {
            CheckpointError::tensor(path, &name, format!("unknown dtype {}", entry.dtype))
        })?;
        let (start, end) = entry.data_offsets;
        let bytes = entry
            .shape
            .iter()
            .try_fold(size, |acc, d| acc.checked_mul(*d));
        if start > end || bytes != Some(end - start) || end as u64 > data_len {
            return Err(CheckpointError::tensor(
                path,
                &name,
                format!(
                    "shape {:?} of {} at bytes {start}..{end} does not fit the file's {data_len} bytes of data (truncated?)",
                    entry.shape, entry.dtype
                ),
            ));
        }
        out.insert(name, entry);
    }
    Ok(out)
}

/// Reads a checkpoint folder: its configuration, its encoder's tensors (checked by name and
/// shape against the configuration before they are read) and its tokenizer (checked against
/// the vocabulary size).
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint, CheckpointError> {
    let config = read_config(dir)?;
    let weights = dir.join(WEIGHTS);
    let header = read_header(&weights)?;
    // Some checkpoints prefix the encoder's names with `bert.`.
    let prefix = if header.keys().any(|k| k.starts_with("bert.embeddings.")) {
        "bert."
    } else {
        ""
    };
    for (name, shape) in encoder_shapes(&config) {
        let stored = format!("{prefix}{name}");
        match header.get(&stored) {
            None => {
                return Err(CheckpointError::tensor(
                    &weights,
                    &stored,
                    format!("missing: a BERT encoder of this `{CONFIG}` has it"),
                ));
            }
            Some(e) if e.shape != shape => {
                return Err(CheckpointError::tensor(
                    &weights,
                    &stored,
                    format!("shape {:?}; `{CONFIG}` implies {shape:?}", e.shape),
                ));
            }
            Some(e) if !matches!(e.dtype.as_str(), "F32" | "F16" | "BF16" | "F64") => {
                return Err(CheckpointError::tensor(
                    &weights,
                    &stored,
                    format!("dtype {}: weights are floats", e.dtype),
                ));
            }
            Some(_) => {}
        }
    }
    let bytes = std::fs::read(&weights)
        .map_err(|e| CheckpointError::new(&weights, format!("cannot read it: {e}")))?;
    let loaded = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|e| CheckpointError::new(&weights, e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, tensor) in loaded {
        let name = name.strip_prefix(prefix).unwrap_or(&name).to_string();
        let tensor = tensor
            .to_dtype(DType::F32)
            .map_err(|e| CheckpointError::tensor(&weights, &name, e.to_string()))?;
        tensors.insert(name, tensor);
    }
    let tokenizer = read_tokenizer(dir, &config)?;
    Ok(Checkpoint {
        dir: dir.to_path_buf(),
        config,
        tensors,
        tokenizer,
    })
}

/// The checkpoint's tokenizer, whose ids must all fit the encoder's vocabulary.
pub fn read_tokenizer(dir: &Path, config: &BertConfig) -> Result<Tokenizer, CheckpointError> {
    let path = dir.join(TOKENIZER);
    let bytes = read_bounded(&path, 256 * 1024 * 1024)?;
    // tokenizers 0.23 panics (an `expect` in its decoder's deserializer) on text that is not
    // JSON: checked first. Its other failures on odd but valid JSON are caught as errors.
    serde_json::from_slice::<serde_json::Value>(&bytes)
        .map_err(|e| CheckpointError::new(&path, format!("not a tokenizer: not JSON: {e}")))?;
    let parsed = std::panic::catch_unwind(|| Tokenizer::from_bytes(&bytes)).map_err(|_| {
        CheckpointError::new(&path, "not a tokenizer: the tokenizer library failed on it")
    })?;
    let tokenizer =
        parsed.map_err(|e| CheckpointError::new(&path, format!("not a tokenizer: {e}")))?;
    let size = tokenizer.get_vocab_size(true);
    if size > config.vocab_size {
        return Err(CheckpointError::new(
            &path,
            format!(
                "its {size} tokens do not fit the encoder's `vocab_size` {} (`{CONFIG}`): a tokenizer of another model?",
                config.vocab_size
            ),
        ));
    }
    Ok(tokenizer)
}

/// Writes `path` whole or not at all: a temporary file in the same folder, synced, renamed.
fn write_atomically(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), CheckpointError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let err = |m: String| CheckpointError::new(path, m);
    let temp = tempfile::Builder::new()
        .prefix(".rubric-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| err(format!("cannot write in its folder: {e}")))?;
    write(temp.path()).map_err(err)?;
    temp.as_file().sync_all().map_err(|e| err(e.to_string()))?;
    temp.persist(path).map_err(|e| err(e.error.to_string()))?;
    Ok(())
}

/// Saves a model in Hugging Face layout: `config.json`, `model.safetensors` (every parameter,
/// by name) and `tokenizer.json`, each written atomically.
pub fn save(
    dir: &Path,
    config: &BertConfig,
    params: &Params,
    tokenizer: &Tokenizer,
) -> Result<(), CheckpointError> {
    save_config(dir, config)?;
    let tensors = params.tensors();
    write_atomically(&dir.join(WEIGHTS), |p| {
        candle_core::safetensors::save(&tensors, p).map_err(|e| e.to_string())
    })?;
    save_tokenizer(dir, tokenizer)
}

/// Saves weights held as plain values (a pruned model) in the same layout as [`save`].
pub fn save_map(
    dir: &Path,
    config: &BertConfig,
    map: &crate::quant::weights::TensorMap,
    tokenizer: &Tokenizer,
) -> Result<(), CheckpointError> {
    save_config(dir, config)?;
    let weights = dir.join(WEIGHTS);
    map.write(&weights, Some(("format", "pt")))
        .map_err(|e| CheckpointError::new(&weights, e))?;
    save_tokenizer(dir, tokenizer)
}

fn save_config(dir: &Path, config: &BertConfig) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CheckpointError::new(dir, format!("cannot create it: {e}")))?;
    let json = serde_json::to_string_pretty(config)
        .map_err(|e| CheckpointError::new(&dir.join(CONFIG), e.to_string()))?;
    write_atomically(&dir.join(CONFIG), |p| {
        let mut f = std::fs::File::create(p).map_err(|e| e.to_string())?;
        f.write_all(json.as_bytes()).map_err(|e| e.to_string())?;
        f.write_all(b"\n").map_err(|e| e.to_string())?;
        f.sync_all().map_err(|e| e.to_string())
    })
}

fn save_tokenizer(dir: &Path, tokenizer: &Tokenizer) -> Result<(), CheckpointError> {
    write_atomically(&dir.join(TOKENIZER), |p| {
        tokenizer.save(p, false).map_err(|e| e.to_string())
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::model::{HeadSpec, PairBatch, PairEncoder, Pass};
    use tokenizers::models::wordpiece::WordPiece;

    fn tiny() -> BertConfig {
        BertConfig::new(40, 16, 2, 2, 32, 24)
    }

    fn tokenizer(words: usize) -> Tokenizer {
        let dir = tempfile::tempdir().unwrap();
        let vocab = dir.path().join("vocab.txt");
        let mut lines: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
            .map(String::from)
            .to_vec();
        lines.extend((0..words).map(|i| format!("w{i}")));
        std::fs::write(&vocab, lines.join("\n") + "\n").unwrap();
        let model = WordPiece::from_file(vocab.to_str().unwrap())
            .unk_token("[UNK]".into())
            .build()
            .unwrap();
        Tokenizer::new(model)
    }

    fn saved(dir: &Path) -> (Params, PairEncoder) {
        let params = Params::seeded(5);
        let spec = HeadSpec {
            scores: vec!["overall".into()],
            ..HeadSpec::default()
        };
        let model =
            PairEncoder::new(&tiny(), 0, &spec, params.builder(DType::F32, &Device::Cpu)).unwrap();
        save(dir, &tiny(), &params, &tokenizer(30)).unwrap();
        (params, model)
    }

    #[test]
    fn a_saved_model_loads_with_the_same_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let (_, model) = saved(dir.path());
        let loaded = load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(loaded.config, tiny());
        let params = Params::starting_from(77, loaded.tensors);
        let spec = model.spec().clone();
        let again = PairEncoder::new(
            &loaded.config,
            0,
            &spec,
            params.builder(DType::F32, &Device::Cpu),
        )
        .unwrap();
        let ids = Tensor::new(&[[2u32, 5, 6, 3, 7, 3]], &Device::Cpu).unwrap();
        let batch = PairBatch {
            types: ids.zeros_like().unwrap(),
            mask: ids.ones_like().unwrap(),
            ids,
            features: None,
        };
        let a = model
            .forward(&batch, &mut Pass::Eval)
            .unwrap()
            .score_logits
            .unwrap();
        let b = again
            .forward(&batch, &mut Pass::Eval)
            .unwrap()
            .score_logits
            .unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
        assert_eq!(loaded.tokenizer.get_vocab_size(true), 34);
        // No temporary file is left.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    fn error(dir: &Path) -> String {
        load(dir, &Device::Cpu).err().expect("an error").to_string()
    }

    /// The error of loading `dir` with `config` written as its `config.json`.
    fn error_with(dir: &Path, config: &str) -> String {
        std::fs::write(dir.join(CONFIG), config).unwrap();
        error(dir)
    }

    #[test]
    fn a_truncated_weights_file_names_the_file_and_the_tensor() {
        let dir = tempfile::tempdir().unwrap();
        saved(dir.path());
        let path = dir.path().join(WEIGHTS);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("model.safetensors")
                && err.contains("tensor `")
                && err.contains("truncated"),
            "{err}"
        );
        std::fs::write(&path, &bytes[..20]).unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("model.safetensors") && err.contains("header claims"),
            "{err}"
        );
        std::fs::write(&path, b"").unwrap();
        assert!(error(dir.path()).contains("too short"));
    }

    #[test]
    fn a_header_claiming_a_huge_tensor_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        saved(dir.path());
        let header = br#"{"embeddings.word_embeddings.weight":{"dtype":"F32","shape":[4000000000,4000000000],"data_offsets":[0,64]}}"#;
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        file.extend_from_slice(&[0u8; 64]);
        std::fs::write(dir.path().join(WEIGHTS), file).unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("embeddings.word_embeddings.weight") && err.contains("does not fit"),
            "{err}"
        );
    }

    #[test]
    fn a_checkpoint_of_another_shape_names_the_tensor_that_differs() {
        let dir = tempfile::tempdir().unwrap();
        saved(dir.path());
        let mut other = tiny();
        other.intermediate_size = 48;
        let err = error_with(dir.path(), &serde_json::to_string(&other).unwrap());
        assert!(
            err.contains("encoder.layer.0.intermediate.dense.bias") && err.contains("[48]"),
            "{err}"
        );
        other = tiny();
        other.num_hidden_layers = 3;
        let err = error_with(dir.path(), &serde_json::to_string(&other).unwrap());
        assert!(
            err.contains("encoder.layer.2.") && err.contains("missing"),
            "{err}"
        );
        let err = error_with(dir.path(), r#"{"vocab_size": 40, "hidden_size": 16}"#);
        assert!(
            err.contains("config.json") && err.contains("num_hidden_layers"),
            "{err}"
        );
        other = tiny();
        other.num_attention_heads = 5;
        assert!(
            error_with(dir.path(), &serde_json::to_string(&other).unwrap())
                .contains("not a multiple")
        );
    }

    #[test]
    fn a_tokenizer_that_does_not_fit_the_encoder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        saved(dir.path());
        tokenizer(100)
            .save(dir.path().join(TOKENIZER), false)
            .unwrap();
        let err = error(dir.path());
        assert!(
            err.contains("tokenizer.json") && err.contains("104 tokens") && err.contains("40"),
            "{err}"
        );
        std::fs::write(dir.path().join(TOKENIZER), "{").unwrap();
        assert!(error(dir.path()).contains("not a tokenizer"));
    }
}
