//! The formatter never changes meaning: every policy, standard module, example and corpus file
//! that parses formats idempotently; every file that checks clean lowers to the same artefacts
//! (source map aside) and labels its examples the same before and after; a broken file keeps
//! its diagnostics. Snapshots show the canonical layout of a representative handful of inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::format::format_source;
use rubric_compiler::{Checked, Options, check_source};
use rubric_runtime::compile::{compile_checked, deterministic_json};
use rubric_runtime::examples::run_policy_examples;
use rubric_runtime::label::engine::Engine;
use rubric_runtime::project::{FsModules, Project};
use std::path::{Path, PathBuf};

/// The `.policy` files under `dir`, recursively, sorted.
fn policy_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "policy") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Checks `text` as if it were the file at `path`: same name, same project, same imports.
fn check_as(path: &Path, text: &str) -> Checked {
    let project = Project::for_file(path).unwrap();
    let dir = std::fs::canonicalize(path)
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let file_dir = dir.strip_prefix(&project.root).unwrap().to_path_buf();
    let options = Options::default();
    let mut provider = FsModules {
        project,
        file_dir,
        max_file_bytes: options.limits.max_file_bytes,
    };
    let name = path.to_string_lossy().replace('\\', "/");
    check_source(&name, text, &mut provider, &options)
}

/// What a file means, as far as anything downstream can tell: its diagnostics (codes and
/// messages) or, when it checks clean and holds a policy, its three artefacts and what its
/// examples label.
#[derive(Debug, PartialEq)]
enum Meaning {
    Diagnostics(Vec<String>),
    Module,
    Policy {
        artefacts: [String; 3],
        examples: Vec<String>,
        clauses_hit: Vec<bool>,
    },
}

fn meaning(checked: Checked) -> Meaning {
    if !checked.diagnostics.is_empty() {
        return Meaning::Diagnostics(
            checked
                .diagnostics
                .iter()
                .map(|d| format!("{} {}", d.code.as_str(), d.message))
                .collect(),
        );
    }
    if checked.policy_decl().is_none() {
        return Meaning::Module;
    }
    let compiled = compile_checked(checked).unwrap();
    let lowered = &compiled.lowered;
    let artefacts = [
        deterministic_json(&lowered.labeling),
        deterministic_json(&lowered.loss_terms),
        deterministic_json(&lowered.training_plan),
    ];
    let engine = Engine::new(lowered.labeling.clone());
    let mut clauses_hit = vec![false; engine.program.clauses.len()];
    let examples = run_policy_examples(&engine, &compiled.checked, &mut clauses_hit)
        .into_iter()
        // The line moves with the layout; everything else must not.
        .map(|r| {
            format!(
                "{} {:?} {} {:?}",
                r.name, r.failures, r.expectations, r.label
            )
        })
        .collect();
    Meaning::Policy {
        artefacts,
        examples,
        clauses_hit,
    }
}

/// Every file the formatter must handle: what the project ships, the corpus, and this test's
/// own unformatted inputs (`tests/format/`).
fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "policies",
        "stdlib/std",
        "examples",
        "tests/corpus",
        "tests/format",
    ] {
        files.extend(policy_files(Path::new(dir)));
    }
    files
}

#[test]
fn every_file_that_parses_formats_idempotently_and_keeps_its_meaning() {
    let files = all_files();
    assert!(files.len() > 120, "only {} files found", files.len());
    let (mut parsed, mut clean_policies) = (0, 0);
    for path in &files {
        // The corpus's file that is not UTF-8 is the checker's (`syntax::not_utf8`), not text.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let Some(formatted) = format_source(&text) else {
            continue;
        };
        parsed += 1;
        let again = format_source(&formatted)
            .unwrap_or_else(|| panic!("{}: the formatted text does not parse", path.display()));
        assert!(
            again == formatted,
            "{}: formatting is not idempotent; first pass:\n{formatted}\nsecond pass:\n{again}",
            path.display()
        );
        let before = meaning(check_as(path, &text));
        let after = meaning(check_as(path, &formatted));
        if matches!(before, Meaning::Policy { .. }) {
            clean_policies += 1;
        }
        assert!(
            before == after,
            "{}: formatting changed the meaning\nbefore: {before:#?}\nafter: {after:#?}",
            path.display()
        );
    }
    // The shipped policies, the sketch, and the corpus files that break only a check.
    assert!(parsed > 100, "only {parsed} files parsed");
    assert!(clean_policies >= 3, "only {clean_policies} clean policies");
}

#[test]
fn the_meaning_check_sees_an_edit_but_not_a_comment() {
    let path = Path::new("examples/language_sketch/job_match.policy");
    let text = std::fs::read_to_string(path).unwrap();
    let edited = text.replacen("0.8 * required", "0.7 * required", 1);
    let commented = text.replacen("policy job_match", "// a comment\npolicy job_match", 1);
    assert!(edited != text && commented != text);
    let original = meaning(check_as(path, &text));
    assert!(matches!(original, Meaning::Policy { .. }), "{original:?}");
    assert!(original != meaning(check_as(path, &edited)));
    assert!(original == meaning(check_as(path, &commented)));
}

#[test]
fn the_shipped_policies_and_stdlib_are_in_canonical_layout() {
    let mut files = policy_files(Path::new("policies"));
    files.extend(policy_files(Path::new("stdlib/std")));
    files.extend(policy_files(Path::new("examples")));
    let unformatted: Vec<String> = files
        .iter()
        .filter(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            format_source(&text).as_deref() != Some(text.as_str())
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        unformatted.is_empty(),
        "not in canonical layout (run `rubric fmt` on them): {unformatted:?}"
    );
}

/// A snapshot reviewers can read alone: the source, then the formatted text.
fn snapshot(name: &str, source: &str) {
    let formatted = format_source(source).unwrap_or_else(|| panic!("{name}: does not parse"));
    assert_eq!(
        format_source(&formatted).as_deref(),
        Some(formatted.as_str()),
        "{name}: not idempotent"
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/format");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        insta::assert_snapshot!(
            name,
            format!("--- SOURCE\n{source}\n--- FORMATTED\n{formatted}")
        );
    });
}

#[test]
fn snapshot_a_small_policy_with_its_pipeline() {
    // The sketch of LANGUAGE.md as laid out by hand, before `examples/language_sketch/` took
    // the canonical layout.
    let text = std::fs::read_to_string("tests/format/language_sketch.policy").unwrap();
    snapshot("language_sketch", &text);
}

#[test]
fn snapshot_a_module() {
    let text = std::fs::read_to_string("tests/format/team_module.policy").unwrap();
    snapshot("team_module", &text);
}

#[test]
fn snapshot_a_pipeline_in_its_own_file() {
    snapshot(
        "pipeline_alone",
        r#"/// Ranking for the home feed.
pipeline feed_v2 for feed_ranking {
  data { golden  "data/golden.jsonl"   // labeled by the rubric
    clicks "data/clicks.jsonl" clean { drop bots when clicks_per_minute > 30
      drop outliers dwell_seconds beyond 3 sigma }
    synthetic from golden { count 20000, strategy coverage }
    mix real 30% synthetic 70%  split validation 10% seed 7 }
  teacher policy { model encoder { layers 6, hidden 384, heads 12 } predicts dimensions, overall
    loss mse train { epochs 5, lr 3e-5, batch 32 } }
  teacher click { model init "models/minilm" predicts click loss bce }
  student {
    model encoder { layers 2, hidden 128, heads 4 }
    distill policy weight 0.6 loss mse
    distill click weight 0.4 loss bce temperature 2.0
    drift penalty 0.5 tolerance 0.05 rebalance every 2 epochs
    early_stop on policy_alignment patience 3 }
  quantize int8 { prune heads below 0.01 }
  monitor { alert policy_drift > 0.05  alert click_auc < 0.70  alert p99_latency > 20ms }
}
"#,
    );
}

#[test]
fn snapshot_comments_and_docs_everywhere() {
    snapshot(
        "comments_everywhere",
        r#"// A file header: who owns this policy.
/// # Comments everywhere
/// Every `//` comment and `///` doc survives formatting, wherever it stands.
policy comments version 2 {   // after the opening brace
  use std.text.{coverage}   // trailing an import

  /// The member.
  entity Member { skills: set<string>   // what they list
    // before a field
    city: string?
  }
  pair query: Member, candidate: Member
  /// ## Skills
  /// Shared skills, as a share of what the query lists.
  dimension skills weight 60% {
    /// Coverage of the query's skills.
    let c = coverage(query.skills,   // the checklist
                     candidate.skills)
    score = c   // already in [0, 1]
    grade { /// Most skills.
      strong when score >= 0.80 "most skills" // high
      weak otherwise }
  }
  dimension city weight 40% {
    score = when missing(query.city) or missing(candidate.city) => abstain
            // both known from here on
            when query.city == candidate.city => 1.0
            otherwise => 0.0
  }
  /// Far apart and few skills: never good.
  rule far_and_few { when not missing(query.city) and not missing(candidate.city)
      and query.city != candidate.city // different cities
      and coverage(query.skills, candidate.skills) < 0.5
    cap overall at 0.3 because "too far for too few skills" }
  grade overall { good when overall >= 0.5 poor otherwise }
  // A comment before an example.
  example "same city, same skills" {
    query { skills: ["rust"], city: "Oslo" }   // the query
    candidate { skills: ["rust"], city: "Oslo" }
    expect overall >= 0.9   // both dimensions give 1
  }
}
// A comment at the end of the file.
"#,
    );
}
