//! Pairs as the data stage handles them: JSON-lines reading with line numbers, labeling one pair
//! with the compiled program (its overall grade and the clauses it exercised), content keys.

use crate::compile::sha256_hex;
use crate::label::decode::{Decoder, RowError};
use crate::label::engine::{Ctx, Engine, Events, Label};
use crate::label::value::Interner;
use crate::label::{OVERALL_GRADE_KEY, label_json};
use serde_json::Value;
use std::fmt;
use std::io::{self, BufRead};
use std::path::{Path, PathBuf};

/// The grade name of a pair whose overall score abstained.
pub const ABSTAINED: &str = "abstained";

/// A bad pairs file: which file, which line, what.
#[derive(Debug)]
pub enum PairsError {
    Io { path: PathBuf, error: io::Error },
    Row { path: PathBuf, error: RowError },
}

impl fmt::Display for PairsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PairsError::Io { path, error } => write!(f, "`{}`: {error}", path.display()),
            PairsError::Row { path, error } => write!(f, "`{}`, {error}", path.display()),
        }
    }
}

impl std::error::Error for PairsError {}

/// One pair read from a file, with its one-based line.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRow {
    pub line: u64,
    pub value: Value,
}

impl PairRow {
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.value.get(name).and_then(Value::as_str)
    }
}

/// Reads a JSON-lines file of pairs: every row an object with a string `id`; blank lines skipped.
pub fn read_pairs(path: &Path) -> Result<Vec<PairRow>, PairsError> {
    let io_err = |error| PairsError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut rows = Vec::new();
    for (i, line) in io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io_err)?;
        let line_no = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row_err = |path_in_row: &str, message: String| PairsError::Row {
            path: path.to_path_buf(),
            error: RowError {
                line: line_no,
                path: path_in_row.to_string(),
                message,
            },
        };
        let value: Value =
            serde_json::from_str(&line).map_err(|e| row_err("", format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(row_err("", "expected an object".to_string()));
        }
        if value.get("id").and_then(Value::as_str).is_none() {
            return Err(row_err(
                "id",
                "missing: every pair needs a string `id`".to_string(),
            ));
        }
        rows.push(PairRow {
            line: line_no,
            value,
        });
    }
    Ok(rows)
}

/// What labeling one pair gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Labeled {
    pub label: Label,
    /// The overall grade's name: a band, a rule's grade, `excluded`, or `abstained`.
    pub grade: String,
    /// The label as the labels file writes it.
    pub json: Value,
}

/// Labels pairs one at a time with a compiled program, through the schema-checked decoder.
pub struct PairLabeler<'e> {
    engine: &'e Engine,
    decoder: Decoder<'e>,
    strings: Interner<'e>,
    events: Events,
    labeled: u64,
}

impl<'e> PairLabeler<'e> {
    pub fn new(engine: &'e Engine) -> Self {
        PairLabeler {
            engine,
            decoder: Decoder::new(&engine.program),
            strings: Interner::new(&engine.strings),
            events: Events::new(engine.program.dimensions.len()),
            labeled: 0,
        }
    }

    pub fn engine(&self) -> &'e Engine {
        self.engine
    }

    /// Labels a pair; `hits`, when given, gets every clause the pair exercised.
    pub fn label(
        &mut self,
        line: u64,
        pair: &Value,
        hits: Option<&mut Vec<bool>>,
    ) -> Result<Labeled, RowError> {
        self.labeled += 1;
        if self.labeled.is_multiple_of(65536) {
            self.strings.clear();
        }
        let text = pair.to_string();
        let decoded = self.decoder.decode(line, &text, &mut self.strings)?;
        let label = {
            let mut ctx = Ctx::new(&mut self.strings, &mut self.events, hits);
            self.engine.label(&decoded, &mut ctx)
        };
        let json = label_json(self.engine, &label);
        let grade = json
            .get(OVERALL_GRADE_KEY)
            .and_then(Value::as_str)
            .unwrap_or(ABSTAINED)
            .to_string();
        Ok(Labeled { label, grade, json })
    }

    /// A fresh, all-false clause-hit vector for this program.
    pub fn no_hits(&self) -> Vec<bool> {
        vec![false; self.engine.program.clauses.len()]
    }
}

/// Every overall grade a pair can get, in the policy's order: the bands, grades set by rules,
/// `excluded` when a rule excludes, then `abstained`.
pub fn grade_names(engine: &Engine) -> Vec<String> {
    use rubric_compiler::lower::ir::RuleActionIr;
    let p = &engine.program;
    let mut names: Vec<String> = p.overall.grades.iter().map(|b| b.name.clone()).collect();
    for r in &p.rules {
        let extra = match &r.action {
            RuleActionIr::SetGrade(g) => Some(g.clone()),
            RuleActionIr::Exclude => Some(p.overall.excluded_grade.clone()),
            _ => None,
        };
        if let Some(g) = extra.filter(|g| !names.contains(g)) {
            names.push(g);
        }
    }
    names.push(ABSTAINED.to_string());
    names
}

/// The content key of a pair: the SHA-256 of its query and candidate records (keys sorted), so
/// the same two records under different ids are the same pair.
pub fn content_key(engine: &Engine, pair: &Value) -> String {
    let mut text = String::new();
    for role in &engine.program.roles {
        let record = pair.get(&role.name).cloned().unwrap_or(Value::Null);
        // `Value` keeps object keys sorted: the text is canonical.
        text.push_str(&record.to_string());
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}
