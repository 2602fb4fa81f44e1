//! The policy document as one self-contained HTML page: inline CSS, no scripts, nothing loaded
//! from anywhere (a Content-Security-Policy says so to the browser too). The author's prose is
//! CommonMark rendered by `pulldown-cmark`, with raw HTML shown as text, images as their alt text
//! and links kept only to safe destinations; everything generated is escaped.

use super::{Block, ContentsEntry, Inline, PolicyDocument};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use pulldown_cmark_escape::escape_html;
use std::fmt::Write as _;

const STYLE: &str = r#"
:root { color-scheme: light; --ink: #1d232b; --muted: #5b6673; --line: #d8dee6; --code: #f3f5f8; --accent: #1f5fa8; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; }
h1 { font-size: 2rem; line-height: 1.2; margin: 0 0 .5rem; }
h2 { font-size: 1.45rem; margin: 2.5rem 0 .75rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.15rem; margin: 1.75rem 0 .5rem; }
h4, h5, h6 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
code { background: var(--code); padding: .08em .3em; border-radius: 3px; }
pre { background: var(--code); padding: .75rem 1rem; border-radius: 4px; overflow-x: auto; line-height: 1.4; }
pre code { background: none; padding: 0; }
blockquote { margin: 1rem 0; padding: .5rem 1rem; border-left: 4px solid var(--accent); background: #f7f9fc; }
blockquote p { margin: 0; }
.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; width: 100%; font-size: .94em; }
th, td { border: 1px solid var(--line); padding: .35rem .6rem; text-align: left; vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
nav.contents { background: #f7f9fc; border: 1px solid var(--line); border-radius: 4px; padding: .5rem 1rem; }
nav.contents ul { margin: .25rem 0; padding-left: 1.25rem; }
.anchor { display: block; position: relative; top: -.5rem; }
@media print { main { max-width: none; padding: 0; } a { color: inherit; } h2 { break-after: avoid; } table, pre { break-inside: avoid; } }
"#;

/// The document as an HTML page.
pub fn render_html(doc: &PolicyDocument) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n",
    );
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"generator\" content=\"rubric doc\">\n");
    let _ = writeln!(out, "<title>{}</title>", escaped(&doc.title));
    let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
    for block in &doc.blocks {
        block_html(&mut out, block);
    }
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn block_html(out: &mut String, block: &Block) {
    match block {
        Block::Heading { level, text, id } => {
            let level = level.clamp(&1, &6);
            let id = id
                .as_ref()
                .map(|id| format!(" id=\"{}\"", escaped(id)))
                .unwrap_or_default();
            let _ = writeln!(out, "<h{level}{id}>{}</h{level}>", inlines(text));
        }
        Block::Anchor(id) => {
            let _ = writeln!(out, "<a class=\"anchor\" id=\"{}\"></a>", escaped(id));
        }
        Block::Prose(text) => out.push_str(&prose(text)),
        Block::Paragraph(text) => {
            let _ = writeln!(out, "<p>{}</p>", inlines(text));
        }
        Block::Quote(text) => {
            let _ = writeln!(out, "<blockquote><p>{}</p></blockquote>", inlines(text));
        }
        Block::List(items) => {
            out.push_str("<ul>\n");
            for item in items {
                let _ = writeln!(out, "<li>{}</li>", inlines(item));
            }
            out.push_str("</ul>\n");
        }
        Block::Table { head, rows } => {
            out.push_str("<div class=\"table\"><table>\n<thead><tr>");
            for h in head {
                let _ = write!(out, "<th>{}</th>", escaped(h));
            }
            out.push_str("</tr></thead>\n<tbody>\n");
            for row in rows {
                out.push_str("<tr>");
                for c in row {
                    let _ = write!(out, "<td>{}</td>", inlines(c));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</tbody>\n</table></div>\n");
        }
        Block::Code(text) => {
            let _ = writeln!(out, "<pre><code>{}</code></pre>", escaped(text.trim_end()));
        }
        Block::Contents(entries) => {
            out.push_str("<nav class=\"contents\">\n");
            contents(out, entries);
            out.push_str("</nav>\n");
        }
    }
}

fn contents(out: &mut String, entries: &[ContentsEntry]) {
    if entries.is_empty() {
        return;
    }
    out.push_str("<ul>\n");
    for e in entries {
        let _ = write!(
            out,
            "<li><a href=\"#{}\">{}</a>",
            escaped(&e.id),
            escaped(&e.text)
        );
        if !e.children.is_empty() {
            out.push('\n');
            contents(out, &e.children);
        }
        out.push_str("</li>\n");
    }
    out.push_str("</ul>\n");
}

fn inlines(items: &[Inline]) -> String {
    items.iter().map(inline).collect()
}

fn inline(item: &Inline) -> String {
    match item {
        Inline::Text(s) => escaped(s),
        Inline::Strong(s) => format!("<strong>{}</strong>", escaped(s)),
        Inline::Code(s) => format!("<code>{}</code>", escaped(s)),
        Inline::Link(inner, id) => format!("<a href=\"#{}\">{}</a>", escaped(id), inline(inner)),
        Inline::Prose(s) => {
            let html = prose(&s.split_whitespace().collect::<Vec<_>>().join(" "));
            let html = html.trim_end();
            match html
                .strip_prefix("<p>")
                .and_then(|h| h.strip_suffix("</p>"))
            {
                Some(inner) if !inner.contains("<p>") => inner.to_string(),
                _ => html.to_string(),
            }
        }
    }
}

fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let _ = escape_html(&mut out, s);
    out
}

/// The author's CommonMark as HTML: raw HTML is shown as text, images become their alt text,
/// links to anything but the web, mail or a place in this document become plain text.
fn prose(text: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    let mut kept_links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Some(Event::Text(raw)),
        Event::Start(Tag::Image { .. }) | Event::End(TagEnd::Image) => None,
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let safe = safe_destination(&dest_url);
            kept_links.push(safe);
            safe.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => {
            let kept = kept_links.pop().unwrap_or(false);
            kept.then_some(Event::End(TagEnd::Link))
        }
        other => Some(other),
    });
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events);
    out
}

/// Links a reviewer can follow safely: the web, mail, a place in this document, or a relative
/// path (no scheme at all).
fn safe_destination(url: &CowStr<'_>) -> bool {
    let url = url.trim();
    let scheme_end = url.find(':');
    let path_start = url.find(['/', '?', '#']);
    match (scheme_end, path_start) {
        (Some(colon), Some(slash)) if slash < colon => true,
        (Some(colon), _) => {
            let scheme = url.get(..colon).unwrap_or_default().to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto")
        }
        (None, _) => true,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_prose_is_shown_as_text() {
        let html =
            prose("Say <script>alert(1)</script> and <b>bold</b>.\n\n<div onclick=x>block</div>\n");
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("<div"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
    }

    #[test]
    fn unsafe_links_and_images_lose_their_targets() {
        let html = prose(
            "[click](javascript:alert(1)) [ok](https://example.org/a) [here](#x) ![alt](http://t/i.png)",
        );
        assert!(!html.contains("javascript:"), "{html}");
        assert!(
            html.contains("<a href=\"https://example.org/a\">ok</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"#x\">here</a>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(html.contains("alt"), "{html}");
        assert!(html.contains("click"), "{html}");
    }

    #[test]
    fn generated_text_is_escaped() {
        let doc = PolicyDocument {
            name: "p".into(),
            title: "<Title & co>".into(),
            blocks: vec![Block::Paragraph(vec![
                Inline::Text("a < b & \"c\"".into()),
                Inline::Code("x <script>".into()),
            ])],
        };
        let html = render_html(&doc);
        assert!(
            html.contains("<title>&lt;Title &amp; co&gt;</title>"),
            "{html}"
        );
        assert!(
            html.contains("<p>a &lt; b &amp; &quot;c&quot;<code>x &lt;script&gt;</code></p>"),
            "{html}"
        );
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn prose_in_a_cell_has_no_paragraph() {
        assert_eq!(
            inline(&Inline::Prose("one\ntwo *three*".into())),
            "one two <em>three</em>"
        );
    }
}
