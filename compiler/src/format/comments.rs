//! The final text: laid-out lines joined with the `//` comments placed by the marks around them,
//! the author's blank lines kept (at most one), and the scanning of source text between tokens.

use super::*;

/// A line of the result.
pub(super) enum Fin {
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
pub(super) fn assemble(lines: Vec<OutLine>, comments: &[Comment], src: &str) -> String {
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
pub(super) fn normalize_blanks(lines: Vec<Fin>) -> Vec<Fin> {
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
pub(super) fn finish(lines: Vec<Fin>) -> String {
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

pub(super) fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Whether the author left a blank line right before `pos`.
pub(super) fn blank_before(src: &str, pos: u32) -> bool {
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
pub(super) fn skip_trivia(src: &str, mut pos: usize) -> usize {
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
pub(super) fn skip_trivia_and_docs(src: &str, mut pos: usize) -> usize {
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
pub(super) fn string_end(src: &str, pos: usize) -> Option<usize> {
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
