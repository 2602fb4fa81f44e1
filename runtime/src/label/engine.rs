//! The labeling engine: evaluates a labeling program on one decoded pair. Dimension scores (or
//! abstentions), grades, the weighted overall score, then the rules in their fixed order:
//! exclude, caps (lowest wins), floors (highest wins), set grade.

use super::decode::Pair;
use super::value::{BaseStrings, Interner, Kind, Seq, Val, to_set};
use rubric_compiler::lower::ir::*;
use rustc_hash::FxHashMap;

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Num(u64),
    Bool(bool),
    Str(u32),
    Enum(u32),
}

fn key(v: &Val<'_>) -> Option<Key> {
    Some(match v {
        Val::Num(n) => Key::Num(if *n == 0.0 { 0 } else { n.to_bits() }),
        Val::Bool(b) => Key::Bool(*b),
        Val::Str(s) => Key::Str(*s),
        Val::Enum(e) => Key::Enum(*e),
        _ => return None,
    })
}

/// Table keys, padded: tables have at most `MAX_KEYS` key columns in practice; longer keys
/// fall back to the default-free slow path.
const MAX_KEYS: usize = 4;
type KeyTuple = [Option<Key>; MAX_KEYS];

struct TableIndex {
    entries: FxHashMap<KeyTuple, Val<'static>>,
    default: Val<'static>,
}

fn key_tuple(keys: &[Key]) -> Option<KeyTuple> {
    if keys.len() > MAX_KEYS {
        return None;
    }
    let mut out = [None; MAX_KEYS];
    for (slot, k) in out.iter_mut().zip(keys) {
        *slot = Some(*k);
    }
    Some(out)
}

/// A labeling program ready to evaluate.
pub struct Engine {
    pub program: LabelingProgram,
    pub strings: BaseStrings,
    tables: Vec<TableIndex>,
    total_weight: f64,
}

/// Per-evaluation state: the batch's strings, optional clause hits, the events counted.
pub struct Ctx<'s, 'p> {
    pub strings: &'s mut Interner<'p>,
    /// When present, `hits[clause]` is set for every clause the pair exercised.
    pub hits: Option<&'s mut Vec<bool>>,
    pub events: &'s mut Events,
    undefined: bool,
}

/// The `let`s of the dimension being evaluated and the arguments of the functions being called.
struct Frame<'v> {
    locals: Vec<Val<'v>>,
    base: usize,
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
            undefined: false,
        }
    }

    fn hit(&mut self, clause: u32) {
        if let Some(h) = self.hits.as_deref_mut()
            && let Some(slot) = h.get_mut(clause as usize)
        {
            *slot = true;
        }
    }
}

/// What a node may read besides the pair: the dimension's score (bands), other dimensions and
/// the overall score (rules, the overall grade).
#[derive(Clone, Copy)]
struct Scope<'a> {
    score: Option<f64>,
    overall: Option<f64>,
    dimensions: &'a [Option<f64>],
}

fn to_val(c: &Const) -> Val<'static> {
    match c {
        Const::Number(n) => Val::Num(*n),
        Const::Bool(b) => Val::Bool(*b),
        Const::Str(s) => Val::Str(*s),
        Const::Enum(_, v) => Val::Enum(*v),
        Const::Abstain => Val::Abstain,
        Const::List(items) => {
            let ids: Vec<u32> = items
                .iter()
                .filter_map(|i| match i {
                    Const::Str(s) => Some(*s),
                    Const::Enum(_, v) => Some(*v),
                    _ => None,
                })
                .collect();
            if ids.len() == items.len() {
                Val::Ids(to_set(ids).into(), Kind::Set)
            } else {
                Val::Nums(
                    items
                        .iter()
                        .filter_map(|i| {
                            if let Const::Number(n) = i {
                                Some(*n)
                            } else {
                                None
                            }
                        })
                        .collect::<Vec<f64>>()
                        .into(),
                )
            }
        }
    }
}

fn num(v: f64) -> Val<'static> {
    if v.is_finite() {
        Val::Num(v)
    } else {
        Val::Abstain
    }
}

fn truth(v: &Val<'_>) -> Option<bool> {
    match v {
        Val::Bool(b) => Some(*b),
        _ => None,
    }
}

/// Sorted-merge set operations on id slices.
fn set_op(op: BinOp, a: &[u32], b: &[u32]) -> Vec<u32> {
    merge(op, a, b, u32::cmp)
}

/// Union, intersection or difference of two sorted, deduplicated slices.
fn merge<T: Copy>(
    op: BinOp,
    a: &[T],
    b: &[T],
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> Vec<T> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(match op {
        BinOp::Intersect => a.len().min(b.len()),
        BinOp::Union => a.len() + b.len(),
        _ => a.len(),
    });
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match cmp(x, y) {
            std::cmp::Ordering::Less => {
                if op != BinOp::Intersect {
                    out.push(*x);
                }
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                if op == BinOp::Union {
                    out.push(*y);
                }
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                if op != BinOp::Sub {
                    out.push(*x);
                }
                i += 1;
                j += 1;
            }
        }
    }
    if op != BinOp::Intersect {
        out.extend_from_slice(a.get(i..).unwrap_or(&[]));
    }
    if op == BinOp::Union {
        out.extend_from_slice(b.get(j..).unwrap_or(&[]));
    }
    out
}

fn as_set<'x>(v: &'x Val<'_>) -> Option<Seq<'x, u32>> {
    match v {
        Val::Ids(ids, Kind::Set) => Some(ids.view()),
        Val::Ids(ids, Kind::List) => Some(to_set(ids.to_vec()).into()),
        _ => None,
    }
}

/// The size of a set operation's result, without building it.
fn set_op_len(op: BinOp, a: &[u32], b: &[u32]) -> usize {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    match op {
        BinOp::Intersect => both,
        BinOp::Union => a.len() + b.len() - both,
        _ => a.len() - both,
    }
}

impl Engine {
    pub fn new(program: LabelingProgram) -> Self {
        let strings = BaseStrings::new(&program.strings);
        let tables = program
            .tables
            .iter()
            .map(|t| TableIndex {
                entries: t
                    .entries
                    .iter()
                    .filter_map(|e| {
                        let keys: Option<Vec<Key>> =
                            e.keys.iter().map(|k| key(&to_val(k))).collect();
                        keys.and_then(|k| key_tuple(&k))
                            .map(|k| (k, to_val(&e.value)))
                    })
                    .collect(),
                default: to_val(&t.default),
            })
            .collect();
        let total_weight = program.dimensions.iter().map(|d| d.weight).sum();
        Engine {
            program,
            strings,
            tables,
            total_weight,
        }
    }

    /// Labels one pair.
    pub fn label(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>) -> Label {
        self.label_with_fired(pair, ctx).0
    }

    /// Labels one pair, and also returns every rule whose condition held, by index in
    /// declaration order, whether or not it took effect (a higher cap, an exclusion or an
    /// abstaining overall score can keep a fired rule out of `Label::rules`).
    pub fn label_with_fired(&self, pair: &Pair, ctx: &mut Ctx<'_, '_>) -> (Label, Vec<u32>) {
        let p = &self.program;
        let mut dimensions = Vec::with_capacity(p.dimensions.len());
        let mut grades = Vec::with_capacity(p.dimensions.len());
        let mut frame = Frame {
            locals: Vec::with_capacity(16),
            base: 0,
        };
        for (i, d) in p.dimensions.iter().enumerate() {
            frame.locals.clear();
            frame.base = 0;
            ctx.undefined = false;
            let empty = Scope {
                score: None,
                overall: None,
                dimensions: &[],
            };
            for l in &d.lets {
                let v = self.eval(&l.value, pair, ctx, empty, &mut frame);
                frame.locals.push(v);
            }
            let v = self.eval(&d.score, pair, ctx, empty, &mut frame);
            let score = match v {
                Val::Num(s) if s.is_finite() => {
                    if (0.0..=1.0).contains(&s) {
                        Some(s)
                    } else {
                        if let Some(c) = ctx.events.clamped.get_mut(i) {
                            *c += 1;
                        }
                        Some(s.clamp(0.0, 1.0))
                    }
                }
                _ => {
                    if ctx.undefined
                        && let Some(c) = ctx.events.undefined.get_mut(i)
                    {
                        *c += 1;
                    }
                    None
                }
            };
            let grade = match score {
                Some(s) if !d.grades.is_empty() => {
                    let scope = Scope {
                        score: Some(s),
                        overall: None,
                        dimensions: &[],
                    };
                    self.band(&d.grades, pair, ctx, scope, &mut frame)
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
        frame.locals.clear();
        frame.base = 0;
        let scope = Scope {
            score: None,
            overall: mean,
            dimensions: &dimensions,
        };
        let fired: Vec<u32> = p
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| truth(&self.eval(&r.when, pair, ctx, scope, &mut frame)) == Some(true))
            .map(|(i, _)| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        let rule = |i: &u32| p.rules.get(*i as usize);
        let excluded: Vec<u32> = fired
            .iter()
            .copied()
            .filter(|i| rule(i).is_some_and(|r| r.action == RuleActionIr::Exclude))
            .collect();
        let (overall, overall_grade, applied) = if !excluded.is_empty() {
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
            let scope = Scope {
                score: None,
                overall: Some(o),
                dimensions: &dimensions,
            };
            let mut grade = self
                .band(&p.overall.grades, pair, ctx, scope, &mut frame)
                .map(OverallGrade::Band);
            let set_grades: Vec<u32> = fired
                .iter()
                .copied()
                .filter(|i| matches!(rule(i).map(|r| &r.action), Some(RuleActionIr::SetGrade(_))))
                .collect();
            if let Some(first) = set_grades.first() {
                grade = Some(OverallGrade::SetByRule(*first));
            }
            applied.extend(set_grades);
            applied.sort_unstable();
            (Some(o), grade, applied)
        } else {
            (None, None, Vec::new())
        };
        for i in &applied {
            if let Some(r) = rule(i) {
                ctx.hit(r.clause);
            }
        }
        let label = Label {
            id: pair.id.clone(),
            dimensions,
            grades,
            overall,
            overall_grade,
            rules: applied,
        };
        (label, fired)
    }

    /// The first band whose condition holds; `None` when a condition cannot be decided.
    fn band<'v>(
        &self,
        bands: &[BandIr],
        pair: &'v Pair,
        ctx: &mut Ctx<'_, '_>,
        scope: Scope<'_>,
        frame: &mut Frame<'v>,
    ) -> Option<u32> {
        for (i, b) in bands.iter().enumerate() {
            let holds = match &b.when {
                None => Some(true),
                Some(c) => truth(&self.eval(c, pair, ctx, scope, frame)),
            };
            match holds {
                Some(true) => {
                    ctx.hit(b.clause);
                    return u32::try_from(i).ok();
                }
                Some(false) => {}
                None => return None,
            }
        }
        None
    }

    fn eval<'v>(
        &self,
        node: &Node,
        pair: &'v Pair,
        ctx: &mut Ctx<'_, '_>,
        scope: Scope<'_>,
        frame: &mut Frame<'v>,
    ) -> Val<'v> {
        match node {
            Node::Const(c) => to_val(c),
            Node::Field(role, field) => pair
                .roles
                .get(*role as usize)
                .and_then(|r| r.get(*field as usize))
                .map_or(Val::Abstain, Val::view),
            Node::Local(i) => frame
                .locals
                .get(frame.base + *i as usize)
                .cloned()
                .unwrap_or(Val::Abstain),
            Node::Score => scope.score.map_or(Val::Abstain, Val::Num),
            Node::Overall => scope.overall.map_or(Val::Abstain, Val::Num),
            Node::Dimension(i) => scope
                .dimensions
                .get(*i as usize)
                .copied()
                .flatten()
                .map_or(Val::Abstain, Val::Num),
            Node::Not(a) => match self.eval(a, pair, ctx, scope, frame) {
                Val::Bool(b) => Val::Bool(!b),
                _ => Val::Abstain,
            },
            Node::Neg(a) => match self.eval(a, pair, ctx, scope, frame) {
                Val::Num(n) => Val::Num(-n),
                _ => Val::Abstain,
            },
            Node::Binary { op, lhs, rhs } => self.binary(*op, lhs, rhs, pair, ctx, scope, frame),
            Node::Coalesce { value, default } => match self.eval(value, pair, ctx, scope, frame) {
                Val::Missing => self.eval(default, pair, ctx, scope, frame),
                v => v,
            },
            Node::Missing(a) => Val::Bool(matches!(
                self.eval(a, pair, ctx, scope, frame),
                Val::Missing
            )),
            Node::If {
                cond,
                then,
                otherwise,
                then_clause,
                else_clause,
            } => match truth(&self.eval(cond, pair, ctx, scope, frame)) {
                Some(true) => {
                    ctx.hit(*then_clause);
                    self.eval(then, pair, ctx, scope, frame)
                }
                Some(false) => {
                    ctx.hit(*else_clause);
                    self.eval(otherwise, pair, ctx, scope, frame)
                }
                None => Val::Abstain,
            },
            Node::When {
                arms,
                otherwise,
                otherwise_clause,
            } => {
                for arm in arms {
                    match truth(&self.eval(&arm.when, pair, ctx, scope, frame)) {
                        Some(true) => {
                            ctx.hit(arm.clause);
                            return self.eval(&arm.then, pair, ctx, scope, frame);
                        }
                        Some(false) => {}
                        None => return Val::Abstain,
                    }
                }
                ctx.hit(*otherwise_clause);
                self.eval(otherwise, pair, ctx, scope, frame)
            }
            Node::Match { scrutinee, arms } => {
                let s = self.eval(scrutinee, pair, ctx, scope, frame);
                if matches!(s, Val::Abstain | Val::Missing) {
                    return Val::Abstain;
                }
                for arm in arms {
                    if arm.patterns.is_empty()
                        || arm.patterns.iter().any(|p| pattern_matches(p, &s))
                    {
                        ctx.hit(arm.clause);
                        return self.eval(&arm.then, pair, ctx, scope, frame);
                    }
                }
                Val::Abstain
            }
            Node::Call { builtin, args } => self.builtin(*builtin, args, pair, ctx, scope, frame),
            Node::CallFn { function, args } => {
                let Some(f) = self.program.functions.get(*function as usize) else {
                    return Val::Abstain;
                };
                // Arguments go straight onto the frame: no vector a call.
                let base = frame.locals.len();
                for a in args {
                    let v = self.eval(a, pair, ctx, scope, frame);
                    if matches!(v, Val::Abstain) {
                        // A call with an argument that abstains abstains.
                        frame.locals.truncate(base);
                        return Val::Abstain;
                    }
                    frame.locals.push(v);
                }
                let saved = frame.base;
                frame.base = base;
                let out = self.eval(&f.body, pair, ctx, scope, frame);
                frame.locals.truncate(base);
                frame.base = saved;
                match (out, f.declared_range) {
                    (Val::Num(n), Some([lo, hi])) if !(lo..=hi).contains(&n) => {
                        ctx.events.function_clamped += 1;
                        Val::Num(n.clamp(lo, hi))
                    }
                    (v, _) => v,
                }
            }
            Node::Lookup { table, keys } => {
                let Some(index) = self.tables.get(*table as usize) else {
                    return Val::Abstain;
                };
                let mut k: KeyTuple = [None; MAX_KEYS];
                for (i, node) in keys.iter().enumerate() {
                    let v = self.eval(node, pair, ctx, scope, frame);
                    if matches!(v, Val::Abstain | Val::Missing) {
                        return Val::Abstain;
                    }
                    match (key(&v), k.get_mut(i)) {
                        (Some(x), Some(slot)) => *slot = Some(x),
                        _ => return index.default.clone(),
                    }
                }
                index.entries.get(&k).unwrap_or(&index.default).clone()
            }
            Node::List(items) => {
                let mut ids = Vec::with_capacity(items.len());
                let mut nums = Vec::new();
                for i in items {
                    match self.eval(i, pair, ctx, scope, frame) {
                        Val::Str(s) | Val::Enum(s) => ids.push(s),
                        Val::Num(n) => nums.push(n),
                        _ => return Val::Abstain,
                    }
                }
                match (ids.is_empty(), nums.is_empty()) {
                    (_, true) => Val::Ids(to_set(ids).into(), Kind::Set),
                    (true, false) => Val::Nums(nums.into()),
                    (false, false) => Val::Abstain,
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn binary<'v>(
        &self,
        op: BinOp,
        lhs: &Node,
        rhs: &Node,
        pair: &'v Pair,
        ctx: &mut Ctx<'_, '_>,
        scope: Scope<'_>,
        frame: &mut Frame<'v>,
    ) -> Val<'v> {
        // Conditions are three-valued: an undecided side does not hide a decided answer.
        if matches!(op, BinOp::And | BinOp::Or) {
            let a = truth(&self.eval(lhs, pair, ctx, scope, frame));
            let short = op == BinOp::Or;
            if a == Some(short) {
                return Val::Bool(short);
            }
            let b = truth(&self.eval(rhs, pair, ctx, scope, frame));
            return match (a, b) {
                (_, Some(x)) if x == short => Val::Bool(short),
                (Some(_), Some(_)) => Val::Bool(!short),
                _ => Val::Abstain,
            };
        }
        let a = self.eval(lhs, pair, ctx, scope, frame);
        let b = self.eval(rhs, pair, ctx, scope, frame);
        if matches!(a, Val::Abstain | Val::Missing) || matches!(b, Val::Abstain | Val::Missing) {
            return Val::Abstain;
        }
        match op {
            BinOp::Eq => Val::Bool(equal(&a, &b)),
            BinOp::Ne => Val::Bool(!equal(&a, &b)),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                let (x, y) = match (&a, &b) {
                    (Val::Num(x), Val::Num(y)) => (*x, *y),
                    (Val::Enum(x), Val::Enum(y)) => (f64::from(*x), f64::from(*y)),
                    _ => return Val::Abstain,
                };
                Val::Bool(match op {
                    BinOp::Lt => x < y,
                    BinOp::Le => x <= y,
                    BinOp::Gt => x > y,
                    _ => x >= y,
                })
            }
            BinOp::Union | BinOp::Intersect | BinOp::Sub if matches!(a, Val::Nums(..)) => {
                match (&a, &b) {
                    (Val::Nums(x), Val::Nums(y)) => Val::Nums(num_set_op(op, x, y).into()),
                    _ => Val::Abstain,
                }
            }
            BinOp::Union | BinOp::Intersect | BinOp::Sub if matches!(a, Val::Ids(..)) => {
                match (as_set(&a), as_set(&b)) {
                    (Some(x), Some(y)) => Val::Ids(set_op(op, &x, &y).into(), Kind::Set),
                    _ => Val::Abstain,
                }
            }
            _ => {
                let (Val::Num(x), Val::Num(y)) = (a, b) else {
                    return Val::Abstain;
                };
                match op {
                    BinOp::Add => num(x + y),
                    BinOp::Sub => num(x - y),
                    BinOp::Mul => num(x * y),
                    BinOp::Div => {
                        if y == 0.0 {
                            ctx.undefined = true;
                            Val::Abstain
                        } else {
                            let q = x / y;
                            if !q.is_finite() {
                                ctx.undefined = true;
                            }
                            num(q)
                        }
                    }
                    _ => Val::Abstain,
                }
            }
        }
    }

    fn builtin<'v>(
        &self,
        b: Builtin,
        args: &[Node],
        pair: &'v Pair,
        ctx: &mut Ctx<'_, '_>,
        scope: Scope<'_>,
        frame: &mut Frame<'v>,
    ) -> Val<'v> {
        // `len(a & b)`, `len(a | b)`, `len(a - b)`: counted without building the set.
        if b == Builtin::Len
            && let [
                Node::Binary {
                    op: op @ (BinOp::Intersect | BinOp::Union | BinOp::Sub),
                    lhs,
                    rhs,
                },
            ] = args
        {
            let x = self.eval(lhs, pair, ctx, scope, frame);
            let y = self.eval(rhs, pair, ctx, scope, frame);
            return match (as_set(&x), as_set(&y), &x, &y) {
                (Some(p), Some(q), _, _) => Val::Num(set_op_len(*op, &p, &q) as f64),
                (_, _, Val::Nums(p), Val::Nums(q)) => Val::Num(num_set_op(*op, p, q).len() as f64),
                _ => Val::Abstain,
            };
        }
        let arg = |i: usize, ctx: &mut Ctx<'_, '_>, frame: &mut Frame<'v>| -> Option<Val<'v>> {
            let v = self.eval(args.get(i)?, pair, ctx, scope, frame);
            (!matches!(v, Val::Abstain | Val::Missing)).then_some(v)
        };
        match b {
            Builtin::Len => match arg(0, ctx, frame) {
                Some(Val::Ids(ids, _)) => Val::Num(ids.len() as f64),
                Some(Val::Nums(ns)) => Val::Num(ns.len() as f64),
                Some(Val::Str(s)) => Val::Num(ctx.strings.text(s).chars().count() as f64),
                _ => Val::Abstain,
            },
            Builtin::Abs => match arg(0, ctx, frame) {
                Some(Val::Num(x)) => Val::Num(x.abs()),
                _ => Val::Abstain,
            },
            Builtin::Min | Builtin::Max => {
                let mut acc: Option<f64> = None;
                for i in 0..args.len() {
                    match arg(i, ctx, frame) {
                        Some(Val::Num(x)) => {
                            acc = Some(match acc {
                                None => x,
                                Some(a) if b == Builtin::Min => a.min(x),
                                Some(a) => a.max(x),
                            });
                        }
                        _ => return Val::Abstain,
                    }
                }
                acc.map_or(Val::Abstain, Val::Num)
            }
            Builtin::Clamp => match (arg(0, ctx, frame), arg(1, ctx, frame), arg(2, ctx, frame)) {
                (Some(Val::Num(x)), Some(Val::Num(lo)), Some(Val::Num(hi))) => {
                    Val::Num(x.max(lo).min(hi))
                }
                _ => Val::Abstain,
            },
            Builtin::Lower => match arg(0, ctx, frame) {
                Some(Val::Str(s)) => Val::Str(ctx.strings.lower(s)),
                _ => Val::Abstain,
            },
            Builtin::Contains => match (arg(0, ctx, frame), arg(1, ctx, frame)) {
                (Some(Val::Ids(ids, Kind::Set)), Some(Val::Str(x) | Val::Enum(x))) => {
                    Val::Bool(ids.binary_search(&x).is_ok())
                }
                (Some(Val::Ids(ids, Kind::List)), Some(Val::Str(x) | Val::Enum(x))) => {
                    Val::Bool(ids.contains(&x))
                }
                (Some(Val::Nums(ns)), Some(Val::Num(x))) => Val::Bool(ns.contains(&x)),
                (Some(Val::Str(h)), Some(Val::Str(x))) => {
                    let found = ctx.strings.text(h).contains(ctx.strings.text(x));
                    Val::Bool(found)
                }
                _ => Val::Abstain,
            },
            Builtin::Rank => match arg(0, ctx, frame) {
                Some(Val::Enum(e)) => Val::Num(f64::from(e)),
                _ => Val::Abstain,
            },
        }
    }
}

/// Set operations on number sets (sorted, deduplicated by the decoder).
fn num_set_op(op: BinOp, a: &[f64], b: &[f64]) -> Vec<f64> {
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    merge(op, &sorted(a), &sorted(b), f64::total_cmp)
}

/// Whether a `match` pattern equals a value.
fn pattern_matches(p: &Const, v: &Val<'_>) -> bool {
    match (p, v) {
        (Const::Number(x), Val::Num(y)) => x == y,
        (Const::Bool(x), Val::Bool(y)) => x == y,
        (Const::Str(x), Val::Str(y)) => x == y,
        (Const::Enum(_, x), Val::Enum(y)) => x == y,
        _ => false,
    }
}

fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Ids(x, _), Val::Ids(y, _)) => match (as_set(a), as_set(b)) {
            (Some(p), Some(q)) => *p == *q,
            _ => **x == **y,
        },
        _ => a == b,
    }
}
