//! What the server answers, computed from a document's [`Analysis`]: diagnostics, hover, go to
//! definition, completion, document symbols and formatting. Pure functions of the workspace;
//! the protocol loop lives in `server.rs`.

use crate::lines::Lines;
use crate::workspace::{Analysis, Document, Workspace};
use lsp_types::{
    CompletionItem, CompletionItemKind, Diagnostic as LspDiagnostic, DiagnosticRelatedInformation,
    DiagnosticSeverity, DiagnosticTag, DocumentSymbol, Documentation, Hover, HoverContents,
    Location, MarkupContent, MarkupKind, NumberOrString, Position, Range, SymbolKind as LspKind,
    TextEdit, Url,
};
use rubric_compiler::index::{Definition, SymbolIndex, SymbolKind, stdlib_exports};
use rubric_compiler::syntax::ast::{Item, PipelineDecl, TopItem};
use rubric_compiler::{Code, FileId, Limits, Severity, Span};
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------------
// Diagnostics

/// The document's diagnostics as LSP shows them. Problems found in an imported file are shown
/// at the `use` that imports it (or the top of the file), and point into that file.
pub fn diagnostics(workspace: &Workspace, uri: &Url, analysis: &Analysis) -> Vec<LspDiagnostic> {
    let checked = &analysis.checked;
    let Some(lines) = analysis.root_lines() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in &checked.diagnostics {
        let span = d.span();
        let location = span.and_then(|s| location(workspace, uri, analysis, s));
        let (range, message) = match span {
            Some(s) if s.file == checked.root => (lines.range(s), d.message.clone()),
            Some(s) => {
                let file = checked
                    .sources
                    .get(s.file)
                    .map_or("another file", |f| f.name.as_str());
                (
                    import_site(analysis, s.file).map_or_else(
                        || Range::new(Position::new(0, 0), Position::new(0, 0)),
                        |site| lines.range(site),
                    ),
                    format!("in `{file}`: {}", d.message),
                )
            }
            None => (Range::default(), d.message.clone()),
        };
        let message = match &d.help {
            Some(help) => format!("{message}\nhelp: {help}"),
            None => message,
        };
        let mut related: Vec<DiagnosticRelatedInformation> = d
            .labels
            .iter()
            .filter(|l| !l.primary && !l.message.is_empty())
            .filter_map(|l| {
                Some(DiagnosticRelatedInformation {
                    location: location_of(workspace, uri, analysis, l.span)?,
                    message: l.message.clone(),
                })
            })
            .collect();
        if span.is_some_and(|s| s.file != checked.root)
            && let Some(location) = location
        {
            let primary = d
                .labels
                .iter()
                .find(|l| l.primary)
                .map(|l| l.message.clone());
            related.insert(
                0,
                DiagnosticRelatedInformation {
                    location,
                    message: primary.unwrap_or_else(|| "here".to_string()),
                },
            );
        }
        out.push(LspDiagnostic {
            range,
            severity: Some(match d.severity() {
                Severity::Error => DiagnosticSeverity::ERROR,
                Severity::Warning => DiagnosticSeverity::WARNING,
            }),
            code: Some(NumberOrString::String(d.code.as_str().to_string())),
            source: Some("rubric".to_string()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            tags: matches!(d.code, Code::UnusedLet | Code::UnusedImport)
                .then(|| vec![DiagnosticTag::UNNECESSARY]),
            ..LspDiagnostic::default()
        });
    }
    out
}

fn location(workspace: &Workspace, uri: &Url, analysis: &Analysis, span: Span) -> Option<Location> {
    location_of(workspace, uri, analysis, span)
}

/// A span of any file of the compilation as an LSP location.
fn location_of(
    workspace: &Workspace,
    uri: &Url,
    analysis: &Analysis,
    span: Span,
) -> Option<Location> {
    let target = workspace.uri_of(uri, analysis, span.file)?;
    let lines = analysis.lines(span.file)?;
    Some(Location::new(target, lines.range(span)))
}

/// The `use` in the checked file that (directly) imports the module read from `file`.
fn import_site(analysis: &Analysis, file: FileId) -> Option<Span> {
    let checked = &analysis.checked;
    let module = checked
        .program
        .scopes
        .iter()
        .find(|s| s.file == file)
        .and_then(|s| s.module.clone());
    let tree = checked.tree.as_ref()?;
    let uses = tree.items.iter().flat_map(|top| match top {
        TopItem::Policy(p) => p.items.as_slice(),
        TopItem::Module(m) => m.items.as_slice(),
        TopItem::Pipeline(_) => &[],
    });
    let mut first = None;
    for item in uses {
        if let Item::Use(u) = item {
            if module.as_deref() == Some(u.path.raw.as_str()) {
                return Some(u.path.span);
            }
            first.get_or_insert(u.path.span);
        }
    }
    // A module that failed to load has no scope: its file name still says which `use` it is.
    let name = checked
        .sources
        .get(file)
        .map(|f| f.name.replace('\\', "/"))?;
    tree.items
        .iter()
        .flat_map(|top| match top {
            TopItem::Policy(p) => p.items.as_slice(),
            TopItem::Module(m) => m.items.as_slice(),
            TopItem::Pipeline(_) => &[],
        })
        .find_map(|item| match item {
            Item::Use(u) if name.ends_with(&format!("{}.policy", u.path.raw.replace('.', "/"))) => {
                Some(u.path.span)
            }
            _ => None,
        })
        .or(first)
}

// ---------------------------------------------------------------------------------------------
// Hover and definition

/// The docs and declaration of the name under the cursor.
pub fn hover(document: &Document, position: Position) -> Option<Hover> {
    let analysis = &document.analysis;
    let lines = analysis.root_lines()?;
    let (span, def) = analysis.index.at(lines.offset(position))?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: hover_text(def),
        }),
        range: Some(lines.range(span)),
    })
}

/// A definition in Markdown: the declaration as a code block, what the checker knows, the docs,
/// and the module it comes from.
pub fn hover_text(def: &Definition) -> String {
    let mut out = format!("```rubric\n{}\n```", def.signature);
    if let Some(detail) = &def.detail {
        out.push_str(&format!("\n\n*{detail}*"));
    }
    if !def.docs.trim().is_empty() {
        out.push_str(&format!("\n\n{}", def.docs.trim()));
    }
    if let Some(module) = &def.module {
        out.push_str(&format!("\n\n---\nfrom `{module}`"));
    }
    out
}

/// Where the name under the cursor is defined: in this file, in a module of the project, or in
/// a copy of the standard module on disk. Built-ins have no definition to go to.
pub fn definition(
    workspace: &Workspace,
    uri: &Url,
    document: &Document,
    position: Position,
) -> Option<Location> {
    let analysis = &document.analysis;
    let lines = analysis.root_lines()?;
    let (_, def) = analysis.index.at(lines.offset(position))?;
    location_of(workspace, uri, analysis, def.span?)
}

// ---------------------------------------------------------------------------------------------
// Completion

/// The keywords offered where a name may be written: those of expressions, items and examples
/// (not the pipeline's), a selection of the language's one list [`KEYWORDS`] and [`VALUE_WORDS`].
const OFFERED_KEYWORDS: &[&str] = &[
    "abstain",
    "and",
    "because",
    "dimension",
    "else",
    "entity",
    "enum",
    "example",
    "exclude",
    "expect",
    "false",
    "fn",
    "grade",
    "if",
    "let",
    "match",
    "min_coverage",
    "not",
    "or",
    "otherwise",
    "pair",
    "rule",
    "score",
    "table",
    "then",
    "true",
    "use",
    "weight",
    "when",
];

/// Completion at a position: after `role.` the fields of its entity, after `Enum.` its values,
/// elsewhere the names visible there, the standard library's functions (with the `use` that
/// imports one not imported yet) and keywords.
pub fn completion(document: &Document, position: Position) -> Vec<CompletionItem> {
    let current = &document.analysis;
    let Some(lines) = current.root_lines() else {
        return Vec::new();
    };
    let offset = lines.offset(position) as usize;
    let before = document.text.get(..offset).unwrap_or("");
    let prefix_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    // Half-typed text may not parse: names come from the latest text that did.
    let analysis = if current.checked.tree.is_some() {
        current
    } else {
        document.last_parsed.as_ref().unwrap_or(current)
    };
    let index = &analysis.index;
    if before.get(..prefix_start).is_some_and(|b| b.ends_with('.')) {
        let head_text = before.get(..prefix_start.saturating_sub(1)).unwrap_or("");
        let head_start = head_text
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let head = head_text.get(head_start..).unwrap_or("");
        return index.members(head).into_iter().map(item).collect();
    }
    let line = before.get(..prefix_start).unwrap_or("");
    let line = line
        .get(line.rfind('\n').map_or(0, |i| i + 1)..)
        .unwrap_or("");
    if let Some(items) = line_context(index, line) {
        return items;
    }
    if let Some(items) = pipeline_context(before.get(..prefix_start).unwrap_or(""), line) {
        return items;
    }
    if let Some((role, written)) = record_field_context(before.get(..prefix_start).unwrap_or("")) {
        let fields: Vec<CompletionItem> = index
            .members(role)
            .into_iter()
            .filter(|d| d.kind == SymbolKind::Field && !written.contains(&d.name.as_str()))
            .map(item)
            .collect();
        if !fields.is_empty() {
            return fields;
        }
    }
    let mut seen = BTreeSet::new();
    let mut items = Vec::new();
    for def in index.visible_at(u32::try_from(offset).unwrap_or(u32::MAX)) {
        if seen.insert(def.name.clone()) {
            items.push(item(def));
        }
    }
    for def in stdlib_exports() {
        if seen.insert(def.name.clone()) {
            let mut it = item(&def);
            it.additional_text_edits = import_edit(analysis, &def);
            items.push(it);
        }
    }
    for keyword in OFFERED_KEYWORDS {
        if seen.insert((*keyword).to_string()) {
            items.push(CompletionItem {
                label: (*keyword).to_string(),
                kind: Some(CompletionItemKind::KEYWORD),
                ..CompletionItem::default()
            });
        }
    }
    items
}

/// Completion decided by the line before the cursor: an expectation's dimension, rule or grade,
/// or a name to import from a standard module.
fn line_context(index: &SymbolIndex, line: &str) -> Option<Vec<CompletionItem>> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let keyword = |label: &str| CompletionItem {
        label: label.to_string(),
        kind: Some(CompletionItemKind::KEYWORD),
        ..CompletionItem::default()
    };
    match words.as_slice() {
        ["expect"] => {
            let mut items: Vec<CompletionItem> = index.dimensions().into_iter().map(item).collect();
            items.push(keyword("overall"));
            items.push(keyword("rule"));
            return Some(items);
        }
        ["expect", "rule"] => return Some(index.rules().into_iter().map(item).collect()),
        ["expect", target, "==" | "!="] if target.ends_with(".grade") => {
            let dimension = target.trim_end_matches(".grade");
            let dimension = (dimension != "overall").then_some(dimension);
            return Some(index.grades(dimension).into_iter().map(item).collect());
        }
        _ => {}
    }
    // `use std.text.{coverage, ` : what the module exports and the `use` does not name yet.
    let rest = line.trim_start().strip_prefix("use ")?;
    let (module, names) = rest.split_once(".{")?;
    if names.contains('}') {
        return None;
    }
    let written: Vec<&str> = names.split(',').map(str::trim).collect();
    Some(
        stdlib_exports()
            .iter()
            .filter(|d| d.module.as_deref() == Some(module.trim()))
            .filter(|d| !written.contains(&d.name.as_str()))
            .map(item)
            .collect(),
    )
}

/// Completion in a pipeline, from the vocabulary: the settings of the block the cursor is in
/// (those not written yet), or a metric after `alert` and `early_stop on`.
fn pipeline_context(before: &str, line: &str) -> Option<Vec<CompletionItem>> {
    use rubric_compiler::vocabulary::{self, Block};
    let words: Vec<&str> = line.split_whitespace().collect();
    if matches!(words.as_slice(), ["alert"] | ["early_stop", "on"]) {
        return Some(
            vocabulary::METRICS
                .iter()
                .map(|m| CompletionItem {
                    label: m.name.replace("@K", "@10"),
                    kind: Some(CompletionItemKind::VALUE),
                    detail: Some(format!("{:?}, {:?}", m.unit, m.direction).to_lowercase()),
                    documentation: Some(Documentation::String(m.doc.to_string())),
                    ..CompletionItem::default()
                })
                .collect(),
        );
    }
    let (block, written): (Block, Vec<&str>) = match words.first() {
        // `regularize weight_decay 0.01 |`: a name goes where an even number of words follow.
        Some(&"regularize") if words.len() % 2 == 1 => (
            Block::Regularize,
            words.iter().skip(1).step_by(2).copied().collect(),
        ),
        _ => {
            let (head, inside) = open_brace(before)?;
            let head_words: Vec<&str> = head.split_whitespace().collect();
            let block = match head_words.as_slice() {
                [.., "encoder"] => Block::Encoder,
                [.., "train"] => Block::Train,
                [.., "synthetic", "from", _] => Block::Synthetic,
                _ => return None,
            };
            let parts: Vec<&str> = inside.split(',').collect();
            // The setting being typed has no value yet.
            if parts
                .last()
                .is_some_and(|p| p.split_whitespace().count() > 0)
            {
                return None;
            }
            let written = parts
                .iter()
                .filter_map(|p| p.split_whitespace().next())
                .collect();
            (block, written)
        }
    };
    Some(
        vocabulary::settings(block)
            .filter(|spec| !written.contains(&spec.name))
            .map(|spec| CompletionItem {
                label: spec.name.to_string(),
                kind: Some(CompletionItemKind::PROPERTY),
                detail: Some(format!(
                    "{}; default {}",
                    spec.kind.type_name(),
                    spec.default.show()
                )),
                documentation: Some(Documentation::String(spec.doc.to_string())),
                insert_text: Some(format!("{} {}", spec.name, spec.example)),
                ..CompletionItem::default()
            })
            .collect(),
    )
}

/// The text before the innermost unclosed `{` and the text after it.
fn open_brace(before: &str) -> Option<(&str, &str)> {
    let mut depth = 0usize;
    let open = before.char_indices().rev().find_map(|(i, c)| {
        match c {
            '}' => depth += 1,
            '{' if depth > 0 => depth -= 1,
            '{' => return Some(i),
            _ => {}
        }
        None
    })?;
    Some((before.get(..open)?, before.get(open + 1..)?))
}

/// Where a field name of an example record goes (`query { a: 1, |`): the word before the
/// record's unclosed `{` (a role, when the caller finds one of that name) and the fields already
/// written in it.
fn record_field_context(before: &str) -> Option<(&str, Vec<&str>)> {
    let trimmed = before.trim_end();
    if !(trimmed.ends_with('{') || trimmed.ends_with(',')) {
        return None;
    }
    let mut depth = 0usize;
    let open = trimmed.char_indices().rev().find_map(|(i, c)| {
        match c {
            '}' | ']' | ')' => depth += 1,
            '[' | '(' if depth > 0 => depth -= 1,
            '[' | '(' => return Some(None),
            '{' if depth > 0 => depth -= 1,
            '{' => return Some(Some(i)),
            _ => {}
        }
        None
    })??;
    let head = trimmed.get(..open)?.trim_end();
    let word_start = head
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let role = head.get(word_start..)?;
    let written = trimmed
        .get(open + 1..)?
        .split(',')
        .filter_map(|part| part.split_once(':').map(|(name, _)| name.trim()))
        .collect();
    Some((role, written))
}

fn item(def: &Definition) -> CompletionItem {
    let kind = match def.kind {
        SymbolKind::Function | SymbolKind::Builtin => CompletionItemKind::FUNCTION,
        SymbolKind::Field => CompletionItemKind::FIELD,
        SymbolKind::Enum => CompletionItemKind::ENUM,
        SymbolKind::EnumValue | SymbolKind::Grade => CompletionItemKind::ENUM_MEMBER,
        SymbolKind::Entity => CompletionItemKind::STRUCT,
        SymbolKind::Table => CompletionItemKind::CONSTANT,
        SymbolKind::Parameter | SymbolKind::Let | SymbolKind::Role => CompletionItemKind::VARIABLE,
        SymbolKind::Dimension => CompletionItemKind::PROPERTY,
        SymbolKind::Module | SymbolKind::Policy | SymbolKind::Pipeline => {
            CompletionItemKind::MODULE
        }
        SymbolKind::Rule | SymbolKind::Example | SymbolKind::Teacher => CompletionItemKind::TEXT,
    };
    let detail = match &def.module {
        Some(module) => format!("{}  ({module})", def.signature),
        None => def.signature.clone(),
    };
    CompletionItem {
        label: def.name.clone(),
        kind: Some(kind),
        detail: Some(detail),
        documentation: (!def.docs.trim().is_empty()).then(|| {
            Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: def.docs.trim().to_string(),
            })
        }),
        ..CompletionItem::default()
    }
}

/// The edit that imports a standard function: into the file's `use` of its module when there is
/// one, else a new `use` after the policy's (or module's) opening line.
fn import_edit(analysis: &Analysis, def: &Definition) -> Option<Vec<TextEdit>> {
    let module = def.module.as_deref()?;
    let lines = analysis.root_lines()?;
    let tree = analysis.checked.tree.as_ref()?;
    let (header, items) = tree.items.iter().find_map(|top| match top {
        TopItem::Policy(p) => Some((p.name.span, p.items.as_slice())),
        TopItem::Module(m) => Some((m.path.span, m.items.as_slice())),
        TopItem::Pipeline(_) => None,
    })?;
    for item in items {
        if let Item::Use(u) = item
            && u.path.raw == module
            && let Some(last) = u.names.last()
        {
            let at = lines.position(last.span.end);
            return Some(vec![TextEdit::new(
                Range::new(at, at),
                format!(", {}", def.name),
            )]);
        }
    }
    let line = lines.position(header.end).line + 1;
    let at = Position::new(line, 0);
    Some(vec![TextEdit::new(
        Range::new(at, at),
        format!("  use {module}.{{{}}}\n", def.name),
    )])
}

// ---------------------------------------------------------------------------------------------
// Document symbols

/// The outline of the file: its policy (with entities and their fields, enums, tables,
/// functions, dimensions, rules, grades and examples), module or pipeline.
pub fn document_symbols(analysis: &Analysis) -> Vec<DocumentSymbol> {
    let Some(lines) = analysis.root_lines() else {
        return Vec::new();
    };
    let Some(tree) = &analysis.checked.tree else {
        return Vec::new();
    };
    tree.items
        .iter()
        .map(|top| match top {
            TopItem::Policy(p) => symbol(
                lines,
                &p.name.name,
                Some(format!("version {}", p.version)),
                LspKind::NAMESPACE,
                p.span,
                p.name.span,
                items(lines, &p.items),
            ),
            TopItem::Module(m) => symbol(
                lines,
                &m.path.raw,
                None,
                LspKind::MODULE,
                m.span,
                m.path.span,
                items(lines, &m.items),
            ),
            TopItem::Pipeline(p) => pipeline_symbol(lines, p),
        })
        .collect()
}

fn items(lines: &Lines, items: &[Item]) -> Vec<DocumentSymbol> {
    let mut out = Vec::new();
    for item in items {
        let s = match item {
            Item::Entity(e) => symbol(
                lines,
                &e.name.name,
                Some("entity".to_string()),
                LspKind::STRUCT,
                e.span,
                e.name.span,
                e.fields
                    .iter()
                    .map(|f| {
                        symbol(
                            lines,
                            &f.name.name,
                            Some(rubric_compiler::index::type_expr_text(&f.ty)),
                            LspKind::FIELD,
                            f.span,
                            f.name.span,
                            Vec::new(),
                        )
                    })
                    .collect(),
            ),
            Item::Enum(e) => symbol(
                lines,
                &e.name.name,
                Some("enum".to_string()),
                LspKind::ENUM,
                e.span,
                e.name.span,
                e.variants
                    .iter()
                    .map(|v| {
                        symbol(
                            lines,
                            &v.name.name,
                            None,
                            LspKind::ENUM_MEMBER,
                            v.name.span,
                            v.name.span,
                            Vec::new(),
                        )
                    })
                    .collect(),
            ),
            Item::Table(t) => symbol(
                lines,
                &t.name.name,
                Some("table".to_string()),
                LspKind::CONSTANT,
                t.span,
                t.name.span,
                Vec::new(),
            ),
            Item::Fn(f) => symbol(
                lines,
                &f.name.name,
                Some(rubric_compiler::index::fn_signature(f)),
                LspKind::FUNCTION,
                f.span,
                f.name.span,
                Vec::new(),
            ),
            Item::Dimension(d) => symbol(
                lines,
                &d.name.name,
                Some(format!("weight {}%", (d.weight * 1e6).round() / 1e4)),
                LspKind::PROPERTY,
                d.span,
                d.name.span,
                d.lets
                    .iter()
                    .map(|l| {
                        symbol(
                            lines,
                            &l.name.name,
                            Some("let".to_string()),
                            LspKind::VARIABLE,
                            l.span,
                            l.name.span,
                            Vec::new(),
                        )
                    })
                    .collect(),
            ),
            Item::Rule(r) => symbol(
                lines,
                &r.name.name,
                Some("rule".to_string()),
                LspKind::EVENT,
                r.span,
                r.name.span,
                Vec::new(),
            ),
            Item::OverallGrade(g) => symbol(
                lines,
                "grade overall",
                None,
                LspKind::ENUM,
                g.span,
                g.head,
                g.bands
                    .iter()
                    .map(|b| {
                        symbol(
                            lines,
                            &b.name.name,
                            None,
                            LspKind::ENUM_MEMBER,
                            b.span,
                            b.name.span,
                            Vec::new(),
                        )
                    })
                    .collect(),
            ),
            Item::Example(e) => symbol(
                lines,
                &e.name,
                Some("example".to_string()),
                LspKind::OBJECT,
                e.span,
                e.name_span,
                Vec::new(),
            ),
            Item::Use(_) | Item::Pair(_) | Item::MinCoverage(_) => continue,
        };
        out.push(s);
    }
    out
}

fn pipeline_symbol(lines: &Lines, p: &PipelineDecl) -> DocumentSymbol {
    let mut children: Vec<DocumentSymbol> = p
        .teachers
        .iter()
        .map(|t| {
            symbol(
                lines,
                &t.name.name,
                Some("teacher".to_string()),
                LspKind::CLASS,
                t.span,
                t.name.span,
                Vec::new(),
            )
        })
        .collect();
    children.extend(p.students.iter().map(|s| {
        let head = Span {
            end: s.span.start.saturating_add(7).min(s.span.end),
            ..s.span
        };
        symbol(
            lines,
            "student",
            None,
            LspKind::CLASS,
            s.span,
            head,
            Vec::new(),
        )
    }));
    symbol(
        lines,
        &p.name.name,
        Some(format!("pipeline for {}", p.policy.name)),
        LspKind::PACKAGE,
        p.span,
        p.name.span,
        children,
    )
}

#[allow(deprecated)] // `DocumentSymbol::deprecated` must be written though it is deprecated.
fn symbol(
    lines: &Lines,
    name: &str,
    detail: Option<String>,
    kind: LspKind,
    span: Span,
    selection: Span,
    children: Vec<DocumentSymbol>,
) -> DocumentSymbol {
    DocumentSymbol {
        name: if name.is_empty() { "_" } else { name }.to_string(),
        detail,
        kind,
        tags: None,
        deprecated: None,
        range: lines.range(span),
        selection_range: lines.range(selection),
        children: (!children.is_empty()).then_some(children),
    }
}

// ---------------------------------------------------------------------------------------------
// Formatting

/// Why a document is not formatted.
#[derive(Debug, PartialEq, Eq)]
pub struct FormatRefused(pub String);

/// The edit that puts the document in the canonical layout (none when it already is); refused
/// while the text has syntax errors, whose recovery could drop what the author wrote.
pub fn formatting(document: &Document) -> Result<Vec<TextEdit>, FormatRefused> {
    let text = &document.text;
    let parsed = rubric_compiler::syntax::parse(FileId(0), text, &Limits::default());
    if let Some(first) = parsed.diagnostics.iter().find(|d| d.is_error()) {
        let lines = Lines::new(text.as_str());
        let at = first.span().map(|s| lines.position(s.start));
        let place = at.map_or(String::new(), |p| {
            format!(" (line {}: {})", p.line + 1, first.message)
        });
        return Err(FormatRefused(format!(
            "not formatted: the file has syntax errors{place}"
        )));
    }
    let Some(tree) = parsed.tree else {
        return Err(FormatRefused(
            "not formatted: the file does not parse".to_string(),
        ));
    };
    let formatted = rubric_compiler::format::format_tree(&tree, text);
    if formatted == *text {
        return Ok(Vec::new());
    }
    let lines = Lines::new(text.as_str());
    Ok(vec![TextEdit::new(lines.all(), formatted)])
}

#[cfg(test)]
mod tests {
    use super::OFFERED_KEYWORDS;
    use rubric_compiler::syntax::{KEYWORDS, VALUE_WORDS};

    #[test]
    fn every_offered_keyword_is_a_word_of_the_language() {
        for word in OFFERED_KEYWORDS {
            assert!(
                KEYWORDS.contains(word) || VALUE_WORDS.contains(word),
                "`{word}` is not a keyword of the grammar"
            );
        }
    }
}
