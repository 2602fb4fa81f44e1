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
struct Snippets(NamedSource<Arc<str>>);

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
        let mut contents =
            MietteSpanContents::new(data, *inner.span(), inner.line(), inner.column(), lines);
        if let Some(name) = inner.name() {
            contents = MietteSpanContents::new_named(
                name.to_string(),
                data,
                *inner.span(),
                inner.line(),
                inner.column(),
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

fn report(diagnostic: &Diagnostic, sources: &Sources) -> Report {
    let file = diagnostic.span().map(|s| s.file);
    let source = file
        .and_then(|f| sources.get(f))
        .map(|f| Snippets(NamedSource::new(f.name.clone(), Arc::clone(&f.text))));
    let labels = diagnostic
        .labels
        .iter()
        .filter(|l| Some(l.span.file) == file)
        .map(|l| {
            let span = SourceSpan::new((l.span.start as usize).into(), l.span.len());
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
