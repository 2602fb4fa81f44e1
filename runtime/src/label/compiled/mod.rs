//! The labeling program compiled for speed, evaluated a chunk of pairs at a time: each node
//! becomes a closure specialised to what its consumer needs (a number, a three-valued truth or a
//! general value) that computes its result for every selected row of the chunk, so the cost of
//! reaching a node is paid once per chunk, not once per pair. Branches (`if`, `when`, `match`,
//! short-circuit `and`/`or`, calls whose arguments abstain) narrow the selection, so each
//! row evaluates exactly the nodes it would evaluate alone: clause hits and counted events stay
//! those of the pair. Constants and tables are prepared once, and each function body is
//! compiled once per argument types, its parameters at fixed slots.
//!
//! Numbers travel as `f64` with NaN meaning "no number" (missing, abstaining or another kind):
//! the decoder and the constants only ever produce finite numbers, and every arithmetic result
//! that is not finite abstains, so NaN is free to carry that meaning.

mod analysis;
mod call;
mod env;
mod num;
mod ops;
mod tri;
mod val;

pub(super) use env::Env;
pub(super) use ops::select;
use ops::*;

use super::batch::{ABSENT_ID, Column, MISSING_BOOL, MISSING_ID, PairBatch, ids_val, role_starts};
use super::engine::Ctx;
use super::value::{Kind, Seq, Val, to_set};
use rubric_compiler::lower::ir::*;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::sync::Arc;

/// No number.
pub(super) const NONE: f64 = f64::NAN;

/// Rows evaluated together: every buffer holds one value per row of a chunk.
pub(super) const CHUNK: usize = 256;

/// The rows of a chunk's buffers for a batch of `n` pairs: a batch smaller than a chunk (one
/// pair, for `rubric trace` or an example) gets buffers of its own size.
pub(super) fn chunk_rows(n: usize) -> usize {
    n.clamp(1, CHUNK)
}

/// Compiled code: writes its result for every selected row into the buffer, at the row.
pub(super) type Code<T> =
    Box<dyn for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &[u32], &mut [T]) + Send + Sync>;
pub(super) type NumC = Code<f64>;
pub(super) type TriC = Code<Option<bool>>;
type ValFn = dyn for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &[u32], &mut [Val<'a>]) + Send + Sync;
pub(super) type ValC = Box<ValFn>;
/// Strings and enum values as ids ([`MISSING_ID`], [`ABSENT_ID`]: missing, abstaining).
pub(super) type IdC = Code<u32>;

/// Evaluates a call's arguments into the parameters' slots and narrows the selection to the
/// rows where none abstained (the others' calls abstain).
type Prelude = Box<dyn for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &mut Vec<u32>) + Send + Sync>;

fn num_c<F>(f: F) -> NumC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &[u32], &mut [f64]) + Send + Sync + 'static,
{
    Box::new(f)
}

fn tri_c<F>(f: F) -> TriC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &[u32], &mut [Option<bool>])
        + Send
        + Sync
        + 'static,
{
    Box::new(f)
}

fn id_c<F>(f: F) -> IdC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &[u32], &mut [u32]) + Send + Sync + 'static,
{
    Box::new(f)
}

fn val_c<F>(f: F) -> ValC
where
    F: for<'a, 's, 'p> Fn(&mut Env<'a, 's, 'p>, &[u32], &mut [Val<'a>]) + Send + Sync + 'static,
{
    Box::new(f)
}

/// Writes `f(row)` at every selected row.
#[inline]
fn each<T>(sel: &[u32], out: &mut [T], mut f: impl FnMut(usize) -> T) {
    // A chunk's buffer: rows are below CHUNK, so the mask only spares the bounds check.
    if let Ok(out) = <&mut [T; CHUNK]>::try_from(&mut *out) {
        for &r in sel {
            let r = r as usize & (CHUNK - 1);
            out[r] = f(r);
        }
        return;
    }
    for &r in sel {
        let r = r as usize;
        if let Some(o) = out.get_mut(r) {
            *o = f(r);
        }
    }
}

/// Updates the value at every selected row.
#[inline]
fn update<T>(sel: &[u32], out: &mut [T], mut f: impl FnMut(usize, &mut T)) {
    if let Ok(out) = <&mut [T; CHUNK]>::try_from(&mut *out) {
        for &r in sel {
            let r = r as usize & (CHUNK - 1);
            f(r, &mut out[r]);
        }
        return;
    }
    for &r in sel {
        let r = r as usize;
        if let Some(o) = out.get_mut(r) {
            f(r, o);
        }
    }
}

/// Row `r` of a chunk's buffer.
#[inline]
fn at<T: Copy>(buf: &[T], r: usize, default: T) -> T {
    match <&[T; CHUNK]>::try_from(buf) {
        Ok(b) => b[r & (CHUNK - 1)],
        Err(_) => buf.get(r).copied().unwrap_or(default),
    }
}

/// Row `r` of a chunk's buffer, by reference.
#[inline]
fn row<T>(buf: &[T], r: usize) -> Option<&T> {
    match <&[T; CHUNK]>::try_from(buf) {
        Ok(b) => Some(&b[r & (CHUNK - 1)]),
        Err(_) => buf.get(r),
    }
}

/// Row `i` of a batch's column.
#[inline]
fn col_at<T: Copy>(column: &[T], i: usize, default: T) -> T {
    column.get(i).copied().unwrap_or(default)
}

fn absent(v: &Val<'_>) -> bool {
    matches!(v, Val::Abstain | Val::Missing)
}

fn num_or_none(v: &Val<'_>) -> f64 {
    match v {
        Val::Num(n) => *n,
        _ => NONE,
    }
}

/// A string or an enum value as its id.
fn id_of(v: &Val<'_>) -> u32 {
    match v {
        Val::Str(s) | Val::Enum(s) => *s,
        Val::Missing => MISSING_ID,
        _ => ABSENT_ID,
    }
}

fn from_id<'a>(id: u32, is_enum: bool) -> Val<'a> {
    match id {
        MISSING_ID => Val::Missing,
        ABSENT_ID => Val::Abstain,
        id if is_enum => Val::Enum(id),
        id => Val::Str(id),
    }
}

fn tri_of(v: &Val<'_>) -> Option<bool> {
    match v {
        Val::Bool(b) => Some(*b),
        _ => None,
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
    kind: SlotKind,
    /// Whether it may hold `missing` (an optional field, or something that passes one on).
    may_miss: bool,
}

/// How a `let` or a parameter is held: as the plain representation its type allows, or as a
/// general value when it must keep `missing` apart from `abstain` and the plain one cannot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum SlotKind {
    Num,
    Tri,
    Id,
    Val,
}

fn slot_kind(ty: Ty, may_miss: bool) -> SlotKind {
    match ty {
        Ty::Num if !may_miss => SlotKind::Num,
        Ty::Bool if !may_miss => SlotKind::Tri,
        Ty::Str | Ty::Enum => SlotKind::Id,
        _ => SlotKind::Val,
    }
}

/// Where values are read in place: a column of the batch, or a value slot.
#[derive(Clone, Copy, Debug)]
enum Place {
    Column(usize),
    Slot(usize),
}

/// How many slots of each kind a chunk needs.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Slots {
    pub num: usize,
    pub tri: usize,
    pub id: usize,
    pub val: usize,
}

impl Slots {
    fn next(&mut self, kind: SlotKind) -> usize {
        let n = match kind {
            SlotKind::Num => &mut self.num,
            SlotKind::Tri => &mut self.tri,
            SlotKind::Id => &mut self.id,
            SlotKind::Val => &mut self.val,
        };
        *n += 1;
        *n - 1
    }
}

/// A `let` (or an argument): its code in the representation of its slot.
pub(super) enum SlotCode {
    Num(NumC),
    Tri(TriC),
    Id(IdC),
    Val(ValC),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Repr {
    Num,
    Tri,
    Id,
    Val,
}

/// A function body's compiled form is shared by the calls with the same function, argument
/// types (and whether each may be missing) and representation.
type BodyKey = (u32, Vec<(Ty, bool)>, Repr);

/// A function body compiled once, shared by its call sites.
#[derive(Clone)]
enum Body {
    Num(Arc<NumC>),
    Tri(Arc<TriC>),
    Id(Arc<IdC>),
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
    /// The same entries by a one- or two-part key of strings and enum values, packed in a
    /// `u64`; `None` for tables keyed otherwise.
    by_ids: Option<FxHashMap<u64, Val<'static>>>,
    default: Val<'static>,
}

/// One or two ids as one key.
fn pack(a: u32, b: u32) -> u64 {
    (u64::from(a) << 32) | u64::from(b)
}

/// The compiled program: one score closure and its `let`s per dimension, band conditions, rule
/// conditions, and the number of slots a pair needs.
pub(super) struct Compiled {
    pub dimensions: Vec<CompiledDimension>,
    pub rules: Vec<TriC>,
    pub overall_bands: Bands,
    pub slots: Slots,
}

pub(super) struct CompiledDimension {
    pub lets: Vec<(usize, SlotCode)>,
    pub score: NumC,
    pub bands: Bands,
}

/// Grade bands: each condition compiled (`None` for `otherwise`), and, when every condition
/// only compares the graded score with a constant (`score >= 0.8`), those thresholds, which
/// the engine reads without running the conditions.
pub(super) struct Bands {
    pub conditions: Vec<Option<TriC>>,
    pub thresholds: Option<Vec<Threshold>>,
    /// Whether each threshold that holds implies the next holds too (`>= 0.8`, then `>= 0.5`,
    /// then `otherwise`): then the first that holds is the number that do not.
    pub monotone: bool,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Threshold {
    Always,
    AtLeast(f64),
    Above(f64),
}

impl Bands {
    fn new(c: &mut Compiler<'_>, bands: &[BandIr], locals: &[Local], subject: &Node) -> Bands {
        let conditions = bands
            .iter()
            .map(|b| b.when.as_ref().map(|w| c.tri(w, locals)))
            .collect();
        let thresholds: Option<Vec<Threshold>> = bands
            .iter()
            .map(|b| match &b.when {
                None => Some(Threshold::Always),
                Some(Node::Binary { op, lhs, rhs }) if **lhs == *subject => match (op, &**rhs) {
                    (BinOp::Ge, Node::Const(Const::Number(x))) => Some(Threshold::AtLeast(*x)),
                    (BinOp::Gt, Node::Const(Const::Number(x))) => Some(Threshold::Above(*x)),
                    _ => None,
                },
                Some(_) => None,
            })
            .collect();
        let monotone = thresholds.as_deref().is_some_and(|t: &[Threshold]| {
            t.windows(2).all(|w| match (w[0], w[1]) {
                (_, Threshold::Always) => true,
                (Threshold::Always, _) => false,
                (Threshold::AtLeast(a), Threshold::AtLeast(b)) => a >= b,
                (Threshold::AtLeast(a), Threshold::Above(b)) => a > b,
                (Threshold::Above(a), Threshold::AtLeast(b) | Threshold::Above(b)) => a >= b,
            })
        });
        Bands {
            conditions,
            thresholds,
            monotone,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }
}

/// Compiles a labeling program.
pub(super) fn compile(program: &LabelingProgram) -> Compiled {
    let tables = program
        .tables
        .iter()
        .map(|t| {
            let ids = |t: &ValueType| matches!(t, ValueType::String | ValueType::Enum { .. });
            let by_ids = (matches!(t.keys.len(), 1 | 2) && t.keys.iter().all(ids)).then(|| {
                t.entries
                    .iter()
                    .filter_map(|e| {
                        let id = |k: &Const| match k {
                            Const::Str(s) | Const::Enum(_, s) => Some(*s),
                            _ => None,
                        };
                        let a = id(e.keys.first()?)?;
                        let b = match e.keys.get(1) {
                            Some(k) => id(k)?,
                            None => 0,
                        };
                        Some((pack(a, b), to_val(&e.value)))
                    })
                    .collect()
            });
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
                by_ids,
                default: to_val(&t.default),
            })
        })
        .collect();
    let mut c = Compiler {
        program,
        columns: role_starts(program),
        tables,
        slots: Slots::default(),
        param_slots: FxHashMap::default(),
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
            let ty = c.ty(&l.value, &locals);
            let may_miss = c.may_miss(&l.value, &locals);
            let kind = slot_kind(ty, may_miss);
            let code = c.slot_code(&l.value, &locals, kind);
            let slot = c.slots.next(kind);
            locals.push(Local {
                slot,
                ty,
                kind,
                may_miss,
            });
            lets.push((slot, code));
        }
        let score = c.num(&d.score, &locals);
        // Grade bands read the score and may read the dimension's `let`s.
        let bands = Bands::new(&mut c, &d.grades, &locals, &Node::Score);
        dimensions.push(CompiledDimension { lets, score, bands });
    }
    let rules = program
        .rules
        .iter()
        .map(|r| c.tri(&r.when, no_locals))
        .collect();
    let overall_bands = Bands::new(&mut c, &program.overall.grades, no_locals, &Node::Overall);
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
    /// The first column of each role in a batch.
    columns: Vec<usize>,
    tables: Vec<Arc<TableIndex>>,
    slots: Slots,
    /// The slots of a function's parameters, by the kinds of its arguments. No function is
    /// active twice at once (the checker refuses recursion), so parameters live at fixed slots.
    param_slots: FxHashMap<(u32, Vec<SlotKind>), Vec<usize>>,
    bodies: FxHashMap<BodyKey, Body>,
    /// Functions whose body is being compiled: a call back into one of them (recursion, which
    /// the checker refuses) compiles to `abstain` instead of looping.
    compiling: Vec<u32>,
    /// Result types of function bodies by argument types, and how deep typing has gone.
    body_tys: RefCell<FxHashMap<(u32, Vec<Ty>), Ty>>,
    typing_depth: Cell<u32>,
}
