//! A readable trace of one pair's labels: each dimension's score and grade with the branches
//! that decided it, the overall score, and every rule that fired with its reason, each pointing
//! at the policy's lines.

use crate::label::decode::{Decoder, RowError};
use crate::label::engine::{Ctx, Engine, Events, SCORE_DECIMALS};
use crate::label::value::Interner;
use rubric_compiler::lower::SourceMap;
use rubric_compiler::lower::ir::RuleActionIr;
use std::fmt::Write as _;

/// A score as the labels hold it: [`SCORE_DECIMALS`] decimals, trailing zeros off (fewer would
/// show `0.8` for a score of 0.79996 graded below `>= 0.8`).
fn show(v: Option<f64>) -> String {
    match v {
        Some(x) => {
            let s = format!("{x:.*}", SCORE_DECIMALS as usize);
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        None => "abstain".to_string(),
    }
}

/// Labels one pair (a JSON object) and explains the result.
pub fn trace_pair(
    engine: &Engine,
    source_map: &SourceMap,
    pair_json: &str,
) -> Result<String, RowError> {
    let program = &engine.program;
    let mut strings = Interner::new(&engine.strings);
    let pair = Decoder::new(program).decode(1, pair_json.trim(), &mut strings)?;
    let mut events = Events::new(program.dimensions.len());
    let mut hits = vec![false; program.clauses.len()];
    let label = {
        let mut ctx = Ctx::new(&mut strings, &mut events, Some(&mut hits));
        engine.label(&pair, &mut ctx)
    };
    let at = |path: &str| source_map.describe(path).unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "pair `{}` under policy `{}` version {}",
        label.id, program.policy.name, program.policy.version
    );
    let width = program
        .dimensions
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0);
    for (i, d) in program.dimensions.iter().enumerate() {
        let score = label.dimensions.get(i).copied().flatten();
        let grade = label
            .grades
            .get(i)
            .copied()
            .flatten()
            .and_then(|g| d.grades.get(g as usize))
            .map_or(String::new(), |b| b.name.clone());
        let _ = writeln!(
            out,
            "  {:<width$}  {:>8}  {:<10}  weight {:>5}%  {}",
            d.name,
            show(score),
            grade,
            show(Some(d.weight * 100.0)),
            at(&format!("dimensions[{i}]")),
        );
        if events.clamped.get(i).copied().unwrap_or(0) > 0 {
            let _ = writeln!(out, "      the score left [0, 1] and was clamped");
        }
        if events.undefined.get(i).copied().unwrap_or(0) > 0 {
            let _ = writeln!(out, "      a division by zero made it abstain");
        }
        let prefix = format!("dimensions[{i}].");
        for (c, clause) in program.clauses.iter().enumerate() {
            if hits.get(c).copied().unwrap_or(false) && clause.path.starts_with(&prefix) {
                let _ = writeln!(out, "      {}  {}", clause.label, at(&clause.path));
            }
        }
    }
    let grade = match label.overall_grade {
        Some(g) => g.name(program).unwrap_or_default(),
        None => "no grade".to_string(),
    };
    let _ = writeln!(out, "overall {} → {grade}", show(label.overall));
    if label.rules.is_empty() {
        let _ = writeln!(out, "no rule fired");
    }
    for r in &label.rules {
        if let Some(rule) = program.rules.get(*r as usize) {
            let action = match &rule.action {
                RuleActionIr::Cap(c) => format!("cap overall at {}", show(Some(*c))),
                RuleActionIr::Floor(f) => format!("floor overall at {}", show(Some(*f))),
                RuleActionIr::Exclude => "exclude".to_string(),
                RuleActionIr::SetGrade(g) => format!("set grade {g}"),
            };
            let _ = writeln!(
                out,
                "rule `{}` fired: {action}, because \"{}\"  {}",
                rule.name,
                rule.because,
                at(&format!("rules[{r}]"))
            );
        }
    }
    Ok(out)
}
