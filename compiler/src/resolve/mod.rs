//! Name resolution: loads the modules a policy imports (the embedded stdlib, or the caller's
//! [`ModuleProvider`] for modules of the project), builds one scope per file with its enums,
//! entities, tables and functions, and resolves written types. Bodies are checked later.

mod program;

pub use program::*;

use crate::diagnostics::{Code, Diagnostic, Diagnostics, did_you_mean, suggestion_help};
use crate::source::{FileId, Sources, Span};
use crate::stdlib;
use crate::syntax::ast::*;
use crate::syntax::{self, Limits};
use std::collections::{BTreeMap, HashMap};

/// What a caller answers when the compiler asks for a module or a policy by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// No such file; `looked_for` says where (shown to the author).
    NotFound {
        looked_for: String,
    },
    /// The path resolves outside the project directory (through `..`, an absolute path or a
    /// symlink).
    Escapes {
        reason: String,
    },
    TooLarge {
        bytes: u64,
        limit: u64,
    },
    Unreadable {
        reason: String,
    },
}

/// A module's display name (a path relative to the project) and text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedSource {
    pub name: String,
    pub text: String,
}

/// How the compiler, which does no IO itself, obtains the project's own modules.
pub trait ModuleProvider {
    /// The module `a.b` (as `["a", "b"]`), conventionally the file `a/b.policy` under the
    /// project directory.
    fn module(&mut self, segments: &[&str]) -> Result<LoadedSource, LoadError>;

    /// The project's own modules by dotted name (`lib.scoring`), for "did you mean" on an
    /// import that is not found; a provider that cannot list them offers none.
    fn module_names(&mut self) -> Vec<String> {
        Vec::new()
    }

    /// The policy a pipeline in its own file names (`pipeline p for job_match`),
    /// conventionally `job_match.policy` beside the pipeline's file.
    fn policy(&mut self, name: &str) -> Result<LoadedSource, LoadError> {
        Err(LoadError::NotFound {
            looked_for: format!("{name}.policy"),
        })
    }
}

/// A provider for texts that import nothing but the standard library.
pub struct NoModules;

impl ModuleProvider for NoModules {
    fn module(&mut self, segments: &[&str]) -> Result<LoadedSource, LoadError> {
        Err(LoadError::NotFound {
            looked_for: format!("{}.policy", segments.join("/")),
        })
    }
}

/// A provider over an in-memory map of module name (`a.b`) and policy name to text; for tests
/// and tools that hold files in memory (the language server).
#[derive(Clone, Debug, Default)]
pub struct MemoryModules {
    pub modules: BTreeMap<String, String>,
    pub policies: BTreeMap<String, String>,
}

impl ModuleProvider for MemoryModules {
    fn module(&mut self, segments: &[&str]) -> Result<LoadedSource, LoadError> {
        let key = segments.join(".");
        let name = format!("{}.policy", segments.join("/"));
        match self.modules.get(&key) {
            Some(text) => Ok(LoadedSource {
                name,
                text: text.clone(),
            }),
            None => Err(LoadError::NotFound { looked_for: name }),
        }
    }

    fn module_names(&mut self) -> Vec<String> {
        self.modules.keys().cloned().collect()
    }

    fn policy(&mut self, name: &str) -> Result<LoadedSource, LoadError> {
        let file = format!("{name}.policy");
        match self.policies.get(name) {
            Some(text) => Ok(LoadedSource {
                name: file,
                text: text.clone(),
            }),
            None => Err(LoadError::NotFound { looked_for: file }),
        }
    }
}

pub(crate) struct Resolver<'a> {
    pub program: Program,
    pub sources: &'a mut Sources,
    pub diagnostics: &'a mut Diagnostics,
    provider: &'a mut dyn ModuleProvider,
    limits: Limits,
    /// Modules being loaded, innermost last: an import of one of them is a cycle.
    loading: Vec<String>,
}

impl<'a> Resolver<'a> {
    pub fn new(
        sources: &'a mut Sources,
        diagnostics: &'a mut Diagnostics,
        provider: &'a mut dyn ModuleProvider,
        limits: Limits,
    ) -> Self {
        Resolver {
            program: Program::default(),
            sources,
            diagnostics,
            provider,
            limits,
            loading: Vec::new(),
        }
    }

    /// Declares the items of a policy or module body in a new scope, loading its imports.
    pub fn scope_for(&mut self, file: FileId, module: Option<String>, items: &[Item]) -> ScopeId {
        let id = ScopeId(self.program.scopes.len());
        self.program.scopes.push(Scope {
            file,
            module,
            names: BTreeMap::new(),
            imports: Vec::new(),
        });
        // Declare first, so that types may refer to names declared later in the file.
        for item in items {
            match item {
                Item::Enum(e) => {
                    let ordered = e.ordered;
                    if let Some(span) = e.mixed_separators {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                format!("enum `{}` mixes `,` and `<` between its values", e.name.name),
                            )
                            .at(span, "this separator differs from the first")
                            .help("write `a < b < c` for an ordered enum (lowest first) or `a, b, c` for an unordered one"),
                        );
                    }
                    let mut variants: Vec<Ident> = Vec::new();
                    let mut seen: HashMap<&str, Span> = HashMap::new();
                    for v in &e.variants {
                        if let Some(&prev) = seen.get(v.name.name.as_str()) {
                            self.duplicate(&v.name, prev, "enum value");
                        } else {
                            seen.insert(&v.name.name, v.name.span);
                            variants.push(v.name.clone());
                        }
                    }
                    let enum_id = EnumId(self.program.enums.len());
                    self.program.enums.push(EnumDef {
                        name: e.name.name.clone(),
                        variants: variants.iter().map(|v| v.name.clone()).collect(),
                        variant_spans: variants.iter().map(|v| v.span).collect(),
                        ordered,
                        docs: e.docs.text(),
                        span: e.name.span,
                        scope: id,
                    });
                    self.declare(id, &e.name, Symbol::Enum(enum_id));
                }
                Item::Entity(e) => {
                    let entity_id = EntityId(self.program.entities.len());
                    self.program.entities.push(EntityDef::new(
                        e.name.name.clone(),
                        e.docs.text(),
                        e.name.span,
                        id,
                    ));
                    self.declare(id, &e.name, Symbol::Entity(entity_id));
                }
                Item::Table(t) => {
                    let table_id = TableId(self.program.tables.len());
                    self.program.tables.push(TableDef {
                        decl: t.clone(),
                        keys: Vec::new(),
                        value: Type::Error,
                        scope: id,
                    });
                    self.declare(id, &t.name, Symbol::Table(table_id));
                }
                Item::Fn(f) => {
                    if let Some(builtin) = crate::check::prelude::PRELUDE
                        .iter()
                        .find(|p| **p == f.name.name)
                    {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::Duplicate,
                                format!(
                                    "`{builtin}` is a built-in function and cannot be redefined"
                                ),
                            )
                            .at(f.name.span, "redefined here")
                            .help("give the function another name"),
                        );
                        continue;
                    }
                    let fn_id = FnId(self.program.functions.len());
                    self.program.functions.push(FnDef {
                        decl: f.clone(),
                        params: Vec::new(),
                        result: Type::Error,
                        scope: id,
                    });
                    self.declare(id, &f.name, Symbol::Fn(fn_id));
                }
                _ => {}
            }
        }
        for item in items {
            if let Item::Use(u) = item {
                self.import(id, u);
            }
        }
        // Now resolve the written types.
        for item in items {
            match item {
                Item::Entity(e) => {
                    let Some(Symbol::Entity(eid)) = self.local_symbol(id, &e.name) else {
                        continue;
                    };
                    let mut fields: Vec<FieldDef> = Vec::new();
                    let mut seen: HashMap<&str, Span> = HashMap::new();
                    for f in &e.fields {
                        if let Some(&prev) = seen.get(f.name.name.as_str()) {
                            self.duplicate(&f.name, prev, "field");
                            continue;
                        }
                        seen.insert(&f.name.name, f.name.span);
                        let ty = self.resolve_type(id, &f.ty);
                        let holds_entity = {
                            let mut t = &ty;
                            loop {
                                match t {
                                    Type::Entity(_) => break true,
                                    Type::Optional(i) | Type::Set(i) | Type::List(i) => t = i,
                                    _ => break false,
                                }
                            }
                        };
                        if holds_entity {
                            self.diagnostics.push(
                                Diagnostic::new(
                                    Code::TypeMismatch,
                                    format!("the field `{}` holds an entity; fields hold values", f.name.name),
                                )
                                .at(f.ty.span, "an entity type")
                                .help("records are flat: give the entity the fields it needs directly, like `company_industry: string`"),
                            );
                        }
                        fields.push(FieldDef {
                            name: f.name.name.clone(),
                            ty,
                            docs: f.docs.text(),
                            span: f.name.span,
                        });
                    }
                    if let Some(def) = self.program.entities.get_mut(eid.0) {
                        def.set_fields(fields);
                    }
                }
                Item::Table(t) => {
                    let Some(Symbol::Table(tid)) = self.local_symbol(id, &t.name) else {
                        continue;
                    };
                    let keys: Vec<Type> = t.keys.iter().map(|k| self.resolve_type(id, k)).collect();
                    let value = self.resolve_type(id, &t.value);
                    if let Some(def) = self.program.tables.get_mut(tid.0) {
                        def.keys = keys;
                        def.value = value;
                    }
                }
                Item::Fn(f) => {
                    let Some(Symbol::Fn(fid)) = self.local_symbol(id, &f.name) else {
                        continue;
                    };
                    let mut params: Vec<(String, Type)> = Vec::new();
                    let mut seen: HashMap<&str, Span> = HashMap::new();
                    for p in &f.params {
                        if let Some(&first) = seen.get(p.name.name.as_str()) {
                            self.duplicate(&p.name, first, "parameter");
                            continue;
                        }
                        seen.insert(&p.name.name, p.name.span);
                        let ty = self.resolve_type(id, &p.ty);
                        params.push((p.name.name.clone(), ty));
                    }
                    let result = self.resolve_type(id, &f.result);
                    if let Some(def) = self.program.functions.get_mut(fid.0) {
                        def.params = params;
                        def.result = result;
                    }
                }
                _ => {}
            }
        }
        id
    }

    fn local_symbol(&self, scope: ScopeId, name: &Ident) -> Option<Symbol> {
        self.program
            .scope(scope)
            .and_then(|s| s.names.get(&name.name))
            .filter(|b| b.span == name.span)
            .map(|b| b.symbol)
    }

    fn declare(&mut self, scope: ScopeId, name: &Ident, symbol: Symbol) {
        let Some(s) = self.program.scopes.get_mut(scope.0) else {
            return;
        };
        if let Some(prev) = s.names.get(&name.name) {
            let prev_span = prev.span;
            self.duplicate(name, prev_span, "name");
            return;
        }
        s.names.insert(
            name.name.clone(),
            Binding {
                symbol,
                span: name.span,
                imported: false,
            },
        );
    }

    pub fn duplicate(&mut self, name: &Ident, previous: Span, what: &str) {
        self.diagnostics.push(
            Diagnostic::new(
                Code::Duplicate,
                format!("the {what} `{}` is defined twice", name.name),
            )
            .at(name.span, "defined again here")
            .with(previous, "first defined here")
            .help(format!(
                "rename one of them, or remove the second `{}`",
                name.name
            )),
        );
    }

    fn import(&mut self, scope: ScopeId, u: &UseDecl) {
        let Some(module_scope) = self.load(&u.path) else {
            for name in &u.names {
                self.bind_unresolved(scope, name);
            }
            return;
        };
        let module_name = u.path.raw.clone();
        for name in &u.names {
            let found = self
                .program
                .scope(module_scope)
                .and_then(|s| s.names.get(&name.name))
                .filter(|b| !b.imported)
                .map(|b| b.symbol);
            let Some(symbol) = found else {
                let candidates: Vec<String> = self
                    .program
                    .scope(module_scope)
                    .map(|s| {
                        s.names
                            .iter()
                            .filter(|(_, b)| !b.imported)
                            .map(|(n, _)| n.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                let mut d = Diagnostic::new(
                    Code::UnknownImport,
                    format!("module `{module_name}` has no `{}`", name.name),
                )
                .at(name.span, "not defined in that module");
                if let Some(h) = suggestion_help(
                    &name.name,
                    "names it defines",
                    candidates.iter().map(String::as_str),
                ) {
                    d = d.help(h);
                }
                self.diagnostics.push(d);
                continue;
            };
            let Some(s) = self.program.scopes.get_mut(scope.0) else {
                return;
            };
            if let Some(prev) = s.names.get(&name.name) {
                let prev_span = prev.span;
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::AmbiguousName,
                        format!("`{}` is both imported and defined here", name.name),
                    )
                    .at(name.span, "imported here")
                    .with(prev_span, "also defined here")
                    .help("rename the local definition, or do not import this name"),
                );
                continue;
            }
            s.names.insert(
                name.name.clone(),
                Binding {
                    symbol,
                    span: name.span,
                    imported: true,
                },
            );
            s.imports.push(Import {
                name: name.name.clone(),
                span: name.span,
                module: module_name.clone(),
            });
        }
    }

    /// Binds an import that failed, so that its uses are not reported again.
    fn bind_unresolved(&mut self, scope: ScopeId, name: &Ident) {
        if let Some(s) = self.program.scopes.get_mut(scope.0) {
            s.names.entry(name.name.clone()).or_insert(Binding {
                symbol: Symbol::Unresolved,
                span: name.span,
                imported: true,
            });
        }
    }

    /// Loads (once) the module a `use` names and returns its scope.
    fn load(&mut self, path: &ModulePath) -> Option<ScopeId> {
        let raw = path.raw.as_str();
        if let Some(reason) = escape_reason(raw) {
            self.diagnostics.push(
                Diagnostic::new(Code::ImportEscape, format!("`{raw}` reaches outside the project directory"))
                    .at(path.span, reason)
                    .help("name modules by their dotted path under the project directory, like `use team.skills.{aliases}` for `team/skills.policy`"),
            );
            return None;
        }
        if let Some(scope) = self.program.modules.get(raw) {
            return *scope;
        }
        if let Some(start) = self.loading.iter().position(|m| m == raw) {
            let cycle: Vec<&str> = self
                .loading
                .iter()
                .skip(start)
                .map(String::as_str)
                .collect();
            self.diagnostics.push(
                Diagnostic::new(
                    Code::ImportCycle,
                    format!(
                        "modules import each other in a cycle: {} → {raw}",
                        cycle.join(" → ")
                    ),
                )
                .at(path.span, "this import closes the cycle")
                .help("move what both modules need into a third module that neither imports"),
            );
            return None;
        }
        let segments = path.segments();
        let loaded = if segments.first() == Some(&"std") {
            match stdlib::module(raw) {
                Some((name, text)) => Ok(LoadedSource {
                    name: name.to_string(),
                    text: text.to_string(),
                }),
                None => {
                    let mut d = Diagnostic::new(
                        Code::UnknownModule,
                        format!("the standard library has no module `{raw}`"),
                    )
                    .at(path.span, "no such module");
                    if let Some(best) =
                        did_you_mean(raw, stdlib::MODULES.iter().map(|(n, _, _)| *n))
                    {
                        d = d.help(format!("did you mean `{best}`?"));
                    } else {
                        d = d.help(format!(
                            "the standard library has {}",
                            stdlib::MODULES
                                .iter()
                                .map(|(n, _, _)| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ));
                    }
                    self.diagnostics.push(d);
                    self.program.modules.insert(raw.to_string(), None);
                    return None;
                }
            }
        } else {
            self.provider.module(&segments)
        };
        let loaded = match loaded {
            Ok(l) => l,
            Err(error) => {
                let not_found = matches!(error, LoadError::NotFound { .. });
                let mut d = load_error(error, raw, path.span, "module");
                if not_found {
                    let names = self.provider.module_names();
                    if let Some(best) = did_you_mean(raw, names.iter().map(String::as_str)) {
                        d = d.help(format!("did you mean `{best}`?"));
                    }
                }
                self.diagnostics.push(d);
                self.program.modules.insert(raw.to_string(), None);
                return None;
            }
        };
        let file = self.sources.add(loaded.name, loaded.text.as_str());
        let parsed = syntax::parse(file, &loaded.text, &self.limits);
        let failed = parsed.diagnostics.has_errors();
        self.diagnostics.extend(parsed.diagnostics);
        let Some(tree) = parsed.tree.filter(|_| !failed) else {
            self.program.modules.insert(raw.to_string(), None);
            return None;
        };
        let mut module = None;
        for item in tree.items {
            match item {
                TopItem::Module(m) if module.is_none() => module = Some(m),
                other => {
                    let span = match &other {
                        TopItem::Policy(p) => p.name.span,
                        TopItem::Module(m) => m.path.span,
                        TopItem::Pipeline(p) => p.name.span,
                    };
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::MisplacedItem,
                            format!("module file for `{raw}` holds more than one module"),
                        )
                        .at(span, "only one `module` a file")
                        .help("a module file holds exactly one `module a.b { ... }`"),
                    );
                }
            }
        }
        let Some(module) = module else {
            self.diagnostics.push(
                Diagnostic::new(Code::UnknownModule, format!("`{raw}` is not a module"))
                    .at(path.span, "imported here")
                    .help(format!("the file must declare `module {raw} {{ ... }}`")),
            );
            self.program.modules.insert(raw.to_string(), None);
            return None;
        };
        if module.path.raw != raw {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::ModuleName,
                    format!("the file for `{raw}` declares module `{}`", module.path.raw),
                )
                .at(module.path.span, format!("expected `{raw}`"))
                .help(format!(
                    "declare `module {raw} {{ ... }}`, or import it by its file's path"
                )),
            );
        }
        self.misplaced_in_module(&module.items);
        self.loading.push(raw.to_string());
        let scope = self.scope_for(file, Some(raw.to_string()), &module.items);
        self.loading.pop();
        self.program.modules.insert(raw.to_string(), Some(scope));
        self.program.module_decls.push((scope, module));
        Some(scope)
    }

    /// Loads the policy a pipeline in its own file names, and declares its scope. A policy that
    /// is not found is left for the caller to report.
    pub fn load_policy(&mut self, name: &Ident) -> Option<(PolicyDecl, ScopeId, SourceTree)> {
        let loaded = match self.provider.policy(&name.name) {
            Ok(l) => l,
            Err(LoadError::NotFound { .. }) => return None,
            Err(error) => {
                self.diagnostics
                    .push(load_error(error, &name.name, name.span, "policy"));
                return None;
            }
        };
        let file = self.sources.add(loaded.name, loaded.text.as_str());
        let parsed = syntax::parse(file, &loaded.text, &self.limits);
        // Its own problems are reported when it is checked itself.
        let tree = parsed.tree?;
        let policy = tree.items.iter().find_map(|i| match i {
            TopItem::Policy(p) if p.name.name == name.name => Some(p.clone()),
            _ => None,
        })?;
        let mut quiet = Diagnostics::new();
        let outer = std::mem::replace(self.diagnostics, std::mem::take(&mut quiet));
        let scope = self.scope_for(file, None, &policy.items);
        *self.diagnostics = outer;
        Some((policy, scope, tree))
    }

    /// Reports the items a module may not hold.
    pub fn misplaced_in_module(&mut self, items: &[Item]) {
        for item in items {
            let what = match item {
                Item::Dimension(d) => Some(("a dimension", d.name.span)),
                Item::Rule(r) => Some(("a rule", r.name.span)),
                Item::Example(e) => Some(("an example", e.name_span)),
                Item::Pair(p) => Some(("a `pair`", p.span)),
                Item::OverallGrade(g) => Some(("`grade overall`", g.head)),
                Item::MinCoverage(m) => Some(("`min_coverage`", m.span)),
                _ => None,
            };
            if let Some((what, span)) = what {
                self.diagnostics.push(
                    Diagnostic::new(Code::MisplacedItem, format!("{what} cannot be in a module"))
                        .at(span, "belongs in a policy")
                        .help("modules hold functions, enums, tables and entities; move this into the policy that uses it"),
                );
            }
        }
    }

    /// Resolves a written type in a scope.
    pub fn resolve_type(&mut self, scope: ScopeId, t: &TypeExpr) -> Type {
        let base = match t.name.name.as_str() {
            "number" => Type::Number,
            "bool" => Type::Bool,
            "string" => Type::String,
            "text" => Type::Text,
            "set" | "list" => {
                let inner = match &t.arg {
                    Some(a) => self.resolve_type(scope, a),
                    None => {
                        self.diagnostics.push(
                            Diagnostic::new(
                                Code::UnknownType,
                                format!("`{}` needs an element type", t.name.name),
                            )
                            .at(t.name.span, "which elements?")
                            .help(format!("write `{}<string>`", t.name.name)),
                        );
                        Type::Error
                    }
                };
                if !matches!(
                    inner,
                    Type::String | Type::Number | Type::Enum(_) | Type::Error
                ) {
                    let elem = self.program.type_name(&inner);
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("a {} cannot hold `{elem}` values", t.name.name),
                        )
                        .at(t.span, "unsupported element type")
                        .help(format!("a {} holds strings, numbers or the values of an enum, like `{}<string>`", t.name.name, t.name.name)),
                    );
                }
                if t.name.name == "set" {
                    Type::Set(Box::new(inner))
                } else {
                    Type::List(Box::new(inner))
                }
            }
            name => match self.program.lookup(scope, name) {
                Some(Symbol::Enum(e)) => Type::Enum(e),
                Some(Symbol::Entity(e)) => Type::Entity(e),
                Some(Symbol::Unresolved) => Type::Error,
                _ => {
                    let mut candidates: Vec<String> =
                        ["number", "bool", "string", "text", "set", "list"]
                            .iter()
                            .map(|s| s.to_string())
                            .collect();
                    candidates.extend(
                        self.program.names_where(scope, |s| {
                            matches!(s, Symbol::Enum(_) | Symbol::Entity(_))
                        }),
                    );
                    let mut d =
                        Diagnostic::new(Code::UnknownType, format!("unknown type `{name}`"))
                            .at(t.name.span, "not a type");
                    if let Some(best) = did_you_mean(name, candidates.iter().map(String::as_str)) {
                        d = d.help(format!("did you mean `{best}`?"));
                    } else if stdlib::exports(name).is_some() {
                        d = d.help(format!(
                            "`{name}` is in the standard library: add `use {}.{{{name}}}`",
                            stdlib::exports(name).unwrap_or("std")
                        ));
                    } else {
                        d = d.help("the types are number, bool, string, text, set<T>, list<T>, and the enums and entities in scope");
                    }
                    self.diagnostics.push(d);
                    Type::Error
                }
            },
        };
        if t.arg.is_some() && !matches!(t.name.name.as_str(), "set" | "list") {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::UnknownType,
                    format!("`{}` takes no element type", t.name.name),
                )
                .at(t.span, "only `set` and `list` take one")
                .help(format!("write `{}`", t.name.name)),
            );
        }
        if t.optional {
            Type::Optional(Box::new(base))
        } else {
            base
        }
    }
}

/// Why a module path as written would reach outside the project directory, if it would.
fn escape_reason(raw: &str) -> Option<&'static str> {
    if raw.starts_with('/') || raw.starts_with('\\') || raw.contains(':') || raw.starts_with('~') {
        return Some("an absolute path");
    }
    if raw.contains("..") {
        return Some("`..` climbs out of the project directory");
    }
    if raw.contains('/') || raw.contains('\\') || raw.contains('-') {
        return Some("a file path, not a dotted module name");
    }
    if raw.split('.').any(|s| {
        s.is_empty()
            || !s
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
    }) {
        return Some("not a dotted module name");
    }
    None
}

pub(crate) fn load_error(error: LoadError, name: &str, span: Span, what: &str) -> Diagnostic {
    match error {
        LoadError::NotFound { looked_for } => Diagnostic::new(Code::UnknownModule, format!("{what} `{name}` not found"))
            .at(span, format!("looked for `{looked_for}`"))
            .help("check the name, or create the file under the project directory (the nearest folder with a `rubric.toml`)"),
        LoadError::Escapes { reason } => {
            Diagnostic::new(Code::ImportEscape, format!("{what} `{name}` resolves outside the project directory"))
                .at(span, reason)
                .help("keep imported modules inside the project directory; a symlink may not point out of it")
        }
        LoadError::TooLarge { bytes, limit } => Diagnostic::new(
            Code::SyntaxTooLarge,
            format!("{what} `{name}` is {bytes} bytes, more than the limit of {limit} bytes"),
        )
        .at(span, "imported here")
        .help("split it into smaller modules"),
        LoadError::Unreadable { reason } => Diagnostic::new(Code::UnknownModule, format!("{what} `{name}` cannot be read"))
            .at(span, reason)
            .help("check the file's permissions and encoding (UTF-8)"),
    }
}
