//! The labeling program compiled for speed: each node becomes a closure specialised to what its
//! consumer needs (a number, a three-valued truth or a general value), constants and tables are
//! prepared once, and each function body is compiled once per argument types, with fixed slots.
//!
//! Numbers travel as `f64` with NaN meaning "no number" (missing, abstaining or another kind):
//! the decoder and the constants only ever produce finite numbers, and every arithmetic result
//! that is not finite abstains, so NaN is free to carry that meaning.

use super::decode::Pair;
use super::engine::Ctx;
use super::value::{Kind, Seq, Val, to_set};
use rubric_compiler::lower::ir::*;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// No number.
pub(super) const NONE: f64 = f64::NAN;

/// Everything a compiled node may read and write while one pair is labeled.
pub(super) struct Env<'a, 's, 'p> {
    pub pair: &'a Pair,
    /// `let`s, function parameters and call arguments, each at a slot fixed at compile time.
    pub slots: Vec<Val<'a>>,
    pub ctx: &'a mut Ctx<'s, 'p>,
    /// The dimension's score while its grade bands run; NaN elsewhere.
    pub score: f64,
    /// The overall score while rules and overall bands run; NaN elsewhere.
    pub overall: f64,
    /// The dimensions' scores while rules and overall bands run; empty before.
    pub dims: Vec<Option<f64>>,
    /// A division by zero or an overflow happened in the dimension being evaluated.
    pub undefined: bool,
}

type ValFn = dyn for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>) -> Val<'a> + Send + Sync;
/// Compiled code that yields a plain value: a number or a truth.
pub(super) type Code<T> = Box<dyn for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>) -> T + Send + Sync>;
pub(super) type NumC = Code<f64>;
pub(super) type TriC = Code<Option<bool>>;
pub(super) type ValC = Box<ValFn>;

/// Evaluates a call's arguments into the parameters' slots; false when one abstains.
type Prelude = Box<dyn for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>) -> bool + Send + Sync>;

fn num_c<F>(f: F) -> NumC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>) -> f64 + Send + Sync + 'static,
{
    Box::new(f)
}

fn tri_c<F>(f: F) -> TriC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>) -> Option<bool> + Send + Sync + 'static,
{
    Box::new(f)
}

fn val_c<F>(f: F) -> ValC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>) -> Val<'a> + Send + Sync + 'static,
{
    Box::new(f)
}

fn absent(v: &Val<'_>) -> bool {
    matches!(v, Val::Abstain | Val::Missing)
}

fn set_slot<'a>(slots: &mut [Val<'a>], i: usize, v: Val<'a>) {
    if let Some(s) = slots.get_mut(i) {
        *s = v;
    }
}

fn num_or_none(v: &Val<'_>) -> f64 {
    match v {
        Val::Num(n) => *n,
        _ => NONE,
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() { x } else { NONE }
}

fn from_num<'a>(x: f64) -> Val<'a> {
    if x.is_nan() {
        Val::Abstain
    } else {
        Val::Num(x)
    }
}

fn from_tri<'a>(t: Option<bool>) -> Val<'a> {
    t.map_or(Val::Abstain, Val::Bool)
}

/// What a node computes, as far as the program's types tell before any data is seen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Ty {
    Num,
    Bool,
    Str,
    Enum,
    Ids,
    Nums,
    /// Only `abstain`.
    Absent,
    /// Unknown or mixed.
    Other,
}

fn join(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        (Ty::Absent, x) | (x, Ty::Absent) => x,
        (x, y) if x == y => x,
        _ => Ty::Other,
    }
}

fn value_ty(t: &ValueType) -> Ty {
    match t {
        ValueType::Number => Ty::Num,
        ValueType::Bool => Ty::Bool,
        ValueType::String => Ty::Str,
        ValueType::Text => Ty::Other,
        ValueType::Enum { .. } => Ty::Enum,
        ValueType::Set { of } | ValueType::List { of } => match **of {
            ValueType::Number => Ty::Nums,
            _ => Ty::Ids,
        },
    }
}

/// A name in scope while compiling: a `let` or a parameter, at its slot.
#[derive(Clone, Copy)]
struct Local {
    slot: usize,
    ty: Ty,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    Num,
    Tri,
    Val,
}

/// A function body compiled once, shared by its call sites.
#[derive(Clone)]
enum Body {
    Num(Arc<NumC>),
    Tri(Arc<TriC>),
    Val(Arc<ValC>),
}

/// How deep function calls are followed when typing (the checker refuses recursion, so only a
/// hand-made program reaches it).
const MAX_CALL_DEPTH: u32 = 64;

/// Table keys, padded: longer keys go to the default.
const MAX_KEYS: usize = 4;
type KeyTuple = [Option<Key>; MAX_KEYS];

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

struct TableIndex {
    entries: FxHashMap<KeyTuple, Val<'static>>,
    default: Val<'static>,
}

/// The compiled program: one score closure and its `let`s per dimension, band conditions, rule
/// conditions, and the number of slots a pair needs.
pub(super) struct Compiled {
    pub dimensions: Vec<CompiledDimension>,
    pub rules: Vec<TriC>,
    pub overall_bands: Vec<Option<TriC>>,
    pub slots: usize,
}

pub(super) struct CompiledDimension {
    pub lets: Vec<(usize, ValC)>,
    pub score: NumC,
    pub bands: Vec<Option<TriC>>,
}

/// Compiles a labeling program.
pub(super) fn compile(program: &LabelingProgram) -> Compiled {
    let tables = program
        .tables
        .iter()
        .map(|t| {
            Arc::new(TableIndex {
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
        })
        .collect();
    let mut c = Compiler {
        program,
        tables,
        slots: 0,
        param_slots: vec![None; program.functions.len()],
        bodies: FxHashMap::default(),
        compiling: Vec::new(),
        body_tys: RefCell::default(),
        typing_depth: Cell::new(0),
    };
    let no_locals: &[Local] = &[];
    let mut dimensions = Vec::with_capacity(program.dimensions.len());
    for d in &program.dimensions {
        let mut locals: Vec<Local> = Vec::with_capacity(d.lets.len());
        let mut lets = Vec::with_capacity(d.lets.len());
        for l in &d.lets {
            let code = c.val(&l.value, &locals);
            let slot = c.slot(1);
            let ty = c.ty(&l.value, &locals);
            locals.push(Local { slot, ty });
            lets.push((slot, code));
        }
        let score = c.num(&d.score, &locals);
        // Grade bands read the score and may read the dimension's `let`s.
        let bands = d
            .grades
            .iter()
            .map(|b| b.when.as_ref().map(|w| c.tri(w, &locals)))
            .collect();
        dimensions.push(CompiledDimension { lets, score, bands });
    }
    let rules = program
        .rules
        .iter()
        .map(|r| c.tri(&r.when, no_locals))
        .collect();
    let overall_bands = program
        .overall
        .grades
        .iter()
        .map(|b| b.when.as_ref().map(|w| c.tri(w, no_locals)))
        .collect();
    Compiled {
        dimensions,
        rules,
        overall_bands,
        slots: c.slots,
    }
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

struct Compiler<'g> {
    program: &'g LabelingProgram,
    tables: Vec<Arc<TableIndex>>,
    slots: usize,
    /// The first slot of each function's parameters. No function is active twice at once (the
    /// checker refuses recursion), so each function's parameters can live at fixed slots.
    param_slots: Vec<Option<usize>>,
    bodies: FxHashMap<(u32, Vec<Ty>, Repr), Body>,
    /// Functions whose body is being compiled: a call back into one of them (recursion, which
    /// the checker refuses) compiles to `abstain` instead of looping.
    compiling: Vec<u32>,
    /// Result types of function bodies by argument types, and how deep typing has gone.
    body_tys: RefCell<FxHashMap<(u32, Vec<Ty>), Ty>>,
    typing_depth: Cell<u32>,
}

impl Compiler<'_> {
    fn slot(&mut self, n: usize) -> usize {
        let s = self.slots;
        self.slots += n;
        s
    }

    fn ty(&self, node: &Node, locals: &[Local]) -> Ty {
        match node {
            Node::Const(c) => match c {
                Const::Number(_) => Ty::Num,
                Const::Bool(_) => Ty::Bool,
                Const::Str(_) => Ty::Str,
                Const::Enum(..) => Ty::Enum,
                Const::Abstain => Ty::Absent,
                Const::List(_) => match to_val(c) {
                    Val::Ids(..) => Ty::Ids,
                    _ => Ty::Nums,
                },
            },
            Node::Field(role, field) => self
                .program
                .roles
                .get(*role as usize)
                .and_then(|r| self.program.entities.get(r.entity as usize))
                .and_then(|e| e.fields.get(*field as usize))
                .map_or(Ty::Other, |f| value_ty(&f.ty)),
            Node::Local(i) => locals.get(*i as usize).map_or(Ty::Absent, |l| l.ty),
            Node::Score | Node::Overall | Node::Dimension(_) | Node::Neg(_) => Ty::Num,
            Node::Not(_) | Node::Missing(_) => Ty::Bool,
            Node::Binary { op, lhs, .. } => match op {
                BinOp::Or
                | BinOp::And
                | BinOp::Eq
                | BinOp::Ne
                | BinOp::Lt
                | BinOp::Le
                | BinOp::Gt
                | BinOp::Ge => Ty::Bool,
                BinOp::Add | BinOp::Mul | BinOp::Div => Ty::Num,
                BinOp::Union | BinOp::Intersect | BinOp::Sub => match self.ty(lhs, locals) {
                    Ty::Ids => Ty::Ids,
                    Ty::Nums => Ty::Nums,
                    Ty::Num if *op == BinOp::Sub => Ty::Num,
                    _ => Ty::Other,
                },
            },
            Node::Coalesce { value, default } => {
                join(self.ty(value, locals), self.ty(default, locals))
            }
            Node::If {
                then, otherwise, ..
            } => join(self.ty(then, locals), self.ty(otherwise, locals)),
            Node::When {
                arms, otherwise, ..
            } => arms.iter().fold(self.ty(otherwise, locals), |t, a| {
                join(t, self.ty(&a.then, locals))
            }),
            Node::Match { arms, .. } => arms
                .iter()
                .fold(Ty::Absent, |t, a| join(t, self.ty(&a.then, locals))),
            Node::Call { builtin, .. } => match builtin {
                Builtin::Lower => Ty::Str,
                Builtin::Contains => Ty::Bool,
                _ => Ty::Num,
            },
            Node::CallFn { function, args } => {
                let Some(f) = self.program.functions.get(*function as usize) else {
                    return Ty::Absent;
                };
                let tys: Vec<Ty> = args.iter().map(|a| self.ty(a, locals)).collect();
                let key = (*function, tys);
                if let Some(t) = self.body_tys.borrow().get(&key) {
                    return *t;
                }
                // Recursion (refused by the checker) must not loop here.
                if self.typing_depth.get() > MAX_CALL_DEPTH {
                    return Ty::Other;
                }
                let params: Vec<Local> =
                    key.1.iter().map(|ty| Local { slot: 0, ty: *ty }).collect();
                self.typing_depth.set(self.typing_depth.get() + 1);
                let t = self.ty(&f.body, &params);
                self.typing_depth.set(self.typing_depth.get() - 1);
                self.body_tys.borrow_mut().insert(key, t);
                t
            }
            Node::Lookup { table, .. } => self
                .program
                .tables
                .get(*table as usize)
                .map_or(Ty::Other, |t| value_ty(&t.value)),
            Node::List(items) => {
                let tys: Vec<Ty> = items.iter().map(|i| self.ty(i, locals)).collect();
                if tys.iter().all(|t| matches!(t, Ty::Str | Ty::Enum)) {
                    Ty::Ids
                } else if tys.iter().all(|t| *t == Ty::Num) {
                    Ty::Nums
                } else {
                    Ty::Other
                }
            }
        }
    }

    /// Whether evaluating a node may call `target`, directly or through other functions.
    fn calls_into(&self, node: &Node, target: u32, depth: u32) -> bool {
        if depth > MAX_CALL_DEPTH {
            return true;
        }
        let mut found = false;
        visit_children(node, &mut |child| {
            found = found || self.calls_into(child, target, depth);
        });
        if let Node::CallFn { function, .. } = node {
            found = found
                || *function == target
                || self
                    .program
                    .functions
                    .get(*function as usize)
                    .is_some_and(|f| self.calls_into(&f.body, target, depth + 1));
        }
        found
    }

    /// A `when` chain's arms: each condition as a truth, each result as `then` compiles it.
    fn when_arms<T>(
        &mut self,
        arms: &[WhenArmIr],
        locals: &[Local],
        then: fn(&mut Self, &Node, &[Local]) -> T,
    ) -> Vec<(TriC, T, u32)> {
        arms.iter()
            .map(|a| {
                (
                    self.tri(&a.when, locals),
                    then(self, &a.then, locals),
                    a.clause,
                )
            })
            .collect()
    }

    /// Compiles a node for a consumer that wants a number.
    fn num(&mut self, node: &Node, locals: &[Local]) -> NumC {
        match node {
            Node::Const(c) => {
                let x = match c {
                    Const::Number(n) => *n,
                    _ => NONE,
                };
                num_c(move |_| x)
            }
            Node::Field(role, field) => {
                let (r, f) = (*role as usize, *field as usize);
                num_c(move |e| {
                    e.pair
                        .roles
                        .get(r)
                        .and_then(|x| x.get(f))
                        .map_or(NONE, num_or_none)
                })
            }
            Node::Local(i) => match locals.get(*i as usize) {
                Some(l) => {
                    let s = l.slot;
                    num_c(move |e| e.slots.get(s).map_or(NONE, num_or_none))
                }
                None => num_c(|_| NONE),
            },
            Node::Score => num_c(|e| e.score),
            Node::Overall => num_c(|e| e.overall),
            Node::Dimension(i) => {
                let i = *i as usize;
                num_c(move |e| e.dims.get(i).copied().flatten().unwrap_or(NONE))
            }
            Node::Neg(a) => {
                let a = self.num(a, locals);
                num_c(move |e| -a(e))
            }
            Node::Binary { op, lhs, rhs }
                if matches!(op, BinOp::Add | BinOp::Mul | BinOp::Div)
                    || (*op == BinOp::Sub && self.ty(lhs, locals) == Ty::Num) =>
            {
                let (l, r) = (self.num(lhs, locals), self.num(rhs, locals));
                match op {
                    BinOp::Add => num_c(move |e| {
                        let (x, y) = (l(e), r(e));
                        finite(x + y)
                    }),
                    BinOp::Sub => num_c(move |e| {
                        let (x, y) = (l(e), r(e));
                        finite(x - y)
                    }),
                    BinOp::Mul => num_c(move |e| {
                        let (x, y) = (l(e), r(e));
                        finite(x * y)
                    }),
                    _ => num_c(move |e| {
                        let (x, y) = (l(e), r(e));
                        if x.is_nan() || y.is_nan() {
                            return NONE;
                        }
                        if y == 0.0 {
                            e.undefined = true;
                            return NONE;
                        }
                        let q = x / y;
                        if !q.is_finite() {
                            e.undefined = true;
                            return NONE;
                        }
                        q
                    }),
                }
            }
            Node::Coalesce { value, default } => {
                let (v, d) = (self.val(value, locals), self.num(default, locals));
                num_c(move |e| match v(e) {
                    Val::Missing => d(e),
                    v => num_or_none(&v),
                })
            }
            Node::If {
                cond,
                then,
                otherwise,
                then_clause,
                else_clause,
            } => {
                let c = self.tri(cond, locals);
                let (t, o) = (self.num(then, locals), self.num(otherwise, locals));
                if_code(c, t, o, (*then_clause, *else_clause), NONE)
            }
            Node::When {
                arms,
                otherwise,
                otherwise_clause,
            } => {
                let arms = self.when_arms(arms, locals, Self::num);
                let o = self.num(otherwise, locals);
                when_code(arms, o, *otherwise_clause, NONE)
            }
            Node::Match { scrutinee, arms }
                if self.ty(scrutinee, locals) == Ty::Num
                    && arms
                        .iter()
                        .all(|a| a.patterns.iter().all(|p| matches!(p, Const::Number(_)))) =>
            {
                let s = self.num(scrutinee, locals);
                let arms: Vec<(Vec<f64>, NumC, u32)> = arms
                    .iter()
                    .map(|a| {
                        let ps = a
                            .patterns
                            .iter()
                            .filter_map(|p| match p {
                                Const::Number(n) => Some(*n),
                                _ => None,
                            })
                            .collect();
                        (ps, self.num(&a.then, locals), a.clause)
                    })
                    .collect();
                num_c(move |e| {
                    let x = s(e);
                    if x.is_nan() {
                        return NONE;
                    }
                    for (ps, t, c) in &arms {
                        if ps.is_empty() || ps.contains(&x) {
                            e.ctx.hit(*c);
                            return t(e);
                        }
                    }
                    NONE
                })
            }
            Node::Call { builtin, args } => self.builtin_num(*builtin, args, locals),
            Node::CallFn { function, args } => {
                match self.call(*function, args, locals, Repr::Num) {
                    Some((prelude, Body::Num(body), range)) => num_c(move |e| {
                        if !prelude(e) {
                            return NONE;
                        }
                        let x = body(e);
                        match range {
                            Some([lo, hi]) if !x.is_nan() && !(lo..=hi).contains(&x) => {
                                e.ctx.events.function_clamped += 1;
                                x.clamp(lo, hi)
                            }
                            _ => x,
                        }
                    }),
                    _ => num_c(|_| NONE),
                }
            }
            Node::Lookup { .. } | Node::List(_) | Node::Match { .. } | Node::Binary { .. } => {
                let v = self.val(node, locals);
                num_c(move |e| num_or_none(&v(e)))
            }
            Node::Not(_) | Node::Missing(_) => {
                let t = self.tri(node, locals);
                num_c(move |e| {
                    t(e);
                    NONE
                })
            }
        }
    }

    fn builtin_num(&mut self, b: Builtin, args: &[Node], locals: &[Local]) -> NumC {
        match b {
            Builtin::Abs => {
                let a = self.arg_num(args, 0, locals);
                num_c(move |e| a(e).abs())
            }
            Builtin::Min | Builtin::Max => {
                let xs: Vec<NumC> = args.iter().map(|a| self.num(a, locals)).collect();
                let min = b == Builtin::Min;
                num_c(move |e| {
                    let mut acc = NONE;
                    for (i, x) in xs.iter().enumerate() {
                        let v = x(e);
                        if v.is_nan() {
                            return NONE;
                        }
                        acc = if i == 0 {
                            v
                        } else if min {
                            acc.min(v)
                        } else {
                            acc.max(v)
                        };
                    }
                    acc
                })
            }
            Builtin::Clamp => {
                let (x, lo, hi) = (
                    self.arg_num(args, 0, locals),
                    self.arg_num(args, 1, locals),
                    self.arg_num(args, 2, locals),
                );
                num_c(move |e| {
                    let (x, lo, hi) = (x(e), lo(e), hi(e));
                    if x.is_nan() || lo.is_nan() || hi.is_nan() {
                        NONE
                    } else {
                        x.max(lo).min(hi)
                    }
                })
            }
            Builtin::Rank => {
                let a = self.arg_val(args, 0, locals);
                num_c(move |e| match a(e) {
                    Val::Enum(x) => f64::from(x),
                    _ => NONE,
                })
            }
            Builtin::Len => {
                if let [
                    Node::Binary {
                        op: op @ (BinOp::Intersect | BinOp::Union | BinOp::Sub),
                        lhs,
                        rhs,
                    },
                ] = args
                {
                    // Counted without building the set.
                    let (l, r, op) = (self.val(lhs, locals), self.val(rhs, locals), *op);
                    return num_c(move |e| {
                        let (x, y) = (l(e), r(e));
                        match (as_set(&x), as_set(&y), &x, &y) {
                            (Some(p), Some(q), _, _) => set_op_len(op, &p, &q) as f64,
                            (_, _, Val::Nums(p), Val::Nums(q)) => num_set_op(op, p, q).len() as f64,
                            _ => NONE,
                        }
                    });
                }
                let a = self.arg_val(args, 0, locals);
                num_c(move |e| match a(e) {
                    Val::Ids(ids, _) => ids.len() as f64,
                    Val::Nums(ns) => ns.len() as f64,
                    Val::Str(s) => e.ctx.strings.text(s).chars().count() as f64,
                    _ => NONE,
                })
            }
            Builtin::Lower | Builtin::Contains => {
                let v = self.builtin_val(b, args, locals);
                num_c(move |e| num_or_none(&v(e)))
            }
        }
    }

    fn arg_num(&mut self, args: &[Node], i: usize, locals: &[Local]) -> NumC {
        match args.get(i) {
            Some(a) => self.num(a, locals),
            None => num_c(|_| NONE),
        }
    }

    fn arg_val(&mut self, args: &[Node], i: usize, locals: &[Local]) -> ValC {
        match args.get(i) {
            Some(a) => self.val(a, locals),
            None => val_c(|_| Val::Abstain),
        }
    }

    /// Compiles a node for a consumer that wants a truth value (`None`: undecided).
    fn tri(&mut self, node: &Node, locals: &[Local]) -> TriC {
        match node {
            Node::Const(c) => {
                let t = match c {
                    Const::Bool(b) => Some(*b),
                    _ => None,
                };
                tri_c(move |_| t)
            }
            Node::Field(role, field) => {
                let (r, f) = (*role as usize, *field as usize);
                tri_c(move |e| match e.pair.roles.get(r).and_then(|x| x.get(f)) {
                    Some(Val::Bool(b)) => Some(*b),
                    _ => None,
                })
            }
            Node::Local(i) => match locals.get(*i as usize) {
                Some(l) => {
                    let s = l.slot;
                    tri_c(move |e| match e.slots.get(s) {
                        Some(Val::Bool(b)) => Some(*b),
                        _ => None,
                    })
                }
                None => tri_c(|_| None),
            },
            Node::Not(a) => {
                let a = self.tri(a, locals);
                tri_c(move |e| a(e).map(|b| !b))
            }
            Node::Missing(a) => {
                let a = self.val(a, locals);
                tri_c(move |e| Some(matches!(a(e), Val::Missing)))
            }
            Node::Binary { op, lhs, rhs } if matches!(op, BinOp::And | BinOp::Or) => {
                // Conditions are three-valued: an undecided side does not hide a decided answer.
                let (l, r) = (self.tri(lhs, locals), self.tri(rhs, locals));
                let short = *op == BinOp::Or;
                tri_c(move |e| {
                    let a = l(e);
                    if a == Some(short) {
                        return Some(short);
                    }
                    match (a, r(e)) {
                        (_, Some(x)) if x == short => Some(short),
                        (Some(_), Some(_)) => Some(!short),
                        _ => None,
                    }
                })
            }
            Node::Binary { op, lhs, rhs }
                if matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                ) && self.ty(lhs, locals) == Ty::Num
                    && self.ty(rhs, locals) == Ty::Num =>
            {
                let (l, r) = (self.num(lhs, locals), self.num(rhs, locals));
                let cmp: fn(f64, f64) -> bool = match op {
                    BinOp::Eq => |x, y| x == y,
                    BinOp::Ne => |x, y| x != y,
                    BinOp::Lt => |x, y| x < y,
                    BinOp::Le => |x, y| x <= y,
                    BinOp::Gt => |x, y| x > y,
                    _ => |x, y| x >= y,
                };
                tri_c(move |e| {
                    let (x, y) = (l(e), r(e));
                    if x.is_nan() || y.is_nan() {
                        None
                    } else {
                        Some(cmp(x, y))
                    }
                })
            }
            Node::Binary { op, lhs, rhs }
                if matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                ) =>
            {
                let (l, r, op) = (self.val(lhs, locals), self.val(rhs, locals), *op);
                tri_c(move |e| {
                    let (a, b) = (l(e), r(e));
                    if absent(&a) || absent(&b) {
                        return None;
                    }
                    match op {
                        BinOp::Eq => Some(equal(&a, &b)),
                        BinOp::Ne => Some(!equal(&a, &b)),
                        _ => {
                            let (x, y) = match (&a, &b) {
                                (Val::Num(x), Val::Num(y)) => (*x, *y),
                                (Val::Enum(x), Val::Enum(y)) => (f64::from(*x), f64::from(*y)),
                                _ => return None,
                            };
                            Some(match op {
                                BinOp::Lt => x < y,
                                BinOp::Le => x <= y,
                                BinOp::Gt => x > y,
                                _ => x >= y,
                            })
                        }
                    }
                })
            }
            Node::Coalesce { value, default } => {
                let (v, d) = (self.val(value, locals), self.tri(default, locals));
                tri_c(move |e| match v(e) {
                    Val::Missing => d(e),
                    Val::Bool(b) => Some(b),
                    _ => None,
                })
            }
            Node::If {
                cond,
                then,
                otherwise,
                then_clause,
                else_clause,
            } => {
                let c = self.tri(cond, locals);
                let (t, o) = (self.tri(then, locals), self.tri(otherwise, locals));
                if_code(c, t, o, (*then_clause, *else_clause), None)
            }
            Node::When {
                arms,
                otherwise,
                otherwise_clause,
            } => {
                let arms = self.when_arms(arms, locals, Self::tri);
                let o = self.tri(otherwise, locals);
                when_code(arms, o, *otherwise_clause, None)
            }
            Node::CallFn { function, args } => {
                match self.call(*function, args, locals, Repr::Tri) {
                    Some((prelude, Body::Tri(body), _)) => tri_c(move |e| {
                        if !prelude(e) {
                            return None;
                        }
                        body(e)
                    }),
                    _ => tri_c(|_| None),
                }
            }
            _ => {
                let v = self.val(node, locals);
                tri_c(move |e| match v(e) {
                    Val::Bool(b) => Some(b),
                    _ => None,
                })
            }
        }
    }

    /// Compiles a node for a consumer that wants any value, `missing` kept apart from `abstain`.
    fn val(&mut self, node: &Node, locals: &[Local]) -> ValC {
        match node {
            Node::Const(c) => {
                let v = to_val(c);
                val_c(move |_| v.clone())
            }
            Node::Field(role, field) => {
                let (r, f) = (*role as usize, *field as usize);
                val_c(move |e| {
                    e.pair
                        .roles
                        .get(r)
                        .and_then(|x| x.get(f))
                        .map_or(Val::Abstain, Val::view)
                })
            }
            Node::Local(i) => match locals.get(*i as usize) {
                Some(l) => {
                    let s = l.slot;
                    val_c(move |e| e.slots.get(s).cloned().unwrap_or(Val::Abstain))
                }
                None => val_c(|_| Val::Abstain),
            },
            Node::Score
            | Node::Overall
            | Node::Dimension(_)
            | Node::Neg(_)
            | Node::Call {
                builtin:
                    Builtin::Len
                    | Builtin::Abs
                    | Builtin::Min
                    | Builtin::Max
                    | Builtin::Clamp
                    | Builtin::Rank,
                ..
            } => {
                let n = self.num(node, locals);
                val_c(move |e| from_num(n(e)))
            }
            Node::Binary { op, lhs, .. }
                if matches!(op, BinOp::Add | BinOp::Mul | BinOp::Div)
                    || (*op == BinOp::Sub && self.ty(lhs, locals) == Ty::Num) =>
            {
                let n = self.num(node, locals);
                val_c(move |e| from_num(n(e)))
            }
            Node::Not(_)
            | Node::Missing(_)
            | Node::Binary {
                op:
                    BinOp::And
                    | BinOp::Or
                    | BinOp::Eq
                    | BinOp::Ne
                    | BinOp::Lt
                    | BinOp::Le
                    | BinOp::Gt
                    | BinOp::Ge,
                ..
            } => {
                let t = self.tri(node, locals);
                val_c(move |e| from_tri(t(e)))
            }
            Node::Binary { op, lhs, rhs } => {
                // Union, intersection, and a difference of sets (or of numbers, when the
                // types could not tell).
                let (l, r, op) = (self.val(lhs, locals), self.val(rhs, locals), *op);
                val_c(move |e| {
                    let (a, b) = (l(e), r(e));
                    if absent(&a) || absent(&b) {
                        return Val::Abstain;
                    }
                    match (&a, &b) {
                        (Val::Nums(x), Val::Nums(y)) => Val::Nums(num_set_op(op, x, y).into()),
                        (Val::Nums(_), _) => Val::Abstain,
                        (Val::Ids(..), _) => match (as_set(&a), as_set(&b)) {
                            (Some(x), Some(y)) => Val::Ids(set_op(op, &x, &y).into(), Kind::Set),
                            _ => Val::Abstain,
                        },
                        (Val::Num(x), Val::Num(y)) if op == BinOp::Sub => from_num(finite(x - y)),
                        _ => Val::Abstain,
                    }
                })
            }
            Node::Coalesce { value, default } => {
                let (v, d) = (self.val(value, locals), self.val(default, locals));
                val_c(move |e| match v(e) {
                    Val::Missing => d(e),
                    v => v,
                })
            }
            Node::If {
                cond,
                then,
                otherwise,
                then_clause,
                else_clause,
            } => {
                let c = self.tri(cond, locals);
                let (t, o) = (self.val(then, locals), self.val(otherwise, locals));
                let (tc, ec) = (*then_clause, *else_clause);
                val_c(move |e| match c(e) {
                    Some(true) => {
                        e.ctx.hit(tc);
                        t(e)
                    }
                    Some(false) => {
                        e.ctx.hit(ec);
                        o(e)
                    }
                    None => Val::Abstain,
                })
            }
            Node::When {
                arms,
                otherwise,
                otherwise_clause,
            } => {
                let arms = self.when_arms(arms, locals, Self::val);
                let o = self.val(otherwise, locals);
                let oc = *otherwise_clause;
                val_c(move |e| {
                    for (w, t, c) in &arms {
                        match w(e) {
                            Some(true) => {
                                e.ctx.hit(*c);
                                return t(e);
                            }
                            Some(false) => {}
                            None => return Val::Abstain,
                        }
                    }
                    e.ctx.hit(oc);
                    o(e)
                })
            }
            Node::Match { scrutinee, arms } => {
                let s = self.val(scrutinee, locals);
                let arms: Vec<(Vec<Const>, ValC, u32)> = arms
                    .iter()
                    .map(|a| (a.patterns.clone(), self.val(&a.then, locals), a.clause))
                    .collect();
                val_c(move |e| {
                    let s = s(e);
                    if absent(&s) {
                        return Val::Abstain;
                    }
                    for (ps, t, c) in &arms {
                        if ps.is_empty() || ps.iter().any(|p| pattern_matches(p, &s)) {
                            e.ctx.hit(*c);
                            return t(e);
                        }
                    }
                    Val::Abstain
                })
            }
            Node::Call { builtin, args } => self.builtin_val(*builtin, args, locals),
            Node::CallFn { function, args } => {
                match self.call(*function, args, locals, Repr::Val) {
                    Some((prelude, Body::Val(body), range)) => val_c(move |e| {
                        if !prelude(e) {
                            return Val::Abstain;
                        }
                        match (body(e), range) {
                            (Val::Num(n), Some([lo, hi])) if !(lo..=hi).contains(&n) => {
                                e.ctx.events.function_clamped += 1;
                                Val::Num(n.clamp(lo, hi))
                            }
                            (v, _) => v,
                        }
                    }),
                    _ => val_c(|_| Val::Abstain),
                }
            }
            Node::Lookup { table, keys } => {
                let Some(index) = self.tables.get(*table as usize).cloned() else {
                    return val_c(|_| Val::Abstain);
                };
                let keys: Vec<ValC> = keys.iter().map(|k| self.val(k, locals)).collect();
                val_c(move |e| {
                    let mut k: KeyTuple = [None; MAX_KEYS];
                    for (i, code) in keys.iter().enumerate() {
                        let v = code(e);
                        if absent(&v) {
                            return Val::Abstain;
                        }
                        match (key(&v), k.get_mut(i)) {
                            (Some(x), Some(slot)) => *slot = Some(x),
                            _ => return index.default.clone(),
                        }
                    }
                    index.entries.get(&k).unwrap_or(&index.default).clone()
                })
            }
            Node::List(items) => {
                let items: Vec<ValC> = items.iter().map(|i| self.val(i, locals)).collect();
                val_c(move |e| {
                    let mut ids = Vec::with_capacity(items.len());
                    let mut nums = Vec::new();
                    for i in &items {
                        match i(e) {
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
                })
            }
        }
    }

    fn builtin_val(&mut self, b: Builtin, args: &[Node], locals: &[Local]) -> ValC {
        match b {
            Builtin::Lower => {
                let a = self.arg_val(args, 0, locals);
                val_c(move |e| match a(e) {
                    Val::Str(s) => Val::Str(e.ctx.strings.lower(s)),
                    _ => Val::Abstain,
                })
            }
            Builtin::Contains => {
                let (h, n) = (self.arg_val(args, 0, locals), self.arg_val(args, 1, locals));
                val_c(move |e| {
                    let (h, n) = (h(e), n(e));
                    if absent(&h) || absent(&n) {
                        return Val::Abstain;
                    }
                    match (h, n) {
                        (Val::Ids(ids, Kind::Set), Val::Str(x) | Val::Enum(x)) => {
                            Val::Bool(ids.binary_search(&x).is_ok())
                        }
                        (Val::Ids(ids, Kind::List), Val::Str(x) | Val::Enum(x)) => {
                            Val::Bool(ids.contains(&x))
                        }
                        (Val::Nums(ns), Val::Num(x)) => Val::Bool(ns.contains(&x)),
                        (Val::Str(h), Val::Str(x)) => {
                            let found = e.ctx.strings.text(h).contains(e.ctx.strings.text(x));
                            Val::Bool(found)
                        }
                        _ => Val::Abstain,
                    }
                })
            }
            _ => {
                let n = self.builtin_num(b, args, locals);
                val_c(move |e| from_num(n(e)))
            }
        }
    }

    /// A call of a function: the code that evaluates the arguments into the function's
    /// parameter slots (false when one abstains: the call abstains), the body compiled for the
    /// arguments' types, and the declared range. `None` for a call that cannot be compiled (an
    /// unknown function, or recursion, which the checker refuses).
    fn call(
        &mut self,
        function: u32,
        args: &[Node],
        locals: &[Local],
        repr: Repr,
    ) -> Option<(Prelude, Body, Option<[f64; 2]>)> {
        let f = self.program.functions.get(function as usize)?;
        if self.compiling.contains(&function) {
            return None;
        }
        let tys: Vec<Ty> = args.iter().map(|a| self.ty(a, locals)).collect();
        let codes: Vec<ValC> = args.iter().map(|a| self.val(a, locals)).collect();
        let params = match self.param_slots.get(function as usize).copied().flatten() {
            Some(p) => p,
            None => {
                let p = self.slot(args.len().max(f.params.len()));
                if let Some(s) = self.param_slots.get_mut(function as usize) {
                    *s = Some(p);
                }
                p
            }
        };
        let key = (function, tys.clone(), repr);
        let body = match self.bodies.get(&key) {
            Some(b) => b.clone(),
            None => {
                let body_locals: Vec<Local> = tys
                    .iter()
                    .enumerate()
                    .map(|(i, ty)| Local {
                        slot: params + i,
                        ty: *ty,
                    })
                    .collect();
                self.compiling.push(function);
                let body = match repr {
                    Repr::Num => Body::Num(Arc::new(self.num(&f.body, &body_locals))),
                    Repr::Tri => Body::Tri(Arc::new(self.tri(&f.body, &body_locals))),
                    Repr::Val => Body::Val(Arc::new(self.val(&f.body, &body_locals))),
                };
                self.compiling.pop();
                self.bodies.insert(key, body.clone());
                body
            }
        };
        let n = codes.len();
        if !args.iter().any(|a| self.calls_into(a, function, 0)) {
            // No argument reaches this function again: arguments go straight to its slots.
            let prelude: Prelude = Box::new(move |e: &mut Env<'_, '_, '_>| {
                for (i, code) in codes.iter().enumerate() {
                    let v = code(e);
                    if matches!(v, Val::Abstain) {
                        return false;
                    }
                    set_slot(&mut e.slots, params + i, v);
                }
                true
            });
            return Some((prelude, body, f.declared_range));
        }
        // Arguments land in slots of their own first: one of them calls this function again.
        let scratch = self.slot(n);
        let prelude: Prelude = Box::new(move |e: &mut Env<'_, '_, '_>| {
            for (i, code) in codes.iter().enumerate() {
                let v = code(e);
                if matches!(v, Val::Abstain) {
                    // A call with an argument that abstains abstains.
                    return false;
                }
                set_slot(&mut e.slots, scratch + i, v);
            }
            for i in 0..n {
                let v = e
                    .slots
                    .get_mut(scratch + i)
                    .map_or(Val::Abstain, |s| std::mem::replace(s, Val::Abstain));
                set_slot(&mut e.slots, params + i, v);
            }
            true
        });
        Some((prelude, body, f.declared_range))
    }
}

/// An `if` over code of a plain result: the branch its condition picks, `absent` when undecided.
fn if_code<T: Copy + Send + Sync + 'static>(
    c: TriC,
    t: Code<T>,
    o: Code<T>,
    (then_clause, else_clause): (u32, u32),
    absent: T,
) -> Code<T> {
    Box::new(move |e: &mut Env<'_, '_, '_>| match c(e) {
        Some(true) => {
            e.ctx.hit(then_clause);
            t(e)
        }
        Some(false) => {
            e.ctx.hit(else_clause);
            o(e)
        }
        None => absent,
    })
}

/// A `when` chain over code of a plain result: the first arm that holds, `absent` as soon as an
/// arm cannot be decided, else `otherwise`.
fn when_code<T: Copy + Send + Sync + 'static>(
    arms: Vec<(TriC, Code<T>, u32)>,
    otherwise: Code<T>,
    otherwise_clause: u32,
    absent: T,
) -> Code<T> {
    Box::new(move |e: &mut Env<'_, '_, '_>| {
        for (w, t, c) in &arms {
            match w(e) {
                Some(true) => {
                    e.ctx.hit(*c);
                    return t(e);
                }
                Some(false) => {}
                None => return absent,
            }
        }
        e.ctx.hit(otherwise_clause);
        otherwise(e)
    })
}

/// Calls `f` on each direct child of a node.
fn visit_children<'n>(node: &'n Node, f: &mut dyn FnMut(&'n Node)) {
    match node {
        Node::Const(_)
        | Node::Field(..)
        | Node::Local(_)
        | Node::Score
        | Node::Overall
        | Node::Dimension(_) => {}
        Node::Not(a) | Node::Neg(a) | Node::Missing(a) => f(a),
        Node::Binary { lhs, rhs, .. } => {
            f(lhs);
            f(rhs);
        }
        Node::Coalesce { value, default } => {
            f(value);
            f(default);
        }
        Node::If {
            cond,
            then,
            otherwise,
            ..
        } => {
            f(cond);
            f(then);
            f(otherwise);
        }
        Node::When {
            arms, otherwise, ..
        } => {
            for a in arms {
                f(&a.when);
                f(&a.then);
            }
            f(otherwise);
        }
        Node::Match { scrutinee, arms } => {
            f(scrutinee);
            for a in arms {
                f(&a.then);
            }
        }
        Node::Call { args, .. } | Node::CallFn { args, .. } | Node::Lookup { keys: args, .. } => {
            for a in args {
                f(a);
            }
        }
        Node::List(items) => {
            for i in items {
                f(i);
            }
        }
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
