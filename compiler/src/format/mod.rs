//! The formatter: one canonical layout for policy files, and the canonical text of a file's
//! meaning.
//!
//! [`format_tree`] prints a parsed file in the one layout this module defines, keeping every `//`
//! comment and `///` doc, and the trailing zeros of a decimal (`1.0`, `0.40`: scores read as
//! decimals); every other literal takes its one form. [`canonical`] prints the same tree without comments and docs, without
//! the parentheses the precedence table does not need, and with every literal in its one form, so
//! that its hash identifies a policy: an edit that only changes layout, comments or redundant
//! parentheses changes nothing there.
//!
//! How it works, in three steps:
//! 1. The tree becomes a [`Doc`] (after Wadler's "prettier printer"): text, line breaks that a
//!    group takes all flat or all broken, indentation and alignment. Marks in the doc record the
//!    source span of each name, literal, keyword and closing brace printed.
//! 2. The doc is laid out at 100 columns into lines, each line remembering its marks.
//! 3. Each `//` comment is attached to the marks around it: a comment that starts on the line
//!    where the previous mark ends trails that mark's line; any other comment goes on its own line
//!    before the line of the mark that follows it (or, when that mark is in the middle of a line,
//!    at the end of that line). Blank lines the author left before a statement or a comment are
//!    kept (at most one).
//!
//! The layout never depends on where comments end up: a group is forced to break only by a
//! comment between two of its elements, and a comment placed there stays there. So formatting a
//! formatted file changes nothing.

mod comments;
mod doc;
mod expr;
mod items;
mod literals;
mod pipeline;

use comments::*;
use doc::*;
use literals::*;

use crate::source::{FileId, Span};
use crate::syntax::ast::*;
use crate::syntax::expr::{PRIMARY_LEVEL, binary_level, groups_right, prefix_level};
use crate::syntax::{self, Limits};

/// The width a line may take, indentation included.
const WIDTH: usize = 100;
/// One level of indentation.
const INDENT: usize = 2;
/// A `match` with this many arms or more takes one line an arm.
const TABLE_ARMS: usize = 4;

/// The canonical layout of a parsed file, keeping every `//` comment and `///` doc.
pub fn format_tree(tree: &SourceTree, source: &str) -> String {
    stacker::grow(syntax::STACK_SIZE, || {
        let mut comments = tree.comments.clone();
        comments.sort_by_key(|c| (c.span.start, c.span.end));
        let printer = Printer {
            src: Some(source),
            comments: &comments,
            keep_parens: true,
        };
        let doc = printer.file(tree);
        assemble(render(&doc), &tree.comments, source)
    })
}

/// The canonical form of the file's meaning: the same printer without comments and docs.
/// Its hash identifies the policy downstream, so a formatting-only or comment-only edit changes
/// nothing.
pub fn canonical(tree: &SourceTree) -> String {
    stacker::grow(syntax::STACK_SIZE, || {
        let printer = Printer {
            src: None,
            comments: &[],
            keep_parens: false,
        };
        let doc = printer.file(tree);
        assemble(render(&doc), &[], "")
    })
}

/// One expression in the formatter's layout, without comments, keeping its author's parentheses
/// and decimals (`source` is the text of the file it was parsed from): for policy documents.
pub fn format_expr(expr: &Expr, source: &str) -> String {
    stacker::grow(syntax::STACK_SIZE, || {
        let printer = Printer {
            src: Some(source),
            comments: &[],
            keep_parens: true,
        };
        let doc = printer.expr(expr);
        assemble(render(&doc), &[], source).trim_end().to_string()
    })
}

/// A pipeline in the formatter's layout, without comments or its own docs (`source` is the text
/// of the file it was parsed from): for policy documents.
pub fn format_pipeline(pipeline: &PipelineDecl, source: &str) -> String {
    stacker::grow(syntax::STACK_SIZE, || {
        let printer = Printer {
            src: Some(source),
            comments: &[],
            keep_parens: true,
        };
        let undocumented = PipelineDecl {
            docs: Docs::default(),
            ..pipeline.clone()
        };
        let doc = printer.pipeline(&undocumented);
        assemble(render(&doc), &[], source).trim_end().to_string()
    })
}

/// Parses and formats; None when the text does not parse.
pub fn format_source(text: &str) -> Option<String> {
    let parsed = syntax::parse(FileId(0), text, &Limits::default());
    parsed.tree.map(|tree| format_tree(&tree, text))
}

// ---------------------------------------------------------------------------------------------
// One line

/// The printer of one literal or expression on one line, for messages, hovers, documents and
/// labels: every literal in its one form, the author's parentheses kept, no comments.
const ONE_LINE: Printer<'static> = Printer {
    src: None,
    comments: &[],
    keep_parens: true,
};

/// A literal on one line, as the formatter writes it: `0.85`, `40%`, `"abc"`, `[a, b]`.
pub fn literal_text(literal: &Literal) -> String {
    stacker::grow(syntax::STACK_SIZE, || flat(&ONE_LINE.literal(literal)))
}

/// An expression on one line, as the formatter writes it (every literal in its one form, the
/// author's parentheses kept): `len(required) > 0`, `session == "abc"`.
pub fn expr_text(expr: &Expr) -> String {
    stacker::grow(syntax::STACK_SIZE, || flat(&ONE_LINE.expr(expr)))
}

/// [`expr_text`] cut to at most `max_chars` characters, ending in `...` where it was cut: for
/// labels.
pub fn expr_label(expr: &Expr, max_chars: usize) -> String {
    let text = expr_text(expr);
    if text.chars().count() > max_chars {
        let cut: String = text.chars().take(max_chars.saturating_sub(3)).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// A number in its one form, the shortest that reads back identically: `1`, `0.85`, `3e-5`.
pub fn number_text(v: f64) -> String {
    number(v)
}

/// A doc printed flat: every group on one line.
fn flat(doc: &Doc) -> String {
    fn go(d: &Doc, out: &mut String) {
        match d {
            Doc::Text(s) => out.push_str(s),
            Doc::Line | Doc::HardLine => out.push(' '),
            Doc::SoftLine | Doc::Blank(_) | Doc::Mark(..) => {}
            Doc::IfBreak(_, flat) => go(flat, out),
            Doc::Indent(x) | Doc::Align(x) | Doc::Group(x, _) => go(x, out),
            Doc::Concat(v) => v.iter().for_each(|x| go(x, out)),
        }
    }
    let mut out = String::new();
    go(doc, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// Precedence

// The levels come from the parser's one table, `syntax::PRECEDENCE`.

/// Lower than any level: what an expression can never be read as continuing.
const NEVER_OPEN: u8 = u8::MAX;

/// One operand of a run of operators: the operator before it (none for the first), the operand
/// and its span.
type Piece = (Option<BinaryOp>, Doc, Span);

/// How a broken chain of operators continues: one level deeper, or aligned with its first
/// operand (inside parentheses).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Hang {
    Indent,
    Aligned,
}

// ---------------------------------------------------------------------------------------------
// The printer

/// One element of a block: a statement, field, entry or item on its own line(s).
struct Entry {
    /// Where it starts in the source (its docs included), to keep the author's blank line.
    start: Option<u32>,
    /// Whether a blank line always separates it from the element before.
    spaced: bool,
    doc: Doc,
}

impl Entry {
    fn new(start: u32, doc: Doc) -> Self {
        Entry {
            start: Some(start),
            spaced: false,
            doc,
        }
    }

    fn bare(doc: Doc) -> Self {
        Entry {
            start: None,
            spaced: false,
            doc,
        }
    }
}

struct Printer<'a> {
    /// The source text when formatting; `None` for the canonical text.
    src: Option<&'a str>,
    comments: &'a [Comment],
    /// Whether the author's parentheses are printed (formatting, and one expression on one line)
    /// or only those the precedence table needs (the canonical text).
    keep_parens: bool,
}

impl Printer<'_> {
    fn formatting(&self) -> bool {
        self.src.is_some()
    }

    fn source(&self) -> &str {
        self.src.unwrap_or("")
    }

    /// The text the author wrote at `span`, when formatting.
    fn written(&self, span: Span) -> Option<&str> {
        self.src.and_then(|s| s.get(span.range())).map(str::trim)
    }

    /// A number, keeping the trailing zeros its author wrote (`1.0`, `0.40`: scores read as
    /// decimals, and bands line up); any other spelling, and the canonical text, take the one
    /// shortest form (`0.00003` is `3e-5`).
    fn numeral(&self, v: f64, span: Span) -> String {
        let shortest = number(v);
        self.written(span)
            .filter(|t| with_trailing_zeros(t, &shortest))
            .map_or(shortest.clone(), str::to_string)
    }

    // ---- marks, docs, blank lines

    fn mark(&self, span: Span) -> Doc {
        if self.formatting() && span.end > span.start {
            Doc::Mark(span.start, span.end)
        } else {
            nil()
        }
    }

    /// Marks the one character `c` at `pos`, when it is there.
    fn mark_char(&self, pos: u32, c: u8) -> Doc {
        if self.source().as_bytes().get(pos as usize) == Some(&c) {
            Doc::Mark(pos, pos + 1)
        } else {
            nil()
        }
    }

    /// Marks the `}` (or other closing character) that ends `span`.
    fn close_mark(&self, span: Span, c: u8) -> Doc {
        match span.end.checked_sub(1) {
            Some(at) if span.end > span.start => self.mark_char(at, c),
            _ => nil(),
        }
    }

    fn ident(&self, id: &Ident) -> Doc {
        cat(vec![self.mark(id.span), text(&id.name)])
    }

    /// A keyword at the start of a node (after its docs), marked.
    fn keyword(&self, node: Span, word: &str) -> Doc {
        let src = self.source();
        let start = skip_trivia_and_docs(src, node.start as usize);
        let marked = src.get(start..).is_some_and(|s| s.starts_with(word));
        if marked && let (Ok(s), Ok(len)) = (u32::try_from(start), u32::try_from(word.len())) {
            cat(vec![Doc::Mark(s, s.saturating_add(len)), text(word)])
        } else {
            text(word)
        }
    }

    fn docs(&self, docs: &Docs) -> Doc {
        self.doc_lines(&docs.lines, docs.span)
    }

    /// Doc lines, with the blank lines the author left between them. (The tree's span of docs
    /// is not reliable, only its start: the lines are found again in the source.)
    fn doc_lines(&self, lines: &[String], span: Option<Span>) -> Doc {
        if !self.formatting() || lines.is_empty() {
            return nil();
        }
        let found = span.and_then(|s| self.doc_positions(s.start as usize, lines.len()));
        let mut parts = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let at = found
                .as_ref()
                .and_then(|f| f.get(i))
                .and_then(|&(s, e)| Some((u32::try_from(s).ok()?, u32::try_from(e).ok()?)));
            if let Some((s, e)) = at {
                if i > 0 && blank_before(self.source(), s) {
                    parts.push(Doc::Blank(BlankKind::Source));
                }
                parts.push(Doc::Mark(s, e));
            }
            parts.push(text(doc_line(line)));
            parts.push(Doc::HardLine);
        }
        cat(parts)
    }

    /// Where each of `count` doc lines from `start` begins and ends in the source.
    fn doc_positions(&self, start: usize, count: usize) -> Option<Vec<(usize, usize)>> {
        let src = self.source();
        let mut out = Vec::with_capacity(count);
        let mut pos = start;
        while out.len() < count {
            pos = skip_trivia(src, pos);
            let rest = src.get(pos..).filter(|r| r.starts_with("///"))?;
            let line = rest.get(..rest.find('\n').unwrap_or(rest.len()))?;
            out.push((pos, pos + line.trim_end().len()));
            pos += line.len();
        }
        Some(out)
    }

    /// The `///` lines at the start of `span`, for the nodes whose docs the tree does not keep.
    fn source_docs(&self, span: Span) -> (Vec<String>, Option<Span>) {
        let src = self.source();
        let mut lines = Vec::new();
        let mut first: Option<usize> = None;
        let mut last = 0;
        let mut pos = span.start as usize;
        while let Some(rest) = src.get(pos..) {
            if rest.starts_with("///") {
                let len = rest.find('\n').unwrap_or(rest.len());
                let raw = rest.get(..len).unwrap_or("");
                let body = raw.trim_start_matches("///");
                let body = body.strip_prefix(' ').unwrap_or(body).trim_end();
                lines.push(body.to_string());
                first.get_or_insert(pos);
                last = pos + raw.trim_end().len();
                pos = skip_trivia(src, pos + len);
            } else {
                break;
            }
        }
        let docs_span = first.map(|f| Span::new(span.file, f, last));
        (lines, docs_span)
    }

    /// The separator before an element of a block: a blank line when the author left one, or
    /// when `spaced` asks for one.
    fn separator(&self, start: Option<u32>, spaced: bool) -> Doc {
        let src_blank = self.formatting() && start.is_some_and(|s| blank_before(self.source(), s));
        if src_blank {
            Doc::Blank(BlankKind::Source)
        } else if spaced {
            Doc::Blank(BlankKind::Forced)
        } else {
            nil()
        }
    }

    /// The comments from the first one that starts at or after `from` (they are in source order).
    fn comments_from(&self, from: u32) -> &[Comment] {
        let at = self.comments.partition_point(|c| c.span.start < from);
        self.comments.get(at..).unwrap_or_default()
    }

    fn comment_within(&self, from: u32, to: u32) -> bool {
        self.comments_from(from)
            .first()
            .is_some_and(|c| c.span.end <= to)
    }

    /// Whether a comment sits in a gap between two neighbouring spans.
    fn comment_between(&self, spans: &[Span]) -> bool {
        spans
            .windows(2)
            .any(|w| matches!(w, [a, b] if self.comment_within(a.end, b.start)))
    }

    /// Whether a comment sits inside `outer` (strictly between `from` and its end) but in none
    /// of `parts`.
    /// `parts` are in source order.
    fn comment_outside_parts(&self, from: u32, outer: Span, parts: &[Span]) -> bool {
        self.comments_from(from)
            .iter()
            .take_while(|c| c.span.end < outer.end)
            .any(|c| {
                let before = parts.partition_point(|p| p.start <= c.span.start);
                before
                    .checked_sub(1)
                    .and_then(|k| parts.get(k))
                    .is_none_or(|p| c.span.end > p.end)
            })
    }

    /// A block: `head {`, its entries one per line, `}`.
    fn block(&self, head: Doc, entries: Vec<Entry>, span: Span) -> Doc {
        if entries.is_empty() {
            let inner = if self.comment_within(span.start + 1, span.end) {
                Doc::HardLine
            } else {
                nil()
            };
            return cat(vec![
                head,
                text(" {"),
                inner,
                self.close_mark(span, b'}'),
                text("}"),
            ]);
        }
        let mut body = Vec::with_capacity(entries.len() * 3);
        for (i, e) in entries.into_iter().enumerate() {
            body.push(Doc::HardLine);
            body.push(self.separator(e.start, e.spaced && i > 0));
            body.push(e.doc);
        }
        cat(vec![
            head,
            text(" {"),
            indent(cat(body)),
            Doc::HardLine,
            self.close_mark(span, b'}'),
            text("}"),
        ])
    }

    /// Elements between `open` and `close`: on one line when they fit (`{ a, b }`, or `(a, b)`
    /// when not `spaced`), else one a line, indented, each followed by its separator and the last
    /// by `trailing`.
    fn delimited(
        &self,
        open: &str,
        items: Vec<Doc>,
        trailing: &str,
        close: Doc,
        spaced: bool,
        force: bool,
    ) -> Doc {
        let line = || if spaced { Doc::Line } else { Doc::SoftLine };
        group_if(
            cat(vec![
                text(open),
                indent(cat(vec![
                    line(),
                    cat(items),
                    if_break(text(trailing), nil()),
                ])),
                line(),
                close,
            ]),
            force,
        )
    }

    /// Items followed by separators, joined by line breaks, for [`Self::delimited`].
    fn separated(items: Vec<Doc>, sep: &str) -> Vec<Doc> {
        let n = items.len();
        let mut out = Vec::with_capacity(n * 2);
        for (i, item) in items.into_iter().enumerate() {
            if i + 1 < n {
                out.push(cat(vec![item, text(sep), Doc::Line]));
            } else {
                out.push(item);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
