//! Fuzz targets for the formatter, the labeling engine and the click cleaner (the parser and
//! the checker have theirs in `tests/robustness.rs`, the language server in `lsp/tests/fuzz.rs`).
//! Each starts from the seed corpus in `tests/fuzz/` and the shipped policies, mutates it and
//! generates inputs of its own, and checks what must hold for every input: no panic, and the
//! target's own invariants (a formatted file formats to itself; rows in = labeled + quarantined;
//! rows in = kept + dropped + quarantined). CI runs a bounded number of cases from fixed seeds;
//! `RUBRIC_FUZZ_SECONDS=N` runs a target for N seconds from fresh seeds (`tests/support/fuzzing.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/fuzzing.rs"]
mod fuzzing;

use fuzzing::{fail, fuzz};
use proptest::prelude::*;
use proptest::sample::Index;
use rubric_compiler::Options;
use rubric_compiler::format::format_source;
use rubric_compiler::lower::plan::TrainingPlan;
use rubric_runtime::compile::compile_file;
use rubric_runtime::data::clean::{CleanOptions, CleanOutputs, clean};
use rubric_runtime::label::engine::Engine;
use rubric_runtime::label::{LabelOptions, label_stream};
use rubric_runtime::random_pairs::PairGenerator;
use serde_json::Value;
use std::io::{BufRead, Cursor};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Mutations shared by the targets

/// One edit of a byte string; positions are indexes into its current length.
#[derive(Clone, Debug)]
enum Edit {
    /// Delete up to `len` bytes.
    Delete(Index, u8),
    /// Insert a tricky piece of text.
    Insert(Index, Index),
    /// Copy a range of up to `len` bytes to another place.
    Splice(Index, Index, u16),
    /// Replace one byte.
    Byte(Index, u8),
    /// Cut the text here.
    Truncate(Index),
}

/// Pieces that break parsers: brackets, quotes, escapes, numbers at the edges of floats,
/// keywords, non-ASCII letters, control bytes, a byte-order mark.
const TRICKY: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\"",
    "\\",
    "\\u",
    "\\ud800",
    ",",
    ":",
    "\n",
    "\r\n",
    "\t",
    " ",
    "//",
    "///",
    "/*",
    "%",
    "1e308",
    "-1e308",
    "1e-320",
    "0.000000001",
    "99999999999999999999",
    "-0",
    "NaN",
    "Infinity",
    "null",
    "true",
    "false",
    "[]",
    "{}",
    "\"\"",
    "policy",
    "dimension",
    "weight",
    "score",
    "=",
    "when",
    "otherwise",
    "abstain",
    "rule",
    "grade",
    "entity",
    "pair",
    "example",
    "pipeline",
    "match",
    "=>",
    "??",
    "and",
    "or",
    "not",
    "query.",
    "candidate.",
    "größe",
    "🚀",
    "\u{feff}",
    "\u{0}",
    "\u{7f}",
    "\u{2028}",
    "é",
];

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(i, n)| Edit::Delete(i, n)),
        (any::<Index>(), any::<Index>()).prop_map(|(i, t)| Edit::Insert(i, t)),
        (any::<Index>(), any::<Index>(), any::<u16>()).prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Byte(i, b)),
        any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, edit: &Edit) {
    let at = |i: &Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    match edit {
        Edit::Delete(i, n) => {
            let start = at(i, bytes.len());
            let end = (start + usize::from(*n)).min(bytes.len());
            bytes.drain(start..end);
        }
        Edit::Insert(i, t) => {
            let start = at(i, bytes.len());
            let piece = TRICKY[t.index(TRICKY.len())].as_bytes();
            bytes.splice(start..start, piece.iter().copied());
        }
        Edit::Splice(from, to, n) => {
            let start = at(from, bytes.len());
            let end = (start + usize::from(*n)).min(bytes.len());
            let piece: Vec<u8> = bytes[start..end].to_vec();
            let to = at(to, bytes.len());
            bytes.splice(to..to, piece);
        }
        Edit::Byte(i, b) => {
            if !bytes.is_empty() {
                let i = i.index(bytes.len());
                bytes[i] = *b;
            }
        }
        Edit::Truncate(i) => {
            let cut = at(i, bytes.len());
            bytes.truncate(cut);
        }
    }
}

fn mutate(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for e in edits {
        apply(&mut bytes, e);
    }
    bytes
}

/// Any JSON value, biased toward the edges: huge and tiny numbers, long and odd strings,
/// nesting.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(f64::MAX),
            Just(-f64::MAX),
            Just(f64::MIN_POSITIVE),
            Just(5e-324),
            Just(-0.0),
            any::<f64>().prop_filter("finite", |x| x.is_finite()),
            -2.0f64..2.0,
        ]
        .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Index::arbitrary().prop_map(|i| Value::from(TRICKY[i.index(TRICKY.len())])),
        (0usize..70_000).prop_map(|n| Value::from("x".repeat(n))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Sets one field of a JSON object (one of its own, or `new`) to `value`, or removes it.
fn set_field(record: &mut Value, field: &Index, new: &str, value: Option<&Value>) {
    let Some(record) = record.as_object_mut() else {
        return;
    };
    let mut names: Vec<String> = record.keys().cloned().collect();
    names.push(new.to_string());
    let name = names[field.index(names.len())].clone();
    match value {
        Some(v) => {
            record.insert(name, v.clone());
        }
        None => {
            record.remove(&name);
        }
    }
}

fn lines(text: &str) -> usize {
    text.lines().count()
}

// ---------------------------------------------------------------------------------------------
// The formatter

fn policy_files() -> &'static [(PathBuf, String)] {
    static FILES: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files = Vec::new();
        for dir in ["policies", "stdlib/std", "tests/corpus"] {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "policy"))
                .collect();
            paths.sort();
            for p in paths {
                let bytes = std::fs::read(&p).unwrap();
                files.push((p, String::from_utf8_lossy(&bytes).into_owned()));
            }
        }
        files
    })
}

/// Any text the formatter is given: a policy of the corpus with a few edits. When the result
/// parses, formatting it gives text that parses again and formats to itself.
#[test]
fn fuzz_formatter() {
    let files = policy_files();
    assert!(files.len() > 50, "the seed policies are missing");
    let strategy = (any::<Index>(), prop::collection::vec(edit(), 0..4));
    fuzz("formatter", 96, strategy, |(file, edits)| {
        let (path, text) = &files[file.index(files.len())];
        let mutant = String::from_utf8_lossy(&mutate(text.as_bytes(), &edits)).into_owned();
        let Some(formatted) = format_source(&mutant) else {
            return Ok(());
        };
        match format_source(&formatted) {
            Some(again) if again == formatted => Ok(()),
            Some(again) => Err(fail(format!(
                "{}: formatting is not idempotent\n--- mutant\n{mutant}\n--- formatted\n{formatted}\n--- again\n{again}",
                path.display()
            ))),
            None => Err(fail(format!(
                "{}: the formatted text does not parse\n--- mutant\n{mutant}\n--- formatted\n{formatted}",
                path.display()
            ))),
        }
    });
}

// ---------------------------------------------------------------------------------------------
// The labeling engine

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let compiled = compile_file(Path::new("policies/job_match.policy"), &Options::default())
            .expect("compiles");
        Engine::new(compiled.lowered.labeling)
    })
}

/// One row of a pairs file.
#[derive(Clone, Debug)]
enum PairRow {
    /// A schema-valid pair from the generator.
    Valid(u64),
    /// A generated pair with one field (existing or not) set to any JSON value, or removed.
    Field(u64, bool, Index, Option<Value>),
    /// A golden pair of the seed corpus with byte-level edits.
    Mutated(Index, Vec<Edit>),
    /// Any bytes.
    Bytes(Vec<u8>),
}

fn pair_row() -> impl Strategy<Value = PairRow> {
    prop_oneof![
        3 => any::<u64>().prop_map(PairRow::Valid),
        3 => (any::<u64>(), any::<bool>(), any::<Index>(), prop::option::of(json_value()))
            .prop_map(|(s, q, f, v)| PairRow::Field(s, q, f, v)),
        3 => (any::<Index>(), prop::collection::vec(edit(), 1..4))
            .prop_map(|(i, e)| PairRow::Mutated(i, e)),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(PairRow::Bytes),
    ]
}

fn golden_seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        std::fs::read_to_string("tests/fuzz/pairs.jsonl")
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    })
}

fn pair_bytes(engine: &Engine, row: &PairRow) -> Vec<u8> {
    match row {
        PairRow::Valid(seed) => PairGenerator::new(&engine.program, *seed)
            .pair()
            .to_string()
            .into_bytes(),
        PairRow::Field(seed, query, field, value) => {
            let mut pair = PairGenerator::new(&engine.program, *seed).pair();
            let role = if *query { "query" } else { "candidate" };
            if let Some(record) = pair.get_mut(role) {
                set_field(record, field, "not_a_field", value.as_ref());
            }
            pair.to_string().into_bytes()
        }
        PairRow::Mutated(i, edits) => {
            let seeds = golden_seeds();
            mutate(seeds[i.index(seeds.len())].as_bytes(), edits)
        }
        PairRow::Bytes(b) => b.clone(),
    }
}

/// Any pairs file (valid rows, rows with any value in any field, mutated golden rows, random
/// bytes), in batches of any size and with a small row limit: labeling with a quarantine labels
/// or sets aside every row, and each label is one line of JSON; without one it labels or stops
/// at a bad row, never panics.
#[test]
fn fuzz_labeling_engine() {
    let engine = engine();
    let strategy = (
        prop::collection::vec(pair_row(), 1..24),
        1usize..40,
        prop_oneof![Just(16 * 1024 * 1024), 64usize..8192],
    );
    fuzz(
        "labeling",
        64,
        strategy,
        |(rows, batch_rows, max_row_bytes)| {
            let mut input = Vec::new();
            for row in &rows {
                input.extend(pair_bytes(engine, row));
                input.push(b'\n');
            }
            let options = LabelOptions {
                batch_rows,
                max_row_bytes,
                ..LabelOptions::default()
            };
            let (mut out, mut quarantine) = (Vec::new(), Vec::new());
            let summary = label_stream(
                engine,
                &mut Cursor::new(&input),
                &mut out,
                Some(&mut quarantine),
                options,
                &mut |_| {},
            )
            .map_err(|e| fail(format!("with a quarantine, labeling stopped: {e:?}")))?;
            if summary.rows != summary.labeled + summary.quarantined {
                return Err(fail(format!(
                    "rows in != labeled + quarantined: {summary:?}"
                )));
            }
            let (out, quarantine) = (
                String::from_utf8(out).unwrap(),
                String::from_utf8(quarantine).unwrap(),
            );
            if lines(&out) as u64 != summary.labeled
                || lines(&quarantine) as u64 != summary.quarantined
            {
                return Err(fail(format!(
                    "{} label lines and {} quarantine lines for {summary:?}",
                    lines(&out),
                    lines(&quarantine)
                )));
            }
            for line in out.lines().chain(quarantine.lines()) {
                serde_json::from_str::<Value>(line)
                    .map_err(|e| fail(format!("an output line is not JSON ({e}): {line}")))?;
            }
            // Without a quarantine: labels, or the first bad row's error.
            let _ = label_stream(
                engine,
                &mut Cursor::new(&input),
                &mut Vec::new(),
                None,
                options,
                &mut |_| {},
            );
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The click cleaner

fn plan() -> &'static TrainingPlan {
    static PLAN: OnceLock<TrainingPlan> = OnceLock::new();
    PLAN.get_or_init(|| {
        compile_file(
            Path::new("examples/job_match/job_match.policy"),
            &Options::default(),
        )
        .expect("compiles")
        .lowered
        .training_plan
        .expect("the example has a pipeline")
    })
}

fn click_seeds() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        std::fs::read_to_string("tests/fuzz/clicks.jsonl")
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    })
}

/// One row of a click log.
#[derive(Clone, Debug)]
enum ClickRow {
    /// A seed row as it is.
    Seed(Index),
    /// A seed row with one field (existing or not) set to any JSON value, or removed.
    Field(Index, Index, Option<Value>),
    /// A seed row with byte-level edits.
    Mutated(Index, Vec<Edit>),
    /// Any bytes.
    Bytes(Vec<u8>),
}

fn click_row() -> impl Strategy<Value = ClickRow> {
    prop_oneof![
        6 => any::<Index>().prop_map(ClickRow::Seed),
        3 => (any::<Index>(), any::<Index>(), prop::option::of(json_value()))
            .prop_map(|(r, f, v)| ClickRow::Field(r, f, v)),
        2 => (any::<Index>(), prop::collection::vec(edit(), 1..3))
            .prop_map(|(r, e)| ClickRow::Mutated(r, e)),
        1 => prop::collection::vec(any::<u8>(), 0..48).prop_map(ClickRow::Bytes),
    ]
}

fn click_bytes(row: &ClickRow) -> Vec<u8> {
    let seeds = click_seeds();
    match row {
        ClickRow::Seed(i) => seeds[i.index(seeds.len())].clone().into_bytes(),
        ClickRow::Field(i, field, value) => {
            let mut click: Value = serde_json::from_str(&seeds[i.index(seeds.len())]).unwrap();
            set_field(&mut click, field, "extra", value.as_ref());
            click.to_string().into_bytes()
        }
        ClickRow::Mutated(i, edits) => mutate(seeds[i.index(seeds.len())].as_bytes(), edits),
        ClickRow::Bytes(b) => b.clone(),
    }
}

/// Any click log (seed rows in any order and number, so sessions, duplicates, outliers and
/// out-of-order times arise; rows with any value in any field; mutated rows; random bytes):
/// cleaning with a quarantine accounts for every row (in = kept + dropped + quarantined) and
/// keeps one JSON line per kept row.
#[test]
fn fuzz_click_cleaner() {
    let plan = plan();
    let strategy = prop::collection::vec(click_row(), 0..80);
    fuzz("cleaner", 48, strategy, |rows| {
        let mut input = Vec::new();
        for row in &rows {
            input.extend(click_bytes(row));
            input.push(b'\n');
        }
        let open =
            || -> std::io::Result<Box<dyn BufRead>> { Ok(Box::new(Cursor::new(input.clone()))) };
        let (mut kept, mut quarantine, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
        let report = clean(
            plan,
            None,
            &open,
            &CleanOptions {
                known_pairs: None,
                quarantine: true,
            },
            CleanOutputs {
                kept: &mut kept,
                quarantine: Some(&mut quarantine),
                dropped: Some(&mut dropped),
            },
            &mut |_| {},
        )
        .map_err(|e| fail(format!("with a quarantine, cleaning stopped: {e}")))?;
        let r = &report.rows;
        if r.rows_in != r.kept + r.dropped + r.quarantined {
            return Err(fail(format!(
                "rows in != kept + dropped + quarantined: {r:?}"
            )));
        }
        let kept = String::from_utf8(kept).unwrap();
        if lines(&kept) as u64 != r.kept {
            return Err(fail(format!("{} kept lines for {r:?}", lines(&kept))));
        }
        for line in kept.lines() {
            serde_json::from_str::<Value>(line)
                .map_err(|e| fail(format!("a kept line is not JSON ({e}): {line}")))?;
        }
        serde_json::from_str::<Value>(&report.to_json())
            .map_err(|e| fail(format!("the report is not JSON: {e}")))?;
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Cases the targets found, kept as plain tests

/// `use s//td.text.{coverage}`: the module path took `//` in while the formatter read
/// `//td.text.{coverage}` as a comment, and printed it a second time on every run. A path now
/// stops where a comment starts, as everywhere else.
#[test]
fn a_comment_inside_a_module_path_is_a_comment() {
    let text = "policy p version 1 {\n  use s//td.text.{coverage}\n  entity A { x: number }\n}\n";
    assert_eq!(
        format_source(text),
        None,
        "it does not parse: `use s` has no `.{{`"
    );
    let text = "policy p version 1 {\n  use std.text.{coverage} // a comment\n  entity A { x: number }\n}\n";
    let formatted = format_source(text).unwrap();
    assert_eq!(
        format_source(&formatted).as_deref(),
        Some(formatted.as_str())
    );
}
