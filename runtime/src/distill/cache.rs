//! The teachers' outputs on the distillation rows, computed once: each teacher scores the
//! training and validation rows, and its logits are kept in the run's cache under the hash of
//! its checkpoint and of the rows, so a student re-run (another student, another weight, an
//! ablation) reads them instead of running a teacher again.

use crate::teach::task::Logits;
use candle_core::{Device, Tensor};
use rubric_ml::model::HeadSpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The cache's format: part of every file's name, so a change of layout is a miss.
pub const CACHE_VERSION: &str = "v1";

/// A teacher's outputs on the distillation rows, and what it is.
#[derive(Clone, Debug)]
pub struct TeacherOutputs {
    pub teacher: String,
    pub heads: HeadSpec,
    pub train: Logits,
    pub validation: Logits,
    /// The cache file they are kept in, and whether they were read from it.
    pub file: PathBuf,
    pub hit: bool,
}

impl TeacherOutputs {
    /// The outputs on the validation rows, or on the training rows.
    pub fn split(&self, validation: bool) -> &Logits {
        if validation {
            &self.validation
        } else {
            &self.train
        }
    }
}

/// The cache file of a teacher's outputs: its name, its checkpoint's hash, the rows' hash.
pub fn file(dir: &Path, teacher: &str, checkpoint: &str, rows: &str) -> PathBuf {
    let short = |h: &str| h.chars().take(16).collect::<String>();
    dir.join(format!(
        "{teacher}-{}-{}.{CACHE_VERSION}.safetensors",
        short(checkpoint),
        short(rows)
    ))
}

fn tensors(prefix: &str, l: &Logits, out: &mut HashMap<String, Tensor>) -> candle_core::Result<()> {
    let cpu = Device::Cpu;
    if l.score_width > 0 {
        out.insert(
            format!("{prefix}.scores"),
            Tensor::from_slice(&l.scores, (l.rows, l.score_width), &cpu)?,
        );
    }
    if l.grade_width > 0 {
        out.insert(
            format!("{prefix}.grades"),
            Tensor::from_slice(&l.grades, (l.rows, l.grade_width), &cpu)?,
        );
    }
    if !l.click.is_empty() {
        out.insert(
            format!("{prefix}.click"),
            Tensor::from_slice(&l.click, l.rows, &cpu)?,
        );
    }
    Ok(())
}

/// Writes the two splits' logits (to a temporary file, then renamed: a killed run leaves no
/// half file).
pub fn save(path: &Path, train: &Logits, validation: &Logits) -> Result<(), String> {
    let mut all = HashMap::new();
    tensors("train", train, &mut all)
        .and_then(|()| tensors("validation", validation, &mut all))
        .map_err(|e| e.to_string())?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create `{}`: {e}", parent.display()))?;
    }
    let partial = path.with_extension("partial");
    candle_core::safetensors::save(&all, &partial)
        .map_err(|e| format!("cannot write `{}`: {e}", partial.display()))?;
    std::fs::rename(&partial, path)
        .map_err(|e| format!("cannot move `{}` into place: {e}", partial.display()))
}

fn split(
    all: &HashMap<String, Tensor>,
    prefix: &str,
    rows: usize,
    heads: &HeadSpec,
) -> Option<Logits> {
    let read = |name: &str, width: usize| -> Option<Vec<f32>> {
        let t = all.get(&format!("{prefix}.{name}"))?;
        let dims = t.dims();
        let fits = if width == 0 {
            dims == [rows]
        } else {
            dims == [rows, width]
        };
        if !fits {
            return None;
        }
        t.flatten_all().ok()?.to_vec1::<f32>().ok()
    };
    let (s, g) = (heads.scores.len(), heads.grades.len());
    Some(Logits {
        rows,
        score_width: s,
        scores: if s > 0 {
            read("scores", s)?
        } else {
            Vec::new()
        },
        grade_width: g,
        grades: if g > 0 {
            read("grades", g)?
        } else {
            Vec::new()
        },
        click: if heads.click {
            read("click", 0)?
        } else {
            Vec::new()
        },
    })
}

/// The cached logits of `path`, when it holds outputs of these heads on so many rows; `None`
/// (a miss: the teacher scores again) for a missing, unreadable or mismatched file.
pub fn load(
    path: &Path,
    heads: &HeadSpec,
    train_rows: usize,
    validation_rows: usize,
) -> Option<(Logits, Logits)> {
    let all = candle_core::safetensors::load(path, &Device::Cpu).ok()?;
    Some((
        split(&all, "train", train_rows, heads)?,
        split(&all, "validation", validation_rows, heads)?,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn logits_come_back_as_written_and_a_mismatch_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let heads = HeadSpec {
            scores: vec!["a".into(), "overall".into()],
            grades: vec!["good".into(), "bad".into(), "poor".into()],
            click: true,
        };
        let logits = |rows: usize, at: f32| Logits {
            rows,
            score_width: 2,
            scores: (0..rows * 2).map(|i| at + i as f32).collect(),
            grade_width: 3,
            grades: (0..rows * 3).map(|i| at - i as f32).collect(),
            click: (0..rows).map(|i| at * i as f32).collect(),
        };
        let (train, validation) = (logits(5, 0.5), logits(2, -1.0));
        let path = file(
            dir.path(),
            "policy",
            "ab".repeat(32).as_str(),
            "cd".repeat(32).as_str(),
        );
        save(&path, &train, &validation).unwrap();
        let (t, v) = load(&path, &heads, 5, 2).unwrap();
        assert_eq!((t, v), (train, validation));
        // Another number of rows, or other heads: scored again.
        assert!(load(&path, &heads, 6, 2).is_none());
        let other = HeadSpec {
            scores: vec!["a".into()],
            ..heads.clone()
        };
        assert!(load(&path, &other, 5, 2).is_none());
        assert!(load(&dir.path().join("absent"), &heads, 5, 2).is_none());
    }
}
