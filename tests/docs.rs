//! The `policy` code blocks of `docs/*.md` are valid policy text. A block that is a whole file
//! (a `policy`, `module` or `pipeline`, after its comments) is written into a folder under the
//! name it declares, beside copies of `policies/*.policy` (a pipeline may be `for` a shipped
//! policy), and must check without errors or warnings. Any other block must be marked
//! ```` ```policy fragment ````, and a block marked so must not be a whole file: a fragment only
//! makes sense inside a policy that declares what it uses, and is not checked here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

struct Block {
    doc: PathBuf,
    line: usize,
    fragment: bool,
    text: String,
}

/// Every fenced block of `policy` text in `docs/*.md`, in order.
fn blocks() -> Vec<Block> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir("docs")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    let mut out = Vec::new();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let mut open: Option<(usize, Option<bool>, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let fence = line.trim_start().strip_prefix("```");
            match (&mut open, fence) {
                (None, Some(info)) => {
                    let mut words = info.split_whitespace();
                    let policy = words.next() == Some("policy");
                    let rest: Vec<&str> = words.collect();
                    let fragment = match rest.as_slice() {
                        [] => Some(false),
                        ["fragment"] => Some(true),
                        _ => panic!(
                            "{}:{}: a `policy` block is marked `{info}`; only `fragment` is known",
                            doc.display(),
                            i + 1
                        ),
                    };
                    open = Some((i + 1, policy.then_some(fragment).flatten(), String::new()));
                }
                (Some((line_no, kind, body)), Some(_)) => {
                    if let Some(fragment) = kind {
                        out.push(Block {
                            doc: doc.clone(),
                            line: *line_no,
                            fragment: *fragment,
                            text: std::mem::take(body),
                        });
                    }
                    open = None;
                }
                (Some((_, _, body)), None) => {
                    body.push_str(line);
                    body.push('\n');
                }
                (None, None) => {}
            }
        }
        assert!(
            open.is_none(),
            "{}: a code block is not closed",
            doc.display()
        );
    }
    out
}

/// The first declaration of a whole file: (`policy`|`module`|`pipeline`, its name).
fn declaration(text: &str) -> Option<(&str, &str)> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("//"))?;
    let mut words = first.split_whitespace();
    let keyword = words.next()?;
    let name = words.next()?;
    ["policy", "module", "pipeline"]
        .contains(&keyword)
        .then_some((keyword, name))
}

#[test]
fn every_policy_block_in_the_docs_checks_or_is_marked_a_fragment() {
    let blocks = blocks();
    assert!(blocks.len() >= 20, "{} policy blocks", blocks.len());
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir("policies").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "policy") {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut files = Vec::new();
    for b in &blocks {
        let at = format!("{}:{}", b.doc.display(), b.line);
        match (declaration(&b.text), b.fragment) {
            (Some((keyword, _)), true) => {
                panic!("{at}: a whole `{keyword}` is marked `fragment`; it should be checked")
            }
            (None, false) => {
                panic!("{at}: not a whole policy, module or pipeline: mark it ```policy fragment")
            }
            (None, true) => {}
            (Some((keyword, name)), false) => {
                // A module `a.b` lives at `a/b.policy`; a policy or pipeline at `name.policy`.
                let relative = if keyword == "module" {
                    name.replace('.', "/")
                } else {
                    name.to_string()
                } + ".policy";
                let path = dir.path().join(&relative);
                assert!(!path.exists(), "{at}: `{relative}` is declared twice");
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &b.text).unwrap();
                files.push((at, path));
            }
        }
    }
    assert!(files.len() >= 3, "whole files: {}", files.len());
    for (at, path) in &files {
        let o = Command::new(env!("CARGO_BIN_EXE_rubric"))
            .args(["check", "--error-format", "plain"])
            .arg(path)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            o.status.success() && err.contains("0 errors, 0 warnings"),
            "{at} does not check clean:\n{err}"
        );
    }
}

#[test]
fn a_whole_file_is_told_from_a_fragment() {
    assert_eq!(
        declaration("/// doc\n// note\npolicy p version 1 {\n}\n"),
        Some(("policy", "p"))
    );
    assert_eq!(
        declaration("module team.skills {\n}\n"),
        Some(("module", "team.skills"))
    );
    assert_eq!(declaration("score = 1.0\n"), None);
    assert_eq!(
        declaration("dimension d weight 10% { score = 1.0 }\n"),
        None
    );
}
