//! Files the subcommands write: one place that creates a file or writes one whole, and on
//! failure says `error: cannot write `PATH`: ...` and gives the usage exit code. Every file is
//! written atomically (`rubric_runtime::atomic`): a temporary file beside it, renamed into
//! place by [`commit`] only when the command succeeded, so a failed or killed run leaves the
//! previous output as it was. Outputs that alias an input or each other are refused first
//! ([`refuse_aliases`]).

use super::EXIT_USAGE;
use rubric_runtime::atomic::AtomicFile;
use std::path::Path;
use std::process::ExitCode;

/// Starts writing `path` (buffered); on failure prints the error and returns the exit code to
/// end with. Nothing is at `path` until [`commit`].
pub fn create(path: &Path) -> Result<AtomicFile, ExitCode> {
    AtomicFile::create(path).map_err(|e| cannot_write(path, &e))
}

/// Puts a finished file in place.
pub fn commit(file: AtomicFile) -> Result<(), ExitCode> {
    let path = file.path().to_path_buf();
    file.commit().map_err(|e| cannot_write(&path, &e))
}

/// Writes `contents` to `path` whole, atomically; on failure prints the error and returns the
/// exit code to end with.
pub fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ExitCode> {
    rubric_runtime::atomic::write(path, contents.as_ref()).map_err(|e| cannot_write(path, &e))
}

/// Reads a text file of at most `limit` bytes, stopping there: `/dev/zero` or a huge file is an
/// error saying so, never read whole.
pub fn read_bounded(path: &Path, limit: usize) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_string(&mut text)?;
    if text.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is more than {limit} bytes"),
        ));
    }
    Ok(text)
}

/// Prints that `path` cannot be written and returns the usage exit code.
pub fn cannot_write(path: &Path, e: &std::io::Error) -> ExitCode {
    // A write to an atomic file already names it.
    let message = e.to_string();
    if message.starts_with("cannot write `") {
        eprintln!("error: {message}");
    } else {
        eprintln!("error: cannot write `{}`: {message}", path.display());
    }
    ExitCode::from(EXIT_USAGE)
}

/// Refuses, before anything is opened, an output that is an input or another output (resolved
/// through `..` and symbolic links): `rubric label --pairs x --out x` would empty its input.
pub fn refuse_aliases(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<(), ExitCode> {
    rubric_runtime::atomic::refuse_aliases(inputs, outputs).map_err(|message| {
        eprintln!("error: {message}");
        ExitCode::from(EXIT_USAGE)
    })
}
