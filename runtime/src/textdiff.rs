//! Unified diffs of text for reviewers (`rubric fmt --check`, `rubric snapshot --check`): Myers'
//! line diff, bounded in time so that a file whose every line changed (a one-line policy of
//! 100,000 fields that formatting spreads over 100,000 lines) gives a coarser diff at once
//! instead of a minimal one after minutes.

use similar::TextDiff;
use std::time::Duration;

/// How long the diff may search for the smallest edit before it settles for a larger, still
/// exact, one.
const SEARCH_LIMIT: Duration = Duration::from_millis(500);

/// `old` → `new` as a unified diff with three lines of context, headed `--- from` / `+++ to`,
/// ending with a newline.
pub fn unified(old: &str, new: &str, from: &str, to: &str) -> String {
    let diff = TextDiff::configure()
        .timeout(SEARCH_LIMIT)
        .diff_lines(old, new);
    let mut text = diff
        .unified_diff()
        .context_radius(3)
        .header(from, to)
        .missing_newline_hint(true)
        .to_string();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_both_sides_and_shows_the_changed_line() {
        let text = unified("a\nb\nc\n", "a\nB\nc\n", "x.policy", "x.policy (formatted)");
        assert_eq!(
            text,
            "--- x.policy\n+++ x.policy (formatted)\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"
        );
    }

    #[test]
    fn a_file_whose_every_line_changed_is_diffed_quickly_and_exactly() {
        let old: String = (0..60_000).map(|i| format!("line {i}\n")).collect();
        let new: String = (0..60_000).map(|i| format!("LINE {}\n", i * 7)).collect();
        let text = unified(&old, &new, "a", "b");
        let removed = text
            .lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"));
        let added = text
            .lines()
            .filter(|l| l.starts_with('+') && !l.starts_with("+++"));
        assert_eq!(removed.count(), 60_000);
        assert_eq!(added.count(), 60_000);
    }
}
