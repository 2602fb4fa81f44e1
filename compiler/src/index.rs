//! The symbol index of a checked file: every name written in it, paired with the definition it
//! refers to (where, what kind, its docs and declaration), for editors' hover, go to definition
//! and completion. Built from a [`Checked`] after the fact; it changes nothing the passes do.

use crate::Checked;
use crate::check::{PolicyInfo, prelude, visit};
use crate::format::{literal_text, number_text};
use crate::resolve::{EntityId, EnumId, Program, ScopeId, Symbol, Type};
use crate::source::{FileId, Sources, Span};
use crate::stdlib;
use crate::syntax::ast::*;
use crate::syntax::{self, Limits};
use std::collections::HashMap;

/// What a name stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    Policy,
    Module,
    Pipeline,
    Entity,
    Field,
    Enum,
    EnumValue,
    /// A side of the pair (`query`, `candidate`).
    Role,
    Table,
    Function,
    /// A native function of the prelude (`len`, `min`, ...): it has no place in any source.
    Builtin,
    Parameter,
    Dimension,
    Let,
    Grade,
    Rule,
    Example,
    Teacher,
}

/// One defined name.
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    pub kind: SymbolKind,
    /// The name as written where it is defined (`coverage`, `senior`, `skills`).
    pub name: String,
    /// Where the name is defined (its identifier); `None` for built-ins and for standard
    /// functions listed by [`stdlib_functions`], which are not part of a compilation.
    pub span: Option<Span>,
    /// The declaration in one line, as an author writes it:
    /// `fn coverage(required: set<string>, have: set<string>) -> number in [0, 1]`.
    pub signature: String,
    /// What the checker knows besides the declaration (a dimension's score range and grades,
    /// a rule's reason), when anything.
    pub detail: Option<String>,
    /// The `///` documentation.
    pub docs: String,
    /// The module it comes from (`std.text`), when it is not defined in the indexed file.
    pub module: Option<String>,
}

/// Index of a [`Definition`] in a [`SymbolIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DefId(pub usize);

/// A name written in the indexed file (a use or the definition itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reference {
    pub span: Span,
    pub definition: DefId,
}

/// A region of the file with names only it sees: a dimension's `let`s, a function's parameters.
#[derive(Clone, Debug)]
struct Region {
    span: Span,
    locals: Vec<DefId>,
    /// Inside a function body only its parameters and the scope's names are visible.
    function: bool,
}

/// Every name of one checked file and what it refers to.
#[derive(Clone, Debug, Default)]
pub struct SymbolIndex {
    file: FileId,
    definitions: Vec<Definition>,
    by_place: HashMap<(SymbolKind, Span), DefId>,
    references: Vec<Reference>,
    /// The roles of the pair, each with the fields of its entity.
    roles: Vec<(DefId, Vec<DefId>)>,
    dimensions: Vec<DefId>,
    /// Functions, enums, entities and tables the file's scope sees, and the values of its enums.
    scope_names: Vec<DefId>,
    enums: Vec<(String, Vec<DefId>)>,
    /// Grade bands by dimension (`None`: the overall grade).
    grades: Vec<(Option<String>, DefId)>,
    rules: Vec<DefId>,
    regions: Vec<Region>,
}

impl SymbolIndex {
    /// Indexes the names written in the checked file (`checked.root`).
    pub fn build(checked: &Checked) -> SymbolIndex {
        stacker::grow(syntax::STACK_SIZE, || {
            let mut builder = Builder::new(checked);
            builder.file();
            let mut index = builder.index;
            index
                .references
                .sort_by_key(|r| (r.span.start, std::cmp::Reverse(r.span.end)));
            index
                .references
                .dedup_by(|a, b| a.span == b.span && a.definition == b.definition);
            index
        })
    }

    pub fn definition(&self, id: DefId) -> Option<&Definition> {
        self.definitions.get(id.0)
    }

    pub fn definitions(&self) -> &[Definition] {
        &self.definitions
    }

    /// Every name written in the file, in order.
    pub fn references(&self) -> &[Reference] {
        &self.references
    }

    /// The name written at a byte offset of the file (its end included, where a cursor sits
    /// after typing it), and its definition.
    pub fn at(&self, offset: u32) -> Option<(Span, &Definition)> {
        self.references
            .iter()
            .filter(|r| r.span.start <= offset && offset <= r.span.end)
            .min_by_key(|r| r.span.len())
            .and_then(|r| Some((r.span, self.definition(r.definition)?)))
    }

    /// What may follow `head.`: the fields of a role's entity (`query.`), the values of an enum
    /// (`Seniority.`).
    pub fn members(&self, head: &str) -> Vec<&Definition> {
        let ids = self
            .roles
            .iter()
            .find(|(role, _)| self.definition(*role).is_some_and(|d| d.name == head))
            .map(|(_, fields)| fields)
            .or_else(|| {
                self.enums
                    .iter()
                    .find(|(name, _)| name == head)
                    .map(|(_, values)| values)
            });
        ids.into_iter()
            .flatten()
            .filter_map(|id| self.definition(*id))
            .collect()
    }

    /// The policy's dimensions, in order.
    pub fn dimensions(&self) -> Vec<&Definition> {
        self.defs(&self.dimensions)
    }

    /// The grades of a dimension's bands, or of `grade overall` for `None`.
    pub fn grades(&self, dimension: Option<&str>) -> Vec<&Definition> {
        let ids: Vec<DefId> = self
            .grades
            .iter()
            .filter(|(d, _)| d.as_deref() == dimension)
            .map(|(_, id)| *id)
            .collect();
        self.defs(&ids)
    }

    /// The policy's rules, in order.
    pub fn rules(&self) -> Vec<&Definition> {
        self.defs(&self.rules)
    }

    fn defs(&self, ids: &[DefId]) -> Vec<&Definition> {
        ids.iter().filter_map(|id| self.definition(*id)).collect()
    }

    /// The names visible at a byte offset of the file, for completion: a function's parameters
    /// inside its body; elsewhere the roles, dimensions and the `let`s of the enclosing
    /// dimension; everywhere the scope's functions, enums, tables and enum values, and the
    /// built-in functions.
    pub fn visible_at(&self, offset: u32) -> Vec<&Definition> {
        let region = self
            .regions
            .iter()
            .filter(|r| r.span.start <= offset && offset <= r.span.end)
            .min_by_key(|r| r.span.len());
        let mut ids: Vec<DefId> = Vec::new();
        if let Some(r) = region {
            ids.extend(&r.locals);
        }
        if !region.is_some_and(|r| r.function) {
            ids.extend(self.roles.iter().map(|(r, _)| *r));
            ids.extend(&self.dimensions);
        }
        ids.extend(&self.scope_names);
        for (_, values) in &self.enums {
            ids.extend(values);
        }
        let mut out: Vec<&Definition> = ids.iter().filter_map(|id| self.definition(*id)).collect();
        out.extend(builtins_iter().map(|d| -> &Definition { d }));
        out
    }
}

/// The built-in functions of the prelude, with their documented signatures.
pub fn builtins() -> Vec<Definition> {
    builtins_iter().cloned().collect()
}

fn builtins_iter() -> impl Iterator<Item = &'static Definition> {
    static BUILTINS: std::sync::OnceLock<Vec<Definition>> = std::sync::OnceLock::new();
    BUILTINS
        .get_or_init(|| {
            prelude::PRELUDE
                .iter()
                .filter_map(|name| {
                    let (signature, docs) = prelude::signature(name)?;
                    Some(Definition {
                        kind: SymbolKind::Builtin,
                        name: (*name).to_string(),
                        span: None,
                        signature: format!("fn {signature}"),
                        detail: None,
                        docs: docs.to_string(),
                        module: None,
                    })
                })
                .collect()
        })
        .iter()
}

/// Every function and enum of the standard library, with its module, declaration and docs: what
/// an editor offers to import.
pub fn stdlib_exports() -> Vec<Definition> {
    let mut out = Vec::new();
    for (module, _, text) in stdlib::MODULES {
        let parsed = syntax::parse(FileId(0), text, &Limits::default());
        let Some(tree) = parsed.tree else { continue };
        for item in &tree.items {
            if let TopItem::Module(m) = item {
                for item in &m.items {
                    let (kind, name, signature, docs) = match item {
                        Item::Fn(f) => (SymbolKind::Function, &f.name, fn_signature(f), &f.docs),
                        Item::Enum(e) => {
                            let sep = if e.ordered { " < " } else { ", " };
                            let values: Vec<&str> =
                                e.variants.iter().map(|v| v.name.name.as_str()).collect();
                            let signature =
                                format!("enum {} {{ {} }}", e.name.name, values.join(sep));
                            (SymbolKind::Enum, &e.name, signature, &e.docs)
                        }
                        _ => continue,
                    };
                    out.push(Definition {
                        kind,
                        name: name.name.clone(),
                        span: None,
                        signature,
                        detail: None,
                        docs: docs.text(),
                        module: Some((*module).to_string()),
                    });
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Building

/// What an expression may name besides the scope: locals, the pair's roles, dimensions, and
/// `score` in a dimension's grade bands.
#[derive(Clone, Default)]
struct Env {
    locals: Vec<(String, DefId)>,
    in_policy: bool,
    score_of: Option<DefId>,
}

struct Builder<'a> {
    checked: &'a Checked,
    program: &'a Program,
    sources: &'a Sources,
    scope: Option<ScopeId>,
    index: SymbolIndex,
    /// Docs of enum values by the span of their name (the resolver keeps names only).
    variant_docs: HashMap<Span, String>,
    role_entities: Vec<(String, Option<EntityId>)>,
    dimension_grades: HashMap<String, Vec<(String, DefId)>>,
    overall_grades: Vec<(String, DefId)>,
    rules: Vec<(String, DefId)>,
    teachers: Vec<(String, DefId)>,
    policy_def: Option<(String, DefId)>,
}

impl<'a> Builder<'a> {
    fn new(checked: &'a Checked) -> Self {
        let mut variant_docs = HashMap::new();
        let mut collect = |items: &[Item]| {
            for item in items {
                if let Item::Enum(e) = item {
                    for v in &e.variants {
                        variant_docs.insert(v.name.span, v.docs.text());
                    }
                }
            }
        };
        if let Some(tree) = &checked.tree {
            for top in &tree.items {
                match top {
                    TopItem::Policy(p) => collect(&p.items),
                    TopItem::Module(m) => collect(&m.items),
                    TopItem::Pipeline(_) => {}
                }
            }
        }
        for (_, m) in &checked.program.module_decls {
            collect(&m.items);
        }
        let scope = checked.policy_scope.or_else(|| {
            checked
                .program
                .scopes
                .iter()
                .position(|s| s.file == checked.root)
                .map(ScopeId)
        });
        Builder {
            checked,
            program: &checked.program,
            sources: &checked.sources,
            scope,
            index: SymbolIndex {
                file: checked.root,
                ..SymbolIndex::default()
            },
            variant_docs,
            role_entities: Vec::new(),
            dimension_grades: HashMap::new(),
            overall_grades: Vec::new(),
            rules: Vec::new(),
            teachers: Vec::new(),
            policy_def: None,
        }
    }

    // -- definitions ---------------------------------------------------------------------------

    /// The definition at a place, created on first sight.
    fn define(&mut self, def: Definition) -> DefId {
        if let Some(span) = def.span
            && let Some(id) = self.index.by_place.get(&(def.kind, span))
        {
            return *id;
        }
        let id = DefId(self.index.definitions.len());
        if let Some(span) = def.span {
            self.index.by_place.insert((def.kind, span), id);
        }
        self.index.definitions.push(def);
        id
    }

    /// Records a name written in the file.
    fn refer(&mut self, span: Span, id: DefId) {
        if span.file == self.index.file && !span.is_empty() {
            self.index.references.push(Reference {
                span,
                definition: id,
            });
        }
    }

    /// Defines a name written in the file and records it as its own reference.
    fn declare(&mut self, def: Definition) -> DefId {
        let span = def.span;
        let id = self.define(def);
        if let Some(span) = span {
            self.refer(span, id);
        }
        id
    }

    fn module_of(&self, scope: ScopeId, span: Span) -> Option<String> {
        if span.file == self.index.file {
            return None;
        }
        self.program.scope(scope).and_then(|s| s.module.clone())
    }

    fn symbol_definition(&mut self, symbol: Symbol) -> Option<DefId> {
        let def = match symbol {
            Symbol::Enum(id) => return self.enum_definition(id),
            Symbol::Entity(id) => {
                let e = self.program.entity(id)?;
                Definition {
                    kind: SymbolKind::Entity,
                    name: e.name.clone(),
                    span: Some(e.span),
                    signature: format!(
                        "entity {} {{ {} }}",
                        e.name,
                        e.fields
                            .iter()
                            .map(|f| format!("{}: {}", f.name, self.program.type_name(&f.ty)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    detail: None,
                    docs: e.docs.clone(),
                    module: self.module_of(e.scope, e.span),
                }
            }
            Symbol::Table(id) => {
                let t = self.program.table(id)?;
                Definition {
                    kind: SymbolKind::Table,
                    name: t.decl.name.name.clone(),
                    span: Some(t.decl.name.span),
                    signature: table_signature(&t.decl),
                    detail: Some(format!(
                        "{} {}",
                        t.decl.entries.len(),
                        if t.decl.entries.len() == 1 {
                            "entry"
                        } else {
                            "entries"
                        }
                    )),
                    docs: t.decl.docs.text(),
                    module: self.module_of(t.scope, t.decl.name.span),
                }
            }
            Symbol::Fn(id) => {
                let f = self.program.function(id)?;
                Definition {
                    kind: SymbolKind::Function,
                    name: f.decl.name.name.clone(),
                    span: Some(f.decl.name.span),
                    signature: fn_signature(&f.decl),
                    detail: None,
                    docs: f.decl.docs.text(),
                    module: self.module_of(f.scope, f.decl.name.span),
                }
            }
            Symbol::Unresolved => return None,
        };
        Some(self.define(def))
    }

    fn enum_definition(&mut self, id: EnumId) -> Option<DefId> {
        let e = self.program.enum_def(id)?;
        let sep = if e.ordered { " < " } else { ", " };
        let def = Definition {
            kind: SymbolKind::Enum,
            name: e.name.clone(),
            span: Some(e.span),
            signature: format!("enum {} {{ {} }}", e.name, e.variants.join(sep)),
            detail: Some(if e.ordered {
                "ordered, lowest first".to_string()
            } else {
                "unordered".to_string()
            }),
            docs: e.docs.clone(),
            module: self.module_of(e.scope, e.span),
        };
        Some(self.define(def))
    }

    fn variant_definition(&mut self, id: EnumId, variant: &str) -> Option<DefId> {
        let e = self.program.enum_def(id)?;
        let position = e.variants.iter().position(|v| v == variant)?;
        let span = *e.variant_spans.get(position)?;
        let detail = e
            .ordered
            .then(|| format!("rank {position} of {} (lowest first)", e.variants.len()));
        let def = Definition {
            kind: SymbolKind::EnumValue,
            name: variant.to_string(),
            span: Some(span),
            signature: format!("{}.{variant}", e.name),
            detail,
            docs: self.variant_docs.get(&span).cloned().unwrap_or_default(),
            module: self.module_of(e.scope, span),
        };
        Some(self.define(def))
    }

    fn field_definition(&mut self, entity: EntityId, field: &str) -> Option<DefId> {
        let e = self.program.entity(entity)?;
        let f = e.field(field)?;
        let def = Definition {
            kind: SymbolKind::Field,
            name: f.name.clone(),
            span: Some(f.span),
            signature: format!("{}.{}: {}", e.name, f.name, self.program.type_name(&f.ty)),
            detail: None,
            docs: f.docs.clone(),
            module: self.module_of(e.scope, f.span),
        };
        Some(self.define(def))
    }

    fn builtin_definition(&mut self, name: &str) -> Option<DefId> {
        let def = builtins_iter().find(|d| d.name == name)?.clone();
        // Built-ins have no span: one definition each, found by name.
        if let Some(i) = self
            .index
            .definitions
            .iter()
            .position(|d| d.kind == SymbolKind::Builtin && d.name == name)
        {
            return Some(DefId(i));
        }
        Some(self.define(def))
    }

    fn lookup(&self, name: &str) -> Option<Symbol> {
        self.program.lookup(self.scope?, name)
    }

    /// The enum value a bare name stands for, when exactly one enum in scope has it.
    fn bare_variant(&mut self, name: &str, hint: Option<EnumId>) -> Option<DefId> {
        if let Some(id) = hint
            && self
                .program
                .enum_def(id)
                .is_some_and(|e| e.variants.iter().any(|v| v == name))
        {
            return self.variant_definition(id, name);
        }
        let scope = self.program.scope(self.scope?)?;
        let mut found: Vec<EnumId> = scope
            .names
            .values()
            .filter_map(|b| match b.symbol {
                Symbol::Enum(id) => Some(id),
                _ => None,
            })
            .filter(|id| {
                self.program
                    .enum_def(*id)
                    .is_some_and(|e| e.variants.iter().any(|v| v == name))
            })
            .collect();
        found.dedup();
        match found.as_slice() {
            [only] => self.variant_definition(*only, name),
            _ => None,
        }
    }

    // -- the file ------------------------------------------------------------------------------

    fn file(&mut self) {
        let Some(tree) = &self.checked.tree else {
            return;
        };
        // The scope's names, for completion.
        if let Some(scope) = self.scope.and_then(|s| self.program.scope(s)) {
            let symbols: Vec<(String, Symbol)> = scope
                .names
                .iter()
                .map(|(n, b)| (n.clone(), b.symbol))
                .collect();
            for (name, symbol) in symbols {
                if let Some(id) = self.symbol_definition(symbol) {
                    self.index.scope_names.push(id);
                }
                if let Symbol::Enum(e) = symbol {
                    let variants = self
                        .program
                        .enum_def(e)
                        .map(|d| d.variants.clone())
                        .unwrap_or_default();
                    let ids = variants
                        .iter()
                        .filter_map(|v| self.variant_definition(e, v))
                        .collect();
                    self.index.enums.push((name, ids));
                }
            }
        }
        for top in &tree.items {
            match top {
                TopItem::Policy(p) => self.policy(p),
                TopItem::Module(m) => {
                    self.declare(Definition {
                        kind: SymbolKind::Module,
                        name: m.path.raw.clone(),
                        span: Some(m.path.span),
                        signature: format!("module {}", m.path.raw),
                        detail: None,
                        docs: m.docs.text(),
                        module: None,
                    });
                    self.items(&m.items, false);
                }
                TopItem::Pipeline(_) => {}
            }
        }
        // Pipelines last: they name the policy's dimensions and teachers declared anywhere.
        for top in &tree.items {
            if let TopItem::Pipeline(p) = top {
                self.pipeline(p);
            }
        }
    }

    fn policy(&mut self, p: &PolicyDecl) {
        let id = self.declare(Definition {
            kind: SymbolKind::Policy,
            name: p.name.name.clone(),
            span: Some(p.name.span),
            signature: format!("policy {} version {}", p.name.name, p.version),
            detail: None,
            docs: p.docs.text(),
            module: None,
        });
        self.policy_def = Some((p.name.name.clone(), id));
        // Declarations first, so that uses before them resolve.
        for item in &p.items {
            match item {
                Item::Pair(pair) => self.pair(pair),
                Item::Dimension(d) => {
                    let def = self.dimension_definition(d);
                    let id = self.declare(def);
                    self.index.dimensions.push(id);
                    let mut grades = Vec::new();
                    for g in &d.grades {
                        for band in &g.bands {
                            let id = self.band(band, Some(&d.name.name));
                            grades.push((band.name.name.clone(), id));
                            self.index.grades.push((Some(d.name.name.clone()), id));
                        }
                    }
                    self.dimension_grades.insert(d.name.name.clone(), grades);
                }
                Item::Rule(r) => {
                    let id = self.declare(Definition {
                        kind: SymbolKind::Rule,
                        name: r.name.name.clone(),
                        span: Some(r.name.span),
                        signature: format!("rule {}: {}", r.name.name, action_text(&r.action)),
                        detail: r.because.as_ref().map(|b| format!("because \"{b}\"")),
                        docs: r.docs.text(),
                        module: None,
                    });
                    self.rules.push((r.name.name.clone(), id));
                    self.index.rules.push(id);
                }
                Item::OverallGrade(g) => {
                    for band in &g.bands {
                        let id = self.band(band, None);
                        self.overall_grades.push((band.name.name.clone(), id));
                        self.index.grades.push((None, id));
                    }
                }
                _ => {}
            }
        }
        self.items(&p.items, true);
    }

    fn pair(&mut self, pair: &PairDecl) {
        for role in [&pair.query, &pair.candidate] {
            let entity = match self.lookup(&role.entity.name) {
                Some(Symbol::Entity(id)) => Some(id),
                _ => None,
            };
            let id = self.declare(Definition {
                kind: SymbolKind::Role,
                name: role.name.name.clone(),
                span: Some(role.name.span),
                signature: format!("{}: {}", role.name.name, role.entity.name),
                detail: Some("a side of the pair".to_string()),
                docs: pair.docs.text(),
                module: None,
            });
            let fields = match entity.and_then(|e| self.program.entity(e)) {
                Some(def) => def.fields.iter().map(|f| f.name.clone()).collect(),
                None => Vec::new(),
            };
            let fields = entity
                .map(|e| {
                    fields
                        .iter()
                        .filter_map(|f: &String| self.field_definition(e, f))
                        .collect()
                })
                .unwrap_or_default();
            self.index.roles.push((id, fields));
            self.role_entities.push((role.name.name.clone(), entity));
            self.type_name(&role.entity);
        }
    }

    fn dimension_definition(&self, d: &DimensionDecl) -> Definition {
        let info: Option<&PolicyInfo> = self.checked.policy.as_ref();
        let detail = info
            .and_then(|i| i.dimensions.iter().find(|x| x.name == d.name.name))
            .map(|x| {
                let mut s = format!("score in {}", x.range);
                if x.abstains {
                    s.push_str(", may abstain");
                }
                if !x.grades.is_empty() {
                    s.push_str(&format!("; grades {}", x.grades.join(", ")));
                }
                s
            });
        Definition {
            kind: SymbolKind::Dimension,
            name: d.name.name.clone(),
            span: Some(d.name.span),
            signature: format!(
                "dimension {} weight {}%",
                d.name.name,
                number_text(d.weight * 100.0)
            ),
            detail,
            docs: d.docs.text(),
            module: None,
        }
    }

    fn band(&mut self, band: &Band, dimension: Option<&str>) -> DefId {
        let rule = match &band.condition {
            Some(c) => format!("when {}", self.snippet(c.span)),
            None => "otherwise".to_string(),
        };
        self.declare(Definition {
            kind: SymbolKind::Grade,
            name: band.name.name.clone(),
            span: Some(band.name.span),
            signature: format!("{} {rule}", band.name.name),
            detail: Some(match dimension {
                Some(d) => format!("a grade of dimension `{d}`"),
                None => "an overall grade".to_string(),
            }),
            docs: band
                .description
                .clone()
                .into_iter()
                .chain(Some(band.docs.text()).filter(|d| !d.is_empty()))
                .collect::<Vec<_>>()
                .join("\n\n"),
            module: None,
        })
    }

    /// The source text of a span on one line, shortened.
    fn snippet(&self, span: Span) -> String {
        let text = self
            .sources
            .snippet(span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if text.chars().count() > 80 {
            format!("{}…", text.chars().take(79).collect::<String>())
        } else {
            text
        }
    }

    fn items(&mut self, items: &[Item], in_policy: bool) {
        for item in items {
            match item {
                Item::Use(u) => {
                    for name in &u.names {
                        if let Some(symbol) = self.lookup(&name.name)
                            && let Some(id) = self.symbol_definition(symbol)
                        {
                            self.refer(name.span, id);
                        }
                    }
                }
                Item::Entity(e) => {
                    if let Some(Symbol::Entity(id)) = self.lookup(&e.name.name) {
                        if let Some(def) = self.symbol_definition(Symbol::Entity(id)) {
                            self.refer(e.name.span, def);
                        }
                        for f in &e.fields {
                            if let Some(def) = self.field_definition(id, &f.name.name) {
                                self.refer(f.name.span, def);
                            }
                        }
                    }
                    for f in &e.fields {
                        self.type_expr(&f.ty);
                    }
                }
                Item::Enum(e) => {
                    if let Some(Symbol::Enum(id)) = self.lookup(&e.name.name) {
                        if let Some(def) = self.enum_definition(id) {
                            self.refer(e.name.span, def);
                        }
                        for v in &e.variants {
                            if let Some(def) = self.variant_definition(id, &v.name.name) {
                                self.refer(v.name.span, def);
                            }
                        }
                    }
                }
                Item::Table(t) => {
                    if let Some(symbol) = self.lookup(&t.name.name)
                        && let Some(def) = self.symbol_definition(symbol)
                    {
                        self.refer(t.name.span, def);
                    }
                    for k in &t.keys {
                        self.type_expr(k);
                    }
                    self.type_expr(&t.value);
                    let key_hints: Vec<Option<EnumId>> =
                        t.keys.iter().map(|k| self.enum_of_type_expr(k)).collect();
                    let value_hint = self.enum_of_type_expr(&t.value);
                    self.literal(&t.default, value_hint, None);
                    for entry in &t.entries {
                        for (i, k) in entry.keys.iter().enumerate() {
                            self.literal(k, key_hints.get(i).copied().flatten(), None);
                        }
                        self.literal(&entry.value, value_hint, None);
                    }
                }
                Item::Fn(f) => self.function(f),
                Item::Dimension(d) => self.dimension(d),
                Item::Rule(r) => {
                    let env = self.policy_env();
                    self.expr(&r.condition, &env);
                    if let RuleAction::SetGrade(g) = &r.action
                        && let Some((_, id)) =
                            self.overall_grades.iter().find(|(n, _)| *n == g.name)
                    {
                        let id = *id;
                        self.refer(g.span, id);
                    }
                }
                Item::OverallGrade(g) => {
                    let env = self.policy_env();
                    for band in &g.bands {
                        if let Some(c) = &band.condition {
                            self.expr(c, &env);
                        }
                    }
                }
                Item::Example(e) => self.example(e),
                Item::Pair(_) | Item::MinCoverage(_) => {}
            }
        }
        let _ = in_policy;
    }

    fn policy_env(&self) -> Env {
        Env {
            in_policy: true,
            ..Env::default()
        }
    }

    fn function(&mut self, f: &FnDecl) {
        if let Some(symbol) = self.lookup(&f.name.name)
            && let Some(def) = self.symbol_definition(symbol)
        {
            self.refer(f.name.span, def);
        }
        let mut env = Env::default();
        let mut locals = Vec::new();
        for p in &f.params {
            self.type_expr(&p.ty);
            let id = self.declare(Definition {
                kind: SymbolKind::Parameter,
                name: p.name.name.clone(),
                span: Some(p.name.span),
                signature: format!("{}: {}", p.name.name, type_expr_text(&p.ty)),
                detail: Some(format!("a parameter of `{}`", f.name.name)),
                docs: String::new(),
                module: None,
            });
            env.locals.push((p.name.name.clone(), id));
            locals.push(id);
        }
        self.type_expr(&f.result);
        self.index.regions.push(Region {
            span: f.span,
            locals,
            function: true,
        });
        self.expr(&f.body, &env);
    }

    fn dimension(&mut self, d: &DimensionDecl) {
        let own = self.dimension_definition(d);
        let own = self.define(own);
        let mut env = self.policy_env();
        let mut locals = Vec::new();
        for l in &d.lets {
            self.expr(&l.value, &env);
            let id = self.declare(Definition {
                kind: SymbolKind::Let,
                name: l.name.name.clone(),
                span: Some(l.name.span),
                signature: format!("let {} = {}", l.name.name, self.snippet(l.value.span)),
                detail: Some(format!("visible in dimension `{}`", d.name.name)),
                docs: l.docs.text(),
                module: None,
            });
            env.locals.push((l.name.name.clone(), id));
            locals.push(id);
        }
        for s in &d.score {
            self.expr(&s.value, &env);
        }
        env.score_of = Some(own);
        for g in &d.grades {
            for band in &g.bands {
                if let Some(c) = &band.condition {
                    self.expr(c, &env);
                }
            }
        }
        self.index.regions.push(Region {
            span: d.span,
            locals,
            function: false,
        });
    }

    fn example(&mut self, e: &ExampleDecl) {
        self.declare(Definition {
            kind: SymbolKind::Example,
            name: e.name.clone(),
            span: Some(e.name_span),
            signature: format!("example \"{}\"", e.name),
            detail: None,
            docs: e.docs.text(),
            module: None,
        });
        for record in &e.records {
            let entity = self.role(&record.role);
            for field in &record.fields {
                let mut hint = None;
                if let Some(entity) = entity {
                    if let Some(def) = self.field_definition(entity, &field.name.name) {
                        self.refer(field.name.span, def);
                    }
                    hint = self
                        .program
                        .entity(entity)
                        .and_then(|e| e.field(&field.name.name))
                        .and_then(|f| enum_of_type(&f.ty));
                }
                self.literal(&field.value, hint, None);
            }
        }
        for expectation in &e.expectations {
            match expectation {
                Expectation::Compare { target, value, .. } => {
                    let grades = match &target.dimension {
                        Some(d) => {
                            if let Some(id) = self.dimension_named(&d.name) {
                                self.refer(d.span, id);
                            }
                            self.dimension_grades.get(&d.name).cloned()
                        }
                        None => Some(self.overall_grades.clone()),
                    };
                    let grades = if target.grade { grades } else { None };
                    self.literal(value, None, grades.as_deref());
                }
                Expectation::Rule { rule, .. } => {
                    if let Some((_, id)) = self.rules.iter().find(|(n, _)| *n == rule.name) {
                        let id = *id;
                        self.refer(rule.span, id);
                    }
                }
            }
        }
    }

    fn dimension_named(&self, name: &str) -> Option<DefId> {
        self.index
            .dimensions
            .iter()
            .copied()
            .find(|id| self.index.definition(*id).is_some_and(|d| d.name == name))
    }

    /// A role written in the file; its entity.
    fn role(&mut self, name: &Ident) -> Option<EntityId> {
        let id = self.index.roles.iter().map(|(r, _)| *r).find(|r| {
            self.index
                .definition(*r)
                .is_some_and(|d| d.name == name.name)
        })?;
        self.refer(name.span, id);
        self.role_entities
            .iter()
            .find(|(r, _)| *r == name.name)
            .and_then(|(_, e)| *e)
    }

    fn pipeline(&mut self, p: &PipelineDecl) {
        self.declare(Definition {
            kind: SymbolKind::Pipeline,
            name: p.name.name.clone(),
            span: Some(p.name.span),
            signature: format!("pipeline {} for {}", p.name.name, p.policy.name),
            detail: None,
            docs: p.docs.text(),
            module: None,
        });
        if let Some((name, id)) = &self.policy_def
            && *name == p.policy.name
        {
            let id = *id;
            self.refer(p.policy.span, id);
        }
        for t in &p.teachers {
            let id = self.declare(Definition {
                kind: SymbolKind::Teacher,
                name: t.name.name.clone(),
                span: Some(t.name.span),
                signature: format!(
                    "teacher {} predicts {}",
                    t.name.name,
                    t.predicts
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                detail: t.loss.as_ref().map(|l| format!("loss {}", l.kind.name)),
                docs: t.docs.text(),
                module: None,
            });
            self.teachers.push((t.name.name.clone(), id));
            for predicted in &t.predicts {
                if let Some(id) = self.dimension_named(&predicted.name) {
                    self.refer(predicted.span, id);
                }
            }
        }
        for s in &p.students {
            for d in &s.distill {
                if let Some((_, id)) = self.teachers.iter().find(|(n, _)| *n == d.teacher.name) {
                    let id = *id;
                    self.refer(d.teacher.span, id);
                }
            }
        }
        let sources = p
            .teachers
            .iter()
            .map(|t| &t.model)
            .chain(p.students.iter().map(|s| &s.model));
        for models in sources {
            if let Some(ModelSpec::FromTeacher { teacher, .. }) = models.first()
                && let Some((_, id)) = self.teachers.iter().find(|(n, _)| *n == teacher.name)
            {
                let id = *id;
                self.refer(teacher.span, id);
            }
        }
        let inputs = p
            .teachers
            .iter()
            .flat_map(|t| t.reads.iter().chain(&t.features))
            .chain(
                p.students
                    .iter()
                    .flat_map(|s| s.reads.iter().chain(&s.features)),
            );
        for input in inputs {
            self.model_input(input);
        }
    }

    /// `query.title` in `reads` or `features`: the role and the field.
    fn model_input(&mut self, input: &Ident) {
        let Some((role, field)) = input.name.split_once('.') else {
            return;
        };
        let split = input.span.start + role.len() as u32;
        let role_ident = Ident {
            name: role.to_string(),
            span: Span {
                end: split,
                ..input.span
            },
        };
        if let Some(entity) = self.role(&role_ident)
            && let Some(id) = self.field_definition(entity, field)
        {
            let span = Span {
                start: split + 1,
                ..input.span
            };
            self.refer(span, id);
        }
    }

    // -- types, literals, expressions ------------------------------------------------------------

    fn type_expr(&mut self, t: &TypeExpr) {
        if !matches!(
            t.name.name.as_str(),
            "number" | "bool" | "string" | "text" | "set" | "list"
        ) {
            self.type_name(&t.name);
        }
        if let Some(arg) = &t.arg {
            self.type_expr(arg);
        }
    }

    fn type_name(&mut self, name: &Ident) {
        if let Some(symbol) = self.lookup(&name.name)
            && let Some(id) = self.symbol_definition(symbol)
        {
            self.refer(name.span, id);
        }
    }

    fn enum_of_type_expr(&self, t: &TypeExpr) -> Option<EnumId> {
        match self.lookup(&t.name.name) {
            Some(Symbol::Enum(id)) => Some(id),
            _ => t.arg.as_ref().and_then(|a| self.enum_of_type_expr(a)),
        }
    }

    /// A literal: its names are enum values (of `hint` when given) or, in an expectation about
    /// a grade, grade names.
    fn literal(&mut self, l: &Literal, hint: Option<EnumId>, grades: Option<&[(String, DefId)]>) {
        match &l.kind {
            LiteralKind::Name(names) => match names.as_slice() {
                [only] => {
                    if let Some(grades) = grades
                        && let Some((_, id)) = grades.iter().find(|(n, _)| *n == only.name)
                    {
                        self.refer(only.span, *id);
                    } else if let Some(id) = self.bare_variant(&only.name, hint) {
                        self.refer(only.span, id);
                    }
                }
                [enum_name, value] => {
                    if let Some(Symbol::Enum(e)) = self.lookup(&enum_name.name) {
                        if let Some(id) = self.enum_definition(e) {
                            self.refer(enum_name.span, id);
                        }
                        if let Some(id) = self.variant_definition(e, &value.name) {
                            self.refer(value.span, id);
                        }
                    }
                }
                _ => {}
            },
            LiteralKind::List(items) => {
                for item in items {
                    self.literal(item, hint, grades);
                }
            }
            _ => {}
        }
    }

    fn expr(&mut self, e: &Expr, env: &Env) {
        let mut found: Vec<&Expr> = Vec::new();
        visit(e, &mut |e| found.push(e));
        for e in found {
            match &e.kind {
                ExprKind::Path(names) => self.path(names, env),
                ExprKind::Call { func, .. } => {
                    let id = match self.lookup(&func.name) {
                        Some(symbol @ Symbol::Fn(_)) => self.symbol_definition(symbol),
                        _ => self.builtin_definition(&func.name),
                    };
                    if let Some(id) = id {
                        self.refer(func.span, id);
                    }
                }
                ExprKind::Lookup { table, .. } => {
                    if let Some(symbol @ Symbol::Table(_)) = self.lookup(&table.name)
                        && let Some(id) = self.symbol_definition(symbol)
                    {
                        self.refer(table.span, id);
                    }
                }
                ExprKind::Match { arms, .. } => {
                    for arm in arms {
                        for p in &arm.patterns {
                            self.literal(p, None, None);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn path(&mut self, names: &[Ident], env: &Env) {
        let Some(first) = names.first() else { return };
        if let Some((_, id)) = env.locals.iter().rev().find(|(n, _)| *n == first.name) {
            self.refer(first.span, *id);
            return;
        }
        if first.name == "score"
            && let Some(id) = env.score_of
        {
            self.refer(first.span, id);
            return;
        }
        if env.in_policy {
            if let Some((_, entity)) = self
                .role_entities
                .iter()
                .find(|(r, _)| *r == first.name)
                .cloned()
            {
                self.role(first);
                if let (Some(entity), Some(field)) = (entity, names.get(1))
                    && let Some(id) = self.field_definition(entity, &field.name)
                {
                    self.refer(field.span, id);
                }
                return;
            }
            if let Some(id) = self.dimension_named(&first.name) {
                self.refer(first.span, id);
                return;
            }
        }
        match self.lookup(&first.name) {
            Some(Symbol::Enum(e)) => {
                if let Some(id) = self.enum_definition(e) {
                    self.refer(first.span, id);
                }
                if let Some(value) = names.get(1)
                    && let Some(id) = self.variant_definition(e, &value.name)
                {
                    self.refer(value.span, id);
                }
            }
            Some(_) => {}
            None => {
                if let Some(id) = self.bare_variant(&first.name, None) {
                    self.refer(first.span, id);
                }
            }
        }
    }
}

fn enum_of_type(t: &Type) -> Option<EnumId> {
    match t {
        Type::Enum(id) => Some(*id),
        Type::Optional(inner) | Type::Set(inner) | Type::List(inner) => enum_of_type(inner),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Declarations as text

/// A type as written: `set<string>`, `Seniority?`.
pub fn type_expr_text(t: &TypeExpr) -> String {
    let mut s = t.name.name.clone();
    if let Some(arg) = &t.arg {
        s.push('<');
        s.push_str(&type_expr_text(arg));
        s.push('>');
    }
    if t.optional {
        s.push('?');
    }
    s
}

/// A function's declaration without its body.
pub fn fn_signature(f: &FnDecl) -> String {
    let params = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name.name, type_expr_text(&p.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let range = f
        .declared_range
        .as_ref()
        .map(|r| format!(" in [{}, {}]", number_text(r.lo), number_text(r.hi)))
        .unwrap_or_default();
    format!(
        "fn {}({params}) -> {}{range}",
        f.name.name,
        type_expr_text(&f.result)
    )
}

fn table_signature(t: &TableDecl) -> String {
    let keys = t.keys.iter().map(type_expr_text).collect::<Vec<_>>();
    let keys = if keys.len() == 1 {
        keys.join("")
    } else {
        format!("({})", keys.join(", "))
    };
    format!(
        "table {}: {keys} -> {} default {}",
        t.name.name,
        type_expr_text(&t.value),
        literal_text(&t.default)
    )
}

fn action_text(a: &RuleAction) -> String {
    match a {
        RuleAction::Cap(v) => format!("cap overall at {}", number_text(*v)),
        RuleAction::Floor(v) => format!("floor overall at {}", number_text(*v)),
        RuleAction::Exclude => "exclude".to_string(),
        RuleAction::SetGrade(g) => format!("set grade {}", g.name),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::{NoModules, Options, check_source};

    const POLICY: &str = r#"policy p version 1 {
  use std.text.{coverage}
  /// How senior.
  enum Level { junior < senior }
  entity Job { skills: set<string>, level: Level }
  /// Weight of a level.
  table level_weight: Level -> number default 0.5 { senior: 1, junior: 0.8 }
  /// Half for a different level.
  fn bonus(a: Level, b: Level) -> number in [0, 1] = if a == b then 1.0 else 0.5
  pair query: Job, candidate: Job
  dimension fit weight 100% {
    let have = coverage(query.skills, candidate.skills)
    score = have * bonus(query.level, candidate.level) * level_weight[query.level]
    grade { good when score >= 0.5  poor otherwise }
  }
  rule juniors { when candidate.level == junior cap overall at 0.5 because "too junior" }
  grade overall { top when overall >= 0.5  rest otherwise }
  example "same" {
    query { skills: ["a"], level: senior }
    candidate { skills: ["a"], level: senior }
    expect fit.grade == good
    expect rule juniors does not fire
  }
}
"#;

    fn index() -> (Checked, SymbolIndex) {
        let checked = check_source("p.policy", POLICY, &mut NoModules, &Options::default());
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let index = SymbolIndex::build(&checked);
        (checked, index)
    }

    /// The definition of the `nth` occurrence of `needle`, at its first byte.
    fn at<'a>(index: &'a SymbolIndex, needle: &str, nth: usize) -> &'a Definition {
        let offset = POLICY.match_indices(needle).nth(nth).unwrap().0;
        index
            .at(offset as u32)
            .unwrap_or_else(|| panic!("nothing at `{needle}` #{nth}"))
            .1
    }

    #[test]
    fn names_resolve_to_their_definitions() {
        let (checked, index) = index();
        let have = at(&index, "have", 1);
        assert_eq!(
            (have.kind, have.signature.as_str()),
            (
                SymbolKind::Let,
                "let have = coverage(query.skills, candidate.skills)"
            )
        );
        assert_eq!(have.span.map(|s| s.start as usize), POLICY.find("have"));

        let skills = at(&index, "skills, candidate", 0);
        assert_eq!(skills.kind, SymbolKind::Field);
        assert_eq!(skills.signature, "Job.skills: set<string>");

        let junior = at(&index, "junior cap", 0);
        assert_eq!(junior.kind, SymbolKind::EnumValue);
        assert_eq!(junior.signature, "Level.junior");
        assert_eq!(junior.detail.as_deref(), Some("rank 0 of 2 (lowest first)"));

        let coverage = at(&index, "coverage(", 0);
        assert_eq!(coverage.module.as_deref(), Some("std.text"));
        let file = coverage.span.unwrap().file;
        assert_eq!(
            checked.sources.get(file).unwrap().name,
            "<stdlib/std/text.policy>"
        );

        let bonus = at(&index, "bonus(query", 0);
        assert_eq!(
            bonus.signature,
            "fn bonus(a: Level, b: Level) -> number in [0, 1]"
        );
        assert_eq!(bonus.docs, "Half for a different level.");

        let score = at(&index, "score >=", 0);
        assert_eq!(score.kind, SymbolKind::Dimension);
        assert_eq!(
            score.detail.as_deref(),
            Some("score in [0, 1]; grades good, poor")
        );

        let table = at(&index, "level_weight[", 0);
        assert_eq!(
            table.signature,
            "table level_weight: Level -> number default 0.5"
        );
        assert_eq!(table.detail.as_deref(), Some("2 entries"));
        assert_eq!(table.docs, "Weight of a level.");
        assert_eq!(at(&index, "senior: 1", 0).signature, "Level.senior");

        assert_eq!(at(&index, "good\n", 0).kind, SymbolKind::Grade);
        assert_eq!(at(&index, "juniors does", 0).kind, SymbolKind::Rule);
        assert_eq!(at(&index, "senior }", 0).signature, "Level.senior");
        assert_eq!(at(&index, "a == b", 0).kind, SymbolKind::Parameter);
    }

    #[test]
    fn completion_lists_members_and_what_is_visible() {
        let (_, index) = index();
        let names = |defs: Vec<&Definition>| -> Vec<String> {
            defs.iter().map(|d| d.name.clone()).collect()
        };
        assert_eq!(names(index.members("query")), ["skills", "level"]);
        assert_eq!(names(index.members("Level")), ["junior", "senior"]);
        assert!(index.members("nothing").is_empty());
        assert_eq!(names(index.dimensions()), ["fit"]);
        assert_eq!(names(index.grades(Some("fit"))), ["good", "poor"]);
        assert_eq!(names(index.grades(None)), ["top", "rest"]);
        assert_eq!(names(index.rules()), ["juniors"]);

        let in_dimension = names(index.visible_at(POLICY.find("score = have").unwrap() as u32));
        for wanted in ["have", "query", "fit", "bonus", "coverage", "junior", "len"] {
            assert!(
                in_dimension.iter().any(|n| n == wanted),
                "{wanted}: {in_dimension:?}"
            );
        }
        // A function body sees its parameters, not the pair or another dimension's `let`s.
        let in_function = names(index.visible_at(POLICY.find("a == b").unwrap() as u32));
        assert!(in_function.iter().any(|n| n == "a"));
        assert!(
            !in_function.iter().any(|n| n == "query" || n == "have"),
            "{in_function:?}"
        );
    }

    #[test]
    fn standard_functions_and_enums_are_listed_with_their_modules() {
        let all = stdlib_exports();
        let coverage = all.iter().find(|d| d.name == "coverage").unwrap();
        assert_eq!(coverage.module.as_deref(), Some("std.text"));
        assert_eq!(
            coverage.signature,
            "fn coverage(required: set<string>, have: set<string>) -> number in [0, 1]"
        );
        assert!(all.iter().any(|d| d.module.as_deref() == Some("std.num")));
        let seniority = all.iter().find(|d| d.name == "Seniority").unwrap();
        assert_eq!(
            (seniority.kind, seniority.module.as_deref()),
            (SymbolKind::Enum, Some("std.career"))
        );
        assert!(
            seniority
                .signature
                .starts_with("enum Seniority { intern < ")
        );
    }
}
