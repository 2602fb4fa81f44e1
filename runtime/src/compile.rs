//! Compiling a policy file: check it with its project's modules, lower it, and write the three
//! artefacts (labeling program, loss terms, training plan) and the source map, as JSON with sorted
//! keys so that a diff of two compilations is the review of a policy edit.

use crate::project::check_file;
use rubric_compiler::lower::{Lowered, lower};
use rubric_compiler::{Checked, Options};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// File names of the artefacts in an output directory.
pub const LABELING_FILE: &str = "labeling_program.json";
pub const LOSS_TERMS_FILE: &str = "loss_terms.json";
pub const TRAINING_PLAN_FILE: &str = "training_plan.json";
pub const SOURCE_MAP_FILE: &str = "source_map.json";

#[derive(Debug)]
pub enum CompileError {
    Io(io::Error),
    /// The policy has errors; the diagnostics are in the check.
    Invalid(Box<Checked>),
    /// The file holds no policy.
    NoPolicy(Box<Checked>),
    /// A bug in rubric's lowering (it names what it met).
    Internal(String),
}

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileError::Io(e) => write!(f, "{e}"),
            CompileError::Invalid(c) => write!(f, "the policy has {} error(s)", c.error_count()),
            CompileError::NoPolicy(_) => write!(f, "the file holds no policy"),
            CompileError::Internal(what) => write!(
                f,
                "internal error in rubric's lowering: {what}; please report it with the policy"
            ),
        }
    }
}

impl std::error::Error for CompileError {}

/// A checked and lowered policy.
#[derive(Debug)]
pub struct Compiled {
    pub checked: Checked,
    pub lowered: Lowered,
}

/// The SHA-256 (hex) of a policy's canonical form: its meaning without layout, comments or
/// docs, so formatting-only edits change nothing downstream. A pipeline in the same file is not
/// part of the policy (the training plan has its own hash): editing how models train does not
/// make the rubric's labels, or anything made from them alone, a new version.
pub fn policy_hash(checked: &Checked) -> String {
    // A pipeline in its own file: the policy's file beside it.
    let canonical = checked
        .policy_file
        .as_ref()
        .or(checked.tree.as_ref())
        .map(|tree| {
            let mut policy = tree.clone();
            policy
                .items
                .retain(|i| !matches!(i, rubric_compiler::syntax::ast::TopItem::Pipeline(_)));
            rubric_compiler::format::canonical(&policy)
        })
        .unwrap_or_default();
    sha256_hex(canonical.as_bytes())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks and lowers a policy file.
pub fn compile_file(path: &Path, options: &Options) -> Result<Compiled, CompileError> {
    let checked = check_file(path, options).map_err(CompileError::Io)?;
    compile_checked(checked)
}

/// Lowers an already checked policy.
pub fn compile_checked(checked: Checked) -> Result<Compiled, CompileError> {
    if checked.has_errors() {
        return Err(CompileError::Invalid(Box::new(checked)));
    }
    let hash = policy_hash(&checked);
    match lower(&checked, hash) {
        Ok(lowered) => Ok(Compiled { checked, lowered }),
        Err(rubric_compiler::lower::LowerError::NotChecked) => {
            Err(CompileError::Invalid(Box::new(checked)))
        }
        Err(rubric_compiler::lower::LowerError::NoPolicy) => {
            Err(CompileError::NoPolicy(Box::new(checked)))
        }
        Err(rubric_compiler::lower::LowerError::Internal(what)) => {
            Err(CompileError::Internal(what))
        }
    }
}

/// Deterministic JSON: keys sorted, two-space indentation, shortest round-trip floats, a final
/// newline.
pub fn deterministic_json<T: Serialize>(value: &T) -> String {
    // serde_json's `Value` keeps object keys in a BTreeMap: serializing through it sorts them.
    let value = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Writes the artefacts into `dir` (created if needed); returns the files written.
pub fn write_artefacts(lowered: &Lowered, dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    let mut write = |name: &str, text: String| -> io::Result<()> {
        let path = dir.join(name);
        crate::atomic::write(&path, text.as_bytes())?;
        written.push(path);
        Ok(())
    };
    write(LABELING_FILE, deterministic_json(&lowered.labeling))?;
    if let Some(terms) = &lowered.loss_terms {
        write(LOSS_TERMS_FILE, deterministic_json(terms))?;
    }
    if let Some(plan) = &lowered.training_plan {
        write(TRAINING_PLAN_FILE, deterministic_json(plan))?;
    }
    write(SOURCE_MAP_FILE, deterministic_json(&lowered.source_map))?;
    Ok(written)
}

/// Why `rubric compile`'s artefacts could not be read back.
#[derive(Debug)]
pub struct ReadError {
    pub path: PathBuf,
    pub cause: String,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}`: {}", self.path.display(), self.cause)
    }
}

impl std::error::Error for ReadError {}

/// Reads the training plan and loss terms `rubric compile` wrote into `dir`, checking each
/// one's schema version: what a stage run from compiled artefacts trusts.
pub fn read_pipeline_artefacts(
    dir: &Path,
) -> Result<
    (
        rubric_compiler::lower::plan::TrainingPlan,
        rubric_compiler::lower::plan::LossTerms,
    ),
    ReadError,
> {
    use rubric_compiler::lower::plan::{LossTerms, TrainingPlan};
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read_to_string(&path)
            .map_err(|e| ReadError {
                path: path.clone(),
                cause: e.to_string(),
            })
            .map(|text| (path, text))
    };
    let (path, text) = read(TRAINING_PLAN_FILE)?;
    let plan = TrainingPlan::from_json(&text).map_err(|e| ReadError {
        path,
        cause: e.to_string(),
    })?;
    let (path, text) = read(LOSS_TERMS_FILE)?;
    let terms = LossTerms::from_json(&text).map_err(|e| ReadError {
        path,
        cause: e.to_string(),
    })?;
    Ok((plan, terms))
}
