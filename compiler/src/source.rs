//! Source files and spans: what the compiler was handed (a name and a text, never a path it
//! reads itself) and byte ranges into it that every syntax node and diagnostic carries.

use std::sync::Arc;

/// Index of a file in a [`Sources`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Self {
        Span {
            file,
            start: u32::try_from(start).unwrap_or(u32::MAX),
            end: u32::try_from(end).unwrap_or(u32::MAX),
        }
    }

    /// The smallest span covering both (they must be in the same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        self.end.saturating_sub(self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.end <= self.start
    }

    pub fn range(self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// One source text under the name diagnostics show for it (a relative path, or a pseudo-path
/// such as `<stdlib/std/text.policy>`).
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub name: String,
    pub text: Arc<str>,
    /// Byte offset of each line's start, for `line_col` by binary search.
    line_starts: Vec<u32>,
}

impl SourceFile {
    /// The zero-based line holding a byte offset (offsets past the end are on the last line).
    pub fn line_of(&self, offset: usize) -> usize {
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        self.line_starts
            .partition_point(|start| *start <= offset)
            .saturating_sub(1)
    }

    /// How many lines the text has (after a final newline, an empty last one).
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The byte range of a zero-based line, its newline included.
    pub fn line_range(&self, line: usize) -> std::ops::Range<usize> {
        let start = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |s| *s as usize);
        let end = self
            .line_starts
            .get(line + 1)
            .map_or(self.text.len(), |s| *s as usize);
        start..end
    }
}

/// Every file of one compilation, in the order they were added.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    files: Vec<SourceFile>,
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        let text: Arc<str> = text.into();
        let line_starts = std::iter::once(0)
            .chain(
                text.match_indices('\n')
                    .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX)),
            )
            .collect();
        self.files.push(SourceFile {
            name: name.into(),
            text,
            line_starts,
        });
        id
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    pub fn find(&self, name: &str) -> Option<FileId> {
        self.files
            .iter()
            .position(|f| f.name == name)
            .and_then(|i| u32::try_from(i).ok())
            .map(FileId)
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| (FileId(u32::try_from(i).unwrap_or(u32::MAX)), f))
    }

    /// The text a span covers, or "" when it is out of range.
    pub fn snippet(&self, span: Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text.get(span.range()))
            .unwrap_or("")
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, file: FileId, offset: u32) -> (usize, usize) {
        let Some(f) = self.get(file) else {
            return (0, 0);
        };
        let offset = (offset as usize).min(f.text.len());
        let line = f.line_of(offset);
        let start = f.line_range(line).start;
        let col = f
            .text
            .get(start..offset)
            .map_or(0, |rest| rest.chars().count())
            + 1;
        (line + 1, col)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// Line and column by counting from the start, as the index must agree.
    fn counted(text: &str, offset: usize) -> (usize, usize) {
        let upto = text.get(..offset).unwrap_or(text);
        let line = upto.matches('\n').count() + 1;
        let col = upto
            .rfind('\n')
            .map_or(upto.chars().count(), |nl| upto[nl + 1..].chars().count())
            + 1;
        (line, col)
    }

    #[test]
    fn line_col_agrees_with_counting_at_every_offset() {
        let text = "policy p {\n  // Zürich 🚀\n\n  dimension d weight 100% {}\n}";
        let mut sources = Sources::new();
        let id = sources.add("p.policy", text);
        for (offset, _) in text.char_indices().chain([(text.len(), ' ')]) {
            let at = u32::try_from(offset).unwrap();
            assert_eq!(
                sources.line_col(id, at),
                counted(text, offset),
                "offset {offset}"
            );
        }
        assert_eq!(sources.line_col(id, 10_000), counted(text, text.len()));
        assert_eq!(sources.line_col(FileId(9), 0), (0, 0));
    }
}
