//! `rubric new NAME` end to end: the scaffold checks clean, its examples pass with every clause
//! exercised, it is in canonical layout, its sample pairs label and its document renders; it
//! refuses an existing directory and a name that is not an identifier. The generated policy is
//! snapshotted.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::{Command, Output};

fn rubric_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh scaffold named `talent_match` in a temporary directory.
fn scaffold() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let o = rubric_in(tmp.path(), &["new", "talent_match"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let project = tmp.path().join("talent_match");
    (tmp, project)
}

#[test]
fn the_scaffold_checks_clean_passes_its_examples_and_is_formatted() {
    let (_tmp, project) = scaffold();
    for file in [
        "rubric.toml",
        "talent_match.policy",
        "README.md",
        "data/README.md",
        "data/golden.jsonl",
    ] {
        assert!(project.join(file).is_file(), "{file} is missing");
    }
    let check = rubric_in(&project, &["check", "talent_match.policy"]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(
        text(&check).contains("0 errors, 0 warnings"),
        "{}",
        text(&check)
    );

    let test = rubric_in(
        &project,
        &["test", "talent_match.policy", "--min-coverage", "100"],
    );
    assert_eq!(test.status.code(), Some(0), "{}", text(&test));
    assert!(text(&test).contains("0 failed"), "{}", text(&test));
    assert!(text(&test).contains("(100.0%)"), "{}", text(&test));

    let fmt = rubric_in(&project, &["fmt", "--check", "talent_match.policy"]);
    assert_eq!(fmt.status.code(), Some(0), "{}", text(&fmt));
}

#[test]
fn the_sample_pairs_label_and_the_document_renders() {
    let (_tmp, project) = scaffold();
    let label = rubric_in(
        &project,
        &[
            "label",
            "--policy",
            "talent_match.policy",
            "--pairs",
            "data/golden.jsonl",
            "--out",
            "labels.jsonl",
        ],
    );
    assert_eq!(label.status.code(), Some(0), "{}", text(&label));
    let labels = std::fs::read_to_string(project.join("labels.jsonl")).unwrap();
    assert_eq!(labels.lines().count(), 3, "{labels}");

    let doc = rubric_in(&project, &["doc", "talent_match.policy", "--out", "doc"]);
    assert_eq!(doc.status.code(), Some(0), "{}", text(&doc));
    let md = std::fs::read_to_string(project.join("doc/talent_match.md")).unwrap();
    assert!(md.starts_with("# talent_match\n"), "{md:.200}");
    assert!(project.join("doc/talent_match.html").is_file());
}

#[test]
fn the_generated_policy() {
    let (_tmp, project) = scaffold();
    let policy = std::fs::read_to_string(project.join("talent_match.policy")).unwrap();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/new");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("talent_match.policy", policy));
}

#[test]
fn an_existing_directory_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let existing = tmp.path().join("talent_match");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    let o = rubric_in(tmp.path(), &["new", "talent_match"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("`talent_match` already exists"),
        "{}",
        text(&o)
    );
    let entries: Vec<_> = std::fs::read_dir(&existing).unwrap().collect();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        std::fs::read_to_string(existing.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn a_name_that_is_not_an_identifier_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, says) in [
        ("talent-match", "such as `talent_match`"),
        ("2fast", "starting with a letter"),
        ("../escape", "is not a policy name"),
        ("when", "reserves"),
    ] {
        let o = rubric_in(tmp.path(), &["new", name]);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", text(&o));
        assert!(text(&o).contains(says), "{name}: {}", text(&o));
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
