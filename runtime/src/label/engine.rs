//! The labeling engine: evaluates a labeling program on one decoded pair. Dimension scores (or
//! abstentions), grades, the weighted overall score, then the rules in their fixed order:
//! exclude, caps (lowest wins), floors (highest wins), set grade.

use super::compiled::{Compiled, Env, NONE, TriC, compile};
use super::decode::Pair;
use super::value::{BaseStrings, Interner, Val};
use rubric_compiler::lower::ir::*;
use std::cell::Cell;

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

thread_local! {
    /// Each thread's slot buffer and fired-rule list, reused from pair to pair.
    static SLOTS: Cell<Vec<Val<'static>>> = const { Cell::new(Vec::new()) };
    static FIRED: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
}

/// A labeling program ready to evaluate.
pub struct Engine {
    pub program: LabelingProgram,
    pub strings: BaseStrings,
    compiled: Compiled,
    total_weight: f64,
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
            program,
            strings,
            compiled,
            total_weight,
        }
    }

    /// Labels one pair.
    pub fn label(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>) -> Label {
        let mut fired = FIRED.take();
        let label = self.evaluate(pair, ctx, &mut fired);
        FIRED.set(fired);
        label
    }

    /// Labels one pair, and also returns every rule whose condition held, by index in
    /// declaration order, whether or not it took effect (a higher cap, an exclusion or an
    /// abstaining overall score can keep a fired rule out of `Label::rules`).
    pub fn label_with_fired(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>) -> (Label, Vec<u32>) {
        let mut fired = Vec::new();
        let label = self.evaluate(pair, ctx, &mut fired);
        (label, fired)
    }

    fn evaluate(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>, fired: &mut Vec<u32>) -> Label {
        let p = &self.program;
        let c = &self.compiled;
        let mut grades = Vec::with_capacity(p.dimensions.len());
        let mut dimensions = Vec::with_capacity(p.dimensions.len());
        touch(pair);
        let mut slots: Vec<Val<'_>> = SLOTS.take();
        slots.resize(c.slots, Val::Abstain);
        let mut env = Env {
            pair,
            slots,
            ctx,
            score: NONE,
            overall: NONE,
            dims: Vec::new(),
            undefined: false,
        };
        for (i, d) in c.dimensions.iter().enumerate() {
            env.undefined = false;
            for (slot, code) in &d.lets {
                let v = code(&mut env);
                if let Some(s) = env.slots.get_mut(*slot) {
                    *s = v;
                }
            }
            let s = (d.score)(&mut env);
            let score = if s.is_nan() {
                if env.undefined
                    && let Some(c) = env.ctx.events.undefined.get_mut(i)
                {
                    *c += 1;
                }
                None
            } else if (0.0..=1.0).contains(&s) {
                Some(s)
            } else {
                if let Some(c) = env.ctx.events.clamped.get_mut(i) {
                    *c += 1;
                }
                Some(s.clamp(0.0, 1.0))
            };
            let grade = match score {
                Some(s) if !d.bands.is_empty() => {
                    env.score = s;
                    let clauses = p.dimensions.get(i).map_or(&[][..], |d| &d.grades[..]);
                    let g = band(&d.bands, clauses, &mut env);
                    env.score = NONE;
                    g
                }
                _ => None,
            };
            dimensions.push(score);
            grades.push(grade);
        }

        // The weighted mean of the dimensions that voted.
        let (mut sum, mut weight) = (0.0, 0.0);
        for (d, s) in p.dimensions.iter().zip(&dimensions) {
            if let Some(s) = s {
                sum += d.weight * s;
                weight += d.weight;
            }
        }
        let covered = if self.total_weight > 0.0 {
            weight / self.total_weight
        } else {
            0.0
        };
        let mean =
            (weight > 0.0 && covered + 1e-12 >= p.overall.min_coverage).then(|| sum / weight);

        // Rules, all read the scores before any rule applies.
        env.dims = dimensions;
        env.overall = mean.unwrap_or(NONE);
        fired.clear();
        for (i, when) in c.rules.iter().enumerate() {
            if when(&mut env) == Some(true) {
                fired.push(u32::try_from(i).unwrap_or(u32::MAX));
            }
        }
        let rule = |i: &u32| p.rules.get(*i as usize);
        let excludes = |i: &u32| rule(i).is_some_and(|r| r.action == RuleActionIr::Exclude);
        let (overall, overall_grade, applied) = if fired.iter().any(excludes) {
            let excluded = fired.iter().copied().filter(excludes).collect();
            (Some(0.0), Some(OverallGrade::Excluded), excluded)
        } else if let Some(mut o) = mean {
            let mut applied = Vec::new();
            let cap = fired
                .iter()
                .filter_map(|i| match rule(i).map(|r| &r.action) {
                    Some(RuleActionIr::Cap(c)) => Some((*i, *c)),
                    _ => None,
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let floor = fired
                .iter()
                .filter_map(|i| match rule(i).map(|r| &r.action) {
                    Some(RuleActionIr::Floor(f)) => Some((*i, *f)),
                    _ => None,
                })
                .max_by(|a, b| a.1.total_cmp(&b.1));
            // Every cap and floor that fired is recorded; the lowest cap and the highest floor
            // decide the score.
            if let Some((_, c)) = cap {
                o = o.min(c);
            }
            if let Some((_, f)) = floor {
                o = o.max(f);
            }
            applied.extend(fired.iter().copied().filter(|i| {
                matches!(
                    rule(i).map(|r| &r.action),
                    Some(RuleActionIr::Cap(_) | RuleActionIr::Floor(_))
                )
            }));
            env.overall = o;
            let mut grade =
                band(&c.overall_bands, &p.overall.grades, &mut env).map(OverallGrade::Band);
            let sets_grade =
                |i: &u32| matches!(rule(i).map(|r| &r.action), Some(RuleActionIr::SetGrade(_)));
            if let Some(first) = fired.iter().copied().find(sets_grade) {
                grade = Some(OverallGrade::SetByRule(first));
            }
            applied.extend(fired.iter().copied().filter(sets_grade));
            applied.sort_unstable();
            (Some(o), grade, applied)
        } else {
            (None, None, Vec::new())
        };
        for i in &applied {
            if let Some(r) = rule(i) {
                env.ctx.hit(r.clause);
            }
        }
        let label = Label {
            id: pair.id.clone(),
            dimensions: std::mem::take(&mut env.dims),
            grades,
            overall,
            overall_grade,
            rules: applied,
        };
        // The slot buffer goes back to the thread, emptied of this pair's values.
        let mut slots = std::mem::take(&mut env.slots);
        slots.clear();
        // (Empty, so this only re-types the buffer; the allocation is kept.)
        SLOTS.set(slots.into_iter().map(|_| Val::Abstain).collect());
        label
    }
}

/// Reads one word of each cache line a pair's fields (and their sets) sit on, all at once, so
/// that the memory reads of a pair not in cache overlap instead of stalling one by one as the
/// dimensions reach each field.
fn touch(pair: &Pair) {
    let mut acc = 0usize;
    for role in &pair.roles {
        for v in role.iter().step_by(2) {
            acc = acc.wrapping_add(match v {
                Val::Ids(ids, _) => ids.first().map_or(1, |x| *x as usize),
                Val::Nums(ns) => ns.len(),
                Val::Str(s) | Val::Enum(s) => *s as usize,
                _ => 0,
            });
        }
    }
    std::hint::black_box(acc);
}

/// The first band whose condition holds; `None` when a condition cannot be decided.
fn band(bands: &[Option<TriC>], clauses: &[BandIr], env: &mut Env<'_, '_, '_>) -> Option<u32> {
    for (i, (when, b)) in bands.iter().zip(clauses).enumerate() {
        let holds = match when {
            None => Some(true),
            Some(c) => c(env),
        };
        match holds {
            Some(true) => {
                env.ctx.hit(b.clause);
                return u32::try_from(i).ok();
            }
            Some(false) => {}
            None => return None,
        }
    }
    None
}
