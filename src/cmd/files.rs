//! Files the subcommands write: one place that creates a file (buffered) or writes one whole, and
//! on failure says `error: cannot write `PATH`: ...` and gives the usage exit code.

use super::EXIT_USAGE;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::process::ExitCode;

/// Creates (or truncates) `path` behind a 1 MiB buffer; on failure prints the error and returns
/// the exit code to end with.
pub fn create(path: &Path) -> Result<BufWriter<File>, ExitCode> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(1 << 20, f))
        .map_err(|e| cannot_write(path, &e))
}

/// Writes `contents` to `path` whole; on failure prints the error and returns the exit code to
/// end with.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ExitCode> {
    std::fs::write(path, contents).map_err(|e| cannot_write(path, &e))
}

/// Prints that `path` cannot be written and returns the usage exit code.
pub fn cannot_write(path: &Path, e: &std::io::Error) -> ExitCode {
    eprintln!("error: cannot write `{}`: {e}", path.display());
    ExitCode::from(EXIT_USAGE)
}
