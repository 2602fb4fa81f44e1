//! A reference evaluator of the labeling semantics, for the differential test. It walks the typed
//! syntax tree (`rubric_compiler::syntax::ast`) with the checker's resolved `Program` (scopes,
//! enums, tables, functions) and reads pairs straight from `serde_json::Value`. It shares no code
//! with the labeling engine, its values or the IR: it is written for obviousness, not speed
//! (strings are cloned, sets are `BTreeSet`s, tables are scanned, lets are evaluated lazily).
//!
//! The semantics it implements (docs/language.md and the engine decisions of the brief):
//! - a dimension's score abstains on `abstain`, on an operation (comparison, arithmetic, call)
//!   with an abstaining or missing operand, on a division by zero and on a non-finite result;
//! - a finite score is clamped to [0, 1]; a function result outside its declared range is
//!   clamped into it;
//! - conditions are three-valued (Kleene): `false and X` and `X and false` are false, `true or
//!   X` and `X or true` are true, otherwise an undecided side makes the result undecided;
//!   `not` of undecided is undecided; `if`, `when` and `match` abstain on an undecided
//!   condition (or an abstaining scrutinee);
//! - a `let` is evaluated only when something reads it, so a `let` that abstains unread does not
//!   make the score abstain;
//! - grade bands are read top to bottom; an undecided band makes the grade absent;
//! - a score (a dimension's after the clamp, the overall's after the mean and again after caps
//!   and floors) is rounded to 6 decimals, half away from zero, before anything reads it;
//! - overall = weighted mean over the voting dimensions, absent when voting weight / total weight
//!   < min_coverage (with a tolerance of 1e-12);
//! - rules read the pre-rule scores and overall and fire when their condition is exactly true;
//!   exclude > caps (lowest) > floors (highest) > set grade (first in declaration order).

use rubric_compiler::Checked;
use rubric_compiler::resolve::{EntityId, Program, ScopeId, Symbol, TableId, Type};
use rubric_compiler::syntax::ast::{
    BinaryOp, DimensionDecl, Expr, ExprKind, GradeBlock, Ident, Item, Literal, LiteralKind,
    RuleAction, RuleDecl, UnaryOp,
};
use serde_json::{Map, Value as Json, json};
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// A score rounded to six decimals (docs/language.md, "Scores are rounded to six decimals").
fn six_decimals(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

/// A number that can be a set element: ordered by `total_cmp`, with -0 read as 0.
#[derive(Clone, Copy, Debug)]
pub struct SetNum(f64);

impl SetNum {
    fn new(x: f64) -> Self {
        SetNum(if x == 0.0 { 0.0 } else { x })
    }
}

impl PartialEq for SetNum {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for SetNum {}
impl PartialOrd for SetNum {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for SetNum {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// An element of a set or list.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    Num(SetNum),
    Bool(bool),
    Str(String),
    /// (enum id, position)
    Enum(usize, usize),
}

/// A value.
#[derive(Clone, Debug, PartialEq)]
pub enum V {
    Num(f64),
    Bool(bool),
    Str(String),
    /// (enum id in the program, position of the value)
    Enum(usize, usize),
    Set(BTreeSet<Elem>),
    List(Vec<Elem>),
    /// A role's record (or an entity-typed function argument): fields by name.
    Record(Rc<BTreeMap<String, V>>),
    /// A `text` field: never read.
    Text,
    /// An optional field with no value.
    Missing,
    /// No value.
    Abstain,
}

impl V {
    fn unusable(&self) -> bool {
        matches!(self, V::Abstain | V::Missing)
    }

    fn elem(&self) -> Option<Elem> {
        Some(match self {
            V::Num(x) => Elem::Num(SetNum::new(*x)),
            V::Bool(b) => Elem::Bool(*b),
            V::Str(s) => Elem::Str(s.clone()),
            V::Enum(e, p) => Elem::Enum(*e, *p),
            _ => return None,
        })
    }

    fn as_set(&self) -> Option<BTreeSet<Elem>> {
        match self {
            V::Set(s) => Some(s.clone()),
            V::List(l) => Some(l.iter().cloned().collect()),
            _ => None,
        }
    }
}

/// Arithmetic gives a number only when the result is finite.
fn finite(x: f64) -> V {
    if x.is_finite() { V::Num(x) } else { V::Abstain }
}

fn truth(v: &V) -> Option<bool> {
    match v {
        V::Bool(b) => Some(*b),
        _ => None,
    }
}

/// `==` on two usable values of one type.
fn equal(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::Num(x), V::Num(y)) => x == y,
        (V::Bool(x), V::Bool(y)) => x == y,
        (V::Str(x), V::Str(y)) => x == y,
        (V::Enum(e, p), V::Enum(f, q)) => e == f && p == q,
        // Two lists compare as sequences; a set and a list compare as sets. (No shipped policy
        // compares lists; the docs do not say.)
        (V::List(x), V::List(y)) => x == y,
        (V::Set(_) | V::List(_), V::Set(_) | V::List(_)) => a.as_set() == b.as_set(),
        _ => false,
    }
}

/// The label of one pair, as the reference computes it.
#[derive(Clone, Debug, PartialEq)]
pub struct RefLabel {
    pub id: String,
    /// Each dimension's name and score (`None`: abstained).
    pub dimensions: Vec<(String, Option<f64>)>,
    /// The grade of each dimension that has grade bands (`None`: no grade).
    pub grades: Vec<(String, Option<String>)>,
    pub overall: Option<f64>,
    pub overall_grade: Option<String>,
    pub rules: Vec<String>,
}

impl RefLabel {
    /// The same JSON shape as `rubric_runtime::label::label_json`.
    pub fn to_json(&self, policy_hash: &str) -> Json {
        let mut dimensions = Map::new();
        for (name, score) in &self.dimensions {
            dimensions.insert(name.clone(), score.map_or(Json::Null, |s| json!(s)));
        }
        let mut grades = Map::new();
        for (name, grade) in &self.grades {
            grades.insert(name.clone(), grade.clone().map_or(Json::Null, Json::String));
        }
        json!({
            "id": self.id,
            "policy": policy_hash,
            "dimensions": dimensions,
            "grades": grades,
            "overall": self.overall.map_or(Json::Null, |o| json!(o)),
            "overall_grade": self.overall_grade.clone().map_or(Json::Null, Json::String),
            "rules": self.rules,
        })
    }
}

/// A local name: a dimension's `let` (evaluated on first read) or a function parameter.
struct Local<'a> {
    name: &'a str,
    expr: Option<&'a Expr>,
    value: RefCell<Option<V>>,
}

/// What an expression can read where it stands.
#[derive(Clone, Copy)]
struct Env<'a> {
    scope: ScopeId,
    /// The pair's roles (empty inside a function).
    roles: &'a [(String, V)],
    /// Lets above (or parameters), innermost last.
    locals: &'a [Local<'a>],
    /// The dimension's score, in its grade bands.
    score: Option<f64>,
    /// The pre-rule overall score (`Some(None)`: absent), in rules and the overall grade.
    overall: Option<Option<f64>>,
    /// Every dimension's pre-rule score, in rules and the overall grade.
    dims: Option<&'a [(String, Option<f64>)]>,
}

/// A table's entries (keys, value) and its default.
type Table = (Vec<(Vec<V>, V)>, V);

pub struct Reference<'c> {
    program: &'c Program,
    scope: ScopeId,
    roles: Vec<(String, EntityId)>,
    dimensions: Vec<&'c DimensionDecl>,
    rules: Vec<&'c RuleDecl>,
    overall_grade: Option<&'c GradeBlock>,
    min_coverage: f64,
    /// Each table's entries (keys, value) and default, as values.
    tables: BTreeMap<usize, Table>,
}

impl<'c> Reference<'c> {
    pub fn new(checked: &'c Checked) -> Self {
        let decl = checked.policy_decl().expect("a policy");
        let info = checked.policy.as_ref().expect("policy info");
        let scope = checked.policy_scope.expect("a policy scope");
        let program = &checked.program;
        let mut dimensions = Vec::new();
        let mut rules = Vec::new();
        let mut overall_grade = None;
        // The default of `min_coverage` is 50% (docs/language.md).
        let mut min_coverage = 0.5;
        for item in &decl.items {
            match item {
                Item::Dimension(d) => dimensions.push(d),
                Item::Rule(r) => rules.push(r),
                Item::OverallGrade(g) => overall_grade = Some(g),
                Item::MinCoverage(m) => min_coverage = m.value,
                _ => {}
            }
        }
        let mut r = Reference {
            program,
            scope,
            roles: info.roles.clone(),
            dimensions,
            rules,
            overall_grade,
            min_coverage,
            tables: BTreeMap::new(),
        };
        for (i, t) in program.tables.iter().enumerate() {
            let entries = t
                .decl
                .entries
                .iter()
                .map(|e| {
                    let keys = e.keys.iter().map(|k| r.literal(k, t.scope)).collect();
                    (keys, r.literal(&e.value, t.scope))
                })
                .collect();
            let default = r.literal(&t.decl.default, t.scope);
            r.tables.insert(i, (entries, default));
        }
        r
    }

    // -----------------------------------------------------------------------------------------
    // Decoding a JSON pair

    fn decode(&self, v: &Json, ty: &Type) -> V {
        match ty {
            Type::Number => V::Num(v.as_f64().expect("a number")),
            Type::Bool => V::Bool(v.as_bool().expect("a bool")),
            Type::String => V::Str(v.as_str().expect("a string").to_string()),
            Type::Text => V::Text,
            Type::Enum(id) => {
                let name = v.as_str().expect("an enum value");
                let def = self.program.enum_def(*id).expect("an enum");
                let pos = def
                    .variants
                    .iter()
                    .position(|x| x == name)
                    .unwrap_or_else(|| panic!("`{name}` is not a value of {}", def.name));
                V::Enum(id.0, pos)
            }
            Type::Set(t) | Type::List(t) => {
                let items: Vec<Elem> = v
                    .as_array()
                    .expect("an array")
                    .iter()
                    .map(|x| self.decode(x, t).elem().expect("a set element"))
                    .collect();
                if matches!(ty, Type::Set(_)) {
                    V::Set(items.into_iter().collect())
                } else {
                    V::List(items)
                }
            }
            other => panic!("a field of type {other:?}"),
        }
    }

    fn record(&self, json: &Json, entity: EntityId) -> V {
        let def = self.program.entity(entity).expect("an entity");
        let mut fields = BTreeMap::new();
        for f in &def.fields {
            let raw = json.get(&f.name).filter(|v| !v.is_null());
            let v = match (&f.ty, raw) {
                (Type::Optional(_), None) => V::Missing,
                (Type::Optional(inner), Some(x)) => self.decode(x, inner),
                (Type::Text, _) => V::Text,
                (ty, Some(x)) => self.decode(x, ty),
                (_, None) => panic!("the required field `{}` is absent", f.name),
            };
            fields.insert(f.name.clone(), v);
        }
        V::Record(Rc::new(fields))
    }

    // -----------------------------------------------------------------------------------------
    // Labeling

    /// Labels one pair given as JSON (the JSON-lines input format).
    pub fn label(&self, pair: &Json) -> RefLabel {
        let id = match pair.get("id") {
            Some(Json::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        };
        let roles: Vec<(String, V)> = self
            .roles
            .iter()
            .map(|(name, entity)| {
                let json = pair.get(name).unwrap_or(&Json::Null);
                (name.clone(), self.record(json, *entity))
            })
            .collect();

        // 1. Every dimension's score and grade.
        let mut scores: Vec<(String, Option<f64>)> = Vec::new();
        let mut grades = Vec::new();
        for d in &self.dimensions {
            let locals: Vec<Local<'_>> = d
                .lets
                .iter()
                .map(|l| Local {
                    name: &l.name.name,
                    expr: Some(&l.value),
                    value: RefCell::new(None),
                })
                .collect();
            let env = Env {
                scope: self.scope,
                roles: &roles,
                locals: &locals,
                score: None,
                overall: None,
                dims: None,
            };
            let score = match d.score.first().map(|s| self.eval(&s.value, &env)) {
                Some(V::Num(x)) if x.is_finite() => Some(six_decimals(x.clamp(0.0, 1.0))),
                Some(V::Num(_) | V::Abstain) | None => None,
                Some(other) => panic!("dimension `{}` gave a non-number: {other:?}", d.name.name),
            };
            if let Some(block) = d.grades.first() {
                let grade = score.and_then(|s| {
                    let band_env = Env {
                        score: Some(s),
                        ..env
                    };
                    self.band(block, &band_env)
                });
                grades.push((d.name.name.clone(), grade));
            }
            scores.push((d.name.name.clone(), score));
        }

        // 2. The weighted mean over the dimensions that voted, summed in declaration order.
        let mut total = 0.0;
        let mut voting = 0.0;
        let mut sum = 0.0;
        for (d, (_, s)) in self.dimensions.iter().zip(&scores) {
            total += d.weight;
            if let Some(s) = s {
                sum += d.weight * s;
                voting += d.weight;
            }
        }
        let mean = if voting > 0.0 && voting / total >= self.min_coverage - 1e-12 {
            Some(six_decimals(sum / voting))
        } else {
            None
        };

        // 3. Rules, all against the pre-rule scores and mean.
        let rule_env = Env {
            scope: self.scope,
            roles: &roles,
            locals: &[],
            score: None,
            overall: Some(mean),
            dims: Some(&scores),
        };
        let fired: Vec<&RuleDecl> = self
            .rules
            .iter()
            .copied()
            .filter(|r| truth(&self.eval(&r.condition, &rule_env)) == Some(true))
            .collect();
        let excludes: Vec<String> = fired
            .iter()
            .filter(|r| matches!(r.action, RuleAction::Exclude))
            .map(|r| r.name.name.clone())
            .collect();
        let (overall, overall_grade, rules) = if !excludes.is_empty() {
            (Some(0.0), Some("excluded".to_string()), excludes)
        } else if let Some(mean) = mean {
            let mut o = mean;
            let caps: Vec<f64> = fired
                .iter()
                .filter_map(|r| match r.action {
                    RuleAction::Cap(c) => Some(c),
                    _ => None,
                })
                .collect();
            let floors: Vec<f64> = fired
                .iter()
                .filter_map(|r| match r.action {
                    RuleAction::Floor(f) => Some(f),
                    _ => None,
                })
                .collect();
            if let Some(lowest) = caps.iter().copied().reduce(f64::min) {
                o = o.min(lowest);
            }
            if let Some(highest) = floors.iter().copied().reduce(f64::max) {
                o = o.max(highest);
            }
            let o = six_decimals(o);
            let grade_env = Env {
                overall: Some(Some(o)),
                ..rule_env
            };
            let mut grade = self.overall_grade.and_then(|g| self.band(g, &grade_env));
            if let Some(set) = fired.iter().find_map(|r| match &r.action {
                RuleAction::SetGrade(g) => Some(g.name.clone()),
                _ => None,
            }) {
                grade = Some(set);
            }
            // `fired` is in declaration order; excludes did not fire here.
            let recorded = fired.iter().map(|r| r.name.name.clone()).collect();
            (Some(o), grade, recorded)
        } else {
            (None, None, Vec::new())
        };

        RefLabel {
            id,
            dimensions: scores,
            grades,
            overall,
            overall_grade,
            rules,
        }
    }

    /// The first band that holds; `None` when a band's condition is undecided first.
    fn band(&self, block: &GradeBlock, env: &Env<'_>) -> Option<String> {
        for b in &block.bands {
            let holds = match &b.condition {
                None => Some(true),
                Some(c) => truth(&self.eval(c, env)),
            };
            match holds {
                Some(true) => return Some(b.name.name.clone()),
                Some(false) => {}
                None => return None,
            }
        }
        None
    }

    // -----------------------------------------------------------------------------------------
    // Names

    /// A literal (table key or value, `match` pattern), resolved in a scope.
    fn literal(&self, lit: &Literal, scope: ScopeId) -> V {
        match &lit.kind {
            LiteralKind::Number(n) | LiteralKind::Percent(n) => V::Num(*n),
            LiteralKind::String(s) => V::Str(s.clone()),
            LiteralKind::Bool(b) => V::Bool(*b),
            LiteralKind::Name(names) => self.enum_value(names, scope).unwrap_or(V::Abstain),
            LiteralKind::List(items) => V::List(
                items
                    .iter()
                    .filter_map(|i| self.literal(i, scope).elem())
                    .collect(),
            ),
            LiteralKind::Abstain => V::Abstain,
        }
    }

    /// `Enum.value`, or a bare `value` of the one enum in scope that has it.
    fn enum_value(&self, names: &[Ident], scope: ScopeId) -> Option<V> {
        match names {
            [e, v] => match self.program.lookup(scope, &e.name)? {
                Symbol::Enum(id) => {
                    let def = self.program.enum_def(id)?;
                    let pos = def.variants.iter().position(|x| *x == v.name)?;
                    Some(V::Enum(id.0, pos))
                }
                _ => None,
            },
            [v] => {
                let s = self.program.scope(scope)?;
                s.names.values().find_map(|b| match b.symbol {
                    Symbol::Enum(id) => {
                        let def = self.program.enum_def(id)?;
                        let pos = def.variants.iter().position(|x| *x == v.name)?;
                        Some(V::Enum(id.0, pos))
                    }
                    _ => None,
                })
            }
            _ => None,
        }
    }

    fn local(&self, name: &str, env: &Env<'_>) -> Option<V> {
        let i = env.locals.iter().rposition(|l| l.name == name)?;
        let local = env.locals.get(i)?;
        if let Some(v) = local.value.borrow().as_ref() {
            return Some(v.clone());
        }
        // A `let`, read for the first time: it reads the pair and the lets above it only.
        let expr = local.expr?;
        let let_env = Env {
            locals: env.locals.get(..i).unwrap_or(&[]),
            score: None,
            overall: None,
            dims: None,
            ..*env
        };
        let v = self.eval(expr, &let_env);
        *local.value.borrow_mut() = Some(v.clone());
        Some(v)
    }

    fn path(&self, names: &[Ident], env: &Env<'_>) -> V {
        let Some(first) = names.first() else {
            return V::Abstain;
        };
        let rest = names.get(1..).unwrap_or(&[]);
        let with_fields = |v: V| -> V {
            rest.iter().fold(v, |v, f| match v {
                V::Record(r) => r.get(&f.name).cloned().unwrap_or(V::Abstain),
                _ => V::Abstain,
            })
        };
        if let Some(v) = self.local(&first.name, env) {
            return with_fields(v);
        }
        if first.name == "score"
            && let Some(s) = env.score
        {
            return V::Num(s);
        }
        if first.name == "overall"
            && let Some(o) = env.overall
        {
            return o.map_or(V::Abstain, V::Num);
        }
        if let Some((_, record)) = env.roles.iter().find(|(r, _)| *r == first.name) {
            return with_fields(record.clone());
        }
        if let Some(dims) = env.dims
            && let Some((_, s)) = dims.iter().find(|(d, _)| *d == first.name)
        {
            return s.map_or(V::Abstain, V::Num);
        }
        self.enum_value(names, env.scope)
            .unwrap_or_else(|| panic!("cannot resolve `{}`", first.name))
    }

    // -----------------------------------------------------------------------------------------
    // Expressions

    fn eval(&self, e: &Expr, env: &Env<'_>) -> V {
        match &e.kind {
            ExprKind::Number(n) | ExprKind::Percent(n) | ExprKind::Duration(n) => V::Num(*n),
            ExprKind::String(s) => V::Str(s.clone()),
            ExprKind::Bool(b) => V::Bool(*b),
            ExprKind::Abstain => V::Abstain,
            ExprKind::Paren(inner) => self.eval(inner, env),
            ExprKind::List(items) => {
                let mut out = Vec::new();
                for i in items {
                    match self.eval(i, env).elem() {
                        Some(x) => out.push(x),
                        None => return V::Abstain,
                    }
                }
                V::List(out)
            }
            ExprKind::Path(names) => self.path(names, env),
            ExprKind::Call { func, args } => self.call(func, args, env),
            ExprKind::Lookup { table, keys } => {
                let mut key = Vec::new();
                for k in keys {
                    let v = self.eval(k, env);
                    if v.unusable() {
                        return V::Abstain;
                    }
                    key.push(v);
                }
                let Some(Symbol::Table(TableId(id))) = self.program.lookup(env.scope, &table.name)
                else {
                    panic!("no table `{}`", table.name);
                };
                let (entries, default) = self.tables.get(&id).expect("a table");
                entries
                    .iter()
                    .find(|(k, _)| {
                        k.len() == key.len() && k.iter().zip(&key).all(|(a, b)| equal(a, b))
                    })
                    .map_or_else(|| default.clone(), |(_, v)| v.clone())
            }
            ExprKind::Unary { op, operand } => match (op, self.eval(operand, env)) {
                (UnaryOp::Not, V::Bool(b)) => V::Bool(!b),
                (UnaryOp::Neg, V::Num(x)) => V::Num(-x),
                _ => V::Abstain,
            },
            ExprKind::Binary { op, lhs, rhs, .. } => self.binary(*op, lhs, rhs, env),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => match truth(&self.eval(cond, env)) {
                Some(true) => self.eval(then, env),
                Some(false) => self.eval(otherwise, env),
                None => V::Abstain,
            },
            ExprKind::When { arms, otherwise } => {
                for arm in arms {
                    match truth(&self.eval(&arm.condition, env)) {
                        Some(true) => return self.eval(&arm.body, env),
                        Some(false) => {}
                        None => return V::Abstain,
                    }
                }
                otherwise.as_ref().map_or(V::Abstain, |o| self.eval(o, env))
            }
            ExprKind::Match { scrutinee, arms } => {
                let s = self.eval(scrutinee, env);
                if s.unusable() {
                    return V::Abstain;
                }
                for arm in arms {
                    if arm.patterns.is_empty()
                        || arm
                            .patterns
                            .iter()
                            .any(|p| equal(&self.literal(p, env.scope), &s))
                    {
                        return self.eval(&arm.body, env);
                    }
                }
                V::Abstain
            }
        }
    }

    fn binary(&self, op: BinaryOp, lhs: &Expr, rhs: &Expr, env: &Env<'_>) -> V {
        match op {
            BinaryOp::And | BinaryOp::Or => {
                // Kleene: the deciding value (false for `and`, true for `or`) on either side
                // decides; two decided sides give the other value; anything else is undecided.
                let decider = op == BinaryOp::Or;
                let a = truth(&self.eval(lhs, env));
                if a == Some(decider) {
                    return V::Bool(decider);
                }
                let b = truth(&self.eval(rhs, env));
                if b == Some(decider) {
                    return V::Bool(decider);
                }
                if a.is_some() && b.is_some() {
                    V::Bool(!decider)
                } else {
                    V::Abstain
                }
            }
            BinaryOp::Coalesce => match self.eval(lhs, env) {
                V::Missing => self.eval(rhs, env),
                v => v,
            },
            _ => {
                let a = self.eval(lhs, env);
                let b = self.eval(rhs, env);
                if a.unusable() || b.unusable() {
                    return V::Abstain;
                }
                match op {
                    BinaryOp::Eq => V::Bool(equal(&a, &b)),
                    BinaryOp::Ne => V::Bool(!equal(&a, &b)),
                    BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
                        let ord = match (&a, &b) {
                            (V::Num(x), V::Num(y)) => x.partial_cmp(y),
                            (V::Enum(_, x), V::Enum(_, y)) => Some(x.cmp(y)),
                            _ => None,
                        };
                        let Some(ord) = ord else {
                            return V::Abstain;
                        };
                        V::Bool(match op {
                            BinaryOp::Lt => ord == Ordering::Less,
                            BinaryOp::Le => ord != Ordering::Greater,
                            BinaryOp::Gt => ord == Ordering::Greater,
                            _ => ord != Ordering::Less,
                        })
                    }
                    BinaryOp::Union | BinaryOp::Intersect => match (a.as_set(), b.as_set()) {
                        (Some(x), Some(y)) => V::Set(if op == BinaryOp::Union {
                            x.union(&y).cloned().collect()
                        } else {
                            x.intersection(&y).cloned().collect()
                        }),
                        _ => V::Abstain,
                    },
                    _ => match (&a, &b) {
                        (V::Num(x), V::Num(y)) => match op {
                            BinaryOp::Add => finite(x + y),
                            BinaryOp::Sub => finite(x - y),
                            BinaryOp::Mul => finite(x * y),
                            BinaryOp::Div if *y == 0.0 => V::Abstain,
                            BinaryOp::Div => finite(x / y),
                            _ => V::Abstain,
                        },
                        _ if op == BinaryOp::Sub => match (a.as_set(), b.as_set()) {
                            (Some(x), Some(y)) => V::Set(x.difference(&y).cloned().collect()),
                            _ => V::Abstain,
                        },
                        _ => V::Abstain,
                    },
                }
            }
        }
    }

    fn call(&self, func: &Ident, args: &[Expr], env: &Env<'_>) -> V {
        if func.name == "missing" {
            let v = args.first().map_or(V::Abstain, |a| self.eval(a, env));
            return V::Bool(v == V::Missing);
        }
        let values: Vec<V> = args.iter().map(|a| self.eval(a, env)).collect();
        let builtin = matches!(
            func.name.as_str(),
            "len" | "abs" | "min" | "max" | "clamp" | "lower" | "contains" | "rank"
        );
        // A call with an abstaining operand abstains. A missing value may only be handed to a
        // function parameter (which then handles it with `missing`/`??`), never to a builtin.
        if values
            .iter()
            .any(|v| *v == V::Abstain || (builtin && *v == V::Missing))
        {
            return V::Abstain;
        }
        let num = |i: usize| match values.get(i) {
            Some(V::Num(x)) => Some(*x),
            _ => None,
        };
        match func.name.as_str() {
            "len" => match values.first() {
                Some(V::Set(s)) => V::Num(s.len() as f64),
                Some(V::List(l)) => V::Num(l.len() as f64),
                Some(V::Str(s)) => V::Num(s.chars().count() as f64),
                _ => V::Abstain,
            },
            "abs" => num(0).map_or(V::Abstain, |x| V::Num(x.abs())),
            "min" | "max" => {
                let mut best: Option<f64> = None;
                for i in 0..values.len() {
                    let Some(x) = num(i) else {
                        return V::Abstain;
                    };
                    best = Some(match best {
                        None => x,
                        Some(b) if func.name == "min" => {
                            if x < b {
                                x
                            } else {
                                b
                            }
                        }
                        Some(b) => {
                            if x > b {
                                x
                            } else {
                                b
                            }
                        }
                    });
                }
                best.map_or(V::Abstain, V::Num)
            }
            "clamp" => match (num(0), num(1), num(2)) {
                (Some(x), Some(lo), Some(hi)) => V::Num(if x < lo {
                    lo
                } else if x > hi {
                    hi
                } else {
                    x
                }),
                _ => V::Abstain,
            },
            "lower" => match values.first() {
                Some(V::Str(s)) => V::Str(s.to_lowercase()),
                _ => V::Abstain,
            },
            "contains" => match (values.first(), values.get(1)) {
                (Some(V::Str(h)), Some(V::Str(n))) => V::Bool(h.contains(n.as_str())),
                (Some(c @ (V::Set(_) | V::List(_))), Some(x)) => match (c.as_set(), x.elem()) {
                    (Some(set), Some(x)) => V::Bool(set.contains(&x)),
                    _ => V::Abstain,
                },
                _ => V::Abstain,
            },
            "rank" => match values.first() {
                Some(V::Enum(_, p)) => V::Num(*p as f64),
                _ => V::Abstain,
            },
            name => {
                let Some(Symbol::Fn(id)) = self.program.lookup(env.scope, name) else {
                    panic!("no function `{name}`");
                };
                let def = self.program.function(id).expect("a function");
                let locals: Vec<Local<'_>> = def
                    .params
                    .iter()
                    .zip(values)
                    .map(|((p, _), v)| Local {
                        name: p,
                        expr: None,
                        value: RefCell::new(Some(v)),
                    })
                    .collect();
                let fn_env = Env {
                    scope: def.scope,
                    roles: &[],
                    locals: &locals,
                    score: None,
                    overall: None,
                    dims: None,
                };
                match (self.eval(&def.decl.body, &fn_env), &def.decl.declared_range) {
                    (V::Num(x), Some(r)) if x < r.lo => V::Num(r.lo),
                    (V::Num(x), Some(r)) if x > r.hi => V::Num(r.hi),
                    (v, _) => v,
                }
            }
        }
    }
}
