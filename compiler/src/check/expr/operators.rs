//! Checking operators (types, ranges, division by zero, comparisons that always or never hold),
//! `match` and its patterns, and the narrowing of facts that a condition establishes for its
//! branches.

use super::*;

impl Checker<'_> {
    pub(super) fn binary(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
        env: &Env,
    ) -> Value {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                let a = self.expr(lhs, env);
                self.expect(
                    &a,
                    &Type::Bool,
                    lhs.span,
                    &format!("`{}` joins conditions", op.symbol()),
                );
                // The right side is read only when the left did not decide: narrow by it.
                let facts = self.facts(lhs, env, op == BinaryOp::And);
                let b = self.expr(rhs, &env.with_facts(facts));
                self.expect(
                    &b,
                    &Type::Bool,
                    rhs.span,
                    &format!("`{}` joins conditions", op.symbol()),
                );
                let truth = if op == BinaryOp::And {
                    a.truth.and(b.truth)
                } else {
                    a.truth.or(b.truth)
                };
                Value {
                    abstains: a.abstains || b.abstains,
                    ..Value::boolean(truth)
                }
            }
            BinaryOp::Coalesce => {
                let a = self.expr_raw(lhs, env);
                let b = self.expr(rhs, env);
                let inner = match &a.ty {
                    Type::Optional(t) => (**t).clone(),
                    Type::Error => Type::Error,
                    other => {
                        let ty = self.program.type_name(other);
                        self.report(
                            Diagnostic::new(Code::TypeMismatch, format!("`??` needs an optional value on its left, found a `{ty}`"))
                                .at(lhs.span, "never missing")
                                .help("`x ?? default` gives `default` when the optional `x` is missing; remove `??` here"),
                        );
                        other.clone()
                    }
                };
                self.no_text(&Value::of(inner.clone()), lhs.span);
                if !b.ty.fits(&inner) {
                    let (want, got) = (
                        self.program.type_name(&inner),
                        self.program.type_name(&b.ty),
                    );
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("the default is a `{got}`, but the value is a `{want}`"),
                        )
                        .at(rhs.span, format!("a `{got}`"))
                        .help(format!("give a `{want}` default")),
                    );
                }
                let range = if inner == Type::Number {
                    a.range.join(&b.range)
                } else {
                    Interval::TOP
                };
                Value {
                    ty: inner,
                    range,
                    truth: a.truth.join(b.truth),
                    abstains: a.abstains || b.abstains,
                    key: None,
                    constant: None,
                    origin: None,
                }
            }
            _ => {
                let a = self.expr(lhs, env);
                let b = self.expr(rhs, env);
                let abstains = a.abstains || b.abstains;
                if self.no_text(&a, lhs.span) | self.no_text(&b, rhs.span) {
                    return Value::error();
                }
                if a.ty.is_error() || b.ty.is_error() {
                    return if op.is_comparison() {
                        Value::of(Type::Bool)
                    } else {
                        Value::error()
                    };
                }
                let mut v = if op.is_comparison() {
                    self.compare(op, op_span, &a, &b, lhs.span, rhs.span)
                } else {
                    let mut v = self.arith(op, op_span, &a, &b, lhs, rhs, span);
                    if let (Some(x), Some(y)) = (operand_key(&a), operand_key(&b)) {
                        v.key = Some(format!("({x} {} {y})", op.symbol()));
                    }
                    v
                };
                v.abstains |= abstains;
                v
            }
        }
    }

    pub(super) fn compare(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        a: &Value,
        b: &Value,
        ls: Span,
        rs: Span,
    ) -> Value {
        let cmp = to_cmp(op);
        let mismatch = |c: &mut Self, why: &str| {
            let (x, y) = (c.program.type_name(&a.ty), c.program.type_name(&b.ty));
            c.report(
                Diagnostic::new(Code::TypeMismatch, format!("cannot compare a `{x}` with a `{y}` using `{}`", op.symbol()))
                    .at(op_span, why.to_string())
                    .with(ls, format!("a `{x}`"))
                    .with(rs, format!("a `{y}`"))
                    .help("compare values of the same type: numbers with numbers, sets with sets, a field with one of its enum's values"),
            );
            Value::of(Type::Bool)
        };
        let same = a.ty.unify(&b.ty).is_some();
        if !same {
            let hint = match (&a.ty, &b.ty) {
                (Type::Enum(id), Type::String) | (Type::String, Type::Enum(id)) => {
                    let text = a
                        .constant
                        .clone()
                        .or(b.constant.clone())
                        .unwrap_or_default();
                    self.program.enum_def(*id).map(|d| {
                        if d.variants.contains(&text) {
                            format!("enum values are written without quotes: `{text}`")
                        } else {
                            format!(
                                "compare with one of the values of `{}`, written without quotes",
                                d.name
                            )
                        }
                    })
                }
                (Type::Set(_) | Type::List(_), Type::Number)
                | (Type::Number, Type::Set(_) | Type::List(_)) => {
                    Some("to compare the size of a set, use `len(...)`".to_string())
                }
                _ => None,
            };
            let v = mismatch(self, "different types");
            if let (Some(h), Some(last)) = (hint, self.diagnostics_last_mut()) {
                last.help = Some(h);
            }
            return v;
        }
        let ordering = matches!(cmp, Cmp::Lt | Cmp::Le | Cmp::Gt | Cmp::Ge);
        match (&a.ty, &b.ty) {
            (Type::Number | Type::Abstain, _) => Value::boolean(a.range.compare(cmp, &b.range)),
            (Type::Enum(id), _) => {
                let def = self.program.enum_def(*id);
                if ordering && def.is_some_and(|d| !d.ordered) {
                    let name = def.map_or(String::new(), |d| d.name.clone());
                    self.report(
                        Diagnostic::new(Code::NotOrdered, format!("`{name}` has no order, so `{}` cannot compare its values", op.symbol()))
                            .at(op_span, "an ordering comparison")
                            .help(format!("declare `{name}` with `<` between its values (lowest first), or compare with `==`")),
                    );
                    return Value::of(Type::Bool);
                }
                let truth = match (&a.constant, &b.constant, def) {
                    (Some(x), Some(y), Some(d)) => {
                        let rank = |v: &str| {
                            d.variants
                                .iter()
                                .position(|w| w == v)
                                .map_or(0.0, |p| p as f64)
                        };
                        Interval::point(rank(x)).compare(cmp, &Interval::point(rank(y)))
                    }
                    _ => Truth::Unknown,
                };
                Value::boolean(truth)
            }
            (Type::String | Type::Bool, _) if ordering => {
                mismatch(self, "strings and booleans have no order")
            }
            (Type::Set(_) | Type::List(_), _) if ordering => {
                mismatch(self, "sets have no order; compare their `len`")
            }
            (Type::Entity(_), _) => {
                mismatch(self, "entities cannot be compared; compare their fields")
            }
            _ => {
                let truth = match (&a.constant, &b.constant) {
                    (Some(x), Some(y)) => {
                        let eq = x == y;
                        if (cmp == Cmp::Eq) == eq {
                            Truth::True
                        } else {
                            Truth::False
                        }
                    }
                    _ if a.ty == Type::Bool
                        && a.truth != Truth::Unknown
                        && b.truth != Truth::Unknown =>
                    {
                        let eq = a.truth == b.truth;
                        if (cmp == Cmp::Eq) == eq {
                            Truth::True
                        } else {
                            Truth::False
                        }
                    }
                    _ => Truth::Unknown,
                };
                Value::boolean(truth)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn arith(
        &mut self,
        op: BinaryOp,
        op_span: Span,
        a: &Value,
        b: &Value,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Value {
        let sets = |t: &Type| matches!(t, Type::Set(_) | Type::List(_));
        match op {
            BinaryOp::Union | BinaryOp::Intersect => {
                if !(sets(&a.ty) && sets(&b.ty)) {
                    let bad = if sets(&a.ty) {
                        (b, rhs.span)
                    } else {
                        (a, lhs.span)
                    };
                    let ty = self.program.type_name(&bad.0.ty);
                    self.report(
                        Diagnostic::new(Code::TypeMismatch, format!("`{}` combines sets, found a `{ty}`", op.symbol()))
                            .at(bad.1, format!("a `{ty}`"))
                            .help("`a & b` is the intersection and `a | b` the union of two sets; for conditions use `and` / `or`"),
                    );
                    return Value::error();
                }
                match a.ty.unify(&b.ty) {
                    Some(Type::Set(t) | Type::List(t)) => Value::of(Type::Set(t)),
                    _ => {
                        self.element_mismatch(op, op_span, a, b);
                        Value::error()
                    }
                }
            }
            BinaryOp::Sub if sets(&a.ty) || sets(&b.ty) => {
                if !(sets(&a.ty) && sets(&b.ty)) {
                    let bad = if sets(&a.ty) {
                        (b, rhs.span)
                    } else {
                        (a, lhs.span)
                    };
                    let ty = self.program.type_name(&bad.0.ty);
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("set difference needs two sets, found a `{ty}`"),
                        )
                        .at(bad.1, format!("a `{ty}`"))
                        .help("`a - b` on sets keeps the elements of `a` that are not in `b`"),
                    );
                    return Value::error();
                }
                match a.ty.unify(&b.ty) {
                    Some(Type::Set(t) | Type::List(t)) => Value::of(Type::Set(t)),
                    _ => {
                        self.element_mismatch(op, op_span, a, b);
                        Value::error()
                    }
                }
            }
            _ => {
                let ok_a = self.expect(
                    a,
                    &Type::Number,
                    lhs.span,
                    &format!("`{}` works on numbers", op.symbol()),
                );
                let ok_b = self.expect(
                    b,
                    &Type::Number,
                    rhs.span,
                    &format!("`{}` works on numbers", op.symbol()),
                );
                if !(ok_a && ok_b) {
                    return Value::error();
                }
                let range = match op {
                    BinaryOp::Add => a.range.add(&b.range),
                    BinaryOp::Sub => a.range.sub(&b.range),
                    BinaryOp::Mul => a.range.mul(&b.range),
                    _ => {
                        let mut abstains = false;
                        if b.range.lo == 0.0 && b.range.hi == 0.0 {
                            // Not a guardable risk: the division never has a value.
                            let what = expr_text(rhs);
                            self.report(
                                Diagnostic::new(
                                    Code::DivisionAlwaysZero,
                                    format!("`{what}` is always zero, so this division never has a value"),
                                )
                                .at(rhs.span, "always 0")
                                .with(span, "this division")
                                .help("divide by something that is not always 0, or remove the division; as written the dimension abstains for every pair"),
                            );
                            return Value {
                                abstains: true,
                                ..Value::number(Interval::UNIT)
                            };
                        }
                        if b.range.contains(0.0) {
                            abstains = true;
                            let what = expr_text(rhs);
                            self.report(
                                Diagnostic::new(Code::DivisionByZero, format!("`{what}` can be zero here"))
                                    .at(rhs.span, format!("can be 0 (its range is {})", b.range))
                                    .with(span, "this division")
                                    .help(format!("guard it: `if {what} == 0 then ... else ...`; unguarded, a zero makes the dimension abstain at run time")),
                            );
                        }
                        let mut range = a.range.div(&b.range);
                        if part_of_whole(a, b) {
                            range = range.meet(&Interval::UNIT);
                        }
                        return Value {
                            abstains,
                            ..Value::number(range)
                        };
                    }
                };
                Value::number(range)
            }
        }
    }

    pub(super) fn element_mismatch(&mut self, op: BinaryOp, op_span: Span, a: &Value, b: &Value) {
        let (x, y) = (self.program.type_name(&a.ty), self.program.type_name(&b.ty));
        self.report(
            Diagnostic::new(
                Code::TypeMismatch,
                format!("`{}` on a `{x}` and a `{y}`", op.symbol()),
            )
            .at(op_span, "elements of different types")
            .help("both sets must hold the same type of element"),
        );
    }

    pub(super) fn match_expr(
        &mut self,
        scrutinee: &Expr,
        arms: &[MatchArm],
        span: Span,
        env: &Env,
    ) -> Value {
        let s = self.operand_of(|c| c.expr(scrutinee, env));
        self.no_text(&s, scrutinee.span);
        let mut seen: BTreeSet<String> = BTreeSet::new();
        let mut wildcard: Option<Span> = None;
        let mut bad_pattern = false;
        let mut branches = Vec::new();
        for arm in arms {
            if let Some(w) = wildcard {
                self.report(
                    Diagnostic::new(
                        Code::UnreachableArm,
                        "this arm comes after `_` and can never be chosen",
                    )
                    .at(arm.span, "unreachable")
                    .with(w, "`_` matches everything")
                    .help("move `_` to the end, or remove this arm"),
                );
            }
            if arm.is_wildcard() {
                let covered = match &s.ty {
                    Type::Enum(id) => self
                        .program
                        .enum_def(*id)
                        .is_some_and(|d| d.variants.iter().all(|v| seen.contains(v))),
                    Type::Bool => seen.contains("true") && seen.contains("false"),
                    _ => false,
                };
                if covered && wildcard.is_none() {
                    self.report(
                        Diagnostic::new(
                            Code::UnreachableArm,
                            "`_` can never be chosen: the arms above cover every value",
                        )
                        .at(arm.span, "unreachable")
                        .help("remove `_`, or the arms it should catch"),
                    );
                }
                wildcard.get_or_insert(arm.span);
            }
            let mut arm_facts = Facts::default();
            for p in &arm.patterns {
                let Some(text) = self.pattern(p, &s, env) else {
                    bad_pattern = true;
                    continue;
                };
                if !seen.insert(text.clone()) {
                    self.report(
                        Diagnostic::new(
                            Code::UnreachableArm,
                            format!("`{text}` is matched by an earlier arm"),
                        )
                        .at(p.span, "already matched")
                        .help("remove the repeated pattern"),
                    );
                }
                if let (Some(key), LiteralKind::Number(n)) = (&s.key, &p.kind)
                    && arm.patterns.len() == 1
                {
                    arm_facts.ranges.push((key.clone(), Interval::point(*n)));
                }
            }
            let v = self.expr_raw(&arm.body, &env.with_facts(arm_facts));
            branches.push((v, arm.body.span));
        }
        if wildcard.is_none() && !bad_pattern {
            let exhaustive = match &s.ty {
                Type::Enum(id) => self
                    .program
                    .enum_def(*id)
                    .is_some_and(|d| d.variants.iter().all(|v| seen.contains(v))),
                Type::Bool => seen.contains("true") && seen.contains("false"),
                Type::Error => true,
                _ => false,
            };
            if !exhaustive {
                let missing = match &s.ty {
                    Type::Enum(id) => self.program.enum_def(*id).map(|d| {
                        d.variants
                            .iter()
                            .filter(|v| !seen.contains(*v))
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }),
                    _ => None,
                };
                let mut d = Diagnostic::new(
                    Code::MatchNotExhaustive,
                    "this `match` does not cover every value",
                )
                .at(span, "some values match no arm");
                d = match missing {
                    Some(m) if !m.is_empty() => {
                        d.help(format!("add arms for {m}, or end with `_ => ...`"))
                    }
                    _ => d.help("end the `match` with `_ => ...`"),
                };
                self.report(d);
            }
        }
        self.join_branches(branches)
    }

    /// Checks one pattern against the scrutinee; returns its canonical text.
    pub(super) fn pattern(&mut self, p: &Literal, s: &Value, env: &Env) -> Option<String> {
        let (ty, text) = match &p.kind {
            LiteralKind::Number(n) | LiteralKind::Percent(n) => (Type::Number, format!("{n}")),
            LiteralKind::String(t) => (Type::String, format!("\"{t}\"")),
            LiteralKind::Bool(b) => (Type::Bool, b.to_string()),
            LiteralKind::Name(names) if matches!(s.ty, Type::Enum(_)) && names.len() == 1 => {
                let (Type::Enum(id), Some(v)) = (&s.ty, names.first()) else {
                    return None;
                };
                let def = self.program.enum_def(*id)?;
                if !def.variants.contains(&v.name) {
                    let mut d = Diagnostic::new(
                        Code::UnknownEnumValue,
                        format!("enum `{}` has no value `{}`", def.name, v.name),
                    )
                    .at(v.span, "not one of its values");
                    if let Some(h) =
                        suggestion_help(&v.name, "values", def.variants.iter().map(String::as_str))
                    {
                        d = d.help(h);
                    }
                    self.report(d);
                    return None;
                }
                (s.ty.clone(), v.name.clone())
            }
            LiteralKind::Name(names) => {
                let e = Expr {
                    kind: ExprKind::Path(names.clone()),
                    span: p.span,
                };
                let v = self.expr_raw(&e, env);
                if v.ty.is_error() {
                    return None;
                }
                (v.ty, v.constant.unwrap_or_default())
            }
            LiteralKind::List(_) | LiteralKind::Abstain => (Type::Error, String::new()),
        };
        if !ty.fits(&s.ty) && !s.ty.is_error() {
            let (want, got) = (self.program.type_name(&s.ty), self.program.type_name(&ty));
            self.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!("a `{got}` pattern cannot match a `{want}`"),
                )
                .at(p.span, format!("a `{got}`"))
                .help(format!("match against values of type `{want}`")),
            );
            return None;
        }
        Some(text)
    }

    // -----------------------------------------------------------------------------------------
    // Narrowing

    /// What holds when `cond` evaluates to `polarity`.
    pub fn facts(&mut self, cond: &Expr, env: &Env, polarity: bool) -> Facts {
        let mut out = Facts::default();
        match &cond.kind {
            ExprKind::Paren(inner) => return self.facts(inner, env, polarity),
            ExprKind::Unary {
                op: UnaryOp::Not,
                operand,
            } => return self.facts(operand, env, !polarity),
            ExprKind::Binary {
                op: BinaryOp::And,
                lhs,
                rhs,
                ..
            } if polarity => {
                let first = self.facts(lhs, env, true);
                let second = self.facts(rhs, &env.with_facts(first.clone()), true);
                out.merge(first);
                out.merge(second);
            }
            ExprKind::Binary {
                op: BinaryOp::Or,
                lhs,
                rhs,
                ..
            } if !polarity => {
                let first = self.facts(lhs, env, false);
                let second = self.facts(rhs, &env.with_facts(first.clone()), false);
                out.merge(first);
                out.merge(second);
            }
            ExprKind::Call { func, args }
                if func.name == "missing" && args.len() == 1 && !polarity =>
            {
                if let Some(arg) = args.first() {
                    let v = self.quietly(|c| c.expr_raw(arg, env));
                    if let Some(k) = v.key {
                        out.present.push(k);
                    }
                }
            }
            ExprKind::Binary { op, lhs, rhs, .. } if op.is_comparison() => {
                let (a, b) = self.quietly(|c| (c.expr(lhs, env), c.expr(rhs, env)));
                let cmp = if polarity {
                    to_cmp(*op)
                } else {
                    to_cmp(*op).negate()
                };
                if a.ty == Type::Number && b.ty == Type::Number {
                    if let Some(k) = &a.key {
                        out.ranges
                            .push((k.clone(), a.range.restrict(cmp, &b.range)));
                    }
                    if let Some(k) = &b.key {
                        out.ranges
                            .push((k.clone(), b.range.restrict(cmp.flip(), &a.range)));
                    }
                } else if cmp == Cmp::Eq
                    && let (Some(k), Some(c)) = (&a.key, &b.constant)
                {
                    out.equal.push((k.clone(), c.clone()));
                }
            }
            _ => {
                let v = self.quietly(|c| c.expr(cond, env));
                if v.ty == Type::Bool
                    && let Some(k) = v.key
                {
                    out.bools.push((k, polarity));
                }
            }
        }
        out
    }
}
