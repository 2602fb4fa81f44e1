//! How every subcommand prints diagnostics: the `--error-format` and `--color` options.

use super::out;
use super::{Color, ErrorFormat};
use rubric_compiler::Checked;
use rubric_compiler::diagnostics::render_all;
use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t)]
    pub error_format: ErrorFormat,
    /// When to colour human output.
    #[arg(long, value_enum, default_value_t)]
    pub color: Color,
    /// Show at most this many diagnostics per run in human and plain output (the rest are
    /// counted); JSON output has them all.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_diagnostics: usize,
}

impl ReportArgs {
    /// Prints a check's diagnostics: JSON to stdout, the others to stderr.
    pub fn print(&self, checked: &Checked) {
        let stderr = std::io::stderr();
        let colour = match self.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => stderr.is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        };
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(100);
        let shown = if self.error_format == ErrorFormat::Json {
            checked.diagnostics.len()
        } else {
            self.max_diagnostics.min(checked.diagnostics.len())
        };
        let mut text = render_all(
            checked.diagnostics.iter().take(shown),
            &checked.sources,
            self.error_format.into(),
            width,
            colour,
        );
        let rest = checked.diagnostics.len() - shown;
        if rest > 0 {
            text.push_str(&format!(
                "... and {rest} more diagnostic{} not shown (`--max-diagnostics N` shows more)\n\n",
                if rest == 1 { "" } else { "s" }
            ));
        }
        if self.error_format == ErrorFormat::Json {
            out::print(&text);
        } else {
            let _ = stderr.lock().write_all(text.as_bytes());
        }
    }
}
