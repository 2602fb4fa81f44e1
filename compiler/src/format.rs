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
// Documents

/// Why a blank line stands before a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BlankKind {
    /// The author left one there.
    Source,
    /// The layout wants one (between items) though the author left none.
    Forced,
}

#[derive(Debug)]
enum Doc {
    /// Text without line breaks.
    Text(String),
    /// A space when its group is flat, a line break when it is broken.
    Line,
    /// Nothing when its group is flat, a line break when it is broken.
    SoftLine,
    /// Always a line break; the groups around it break.
    HardLine,
    /// Right after a line break: a blank line.
    Blank(BlankKind),
    /// The source span of what is printed next (for placing comments).
    Mark(u32, u32),
    /// One more level of indentation for the lines inside.
    Indent(Box<Doc>),
    /// The lines inside start at the column where this starts.
    Align(Box<Doc>),
    /// All its line breaks flat, or all broken; `true` when it must break.
    Group(Box<Doc>, bool),
    /// The first when the enclosing group breaks, else the second.
    IfBreak(Box<Doc>, Box<Doc>),
    Concat(Vec<Doc>),
}

fn nil() -> Doc {
    Doc::Concat(Vec::new())
}

fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

fn cat(parts: Vec<Doc>) -> Doc {
    Doc::Concat(parts)
}

fn indent(d: Doc) -> Doc {
    Doc::Indent(Box::new(d))
}

fn align(d: Doc) -> Doc {
    Doc::Align(Box::new(d))
}

fn group(d: Doc) -> Doc {
    group_if(d, false)
}

fn group_if(d: Doc, force: bool) -> Doc {
    let broken = force || must_break(&d);
    Doc::Group(Box::new(d), broken)
}

fn if_break(broken: Doc, flat: Doc) -> Doc {
    Doc::IfBreak(Box::new(broken), Box::new(flat))
}

/// Whether a doc holds a hard line break outside any group (a group knows its own).
fn must_break(d: &Doc) -> bool {
    match d {
        Doc::HardLine | Doc::Blank(_) => true,
        Doc::Group(_, broken) => *broken,
        Doc::Indent(x) | Doc::Align(x) => must_break(x),
        Doc::Concat(v) => v.iter().any(must_break),
        Doc::Text(_) | Doc::Line | Doc::SoftLine | Doc::Mark(..) | Doc::IfBreak(..) => false,
    }
}

/// `items` separated by `sep` and a line break.
fn join(items: Vec<Doc>, sep: &str) -> Doc {
    let mut parts = Vec::with_capacity(items.len() * 3);
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            parts.push(text(sep));
            parts.push(Doc::Line);
        }
        parts.push(item);
    }
    cat(parts)
}

/// The width of a doc printed flat.
fn flat_width(d: &Doc) -> usize {
    match d {
        Doc::Text(s) => s.chars().count(),
        Doc::Line => 1,
        Doc::IfBreak(_, flat) => flat_width(flat),
        Doc::Indent(x) | Doc::Align(x) | Doc::Group(x, _) => flat_width(x),
        Doc::Concat(v) => v.iter().map(flat_width).sum(),
        Doc::SoftLine | Doc::HardLine | Doc::Blank(_) | Doc::Mark(..) => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// Layout

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Flat,
    Break,
}

/// One laid-out line.
#[derive(Debug, Default)]
struct OutLine {
    indent: usize,
    text: String,
    width: usize,
    /// The source spans printed on this line, in the order printed.
    marks: Vec<(u32, u32)>,
    /// Set for a blank line.
    blank: Option<BlankKind>,
}

impl OutLine {
    fn new(indent: usize) -> Self {
        OutLine {
            indent,
            ..OutLine::default()
        }
    }

    fn column(&self) -> usize {
        self.indent + self.width
    }
}

/// Lays a doc out into lines of at most [`WIDTH`] columns where the groups allow.
fn render(doc: &Doc) -> Vec<OutLine> {
    let mut lines = vec![OutLine::new(0)];
    let mut stack: Vec<(usize, Mode, &Doc)> = vec![(0, Mode::Break, doc)];
    while let Some((ind, mode, d)) = stack.pop() {
        let column = lines.last().map_or(0, OutLine::column);
        match d {
            Doc::Text(s) => {
                if let Some(line) = lines.last_mut() {
                    line.text.push_str(s);
                    line.width += s.chars().count();
                }
            }
            Doc::Concat(v) => {
                for x in v.iter().rev() {
                    stack.push((ind, mode, x));
                }
            }
            Doc::Indent(x) => stack.push((ind + INDENT, mode, x)),
            Doc::Align(x) => stack.push((column, mode, x)),
            Doc::Group(x, broken) => {
                let m = if *broken {
                    Mode::Break
                } else if mode == Mode::Flat || fits(x, &stack, WIDTH.saturating_sub(column)) {
                    Mode::Flat
                } else {
                    Mode::Break
                };
                stack.push((ind, m, x));
            }
            Doc::IfBreak(broken, flat) => {
                stack.push((ind, mode, if mode == Mode::Break { broken } else { flat }));
            }
            Doc::Line | Doc::SoftLine if mode == Mode::Flat => {
                if matches!(d, Doc::Line)
                    && let Some(line) = lines.last_mut()
                {
                    line.text.push(' ');
                    line.width += 1;
                }
            }
            Doc::Line | Doc::SoftLine | Doc::HardLine => lines.push(OutLine::new(ind)),
            Doc::Blank(kind) => {
                if let Some(line) = lines.last_mut()
                    && line.text.is_empty()
                    && line.marks.is_empty()
                {
                    line.blank = Some(*kind);
                    let indent = line.indent;
                    lines.push(OutLine::new(indent));
                }
            }
            Doc::Mark(s, e) => {
                if let Some(line) = lines.last_mut() {
                    line.marks.push((*s, *e));
                }
            }
        }
    }
    lines
}

/// Whether `next`, printed flat, and what follows it up to the next line break fit in `width`.
fn fits(next: &Doc, rest: &[(usize, Mode, &Doc)], width: usize) -> bool {
    let mut remaining = width as isize;
    let mut cmds: Vec<(Mode, &Doc)> = vec![(Mode::Flat, next)];
    let mut rest_at = rest.len();
    loop {
        if remaining < 0 {
            return false;
        }
        let (mode, d) = match cmds.pop() {
            Some(c) => c,
            None => {
                if rest_at == 0 {
                    return true;
                }
                rest_at -= 1;
                match rest.get(rest_at) {
                    Some((_, m, d)) => (*m, *d),
                    None => return true,
                }
            }
        };
        match d {
            Doc::Text(s) => remaining -= s.chars().count() as isize,
            Doc::Concat(v) => {
                for x in v.iter().rev() {
                    cmds.push((mode, x));
                }
            }
            Doc::Indent(x) | Doc::Align(x) => cmds.push((mode, x)),
            Doc::Group(x, broken) => cmds.push((if *broken { Mode::Break } else { mode }, x)),
            Doc::IfBreak(broken, flat) => {
                cmds.push((mode, if mode == Mode::Break { broken } else { flat }));
            }
            Doc::Line | Doc::SoftLine => {
                if mode == Mode::Break {
                    return true;
                }
                if matches!(d, Doc::Line) {
                    remaining -= 1;
                }
            }
            Doc::HardLine | Doc::Blank(_) => return true,
            Doc::Mark(..) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comments and the final text

/// A line of the result.
enum Fin {
    Code {
        indent: usize,
        text: String,
        trailing: Option<String>,
    },
    Comment {
        indent: usize,
        text: String,
    },
    Blank,
}

/// Places the comments among the laid-out lines and joins them into the result.
fn assemble(lines: Vec<OutLine>, comments: &[Comment], src: &str) -> String {
    // Every mark, by where it starts and by where it ends.
    let mut by_start: Vec<(u32, u32, usize)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for &(s, e) in &line.marks {
            by_start.push((s, e, i));
        }
    }
    by_start.sort_by_key(|&(s, e, i)| (s, e, i));
    let mut by_end = by_start.clone();
    by_end.sort_by_key(|&(s, e, i)| (e, s, i));

    let n = lines.len();
    let mut before: Vec<Vec<&Comment>> = (0..n).map(|_| Vec::new()).collect();
    let mut trailing: Vec<Option<&Comment>> = vec![None; n];
    let mut after: Vec<Vec<&Comment>> = (0..n).map(|_| Vec::new()).collect();
    let mut at_end: Vec<&Comment> = Vec::new();

    let mut sorted: Vec<&Comment> = comments.iter().collect();
    sorted.sort_by_key(|c| (c.span.start, c.span.end));
    for c in sorted {
        let (cs, ce) = (c.span.start, c.span.end);
        let prev = by_end
            .partition_point(|&(_, e, _)| e <= cs)
            .checked_sub(1)
            .and_then(|k| by_end.get(k));
        let same_line = |from: u32| {
            src.get(from as usize..cs as usize)
                .is_some_and(|between| !between.contains('\n'))
        };
        let mut trail_on = |line: usize, c| {
            if let Some(slot) = trailing.get_mut(line) {
                if slot.is_none() {
                    *slot = Some(c);
                } else if let Some(list) = after.get_mut(line) {
                    list.push(c);
                }
            }
        };
        if let Some(&(_, pe, pline)) = prev
            && same_line(pe)
        {
            trail_on(pline, c);
            continue;
        }
        let next = by_start.get(by_start.partition_point(|&(s, _, _)| s < ce));
        match next {
            Some(&(ns, ne, nline)) => {
                let first = lines
                    .get(nline)
                    .and_then(|l| l.marks.first())
                    .is_some_and(|&m| m == (ns, ne));
                if first {
                    if let Some(list) = before.get_mut(nline) {
                        list.push(c);
                    }
                } else {
                    trail_on(nline, c);
                }
            }
            None => at_end.push(c),
        }
    }

    let blank_before = |c: &Comment| blank_before(src, c.span.start);
    let comment_text = |c: &Comment| c.text.trim_end().to_string();

    let mut out: Vec<Fin> = Vec::new();
    let mut pending_after: Vec<&Comment> = Vec::new();
    let mut pending_blank: Option<BlankKind> = None;
    for (i, line) in lines.iter().enumerate() {
        if let Some(kind) = line.blank {
            if pending_blank != Some(BlankKind::Source) {
                pending_blank = Some(kind);
            }
            continue;
        }
        let code = line.text.trim_end();
        let own_before = before.get(i).map(Vec::as_slice).unwrap_or_default();
        let own_trailing = trailing.get(i).copied().flatten();
        let own_after = after.get(i).map(Vec::as_slice).unwrap_or_default();
        if code.is_empty() {
            // Nothing printed here (only possible at the very end): its comments move on.
            pending_after.extend(own_before.iter().copied());
            pending_after.extend(own_trailing);
            pending_after.extend(own_after.iter().copied());
            continue;
        }
        let comment_indent = if code.starts_with('}') {
            line.indent + INDENT
        } else {
            line.indent
        };
        let mut blank_emitted = false;
        for c in pending_after.drain(..) {
            if blank_before(c) {
                out.push(Fin::Blank);
                blank_emitted = true;
            }
            out.push(Fin::Comment {
                indent: comment_indent,
                text: comment_text(c),
            });
        }
        let forced_at = out.len();
        for c in own_before {
            if blank_before(c) {
                out.push(Fin::Blank);
                blank_emitted = true;
            }
            out.push(Fin::Comment {
                indent: comment_indent,
                text: comment_text(c),
            });
        }
        match pending_blank.take() {
            Some(BlankKind::Source) => out.push(Fin::Blank),
            Some(BlankKind::Forced) if !blank_emitted => out.insert(forced_at, Fin::Blank),
            _ => {}
        }
        out.push(Fin::Code {
            indent: line.indent,
            text: code.to_string(),
            trailing: own_trailing.map(comment_text),
        });
        pending_after.extend(own_after.iter().copied());
    }
    for c in pending_after.into_iter().chain(at_end) {
        if blank_before(c) {
            out.push(Fin::Blank);
        }
        out.push(Fin::Comment {
            indent: 0,
            text: comment_text(c),
        });
    }
    finish(normalize_blanks(out))
}

/// Drops blank lines at the start and end, after a line that opens a block and before a line
/// that closes one, and keeps at most one in a row.
fn normalize_blanks(lines: Vec<Fin>) -> Vec<Fin> {
    let opens = |f: &Fin| matches!(f, Fin::Code { text, .. } if text.ends_with('{'));
    let closes = |f: &Fin| matches!(f, Fin::Code { text, .. } if text.starts_with('}'));
    let mut out: Vec<Fin> = Vec::with_capacity(lines.len());
    let mut iter = lines.into_iter().peekable();
    while let Some(f) = iter.next() {
        if matches!(f, Fin::Blank) {
            let drop = match out.last() {
                None | Some(Fin::Blank) => true,
                Some(prev) => opens(prev),
            } || iter
                .peek()
                .is_none_or(|next| closes(next) || matches!(next, Fin::Blank));
            if drop {
                continue;
            }
        }
        out.push(f);
    }
    out
}

/// Aligns the trailing comments of neighbouring lines and joins everything.
fn finish(lines: Vec<Fin>) -> String {
    // Runs of consecutive code lines at one indentation share one comment column.
    let mut columns: Vec<usize> = vec![0; lines.len()];
    let mut i = 0;
    while i < lines.len() {
        let Some(Fin::Code { indent, .. }) = lines.get(i) else {
            i += 1;
            continue;
        };
        let run_indent = *indent;
        let mut j = i;
        let mut column = 0;
        while let Some(Fin::Code {
            indent,
            text,
            trailing,
        }) = lines.get(j)
        {
            if *indent != run_indent {
                break;
            }
            if trailing.is_some() {
                column = column.max(indent + text.chars().count() + 2);
            }
            j += 1;
        }
        for c in columns.iter_mut().take(j).skip(i) {
            *c = column;
        }
        i = j.max(i + 1);
    }
    let mut out = String::new();
    for (f, column) in lines.iter().zip(columns) {
        match f {
            Fin::Code {
                indent,
                text,
                trailing,
            } => {
                push_indent(&mut out, *indent);
                out.push_str(text);
                if let Some(c) = trailing {
                    let used = indent + text.chars().count();
                    push_indent(&mut out, column.saturating_sub(used).max(1));
                    out.push_str(c);
                }
            }
            Fin::Comment { indent, text } => {
                push_indent(&mut out, *indent);
                out.push_str(text);
            }
            Fin::Blank => {}
        }
        out.push('\n');
    }
    out
}

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Whether the author left a blank line right before `pos`.
fn blank_before(src: &str, pos: u32) -> bool {
    let bytes = src.as_bytes();
    let mut i = (pos as usize).min(bytes.len());
    let mut newlines = 0;
    while i > 0 {
        match bytes.get(i - 1) {
            Some(b'\n') => newlines += 1,
            Some(b' ' | b'\t' | b'\r') => {}
            _ => break,
        }
        i -= 1;
    }
    newlines >= 2
}

/// The position after blanks and `//` comments (not `///` docs) from `pos`.
fn skip_trivia(src: &str, mut pos: usize) -> usize {
    loop {
        let rest = src.get(pos..).unwrap_or("");
        let trimmed = rest.trim_start_matches([' ', '\t', '\r', '\n', '\u{FEFF}']);
        pos += rest.len() - trimmed.len();
        if trimmed.starts_with("//") && !trimmed.starts_with("///") {
            pos += trimmed.find('\n').unwrap_or(trimmed.len());
        } else {
            return pos;
        }
    }
}

/// The position after blanks, `//` comments and `///` docs from `pos`.
fn skip_trivia_and_docs(src: &str, mut pos: usize) -> usize {
    loop {
        pos = skip_trivia(src, pos);
        match src.get(pos..) {
            Some(rest) if rest.starts_with("///") => {
                pos += rest.find('\n').unwrap_or(rest.len());
            }
            _ => return pos,
        }
    }
}

/// The end of the string literal starting at `pos` (just after its closing quote).
fn string_end(src: &str, pos: usize) -> Option<usize> {
    let rest = src.get(pos..)?;
    let mut chars = rest.char_indices();
    if chars.next()?.1 != '"' {
        return None;
    }
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '"' => return Some(pos + i + 1),
            '\n' => return None,
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Literals

/// The shortest decimal that reads back as `x` under `ok`, if one of up to 17 places does.
fn shortest_decimal(x: f64, ok: impl Fn(f64) -> bool) -> Option<String> {
    for places in 0..=17 {
        let s = trim_decimal(format!("{x:.places$}"));
        if s.parse::<f64>().is_ok_and(&ok) {
            return Some(s);
        }
    }
    let s = format!("{x}");
    s.parse::<f64>().is_ok_and(&ok).then_some(s)
}

fn trim_decimal(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A number in the shortest form that reads back identically: `1`, `0.85`, `3e-5`.
fn number(v: f64) -> String {
    let plain = format!("{v}");
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let exp = format!("{v:e}");
        if exp.len() < plain.len() {
            return exp;
        }
    }
    plain
}

/// Whether `written` is `shortest` with zeros after its decimal point (`1.0` for `1`, `0.40`
/// for `0.4`).
fn with_trailing_zeros(written: &str, shortest: &str) -> bool {
    written.contains('.')
        && written.len() > shortest.len()
        && written.trim_end_matches('0').trim_end_matches('.') == shortest
}

/// A fraction as the digits of its percent (0.4 → `40`), reading back identically.
fn percent(v: f64) -> String {
    let x = v * 100.0;
    shortest_decimal(x, |y| y / 100.0 == v).unwrap_or_else(|| trim_decimal(format!("{x:.17}")))
}

const DURATION_UNITS: [(&str, f64); 5] = [
    ("h", 3_600_000.0),
    ("min", 60_000.0),
    ("s", 1000.0),
    ("ms", 1.0),
    ("us", 0.001),
];

/// A duration given in milliseconds, in `unit` when one is given and can say it exactly, else in
/// the largest unit that says it in whole numbers.
fn duration(ms: f64, unit: Option<&str>) -> String {
    if let Some((u, scale)) = unit.and_then(|u| DURATION_UNITS.iter().find(|(n, _)| *n == u))
        && let Some(s) = shortest_decimal(ms / scale, |y| y * scale == ms)
    {
        return format!("{s}{u}");
    }
    for (u, scale) in DURATION_UNITS {
        let x = ms / scale;
        if x.fract() == 0.0 && x * scale == ms {
            return format!("{}{u}", trim_decimal(format!("{x:.0}")));
        }
    }
    let s = shortest_decimal(ms, |y| y == ms).unwrap_or_else(|| format!("{ms}"));
    format!("{s}ms")
}

/// A string literal with its escapes written back.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn doc_line(line: &str) -> String {
    if line.is_empty() {
        "///".to_string()
    } else {
        format!("/// {line}")
    }
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

    // ---- files and items

    fn file(&self, tree: &SourceTree) -> Doc {
        let mut parts = Vec::new();
        for (i, item) in tree.items.iter().enumerate() {
            let start = match item {
                TopItem::Policy(p) => p.span.start,
                TopItem::Module(m) => m.span.start,
                TopItem::Pipeline(p) => p.span.start,
            };
            if i > 0 {
                parts.push(Doc::HardLine);
            }
            parts.push(self.separator(Some(start), i > 0));
            parts.push(match item {
                TopItem::Policy(p) => self.policy(p),
                TopItem::Module(m) => self.module(m),
                TopItem::Pipeline(p) => self.pipeline(p),
            });
        }
        cat(parts)
    }

    fn policy(&self, p: &PolicyDecl) -> Doc {
        let head = cat(vec![
            self.docs(&p.docs),
            self.keyword(p.span, "policy"),
            text(" "),
            self.ident(&p.name),
            text(format!(" version {}", p.version)),
        ]);
        self.block(head, self.items(&p.items), p.span)
    }

    fn module(&self, m: &ModuleDecl) -> Doc {
        let head = cat(vec![
            self.docs(&m.docs),
            self.keyword(m.span, "module"),
            text(" "),
            self.mark(m.path.span),
            text(&m.path.raw),
        ]);
        self.block(head, self.items(&m.items), m.span)
    }

    fn items(&self, items: &[Item]) -> Vec<Entry> {
        let mut out = Vec::with_capacity(items.len());
        let mut prev_use = false;
        for item in items {
            let is_use = matches!(item, Item::Use(_));
            out.push(Entry {
                start: Some(item.span().start),
                spaced: !(is_use && prev_use),
                doc: self.item(item),
            });
            prev_use = is_use;
        }
        out
    }

    fn item(&self, item: &Item) -> Doc {
        match item {
            Item::Use(u) => self.use_decl(u),
            Item::Entity(e) => self.entity(e),
            Item::Enum(e) => self.enum_decl(e),
            Item::Pair(p) => cat(vec![
                self.docs(&p.docs),
                self.keyword(p.span, "pair"),
                text(" "),
                self.role(&p.query),
                text(", "),
                self.role(&p.candidate),
            ]),
            Item::Table(t) => self.table(t),
            Item::Fn(f) => self.fn_decl(f),
            Item::Dimension(d) => self.dimension(d),
            Item::Rule(r) => self.rule(r),
            Item::OverallGrade(g) => self.grade_block(g, true),
            Item::Example(e) => self.example(e),
            Item::MinCoverage(m) => {
                let (lines, docs) = self.source_docs(m.span);
                cat(vec![
                    self.doc_lines(&lines, docs),
                    self.keyword(m.span, "min_coverage"),
                    text(format!(" {}%", percent(m.value))),
                ])
            }
        }
    }

    fn role(&self, r: &Role) -> Doc {
        cat(vec![self.ident(&r.name), text(": "), self.ident(&r.entity)])
    }

    fn use_decl(&self, u: &UseDecl) -> Doc {
        let names = u.names.iter().map(|n| self.ident(n)).collect();
        let force = self.formatting() && self.comment_within(u.path.span.end, u.span.end);
        cat(vec![
            self.docs(&u.docs),
            self.keyword(u.span, "use"),
            text(" "),
            self.mark(u.path.span),
            text(format!("{}.", u.path.raw)),
            self.delimited(
                "{",
                Self::separated(names, ","),
                ",",
                cat(vec![self.close_mark(u.span, b'}'), text("}")]),
                false,
                force,
            ),
        ])
    }

    fn type_expr(&self, t: &TypeExpr) -> Doc {
        let mut parts = vec![self.ident(&t.name)];
        if let Some(arg) = &t.arg {
            parts.push(text("<"));
            parts.push(self.type_expr(arg));
            parts.push(text(">"));
        }
        if t.optional {
            parts.push(text("?"));
        }
        cat(parts)
    }

    fn entity(&self, e: &EntityDecl) -> Doc {
        let head = cat(vec![
            self.docs(&e.docs),
            self.keyword(e.span, "entity"),
            text(" "),
            self.ident(&e.name),
        ]);
        let fields = e
            .fields
            .iter()
            .map(|f| {
                Entry::new(
                    f.span.start,
                    cat(vec![
                        self.docs(&f.docs),
                        self.ident(&f.name),
                        text(": "),
                        self.type_expr(&f.ty),
                    ]),
                )
            })
            .collect();
        self.block(head, fields, e.span)
    }

    fn enum_decl(&self, e: &EnumDecl) -> Doc {
        let n = e.variants.len();
        let mut items = Vec::with_capacity(n);
        for (i, v) in e.variants.iter().enumerate() {
            let item = cat(vec![self.docs(&v.docs), self.ident(&v.name)]);
            if i + 1 < n {
                let sep = self.enum_separator(e, i);
                items.push(cat(vec![item, text(sep), Doc::Line]));
            } else {
                items.push(item);
            }
        }
        let trailing = if e.ordered { "" } else { "," };
        let force = self.formatting() && self.comment_within(e.name.span.end, e.span.end);
        cat(vec![
            self.docs(&e.docs),
            self.keyword(e.span, "enum"),
            text(" "),
            self.ident(&e.name),
            text(" "),
            self.delimited(
                "{",
                items,
                trailing,
                cat(vec![self.close_mark(e.span, b'}'), text("}")]),
                true,
                force,
            ),
        ])
    }

    /// The separator after the `i`th value: `<` or `,` as the enum is ordered. An enum that mixes
    /// them (an error the checker reports) keeps its own when formatting; its canonical text says
    /// `<` first and `,` after.
    fn enum_separator(&self, e: &EnumDecl, i: usize) -> &'static str {
        let ordered = if e.mixed_separators.is_none() {
            e.ordered
        } else if let (Some(src), Some(v)) = (self.src, e.variants.get(i)) {
            let at = skip_trivia(src, v.name.span.end as usize);
            src.get(at..).is_some_and(|s| s.starts_with('<'))
        } else {
            i == 0
        };
        if ordered { " <" } else { "," }
    }

    fn table(&self, t: &TableDecl) -> Doc {
        let keys = if t.keys.len() == 1 {
            cat(t.keys.iter().map(|k| self.type_expr(k)).collect())
        } else {
            let keys: Vec<Doc> = t.keys.iter().map(|k| self.type_expr(k)).collect();
            cat(vec![text("("), self.comma_list(keys), text(")")])
        };
        let head = cat(vec![
            self.docs(&t.docs),
            self.keyword(t.span, "table"),
            text(" "),
            self.ident(&t.name),
            text(": "),
            keys,
            text(" -> "),
            self.type_expr(&t.value),
            text(" default "),
            self.literal(&t.default),
        ]);
        let entries = t
            .entries
            .iter()
            .map(|entry| {
                let key = if entry.keys.len() == 1 {
                    cat(entry.keys.iter().map(|k| self.literal(k)).collect())
                } else {
                    let keys: Vec<Doc> = entry.keys.iter().map(|k| self.literal(k)).collect();
                    cat(vec![text("("), self.comma_list(keys), text(")")])
                };
                Entry::new(
                    entry.span.start,
                    cat(vec![key, text(": "), self.literal(&entry.value), text(",")]),
                )
            })
            .collect();
        self.block(head, entries, t.span)
    }

    /// `a, b, c` on one line.
    fn comma_list(&self, items: Vec<Doc>) -> Doc {
        let mut parts = Vec::with_capacity(items.len() * 2);
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                parts.push(text(", "));
            }
            parts.push(item);
        }
        cat(parts)
    }

    fn fn_decl(&self, f: &FnDecl) -> Doc {
        let params: Vec<Doc> = f
            .params
            .iter()
            .map(|p| cat(vec![self.ident(&p.name), text(": "), self.type_expr(&p.ty)]))
            .collect();
        let params = group(cat(vec![text("("), align(join(params, ",")), text(")")]));
        let range = match &f.declared_range {
            Some(r) => text(format!(" in [{}, {}]", number(r.lo), number(r.hi))),
            None => nil(),
        };
        cat(vec![
            self.docs(&f.docs),
            group(cat(vec![
                self.keyword(f.span, "fn"),
                text(" "),
                self.ident(&f.name),
                params,
                text(" -> "),
                self.type_expr(&f.result),
                range,
                text(" ="),
                indent(cat(vec![Doc::Line, self.expr(&f.body)])),
            ])),
        ])
    }

    fn dimension(&self, d: &DimensionDecl) -> Doc {
        let head = cat(vec![
            self.docs(&d.docs),
            self.keyword(d.span, "dimension"),
            text(" "),
            self.ident(&d.name),
            text(" weight "),
            self.mark(d.weight_span),
            text(format!("{}%", percent(d.weight))),
        ]);
        let mut entries = Vec::new();
        for l in &d.lets {
            let binding = cat(vec![
                self.keyword(l.span, "let"),
                text(" "),
                self.ident(&l.name),
                self.assigned(&l.value),
            ]);
            entries.push(Entry::new(
                l.span.start,
                cat(vec![self.docs(&l.docs), binding]),
            ));
        }
        for s in &d.score {
            let binding = cat(vec![self.keyword(s.span, "score"), self.assigned(&s.value)]);
            entries.push(Entry::new(
                s.span.start,
                cat(vec![self.docs(&s.docs), binding]),
            ));
        }
        for g in &d.grades {
            entries.push(Entry::new(g.span.start, self.grade_block(g, false)));
        }
        self.block(head, entries, d.span)
    }

    /// ` = value` of a `let` or `score`: on the same line when it fits, else on the next line,
    /// indented. A `match` stays on the line of its `=` and breaks its arms instead.
    fn assigned(&self, value: &Expr) -> Doc {
        if matches!(self.peel(value).kind, ExprKind::Match { .. }) {
            return cat(vec![text(" = "), self.expr(value)]);
        }
        group(cat(vec![
            text(" ="),
            indent(cat(vec![Doc::Line, self.expr(value)])),
        ]))
    }

    fn grade_block(&self, g: &GradeBlock, overall: bool) -> Doc {
        let head = cat(vec![
            self.docs(&g.docs),
            self.keyword(g.head, "grade"),
            text(if overall { " overall" } else { "" }),
        ]);
        let name_width = g
            .bands
            .iter()
            .map(|b| b.name.name.chars().count())
            .max()
            .unwrap_or(0);
        let conditions: Vec<(Doc, usize)> = g
            .bands
            .iter()
            .map(|b| match &b.condition {
                Some(c) => {
                    let d = cat(vec![text("when "), self.expr(c)]);
                    let w = flat_width(&d);
                    (d, w)
                }
                None => (text("otherwise"), "otherwise".len()),
            })
            .collect();
        let cond_width = conditions.iter().map(|(_, w)| *w).max().unwrap_or(0);
        let entries = g
            .bands
            .iter()
            .zip(conditions)
            .map(|(b, (cond, w))| {
                let pad = name_width + 1 - b.name.name.chars().count();
                let mut parts = vec![
                    self.docs(&b.docs),
                    self.ident(&b.name),
                    text(" ".repeat(pad)),
                    cond,
                ];
                if let Some(desc) = &b.description {
                    parts.push(text(" ".repeat(cond_width + 2 - w)));
                    parts.push(text(quote(desc)));
                }
                Entry::new(b.span.start, cat(parts))
            })
            .collect();
        self.block(head, entries, g.span)
    }

    fn rule(&self, r: &RuleDecl) -> Doc {
        let head = cat(vec![
            self.docs(&r.docs),
            self.keyword(r.span, "rule"),
            text(" "),
            self.ident(&r.name),
        ]);
        let threshold = |v: f64| {
            let written = self
                .src
                .and_then(|s| s.get(r.action_span.range()))
                .map(str::trim_end);
            let last = written
                .and_then(|t| t.rsplit(char::is_whitespace).next())
                .unwrap_or_default();
            if last.ends_with('%') {
                format!("{}%", percent(v))
            } else if with_trailing_zeros(last, &number(v)) {
                last.to_string()
            } else {
                number(v)
            }
        };
        let value = |v: f64| cat(vec![self.last_token(r.action_span), text(threshold(v))]);
        let action = match &r.action {
            RuleAction::Cap(v) => cat(vec![
                self.keyword(r.action_span, "cap"),
                text(" overall at "),
                value(*v),
            ]),
            RuleAction::Floor(v) => cat(vec![
                self.keyword(r.action_span, "floor"),
                text(" overall at "),
                value(*v),
            ]),
            RuleAction::Exclude => self.keyword(r.action_span, "exclude"),
            RuleAction::SetGrade(g) => cat(vec![
                self.keyword(r.action_span, "set"),
                text(" grade "),
                self.ident(g),
            ]),
        };
        let mut entries = vec![
            Entry::bare(cat(vec![text("when "), self.expr(&r.condition)])),
            Entry::bare(action),
        ];
        if let Some(reason) = &r.because {
            let (keyword, string) = self.because_marks(r);
            entries.push(Entry::bare(cat(vec![
                keyword,
                text("because "),
                string,
                text(quote(reason)),
            ])));
        }
        self.block(head, entries, r.span)
    }

    /// Marks the last token of `span` (a number after keywords, where a comment may sit between
    /// them).
    fn last_token(&self, span: Span) -> Doc {
        let Some(text) = self.src.and_then(|s| s.get(span.range())) else {
            return nil();
        };
        let len = text.len() - text.trim_end_matches(|c: char| !c.is_whitespace()).len();
        match u32::try_from(len) {
            Ok(len) if len > 0 => Doc::Mark(span.end - len, span.end),
            _ => nil(),
        }
    }

    /// Marks `because` and its string, which the tree keeps without spans.
    fn because_marks(&self, r: &RuleDecl) -> (Doc, Doc) {
        let Some(src) = self.src else {
            return (nil(), nil());
        };
        let at = skip_trivia(src, r.action_span.end as usize);
        if !src.get(at..).is_some_and(|s| s.starts_with("because")) {
            return (nil(), nil());
        }
        let string_at = skip_trivia(src, at + "because".len());
        let keyword = self.mark(Span::new(r.span.file, at, at + "because".len()));
        match string_end(src, string_at) {
            Some(end) => (keyword, self.mark(Span::new(r.span.file, string_at, end))),
            None => (keyword, nil()),
        }
    }

    fn example(&self, e: &ExampleDecl) -> Doc {
        let head = cat(vec![
            self.docs(&e.docs),
            self.keyword(e.span, "example"),
            text(" "),
            self.mark(e.name_span),
            text(quote(&e.name)),
        ]);
        let mut entries = Vec::new();
        for r in &e.records {
            entries.push(Entry::new(r.span.start, self.record(r)));
        }
        for x in &e.expectations {
            let span = match x {
                Expectation::Compare { span, .. } | Expectation::Rule { span, .. } => *span,
            };
            entries.push(Entry::new(span.start, self.expectation(x)));
        }
        self.block(head, entries, e.span)
    }

    fn record(&self, r: &ExampleRecord) -> Doc {
        let fields: Vec<Doc> = r
            .fields
            .iter()
            .map(|f| {
                cat(vec![
                    self.ident(&f.name),
                    text(": "),
                    self.literal(&f.value),
                ])
            })
            .collect();
        let close = cat(vec![self.close_mark(r.span, b'}'), text("}")]);
        if fields.is_empty() {
            return cat(vec![self.ident(&r.role), text(" {"), close]);
        }
        let field_spans: Vec<Span> = r
            .fields
            .iter()
            .map(|f| f.name.span.to(f.value.span))
            .collect();
        let force =
            self.formatting() && self.comment_outside_parts(r.role.span.end, r.span, &field_spans);
        cat(vec![
            self.ident(&r.role),
            text(" "),
            self.delimited("{", Self::separated(fields, ","), ",", close, true, force),
        ])
    }

    fn expectation(&self, x: &Expectation) -> Doc {
        match x {
            Expectation::Compare {
                target,
                op,
                value,
                span,
            } => {
                let who = match &target.dimension {
                    Some(d) => self.ident(d),
                    None => self.keyword(target.span, "overall"),
                };
                cat(vec![
                    self.keyword(*span, "expect"),
                    text(" "),
                    who,
                    text(if target.grade { ".grade" } else { "" }),
                    text(format!(" {} ", op.symbol())),
                    self.literal(value),
                ])
            }
            Expectation::Rule { rule, fires, span } => cat(vec![
                self.keyword(*span, "expect"),
                text(" rule "),
                self.ident(rule),
                text(if *fires { " fires" } else { " does not fire" }),
            ]),
        }
    }

    // ---- literals

    fn literal(&self, l: &Literal) -> Doc {
        match &l.kind {
            LiteralKind::List(items) => {
                let spans: Vec<Span> = items.iter().map(|i| i.span).collect();
                let force = self.formatting() && self.comment_between(&spans);
                let items: Vec<Doc> = items.iter().map(|i| self.literal(i)).collect();
                cat(vec![
                    self.mark_char(l.span.start, b'['),
                    group_if(
                        cat(vec![text("["), align(join(items, ",")), text("]")]),
                        force,
                    ),
                    self.close_mark(l.span, b']'),
                ])
            }
            LiteralKind::Name(parts) => {
                let mut out = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push(text("."));
                    }
                    out.push(self.ident(p));
                }
                cat(out)
            }
            LiteralKind::Number(v) => cat(vec![self.mark(l.span), text(self.numeral(*v, l.span))]),
            _ => cat(vec![self.mark(l.span), text(literal_atom(l))]),
        }
    }

    /// A duration, in the unit the author wrote when formatting.
    fn duration_at(&self, ms: f64, span: Span) -> String {
        let unit = self
            .src
            .and_then(|s| s.get(span.range()))
            .map(|t| t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.'));
        duration(ms, unit)
    }

    // ---- expressions

    /// Strips the parentheses the author wrote, for the canonical text.
    fn peel<'e>(&self, mut e: &'e Expr) -> &'e Expr {
        if !self.keep_parens {
            while let ExprKind::Paren(inner) = &e.kind {
                e = inner;
            }
        }
        e
    }

    /// How tightly an expression binds, as an operand.
    fn prec(&self, e: &Expr) -> u8 {
        match &self.peel(e).kind {
            ExprKind::Binary { op, .. } => binary_level(*op),
            ExprKind::Unary { op, .. } => prefix_level(*op),
            _ => PRIMARY_LEVEL,
        }
    }

    /// Operators of a level above this, written right after the expression, would be read as
    /// part of it (its last operand is an `if`, a `when` chain or a prefix operator's operand).
    fn open(&self, e: &Expr) -> u8 {
        match &self.peel(e).kind {
            ExprKind::Binary { rhs, .. } => self.open(rhs),
            ExprKind::Unary { op, operand } => (prefix_level(*op) - 1).min(self.open(operand)),
            ExprKind::If { .. } | ExprKind::When { .. } => 0,
            _ => NEVER_OPEN,
        }
    }

    fn needs_parens_left(&self, l: &Expr, op: BinaryOp) -> bool {
        let p = binary_level(op);
        let lp = self.prec(l);
        lp < p || (lp == p && groups_right(op)) || self.open(l) < p
    }

    fn needs_parens_right(&self, r: &Expr, op: BinaryOp) -> bool {
        match &self.peel(r).kind {
            ExprKind::Binary { op: rop, .. } => {
                let (p, rp) = (binary_level(op), binary_level(*rop));
                rp < p || (rp == p && !groups_right(op))
            }
            _ => false,
        }
    }

    fn needs_parens_unary(&self, x: &Expr, op: UnaryOp) -> bool {
        match &self.peel(x).kind {
            ExprKind::Binary { op: b, .. } => binary_level(*b) < prefix_level(op),
            _ => false,
        }
    }

    /// Whether the expression ends in a `when` chain that would take the arms after it.
    fn ends_in_when(&self, e: &Expr) -> bool {
        match &self.peel(e).kind {
            ExprKind::When { .. } => true,
            ExprKind::Binary { rhs, .. } => self.ends_in_when(rhs),
            ExprKind::Unary { operand, .. } => self.ends_in_when(operand),
            ExprKind::If { otherwise, .. } => self.ends_in_when(otherwise),
            _ => false,
        }
    }

    /// An expression where any expression may stand.
    fn expr(&self, e: &Expr) -> Doc {
        self.node(self.peel(e), Hang::Indent)
    }

    /// An operand, in parentheses when `parens`.
    fn operand(&self, e: &Expr, parens: bool) -> Doc {
        let e = self.peel(e);
        if parens {
            cat(vec![
                text("("),
                align(self.node(e, Hang::Aligned)),
                text(")"),
            ])
        } else {
            self.node(e, Hang::Indent)
        }
    }

    fn node(&self, e: &Expr, hang: Hang) -> Doc {
        match &e.kind {
            ExprKind::Number(v) => cat(vec![self.mark(e.span), text(self.numeral(*v, e.span))]),
            ExprKind::Percent(v) => cat(vec![self.mark(e.span), text(format!("{}%", percent(*v)))]),
            ExprKind::Duration(ms) => {
                cat(vec![self.mark(e.span), text(self.duration_at(*ms, e.span))])
            }
            ExprKind::String(s) => cat(vec![self.mark(e.span), text(quote(s))]),
            ExprKind::Bool(b) => cat(vec![self.mark(e.span), text(b.to_string())]),
            ExprKind::Abstain => cat(vec![self.mark(e.span), text("abstain")]),
            ExprKind::Path(parts) => {
                let mut out = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push(text("."));
                    }
                    out.push(self.ident(p));
                }
                cat(out)
            }
            ExprKind::List(items) => cat(vec![
                self.mark_char(e.span.start, b'['),
                self.args("[", items, "]"),
                self.close_mark(e.span, b']'),
            ]),
            ExprKind::Call { func, args } => cat(vec![
                self.ident(func),
                self.args("(", args, ")"),
                self.close_mark(e.span, b')'),
            ]),
            ExprKind::Lookup { table, keys } => cat(vec![
                self.ident(table),
                self.args("[", keys, "]"),
                self.close_mark(e.span, b']'),
            ]),
            ExprKind::Unary { op, operand } => {
                let parens = self.needs_parens_unary(operand, *op);
                let word = match op {
                    UnaryOp::Not => "not ",
                    UnaryOp::Neg => "-",
                };
                cat(vec![
                    self.mark_char(
                        e.span.start,
                        word.as_bytes().first().copied().unwrap_or(b'-'),
                    ),
                    text(word),
                    self.operand(operand, parens),
                ])
            }
            ExprKind::Binary { .. } => self.chain(e, hang),
            ExprKind::If { .. } => self.if_chain(e),
            ExprKind::Match { scrutinee, arms } => self.match_expr(e, scrutinee, arms),
            ExprKind::When { arms, otherwise } => self.when_chain(arms, otherwise.as_deref()),
            ExprKind::Paren(inner) => cat(vec![
                self.mark_char(e.span.start, b'('),
                text("("),
                align(self.node(inner, Hang::Aligned)),
                text(")"),
                self.close_mark(e.span, b')'),
            ]),
        }
    }

    /// Arguments, list items or lookup keys: on one line, or one a line aligned after `open`.
    fn args(&self, open: &str, items: &[Expr], close: &str) -> Doc {
        let spans: Vec<Span> = items.iter().map(|a| a.span).collect();
        let force = self.formatting() && self.comment_between(&spans);
        let docs = items.iter().map(|a| self.expr(a)).collect();
        group_if(
            cat(vec![text(open), align(join(docs, ",")), text(close)]),
            force,
        )
    }

    /// A run of operators of one level (`a and b and c`): on one line, or broken before each
    /// operator.
    fn chain(&self, e: &Expr, hang: Hang) -> Doc {
        let ExprKind::Binary { op, .. } = &e.kind else {
            return self.node(e, hang);
        };
        let mut pieces: Vec<Piece> = Vec::new();
        self.collect(e, binary_level(*op), &mut pieces);
        let spans: Vec<Span> = pieces.iter().map(|(_, _, s)| *s).collect();
        let force = self.formatting()
            && matches!(op, BinaryOp::And | BinaryOp::Or)
            && self.comment_between(&spans);
        let mut pieces = pieces.into_iter();
        let first = pieces.next().map_or_else(nil, |(_, d, _)| d);
        // Only `and` and `or` break a line; other operators stay with their operands, and long
        // arithmetic breaks inside its calls.
        let logical = matches!(op, BinaryOp::And | BinaryOp::Or);
        // Operators are not marked: a comment next to one then belongs to an operand, and stays
        // between the two operands when the chain breaks.
        let rest: Vec<Doc> = pieces
            .map(|(op, d, _)| {
                let sym = op.map_or("", BinaryOp::symbol);
                let space = if logical { Doc::Line } else { text(" ") };
                cat(vec![space, text(sym), text(" "), d])
            })
            .collect();
        let rest = match hang {
            Hang::Indent => indent(cat(rest)),
            Hang::Aligned => cat(rest),
        };
        group_if(cat(vec![first, rest]), force)
    }

    /// The operands of a run of operators of level `at`, left to right.
    fn collect(&self, e: &Expr, at: u8, out: &mut Vec<Piece>) {
        let ExprKind::Binary { op, lhs, rhs, .. } = &e.kind else {
            return;
        };
        let l = self.peel(lhs);
        let left_parens = self.needs_parens_left(l, *op);
        let same_level =
            matches!(&l.kind, ExprKind::Binary { op: lop, .. } if binary_level(*lop) == at);
        if !left_parens && same_level {
            self.collect(l, at, out);
        } else {
            out.push((None, self.operand(l, left_parens), lhs.span));
        }
        let right_parens = self.needs_parens_right(rhs, *op);
        out.push((Some(*op), self.operand(rhs, right_parens), rhs.span));
    }

    /// `if a then b else c`, with `else if` chains: on one line, or broken before each `else`.
    fn if_chain(&self, e: &Expr) -> Doc {
        let mut parts = Vec::new();
        let mut spans = Vec::new();
        let mut cur = e;
        let last = loop {
            let ExprKind::If {
                cond,
                then,
                otherwise,
            } = &cur.kind
            else {
                break cur;
            };
            if !parts.is_empty() {
                parts.push(Doc::Line);
                parts.push(text("else "));
            }
            parts.push(text("if "));
            parts.push(self.expr(cond));
            parts.push(text(" then "));
            parts.push(self.expr(then));
            spans.push(cond.span);
            spans.push(then.span);
            let next = self.peel(otherwise);
            if matches!(next.kind, ExprKind::If { .. }) {
                cur = next;
            } else {
                break otherwise;
            }
        };
        spans.push(last.span);
        parts.push(Doc::Line);
        parts.push(text("else "));
        parts.push(self.expr(last));
        let force = self.formatting() && self.comment_between(&spans);
        align(group_if(cat(parts), force))
    }

    /// `match e { p => x, ... }`: on one line when it fits, else one arm a line.
    fn match_expr(&self, e: &Expr, scrutinee: &Expr, arms: &[MatchArm]) -> Doc {
        let docs: Vec<Doc> = arms
            .iter()
            .map(|a| {
                let pattern = if a.patterns.is_empty() {
                    text("_")
                } else {
                    let mut ps = Vec::new();
                    for (i, p) in a.patterns.iter().enumerate() {
                        if i > 0 {
                            ps.push(text(" | "));
                        }
                        ps.push(self.literal(p));
                    }
                    cat(ps)
                };
                cat(vec![pattern, text(" => "), self.expr(&a.body)])
            })
            .collect();
        let arm_spans: Vec<Span> = arms.iter().map(|a| a.span).collect();
        // Four arms or more read as a table: one arm a line. (Only when formatting: the
        // canonical text, which the policy hash is taken of, keeps its layout.)
        let force = self.formatting()
            && (arms.len() >= TABLE_ARMS
                || self.comment_outside_parts(scrutinee.span.end, e.span, &arm_spans));
        cat(vec![
            text("match "),
            self.expr(scrutinee),
            text(" "),
            self.delimited(
                "{",
                Self::separated(docs, ","),
                ",",
                cat(vec![self.close_mark(e.span, b'}'), text("}")]),
                true,
                force,
            ),
        ])
    }

    /// A `when` chain: one arm a line, aligned.
    fn when_chain(&self, arms: &[WhenArm], otherwise: Option<&Expr>) -> Doc {
        let mut parts = Vec::new();
        for (i, arm) in arms.iter().enumerate() {
            if i > 0 {
                parts.push(Doc::HardLine);
            }
            // A body that ends in a `when` chain would take the arms after it.
            let followed = i + 1 < arms.len() || otherwise.is_some();
            let parens = followed && self.ends_in_when(&arm.body);
            parts.push(text("when "));
            parts.push(self.expr(&arm.condition));
            parts.push(text(" => "));
            parts.push(self.operand(&arm.body, parens));
        }
        if let Some(o) = otherwise {
            if !arms.is_empty() {
                parts.push(Doc::HardLine);
            }
            parts.push(text("otherwise => "));
            parts.push(self.expr(o));
        }
        align(cat(parts))
    }

    // ---- pipelines

    fn pipeline(&self, p: &PipelineDecl) -> Doc {
        let head = cat(vec![
            self.docs(&p.docs),
            self.keyword(p.span, "pipeline"),
            text(" "),
            self.ident(&p.name),
            text(" for "),
            self.ident(&p.policy),
        ]);
        let mut entries = Vec::new();
        for d in &p.data {
            entries.push(Entry::new(d.span.start, self.data_block(d)));
        }
        for t in &p.teachers {
            entries.push(Entry::new(t.span.start, self.teacher(t)));
        }
        for s in &p.students {
            entries.push(Entry::new(s.span.start, self.student(s)));
        }
        for q in &p.quantize {
            entries.push(Entry::new(q.span.start, self.quantize(q)));
        }
        for m in &p.monitors {
            entries.push(Entry::new(m.span.start, self.monitor(m)));
        }
        self.block(head, entries, p.span)
    }

    /// The docs in front of a pipeline node the tree keeps no docs for, and its keyword.
    fn head_with_docs(&self, span: Span, word: &str) -> Doc {
        let (lines, docs) = self.source_docs(span);
        cat(vec![self.doc_lines(&lines, docs), self.keyword(span, word)])
    }

    fn data_block(&self, d: &DataBlock) -> Doc {
        let head = self.head_with_docs(d.span, "data");
        let name_width = d
            .sources
            .iter()
            .map(|s| s.name.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut entries = Vec::new();
        for s in &d.sources {
            let (lines, docs) = self.source_docs(s.span);
            let pad = name_width + 1 - s.name.name.chars().count();
            let line = cat(vec![
                self.doc_lines(&lines, docs),
                self.ident(&s.name),
                text(" ".repeat(pad)),
                self.mark(s.path_span),
                text(quote(&s.path)),
            ]);
            let doc = if s.clean.is_empty() {
                line
            } else {
                let rules = s
                    .clean
                    .iter()
                    .map(|c| {
                        let span = match c {
                            CleanRule::DropWhen { span, .. }
                            | CleanRule::OutliersSigma { span, .. }
                            | CleanRule::OutliersQuantile { span, .. }
                            | CleanRule::Duplicates { span, .. } => *span,
                        };
                        Entry::new(span.start, self.clean_rule(c, span))
                    })
                    .collect();
                self.block(cat(vec![line, text(" clean")]), rules, s.span)
            };
            entries.push(Entry::new(s.span.start, doc));
        }
        for s in &d.synthetic {
            entries.push(Entry::new(
                s.span.start,
                cat(vec![
                    self.head_with_docs(s.span, "synthetic"),
                    text(" from "),
                    self.ident(&s.from),
                    text(" "),
                    self.settings(&s.settings),
                ]),
            ));
        }
        for m in &d.mixes {
            let mut parts = vec![self.head_with_docs(m.span, "mix")];
            for (name, share, span) in &m.shares {
                parts.push(text(" "));
                parts.push(self.ident(name));
                parts.push(text(" "));
                parts.push(self.last_token(*span));
                parts.push(text(format!("{}%", percent(*share))));
            }
            entries.push(Entry::new(m.span.start, cat(parts)));
        }
        for s in &d.splits {
            let seed = s.seed.map_or(String::new(), |n| format!(" seed {n}"));
            entries.push(Entry::new(
                s.span.start,
                cat(vec![
                    self.head_with_docs(s.span, "split"),
                    text(" validation "),
                    self.mark(s.validation_span),
                    text(format!("{}%{seed}", percent(s.validation))),
                ]),
            ));
        }
        self.block(head, entries, d.span)
    }

    fn clean_rule(&self, c: &CleanRule, span: Span) -> Doc {
        let drop = self.keyword(span, "drop");
        match c {
            CleanRule::DropWhen {
                name, condition, ..
            } => cat(vec![
                drop,
                text(" "),
                self.ident(name),
                text(" when "),
                self.expr(condition),
            ]),
            CleanRule::OutliersSigma { field, sigma, .. } => cat(vec![
                drop,
                text(" outliers "),
                self.ident(field),
                text(format!(" beyond {} sigma", number(*sigma))),
            ]),
            CleanRule::OutliersQuantile {
                field, quantile, ..
            } => cat(vec![
                drop,
                text(" outliers "),
                self.ident(field),
                text(format!(" above quantile {}", number(*quantile))),
            ]),
            CleanRule::Duplicates { on, .. } => {
                let mut parts = vec![drop, text(" duplicates")];
                if !on.is_empty() {
                    parts.push(text(" on "));
                    parts.push(self.comma_list(on.iter().map(|n| self.ident(n)).collect()));
                }
                cat(parts)
            }
        }
    }

    /// `{ key value, ... }` on one line.
    fn settings(&self, settings: &[Setting]) -> Doc {
        if settings.is_empty() {
            return text("{}");
        }
        let items = settings.iter().map(|s| self.setting(s)).collect();
        cat(vec![text("{ "), self.comma_list(items), text(" }")])
    }

    fn setting(&self, s: &Setting) -> Doc {
        let value = match &s.value {
            SettingValue::Number(v) => self.numeral(*v, s.value_span),
            SettingValue::Percent(v) => format!("{}%", percent(*v)),
            SettingValue::Duration(ms) => self.duration_at(*ms, s.value_span),
            SettingValue::String(v) => quote(v),
            SettingValue::Bool(b) => b.to_string(),
            SettingValue::Name(n) => n.clone(),
        };
        cat(vec![
            self.ident(&s.key),
            text(" "),
            self.mark(s.value_span),
            text(value),
        ])
    }

    fn model(&self, m: &ModelSpec) -> Doc {
        match m {
            ModelSpec::Encoder { settings, span } => cat(vec![
                text("model "),
                self.keyword(*span, "encoder"),
                text(" "),
                self.settings(settings),
                self.close_mark(*span, b'}'),
            ]),
            ModelSpec::Init { path, span } => cat(vec![
                text("model "),
                self.keyword(*span, "init"),
                text(format!(" {}", quote(path))),
            ]),
        }
    }

    fn loss(&self, l: &LossDecl, keyword: bool) -> Doc {
        let mut parts = Vec::new();
        if keyword {
            parts.push(self.keyword(l.span, "loss"));
            parts.push(text(" "));
        }
        parts.push(self.ident(&l.kind));
        if let Some((t, span)) = l.temperature {
            parts.push(text(" temperature "));
            parts.push(self.mark(span));
            parts.push(text(self.numeral(t, span)));
        }
        cat(parts)
    }

    fn features(&self, features: &[Ident]) -> Doc {
        let names = features.iter().map(|n| self.ident(n)).collect();
        cat(vec![text("features ["), self.comma_list(names), text("]")])
    }

    fn names(&self, names: &[Ident]) -> Doc {
        self.comma_list(names.iter().map(|n| self.ident(n)).collect())
    }

    fn regularize(&self, settings: &[Setting]) -> Doc {
        let mut parts = vec![text("regularize")];
        for r in settings {
            parts.push(text(" "));
            parts.push(self.setting(r));
        }
        cat(parts)
    }

    fn teacher(&self, t: &TeacherDecl) -> Doc {
        let head = cat(vec![
            self.docs(&t.docs),
            self.keyword(t.span, "teacher"),
            text(" "),
            self.ident(&t.name),
        ]);
        let mut entries: Vec<Entry> = t.model.iter().map(|m| Entry::bare(self.model(m))).collect();
        if !t.predicts.is_empty() {
            entries.push(Entry::bare(cat(vec![
                text("predicts "),
                self.names(&t.predicts),
            ])));
        }
        if let Some(l) = &t.loss {
            entries.push(Entry::new(l.span.start, self.loss(l, true)));
        }
        if !t.train.is_empty() {
            entries.push(Entry::bare(cat(vec![
                text("train "),
                self.settings(&t.train),
            ])));
        }
        if !t.regularize.is_empty() {
            entries.push(Entry::bare(self.regularize(&t.regularize)));
        }
        if !t.features.is_empty() {
            entries.push(Entry::bare(self.features(&t.features)));
        }
        self.block(head, entries, t.span)
    }

    fn student(&self, s: &StudentDecl) -> Doc {
        let head = cat(vec![self.docs(&s.docs), self.keyword(s.span, "student")]);
        let mut entries: Vec<Entry> = s.model.iter().map(|m| Entry::bare(self.model(m))).collect();
        let teacher_width = s
            .distill
            .iter()
            .map(|d| d.teacher.name.chars().count())
            .max()
            .unwrap_or(0);
        for d in &s.distill {
            let pad = teacher_width + 1 - d.teacher.name.chars().count();
            entries.push(Entry::new(
                d.span.start,
                cat(vec![
                    self.keyword(d.span, "distill"),
                    text(" "),
                    self.ident(&d.teacher),
                    text(" ".repeat(pad)),
                    text("weight "),
                    self.mark(d.weight_span),
                    text(self.numeral(d.weight, d.weight_span)),
                    text(" loss "),
                    self.loss(&d.loss, false),
                ]),
            ));
        }
        for d in &s.drift {
            let mut parts = vec![
                self.keyword(d.span, "drift"),
                text(" penalty "),
                self.mark(d.weight_span),
                text(self.numeral(d.weight, d.weight_span)),
                text(" tolerance "),
                self.mark(d.tolerance_span),
                text(self.numeral(d.tolerance, d.tolerance_span)),
            ];
            if let Some((n, span)) = d.rebalance_every {
                parts.push(text(" rebalance every "));
                parts.push(self.mark(span));
                parts.push(text(format!("{n} epochs")));
            }
            if let Some(a) = &d.against {
                parts.push(text(" against "));
                parts.push(self.ident(a));
            }
            entries.push(Entry::new(d.span.start, cat(parts)));
        }
        if !s.regularize.is_empty() {
            entries.push(Entry::bare(self.regularize(&s.regularize)));
        }
        if let Some(e) = &s.early_stop {
            entries.push(Entry::new(
                e.span.start,
                cat(vec![
                    self.keyword(e.span, "early_stop"),
                    text(" on "),
                    self.ident(&e.metric),
                    text(format!(" patience {}", e.patience)),
                ]),
            ));
        }
        if !s.train.is_empty() {
            entries.push(Entry::bare(cat(vec![
                text("train "),
                self.settings(&s.train),
            ])));
        }
        if !s.features.is_empty() {
            entries.push(Entry::bare(self.features(&s.features)));
        }
        self.block(head, entries, s.span)
    }

    fn quantize(&self, q: &QuantizeDecl) -> Doc {
        let mut parts = vec![
            self.head_with_docs(q.span, "quantize"),
            text(" "),
            self.ident(&q.scheme),
        ];
        if let Some((v, span)) = q.prune_heads_below {
            parts.push(text(" { prune heads below "));
            parts.push(self.mark(span));
            parts.push(text(format!("{} ", self.numeral(v, span))));
            parts.push(self.close_mark(q.span, b'}'));
            parts.push(text("}"));
        }
        cat(parts)
    }

    fn monitor(&self, m: &MonitorDecl) -> Doc {
        let head = self.head_with_docs(m.span, "monitor");
        let alerts = m
            .alerts
            .iter()
            .map(|a| {
                let threshold = match a.threshold {
                    Threshold::Number(v) => self.numeral(v, a.threshold_span),
                    Threshold::Percent(v) => format!("{}%", percent(v)),
                    Threshold::Duration(ms) => self.duration_at(ms, a.threshold_span),
                };
                Entry::new(
                    a.span.start,
                    cat(vec![
                        self.head_with_docs(a.span, "alert"),
                        text(" "),
                        self.ident(&a.metric),
                        text(format!(" {} ", a.op.symbol())),
                        self.mark(a.threshold_span),
                        text(threshold),
                    ]),
                )
            })
            .collect();
        self.block(head, alerts, m.span)
    }
}

/// A literal other than a list, a name or a number (which [`Printer::literal`] prints), as text.
fn literal_atom(l: &Literal) -> String {
    match &l.kind {
        LiteralKind::Percent(v) => format!("{}%", percent(*v)),
        LiteralKind::String(s) => quote(s),
        LiteralKind::Bool(b) => b.to_string(),
        LiteralKind::Abstain => "abstain".to_string(),
        LiteralKind::Number(_) | LiteralKind::Name(_) | LiteralKind::List(_) => literal_text(l),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    /// Every shipped and corpus `.policy` file, by its path under the repository.
    fn files() -> Vec<(String, String)> {
        let mut out = Vec::new();
        for dir in [
            "policies",
            "stdlib/std",
            "examples/language_sketch",
            "tests/corpus",
        ] {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "policy"))
                .collect();
            paths.sort();
            for p in paths {
                let name = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
                // The corpus's file that is not UTF-8 is the checker's (`syntax::not_utf8`).
                if let Ok(text) = std::fs::read_to_string(&p) {
                    out.push((name, text));
                }
            }
        }
        assert!(
            out.len() > 100,
            "the corpus is missing: {} files",
            out.len()
        );
        out
    }

    fn parse_tree(text: &str) -> Option<SourceTree> {
        syntax::parse(FileId(0), text, &Limits::default()).tree
    }

    fn fmt(text: &str) -> String {
        format_source(text).expect("the input parses")
    }

    fn comment_texts(tree: &SourceTree) -> Vec<String> {
        tree.comments
            .iter()
            .map(|c| c.text.trim_end().to_string())
            .collect()
    }

    fn doc_lines(text: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| l.starts_with("///"))
            .map(|l| {
                let body = l.trim_start_matches("///");
                body.strip_prefix(' ')
                    .unwrap_or(body)
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    fn imports_only_std(tree: &SourceTree) -> bool {
        tree.items.iter().all(|item| {
            let items = match item {
                TopItem::Policy(p) => &p.items,
                TopItem::Module(m) => &m.items,
                TopItem::Pipeline(_) => return true,
            };
            items.iter().all(|i| match i {
                Item::Use(u) => u.path.raw.starts_with("std."),
                _ => true,
            })
        })
    }

    fn codes(name: &str, text: &str) -> Vec<&'static str> {
        let checked = crate::check_source(name, text, &mut crate::NoModules, &Default::default());
        let mut codes: Vec<&'static str> = checked
            .diagnostics
            .iter()
            .map(|d| d.code.as_str())
            .collect();
        codes.sort_unstable();
        codes
    }

    #[test]
    fn format_keeps_meaning_comments_docs_and_diagnostics_and_is_idempotent() {
        let mut formatted_files = 0;
        let mut failures = Vec::new();
        for (name, text) in files() {
            let Some(tree) = parse_tree(&text) else {
                continue;
            };
            formatted_files += 1;
            let once = format_tree(&tree, &text);
            let Some(again) = parse_tree(&once) else {
                failures.push(format!(
                    "{name}: the formatted text does not parse:\n{once}"
                ));
                continue;
            };
            let twice = format_tree(&again, &once);
            if twice != once {
                failures.push(format!(
                    "{name}: formatting twice changes the text:\n{}",
                    first_difference(&once, &twice)
                ));
            }
            if canonical(&tree) != canonical(&again) {
                failures.push(format!(
                    "{name}: the meaning changed:\n{}",
                    first_difference(&canonical(&tree), &canonical(&again))
                ));
            }
            // (Only statements the layout reorders, such as a `score` above a `let`, could carry
            // their comments out of order; no file here has one.)
            if comment_texts(&tree) != comment_texts(&again) {
                failures.push(format!("{name}: comments lost, duplicated or out of order"));
            }
            if doc_lines(&text) != doc_lines(&once) {
                failures.push(format!("{name}: docs changed"));
            }
            if format_source(&text.replace('\n', "\r\n")).as_deref() != Some(once.as_str()) {
                failures.push(format!("{name}: Windows line ends format differently"));
            }
            if once.lines().any(|l| l.ends_with(' ')) {
                failures.push(format!("{name}: trailing spaces"));
            }
            if imports_only_std(&tree) && codes(&name, &text) != codes(&name, &once) {
                failures.push(format!(
                    "{name}: diagnostics changed: {:?} became {:?}",
                    codes(&name, &text),
                    codes(&name, &once)
                ));
            }
        }
        assert!(formatted_files > 60, "only {formatted_files} files parse");
        assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    }

    #[test]
    fn canonical_text_is_a_fixpoint_and_ignores_layout() {
        for (name, text) in files() {
            let Some(tree) = parse_tree(&text) else {
                continue;
            };
            let c = canonical(&tree);
            let reparsed = parse_tree(&c).unwrap_or_else(|| panic!("{name}: canonical text:\n{c}"));
            assert_eq!(canonical(&reparsed), c, "{name}");
            assert!(!c.contains("//"), "{name}: comments in the canonical text");
        }
    }

    fn first_difference(a: &str, b: &str) -> String {
        for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
            if x != y {
                return format!("line {}:\n- {x}\n+ {y}", i + 1);
            }
        }
        format!("lengths {} and {}", a.lines().count(), b.lines().count())
    }

    #[test]
    fn a_messy_policy_gets_the_canonical_layout() {
        let before = r#"// header comment

policy   p version 1 {
use std.text.{coverage ,jaccard,}
  use std.num.{ramp}
entity Job { title: text, skills: set<string>  // the skills
loc: string? }
enum Level{low<mid<high}
enum Kind { a , b,c, }
pair query:Job,candidate:Job
min_coverage 50.0%
table t: (string,string) -> number default 0.20 { ("a","b"):0.5, ("c", "d") : 1.0 }
fn f(x: number) -> number in [0, 1.0] = clamp(x,0,1)
fn long_function_name(first_argument: number, second_argument: number) -> number in [0, 1] = clamp(first_argument * second_argument, 0, 1)
dimension d weight 40.0% { grade { strong when score>=0.80 "a" weak otherwise "b" } score = when x => 1.0 otherwise => 0.50
let x = (a + b) * 2 }



rule r { when a.b and c.d   // why c
or e exclude because "x" }
rule r2 {
  when query.remote and (candidate.x or candidate.y) and not missing(query.location) and len(query.s) > 2
  cap overall at 30%
  because "say \"hi\"\t"
}
  grade overall { good when overall >= 0.5 poor otherwise }
example "e" { query { a: 1, b: "x", c: [1,2] } candidate { a: 1, b: "a very long string that goes on", c: ["aaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"], d: true }
expect overall >= 85% expect d.grade == strong expect rule r does not fire expect x == abstain }
}
pipeline pp for p { monitor { alert p99_latency > 1000ms alert x < 70% }
data { golden "a.jsonl" clean { drop duplicates on a,b drop bots when x>3 } mix real 30% synthetic 70% split validation 10% seed 7 }
student { model encoder {layers 2, hidden 128} distill policy weight 0.6 loss mse distill click weight 0.4 loss bce temperature 2 train { lr 0.00003 } }
teacher policy { model init "m" predicts dimensions, overall loss mse }
quantize int8 { prune heads below 0.01 }
}
"#;
        let after = r#"// header comment

policy p version 1 {
  use std.text.{coverage, jaccard}
  use std.num.{ramp}

  entity Job {
    title: text
    skills: set<string>  // the skills
    loc: string?
  }

  enum Level { low < mid < high }

  enum Kind { a, b, c }

  pair query: Job, candidate: Job

  min_coverage 50%

  table t: (string, string) -> number default 0.20 {
    ("a", "b"): 0.5,
    ("c", "d"): 1.0,
  }

  fn f(x: number) -> number in [0, 1] = clamp(x, 0, 1)

  fn long_function_name(first_argument: number, second_argument: number) -> number in [0, 1] =
    clamp(first_argument * second_argument, 0, 1)

  dimension d weight 40% {
    let x = (a + b) * 2
    score =
      when x => 1.0
      otherwise => 0.50
    grade {
      strong when score >= 0.80  "a"
      weak   otherwise           "b"
    }
  }

  rule r {
    when a.b and c.d  // why c
      or e
    exclude
    because "x"
  }

  rule r2 {
    when query.remote
      and (candidate.x or candidate.y)
      and not missing(query.location)
      and len(query.s) > 2
    cap overall at 30%
    because "say \"hi\"\t"
  }

  grade overall {
    good when overall >= 0.5
    poor otherwise
  }

  example "e" {
    query { a: 1, b: "x", c: [1, 2] }
    candidate {
      a: 1,
      b: "a very long string that goes on",
      c: ["aaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"],
      d: true,
    }
    expect overall >= 85%
    expect d.grade == strong
    expect rule r does not fire
    expect x == abstain
  }
}

pipeline pp for p {
  data {
    golden "a.jsonl" clean {
      drop duplicates on a, b
      drop bots when x > 3
    }
    mix real 30% synthetic 70%
    split validation 10% seed 7
  }
  teacher policy {
    model init "m"
    predicts dimensions, overall
    loss mse
  }
  student {
    model encoder { layers 2, hidden 128 }
    distill policy weight 0.6 loss mse
    distill click  weight 0.4 loss bce temperature 2
    train { lr 3e-5 }
  }
  quantize int8 { prune heads below 0.01 }
  monitor {
    alert p99_latency > 1000ms
    alert x < 70%
  }
}
"#;
        assert_eq!(fmt(before), after);
        assert_eq!(fmt(after), after);
    }

    #[test]
    fn comments_stay_where_they_are_and_blank_lines_shrink_to_one() {
        let before = "policy p version 1 {
  entity Job {
    a: text // first


    b: number       // second
    // about c
    c: string?
  }
  // closing note
}
";
        let after = "policy p version 1 {
  entity Job {
    a: text  // first

    b: number  // second
    // about c
    c: string?
  }
  // closing note
}
";
        assert_eq!(fmt(before), after);
    }

    #[test]
    fn expressions_keep_the_authors_parentheses_and_break_where_they_must() {
        let before = "policy p version 1 {
  dimension d weight 100% {
    let a = ((x)) + (y * 2)
    let b = if a > 1 then 1 else if a > 0.5 then 0.5 else 0
    let c = match rank(query.s) { 0 => 1.0, 1 | 2 => 0.6, _ => 0.0 }
    let d = if query.some_long_field_name == candidate.some_other_long_field then 1.0 else candidate.x / 2
    let e = -(x) - -1 + not_a ?? 3
    score = clamp(some_function_with_a_long_name(query.first_field, candidate.second_field) * 0.5 + 0.25, 0, 1)
  }
  rule r { when a // why a
  and b exclude because \"x\" }
  rule s { when (a or b) and not (c and d) floor overall at 0.5 because \"y\" }
}
pipeline pp for p { monitor { alert p99 > 1000ms alert p50 > 2s alert x > 0.5s } student { train { lr 0.00003, warmup 1e3, time 90s } } }
";
        let after = "policy p version 1 {
  dimension d weight 100% {
    let a = ((x)) + (y * 2)
    let b = if a > 1 then 1 else if a > 0.5 then 0.5 else 0
    let c = match rank(query.s) { 0 => 1.0, 1 | 2 => 0.6, _ => 0.0 }
    let d =
      if query.some_long_field_name == candidate.some_other_long_field then 1.0 else candidate.x / 2
    let e = -(x) - -1 + not_a ?? 3
    score =
      clamp(some_function_with_a_long_name(query.first_field, candidate.second_field) * 0.5 + 0.25,
            0,
            1)
  }

  rule r {
    when a  // why a
      and b
    exclude
    because \"x\"
  }

  rule s {
    when (a or b) and not (c and d)
    floor overall at 0.5
    because \"y\"
  }
}

pipeline pp for p {
  student {
    train { lr 3e-5, warmup 1000, time 90s }
  }
  monitor {
    alert p99 > 1000ms
    alert p50 > 2s
    alert x > 0.5s
  }
}
";
        assert_eq!(fmt(before), after);
    }

    #[test]
    fn long_enums_tables_and_documented_values_take_one_line_each() {
        let before = "/// Docs of the module.
module team.skills {
  /// Alias.
  table alias: string -> string default \"\" { \"js\": \"javascript\", \"ts\": \"typescript\" }
  /// A long enum.
  enum Industry { software, internet, cybersecurity, fintech, gaming, edtech, ecommerce, telecommunications }
  enum L {
    /// lowest
    a < b
  }
  dimension d weight 10% { score = match x { 0 => 1, _ => 0 } }
}
";
        let after = "/// Docs of the module.
module team.skills {
  /// Alias.
  table alias: string -> string default \"\" {
    \"js\": \"javascript\",
    \"ts\": \"typescript\",
  }

  /// A long enum.
  enum Industry {
    software,
    internet,
    cybersecurity,
    fintech,
    gaming,
    edtech,
    ecommerce,
    telecommunications,
  }

  enum L {
    /// lowest
    a <
    b
  }

  dimension d weight 10% {
    score = match x { 0 => 1, _ => 0 }
  }
}
";
        assert_eq!(fmt(before), after);
    }

    #[test]
    fn canonical_text_ignores_layout_comments_docs_and_redundant_parentheses() {
        let a = "/// A policy.\npolicy p version 1 {\n  dimension d weight 100% {\n    // why\n    score = (a + b) * c + (d * e)\n  }\n}\n";
        let b = "policy p version 1 { dimension d weight 100% { score = ((a + b)) * c + d * e } }";
        let c = "policy p version 1 { dimension d weight 100% { score = a + b * c + d * e } }";
        let canon = |t: &str| canonical(&parse_tree(t).unwrap());
        assert_eq!(canon(a), canon(b));
        assert_ne!(canon(a), canon(c));
        assert_eq!(
            canon(a),
            "policy p version 1 {\n  dimension d weight 100% {\n    score = (a + b) * c + d * e\n  }\n}\n"
        );
        // Numbers that read the same are the same.
        assert_eq!(
            canon("policy p version 1 { min_coverage 50.0% fn f() -> number = 0.50 + 1.0 }"),
            canon("policy p version 1 { min_coverage 50% fn f() -> number = 0.5 + 1 }"),
        );
    }

    #[test]
    fn parentheses_are_added_where_precedence_needs_them() {
        // The canonical text drops the author's parentheses and puts back only the needed ones.
        for (text, expected) in [
            ("(a or b) and c", "(a or b) and c"),
            ("a or (b and c)", "a or b and c"),
            ("not (a == b)", "not a == b"),
            ("not (a and b)", "not (a and b)"),
            ("(not a) == b", "(not a) == b"),
            ("a == (not b)", "a == not b"),
            ("(a == not b) and c", "a == not b and c"),
            ("(a == (not b)) == c", "(a == not b) == c"),
            ("a - (b - c)", "a - (b - c)"),
            ("(a - b) - c", "a - b - c"),
            ("(a ?? b) ?? c", "(a ?? b) ?? c"),
            ("a ?? (b ?? c)", "a ?? b ?? c"),
            ("-(a * b)", "-(a * b)"),
            ("(-a) * b", "-a * b"),
            ("(if a then b else c) + 1", "(if a then b else c) + 1"),
            ("1 + (if a then b else c)", "1 + if a then b else c"),
            ("(a & b) | c", "a & b | c"),
            ("a & (b | c)", "a & (b | c)"),
        ] {
            let policy = format!("policy p version 1 {{ fn f() -> bool = {text} }}");
            let c = canonical(&parse_tree(&policy).unwrap());
            let expected = format!("policy p version 1 {{\n  fn f() -> bool = {expected}\n}}\n");
            assert_eq!(c, expected, "{text}");
        }
    }

    #[test]
    fn one_expression_or_pipeline_prints_alone_without_comments() {
        let text = "policy p version 1 {
  dimension d weight 100% {
    score = when a // why
      => (1.0)
      otherwise => 0.50 * (b + c)
  }
}
/// Docs of the pipeline.
pipeline pp for p { monitor { alert click_auc < 0.70 } // low
}
";
        let tree = parse_tree(text).unwrap();
        let (Some(TopItem::Policy(policy)), Some(TopItem::Pipeline(pipeline))) =
            (tree.items.first(), tree.items.get(1))
        else {
            panic!("{tree:?}")
        };
        let Some(Item::Dimension(d)) = policy.items.first() else {
            panic!("{policy:?}")
        };
        let score = &d.score.first().unwrap().value;
        assert_eq!(
            format_expr(score, text),
            "when a => (1.0)\notherwise => 0.50 * (b + c)"
        );
        assert_eq!(
            format_pipeline(pipeline, text),
            "pipeline pp for p {\n  monitor {\n    alert click_auc < 0.70\n  }\n}"
        );
    }

    #[test]
    fn a_match_of_four_arms_or_more_takes_one_line_an_arm() {
        let before = "policy p version 1 {
  fn f(x: number) -> number = match x { 0 => 1.0, 1 => 0.5, _ => 0.0 }
  fn g(x: number) -> number = match x { 0 => 1.0, 1 => 0.6, 2 => 0.2, _ => 0.0 }
}
";
        let after = "policy p version 1 {
  fn f(x: number) -> number = match x { 0 => 1.0, 1 => 0.5, _ => 0.0 }

  fn g(x: number) -> number =
    match x {
      0 => 1.0,
      1 => 0.6,
      2 => 0.2,
      _ => 0.0,
    }
}
";
        assert_eq!(fmt(before), after);
        let tree = |t: &str| parse_tree(t).unwrap();
        assert_eq!(canonical(&tree(before)), canonical(&tree(after)));
        assert!(canonical(&tree(after)).contains("match x { 0 => 1, 1 => 0.6, 2 => 0.2, _ => 0 }"));
    }

    #[test]
    fn decimals_keep_their_trailing_zeros_and_other_spellings_take_one_form() {
        let before = "policy p version 1 { fn f() -> number = 1.0 + 0.40 + 1.50 + 0.00003 + 1e3 + 2.5e0 + 007
  rule r { when a cap overall at 0.30 because \"x\" }
  rule s { when a floor overall at 30.0% because \"x\" } }
pipeline pp for p { student { train { lr 0.00100, warmup 1e3 } } monitor { alert click_auc < 0.70 } }
";
        let after = "policy p version 1 {
  fn f() -> number = 1.0 + 0.40 + 1.50 + 3e-5 + 1000 + 2.5 + 7

  rule r {
    when a
    cap overall at 0.30
    because \"x\"
  }

  rule s {
    when a
    floor overall at 30%
    because \"x\"
  }
}

pipeline pp for p {
  student {
    train { lr 0.00100, warmup 1000 }
  }
  monitor {
    alert click_auc < 0.70
  }
}
";
        assert_eq!(fmt(before), after);
        assert_eq!(fmt(after), after);
        assert!(with_trailing_zeros("1.0", "1"));
        assert!(with_trailing_zeros("0.40", "0.4"));
        assert!(!with_trailing_zeros("0.4", "0.4"));
        assert!(!with_trailing_zeros("10", "1"));
        assert!(!with_trailing_zeros("0.00003", "3e-5"));
    }

    #[test]
    fn literals_read_back_identically() {
        for v in [
            0.0,
            1.0,
            0.85,
            3e-5,
            1e-4,
            0.1 + 0.2,
            1e21,
            123456.789,
            2.5e-10,
        ] {
            assert_eq!(number(v).parse::<f64>().unwrap(), v, "{v}");
        }
        assert_eq!(number(3e-5), "3e-5");
        assert_eq!(number(1.0), "1");
        for v in [0.4, 0.07, 0.125, 0.333, 1.0, 0.001, 0.0, 1e-7] {
            let p = percent(v);
            assert_eq!(p.parse::<f64>().unwrap() / 100.0, v, "{v}");
        }
        assert_eq!(percent(0.4), "40");
        assert_eq!(percent(0.07), "7");
        assert_eq!(percent(0.125), "12.5");
        assert_eq!(duration(20.0, None), "20ms");
        assert_eq!(duration(1000.0, None), "1s");
        assert_eq!(duration(1000.0, Some("ms")), "1000ms");
        assert_eq!(duration(0.5, None), "500us");
        assert_eq!(duration(300_000.0, None), "5min");
        assert_eq!(quote("say \"hi\"\\\n\t"), r#""say \"hi\"\\\n\t""#);
    }

    #[test]
    fn deep_expressions_format_without_overflowing() {
        let depth = 200;
        let parens = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
        let nots = format!("{}true", "not ".repeat(depth));
        let sum = vec!["x"; depth].join(" + ");
        let ands = vec!["a"; depth].join(" and ");
        for body in [parens, nots, sum, ands] {
            let text = format!("policy p version 1 {{ fn f(x: number) -> number = {body} }}");
            assert_properties("deep", &text);
        }
    }

    #[test]
    fn text_that_does_not_parse_is_not_formatted() {
        assert_eq!(format_source("policy p version 1 { dimension }"), None);
        assert_eq!(format_source(""), Some(String::new()));
        assert_eq!(
            format_source("// only a comment"),
            Some("// only a comment\n".to_string())
        );
    }

    /// Byte offsets of the blanks between tokens: outside strings, comments and docs.
    fn gaps(text: &str) -> Vec<usize> {
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        let mut in_string = false;
        while i < b.len() {
            let c = b[i];
            if in_string {
                match c {
                    b'\\' => i += 1,
                    b'"' => in_string = false,
                    _ => {}
                }
            } else if c == b'"' {
                in_string = true;
            } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
                // To the end of the line, whose line break is not a gap: a comment there would
                // join the comment or doc.
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if c == b' ' || c == b'\n' {
                out.push(i);
            }
            i += 1;
        }
        out
    }

    /// Checks the properties on a text that parses: idempotent, same meaning, same comments.
    fn assert_properties(name: &str, text: &str) {
        let tree = parse_tree(text).unwrap();
        let once = format_tree(&tree, text);
        let again = parse_tree(&once)
            .unwrap_or_else(|| panic!("{name}: the formatted text does not parse:\n{once}"));
        let twice = format_tree(&again, &once);
        assert!(
            twice == once,
            "{name}: formatting twice changes the text:\n{}\n\n{once}",
            first_difference(&once, &twice)
        );
        assert_eq!(
            canonical(&tree),
            canonical(&again),
            "{name}: meaning changed"
        );
        let (before, after) = (comment_texts(&tree), comment_texts(&again));
        if before != after {
            let at = before
                .iter()
                .zip(&after)
                .take_while(|(a, b)| a == b)
                .count();
            panic!(
                "{name}: comments lost, duplicated or out of order from {:?} / {:?} on:\n{once}",
                before.get(at),
                after.get(at)
            );
        }
    }

    #[test]
    fn comments_anywhere_between_tokens_survive_and_formatting_stays_idempotent() {
        let mut variants = 0;
        for (name, text) in files() {
            if parse_tree(&text).is_none() {
                continue;
            }
            let gaps = gaps(&text);
            let stride = 3;
            for variant in 0..stride {
                let mut out = String::with_capacity(text.len() * 2);
                let mut last = 0;
                for (k, &at) in gaps
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| k % stride == variant)
                {
                    out.push_str(&text[last..at]);
                    // Trailing, on its own line, after a blank line, before a blank line.
                    out.push_str(&match (k / stride) % 4 {
                        0 => format!(" // c{k}\n"),
                        1 => format!("\n// c{k}\n"),
                        2 => format!("\n\n// c{k}\n"),
                        _ => format!(" // c{k}\n\n"),
                    });
                    last = at;
                }
                out.push_str(&text[last..]);
                if parse_tree(&out).is_none() {
                    continue;
                }
                variants += 1;
                assert_properties(&format!("{name} (comments, variant {variant})"), &out);
            }
        }
        assert!(variants > 150, "only {variants} variants parse");
    }

    /// The text with every run of blanks between tokens made one space, except the line breaks
    /// that end comments and docs and the blanks in front of comments.
    fn collapse_blanks(text: &str) -> String {
        let b = text.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        let mut in_string = false;
        let mut after_comment = false;
        while i < b.len() {
            let c = b[i];
            if in_string {
                out.push(c);
                match c {
                    b'\\' => {
                        out.push(b[i + 1]);
                        i += 1;
                    }
                    b'"' => in_string = false,
                    _ => {}
                }
                i += 1;
            } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b[i]);
                    i += 1;
                }
                after_comment = true;
            } else if c.is_ascii_whitespace() {
                let start = i;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
                if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'/') {
                    out.extend_from_slice(&b[start..i]);
                } else if after_comment {
                    out.push(b'\n');
                } else {
                    out.push(b' ');
                }
                after_comment = false;
            } else {
                in_string = c == b'"';
                out.push(c);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    fn without_blank_lines(text: &str) -> String {
        text.lines()
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn layout_does_not_depend_on_the_authors_line_breaks() {
        for (name, text) in files() {
            let Some(tree) = parse_tree(&text) else {
                continue;
            };
            let collapsed = collapse_blanks(&text);
            let Some(flat) = parse_tree(&collapsed) else {
                panic!("{name}: collapsed text does not parse:\n{collapsed}");
            };
            assert_eq!(
                without_blank_lines(&format_tree(&flat, &collapsed)),
                without_blank_lines(&format_tree(&tree, &text)),
                "{name}"
            );
        }
    }
}
