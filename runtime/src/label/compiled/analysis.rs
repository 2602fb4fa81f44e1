//! What the compiler knows of a node before it compiles it: the slot code for a `let`, whether
//! it may be missing, its type, the columns it reads, and the branches of `if` and `when`.

use super::*;

impl Compiler<'_> {
    /// Code for a node in the representation of a slot of this kind.
    pub(super) fn slot_code(&mut self, node: &Node, locals: &[Local], kind: SlotKind) -> SlotCode {
        match kind {
            SlotKind::Num => SlotCode::Num(self.num(node, locals)),
            SlotKind::Tri => SlotCode::Tri(self.tri(node, locals)),
            SlotKind::Id => SlotCode::Id(self.id(node, locals)),
            SlotKind::Val => SlotCode::Val(self.val(node, locals)),
        }
    }

    /// Whether a node may evaluate to `missing` (and not only to a value or `abstain`).
    pub(super) fn may_miss(&self, node: &Node, locals: &[Local]) -> bool {
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

    pub(super) fn ty(&self, node: &Node, locals: &[Local]) -> Ty {
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
    pub(super) fn column(&self, role: u32, field: u32) -> Option<usize> {
        self.columns
            .get(role as usize)
            .map(|start| start + field as usize)
    }

    /// Whether evaluating a node may call `target`, directly or through other functions.
    pub(super) fn calls_into(&self, node: &Node, target: u32, depth: u32) -> bool {
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
    pub(super) fn branches<T: Copy + Send + Sync + 'static>(
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
    pub(super) fn when_arms<T>(
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
}
