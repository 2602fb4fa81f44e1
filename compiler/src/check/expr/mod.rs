//! Expressions: one walk that infers each expression's type, its numeric range (interval
//! analysis), its truth when it can be decided, and whether it may abstain; narrowing by
//! conditions (`not missing(x)`, `s >= 0.5`) flows into branches.

mod calls;
mod names;
mod operators;

use super::interval::{Cmp, Interval, Truth};
use super::prelude::PRELUDE;
use crate::diagnostics::{Code, Diagnostic, Diagnostics, did_you_mean, suggestion_help};
/// The one printer of an expression on one line, the formatter's (kept at this path for callers).
pub use crate::format::expr_text;
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
    /// Call-site views of function bodies already evaluated, by function, call depth and the
    /// arguments' ranges and constants: each function is evaluated once per such argument view,
    /// not once per call (a chain of functions each calling the previous twice doubled the
    /// work per level).
    call_views: std::collections::HashMap<String, Value>,
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
            call_views: std::collections::HashMap::new(),
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
