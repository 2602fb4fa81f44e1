//! Diagnostics: what the compiler reports (a registered code, a message, labelled spans, a help)
//! and how they accumulate, so one run shows every problem of a file, not only the first.

mod registry;
mod render;

pub use registry::{Code, Severity};
pub use render::{ErrorFormat, render, render_all};

use crate::source::Span;

/// A labelled span: the primary one says what is wrong there, secondary ones give context.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    pub primary: bool,
}

/// One problem found in a policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    pub labels: Vec<Label>,
    pub help: Option<String>,
}

/// Words (runs without a space) longer than this are cut in a diagnostic's text.
const LONG_WORD: usize = 120;

/// `text` with every word longer than [`LONG_WORD`] characters cut to its first 60 and last 20
/// around a `…`: a name of 30,000 letters is not printed whole in a message, a label and a help.
pub fn shorten_long_words(text: String) -> String {
    if text.len() <= LONG_WORD || !text.split(' ').any(|w| w.chars().count() > LONG_WORD) {
        return text;
    }
    text.split(' ')
        .map(|w| {
            let n = w.chars().count();
            if n > LONG_WORD {
                let head: String = w.chars().take(60).collect();
                let tail: String = w.chars().skip(n - 20).collect();
                format!("{head}…{tail}")
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: shorten_long_words(message.into()),
            labels: Vec::new(),
            help: None,
        }
    }

    /// The primary label: where the problem is.
    pub fn at(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: shorten_long_words(message.into()),
            primary: true,
        });
        self
    }

    /// A secondary label: context for the problem (ignored when in another file).
    pub fn with(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: shorten_long_words(message.into()),
            primary: false,
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shorten_long_words(help.into()));
        self
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// The span of the primary label, if any.
    pub fn span(&self) -> Option<Span> {
        self.labels
            .iter()
            .find(|l| l.primary)
            .or(self.labels.first())
            .map(|l| l.span)
    }
}

/// Diagnostics accumulated by the passes, in the order found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    pub fn last_mut(&mut self) -> Option<&mut Diagnostic> {
        self.items.last_mut()
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn error_count(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.items.len() - self.error_count()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.items.iter()
    }

    /// Sorted by file and position, then code; duplicates (same code at the same span) dropped.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items
            .sort_by(|a, b| (a.span(), a.code, &a.message).cmp(&(b.span(), b.code, &b.message)));
        self.items
            .dedup_by(|a, b| a.code == b.code && a.span() == b.span() && a.message == b.message);
        self.items
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// "Did you mean": the candidate closest to `name`, when it is close enough to be a likely typo.
/// The one fuzzy-match helper every diagnostic uses.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    // A name this long is no typo of another; and the edit distance costs the product of the
    // two lengths in time (two names of 30,000 letters: 2.6 s in a release build).
    const LONGEST: usize = 64;
    if name.chars().count() > LONGEST {
        return None;
    }
    let lower = name.to_lowercase();
    let candidates: Vec<&'a str> = candidates
        .into_iter()
        .filter(|c| c.chars().count() <= LONGEST)
        .collect();
    if lower.len() >= 4 {
        let mut affix: Vec<&'a str> = candidates
            .iter()
            .copied()
            .filter(|c| {
                let c = c.to_lowercase();
                c != lower
                    && (c.ends_with(&format!("_{lower}")) || c.starts_with(&format!("{lower}_")))
            })
            .collect();
        affix.sort_unstable();
        if let [only] = affix.as_slice() {
            return Some(only);
        }
    }
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(&lower, &c.to_lowercase()), c))
        .filter(|(d, c)| {
            let longest = name.chars().count().max(c.chars().count());
            *d <= 2.max(longest / 3) && *d < longest
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(b.1)))
        .map(|(_, c)| c)
}

/// `help` text for an unknown name: the suggestion when there is one, else what is available.
pub fn suggestion_help<'a>(
    name: &str,
    what: &str,
    candidates: impl IntoIterator<Item = &'a str> + Clone,
) -> Option<String> {
    if let Some(best) = did_you_mean(name, candidates.clone()) {
        return Some(format!("did you mean `{best}`?"));
    }
    let mut all: Vec<&str> = candidates.into_iter().collect();
    all.sort_unstable();
    all.dedup();
    match all.len() {
        0 => None,
        1..=8 => Some(format!(
            "the {what} here are {}",
            all.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        _ => None,
    }
}
