//! Lowering: a checked policy becomes the three artefacts downstream stages run — the labeling
//! program (one labeling function per dimension, rules, grades), the loss terms and the training
//! plan — plus a source map that points every node back into the policy.

mod clean;
pub mod ir;
pub mod plan;

use crate::check::interval::Interval;
use crate::format::{expr_label, literal_text};
use crate::resolve::{EntityId, EnumId, FnId, Program, ScopeId, Symbol, TableId, Type};
use crate::source::{Sources, Span};
use crate::syntax::ast::*;
use crate::{Checked, PolicyInfo};
use ir::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest condition a clause label shows whole; a longer one is cut, ending in `...`.
const CLAUSE_CONDITION_CHARS: usize = 60;

/// Where a node of an artefact came from, by its path in the artefact.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceMap {
    pub files: Vec<String>,
    pub nodes: BTreeMap<String, SourceLocation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceLocation {
    /// Index into `files`.
    pub file: u32,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl SourceMap {
    fn add(&mut self, sources: &Sources, path: &str, span: Span) {
        let Some(file) = sources.get(span.file) else {
            return;
        };
        let index = match self.files.iter().position(|f| *f == file.name) {
            Some(i) => i,
            None => {
                self.files.push(file.name.clone());
                self.files.len() - 1
            }
        };
        let (line, column) = sources.line_col(span.file, span.start);
        let (end_line, end_column) = sources.line_col(span.file, span.end);
        self.nodes.insert(
            path.to_string(),
            SourceLocation {
                file: u32::try_from(index).unwrap_or(u32::MAX),
                line,
                column,
                end_line,
                end_column,
            },
        );
    }

    /// `file:line:column` of a path, for explanations.
    pub fn describe(&self, path: &str) -> Option<String> {
        let loc = self.nodes.get(path)?;
        let file = self.files.get(loc.file as usize)?;
        Some(format!("{file}:{}:{}", loc.line, loc.column))
    }
}

/// Everything lowering produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Lowered {
    pub labeling: LabelingProgram,
    pub source_map: SourceMap,
    /// Present when the file holds a pipeline for the policy (the first one).
    pub loss_terms: Option<plan::LossTerms>,
    pub training_plan: Option<plan::TrainingPlan>,
}

/// Why a policy could not be lowered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LowerError {
    /// The check reported errors; lowering runs only on a clean policy.
    NotChecked,
    /// The file holds no policy (a module, or a pipeline alone).
    NoPolicy,
    /// A bug: the check let through something lowering cannot give a meaning to. Lowering says
    /// so rather than inventing one.
    Internal(String),
}

impl std::fmt::Display for LowerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LowerError::NotChecked => {
                f.write_str("the policy has errors; fix them before compiling")
            }
            LowerError::NoPolicy => f.write_str("the file holds no policy to compile"),
            LowerError::Internal(what) => write!(
                f,
                "internal error in rubric's lowering: {what}; please report it with the policy"
            ),
        }
    }
}

impl std::error::Error for LowerError {}

/// Lowers a checked policy. The hash is of the canonical form `hash_source` (see
/// [`crate::format::canonical`]), computed by the caller's hasher of choice.
pub fn lower(checked: &Checked, policy_hash: String) -> Result<Lowered, LowerError> {
    if checked.has_errors() {
        return Err(LowerError::NotChecked);
    }
    let (Some(decl), Some(info), Some(scope)) = (
        checked.policy_to_compile(),
        &checked.policy,
        checked.policy_scope,
    ) else {
        return Err(LowerError::NoPolicy);
    };
    let mut l = Lowerer {
        program: &checked.program,
        sources: &checked.sources,
        // The policy's own file (beside a pipeline in its own file, the policy's).
        root: decl.name.span.file,
        info,
        strings: Vec::new(),
        enums: BTreeMap::new(),
        enum_schemas: Vec::new(),
        tables: BTreeMap::new(),
        table_irs: Vec::new(),
        functions: BTreeMap::new(),
        function_irs: Vec::new(),
        clauses: Vec::new(),
        source_map: SourceMap::default(),
        internal: Vec::new(),
    };
    let policy_ref = PolicyRef {
        name: decl.name.name.clone(),
        version: decl.version,
        hash: policy_hash,
    };

    // Entities of the roles, in role order.
    let mut entity_order: Vec<EntityId> = Vec::new();
    let mut roles = Vec::new();
    for (name, entity) in &info.roles {
        let index = match entity_order.iter().position(|e| e == entity) {
            Some(i) => i,
            None => {
                entity_order.push(*entity);
                entity_order.len() - 1
            }
        };
        roles.push(RoleSchema {
            name: name.clone(),
            entity: u32::try_from(index).unwrap_or(u32::MAX),
        });
    }
    let entities = entity_order
        .iter()
        .filter_map(|id| l.program.entity(*id))
        .map(|def| EntitySchema {
            name: def.name.clone(),
            fields: def
                .fields
                .iter()
                .map(|f| {
                    let (ty, optional) = match &f.ty {
                        Type::Optional(inner) => (l.value_type(inner), true),
                        other => (l.value_type(other), false),
                    };
                    FieldSchema {
                        name: f.name.clone(),
                        ty,
                        optional,
                    }
                })
                .collect(),
        })
        .collect();

    let base = LowerEnv {
        scope,
        locals: Vec::new(),
        score: false,
        overall: false,
        dimensions: false,
        in_policy: true,
    };

    let dims: Vec<&DimensionDecl> = decl
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
    let mut dimensions = Vec::new();
    for (i, d) in dims.iter().enumerate() {
        let path = format!("dimensions[{i}]");
        l.source_map.add(l.sources, &path, d.name.span);
        let mut env = base.clone();
        let mut lets = Vec::new();
        for (j, let_stmt) in d.lets.iter().enumerate() {
            let lp = format!("{path}.lets[{j}]");
            let value = l.expr(&let_stmt.value, &env, &lp);
            env.locals.push(let_stmt.name.name.clone());
            lets.push(LetIr {
                name: let_stmt.name.name.clone(),
                value,
            });
        }
        let score = match d.score.first() {
            Some(s) => l.expr(&s.value, &env, &format!("{path}.score")),
            None => l.unresolved(
                format!("the dimension `{}` has no `score`", d.name.name),
                d.name.span,
            ),
        };
        let proven_in_range = info
            .dimensions
            .iter()
            .find(|x| x.name == d.name.name)
            .is_some_and(|x| x.range.within(&Interval::UNIT));
        let band_env = LowerEnv {
            score: true,
            ..env.clone()
        };
        let grades = match d.grades.first() {
            Some(g) => l.bands(g, &band_env, &format!("{path}.grades"), &d.name.name),
            None => Vec::new(),
        };
        dimensions.push(LabelingFunction {
            name: d.name.name.clone(),
            weight: d.weight,
            lets,
            score,
            proven_in_range,
            grades,
        });
    }

    let rule_env = LowerEnv {
        overall: true,
        dimensions: true,
        ..base.clone()
    };
    let mut rules = Vec::new();
    for (i, r) in decl
        .items
        .iter()
        .filter_map(|i| if let Item::Rule(r) = i { Some(r) } else { None })
        .enumerate()
    {
        let path = format!("rules[{i}]");
        l.source_map.add(l.sources, &path, r.name.span);
        let clause = l.clause(
            ClauseKind::Rule,
            &path,
            format!("rule {}", r.name.name),
            true,
            r.name.span,
        );
        let when = l.expr(&r.condition, &rule_env, &format!("{path}.when"));
        let action = match &r.action {
            RuleAction::Cap(x) => RuleActionIr::Cap(*x),
            RuleAction::Floor(x) => RuleActionIr::Floor(*x),
            RuleAction::Exclude => RuleActionIr::Exclude,
            RuleAction::SetGrade(g) => RuleActionIr::SetGrade(g.name.clone()),
        };
        rules.push(RuleIr {
            name: r.name.name.clone(),
            when,
            action,
            because: r.because.clone().unwrap_or_default(),
            clause,
        });
    }

    let overall_grades = match decl.items.iter().find_map(|i| {
        if let Item::OverallGrade(g) = i {
            Some(g)
        } else {
            None
        }
    }) {
        Some(g) => l.bands(g, &rule_env, "overall.grades", "overall"),
        None => Vec::new(),
    };

    if !l.internal.is_empty() {
        return Err(LowerError::Internal(l.internal.join("; ")));
    }
    let labeling = LabelingProgram {
        schema: LABELING_SCHEMA.to_string(),
        policy: policy_ref.clone(),
        entities,
        roles,
        enums: l.enum_schemas.clone(),
        strings: l.strings.clone(),
        tables: l.table_irs.clone(),
        functions: l.function_irs.clone(),
        dimensions,
        rules,
        overall: OverallIr {
            min_coverage: info.min_coverage,
            grades: overall_grades,
            excluded_grade: crate::check::EXCLUDED.to_string(),
        },
        clauses: l.clauses.clone(),
    };
    let pipeline = checked.tree.as_ref().and_then(|t| {
        t.items.iter().find_map(|i| match i {
            TopItem::Pipeline(p) if p.policy.name == decl.name.name => Some(p),
            _ => None,
        })
    });
    let (loss_terms, training_plan) = match pipeline {
        Some(p) => {
            let (terms, plan) = plan::lower_pipeline(
                p,
                &policy_ref,
                info,
                &labeling,
                &mut l.source_map,
                l.sources,
            )
            .map_err(LowerError::Internal)?;
            (Some(terms), Some(plan))
        }
        None => (None, None),
    };
    Ok(Lowered {
        labeling,
        source_map: l.source_map,
        loss_terms,
        training_plan,
    })
}

#[derive(Clone, Debug)]
struct LowerEnv {
    scope: ScopeId,
    locals: Vec<String>,
    score: bool,
    overall: bool,
    dimensions: bool,
    in_policy: bool,
}

struct Lowerer<'a> {
    program: &'a Program,
    sources: &'a Sources,
    root: crate::source::FileId,
    info: &'a PolicyInfo,
    strings: Vec<String>,
    enums: BTreeMap<EnumId, u32>,
    enum_schemas: Vec<EnumSchema>,
    tables: BTreeMap<TableId, u32>,
    table_irs: Vec<TableIr>,
    functions: BTreeMap<FnId, u32>,
    function_irs: Vec<FunctionIr>,
    clauses: Vec<Clause>,
    source_map: SourceMap,
    /// What the lowering met that the check should have refused: a name it cannot find. Any
    /// entry fails the lowering with an internal error instead of a silent `abstain`.
    internal: Vec<String>,
}

/// The IR operator of a binary operator; `None` for `??`, which lowers to its own node.
pub(super) fn bin_op(op: BinaryOp) -> Option<BinOp> {
    Some(match op {
        BinaryOp::Coalesce => return None,
        BinaryOp::Or => BinOp::Or,
        BinaryOp::And => BinOp::And,
        BinaryOp::Eq => BinOp::Eq,
        BinaryOp::Ne => BinOp::Ne,
        BinaryOp::Lt => BinOp::Lt,
        BinaryOp::Le => BinOp::Le,
        BinaryOp::Gt => BinOp::Gt,
        BinaryOp::Ge => BinOp::Ge,
        BinaryOp::Union => BinOp::Union,
        BinaryOp::Intersect => BinOp::Intersect,
        BinaryOp::Add => BinOp::Add,
        BinaryOp::Sub => BinOp::Sub,
        BinaryOp::Mul => BinOp::Mul,
        BinaryOp::Div => BinOp::Div,
    })
}

/// `a.b.c` of a dotted name.
fn dotted(names: &[Ident]) -> String {
    names
        .iter()
        .map(|n| n.name.as_str())
        .collect::<Vec<_>>()
        .join(".")
}

fn idx(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

impl Lowerer<'_> {
    fn intern(&mut self, s: &str) -> u32 {
        match self.strings.iter().position(|x| x == s) {
            Some(i) => idx(i),
            None => {
                self.strings.push(s.to_string());
                idx(self.strings.len() - 1)
            }
        }
    }

    fn enum_index(&mut self, id: EnumId) -> u32 {
        if let Some(i) = self.enums.get(&id) {
            return *i;
        }
        let schema = match self.program.enum_def(id) {
            Some(d) => EnumSchema {
                name: d.name.clone(),
                values: d.variants.clone(),
                ordered: d.ordered,
            },
            None => EnumSchema {
                name: String::new(),
                values: Vec::new(),
                ordered: false,
            },
        };
        self.enum_schemas.push(schema);
        let i = idx(self.enum_schemas.len() - 1);
        self.enums.insert(id, i);
        i
    }

    fn value_type(&mut self, ty: &Type) -> ValueType {
        match ty {
            Type::Bool => ValueType::Bool,
            Type::String => ValueType::String,
            Type::Text => ValueType::Text,
            Type::Enum(e) => ValueType::Enum {
                index: self.enum_index(*e),
            },
            Type::Set(t) => ValueType::Set {
                of: Box::new(self.value_type(t)),
            },
            Type::List(t) => ValueType::List {
                of: Box::new(self.value_type(t)),
            },
            Type::Optional(t) => self.value_type(t),
            _ => ValueType::Number,
        }
    }

    fn clause(
        &mut self,
        kind: ClauseKind,
        path: &str,
        label: String,
        in_policy: bool,
        span: Span,
    ) -> u32 {
        self.source_map.add(self.sources, path, span);
        self.clauses.push(Clause {
            kind,
            path: path.to_string(),
            label,
            in_policy: in_policy && span.file == self.root,
        });
        idx(self.clauses.len() - 1)
    }

    fn bands(&mut self, g: &GradeBlock, env: &LowerEnv, path: &str, owner: &str) -> Vec<BandIr> {
        g.bands
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let bp = format!("{path}[{i}]");
                let clause = self.clause(
                    ClauseKind::GradeBand,
                    &bp,
                    format!("{owner}.grade {}", b.name.name),
                    env.in_policy,
                    b.span,
                );
                let when = b
                    .condition
                    .as_ref()
                    .map(|c| self.expr(c, env, &format!("{bp}.when")));
                BandIr {
                    name: b.name.name.clone(),
                    when,
                    clause,
                }
            })
            .collect()
    }

    fn literal(&mut self, lit: &Literal, scope: ScopeId) -> Const {
        match &lit.kind {
            LiteralKind::Number(n) | LiteralKind::Percent(n) => Const::Number(*n),
            LiteralKind::String(s) => Const::Str(self.intern(s)),
            LiteralKind::Bool(b) => Const::Bool(*b),
            LiteralKind::Abstain => Const::Abstain,
            LiteralKind::List(items) => {
                Const::List(items.iter().map(|i| self.literal(i, scope)).collect())
            }
            LiteralKind::Name(names) => match self.enum_const(names, scope) {
                Some(c) => c,
                None => {
                    self.unresolved(format!("no enum value `{}`", dotted(names)), lit.span);
                    Const::Abstain
                }
            },
        }
    }

    /// `Seniority.senior` or a bare `senior`, resolved in a scope.
    fn enum_const(&mut self, names: &[Ident], scope: ScopeId) -> Option<Const> {
        let program = self.program;
        match names {
            [e, v] => match program.lookup(scope, &e.name) {
                Some(Symbol::Enum(id)) => {
                    let value = program
                        .enum_def(id)?
                        .variants
                        .iter()
                        .position(|x| *x == v.name)?;
                    Some(Const::Enum(self.enum_index(id), idx(value)))
                }
                _ => None,
            },
            [v] => {
                let s = program.scope(scope)?;
                let (id, value) = s.names.values().find_map(|b| match b.symbol {
                    Symbol::Enum(id) => program
                        .enum_def(id)
                        .and_then(|d| d.variants.iter().position(|x| *x == v.name))
                        .map(|p| (id, p)),
                    _ => None,
                })?;
                Some(Const::Enum(self.enum_index(id), idx(value)))
            }
            _ => None,
        }
    }

    fn table(&mut self, id: TableId) -> u32 {
        if let Some(i) = self.tables.get(&id) {
            return *i;
        }
        let Some(def) = self.program.table(id) else {
            self.internal.push(format!("no table of id {id:?}"));
            return u32::MAX;
        };
        let keys = def.keys.iter().map(|k| self.value_type(k)).collect();
        let value = self.value_type(&def.value);
        let default = self.literal(&def.decl.default, def.scope);
        let entries = def
            .decl
            .entries
            .iter()
            .map(|e| TableEntryIr {
                keys: e.keys.iter().map(|k| self.literal(k, def.scope)).collect(),
                value: self.literal(&e.value, def.scope),
            })
            .collect();
        self.table_irs.push(TableIr {
            name: def.decl.name.name.clone(),
            keys,
            value,
            default,
            entries,
        });
        let i = idx(self.table_irs.len() - 1);
        self.tables.insert(id, i);
        self.source_map
            .add(self.sources, &format!("tables[{i}]"), def.decl.name.span);
        i
    }

    fn function(&mut self, id: FnId) -> u32 {
        if let Some(i) = self.functions.get(&id) {
            return *i;
        }
        let Some(def) = self.program.function(id) else {
            self.internal.push(format!("no function of id {id:?}"));
            return u32::MAX;
        };
        // Reserve the index first: bodies may call other functions (never this one).
        let i = idx(self.function_irs.len());
        self.functions.insert(id, i);
        let module = self.program.scope(def.scope).and_then(|s| s.module.clone());
        let name = match &module {
            Some(m) => format!("{m}.{}", def.decl.name.name),
            None => def.decl.name.name.clone(),
        };
        self.function_irs.push(FunctionIr {
            name,
            params: def.params.iter().map(|(n, _)| n.clone()).collect(),
            declared_range: def.decl.declared_range.as_ref().map(|r| [r.lo, r.hi]),
            body: Node::Const(Const::Abstain),
        });
        let env = LowerEnv {
            scope: def.scope,
            locals: def.params.iter().map(|(n, _)| n.clone()).collect(),
            score: false,
            overall: false,
            dimensions: false,
            in_policy: module.is_none(),
        };
        let path = format!("functions[{i}]");
        self.source_map.add(self.sources, &path, def.decl.name.span);
        let body = self.expr(&def.decl.body, &env, &format!("{path}.body"));
        if let Some(f) = self.function_irs.get_mut(i as usize) {
            f.body = body;
        }
        i
    }

    fn expr(&mut self, e: &Expr, env: &LowerEnv, path: &str) -> Node {
        if let ExprKind::Paren(inner) = &e.kind {
            return self.expr(inner, env, path);
        }
        self.source_map.add(self.sources, path, e.span);
        let sub = |l: &mut Self, x: &Expr, part: &str| {
            Box::new(l.expr(x, env, &format!("{path}.{part}")))
        };
        match &e.kind {
            ExprKind::Number(n) | ExprKind::Percent(n) | ExprKind::Duration(n) => {
                Node::Const(Const::Number(*n))
            }
            ExprKind::String(s) => Node::Const(Const::Str(self.intern(s))),
            ExprKind::Bool(b) => Node::Const(Const::Bool(*b)),
            ExprKind::Abstain => Node::Const(Const::Abstain),
            ExprKind::Paren(inner) => self.expr(inner, env, path),
            ExprKind::List(items) => Node::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.expr(x, env, &format!("{path}.items[{i}]")))
                    .collect(),
            ),
            ExprKind::Path(names) => self.path(names, env),
            ExprKind::Call { func, args } => {
                let lowered: Vec<Node> = args
                    .iter()
                    .enumerate()
                    .map(|(i, a)| self.expr(a, env, &format!("{path}.args[{i}]")))
                    .collect();
                let builtin = match func.name.as_str() {
                    "missing" => {
                        let arg = match lowered.into_iter().next() {
                            Some(arg) => arg,
                            None => {
                                self.unresolved("`missing()` without an argument".into(), e.span)
                            }
                        };
                        return Node::Missing(Box::new(arg));
                    }
                    "len" => Some(Builtin::Len),
                    "abs" => Some(Builtin::Abs),
                    "min" => Some(Builtin::Min),
                    "max" => Some(Builtin::Max),
                    "clamp" => Some(Builtin::Clamp),
                    "lower" => Some(Builtin::Lower),
                    "contains" => Some(Builtin::Contains),
                    "rank" => Some(Builtin::Rank),
                    _ => None,
                };
                match builtin {
                    Some(builtin) => Node::Call {
                        builtin,
                        args: lowered,
                    },
                    None => match self.program.lookup(env.scope, &func.name) {
                        Some(Symbol::Fn(id)) => Node::CallFn {
                            function: self.function(id),
                            args: lowered,
                        },
                        _ => self.unresolved(format!("no function `{}`", func.name), func.span),
                    },
                }
            }
            ExprKind::Lookup { table, keys } => {
                let keys = keys
                    .iter()
                    .enumerate()
                    .map(|(i, k)| self.expr(k, env, &format!("{path}.keys[{i}]")))
                    .collect();
                match self.program.lookup(env.scope, &table.name) {
                    Some(Symbol::Table(id)) => Node::Lookup {
                        table: self.table(id),
                        keys,
                    },
                    _ => self.unresolved(format!("no table `{}`", table.name), table.span),
                }
            }
            ExprKind::Unary { op, operand } => match op {
                UnaryOp::Not => Node::Not(sub(self, operand, "arg")),
                UnaryOp::Neg => Node::Neg(sub(self, operand, "arg")),
            },
            ExprKind::Binary { op, lhs, rhs, .. } => {
                let Some(op) = bin_op(*op) else {
                    return Node::Coalesce {
                        value: sub(self, lhs, "value"),
                        default: sub(self, rhs, "default"),
                    };
                };
                Node::Binary {
                    op,
                    lhs: sub(self, lhs, "lhs"),
                    rhs: sub(self, rhs, "rhs"),
                }
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                let then_clause = self.clause(
                    ClauseKind::IfBranch,
                    &format!("{path}.then"),
                    format!("if {} (then)", expr_label(cond, CLAUSE_CONDITION_CHARS)),
                    env.in_policy,
                    then.span,
                );
                let else_clause = self.clause(
                    ClauseKind::IfBranch,
                    &format!("{path}.else"),
                    format!("if {} (else)", expr_label(cond, CLAUSE_CONDITION_CHARS)),
                    env.in_policy,
                    otherwise.span,
                );
                Node::If {
                    cond: sub(self, cond, "cond"),
                    then: sub(self, then, "then"),
                    otherwise: sub(self, otherwise, "else"),
                    then_clause,
                    else_clause,
                }
            }
            ExprKind::When { arms, otherwise } => {
                let mut out = Vec::new();
                for (i, arm) in arms.iter().enumerate() {
                    let ap = format!("{path}.arms[{i}]");
                    let clause = self.clause(
                        ClauseKind::WhenBranch,
                        &ap,
                        format!(
                            "when {}",
                            expr_label(&arm.condition, CLAUSE_CONDITION_CHARS)
                        ),
                        env.in_policy,
                        arm.span,
                    );
                    out.push(WhenArmIr {
                        when: self.expr(&arm.condition, env, &format!("{ap}.when")),
                        then: self.expr(&arm.body, env, &format!("{ap}.then")),
                        clause,
                    });
                }
                let op = format!("{path}.otherwise");
                let (otherwise_node, span) = match otherwise {
                    Some(o) => (self.expr(o, env, &op), o.span),
                    None => (Node::Const(Const::Abstain), e.span),
                };
                let otherwise_clause = self.clause(
                    ClauseKind::WhenBranch,
                    &op,
                    "otherwise".to_string(),
                    env.in_policy,
                    span,
                );
                Node::When {
                    arms: out,
                    otherwise: Box::new(otherwise_node),
                    otherwise_clause,
                }
            }
            ExprKind::Match { scrutinee, arms } => {
                let scrutinee = sub(self, scrutinee, "scrutinee");
                let mut out = Vec::new();
                for (i, arm) in arms.iter().enumerate() {
                    let ap = format!("{path}.arms[{i}]");
                    let label = if arm.is_wildcard() {
                        "_".to_string()
                    } else {
                        arm.patterns
                            .iter()
                            .map(literal_text)
                            .collect::<Vec<_>>()
                            .join(" | ")
                    };
                    let clause = self.clause(
                        ClauseKind::MatchArm,
                        &ap,
                        format!("match arm {label}"),
                        env.in_policy,
                        arm.span,
                    );
                    let patterns = arm
                        .patterns
                        .iter()
                        .map(|p| self.literal(p, env.scope))
                        .collect();
                    out.push(MatchArmIr {
                        patterns,
                        then: self.expr(&arm.body, env, &format!("{ap}.then")),
                        clause,
                    });
                }
                Node::Match {
                    scrutinee,
                    arms: out,
                }
            }
        }
    }

    fn path(&mut self, names: &[Ident], env: &LowerEnv) -> Node {
        let Some(first) = names.first() else {
            return self.unresolved("an empty name".into(), crate::source::Span::default());
        };
        if let Some(slot) = env.locals.iter().rposition(|l| *l == first.name) {
            return Node::Local(idx(slot));
        }
        if env.score && first.name == "score" {
            return Node::Score;
        }
        if env.overall && first.name == "overall" {
            return Node::Overall;
        }
        if let Some(role) = self.info.roles.iter().position(|(r, _)| *r == first.name) {
            let field = names.get(1).and_then(|f| {
                let (_, entity) = self.info.roles.get(role)?;
                self.program
                    .entity(*entity)?
                    .fields
                    .iter()
                    .position(|x| x.name == f.name)
            });
            return match field {
                Some(field) => Node::Field(idx(role), idx(field)),
                None => self.unresolved(format!("no field `{}`", dotted(names)), first.span),
            };
        }
        if env.dimensions
            && let Some(d) = self
                .info
                .dimensions
                .iter()
                .position(|d| d.name == first.name)
        {
            return Node::Dimension(idx(d));
        }
        match self.enum_const(names, env.scope) {
            Some(c) => Node::Const(c),
            None => self.unresolved(format!("no name `{}`", dotted(names)), first.span),
        }
    }

    /// A name the check let through that the lowering cannot find: recorded as an internal
    /// error (the lowering fails), with an `abstain` in its place meanwhile.
    fn unresolved(&mut self, what: String, span: crate::source::Span) -> Node {
        let at = self
            .sources
            .get(span.file)
            .map(|f| {
                let (line, column) = self.sources.line_col(span.file, span.start);
                format!(" at {}:{line}:{column}", f.name)
            })
            .unwrap_or_default();
        self.internal.push(format!("{what}{at}"));
        Node::Const(Const::Abstain)
    }
}
