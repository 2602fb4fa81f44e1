//! The run-time pieces compiled code is made of: selections and partitions of rows, arithmetic
//! and comparisons over columns, table lookups, sets, `if` and `when` over rows, and value
//! equality.

use super::*;

/// An argument's values, before they move to the parameter's slot.
pub(super) enum Arg<'a> {
    Num(Vec<f64>),
    Tri(Vec<Option<bool>>),
    Id(Vec<u32>),
    Val(Vec<Val<'a>>),
}

/// Copies the selected rows of one buffer into another.
pub(super) fn copy_rows<T: Copy>(sel: &[u32], from: &[T], to: &mut [T]) {
    for &r in sel {
        let r = r as usize;
        if let (Some(t), Some(f)) = (to.get_mut(r), from.get(r)) {
            *t = *f;
        }
    }
}

/// Reads a `let` or a parameter in a plain representation: straight from its column when it is
/// held that way (`own`), converted from a value when it is held as one, else `absent`.
pub(super) fn local_plain<T: Copy + Send + Sync + 'static>(
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
pub(super) fn local_num(l: Option<&Local>) -> NumC {
    local_plain(l, SlotKind::Num, |e| &e.num_slots, num_or_none, NONE)
}

/// Reads a `let` or a parameter as a truth.
pub(super) fn local_tri(l: Option<&Local>) -> TriC {
    local_plain(l, SlotKind::Tri, |e| &e.tri_slots, tri_of, None)
}

/// Reads a `let` or a parameter as an id.
pub(super) fn local_id(l: Option<&Local>) -> IdC {
    local_plain(l, SlotKind::Id, |e| &e.id_slots, id_of, ABSENT_ID)
}

/// Reads a `let` or a parameter as a value.
pub(super) fn local_val(l: Option<&Local>) -> ValC {
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
pub(in crate::label) fn select(sel: &[u32], into: &mut Vec<u32>, keep: impl Fn(usize) -> bool) {
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
pub(super) fn partition(
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
pub(super) enum NumPair {
    Both(NumC, NumC),
    ConstRight(NumC, f64),
    ConstLeft(f64, NumC),
}

/// Arithmetic on two numbers, row by row.
pub(super) fn arith(sides: NumPair, f: impl Fn(f64, f64) -> f64 + Send + Sync + 'static) -> NumC {
    match sides {
        NumPair::Both(l, r) => num_c(move |e, sel, out| {
            l(e, sel, out);
            let mut y = e.take_num();
            r(e, sel, &mut y);
            let mut any = false;
            update(sel, out, |i, x| {
                *x = f(*x, at(&y, i, NONE));
                any |= x.is_infinite();
            });
            e.give_num(y);
            if any {
                overflowed(e, sel, out);
            }
        }),
        NumPair::ConstRight(l, c) => num_c(move |e, sel, out| {
            l(e, sel, out);
            let mut any = false;
            update(sel, out, |_, x| {
                *x = f(*x, c);
                any |= x.is_infinite();
            });
            if any {
                overflowed(e, sel, out);
            }
        }),
        NumPair::ConstLeft(c, r) => num_c(move |e, sel, out| {
            r(e, sel, out);
            let mut any = false;
            update(sel, out, |_, y| {
                *y = f(c, *y);
                any |= y.is_infinite();
            });
            if any {
                overflowed(e, sel, out);
            }
        }),
    }
}

/// A result past the largest number (`x * 10` with x = 1e308) is no number: its row is marked
/// so that the dimension's abstention is counted as an undefined result, as a division by zero
/// is, instead of abstaining silently. Called only when some row overflowed: the arithmetic's
/// own loop stays free of it.
fn overflowed(e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [f64]) {
    for &r in sel {
        let r = r as usize;
        if let Some(x) = out.get_mut(r).filter(|x| x.is_infinite()) {
            *x = NONE;
            if let Some(u) = e.undefined.get_mut(r) {
                *u = true;
            }
        }
    }
}

/// A comparison of two numbers, row by row; undecided when either is no number.
pub(super) fn compare(
    sides: NumPair,
    f: impl Fn(f64, f64) -> bool + Send + Sync + 'static,
) -> TriC {
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
pub(super) fn lookup_ids(index: Arc<TableIndex>, keys: Vec<IdC>) -> ValC {
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
pub(super) fn compare_ids(
    l: IdC,
    r: IdC,
    f: impl Fn(u32, u32) -> bool + Send + Sync + 'static,
) -> TriC {
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
pub(super) fn val_of_id(c: IdC, is_enum: bool) -> ValC {
    val_c(move |e, sel, out| {
        let mut xs = e.take_id();
        c(e, sel, &mut xs);
        each(sel, out, |r| from_id(at(&xs, r, ABSENT_ID), is_enum));
        e.give_id(xs);
    })
}

/// A number as a value.
pub(super) fn val_of_num(n: NumC) -> ValC {
    val_c(move |e, sel, out| {
        let mut xs = e.take_num();
        n(e, sel, &mut xs);
        each(sel, out, |r| from_num(at(&xs, r, NONE)));
        e.give_num(xs);
    })
}

/// A comparison of two values of any kind.
pub(super) fn compare_vals(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> Option<bool> {
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
/// A difference of two numbers (reached through `set_binary` when the types could not tell)
/// whose result is past the largest number: no number, and an event to count.
pub(super) fn difference_overflows(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> bool {
    matches!((op, a, b), (BinOp::Sub, Val::Num(x), Val::Num(y)) if (x - y).is_infinite())
}

pub(super) fn set_binary<'a>(op: BinOp, a: &Val<'_>, b: &Val<'_>) -> Val<'a> {
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
pub(super) fn call_code<T: Copy + Send + Sync + 'static>(
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
pub(super) fn if_rows<'a, 's, 'p, T, B>(
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
pub(super) fn when_rows<'a, 's, 'p, T, B>(
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
pub(super) fn plain_of_val<T: Copy + Send + Sync + 'static>(
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
pub(super) fn run_code<T>(code: &Code<T>, e: &mut Env<'_, '_, '_>, sel: &[u32], out: &mut [T]) {
    code(e, sel, out)
}

/// Runs code of a value.
pub(super) fn run_val<'a>(code: &ValC, e: &mut Env<'a, '_, '_>, sel: &[u32], out: &mut [Val<'a>]) {
    code(e, sel, out)
}

/// An `if` over code of a plain result: the branch its condition picks, `absent` when undecided.
pub(super) fn if_code<T: Copy + Send + Sync + 'static>(
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
pub(super) fn when_code<T: Copy + Send + Sync + 'static>(
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
pub(super) fn visit_children<'n>(node: &'n Node, f: &mut dyn FnMut(&'n Node)) {
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
pub(super) fn set_op(op: BinOp, a: &[u32], b: &[u32]) -> Vec<u32> {
    merge(op, a, b, u32::cmp)
}

/// Union, intersection or difference of two sorted, deduplicated slices.
pub(super) fn merge<T: Copy>(
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

pub(super) fn as_set<'x>(v: &'x Val<'_>) -> Option<Seq<'x, u32>> {
    match v {
        Val::Ids(ids, Kind::Set) => Some(ids.view()),
        Val::Ids(ids, Kind::List) => Some(to_set(ids.to_vec()).into()),
        _ => None,
    }
}

/// The size of a set operation's result on two values; no number when they are not both sets
/// (or both lists of numbers).
pub(super) fn set_op_count(op: BinOp, x: &Val<'_>, y: &Val<'_>) -> f64 {
    match (as_set(x), as_set(y), x, y) {
        (Some(p), Some(q), _, _) => set_op_len(op, &p, &q) as f64,
        (_, _, Val::Nums(p), Val::Nums(q)) => num_set_op(op, p, q).len() as f64,
        _ => NONE,
    }
}

/// The size of a set operation's result, without building it.
pub(super) fn set_op_len(op: BinOp, a: &[u32], b: &[u32]) -> usize {
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
pub(super) fn num_set_op(op: BinOp, a: &[f64], b: &[f64]) -> Vec<f64> {
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    merge(op, &sorted(a), &sorted(b), f64::total_cmp)
}

/// Whether a `match` pattern equals a value.
pub(super) fn pattern_matches(p: &Const, v: &Val<'_>) -> bool {
    match (p, v) {
        (Const::Number(x), Val::Num(y)) => x == y,
        (Const::Bool(x), Val::Bool(y)) => x == y,
        (Const::Str(x), Val::Str(y)) => x == y,
        (Const::Enum(_, x), Val::Enum(y)) => x == y,
        _ => false,
    }
}

pub(super) fn equal(a: &Val<'_>, b: &Val<'_>) -> bool {
    match (a, b) {
        (Val::Ids(x, _), Val::Ids(y, _)) => match (as_set(a), as_set(b)) {
            (Some(p), Some(q)) => *p == *q,
            _ => **x == **y,
        },
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_past_the_largest_number_is_no_number_and_an_event() {
        let (big, small) = (Val::Num(f64::MAX), Val::Num(-f64::MAX));
        assert!(difference_overflows(BinOp::Sub, &big, &small));
        assert!(matches!(set_binary(BinOp::Sub, &big, &small), Val::Abstain));
        let (a, b) = (Val::Num(3.0), Val::Num(1.0));
        assert!(!difference_overflows(BinOp::Sub, &a, &b));
        assert!(matches!(set_binary(BinOp::Sub, &a, &b), Val::Num(x) if x == 2.0));
    }
}
