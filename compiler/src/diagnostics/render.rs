//! Renders diagnostics with miette: `human` (graphical, underlined source), `plain` (narrated,
//! for screen readers and logs) and `json` (one object a line, for tools).

use super::{Diagnostic, Severity};
use crate::source::Sources;
use miette::{
    GraphicalReportHandler, GraphicalTheme, JSONReportHandler, LabeledSpan, MietteError,
    MietteSpanContents, NamedSource, NarratableReportHandler, SourceCode, SourceSpan, SpanContents,
};
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ErrorFormat {
    /// Underlined source, unicode; colour only when asked for.
    #[default]
    Human,
    Plain,
    Json,
}

/// One diagnostic with its source, in the shape miette renders.
struct Report {
    diagnostic: Diagnostic,
    source: Option<Snippets>,
    labels: Vec<LabeledSpan>,
}

/// A file's text as miette reads it, with each snippet's line count corrected. miette 7.6's
/// `str` source reports as `line_count` the number of lines from the start of the file to the
/// end of the snippet, and its handlers merge two labels' snippets when `line + line_count`
/// reaches the next one's line: every diagnostic with labels in far-apart places (the weights of
/// nine dimensions) then echoed every line between its first and last label. Counting the lines
/// of the snippet itself keeps far-apart labels in separate snippets, and near ones merged.
/// When long lines were cut (`cut_long_lines`), the original text and the kept runs give each
/// snippet its real column.
struct Snippets(NamedSource<Arc<str>>, Option<(Arc<str>, Vec<Kept>)>);

impl SourceCode for Snippets {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .0
            .read_span(span, context_lines_before, context_lines_after)?;
        let data = inner.data();
        let lines = 1 + data.iter().filter(|b| **b == b'\n').count()
            - usize::from(data.last() == Some(&b'\n'));
        let column = match &self.1 {
            Some((original, runs)) => {
                let at = uncut_offset(runs, inner.span().offset());
                let line_start = original
                    .get(..at)
                    .and_then(|t| t.rfind('\n'))
                    .map_or(0, |i| i + 1);
                original
                    .get(line_start..at)
                    .map_or(0, |t| t.chars().count())
            }
            None => inner.column(),
        };
        let mut contents =
            MietteSpanContents::new(data, *inner.span(), inner.line(), column, lines);
        if let Some(name) = inner.name() {
            contents = MietteSpanContents::new_named(
                name.to_string(),
                data,
                *inner.span(),
                inner.line(),
                column,
                lines,
            );
        }
        Ok(Box::new(contents))
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.code.as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.diagnostic
            .help
            .as_deref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
}

/// Lines longer than this are shown cut around the labels on them: a diagnostic never reprints
/// a megabyte-long line, and miette's column arithmetic (which panics past column 65,535) only
/// ever sees short lines.
const LONG_LINE: usize = 320;
/// Characters kept on each side of a label on a cut line, and of a long label's two ends.
const MARGIN: usize = 40;

/// A run of the original text kept in the cut text: where it starts in each, and its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kept {
    from: usize,
    to: usize,
    len: usize,
}

/// The text with its long lines cut to windows around `spans` (`…` where text was left out),
/// and the runs it kept. None when no line is long.
fn cut_long_lines(text: &str, spans: &[(usize, usize)]) -> Option<(String, Vec<Kept>)> {
    let mut keep: Vec<(usize, usize)> = Vec::new();
    let mut any = false;
    let mut start = 0;
    for line in text.split_inclusive('\n') {
        let end = start + line.len();
        if line.len() <= LONG_LINE {
            keep.push((start, end));
            start = end;
            continue;
        }
        any = true;
        let mut windows: Vec<(usize, usize)> = Vec::new();
        for (s, e) in spans
            .iter()
            .copied()
            .filter(|(s, e)| *s < end && *e >= start)
        {
            let (s, e) = (s.max(start), e.min(end));
            if e - s <= 2 * MARGIN {
                windows.push((s.saturating_sub(MARGIN), e + MARGIN));
            } else {
                windows.push((s.saturating_sub(MARGIN), s + MARGIN));
                windows.push((e - MARGIN, e + MARGIN));
            }
        }
        if windows.is_empty() {
            windows.push((start, start + 2 * MARGIN));
        }
        // The line's end (its newline) stays, so lines stay lines.
        windows.push((end - usize::from(line.ends_with('\n')), end));
        windows.sort_unstable();
        let first = keep.len();
        for (s, e) in windows {
            let s = floor_boundary(text, s.clamp(start, end));
            let e = floor_boundary(text, e.clamp(start, end));
            let this_line = keep.len() > first;
            match keep.last_mut() {
                Some(last) if this_line && s <= last.1 => last.1 = last.1.max(e),
                _ => keep.push((s, e)),
            }
        }
        start = end;
    }
    if !any {
        return None;
    }
    let mut out = String::new();
    let mut runs = Vec::with_capacity(keep.len());
    let mut previous_end = 0;
    for (s, e) in keep {
        if s > previous_end {
            out.push('…');
        }
        runs.push(Kept {
            from: s,
            to: out.len(),
            len: e - s,
        });
        out.push_str(text.get(s..e).unwrap_or(""));
        previous_end = e;
    }
    Some((out, runs))
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Where an offset of the cut text was in the original one.
fn uncut_offset(runs: &[Kept], offset: usize) -> usize {
    match runs.partition_point(|r| r.to <= offset) {
        0 => 0,
        i => runs
            .get(i - 1)
            .map_or(0, |r| r.from + (offset - r.to).min(r.len)),
    }
}

/// Where an offset of the original text is in the cut one; a left-out offset is at the end of
/// the run before it (where its `…` stands).
fn cut_offset(runs: &[Kept], offset: usize) -> usize {
    match runs.partition_point(|r| r.from <= offset) {
        0 => 0,
        i => runs
            .get(i - 1)
            .map_or(0, |r| r.to + (offset - r.from).min(r.len)),
    }
}

fn report(diagnostic: &Diagnostic, sources: &Sources) -> Report {
    let file = diagnostic.span().map(|s| s.file);
    let spans: Vec<(usize, usize)> = diagnostic
        .labels
        .iter()
        .filter(|l| Some(l.span.file) == file)
        .map(|l| (l.span.start as usize, l.span.end as usize))
        .collect();
    let mut map: Option<Vec<Kept>> = None;
    let source = file
        .and_then(|f| sources.get(f))
        .map(|f| match cut_long_lines(&f.text, &spans) {
            Some((cut, runs)) => {
                map = Some(runs.clone());
                Snippets(
                    NamedSource::new(f.name.clone(), Arc::from(cut)),
                    Some((Arc::clone(&f.text), runs)),
                )
            }
            None => Snippets(NamedSource::new(f.name.clone(), Arc::clone(&f.text)), None),
        });
    let at = |o: usize| map.as_deref().map_or(o, |m| cut_offset(m, o));
    let labels = diagnostic
        .labels
        .iter()
        .filter(|l| Some(l.span.file) == file)
        .map(|l| {
            let (start, end) = (at(l.span.start as usize), at(l.span.end as usize));
            let span = SourceSpan::new(start.into(), end.saturating_sub(start));
            let text = (!l.message.is_empty()).then(|| l.message.clone());
            if l.primary {
                LabeledSpan::new_primary_with_span(text, span)
            } else {
                LabeledSpan::new_with_span(text, span)
            }
        })
        .collect();
    Report {
        diagnostic: diagnostic.clone(),
        source,
        labels,
    }
}

/// Renders one diagnostic. `width` wraps human output (snapshots use 80); `colour` adds ANSI.
pub fn render(
    diagnostic: &Diagnostic,
    sources: &Sources,
    format: ErrorFormat,
    width: usize,
    colour: bool,
) -> String {
    let mut out = String::new();
    let written = match format {
        ErrorFormat::Human => {
            let theme = if colour {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            // The message and help are wrapped here, keeping `code spans` whole; miette only
            // indents the lines. Its margins: `  × ` / `  │ ` and `  help: ` / 8 spaces, within
            // `width - 2` columns.
            let mut wrapped = diagnostic.clone();
            wrapped.message = wrap(&diagnostic.message, width.saturating_sub(2 + 4));
            wrapped.help = diagnostic
                .help
                .as_deref()
                .map(|h| wrap(h, width.saturating_sub(2 + 8)));
            GraphicalReportHandler::new_themed(theme)
                .with_width(width)
                .with_wrap_lines(false)
                .with_links(false)
                .render_report(&mut out, &report(&wrapped, sources))
        }
        ErrorFormat::Plain => {
            NarratableReportHandler::new().render_report(&mut out, &report(diagnostic, sources))
        }
        ErrorFormat::Json => {
            JSONReportHandler::new().render_report(&mut out, &report(diagnostic, sources))
        }
    };
    if written.is_err() {
        out = format!("{}: {}", diagnostic.code, diagnostic.message);
    }
    out
}

/// Stands for a space inside a code span while the text is split into words.
const GLUE: char = '\u{1f}';

/// `text` with line breaks so no line passes `width` columns, breaking only at spaces and never
/// inside a `code span` unless the span alone is wider than a line. Existing line breaks stay.
fn wrap(text: &str, width: usize) -> String {
    let width = width.max(20);
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut line_width = 0;
        for word in words(paragraph, width) {
            let word_width = word.chars().count();
            if line_width > 0 && line_width + 1 + word_width > width {
                lines.push(std::mem::take(&mut line));
                line_width = 0;
            }
            if line_width > 0 {
                line.push(' ');
                line_width += 1;
            }
            line.push_str(&word);
            line_width += word_width;
        }
        lines.push(line);
    }
    lines.join("\n")
}

/// The words of a paragraph: split at spaces outside closed backtick spans; a span wider than
/// `width` is split at its own spaces.
fn words(paragraph: &str, width: usize) -> Vec<String> {
    let parts: Vec<&str> = paragraph.split('`').collect();
    let closed = 2 * (parts.len().saturating_sub(1) / 2);
    let mut glued = String::with_capacity(paragraph.len());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            glued.push('`');
        }
        if i % 2 == 1 && i < closed {
            glued.extend(part.chars().map(|c| if c == ' ' { GLUE } else { c }));
        } else {
            glued.push_str(part);
        }
    }
    glued
        .split(' ')
        .filter(|w| !w.is_empty())
        .flat_map(|w| {
            if w.chars().count() > width {
                w.split(GLUE)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            } else {
                vec![w.replace(GLUE, " ")]
            }
        })
        .collect()
}

/// Renders several diagnostics: human and plain separated by blank lines, json one a line.
pub fn render_all<'a>(
    diagnostics: impl IntoIterator<Item = &'a Diagnostic>,
    sources: &Sources,
    format: ErrorFormat,
    width: usize,
    colour: bool,
) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let one = render(d, sources, format, width, colour);
        out.push_str(one.trim_end());
        out.push('\n');
        if format != ErrorFormat::Json {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::diagnostics::Code;
    use crate::source::Span;

    #[test]
    fn long_lines_are_cut_around_their_labels() {
        // Past column 65,535 miette's formatting panicked; a long line was also reprinted whole.
        let mut sources = Sources::new();
        let mut text = "policy p {\n  x".to_string();
        text.push_str(&" ".repeat(70_000));
        let at = text.len();
        text.push_str("oops\n  y\n}\n");
        let file = sources.add("long.policy", text.as_str());
        let d = Diagnostic::new(Code::UnknownName, "unknown name `oops`")
            .at(Span::new(file, at, at + 4), "not declared");
        let out = render(&d, &sources, ErrorFormat::Human, 80, false);
        assert!(out.contains("oops"), "{out}");
        assert!(out.contains("not declared"), "{out}");
        assert!(out.contains('…'), "{out}");
        assert!(out.len() < 2_000, "{} bytes", out.len());
        assert!(
            out.contains("long.policy:2:70004]"),
            "the line and column are the real ones: {out}"
        );
        for format in [ErrorFormat::Plain, ErrorFormat::Json] {
            let out = render(&d, &sources, format, 80, false);
            assert!(out.len() < 2_000, "{format:?}: {} bytes", out.len());
        }
        // A label as long as the line: its two ends are shown.
        let whole = Diagnostic::new(Code::UnknownName, "a long label")
            .at(Span::new(file, 13, at + 4), "all of it");
        let out = render(&whole, &sources, ErrorFormat::Human, 80, false);
        assert!(out.len() < 2_000 && out.contains("all of it"), "{out}");
    }

    #[test]
    fn offsets_map_into_the_cut_text() {
        let runs = [
            Kept {
                from: 0,
                to: 0,
                len: 10,
            },
            Kept {
                from: 100,
                to: 13,
                len: 20,
            },
        ];
        assert_eq!(cut_offset(&runs, 5), 5);
        assert_eq!(cut_offset(&runs, 50), 10);
        assert_eq!(cut_offset(&runs, 105), 18);
        assert_eq!(cut_offset(&runs, 500), 33);
    }

    #[test]
    fn far_apart_labels_show_their_own_lines_not_every_line_between() {
        // miette's merging went wrong for labels deep in a file: lines before the first label
        // counted as lines of its snippet.
        let mut text: String = (0..300).map(|i| format!("// line {i}\n")).collect();
        let first = text.len() + "dimension a weight ".len();
        text.push_str("dimension a weight 60% {\n");
        for i in 0..50 {
            text.push_str(&format!("  // filler line {i}\n"));
        }
        let second = text.len() + "dimension b weight ".len();
        text.push_str("dimension b weight 30% {\n}\n");
        let mut sources = Sources::new();
        let file = sources.add("p.policy", text.as_str());
        let d = Diagnostic::new(Code::WeightsSum, "the weights add up to 90%")
            .at(Span::new(file, first, first + 3), "60%")
            .with(Span::new(file, second, second + 3), "30%");
        for format in [ErrorFormat::Human, ErrorFormat::Plain] {
            let out = render(&d, &sources, format, 80, false);
            assert!(out.contains("60%") && out.contains("30%"), "{out}");
            assert!(!out.contains("filler line 25"), "{out}");
            assert!(out.lines().count() < 30, "{out}");
        }
    }

    const HELP: &str = "list bands from the highest threshold down, like `strong when score >= 0.8` before `partial when score >= 0.5`";

    fn human(help: &str) -> String {
        let mut sources = Sources::new();
        let file = sources.add("p.policy", "grade x");
        let d = Diagnostic::new(Code::GradeOrder, "grade band thresholds out of order")
            .at(Span::new(file, 0, 5), "here")
            .help(help);
        render(&d, &sources, ErrorFormat::Human, 80, false)
    }

    /// The lines from `help:` on.
    fn help_lines(out: &str) -> Vec<&str> {
        out.lines()
            .skip_while(|l| !l.trim_start().starts_with("help:"))
            .collect()
    }

    #[test]
    fn wrapped_help_keeps_code_spans_on_one_line() {
        let out = human(HELP);
        let lines = help_lines(&out);
        assert_eq!(
            lines,
            [
                "  help: list bands from the highest threshold down, like",
                "        `strong when score >= 0.8` before `partial when score >= 0.5`",
            ],
            "{out}"
        );
        assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
    }

    #[test]
    fn wrapping_breaks_only_at_spaces() {
        let help = "put the data in a folder beside it, like `\"data/golden.jsonl\"` or `a-b/c-d`";
        assert_eq!(
            wrap(help, 40),
            "put the data in a folder beside it, like\n`\"data/golden.jsonl\"` or `a-b/c-d`"
        );
    }

    #[test]
    fn a_code_span_wider_than_a_line_breaks_at_its_spaces() {
        assert_eq!(
            wrap(
                "add `grade overall { good when overall >= 0.7  poor otherwise }`",
                30
            ),
            "add `grade overall { good when\noverall >= 0.7 poor otherwise\n}`"
        );
    }

    #[test]
    fn an_unclosed_backtick_and_line_breaks_are_kept() {
        assert_eq!(wrap("a `b c` d `e f", 20), "a `b c` d `e f");
        assert_eq!(wrap("one\ntwo", 20), "one\ntwo");
        assert_eq!(wrap("x `aaa bbb` y", 20), "x `aaa bbb` y");
        assert_eq!(
            wrap("xxxxxxxxxxxxxxx `aaa bbb` y", 20),
            "xxxxxxxxxxxxxxx\n`aaa bbb` y"
        );
    }
}
