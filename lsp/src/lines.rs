//! Positions as LSP counts them (zero-based lines, UTF-16 columns) and byte offsets as the
//! compiler's spans count them, converted both ways over rust-analyzer's `line-index`.

use line_index::{LineCol, LineIndex, TextSize, WideEncoding, WideLineCol};
use lsp_types::{Position, Range};
use rubric_compiler::Span;

/// The line starts and wide characters of one text.
#[derive(Debug)]
pub struct Lines {
    index: LineIndex,
    text: std::sync::Arc<str>,
}

impl Lines {
    pub fn new(text: impl Into<std::sync::Arc<str>>) -> Lines {
        let text = text.into();
        Lines {
            index: LineIndex::new(&text),
            text,
        }
    }

    /// The LSP position of a byte offset; an offset past the end is the end, one inside a
    /// character is that character's start.
    pub fn position(&self, offset: u32) -> Position {
        let mut offset = offset.min(u32::from(self.index.len()));
        let line_col = loop {
            match self.index.try_line_col(TextSize::from(offset)) {
                Some(lc) => break lc,
                None if offset > 0 => offset -= 1,
                None => break LineCol { line: 0, col: 0 },
            }
        };
        let wide = self
            .index
            .to_wide(WideEncoding::Utf16, line_col)
            .unwrap_or(WideLineCol {
                line: line_col.line,
                col: line_col.col,
            });
        Position::new(wide.line, wide.col)
    }

    pub fn range(&self, span: Span) -> Range {
        Range::new(self.position(span.start), self.position(span.end))
    }

    /// The range of the whole text.
    pub fn all(&self) -> Range {
        Range::new(Position::new(0, 0), self.position(u32::MAX))
    }

    /// The byte offset of an LSP position; a column past the end of its line is the line's
    /// end, a line past the end of the text is the text's end.
    pub fn offset(&self, position: Position) -> u32 {
        let end = u32::from(self.index.len());
        let Some(line) = self.index.line(position.line) else {
            return end;
        };
        let line_text = self
            .text
            .get(usize::from(line.start())..usize::from(line.end()))
            .unwrap_or("");
        let content = line_text.trim_end_matches(['\n', '\r']).len();
        let utf8 = self
            .index
            .to_utf8(
                WideEncoding::Utf16,
                WideLineCol {
                    line: position.line,
                    col: position.character,
                },
            )
            .map_or(0, |lc| lc.col);
        let col = utf8.min(u32::try_from(content).unwrap_or(u32::MAX));
        (u32::from(line.start()) + col).min(end)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rubric_compiler::FileId;

    #[test]
    fn columns_count_utf16_units() {
        // `é` is 2 bytes and 1 UTF-16 unit; `𝔁` is 4 bytes and 2 units: `x` is at byte 11 of its
        // line, UTF-16 column 7.
        let lines = Lines::new("ab\n// é𝔁 x\ny");
        let x = "ab\n// é𝔁 ".len();
        assert_eq!(lines.position(x as u32), Position::new(1, 7));
        assert_eq!(lines.offset(Position::new(1, 7)), x as u32);
        assert_eq!(
            lines.range(Span::new(FileId(0), x, x + 1)),
            Range::new(Position::new(1, 7), Position::new(1, 8))
        );
    }

    #[test]
    fn out_of_range_positions_clamp() {
        let lines = Lines::new("ab\ncd");
        assert_eq!(lines.offset(Position::new(0, 99)), 2);
        assert_eq!(lines.offset(Position::new(9, 0)), 5);
        assert_eq!(lines.position(99), Position::new(1, 2));
        // Inside a multi-byte character: its start.
        let lines = Lines::new("é");
        assert_eq!(lines.position(1), Position::new(0, 0));
    }
}
