//! The policy document for reviewers, generated from a compiled policy: the `///` prose in the
//! author's order and, beside it, what the rubric itself says (weights, scoring logic, grade
//! bands, rules with their reasons, examples with today's labels, the pipeline), as Markdown and
//! as self-contained HTML.
//!
//! It lives in the runtime rather than the pure compiler because it labels the examples with the
//! engine (the document shows what they get today) and because its Markdown renderer
//! (`pulldown-cmark`) has no place in the compiler the language server links.

mod compose;
mod html;
mod markdown;

pub use compose::policy_document;
pub use html::render_html;
pub use markdown::render_markdown;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A policy document: a title and blocks, rendered to Markdown or HTML alike.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    /// The policy's name: the output files are `<name>.md` and `<name>.html`.
    pub name: String,
    /// Plain text.
    pub title: String,
    pub blocks: Vec<Block>,
}

/// One block of the document.
#[derive(Clone, Debug, PartialEq)]
pub enum Block {
    /// A heading written by the generator; `id` is its link target.
    Heading {
        level: u8,
        text: Vec<Inline>,
        id: Option<String>,
    },
    /// A link target for a section whose heading is in the author's prose.
    Anchor(String),
    /// The author's `///` prose: CommonMark.
    Prose(String),
    Paragraph(Vec<Inline>),
    /// A paragraph set apart: a rule's reason.
    Quote(Vec<Inline>),
    List(Vec<Vec<Inline>>),
    Table {
        head: Vec<String>,
        rows: Vec<Vec<Vec<Inline>>>,
    },
    /// Policy-language text.
    Code(String),
    Contents(Vec<ContentsEntry>),
}

/// A line of the table of contents.
#[derive(Clone, Debug, PartialEq)]
pub struct ContentsEntry {
    pub text: String,
    pub id: String,
    pub children: Vec<ContentsEntry>,
}

/// Inline content of generated blocks.
#[derive(Clone, Debug, PartialEq)]
pub enum Inline {
    Text(String),
    Strong(String),
    /// Policy-language text, on one line.
    Code(String),
    /// A link to a target in the same document.
    Link(Box<Inline>, String),
    /// The author's prose inside a table cell: CommonMark, joined into one line.
    Prose(String),
}

/// The document could not be written.
#[derive(Debug)]
pub struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write `{}`: {}", self.path.display(), self.source)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Writes `<dir>/<name>.md` and `<dir>/<name>.html` (creating `dir`); returns their paths.
pub fn write_document(doc: &PolicyDocument, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    std::fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (extension, text) in [("md", render_markdown(doc)), ("html", render_html(doc))] {
        let path = dir.join(format!("{}.{extension}", doc.name));
        crate::atomic::write(&path, text.as_bytes()).map_err(|source| WriteError {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}
