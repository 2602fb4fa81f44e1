//! The policy document as Markdown (CommonMark with GitHub tables): the author's prose as
//! written, generated text escaped, link targets as `<a id>` anchors.

use super::{Block, ContentsEntry, Inline, PolicyDocument};
use std::fmt::Write as _;

/// The document as Markdown, ending in one newline.
pub fn render_markdown(doc: &PolicyDocument) -> String {
    let mut out = String::new();
    for block in &doc.blocks {
        block_markdown(&mut out, block);
        out.push('\n');
    }
    let mut out = out.trim_end().to_string();
    out.push('\n');
    out
}

fn block_markdown(out: &mut String, block: &Block) {
    match block {
        Block::Heading { level, text, id } => {
            let hashes = "#".repeat(usize::from(*level).clamp(1, 6));
            let anchor = id
                .as_ref()
                .map(|id| format!("<a id=\"{}\"></a>", attribute(id)))
                .unwrap_or_default();
            let _ = writeln!(out, "{hashes} {anchor}{}", inlines(text));
        }
        Block::Anchor(id) => {
            let _ = writeln!(out, "<a id=\"{}\"></a>", attribute(id));
        }
        Block::Prose(text) => {
            let _ = writeln!(out, "{}", text.trim_end());
        }
        Block::Paragraph(text) => {
            let _ = writeln!(out, "{}", inlines(text));
        }
        Block::Quote(text) => {
            let _ = writeln!(out, "> {}", inlines(text));
        }
        Block::List(items) => {
            for item in items {
                let _ = writeln!(out, "- {}", inlines(item));
            }
        }
        Block::Table { head, rows } => {
            let cells: Vec<String> = head.iter().map(|h| cell(&escape(h))).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            let rule: Vec<&str> = head.iter().map(|_| "---").collect();
            let _ = writeln!(out, "| {} |", rule.join(" | "));
            for row in rows {
                let cells: Vec<String> = row.iter().map(|c| cell(&inlines(c))).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
        }
        Block::Code(text) => {
            let fence = "`".repeat(longest_run(text, '`').max(2) + 1);
            let _ = writeln!(out, "{fence}text\n{}\n{fence}", text.trim_end());
        }
        Block::Contents(entries) => contents(out, entries, 0),
    }
}

fn contents(out: &mut String, entries: &[ContentsEntry], depth: usize) {
    for e in entries {
        let _ = writeln!(
            out,
            "{}- [{}](#{})",
            "  ".repeat(depth),
            escape(&e.text),
            e.id
        );
        contents(out, &e.children, depth + 1);
    }
}

fn inlines(items: &[Inline]) -> String {
    items.iter().map(inline).collect()
}

fn inline(item: &Inline) -> String {
    match item {
        Inline::Text(s) => escape(s),
        Inline::Strong(s) => format!("**{}**", escape(s)),
        Inline::Code(s) => code_span(s),
        Inline::Link(inner, id) => format!("[{}](#{id})", inline(inner)),
        Inline::Prose(s) => s.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// A code span that holds any text: fenced by more backticks than it contains in a row.
fn code_span(s: &str) -> String {
    let fence = "`".repeat(longest_run(s, '`') + 1);
    if s.starts_with('`') || s.ends_with('`') {
        format!("{fence} {s} {fence}")
    } else {
        format!("{fence}{s}{fence}")
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        run = if x == c { run + 1 } else { 0 };
        best = best.max(run);
    }
    best
}

/// Generated text, with the characters Markdown would read as markup escaped.
fn escape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        // An underscore inside a word never starts emphasis: `same_family` stays readable.
        let intraword = c == '_'
            && i > 0
            && chars.get(i - 1).is_some_and(|p| p.is_alphanumeric())
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '&') && !intraword {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A table cell: on one line, its pipes escaped (GitHub tables split on them, even in code).
fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

fn attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn generated_text_and_cells_are_escaped() {
        assert_eq!(escape("a*b_c [x] <y> _z"), "a\\*b_c \\[x\\] \\<y\\> \\_z");
        assert_eq!(code_span("len(a | b)"), "`len(a | b)`");
        assert_eq!(code_span("a`b"), "``a`b``");
        assert_eq!(cell(&code_span("len(a | b)")), "`len(a \\| b)`");
    }

    #[test]
    fn a_document_renders_headings_anchors_tables_and_code() {
        let doc = PolicyDocument {
            name: "p".into(),
            title: "P".into(),
            blocks: vec![
                Block::Heading {
                    level: 2,
                    text: vec![Inline::Text("Dimension ".into()), Inline::Code("d".into())],
                    id: Some("dimension-d".into()),
                },
                Block::Table {
                    head: vec!["when".into(), "score".into()],
                    rows: vec![vec![
                        vec![Inline::Code("a | b".into())],
                        vec![Inline::Link(
                            Box::new(Inline::Code("r".into())),
                            "rule-r".into(),
                        )],
                    ]],
                },
                Block::Code("x = ```".into()),
            ],
        };
        assert_eq!(
            render_markdown(&doc),
            "## <a id=\"dimension-d\"></a>Dimension `d`\n\n\
             | when | score |\n| --- | --- |\n| `a \\| b` | [`r`](#rule-r) |\n\n\
             ````text\nx = ```\n````\n"
        );
    }
}
