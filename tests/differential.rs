//! Differential test of the labeling engine against a reference evaluator
//! (`tests/support/reference.rs`) that works on the syntax tree and the checker's resolved
//! program, shares no code with the engine, and reads the same JSON pairs.
//!
//! For each shipped policy (and an edge-case policy, `tests/support/edge.policy`), thousands of
//! generated pairs (`rubric_runtime::random_pairs`) plus pairs mixed from the policy's own
//! examples are labeled by both, and every label must be equal: every dimension score, every
//! grade, the overall score, the overall grade and the recorded rules. Scores are compared
//! exactly: the reference performs the same IEEE-754 operations in the same order as the
//! language defines them (left to right, the weighted mean summed in declaration order), so any
//! difference, even in the last bit, is a difference in what was computed.
//!
//! The generated data must exercise abstentions and missing values (counted and asserted), so
//! the test cannot pass vacuously. Hand-written pairs pin the edge cases, each checked against a
//! value worked out by hand as well as against the reference.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/reference.rs"]
mod reference;

use reference::{RefLabel, Reference};
use rubric_compiler::Options;
use rubric_compiler::resolve::Type;
use rubric_compiler::syntax::ast::{Item, Literal, LiteralKind, RuleAction};
use rubric_runtime::compile::{Compiled, compile_file};
use rubric_runtime::label::batch::PairBatch;
use rubric_runtime::label::decode::Decoder;
use rubric_runtime::label::engine::{Ctx, Engine, Events, Labels};
use rubric_runtime::label::label_json;
use rubric_runtime::label::value::Interner;
use rubric_runtime::random_pairs::PairGenerator;
use serde_json::{Map, Value as Json, json};
use std::fmt::Write as _;
use std::path::Path;

const RANDOM_PAIRS: usize = 5_000;
const MIXED_PAIRS: usize = 2_000;

fn compile(path: &str) -> Compiled {
    compile_file(Path::new(path), &Options::default()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Labels pairs with the engine, the way `rubric label` does (decode JSON lines into batches,
/// label each batch, each label's JSON), but without printing and re-reading the labels:
/// serde_json (without its `float_roundtrip` feature) does not read back every 17-digit float
/// exactly, which would show up here as last-bit differences that are not the engine's.
///
/// The engine evaluates a batch a chunk of rows at a time, each branch only for the rows that
/// take it; labeling each pair alone must give the same labels, the same counted events and the
/// same clause hits, so the batches are checked against that too.
fn engine_labels(engine: &Engine, pairs: &[Json]) -> Vec<Json> {
    let decoder = Decoder::new(&engine.program);
    let clauses = engine.program.clauses.len();
    let dims = engine.program.dimensions.len();
    let mut strings = Interner::new(&engine.strings);
    let decoded: Vec<_> = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            decoder
                .decode(i as u64 + 1, &p.to_string(), &mut strings)
                .unwrap_or_else(|e| panic!("the engine refused {p}: {e}"))
        })
        .collect();

    let (mut alone_events, mut alone_hits) = (Events::new(dims), vec![false; clauses]);
    let alone: Vec<_> = decoded
        .iter()
        .map(|pair| {
            let mut ctx = Ctx::new(&mut strings, &mut alone_events, Some(&mut alone_hits));
            engine.label(pair, &mut ctx)
        })
        .collect();

    // Batches of an odd size, so chunks end inside them and the last chunk is short.
    let (mut events, mut hits) = (Events::new(dims), vec![false; clauses]);
    let mut labels = Vec::with_capacity(pairs.len());
    let mut out = Labels::default();
    for batch in decoded.chunks(700) {
        let batch = PairBatch::of(&engine.program, batch.iter().cloned());
        let mut ctx = Ctx::new(&mut strings, &mut events, Some(&mut hits));
        out.clear();
        engine.label_batch(&batch, &mut ctx, &mut out);
        labels.extend(out.iter().map(|l| l.to_label()));
    }
    assert_eq!(labels.len(), alone.len());
    for (i, (a, b)) in labels.iter().zip(&alone).enumerate() {
        assert_eq!(a, b, "pair {i} labeled in a batch and alone");
    }
    assert_eq!(
        events, alone_events,
        "events counted in batches and pair by pair"
    );
    assert_eq!(hits, alone_hits, "clauses hit in batches and pair by pair");
    labels.iter().map(|l| label_json(engine, l)).collect()
}

/// The pair as the engine reads it: printed as a JSON line and parsed again, so that both sides
/// see the same numbers.
fn as_read(pair: &Json) -> Json {
    serde_json::from_str(&pair.to_string()).expect("a JSON line")
}

/// A small deterministic generator (splitmix64) for mixing example pairs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn literal_json(lit: &Literal) -> Json {
    match &lit.kind {
        LiteralKind::Number(n) | LiteralKind::Percent(n) => json!(n),
        LiteralKind::String(s) => json!(s),
        LiteralKind::Bool(b) => json!(b),
        LiteralKind::Name(names) => json!(names.last().map(|n| n.name.clone())),
        LiteralKind::List(items) => Json::Array(items.iter().map(literal_json).collect()),
        LiteralKind::Abstain => Json::Null,
    }
}

/// The policy's examples as JSON pairs (text fields and omitted optionals left out).
fn example_pairs(compiled: &Compiled) -> Vec<Json> {
    let decl = compiled.checked.policy_decl().expect("a policy");
    decl.items
        .iter()
        .filter_map(|i| match i {
            Item::Example(e) => Some(e),
            _ => None,
        })
        .map(|e| {
            let mut pair = Map::new();
            for r in &e.records {
                let record: Map<String, Json> = r
                    .fields
                    .iter()
                    .map(|f| (f.name.name.clone(), literal_json(&f.value)))
                    .collect();
                pair.insert(r.role.name.clone(), Json::Object(record));
            }
            Json::Object(pair)
        })
        .collect()
}

/// The optional fields of each role: (role, field).
fn optional_fields(compiled: &Compiled) -> Vec<(String, String)> {
    let info = compiled.checked.policy.as_ref().expect("policy info");
    let mut out = Vec::new();
    for (role, entity) in &info.roles {
        let def = compiled.checked.program.entity(*entity).expect("entity");
        for f in &def.fields {
            if matches!(f.ty, Type::Optional(_)) {
                out.push((role.clone(), f.name.clone()));
            }
        }
    }
    out
}

/// Pairs near the policy's examples: each field comes from an example, another example, or a
/// generated pair; optionals go missing and sets empty now and then. They reach the
/// combinations (many dimensions abstaining at once, rules on realistic values) that uniformly
/// random pairs rarely do.
fn mixed_pairs(compiled: &Compiled, seed: u64, n: usize) -> Vec<Json> {
    let examples = example_pairs(compiled);
    let mut generator = PairGenerator::new(&compiled.lowered.labeling, seed ^ 0x5eed);
    let mut rng = Rng(seed);
    let info = compiled.checked.policy.as_ref().expect("policy info");
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let random = generator.pair();
        let mut pair = Map::new();
        pair.insert("id".to_string(), json!(format!("mixed-{i:06}")));
        let first = examples.get(rng.below(examples.len()));
        let second = examples.get(rng.below(examples.len()));
        for (role, entity) in &info.roles {
            let def = compiled.checked.program.entity(*entity).expect("entity");
            let mut record = Map::new();
            for f in &def.fields {
                let from = |p: Option<&Json>| p.and_then(|p| p.get(role)?.get(&f.name)).cloned();
                let r = rng.unit();
                let mut value = if r < 0.55 {
                    from(first)
                } else if r < 0.8 {
                    from(second)
                } else {
                    None
                };
                let optional = matches!(f.ty, Type::Optional(_));
                // Examples omit optionals; the generated pair fills required fields they lack.
                if value.is_none() && (!optional || rng.unit() < 0.5) {
                    value = from(Some(&random));
                }
                if optional && rng.unit() < 0.15 {
                    value = None;
                }
                if matches!(f.ty, Type::Set(_) | Type::List(_)) && rng.unit() < 0.1 {
                    value = Some(json!([]));
                }
                if let Some(v) = value {
                    record.insert(f.name.clone(), v);
                }
            }
            pair.insert(role.clone(), Json::Object(record));
        }
        out.push(Json::Object(pair));
    }
    out
}

/// What the pairs exercised, counted from the reference's labels.
#[derive(Debug, Default)]
struct Stats {
    pairs: usize,
    some_dimension_abstained: usize,
    overall_absent: usize,
    some_optional_missing: usize,
    excluded: usize,
    excluded_while_overall_absent: usize,
    capped: usize,
    floored: usize,
    grade_set_by_rule: usize,
    dimension_grade_absent_with_score: usize,
    overall_grade_absent_with_overall: usize,
}

impl Stats {
    fn add(
        &mut self,
        compiled: &Compiled,
        optionals: &[(String, String)],
        pair: &Json,
        label: &RefLabel,
    ) {
        self.pairs += 1;
        let dims_absent = label.dimensions.iter().any(|(_, s)| s.is_none());
        self.some_dimension_abstained += usize::from(dims_absent);
        self.overall_absent += usize::from(label.overall.is_none());
        self.some_optional_missing += usize::from(
            optionals
                .iter()
                .any(|(r, f)| pair.get(r).and_then(|r| r.get(f)).is_none_or(Json::is_null)),
        );
        let excluded = label.overall_grade.as_deref() == Some("excluded");
        self.excluded += usize::from(excluded);
        let decl = compiled.checked.policy_decl().expect("a policy");
        let action = |name: &str| {
            decl.items.iter().find_map(|i| match i {
                Item::Rule(r) if r.name.name == name => Some(r.action.clone()),
                _ => None,
            })
        };
        let fired = |pred: fn(&RuleAction) -> bool| {
            label
                .rules
                .iter()
                .any(|r| action(r).as_ref().is_some_and(pred))
        };
        self.capped += usize::from(fired(|a| matches!(a, RuleAction::Cap(_))));
        self.floored += usize::from(fired(|a| matches!(a, RuleAction::Floor(_))));
        self.grade_set_by_rule += usize::from(fired(|a| matches!(a, RuleAction::SetGrade(_))));
        let scores: std::collections::BTreeMap<&str, Option<f64>> = label
            .dimensions
            .iter()
            .map(|(n, s)| (n.as_str(), *s))
            .collect();
        self.dimension_grade_absent_with_score += usize::from(
            label
                .grades
                .iter()
                .any(|(n, g)| g.is_none() && scores.get(n.as_str()).copied().flatten().is_some()),
        );
        self.overall_grade_absent_with_overall +=
            usize::from(label.overall.is_some() && label.overall_grade.is_none());
        // Excluded while too few dimensions voted for an overall score.
        let voting: f64 = decl
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Dimension(d) => Some(d),
                _ => None,
            })
            .filter(|d| {
                scores
                    .get(d.name.name.as_str())
                    .copied()
                    .flatten()
                    .is_some()
            })
            .map(|d| d.weight)
            .sum();
        let min = compiled
            .checked
            .policy
            .as_ref()
            .map_or(0.5, |p| p.min_coverage);
        self.excluded_while_overall_absent += usize::from(excluded && voting < min - 1e-9);
    }
}

/// Labels the pairs with the engine and the reference; panics with every difference.
fn compare(compiled: &Compiled, pairs: &[Json], what: &str) -> Stats {
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let hash = compiled.lowered.labeling.policy.hash.clone();
    let reference = Reference::new(&compiled.checked);
    let optionals = optional_fields(compiled);
    let engine_out = engine_labels(&engine, pairs);
    let mut stats = Stats::default();
    let mut failures = 0;
    let mut report = String::new();
    // How often each field differs (`dimensions.sets`), over every failing pair.
    let mut fields: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for (pair, got) in pairs.iter().zip(&engine_out) {
        let label = reference.label(&as_read(pair));
        stats.add(compiled, &optionals, pair, &label);
        let want = label.to_json(&hash);
        if *got != want {
            failures += 1;
            for d in differences(got, &want) {
                let field = d.split(' ').next().unwrap_or_default().to_string();
                *fields.entry(field).or_default() += 1;
            }
            if failures <= 5 {
                let _ = writeln!(
                    report,
                    "\n--- pair {}\n{}\n  differs in: {}\n  engine:    {}\n  reference: {}",
                    failures,
                    pair,
                    differences(got, &want).join(", "),
                    got,
                    want
                );
            }
        }
    }
    assert!(
        failures == 0,
        "{what}: the engine and the reference disagree on {failures} of {} pairs, in {fields:?}; \
         the first ones:{report}",
        pairs.len()
    );
    stats
}

/// The fields of two labels that differ: `dimensions.skill_match`, `overall`, `rules`, ...
fn differences(a: &Json, b: &Json) -> Vec<String> {
    let mut out = Vec::new();
    for key in [
        "dimensions",
        "grades",
        "overall",
        "overall_grade",
        "rules",
        "id",
        "policy",
    ] {
        match (a.get(key), b.get(key)) {
            (Some(Json::Object(x)), Some(Json::Object(y))) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                for k in keys {
                    if x.get(k) != y.get(k) {
                        out.push(format!(
                            "{key}.{k} (engine {}, reference {})",
                            x.get(k).map_or("absent".to_string(), Json::to_string),
                            y.get(k).map_or("absent".to_string(), Json::to_string)
                        ));
                    }
                }
            }
            (x, y) if x != y => out.push(format!(
                "{key} (engine {}, reference {})",
                x.map_or("absent".to_string(), Json::to_string),
                y.map_or("absent".to_string(), Json::to_string)
            )),
            _ => {}
        }
    }
    out
}

fn random_pairs(compiled: &Compiled, seed: u64, n: usize) -> Vec<Json> {
    let mut generator = PairGenerator::new(&compiled.lowered.labeling, seed);
    (0..n).map(|_| generator.pair()).collect()
}

/// Runs the differential on generated pairs and on pairs mixed from the examples; returns the
/// counts of each.
fn differential(path: &str, seed: u64) -> (Stats, Stats) {
    let compiled = compile(path);
    let random = random_pairs(&compiled, seed, RANDOM_PAIRS);
    let random_stats = compare(&compiled, &random, &format!("{path} (generated pairs)"));
    let mixed = mixed_pairs(&compiled, seed, MIXED_PAIRS);
    let mixed_stats = compare(
        &compiled,
        &mixed,
        &format!("{path} (pairs mixed from examples)"),
    );
    eprintln!("{path}: generated {random_stats:?}\n{path}: mixed {mixed_stats:?}");
    (random_stats, mixed_stats)
}

/// The generated pairs alone must reach abstaining dimensions and missing optionals.
fn assert_exercised(path: &str, random: &Stats) {
    assert!(random.pairs >= 5_000, "{path}: {random:?}");
    assert!(
        random.some_dimension_abstained > 0,
        "{path}: no dimension abstained: {random:?}"
    );
    assert!(
        random.some_optional_missing > 0,
        "{path}: no optional went missing: {random:?}"
    );
}

#[test]
fn job_match_policy_agrees_with_the_reference() {
    let path = "policies/job_match.policy";
    let (random, mixed) = differential(path, 1);
    assert_exercised(path, &random);
    // For the overall to abstain, skill_match, location, education and title_similarity (55%)
    // must all abstain: about 3 in 100,000 uniformly random pairs, so the pairs mixed from the
    // examples (one of which abstains overall) must reach it.
    assert!(
        random.overall_absent + mixed.overall_absent > 0,
        "{path}: {random:?} {mixed:?}"
    );
    for s in [&random, &mixed] {
        assert!(s.excluded > 0 && s.capped > 0, "{path}: {s:?}");
    }
    assert!(
        random.floored + mixed.floored > 0,
        "{path}: {random:?} {mixed:?}"
    );
    assert!(
        random.grade_set_by_rule + mixed.grade_set_by_rule > 0,
        "{path}: {random:?} {mixed:?}"
    );
    assert!(mixed.excluded_while_overall_absent > 0, "{path}: {mixed:?}");
}

#[test]
fn feed_ranking_policy_agrees_with_the_reference() {
    let path = "policies/feed_ranking.policy";
    let (random, mixed) = differential(path, 2);
    assert_exercised(path, &random);
    assert!(
        random.overall_absent > 0,
        "{path}: the overall never abstained: {random:?}"
    );
    for s in [&random, &mixed] {
        assert!(s.excluded > 0 && s.capped > 0, "{path}: {s:?}");
    }
    assert!(
        random.floored + mixed.floored > 0,
        "{path}: {random:?} {mixed:?}"
    );
    assert!(
        random.grade_set_by_rule + mixed.grade_set_by_rule > 0,
        "{path}: {random:?} {mixed:?}"
    );
    assert!(
        random.excluded_while_overall_absent + mixed.excluded_while_overall_absent > 0,
        "{path}: {random:?} {mixed:?}"
    );
}

#[test]
fn language_sketch_agrees_with_the_reference() {
    let path = "examples/language_sketch/job_match.policy";
    let (random, mixed) = differential(path, 3);
    assert_exercised(path, &random);
    // Only `location` (10% of the weight) can abstain here, and `min_coverage` is the default
    // 50%: the overall score cannot abstain in this policy, so there is nothing to count.
    assert_eq!(random.overall_absent + mixed.overall_absent, 0);
    assert!(random.capped > 0, "{path}: {random:?}");
}

#[test]
fn edge_policy_agrees_with_the_reference() {
    let path = "tests/support/edge.policy";
    let (random, _) = differential(path, 4);
    assert_exercised(path, &random);
    assert!(random.overall_absent > 0, "{path}: {random:?}");
    assert!(
        random.dimension_grade_absent_with_score > 0,
        "{path}: {random:?}"
    );
}

/// A policy without `min_coverage`, whose four dimensions (50%, 25%, 15%, 10%) each abstain on
/// a missing field: voting shares fall below, on and above the default.
const DEFAULT_COVERAGE: &str = "policy half version 1 {
  entity A {
    a: number?
    b: number?
    c: number?
    d: number?
  }
  pair query: A, candidate: A
  dimension big weight 50% { score = if missing(query.a) then abstain else clamp(query.a, 0, 1) }
  dimension mid weight 25% { score = if missing(query.b) then abstain else clamp(query.b, 0, 1) }
  dimension small weight 15% { score = if missing(query.c) then abstain else clamp(query.c, 0, 1) }
  dimension tiny weight 10% { score = if missing(query.d) then abstain else clamp(query.d, 0, 1) }
  grade overall { good when overall >= 0.5  poor otherwise }
}
";

/// Without `min_coverage` the default is 50% of the weight (docs/language.md). The reference
/// holds its own default, so generated pairs below, on and above it must label as the reference
/// says: a changed default (or a strict `>` for the inclusive `>=`) labels some differently.
/// None of the shipped policies leaves `min_coverage` out, so without this test only a
/// snapshot noticed a changed default.
#[test]
fn the_default_min_coverage_of_half_the_weight_is_reached_from_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("half.policy");
    std::fs::write(&path, DEFAULT_COVERAGE).unwrap();
    let compiled = compile(path.to_str().unwrap());
    let pairs = random_pairs(&compiled, 6, RANDOM_PAIRS);
    compare(&compiled, &pairs, "a policy without min_coverage");
    // The voting share of each pair, by the reference's scores; counted below, at and above 50%.
    let reference = Reference::new(&compiled.checked);
    let weights: std::collections::BTreeMap<&str, f64> = compiled
        .lowered
        .labeling
        .dimensions
        .iter()
        .map(|d| (d.name.as_str(), d.weight))
        .collect();
    let total: f64 = weights.values().sum();
    let (mut below, mut at, mut above) = (0, 0, 0);
    for pair in &pairs {
        let label = reference.label(&as_read(pair));
        let voting: f64 = label
            .dimensions
            .iter()
            .filter(|(_, s)| s.is_some())
            .map(|(d, _)| weights[d.as_str()])
            .sum();
        let share = voting / total;
        match share {
            s if (s - 0.5).abs() < 1e-9 => {
                at += 1;
                assert!(label.overall.is_some(), "{share}: {pair}");
            }
            s if s < 0.5 => {
                below += 1;
                assert!(label.overall.is_none(), "{share}: {pair}");
            }
            _ => {
                above += 1;
                assert!(label.overall.is_some(), "{share}: {pair}");
            }
        }
    }
    assert!(
        below > 0 && at > 0 && above > 0,
        "below {below}, at {at}, above {above} of {} pairs",
        pairs.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Hand-written edge cases, on tests/support/edge.policy

/// A `Thing` record: neutral defaults, then the overrides.
fn thing(overrides: Json) -> Json {
    let mut base = json!({
        "n": 1, "d": 1, "flag": false, "name": "x", "tags": [], "nums": [], "items": [],
        "levels": [], "level": "mid", "kind": "a"
    });
    if let (Some(b), Some(o)) = (base.as_object_mut(), overrides.as_object()) {
        for (k, v) in o {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

struct Case {
    name: &'static str,
    query: Json,
    candidate: Json,
    /// (JSON pointer into the label, the value worked out by hand)
    expect: Vec<(&'static str, Json)>,
}

fn case(
    name: &'static str,
    query: Json,
    candidate: Json,
    expect: Vec<(&'static str, Json)>,
) -> Case {
    Case {
        name,
        query: thing(query),
        candidate: thing(candidate),
        expect,
    }
}

fn edge_cases() -> Vec<Case> {
    vec![
        case(
            "a let that divides by zero, unread by the branch taken, does not abstain",
            json!({"n": 3, "d": 0}),
            json!({"d": 0, "flag": true}),
            vec![
                ("/dimensions/lazy_let", json!(0.5)),
                // The band `some` reads the abstaining let: undecided, so no grade.
                ("/grades/lazy_let", Json::Null),
            ],
        ),
        case(
            "a let read where it is defined",
            json!({"n": 1, "d": 4}),
            json!({"n": 1, "d": 0, "flag": true}),
            // r = 0.25; the band `some` reads r > 0 and unused_ratio (1/0, undecided): undecided.
            vec![
                ("/dimensions/lazy_let", json!(0.25)),
                ("/grades/lazy_let", Json::Null),
            ],
        ),
        case(
            "false and U is false; U and false is false; true or U is true",
            json!({"flag": false, "n": 3, "d": 0}),
            json!({"flag": true, "d": 0}),
            vec![
                ("/dimensions/kleene", json!(0.7)),
                ("/grades/kleene", json!("high")),
            ],
        ),
        case(
            "U or true is true",
            json!({"flag": false, "n": 3, "d": 0}),
            json!({"flag": false, "n": 6, "d": 10}),
            vec![("/dimensions/kleene", json!(0.5))],
        ),
        case(
            "true and U is undecided: the chain abstains",
            json!({"flag": true, "n": 3, "d": 0}),
            json!({"flag": false}),
            vec![
                ("/dimensions/kleene", Json::Null),
                ("/grades/kleene", Json::Null),
            ],
        ),
        case(
            "not U is undecided",
            json!({"flag": false, "n": 0, "d": 1}),
            json!({"flag": false, "n": 0, "d": 1}),
            vec![("/dimensions/kleene", Json::Null)],
        ),
        case(
            "every condition decided: otherwise",
            json!({"flag": false, "n": 0, "d": 1}),
            json!({"flag": false, "n": 1, "d": 1}),
            vec![
                ("/dimensions/kleene", json!(0.2)),
                ("/grades/kleene", json!("low")),
            ],
        ),
        case(
            "a call with an abstaining argument abstains, even one the function would not read",
            json!({}),
            json!({"flag": false, "n": 3, "d": 0}),
            vec![("/dimensions/calls", Json::Null)],
        ),
        case(
            "a call whose arguments are all present",
            json!({}),
            json!({"flag": true, "n": 3, "d": 4}),
            vec![("/dimensions/calls", json!(0.75))],
        ),
        case(
            "a score above 1 is clamped to 1, one below 0 to 0",
            json!({"n": 1000}),
            json!({"n": 0}),
            vec![("/dimensions/clamped", json!(1.0))],
        ),
        case(
            "a score below 0 is clamped to 0",
            json!({"n": -1}),
            json!({"n": 0}),
            vec![("/dimensions/clamped", json!(0.0))],
        ),
        case(
            "Unicode lower case",
            json!({"name": "ÜBERALL"}),
            json!({}),
            vec![("/dimensions/strings", json!(1.0))],
        ),
        case(
            "len counts characters, not bytes; a missing label defaults with ??",
            json!({"name": "Ünïc"}),
            json!({"name": "x"}),
            vec![("/dimensions/strings", json!(0.5))],
        ),
        case(
            "substring, with a present label",
            json!({"name": "abc", "label": "b"}),
            json!({"name": "y"}),
            vec![("/dimensions/strings", json!(0.45))],
        ),
        case(
            "a lowered string as a table key: über",
            json!({"name": "abc"}),
            json!({"name": "ÜBER"}),
            // 0.8 × 0.4 + 0.05 (default) × 0.2
            vec![("/dimensions/strings", json!(0.8 * 0.4 + 0.05 * 0.2))],
        ),
        case(
            "sets of numbers are sets: duplicates and order do not count in ==",
            json!({"nums": [1, 1, 2]}),
            json!({"nums": [2, 1], "n": 7}),
            vec![("/dimensions/numbers", json!(1.0))],
        ),
        case(
            "len of a set of numbers ignores duplicates",
            json!({"nums": [3, 3, 3]}),
            json!({"nums": []}),
            vec![("/dimensions/numbers", json!(0.0))],
        ),
        case(
            "intersection of sets of numbers",
            json!({"nums": [1, 2]}),
            json!({"nums": [2, 3], "n": 9}),
            vec![("/dimensions/numbers", json!(0.2))],
        ),
        case(
            "len of a list keeps duplicates; sets of strings and enums",
            json!({"tags": ["a", "b", "a"], "items": ["x", "x", "y"], "levels": ["low", "high", "low"]}),
            json!({"tags": ["b", "c"], "levels": ["low"], "name": "y"}),
            // shared 1 / all 3 + |{a}|/20 + 3/80 + 1/10 + 0.05
            vec![(
                "/dimensions/sets",
                json!(1.0 / 3.0 + 1.0 / 20.0 + 3.0 / 80.0 + 1.0 / 10.0 + 0.05),
            )],
        ),
        case(
            "equal non-empty string sets",
            json!({"tags": ["b", "a", "a"]}),
            json!({"tags": ["a", "b"]}),
            vec![("/dimensions/sets", json!(1.0))],
        ),
        case(
            "no tags anywhere: the sets dimension abstains",
            json!({}),
            json!({"n": 5}),
            vec![("/dimensions/sets", Json::Null)],
        ),
        case(
            "rank of an ordered enum",
            json!({"kind": "a", "level": "high"}),
            json!({}),
            vec![
                ("/dimensions/enums", json!(1.0)),
                ("/grades/enums", json!("top")),
            ],
        ),
        case(
            "an enum-keyed table",
            json!({"kind": "b"}),
            json!({"level": "mid"}),
            vec![("/dimensions/enums", json!(0.6))],
        ),
        case(
            "an unknown key gives the default",
            json!({"kind": "b"}),
            json!({"level": "high"}),
            vec![
                ("/dimensions/enums", json!(0.15)),
                ("/grades/enums", json!("bottom")),
            ],
        ),
        case(
            "a percent key of a number table",
            json!({"kind": "c", "level": "low", "n": 0.5}),
            json!({"level": "high", "kind": "a"}),
            vec![("/dimensions/enums", json!(0.3))],
        ),
        case(
            "a function result above its declared range is clamped to it",
            json!({"n": 1000}),
            json!({"n": 20}),
            vec![("/dimensions/ranged", json!(1.0))],
        ),
        case(
            "a missing optional abstains by the policy's choice",
            json!({}),
            json!({}),
            vec![
                ("/dimensions/optional", Json::Null),
                ("/grades/optional", Json::Null),
            ],
        ),
        case(
            "null is missing too",
            json!({"opt": null, "label": null}),
            json!({}),
            vec![("/dimensions/optional", Json::Null)],
        ),
        case(
            "an overflow to infinity abstains",
            json!({"opt": 1}),
            json!({}),
            vec![("/dimensions/optional", Json::Null)],
        ),
        case(
            "a large but finite product",
            json!({"opt": 1e-301}),
            json!({}),
            vec![
                ("/dimensions/optional", json!(1.0)),
                ("/grades/optional", json!("big")),
            ],
        ),
        case(
            "?? on a missing optional, match on the default",
            json!({"opt": 0}),
            json!({"opt": 0}),
            vec![("/dimensions/optional", json!(0.3))],
        ),
        case(
            "?? on a present optional",
            json!({"opt": 0, "label": "ab"}),
            json!({"opt": 2}),
            vec![("/dimensions/optional", json!(0.0 / 100.0 + 0.01 * 2.0))],
        ),
        case(
            "match on strings",
            json!({}),
            json!({"name": "berlin"}),
            vec![("/dimensions/matching", json!(1.0))],
        ),
        case(
            "match on a percent pattern",
            json!({"n": 0.5}),
            json!({}),
            vec![("/dimensions/matching", json!(0.5))],
        ),
        case(
            "exactly 80% of the weight votes: the overall is computed (min_coverage is strict)",
            // sets (no tags) and optional (missing) abstain: 80% of the weight votes.
            json!({"n": 0}),
            json!({"n": 1}),
            vec![
                ("/dimensions/sets", Json::Null),
                ("/dimensions/optional", Json::Null),
                ("/dimensions/kleene", json!(0.2)),
                ("/dimensions/calls", json!(0.5)),
                // kleene 0.2, calls 0.5, strings 0.5, enums 0.5, ranged 0.05, numbers 1 (both
                // empty): (0.1 × 0.2 + 0.1 × 0.5 × 3 + 0.1 × 0.05 + 0.05 × 1) / 0.8.
                (
                    "/overall",
                    json!((0.02 + 0.05 + 0.05 + 0.05 + 0.005 + 0.05) / 0.8),
                ),
                // `middle`: false and U is false, so `low`.
                ("/overall_grade", json!("low")),
                ("/rules", json!(["low_lazy"])),
            ],
        ),
        case(
            "70% votes: no overall, no grade, no rules",
            // sets, optional and kleene (`not U`: 1 / 0) abstain.
            json!({"n": 0}),
            json!({"n": 0}),
            vec![
                ("/dimensions/kleene", Json::Null),
                ("/dimensions/calls", json!(0.5)),
                ("/overall", Json::Null),
                ("/overall_grade", Json::Null),
                ("/rules", json!([])),
            ],
        ),
        case(
            "exclude applies while the overall abstains",
            json!({"n": 0, "kind": "c"}),
            json!({"n": 0, "kind": "c"}),
            vec![
                ("/dimensions/kleene", Json::Null),
                ("/overall", json!(0.0)),
                ("/overall_grade", json!("excluded")),
                ("/rules", json!(["both_c"])),
            ],
        ),
        case(
            "rules and overall bands reading an abstaining dimension are undecided",
            // optional abstains: optional_low (optional < 0.5) and not_optional_high
            // (not U and true) are undecided and do not fire; floor_sets fires (sets 1, strings
            // 0.5); the band `middle` (overall >= 0.4 and optional >= 0) is undecided: no grade.
            json!({"n": 2, "d": 1, "tags": ["a"]}),
            json!({"n": 0, "d": 1, "tags": ["a"]}),
            vec![
                ("/dimensions/optional", Json::Null),
                ("/dimensions/sets", json!(1.0)),
                ("/rules", json!(["floor_sets"])),
                ("/overall_grade", Json::Null),
            ],
        ),
        case(
            "caps and floors: the lowest cap wins, a lower floor does not lift it; all recorded",
            // mean 0.3981; caps 0.3 (low_lazy), 0.45 (optional_low), 0.5 (not_optional_high);
            // floor 0.28 (floor_sets).
            json!({"n": 0.1, "d": 1, "flag": true, "opt": 0, "tags": ["a"]}),
            json!({"n": 1, "d": 1, "tags": ["a"]}),
            vec![
                ("/dimensions/lazy_let", json!(0.1)),
                ("/dimensions/kleene", json!(0.2)),
                ("/dimensions/optional", json!(0.03)),
                ("/overall", json!(0.3)),
                ("/overall_grade", json!("low")),
                (
                    "/rules",
                    json!([
                        "low_lazy",
                        "optional_low",
                        "not_optional_high",
                        "floor_sets"
                    ]),
                ),
            ],
        ),
        case(
            "a floor lifts a low mean above a cap that does not bite",
            // mean 0.25 / 0.9 (optional abstains); cap 0.3 keeps it; floor 0.28 lifts it.
            json!({"n": 0, "level": "low", "tags": ["a"], "nums": [0]}),
            json!({"n": 0, "d": 1, "tags": ["a"], "flag": true}),
            vec![
                ("/dimensions/numbers", json!(0.6)),
                ("/overall", json!(0.28)),
                ("/overall_grade", json!("low")),
                ("/rules", json!(["low_lazy", "floor_sets"])),
            ],
        ),
        case(
            "set grade replaces a band grade that is absent (undecided)",
            // mean 0.693 / 0.9; `middle` reads the abstaining optional: undecided; set_top fires.
            json!({"flag": true, "n": 3, "d": 1, "level": "high", "name": "Berlin", "tags": ["a"], "nums": [20]}),
            json!({"n": 20, "d": 1, "tags": ["a"]}),
            vec![
                ("/dimensions/kleene", json!(1.0)),
                ("/dimensions/optional", Json::Null),
                ("/overall", json!(0.693 / 0.9)),
                ("/overall_grade", json!("top")),
                ("/rules", json!(["floor_kleene", "floor_sets", "set_top"])),
            ],
        ),
    ]
}

#[test]
fn edge_cases_by_hand() {
    let compiled = compile("tests/support/edge.policy");
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let hash = compiled.lowered.labeling.policy.hash.clone();
    let reference = Reference::new(&compiled.checked);
    let cases = edge_cases();
    let pairs: Vec<Json> = cases
        .iter()
        .enumerate()
        .map(
            |(i, c)| json!({"id": format!("edge-{i}"), "query": c.query, "candidate": c.candidate}),
        )
        .collect();
    let engine_out = engine_labels(&engine, &pairs);
    let mut problems = String::new();
    for ((c, pair), got) in cases.iter().zip(&pairs).zip(&engine_out) {
        let want = reference.label(&as_read(pair)).to_json(&hash);
        // The reference first, against the values worked out by hand. Scores are rounded to
        // six decimals (docs/language.md), so the hand value is too; then within 1e-12: the
        // hand arithmetic is written in another order than the policy computes it (the engine
        // and the reference are compared exactly below).
        for (pointer, expected) in &c.expect {
            let r = want.pointer(pointer).cloned().unwrap_or(Json::Null);
            let close = match (r.as_f64(), expected.as_f64()) {
                (Some(a), Some(b)) => (a - (b * 1e6).round() / 1e6).abs() <= 1e-12,
                _ => r == *expected,
            };
            assert!(
                close,
                "reference, case `{}`, {pointer}: {r}, by hand {expected}\n{pair}\n{want}",
                c.name
            );
        }
        if *got != want {
            let _ = writeln!(
                problems,
                "\n--- case `{}`\n{pair}\n  differs in: {}\n  engine:    {got}\n  reference: {want}",
                c.name,
                differences(got, &want).join(", ")
            );
        }
    }
    assert!(
        problems.is_empty(),
        "the engine disagrees with the reference:{problems}"
    );
}
