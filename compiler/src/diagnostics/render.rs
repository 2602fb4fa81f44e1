//! Renders diagnostics with miette: `human` (graphical, underlined source), `plain` (narrated,
//! for screen readers and logs) and `json` (one object a line, for tools).

use super::{Diagnostic, Severity};
use crate::source::{SourceFile, Sources};
use miette::{
    GraphicalReportHandler, GraphicalTheme, JSONReportHandler, LabeledSpan, MietteError,
    MietteSpanContents, NamedSource, NarratableReportHandler, SourceCode, SourceSpan, SpanContents,
};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ErrorFormat {
    /// Underlined source, unicode; colour only when asked for.
    #[default]
    Human,
    Plain,
    Json,
}

/// One diagnostic with its source, in the shape miette renders.
struct Report<'a> {
    diagnostic: Diagnostic,
    source: Option<Shown<'a>>,
    labels: Vec<LabeledSpan>,
}

/// What miette reads of a diagnostic's file.
enum Shown<'a> {
    /// For the graphical and narrated output: an excerpt, the lines around the labels with
    /// long lines cut (`excerpt`). Rendering a diagnostic costs the size of its excerpt, not
    /// of the file: 17,000 diagnostics on one file render in linear time.
    Excerpt(Excerpt<'a>),
    /// For JSON, which prints only the file's name and the labels' byte offsets.
    Name(&'a str),
}

/// The lines of a file around a diagnostic's labels, as miette reads them, with each snippet's
/// line, column and line count taken from the whole file. (miette 7.6's `str` source also
/// reported as `line_count` the lines from the start of the file to the end of the snippet, and
/// its handlers merged two labels' snippets when `line + line_count` reached the next one's
/// line: every diagnostic with labels in far-apart places, such as the weights of nine
/// dimensions, echoed every line between its first and last label.)
struct Excerpt<'a> {
    file: &'a SourceFile,
    text: NamedSource<String>,
    /// Where each run of `text` was in the file.
    runs: Vec<Kept>,
}

impl SourceCode for Shown<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'b> + 'b>, MietteError> {
        let excerpt = match self {
            Shown::Name(name) => {
                return Ok(Box::new(MietteSpanContents::new_named(
                    (*name).to_string(),
                    b"",
                    *span,
                    0,
                    0,
                    0,
                )));
            }
            Shown::Excerpt(excerpt) => excerpt,
        };
        let inner = excerpt
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        let data = inner.data();
        let lines = 1 + data.iter().filter(|b| **b == b'\n').count()
            - usize::from(data.last() == Some(&b'\n'));
        let at = uncut_offset(&excerpt.runs, inner.span().offset());
        let line = excerpt.file.line_of(at);
        let column = excerpt
            .file
            .text
            .get(excerpt.file.line_range(line).start..at)
            .map_or(0, |t| t.chars().count());
        Ok(Box::new(MietteSpanContents::new_named(
            excerpt.file.name.clone(),
            data,
            *inner.span(),
            line,
            column,
            lines,
        )))
    }
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
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

/// Lines of context kept around each label's lines (miette shows one).
const CONTEXT: usize = 2;

/// The lines around `spans` (with `CONTEXT` lines on each side), long lines cut to windows
/// around the spans (`…` where a line's text was left out), and the runs of the file it kept.
fn excerpt_of(file: &SourceFile, spans: &[(usize, usize)]) -> (String, Vec<Kept>) {
    let last = file.line_count().saturating_sub(1);
    let mut lines: Vec<(usize, usize)> = spans
        .iter()
        .map(|&(s, e)| {
            (
                file.line_of(s).saturating_sub(CONTEXT),
                (file.line_of(e) + CONTEXT).min(last),
            )
        })
        .collect();
    lines.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::new();
    for (first, end) in lines {
        match merged.last_mut() {
            Some(last) if first <= last.1 + 1 => last.1 = last.1.max(end),
            _ => merged.push((first, end)),
        }
    }
    let text = &*file.text;
    let mut out = String::new();
    let mut runs = Vec::new();
    for line in merged.into_iter().flat_map(|(first, end)| first..=end) {
        let range = file.line_range(line);
        let (start, end) = (range.start, range.end);
        if end - start <= LONG_LINE {
            runs.push(Kept {
                from: start,
                to: out.len(),
                len: end - start,
            });
            out.push_str(text.get(start..end).unwrap_or(""));
            continue;
        }
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
        let ends_line = text.get(..end).is_some_and(|t| t.ends_with('\n'));
        windows.push((end - usize::from(ends_line), end));
        windows.sort_unstable();
        let mut kept: Vec<(usize, usize)> = Vec::new();
        for (s, e) in windows {
            let s = floor_boundary(text, s.clamp(start, end));
            let e = floor_boundary(text, e.clamp(start, end));
            match kept.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => kept.push((s, e)),
            }
        }
        let mut previous_end = start;
        for (s, e) in kept {
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
    }
    (out, runs)
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

fn report<'a>(diagnostic: &Diagnostic, sources: &'a Sources, excerpt: bool) -> Report<'a> {
    let file = diagnostic.span().map(|s| s.file);
    let in_file = || {
        diagnostic
            .labels
            .iter()
            .filter(move |l| Some(l.span.file) == file)
    };
    let Some(source) = file.and_then(|f| sources.get(f)) else {
        return Report {
            diagnostic: diagnostic.clone(),
            source: None,
            labels: Vec::new(),
        };
    };
    let spans: Vec<(usize, usize)> = in_file()
        .map(|l| (l.span.start as usize, l.span.end as usize))
        .collect();
    let shown = if excerpt {
        let (text, runs) = excerpt_of(source, &spans);
        Shown::Excerpt(Excerpt {
            file: source,
            text: NamedSource::new(source.name.clone(), text),
            runs,
        })
    } else {
        Shown::Name(&source.name)
    };
    // Label offsets in the excerpt's text (JSON keeps the file's own).
    let at = |o: usize| match &shown {
        Shown::Excerpt(e) => cut_offset(&e.runs, o),
        Shown::Name(_) => o,
    };
    let labels = in_file()
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
        source: Some(shown),
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
                .render_report(&mut out, &report(&wrapped, sources, true))
        }
        ErrorFormat::Plain => NarratableReportHandler::new()
            .render_report(&mut out, &report(diagnostic, sources, true)),
        ErrorFormat::Json => {
            JSONReportHandler::new().render_report(&mut out, &report(diagnostic, sources, false))
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
