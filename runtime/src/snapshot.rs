//! `rubric snapshot DIR [--check]`: snapshots of every policy of a repository, kept beside the
//! policies, so that a CI job can fail when a policy edit changes what the policy produces
//! without the snapshot being updated (and a reviewer sees the change in the pull request).
//!
//! For every `*.policy` under DIR (recursively, in sorted order; hidden folders and files that
//! hold no policy, such as modules, are skipped) the folder `<name>.snap/` beside it holds:
//!
//! - `labeling_program.json`, `loss_terms.json`, `training_plan.json`: the artefacts (the last two
//!   when the file has a pipeline), as `rubric compile` writes them (not the source map, which
//!   moves with every line);
//! - `examples.txt`: the examples' results and clause coverage, as `rubric test` prints them
//!   (paths relative to DIR);
//! - `stats.txt`: when `<name>.pairs.jsonl` sits beside the policy, the `rubric stats` report of
//!   those pairs.
//!
//! The folder belongs to rubric: a file in it that would not be written is stale and is removed.
//! A `<name>.snap/` folder (recognized by its `labeling_program.json`) whose policy is gone is
//! removed too.

use crate::compile::{
    CompileError, Compiled, LABELING_FILE, LOSS_TERMS_FILE, TRAINING_PLAN_FILE, compile_file,
    deterministic_json,
};
use crate::examples::{coverage_report, results_table, run_policy_examples};
use crate::label::engine::Engine;
use crate::stats::stats_stream;
use rubric_compiler::Options;
use std::fs;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

/// The suffix of a policy's snapshot folder: `job_match.policy` → `job_match.snap/`.
pub const SNAP_SUFFIX: &str = ".snap";
/// The examples' results in a snapshot folder.
pub const EXAMPLES_FILE: &str = "examples.txt";
/// The stats report in a snapshot folder.
pub const STATS_FILE: &str = "stats.txt";
/// The suffix of the pairs file beside a policy: `job_match.policy` → `job_match.pairs.jsonl`.
pub const PAIRS_SUFFIX: &str = ".pairs.jsonl";
const POLICY_SUFFIX: &str = ".policy";

/// One file a snapshot should hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Relative to DIR, with `/` separators.
    pub path: String,
    pub text: String,
}

/// What the snapshots of a directory should be.
#[derive(Debug, Default)]
pub struct Plan {
    pub root: PathBuf,
    /// Every file of every snapshot folder, sorted by path.
    pub files: Vec<Expected>,
    /// The snapshot folders rubric owns (expected ones and stale ones), relative, sorted.
    pub folders: Vec<String>,
    /// Policies snapshotted, relative.
    pub policies: Vec<String>,
    /// `*.policy` files that hold no policy (modules), relative.
    pub skipped: Vec<String>,
    /// Policies that could not be compiled: their snapshot is left alone.
    pub failed: Vec<(String, CompileError)>,
}

/// How a file would change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Created,
    Modified,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Relative to DIR, with `/` separators.
    pub path: String,
    pub kind: ChangeKind,
    /// What is on disk (empty when created).
    pub old: String,
    /// What the snapshot should hold (empty when removed).
    pub new: String,
}

fn rel_string(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `*.policy` file and every `*.snap` folder under `root` (relative paths, sorted), not
/// following links and skipping hidden folders.
fn walk(
    root: &Path,
    rel: &Path,
    policies: &mut Vec<PathBuf>,
    snaps: &mut Vec<PathBuf>,
) -> io::Result<()> {
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(root.join(rel))?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let ty = e.file_type()?;
        let path = rel.join(&name);
        if ty.is_dir() {
            if name.ends_with(SNAP_SUFFIX) {
                snaps.push(path);
            } else {
                walk(root, &path, policies, snaps)?;
            }
        } else if ty.is_file() && name.ends_with(POLICY_SUFFIX) && name.len() > POLICY_SUFFIX.len()
        {
            policies.push(path);
        }
    }
    Ok(())
}

/// The examples' results and clause coverage of a compiled policy, as `rubric test` prints them,
/// naming the policy file `file`.
pub fn examples_text(compiled: &Compiled, file: &str) -> String {
    let checked = &compiled.checked;
    let mut source_map = compiled.lowered.source_map.clone();
    // The policy's own file under the name given, whatever path it was compiled from.
    let own = checked
        .policy_decl()
        .and_then(|p| checked.sources.get(p.span.file))
        .map(|s| s.name.clone());
    if let Some(name) = own {
        for f in &mut source_map.files {
            if *f == name {
                *f = file.to_string();
            }
        }
    }
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let mut hits = vec![false; engine.program.clauses.len()];
    let results = run_policy_examples(&engine, checked, &mut hits);
    let (_, coverage) = coverage_report(&engine.program, &source_map, &hits);
    results_table(&results, file) + &coverage
}

/// Compiles every policy under `root` and says what its snapshot folder should hold.
pub fn plan(root: &Path, options: &Options) -> io::Result<Plan> {
    let mut policies = Vec::new();
    let mut snaps = Vec::new();
    walk(root, Path::new(""), &mut policies, &mut snaps)?;
    let mut out = Plan {
        root: root.to_path_buf(),
        ..Plan::default()
    };
    let mut folders: Vec<String> = Vec::new();
    let mut kept: Vec<PathBuf> = Vec::new();
    for rel in policies {
        let name = rel_string(&rel);
        let file_name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = file_name
            .strip_suffix(POLICY_SUFFIX)
            .unwrap_or(&file_name)
            .to_string();
        let folder = rel.with_file_name(format!("{stem}{SNAP_SUFFIX}"));
        let compiled = match compile_file(&root.join(&rel), options) {
            Ok(c) => c,
            Err(CompileError::NoPolicy(_)) => {
                out.skipped.push(name);
                continue;
            }
            Err(e) => {
                // Leave its snapshot as it is: nothing can be said until it compiles.
                kept.push(folder);
                out.failed.push((name, e));
                continue;
            }
        };
        let folder_name = rel_string(&folder);
        let mut add = |file: &str, text: String| {
            out.files.push(Expected {
                path: format!("{folder_name}/{file}"),
                text,
            });
        };
        let lowered = &compiled.lowered;
        add(LABELING_FILE, deterministic_json(&lowered.labeling));
        if let Some(terms) = &lowered.loss_terms {
            add(LOSS_TERMS_FILE, deterministic_json(terms));
        }
        if let Some(plan) = &lowered.training_plan {
            add(TRAINING_PLAN_FILE, deterministic_json(plan));
        }
        add(EXAMPLES_FILE, examples_text(&compiled, &name));
        let pairs = root.join(rel.with_file_name(format!("{stem}{PAIRS_SUFFIX}")));
        if pairs.is_file() {
            let engine = Engine::new(lowered.labeling.clone());
            let mut input = BufReader::with_capacity(1 << 20, fs::File::open(&pairs)?);
            let report = stats_stream(&engine, &mut input)?;
            add(STATS_FILE, report.to_text());
        }
        folders.push(folder_name);
        out.policies.push(name);
    }
    // Stale folders: ours (they hold a labeling program), with no policy snapshotted beside them.
    for s in snaps {
        let name = rel_string(&s);
        if !folders.contains(&name)
            && !kept.contains(&s)
            && root.join(&s).join(LABELING_FILE).is_file()
        {
            folders.push(name);
        }
    }
    folders.sort();
    out.folders = folders;
    out.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// How the files on disk differ from the plan, sorted by path.
pub fn changes(plan: &Plan) -> io::Result<Vec<Change>> {
    let mut out = Vec::new();
    for e in &plan.files {
        match fs::read(plan.root.join(&e.path)) {
            Ok(bytes) => {
                let old = String::from_utf8_lossy(&bytes).into_owned();
                if old != e.text {
                    out.push(Change {
                        path: e.path.clone(),
                        kind: ChangeKind::Modified,
                        old,
                        new: e.text.clone(),
                    });
                }
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => out.push(Change {
                path: e.path.clone(),
                kind: ChangeKind::Created,
                old: String::new(),
                new: e.text.clone(),
            }),
            Err(err) => return Err(err),
        }
    }
    for folder in &plan.folders {
        let dir = plan.root.join(folder);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let mut names: Vec<String> = Vec::new();
        for entry in entries {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        for n in names {
            let path = format!("{folder}/{n}");
            if !plan.files.iter().any(|e| e.path == path) {
                let old = String::from_utf8_lossy(&fs::read(plan.root.join(&path))?).into_owned();
                out.push(Change {
                    path,
                    kind: ChangeKind::Removed,
                    old,
                    new: String::new(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Writes the changes: creates and updates files, removes stale ones (and a snapshot folder left
/// empty).
pub fn apply(plan: &Plan, changes: &[Change]) -> io::Result<()> {
    for c in changes {
        let path = plan.root.join(&c.path);
        match c.kind {
            ChangeKind::Created | ChangeKind::Modified => {
                if let Some(dir) = path.parent() {
                    fs::create_dir_all(dir)?;
                }
                crate::atomic::write(&path, c.new.as_bytes())?;
            }
            ChangeKind::Removed => {
                fs::remove_file(&path)?;
                if let Some(dir) = path.parent()
                    && fs::read_dir(dir)?.next().is_none()
                {
                    fs::remove_dir(dir)?;
                }
            }
        }
    }
    Ok(())
}

fn lines(text: &str) -> String {
    match text.lines().count() {
        1 => "1 line".to_string(),
        n => format!("{n} lines"),
    }
}

/// A unified diff of a change (three lines of context), headed by `shown` (the file's path as
/// the user should read it). Created and removed files are summarized, not printed.
pub fn unified_diff(change: &Change, shown: &str) -> String {
    match change.kind {
        ChangeKind::Created => format!(
            "new file {shown} ({}) would be created\n",
            lines(&change.new)
        ),
        ChangeKind::Removed => format!(
            "stale file {shown} ({}) would be removed\n",
            lines(&change.old)
        ),
        ChangeKind::Modified => crate::textdiff::unified(
            &change.old,
            &change.new,
            &format!("{shown} (snapshot)"),
            &format!("{shown} (now)"),
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const POLICY: &str = r#"policy p version 1 {
  entity A { x: number }
  pair query: A, candidate: A
  dimension d weight 100% {
    score = clamp(query.x, 0, 1)
  }
  grade overall { good when overall >= 0.5  poor otherwise }
  example "high" {
    query { x: 0.9 }
    candidate { x: 0 }
    expect overall.grade == good
  }
}
"#;

    fn setup() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("team/.hidden")).unwrap();
        fs::write(dir.path().join("team/p.policy"), POLICY).unwrap();
        fs::write(dir.path().join("team/.hidden/q.policy"), POLICY).unwrap();
        fs::write(
            dir.path().join("team/p.pairs.jsonl"),
            "{\"id\": \"a\", \"query\": {\"x\": 0.2}, \"candidate\": {\"x\": 0}}\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("lib.policy"),
            "module lib {\n  fn half(x: number) -> number = x / 2\n}\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_snapshot_is_written_then_checks_clean_then_sees_edits() {
        let dir = setup();
        let root = dir.path();
        let plan1 = plan(root, &Options::default()).unwrap();
        assert!(plan1.failed.is_empty(), "{:?}", plan1.failed);
        assert_eq!(plan1.policies, ["team/p.policy"]);
        assert_eq!(plan1.skipped, ["lib.policy"]);
        let paths: Vec<&str> = plan1.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "team/p.snap/examples.txt",
                "team/p.snap/labeling_program.json",
                "team/p.snap/stats.txt"
            ]
        );
        let examples = &plan1.files[0].text;
        assert!(
            examples.starts_with("pass  high  team/p.policy:8\n"),
            "{examples}"
        );
        let created = changes(&plan1).unwrap();
        assert!(created.iter().all(|c| c.kind == ChangeKind::Created));
        apply(&plan1, &created).unwrap();
        assert!(
            changes(&plan(root, &Options::default()).unwrap())
                .unwrap()
                .is_empty()
        );

        // An edit of the policy, a stale file, and the pairs gone.
        fs::write(
            root.join("team/p.policy"),
            POLICY.replace("overall >= 0.5", "overall >= 0.6"),
        )
        .unwrap();
        fs::write(root.join("team/p.snap/notes.txt"), "mine\n").unwrap();
        fs::remove_file(root.join("team/p.pairs.jsonl")).unwrap();
        let plan2 = plan(root, &Options::default()).unwrap();
        let found: Vec<(String, ChangeKind)> = changes(&plan2)
            .unwrap()
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "team/p.snap/labeling_program.json".to_string(),
                    ChangeKind::Modified
                ),
                ("team/p.snap/notes.txt".to_string(), ChangeKind::Removed),
                ("team/p.snap/stats.txt".to_string(), ChangeKind::Removed),
            ]
        );
        let all = changes(&plan2).unwrap();
        let diff = unified_diff(&all[0], "team/p.snap/labeling_program.json");
        assert!(
            diff.contains("--- team/p.snap/labeling_program.json (snapshot)"),
            "{diff}"
        );
        assert!(
            diff.lines()
                .any(|l| l.starts_with('+') && l.trim_end().ends_with("\"number\": 0.6")),
            "{diff}"
        );
        assert!(diff.contains("@@ -73,7 +73,7 @@"), "{diff}");

        // The policy removed: its folder is stale and goes away entirely.
        apply(&plan2, &all).unwrap();
        fs::remove_file(root.join("team/p.policy")).unwrap();
        let plan3 = plan(root, &Options::default()).unwrap();
        let gone = changes(&plan3).unwrap();
        assert!(
            gone.iter().all(|c| c.kind == ChangeKind::Removed),
            "{gone:?}"
        );
        apply(&plan3, &gone).unwrap();
        assert!(!root.join("team/p.snap").exists());
    }

    #[test]
    fn a_broken_policy_is_reported_and_its_snapshot_kept() {
        let dir = setup();
        let root = dir.path();
        let p = plan(root, &Options::default()).unwrap();
        apply(&p, &changes(&p).unwrap()).unwrap();
        fs::write(
            root.join("team/p.policy"),
            POLICY.replace("weight 100%", "weight 90%"),
        )
        .unwrap();
        let p = plan(root, &Options::default()).unwrap();
        assert_eq!(p.failed.len(), 1);
        assert!(changes(&p).unwrap().is_empty());
    }
}
