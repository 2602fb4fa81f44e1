//! Compiling a node for a consumer that wants any value or an interned id, the value-returning
//! built-in functions included.

use super::*;

impl Compiler<'_> {
    /// Compiles a node for a consumer that wants any value, `missing` kept apart from `abstain`.
    pub(super) fn val(&mut self, node: &Node, locals: &[Local]) -> ValC {
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
                    let undefined = &mut e.undefined;
                    update(sel, out, |i, a| {
                        let Some(b) = row(&ys, i) else {
                            *a = Val::Abstain;
                            return;
                        };
                        if difference_overflows(op, a, b)
                            && let Some(u) = undefined.get_mut(i)
                        {
                            // Counted as an undefined result, as `arith` counts it.
                            *u = true;
                        }
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
    pub(super) fn num_pair(&mut self, lhs: &Node, rhs: &Node, locals: &[Local]) -> NumPair {
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
    pub(super) fn place(&self, node: &Node, locals: &[Local]) -> Option<Place> {
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
    pub(super) fn is_id(&self, node: &Node, locals: &[Local]) -> bool {
        matches!(self.ty(node, locals), Ty::Str | Ty::Enum)
    }

    /// Compiles a node of string or enum type for a consumer that wants its id.
    pub(super) fn id(&mut self, node: &Node, locals: &[Local]) -> IdC {
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

    pub(super) fn arg_id(&mut self, args: &[Node], i: usize, locals: &[Local]) -> IdC {
        match args.get(i) {
            Some(a) => self.id(a, locals),
            None => id_c(|_, sel, out| each(sel, out, |_| ABSENT_ID)),
        }
    }

    pub(super) fn builtin_val(&mut self, b: Builtin, args: &[Node], locals: &[Local]) -> ValC {
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
}
