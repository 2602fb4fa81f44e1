//! The formatter's documents (after Wadler's "prettier printer": text, line breaks a group takes
//! all flat or all broken, indentation, alignment, marks of source spans) and their layout into
//! lines of at most 100 columns.

use super::*;

/// Why a blank line stands before a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BlankKind {
    /// The author left one there.
    Source,
    /// The layout wants one (between items) though the author left none.
    Forced,
}

#[derive(Debug)]
pub(super) enum Doc {
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

pub(super) fn nil() -> Doc {
    Doc::Concat(Vec::new())
}

pub(super) fn text(s: impl Into<String>) -> Doc {
    Doc::Text(s.into())
}

pub(super) fn cat(parts: Vec<Doc>) -> Doc {
    Doc::Concat(parts)
}

pub(super) fn indent(d: Doc) -> Doc {
    Doc::Indent(Box::new(d))
}

pub(super) fn align(d: Doc) -> Doc {
    Doc::Align(Box::new(d))
}

pub(super) fn group(d: Doc) -> Doc {
    group_if(d, false)
}

pub(super) fn group_if(d: Doc, force: bool) -> Doc {
    let broken = force || must_break(&d);
    Doc::Group(Box::new(d), broken)
}

pub(super) fn if_break(broken: Doc, flat: Doc) -> Doc {
    Doc::IfBreak(Box::new(broken), Box::new(flat))
}

/// Whether a doc holds a hard line break outside any group (a group knows its own).
pub(super) fn must_break(d: &Doc) -> bool {
    match d {
        Doc::HardLine | Doc::Blank(_) => true,
        Doc::Group(_, broken) => *broken,
        Doc::Indent(x) | Doc::Align(x) => must_break(x),
        Doc::Concat(v) => v.iter().any(must_break),
        Doc::Text(_) | Doc::Line | Doc::SoftLine | Doc::Mark(..) | Doc::IfBreak(..) => false,
    }
}

/// `items` separated by `sep` and a line break.
pub(super) fn join(items: Vec<Doc>, sep: &str) -> Doc {
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
pub(super) fn flat_width(d: &Doc) -> usize {
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
pub(super) enum Mode {
    Flat,
    Break,
}

/// One laid-out line.
#[derive(Debug, Default)]
pub(super) struct OutLine {
    pub(super) indent: usize,
    pub(super) text: String,
    pub(super) width: usize,
    /// The source spans printed on this line, in the order printed.
    pub(super) marks: Vec<(u32, u32)>,
    /// Set for a blank line.
    pub(super) blank: Option<BlankKind>,
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
pub(super) fn render(doc: &Doc) -> Vec<OutLine> {
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
pub(super) fn fits(next: &Doc, rest: &[(usize, Mode, &Doc)], width: usize) -> bool {
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
