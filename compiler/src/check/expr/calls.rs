//! Checking calls of functions (the standard library's and the policy's, their arity and
//! argument types) and table lookups.

use super::*;

impl Checker<'_> {
    pub(super) fn call(&mut self, func: &Ident, args: &[Expr], span: Span, env: &Env) -> Value {
        let name = func.name.as_str();
        if PRELUDE.contains(&name) {
            return self.native(func, args, span, env);
        }
        match self.lookup(env.scope, name) {
            Some(Symbol::Fn(id)) => self.call_user(id, func, args, span, env),
            Some(Symbol::Unresolved) => {
                for a in args {
                    self.expr(a, env);
                }
                Value::error()
            }
            Some(_) => {
                self.report(
                    Diagnostic::new(Code::TypeMismatch, format!("`{name}` is not a function"))
                        .at(func.span, "cannot be called")
                        .help(
                            "tables are read with `name[key]`; enums and entities are not called",
                        ),
                );
                Value::error()
            }
            None => {
                for a in args {
                    self.expr(a, env);
                }
                let mut candidates: Vec<String> = PRELUDE.iter().map(|s| s.to_string()).collect();
                candidates.extend(
                    self.program
                        .names_where(env.scope, |s| matches!(s, Symbol::Fn(_))),
                );
                let mut d =
                    Diagnostic::new(Code::UnknownFunction, format!("unknown function `{name}`"))
                        .at(func.span, "not defined or imported");
                if let Some(module) = stdlib::exports(name) {
                    d = d.help(format!(
                        "`{name}` is in the standard library: add `use {module}.{{{name}}}`"
                    ));
                } else if let Some(best) = did_you_mean(name, candidates.iter().map(String::as_str))
                {
                    d = d.help(format!("did you mean `{best}`?"));
                    self.meant(env.scope, best);
                } else if let Some(best) = did_you_mean(name, stdlib::functions().map(|(_, f)| f))
                    && let Some(module) = stdlib::exports(best)
                {
                    d = d.help(format!(
                        "did you mean `{best}` (in the standard library)? add `use {module}.{{{best}}}`"
                    ));
                }
                self.report(d);
                Value::error()
            }
        }
    }

    /// Whether a native function's call gives as many arguments as its signature names; when not,
    /// reports which parameters are missing or how many arguments are extra.
    pub(super) fn arity(&mut self, func: &Ident, args: &[Expr], span: Span) -> bool {
        let Some((params, variadic)) = crate::check::prelude::parameters(&func.name) else {
            return true;
        };
        let ok = args.len() == params.len() || (variadic && args.len() > params.len());
        if !ok {
            let mut d = arity_diagnostic(&func.name, &params, variadic, args, span);
            if let Some((sig, _)) = crate::check::prelude::signature(&func.name) {
                d = d.help(format!("the signature is `{sig}`"));
            }
            self.report(d);
        }
        ok
    }

    pub(super) fn native(&mut self, func: &Ident, args: &[Expr], span: Span, env: &Env) -> Value {
        let name = func.name.as_str();
        if name == "missing" {
            if !self.arity(func, args, span) {
                return Value::of(Type::Bool);
            }
            let Some(arg) = args.first() else {
                return Value::error();
            };
            let v = self.expr_raw(arg, env);
            if !matches!(v.ty, Type::Optional(_) | Type::Error) {
                let present = v
                    .key
                    .as_ref()
                    .is_some_and(|k| env.facts.present.contains(k));
                if !present {
                    let ty = self.program.type_name(&v.ty);
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("`missing` takes an optional value, found a `{ty}`"),
                        )
                        .at(arg.span, "never missing")
                        .help("only fields declared with `?` can be missing; remove the check"),
                    );
                }
                return Value::boolean(if present {
                    Truth::False
                } else {
                    Truth::Unknown
                });
            }
            return Value::of(Type::Bool);
        }
        let values: Vec<Value> = args.iter().map(|a| self.expr(a, env)).collect();
        for (v, a) in values.iter().zip(args) {
            self.no_text(v, a.span);
        }
        let key = call_key(name, &values);
        let abstains = values.iter().any(|v| v.abstains);
        let arg = |i: usize| values.get(i).cloned().unwrap_or_else(Value::error);
        let span_of = |i: usize| args.get(i).map_or(span, |a| a.span);
        let mut out = match name {
            "len" => {
                if !self.arity(func, args, span) {
                    return Value::number(Interval::count());
                }
                let v = arg(0);
                if !matches!(
                    v.ty,
                    Type::Set(_) | Type::List(_) | Type::String | Type::Error
                ) {
                    self.expect(
                        &v,
                        &Type::Set(Box::new(Type::Anything)),
                        span_of(0),
                        "`len` counts a set, a list or a string",
                    );
                }
                Value::number(Interval::count())
            }
            "abs" => {
                if !self.arity(func, args, span) {
                    return Value::number(Interval::TOP);
                }
                let v = arg(0);
                self.expect(&v, &Type::Number, span_of(0), "`abs` takes a number");
                Value::number(v.range.abs())
            }
            "min" | "max" => {
                if !self.arity(func, args, span) {
                    return Value::number(Interval::TOP);
                }
                let mut range: Option<Interval> = None;
                for (i, v) in values.iter().enumerate() {
                    self.expect(
                        v,
                        &Type::Number,
                        span_of(i),
                        &format!("`{name}` takes numbers"),
                    );
                    range = Some(match range {
                        None => v.range,
                        Some(r) if name == "min" => r.min(&v.range),
                        Some(r) => r.max(&v.range),
                    });
                }
                Value::number(range.unwrap_or(Interval::TOP))
            }
            "clamp" => {
                if !self.arity(func, args, span) {
                    return Value::number(Interval::TOP);
                }
                for i in 0..3 {
                    self.expect(
                        &arg(i),
                        &Type::Number,
                        span_of(i),
                        "`clamp(x, lo, hi)` takes numbers",
                    );
                }
                let (x, lo, hi) = (arg(0).range, arg(1).range, arg(2).range);
                if lo.is_bounded() && hi.is_bounded() && lo.compare(Cmp::Gt, &hi) == Truth::True {
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            "`clamp` is given a lower bound above its upper bound",
                        )
                        .at(span, "lo > hi")
                        .help("write `clamp(x, lo, hi)` with `lo <= hi`"),
                    );
                }
                Value::number(x.max(&lo).min(&hi))
            }
            "lower" => {
                if self.arity(func, args, span) {
                    self.expect(&arg(0), &Type::String, span_of(0), "`lower` takes a string");
                }
                Value::of(Type::String)
            }
            "contains" => {
                if !self.arity(func, args, span) {
                    return Value::of(Type::Bool);
                }
                let (c, x) = (arg(0), arg(1));
                match &c.ty {
                    Type::String => {
                        self.expect(
                            &x,
                            &Type::String,
                            span_of(1),
                            "`contains(text, part)` looks for a string in a string",
                        );
                    }
                    Type::Set(el) | Type::List(el) => {
                        let el = (**el).clone();
                        self.expect(&x, &el, span_of(1), "`contains(collection, x)` looks for an element of the collection's type");
                    }
                    Type::Error => {}
                    _ => {
                        self.expect(
                            &c,
                            &Type::Set(Box::new(Type::Anything)),
                            span_of(0),
                            "`contains` looks in a set, a list or a string",
                        );
                    }
                }
                Value::of(Type::Bool)
            }
            "rank" => {
                if !self.arity(func, args, span) {
                    return Value::number(Interval::count());
                }
                let v = arg(0);
                match v.ty {
                    Type::Enum(id) => {
                        let (ordered, n, ename) = self
                            .program
                            .enum_def(id)
                            .map_or((true, 1, String::new()), |d| {
                                (d.ordered, d.variants.len(), d.name.clone())
                            });
                        if !ordered {
                            self.report(
                                Diagnostic::new(Code::NotOrdered, format!("`{ename}` has no order, so its values have no rank"))
                                    .at(span_of(0), "an unordered enum")
                                    .help(format!("declare `{ename}` with `<` between its values (lowest first) to give it an order")),
                            );
                        }
                        let hi = n.saturating_sub(1) as f64;
                        let range = match (&v.constant, self.program.enum_def(id)) {
                            (Some(c), Some(def)) => def
                                .variants
                                .iter()
                                .position(|x| x == c)
                                .map_or(Interval::closed(0.0, hi), |p| Interval::point(p as f64)),
                            _ => Interval::closed(0.0, hi),
                        };
                        Value::number(range.with_integer(true))
                    }
                    Type::Error => Value::number(Interval::count()),
                    _ => {
                        let ty = self.program.type_name(&v.ty);
                        self.report(
                            Diagnostic::new(Code::TypeMismatch, format!("`rank` takes a value of an ordered enum, found a `{ty}`"))
                                .at(span_of(0), format!("a `{ty}`"))
                                .help("`rank(candidate.seniority)` gives the position on the ladder, from 0"),
                        );
                        Value::number(Interval::count())
                    }
                }
            }
            _ => Value::error(),
        };
        out.key = key;
        out.abstains |= abstains;
        out
    }

    pub(super) fn call_user(
        &mut self,
        id: FnId,
        func: &Ident,
        args: &[Expr],
        span: Span,
        env: &Env,
    ) -> Value {
        let Some(def) = self.program.function(id) else {
            return Value::error();
        };
        let values: Vec<Value> = args.iter().map(|a| self.expr(a, env)).collect();
        let want = def.params.len();
        if args.len() != want {
            let params: Vec<String> = def
                .params
                .iter()
                .map(|(n, t)| format!("{n}: {}", self.program.type_name(t)))
                .collect();
            let signature = format!(
                "{}({}) -> {}",
                func.name,
                params.join(", "),
                self.program.type_name(&def.result)
            );
            let names: Vec<&str> = def.params.iter().map(|(n, _)| n.as_str()).collect();
            self.report(
                arity_diagnostic(&func.name, &names, false, args, span)
                    .help(format!("the signature is `{signature}`")),
            );
            let mut v = Value::of(def.result.clone());
            if let Some(r) = &def.decl.declared_range {
                v.range = Interval::closed(r.lo, r.hi);
            }
            return v;
        }
        for ((v, a), (pname, pty)) in values.iter().zip(args).zip(&def.params) {
            if !v.ty.fits(pty) {
                let (want_s, got_s) = (self.program.type_name(pty), self.program.type_name(&v.ty));
                self.report(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!(
                            "`{}` expects a `{want_s}` for `{pname}`, found a `{got_s}`",
                            func.name
                        ),
                    )
                    .at(a.span, format!("a `{got_s}`"))
                    .with(def.decl.span, "the function is defined here")
                    .help(format!("pass a `{want_s}`")),
                );
            } else {
                self.no_text(v, a.span);
            }
        }
        let key = call_key(&func.name, &values);
        let abstains = values.iter().any(|v| v.abstains);
        let mut out = if let Some(r) = &def.decl.declared_range {
            Value {
                abstains,
                ..Value::number(Interval::closed(r.lo, r.hi))
            }
        } else if self.calls.contains(&id) || self.calls.len() > 32 {
            Value::of(def.result.clone())
        } else {
            // Evaluate the body with the arguments' ranges: a call-site view of the function,
            // once for each view of the arguments.
            let view = format!(
                "{id:?}|{}|{:?}",
                self.calls.len(),
                values
                    .iter()
                    .map(|v| (v.range, v.constant.as_deref()))
                    .collect::<Vec<_>>()
            );
            let mut fenv = Env {
                scope: def.scope,
                ..Env::default()
            };
            for ((pname, pty), v) in def.params.iter().zip(&values) {
                let mut pv = Value::of(pty.clone());
                if *pty == Type::Number {
                    pv.range = v.range;
                }
                pv.constant = v.constant.clone();
                fenv.locals.push(Local {
                    name: pname.clone(),
                    value: pv,
                    span: def.decl.name.span,
                    use_slot: None,
                });
            }
            let v = match self.call_views.get(&view) {
                Some(v) => v.clone(),
                None => {
                    let body = def.decl.body.clone();
                    self.calls.push(id);
                    let v = self.quietly(|c| c.expr(&body, &fenv));
                    self.calls.pop();
                    self.call_views.insert(view, v.clone());
                    v
                }
            };
            let result = def.result.clone();
            Value {
                ty: result,
                abstains: abstains || v.abstains,
                ..v
            }
        };
        if out.ty != Type::Number {
            out.range = Interval::TOP;
        }
        out.ty = def.result.clone();
        out.key = key;
        out
    }

    pub(super) fn lookup_table(
        &mut self,
        table: &Ident,
        keys: &[Expr],
        span: Span,
        env: &Env,
    ) -> Value {
        let values: Vec<Value> = keys.iter().map(|k| self.expr(k, env)).collect();
        let id = match self.lookup(env.scope, &table.name) {
            Some(Symbol::Table(id)) => id,
            Some(Symbol::Unresolved) => return Value::error(),
            Some(_) => {
                self.report(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!("`{}` is not a table", table.name),
                    )
                    .at(table.span, "cannot be looked up")
                    .help("`name[key]` reads a `table`; call a function with `name(...)`"),
                );
                return Value::error();
            }
            None => {
                let candidates = self
                    .program
                    .names_where(env.scope, |s| matches!(s, Symbol::Table(_)));
                let mut d =
                    Diagnostic::new(Code::UnknownName, format!("unknown table `{}`", table.name))
                        .at(table.span, "not defined or imported");
                if let Some(best) = did_you_mean(&table.name, candidates.iter().map(String::as_str))
                {
                    d = d.help(format!("did you mean `{best}`?"));
                    self.meant(env.scope, best);
                }
                self.report(d);
                return Value::error();
            }
        };
        let Some(def) = self.program.table(id) else {
            return Value::error();
        };
        if values.len() != def.keys.len() {
            self.report(
                Diagnostic::new(
                    Code::Arity,
                    format!(
                        "table `{}` is keyed by {}, but {} given",
                        table.name,
                        plural(def.keys.len(), "value", "values"),
                        plural(values.len(), "was", "were")
                    ),
                )
                .at(span, "the lookup")
                .help(format!(
                    "look it up with {} key{}",
                    def.keys.len(),
                    if def.keys.len() == 1 { "" } else { "s" }
                )),
            );
        } else {
            for ((v, k), want) in values.iter().zip(keys).zip(&def.keys) {
                let want = want.clone();
                self.expect(
                    v,
                    &want,
                    k.span,
                    "a table key has the type the table declares",
                );
            }
        }
        let range = table_range(def);
        let mut out = Value::of(def.value.clone());
        if def.value == Type::Number {
            out.range = range;
        }
        out.abstains = values.iter().any(|v| v.abstains);
        out.key = call_key(&format!("{}[]", table.name), &values);
        out
    }
}
