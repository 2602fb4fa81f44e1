//! A model's weights as plain values by name, f32 or int8, read from and written to
//! safetensors; and the int8 quantization of a model's weights: each linear layer's weight per
//! output channel (symmetric, scale = max |w| / 127), and the word embeddings per row.

use candle_core::Tensor;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The values of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    F32(Vec<f32>),
    I8(Vec<i8>),
}

/// One tensor: its shape and values (row-major).
#[derive(Clone, Debug, PartialEq)]
pub struct Stored {
    pub shape: Vec<usize>,
    pub values: Values,
}

impl Stored {
    pub fn f32(shape: Vec<usize>, values: Vec<f32>) -> Stored {
        Stored {
            shape,
            values: Values::F32(values),
        }
    }

    /// Bytes it takes in a safetensors file.
    pub fn bytes(&self) -> usize {
        match &self.values {
            Values::F32(v) => v.len() * 4,
            Values::I8(v) => v.len(),
        }
    }
}

/// A model's tensors by name, and the file they came from (for errors).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TensorMap {
    pub tensors: BTreeMap<String, Stored>,
    pub source: String,
}

/// The suffix of a quantized weight's int8 values; its scales are under [`SCALE`].
pub const QUANTIZED: &str = ".q";
/// The suffix of a quantized weight's scales, one per output channel (or embedding row).
pub const SCALE: &str = ".scale";

impl TensorMap {
    /// The tensors of a candle model (f32).
    pub fn from_candle(
        tensors: &HashMap<String, Tensor>,
        source: &str,
    ) -> Result<TensorMap, String> {
        let mut out = BTreeMap::new();
        for (name, t) in tensors {
            let values = t
                .to_dtype(candle_core::DType::F32)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(|e| format!("`{source}`, tensor `{name}`: {e}"))?;
            out.insert(name.clone(), Stored::f32(t.dims().to_vec(), values));
        }
        Ok(TensorMap {
            tensors: out,
            source: source.to_string(),
        })
    }

    /// Reads a safetensors file of f32 and int8 tensors. Each tensor's size is checked against
    /// the file before its values are copied.
    pub fn read(path: &Path) -> Result<TensorMap, String> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read `{shown}`: {e}"))?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| format!("`{shown}` is not a safetensors file: {e}"))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in file.tensors() {
            let shape = view.shape().to_vec();
            let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let data = view.data();
            let values = match (view.dtype(), count) {
                (Dtype::F32, Some(n)) if n.checked_mul(4) == Some(data.len()) => Values::F32(
                    data.chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                ),
                (Dtype::I8, Some(n)) if n == data.len() => {
                    Values::I8(data.iter().map(|&b| b as i8).collect())
                }
                (Dtype::F32 | Dtype::I8, _) => {
                    return Err(format!(
                        "`{shown}`, tensor `{name}`: its shape {shape:?} does not match its {} bytes",
                        data.len()
                    ));
                }
                (other, _) => {
                    return Err(format!(
                        "`{shown}`, tensor `{name}` is {other:?}; rubric reads F32 and I8 tensors"
                    ));
                }
            };
            tensors.insert(name, Stored { shape, values });
        }
        Ok(TensorMap {
            tensors,
            source: shown,
        })
    }

    /// Writes the tensors to `path` (atomically: a temporary file renamed), with one `metadata`
    /// entry in the file's header: the safetensors crate writes its header's metadata from a
    /// `HashMap`, so one entry is what keeps the same tensors the same bytes.
    pub fn write(&self, path: &Path, metadata: Option<(&str, &str)>) -> Result<(), String> {
        let shown = path.display().to_string();
        let raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let (dtype, bytes) = match &t.values {
                    Values::F32(v) => {
                        (Dtype::F32, v.iter().flat_map(|x| x.to_le_bytes()).collect())
                    }
                    Values::I8(v) => (Dtype::I8, v.iter().map(|&x| x as u8).collect()),
                };
                (name.clone(), dtype, t.shape.clone(), bytes)
            })
            .collect();
        let views = raw
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|v| (name.clone(), v))
                    .map_err(|e| format!("`{shown}`, tensor `{name}`: {e}"))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let metadata: Option<HashMap<String, String>> =
            metadata.map(|(k, v)| HashMap::from([(k.to_string(), v.to_string())]));
        let bytes = safetensors::serialize(views, metadata)
            .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| format!("cannot write in `{}`: {e}", dir.display()))?;
        std::io::Write::write_all(&mut tmp, &bytes)
            .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
        tmp.persist(path)
            .map_err(|e| format!("cannot write `{shown}`: {e}"))?;
        Ok(())
    }

    /// Bytes the tensors take.
    pub fn bytes(&self) -> usize {
        self.tensors.values().map(Stored::bytes).sum()
    }

    fn get(&self, name: &str) -> Result<&Stored, String> {
        self.tensors
            .get(name)
            .ok_or_else(|| format!("`{}` has no tensor `{name}`", self.source))
    }

    fn shaped(&self, name: &str, shape: &[usize]) -> Result<&Stored, String> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(format!(
                "`{}`, tensor `{name}` has shape {:?}; the model's configuration needs {shape:?}",
                self.source, t.shape
            ));
        }
        Ok(t)
    }

    /// The f32 values of `name`, which must have `shape`.
    pub fn f32(&self, name: &str, shape: &[usize]) -> Result<&[f32], String> {
        match &self.shaped(name, shape)?.values {
            Values::F32(v) => Ok(v),
            Values::I8(_) => Err(format!(
                "`{}`, tensor `{name}` is int8 where f32 is expected",
                self.source
            )),
        }
    }

    /// The int8 values of `name`, which must have `shape`.
    pub fn i8(&self, name: &str, shape: &[usize]) -> Result<&[i8], String> {
        match &self.shaped(name, shape)?.values {
            Values::I8(v) => Ok(v),
            Values::F32(_) => Err(format!(
                "`{}`, tensor `{name}` is f32 where int8 is expected",
                self.source
            )),
        }
    }

    /// Whether `name` was quantized (its int8 values are there).
    pub fn is_quantized(&self, name: &str) -> bool {
        self.tensors.contains_key(&format!("{name}{QUANTIZED}"))
    }

    /// Replaces the f32 matrix `name` ([rows, cols]) by its int8 values and one scale per row.
    pub fn quantize_rows(&mut self, name: &str) -> Result<(), String> {
        let t = self.get(name)?;
        let (Values::F32(values), [rows, cols]) = (&t.values, t.shape.as_slice()) else {
            return Err(format!(
                "`{}`, tensor `{name}` is not an f32 matrix",
                self.source
            ));
        };
        let (rows, cols) = (*rows, *cols);
        let (q, scales) = quantize_rows(values, rows, cols);
        self.tensors.remove(name);
        self.tensors.insert(
            format!("{name}{QUANTIZED}"),
            Stored {
                shape: vec![rows, cols],
                values: Values::I8(q),
            },
        );
        self.tensors
            .insert(format!("{name}{SCALE}"), Stored::f32(vec![rows], scales));
        Ok(())
    }
}

/// Symmetric int8 values of each row of a `[rows, cols]` matrix, with each row's scale
/// (max |w| / 127; 1 for a row of zeros): w ≈ q · scale.
pub fn quantize_rows(values: &[f32], rows: usize, cols: usize) -> (Vec<i8>, Vec<f32>) {
    let mut q = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows);
    for row in values.chunks(cols.max(1)).take(rows) {
        let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = if max > 0.0 && max.is_finite() {
            max / 127.0
        } else {
            1.0
        };
        let inv = 1.0 / scale;
        q.extend(
            row.iter()
                .map(|v| (v * inv).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (q, scales)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn rows_quantize_within_half_a_step_and_round_trip_through_a_file() {
        let values: Vec<f32> = (0..6 * 9)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let (q, scales) = quantize_rows(&values, 6, 9);
        for (r, row) in values.chunks(9).enumerate() {
            for (c, v) in row.iter().enumerate() {
                let back = f32::from(q[r * 9 + c]) * scales[r];
                assert!((back - v).abs() <= scales[r] / 2.0 + 1e-6, "{back} {v}");
            }
        }
        let mut map = TensorMap::default();
        map.tensors
            .insert("w".into(), Stored::f32(vec![6, 9], values.clone()));
        map.tensors
            .insert("b".into(), Stored::f32(vec![6], vec![0.5; 6]));
        map.quantize_rows("w").unwrap();
        assert!(map.is_quantized("w"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        map.write(&path, Some(("format", "test"))).unwrap();
        let back = TensorMap::read(&path).unwrap();
        assert_eq!(back.tensors, map.tensors);
        assert_eq!(back.i8("w.q", &[6, 9]).unwrap(), q.as_slice());
        let err = back.f32("b", &[7]).unwrap_err();
        assert!(err.contains("`b`") && err.contains("[7]"), "{err}");
        let err = back.f32("w.q", &[6, 9]).unwrap_err();
        assert!(err.contains("int8"), "{err}");
    }

    #[test]
    fn a_truncated_file_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let mut map = TensorMap::default();
        map.tensors
            .insert("w".into(), Stored::f32(vec![4, 4], vec![1.0; 16]));
        map.write(&path, None).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        let err = TensorMap::read(&path).unwrap_err();
        assert!(err.contains("m.safetensors"), "{err}");
    }
}
