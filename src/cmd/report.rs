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
        let text = render_all(
            &checked.diagnostics,
            &checked.sources,
            self.error_format.into(),
            width,
            colour,
        );
        if self.error_format == ErrorFormat::Json {
            out::print(&text);
        } else {
            let _ = stderr.lock().write_all(text.as_bytes());
        }
    }
}
