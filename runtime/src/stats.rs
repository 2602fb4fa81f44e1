//! `rubric stats`: an analysis of a policy's labeling functions on a dataset of pairs. Per
//! dimension: coverage (the share of pairs it did not abstain on), mean score, a 10-bin histogram
//! over [0, 1] and the grade distribution; overall: the abstain rate, grades (with `excluded` and
//! no grade) and a histogram; per rule: how often its condition held and how often it decided
//! the score or grade; the runtime's corrections (`Events`); and pairs on which rules pull in
//! different directions. Streaming: only counters are kept, whatever the size of the input.

use crate::label::engine::{Engine, Events, Label, OverallGrade};
use crate::scan::{
    DEFAULT_BATCH_ROWS, Labeled, PolicySummary, Row, ScanSummary, action_text, pairs, percent,
    rate, scan, short,
};
use rubric_compiler::lower::ir::{LabelingProgram, RuleActionIr};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, BufRead};

/// Bins of the score histograms: `[0, 0.1)`, …, `[0.9, 1]`.
pub const BINS: usize = 10;
/// Example pair ids kept per conflict.
pub const CONFLICT_EXAMPLES: usize = 5;
/// Unreadable rows whose error is kept for the report.
pub const ERROR_EXAMPLES: usize = 3;
/// The name of "no grade" (the dimension or the overall score abstained, or no band decided).
pub const NO_GRADE: &str = "(no grade)";

/// The histogram bin of a score in [0, 1].
pub fn bin(score: f64) -> usize {
    let b = (score * BINS as f64).floor();
    if b.is_nan() || b < 0.0 {
        0
    } else {
        (b as usize).min(BINS - 1)
    }
}

/// The label of bin `i`: `[0.3, 0.4)`, and `[0.9, 1]` for the last.
pub fn bin_label(i: usize) -> String {
    let lo = i as f64 / BINS as f64;
    let hi = (i + 1) as f64 / BINS as f64;
    if i + 1 == BINS {
        format!("[{lo:.1}, {hi:.1}]")
    } else {
        format!("[{lo:.1}, {hi:.1})")
    }
}

/// Ways rules can pull a pair in different directions, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// A cap and a floor both fired.
    CapAndFloor,
    /// An exclusion fired together with a floor (the floor is overruled).
    ExcludeAndFloor,
    /// An exclusion fired together with a set grade (the grade is overruled).
    ExcludeAndSetGrade,
    /// Two set-grade rules fired (the first in declaration order wins).
    TwoSetGrades,
    /// A floor and a set grade both fired.
    FloorAndSetGrade,
}

impl ConflictKind {
    pub fn describe(self) -> &'static str {
        match self {
            ConflictKind::CapAndFloor => "a cap and a floor",
            ConflictKind::ExcludeAndFloor => "an exclusion and a floor",
            ConflictKind::ExcludeAndSetGrade => "an exclusion and a set grade",
            ConflictKind::TwoSetGrades => "two set grades",
            ConflictKind::FloorAndSetGrade => "a floor and a set grade",
        }
    }
}

/// The conflicts among the rules that fired on one pair: (kind, first rule, second rule).
pub fn conflicts(program: &LabelingProgram, fired: &[u32]) -> Vec<(ConflictKind, u32, u32)> {
    let action = |i: u32| program.rules.get(i as usize).map(|r| &r.action);
    let mut out = Vec::new();
    for (n, a) in fired.iter().enumerate() {
        for b in fired.iter().skip(n + 1) {
            let kind = match (action(*a), action(*b)) {
                (Some(RuleActionIr::Cap(_)), Some(RuleActionIr::Floor(_)))
                | (Some(RuleActionIr::Floor(_)), Some(RuleActionIr::Cap(_))) => {
                    ConflictKind::CapAndFloor
                }
                (Some(RuleActionIr::Exclude), Some(RuleActionIr::Floor(_)))
                | (Some(RuleActionIr::Floor(_)), Some(RuleActionIr::Exclude)) => {
                    ConflictKind::ExcludeAndFloor
                }
                (Some(RuleActionIr::Exclude), Some(RuleActionIr::SetGrade(_)))
                | (Some(RuleActionIr::SetGrade(_)), Some(RuleActionIr::Exclude)) => {
                    ConflictKind::ExcludeAndSetGrade
                }
                (Some(RuleActionIr::SetGrade(_)), Some(RuleActionIr::SetGrade(_))) => {
                    ConflictKind::TwoSetGrades
                }
                (Some(RuleActionIr::Floor(_)), Some(RuleActionIr::SetGrade(_)))
                | (Some(RuleActionIr::SetGrade(_)), Some(RuleActionIr::Floor(_))) => {
                    ConflictKind::FloorAndSetGrade
                }
                _ => continue,
            };
            out.push((kind, (*a).min(*b), (*a).max(*b)));
        }
    }
    out.sort_unstable();
    out
}

/// The weighted mean of the dimensions that voted, before any rule (the engine's formula).
pub fn mean_before_rules(program: &LabelingProgram, dimensions: &[Option<f64>]) -> Option<f64> {
    let (mut sum, mut weight) = (0.0, 0.0);
    for (d, s) in program.dimensions.iter().zip(dimensions) {
        if let Some(s) = s {
            sum += d.weight * s;
            weight += d.weight;
        }
    }
    (weight > 0.0).then(|| sum / weight)
}

/// The rules that decided a pair's outcome: every exclusion of an excluded pair; the lowest cap
/// when it lowered the score and no floor lifted it back; the highest floor when it raised the
/// score; the first set grade.
pub fn decided(program: &LabelingProgram, label: &Label, fired: &[u32]) -> Vec<u32> {
    let action = |i: &u32| program.rules.get(*i as usize).map(|r| &r.action);
    if label.overall_grade == Some(OverallGrade::Excluded) {
        return fired
            .iter()
            .copied()
            .filter(|i| action(i) == Some(&RuleActionIr::Exclude))
            .collect();
    }
    let (Some(_), Some(mean)) = (label.overall, mean_before_rules(program, &label.dimensions))
    else {
        return Vec::new();
    };
    let cap = fired
        .iter()
        .filter_map(|i| match action(i) {
            Some(RuleActionIr::Cap(c)) => Some((*i, *c)),
            _ => None,
        })
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let floor = fired
        .iter()
        .filter_map(|i| match action(i) {
            Some(RuleActionIr::Floor(f)) => Some((*i, *f)),
            _ => None,
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let after_cap = cap.map_or(mean, |(_, c)| mean.min(c));
    let mut out = Vec::new();
    if let Some((i, c)) = cap
        && c < mean
        && floor.is_none_or(|(_, f)| f <= after_cap)
    {
        out.push(i);
    }
    if let Some((i, f)) = floor
        && f > after_cap
    {
        out.push(i);
    }
    if let Some(i) = fired
        .iter()
        .find(|i| matches!(action(i), Some(RuleActionIr::SetGrade(_))))
    {
        out.push(*i);
    }
    out.sort_unstable();
    out
}

#[derive(Clone, Debug, Default)]
struct ScoreAcc {
    scored: u64,
    sum: f64,
    histogram: [u64; BINS],
}

impl ScoreAcc {
    fn add(&mut self, s: f64) {
        self.scored += 1;
        self.sum += s;
        if let Some(h) = self.histogram.get_mut(bin(s)) {
            *h += 1;
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.scored > 0).then(|| self.sum / self.scored as f64)
    }
}

#[derive(Clone, Debug, Default)]
struct ConflictAcc {
    count: u64,
    examples: Vec<String>,
}

/// The counters of a stats run: feed it labeled pairs (in a fixed order), then `report`.
#[derive(Clone)]
pub struct Stats<'e> {
    engine: &'e Engine,
    pairs: u64,
    labeled: u64,
    unreadable: u64,
    unreadable_examples: Vec<String>,
    dimensions: Vec<ScoreAcc>,
    /// Per dimension: one count per band, then no grade.
    dimension_grades: Vec<Vec<u64>>,
    overall: ScoreAcc,
    overall_abstained: u64,
    /// The names `overall_grades` counts, in order: bands, grades only rules set, `excluded`,
    /// no grade.
    overall_grade_names: Vec<String>,
    overall_grades: Vec<u64>,
    rules_fired: Vec<u64>,
    rules_decided: Vec<u64>,
    conflicts: BTreeMap<(ConflictKind, u32, u32), ConflictAcc>,
    conflicting_pairs: u64,
    events: Events,
}

impl<'e> Stats<'e> {
    pub fn new(engine: &'e Engine) -> Self {
        let p = &engine.program;
        let mut names: Vec<String> = p.overall.grades.iter().map(|b| b.name.clone()).collect();
        for r in &p.rules {
            if let RuleActionIr::SetGrade(g) = &r.action
                && !names.contains(g)
            {
                names.push(g.clone());
            }
        }
        names.push(p.overall.excluded_grade.clone());
        names.push(NO_GRADE.to_string());
        Stats {
            engine,
            pairs: 0,
            labeled: 0,
            unreadable: 0,
            unreadable_examples: Vec::new(),
            dimensions: vec![ScoreAcc::default(); p.dimensions.len()],
            dimension_grades: p
                .dimensions
                .iter()
                .map(|d| vec![0; d.grades.len() + 1])
                .collect(),
            overall: ScoreAcc::default(),
            overall_abstained: 0,
            overall_grades: vec![0; names.len()],
            overall_grade_names: names,
            rules_fired: vec![0; p.rules.len()],
            rules_decided: vec![0; p.rules.len()],
            conflicts: BTreeMap::new(),
            conflicting_pairs: 0,
            events: Events::new(p.dimensions.len()),
        }
    }

    /// Counts a row this policy could not decode.
    pub fn add_unreadable(&mut self, error: &crate::label::decode::RowError) {
        self.pairs += 1;
        self.unreadable += 1;
        if self.unreadable_examples.len() < ERROR_EXAMPLES {
            self.unreadable_examples.push(error.to_string());
        }
    }

    /// Counts one labeled pair.
    pub fn add(&mut self, labeled: &Labeled) {
        let p = &self.engine.program;
        let label = &labeled.label;
        self.pairs += 1;
        self.labeled += 1;
        for (i, d) in p.dimensions.iter().enumerate() {
            let score = label.dimensions.get(i).copied().flatten();
            if let (Some(s), Some(acc)) = (score, self.dimensions.get_mut(i)) {
                acc.add(s);
            }
            if let Some(counts) = self.dimension_grades.get_mut(i) {
                let slot = label
                    .grades
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or(d.grades.len(), |g| g as usize);
                if let Some(c) = counts.get_mut(slot) {
                    *c += 1;
                }
            }
        }
        let grade = crate::scan::overall_grade_name(p, label);
        match (label.overall, label.overall_grade) {
            (None, _) => self.overall_abstained += 1,
            (Some(_), Some(OverallGrade::Excluded)) => {}
            (Some(o), _) => self.overall.add(o),
        }
        let name = grade.as_deref().unwrap_or(NO_GRADE);
        let slot = self
            .overall_grade_names
            .iter()
            .position(|n| n == name)
            .unwrap_or(self.overall_grade_names.len() - 1);
        if let Some(c) = self.overall_grades.get_mut(slot) {
            *c += 1;
        }
        for r in &labeled.fired {
            if let Some(c) = self.rules_fired.get_mut(*r as usize) {
                *c += 1;
            }
        }
        for r in decided(p, label, &labeled.fired) {
            if let Some(c) = self.rules_decided.get_mut(r as usize) {
                *c += 1;
            }
        }
        let found = conflicts(p, &labeled.fired);
        if !found.is_empty() {
            self.conflicting_pairs += 1;
        }
        for key in found {
            let acc = self.conflicts.entry(key).or_default();
            acc.count += 1;
            if acc.examples.len() < CONFLICT_EXAMPLES {
                acc.examples.push(label.id.clone());
            }
        }
    }

    /// Adds the runtime events of the pairs counted.
    pub fn add_events(&mut self, events: &Events) {
        self.events.merge(events);
    }

    /// The report of what was counted.
    pub fn report(&self) -> StatsReport {
        let p = &self.engine.program;
        let labeled = self.labeled;
        let grade_counts = |names: &[String], counts: &[u64]| -> Vec<GradeCount> {
            names
                .iter()
                .zip(counts)
                .map(|(n, c)| GradeCount {
                    grade: n.clone(),
                    count: *c,
                    rate: rate(*c, labeled),
                })
                .collect()
        };
        let dimensions = p
            .dimensions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let acc = self.dimensions.get(i).cloned().unwrap_or_default();
                let mut names: Vec<String> = d.grades.iter().map(|b| b.name.clone()).collect();
                let grades = if names.is_empty() {
                    Vec::new()
                } else {
                    names.push(NO_GRADE.to_string());
                    grade_counts(
                        &names,
                        self.dimension_grades.get(i).map_or(&[][..], Vec::as_slice),
                    )
                };
                DimensionStats {
                    name: d.name.clone(),
                    weight: d.weight,
                    scored: acc.scored,
                    coverage: rate(acc.scored, labeled),
                    mean: acc.mean(),
                    histogram: acc.histogram.to_vec(),
                    grades,
                    clamped: self.events.clamped.get(i).copied().unwrap_or(0),
                    undefined: self.events.undefined.get(i).copied().unwrap_or(0),
                }
            })
            .collect();
        let excluded = self
            .overall_grade_names
            .iter()
            .position(|n| *n == p.overall.excluded_grade)
            .and_then(|i| self.overall_grades.get(i))
            .copied()
            .unwrap_or(0);
        let rules = p
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let fired = self.rules_fired.get(i).copied().unwrap_or(0);
                let decided = self.rules_decided.get(i).copied().unwrap_or(0);
                RuleStats {
                    name: r.name.clone(),
                    action: action_text(&r.action),
                    fired,
                    fire_rate: rate(fired, labeled),
                    decided,
                    decide_rate: rate(decided, labeled),
                }
            })
            .collect();
        let rule_name = |i: u32| {
            p.rules
                .get(i as usize)
                .map_or(String::new(), |r| r.name.clone())
        };
        let rule_action = |i: u32| {
            p.rules
                .get(i as usize)
                .map_or(String::new(), |r| action_text(&r.action))
        };
        let conflicts = self
            .conflicts
            .iter()
            .map(|((kind, a, b), acc)| Conflict {
                kind: *kind,
                rules: vec![
                    ConflictRule {
                        name: rule_name(*a),
                        action: rule_action(*a),
                    },
                    ConflictRule {
                        name: rule_name(*b),
                        action: rule_action(*b),
                    },
                ],
                count: acc.count,
                examples: acc.examples.clone(),
            })
            .collect();
        StatsReport {
            policy: PolicySummary::of(p),
            pairs: self.pairs,
            labeled,
            unreadable: self.unreadable,
            unreadable_examples: self.unreadable_examples.clone(),
            overall: OverallStats {
                scored: self.overall.scored + excluded,
                abstained: self.overall_abstained,
                abstain_rate: rate(self.overall_abstained, labeled),
                excluded,
                mean: self.overall.mean(),
                histogram: self.overall.histogram.to_vec(),
                grades: grade_counts(&self.overall_grade_names, &self.overall_grades),
            },
            dimensions,
            rules,
            events: EventStats {
                clamped: self.events.clamped.iter().sum(),
                undefined: self.events.undefined.iter().sum(),
                function_clamped: self.events.function_clamped,
            },
            conflicting_pairs: self.conflicting_pairs,
            conflicts,
        }
    }
}

/// Runs a stats analysis over a stream of pairs. Rows the policy cannot decode are counted
/// (with the first few errors), not fatal.
pub fn stats_stream(engine: &Engine, input: &mut dyn BufRead) -> io::Result<StatsReport> {
    stats_stream_batched(engine, input, DEFAULT_BATCH_ROWS)
}

/// [`stats_stream`] with a batch size (rows labeled together).
pub fn stats_stream_batched(
    engine: &Engine,
    input: &mut dyn BufRead,
    batch_rows: usize,
) -> io::Result<StatsReport> {
    let mut stats = Stats::new(engine);
    let summary: ScanSummary = scan(&[engine], input, batch_rows, &mut |row: Row| {
        for outcome in &row.outcomes {
            match outcome {
                Ok(labeled) => stats.add(labeled),
                Err(e) => stats.add_unreadable(e),
            }
        }
    })?;
    if let Some(events) = summary.events.first() {
        stats.add_events(events);
    }
    Ok(stats.report())
}

/// A grade and how many pairs got it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GradeCount {
    pub grade: String,
    pub count: u64,
    /// Share of the labeled pairs.
    pub rate: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DimensionStats {
    pub name: String,
    pub weight: f64,
    /// Pairs it scored (did not abstain on).
    pub scored: u64,
    /// `scored / labeled`.
    pub coverage: f64,
    pub mean: Option<f64>,
    /// Counts of the scores in `[0, 0.1)`, …, `[0.9, 1]`.
    pub histogram: Vec<u64>,
    /// Per band, then no grade; empty when the dimension has no bands.
    pub grades: Vec<GradeCount>,
    /// Scores outside [0, 1] that were clamped.
    pub clamped: u64,
    /// Abstentions caused by a division by zero or a non-finite number.
    pub undefined: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverallStats {
    /// Pairs with an overall score (excluded pairs included, at 0).
    pub scored: u64,
    pub abstained: u64,
    pub abstain_rate: f64,
    pub excluded: u64,
    /// Mean of the overall scores of pairs not excluded.
    pub mean: Option<f64>,
    /// Histogram of the overall scores of pairs not excluded.
    pub histogram: Vec<u64>,
    /// Bands, grades only rules set, `excluded`, no grade.
    pub grades: Vec<GradeCount>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleStats {
    pub name: String,
    pub action: String,
    /// Pairs on which its condition held, whether or not it took effect.
    pub fired: u64,
    pub fire_rate: f64,
    /// Pairs whose score or grade it decided.
    pub decided: u64,
    pub decide_rate: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventStats {
    /// Dimension scores outside [0, 1], clamped (all dimensions).
    pub clamped: u64,
    /// Dimension abstentions caused by a division by zero (all dimensions).
    pub undefined: u64,
    /// Function results outside their declared range, clamped.
    pub function_clamped: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConflictRule {
    pub name: String,
    pub action: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub rules: Vec<ConflictRule>,
    pub count: u64,
    /// Up to five pair ids, the first in input order.
    pub examples: Vec<String>,
}

/// The result of `rubric stats`: serializable (`--json`) and printable (`to_text`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatsReport {
    pub policy: PolicySummary,
    /// Rows read (blank lines are not rows).
    pub pairs: u64,
    pub labeled: u64,
    pub unreadable: u64,
    pub unreadable_examples: Vec<String>,
    pub overall: OverallStats,
    pub dimensions: Vec<DimensionStats>,
    pub rules: Vec<RuleStats>,
    pub events: EventStats,
    /// Pairs with at least one conflict.
    pub conflicting_pairs: u64,
    pub conflicts: Vec<Conflict>,
}

const BAR_WIDTH: u64 = 40;

/// Text bars of a histogram, one line a bin, indented.
pub fn histogram_text(out: &mut String, indent: &str, histogram: &[u64]) {
    let total: u64 = histogram.iter().sum();
    let max = histogram.iter().copied().max().unwrap_or(0);
    let width = histogram
        .iter()
        .map(|c| c.to_string().len())
        .max()
        .unwrap_or(1);
    for (i, c) in histogram.iter().enumerate() {
        let bar = if max == 0 || *c == 0 {
            0
        } else {
            ((c * BAR_WIDTH + max / 2) / max).max(1)
        };
        let line = format!(
            "{indent}{:<10}  {c:>width$}  {:>6}  {}",
            bin_label(i),
            percent(*c, total),
            "█".repeat(usize::try_from(bar).unwrap_or(0)),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn grades_text(out: &mut String, indent: &str, grades: &[GradeCount], of: u64) {
    let name_width = grades.iter().map(|g| g.grade.len()).max().unwrap_or(0);
    let count_width = grades
        .iter()
        .map(|g| g.count.to_string().len())
        .max()
        .unwrap_or(1);
    for g in grades {
        let _ = writeln!(
            out,
            "{indent}{:<name_width$}  {:>count_width$}  {:>6}",
            g.grade,
            g.count,
            percent(g.count, of),
        );
    }
}

fn mean_text(mean: Option<f64>) -> String {
    mean.map_or("-".to_string(), |m| format!("{m:.4}"))
}

impl StatsReport {
    /// The readable report: deterministic, no paths and no timings.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let n = self.labeled;
        let _ = writeln!(out, "stats of policy {}", self.policy.describe());
        let _ = writeln!(
            out,
            "pairs: {} read, {} labeled, {} unreadable",
            self.pairs, self.labeled, self.unreadable
        );
        for e in &self.unreadable_examples {
            let _ = writeln!(out, "  unreadable: {e}");
        }

        let o = &self.overall;
        let _ = writeln!(out);
        let _ = writeln!(out, "overall");
        let _ = writeln!(
            out,
            "  scored {} ({}), abstained {} ({}), excluded {} ({})",
            o.scored,
            percent(o.scored, n),
            o.abstained,
            percent(o.abstained, n),
            o.excluded,
            percent(o.excluded, n),
        );
        let _ = writeln!(out, "  mean {} (pairs not excluded)", mean_text(o.mean));
        let _ = writeln!(out, "  grades");
        grades_text(&mut out, "    ", &o.grades, n);
        let _ = writeln!(
            out,
            "  histogram of the overall score ({} pairs, excluded pairs left out)",
            o.histogram.iter().sum::<u64>()
        );
        histogram_text(&mut out, "    ", &o.histogram);

        let _ = writeln!(out);
        let _ = writeln!(out, "dimensions");
        let name_width = self
            .dimensions
            .iter()
            .map(|d| d.name.len())
            .max()
            .unwrap_or(0)
            .max("dimension".len());
        let _ = writeln!(
            out,
            "  {:<name_width$}  {:>6}  {:>16}  {:>6}  {:>7}  {:>6}",
            "dimension", "weight", "coverage", "mean", "clamped", "div/0"
        );
        for d in &self.dimensions {
            let _ = writeln!(
                out,
                "  {:<name_width$}  {:>6}  {:>16}  {:>6}  {:>7}  {:>6}",
                d.name,
                format!("{}%", short(d.weight * 100.0)),
                format!("{} ({})", d.scored, percent(d.scored, n)),
                mean_text(d.mean),
                d.clamped,
                d.undefined,
            );
        }
        for d in &self.dimensions {
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "dimension `{}`: weight {}%, coverage {} of {} ({}), mean {}",
                d.name,
                short(d.weight * 100.0),
                d.scored,
                n,
                percent(d.scored, n),
                mean_text(d.mean),
            );
            if !d.grades.is_empty() {
                let _ = writeln!(out, "  grades");
                grades_text(&mut out, "    ", &d.grades, n);
            }
            let _ = writeln!(out, "  histogram ({} scores)", d.scored);
            histogram_text(&mut out, "    ", &d.histogram);
        }

        let _ = writeln!(out);
        if self.rules.is_empty() {
            let _ = writeln!(out, "rules: none");
        } else {
            let _ = writeln!(
                out,
                "rules (fired: the condition held; decided: it set the score or the grade)"
            );
            let name_width = self
                .rules
                .iter()
                .map(|r| r.name.len())
                .max()
                .unwrap_or(0)
                .max("rule".len());
            let action_width = self
                .rules
                .iter()
                .map(|r| r.action.len())
                .max()
                .unwrap_or(0)
                .max("action".len());
            let count = |c: u64| format!("{c} ({})", percent(c, n));
            let _ = writeln!(
                out,
                "  {:<name_width$}  {:<action_width$}  {:>16}  {:>16}",
                "rule", "action", "fired", "decided"
            );
            for r in &self.rules {
                let _ = writeln!(
                    out,
                    "  {:<name_width$}  {:<action_width$}  {:>16}  {:>16}",
                    r.name,
                    r.action,
                    count(r.fired),
                    count(r.decided),
                );
            }
        }

        let _ = writeln!(out);
        let _ = writeln!(out, "runtime events");
        let e = &self.events;
        let _ = writeln!(
            out,
            "  dimension scores outside [0, 1], clamped: {}",
            e.clamped
        );
        for d in self.dimensions.iter().filter(|d| d.clamped > 0) {
            let _ = writeln!(out, "    {}: {}", d.name, d.clamped);
        }
        let _ = writeln!(
            out,
            "  undefined results: a division by zero or a number past the largest float (the dimension abstained): {}",
            e.undefined
        );
        for d in self.dimensions.iter().filter(|d| d.undefined > 0) {
            let _ = writeln!(out, "    {}: {}", d.name, d.undefined);
        }
        let _ = writeln!(
            out,
            "  function results outside their declared range, clamped: {}",
            e.function_clamped
        );

        let _ = writeln!(out);
        if self.conflicts.is_empty() {
            let _ = writeln!(out, "conflicts: none (no pair fired rules that disagree)");
        } else {
            let _ = writeln!(
                out,
                "conflicts: {} ({}) fired rules that disagree",
                pairs(self.conflicting_pairs),
                percent(self.conflicting_pairs, n)
            );
            for c in &self.conflicts {
                let rules: Vec<String> = c
                    .rules
                    .iter()
                    .map(|r| format!("`{}` ({})", r.name, r.action))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {}: {}: {}, e.g. {}",
                    c.kind.describe(),
                    rules.join(" and "),
                    pairs(c.count),
                    c.examples.join(", ")
                );
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use rubric_compiler::Options;
    use std::path::Path;

    const POLICY: &str = r#"policy p version 1 {
  entity A { x: number, y: number?, flag: bool }
  pair query: A, candidate: A
  dimension d weight 60% {
    score = clamp(query.x, 0, 1)
    grade { high when score >= 0.5  "high"  low otherwise "low" }
  }
  dimension e weight 40% {
    score = if missing(candidate.y) then abstain else clamp(candidate.y, 0, 1)
  }
  rule capped { when query.flag  cap overall at 0.5  because "flag" }
  rule lower_cap { when query.x > 0.9  cap overall at 0.3  because "very high x" }
  rule floored { when candidate.flag  floor overall at 0.2  because "candidate flag" }
  rule gone { when query.x < 0  exclude  because "negative" }
  grade overall { good when overall >= 0.5  bad otherwise }
}
"#;

    fn engine() -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.policy");
        std::fs::write(&path, POLICY).unwrap();
        let compiled = crate::compile::compile_file(Path::new(&path), &Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Engine::new(compiled.lowered.labeling)
    }

    fn row(id: &str, x: f64, y: Option<f64>, qflag: bool, cflag: bool) -> String {
        let y = y.map_or("null".to_string(), |y| y.to_string());
        format!(
            r#"{{"id": "{id}", "query": {{"x": {x}, "flag": {qflag}}}, "candidate": {{"x": 0, "y": {y}, "flag": {cflag}}}}}"#
        )
    }

    #[test]
    fn bins_cover_the_unit_interval() {
        assert_eq!(bin(0.0), 0);
        assert_eq!(bin(0.0999), 0);
        assert_eq!(bin(0.1), 1);
        assert_eq!(bin(0.95), 9);
        assert_eq!(bin(1.0), 9);
        assert_eq!(bin_label(0), "[0.0, 0.1)");
        assert_eq!(bin_label(9), "[0.9, 1.0]");
    }

    #[test]
    fn counts_coverage_grades_rules_and_conflicts() {
        let engine = engine();
        let input = [
            row("a", 0.8, Some(0.5), false, false),
            row("b", 0.3, None, false, false),
            row("c", 0.95, Some(1.0), true, true),
            row("d", -1.0, Some(0.2), false, true),
            row("e", 0.1, Some(0.0), false, true),
            "{\"id\": \"bad\"}".to_string(),
            String::new(),
        ]
        .join("\n");
        let report = stats_stream_batched(&engine, &mut input.as_bytes(), 2).unwrap();
        assert_eq!((report.pairs, report.labeled, report.unreadable), (6, 5, 1));
        assert!(report.unreadable_examples[0].starts_with("line 6:"));
        let d = &report.dimensions[0];
        assert_eq!(d.scored, 5);
        assert_eq!(d.histogram[0], 1); // -1 clamped by `clamp` to 0
        assert_eq!(d.histogram[1], 1);
        assert_eq!(d.histogram[3], 1);
        assert_eq!(d.histogram[8], 1);
        assert_eq!(d.histogram[9], 1);
        let grades: Vec<(&str, u64)> = d
            .grades
            .iter()
            .map(|g| (g.grade.as_str(), g.count))
            .collect();
        assert_eq!(grades, [("high", 2), ("low", 3), (NO_GRADE, 0)]);
        let e = &report.dimensions[1];
        assert_eq!(e.scored, 4);
        assert!(e.grades.is_empty());
        // b: e abstains (40% of the weight), d votes: the overall is d's score.
        assert_eq!(report.overall.abstained, 0);
        assert_eq!(report.overall.excluded, 1);
        let fired: Vec<(&str, u64, u64)> = report
            .rules
            .iter()
            .map(|r| (r.name.as_str(), r.fired, r.decided))
            .collect();
        // c: both caps fire and the lower decides; the floor (0.2) fires too, below it.
        // d: excluded; the floor fired too. e: the floor lifts a mean of 0.06.
        assert_eq!(
            fired,
            [
                ("capped", 1, 0),
                ("lower_cap", 1, 1),
                ("floored", 3, 1),
                ("gone", 1, 1)
            ]
        );
        assert_eq!(report.conflicting_pairs, 2);
        let kinds: Vec<(ConflictKind, &str, &str, u64, Vec<String>)> = report
            .conflicts
            .iter()
            .map(|c| {
                (
                    c.kind,
                    c.rules[0].name.as_str(),
                    c.rules[1].name.as_str(),
                    c.count,
                    c.examples.clone(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                (
                    ConflictKind::CapAndFloor,
                    "capped",
                    "floored",
                    1,
                    vec!["c".to_string()]
                ),
                (
                    ConflictKind::CapAndFloor,
                    "lower_cap",
                    "floored",
                    1,
                    vec!["c".to_string()]
                ),
                (
                    ConflictKind::ExcludeAndFloor,
                    "floored",
                    "gone",
                    1,
                    vec!["d".to_string()]
                ),
            ]
        );
        let text = report.to_text();
        assert!(
            text.contains("pairs: 6 read, 5 labeled, 1 unreadable"),
            "{text}"
        );
        assert!(
            text.contains(
                "a cap and a floor: `capped` (cap 0.5) and `floored` (floor 0.2): 1 pair, e.g. c"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_report_does_not_depend_on_the_batch_size() {
        let engine = engine();
        let input: String = (0..300)
            .map(|i| {
                let x = (i % 23) as f64 / 20.0 - 0.05;
                let y = (i % 3 != 0).then_some((i % 7) as f64 / 6.0);
                row(&format!("p{i}"), x, y, i % 5 == 0, i % 4 == 0) + "\n"
            })
            .collect();
        let a = stats_stream_batched(&engine, &mut input.as_bytes(), 1).unwrap();
        let b = stats_stream_batched(&engine, &mut input.as_bytes(), 8192).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_text(), b.to_text());
    }
}
