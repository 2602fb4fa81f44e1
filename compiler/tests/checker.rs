//! The checker's semantics on small policies: what it proves (no diagnostic) and what it
//! reports. The corpus under `tests/corpus/` snapshots the messages; these pin the decisions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::{Code, MemoryModules, NoModules, Options, check_source};

/// A policy with entity `A` (`x: number`, `n: number?`, `loc: string?`, `tags: set<string>`,
/// `flag: bool`, `level: Level`) for both roles, one dimension `d` scored by `SCORE`, and `REST`
/// in the policy body.
fn check(score: &str, rest: &str) -> Vec<Code> {
    let text = format!(
        r#"policy p version 1 {{
  enum Level {{ low < mid < high }}
  entity A {{ x: number  n: number?  loc: string?  tags: set<string>  flag: bool  level: Level }}
  pair query: A, candidate: A
  dimension d weight 100% {{ score = {score} }}
  grade overall {{ good when overall >= 0.5  poor otherwise }}
  {rest}
}}
"#
    );
    let checked = check_source("t.policy", &text, &mut NoModules, &Options::default());
    checked.diagnostics.iter().map(|d| d.code).collect()
}

fn score(s: &str) -> Vec<Code> {
    check(s, "")
}

#[test]
fn optionals_are_narrowed_by_missing() {
    assert_eq!(
        score("if missing(query.loc) then 0.0 else if query.loc == \"x\" then 1.0 else 0.0"),
        []
    );
    assert_eq!(
        score("if not missing(query.loc) and query.loc == \"x\" then 1.0 else 0.0"),
        []
    );
    assert_eq!(
        score("if missing(query.loc) or query.loc == \"x\" then 1.0 else 0.0"),
        []
    );
    assert_eq!(
        score("when missing(query.loc) => abstain when query.loc == \"x\" => 1.0 otherwise => 0.0"),
        []
    );
    assert_eq!(
        score("if (query.loc ?? \"x\") == \"x\" then 1.0 else 0.0"),
        []
    );
    assert_eq!(
        score("if query.loc == \"x\" then 1.0 else 0.0"),
        [Code::UnhandledOptional]
    );
    assert_eq!(
        score("if missing(query.loc) and query.loc == \"x\" then 1.0 else 0.0"),
        [Code::UnhandledOptional]
    );
}

#[test]
fn ranges_are_proven_or_reported() {
    assert_eq!(
        score("0.8 * clamp(query.x, 0, 1) + 0.2 * clamp(candidate.x, 0, 1)"),
        []
    );
    assert_eq!(
        score("0.8 * clamp(query.x, 0, 1) + 0.4 * clamp(candidate.x, 0, 1)"),
        [Code::ScoreRange]
    );
    assert_eq!(score("query.x"), [Code::ScoreUnproven]);
    assert_eq!(score("min(1, max(0, query.x))"), []);
    assert_eq!(
        score("match rank(query.level) { 0 => 0.2, 1 => 0.6, _ => 1.0 }"),
        []
    );
    assert_eq!(score("1 - rank(query.level) / 2"), []);
    assert_eq!(score("rank(query.level) / 2 + 0.5"), [Code::ScoreRange]);
}

#[test]
fn guarded_divisions_are_safe_and_parts_of_wholes_are_shares() {
    assert_eq!(
        score(
            "if len(query.tags) == 0 then 1.0 else len(query.tags & candidate.tags) / len(query.tags)"
        ),
        []
    );
    assert_eq!(
        score("len(query.tags & candidate.tags) / len(query.tags)"),
        [Code::DivisionByZero]
    );
    assert_eq!(
        score(
            "if len(query.tags) > 0 then len(query.tags - candidate.tags) / len(query.tags) else 0.0"
        ),
        []
    );
    assert_eq!(
        score("if len(query.tags) > 0 then len(candidate.tags) / len(query.tags) else 0.0"),
        [Code::ScoreUnproven]
    );
}

#[test]
fn numbers_are_narrowed_by_comparisons() {
    assert_eq!(
        score("if query.x >= 0 and query.x <= 1 then query.x else 0.0"),
        []
    );
    assert_eq!(
        score("if query.x > 1 then 1.0 else if query.x < 0 then 0.0 else query.x"),
        []
    );
    assert_eq!(
        score("when missing(query.n) => 0.5 when query.n > 1 => 1.0 otherwise => max(0, query.n)"),
        []
    );
}

#[test]
fn grade_bands_are_checked_with_open_thresholds() {
    let bands = |b: &str| {
        let text = format!(
            r#"policy p version 1 {{
  entity A {{ x: number }}
  pair query: A, candidate: A
  dimension d weight 100% {{ score = clamp(query.x, 0, 1) grade {{ {b} }} }}
  grade overall {{ good when overall >= 0.5  poor otherwise }}
}}"#
        );
        let checked = check_source("t.policy", &text, &mut NoModules, &Options::default());
        checked
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        bands("a when score >= 0.8  b when score >= 0.5  c otherwise"),
        []
    );
    assert_eq!(
        bands("a when score >= 0.5  b when score >= 0.8  c otherwise"),
        [Code::GradeShadowed]
    );
    assert_eq!(
        bands("a when score >= 0.5  b when score >= 0.5  c otherwise"),
        [Code::GradeShadowed]
    );
    assert_eq!(
        bands("a when score > 0.5  b when score >= 0.5  c otherwise"),
        []
    );
    assert_eq!(
        bands("a when score > 1  c otherwise"),
        [Code::GradeShadowed]
    );
    assert_eq!(
        bands("a when score >= 0.5  b when score >= 0.2"),
        [Code::MissingOtherwise]
    );
    assert_eq!(
        bands("c otherwise  a when score >= 0.5"),
        [Code::GradeShadowed]
    );
    assert_eq!(
        bands("lo when score < 0.3  hi when score >= 0.7  mid otherwise"),
        [Code::GradeOrder]
    );
}

#[test]
fn rules_that_cannot_fire_or_contradict_are_found() {
    let r = |rules: &str| check("clamp(query.x, 0, 1)", rules);
    assert_eq!(
        r(r#"rule a { when d < 0.2 cap overall at 0.3 because "weak" }"#),
        []
    );
    assert_eq!(
        r(r#"rule a { when d > 1 cap overall at 0.3 because "never" }"#),
        [Code::RuleNeverFires]
    );
    assert_eq!(
        r(r#"rule a { when query.flag and not query.flag cap overall at 0.3 because "never" }"#),
        [Code::RuleNeverFires]
    );
    assert_eq!(
        r(r#"rule a { when d < 0.5 cap overall at 0.3 because "weak" }
             rule b { when query.flag floor overall at 0.6 because "flagged" }"#),
        [Code::RuleConflict]
    );
    assert_eq!(
        r(r#"rule a { when d < 0.5 cap overall at 0.3 because "weak" }
             rule b { when d >= 0.5 floor overall at 0.6 because "strong" }"#),
        []
    );
    assert_eq!(
        r(r#"rule a { when query.flag exclude }"#),
        [Code::MissingBecause]
    );
    assert_eq!(
        r(r#"rule a { when query.flag set grade great because "x" }"#),
        [Code::UnknownGrade]
    );
    assert_eq!(
        r(r#"rule a { when query.flag cap overall at 1.5 because "x" }"#),
        [Code::RuleThreshold]
    );
}

#[test]
fn enums_are_ordered_only_when_declared_so() {
    assert_eq!(score("if query.level > mid then 1.0 else 0.0"), []);
    assert_eq!(score("if query.level > Level.mid then 1.0 else 0.0"), []);
    let unordered = |s: &str| {
        let text = format!(
            r#"policy p version 1 {{
  enum Kind {{ a, b, c }}
  entity A {{ k: Kind }}
  pair query: A, candidate: A
  dimension d weight 100% {{ score = {s} }}
  grade overall {{ good when overall >= 0.5  poor otherwise }}
}}"#
        );
        let checked = check_source("t.policy", &text, &mut NoModules, &Options::default());
        checked
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect::<Vec<_>>()
    };
    assert_eq!(unordered("if query.k == a then 1.0 else 0.0"), []);
    assert_eq!(
        unordered("if query.k > a then 1.0 else 0.0"),
        [Code::NotOrdered]
    );
    assert_eq!(unordered("rank(query.k) / 2"), [Code::NotOrdered]);
    assert_eq!(
        unordered("match query.k { a => 1.0, b => 0.5, c => 0.0 }"),
        []
    );
    assert_eq!(
        unordered("match query.k { a => 1.0, b => 0.5 }"),
        [Code::MatchNotExhaustive]
    );
}

#[test]
fn functions_are_checked_once_and_evaluated_at_call_sites() {
    let f = |decl: &str, s: &str| check(s, decl);
    assert_eq!(
        f(
            "fn half(v: number) -> number = v / 2",
            "half(clamp(query.x, 0, 1))"
        ),
        []
    );
    assert_eq!(
        f(
            "fn twice(v: number) -> number = v * 2",
            "twice(clamp(query.x, 0, 1))"
        ),
        [Code::ScoreRange]
    );
    assert_eq!(
        f(
            "fn f(v: number) -> number in [0, 1] = clamp(v, 0, 1)",
            "f(query.x)"
        ),
        []
    );
    assert_eq!(
        f("fn f(v: number) -> number in [0, 1] = 2", "f(query.x)"),
        [Code::DeclaredRange]
    );
    assert_eq!(
        f(
            "fn f(v: number) -> number = f(v)",
            "clamp(f(query.x), 0, 1)"
        ),
        [Code::RecursiveFunction]
    );
    assert_eq!(
        f(
            "fn f(v: number) -> number = v",
            "clamp(f(query.x, 1), 0, 1)"
        ),
        [Code::Arity]
    );
}

#[test]
fn abstain_belongs_to_scores() {
    assert_eq!(score("if query.flag then abstain else 1.0"), []);
    assert_eq!(
        check("1.0", "fn f() -> number = abstain"),
        [Code::AbstainMisplaced]
    );
}

#[test]
fn syntax_errors_in_separate_items_are_all_reported() {
    let text = r#"policy p version 1 {
  entity A { x: number }
  pair query: A, candidate: A
  dimension a weight 50% { score = if query.x > 0 then 1 0 }
  dimension b weight 50% { score = 1 + }
  rule r { when query.x > 0 cap overall 0.3 because "x" }
  grade overall { good when overall >= 0.5  poor otherwise }
}
"#;
    let checked = check_source("t.policy", text, &mut NoModules, &Options::default());
    let lines: Vec<usize> = checked
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::SyntaxUnexpected)
        .filter_map(|d| d.span())
        .map(|s| checked.sources.line_col(s.file, s.start).0)
        .collect();
    assert_eq!(lines, [4, 5, 6]);
}

#[test]
fn bands_after_a_band_that_always_holds_are_shadowed() {
    let text = r#"policy p version 1 {
  entity A { x: number }
  pair query: A, candidate: A
  dimension d weight 100% { score = clamp(query.x, 0.5, 1) grade { weak when score >= 0.2  strong when score >= 0.8  none otherwise } }
  grade overall { good when overall >= 0  poor otherwise }
}"#;
    let checked = check_source("t.policy", text, &mut NoModules, &Options::default());
    let codes: Vec<Code> = checked.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::GradeShadowed]);
}

/// The messages of the arity errors in `score` (with `rest` in the policy body).
fn arity_messages(score: &str, rest: &str) -> Vec<String> {
    let text = format!(
        r#"policy p version 1 {{
  entity A {{ x: number }}
  pair query: A, candidate: A
  dimension d weight 100% {{ score = {score} }}
  grade overall {{ good when overall >= 0.5  poor otherwise }}
  {rest}
}}
"#
    );
    let checked = check_source("t.policy", &text, &mut NoModules, &Options::default());
    checked
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::Arity)
        .map(|d| d.message.clone())
        .collect()
}

#[test]
fn arity_errors_name_the_missing_parameters_or_count_the_extra_arguments() {
    assert_eq!(
        arity_messages("clamp(query.x)", ""),
        [
            "`clamp` needs 3 arguments (`x`, `lo`, `hi`); this call gives 1: `lo` and `hi` are missing"
        ]
    );
    assert_eq!(
        arity_messages("clamp(min(query.x), 0, 1)", ""),
        ["`min` needs 2 or more arguments (`a`, `b`, ...); this call gives 1: `b` is missing"]
    );
    assert_eq!(
        arity_messages(
            "clamp(f(), 0, 1)",
            "fn f(a: number, b: number) -> number = a + b"
        ),
        ["`f` needs 2 arguments (`a`, `b`); this call gives none: `a` and `b` are missing"]
    );
    assert_eq!(
        arity_messages("clamp(f(query.x, 1), 0, 1)", "fn f() -> number = 0.5"),
        ["`f` needs no arguments; this call gives 2: 2 too many"]
    );
    assert_eq!(
        arity_messages("clamp(max(query.x, 1, 2), 0, 1)", ""),
        Vec::<String>::new()
    );
}

/// The codes for a policy that imports `std.text.{jaccard}` and scores with `score`.
fn with_jaccard(score: &str) -> Vec<Code> {
    let text = format!(
        r#"policy p version 1 {{
  use std.text.{{jaccard}}
  entity A {{ tags: set<string> }}
  pair query: A, candidate: A
  dimension d weight 100% {{ score = {score} }}
  grade overall {{ good when overall >= 0.5  poor otherwise }}
}}
"#
    );
    let checked = check_source("t.policy", &text, &mut NoModules, &Options::default());
    checked.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn a_misspelled_import_is_one_error_not_also_an_unused_import() {
    assert_eq!(with_jaccard("jaccard(query.tags, candidate.tags)"), []);
    assert_eq!(
        with_jaccard("jacard(query.tags, candidate.tags)"),
        [Code::UnknownFunction]
    );
    // A name that suggests nothing leaves the import unused.
    assert_eq!(
        with_jaccard("overlap(query.tags, candidate.tags)"),
        [Code::UnusedImport, Code::UnknownFunction]
    );
}

#[test]
fn a_misspelled_local_module_suggests_the_module_meant() {
    let mut modules = MemoryModules::default();
    modules.modules.insert(
        "lib.scoring".to_string(),
        "module lib.scoring { fn half(v: number) -> number = v / 2 }".to_string(),
    );
    let policy = |path: &str| {
        format!(
            r#"policy p version 1 {{
  use {path}.{{half}}
  entity A {{ x: number }}
  pair query: A, candidate: A
  dimension d weight 100% {{ score = clamp(half(query.x), 0, 1) }}
  grade overall {{ good when overall >= 0.5  poor otherwise }}
}}
"#
        )
    };
    let helps = |path: &str| -> Vec<(Code, Option<String>)> {
        let checked = check_source(
            "t.policy",
            &policy(path),
            &mut modules.clone(),
            &Options::default(),
        );
        checked
            .diagnostics
            .iter()
            .map(|d| (d.code, d.help.clone()))
            .collect()
    };
    assert_eq!(helps("lib.scoring"), []);
    let typo = helps("lib.scorng");
    assert_eq!(typo[0].0, Code::UnknownModule);
    assert_eq!(typo[0].1.as_deref(), Some("did you mean `lib.scoring`?"));
    let far = helps("lib.weights");
    assert_eq!(far[0].0, Code::UnknownModule);
    assert_ne!(far[0].1.as_deref(), Some("did you mean `lib.scoring`?"));
}
