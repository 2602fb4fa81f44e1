//! Compiling a node for a consumer that wants a three-valued truth (`None`: undecided).

use super::*;

impl Compiler<'_> {
    /// Compiles a node for a consumer that wants a truth value (`None`: undecided).
    pub(super) fn tri(&mut self, node: &Node, locals: &[Local]) -> TriC {
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
}
