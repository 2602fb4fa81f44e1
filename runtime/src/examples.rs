//! The policy's inline examples: each is turned into a pair, labeled by the engine, and its
//! expectations are compared with the labels. Also clause coverage: which grade bands, `match`
//! arms, `when` and `if` branches and rules the examples (and a dataset) exercised.

use crate::label::decode::Pair;
use crate::label::engine::{Ctx, Engine, Events, Label, SCORE_DECIMALS, round_score};
use crate::label::value::{Interner, Kind, Val, to_set};
use rubric_compiler::lower::SourceMap;
use rubric_compiler::lower::ir::{ClauseKind, LabelingProgram, ValueType};
use rubric_compiler::syntax::ast::{
    CompareOp, ExampleDecl, Expectation, Item, Literal, LiteralKind,
};
use rubric_compiler::{Checked, Span};
use std::fmt::Write as _;

/// The result of one example.
#[derive(Clone, Debug, PartialEq)]
pub struct ExampleResult {
    pub name: String,
    /// One-based line of the example in the policy.
    pub line: usize,
    /// Expectations that did not hold.
    pub failures: Vec<Failure>,
    pub expectations: usize,
    pub label: Label,
}

/// An expectation that did not hold: where its `expect` is, and why, as a readable sentence.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// One-based line of the `expect` in the policy.
    pub line: usize,
    pub reason: String,
}

impl ExampleResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Builds the pair an example describes. Omitted text fields are empty, omitted optionals
/// missing (the checker has made sure nothing else is omitted).
pub fn example_pair(
    program: &LabelingProgram,
    example: &ExampleDecl,
    strings: &mut Interner<'_>,
) -> Pair {
    let mut roles = Vec::new();
    for role in &program.roles {
        let record = example.records.iter().find(|r| r.role.name == role.name);
        let fields = program
            .entities
            .get(role.entity as usize)
            .map(|e| e.fields.as_slice())
            .unwrap_or_default();
        let values = fields
            .iter()
            .map(|f| {
                let given = record.and_then(|r| r.fields.iter().find(|x| x.name.name == f.name));
                match given {
                    Some(x) => literal_value(program, &x.value, &f.ty, strings),
                    None if f.optional => Val::Missing,
                    None => Val::Text,
                }
            })
            .collect();
        roles.push(values);
    }
    Pair {
        id: example.name.clone(),
        roles,
    }
}

fn literal_value(
    program: &LabelingProgram,
    lit: &Literal,
    ty: &ValueType,
    strings: &mut Interner<'_>,
) -> Val<'static> {
    match (&lit.kind, ty) {
        (LiteralKind::Number(n) | LiteralKind::Percent(n), _) => Val::Num(*n),
        (LiteralKind::Bool(b), _) => Val::Bool(*b),
        (LiteralKind::String(_), ValueType::Text) => Val::Text,
        (LiteralKind::String(s), _) => Val::Str(strings.intern(s)),
        (LiteralKind::Name(names), ValueType::Enum { index }) => {
            let value = names.last().map(|n| n.name.as_str()).unwrap_or_default();
            let position = program
                .enums
                .get(*index as usize)
                .and_then(|e| e.values.iter().position(|v| v == value))
                .and_then(|p| u32::try_from(p).ok());
            position.map_or(Val::Abstain, Val::Enum)
        }
        (LiteralKind::List(items), ValueType::Set { of } | ValueType::List { of }) => {
            let kind = if matches!(ty, ValueType::Set { .. }) {
                Kind::Set
            } else {
                Kind::List
            };
            if **of == ValueType::Number {
                let nums: Vec<f64> = items
                    .iter()
                    .filter_map(|i| match i.kind {
                        LiteralKind::Number(n) | LiteralKind::Percent(n) => Some(n),
                        _ => None,
                    })
                    .collect();
                return Val::Nums(nums.into());
            }
            let ids: Vec<u32> = items
                .iter()
                .filter_map(|i| match literal_value(program, i, of, strings) {
                    Val::Str(s) | Val::Enum(s) => Some(s),
                    _ => None,
                })
                .collect();
            let ids = if kind == Kind::Set { to_set(ids) } else { ids };
            Val::Ids(ids.into(), kind)
        }
        _ => Val::Abstain,
    }
}

fn compare(a: f64, op: CompareOp, b: f64) -> bool {
    match op {
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
    }
}

/// A score or an expected value as compared: at [`SCORE_DECIMALS`] decimals, trailing zeros off.
fn show(v: Option<f64>) -> String {
    match v {
        Some(x) => {
            let s = format!("{:.*}", SCORE_DECIMALS as usize, round_score(x));
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        None => "abstain".to_string(),
    }
}

/// Checks one expectation against a label; `Some(reason)` when it does not hold.
pub fn failed_expectation(
    program: &LabelingProgram,
    e: &Expectation,
    label: &Label,
) -> Option<String> {
    match e {
        Expectation::Rule { rule, fires, .. } => {
            let index = program.rules.iter().position(|r| r.name == rule.name)?;
            let fired = label.rules.iter().any(|r| *r as usize == index);
            (fired != *fires).then(|| {
                if *fires {
                    format!("expected rule `{}` to fire; it did not", rule.name)
                } else {
                    format!("expected rule `{}` not to fire; it fired", rule.name)
                }
            })
        }
        Expectation::Compare {
            target, op, value, ..
        } => {
            let (name, score, grade) = match &target.dimension {
                None => (
                    "overall".to_string(),
                    label.overall,
                    crate::scan::overall_grade_name(program, label),
                ),
                Some(d) => {
                    let i = program.dimensions.iter().position(|x| x.name == d.name)?;
                    let dim = program.dimensions.get(i)?;
                    let grade = label
                        .grades
                        .get(i)
                        .copied()
                        .flatten()
                        .and_then(|g| dim.grades.get(g as usize))
                        .map(|b| b.name.clone());
                    (
                        d.name.clone(),
                        label.dimensions.get(i).copied().flatten(),
                        grade,
                    )
                }
            };
            if target.grade {
                let want = match &value.kind {
                    LiteralKind::Name(n) => n.last().map(|x| x.name.clone()).unwrap_or_default(),
                    _ => return None,
                };
                let equal = grade.as_deref() == Some(want.as_str());
                let holds = if *op == CompareOp::Ne { !equal } else { equal };
                return (!holds).then(|| {
                    format!(
                        "expected `{name}.grade {} {want}`, got {}",
                        op.symbol(),
                        grade.map_or("no grade".to_string(), |g| format!("`{g}`"))
                    )
                });
            }
            let holds = match (&value.kind, score) {
                (LiteralKind::Abstain, s) => (s.is_none()) == (*op == CompareOp::Eq),
                // Compared at the scores' six decimals on both sides: the score is rounded
                // already, and an expected `0.1234567` means what a score can hold, `0.123457`.
                // Two values that differ then differ in what `show` prints.
                (LiteralKind::Number(n) | LiteralKind::Percent(n), Some(s)) => {
                    compare(round_score(s), *op, round_score(*n))
                }
                (LiteralKind::Number(_) | LiteralKind::Percent(_), None) => false,
                _ => true,
            };
            (!holds).then(|| {
                let want = match &value.kind {
                    LiteralKind::Number(n) | LiteralKind::Percent(n) => show(Some(*n)),
                    _ => "abstain".to_string(),
                };
                format!(
                    "expected `{name} {} {want}`, got {}",
                    op.symbol(),
                    show(score)
                )
            })
        }
    }
}

/// Runs examples; marks the clauses they exercise in `hits`.
pub fn run_examples(
    engine: &Engine,
    examples: &[&ExampleDecl],
    line_of: &dyn Fn(Span) -> usize,
    hits: &mut Vec<bool>,
) -> Vec<ExampleResult> {
    let mut strings = Interner::new(&engine.strings);
    let mut events = Events::new(engine.program.dimensions.len());
    examples
        .iter()
        .map(|ex| {
            let pair = example_pair(&engine.program, ex, &mut strings);
            let label = {
                let mut ctx = Ctx::new(&mut strings, &mut events, Some(hits));
                engine.label(&pair, &mut ctx)
            };
            let failures = ex
                .expectations
                .iter()
                .filter_map(|e| {
                    let reason = failed_expectation(&engine.program, e, &label)?;
                    let span = match e {
                        Expectation::Compare { span, .. } | Expectation::Rule { span, .. } => *span,
                    };
                    Some(Failure {
                        line: line_of(span),
                        reason,
                    })
                })
                .collect();
            ExampleResult {
                name: ex.name.clone(),
                line: line_of(ex.name_span),
                failures,
                expectations: ex.expectations.len(),
                label,
            }
        })
        .collect()
}

/// Runs the inline examples of a checked policy (lowered into `engine`); marks the clauses they
/// exercise in `hits`.
pub fn run_policy_examples(
    engine: &Engine,
    checked: &Checked,
    hits: &mut Vec<bool>,
) -> Vec<ExampleResult> {
    let examples: Vec<&ExampleDecl> = checked
        .policy_decl()
        .map(|p| {
            p.items
                .iter()
                .filter_map(|i| match i {
                    Item::Example(e) => Some(e),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let line_of = |span: Span| checked.sources.line_col(span.file, span.start).0;
    run_examples(engine, &examples, &line_of, hits)
}

/// The `rubric test` table: one line an example (with its failures), then the tally.
pub fn results_table(results: &[ExampleResult], file: &str) -> String {
    let mut out = String::new();
    let width = results
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0);
    for r in results {
        let status = if r.passed() { "pass" } else { "FAIL" };
        let _ = writeln!(out, "{status}  {:<width$}  {file}:{}", r.name, r.line);
        // Each failure at its own `expect`, as `file:line:` that editors and terminals open.
        for f in &r.failures {
            let _ = writeln!(out, "        {file}:{}: {}", f.line, f.reason);
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(
        out,
        "{} examples: {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    out
}

fn kind_name(k: ClauseKind) -> &'static str {
    match k {
        ClauseKind::GradeBand => "grade bands",
        ClauseKind::MatchArm => "match arms",
        ClauseKind::WhenBranch => "when branches",
        ClauseKind::IfBranch => "if branches",
        ClauseKind::Rule => "rules",
    }
}

/// The clause coverage of `hits` and its report: the tally by kind, then every clause missed
/// with its place in the policy.
pub fn coverage_report(
    program: &LabelingProgram,
    source_map: &SourceMap,
    hits: &[bool],
) -> (Coverage, String) {
    let cov = coverage(program, hits);
    let pct = if cov.total == 0 {
        100.0
    } else {
        cov.covered as f64 * 100.0 / cov.total as f64
    };
    let parts: Vec<String> = cov
        .by_kind
        .iter()
        .map(|(k, c, t)| format!("{} {c}/{t}", kind_name(*k)))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "clause coverage: {}/{} ({pct:.1}%): {}",
        cov.covered,
        cov.total,
        parts.join(", ")
    );
    for i in &cov.missed {
        if let Some(c) = program.clauses.get(*i) {
            let _ = writeln!(
                out,
                "  not exercised: {}  {}",
                c.label,
                source_map.describe(&c.path).unwrap_or_default()
            );
        }
    }
    (cov, out)
}

/// Clause coverage of the policy's own clauses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Coverage {
    /// Per kind: (exercised, total).
    pub by_kind: Vec<(ClauseKind, usize, usize)>,
    pub covered: usize,
    pub total: usize,
    /// Indices of the clauses not exercised.
    pub missed: Vec<usize>,
}

pub fn coverage(program: &LabelingProgram, hits: &[bool]) -> Coverage {
    let mut by_kind: Vec<(ClauseKind, usize, usize)> = Vec::new();
    let mut missed = Vec::new();
    let (mut covered, mut total) = (0, 0);
    for (i, c) in program
        .clauses
        .iter()
        .enumerate()
        .filter(|(_, c)| c.in_policy)
    {
        let hit = hits.get(i).copied().unwrap_or(false);
        total += 1;
        if hit {
            covered += 1;
        } else {
            missed.push(i);
        }
        match by_kind.iter_mut().find(|(k, _, _)| *k == c.kind) {
            Some(entry) => {
                entry.1 += usize::from(hit);
                entry.2 += 1;
            }
            None => by_kind.push((c.kind, usize::from(hit), 1)),
        }
    }
    by_kind.sort_by_key(|(k, _, _)| *k);
    Coverage {
        by_kind,
        covered,
        total,
        missed,
    }
}

/// Whether `covered / total >= percent / 100`, exactly: `percent` is a decimal written by a
/// person (`87.5`, `95%`), compared without floating-point rounding. `Err` says why the text is
/// not a percent: not a number, above 100, or a fraction like `0.95` (without a `%` sign a value
/// between 0 and 1 is almost always a fraction meant as 95%, and would pass nearly anything).
pub fn meets(covered: usize, total: usize, percent: &str) -> Result<bool, String> {
    let written = percent.trim();
    let signed = written.ends_with('%');
    let percent = written.trim_end_matches('%').trim_end();
    let not_a_percent = || "it is not a percent like `95` or `87.5`".to_string();
    let (whole, frac) = percent.split_once('.').unwrap_or((percent, ""));
    if (whole.is_empty() && frac.is_empty())
        || !whole.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 12
        || whole.len() > 12
    {
        return Err(not_a_percent());
    }
    // percent = digits / 10^frac.len(); need covered * 100 * 10^k >= digits * total.
    let digits: u128 = format!("{whole}{frac}")
        .parse()
        .map_err(|_| not_a_percent())?;
    let scale: u128 = u32::try_from(frac.len())
        .ok()
        .and_then(|k| 10u128.checked_pow(k))
        .ok_or_else(not_a_percent)?;
    if digits > 100 * scale {
        return Err("a percent is at most 100".to_string());
    }
    if !signed && digits != 0 && digits < scale {
        return Err(format!(
            "it reads as {percent}%, not as a fraction; write the percent, like `{}`",
            as_percent(whole, frac)
        ));
    }
    let left = (covered as u128)
        .checked_mul(100)
        .and_then(|l| l.checked_mul(scale))
        .ok_or_else(not_a_percent)?;
    let right = digits
        .checked_mul(total as u128)
        .ok_or_else(not_a_percent)?;
    Ok(left >= right)
}

/// A fraction's digits as a percent's, by moving the point two places: `0.95` → `95`.
fn as_percent(whole: &str, frac: &str) -> String {
    let padded = format!("{frac:0<2}");
    let (moved, rest) = padded.split_at(2);
    let whole = format!("{whole}{moved}");
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    if rest.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{rest}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::meets;

    #[test]
    fn coverage_thresholds_compare_exactly() {
        assert_eq!(meets(7, 8, "87.5"), Ok(true));
        assert_eq!(meets(7, 8, "87.51"), Ok(false));
        assert_eq!(meets(2, 3, "66.666666666667"), Ok(false));
        assert_eq!(meets(2, 3, "66.666666666666"), Ok(true));
        assert_eq!(meets(1, 1, "100"), Ok(true));
        assert_eq!(meets(0, 0, "100"), Ok(true));
        assert_eq!(meets(3, 4, "75%"), Ok(true));
        assert!(meets(3, 4, "abc").is_err());
        assert!(meets(3, 4, "-5").is_err());
    }

    #[test]
    fn percents_are_percents_not_fractions() {
        assert_eq!(meets(95, 100, "95"), Ok(true));
        assert_eq!(meets(94, 100, "95%"), Ok(false));
        assert_eq!(meets(94, 100, "95 %"), Ok(false));
        assert_eq!(meets(0, 10, "0"), Ok(true));
        assert_eq!(meets(0, 10, "0.0"), Ok(true));
        assert_eq!(
            meets(1, 1000, "0.1%"),
            Ok(true),
            "an explicit `%` is a percent"
        );
        assert_eq!(meets(3, 4, "1"), Ok(true));
        let fraction = meets(3, 4, "0.95").unwrap_err();
        assert!(fraction.contains("like `95`"), "{fraction}");
        assert!(meets(3, 4, "0.875").unwrap_err().contains("`87.5`"));
        assert!(meets(3, 4, "0.05").unwrap_err().contains("`5`"));
        assert!(meets(3, 4, "100.5").unwrap_err().contains("at most 100"));
        assert!(meets(3, 4, "150%").unwrap_err().contains("at most 100"));
        assert_eq!(meets(3, 4, "100.0"), Ok(false));
    }
}
