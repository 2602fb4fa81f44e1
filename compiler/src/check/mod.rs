//! The checker: everything about a policy that can be known before any data is seen. Functions
//! and tables of every loaded module, then the policy's dimensions (types, score ranges, grade
//! bands), weights, rules, the overall grade, examples and pipelines. Every problem is reported;
//! checking goes on after the first.

mod examples;
pub mod expr;
pub mod interval;
pub mod pipeline;
pub mod prelude;

use crate::diagnostics::{Code, Diagnostic, Diagnostics, suggestion_help};
use crate::resolve::{EntityId, FnId, Program, ScopeId, Symbol, Type};
use crate::source::Span;
use crate::syntax::ast::*;
use expr::{Checker, Env, Facts, Local, Value};
use interval::{Cmp, Interval, Truth};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The overall grade of a pair that an `exclude` rule removed.
pub const EXCLUDED: &str = "excluded";

/// What the checker learned about one dimension.
#[derive(Clone, Debug)]
pub struct DimensionInfo {
    pub name: String,
    pub weight: f64,
    pub range: Interval,
    pub abstains: bool,
    pub grades: Vec<String>,
}

/// What the checker learned about the policy, for lowering and for tools.
#[derive(Clone, Debug, Default)]
pub struct PolicyInfo {
    pub name: String,
    pub roles: Vec<(String, EntityId)>,
    pub dimensions: Vec<DimensionInfo>,
    pub overall_grades: Vec<String>,
    pub rules: Vec<String>,
    pub min_coverage: f64,
}

/// Imported names that were used, by scope and name.
pub(crate) type UsedImports = std::collections::HashSet<(ScopeId, String)>;

/// Checks every function and table of the program (each once, in its own scope); returns the
/// imported names they used.
pub(crate) fn check_definitions(program: &Program, diagnostics: &mut Diagnostics) -> UsedImports {
    let mut checker = Checker::new(program, diagnostics);
    recursion(&mut checker);
    for (i, def) in program.functions.iter().enumerate() {
        let mut env = Env {
            scope: def.scope,
            ..Env::default()
        };
        for (name, ty) in &def.params {
            let mut v = Value::of(ty.clone());
            if *ty == Type::Number {
                v.range = Interval::TOP;
            }
            env.locals.push(Local {
                name: name.clone(),
                value: v,
                span: def.decl.name.span,
                use_slot: None,
            });
        }
        let v = checker.expr(&def.decl.body, &env);
        if !v.ty.fits(&def.result) && !def.result.is_error() {
            let (want, got) = (program.type_name(&def.result), program.type_name(&v.ty));
            checker.report(
                Diagnostic::new(
                    Code::TypeMismatch,
                    format!(
                        "`{}` is declared to give a `{want}`, but its body gives a `{got}`",
                        def.decl.name.name
                    ),
                )
                .at(def.decl.body.span, format!("a `{got}`"))
                .with(def.decl.result.span, "declared here")
                .help(format!(
                    "change the declared result to `{got}`, or the body to give a `{want}`"
                )),
            );
        }
        if let Some(r) = &def.decl.declared_range {
            if def.result != Type::Number {
                checker.report(
                    Diagnostic::new(
                        Code::DeclaredRange,
                        "only a `number` result can declare a range",
                    )
                    .at(r.span, "a range on a non-number")
                    .help("remove `in [..]`"),
                );
            } else if r.lo > r.hi {
                checker.report(
                    Diagnostic::new(
                        Code::DeclaredRange,
                        format!(
                            "the declared range starts at {} and ends below it at {}",
                            r.lo, r.hi
                        ),
                    )
                    .at(r.span, "empty range")
                    .help("write the lower bound first: `in [lo, hi]`"),
                );
            } else {
                let declared = Interval::closed(r.lo, r.hi);
                let breaks = (v.range.is_bounded() && !v.range.within(&declared))
                    || v.range.meet(&declared).is_empty();
                if breaks && v.ty == Type::Number {
                    checker.report(
                        Diagnostic::new(
                            Code::DeclaredRange,
                            format!("`{}` is declared to stay in {declared}, but its body can give {}", def.decl.name.name, v.range),
                        )
                        .at(def.decl.body.span, format!("can reach {}", v.range))
                        .with(r.span, "declared here")
                        .help("fix the body, clamp it with `clamp(..., lo, hi)`, or widen the declared range"),
                    );
                }
            }
        }
        let _ = i;
    }
    for def in &program.tables {
        check_table(&mut checker, def);
    }
    checker.used_imports
}

/// Reports functions that call themselves, directly or through others.
fn recursion(checker: &mut Checker<'_>) {
    let program = checker.program;
    let mut edges: BTreeMap<FnId, Vec<(FnId, Span)>> = BTreeMap::new();
    for (i, def) in program.functions.iter().enumerate() {
        let mut calls = Vec::new();
        collect_calls(&def.decl.body, &mut calls);
        let targets = calls
            .into_iter()
            .filter_map(|(name, span)| match program.lookup(def.scope, &name) {
                Some(Symbol::Fn(id)) => Some((id, span)),
                _ => None,
            })
            .collect();
        edges.insert(FnId(i), targets);
    }
    for (start, targets) in &edges {
        for (first, span) in targets {
            // Is `start` reachable from `first`?
            let mut stack = vec![*first];
            let mut seen = BTreeSet::new();
            let mut cyclic = false;
            while let Some(f) = stack.pop() {
                if f == *start {
                    cyclic = true;
                    break;
                }
                if seen.insert(f) {
                    stack.extend(edges.get(&f).into_iter().flatten().map(|(t, _)| *t));
                }
            }
            if cyclic {
                let name = program
                    .function(*start)
                    .map_or(String::new(), |d| d.decl.name.name.clone());
                let direct = first == start;
                checker.report(
                    Diagnostic::new(
                        Code::RecursiveFunction,
                        if direct {
                            format!("`{name}` calls itself")
                        } else {
                            format!("`{name}` calls itself through other functions")
                        },
                    )
                    .at(*span, "this call leads back to it")
                    .help("functions cannot recurse, so labeling always finishes; write the steps out, or use a table"),
                );
            }
        }
    }
}

fn collect_calls(e: &Expr, out: &mut Vec<(String, Span)>) {
    visit(e, &mut |e| {
        if let ExprKind::Call { func, .. } = &e.kind {
            out.push((func.name.clone(), func.span));
        }
    });
}

/// Calls `f` on `e` and every expression inside it.
pub fn visit<'e>(e: &'e Expr, f: &mut dyn FnMut(&'e Expr)) {
    f(e);
    match &e.kind {
        ExprKind::List(items) => items.iter().for_each(|i| visit(i, f)),
        ExprKind::Call { args, .. } => args.iter().for_each(|i| visit(i, f)),
        ExprKind::Lookup { keys, .. } => keys.iter().for_each(|i| visit(i, f)),
        ExprKind::Unary { operand, .. } => visit(operand, f),
        ExprKind::Binary { lhs, rhs, .. } => {
            visit(lhs, f);
            visit(rhs, f);
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            visit(cond, f);
            visit(then, f);
            visit(otherwise, f);
        }
        ExprKind::Match { scrutinee, arms } => {
            visit(scrutinee, f);
            arms.iter().for_each(|a| visit(&a.body, f));
        }
        ExprKind::When { arms, otherwise } => {
            for a in arms {
                visit(&a.condition, f);
                visit(&a.body, f);
            }
            if let Some(o) = otherwise {
                visit(o, f);
            }
        }
        ExprKind::Paren(inner) => visit(inner, f),
        _ => {}
    }
}

fn check_table(checker: &mut Checker<'_>, def: &crate::resolve::TableDef) {
    let env = Env {
        scope: def.scope,
        ..Env::default()
    };
    let value_ty = def.value.clone();
    let literal_ty = |c: &mut Checker<'_>, l: &Literal| -> Value {
        match &l.kind {
            LiteralKind::Number(n) | LiteralKind::Percent(n) => Value::number(Interval::point(*n)),
            LiteralKind::String(s) => Value {
                constant: Some(s.clone()),
                ..Value::of(Type::String)
            },
            LiteralKind::Bool(_) => Value::of(Type::Bool),
            LiteralKind::Name(names) => c.expr_raw(
                &Expr {
                    kind: ExprKind::Path(names.clone()),
                    span: l.span,
                },
                &env,
            ),
            LiteralKind::List(_) | LiteralKind::Abstain => Value::error(),
        }
    };
    let d = literal_ty(checker, &def.decl.default);
    checker.expect(
        &d,
        &value_ty,
        def.decl.default.span,
        "the default has the table's value type",
    );
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    for entry in &def.decl.entries {
        if entry.keys.len() != def.keys.len() {
            checker.report(
                Diagnostic::new(
                    Code::Arity,
                    format!(
                        "this entry has {} keys, but the table is keyed by {}",
                        entry.keys.len(),
                        def.keys.len()
                    ),
                )
                .at(entry.span, "wrong number of keys")
                .help("write one key per key type declared after the table's name"),
            );
        } else {
            for (k, want) in entry.keys.iter().zip(&def.keys) {
                let v = literal_ty(checker, k);
                checker.expect(&v, want, k.span, "a key has the type the table declares");
            }
        }
        let v = literal_ty(checker, &entry.value);
        checker.expect(
            &v,
            &value_ty,
            entry.value.span,
            "a value has the table's value type",
        );
        let text = program_key(&entry.keys);
        if let Some(prev) = seen.get(&text) {
            checker.report(
                Diagnostic::new(Code::Duplicate, format!("the key {text} is listed twice"))
                    .at(entry.span, "listed again")
                    .with(*prev, "first listed here")
                    .help("keep one entry per key"),
            );
        } else {
            seen.insert(text, entry.span);
        }
    }
}

fn program_key(keys: &[Literal]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| match &k.kind {
            LiteralKind::Number(n) | LiteralKind::Percent(n) => format!("{n}"),
            LiteralKind::String(s) => format!("\"{s}\""),
            LiteralKind::Bool(b) => b.to_string(),
            LiteralKind::Name(names) => names
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join("."),
            _ => "?".to_string(),
        })
        .collect();
    format!("({})", parts.join(", "))
}

/// Checks a policy's own items in its scope.
pub(crate) fn check_policy(
    program: &Program,
    scope: ScopeId,
    policy: &PolicyDecl,
    used_by_definitions: &UsedImports,
    diagnostics: &mut Diagnostics,
) -> PolicyInfo {
    let mut checker = Checker::new(program, diagnostics);
    checker
        .used_imports
        .extend(used_by_definitions.iter().cloned());
    let mut info = PolicyInfo {
        name: policy.name.name.clone(),
        min_coverage: 0.5,
        ..PolicyInfo::default()
    };

    // The pair.
    let pairs: Vec<&PairDecl> = policy
        .items
        .iter()
        .filter_map(|i| if let Item::Pair(p) = i { Some(p) } else { None })
        .collect();
    for extra in pairs.iter().skip(1) {
        checker.report(
            Diagnostic::new(Code::MisplacedItem, "a policy declares its pair once")
                .at(extra.span, "a second `pair`")
                .help("keep one `pair query: A, candidate: B`"),
        );
    }
    if let Some(pair) = pairs.first() {
        for role in [&pair.query, &pair.candidate] {
            match program.lookup(scope, &role.entity.name) {
                Some(Symbol::Entity(id)) => info.roles.push((role.name.name.clone(), id)),
                _ => {
                    let entities = program.names_where(scope, |s| matches!(s, Symbol::Entity(_)));
                    let mut d = Diagnostic::new(
                        Code::UnknownType,
                        format!("unknown entity `{}`", role.entity.name),
                    )
                    .at(role.entity.span, "not an entity");
                    if let Some(h) = suggestion_help(
                        &role.entity.name,
                        "entities",
                        entities.iter().map(String::as_str),
                    ) {
                        d = d.help(h);
                    }
                    checker.report(d);
                }
            }
        }
        if pair.query.name.name == pair.candidate.name.name {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("both roles are named `{}`", pair.query.name.name),
                )
                .at(pair.candidate.name.span, "same name as the first role")
                .help("name the roles differently, like `query` and `candidate`"),
            );
        }
    } else {
        checker.report(
            Diagnostic::new(
                Code::IncompletePolicy,
                format!("policy `{}` declares no pair", policy.name.name),
            )
            .at(policy.name.span, "what does it compare?")
            .help("declare the two sides, like `pair query: Job, candidate: Candidate`"),
        );
    }

    let mut coverage_seen: Option<Span> = None;
    for item in &policy.items {
        if let Item::MinCoverage(m) = item {
            if let Some(prev) = coverage_seen.replace(m.span) {
                checker.report(
                    Diagnostic::new(Code::Duplicate, "`min_coverage` is given twice")
                        .at(m.span, "given again here")
                        .with(prev, "first given here")
                        .help("keep one `min_coverage`"),
                );
            }
            if !(m.value > 0.0 && m.value <= 1.0) {
                checker.report(
                    Diagnostic::new(
                        Code::MinCoverage,
                        format!("`min_coverage` is {}%, outside (0%, 100%]", m.value * 100.0),
                    )
                    .at(m.span, "out of range")
                    .help("give the share of the weight that must vote, like `min_coverage 50%`"),
                );
            } else {
                info.min_coverage = m.value;
            }
        }
    }

    // Without a resolved pair, every `query.x` would be reported again: the pair's own error says it.
    let pair_failed = pairs.first().is_none_or(|_| info.roles.len() < 2)
        || info.roles.first().map(|r| &r.0) == info.roles.get(1).map(|r| &r.0);
    let mut elsewhere: Vec<expr::Elsewhere> = Vec::new();
    for item in &policy.items {
        if let Item::Dimension(d) = item {
            for l in &d.lets {
                elsewhere.push(expr::Elsewhere {
                    name: l.name.name.clone(),
                    why: format!("`{}` is a `let` of dimension `{}`; a `let` is visible only inside its dimension", l.name.name, d.name.name),
                    owner: d.name.name.clone(),
                    in_dimensions_only: false,
                });
            }
            elsewhere.push(expr::Elsewhere {
                name: d.name.name.clone(),
                why: format!("`{}` is a dimension; dimension scores are read in rules and in `grade overall`, not in other dimensions", d.name.name),
                owner: d.name.name.clone(),
                in_dimensions_only: true,
            });
        }
    }
    let base = Env {
        scope,
        roles: info.roles.clone(),
        silent_unknown: pair_failed,
        elsewhere: std::rc::Rc::new(elsewhere),
        ..Env::default()
    };

    // Dimensions.
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    let dimensions: Vec<&DimensionDecl> = policy
        .items
        .iter()
        .filter_map(|i| {
            if let Item::Dimension(d) = i {
                Some(d)
            } else {
                None
            }
        })
        .collect();
    for d in &dimensions {
        if let Some(prev) = seen.get(&d.name.name) {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("the dimension `{}` is defined twice", d.name.name),
                )
                .at(d.name.span, "defined again here")
                .with(*prev, "first defined here")
                .help("rename one of them, or merge them"),
            );
            continue;
        }
        seen.insert(d.name.name.clone(), d.name.span);
        let env = Env {
            current: Some(d.name.name.clone()),
            ..base.clone()
        };
        let dim = check_dimension(&mut checker, d, &env);
        info.dimensions.push(dim);
    }
    if dimensions.is_empty() {
        checker.report(
            Diagnostic::new(
                Code::IncompletePolicy,
                format!("policy `{}` has no dimensions", policy.name.name),
            )
            .at(policy.name.span, "nothing is scored")
            .help("add at least one `dimension NAME weight 100% { score = ... }`"),
        );
    } else {
        check_weights(&mut checker, &dimensions);
    }

    let rule_env = Env {
        overall: true,
        dimensions: std::rc::Rc::new(
            info.dimensions
                .iter()
                .map(|d| (d.name.clone(), d.range.meet(&Interval::UNIT), d.abstains))
                .collect(),
        ),
        ..base.clone()
    };

    // The overall grade.
    let overall: Vec<&GradeBlock> = policy
        .items
        .iter()
        .filter_map(|i| {
            if let Item::OverallGrade(g) = i {
                Some(g)
            } else {
                None
            }
        })
        .collect();
    for extra in overall.iter().skip(1) {
        checker.report(
            Diagnostic::new(Code::Duplicate, "`grade overall` is declared twice")
                .at(extra.head, "declared again here")
                .help("keep one `grade overall { ... }`"),
        );
    }
    match overall.first() {
        Some(g) => {
            let env = Env {
                score: None,
                ..rule_env.clone()
            };
            info.overall_grades = check_bands(&mut checker, g, &env, "overall", Interval::UNIT);
            if let Some(band) = g.bands.iter().find(|b| b.name.name == EXCLUDED) {
                checker.report(
                    Diagnostic::new(Code::Duplicate, format!("`{EXCLUDED}` is the grade of excluded pairs and cannot name a band"))
                        .at(band.name.span, "reserved")
                        .help("give the band another name; pairs removed by an `exclude` rule get the grade `excluded`"),
                );
            }
        }
        None => checker.report(
            Diagnostic::new(Code::IncompletePolicy, format!("policy `{}` has no `grade overall`", policy.name.name))
                .at(policy.name.span, "pairs get no overall grade")
                .help("add `grade overall { good when overall >= 0.7  fair when overall >= 0.4  poor otherwise }`"),
        ),
    }

    // Rules.
    let rules: Vec<&RuleDecl> = policy
        .items
        .iter()
        .filter_map(|i| if let Item::Rule(r) = i { Some(r) } else { None })
        .collect();
    check_rules(&mut checker, &rules, &rule_env, &info);
    info.rules = rules.iter().map(|r| r.name.name.clone()).collect();

    // Examples.
    let examples: Vec<&ExampleDecl> = policy
        .items
        .iter()
        .filter_map(|i| {
            if let Item::Example(e) = i {
                Some(e)
            } else {
                None
            }
        })
        .collect();
    if !pair_failed {
        examples::check_examples(&mut checker, &examples, &base, &info);
    }

    unused_imports(&mut checker, scope);
    info
}

fn unused_imports(checker: &mut Checker<'_>, scope: ScopeId) {
    let Some(s) = checker.program.scope(scope) else {
        return;
    };
    let imports = s.imports.clone();
    for import in imports {
        if !checker.used_imports.contains(&(scope, import.name.clone()))
            && !type_uses(checker.program, scope, &import.name)
        {
            checker.report(
                Diagnostic::new(
                    Code::UnusedImport,
                    format!(
                        "`{}` is imported from `{}` but never used",
                        import.name, import.module
                    ),
                )
                .at(import.span, "unused")
                .help("remove it from the `use` list"),
            );
        }
    }
}

/// Whether an imported enum or entity is named by a field, parameter or table type in the scope.
fn type_uses(program: &Program, scope: ScopeId, name: &str) -> bool {
    let Some(symbol) = program.lookup(scope, name) else {
        return false;
    };
    let wanted = match symbol {
        Symbol::Enum(id) => Type::Enum(id),
        Symbol::Entity(id) => Type::Entity(id),
        _ => return false,
    };
    let mentions = |t: &Type| -> bool {
        let mut t = t;
        loop {
            if *t == wanted {
                return true;
            }
            t = match t {
                Type::Optional(i) | Type::Set(i) | Type::List(i) => i,
                _ => return false,
            };
        }
    };
    program
        .entities
        .iter()
        .filter(|e| e.scope == scope)
        .any(|e| e.fields.iter().any(|f| mentions(&f.ty)))
        || program
            .functions
            .iter()
            .filter(|f| f.scope == scope)
            .any(|f| f.params.iter().any(|(_, t)| mentions(t)) || mentions(&f.result))
        || program
            .tables
            .iter()
            .filter(|t| t.scope == scope)
            .any(|t| t.keys.iter().any(&mentions) || mentions(&t.value))
}

fn check_dimension(checker: &mut Checker<'_>, d: &DimensionDecl, base: &Env) -> DimensionInfo {
    let mut env = Env {
        abstain_ok: false,
        ..base.clone()
    };
    let mut let_slots: Vec<(usize, &LetStmt)> = Vec::new();
    for l in &d.lets {
        if let Some(prev) = env.locals.iter().find(|p| p.name == l.name.name) {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("`{}` is bound twice in this dimension", l.name.name),
                )
                .at(l.name.span, "bound again here")
                .with(prev.span, "first bound here")
                .help("give the second `let` another name"),
            );
        }
        let v = checker.expr_raw(&l.value, &env);
        checker.no_text(&v, l.value.span);
        let slot = checker.let_uses.len();
        checker.let_uses.push(false);
        let_slots.push((slot, l));
        env.locals.push(Local {
            name: l.name.name.clone(),
            value: v,
            span: l.name.span,
            use_slot: Some(slot),
        });
    }
    let mut range = Interval::UNIT;
    let mut abstains = false;
    match d.score.as_slice() {
        [] => {
            let help = match d.lets.as_slice() {
                [.., last] => format!(
                    "add `score = ...`, a number from 0 to 1, such as `score = {}`",
                    last.name.name
                ),
                [] => "add `score = ...`, a number from 0 to 1".to_string(),
            };
            checker.report(
                Diagnostic::new(
                    Code::ScoreStatement,
                    format!("dimension `{}` has no `score`", d.name.name),
                )
                .at(d.name.span, "nothing is scored")
                .help(help),
            );
            // Its lets are unread because the score is missing: that is the one problem.
            for (slot, _) in &let_slots {
                if let Some(u) = checker.let_uses.get_mut(*slot) {
                    *u = true;
                }
            }
        }
        [s, rest @ ..] => {
            for extra in rest {
                checker.report(
                    Diagnostic::new(
                        Code::ScoreStatement,
                        format!("dimension `{}` has more than one `score`", d.name.name),
                    )
                    .at(extra.span, "a second `score`")
                    .with(s.span, "the first")
                    .help("keep one `score = ...`; name the parts with `let`"),
                );
            }
            let score_env = Env {
                abstain_ok: true,
                ..env.clone()
            };
            let v = checker.expr(&s.value, &score_env);
            abstains = v.abstains;
            if v.ty == Type::Abstain {
                checker.report(
                    Diagnostic::new(
                        Code::ScoreRange,
                        format!("dimension `{}` always abstains", d.name.name),
                    )
                    .at(s.value.span, "never a number")
                    .help("give a number from 0 to 1 in at least one branch"),
                );
            } else if v.ty.is_error() {
                // Already reported; nothing more can be said of its range.
            } else if checker.expect(
                &v,
                &Type::Number,
                s.value.span,
                "a score is a number from 0 to 1",
            ) {
                range = v.range;
                score_range(checker, d, s, &v);
            }
        }
    }
    let band_range = range.meet(&Interval::UNIT);
    let grades = match d.grades.as_slice() {
        [] => Vec::new(),
        [g, rest @ ..] => {
            for extra in rest {
                checker.report(
                    Diagnostic::new(
                        Code::Duplicate,
                        format!("dimension `{}` has two `grade` blocks", d.name.name),
                    )
                    .at(extra.head, "a second `grade`")
                    .help("keep one `grade { ... }`"),
                );
            }
            let genv = Env {
                score: Some(band_range),
                ..env.clone()
            };
            check_bands(checker, g, &genv, "score", band_range)
        }
    };
    for (slot, l) in let_slots {
        if !checker.let_uses.get(slot).copied().unwrap_or(true) {
            checker.report(
                Diagnostic::new(Code::UnusedLet, format!("`{}` is never read", l.name.name))
                    .at(l.name.span, "unused")
                    .help("remove the `let`, or use it in the score"),
            );
        }
    }
    DimensionInfo {
        name: d.name.name.clone(),
        weight: d.weight,
        range,
        abstains,
        grades,
    }
}

fn score_range(checker: &mut Checker<'_>, d: &DimensionDecl, s: &ScoreStmt, v: &Value) {
    if v.range.within(&Interval::UNIT) {
        return;
    }
    if v.range.is_bounded() {
        let side = if v.range.hi > 1.0 {
            format!("above 1 (up to {})", fmt_num(v.range.hi))
        } else {
            format!("below 0 (down to {})", fmt_num(v.range.lo))
        };
        checker.report(
            Diagnostic::new(
                Code::ScoreRange,
                format!("the score of `{}` can reach {}, outside [0, 1]", d.name.name, v.range),
            )
            .at(s.value.span, format!("can go {side}"))
            .help(if v.range.hi > 1.0 {
                "make the weights of the parts add up to at most 1, or wrap the score in `clamp(..., 0, 1)`"
            } else {
                "keep it from going below 0 with `max(0, ...)` or `clamp(..., 0, 1)`"
            }),
        );
    } else {
        checker.report(
            Diagnostic::new(
                Code::ScoreUnproven,
                format!("the checker cannot bound the score of `{}`: it can reach {}", d.name.name, v.range),
            )
            .at(s.value.span, "depends on an unbounded number")
            .help("wrap it in `clamp(..., 0, 1)` or use a function with a declared range; the runtime clamps and counts out-of-range scores"),
        );
    }
}

fn fmt_num(v: f64) -> String {
    Interval::point(v)
        .to_string()
        .trim_start_matches('[')
        .split(',')
        .next()
        .unwrap_or("")
        .to_string()
}

fn check_weights(checker: &mut Checker<'_>, dimensions: &[&DimensionDecl]) {
    let mut sum = 0.0;
    for d in dimensions {
        if !(d.weight > 0.0 && d.weight <= 1.0) {
            checker.report(
                Diagnostic::new(
                    Code::WeightRange,
                    format!("dimension `{}` has weight {}%, outside (0%, 100%]", d.name.name, pct(d.weight)),
                )
                .at(d.weight_span, "out of range")
                .help("a weight is a share of the overall score above 0% and at most 100%; remove a dimension that should not count"),
            );
        }
        sum += d.weight;
    }
    if (sum - 1.0).abs() > 1e-9 {
        let parts: Vec<String> = dimensions
            .iter()
            .map(|d| format!("{} {}%", d.name.name, pct(d.weight)))
            .collect();
        let mut diag = Diagnostic::new(
            Code::WeightsSum,
            format!("the dimension weights add up to {}%, not 100%", pct(sum)),
        );
        for d in dimensions {
            diag = diag.with(d.weight_span, format!("{}%", pct(d.weight)));
        }
        if let Some(first) = dimensions.first() {
            diag.labels.retain(|l| l.span != first.weight_span);
            diag = diag.at(
                first.weight_span,
                format!("{}% (of {}% in all)", pct(first.weight), pct(sum)),
            );
        }
        let gap = 1.0 - sum;
        diag = diag.help(format!(
            "{}: {}; {} {}%",
            "the weights are",
            parts.join(", "),
            if gap > 0.0 { "add" } else { "remove" },
            pct(gap.abs())
        ));
        checker.report(diag);
    }
}

/// Pairs of contradicting rules the checker examines in one policy; a policy with more (a
/// hundred floors above a hundred caps) gets a warning instead of a check that runs for minutes.
const RULE_PAIR_BUDGET: usize = 10_000;

/// Conflicts between pairs of rules that can fire together: a floor above a cap, two different
/// grades set. Only those pairs are examined (found by grouping, not by looking at every pair of
/// rules), first to last, up to `RULE_PAIR_BUDGET`.
fn check_rule_conflicts(checker: &mut Checker<'_>, rules: &[&RuleDecl], env: &Env) {
    let mut caps: Vec<(f64, usize)> = Vec::new();
    let mut grades: Vec<(&str, usize)> = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        match &r.action {
            RuleAction::Cap(c) => caps.push((*c, i)),
            RuleAction::SetGrade(g) => grades.push((g.name.as_str(), i)),
            RuleAction::Floor(_) | RuleAction::Exclude => {}
        }
    }
    caps.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The candidate pairs (earlier rule, later rule), gathered rule by rule until the budget.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut candidates = 0usize;
    // The rule whose pairs were not all gathered.
    let mut cut: Option<usize> = None;
    // `set grade` rules so far, in all and by grade.
    let mut grades_before = 0usize;
    let mut set_before: HashMap<&str, usize> = HashMap::new();
    for (j, r) in rules.iter().enumerate() {
        let room = RULE_PAIR_BUDGET - pairs.len();
        let before = pairs.len();
        match &r.action {
            RuleAction::Floor(f) => {
                let below = caps.partition_point(|(c, _)| c < f);
                candidates += below;
                let kept = caps.iter().take(below.min(room));
                pairs.extend(kept.map(|&(_, i)| (i.min(j), i.max(j))));
            }
            RuleAction::SetGrade(g) => {
                // Each pair of different grades once: from the later rule to the earlier ones.
                let same = set_before.get(g.name.as_str()).copied().unwrap_or(0);
                let different = grades_before - same;
                candidates += different;
                if different > 0 && room > 0 {
                    let earlier = grades
                        .iter()
                        .take_while(|(_, i)| *i < j)
                        .filter(|(name, _)| *name != g.name)
                        .take(room);
                    pairs.extend(earlier.map(|&(_, i)| (i, j)));
                }
                *set_before.entry(g.name.as_str()).or_insert(0) += 1;
                grades_before += 1;
            }
            RuleAction::Cap(_) | RuleAction::Exclude => {}
        }
        if cut.is_none() && candidates > before + room {
            cut = Some(j);
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    if let Some(rule) = cut.and_then(|j| rules.get(j)) {
        checker.report(
            Diagnostic::new(
                Code::RuleConflictsUnchecked,
                format!(
                    "{candidates} pairs of rules could contradict each other; the checker examined {RULE_PAIR_BUDGET}"
                ),
            )
            .at(rule.name.span, "from this rule on, not every pair is examined")
            .help("fewer floors above caps, or fewer `set grade` rules with different grades, keep every pair checked; `rubric stats` on real pairs still counts the rules that fire together"),
        );
    }
    for (i, j) in pairs {
        let (Some(a), Some(b)) = (rules.get(i), rules.get(j)) else {
            continue;
        };
        let what = match (&a.action, &b.action) {
            (RuleAction::Cap(c), RuleAction::Floor(f))
            | (RuleAction::Floor(f), RuleAction::Cap(c)) => {
                format!("a floor of {f} above a cap of {c}")
            }
            (RuleAction::SetGrade(x), RuleAction::SetGrade(y)) => {
                format!("grades `{}` and `{}`", x.name, y.name)
            }
            _ => continue,
        };
        let facts: Facts = checker.facts(&a.condition, env, true);
        let both = checker.quietly(|c| c.expr(&b.condition, &env.with_facts(facts)));
        if both.truth != Truth::False {
            checker.report(
                Diagnostic::new(
                    Code::RuleConflict,
                    format!("the rules `{}` and `{}` contradict each other when both fire", a.name.name, b.name.name),
                )
                .at(b.action_span, what)
                .with(a.action_span, "the other rule's action")
                .help(format!(
                    "make the conditions exclusive (add `and not ...` with the other rule's condition to one of them), or change one action; `{}` comes first",
                    a.name.name
                )),
            );
        }
    }
}

fn pct(v: f64) -> String {
    let p = (v * 100.0 * 1e6).round() / 1e6;
    if p.fract() == 0.0 {
        format!("{p:.0}")
    } else {
        format!("{p}")
    }
}

/// Checks grade bands over `var` (`score` or `overall`), whose values lie in `range`; returns
/// the band names.
fn check_bands(
    checker: &mut Checker<'_>,
    g: &GradeBlock,
    env: &Env,
    var: &str,
    range: Interval,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut before = env.clone();
    let mut otherwise: Option<Span> = None;
    let mut directions: Vec<(Cmp, Span)> = Vec::new();
    let mut shadowed_any = false;
    // A band whose condition always holds: every band after it is unreachable.
    let mut settled: Option<Span> = None;
    for band in &g.bands {
        if names.contains(&band.name.name) {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("the grade `{}` is listed twice", band.name.name),
                )
                .at(band.name.span, "listed again")
                .help("give each band its own name"),
            );
        } else {
            names.push(band.name.name.clone());
        }
        if let Some(o) = otherwise {
            checker.report(
                Diagnostic::new(
                    Code::GradeShadowed,
                    format!(
                        "the band `{}` comes after `otherwise` and can never be chosen",
                        band.name.name
                    ),
                )
                .at(band.span, "never chosen")
                .with(o, "`otherwise` takes every remaining case")
                .help("`otherwise` is the last band; move this band above it"),
            );
            shadowed_any = true;
            continue;
        }
        let Some(cond) = &band.condition else {
            otherwise = Some(band.span);
            continue;
        };
        let v = checker.expr(cond, &before);
        checker.expect(
            &v,
            &Type::Bool,
            cond.span,
            "a band's condition is a comparison, like `score >= 0.8`",
        );
        if let Some(dir) = threshold_direction(cond, var) {
            directions.push((dir, band.span));
        }
        if let Some(always) = settled {
            checker.report(
                Diagnostic::new(Code::GradeShadowed, format!("the band `{}` can never be chosen", band.name.name))
                    .at(cond.span, "an earlier band always holds")
                    .with(always, format!("every `{var}` in {range} is taken here"))
                    .help("list bands from the highest threshold down, like `strong when score >= 0.8` before `partial when score >= 0.5`"),
            );
            shadowed_any = true;
        } else if v.truth == Truth::False {
            // Ruled out by the range of `var` alone, or only by the bands above it (out of order)?
            let alone = checker.quietly(|c| c.expr(cond, env)).truth == Truth::False;
            let (reason, help) = if !alone {
                (
                    "the bands above take every case it covers".to_string(),
                    "list bands from the highest threshold down, like `strong when score >= 0.8` before `partial when score >= 0.5`".to_string(),
                )
            } else if range.lo == range.hi {
                (
                    format!("`{var}` is always {}", range.lo),
                    format!(
                        "`{var}` is the same for every pair, so every pair gets the same grade: compute it from the pair's fields, or remove the bands it never reaches"
                    ),
                )
            } else {
                (
                    format!("`{var}` is always in {range}"),
                    format!(
                        "no `{var}` in {range} meets this condition: change its threshold, or remove the band"
                    ),
                )
            };
            checker.report(
                Diagnostic::new(
                    Code::GradeShadowed,
                    format!("the band `{}` can never be chosen", band.name.name),
                )
                .at(cond.span, reason)
                .help(help),
            );
            shadowed_any = true;
        }
        if v.truth == Truth::True && settled.is_none() {
            settled = Some(cond.span);
        }
        let no = checker.facts(cond, &before, false);
        before = before.with_facts(no);
    }
    if otherwise.is_none() {
        let span = g.bands.last().map_or(g.head, |b| b.span);
        checker.report(
            Diagnostic::new(
                Code::MissingOtherwise,
                "these grade bands have no `otherwise`",
            )
            .at(span, "what grade when no band holds?")
            .with(g.head, "the grade bands")
            .help("end the bands with a catch-all, like `weak otherwise`"),
        );
    }
    if !shadowed_any {
        let down = directions
            .iter()
            .any(|(d, _)| matches!(d, Cmp::Ge | Cmp::Gt));
        let up = directions
            .iter()
            .find(|(d, _)| matches!(d, Cmp::Le | Cmp::Lt));
        if let (true, Some((_, span))) = (down, up) {
            checker.report(
                Diagnostic::new(Code::GradeOrder, "these grade bands mix `>=` and `<` thresholds")
                    .at(*span, "this band counts up while others count down")
                    .with(g.head, "the grade bands")
                    .help(format!("list the bands from the highest `{var}` down, each as `{var} >= threshold`, and end with `otherwise`")),
            );
        }
    }
    names
}

/// A number between 1 and 100 compared in a condition: a threshold written in percent points.
fn percent_points(cond: &Expr, scores: &[&str]) -> Option<f64> {
    let is_score = |e: &Expr| matches!(&e.kind, ExprKind::Path(n) if n.len() == 1 && n.first().is_some_and(|i| scores.contains(&i.name.as_str())));
    let mut found = None;
    visit(cond, &mut |e| {
        if let ExprKind::Binary { op, lhs, rhs, .. } = &e.kind
            && op.is_comparison()
        {
            for (side, other) in [(lhs, rhs), (rhs, lhs)] {
                if let ExprKind::Number(n) = side.kind
                    && n > 1.0
                    && n <= 100.0
                    && is_score(other)
                {
                    found = Some(n);
                }
            }
        }
    });
    found
}

/// The direction of a band written as `var OP constant`.
fn threshold_direction(cond: &Expr, var: &str) -> Option<Cmp> {
    let ExprKind::Binary { op, lhs, rhs, .. } = &cond.kind else {
        return None;
    };
    let is_var = |e: &Expr| matches!(&e.kind, ExprKind::Path(n) if n.len() == 1 && n.first().is_some_and(|i| i.name == var));
    let is_const = |e: &Expr| matches!(e.kind, ExprKind::Number(_) | ExprKind::Percent(_));
    let cmp = match op {
        BinaryOp::Ge => Cmp::Ge,
        BinaryOp::Gt => Cmp::Gt,
        BinaryOp::Le => Cmp::Le,
        BinaryOp::Lt => Cmp::Lt,
        _ => return None,
    };
    if is_var(lhs) && is_const(rhs) {
        Some(cmp)
    } else if is_const(lhs) && is_var(rhs) {
        Some(cmp.flip())
    } else {
        None
    }
}

fn check_rules(checker: &mut Checker<'_>, rules: &[&RuleDecl], env: &Env, info: &PolicyInfo) {
    let mut seen: BTreeMap<String, Span> = BTreeMap::new();
    let mut score_names: Vec<&str> = info.dimensions.iter().map(|d| d.name.as_str()).collect();
    score_names.push("overall");
    for r in rules {
        if let Some(prev) = seen.get(&r.name.name) {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("the rule `{}` is defined twice", r.name.name),
                )
                .at(r.name.span, "defined again here")
                .with(*prev, "first defined here")
                .help("give each rule its own name"),
            );
        } else {
            seen.insert(r.name.name.clone(), r.name.span);
        }
        let v = checker.expr(&r.condition, env);
        checker.expect(
            &v,
            &Type::Bool,
            r.condition.span,
            "a rule's `when` is a condition",
        );
        if v.truth == Truth::False {
            checker.report(
                Diagnostic::new(
                    Code::RuleNeverFires,
                    format!("the rule `{}` can never fire", r.name.name),
                )
                .at(r.condition.span, "this condition never holds")
                .help(match percent_points(&r.condition, &score_names) {
                    Some(n) => format!(
                        "scores run from 0 to 1: did you mean `{}` (or `{n}%`)?",
                        n / 100.0
                    ),
                    None => "fix the condition, or remove the rule".to_string(),
                }),
            );
        }
        match &r.action {
            RuleAction::Cap(x) | RuleAction::Floor(x) if !(0.0..=1.0).contains(x) => {
                let verb = if matches!(r.action, RuleAction::Cap(_)) {
                    "caps"
                } else {
                    "floors"
                };
                checker.report(
                    Diagnostic::new(
                        Code::RuleThreshold,
                        format!(
                            "the rule `{}` {verb} the overall score at {x}, outside [0, 1]",
                            r.name.name
                        ),
                    )
                    .at(r.action_span, "out of range")
                    .help(if *x >= 2.0 && *x <= 100.0 && x.fract() == 0.0 {
                        format!(
                            "caps and floors are scores from 0 to 1: did you mean `{x}%` (or {})?",
                            x / 100.0
                        )
                    } else {
                        "caps and floors are scores from 0 to 1; to drop the pair, use `exclude`"
                            .to_string()
                    }),
                );
            }
            RuleAction::SetGrade(g)
                if !info.overall_grades.is_empty() && !info.overall_grades.contains(&g.name) =>
            {
                let mut d = Diagnostic::new(
                    Code::UnknownGrade,
                    format!("`grade overall` has no grade `{}`", g.name),
                )
                .at(g.span, "not an overall grade");
                if let Some(h) = suggestion_help(
                    &g.name,
                    "overall grades",
                    info.overall_grades.iter().map(String::as_str),
                ) {
                    d = d.help(h);
                }
                checker.report(d);
            }
            _ => {}
        }
        if r.because.as_deref().is_none_or(|b| b.trim().is_empty()) {
            checker.report(
                Diagnostic::new(Code::MissingBecause, format!("the rule `{}` does not say why", r.name.name))
                    .at(r.name.span, "no `because`")
                    .help("end the rule with `because \"...\"`: the reason goes into every label the rule changes"),
            );
        }
    }
    check_rule_conflicts(checker, rules, env);
}
