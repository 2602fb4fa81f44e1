//! The labeling engine: evaluates a labeling program on a batch of decoded pairs, a chunk of rows
//! at a time (or on one pair, as a batch of one). Dimension scores (or abstentions), grades, the
//! weighted overall score, then the rules in their fixed order: exclude, caps (lowest wins),
//! floors (highest wins), set grade. Labels are written by column (`Labels`).

use super::batch::PairBatch;
use super::compiled::{Bands, CHUNK, Compiled, Env, NONE, Threshold, chunk_rows, compile, select};
use super::decode::Pair;
use super::value::{BaseStrings, Interner};
use rubric_compiler::lower::ir::*;
use std::sync::Mutex;

/// Decimals every score keeps: dimension scores (after the clamp) and the overall score (the
/// weighted mean, and again after caps and floors) are rounded to this many decimals before
/// anything reads them: grade bands, rules, labels, traces and examples' expectations. Binary
/// floating point leaves noise in the 16th digit (0.1 + 0.7 is 0.7999999999999999); rounding
/// removes it, so `0.8` meets `>= 0.8` and a label prints `0.88`, not `0.8799999999999999`.
/// Six decimals keep far more than a policy can mean (its literals have two or three, a percent
/// weight like `12.25%` four) and more than a model learns (f32 labels hold about seven
/// significant digits), while the noise of summing a policy's terms is below 1e-12.
pub const SCORE_DECIMALS: i32 = 6;

/// A score rounded to [`SCORE_DECIMALS`] decimals (half away from zero); an abstention (NaN)
/// stays one. `k / 1e6` is the double nearest the decimal, so it prints as that decimal.
#[inline]
pub fn round_score(x: f64) -> f64 {
    const SCALE: f64 = 1e6;
    (x * SCALE).round() / SCALE
}

/// What a pair's overall grade is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverallGrade {
    /// A band of `grade overall`, by index.
    Band(u32),
    /// Set by a `set grade` rule, by rule index.
    SetByRule(u32),
    /// An `exclude` rule fired.
    Excluded,
}

impl OverallGrade {
    /// The grade's name: a band's, the grade a rule set, or `excluded`. The one place a label's
    /// overall grade becomes its name (labels' JSON, trace, stats, diff and documents).
    pub fn name(self, program: &LabelingProgram) -> Option<String> {
        match self {
            OverallGrade::Band(b) => program
                .overall
                .grades
                .get(b as usize)
                .map(|b| b.name.clone()),
            OverallGrade::SetByRule(r) => {
                program.rules.get(r as usize).and_then(|r| match &r.action {
                    RuleActionIr::SetGrade(g) => Some(g.clone()),
                    _ => None,
                })
            }
            OverallGrade::Excluded => Some(rubric_compiler::check::EXCLUDED.to_string()),
        }
    }
}

/// The labels of one pair.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub id: String,
    /// Each dimension's score, `None` when it abstained.
    pub dimensions: Vec<Option<f64>>,
    /// Each dimension's grade band, `None` when it abstained or has no bands.
    pub grades: Vec<Option<u32>>,
    /// `None` when too few dimensions voted (and no `exclude` fired).
    pub overall: Option<f64>,
    pub overall_grade: Option<OverallGrade>,
    /// The rules that fired and took effect, by index, in declaration order.
    pub rules: Vec<u32>,
}

/// Things the runtime corrected or decided on a pair, counted for `rubric stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Events {
    /// Per dimension: scores outside [0, 1] that were clamped.
    pub clamped: Vec<u64>,
    /// Per dimension: abstentions caused by a division by zero or a non-finite number.
    pub undefined: Vec<u64>,
    /// Function results outside their declared range, clamped.
    pub function_clamped: u64,
}

impl Events {
    pub fn new(dimensions: usize) -> Self {
        Events {
            clamped: vec![0; dimensions],
            undefined: vec![0; dimensions],
            function_clamped: 0,
        }
    }

    pub fn merge(&mut self, other: &Events) {
        for (a, b) in self.clamped.iter_mut().zip(&other.clamped) {
            *a += b;
        }
        for (a, b) in self.undefined.iter_mut().zip(&other.undefined) {
            *a += b;
        }
        self.function_clamped += other.function_clamped;
    }
}

/// A labeling program ready to evaluate.
pub struct Engine {
    pub program: LabelingProgram,
    pub strings: BaseStrings,
    compiled: Compiled,
    rule_kinds: RuleKinds,
    total_weight: f64,
    /// Batches and labels for labeling one pair at a time, kept between calls so that each call
    /// does not allocate a batch's columns again.
    spare: Mutex<Vec<(PairBatch, Labels)>>,
}

/// Per-evaluation state: the batch's strings, optional clause hits, the events counted.
pub struct Ctx<'s, 'p> {
    pub strings: &'s mut Interner<'p>,
    /// When present, `hits[clause]` is set for every clause the pair exercised.
    pub hits: Option<&'s mut Vec<bool>>,
    pub events: &'s mut Events,
}

impl<'s, 'p> Ctx<'s, 'p> {
    pub fn new(
        strings: &'s mut Interner<'p>,
        events: &'s mut Events,
        hits: Option<&'s mut Vec<bool>>,
    ) -> Self {
        Ctx {
            strings,
            hits,
            events,
        }
    }

    pub(super) fn hit(&mut self, clause: u32) {
        if let Some(h) = self.hits.as_deref_mut()
            && let Some(slot) = h.get_mut(clause as usize)
        {
            *slot = true;
        }
    }
}

impl Engine {
    pub fn new(program: LabelingProgram) -> Self {
        let strings = BaseStrings::new(&program.strings);
        let compiled = compile(&program);
        let total_weight = program.dimensions.iter().map(|d| d.weight).sum();
        Engine {
            rule_kinds: RuleKinds::new(&program.rules),
            program,
            strings,
            compiled,
            total_weight,
            spare: Mutex::new(Vec::new()),
        }
    }

    /// Labels one pair.
    pub fn label(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>) -> Label {
        self.label_one(pair, ctx, None)
    }

    /// Labels one pair, and also returns every rule whose condition held, by index in
    /// declaration order, whether or not it took effect (a higher cap, an exclusion or an
    /// abstaining overall score can keep a fired rule out of `Label::rules`).
    pub fn label_with_fired(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>) -> (Label, Vec<u32>) {
        let mut fired = Vec::new();
        let label = self.label_one(pair, ctx, Some(&mut fired));
        (label, fired.pop().unwrap_or_default())
    }

    /// Labels one pair as a batch of one, with a spare batch and labels when there is one.
    fn label_one(
        &self,
        pair: &Pair,
        ctx: &mut Ctx<'_, '_>,
        fired: Option<&mut Vec<Vec<u32>>>,
    ) -> Label {
        let spare = self.spare.lock().ok().and_then(|mut s| s.pop());
        let (mut batch, mut out) =
            spare.unwrap_or_else(|| (PairBatch::new(&self.program), Labels::default()));
        batch.clear();
        out.clear();
        batch.push(pair);
        self.evaluate(&batch, ctx, &mut out, fired);
        let label = out
            .get(0)
            .map_or_else(|| self.abstaining(pair), |l| l.to_label());
        if let Ok(mut s) = self.spare.lock() {
            s.push((batch, out));
        }
        label
    }

    /// Labels every pair of a batch, in order, appending to `out`: the fast path, with no
    /// allocation per pair.
    pub fn label_batch(&self, batch: &PairBatch, ctx: &mut Ctx<'_, '_>, out: &mut Labels) {
        self.evaluate(batch, ctx, out, None);
    }

    /// Labels every pair of a batch as [`Engine::label_batch`] does, and appends, for each, every
    /// rule whose condition held (as [`Engine::label_with_fired`]) to `fired`.
    pub fn label_batch_with_fired(
        &self,
        batch: &PairBatch,
        ctx: &mut Ctx<'_, '_>,
        out: &mut Labels,
        fired: &mut Vec<Vec<u32>>,
    ) {
        self.evaluate(batch, ctx, out, Some(fired));
    }

    /// A label with nothing decided (never produced: every evaluated pair gets its own).
    fn abstaining(&self, pair: &Pair) -> Label {
        let n = self.program.dimensions.len();
        Label {
            id: pair.id.clone(),
            dimensions: vec![None; n],
            grades: vec![None; n],
            overall: None,
            overall_grade: None,
            rules: Vec::new(),
        }
    }

    /// Evaluates a batch a chunk of rows at a time, appending each pair's label to `out` and,
    /// when asked, the rules that fired for it to `fired`.
    fn evaluate(
        &self,
        batch: &PairBatch,
        ctx: &mut Ctx<'_, '_>,
        out: &mut Labels,
        mut fired_out: Option<&mut Vec<Vec<u32>>>,
    ) {
        out.dims = self.program.dimensions.len();
        let p = &self.program;
        let c = &self.compiled;
        let dims = p.dimensions.len();
        let mut env = Env::new(batch, ctx, c.slots, dims);
        let rows_per_chunk = chunk_rows(batch.len());
        let mut scores = vec![vec![NONE; rows_per_chunk]; dims];
        let mut grades = vec![vec![None; rows_per_chunk]; dims];
        let k = &self.rule_kinds;
        let words = k.words;
        // Each row's fired rules as a bit set of `words` words.
        let mut fired = vec![0u64; rows_per_chunk * words];
        let mut overall_grades: Vec<Option<u32>> = vec![None; rows_per_chunk];
        let mut outcome: Vec<Outcome> = vec![Outcome::Abstain; rows_per_chunk];
        let mut buf = vec![NONE; rows_per_chunk];
        let (mut sums, mut weights) = (vec![0.0; rows_per_chunk], vec![0.0; rows_per_chunk]);
        let mut truths = vec![None; rows_per_chunk];
        let mut all: Vec<u32> = Vec::with_capacity(rows_per_chunk);
        let mut rows: Vec<u32> = Vec::with_capacity(rows_per_chunk);
        let mut base = 0;
        while base < batch.len() {
            let n = (batch.len() - base).min(CHUNK);
            env.base = base;
            all.clear();
            all.extend(0..n as u32);

            for (i, d) in c.dimensions.iter().enumerate() {
                env.undefined.iter_mut().for_each(|u| *u = false);
                for (slot, code) in &d.lets {
                    env.set_slot(*slot, code, &all);
                }
                (d.score)(&mut env, &all, &mut buf);
                let (Some(dim), Some(grade)) = (scores.get_mut(i), grades.get_mut(i)) else {
                    continue;
                };
                rows.clear();
                for r in 0..n {
                    let s = buf.get(r).copied().unwrap_or(NONE);
                    let score = if s.is_nan() {
                        if env.undefined.get(r) == Some(&true)
                            && let Some(u) = env.ctx.events.undefined.get_mut(i)
                        {
                            *u += 1;
                        }
                        NONE
                    } else if (0.0..=1.0).contains(&s) {
                        round_score(s)
                    } else {
                        if let Some(c) = env.ctx.events.clamped.get_mut(i) {
                            *c += 1;
                        }
                        s.clamp(0.0, 1.0)
                    };
                    if let Some(x) = dim.get_mut(r) {
                        *x = score;
                    }
                    if let Some(g) = grade.get_mut(r) {
                        *g = None;
                    }
                    if let Some(x) = env.score.get_mut(r) {
                        *x = score;
                    }
                }
                // The rows that have a score are graded.
                select(&all, &mut rows, |r| {
                    !dim.get(r).copied().unwrap_or(NONE).is_nan()
                });
                if !d.bands.is_empty() {
                    let clauses = p.dimensions.get(i).map_or(&[][..], |d| &d.grades[..]);
                    band(
                        &d.bands,
                        clauses,
                        Subject::Score,
                        &mut env,
                        &rows,
                        grade,
                        &mut truths,
                    );
                }
                env.score.iter_mut().for_each(|x| *x = NONE);
            }

            // The weighted mean of the dimensions that voted; rules all read the scores before
            // any rule applies.
            // Summed a dimension at a time over the rows (each row's terms still in declaration
            // order), so the rows' additions do not wait on each other. Adding zero for a
            // dimension that abstained leaves the sums exactly as they were (every term is
            // non-negative) and spares a branch the data decides.
            sums.iter_mut().for_each(|x| *x = 0.0);
            weights.iter_mut().for_each(|x| *x = 0.0);
            for (d, s) in p.dimensions.iter().zip(&scores) {
                for ((sum, weight), s) in sums.iter_mut().zip(weights.iter_mut()).zip(s).take(n) {
                    let voted = !s.is_nan();
                    *sum += if voted { d.weight * s } else { 0.0 };
                    *weight += if voted { d.weight } else { 0.0 };
                }
            }
            for r in 0..n {
                let (sum, weight) = (
                    sums.get(r).copied().unwrap_or(0.0),
                    weights.get(r).copied().unwrap_or(0.0),
                );
                let covered = if self.total_weight > 0.0 {
                    weight / self.total_weight
                } else {
                    0.0
                };
                let mean = if weight > 0.0 && covered + 1e-12 >= p.overall.min_coverage {
                    round_score(sum / weight)
                } else {
                    NONE
                };
                if let Some(o) = env.overall.get_mut(r) {
                    *o = mean;
                }
            }
            std::mem::swap(&mut env.dims, &mut scores);
            fired.iter_mut().for_each(|w| *w = 0);
            for (i, when) in c.rules.iter().enumerate() {
                when(&mut env, &all, &mut truths);
                let (word, bit) = (i / 64, i % 64);
                for r in 0..n {
                    let holds = truths.get(r) == Some(&Some(true));
                    if let Some(w) = fired.get_mut(r * words + word) {
                        *w |= u64::from(holds) << bit;
                    }
                }
            }

            // Each pair's rules decide its overall score; the overall bands then grade the
            // pairs that have one and were not excluded.
            rows.clear();
            for r in 0..n {
                let mean = env.overall.get(r).copied().unwrap_or(NONE);
                let f = fired.get(r * words..(r + 1) * words).unwrap_or(&[]);
                let o = k.apply(f, mean);
                if let (Outcome::Scored(score), Some(x)) = (o, env.overall.get_mut(r)) {
                    *x = score;
                    rows.push(r as u32);
                }
                if let Some(x) = outcome.get_mut(r) {
                    *x = o;
                }
                if let Some(g) = overall_grades.get_mut(r) {
                    *g = None;
                }
            }
            band(
                &c.overall_bands,
                &p.overall.grades,
                Subject::Overall,
                &mut env,
                &rows,
                &mut overall_grades,
                &mut truths,
            );
            std::mem::swap(&mut env.dims, &mut scores);

            for r in 0..n {
                let f = fired.get(r * words..(r + 1) * words).unwrap_or(&[]);
                let rules_before = out.rules.len();
                let (overall, overall_grade) =
                    match outcome.get(r).copied().unwrap_or(Outcome::Abstain) {
                        Outcome::Excluded => {
                            each_bit(f, &k.exclude, |i| out.rules.push(i));
                            (0.0, Some(OverallGrade::Excluded))
                        }
                        Outcome::Scored(o) => {
                            let mut grade = overall_grades
                                .get(r)
                                .copied()
                                .flatten()
                                .map(OverallGrade::Band);
                            if let Some(first) = first_bit(f, &k.set_grade) {
                                grade = Some(OverallGrade::SetByRule(first));
                            }
                            // Every cap, floor and set grade that fired is recorded (the lowest
                            // cap and the highest floor decided the score), in declaration
                            // order.
                            each_bit(f, &k.recorded, |i| out.rules.push(i));
                            (o, grade)
                        }
                        Outcome::Abstain => (NONE, None),
                    };
                for i in out.rules.get(rules_before..).unwrap_or(&[]) {
                    if let Some(rule) = p.rules.get(*i as usize) {
                        env.ctx.hit(rule.clause);
                    }
                }
                out.rule_ends.push(out.rules.len());
                out.ids.push_str(batch.id(base + r));
                out.id_ends.push(out.ids.len());
                out.scores
                    .extend(scores.iter().map(|d| d.get(r).copied().unwrap_or(NONE)));
                out.grades.extend(
                    grades
                        .iter()
                        .map(|g| g.get(r).copied().flatten().unwrap_or(NO_GRADE)),
                );
                out.overall.push(overall);
                out.overall_grade.push(overall_grade);
                if let Some(fo) = fired_out.as_deref_mut() {
                    let mut all_fired = Vec::new();
                    each_bit(f, &k.all, |i| all_fired.push(i));
                    fo.push(all_fired);
                }
            }
            env.overall.iter_mut().for_each(|x| *x = NONE);
            base += n;
        }
    }
}

/// The rules by what they do, each kind a bit set over rule indices (`words` words of 64), and
/// each cap's or floor's value by index.
struct RuleKinds {
    words: usize,
    all: Vec<u64>,
    exclude: Vec<u64>,
    cap: Vec<u64>,
    floor: Vec<u64>,
    set_grade: Vec<u64>,
    /// Caps, floors and set grades: the rules a label records when the pair is not excluded.
    recorded: Vec<u64>,
    values: Vec<f64>,
}

impl RuleKinds {
    fn new(rules: &[RuleIr]) -> Self {
        let words = rules.len().div_ceil(64).max(1);
        let set = |keep: &dyn Fn(&RuleActionIr) -> bool| {
            let mut bits = vec![0u64; words];
            for (i, r) in rules.iter().enumerate() {
                if keep(&r.action)
                    && let Some(w) = bits.get_mut(i / 64)
                {
                    *w |= 1 << (i % 64);
                }
            }
            bits
        };
        RuleKinds {
            words,
            all: set(&|_| true),
            exclude: set(&|a| *a == RuleActionIr::Exclude),
            cap: set(&|a| matches!(a, RuleActionIr::Cap(_))),
            floor: set(&|a| matches!(a, RuleActionIr::Floor(_))),
            set_grade: set(&|a| matches!(a, RuleActionIr::SetGrade(_))),
            recorded: set(&|a| *a != RuleActionIr::Exclude),
            values: rules
                .iter()
                .map(|r| match r.action {
                    RuleActionIr::Cap(x) | RuleActionIr::Floor(x) => x,
                    _ => NONE,
                })
                .collect(),
        }
    }

    /// What the rules that fired make of a pair's weighted mean: exclusion first, then the
    /// lowest cap, then the highest floor.
    fn apply(&self, fired: &[u64], mean: f64) -> Outcome {
        if first_bit(fired, &self.exclude).is_some() {
            return Outcome::Excluded;
        }
        if mean.is_nan() {
            return Outcome::Abstain;
        }
        let value = |i: u32| self.values.get(i as usize).copied().unwrap_or(NONE);
        let mut o = mean;
        let mut cap = f64::INFINITY;
        each_bit(fired, &self.cap, |i| cap = cap.min(value(i)));
        o = o.min(cap);
        let mut floor = f64::NEG_INFINITY;
        each_bit(fired, &self.floor, |i| floor = floor.max(value(i)));
        o = o.max(floor);
        Outcome::Scored(round_score(o))
    }
}

/// Calls `f` with each rule index in both bit sets, in increasing order.
fn each_bit(bits: &[u64], mask: &[u64], mut f: impl FnMut(u32)) {
    for (k, (b, m)) in bits.iter().zip(mask).enumerate() {
        let mut w = b & m;
        while w != 0 {
            let i = k as u32 * 64 + w.trailing_zeros();
            w &= w - 1;
            f(i);
        }
    }
}

/// The lowest rule index in both bit sets.
fn first_bit(bits: &[u64], mask: &[u64]) -> Option<u32> {
    bits.iter()
        .zip(mask)
        .enumerate()
        .find(|(_, (b, m))| *b & *m != 0)
        .map(|(k, (b, m))| k as u32 * 64 + (b & m).trailing_zeros())
}

/// No grade band.
const NO_GRADE: u32 = u32::MAX;

/// The labels of a batch of pairs, by column: what the engine writes without allocating for
/// each pair. [`Labels::get`] reads one pair's.
#[derive(Clone, Debug, Default)]
pub struct Labels {
    dims: usize,
    /// The pairs' ids, one after the other; `id_ends[i]` is where pair `i`'s ends.
    ids: String,
    id_ends: Vec<usize>,
    /// `dims` scores per pair (NaN: abstained) and grade bands ([`NO_GRADE`]: none).
    scores: Vec<f64>,
    grades: Vec<u32>,
    /// NaN: no overall score.
    overall: Vec<f64>,
    overall_grade: Vec<Option<OverallGrade>>,
    /// The rules that took effect, one pair after the other.
    rules: Vec<u32>,
    rule_ends: Vec<usize>,
}

/// One pair's label, read from [`Labels`].
#[derive(Clone, Copy, Debug)]
pub struct LabelView<'l> {
    pub id: &'l str,
    scores: &'l [f64],
    grades: &'l [u32],
    pub overall: Option<f64>,
    pub overall_grade: Option<OverallGrade>,
    /// The rules that fired and took effect, by index, in declaration order.
    pub rules: &'l [u32],
}

impl Labels {
    pub fn len(&self) -> usize {
        self.id_ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.id_ends.is_empty()
    }

    /// Forgets the labels, keeping the allocations.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.id_ends.clear();
        self.scores.clear();
        self.grades.clear();
        self.overall.clear();
        self.overall_grade.clear();
        self.rules.clear();
        self.rule_ends.clear();
    }

    /// Pair `i`'s label.
    pub fn get(&self, i: usize) -> Option<LabelView<'_>> {
        let start = |ends: &[usize]| match i {
            0 => Some(0),
            _ => ends.get(i - 1).copied(),
        };
        let id = self.ids.get(start(&self.id_ends)?..*self.id_ends.get(i)?)?;
        let rules = self
            .rules
            .get(start(&self.rule_ends)?..*self.rule_ends.get(i)?)?;
        let dims = i * self.dims..(i + 1) * self.dims;
        let overall = *self.overall.get(i)?;
        Some(LabelView {
            id,
            scores: self.scores.get(dims.clone())?,
            grades: self.grades.get(dims)?,
            overall: (!overall.is_nan()).then_some(overall),
            overall_grade: *self.overall_grade.get(i)?,
            rules,
        })
    }

    /// Every label, in order.
    pub fn iter(&self) -> impl Iterator<Item = LabelView<'_>> {
        (0..self.len()).filter_map(|i| self.get(i))
    }
}

impl LabelView<'_> {
    /// Dimension `i`'s score; `None` when it abstained.
    pub fn dimension(&self, i: usize) -> Option<f64> {
        self.scores.get(i).copied().filter(|s| !s.is_nan())
    }

    /// Dimension `i`'s grade band; `None` when it abstained or has no bands.
    pub fn grade(&self, i: usize) -> Option<u32> {
        self.grades.get(i).copied().filter(|g| *g != NO_GRADE)
    }

    /// The same label, owned.
    pub fn to_label(&self) -> Label {
        Label {
            id: self.id.to_string(),
            dimensions: (0..self.scores.len()).map(|i| self.dimension(i)).collect(),
            grades: (0..self.grades.len()).map(|i| self.grade(i)).collect(),
            overall: self.overall,
            overall_grade: self.overall_grade,
            rules: self.rules.to_vec(),
        }
    }
}

/// A pair's overall score once the rules applied.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    Scored(f64),
    Excluded,
    /// Too few dimensions voted.
    Abstain,
}

/// The first threshold that holds for `x`, found without a branch on the data.
fn first_holding(thresholds: &[Threshold], monotone: bool, x: f64) -> Option<u32> {
    let holds = |t: &Threshold| match *t {
        Threshold::Always => true,
        Threshold::AtLeast(c) => x >= c,
        Threshold::Above(c) => x > c,
    };
    let (found, first) = if monotone {
        // Those that hold come last: the first is the number that do not.
        let missed = thresholds.iter().filter(|t| !holds(t)).count();
        (missed < thresholds.len(), missed)
    } else {
        // Every threshold is tested; those after the first that holds are not counted.
        let (mut found, mut first) = (false, 0);
        for t in thresholds {
            found |= holds(t);
            first += usize::from(!found);
        }
        (found, first)
    };
    if found {
        u32::try_from(first).ok()
    } else {
        None
    }
}

/// What grade bands grade.
#[derive(Clone, Copy)]
enum Subject {
    Score,
    Overall,
}

/// Grades the selected rows: each gets the first band whose condition holds, `None` when a
/// condition cannot be decided.
fn band(
    bands: &Bands,
    clauses: &[BandIr],
    subject: Subject,
    env: &mut Env<'_, '_, '_>,
    rows: &[u32],
    grades: &mut [Option<u32>],
    truths: &mut [Option<bool>],
) {
    if let Some(thresholds) = bands.thresholds.as_deref().filter(|t| t.len() <= 64) {
        // Each row's value against the thresholds, top to bottom.
        let values = match subject {
            Subject::Score => &env.score,
            Subject::Overall => &env.overall,
        };
        let mut taken = 0u64;
        for &r in rows {
            let x = values.get(r as usize).copied().unwrap_or(NONE);
            if x.is_nan() {
                continue;
            }
            if let Some(first) = first_holding(thresholds, bands.monotone, x) {
                if let Some(g) = grades.get_mut(r as usize) {
                    *g = Some(first);
                }
                taken |= 1 << first;
            }
        }
        for (i, b) in clauses.iter().enumerate().take(thresholds.len()) {
            if taken & (1 << i) != 0 {
                env.ctx.hit(b.clause);
            }
        }
        return;
    }
    let mut live = env.take_sel();
    let mut next = env.take_sel();
    live.extend_from_slice(rows);
    for (i, (when, b)) in bands.conditions.iter().zip(clauses).enumerate() {
        if live.is_empty() {
            break;
        }
        let grade = u32::try_from(i).ok();
        next.clear();
        match when {
            None => {
                for &r in &live {
                    if let Some(g) = grades.get_mut(r as usize) {
                        *g = grade;
                    }
                }
                env.ctx.hit(b.clause);
                live.clear();
                break;
            }
            Some(c) => {
                c(env, &live, truths);
                let mut took = false;
                for &r in &live {
                    match truths.get(r as usize).copied().flatten() {
                        Some(true) => {
                            if let Some(g) = grades.get_mut(r as usize) {
                                *g = grade;
                            }
                            took = true;
                        }
                        Some(false) => next.push(r),
                        None => {}
                    }
                }
                if took {
                    env.ctx.hit(b.clause);
                }
                std::mem::swap(&mut live, &mut next);
            }
        }
    }
    env.give_sel(live);
    env.give_sel(next);
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The first threshold that holds, the obvious way.
    fn first(thresholds: &[Threshold], x: f64) -> Option<u32> {
        thresholds
            .iter()
            .position(|t| match *t {
                Threshold::Always => true,
                Threshold::AtLeast(c) => x >= c,
                Threshold::Above(c) => x > c,
            })
            .map(|i| i as u32)
    }

    #[test]
    fn thresholds_are_read_as_the_first_that_holds() {
        use Threshold::*;
        let monotone = [AtLeast(0.8), Above(0.5), AtLeast(0.5), Always];
        let no_otherwise = [AtLeast(1.0), AtLeast(0.6)];
        let out_of_order = [Above(0.25), AtLeast(0.5), AtLeast(0.1)];
        for x in [0.0, 0.1, 0.25, 0.3, 0.5, 0.6, 0.8, 0.9, 1.0] {
            assert_eq!(
                first_holding(&monotone, true, x),
                first(&monotone, x),
                "{x}"
            );
            assert_eq!(
                first_holding(&monotone, false, x),
                first(&monotone, x),
                "{x}"
            );
            assert_eq!(
                first_holding(&no_otherwise, true, x),
                first(&no_otherwise, x)
            );
            assert_eq!(
                first_holding(&out_of_order, false, x),
                first(&out_of_order, x)
            );
        }
    }
}
