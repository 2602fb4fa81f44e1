//! A policy project on disk: its directory (the nearest ancestor holding a `rubric.toml`, or the
//! policy's own directory) and the confined loading of the modules and policies a file names.
//! Nothing outside the project directory is read, symlinks included.

use rubric_compiler::{Checked, LoadError, LoadedSource, ModuleProvider, Options, check_bytes};
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// The marker file of a project directory.
pub const PROJECT_FILE: &str = "rubric.toml";

/// Where a policy file's imports are resolved.
#[derive(Clone, Debug)]
pub struct Project {
    /// The directory as the user would write it (for messages).
    pub display_root: PathBuf,
    /// The canonical directory (for confinement).
    pub root: PathBuf,
}

impl Project {
    /// The project of a policy file: the nearest ancestor with a `rubric.toml`, else its folder.
    pub fn for_file(path: &Path) -> io::Result<Project> {
        let canonical = fs::canonicalize(path)?;
        let dir = canonical
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let root = dir
            .ancestors()
            .find(|a| a.join(PROJECT_FILE).is_file())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.clone());
        // Show the root relative to the file as the user named it.
        let given_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut display_root = given_dir.clone();
        let mut probe = dir.clone();
        while probe != root {
            display_root.push("..");
            if !probe.pop() {
                break;
            }
        }
        Ok(Project {
            display_root: tidy(&display_root),
            root,
        })
    }

    /// Reads `relative` (a path with normal components only) under the project directory,
    /// refusing anything whose real location is outside it.
    fn read_confined(&self, relative: &Path, limit: usize) -> Result<LoadedSource, LoadError> {
        let display = tidy(&self.display_root.join(relative));
        let name = display.to_string_lossy().replace('\\', "/");
        if relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            return Err(LoadError::Escapes {
                reason: format!("`{}` is not a plain relative path", relative.display()),
            });
        }
        let full = self.root.join(relative);
        let real = match fs::canonicalize(&full) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(LoadError::NotFound { looked_for: name });
            }
            Err(e) => {
                return Err(LoadError::Unreadable {
                    reason: e.to_string(),
                });
            }
        };
        if !real.starts_with(&self.root) {
            return Err(LoadError::Escapes {
                reason: format!(
                    "`{name}` is a link to `{}`, outside the project",
                    real.display()
                ),
            });
        }
        let meta = fs::metadata(&real).map_err(|e| LoadError::Unreadable {
            reason: e.to_string(),
        })?;
        if meta.is_dir() {
            return Err(LoadError::Unreadable {
                reason: format!("`{name}` is a directory, not a policy file"),
            });
        }
        if !meta.is_file() {
            // A FIFO or a device would block or never end: not read.
            return Err(LoadError::Unreadable {
                reason: format!("`{name}` is not a regular file (a pipe or a device)"),
            });
        }
        if meta.len() > limit as u64 {
            return Err(LoadError::TooLarge {
                bytes: meta.len(),
                limit: limit as u64,
            });
        }
        // The length is checked again while reading: the file may have grown since.
        let mut text = String::new();
        fs::File::open(&real)
            .and_then(|f| f.take(limit as u64 + 1).read_to_string(&mut text))
            .map_err(|e| LoadError::Unreadable {
                reason: e.to_string(),
            })?;
        if text.len() > limit {
            return Err(LoadError::TooLarge {
                bytes: text.len() as u64,
                limit: limit as u64,
            });
        }
        Ok(LoadedSource { name, text })
    }
}

/// Removes `x/..` pairs and `.` from a path, without touching the file system.
fn tidy(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out.iter().collect()
}

/// Loads modules and sibling policies for the compiler, confined to one project.
pub struct FsModules {
    pub project: Project,
    /// The directory of the file being checked, relative to the project root (for pipelines
    /// that name a policy beside them).
    pub file_dir: PathBuf,
    pub max_file_bytes: usize,
}

impl ModuleProvider for FsModules {
    fn module(&mut self, segments: &[&str]) -> Result<LoadedSource, LoadError> {
        let mut rel = PathBuf::new();
        for s in segments {
            rel.push(s);
        }
        rel.set_extension("policy");
        self.project.read_confined(&rel, self.max_file_bytes)
    }

    fn policy(&mut self, name: &str) -> Result<LoadedSource, LoadError> {
        let rel = self.file_dir.join(format!("{name}.policy"));
        self.project.read_confined(&rel, self.max_file_bytes)
    }

    /// The project's `.policy` files as dotted module names, for "did you mean": a bounded walk
    /// (a few levels, a few thousand entries) that skips hidden folders, `target` and
    /// `node_modules` and follows no symbolic link out of the project.
    fn module_names(&mut self) -> Vec<String> {
        const MAX_DEPTH: usize = 4;
        const MAX_ENTRIES: usize = 5_000;
        let mut names = Vec::new();
        let mut seen = 0;
        let mut stack = vec![(self.project.root.clone(), Vec::<String>::new())];
        while let Some((dir, prefix)) = stack.pop() {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_ENTRIES {
                    stack.clear();
                    break;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let name = entry.file_name().to_string_lossy().into_owned();
                if kind.is_dir() {
                    if prefix.len() < MAX_DEPTH
                        && !name.starts_with('.')
                        && name != "target"
                        && name != "node_modules"
                    {
                        let mut p = prefix.clone();
                        p.push(name);
                        stack.push((entry.path(), p));
                    }
                } else if kind.is_file()
                    && let Some(stem) = name.strip_suffix(".policy")
                {
                    let mut parts = prefix.clone();
                    parts.push(stem.to_string());
                    names.push(parts.join("."));
                }
            }
        }
        names.sort();
        names
    }
}

/// Reads and checks one policy file with its project's modules. A file that is not UTF-8 is a
/// diagnostic (`rubric::syntax::not_utf8`) at the bytes that cannot be read, not an IO error.
pub fn check_file(path: &Path, options: &Options) -> io::Result<Checked> {
    let name = path.to_string_lossy().replace('\\', "/");
    // Reading stops past the size limit: `/dev/zero` or a 4 GB sparse file is never read whole.
    let limit = options.limits.max_file_bytes;
    let file = fs::File::open(path)?;
    let size = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    if size.is_some_and(|n| n > limit as u64) {
        return Ok(rubric_compiler::too_large(&name, size, options));
    }
    let mut bytes = Vec::new();
    file.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Ok(rubric_compiler::too_large(&name, size, options));
    }
    let project = Project::for_file(path)?;
    let canonical_dir = fs::canonicalize(path)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let file_dir = canonical_dir
        .strip_prefix(&project.root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut provider = FsModules {
        project,
        file_dir,
        max_file_bytes: options.limits.max_file_bytes,
    };
    Ok(check_bytes(&name, &bytes, &mut provider, options))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rubric_compiler::Code;

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        p
    }

    fn codes(c: &Checked) -> Vec<Code> {
        c.diagnostics.iter().map(|d| d.code).collect()
    }

    const POLICY: &str = r#"policy p version 1 {
  use team.skills.{bonus}
  entity A { x: number }
  pair query: A, candidate: A
  dimension d weight 100% { score = bonus() }
  grade overall { good when overall >= 0.5  poor otherwise }
}
"#;

    #[test]
    fn modules_load_from_the_project_directory() {
        let tmp = tempdir();
        write(&tmp, "rubric.toml", "");
        write(
            &tmp,
            "team/skills.policy",
            "module team.skills { fn bonus() -> number in [0, 1] = 0.5 }",
        );
        let p = write(&tmp, "policies/p.policy", POLICY);
        let checked = check_file(&p, &Options::default()).unwrap();
        assert_eq!(
            codes(&checked),
            Vec::<Code>::new(),
            "{:?}",
            checked.diagnostics
        );
    }

    #[test]
    fn a_symlink_out_of_the_project_is_refused() {
        let tmp = tempdir();
        let outside = tempdir();
        write(
            &outside,
            "skills.policy",
            "module team.skills { fn bonus() -> number in [0, 1] = 0.5 }",
        );
        write(&tmp, "rubric.toml", "");
        fs::create_dir_all(tmp.join("team")).unwrap();
        std::os::unix::fs::symlink(
            outside.join("skills.policy"),
            tmp.join("team/skills.policy"),
        )
        .unwrap();
        let p = write(&tmp, "p.policy", POLICY);
        let checked = check_file(&p, &Options::default()).unwrap();
        assert!(
            codes(&checked).contains(&Code::ImportEscape),
            "{:?}",
            checked.diagnostics
        );
    }

    /// The `unknown_module` diagnostic of checking `p`.
    fn module_diagnostic(p: &Path) -> rubric_compiler::Diagnostic {
        let checked = check_file(p, &Options::default()).unwrap();
        checked
            .diagnostics
            .iter()
            .find(|d| d.code == Code::UnknownModule)
            .cloned()
            .unwrap()
    }

    fn labelled(d: &rubric_compiler::Diagnostic, text: &str) -> bool {
        d.labels.iter().any(|l| l.message.contains(text))
    }

    #[test]
    fn a_missing_module_says_where_it_looked() {
        let tmp = tempdir();
        let p = write(&tmp, "p.policy", POLICY);
        let d = module_diagnostic(&p);
        assert!(labelled(&d, "team/skills.policy"), "{d:?}");
    }

    #[test]
    fn a_module_that_is_a_directory_or_a_fifo_says_so() {
        let tmp = tempdir();
        let p = write(&tmp, "p.policy", POLICY);
        std::fs::create_dir_all(tmp.join("team/skills.policy")).unwrap();
        let d = module_diagnostic(&p);
        assert!(d.message.contains("cannot be read"), "{d:?}");
        assert!(labelled(&d, "is a directory"), "{d:?}");
        std::fs::remove_dir(tmp.join("team/skills.policy")).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(tmp.join("team/skills.policy"))
            .status()
            .is_ok_and(|s| s.success());
        if made {
            let d = module_diagnostic(&p);
            assert!(labelled(&d, "not a regular file"), "{d:?}");
        }
    }

    #[test]
    fn an_oversized_module_is_refused() {
        let tmp = tempdir();
        write(
            &tmp,
            "team/skills.policy",
            &format!("module team.skills {{ {} }}", " ".repeat(2048)),
        );
        let p = write(&tmp, "p.policy", POLICY);
        let mut options = Options::default();
        options.limits.max_file_bytes = 1024;
        let checked = check_file(&p, &options).unwrap();
        assert!(
            codes(&checked).contains(&Code::SyntaxTooLarge),
            "{:?}",
            checked.diagnostics
        );
    }

    fn tempdir() -> PathBuf {
        // Kept for the whole test run; the OS temp directory is cleaned by the system.
        let dir = tempfile::tempdir().unwrap().keep();
        fs::canonicalize(dir).unwrap()
    }
}
