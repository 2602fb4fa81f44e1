//! Expressions: one walk that infers each expression's type, its numeric range (interval
//! analysis), its truth when it can be decided, and whether it may abstain; narrowing by
//! conditions (`not missing(x)`, `s >= 0.5`) flows into branches.

use super::interval::{Cmp, Interval, Truth};
use super::prelude::PRELUDE;
use crate::diagnostics::{Code, Diagnostic, Diagnostics, did_you_mean, suggestion_help};
use crate::format::expr_text;
use crate::resolve::{EntityId, FnId, Program, ScopeId, Symbol, Type};
use crate::source::Span;
use crate::stdlib;
use crate::syntax::ast::*;
use std::collections::{BTreeSet, HashSet};

/// What the checker knows of an expression.
#[derive(Clone, Debug)]
pub struct Value {
    pub ty: Type,
    /// For numbers: the values it can take.
    pub range: Interval,
    /// For booleans: whether it always or never holds.
    pub truth: Truth,
    /// It may be `abstain` (a score branch, or a division by zero at run time).
    pub abstains: bool,
    /// A stable name for narrowing (`query.location`, `len(required)`).
    pub key: Option<String>,
    /// For a string or enum constant: its value, so equality can be decided.
    pub constant: Option<String>,
    /// For a `let`: the key of the expression it was bound to (`len((a & b))`).
    pub origin: Option<String>,
}

impl Value {
    pub fn of(ty: Type) -> Value {
        let range = if matches!(ty, Type::Number | Type::Error) {
            Interval::TOP
        } else {
            Interval::closed(0.0, 0.0)
        };
        Value {
            ty,
            range,
            truth: Truth::Unknown,
            abstains: false,
            key: None,
            constant: None,
            origin: None,
        }
    }

    pub fn number(range: Interval) -> Value {
        Value {
            range,
            ..Value::of(Type::Number)
        }
    }

    pub fn error() -> Value {
        Value::of(Type::Error)
    }

    fn boolean(truth: Truth) -> Value {
        Value {
            truth,
            ..Value::of(Type::Bool)
        }
    }
}

/// A name bound by `let` or a function parameter.
#[derive(Clone, Debug)]
pub struct Local {
    pub name: String,
    pub value: Value,
    pub span: Span,
    /// Index into [`Checker::let_uses`] for `let`s (parameters are not reported unused).
    pub use_slot: Option<usize>,
}

/// Facts established by conditions on the way to an expression.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub present: Vec<String>,
    pub ranges: Vec<(String, Interval)>,
    pub bools: Vec<(String, bool)>,
    pub equal: Vec<(String, String)>,
}

impl Facts {
    pub fn merge(&mut self, other: Facts) {
        self.present.extend(other.present);
        self.ranges.extend(other.ranges);
        self.bools.extend(other.bools);
        self.equal.extend(other.equal);
    }

    fn range(&self, key: &str) -> Option<Interval> {
        self.ranges
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, r)| *r)
            .reduce(|a, b| a.meet(&b))
    }

    fn boolean(&self, key: &str) -> Option<bool> {
        self.bools
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, b)| *b)
    }
}

/// A name that exists but is not visible everywhere: a `let` (visible in its dimension) or a
/// dimension (readable in rules and `grade overall`, not in other dimensions).
#[derive(Clone, Debug)]
pub struct Elsewhere {
    pub name: String,
    pub why: String,
    /// The dimension where the name is visible (a `let`'s), or which it names (a dimension).
    pub owner: String,
    /// Only a hint inside dimensions (a dimension's name: rules can read it).
    pub in_dimensions_only: bool,
}

/// What an expression may refer to besides its scope's names.
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub scope: ScopeId,
    pub locals: Vec<Local>,
    /// The pair's roles (`query`, `candidate`) and their entities.
    pub roles: Vec<(String, EntityId)>,
    /// `score`, inside a dimension's grade bands.
    pub score: Option<Interval>,
    /// `overall`, in rules and the overall grade.
    pub overall: bool,
    /// Dimension scores by name, in rules and the overall grade: (name, range, may abstain).
    pub dimensions: std::rc::Rc<Vec<(String, Interval, bool)>>,
    /// `abstain` is allowed (a dimension's score).
    pub abstain_ok: bool,
    pub facts: Facts,
    /// Unknown names are not reported (the pair itself failed to resolve, already reported).
    pub silent_unknown: bool,
    /// Names defined elsewhere and not visible here, with why: a help for "unknown name".
    /// Shared by every environment of a policy (cloning an environment must stay cheap).
    pub elsewhere: std::rc::Rc<Vec<Elsewhere>>,
    /// The dimension being checked, if any.
    pub current: Option<String>,
}

impl Env {
    pub fn with_facts(&self, facts: Facts) -> Env {
        let mut env = self.clone();
        env.facts.merge(facts);
        env
    }

    fn local(&self, name: &str) -> Option<&Local> {
        self.locals.iter().rev().find(|l| l.name == name)
    }
}

/// The expression checker, shared by every pass that checks expressions.
pub struct Checker<'a> {
    pub program: &'a Program,
    pub diagnostics: &'a mut Diagnostics,
    /// While above 0, nothing is reported (a function body evaluated again at a call site).
    quiet: u32,
    calls: Vec<FnId>,
    /// Whether each `let` was read, by slot.
    pub let_uses: Vec<bool>,
    /// Imported names that were used, by scope and name.
    pub used_imports: HashSet<(ScopeId, String)>,
    reported: HashSet<(Span, Code, String)>,
    /// While above 0, the expression is an operand (of an operator, a call, a condition), where
    /// `abstain` cannot stand: only a score's result branches may abstain.
    operand: u32,
}

impl<'a> Checker<'a> {
    pub fn new(program: &'a Program, diagnostics: &'a mut Diagnostics) -> Self {
        Checker {
            program,
            diagnostics,
            quiet: 0,
            calls: Vec::new(),
            let_uses: Vec::new(),
            used_imports: HashSet::new(),
            reported: HashSet::new(),
            operand: 0,
        }
    }

    pub fn report(&mut self, diagnostic: Diagnostic) {
        if self.quiet > 0 {
            return;
        }
        if let Some(span) = diagnostic.span()
            && !self
                .reported
                .insert((span, diagnostic.code, diagnostic.message.clone()))
        {
            return;
        }
        self.diagnostics.push(diagnostic);
    }

    /// The diagnostic reported last, to refine its help.
    fn diagnostics_last_mut(&mut self) -> Option<&mut Diagnostic> {
        if self.quiet > 0 {
            return None;
        }
        self.diagnostics.last_mut()
    }

    /// Checks an operand: `abstain` is not allowed inside it.
    fn operand_of<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.operand += 1;
        let out = f(self);
        self.operand -= 1;
        out
    }

    pub fn quietly<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.quiet += 1;
        let out = f(self);
        self.quiet -= 1;
        out
    }

    fn lookup(&mut self, scope: ScopeId, name: &str) -> Option<Symbol> {
        let binding = self.program.scope(scope)?.names.get(name)?;
        if binding.imported && self.quiet == 0 {
            self.used_imports.insert((scope, name.to_string()));
        }
        Some(binding.symbol)
    }

    /// A misspelled name's suggestion counts as a use of the import it names: the typo's own error
    /// explains it, and an "unused import" warning echoing the typo would only add noise.
    fn meant(&mut self, scope: ScopeId, suggestion: &str) {
        self.lookup(scope, suggestion);
    }

    /// An expression whose value is used: an optional that is not known present is reported.
    pub fn expr(&mut self, e: &Expr, env: &Env) -> Value {
        let mut v = self.expr_raw(e, env);
        if let Type::Optional(inner) = &v.ty {
            let what = v.key.clone().unwrap_or_else(|| "this value".to_string());
            self.report(
                Diagnostic::new(Code::UnhandledOptional, format!("`{what}` may be missing here"))
                    .at(e.span, "optional, and not known to be present")
                    .help(format!(
                        "say what happens when it is missing: `when missing({what}) => ...`, `if missing({what}) then ... else ...`, or `{what} ?? default`"
                    )),
            );
            v.ty = (**inner).clone();
        }
        v
    }

    /// An expression as it is, optional or not.
    pub fn expr_raw(&mut self, e: &Expr, env: &Env) -> Value {
        let mut v = self.expr_inner(e, env);
        if let Some(key) = &v.key {
            if (v.ty == Type::Number || v.ty == Type::Optional(Box::new(Type::Number)))
                && let Some(r) = env.facts.range(key)
            {
                v.range = v.range.meet(&r);
            }
            if matches!(v.ty, Type::Optional(_))
                && env.facts.present.iter().any(|k| k == key)
                && let Type::Optional(inner) = v.ty.clone()
            {
                v.ty = *inner;
            }
            if v.ty == Type::Bool
                && let Some(b) = env.facts.boolean(key)
            {
                v.truth = if b { Truth::True } else { Truth::False };
            }
        }
        v
    }

    fn expr_inner(&mut self, e: &Expr, env: &Env) -> Value {
        match &e.kind {
            ExprKind::List(_)
            | ExprKind::Call { .. }
            | ExprKind::Lookup { .. }
            | ExprKind::Unary { .. }
            | ExprKind::Binary { .. }
                if self.operand == 0 =>
            {
                self.operand_of(|c| c.expr_inner(e, env))
            }
            ExprKind::Number(n) => Value::number(Interval::point(*n)),
            ExprKind::Percent(p) => Value::number(Interval::point(*p)),
            ExprKind::Duration(_) => {
                self.report(
                    Diagnostic::new(Code::TypeMismatch, "a duration cannot be used in rubric logic")
                        .at(e.span, "a duration")
                        .help("durations are for monitoring thresholds such as `alert p99_latency > 20ms`"),
                );
                Value::error()
            }
            ExprKind::String(s) => Value {
                constant: Some(s.clone()),
                ..Value::of(Type::String)
            },
            ExprKind::Bool(b) => Value::boolean(if *b { Truth::True } else { Truth::False }),
            ExprKind::Abstain => {
                if !env.abstain_ok || self.operand > 0 {
                    self.report(
                        Diagnostic::new(Code::AbstainMisplaced, "`abstain` can only be a dimension's score")
                            .at(e.span, "no dimension score is produced here")
                            .help("use `abstain` in a dimension's `score = ...` (or one of its branches) to cast no vote"),
                    );
                    return Value::error();
                }
                Value {
                    abstains: true,
                    range: Interval {
                        lo: f64::INFINITY,
                        hi: f64::NEG_INFINITY,
                        lo_open: false,
                        hi_open: false,
                        integer: false,
                    },
                    ..Value::of(Type::Abstain)
                }
            }
            ExprKind::Paren(inner) => self.expr_raw(inner, env),
            ExprKind::List(items) => {
                let mut elem = Type::Anything;
                for item in items {
                    let v = self.expr(item, env);
                    self.no_text(&v, item.span);
                    match elem.unify(&v.ty) {
                        Some(t) => elem = t,
                        None => {
                            let (want, got) =
                                (self.program.type_name(&elem), self.program.type_name(&v.ty));
                            self.report(
                                Diagnostic::new(
                                    Code::TypeMismatch,
                                    format!("a list of `{want}` cannot hold a `{got}`"),
                                )
                                .at(item.span, format!("a `{got}`"))
                                .help("every element of a list has the same type"),
                            );
                        }
                    }
                }
                Value::of(Type::List(Box::new(elem)))
            }
            ExprKind::Path(names) => self.path(names, e.span, env),
            ExprKind::Call { func, args } => self.call(func, args, e.span, env),
            ExprKind::Lookup { table, keys } => self.lookup_table(table, keys, e.span, env),
            ExprKind::Unary { op, operand } => {
                let v = self.expr(operand, env);
                self.no_text(&v, operand.span);
                match op {
                    UnaryOp::Not => {
                        self.expect(&v, &Type::Bool, operand.span, "`not` takes a condition");
                        Value::boolean(!v.truth)
                    }
                    UnaryOp::Neg => {
                        self.expect(&v, &Type::Number, operand.span, "`-` takes a number");
                        Value {
                            abstains: v.abstains,
                            ..Value::number(v.range.neg())
                        }
                    }
                }
            }
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => self.binary(*op, *op_span, lhs, rhs, e.span, env),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                let c = self.operand_of(|s| s.expr(cond, env));
                self.expect(&c, &Type::Bool, cond.span, "`if` needs a condition");
                let yes = self.facts(cond, env, true);
                let no = self.facts(cond, env, false);
                let a = self.expr_raw(then, &env.with_facts(yes));
                let b = self.expr_raw(otherwise, &env.with_facts(no));
                match c.truth {
                    Truth::True => self.join_branches(vec![(a, then.span)]),
                    Truth::False => self.join_branches(vec![(b, otherwise.span)]),
                    Truth::Unknown => self.join_branches(vec![(a, then.span), (b, otherwise.span)]),
                }
            }
            ExprKind::When { arms, otherwise } => {
                let mut branches = Vec::new();
                let mut before = env.clone();
                let mut settled = false;
                for arm in arms {
                    let c = self.operand_of(|s| s.expr(&arm.condition, &before));
                    self.expect(
                        &c,
                        &Type::Bool,
                        arm.condition.span,
                        "`when` needs a condition",
                    );
                    let yes = self.facts(&arm.condition, &before, true);
                    let no = self.facts(&arm.condition, &before, false);
                    let v = self.expr_raw(&arm.body, &before.with_facts(yes));
                    if !settled && c.truth != Truth::False {
                        branches.push((v, arm.body.span));
                    }
                    if c.truth == Truth::True {
                        settled = true;
                    }
                    before = before.with_facts(no);
                }
                match otherwise {
                    Some(body) => {
                        let v = self.expr_raw(body, &before);
                        if !settled {
                            branches.push((v, body.span));
                        }
                    }
                    None => {
                        let span = arms.last().map_or(e.span, |a| a.span);
                        self.report(
                            Diagnostic::new(
                                Code::MissingOtherwise,
                                "this `when` chain has no `otherwise`",
                            )
                            .at(span, "what if no condition holds?")
                            .help("end the chain with `otherwise => ...`"),
                        );
                    }
                }
                self.join_branches(branches)
            }
            ExprKind::Match { scrutinee, arms } => self.match_expr(scrutinee, arms, e.span, env),
        }
    }

    /// Reports a `text` value used in logic; returns whether it was one.
    pub fn no_text(&mut self, v: &Value, span: Span) -> bool {
        let is_text = match &v.ty {
            Type::Text => true,
            Type::Optional(t) => **t == Type::Text,
            _ => false,
        };
        if is_text {
            let what = v.key.clone().unwrap_or_else(|| "this".to_string());
            self.report(
                Diagnostic::new(Code::TextInLogic, format!("`{what}` is free text, which rubric logic cannot read"))
                    .at(span, "a `text` field")
                    .help("text fields are for the models; give the entity a `string` or `set<string>` field for the rubric to use"),
            );
        }
        is_text
    }

    /// Reports a value that does not fit `want`.
    pub fn expect(&mut self, v: &Value, want: &Type, span: Span, context: &str) -> bool {
        if v.ty.fits(want) || (*want == Type::Number && v.ty == Type::Abstain) {
            return true;
        }
        if self.no_text(v, span) {
            return false;
        }
        let (want_s, got_s) = (self.program.type_name(want), self.program.type_name(&v.ty));
        let mut d = Diagnostic::new(
            Code::TypeMismatch,
            format!("expected a `{want_s}`, found a `{got_s}`"),
        )
        .at(span, format!("a `{got_s}`"))
        .help(context.to_string());
        if *want == Type::Bool && v.ty == Type::Number {
            d = d.help(format!("{context}: compare the number, like `x >= 0.5`"));
        }
        self.report(d);
        false
    }

    fn join_branches(&mut self, branches: Vec<(Value, Span)>) -> Value {
        let mut out: Option<Value> = None;
        // A branch already in error says nothing about the others' type or range.
        for (v, span) in branches.into_iter().filter(|(v, _)| !v.ty.is_error()) {
            out = Some(match out {
                None => v,
                Some(acc) => {
                    let ty = match acc.ty.unify(&v.ty) {
                        Some(t) => t,
                        None => {
                            let (a, b) = (
                                self.program.type_name(&acc.ty),
                                self.program.type_name(&v.ty),
                            );
                            self.report(
                                Diagnostic::new(
                                    Code::TypeMismatch,
                                    format!("branches give a `{a}` and a `{b}`"),
                                )
                                .at(span, format!("a `{b}`"))
                                .help("every branch must give the same type"),
                            );
                            Type::Error
                        }
                    };
                    let range = if acc.ty == Type::Abstain {
                        v.range
                    } else if v.ty == Type::Abstain {
                        acc.range
                    } else {
                        acc.range.join(&v.range)
                    };
                    Value {
                        ty,
                        range,
                        truth: acc.truth.join(v.truth),
                        abstains: acc.abstains || v.abstains,
                        key: None,
                        constant: if acc.constant == v.constant {
                            acc.constant
                        } else {
                            None
                        },
                        origin: None,
                    }
                }
            });
        }
        out.unwrap_or_else(Value::error)
    }

    // -----------------------------------------------------------------------------------------
    // Names

    fn path(&mut self, names: &[Ident], span: Span, env: &Env) -> Value {
        let Some(first) = names.first() else {
            return Value::error();
        };
        let key = names
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>()
            .join(".");
        let rest = names.get(1..).unwrap_or(&[]);
        // A local (`let` or parameter).
        if let Some(local) = env.local(&first.name) {
            if let Some(slot) = local.use_slot
                && self.quiet == 0
                && let Some(u) = self.let_uses.get_mut(slot)
            {
                *u = true;
            }
            let mut v = local.value.clone();
            v.origin = v.origin.take().or(v.key.take());
            v.key = Some(first.name.clone());
            return self.fields(v, rest, &key, env);
        }
        if first.name == "score"
            && let Some(range) = env.score
        {
            return Value {
                key: Some("score".to_string()),
                ..Value::number(range)
            };
        }
        if first.name == "overall" && env.overall {
            return Value {
                key: Some("overall".to_string()),
                abstains: true,
                ..Value::number(Interval::UNIT)
            };
        }
        if let Some((_, entity)) = env.roles.iter().find(|(r, _)| *r == first.name) {
            let v = Value {
                key: Some(first.name.clone()),
                ..Value::of(Type::Entity(*entity))
            };
            return self.fields(v, rest, &key, env);
        }
        if let Some((name, range, abstains)) =
            env.dimensions.iter().find(|(d, _, _)| *d == first.name)
        {
            let v = Value {
                key: Some(name.clone()),
                abstains: *abstains,
                ..Value::number(*range)
            };
            if !rest.is_empty() {
                return self.no_fields(&first.name, rest, "a dimension's score");
            }
            return v;
        }
        match self.lookup(env.scope, &first.name) {
            Some(Symbol::Enum(id)) => {
                let Some(def) = self.program.enum_def(id) else {
                    return Value::error();
                };
                let Some(variant) = rest.first() else {
                    self.report(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("`{}` is an enum, not a value", def.name),
                        )
                        .at(span, "an enum")
                        .help(format!(
                            "name one of its values, like `{}.{}`",
                            def.name,
                            def.variants.first().map_or("x", String::as_str)
                        )),
                    );
                    return Value::error();
                };
                if !def.variants.contains(&variant.name) {
                    let mut d = Diagnostic::new(
                        Code::UnknownEnumValue,
                        format!("enum `{}` has no value `{}`", def.name, variant.name),
                    )
                    .at(variant.span, "not one of its values");
                    if let Some(h) = suggestion_help(
                        &variant.name,
                        "values",
                        def.variants.iter().map(String::as_str),
                    ) {
                        d = d.help(h);
                    }
                    self.report(d);
                    return Value::error();
                }
                if rest.len() > 1 {
                    return self.no_fields(
                        &variant.name,
                        rest.get(1..).unwrap_or(&[]),
                        "an enum value",
                    );
                }
                return Value {
                    constant: Some(variant.name.clone()),
                    key: Some(key),
                    ..Value::of(Type::Enum(id))
                };
            }
            Some(Symbol::Unresolved) => return Value::error(),
            Some(Symbol::Entity(_)) | Some(Symbol::Table(_)) | Some(Symbol::Fn(_)) => {
                let what = match self.lookup(env.scope, &first.name) {
                    Some(Symbol::Entity(_)) => "an entity",
                    Some(Symbol::Table(_)) => "a table; look a value up with `name[key]`",
                    _ => "a function; call it with `name(...)`",
                };
                self.report(
                    Diagnostic::new(Code::TypeMismatch, format!("`{}` is {what}", first.name))
                        .at(first.span, "not a value")
                        .help("use a field of the pair, a `let`, or a value"),
                );
                return Value::error();
            }
            None => {}
        }
        // A bare enum value.
        let mut found: Vec<(crate::resolve::EnumId, String)> = Vec::new();
        if let Some(scope) = self.program.scope(env.scope) {
            for binding in scope.names.values() {
                if let Symbol::Enum(id) = binding.symbol
                    && let Some(def) = self.program.enum_def(id)
                    && def.variants.contains(&first.name)
                {
                    found.push((id, def.name.clone()));
                }
            }
        }
        found.dedup();
        match found.as_slice() {
            [(id, enum_name)] => {
                let id = *id;
                let enum_name = enum_name.clone();
                self.mark_enum_used(env.scope, &enum_name);
                if !rest.is_empty() {
                    return self.no_fields(&first.name, rest, "an enum value");
                }
                Value {
                    constant: Some(first.name.clone()),
                    key: Some(format!("{enum_name}.{}", first.name)),
                    ..Value::of(Type::Enum(id))
                }
            }
            [] => {
                self.unknown_name(first, env);
                Value::error()
            }
            many => {
                let enums: Vec<String> = many
                    .iter()
                    .map(|(_, n)| format!("`{n}.{}`", first.name))
                    .collect();
                self.report(
                    Diagnostic::new(
                        Code::AmbiguousName,
                        format!("`{}` is a value of more than one enum", first.name),
                    )
                    .at(first.span, "which one?")
                    .help(format!("write {}", enums.join(" or "))),
                );
                Value::error()
            }
        }
    }

    fn mark_enum_used(&mut self, scope: ScopeId, name: &str) {
        let _ = self.lookup(scope, name);
    }

    fn no_fields(&mut self, name: &str, rest: &[Ident], what: &str) -> Value {
        if let Some(field) = rest.first() {
            self.report(
                Diagnostic::new(
                    Code::UnknownField,
                    format!("`{name}` is {what} and has no field `{}`", field.name),
                )
                .at(field.span, "no such field")
                .help("only the pair's roles (and entity-typed values) have fields"),
            );
        }
        Value::error()
    }

    /// Follows `.field` accesses from an entity-typed value.
    fn fields(&mut self, mut v: Value, rest: &[Ident], key: &str, env: &Env) -> Value {
        let mut path = v.key.clone().unwrap_or_default();
        for field in rest {
            let entity = match &v.ty {
                Type::Entity(id) => *id,
                Type::Error => return Value::error(),
                other => {
                    let ty = self.program.type_name(other);
                    self.report(
                        Diagnostic::new(
                            Code::UnknownField,
                            format!("`{path}` is a `{ty}` and has no field `{}`", field.name),
                        )
                        .at(field.span, "no such field")
                        .help("only entities have fields"),
                    );
                    return Value::error();
                }
            };
            let Some(def) = self.program.entity(entity) else {
                return Value::error();
            };
            let Some(f) = def.field(&field.name) else {
                let mut d = Diagnostic::new(
                    Code::UnknownField,
                    format!("`{}` has no field `{}`", def.name, field.name),
                )
                .at(field.span, format!("not a field of `{}`", def.name));
                let names: Vec<&str> = def.fields.iter().map(|f| f.name.as_str()).collect();
                if let Some(h) = suggestion_help(&field.name, "fields", names.iter().copied()) {
                    d = d.help(h);
                }
                self.report(d);
                return Value::error();
            };
            path = format!("{path}.{}", field.name);
            v = Value {
                key: Some(path.clone()),
                ..Value::of(f.ty.clone())
            };
            if f.ty == Type::Optional(Box::new(Type::Number)) {
                v.range = Interval::TOP;
            }
        }
        let _ = (key, env);
        v
    }

    fn unknown_name(&mut self, name: &Ident, env: &Env) {
        if env.silent_unknown {
            return;
        }
        let hint = env.elsewhere.iter().find(|e| {
            e.name == name.name
                && env.current.as_deref() != Some(e.owner.as_str())
                && (!e.in_dimensions_only || env.current.is_some())
        });
        if let Some(e) = hint {
            let why = e.why.clone();
            self.report(
                Diagnostic::new(
                    Code::UnknownName,
                    format!("`{}` is not visible here", name.name),
                )
                .at(name.span, "defined elsewhere")
                .help(why),
            );
            return;
        }
        if !env.dimensions.is_empty()
            && let Some(best) = did_you_mean(
                &name.name,
                env.dimensions.iter().map(|(d, _, _)| d.as_str()),
            )
        {
            {
                let best = best.to_string();
                self.report(
                    Diagnostic::new(
                        Code::UnknownDimension,
                        format!("the policy has no dimension `{}`", name.name),
                    )
                    .at(name.span, "no such dimension")
                    .help(format!("did you mean `{best}`?")),
                );
                return;
            }
        }
        let mut candidates: Vec<String> = Vec::new();
        candidates.extend(env.locals.iter().map(|l| l.name.clone()));
        candidates.extend(env.roles.iter().map(|(r, _)| r.clone()));
        candidates.extend(env.dimensions.iter().map(|(d, _, _)| d.clone()));
        if env.score.is_some() {
            candidates.push("score".to_string());
        }
        if env.overall {
            candidates.push("overall".to_string());
        }
        if let Some(scope) = self.program.scope(env.scope) {
            for (n, b) in &scope.names {
                candidates.push(n.clone());
                if let Symbol::Enum(id) = b.symbol
                    && let Some(def) = self.program.enum_def(id)
                {
                    candidates.extend(def.variants.iter().cloned());
                }
            }
        }
        let mut d = Diagnostic::new(Code::UnknownName, format!("unknown name `{}`", name.name))
            .at(name.span, "not defined here");
        if let Some(best) = did_you_mean(&name.name, candidates.iter().map(String::as_str)) {
            d = d.help(format!("did you mean `{best}`?"));
            self.meant(env.scope, best);
        } else if name.name == "score" {
            d = d.help("`score` names a dimension's score inside its `grade` bands; elsewhere use the dimension's name");
        } else if name.name == "overall" {
            d = d.help("`overall` is readable in rules and in `grade overall`");
        } else if !env.roles.is_empty() {
            let roles: Vec<String> = env
                .roles
                .iter()
                .map(|(r, _)| format!("`{r}.field`"))
                .collect();
            d = d.help(format!(
                "fields of the pair are read as {}",
                roles.join(" or ")
            ));
        }
        self.report(d);
    }

    // -----------------------------------------------------------------------------------------
    // Calls and tables

    fn call(&mut self, func: &Ident, args: &[Expr], span: Span, env: &Env) -> Value {
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
                }
                self.report(d);
                Value::error()
            }
        }
    }

    /// Whether a native function's call gives as many arguments as its signature names; when not,
    /// reports which parameters are missing or how many arguments are extra.
    fn arity(&mut self, func: &Ident, args: &[Expr], span: Span) -> bool {
        let Some((params, variadic)) = super::prelude::parameters(&func.name) else {
            return true;
        };
        let ok = args.len() == params.len() || (variadic && args.len() > params.len());
        if !ok {
            let mut d = arity_diagnostic(&func.name, &params, variadic, args, span);
            if let Some((sig, _)) = super::prelude::signature(&func.name) {
                d = d.help(format!("the signature is `{sig}`"));
            }
            self.report(d);
        }
        ok
    }

    fn native(&mut self, func: &Ident, args: &[Expr], span: Span, env: &Env) -> Value {
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

    fn call_user(&mut self, id: FnId, func: &Ident, args: &[Expr], span: Span, env: &Env) -> Value {
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
            // Evaluate the body with the arguments' ranges: a call-site view of the function.
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
            let body = def.decl.body.clone();
            let result = def.result.clone();
            self.calls.push(id);
            let v = self.quietly(|c| c.expr(&body, &fenv));
            self.calls.pop();
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

    fn lookup_table(&mut self, table: &Ident, keys: &[Expr], span: Span, env: &Env) -> Value {
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

    // -----------------------------------------------------------------------------------------
    // Operators

    fn binary(
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

    fn compare(
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
    fn arith(
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

    fn element_mismatch(&mut self, op: BinaryOp, op_span: Span, a: &Value, b: &Value) {
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

    fn match_expr(&mut self, scrutinee: &Expr, arms: &[MatchArm], span: Span, env: &Env) -> Value {
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
    fn pattern(&mut self, p: &Literal, s: &Value, env: &Env) -> Option<String> {
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

fn to_cmp(op: BinaryOp) -> Cmp {
    match op {
        BinaryOp::Lt => Cmp::Lt,
        BinaryOp::Le => Cmp::Le,
        BinaryOp::Gt => Cmp::Gt,
        BinaryOp::Ge => Cmp::Ge,
        BinaryOp::Ne => Cmp::Ne,
        _ => Cmp::Eq,
    }
}

/// Whether `a / b` is a share of a whole: `len(x & y) / len(x)` or `len(x - y) / len(x)`, at
/// most 1 because a part of a set is no larger than the set. The one relational fact the
/// interval analysis knows.
fn part_of_whole(a: &Value, b: &Value) -> bool {
    let name = |v: &Value| v.origin.clone().or_else(|| v.key.clone());
    let (Some(part), Some(whole)) = (name(a), name(b)) else {
        return false;
    };
    let Some(set) = whole.strip_prefix("len(").and_then(|w| w.strip_suffix(')')) else {
        return false;
    };
    let Some(inner) = part
        .strip_prefix("len((")
        .and_then(|p| p.strip_suffix("))"))
    else {
        return false;
    };
    inner.starts_with(&format!("{set} & "))
        || inner.ends_with(&format!(" & {set}"))
        || inner.starts_with(&format!("{set} - "))
}

/// The name of an operand in a key: its own key, its constant, or its number.
fn operand_key(v: &Value) -> Option<String> {
    v.key.clone().or_else(|| v.constant.clone()).or_else(|| {
        (v.ty == Type::Number && v.range.lo == v.range.hi && !v.range.lo_open)
            .then(|| format!("{}", v.range.lo))
    })
}

fn call_key(name: &str, args: &[Value]) -> Option<String> {
    let keys: Option<Vec<String>> = args.iter().map(operand_key).collect();
    keys.map(|k| format!("{name}({})", k.join(", ")))
}

/// The range of a number-valued table: its entries and its default.
pub fn table_range(def: &crate::resolve::TableDef) -> Interval {
    let mut range: Option<Interval> = None;
    let values = def
        .decl
        .entries
        .iter()
        .map(|e| &e.value)
        .chain(std::iter::once(&def.decl.default));
    for v in values {
        if let LiteralKind::Number(n) | LiteralKind::Percent(n) = v.kind {
            let p = Interval::point(n);
            range = Some(range.map_or(p, |r| r.join(&p)));
        }
    }
    range.unwrap_or(Interval::TOP)
}

/// The arity error for a call of `name` whose parameters are `params` (more may follow when
/// `variadic`): names the parameters the call leaves out, or underlines the arguments it adds.
fn arity_diagnostic(
    name: &str,
    params: &[&str],
    variadic: bool,
    args: &[Expr],
    span: Span,
) -> Diagnostic {
    let quoted: Vec<String> = params.iter().map(|p| format!("`{p}`")).collect();
    let needs = match (params.len(), variadic) {
        (0, _) => "no arguments".to_string(),
        (n, true) => format!("{n} or more arguments ({}, ...)", quoted.join(", ")),
        (n, false) => format!(
            "{} ({})",
            plural(n, "argument", "arguments"),
            quoted.join(", ")
        ),
    };
    let gives = match args.len() {
        0 => "none".to_string(),
        n => n.to_string(),
    };
    let d = |problem: String| {
        Diagnostic::new(
            Code::Arity,
            format!("`{name}` needs {needs}; this call gives {gives}: {problem}"),
        )
    };
    match (quoted.get(args.len()..), args.get(params.len()..)) {
        (Some(missing @ [_, ..]), _) => d(format!(
            "{} {} missing",
            and_list(missing),
            if missing.len() == 1 { "is" } else { "are" }
        ))
        .at(
            span,
            format!("{} here", plural(args.len(), "argument", "arguments")),
        ),
        (_, Some(extra @ [first, ..])) => {
            let last = extra.last().unwrap_or(first);
            d(format!("{} too many", extra.len())).at(
                first.span.to(last.span),
                plural(extra.len(), "extra argument", "extra arguments"),
            )
        }
        _ => d("the count differs".to_string()).at(span, "this call"),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}
