//! Compiling a node for a consumer that wants a number, the numeric built-in functions included.

use super::*;

impl Compiler<'_> {
    /// Compiles a node for a consumer that wants a number.
    pub(super) fn num(&mut self, node: &Node, locals: &[Local]) -> NumC {
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
                    BinOp::Add => arith(self.num_pair(lhs, rhs, locals), |x, y| x + y),
                    BinOp::Sub => arith(self.num_pair(lhs, rhs, locals), |x, y| x - y),
                    BinOp::Mul => arith(self.num_pair(lhs, rhs, locals), |x, y| x * y),
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

    pub(super) fn builtin_num(&mut self, b: Builtin, args: &[Node], locals: &[Local]) -> NumC {
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

    pub(super) fn arg_num(&mut self, args: &[Node], i: usize, locals: &[Local]) -> NumC {
        match args.get(i) {
            Some(a) => self.num(a, locals),
            None => num_c(|_, sel, out| each(sel, out, |_| NONE)),
        }
    }

    pub(super) fn arg_val(&mut self, args: &[Node], i: usize, locals: &[Local]) -> ValC {
        match args.get(i) {
            Some(a) => self.val(a, locals),
            None => val_c(|_, sel, out| each(sel, out, |_| Val::Abstain)),
        }
    }
}
