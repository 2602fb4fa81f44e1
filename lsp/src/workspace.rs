//! The documents an editor has open and what checking each gave: the compiler runs on the
//! buffer's unsaved text, its imports resolve against the project on disk (or against other
//! open buffers, whose unsaved text wins), and each file the compiler read gets a URI an editor
//! can open, the embedded standard library included.

use crate::lines::Lines;
use lsp_types::Url;
use rubric_compiler::index::SymbolIndex;
use rubric_compiler::{
    Checked, FileId, LoadError, LoadedSource, ModuleProvider, NoModules, Options, check_source,
    stdlib,
};
use rubric_project::{FsModules, Project};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

/// One open document and the result of checking its current text.
#[derive(Debug)]
pub struct Document {
    pub text: String,
    pub version: i32,
    pub analysis: Analysis,
    /// The latest analysis that parsed, for completion while the text is half typed.
    pub last_parsed: Option<Analysis>,
}

/// A checked text: the compiler's result, its symbol index, and line tables for every file
/// it read.
#[derive(Debug)]
pub struct Analysis {
    pub checked: Checked,
    pub index: SymbolIndex,
    lines: HashMap<FileId, Lines>,
}

impl Analysis {
    /// Line tables of a file of this compilation.
    pub fn lines(&self, file: FileId) -> Option<&Lines> {
        self.lines.get(&file)
    }

    /// The line table of the checked file itself.
    pub fn root_lines(&self) -> Option<&Lines> {
        self.lines(self.checked.root)
    }
}

/// Where the server keeps what it writes: the copies of the embedded standard library.
#[derive(Clone, Debug)]
pub struct StdlibFiles {
    dir: PathBuf,
}

impl StdlibFiles {
    /// `dir/<version>/std/text.policy` and so on, written on first use.
    pub fn new(dir: PathBuf) -> StdlibFiles {
        StdlibFiles {
            dir: dir.join(env!("CARGO_PKG_VERSION")),
        }
    }

    /// The default place: the user's cache directory (`$XDG_CACHE_HOME`, else `~/.cache`),
    /// else the system's temporary directory; under `rubric/stdlib`.
    pub fn default_dir() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("rubric").join("stdlib")
    }

    /// The file an editor opens for a pseudo-path such as `<stdlib/std/text.policy>`: the
    /// embedded text written out (again when it differs, so an older copy never shows), read-only.
    pub fn materialize(&self, pseudo_path: &str) -> std::io::Result<PathBuf> {
        let Some((_, _, text)) = stdlib::MODULES.iter().find(|(_, p, _)| *p == pseudo_path) else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("`{pseudo_path}` is not a standard module"),
            ));
        };
        let relative = pseudo_path
            .trim_start_matches("<stdlib/")
            .trim_end_matches('>');
        let path = self.dir.join(relative);
        if fs::read_to_string(&path).ok().as_deref() != Some(*text) {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            if path.exists() {
                let mut perms = fs::metadata(&path)?.permissions();
                #[allow(clippy::permissions_set_readonly_false)]
                perms.set_readonly(false);
                fs::set_permissions(&path, perms)?;
            }
            fs::write(&path, text)?;
            let mut perms = fs::metadata(&path)?.permissions();
            perms.set_readonly(true);
            fs::set_permissions(&path, perms)?;
        }
        Ok(path)
    }
}

/// Every open document.
#[derive(Debug)]
pub struct Workspace {
    pub documents: HashMap<Url, Document>,
    pub stdlib: StdlibFiles,
    pub options: Options,
}

impl Workspace {
    pub fn new(stdlib: StdlibFiles) -> Workspace {
        Workspace {
            documents: HashMap::new(),
            stdlib,
            options: Options::default(),
        }
    }

    /// Opens or replaces a document's text and checks it.
    pub fn set_text(&mut self, uri: Url, text: String, version: i32) {
        let analysis = self.analyze(&uri, &text);
        let previous = self.documents.remove(&uri);
        let last_parsed = if analysis.checked.tree.is_some() {
            None
        } else {
            previous.and_then(|d| {
                if d.analysis.checked.tree.is_some() {
                    Some(d.analysis)
                } else {
                    d.last_parsed
                }
            })
        };
        self.documents.insert(
            uri,
            Document {
                text,
                version,
                analysis,
                last_parsed,
            },
        );
    }

    /// Checks a text as the file `uri`, with the project on disk and the other open buffers.
    pub fn analyze(&self, uri: &Url, text: &str) -> Analysis {
        let path = uri.to_file_path().ok();
        let name = path
            .as_ref()
            .map_or_else(|| uri.to_string(), |p| p.to_string_lossy().into_owned());
        let open: HashMap<PathBuf, &str> = self
            .documents
            .iter()
            .filter(|(u, _)| *u != uri)
            .filter_map(|(u, d)| Some((canonical(&u.to_file_path().ok()?), d.text.as_str())))
            .collect();
        let disk = path.as_deref().and_then(|p| fs_modules(p, &self.options));
        let checked = match disk {
            Some(fs) => {
                let mut provider = OpenBuffers { fs, open: &open };
                check_source(&name, text, &mut provider, &self.options)
            }
            None => check_source(&name, text, &mut NoModules, &self.options),
        };
        let index = SymbolIndex::build(&checked);
        let lines = checked
            .sources
            .iter()
            .map(|(id, file)| (id, Lines::new(file.text.clone())))
            .collect();
        Analysis {
            checked,
            index,
            lines,
        }
    }

    /// The URI of a file of a compilation: the document itself, a module of the project (its
    /// path), or a standard module (its copy on disk).
    pub fn uri_of(&self, uri: &Url, analysis: &Analysis, file: FileId) -> Option<Url> {
        if file == analysis.checked.root {
            return Some(uri.clone());
        }
        let name = &analysis.checked.sources.get(file)?.name;
        if name.starts_with("<stdlib/") {
            let path = self.stdlib.materialize(name).ok()?;
            return Url::from_file_path(path).ok();
        }
        Url::from_file_path(name).ok()
    }
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The project loader for a file on disk, naming modules by absolute paths (so each maps to a
/// URI); `None` for a buffer not saved yet.
fn fs_modules(path: &Path, options: &Options) -> Option<FsModules> {
    let absolute = canonical(path);
    let project = Project::for_file(&absolute).ok()?;
    let dir = absolute.parent()?.to_path_buf();
    let file_dir = dir
        .strip_prefix(&project.root)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    Some(FsModules {
        project: Project {
            display_root: project.root.clone(),
            root: project.root,
        },
        file_dir,
        max_file_bytes: options.limits.max_file_bytes,
    })
}

/// Modules and policies from the project on disk, except that an open buffer's unsaved text
/// wins over its file.
struct OpenBuffers<'a> {
    fs: FsModules,
    open: &'a HashMap<PathBuf, &'a str>,
}

impl OpenBuffers<'_> {
    fn buffer(&self, relative: &Path) -> Option<LoadedSource> {
        let path = canonical(&self.fs.project.root.join(relative));
        let text = self.open.get(&path)?;
        Some(LoadedSource {
            name: path.to_string_lossy().into_owned(),
            text: (*text).to_string(),
        })
    }
}

impl ModuleProvider for OpenBuffers<'_> {
    fn module(&mut self, segments: &[&str]) -> Result<LoadedSource, LoadError> {
        let mut relative: PathBuf = segments.iter().collect();
        relative.set_extension("policy");
        if segments
            .iter()
            .all(|s| !s.is_empty() && !s.contains(['.', '/', '\\']))
            && let Some(loaded) = self.buffer(&relative)
        {
            return Ok(loaded);
        }
        self.fs.module(segments)
    }

    fn policy(&mut self, name: &str) -> Result<LoadedSource, LoadError> {
        let relative = self.fs.file_dir.join(format!("{name}.policy"));
        if !name.contains(['.', '/', '\\'])
            && let Some(loaded) = self.buffer(&relative)
        {
            return Ok(loaded);
        }
        self.fs.policy(name)
    }
}
