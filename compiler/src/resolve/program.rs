//! The resolved program: every enum, entity, table and function of the policy and the modules
//! it imports, and one scope of names per file. Later passes look names up here.

use crate::source::{FileId, Span};
use crate::syntax::ast::{FnDecl, ModuleDecl, TableDecl};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeId(pub usize);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnumId(pub usize);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(pub usize);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableId(pub usize);
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FnId(pub usize);

/// What a name in a scope stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Symbol {
    Enum(EnumId),
    Entity(EntityId),
    Table(TableId),
    Fn(FnId),
    /// A name whose import failed (already reported): its uses are errors nobody needs to see.
    Unresolved,
}

#[derive(Clone, Debug)]
pub struct Binding {
    pub symbol: Symbol,
    /// Where the name was defined or imported.
    pub span: Span,
    pub imported: bool,
}

#[derive(Clone, Debug)]
pub struct Import {
    pub name: String,
    pub span: Span,
    pub module: String,
}

/// The names one file (a policy or a module) sees.
#[derive(Clone, Debug)]
pub struct Scope {
    pub file: FileId,
    /// `Some("std.text")` for a module, `None` for the policy.
    pub module: Option<String>,
    pub names: BTreeMap<String, Binding>,
    pub imports: Vec<Import>,
}

#[derive(Clone, Debug)]
pub struct EnumDef {
    pub name: String,
    pub variants: Vec<String>,
    pub variant_spans: Vec<Span>,
    pub ordered: bool,
    pub docs: String,
    pub span: Span,
    pub scope: ScopeId,
}

#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: String,
    pub ty: Type,
    pub docs: String,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct EntityDef {
    pub name: String,
    /// In declaration order; set with [`EntityDef::set_fields`], which indexes them by name.
    pub fields: Vec<FieldDef>,
    /// Field name → position in `fields`: a lookup per field access stays constant-time for an
    /// entity with 100,000 fields.
    by_name: HashMap<String, usize>,
    pub docs: String,
    pub span: Span,
    pub scope: ScopeId,
}

impl EntityDef {
    /// An entity whose fields are not resolved yet.
    pub fn new(name: String, docs: String, span: Span, scope: ScopeId) -> Self {
        Self {
            name,
            fields: Vec::new(),
            by_name: HashMap::new(),
            docs,
            span,
            scope,
        }
    }

    pub fn set_fields(&mut self, fields: Vec<FieldDef>) {
        self.by_name = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name.clone(), i))
            .collect();
        self.fields = fields;
    }

    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.by_name.get(name).and_then(|&i| self.fields.get(i))
    }
}

#[derive(Clone, Debug)]
pub struct TableDef {
    pub decl: TableDecl,
    pub keys: Vec<Type>,
    pub value: Type,
    pub scope: ScopeId,
}

#[derive(Clone, Debug)]
pub struct FnDef {
    pub decl: FnDecl,
    pub params: Vec<(String, Type)>,
    pub result: Type,
    pub scope: ScopeId,
}

/// The types of the language.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    Number,
    Bool,
    String,
    /// Free text: models read it; rubric logic may not.
    Text,
    Set(Box<Type>),
    List(Box<Type>),
    Enum(EnumId),
    Entity(EntityId),
    Optional(Box<Type>),
    /// A duration (monitoring thresholds only).
    Duration,
    /// `abstain`: joins with a number into a score that may abstain.
    Abstain,
    /// The element type of `[]`, which fits any list or set.
    Anything,
    /// A type that could not be determined; already reported, fits everywhere.
    Error,
}

impl Type {
    pub fn is_error(&self) -> bool {
        matches!(self, Type::Error)
    }

    /// Whether a value of type `self` may be used where `want` is expected.
    pub fn fits(&self, want: &Type) -> bool {
        match (self, want) {
            (Type::Error, _) | (_, Type::Error) | (Type::Anything, _) | (_, Type::Anything) => true,
            (Type::Abstain, Type::Number) => true,
            (Type::Set(a) | Type::List(a), Type::Set(b)) => a.fits(b),
            (Type::List(a), Type::List(b)) => a.fits(b),
            (Type::Optional(a), Type::Optional(b)) => a.fits(b),
            (a, Type::Optional(b)) => a.fits(b),
            (a, b) => a == b,
        }
    }

    /// The common type of two branches, if they have one.
    pub fn unify(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Error, t) | (t, Type::Error) => Some(t.clone()),
            (Type::Abstain, Type::Number) | (Type::Number, Type::Abstain) => Some(Type::Number),
            (Type::Abstain, Type::Abstain) => Some(Type::Abstain),
            (Type::Set(a), Type::Set(b) | Type::List(b)) | (Type::List(a), Type::Set(b)) => {
                a.unify(b).map(|t| Type::Set(Box::new(t)))
            }
            (Type::List(a), Type::List(b)) => a.unify(b).map(|t| Type::List(Box::new(t))),
            (Type::Anything, t) | (t, Type::Anything) => Some(t.clone()),
            (a, b) if a == b => Some(a.clone()),
            _ => None,
        }
    }

    pub fn element(&self) -> Option<&Type> {
        match self {
            Type::Set(t) | Type::List(t) => Some(t),
            _ => None,
        }
    }
}

/// Every definition of one compilation.
#[derive(Clone, Debug, Default)]
pub struct Program {
    pub scopes: Vec<Scope>,
    pub enums: Vec<EnumDef>,
    pub entities: Vec<EntityDef>,
    pub tables: Vec<TableDef>,
    pub functions: Vec<FnDef>,
    /// Loaded modules by dotted name; `None` for one that failed to load.
    pub modules: BTreeMap<String, Option<ScopeId>>,
    pub module_decls: Vec<(ScopeId, ModuleDecl)>,
}

impl Program {
    pub fn scope(&self, id: ScopeId) -> Option<&Scope> {
        self.scopes.get(id.0)
    }

    /// The names of a scope whose symbol satisfies `kind`, sorted: "did you mean" candidates.
    pub fn names_where(&self, scope: ScopeId, kind: impl Fn(&Symbol) -> bool) -> Vec<String> {
        self.scope(scope)
            .map(|s| {
                s.names
                    .iter()
                    .filter(|(_, b)| kind(&b.symbol))
                    .map(|(n, _)| n.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn lookup(&self, scope: ScopeId, name: &str) -> Option<Symbol> {
        self.scope(scope)?.names.get(name).map(|b| b.symbol)
    }

    pub fn enum_def(&self, id: EnumId) -> Option<&EnumDef> {
        self.enums.get(id.0)
    }

    pub fn entity(&self, id: EntityId) -> Option<&EntityDef> {
        self.entities.get(id.0)
    }

    pub fn table(&self, id: TableId) -> Option<&TableDef> {
        self.tables.get(id.0)
    }

    pub fn function(&self, id: FnId) -> Option<&FnDef> {
        self.functions.get(id.0)
    }

    /// A type as an author writes it: `set<string>`, `Seniority?`.
    pub fn type_name(&self, ty: &Type) -> String {
        let mut out = String::new();
        self.write_type(&mut out, ty);
        out
    }

    fn write_type(&self, out: &mut String, ty: &Type) {
        let _ = match ty {
            Type::Number => write!(out, "number"),
            Type::Bool => write!(out, "bool"),
            Type::String => write!(out, "string"),
            Type::Text => write!(out, "text"),
            Type::Duration => write!(out, "duration"),
            Type::Abstain => write!(out, "abstain"),
            Type::Anything | Type::Error => write!(out, "unknown"),
            Type::Set(t) | Type::List(t) => {
                out.push_str(if matches!(ty, Type::Set(_)) {
                    "set<"
                } else {
                    "list<"
                });
                self.write_type(out, t);
                write!(out, ">")
            }
            Type::Enum(e) => write!(
                out,
                "{}",
                self.enum_def(*e).map_or("enum", |d| d.name.as_str())
            ),
            Type::Entity(e) => write!(
                out,
                "{}",
                self.entity(*e).map_or("entity", |d| d.name.as_str())
            ),
            Type::Optional(t) => {
                self.write_type(out, t);
                write!(out, "?")
            }
        };
    }
}
