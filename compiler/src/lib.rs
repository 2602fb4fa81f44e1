//! rubric-compiler: the policy language's front end and lowering. Pure: it reads no files and
//! touches no network; callers hand it names and texts, and for imports a [`ModuleProvider`].
//!
//! The passes hand each other phase-typed results: [`syntax`] (text → tree with spans),
//! [`resolve`] (modules, scopes, types of declarations), [`check`] (expressions, ranges, weights,
//! grades, rules, examples, pipelines). [`check_source`] runs them all.

pub mod check;
pub mod diagnostics;
pub mod format;
pub mod index;
pub mod lower;
pub mod resolve;
pub mod source;
pub mod stdlib;
pub mod syntax;
pub mod vocabulary;

pub use check::PolicyInfo;
pub use diagnostics::{Code, Diagnostic, Diagnostics, ErrorFormat, Severity};
pub use resolve::{LoadError, LoadedSource, MemoryModules, ModuleProvider, NoModules, Program};
pub use source::{FileId, Sources, Span};
pub use syntax::Limits;

use check::pipeline::{InputShape, PolicyOutline, RoleOutline, check_pipeline};
use resolve::Type;
use resolve::{Resolver, ScopeId};
use syntax::ast::{PipelineDecl, PolicyDecl, SourceTree, TopItem};

/// How to check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub limits: Limits,
}

/// Everything one check produced: the files read, the diagnostics (sorted), and what was
/// learned, for lowering and tools.
#[derive(Debug)]
pub struct Checked {
    pub sources: Sources,
    pub root: FileId,
    pub diagnostics: Vec<Diagnostic>,
    pub tree: Option<SourceTree>,
    pub program: Program,
    pub policy: Option<PolicyInfo>,
    pub policy_scope: Option<ScopeId>,
    /// The file of the policy a pipeline in its own file is for (parsed; its own problems are
    /// reported when it is checked itself).
    pub policy_file: Option<SourceTree>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    /// The policy declared in the checked file, if any.
    pub fn policy_decl(&self) -> Option<&PolicyDecl> {
        self.tree.as_ref()?.items.iter().find_map(|i| match i {
            TopItem::Policy(p) => Some(p),
            _ => None,
        })
    }

    /// The policy a compile lowers: the file's own, or the one beside a pipeline in its own
    /// file.
    pub fn policy_to_compile(&self) -> Option<&PolicyDecl> {
        self.policy_decl().or_else(|| {
            self.policy_file
                .as_ref()?
                .items
                .iter()
                .find_map(|i| match i {
                    TopItem::Policy(p) => Some(p),
                    _ => None,
                })
        })
    }
}

/// Parses, resolves and checks one file. Never panics: every problem is a diagnostic.
pub fn check_source(
    name: &str,
    text: &str,
    provider: &mut dyn ModuleProvider,
    options: &Options,
) -> Checked {
    // A fresh stack for every check (asking how much stack is left costs more: on the main
    // thread it reads `/proc/self/maps`).
    stacker::grow(syntax::STACK_SIZE, || {
        check_on_stack(name, text, provider, options)
    })
}

/// [`check_source`] for a file's bytes as read from disk. Text that is not UTF-8 is not parsed:
/// each byte sequence that cannot be read is an error at its line and column (the source shown
/// has U+FFFD in its place), so an author sees where to fix the encoding.
pub fn check_bytes(
    name: &str,
    bytes: &[u8],
    provider: &mut dyn ModuleProvider,
    options: &Options,
) -> Checked {
    match std::str::from_utf8(bytes) {
        Ok(text) => check_source(name, text, provider, options),
        Err(_) => not_utf8(name, bytes),
    }
}

/// The check of a file that is over the size limit, which the caller stopped reading at the
/// limit: `size` is its length when known (a regular file), None for a stream (`/dev/zero`).
pub fn too_large(name: &str, size: Option<u64>, options: &Options) -> Checked {
    let mut sources = Sources::new();
    let root = sources.add(name, "");
    let limit = options.limits.max_file_bytes;
    let message = match size {
        Some(n) => format!("this file is {n} bytes, more than the limit of {limit} bytes"),
        None => {
            format!("this file is more than the limit of {limit} bytes (reading stopped there)")
        }
    };
    let mut diagnostics = Diagnostics::new();
    diagnostics.push(
        Diagnostic::new(Code::SyntaxTooLarge, message)
            .at(Span::new(root, 0, 0), "the file starts here")
            .help("split the policy into modules (`module a.b { ... }` imported with `use`)"),
    );
    unread(sources, root, diagnostics)
}

/// The check of a file that could not be read as a policy: only its diagnostics.
fn unread(sources: Sources, root: FileId, diagnostics: Diagnostics) -> Checked {
    Checked {
        sources,
        root,
        diagnostics: diagnostics.into_sorted(),
        tree: None,
        program: Program::default(),
        policy: None,
        policy_scope: None,
        policy_file: None,
    }
}

fn not_utf8(name: &str, bytes: &[u8]) -> Checked {
    // At most this many bad sequences are reported: a file in another encoding has one on
    // nearly every line, and the first few say what is wrong.
    const MAX_REPORTED: usize = 10;
    let mut text = String::with_capacity(bytes.len() + 16);
    let mut bad: Vec<(usize, Vec<u8>)> = Vec::new();
    for chunk in bytes.utf8_chunks() {
        text.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            bad.push((text.len(), chunk.invalid().to_vec()));
            text.push(char::REPLACEMENT_CHARACTER);
        }
    }
    let mut sources = Sources::new();
    let root = sources.add(name, text.as_str());
    let mut diagnostics = Diagnostics::new();
    let count = bad.len();
    for (at, seq) in bad.iter().take(MAX_REPORTED) {
        let hex = seq
            .iter()
            .map(|b| format!("0x{b:02X}"))
            .collect::<Vec<_>>()
            .join(" ");
        let span = Span::new(root, *at, at + char::REPLACEMENT_CHARACTER.len_utf8());
        let help = if count > MAX_REPORTED {
            format!(
                "save the file as UTF-8; {count} places cannot be read, the first {MAX_REPORTED} are shown (a Latin-1 or Windows-1252 `é` is the byte 0xE9)"
            )
        } else {
            "save the file as UTF-8 (a Latin-1 or Windows-1252 `é` is the byte 0xE9; in UTF-8 it is 0xC3 0xA9)".to_string()
        };
        diagnostics.push(
            Diagnostic::new(
                Code::SyntaxNotUtf8,
                format!("this file is not UTF-8 text: the byte {hex} cannot be read"),
            )
            .at(span, format!("{hex} is not UTF-8"))
            .help(help),
        );
    }
    unread(sources, root, diagnostics)
}

fn check_on_stack(
    name: &str,
    text: &str,
    provider: &mut dyn ModuleProvider,
    options: &Options,
) -> Checked {
    let mut sources = Sources::new();
    let root = sources.add(name, text);
    let mut diagnostics = Diagnostics::new();
    let parsed = syntax::parse(root, text, &options.limits);
    diagnostics.extend(parsed.diagnostics);
    let Some(tree) = parsed.tree else {
        return Checked {
            sources,
            root,
            diagnostics: diagnostics.into_sorted(),
            tree: None,
            program: Program::default(),
            policy: None,
            policy_scope: None,
            policy_file: None,
        };
    };

    if tree.items.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                Code::SyntaxEmptyFile,
                "this file holds no policy, module or pipeline",
            )
            .at(Span::new(root, text.len(), text.len()), "the file ends here")
            .help("a policy file holds one `policy NAME version 1 { ... }` with its entities, `pair`, dimensions and `grade overall`; `rubric new NAME` writes one to start from"),
        );
    }
    let mut resolver = Resolver::new(&mut sources, &mut diagnostics, provider, options.limits);
    let mut main: Option<(ScopeId, Option<&PolicyDecl>)> = None;
    let mut pipelines: Vec<&PipelineDecl> = Vec::new();
    for item in &tree.items {
        match item {
            TopItem::Pipeline(p) => pipelines.push(p),
            TopItem::Policy(_) | TopItem::Module(_) if main.is_some() => {
                let span = match item {
                    TopItem::Policy(p) => p.name.span,
                    TopItem::Module(m) => m.path.span,
                    TopItem::Pipeline(p) => p.name.span,
                };
                resolver.diagnostics.push(
                    Diagnostic::new(Code::MisplacedItem, "a file holds one policy or one module")
                        .at(span, "a second one")
                        .help("move it into a file of its own"),
                );
            }
            TopItem::Policy(p) => {
                let scope = resolver.scope_for(root, None, &p.items);
                main = Some((scope, Some(p)));
            }
            TopItem::Module(m) => {
                resolver.misplaced_in_module(&m.items);
                let scope = resolver.scope_for(root, Some(m.path.raw.clone()), &m.items);
                main = Some((scope, None));
            }
        }
    }
    // A pipeline in its own file checks against the policy it names, beside it.
    let mut outside: Option<(String, PolicyDecl, ScopeId)> = None;
    let mut policy_file = None;
    if main.is_none()
        && let Some(first) = pipelines.first()
    {
        let wanted = first.policy.name.clone();
        if let Some((decl, scope, file)) = resolver.load_policy(&first.policy) {
            outside = Some((wanted, decl, scope));
            policy_file = Some(file);
        }
    }
    let program = std::mem::take(&mut resolver.program);
    drop(resolver);

    let used = check::check_definitions(&program, &mut diagnostics);
    let mut policy = None;
    let mut policy_scope = None;
    if let Some((scope, Some(decl))) = main {
        policy = Some(check::check_policy(
            &program,
            scope,
            decl,
            &used,
            &mut diagnostics,
        ));
        policy_scope = Some(scope);
    } else if let Some((_, decl, scope)) = &outside {
        // Its own problems are reported when it is checked itself; here only its outline counts.
        let mut quiet = Diagnostics::new();
        policy = Some(check::check_policy(
            &program, *scope, decl, &used, &mut quiet,
        ));
        policy_scope = Some(*scope);
    }
    for p in pipelines {
        match &policy {
            Some(info) => {
                let outline = PolicyOutline {
                    name: &info.name,
                    dimensions: info.dimensions.iter().map(|d| d.name.as_str()).collect(),
                    roles: role_outlines(&program, info),
                };
                check_pipeline(p, Some(&outline), &mut diagnostics);
            }
            None => {
                if main.is_some() || outside.is_none() {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::PipelinePolicy,
                            format!(
                                "no policy named `{}` is beside this pipeline",
                                p.policy.name
                            ),
                        )
                        .at(p.policy.span, "not found")
                        .help(format!(
                            "put the pipeline in `{0}.policy`, or beside it in the same folder",
                            p.policy.name
                        )),
                    );
                }
                check_pipeline(p, None, &mut diagnostics);
            }
        }
    }
    Checked {
        sources,
        root,
        diagnostics: diagnostics.into_sorted(),
        tree: Some(tree),
        program,
        policy,
        policy_scope,
        policy_file,
    }
}

/// The pair's roles with their fields as model inputs, for the pipeline checks.
fn role_outlines<'a>(program: &'a Program, info: &'a PolicyInfo) -> Vec<RoleOutline<'a>> {
    fn shape(ty: &Type) -> InputShape {
        match ty {
            Type::Optional(inner) => shape(inner),
            Type::Text => InputShape::Text,
            Type::String => InputShape::String,
            Type::Number => InputShape::Number,
            Type::Bool => InputShape::Bool,
            Type::Enum(_) => InputShape::Enum,
            Type::Set(of) | Type::List(of) if matches!(**of, Type::String | Type::Enum(_)) => {
                InputShape::Collection
            }
            _ => InputShape::Unusable,
        }
    }
    info.roles
        .iter()
        .map(|(name, entity)| RoleOutline {
            name,
            fields: program
                .entity(*entity)
                .map(|e| {
                    e.fields
                        .iter()
                        .map(|f| (f.name.as_str(), shape(&f.ty)))
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}
