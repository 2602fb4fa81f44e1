//! A lexical pre-scan that runs before pest: it collects `//` comments (trivia for the
//! formatter), checks bracket balance and the nesting limit without recursion (so 100,000 nested
//! parentheses are a diagnostic, not a stack overflow), and splits a file into items so the
//! parser can recover at item boundaries.

use crate::diagnostics::{Code, Diagnostic};
use crate::source::{FileId, Span};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Word,
    Open(u8),
    Close(u8),
    Doc,
    Other,
}

#[derive(Clone, Copy, Debug)]
pub struct Token {
    pub kind: TokenKind,
    pub start: usize,
    pub end: usize,
    /// Bracket depth at the token (for an opening bracket, the depth outside it).
    pub depth: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    TooDeep,
    Unclosed,
    UnclosedString,
    Unopened,
    Mismatched,
}

#[derive(Clone, Debug)]
pub struct Problem {
    pub kind: ProblemKind,
    pub offset: usize,
    pub len: usize,
    /// For a mismatch: where the bracket it should have closed was opened.
    pub other: Option<(usize, u8)>,
    pub ch: u8,
    pub limit: u32,
}

impl Problem {
    pub fn to_diagnostic(&self, file: FileId) -> Diagnostic {
        let span = Span::new(file, self.offset, self.offset + self.len);
        let ch = char::from(self.ch);
        match self.kind {
            ProblemKind::TooDeep => Diagnostic::new(
                Code::SyntaxTooDeep,
                format!("this nests more than {} levels deep", self.limit),
            )
            .at(span, "the limit is passed here")
            .help("name the inner parts with `let` or a `fn` so each expression stays shallow"),
            ProblemKind::Unclosed => {
                Diagnostic::new(Code::SyntaxUnclosed, format!("this `{ch}` is never closed"))
                    .at(span, "opened here")
                    .help(format!(
                        "add the matching `{}`",
                        char::from(closing(self.ch))
                    ))
            }
            ProblemKind::UnclosedString => {
                Diagnostic::new(Code::SyntaxUnclosed, "this string is never closed")
                    .at(span, "the closing `\"` is missing")
                    .help("end the string with `\"` on the same line; a string cannot span lines")
            }
            ProblemKind::Unopened => {
                Diagnostic::new(Code::SyntaxUnclosed, format!("this `{ch}` closes nothing"))
                    .at(span, "no bracket is open here")
                    .help("remove it, or add the opening bracket it was meant to close")
            }
            ProblemKind::Mismatched => {
                let mut d = Diagnostic::new(
                    Code::SyntaxUnclosed,
                    format!("this `{ch}` does not match the bracket it closes"),
                )
                .at(span, "closes here");
                if let Some((at, open)) = self.other {
                    d = d
                        .with(
                            Span::new(file, at, at + 1),
                            format!("`{}` opened here", char::from(open)),
                        )
                        .help(format!("close it with `{}`", char::from(closing(open))));
                }
                d
            }
        }
    }
}

fn closing(open: u8) -> u8 {
    match open {
        b'(' => b')',
        b'[' => b']',
        _ => b'}',
    }
}

#[derive(Debug, Default)]
pub struct Scanned {
    pub tokens: Vec<Token>,
    pub comments: Vec<(usize, usize)>,
    pub problems: Vec<Problem>,
}

/// Words that open a nested expression without a bracket; each counts as one level.
fn nests(word: &[u8]) -> bool {
    matches!(word, b"if" | b"match" | b"when")
}

struct Frame {
    open: u8,
    at: usize,
    /// Levels added inside this bracket by `if`, `match` and `when`.
    keywords: u32,
}

pub fn scan(text: &str, max_depth: u32) -> Scanned {
    let bytes = text.as_bytes();
    let mut out = Scanned::default();
    let mut stack: Vec<Frame> = Vec::new();
    let mut root_keywords: u32 = 0;
    let mut too_deep_reported = false;
    // Openers whose `}` looks like it belongs to an outer block: the likeliest unclosed ones.
    let mut suspects: Vec<usize> = Vec::new();
    let mut i = 0;
    let depth_of = |stack: &Vec<Frame>, root: u32| -> u64 {
        stack.iter().map(|f| 1 + u64::from(f.keywords)).sum::<u64>() + u64::from(root)
    };
    while let Some(&b) = bytes.get(i) {
        let start = i;
        let depth = u32::try_from(stack.len()).unwrap_or(u32::MAX);
        match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                let end = text
                    .get(i..)
                    .and_then(|rest| rest.find('\n'))
                    .map_or(bytes.len(), |n| i + n);
                if bytes.get(i + 2) == Some(&b'/') {
                    out.tokens.push(Token {
                        kind: TokenKind::Doc,
                        start,
                        end,
                        depth,
                    });
                } else {
                    out.comments.push((start, end));
                }
                i = end;
                continue;
            }
            b'"' => {
                i += 1;
                let mut closed = false;
                while let Some(&c) = bytes.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            closed = true;
                            break;
                        }
                        b'\n' => break,
                        _ => i += 1,
                    }
                }
                if !closed {
                    out.problems.push(Problem {
                        kind: ProblemKind::UnclosedString,
                        offset: start,
                        len: i.min(bytes.len()) - start,
                        other: None,
                        ch: b'"',
                        limit: max_depth,
                    });
                }
                i = i.min(bytes.len());
                out.tokens.push(Token {
                    kind: TokenKind::Other,
                    start,
                    end: i,
                    depth,
                });
                continue;
            }
            b'(' | b'[' | b'{' => {
                out.tokens.push(Token {
                    kind: TokenKind::Open(b),
                    start,
                    end: i + 1,
                    depth,
                });
                stack.push(Frame {
                    open: b,
                    at: i,
                    keywords: 0,
                });
                if !too_deep_reported && depth_of(&stack, root_keywords) > u64::from(max_depth) {
                    too_deep_reported = true;
                    out.problems.push(Problem {
                        kind: ProblemKind::TooDeep,
                        offset: i,
                        len: 1,
                        other: None,
                        ch: b,
                        limit: max_depth,
                    });
                }
                i += 1;
                continue;
            }
            b')' | b']' | b'}' => {
                let matching = stack.iter().rposition(|f| closing(f.open) == b);
                match (stack.last(), matching) {
                    (None, _) | (Some(_), None) => {
                        // Closes nothing that is open: a stray; the open brackets stay open.
                        out.problems.push(Problem {
                            kind: ProblemKind::Unopened,
                            offset: i,
                            len: 1,
                            other: None,
                            ch: b,
                            limit: max_depth,
                        });
                    }
                    (Some(top), Some(at)) => {
                        if closing(top.open) != b {
                            // It closes an outer bracket: the inner ones were never closed.
                            out.problems.push(Problem {
                                kind: ProblemKind::Mismatched,
                                offset: i,
                                len: 1,
                                other: Some((top.at, top.open)),
                                ch: b,
                                limit: max_depth,
                            });
                        } else if b == b'}' && first_on_line(text, i) {
                            // A `}` alone on its line, indented less than the line of its `{`,
                            // probably closes an outer block: remember the `{` as a suspect.
                            if indent(text, i) < indent(text, top.at) {
                                suspects.push(top.at);
                            }
                        }
                        stack.truncate(at);
                    }
                }
                if stack.is_empty() {
                    root_keywords = 0;
                }
                out.tokens.push(Token {
                    kind: TokenKind::Close(b),
                    start,
                    end: i + 1,
                    depth: u32::try_from(stack.len()).unwrap_or(u32::MAX),
                });
                i += 1;
                continue;
            }
            _ => {}
        }
        if b.is_ascii_alphabetic() || b == b'_' {
            while bytes
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
            {
                i += 1;
            }
            let word = bytes.get(start..i).unwrap_or(&[]);
            if nests(word) {
                match stack.last_mut() {
                    Some(frame) => frame.keywords += 1,
                    None => root_keywords += 1,
                }
                if !too_deep_reported && depth_of(&stack, root_keywords) > u64::from(max_depth) {
                    too_deep_reported = true;
                    out.problems.push(Problem {
                        kind: ProblemKind::TooDeep,
                        offset: start,
                        len: i - start,
                        other: None,
                        ch: b,
                        limit: max_depth,
                    });
                }
            }
            out.tokens.push(Token {
                kind: TokenKind::Word,
                start,
                end: i,
                depth,
            });
            continue;
        }
        // Any other character: one token (a UTF-8 sequence counts as one).
        let len = text
            .get(i..)
            .and_then(|r| r.chars().next())
            .map_or(1, char::len_utf8);
        i += len;
        out.tokens.push(Token {
            kind: TokenKind::Other,
            start,
            end: i,
            depth,
        });
    }
    // A string left open swallows the rest of its line, closing brackets included: the bracket
    // it left open is the string's cascade, not a second problem (reported once it is fixed).
    let string_left_open = out
        .problems
        .iter()
        .any(|p| matches!(p.kind, ProblemKind::UnclosedString));
    if let Some(frame) = stack.last().filter(|_| !string_left_open) {
        // Point at the first opener whose `}` looked misplaced, if any; else the innermost open.
        let (offset, ch) = suspects
            .first()
            .and_then(|at| bytes.get(*at).map(|c| (*at, *c)))
            .unwrap_or((frame.at, frame.open));
        out.problems.push(Problem {
            kind: ProblemKind::Unclosed,
            offset,
            len: 1,
            other: None,
            ch,
            limit: max_depth,
        });
    }
    out
}

/// The indentation of the line holding `pos`.
fn indent(text: &str, pos: usize) -> usize {
    let start = text
        .get(..pos)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |n| n + 1);
    let line = text.get(start..).unwrap_or("");
    line.len() - line.trim_start_matches([' ', '\t']).len()
}

/// Whether only blanks stand before `pos` on its line.
fn first_on_line(text: &str, pos: usize) -> bool {
    let start = text
        .get(..pos)
        .and_then(|t| t.rfind('\n'))
        .map_or(0, |n| n + 1);
    text.get(start..pos).is_some_and(|b| b.trim().is_empty())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentKind {
    /// `policy x version 1 {`, `module a.b {` or `pipeline p for x {`, with its docs.
    Header,
    PolicyItem,
    PipelineItem,
    /// Text outside any top-level block.
    Stray,
}

#[derive(Clone, Copy, Debug)]
pub struct Segment {
    pub kind: SegmentKind,
    pub start: usize,
    pub end: usize,
}

impl Segment {
    pub fn contains(&self, offset: usize) -> bool {
        self.start <= offset && offset < self.end
    }
}

const POLICY_ITEMS: &[&str] = &[
    "use",
    "entity",
    "enum",
    "pair",
    "table",
    "fn",
    "dimension",
    "rule",
    "grade",
    "example",
    "min_coverage",
];
const PIPELINE_ITEMS: &[&str] = &["data", "teacher", "student", "quantize", "monitor"];

/// Splits a file into headers and items by its keywords at bracket depth 0 and 1.
pub fn segments(text: &str, tokens: &[Token]) -> Vec<Segment> {
    let word = |t: &Token| text.get(t.start..t.end).unwrap_or("");
    let mut out = Vec::new();
    let mut body: Option<SegmentKind> = None;
    let mut current: Option<(SegmentKind, usize)> = None;
    let mut pending_doc: Option<usize> = None;
    let mut idx = 0;
    while let Some(t) = tokens.get(idx) {
        idx += 1;
        let close =
            |current: &mut Option<(SegmentKind, usize)>, out: &mut Vec<Segment>, end: usize| {
                if let Some((kind, start)) = current.take() {
                    out.push(Segment { kind, start, end });
                }
            };
        match body {
            None => {
                if t.depth != 0 {
                    continue;
                }
                match t.kind {
                    TokenKind::Doc => {
                        pending_doc.get_or_insert(t.start);
                    }
                    TokenKind::Word if matches!(word(t), "policy" | "module" | "pipeline") => {
                        let start = pending_doc.take().unwrap_or(t.start);
                        let kind = if word(t) == "pipeline" {
                            SegmentKind::PipelineItem
                        } else {
                            SegmentKind::PolicyItem
                        };
                        // The header runs to the first `{` at depth 0.
                        let mut end = text.len();
                        while let Some(h) = tokens.get(idx) {
                            idx += 1;
                            if h.kind == TokenKind::Open(b'{') && h.depth == 0 {
                                end = h.end;
                                body = Some(kind);
                                break;
                            }
                        }
                        out.push(Segment {
                            kind: SegmentKind::Header,
                            start,
                            end,
                        });
                    }
                    _ => {
                        let start = pending_doc.take().unwrap_or(t.start);
                        out.push(Segment {
                            kind: SegmentKind::Stray,
                            start,
                            end: t.end,
                        });
                    }
                }
            }
            Some(kind) => {
                if t.kind == TokenKind::Close(b'}') && t.depth == 0 {
                    close(&mut current, &mut out, t.start);
                    body = None;
                    pending_doc = None;
                    continue;
                }
                if t.depth != 1 {
                    continue;
                }
                let starts_item = match t.kind {
                    TokenKind::Doc => !matches!(
                        tokens.get(idx.wrapping_sub(2)),
                        Some(prev) if prev.kind == TokenKind::Doc && prev.depth == 1
                    ),
                    TokenKind::Word => {
                        let w = word(t);
                        let keywords = if kind == SegmentKind::PipelineItem {
                            PIPELINE_ITEMS
                        } else {
                            POLICY_ITEMS
                        };
                        keywords.contains(&w)
                            && !matches!(
                                tokens.get(idx.wrapping_sub(2)),
                                Some(prev) if prev.kind == TokenKind::Doc && prev.depth == 1
                            )
                    }
                    _ => false,
                };
                if starts_item {
                    close(&mut current, &mut out, t.start);
                    current = Some((kind, t.start));
                } else if current.is_none() {
                    current = Some((kind, t.start));
                }
            }
        }
    }
    if let Some((kind, start)) = current {
        out.push(Segment {
            kind,
            start,
            end: text.len(),
        });
    }
    out
}

/// Describes the token at `offset` for a message: "`dimension`", "`{`", "end of file".
pub fn token_at(text: &str, offset: usize) -> String {
    let offset = skip_trivia(text, offset);
    let Some(rest) = text.get(offset..) else {
        return "end of file".to_string();
    };
    let Some(first) = rest.chars().next() else {
        return "end of file".to_string();
    };
    if first == '"' {
        return "a string".to_string();
    }
    let end = if first.is_alphanumeric() || first == '_' {
        rest.char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '.'))
            .map_or(rest.len(), |(i, _)| i)
    } else {
        let two = rest.get(..2).unwrap_or("");
        if matches!(two, "==" | "!=" | "<=" | ">=" | "=>" | "->" | "??" | "//") {
            2
        } else {
            first.len_utf8()
        }
    };
    let token = rest.get(..end.min(40)).unwrap_or("");
    format!("`{token}`")
}

/// The offset of the next token at or after `offset` (skips blanks and `//` comments).
pub fn skip_trivia(text: &str, mut offset: usize) -> usize {
    let bytes = text.as_bytes();
    loop {
        match bytes.get(offset) {
            Some(b' ' | b'\t' | b'\r' | b'\n') => offset += 1,
            Some(b'/')
                if bytes.get(offset + 1) == Some(&b'/') && bytes.get(offset + 2) != Some(&b'/') =>
            {
                offset = text
                    .get(offset..)
                    .and_then(|r| r.find('\n'))
                    .map_or(bytes.len(), |n| offset + n);
            }
            _ => return offset,
        }
    }
}
