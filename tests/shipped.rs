//! Every policy and standard module the project ships checks with no errors and no warnings,
//! and so does the language sketch of LANGUAGE.md in the final syntax.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::diagnostics::render_all;
use rubric_compiler::{ErrorFormat, Options};
use std::path::{Path, PathBuf};

fn policy_files(dir: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "policy"))
        .collect();
    out.sort();
    out
}

fn assert_clean(path: &Path) {
    let checked = rubric_runtime::project::check_file(path, &Options::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        checked.diagnostics.is_empty(),
        "{} is not clean:\n{}",
        path.display(),
        render_all(
            &checked.diagnostics,
            &checked.sources,
            ErrorFormat::Human,
            100,
            false
        )
    );
}

#[test]
fn shipped_policies_check_clean() {
    let files = policy_files("policies");
    assert!(!files.is_empty());
    files.iter().for_each(|p| assert_clean(p));
}

#[test]
fn the_standard_library_checks_clean() {
    let files = policy_files("stdlib/std");
    assert!(files.len() >= 3);
    files.iter().for_each(|p| assert_clean(p));
}

#[test]
fn the_language_sketch_checks_clean() {
    assert_clean(Path::new("examples/language_sketch/job_match.policy"));
}

#[test]
fn the_embedded_stdlib_is_the_stdlib_directory() {
    for (name, pseudo, text) in rubric_compiler::stdlib::MODULES {
        let path = pseudo.trim_start_matches('<').trim_end_matches('>');
        let on_disk = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(&on_disk, text, "{name} differs from {path}");
    }
}

/// The example's temporal pipeline, in its own file, checks clean against the policy beside it,
/// and is `job_match_v1` with a third teacher: its data and its first two teachers are the
/// flagship's, word for word.
#[test]
fn the_example_temporal_pipeline_checks_clean_and_follows_the_flagship() {
    let path = Path::new("examples/job_match/temporal.policy");
    assert_clean(path);
    let temporal = std::fs::read_to_string(path).unwrap();
    let flagship = std::fs::read_to_string("examples/job_match/job_match.policy").unwrap();
    let block = |text: &str, head: &str| -> String {
        let start = text.find(head).unwrap_or_else(|| panic!("no `{head}`"));
        let len = text[start..].find("\n  }\n").unwrap();
        text[start..start + len].to_string()
    };
    for head in ["  data {", "  teacher policy {", "  teacher click {"] {
        assert_eq!(
            block(&temporal, head),
            block(&flagship, head),
            "examples/job_match/temporal.policy: `{}` differs from job_match_v1's",
            head.trim()
        );
    }
    assert!(temporal.contains("  teacher temporal {") && temporal.contains("distill temporal"));
}

/// The runnable example holds the flagship policy itself, not a version of it: an edit of one
/// is an edit of both (`cp policies/job_match.policy examples/job_match/`).
#[test]
fn the_example_runs_the_flagship_policy() {
    assert!(
        std::fs::read("examples/job_match/job_match.policy").unwrap()
            == std::fs::read("policies/job_match.policy").unwrap(),
        "examples/job_match/job_match.policy differs from policies/job_match.policy; copy it: \
         cp policies/job_match.policy examples/job_match/"
    );
    for data in ["golden.jsonl", "clicks.jsonl"] {
        assert!(
            Path::new("examples/job_match/data").join(data).is_file(),
            "the example's pipeline reads data/{data}"
        );
    }
}

/// A pipeline in its own file compiles against the policy beside it as that policy's own file
/// does — the same labeling program and policy hash, so `rubric run temporal.policy --dir` in the
/// flagship's run directory finds every stage the two share done — with its own plan.
#[test]
fn a_pipeline_in_its_own_file_compiles_with_the_policy_beside_it() {
    let compile = |path: &str| {
        rubric_runtime::compile::compile_file(Path::new(path), &Options::default())
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let flagship = compile("examples/job_match/job_match.policy");
    let temporal = compile("examples/job_match/temporal.policy");
    assert_eq!(temporal.lowered.labeling, flagship.lowered.labeling);
    let plan = |c: &rubric_runtime::compile::Compiled| c.lowered.training_plan.clone().unwrap();
    let (a, b) = (plan(&flagship), plan(&temporal));
    assert_eq!(
        (a.pipeline.as_str(), b.pipeline.as_str()),
        ("job_match_v1", "job_match_temporal")
    );
    assert_eq!(a.policy, b.policy);
    for shared in [
        "label.golden",
        "clean.clicks",
        "mix",
        "teacher.policy",
        "teacher.click",
    ] {
        assert_eq!(a.stage(shared), b.stage(shared), "{shared}");
    }
    assert!(b.stage("teacher.temporal").is_some());
}
