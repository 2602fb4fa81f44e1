//! Renders diagnostics with miette: `human` (graphical, underlined source), `plain` (narrated,
//! for screen readers and logs) and `json` (one object a line, for tools).

use super::{Diagnostic, Severity};
use crate::source::Sources;
use miette::{
    GraphicalReportHandler, GraphicalTheme, JSONReportHandler, LabeledSpan, NamedSource,
    NarratableReportHandler, SourceSpan,
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
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
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
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
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
        .map(|f| NamedSource::new(f.name.clone(), Arc::clone(&f.text)));
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
    let report = report(diagnostic, sources);
    let mut out = String::new();
    let written = match format {
        ErrorFormat::Human => {
            let theme = if colour {
                GraphicalTheme::unicode()
            } else {
                GraphicalTheme::unicode_nocolor()
            };
            GraphicalReportHandler::new_themed(theme)
                .with_width(width)
                .with_links(false)
                .render_report(&mut out, &report)
        }
        ErrorFormat::Plain => NarratableReportHandler::new().render_report(&mut out, &report),
        ErrorFormat::Json => JSONReportHandler::new().render_report(&mut out, &report),
    };
    if written.is_err() {
        out = format!("{}: {}", diagnostic.code, diagnostic.message);
    }
    out
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
