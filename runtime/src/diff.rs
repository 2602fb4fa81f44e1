//! `rubric diff`: the review of a policy edit. The same pairs are labeled with the old and the
//! new policy; the report says how many pairs change overall score and grade and in which
//! direction (a transition matrix in the new policy's band order), how each dimension's scores
//! shift (and which dimensions were added or removed), which rules fire on other pairs than
//! before, and explains a deterministic sample of the changed pairs (the largest changes of the
//! overall score, ties by id). Streaming: counters and the sample only, whatever the input size.

use crate::label::engine::{Engine, Label};
use crate::scan::{
    DEFAULT_BATCH_ROWS, Labeled, PolicySummary, Row, action_text, overall_grade_name, pairs,
    percent, rate, scan, short,
};
use crate::stats::{NO_GRADE, decided, mean_before_rules};
use rubric_compiler::lower::ir::{LabelingProgram, RuleActionIr};
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::{self, BufRead};

/// Pairs explained by default.
pub const DEFAULT_SAMPLE: usize = 5;
/// A dimension score "changed" when it moved by more than this.
pub const CHANGE_THRESHOLD: f64 = 0.01;
/// Overall scores closer than this are the same (floating-point noise of a reordered sum).
const EPSILON: f64 = 1e-9;
/// Dimensions named in a sample pair's explanation.
const SAMPLE_DIMENSIONS: usize = 3;
const ERROR_EXAMPLES: usize = 3;

/// The order of grades in the transition matrix: the new policy's bands, grades only its rules
/// set, the old policy's other bands and set grades, `excluded`, no grade.
pub fn grade_order(old: &LabelingProgram, new: &LabelingProgram) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if n != new.overall.excluded_grade && !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for p in [new, old] {
        for b in &p.overall.grades {
            add(&b.name);
        }
        for r in &p.rules {
            if let RuleActionIr::SetGrade(g) = &r.action {
                add(g);
            }
        }
    }
    names.push(new.overall.excluded_grade.clone());
    names.push(NO_GRADE.to_string());
    names
}

/// Which way a grade moved, by the new policy's band order (`excluded` below every band).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Same,
    Up,
    Down,
    /// To or from no grade.
    NoGrade,
    /// A grade that is not a band of the new policy.
    Unranked,
}

fn rank(new: &LabelingProgram, grade: &str) -> Option<usize> {
    if grade == new.overall.excluded_grade {
        return Some(new.overall.grades.len());
    }
    new.overall.grades.iter().position(|b| b.name == grade)
}

pub fn direction(
    new: &LabelingProgram,
    old_grade: Option<&str>,
    new_grade: Option<&str>,
) -> Direction {
    if old_grade == new_grade {
        return Direction::Same;
    }
    let (Some(a), Some(b)) = (old_grade, new_grade) else {
        return Direction::NoGrade;
    };
    match (rank(new, a), rank(new, b)) {
        (Some(x), Some(y)) if y < x => Direction::Up,
        (Some(x), Some(y)) if y > x => Direction::Down,
        _ => Direction::Unranked,
    }
}

#[derive(Clone, Debug, Default)]
struct DimensionAcc {
    both: u64,
    sum: f64,
    sum_abs: f64,
    changed: u64,
    started_abstaining: u64,
    stopped_abstaining: u64,
    grade_changed: u64,
}

#[derive(Clone, Debug, Default)]
struct RuleAcc {
    old: u64,
    new: u64,
    started: u64,
    stopped: u64,
}

/// A changed pair kept for the sample, ordered so that the heap's top is the least interesting.
#[derive(Clone, Debug)]
struct Candidate {
    grade_changed: bool,
    magnitude: f64,
    pair: ChangedPair,
}

impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Candidate {
    /// Greater is less interesting: the grade kept, a smaller change, then a later id.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .grade_changed
            .cmp(&self.grade_changed)
            .then_with(|| other.magnitude.total_cmp(&self.magnitude))
            .then_with(|| self.pair.id.cmp(&other.pair.id))
    }
}

/// The name of a dimension's grade in a label.
fn dimension_grade<'p>(p: &'p LabelingProgram, l: &Label, d: usize) -> Option<&'p str> {
    let g = l.grades.get(d).copied().flatten()?;
    p.dimensions
        .get(d)?
        .grades
        .get(g as usize)
        .map(|b| b.name.as_str())
}

/// The size of a pair's overall change: |Δ| of the scores, 1 when one side abstains.
fn magnitude(old: Option<f64>, new: Option<f64>) -> f64 {
    match (old, new) {
        (Some(a), Some(b)) => (b - a).abs(),
        (None, None) => 0.0,
        _ => 1.0,
    }
}

/// The counters of a diff run: feed it pairs labeled by both policies, then `report`.
pub struct Diff<'e> {
    old: &'e Engine,
    new: &'e Engine,
    sample_size: usize,
    pairs: u64,
    compared: u64,
    unreadable_old: u64,
    unreadable_new: u64,
    unreadable_examples: Vec<String>,
    changed: u64,
    both_scored: u64,
    score_changed: u64,
    sum: f64,
    sum_abs: f64,
    started_abstaining: u64,
    stopped_abstaining: u64,
    grade_changed: u64,
    up: u64,
    down: u64,
    no_grade: u64,
    unranked: u64,
    grades: Vec<String>,
    transitions: Vec<Vec<u64>>,
    /// New dimensions, by index, with their index in the old program.
    common: Vec<(usize, usize)>,
    dimensions: Vec<DimensionAcc>,
    /// Rule names: the new policy's, then the old policy's removed rules.
    rule_names: Vec<String>,
    /// Per entry of `rule_names`: its index in the old and the new program.
    rule_index: Vec<(Option<usize>, Option<usize>)>,
    rules: Vec<RuleAcc>,
    sample: BinaryHeap<Candidate>,
}

impl<'e> Diff<'e> {
    pub fn new(old: &'e Engine, new: &'e Engine, sample_size: usize) -> Self {
        let (o, n) = (&old.program, &new.program);
        let grades = grade_order(o, n);
        let common: Vec<(usize, usize)> = n
            .dimensions
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                o.dimensions
                    .iter()
                    .position(|x| x.name == d.name)
                    .map(|j| (i, j))
            })
            .collect();
        let mut rule_names = Vec::new();
        let mut rule_index = Vec::new();
        for (i, r) in n.rules.iter().enumerate() {
            rule_names.push(r.name.clone());
            rule_index.push((o.rules.iter().position(|x| x.name == r.name), Some(i)));
        }
        for (i, r) in o.rules.iter().enumerate() {
            if !n.rules.iter().any(|x| x.name == r.name) {
                rule_names.push(r.name.clone());
                rule_index.push((Some(i), None));
            }
        }
        Diff {
            old,
            new,
            sample_size,
            pairs: 0,
            compared: 0,
            unreadable_old: 0,
            unreadable_new: 0,
            unreadable_examples: Vec::new(),
            changed: 0,
            both_scored: 0,
            score_changed: 0,
            sum: 0.0,
            sum_abs: 0.0,
            started_abstaining: 0,
            stopped_abstaining: 0,
            grade_changed: 0,
            up: 0,
            down: 0,
            no_grade: 0,
            unranked: 0,
            transitions: vec![vec![0; grades.len()]; grades.len()],
            grades,
            dimensions: vec![DimensionAcc::default(); common.len()],
            common,
            rules: vec![RuleAcc::default(); rule_names.len()],
            rule_names,
            rule_index,
            sample: BinaryHeap::new(),
        }
    }

    /// Counts one row: labeled by both, or unreadable by one or both.
    pub fn add_row(&mut self, row: &Row) {
        self.pairs += 1;
        match (row.outcomes.first(), row.outcomes.get(1)) {
            (Some(Ok(old)), Some(Ok(new))) => self.add(old, new),
            (old, new) => {
                for (side, outcome) in [("old", old), ("new", new)] {
                    if let Some(Err(e)) = outcome {
                        if side == "old" {
                            self.unreadable_old += 1;
                        } else {
                            self.unreadable_new += 1;
                        }
                        if self.unreadable_examples.len() < ERROR_EXAMPLES {
                            self.unreadable_examples
                                .push(format!("by the {side} policy: {e}"));
                        }
                    }
                }
            }
        }
    }

    fn grade_slot(&self, grade: Option<&str>) -> usize {
        let name = grade.unwrap_or(NO_GRADE);
        self.grades
            .iter()
            .position(|g| g == name)
            .unwrap_or(self.grades.len() - 1)
    }

    /// Counts one pair labeled by both policies.
    pub fn add(&mut self, old: &Labeled, new: &Labeled) {
        let (po, pn) = (&self.old.program, &self.new.program);
        self.compared += 1;
        let (a, b) = (&old.label, &new.label);

        let mut changed = false;
        match (a.overall, b.overall) {
            (Some(x), Some(y)) => {
                self.both_scored += 1;
                self.sum += y - x;
                self.sum_abs += (y - x).abs();
                if (y - x).abs() > EPSILON {
                    self.score_changed += 1;
                    changed = true;
                }
            }
            (Some(_), None) => {
                self.started_abstaining += 1;
                changed = true;
            }
            (None, Some(_)) => {
                self.stopped_abstaining += 1;
                changed = true;
            }
            (None, None) => {}
        }
        let ga = overall_grade_name(po, a);
        let gb = overall_grade_name(pn, b);
        let (sa, sb) = (
            self.grade_slot(ga.as_deref()),
            self.grade_slot(gb.as_deref()),
        );
        if let Some(c) = self.transitions.get_mut(sa).and_then(|r| r.get_mut(sb)) {
            *c += 1;
        }
        match direction(pn, ga.as_deref(), gb.as_deref()) {
            Direction::Same => {}
            d => {
                changed = true;
                self.grade_changed += 1;
                match d {
                    Direction::Up => self.up += 1,
                    Direction::Down => self.down += 1,
                    Direction::NoGrade => self.no_grade += 1,
                    _ => self.unranked += 1,
                }
            }
        }

        for (k, (i, j)) in self.common.iter().enumerate() {
            let Some(acc) = self.dimensions.get_mut(k) else {
                continue;
            };
            let x = a.dimensions.get(*j).copied().flatten();
            let y = b.dimensions.get(*i).copied().flatten();
            match (x, y) {
                (Some(x), Some(y)) => {
                    acc.both += 1;
                    acc.sum += y - x;
                    acc.sum_abs += (y - x).abs();
                    if (y - x).abs() > CHANGE_THRESHOLD {
                        acc.changed += 1;
                    }
                }
                (Some(_), None) => acc.started_abstaining += 1,
                (None, Some(_)) => acc.stopped_abstaining += 1,
                (None, None) => {}
            }
            if dimension_grade(po, a, *j) != dimension_grade(pn, b, *i) {
                acc.grade_changed += 1;
            }
        }

        for (k, (io, inew)) in self.rule_index.iter().enumerate() {
            let fired_old = io.is_some_and(|r| old.fired.iter().any(|f| *f as usize == r));
            let fired_new = inew.is_some_and(|r| new.fired.iter().any(|f| *f as usize == r));
            if let Some(acc) = self.rules.get_mut(k) {
                acc.old += u64::from(fired_old);
                acc.new += u64::from(fired_new);
                acc.started += u64::from(fired_new && !fired_old);
                acc.stopped += u64::from(fired_old && !fired_new);
            }
        }

        if changed {
            self.changed += 1;
            self.consider(old, new, ga, gb);
        }
    }

    fn consider(&mut self, old: &Labeled, new: &Labeled, ga: Option<String>, gb: Option<String>) {
        if self.sample_size == 0 {
            return;
        }
        let m = magnitude(old.label.overall, new.label.overall);
        let grade_changed = ga != gb;
        if self.sample.len() >= self.sample_size
            && let Some(worst) = self.sample.peek()
        {
            let better = grade_changed
                .cmp(&worst.grade_changed)
                .then_with(|| m.total_cmp(&worst.magnitude))
                .then_with(|| worst.pair.id.cmp(&new.label.id));
            if better != Ordering::Greater {
                return;
            }
        }
        let pair = self.explain(old, new, ga, gb);
        self.sample.push(Candidate {
            grade_changed,
            magnitude: m,
            pair,
        });
        if self.sample.len() > self.sample_size {
            self.sample.pop();
        }
    }

    fn explain(
        &self,
        old: &Labeled,
        new: &Labeled,
        ga: Option<String>,
        gb: Option<String>,
    ) -> ChangedPair {
        let (po, pn) = (&self.old.program, &self.new.program);
        let mut dims: Vec<(f64, DimensionChange)> = self
            .common
            .iter()
            .filter_map(|(i, j)| {
                let x = old.label.dimensions.get(*j).copied().flatten();
                let y = new.label.dimensions.get(*i).copied().flatten();
                let m = magnitude(x, y);
                (m > EPSILON).then(|| {
                    (
                        m,
                        DimensionChange {
                            name: pn
                                .dimensions
                                .get(*i)
                                .map_or(String::new(), |d| d.name.clone()),
                            old: x,
                            new: y,
                        },
                    )
                })
            })
            .collect();
        // Largest change first; declaration order among equals (the sort is stable).
        dims.sort_by(|a, b| b.0.total_cmp(&a.0));
        dims.truncate(SAMPLE_DIMENSIONS);
        let names = |p: &LabelingProgram, fired: &[u32]| -> Vec<String> {
            fired
                .iter()
                .filter_map(|r| p.rules.get(*r as usize).map(|r| r.name.clone()))
                .collect()
        };
        let (fo, fnew) = (names(po, &old.fired), names(pn, &new.fired));
        let decided_by = |p: &LabelingProgram, l: &Labeled| -> Vec<String> {
            decided(p, &l.label, &l.fired)
                .iter()
                .filter_map(|r| p.rules.get(*r as usize))
                .map(|r| format!("{} ({})", r.name, action_text(&r.action)))
                .collect()
        };
        ChangedPair {
            id: new.label.id.clone(),
            old_mean: mean_before_rules(po, &old.label.dimensions)
                .filter(|_| old.label.overall.is_some()),
            new_mean: mean_before_rules(pn, &new.label.dimensions)
                .filter(|_| new.label.overall.is_some()),
            old_decided: decided_by(po, old),
            new_decided: decided_by(pn, new),
            old_overall: old.label.overall,
            new_overall: new.label.overall,
            old_grade: ga,
            new_grade: gb,
            dimensions: dims.into_iter().map(|(_, d)| d).collect(),
            rules_started: fnew.iter().filter(|r| !fo.contains(r)).cloned().collect(),
            rules_stopped: fo.iter().filter(|r| !fnew.contains(r)).cloned().collect(),
        }
    }

    pub fn report(&self) -> DiffReport {
        let (po, pn) = (&self.old.program, &self.new.program);
        let mut dimensions = Vec::new();
        for (k, d) in pn.dimensions.iter().enumerate() {
            let old = self
                .common
                .iter()
                .position(|(i, _)| *i == k)
                .and_then(|c| self.common.get(c).map(|(_, j)| (c, *j)));
            match old {
                Some((c, j)) => {
                    let acc = self.dimensions.get(c).cloned().unwrap_or_default();
                    let n = acc.both;
                    dimensions.push(DimensionShift {
                        name: d.name.clone(),
                        status: Status::Kept,
                        old_weight: po.dimensions.get(j).map(|x| x.weight),
                        new_weight: Some(d.weight),
                        both_scored: n,
                        mean_change: (n > 0).then(|| acc.sum / n as f64),
                        mean_abs_change: (n > 0).then(|| acc.sum_abs / n as f64),
                        changed: acc.changed,
                        started_abstaining: acc.started_abstaining,
                        stopped_abstaining: acc.stopped_abstaining,
                        grade_changed: acc.grade_changed,
                    });
                }
                None => dimensions.push(DimensionShift::only(
                    d.name.clone(),
                    Status::Added,
                    None,
                    Some(d.weight),
                )),
            }
        }
        for d in &po.dimensions {
            if !pn.dimensions.iter().any(|x| x.name == d.name) {
                dimensions.push(DimensionShift::only(
                    d.name.clone(),
                    Status::Removed,
                    Some(d.weight),
                    None,
                ));
            }
        }
        let compared = self.compared;
        let rules = self
            .rule_names
            .iter()
            .zip(&self.rule_index)
            .zip(&self.rules)
            .map(|((name, (io, inew)), acc)| {
                let action = |p: &LabelingProgram, i: &Option<usize>| {
                    i.and_then(|i| p.rules.get(i))
                        .map(|r| action_text(&r.action))
                };
                let (old_action, new_action) = (action(po, io), action(pn, inew));
                let status = match (io, inew) {
                    (Some(_), Some(_)) => Status::Kept,
                    (None, _) => Status::Added,
                    (_, None) => Status::Removed,
                };
                RuleShift {
                    changed: status != Status::Kept
                        || old_action != new_action
                        || acc.started > 0
                        || acc.stopped > 0,
                    name: name.clone(),
                    status,
                    old_action,
                    new_action,
                    old_fired: acc.old,
                    new_fired: acc.new,
                    old_fire_rate: rate(acc.old, compared),
                    new_fire_rate: rate(acc.new, compared),
                    started: acc.started,
                    stopped: acc.stopped,
                }
            })
            .collect();
        let transitions = self
            .grades
            .iter()
            .zip(&self.transitions)
            .flat_map(|(from, row)| {
                self.grades
                    .iter()
                    .zip(row)
                    .filter(|(_, c)| **c > 0)
                    .map(|(to, c)| Transition {
                        from: from.clone(),
                        to: to.clone(),
                        count: *c,
                    })
            })
            .collect();
        let mut sample: Vec<Candidate> = self.sample.clone().into_vec();
        sample.sort();
        let n = self.both_scored;
        DiffReport {
            old: PolicySummary::of(po),
            new: PolicySummary::of(pn),
            pairs: self.pairs,
            compared,
            unreadable_old: self.unreadable_old,
            unreadable_new: self.unreadable_new,
            unreadable_examples: self.unreadable_examples.clone(),
            changed: self.changed,
            overall: OverallShift {
                both_scored: n,
                score_changed: self.score_changed,
                mean_change: (n > 0).then(|| self.sum / n as f64),
                mean_abs_change: (n > 0).then(|| self.sum_abs / n as f64),
                started_abstaining: self.started_abstaining,
                stopped_abstaining: self.stopped_abstaining,
                grade_changed: self.grade_changed,
                up: self.up,
                down: self.down,
                to_or_from_no_grade: self.no_grade,
                unranked: self.unranked,
            },
            grades: self.grades.clone(),
            matrix: self.transitions.clone(),
            transitions,
            dimensions,
            rules,
            sample: sample.into_iter().map(|c| c.pair).collect(),
        }
    }
}

/// Labels a stream of pairs with both policies and compares the labels.
pub fn diff_stream(
    old: &Engine,
    new: &Engine,
    input: &mut dyn BufRead,
    sample: usize,
) -> io::Result<DiffReport> {
    diff_stream_batched(old, new, input, sample, DEFAULT_BATCH_ROWS)
}

/// [`diff_stream`] with a batch size (rows labeled together).
pub fn diff_stream_batched(
    old: &Engine,
    new: &Engine,
    input: &mut dyn BufRead,
    sample: usize,
    batch_rows: usize,
) -> io::Result<DiffReport> {
    let mut diff = Diff::new(old, new, sample);
    scan(&[old, new], input, batch_rows, &mut |row| {
        diff.add_row(&row)
    })?;
    Ok(diff.report())
}

/// Whether a dimension or rule is in both versions, or only one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Kept,
    Added,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OverallShift {
    /// Pairs both policies gave an overall score.
    pub both_scored: u64,
    /// Of those, the pairs whose score changed.
    pub score_changed: u64,
    /// Mean of new − old over `both_scored`.
    pub mean_change: Option<f64>,
    pub mean_abs_change: Option<f64>,
    /// Scored by the old policy, abstained under the new.
    pub started_abstaining: u64,
    pub stopped_abstaining: u64,
    pub grade_changed: u64,
    /// Moved to a better band of the new policy (`excluded` is below every band).
    pub up: u64,
    pub down: u64,
    pub to_or_from_no_grade: u64,
    /// Changed to or from a grade that is not a band of the new policy.
    pub unranked: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Transition {
    pub from: String,
    pub to: String,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DimensionShift {
    pub name: String,
    pub status: Status,
    pub old_weight: Option<f64>,
    pub new_weight: Option<f64>,
    /// Pairs both versions scored.
    pub both_scored: u64,
    pub mean_change: Option<f64>,
    pub mean_abs_change: Option<f64>,
    /// Pairs whose score moved by more than 0.01.
    pub changed: u64,
    pub started_abstaining: u64,
    pub stopped_abstaining: u64,
    pub grade_changed: u64,
}

impl DimensionShift {
    fn only(name: String, status: Status, old: Option<f64>, new: Option<f64>) -> Self {
        DimensionShift {
            name,
            status,
            old_weight: old,
            new_weight: new,
            both_scored: 0,
            mean_change: None,
            mean_abs_change: None,
            changed: 0,
            started_abstaining: 0,
            stopped_abstaining: 0,
            grade_changed: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleShift {
    pub name: String,
    pub status: Status,
    pub old_action: Option<String>,
    pub new_action: Option<String>,
    /// Pairs on which its condition held, under each version.
    pub old_fired: u64,
    pub new_fired: u64,
    pub old_fire_rate: f64,
    pub new_fire_rate: f64,
    /// Pairs it fires on now and did not before.
    pub started: u64,
    pub stopped: u64,
    /// Whether the edit touched the rule: added, removed, another action, other pairs.
    pub changed: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DimensionChange {
    pub name: String,
    pub old: Option<f64>,
    pub new: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChangedPair {
    pub id: String,
    /// The weighted mean of the dimensions before any rule (none when the overall abstains).
    pub old_mean: Option<f64>,
    pub new_mean: Option<f64>,
    /// The rules that decided the outcome, with their action.
    pub old_decided: Vec<String>,
    pub new_decided: Vec<String>,
    pub old_overall: Option<f64>,
    pub new_overall: Option<f64>,
    pub old_grade: Option<String>,
    pub new_grade: Option<String>,
    /// The dimensions whose score changed most (at most three).
    pub dimensions: Vec<DimensionChange>,
    pub rules_started: Vec<String>,
    pub rules_stopped: Vec<String>,
}

/// The result of `rubric diff`: serializable (`--json`) and printable (`to_text`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DiffReport {
    pub old: PolicySummary,
    pub new: PolicySummary,
    /// Rows read (blank lines are not rows).
    pub pairs: u64,
    /// Rows both policies labeled.
    pub compared: u64,
    pub unreadable_old: u64,
    pub unreadable_new: u64,
    pub unreadable_examples: Vec<String>,
    /// Pairs whose overall score or grade changed.
    pub changed: u64,
    pub overall: OverallShift,
    /// The order of `matrix`'s rows (old grade) and columns (new grade).
    pub grades: Vec<String>,
    pub matrix: Vec<Vec<u64>>,
    /// The non-zero cells of `matrix`.
    pub transitions: Vec<Transition>,
    pub dimensions: Vec<DimensionShift>,
    /// Every rule of either version; `changed` says which the edit touched.
    pub rules: Vec<RuleShift>,
    /// Changed pairs: those whose grade changed first, then the largest changes of the overall
    /// score, ties by id.
    pub sample: Vec<ChangedPair>,
}

fn score(s: Option<f64>) -> String {
    s.map_or("abstain".to_string(), short)
}

fn signed(x: Option<f64>) -> String {
    match x {
        Some(x) if x.abs() < 0.00005 => "0.0000".to_string(),
        Some(x) => format!("{x:+.4}"),
        None => "-".to_string(),
    }
}

fn weight(w: Option<f64>) -> String {
    w.map_or("-".to_string(), |w| format!("{}%", short(w * 100.0)))
}

fn push_line(out: &mut String, line: &str) {
    let _ = writeln!(out, "{}", line.trim_end());
}

impl DiffReport {
    /// The readable review: deterministic, sorted, no paths and no timings.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let n = self.compared;
        push_line(
            &mut out,
            &format!(
                "diff of policy {} → {}",
                self.old.describe(),
                self.new.describe()
            ),
        );
        push_line(
            &mut out,
            &format!(
                "pairs: {} read, {} labeled by both (unreadable: {} by the old policy, {} by the new)",
                self.pairs, n, self.unreadable_old, self.unreadable_new
            ),
        );
        for e in &self.unreadable_examples {
            push_line(&mut out, &format!("  unreadable {e}"));
        }
        push_line(
            &mut out,
            &format!(
                "changed: {} of {} ({}) changed overall score or grade",
                self.changed,
                pairs(n),
                percent(self.changed, n)
            ),
        );

        let o = &self.overall;
        out.push('\n');
        push_line(&mut out, "overall score (Δ = new − old)");
        push_line(
            &mut out,
            &format!(
                "  {} of {} scored by both changed; mean Δ {}, mean |Δ| {}",
                o.score_changed,
                o.both_scored,
                signed(o.mean_change),
                signed(o.mean_abs_change).trim_start_matches('+'),
            ),
        );
        push_line(
            &mut out,
            &format!(
                "  abstains now and did not before: {}; no longer abstains: {}",
                o.started_abstaining, o.stopped_abstaining
            ),
        );
        out.push('\n');
        push_line(
            &mut out,
            "overall grade (up and down by the new policy's bands; excluded is below every band)",
        );
        push_line(
            &mut out,
            &format!(
                "  {} ({}) changed grade: {} up, {} down, {} to or from no grade{}",
                pairs(o.grade_changed),
                percent(o.grade_changed, n),
                o.up,
                o.down,
                o.to_or_from_no_grade,
                if o.unranked > 0 {
                    format!(
                        ", {} to or from a grade that is not a band of the new policy",
                        o.unranked
                    )
                } else {
                    String::new()
                }
            ),
        );
        // Show the grades either version uses, and every band of the new policy.
        let shown: Vec<usize> = self
            .grades
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let used = self
                    .matrix
                    .get(*i)
                    .is_some_and(|r| r.iter().any(|c| *c > 0))
                    || self
                        .matrix
                        .iter()
                        .any(|r| r.get(*i).is_some_and(|c| *c > 0));
                used || *i < self.grades.len().saturating_sub(2)
            })
            .map(|(i, _)| i)
            .collect();
        let corner = "old ↓  new →";
        let first = shown
            .iter()
            .filter_map(|i| self.grades.get(*i))
            .map(|g| g.chars().count())
            .max()
            .unwrap_or(0)
            .max(corner.chars().count());
        let mut header = format!("  {corner:<first$}");
        for i in &shown {
            let g = self.grades.get(*i).map_or("", String::as_str);
            let w = g.chars().count().max(6);
            let _ = write!(header, "  {g:>w$}");
        }
        push_line(&mut out, &header);
        for r in &shown {
            let g = self.grades.get(*r).map_or("", String::as_str);
            let mut line = format!("  {g:<first$}");
            for c in &shown {
                let name = self.grades.get(*c).map_or("", String::as_str);
                let w = name.chars().count().max(6);
                let count = self
                    .matrix
                    .get(*r)
                    .and_then(|row| row.get(*c))
                    .copied()
                    .unwrap_or(0);
                let _ = write!(line, "  {count:>w$}");
            }
            push_line(&mut out, &line);
        }

        out.push('\n');
        push_line(
            &mut out,
            &format!(
                "dimensions (on pairs both versions scored; changed: |Δ| > {CHANGE_THRESHOLD})"
            ),
        );
        let name_width = self
            .dimensions
            .iter()
            .map(|d| d.name.len())
            .max()
            .unwrap_or(0)
            .max("dimension".len());
        push_line(
            &mut out,
            &format!(
                "  {:<name_width$}  {:>11}  {:>8}  {:>8}  {:>7}  {:>13}  {:>18}  {:>18}",
                "dimension",
                "weight",
                "mean Δ",
                "mean |Δ|",
                "changed",
                "grade changed",
                "started abstaining",
                "stopped abstaining"
            ),
        );
        for d in &self.dimensions {
            let line = match d.status {
                Status::Kept => {
                    let w = if d.old_weight == d.new_weight {
                        weight(d.new_weight)
                    } else {
                        format!("{} → {}", weight(d.old_weight), weight(d.new_weight))
                    };
                    format!(
                        "  {:<name_width$}  {:>11}  {:>8}  {:>8}  {:>7}  {:>13}  {:>18}  {:>18}",
                        d.name,
                        w,
                        signed(d.mean_change),
                        signed(d.mean_abs_change).trim_start_matches('+'),
                        d.changed,
                        d.grade_changed,
                        d.started_abstaining,
                        d.stopped_abstaining,
                    )
                }
                Status::Added => format!(
                    "  {:<name_width$}  {:>11}  added",
                    d.name,
                    format!("- → {}", weight(d.new_weight))
                ),
                Status::Removed => format!(
                    "  {:<name_width$}  {:>11}  removed",
                    d.name,
                    format!("{} → -", weight(d.old_weight))
                ),
            };
            push_line(&mut out, &line);
        }

        out.push('\n');
        let changed: Vec<&RuleShift> = self.rules.iter().filter(|r| r.changed).collect();
        if changed.is_empty() {
            push_line(
                &mut out,
                &format!("rules: none changed ({} unchanged)", self.rules.len()),
            );
        } else {
            push_line(
                &mut out,
                &format!(
                    "rules changed (fired: the condition held; {} unchanged)",
                    self.rules.len() - changed.len()
                ),
            );
            let name_width = changed
                .iter()
                .map(|r| r.name.len())
                .max()
                .unwrap_or(0)
                .max("rule".len());
            let action = |r: &RuleShift| match (&r.old_action, &r.new_action) {
                (Some(a), Some(b)) if a == b => a.clone(),
                (Some(a), Some(b)) => format!("{a} → {b}"),
                (None, Some(b)) => format!("added: {b}"),
                (Some(a), None) => format!("removed: {a}"),
                (None, None) => String::new(),
            };
            let action_width = changed
                .iter()
                .map(|r| action(r).chars().count())
                .max()
                .unwrap_or(0)
                .max("action".len());
            let fired = |c: u64| format!("{c} ({})", percent(c, n));
            push_line(
                &mut out,
                &format!(
                    "  {:<name_width$}  {:<action_width$}  {:>29}  {:>7}  {:>7}",
                    "rule", "action", "fired old → new", "started", "stopped"
                ),
            );
            for r in changed {
                let a = action(r);
                let pad = action_width + a.len() - a.chars().count();
                push_line(
                    &mut out,
                    &format!(
                        "  {:<name_width$}  {:<pad$}  {:>29}  {:>7}  {:>7}",
                        r.name,
                        a,
                        format!("{} → {}", fired(r.old_fired), fired(r.new_fired)),
                        r.started,
                        r.stopped,
                    ),
                );
            }
        }

        out.push('\n');
        if self.sample.is_empty() {
            push_line(&mut out, "sample: no pair changed");
        } else {
            push_line(
                &mut out,
                &format!(
                    "sample: {} changed (grade changes first, then the largest change of the overall score, ties by id)",
                    pairs(self.sample.len() as u64)
                ),
            );
            for p in &self.sample {
                let grade = |g: &Option<String>| g.clone().unwrap_or_else(|| NO_GRADE.to_string());
                let grades = if p.old_grade == p.new_grade {
                    format!("{} (unchanged)", grade(&p.new_grade))
                } else {
                    format!("{} → {}", grade(&p.old_grade), grade(&p.new_grade))
                };
                push_line(
                    &mut out,
                    &format!(
                        "  {}: overall {} → {}, grade {grades}",
                        p.id,
                        score(p.old_overall),
                        score(p.new_overall),
                    ),
                );
                push_line(
                    &mut out,
                    &format!(
                        "    mean before rules {} → {}",
                        score(p.old_mean),
                        score(p.new_mean)
                    ),
                );
                let by = |d: &[String]| {
                    if d.is_empty() {
                        "the mean".to_string()
                    } else {
                        d.join(", ")
                    }
                };
                if p.old_decided != p.new_decided || !p.new_decided.is_empty() {
                    push_line(
                        &mut out,
                        &format!(
                            "    decided by {} → {}",
                            by(&p.old_decided),
                            by(&p.new_decided)
                        ),
                    );
                }
                if !p.dimensions.is_empty() {
                    let dims: Vec<String> = p
                        .dimensions
                        .iter()
                        .map(|d| format!("{} {} → {}", d.name, score(d.old), score(d.new)))
                        .collect();
                    push_line(&mut out, &format!("    dimensions: {}", dims.join(", ")));
                }
                if !p.rules_started.is_empty() {
                    push_line(
                        &mut out,
                        &format!("    started firing: {}", p.rules_started.join(", ")),
                    );
                }
                if !p.rules_stopped.is_empty() {
                    push_line(
                        &mut out,
                        &format!("    stopped firing: {}", p.rules_stopped.join(", ")),
                    );
                }
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

    const OLD: &str = r#"policy p version 1 {
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
  rule gone { when query.x < 0  exclude  because "negative" }
  grade overall { good when overall >= 0.5  fair when overall >= 0.3  bad otherwise }
}
"#;

    fn engine(text: &str) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.policy");
        std::fs::write(&path, text).unwrap();
        let compiled = crate::compile::compile_file(&path, &Options::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Engine::new(compiled.lowered.labeling)
    }

    fn rows() -> String {
        (0..200)
            .map(|i| {
                let x = (i % 23) as f64 / 20.0 - 0.05;
                let y = if i % 3 == 0 { "null".to_string() } else { ((i % 7) as f64 / 6.0).to_string() };
                format!(
                    "{{\"id\": \"p{i:03}\", \"query\": {{\"x\": {x}, \"flag\": {}}}, \"candidate\": {{\"x\": 0, \"y\": {y}, \"flag\": false}}}}\n",
                    i % 5 == 0
                )
            })
            .collect()
    }

    #[test]
    fn the_same_policy_changes_nothing() {
        let old = engine(OLD);
        let report = diff_stream(&old, &old, &mut rows().as_bytes(), 5).unwrap();
        assert_eq!(report.compared, 200);
        assert_eq!(report.changed, 0);
        assert!(report.sample.is_empty());
        assert!(report.rules.iter().all(|r| !r.changed));
        assert!(report.transitions.iter().all(|t| t.from == t.to));
        assert!(report.to_text().contains("sample: no pair changed"));
    }

    #[test]
    fn an_edit_is_explained() {
        let old = engine(OLD);
        let new_text = OLD
            .replace("weight 60%", "weight 50%")
            .replace(
                "rule capped { when query.flag  cap overall at 0.5",
                "rule capped { when query.flag or query.x > 0.9  cap overall at 0.4",
            )
            .replace(
                "  rule gone { when query.x < 0  exclude  because \"negative\" }\n",
                "",
            )
            .replace(
                "  dimension e weight 40%",
                "  dimension f weight 10% { score = 0.5 }\n  dimension e weight 40%",
            );
        let new = engine(&new_text);
        let a = diff_stream_batched(&old, &new, &mut rows().as_bytes(), 3, 7).unwrap();
        let b = diff_stream_batched(&old, &new, &mut rows().as_bytes(), 3, 8192).unwrap();
        assert_eq!(a, b, "the batch size changes nothing");
        assert_eq!(a.sample.len(), 3);
        assert!(a.changed > 0);
        let statuses: Vec<(&str, Status)> = a
            .dimensions
            .iter()
            .map(|d| (d.name.as_str(), d.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("d", Status::Kept),
                ("f", Status::Added),
                ("e", Status::Kept)
            ]
        );
        let d = &a.dimensions[0];
        assert_eq!((d.old_weight, d.new_weight), (Some(0.6), Some(0.5)));
        assert_eq!(d.changed, 0);
        let capped = a.rules.iter().find(|r| r.name == "capped").unwrap();
        assert_eq!(capped.old_action.as_deref(), Some("cap 0.5"));
        assert_eq!(capped.new_action.as_deref(), Some("cap 0.4"));
        assert!(capped.started > 0 && capped.stopped == 0);
        let gone = a.rules.iter().find(|r| r.name == "gone").unwrap();
        assert_eq!(gone.status, Status::Removed);
        // Excluded pairs are no longer excluded: they moved up.
        assert!(
            a.transitions
                .iter()
                .any(|t| t.from == "excluded" && t.to != "excluded")
        );
        assert!(a.overall.up > 0);
        // The sample is sorted by the size of the change, then id.
        let m: Vec<f64> = a
            .sample
            .iter()
            .map(|p| magnitude(p.old_overall, p.new_overall))
            .collect();
        assert!(m.windows(2).all(|w| w[0] >= w[1]), "{m:?}");
        let text = a.to_text();
        assert!(text.contains("cap 0.5 → cap 0.4"), "{text}");
        assert!(text.contains("removed: exclude"), "{text}");
        assert!(text.contains("60% → 50%"), "{text}");
    }

    #[test]
    fn directions_follow_the_new_bands() {
        let p = engine(OLD).program;
        assert_eq!(direction(&p, Some("bad"), Some("good")), Direction::Up);
        assert_eq!(
            direction(&p, Some("good"), Some("excluded")),
            Direction::Down
        );
        assert_eq!(direction(&p, Some("excluded"), Some("bad")), Direction::Up);
        assert_eq!(direction(&p, None, Some("bad")), Direction::NoGrade);
        assert_eq!(
            direction(&p, Some("gone"), Some("bad")),
            Direction::Unranked
        );
        assert_eq!(direction(&p, Some("bad"), Some("bad")), Direction::Same);
    }
}
