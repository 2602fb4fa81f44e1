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

/// Everything a compiled node may read and write while a chunk of pairs is labeled. Row `r` of
/// the chunk is pair `base + r` of the batch.
pub(super) struct Env<'a, 's, 'p> {
    pub batch: &'a PairBatch,
    pub base: usize,
    /// `let`s and function parameters: each a column at a slot fixed at compile time, held as
    /// numbers, truths, ids or general values (see [`SlotKind`]).
    pub slots: Vec<Vec<Val<'a>>>,
    pub num_slots: Vec<Vec<f64>>,
    pub tri_slots: Vec<Vec<Option<bool>>>,
    pub id_slots: Vec<Vec<u32>>,
    pub ctx: &'a mut Ctx<'s, 'p>,
    /// The dimension's score while its grade bands run; NaN elsewhere.
    pub score: Vec<f64>,
    /// The overall score while rules and overall bands run; NaN elsewhere.
    pub overall: Vec<f64>,
    /// Each dimension's scores (NaN: abstained) while rules and overall bands run.
    pub dims: Vec<Vec<f64>>,
    /// A division by zero or an overflow happened in the dimension being evaluated.
    pub undefined: Vec<bool>,
    /// The length of every buffer: [`CHUNK`], or fewer for a batch that is smaller.
    pub rows: usize,
    pool: Pool<'a>,
}

/// Buffers handed out to nodes and given back, so a chunk allocates nothing after the first.
/// The pool outlives its `Env`: it goes back to its thread when the `Env` is dropped, so that
/// labeling one pair after another (`rubric trace`, `test`, `stats`) allocates almost nothing.
#[derive(Default)]
struct Pool<'a> {
    nums: Vec<Vec<f64>>,
    tris: Vec<Vec<Option<bool>>>,
    vals: Vec<Vec<Val<'a>>>,
    sels: Vec<Vec<u32>>,
    ids: Vec<Vec<u32>>,
    keys: Vec<Vec<KeyTuple>>,
}

thread_local! {
    /// Each thread's pool, between labelings.
    static POOL: Cell<Pool<'static>> = const {
        Cell::new(Pool {
            nums: Vec::new(),
            tris: Vec::new(),
            vals: Vec::new(),
            sels: Vec::new(),
            ids: Vec::new(),
            keys: Vec::new(),
        })
    };
}

/// A buffer of `rows` values from a pool's list (its old values are stale: every node writes a
/// row before reading it).
fn pooled<T: Clone>(list: &mut Vec<Vec<T>>, rows: usize, fill: T) -> Vec<T> {
    let mut b = list.pop().unwrap_or_default();
    b.resize(rows, fill);
    b
}

impl<'a, 's, 'p> Env<'a, 's, 'p> {
    pub fn new(batch: &'a PairBatch, ctx: &'a mut Ctx<'s, 'p>, slots: Slots, dims: usize) -> Self {
        let rows = chunk_rows(batch.len());
        // The thread's pool, its values' lifetime shortened to this batch's.
        let mut pool: Pool<'a> = POOL.take();
        Env {
            batch,
            base: 0,
            slots: (0..slots.val)
                .map(|_| pooled(&mut pool.vals, rows, Val::Abstain))
                .collect(),
            num_slots: (0..slots.num)
                .map(|_| pooled(&mut pool.nums, rows, NONE))
                .collect(),
            tri_slots: (0..slots.tri)
                .map(|_| pooled(&mut pool.tris, rows, None))
                .collect(),
            id_slots: (0..slots.id)
                .map(|_| pooled(&mut pool.ids, rows, ABSENT_ID))
                .collect(),
            ctx,
            score: pooled(&mut pool.nums, rows, NONE),
            overall: pooled(&mut pool.nums, rows, NONE),
            dims: (0..dims)
                .map(|_| pooled(&mut pool.nums, rows, NONE))
                .collect(),
            undefined: vec![false; rows],
            rows,
            pool,
        }
    }

    /// Evaluates a `let` into its slot for the selected rows.
    pub fn set_slot(&mut self, slot: usize, code: &SlotCode, sel: &[u32]) {
        match code {
            SlotCode::Num(c) => run_into_slot(self, |e| &mut e.num_slots, slot, c, sel),
            SlotCode::Tri(c) => run_into_slot(self, |e| &mut e.tri_slots, slot, c, sel),
            SlotCode::Id(c) => run_into_slot(self, |e| &mut e.id_slots, slot, c, sel),
            SlotCode::Val(c) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    let mut column = std::mem::take(s);
                    c(self, sel, &mut column);
                    if let Some(s) = self.slots.get_mut(slot) {
                        *s = column;
                    }
                }
            }
        }
    }

    /// Calls `f` with a row's value where it is, without copying it into a buffer.
    fn with_val<R>(&self, p: Place, r: usize, f: impl FnOnce(&Val<'_>) -> R) -> R {
        match p {
            Place::Column(c) => match self.column(c) {
                Some(col) => f(&col.val(self.base + r)),
                None => f(&Val::Abstain),
            },
            Place::Slot(s) => match self.slots.get(s).and_then(|v| row(v, r)) {
                Some(v) => f(v),
                None => f(&Val::Abstain),
            },
        }
    }

    fn column(&self, c: usize) -> Option<&'a Column> {
        self.batch.column(c)
    }

    pub fn take_num(&mut self) -> Vec<f64> {
        pooled(&mut self.pool.nums, self.rows, NONE)
    }
    pub fn give_num(&mut self, b: Vec<f64>) {
        self.pool.nums.push(b);
    }
    pub fn take_tri(&mut self) -> Vec<Option<bool>> {
        pooled(&mut self.pool.tris, self.rows, None)
    }
    pub fn give_tri(&mut self, b: Vec<Option<bool>>) {
        self.pool.tris.push(b);
    }
    fn take_id(&mut self) -> Vec<u32> {
        pooled(&mut self.pool.ids, self.rows, ABSENT_ID)
    }
    fn give_id(&mut self, b: Vec<u32>) {
        self.pool.ids.push(b);
    }
    fn take_val(&mut self) -> Vec<Val<'a>> {
        pooled(&mut self.pool.vals, self.rows, Val::Abstain)
    }
    fn give_val(&mut self, b: Vec<Val<'a>>) {
        self.pool.vals.push(b);
    }
    /// An empty selection.
    pub fn take_sel(&mut self) -> Vec<u32> {
        let mut s = self.pool.sels.pop().unwrap_or_default();
        s.clear();
        s
    }
    pub fn give_sel(&mut self, s: Vec<u32>) {
        self.pool.sels.push(s);
    }

    fn take_keys(&mut self) -> Vec<KeyTuple> {
        pooled(&mut self.pool.keys, self.rows, [None; MAX_KEYS])
    }
    fn give_keys(&mut self, b: Vec<KeyTuple>) {
        self.pool.keys.push(b);
    }
}

/// Runs code of a plain result into one of the `Env`'s slot columns (taken out while the code
/// runs, so the code can read the other slots).
fn run_into_slot<T>(
    e: &mut Env<'_, '_, '_>,
    columns: for<'e> fn(&'e mut Env<'_, '_, '_>) -> &'e mut Vec<Vec<T>>,
    slot: usize,
    code: &Code<T>,
    sel: &[u32],
) {
    let Some(s) = columns(e).get_mut(slot) else {
        return;
    };
    let mut values = std::mem::take(s);
    code(e, sel, &mut values);
    if let Some(s) = columns(e).get_mut(slot) {
        *s = values;
    }
}

impl Drop for Env<'_, '_, '_> {
    /// Gives every buffer back to the thread's pool, emptied of this batch's values.
    fn drop(&mut self) {
        let mut pool = std::mem::take(&mut self.pool);
        pool.nums.append(&mut self.num_slots);
        pool.nums.append(&mut self.dims);
        pool.nums.push(std::mem::take(&mut self.score));
        pool.nums.push(std::mem::take(&mut self.overall));
        pool.tris.append(&mut self.tri_slots);
        pool.ids.append(&mut self.id_slots);
        pool.vals.append(&mut self.slots);
        // Values may borrow from the batch: the value buffers are emptied, which only re-types
        // them (`collect` reuses each allocation).
        let vals = std::mem::take(&mut pool.vals)
            .into_iter()
            .map(|mut v| {
                v.clear();
                v.into_iter()
                    .map(|_| Val::Abstain)
                    .collect::<Vec<Val<'static>>>()
            })
            .collect();
        POOL.set(Pool {
            nums: pool.nums,
            tris: pool.tris,
            vals,
            sels: pool.sels,
            ids: pool.ids,
            keys: pool.keys,
        });
    }
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

impl Compiler<'_> {
    /// Code for a node in the representation of a slot of this kind.
    fn slot_code(&mut self, node: &Node, locals: &[Local], kind: SlotKind) -> SlotCode {
        match kind {
            SlotKind::Num => SlotCode::Num(self.num(node, locals)),
            SlotKind::Tri => SlotCode::Tri(self.tri(node, locals)),
            SlotKind::Id => SlotCode::Id(self.id(node, locals)),
            SlotKind::Val => SlotCode::Val(self.val(node, locals)),
        }
    }

    /// Whether a node may evaluate to `missing` (and not only to a value or `abstain`).
    fn may_miss(&self, node: &Node, locals: &[Local]) -> bool {
        match node {
            Node::Field(role, field) => self
                .program
                .roles
                .get(*role as usize)
                .and_then(|r| self.program.entities.get(r.entity as usize))
                .and_then(|e| e.fields.get(*field as usize))
                .is_none_or(|f| f.optional),
            Node::Local(i) => locals.get(*i as usize).is_some_and(|l| l.may_miss),
            Node::Coalesce { default, .. } => self.may_miss(default, locals),
            Node::If {
                then, otherwise, ..
            } => self.may_miss(then, locals) || self.may_miss(otherwise, locals),
            Node::When {
                arms, otherwise, ..
            } => {
                self.may_miss(otherwise, locals)
                    || arms.iter().any(|a| self.may_miss(&a.then, locals))
            }
            Node::Match { arms, .. } => arms.iter().any(|a| self.may_miss(&a.then, locals)),
            Node::CallFn { function, args } => {
                let Some(f) = self.program.functions.get(*function as usize) else {
                    return false;
                };
                // Recursion (refused by the checker) must not loop here.
                if self.typing_depth.get() > MAX_CALL_DEPTH {
                    return true;
                }
                let params: Vec<Local> = args
                    .iter()
                    .map(|a| Local {
                        slot: 0,
                        ty: self.ty(a, locals),
                        kind: SlotKind::Val,
                        may_miss: self.may_miss(a, locals),
                    })
                    .collect();
                self.typing_depth.set(self.typing_depth.get() + 1);
                let m = self.may_miss(&f.body, &params);
                self.typing_depth.set(self.typing_depth.get() - 1);
                m
            }
            Node::Const(_)
            | Node::Score
            | Node::Overall
            | Node::Dimension(_)
            | Node::Not(_)
            | Node::Neg(_)
            | Node::Binary { .. }
            | Node::Missing(_)
            | Node::Call { .. }
            | Node::Lookup { .. }
            | Node::List(_) => false,
        }
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
                let params: Vec<Local> = key
                    .1
                    .iter()
                    .map(|ty| Local {
                        slot: 0,
                        ty: *ty,
                        kind: SlotKind::Val,
                        may_miss: true,
                    })
                    .collect();
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

    /// The column of a role's field.
    fn column(&self, role: u32, field: u32) -> Option<usize> {
        self.columns
            .get(role as usize)
            .map(|start| start + field as usize)
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

    /// An `if` or a `when` for a consumer of a plain result, each branch compiled by `then`;
    /// `absent` where a condition cannot be decided.
    fn branches<T: Copy + Send + Sync + 'static>(
        &mut self,
        node: &Node,
        locals: &[Local],
        then: fn(&mut Self, &Node, &[Local]) -> Code<T>,
        absent: T,
    ) -> Code<T> {
        match node {
            Node::If {
                cond,
                then: yes,
                otherwise,
                then_clause,
                else_clause,
            } => {
                let c = self.tri(cond, locals);
                let (t, o) = (then(self, yes, locals), then(self, otherwise, locals));
                if_code(c, t, o, (*then_clause, *else_clause), absent)
            }
            Node::When {
                arms,
                otherwise,
                otherwise_clause,
            } => {
                let arms = self.when_arms(arms, locals, then);
                let o = then(self, otherwise, locals);
                when_code(arms, o, *otherwise_clause, absent)
            }
            _ => Box::new(move |_: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| {
                each(sel, out, |_| absent)
            }),
        }
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
                num_c(move |_, sel, out| each(sel, out, |_| x))
            }
            Node::Field(role, field) => {
                let col = self.column(*role, *field);
                num_c(move |e, sel, out| {
                    let base = e.base;
                    match col.and_then(|c| e.column(c)) {
                        Some(Column::Num(v)) => each(sel, out, |r| col_at(v, base + r, NONE)),
                        Some(c) => each(sel, out, |r| num_or_none(&c.val(base + r))),
                        None => each(sel, out, |_| NONE),
                    }
                })
            }
            Node::Local(i) => local_num(locals.get(*i as usize)),
            Node::Score => num_c(|e, sel, out| each(sel, out, |r| at(&e.score, r, NONE))),
            Node::Overall => num_c(|e, sel, out| each(sel, out, |r| at(&e.overall, r, NONE))),
            Node::Dimension(i) => {
                let i = *i as usize;
                num_c(move |e, sel, out| match e.dims.get(i) {
                    Some(d) => each(sel, out, |r| at(d, r, NONE)),
                    None => each(sel, out, |_| NONE),
                })
            }
            Node::Neg(a) => {
                let a = self.num(a, locals);
                num_c(move |e, sel, out| {
                    a(e, sel, out);
                    update(sel, out, |_, x| *x = -*x);
                })
            }
            Node::Binary { op, lhs, rhs }
                if matches!(op, BinOp::Add | BinOp::Mul | BinOp::Div)
                    || (*op == BinOp::Sub && self.ty(lhs, locals) == Ty::Num) =>
            {
                match op {
                    BinOp::Add => arith(self.num_pair(lhs, rhs, locals), |x, y| finite(x + y)),
                    BinOp::Sub => arith(self.num_pair(lhs, rhs, locals), |x, y| finite(x - y)),
                    BinOp::Mul => arith(self.num_pair(lhs, rhs, locals), |x, y| finite(x * y)),
                    _ => {
                        let (l, r) = (self.num(lhs, locals), self.num(rhs, locals));
                        num_c(move |e, sel, out| {
                            l(e, sel, out);
                            let mut y = e.take_num();
                            r(e, sel, &mut y);
                            for &row in sel {
                                let row = row as usize;
                                let (Some(x), Some(d)) = (out.get_mut(row), y.get(row)) else {
                                    continue;
                                };
                                if x.is_nan() || d.is_nan() {
                                    *x = NONE;
                                    continue;
                                }
                                let q = *x / *d;
                                if *d == 0.0 || !q.is_finite() {
                                    if let Some(u) = e.undefined.get_mut(row) {
                                        *u = true;
                                    }
                                    *x = NONE;
                                } else {
                                    *x = q;
                                }
                            }
                            e.give_num(y);
                        })
                    }
                }
            }
            Node::Coalesce { value, default } => {
                let (v, d) = (self.val(value, locals), self.num(default, locals));
                num_c(move |e, sel, out| {
                    let mut vs = e.take_val();
                    v(e, sel, &mut vs);
                    let mut missing = e.take_sel();
                    for &r in sel {
                        match row(&vs, r as usize) {
                            Some(Val::Missing) => missing.push(r),
                            v => each(&[r], out, |_| v.map_or(NONE, num_or_none)),
                        }
                    }
                    e.give_val(vs);
                    if !missing.is_empty() {
                        d(e, &missing, out);
                    }
                    e.give_sel(missing);
                })
            }
            Node::If { .. } | Node::When { .. } => self.branches(node, locals, Self::num, NONE),
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
                num_c(move |e, sel, out| {
                    let mut xs = e.take_num();
                    s(e, sel, &mut xs);
                    let (mut live, mut taken, mut rest) =
                        (e.take_sel(), e.take_sel(), e.take_sel());
                    for &r in sel {
                        if at(&xs, r as usize, NONE).is_nan() {
                            each(&[r], out, |_| NONE);
                        } else {
                            live.push(r);
                        }
                    }
                    for (ps, t, c) in &arms {
                        if live.is_empty() {
                            break;
                        }
                        taken.clear();
                        rest.clear();
                        for &r in &live {
                            let x = at(&xs, r as usize, NONE);
                            if ps.is_empty() || ps.contains(&x) {
                                taken.push(r);
                            } else {
                                rest.push(r);
                            }
                        }
                        if !taken.is_empty() {
                            e.ctx.hit(*c);
                            t(e, &taken, out);
                        }
                        std::mem::swap(&mut live, &mut rest);
                    }
                    // No arm matched.
                    each(&live, out, |_| NONE);
                    e.give_num(xs);
                    e.give_sel(live);
                    e.give_sel(taken);
                    e.give_sel(rest);
                })
            }
            Node::Call { builtin, args } => self.builtin_num(*builtin, args, locals),
            Node::CallFn { function, args } => {
                match self.call(*function, args, locals, Repr::Num) {
                    Some((prelude, Body::Num(body), range)) => {
                        let call = call_code(prelude, body, NONE);
                        let Some([lo, hi]) = range else {
                            return call;
                        };
                        // A result outside the declared range is clamped and counted (a call
                        // that abstained is NaN: not counted).
                        num_c(move |e, sel, out| {
                            call(e, sel, out);
                            let mut clamped = 0;
                            update(sel, out, |_, x| {
                                if !x.is_nan() && !(lo..=hi).contains(x) {
                                    clamped += 1;
                                    *x = x.clamp(lo, hi);
                                }
                            });
                            e.ctx.events.function_clamped += clamped;
                        })
                    }
                    _ => num_c(|_, sel, out| each(sel, out, |_| NONE)),
                }
            }
            Node::Lookup { .. } | Node::List(_) | Node::Match { .. } | Node::Binary { .. } => {
                plain_of_val(self.val(node, locals), num_or_none, NONE)
            }
            Node::Not(_) | Node::Missing(_) => {
                let t = self.tri(node, locals);
                num_c(move |e, sel, out| {
                    let mut ts = e.take_tri();
                    t(e, sel, &mut ts);
                    e.give_tri(ts);
                    each(sel, out, |_| NONE);
                })
            }
        }
    }

    fn builtin_num(&mut self, b: Builtin, args: &[Node], locals: &[Local]) -> NumC {
        match b {
            Builtin::Abs => {
                let a = self.arg_num(args, 0, locals);
                num_c(move |e, sel, out| {
                    a(e, sel, out);
                    update(sel, out, |_, x| *x = x.abs());
                })
            }
            Builtin::Min | Builtin::Max => {
                let xs: Vec<NumC> = args.iter().map(|a| self.num(a, locals)).collect();
                let min = b == Builtin::Min;
                num_c(move |e, sel, out| {
                    // Arguments are read in order; one that abstains ends the call for its row.
                    let mut live = e.take_sel();
                    let mut next = e.take_sel();
                    let mut v = e.take_num();
                    each(sel, out, |_| NONE);
                    live.extend_from_slice(sel);
                    for (i, x) in xs.iter().enumerate() {
                        if live.is_empty() {
                            break;
                        }
                        x(e, &live, &mut v);
                        next.clear();
                        for &r in &live {
                            let (Some(acc), Some(y)) =
                                (out.get_mut(r as usize), row(&v, r as usize))
                            else {
                                continue;
                            };
                            if y.is_nan() {
                                *acc = NONE;
                                continue;
                            }
                            *acc = if i == 0 {
                                *y
                            } else if min {
                                acc.min(*y)
                            } else {
                                acc.max(*y)
                            };
                            next.push(r);
                        }
                        std::mem::swap(&mut live, &mut next);
                    }
                    e.give_num(v);
                    e.give_sel(live);
                    e.give_sel(next);
                })
            }
            Builtin::Clamp => {
                let (x, lo, hi) = (
                    self.arg_num(args, 0, locals),
                    self.arg_num(args, 1, locals),
                    self.arg_num(args, 2, locals),
                );
                num_c(move |e, sel, out| {
                    x(e, sel, out);
                    let (mut l, mut h) = (e.take_num(), e.take_num());
                    lo(e, sel, &mut l);
                    hi(e, sel, &mut h);
                    update(sel, out, |r, x| {
                        let (lo, hi) = (at(&l, r, NONE), at(&h, r, NONE));
                        *x = if x.is_nan() || lo.is_nan() || hi.is_nan() {
                            NONE
                        } else {
                            x.max(lo).min(hi)
                        };
                    });
                    e.give_num(l);
                    e.give_num(h);
                })
            }
            Builtin::Rank => {
                if args.first().is_some_and(|a| self.ty(a, locals) == Ty::Enum) {
                    let a = self.arg_id(args, 0, locals);
                    return num_c(move |e, sel, out| {
                        let mut xs = e.take_id();
                        a(e, sel, &mut xs);
                        each(sel, out, |r| match at(&xs, r, ABSENT_ID) {
                            x if x >= ABSENT_ID => NONE,
                            x => f64::from(x),
                        });
                        e.give_id(xs);
                    });
                }
                let a = self.arg_val(args, 0, locals);
                num_c(move |e, sel, out| {
                    let mut vs = e.take_val();
                    a(e, sel, &mut vs);
                    each(sel, out, |r| match row(&vs, r) {
                        Some(Val::Enum(x)) => f64::from(*x),
                        _ => NONE,
                    });
                    e.give_val(vs);
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
                    // Counted without building the set, reading fields and `let`s in place.
                    if let (Some(l), Some(r)) = (self.place(lhs, locals), self.place(rhs, locals)) {
                        let op = *op;
                        return num_c(move |e, sel, out| {
                            each(sel, out, |row| {
                                e.with_val(l, row, |x| {
                                    e.with_val(r, row, |y| set_op_count(op, x, y))
                                })
                            });
                        });
                    }
                    let (l, r, op) = (self.val(lhs, locals), self.val(rhs, locals), *op);
                    return num_c(move |e, sel, out| {
                        let (mut xs, mut ys) = (e.take_val(), e.take_val());
                        l(e, sel, &mut xs);
                        r(e, sel, &mut ys);
                        each(sel, out, |r| match (row(&xs, r), row(&ys, r)) {
                            (Some(x), Some(y)) => set_op_count(op, x, y),
                            _ => NONE,
                        });
                        e.give_val(xs);
                        e.give_val(ys);
                    });
                }
                if args.first().is_some_and(|a| self.ty(a, locals) == Ty::Str) {
                    let a = self.arg_id(args, 0, locals);
                    return num_c(move |e, sel, out| {
                        let mut xs = e.take_id();
                        a(e, sel, &mut xs);
                        let strings = &e.ctx.strings;
                        each(sel, out, |r| match at(&xs, r, ABSENT_ID) {
                            x if x >= ABSENT_ID => NONE,
                            x => strings.text(x).chars().count() as f64,
                        });
                        e.give_id(xs);
                    });
                }
                if let Some(p) = args.first().and_then(|a| self.place(a, locals)) {
                    return num_c(move |e, sel, out| {
                        each(sel, out, |r| {
                            e.with_val(p, r, |v| match v {
                                Val::Ids(ids, _) => ids.len() as f64,
                                Val::Nums(ns) => ns.len() as f64,
                                Val::Str(s) => e.ctx.strings.text(*s).chars().count() as f64,
                                _ => NONE,
                            })
                        });
                    });
                }
                let a = self.arg_val(args, 0, locals);
                num_c(move |e, sel, out| {
                    let mut vs = e.take_val();
                    a(e, sel, &mut vs);
                    let strings = &e.ctx.strings;
                    each(sel, out, |r| match row(&vs, r) {
                        Some(Val::Ids(ids, _)) => ids.len() as f64,
                        Some(Val::Nums(ns)) => ns.len() as f64,
                        Some(Val::Str(s)) => strings.text(*s).chars().count() as f64,
                        _ => NONE,
                    });
                    e.give_val(vs);
                })
            }
            Builtin::Lower | Builtin::Contains => {
                plain_of_val(self.builtin_val(b, args, locals), num_or_none, NONE)
            }
        }
    }

    fn arg_num(&mut self, args: &[Node], i: usize, locals: &[Local]) -> NumC {
        match args.get(i) {
            Some(a) => self.num(a, locals),
            None => num_c(|_, sel, out| each(sel, out, |_| NONE)),
        }
    }

    fn arg_val(&mut self, args: &[Node], i: usize, locals: &[Local]) -> ValC {
        match args.get(i) {
            Some(a) => self.val(a, locals),
            None => val_c(|_, sel, out| each(sel, out, |_| Val::Abstain)),
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
                tri_c(move |_, sel, out| each(sel, out, |_| t))
            }
            Node::Field(role, field) => {
                let col = self.column(*role, *field);
                tri_c(move |e, sel, out| {
                    let base = e.base;
                    match col.and_then(|c| e.column(c)) {
                        Some(Column::Bool(v)) => {
                            each(sel, out, |r| match col_at(v, base + r, MISSING_BOOL) {
                                0 => Some(false),
                                1 => Some(true),
                                _ => None,
                            })
                        }
                        Some(c) => each(sel, out, |r| tri_of(&c.val(base + r))),
                        None => each(sel, out, |_| None),
                    }
                })
            }
            Node::Local(i) => local_tri(locals.get(*i as usize)),
            Node::Not(a) => {
                let a = self.tri(a, locals);
                tri_c(move |e, sel, out| {
                    a(e, sel, out);
                    update(sel, out, |_, t| *t = t.map(|b| !b));
                })
            }
            Node::Missing(a) => {
                if self.is_id(a, locals) {
                    let a = self.id(a, locals);
                    return tri_c(move |e, sel, out| {
                        let mut xs = e.take_id();
                        a(e, sel, &mut xs);
                        each(sel, out, |r| Some(at(&xs, r, ABSENT_ID) == MISSING_ID));
                        e.give_id(xs);
                    });
                }
                if let Node::Field(role, field) = &**a {
                    let col = self.column(*role, *field);
                    return tri_c(move |e, sel, out| {
                        let base = e.base;
                        match col.and_then(|c| e.column(c)) {
                            Some(Column::Num(v)) => {
                                each(sel, out, |r| Some(col_at(v, base + r, NONE).is_nan()))
                            }
                            Some(Column::Bool(v)) => each(sel, out, |r| {
                                Some(col_at(v, base + r, MISSING_BOOL) == MISSING_BOOL)
                            }),
                            Some(
                                Column::Ids { missing, .. }
                                | Column::Nums { missing, .. }
                                | Column::Text(missing),
                            ) => each(sel, out, |r| Some(col_at(missing, base + r, true))),
                            Some(c) => {
                                each(sel, out, |r| Some(matches!(c.val(base + r), Val::Missing)))
                            }
                            None => each(sel, out, |_| Some(false)),
                        }
                    });
                }
                let a = self.val(a, locals);
                tri_c(move |e, sel, out| {
                    let mut vs = e.take_val();
                    a(e, sel, &mut vs);
                    each(sel, out, |r| {
                        Some(matches!(row(&vs, r), Some(Val::Missing)))
                    });
                    e.give_val(vs);
                })
            }
            Node::Binary { op, lhs, rhs } if matches!(op, BinOp::And | BinOp::Or) => {
                // Conditions are three-valued: an undecided side does not hide a decided answer.
                // The right side is only evaluated for rows the left side did not decide.
                let (l, r) = (self.tri(lhs, locals), self.tri(rhs, locals));
                let short = *op == BinOp::Or;
                tri_c(move |e, sel, out| {
                    l(e, sel, out);
                    let mut rest = e.take_sel();
                    select(sel, &mut rest, |i| at(out, i, None) != Some(short));
                    if !rest.is_empty() {
                        let mut b = e.take_tri();
                        r(e, &rest, &mut b);
                        update(&rest, out, |i, a| {
                            *a = match (*a, at(&b, i, None)) {
                                (_, Some(x)) if x == short => Some(short),
                                (Some(_), Some(_)) => Some(!short),
                                _ => None,
                            };
                        });
                        e.give_tri(b);
                    }
                    e.give_sel(rest);
                })
            }
            Node::Binary { op, lhs, rhs }
                if matches!(
                    (op, self.ty(lhs, locals), self.ty(rhs, locals)),
                    (BinOp::Eq | BinOp::Ne, Ty::Str, Ty::Str)
                        | (
                            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge,
                            Ty::Enum,
                            Ty::Enum
                        )
                ) =>
            {
                // Strings and enum values compare by id (enum values by position).
                let (l, r) = (self.id(lhs, locals), self.id(rhs, locals));
                match op {
                    BinOp::Eq => compare_ids(l, r, |x, y| x == y),
                    BinOp::Ne => compare_ids(l, r, |x, y| x != y),
                    BinOp::Lt => compare_ids(l, r, |x, y| x < y),
                    BinOp::Le => compare_ids(l, r, |x, y| x <= y),
                    BinOp::Gt => compare_ids(l, r, |x, y| x > y),
                    _ => compare_ids(l, r, |x, y| x >= y),
                }
            }
            Node::Binary { op, lhs, rhs }
                if matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                ) && self.ty(lhs, locals) == Ty::Num
                    && self.ty(rhs, locals) == Ty::Num =>
            {
                let sides = self.num_pair(lhs, rhs, locals);
                match op {
                    BinOp::Eq => compare(sides, |x, y| x == y),
                    BinOp::Ne => compare(sides, |x, y| x != y),
                    BinOp::Lt => compare(sides, |x, y| x < y),
                    BinOp::Le => compare(sides, |x, y| x <= y),
                    BinOp::Gt => compare(sides, |x, y| x > y),
                    _ => compare(sides, |x, y| x >= y),
                }
            }
            Node::Binary { op, lhs, rhs }
                if matches!(
                    op,
                    BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
                ) =>
            {
                let (l, r, op) = (self.val(lhs, locals), self.val(rhs, locals), *op);
                tri_c(move |e, sel, out| {
                    let (mut xs, mut ys) = (e.take_val(), e.take_val());
                    l(e, sel, &mut xs);
                    r(e, sel, &mut ys);
                    each(sel, out, |i| {
                        let (Some(a), Some(b)) = (row(&xs, i), row(&ys, i)) else {
                            return None;
                        };
                        compare_vals(op, a, b)
                    });
                    e.give_val(xs);
                    e.give_val(ys);
                })
            }
            Node::Coalesce { value, default } => {
                let (v, d) = (self.val(value, locals), self.tri(default, locals));
                tri_c(move |e, sel, out| {
                    let mut vs = e.take_val();
                    v(e, sel, &mut vs);
                    let mut missing = e.take_sel();
                    for &r in sel {
                        match row(&vs, r as usize) {
                            Some(Val::Missing) => missing.push(r),
                            v => each(&[r], out, |_| v.and_then(tri_of)),
                        }
                    }
                    e.give_val(vs);
                    if !missing.is_empty() {
                        d(e, &missing, out);
                    }
                    e.give_sel(missing);
                })
            }
            Node::If { .. } | Node::When { .. } => self.branches(node, locals, Self::tri, None),
            Node::CallFn { function, args } => {
                match self.call(*function, args, locals, Repr::Tri) {
                    Some((prelude, Body::Tri(body), _)) => call_code(prelude, body, None),
                    _ => tri_c(|_, sel, out| each(sel, out, |_| None)),
                }
            }
            _ => plain_of_val(self.val(node, locals), tri_of, None),
        }
    }

    /// Compiles a node for a consumer that wants any value, `missing` kept apart from `abstain`.
    fn val(&mut self, node: &Node, locals: &[Local]) -> ValC {
        match node {
            Node::Const(c) => {
                let v = to_val(c);
                val_c(move |_, sel, out| each(sel, out, |_| v.clone()))
            }
            Node::Field(role, field) => {
                let col = self.column(*role, *field);
                val_c(move |e, sel, out| {
                    let base = e.base;
                    match col.and_then(|c| e.column(c)) {
                        Some(Column::Ids {
                            starts,
                            items,
                            missing,
                            kind,
                        }) => each(sel, out, |r| {
                            ids_val(starts, items, missing, *kind, base + r)
                        }),
                        Some(c) => each(sel, out, |r| c.val(base + r)),
                        None => each(sel, out, |_| Val::Abstain),
                    }
                })
            }
            Node::Local(i) => local_val(locals.get(*i as usize)),
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
                val_of_num(n)
            }
            Node::Binary { op, lhs, .. }
                if matches!(op, BinOp::Add | BinOp::Mul | BinOp::Div)
                    || (*op == BinOp::Sub && self.ty(lhs, locals) == Ty::Num) =>
            {
                let n = self.num(node, locals);
                val_of_num(n)
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
                val_c(move |e, sel, out| {
                    let mut ts = e.take_tri();
                    t(e, sel, &mut ts);
                    each(sel, out, |r| from_tri(at(&ts, r, None)));
                    e.give_tri(ts);
                })
            }
            Node::Binary { op, lhs, rhs } => {
                // Union, intersection, and a difference of sets (or of numbers, when the
                // types could not tell).
                let (l, r, op) = (self.val(lhs, locals), self.val(rhs, locals), *op);
                val_c(move |e, sel, out| {
                    l(e, sel, out);
                    let mut ys = e.take_val();
                    r(e, sel, &mut ys);
                    update(sel, out, |i, a| {
                        let Some(b) = row(&ys, i) else {
                            *a = Val::Abstain;
                            return;
                        };
                        *a = set_binary(op, a, b);
                    });
                    e.give_val(ys);
                })
            }
            Node::Coalesce { value, default } => {
                let (v, d) = (self.val(value, locals), self.val(default, locals));
                val_c(move |e, sel, out| {
                    v(e, sel, out);
                    let mut missing = e.take_sel();
                    missing.extend(
                        sel.iter()
                            .copied()
                            .filter(|&r| matches!(out.get(r as usize), Some(Val::Missing))),
                    );
                    if !missing.is_empty() {
                        d(e, &missing, out);
                    }
                    e.give_sel(missing);
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
                let clauses = (*then_clause, *else_clause);
                val_c(move |e, sel, out| {
                    if_rows(e, sel, out, (&c, &t, &o), clauses, || Val::Abstain, run_val)
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
                val_c(move |e, sel, out| {
                    when_rows(e, sel, out, (&arms, &o), oc, || Val::Abstain, run_val)
                })
            }
            Node::Match { scrutinee, arms } => {
                let s = self.val(scrutinee, locals);
                let arms: Vec<(Vec<Const>, ValC, u32)> = arms
                    .iter()
                    .map(|a| (a.patterns.clone(), self.val(&a.then, locals), a.clause))
                    .collect();
                val_c(move |e, sel, out| {
                    let mut ss = e.take_val();
                    s(e, sel, &mut ss);
                    let (mut live, mut taken, mut rest) =
                        (e.take_sel(), e.take_sel(), e.take_sel());
                    for &r in sel {
                        if row(&ss, r as usize).is_none_or(absent) {
                            each(&[r], out, |_| Val::Abstain);
                        } else {
                            live.push(r);
                        }
                    }
                    for (ps, t, c) in &arms {
                        if live.is_empty() {
                            break;
                        }
                        taken.clear();
                        rest.clear();
                        for &r in &live {
                            let matched = ps.is_empty()
                                || ss
                                    .get(r as usize)
                                    .is_some_and(|v| ps.iter().any(|p| pattern_matches(p, v)));
                            if matched {
                                taken.push(r);
                            } else {
                                rest.push(r);
                            }
                        }
                        if !taken.is_empty() {
                            e.ctx.hit(*c);
                            t(e, &taken, out);
                        }
                        std::mem::swap(&mut live, &mut rest);
                    }
                    each(&live, out, |_| Val::Abstain);
                    e.give_val(ss);
                    e.give_sel(live);
                    e.give_sel(taken);
                    e.give_sel(rest);
                })
            }
            Node::Call {
                builtin: Builtin::Lower,
                ..
            } if self.ty(node, locals) == Ty::Str => val_of_id(self.id(node, locals), false),
            Node::Call { builtin, args } => self.builtin_val(*builtin, args, locals),
            Node::CallFn { function, args } => {
                match self.call(*function, args, locals, Repr::Val) {
                    Some((prelude, Body::Val(body), range)) => val_c(move |e, sel, out| {
                        each(sel, out, |_| Val::Abstain);
                        let mut live = e.take_sel();
                        live.extend_from_slice(sel);
                        prelude(e, &mut live);
                        if !live.is_empty() {
                            body(e, &live, out);
                        }
                        if let Some([lo, hi]) = range {
                            let mut clamped = 0;
                            update(&live, out, |_, v| {
                                if let Val::Num(n) = v
                                    && !(lo..=hi).contains(n)
                                {
                                    clamped += 1;
                                    *n = n.clamp(lo, hi);
                                }
                            });
                            e.ctx.events.function_clamped += clamped;
                        }
                        e.give_sel(live);
                    }),
                    _ => val_c(|_, sel, out| each(sel, out, |_| Val::Abstain)),
                }
            }
            Node::Lookup { table, keys } => {
                let Some(index) = self.tables.get(*table as usize).cloned() else {
                    return val_c(|_, sel, out| each(sel, out, |_| Val::Abstain));
                };
                if index.by_ids.is_some()
                    && matches!(keys.len(), 1 | 2)
                    && keys.iter().all(|k| self.is_id(k, locals))
                {
                    let codes: Vec<IdC> = keys.iter().map(|k| self.id(k, locals)).collect();
                    return lookup_ids(index, codes);
                }
                let keys: Vec<ValC> = keys.iter().map(|k| self.val(k, locals)).collect();
                val_c(move |e, sel, out| {
                    // Keys are read in order: one that abstains ends the lookup for its row,
                    // one that cannot be a key gives the default.
                    let mut tuples = e.take_keys();
                    let (mut live, mut next) = (e.take_sel(), e.take_sel());
                    live.extend_from_slice(sel);
                    let mut v = e.take_val();
                    for (i, code) in keys.iter().enumerate() {
                        if live.is_empty() {
                            break;
                        }
                        code(e, &live, &mut v);
                        next.clear();
                        for &r in &live {
                            let r = r as usize;
                            let val = row(&v, r).unwrap_or(&Val::Abstain);
                            if absent(val) {
                                each(&[r as u32], out, |_| Val::Abstain);
                                continue;
                            }
                            match (key(val), tuples.get_mut(r).and_then(|t| t.get_mut(i))) {
                                (Some(x), Some(slot)) => {
                                    *slot = Some(x);
                                    next.push(r as u32);
                                }
                                _ => each(&[r as u32], out, |_| index.default.clone()),
                            }
                        }
                        std::mem::swap(&mut live, &mut next);
                    }
                    for &r in &live {
                        let r = r as usize;
                        let mut k: KeyTuple = [None; MAX_KEYS];
                        if let Some(t) = tuples.get(r) {
                            for (slot, x) in k.iter_mut().zip(t.iter()).take(keys.len()) {
                                *slot = *x;
                            }
                        }
                        each(&[r as u32], out, |_| {
                            index.entries.get(&k).unwrap_or(&index.default).clone()
                        });
                    }
                    e.give_val(v);
                    e.give_keys(tuples);
                    e.give_sel(live);
                    e.give_sel(next);
                })
            }
            Node::List(items) => {
                let items: Vec<ValC> = items.iter().map(|i| self.val(i, locals)).collect();
                val_c(move |e, sel, out| {
                    // Items are read in order; one that is neither a string, an enum value nor
                    // a number makes the list abstain.
                    let mut lists: Vec<(Vec<u32>, Vec<f64>)> = vec![Default::default(); e.rows];
                    let (mut live, mut next) = (e.take_sel(), e.take_sel());
                    live.extend_from_slice(sel);
                    let mut v = e.take_val();
                    for code in &items {
                        if live.is_empty() {
                            break;
                        }
                        code(e, &live, &mut v);
                        next.clear();
                        for &r in &live {
                            let Some((ids, nums)) = lists.get_mut(r as usize) else {
                                continue;
                            };
                            match row(&v, r as usize) {
                                Some(Val::Str(s) | Val::Enum(s)) => ids.push(*s),
                                Some(Val::Num(n)) => nums.push(*n),
                                _ => {
                                    each(&[r], out, |_| Val::Abstain);
                                    continue;
                                }
                            }
                            next.push(r);
                        }
                        std::mem::swap(&mut live, &mut next);
                    }
                    for &r in &live {
                        let Some((ids, nums)) = lists.get_mut(r as usize) else {
                            continue;
                        };
                        let list = match (ids.is_empty(), nums.is_empty()) {
                            (_, true) => Val::Ids(to_set(std::mem::take(ids)).into(), Kind::Set),
                            (true, false) => Val::Nums(std::mem::take(nums).into()),
                            (false, false) => Val::Abstain,
                        };
                        each(&[r], out, |_| list.clone());
                    }
                    e.give_val(v);
                    e.give_sel(live);
                    e.give_sel(next);
                })
            }
        }
    }

    /// The two sides of an operation on numbers, a constant side kept as its value.
    fn num_pair(&mut self, lhs: &Node, rhs: &Node, locals: &[Local]) -> NumPair {
        let constant = |n: &Node| match n {
            Node::Const(Const::Number(x)) => Some(*x),
            _ => None,
        };
        match (constant(lhs), constant(rhs)) {
            (_, Some(c)) => NumPair::ConstRight(self.num(lhs, locals), c),
            (Some(c), None) => NumPair::ConstLeft(c, self.num(rhs, locals)),
            (None, None) => NumPair::Both(self.num(lhs, locals), self.num(rhs, locals)),
        }
    }

    /// Where a node's values can be read in place: a field's column, or a `let` or parameter
    /// held as a value.
    fn place(&self, node: &Node, locals: &[Local]) -> Option<Place> {
        match node {
            Node::Field(role, field) => self.column(*role, *field).map(Place::Column),
            Node::Local(i) => locals
                .get(*i as usize)
                .filter(|l| l.kind == SlotKind::Val)
                .map(|l| Place::Slot(l.slot)),
            _ => None,
        }
    }

    /// Whether a node is a string or an enum value (held as an id).
    fn is_id(&self, node: &Node, locals: &[Local]) -> bool {
        matches!(self.ty(node, locals), Ty::Str | Ty::Enum)
    }

    /// Compiles a node of string or enum type for a consumer that wants its id.
    fn id(&mut self, node: &Node, locals: &[Local]) -> IdC {
        match node {
            Node::Const(c) => {
                let x = match c {
                    Const::Str(s) | Const::Enum(_, s) => *s,
                    _ => ABSENT_ID,
                };
                id_c(move |_, sel, out| each(sel, out, |_| x))
            }
            Node::Field(role, field) => {
                let col = self.column(*role, *field);
                id_c(move |e, sel, out| {
                    let base = e.base;
                    match col.and_then(|c| e.column(c)) {
                        Some(Column::Id { ids, .. }) => {
                            each(sel, out, |r| col_at(ids, base + r, ABSENT_ID))
                        }
                        Some(c) => each(sel, out, |r| id_of(&c.val(base + r))),
                        None => each(sel, out, |_| ABSENT_ID),
                    }
                })
            }
            Node::Local(i) => local_id(locals.get(*i as usize)),
            Node::Call {
                builtin: Builtin::Lower,
                args,
            } if args.len() == 1 && args.first().is_some_and(|a| self.ty(a, locals) == Ty::Str) => {
                let a = self.arg_id(args, 0, locals);
                id_c(move |e, sel, out| {
                    a(e, sel, out);
                    let strings = &mut e.ctx.strings;
                    update(sel, out, |_, x| {
                        *x = if *x < ABSENT_ID {
                            strings.lower(*x)
                        } else {
                            ABSENT_ID
                        };
                    });
                })
            }
            Node::Coalesce { value, default } if self.is_id(value, locals) => {
                let (v, d) = (self.id(value, locals), self.id(default, locals));
                id_c(move |e, sel, out| {
                    v(e, sel, out);
                    let mut missing = e.take_sel();
                    missing.extend(
                        sel.iter()
                            .copied()
                            .filter(|&r| at(out, r as usize, ABSENT_ID) == MISSING_ID),
                    );
                    if !missing.is_empty() {
                        d(e, &missing, out);
                    }
                    e.give_sel(missing);
                })
            }
            Node::If { .. } | Node::When { .. } => self.branches(node, locals, Self::id, ABSENT_ID),
            Node::CallFn { function, args } => match self.call(*function, args, locals, Repr::Id) {
                Some((prelude, Body::Id(body), _)) => call_code(prelude, body, ABSENT_ID),
                _ => id_c(|_, sel, out| each(sel, out, |_| ABSENT_ID)),
            },
            _ => plain_of_val(self.val(node, locals), id_of, ABSENT_ID),
        }
    }

    fn arg_id(&mut self, args: &[Node], i: usize, locals: &[Local]) -> IdC {
        match args.get(i) {
            Some(a) => self.id(a, locals),
            None => id_c(|_, sel, out| each(sel, out, |_| ABSENT_ID)),
        }
    }

    fn builtin_val(&mut self, b: Builtin, args: &[Node], locals: &[Local]) -> ValC {
        match b {
            Builtin::Lower => {
                let a = self.arg_val(args, 0, locals);
                val_c(move |e, sel, out| {
                    a(e, sel, out);
                    let strings = &mut e.ctx.strings;
                    update(sel, out, |_, v| {
                        *v = match v {
                            Val::Str(s) => Val::Str(strings.lower(*s)),
                            _ => Val::Abstain,
                        };
                    });
                })
            }
            Builtin::Contains => {
                let (h, n) = (self.arg_val(args, 0, locals), self.arg_val(args, 1, locals));
                val_c(move |e, sel, out| {
                    h(e, sel, out);
                    let mut ns = e.take_val();
                    n(e, sel, &mut ns);
                    let strings = &e.ctx.strings;
                    update(sel, out, |i, h| {
                        let n = row(&ns, i).unwrap_or(&Val::Abstain);
                        *h = if absent(h) || absent(n) {
                            Val::Abstain
                        } else {
                            match (&*h, n) {
                                (Val::Ids(ids, Kind::Set), Val::Str(x) | Val::Enum(x)) => {
                                    Val::Bool(ids.binary_search(x).is_ok())
                                }
                                (Val::Ids(ids, Kind::List), Val::Str(x) | Val::Enum(x)) => {
                                    Val::Bool(ids.contains(x))
                                }
                                (Val::Nums(ns), Val::Num(x)) => Val::Bool(ns.contains(x)),
                                (Val::Str(h), Val::Str(x)) => {
                                    Val::Bool(strings.text(*h).contains(strings.text(*x)))
                                }
                                _ => Val::Abstain,
                            }
                        };
                    });
                    e.give_val(ns);
                })
            }
            _ => {
                let n = self.builtin_num(b, args, locals);
                val_of_num(n)
            }
        }
    }

    /// A call of a function: the code that evaluates the arguments into the function's
    /// parameter slots (narrowing the selection to the rows where none abstained), the body
    /// compiled for the arguments' types, and the declared range. `None` for a call that cannot
    /// be compiled (an unknown function, or recursion, which the checker refuses).
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
        // Each argument is held as the plain representation its type allows.
        let shapes: Vec<(Ty, bool)> = args
            .iter()
            .map(|a| (self.ty(a, locals), self.may_miss(a, locals)))
            .collect();
        let kinds: Vec<SlotKind> = shapes.iter().map(|(t, m)| slot_kind(*t, *m)).collect();
        let codes: Vec<SlotCode> = args
            .iter()
            .zip(&kinds)
            .map(|(a, k)| self.slot_code(a, locals, *k))
            .collect();
        let params = match self.param_slots.get(&(function, kinds.clone())) {
            Some(p) => p.clone(),
            None => {
                let p: Vec<usize> = kinds.iter().map(|k| self.slots.next(*k)).collect();
                self.param_slots
                    .insert((function, kinds.clone()), p.clone());
                p
            }
        };
        let key = (function, shapes.clone(), repr);
        let body = match self.bodies.get(&key) {
            Some(b) => b.clone(),
            None => {
                let body_locals: Vec<Local> = shapes
                    .iter()
                    .zip(&kinds)
                    .zip(&params)
                    .map(|(((ty, may_miss), kind), slot)| Local {
                        slot: *slot,
                        ty: *ty,
                        kind: *kind,
                        may_miss: *may_miss,
                    })
                    .collect();
                self.compiling.push(function);
                let body = match repr {
                    Repr::Num => Body::Num(Arc::new(self.num(&f.body, &body_locals))),
                    Repr::Tri => Body::Tri(Arc::new(self.tri(&f.body, &body_locals))),
                    Repr::Id => Body::Id(Arc::new(self.id(&f.body, &body_locals))),
                    Repr::Val => Body::Val(Arc::new(self.val(&f.body, &body_locals))),
                };
                self.compiling.pop();
                self.bodies.insert(key, body.clone());
                body
            }
        };
        if !args.iter().any(|a| self.calls_into(a, function, 0)) {
            // No argument reaches this function again: each goes straight to its slot, for the
            // rows whose earlier arguments did not abstain.
            let prelude: Prelude = Box::new(move |e: &mut Env<'_, '_, '_>, live: &mut Vec<u32>| {
                for (code, &slot) in codes.iter().zip(&params) {
                    if live.is_empty() {
                        break;
                    }
                    e.set_slot(slot, code, live);
                    match code {
                        SlotCode::Num(_) => {
                            if let Some(s) = e.num_slots.get(slot) {
                                live.retain(|&r| !at(s, r as usize, NONE).is_nan());
                            }
                        }
                        SlotCode::Tri(_) => {
                            if let Some(s) = e.tri_slots.get(slot) {
                                live.retain(|&r| at(s, r as usize, None).is_some());
                            }
                        }
                        SlotCode::Id(_) => {
                            if let Some(s) = e.id_slots.get(slot) {
                                live.retain(|&r| at(s, r as usize, ABSENT_ID) != ABSENT_ID);
                            }
                        }
                        SlotCode::Val(_) => {
                            if let Some(s) = e.slots.get(slot) {
                                live.retain(|&r| {
                                    !matches!(s.get(r as usize), Some(Val::Abstain) | None)
                                });
                            }
                        }
                    }
                }
            });
            return Some((prelude, body, f.declared_range));
        }
        // Arguments are evaluated in order, each only for the rows whose earlier arguments did
        // not abstain, into buffers of their own (an argument calls this function too), and
        // only then moved to the parameters' slots.
        let prelude: Prelude = Box::new(move |e: &mut Env<'_, '_, '_>, live: &mut Vec<u32>| {
            let mut args = Vec::with_capacity(codes.len());
            for code in &codes {
                if live.is_empty() {
                    break;
                }
                let arg = match code {
                    SlotCode::Num(c) => {
                        let mut b = e.take_num();
                        c(e, live, &mut b);
                        live.retain(|&r| !at(&b, r as usize, NONE).is_nan());
                        Arg::Num(b)
                    }
                    SlotCode::Tri(c) => {
                        let mut b = e.take_tri();
                        c(e, live, &mut b);
                        live.retain(|&r| at(&b, r as usize, None).is_some());
                        Arg::Tri(b)
                    }
                    SlotCode::Id(c) => {
                        let mut b = e.take_id();
                        c(e, live, &mut b);
                        live.retain(|&r| at(&b, r as usize, ABSENT_ID) != ABSENT_ID);
                        Arg::Id(b)
                    }
                    SlotCode::Val(c) => {
                        let mut b = e.take_val();
                        c(e, live, &mut b);
                        live.retain(|&r| !matches!(b.get(r as usize), Some(Val::Abstain) | None));
                        Arg::Val(b)
                    }
                };
                args.push(arg);
            }
            for (arg, &slot) in args.into_iter().zip(&params) {
                match arg {
                    Arg::Num(b) => {
                        if let Some(s) = e.num_slots.get_mut(slot) {
                            copy_rows(live, &b, s);
                        }
                        e.give_num(b);
                    }
                    Arg::Tri(b) => {
                        if let Some(s) = e.tri_slots.get_mut(slot) {
                            copy_rows(live, &b, s);
                        }
                        e.give_tri(b);
                    }
                    Arg::Id(b) => {
                        if let Some(s) = e.id_slots.get_mut(slot) {
                            copy_rows(live, &b, s);
                        }
                        e.give_id(b);
                    }
                    Arg::Val(mut b) => {
                        if let Some(s) = e.slots.get_mut(slot) {
                            for &r in live.iter() {
                                let r = r as usize;
                                if let (Some(s), Some(x)) = (s.get_mut(r), b.get_mut(r)) {
                                    *s = std::mem::replace(x, Val::Abstain);
                                }
                            }
                        }
                        e.give_val(b);
                    }
                }
            }
        });
        Some((prelude, body, f.declared_range))
    }
}

/// An argument's values, before they move to the parameter's slot.
enum Arg<'a> {
    Num(Vec<f64>),
    Tri(Vec<Option<bool>>),
    Id(Vec<u32>),
    Val(Vec<Val<'a>>),
}

/// Copies the selected rows of one buffer into another.
fn copy_rows<T: Copy>(sel: &[u32], from: &[T], to: &mut [T]) {
    for &r in sel {
        let r = r as usize;
        if let (Some(t), Some(f)) = (to.get_mut(r), from.get(r)) {
            *t = *f;
        }
    }
}

/// Reads a `let` or a parameter in a plain representation: straight from its column when it is
/// held that way (`own`), converted from a value when it is held as one, else `absent`.
fn local_plain<T: Copy + Send + Sync + 'static>(
    l: Option<&Local>,
    own: SlotKind,
    own_slots: for<'e> fn(&'e Env<'_, '_, '_>) -> &'e [Vec<T>],
    from_val: fn(&Val<'_>) -> T,
    absent: T,
) -> Code<T> {
    let slot = match l {
        Some(&Local { slot, kind, .. }) if kind == own || kind == SlotKind::Val => slot,
        _ => {
            return Box::new(move |_: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| {
                each(sel, out, |_| absent)
            });
        }
    };
    if l.is_some_and(|l| l.kind == own) {
        return Box::new(
            move |e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| match own_slots(e).get(slot)
            {
                Some(v) => each(sel, out, |r| at(v, r, absent)),
                None => each(sel, out, |_| absent),
            },
        );
    }
    Box::new(
        move |e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| match e.slots.get(slot) {
            Some(v) => each(sel, out, |r| row(v, r).map_or(absent, from_val)),
            None => each(sel, out, |_| absent),
        },
    )
}

/// Reads a `let` or a parameter as a number.
fn local_num(l: Option<&Local>) -> NumC {
    local_plain(l, SlotKind::Num, |e| &e.num_slots, num_or_none, NONE)
}

/// Reads a `let` or a parameter as a truth.
fn local_tri(l: Option<&Local>) -> TriC {
    local_plain(l, SlotKind::Tri, |e| &e.tri_slots, tri_of, None)
}

/// Reads a `let` or a parameter as an id.
fn local_id(l: Option<&Local>) -> IdC {
    local_plain(l, SlotKind::Id, |e| &e.id_slots, id_of, ABSENT_ID)
}

/// Reads a `let` or a parameter as a value.
fn local_val(l: Option<&Local>) -> ValC {
    let Some(&Local { slot, kind, ty, .. }) = l else {
        return val_c(|_, sel, out| each(sel, out, |_| Val::Abstain));
    };
    match kind {
        SlotKind::Val => val_c(move |e, sel, out| match e.slots.get(slot) {
            Some(v) => each(sel, out, |r| row(v, r).cloned().unwrap_or(Val::Abstain)),
            None => each(sel, out, |_| Val::Abstain),
        }),
        SlotKind::Num => val_c(move |e, sel, out| match e.num_slots.get(slot) {
            Some(v) => each(sel, out, |r| from_num(at(v, r, NONE))),
            None => each(sel, out, |_| Val::Abstain),
        }),
        SlotKind::Tri => val_c(move |e, sel, out| match e.tri_slots.get(slot) {
            Some(v) => each(sel, out, |r| from_tri(at(v, r, None))),
            None => each(sel, out, |_| Val::Abstain),
        }),
        SlotKind::Id => {
            let is_enum = ty == Ty::Enum;
            val_c(move |e, sel, out| match e.id_slots.get(slot) {
                Some(v) => each(sel, out, |r| from_id(at(v, r, ABSENT_ID), is_enum)),
                None => each(sel, out, |_| Val::Abstain),
            })
        }
    }
}

/// Appends the selected rows that `keep` keeps to `into`, without a branch on `keep`'s answer
/// (each row is written, and counted only when kept).
pub(super) fn select(sel: &[u32], into: &mut Vec<u32>, keep: impl Fn(usize) -> bool) {
    let start = into.len();
    into.resize(start + sel.len(), 0);
    let mut n = start;
    for &r in sel {
        if let Some(s) = into.get_mut(n) {
            *s = r;
        }
        n += usize::from(keep(r as usize));
    }
    into.truncate(n);
}

/// Splits selected rows by a truth: true rows to `yes`, false rows to `no`, and `undecided`
/// called for the rest.
fn partition(
    sel: &[u32],
    cond: &[Option<bool>],
    yes: &mut Vec<u32>,
    no: &mut Vec<u32>,
    mut undecided: impl FnMut(u32),
) {
    // Each row is written to both lists and kept in the one its truth picks: no branch on the
    // truth, which the data decides.
    let (y0, n0) = (yes.len(), no.len());
    yes.resize(y0 + sel.len(), 0);
    no.resize(n0 + sel.len(), 0);
    let (mut ny, mut nn, mut undecided_rows) = (y0, n0, 0);
    for &r in sel {
        let c = at(cond, r as usize, None);
        if let Some(s) = yes.get_mut(ny) {
            *s = r;
        }
        if let Some(s) = no.get_mut(nn) {
            *s = r;
        }
        ny += usize::from(c == Some(true));
        nn += usize::from(c == Some(false));
        undecided_rows += usize::from(c.is_none());
    }
    yes.truncate(ny);
    no.truncate(nn);
    if undecided_rows > 0 {
        for &r in sel {
            if at(cond, r as usize, None).is_none() {
                undecided(r);
            }
        }
    }
}

/// The two sides of an operation on numbers: both computed, or one of them a constant.
enum NumPair {
    Both(NumC, NumC),
    ConstRight(NumC, f64),
    ConstLeft(f64, NumC),
}

/// Arithmetic on two numbers, row by row.
fn arith(sides: NumPair, f: impl Fn(f64, f64) -> f64 + Send + Sync + 'static) -> NumC {
    match sides {
        NumPair::Both(l, r) => num_c(move |e, sel, out| {
            l(e, sel, out);
            let mut y = e.take_num();
            r(e, sel, &mut y);
            update(sel, out, |i, x| *x = f(*x, at(&y, i, NONE)));
            e.give_num(y);
        }),
        NumPair::ConstRight(l, c) => num_c(move |e, sel, out| {
            l(e, sel, out);
            update(sel, out, |_, x| *x = f(*x, c));
        }),
        NumPair::ConstLeft(c, r) => num_c(move |e, sel, out| {
            r(e, sel, out);
            update(sel, out, |_, y| *y = f(c, *y));
        }),
    }
}

/// A comparison of two numbers, row by row; undecided when either is no number.
fn compare(sides: NumPair, f: impl Fn(f64, f64) -> bool + Send + Sync + 'static) -> TriC {
    let decide = move |x: f64, y: f64| {
        if x.is_nan() || y.is_nan() {
            None
        } else {
            Some(f(x, y))
        }
    };
    match sides {
        NumPair::Both(l, r) => tri_c(move |e, sel, out| {
            let (mut x, mut y) = (e.take_num(), e.take_num());
            l(e, sel, &mut x);
            r(e, sel, &mut y);
            each(sel, out, |i| decide(at(&x, i, NONE), at(&y, i, NONE)));
            e.give_num(x);
            e.give_num(y);
        }),
        NumPair::ConstRight(l, c) => tri_c(move |e, sel, out| {
            let mut x = e.take_num();
            l(e, sel, &mut x);
            each(sel, out, |i| decide(at(&x, i, NONE), c));
            e.give_num(x);
        }),
        NumPair::ConstLeft(c, r) => tri_c(move |e, sel, out| {
            let mut y = e.take_num();
            r(e, sel, &mut y);
            each(sel, out, |i| decide(c, at(&y, i, NONE)));
            e.give_num(y);
        }),
    }
}

/// A lookup in a table keyed by one or two strings or enum values: keys are read in order,
/// and one that is missing or abstains ends the lookup for its row.
fn lookup_ids(index: Arc<TableIndex>, keys: Vec<IdC>) -> ValC {
    val_c(move |e, sel, out| {
        let Some(entries) = &index.by_ids else {
            return each(sel, out, |_| Val::Abstain);
        };
        let (mut live, mut a, mut b) = (e.take_sel(), e.take_id(), e.take_id());
        live.extend_from_slice(sel);
        for (i, code) in keys.iter().enumerate() {
            let buf = if i == 0 { &mut a } else { &mut b };
            code(e, &live, buf);
            live.retain(|&r| {
                let kept = at(buf, r as usize, ABSENT_ID) < ABSENT_ID;
                if !kept {
                    each(&[r], out, |_| Val::Abstain);
                }
                kept
            });
        }
        let two = keys.len() == 2;
        for &r in &live {
            let r = r as usize;
            let k = pack(at(&a, r, 0), if two { at(&b, r, 0) } else { 0 });
            if let Some(o) = out.get_mut(r) {
                *o = entries.get(&k).unwrap_or(&index.default).clone();
            }
        }
        e.give_sel(live);
        e.give_id(a);
        e.give_id(b);
    })
}

/// A comparison of two ids, row by row; undecided when either is missing or abstains.
fn compare_ids(l: IdC, r: IdC, f: impl Fn(u32, u32) -> bool + Send + Sync + 'static) -> TriC {
    tri_c(move |e, sel, out| {
        let (mut x, mut y) = (e.take_id(), e.take_id());
        l(e, sel, &mut x);
        r(e, sel, &mut y);
        each(sel, out, |i| {
            let (a, b) = (at(&x, i, ABSENT_ID), at(&y, i, ABSENT_ID));
            if a >= ABSENT_ID || b >= ABSENT_ID {
                None
            } else {
                Some(f(a, b))
            }
        });
        e.give_id(x);
        e.give_id(y);
    })
}

/// An id as a value (a string's, or an enum value's).
fn val_of_id(c: IdC, is_enum: bool) -> ValC {
    val_c(move |e, sel, out| {
        let mut xs = e.take_id();
        c(e, sel, &mut xs);
        each(sel, out, |r| from_id(at(&xs, r, ABSENT_ID), is_enum));
        e.give_id(xs);
    })
}

/// A number as a value.
fn val_of_num(n: NumC) -> ValC {
    val_c(move |e, sel, out| {
        let mut xs = e.take_num();
        n(e, sel, &mut xs);
        each(sel, out, |r| from_num(at(&xs, r, NONE)));
        e.give_num(xs);
    })
}

/// A comparison of two values of any kind.
fn compare_vals(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
    if absent(a) || absent(b) {
        return None;
    }
    match op {
        BinOp::Eq => Some(equal(a, b)),
        BinOp::Ne => Some(!equal(a, b)),
        _ => {
            let (x, y) = match (a, b) {
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
}

/// Union, intersection, and a difference of sets (or of numbers, when the types could not
/// tell).
fn set_binary<'a>(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> Val<'a> {
    if absent(a) || absent(b) {
        return Val::Abstain;
    }
    match (a, b) {
        (Val::Nums(x), Val::Nums(y)) => Val::Nums(num_set_op(op, x, y).into()),
        (Val::Nums(_), _) => Val::Abstain,
        (Val::Ids(..), _) => match (as_set(a), as_set(b)) {
            (Some(x), Some(y)) => Val::Ids(set_op(op, &x, &y).into(), Kind::Set),
            _ => Val::Abstain,
        },
        (Val::Num(x), Val::Num(y)) if op == BinOp::Sub => from_num(finite(x - y)),
        _ => Val::Abstain,
    }
}

/// A call with a plain result: the arguments go to the parameters' slots, and the body runs for
/// the rows where none abstained; the others get `absent`.
fn call_code<T: Copy + Send + Sync + 'static>(
    prelude: Prelude,
    body: Arc<Code<T>>,
    absent: T,
) -> Code<T> {
    Box::new(move |e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| {
        each(sel, out, |_| absent);
        let mut live = e.take_sel();
        live.extend_from_slice(sel);
        prelude(e, &mut live);
        if !live.is_empty() {
            body(e, &live, out);
        }
        e.give_sel(live);
    })
}

/// Runs an `if` for the selected rows: the condition, then each branch for the rows it picks
/// (clause hits where some row took it); `absent()` where the condition is undecided. Shared by
/// every representation: `run` runs a branch's code.
fn if_rows<'a, 's, 'p, T, B>(
    e: &mut Env<'a, 's, 'p>,
    sel: &[u32],
    out: &mut [T],
    (c, then, otherwise): (&TriC, &B, &B),
    (then_clause, else_clause): (u32, u32),
    absent: impl Fn() -> T,
    run: impl Fn(&B, &mut Env<'a, 's, 'p>, &[u32], &mut [T]),
) {
    let mut cond = e.take_tri();
    c(e, sel, &mut cond);
    let (mut yes, mut no) = (e.take_sel(), e.take_sel());
    partition(sel, &cond, &mut yes, &mut no, |r| {
        each(&[r], out, |_| absent())
    });
    e.give_tri(cond);
    if !yes.is_empty() {
        e.ctx.hit(then_clause);
        run(then, e, &yes, out);
    }
    if !no.is_empty() {
        e.ctx.hit(else_clause);
        run(otherwise, e, &no, out);
    }
    e.give_sel(yes);
    e.give_sel(no);
}

/// Runs a `when` chain for the selected rows: each arm's condition on the rows still undecided,
/// its result for those it holds for; `absent()` as soon as an arm cannot be decided; then
/// `otherwise` for the rest. Shared by every representation, as [`if_rows`].
fn when_rows<'a, 's, 'p, T, B>(
    e: &mut Env<'a, 's, 'p>,
    sel: &[u32],
    out: &mut [T],
    (arms, otherwise): (&[(TriC, B, u32)], &B),
    otherwise_clause: u32,
    absent: impl Fn() -> T,
    run: impl Fn(&B, &mut Env<'a, 's, 'p>, &[u32], &mut [T]),
) {
    let (mut live, mut yes, mut rest) = (e.take_sel(), e.take_sel(), e.take_sel());
    live.extend_from_slice(sel);
    let mut cond = e.take_tri();
    for (w, t, c) in arms {
        if live.is_empty() {
            break;
        }
        w(e, &live, &mut cond);
        yes.clear();
        rest.clear();
        partition(&live, &cond, &mut yes, &mut rest, |r| {
            each(&[r], out, |_| absent())
        });
        if !yes.is_empty() {
            e.ctx.hit(*c);
            run(t, e, &yes, out);
        }
        std::mem::swap(&mut live, &mut rest);
    }
    if !live.is_empty() {
        e.ctx.hit(otherwise_clause);
        run(otherwise, e, &live, out);
    }
    e.give_tri(cond);
    e.give_sel(live);
    e.give_sel(yes);
    e.give_sel(rest);
}

/// Value code for a consumer of a plain result: each row's value converted, `absent` where a
/// row has none.
fn plain_of_val<T: Copy + Send + Sync + 'static>(
    v: ValC,
    convert: fn(&Val<'_>) -> T,
    absent: T,
) -> Code<T> {
    Box::new(move |e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| {
        let mut vs = e.take_val();
        v(e, sel, &mut vs);
        each(sel, out, |r| row(&vs, r).map_or(absent, convert));
        e.give_val(vs);
    })
}

/// Runs code of a plain result.
fn run_code<T>(code: &Code<T>, e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]) {
    code(e, sel, out)
}

/// Runs code of a value.
fn run_val<'a>(code: &ValC, e: &mut Env<'a, '_, '_>, sel: &[u32], out: &mut [Val<'a>]) {
    code(e, sel, out)
}

/// An `if` over code of a plain result: the branch its condition picks, `absent` when undecided.
fn if_code<T: Copy + Send + Sync + 'static>(
    c: TriC,
    t: Code<T>,
    o: Code<T>,
    clauses: (u32, u32),
    absent: T,
) -> Code<T> {
    Box::new(move |e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| {
        if_rows(e, sel, out, (&c, &t, &o), clauses, || absent, run_code)
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
    Box::new(move |e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]| {
        when_rows(
            e,
            sel,
            out,
            (&arms, &otherwise),
            otherwise_clause,
            || absent,
            run_code,
        )
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

/// The size of a set operation's result on two values; no number when they are not both sets
/// (or both lists of numbers).
fn set_op_count(op: BinOp, x: &Val<'_>, y: &Val<'_>) -> f64 {
    match (as_set(x), as_set(y), x, y) {
        (Some(p), Some(q), _, _) => set_op_len(op, &p, &q) as f64,
        (_, _, Val::Nums(p), Val::Nums(q)) => num_set_op(op, p, q).len() as f64,
        _ => NONE,
    }
}

/// The size of a set operation's result, without building it.
fn set_op_len(op: BinOp, a: &[u32], b: &[u32]) -> usize {
    // Without a branch on the comparison, which the data decides and no predictor guesses.
    let (mut i, mut j, mut both) = (0, 0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        both += usize::from(x == y);
        i += usize::from(x <= y);
        j += usize::from(y <= x);
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
