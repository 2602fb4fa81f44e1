//! Writing files so that nothing is lost and nothing is torn: a reader finds either the old
//! content or the complete new one. Bytes go to a temporary file in the same folder, are flushed
//! to disk, and are renamed into place only when the writer commits; a writer dropped without
//! committing (an error, a panic) removes its temporary file and leaves the old output alone.
//! Also the check that refuses outputs that alias an input or each other, before anything is
//! opened.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically.
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)?;
    file.commit()
}

/// A file being written: renamed over `path` by [`AtomicFile::commit`], removed if dropped.
/// An existing output that is not a regular file (`/dev/null`, `/dev/stdout`, a FIFO) is
/// written in place: it cannot be replaced, and must not be.
pub struct AtomicFile {
    path: PathBuf,
    /// The temporary file; `None` when writing in place.
    temp: Option<PathBuf>,
    out: Option<BufWriter<fs::File>>,
}

impl AtomicFile {
    /// Starts writing `path` (its folder must exist).
    pub fn create(path: &Path) -> io::Result<AtomicFile> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(io::Error::new(
                    io::ErrorKind::IsADirectory,
                    "it is a directory",
                ));
            }
            Ok(m) if !m.is_file() => {
                let file = fs::OpenOptions::new().write(true).open(path)?;
                return Ok(AtomicFile {
                    path: path.to_path_buf(),
                    temp: None,
                    out: Some(BufWriter::with_capacity(1 << 16, file)),
                });
            }
            _ => {}
        }
        // A symbolic link stays a link: its target is what gets replaced.
        let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let path = target.as_path();
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        // Unique among this process's writers and other processes'.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            temp: Some(temp),
            out: Some(BufWriter::with_capacity(1 << 16, file)),
        })
    }

    /// The path the file will have.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(mut self) -> io::Result<()> {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let file = out.into_inner().map_err(|e| e.into_error())?;
        let Some(temp) = self.temp.take() else {
            return Ok(());
        };
        let synced = file.sync_all();
        drop(file);
        if let Err(e) = synced.and_then(|()| fs::rename(&temp, &self.path)) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        Ok(())
    }
}

/// Errors of writing name the file (`/dev/full`: "`/dev/full`: No space left on device"), so a
/// command that reads and writes at once can say which failed.
impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let path = &self.path;
        match &mut self.out {
            Some(out) => out.write(buf).map_err(|e| named(path, e)),
            None => Err(io::Error::other("the file was already committed")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        let path = &self.path;
        match &mut self.out {
            Some(out) => out.flush().map_err(|e| named(path, e)),
            None => Ok(()),
        }
    }
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("cannot write `{}`: {e}", path.display()))
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if let (Some(_), Some(temp)) = (self.out.take(), &self.temp) {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Where a path leads once symbolic links and `..` are resolved (for a file that does not exist
/// yet: its folder resolved, then its name).
fn resolved(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match (fs::canonicalize(dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// Refuses outputs that would overwrite an input or each other, before anything is opened.
/// Each entry is (the flag or role that names it, the path); `-` (standard input or output) is
/// never a file. The error names both.
pub fn refuse_aliases(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<(), String> {
    // `-` and devices, FIFOs and terminals are streams: reading one does not lose it by writing
    // another (`--pairs /dev/stdin --out /dev/stdout` both resolve to the terminal).
    let real = |p: &Path| p.as_os_str() != "-" && fs::metadata(p).map_or(true, |m| m.is_file());
    let inputs: Vec<(&str, &Path, PathBuf)> = inputs
        .iter()
        .filter(|(_, p)| real(p))
        .map(|(f, p)| (*f, *p, resolved(p)))
        .collect();
    let mut seen: Vec<(&str, &Path, PathBuf)> = Vec::new();
    for (flag, path) in outputs.iter().filter(|(_, p)| real(p)) {
        let r = resolved(path);
        if let Some((other, other_path, _)) = inputs.iter().find(|(_, _, x)| *x == r) {
            return Err(format!(
                "{flag} `{}` is the input {other} `{}`: writing it would destroy the input; \
                 write somewhere else",
                path.display(),
                other_path.display()
            ));
        }
        if let Some((other, other_path, _)) = seen.iter().find(|(_, _, x)| *x == r) {
            return Err(format!(
                "{flag} `{}` and {other} `{}` are the same file; give each output its own path",
                path.display(),
                other_path.display()
            ));
        }
        seen.push((flag, path, r));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_file_replaces_the_old_one_and_a_dropped_one_leaves_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old\n").unwrap();
        {
            let mut f = AtomicFile::create(&path).unwrap();
            f.write_all(b"half of the new").unwrap();
            // Dropped: a failed run.
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\n");
        let mut f = AtomicFile::create(&path).unwrap();
        f.write_all(b"new\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "old\n",
            "not before commit"
        );
        f.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
    }

    #[test]
    fn devices_are_written_in_place_and_links_keep_pointing_at_their_file() {
        let mut null = AtomicFile::create(Path::new("/dev/null")).unwrap();
        null.write_all(b"nothing").unwrap();
        null.commit().unwrap();
        assert!(
            !std::fs::metadata("/dev/null").unwrap().is_file(),
            "/dev/null is still a device"
        );

        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.txt");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let mut f = AtomicFile::create(&link).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        assert!(AtomicFile::create(dir.path()).is_err(), "a directory");
    }

    #[test]
    fn outputs_that_alias_an_input_or_each_other_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("pairs.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        let same = dir.path().join("sub/../pairs.jsonl");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = refuse_aliases(&[("--pairs", &input)], &[("--out", &same)]).unwrap_err();
        assert!(
            e.contains("--out") && e.contains("the input --pairs"),
            "{e}"
        );
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&input, &link).unwrap();
        assert!(refuse_aliases(&[("--pairs", &input)], &[("--out", &link)]).is_err());
        let a = dir.path().join("a.jsonl");
        let e = refuse_aliases(&[], &[("--out", &a), ("--quarantine", &a)]).unwrap_err();
        assert!(e.contains("are the same file"), "{e}");
        let dash = Path::new("-");
        assert!(refuse_aliases(&[("--pairs", dash)], &[("--out", dash)]).is_ok());
        assert!(refuse_aliases(&[("--pairs", &input)], &[("--out", &a)]).is_ok());
        let stdin = Path::new("/dev/stdin");
        let stdout = Path::new("/dev/stdout");
        assert!(refuse_aliases(&[("--pairs", stdin)], &[("--out", stdout)]).is_ok());
    }
}
