//! Streams JSON-lines pairs through one or more labeling engines for the analyses (`rubric stats`,
//! `rubric diff`): rows are read in batches and labeled in parallel with rayon, then handed to a
//! visitor one by one, in input order, so that what the visitor accumulates is deterministic and
//! memory does not grow with the input.

use crate::label::batch::PairBatch;
use crate::label::decode::{Decoder, RowError};
use crate::label::engine::{Ctx, Engine, Events, Label, Labels};
use crate::label::value::Interner;
use rayon::prelude::*;
use rubric_compiler::lower::ir::{LabelingProgram, RuleActionIr};
use serde::Serialize;
use std::io::{self, BufRead};

/// One pair labeled by one engine.
#[derive(Clone, Debug, PartialEq)]
pub struct Labeled {
    pub label: Label,
    /// Every rule whose condition held (by index), whether or not it took effect.
    pub fired: Vec<u32>,
}

/// One row of the input, labeled by each engine (in the order the engines were given).
#[derive(Clone, Debug)]
pub struct Row {
    /// One-based line number.
    pub line: u64,
    pub outcomes: Vec<Result<Labeled, RowError>>,
}

/// What a scan read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanSummary {
    /// Rows read (blank lines are not rows).
    pub rows: u64,
    pub blank: u64,
    /// Per engine: the runtime events of every pair it labeled.
    pub events: Vec<Events>,
}

/// Rows read and labeled together by default.
pub const DEFAULT_BATCH_ROWS: usize = 8192;

/// Reads every row of `input`, labels it with each engine and calls `visit` with the rows in
/// input order. A row an engine cannot decode is an `Err` in that engine's slot, not a stop.
pub fn scan(
    engines: &[&Engine],
    input: &mut dyn BufRead,
    batch_rows: usize,
    visit: &mut dyn FnMut(Row),
) -> io::Result<ScanSummary> {
    let batch_rows = batch_rows.max(1);
    let decoders: Vec<Decoder<'_>> = engines.iter().map(|e| Decoder::new(&e.program)).collect();
    let mut summary = ScanSummary {
        events: engines
            .iter()
            .map(|e| Events::new(e.program.dimensions.len()))
            .collect(),
        ..ScanSummary::default()
    };
    let mut line_no: u64 = 0;
    let mut batch: Vec<(u64, String)> = Vec::with_capacity(batch_rows);
    let mut buf = String::new();
    loop {
        batch.clear();
        while batch.len() < batch_rows {
            buf.clear();
            if input.read_line(&mut buf)? == 0 {
                break;
            }
            line_no += 1;
            let line = buf.trim_end_matches(['\n', '\r']);
            if line.trim().is_empty() {
                summary.blank += 1;
                continue;
            }
            batch.push((line_no, line.to_string()));
        }
        if batch.is_empty() {
            break;
        }
        let threads = rayon::current_num_threads().max(1);
        let chunk = batch.len().div_ceil(threads * 4).max(64);
        let results: Vec<(Vec<Row>, Vec<Events>)> = batch
            .par_chunks(chunk)
            .map(|rows| {
                let mut strings: Vec<Interner<'_>> =
                    engines.iter().map(|e| Interner::new(&e.strings)).collect();
                let mut events: Vec<Events> = engines
                    .iter()
                    .map(|e| Events::new(e.program.dimensions.len()))
                    .collect();
                let mut out: Vec<Row> = rows
                    .iter()
                    .map(|(no, _)| Row {
                        line: *no,
                        outcomes: Vec::with_capacity(engines.len()),
                    })
                    .collect();
                // Each engine decodes the slice's rows into one batch and labels it at once.
                for ((engine, decoder), (strings, events)) in engines
                    .iter()
                    .zip(&decoders)
                    .zip(strings.iter_mut().zip(events.iter_mut()))
                {
                    let mut batch = PairBatch::new(&engine.program);
                    let mut decoded: Vec<Result<(), RowError>> = Vec::with_capacity(rows.len());
                    for (no, line) in rows {
                        decoded.push(decoder.decode(*no, line, strings).map(|p| batch.push(&p)));
                    }
                    let (mut labels, mut fired) = (Labels::default(), Vec::new());
                    let mut ctx = Ctx::new(strings, events, None);
                    engine.label_batch_with_fired(&batch, &mut ctx, &mut labels, &mut fired);
                    let mut labeled = labels.iter().zip(fired);
                    for (row, d) in out.iter_mut().zip(decoded) {
                        let outcome = d.and_then(|()| match labeled.next() {
                            Some((label, fired)) => Ok(Labeled {
                                label: label.to_label(),
                                fired,
                            }),
                            None => Err(RowError {
                                line: row.line,
                                path: String::new(),
                                message: "the engine gave no label for this row".to_string(),
                            }),
                        });
                        row.outcomes.push(outcome);
                    }
                }
                (out, events)
            })
            .collect();
        for (rows, events) in results {
            for (total, e) in summary.events.iter_mut().zip(&events) {
                total.merge(e);
            }
            for row in rows {
                summary.rows += 1;
                visit(row);
            }
        }
    }
    Ok(summary)
}

/// The name of a label's overall grade: a band, the grade a rule set, or `excluded`.
pub fn overall_grade_name(program: &LabelingProgram, label: &Label) -> Option<String> {
    label.overall_grade?.name(program)
}

/// A rule's action in words: `cap 0.3`, `floor 0.65`, `exclude`, `set grade poor`.
pub fn action_text(action: &RuleActionIr) -> String {
    match action {
        RuleActionIr::Cap(c) => format!("cap {}", short(*c)),
        RuleActionIr::Floor(f) => format!("floor {}", short(*f)),
        RuleActionIr::Exclude => "exclude".to_string(),
        RuleActionIr::SetGrade(g) => format!("set grade {g}"),
    }
}

/// A number with at most four decimals and no trailing zeros: `0.3`, `0.6667`, `12`.
pub fn short(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// A share as a percent with one decimal; 0% of nothing.
pub fn percent(count: u64, of: u64) -> String {
    format!("{:.1}%", rate(count, of) * 100.0)
}

/// `1 pair`, `2 pairs`.
pub fn pairs(n: u64) -> String {
    if n == 1 {
        "1 pair".to_string()
    } else {
        format!("{n} pairs")
    }
}

/// `count / of`, 0 when `of` is 0.
pub fn rate(count: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        count as f64 / of as f64
    }
}

/// The policy a report is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicySummary {
    pub name: String,
    pub version: u64,
    pub hash: String,
}

impl PolicySummary {
    pub fn of(program: &LabelingProgram) -> Self {
        PolicySummary {
            name: program.policy.name.clone(),
            version: program.policy.version,
            hash: program.policy.hash.clone(),
        }
    }

    /// `` `job_match` version 1 (hash 0123456789ab) ``
    pub fn describe(&self) -> String {
        let hash: String = self.hash.chars().take(12).collect();
        format!("`{}` version {} (hash {hash})", self.name, self.version)
    }
}
