//! How long `rubric check` takes on policies of about 300, 3,000 and 30,000 lines: the whole
//! check (`check_source`: parse, resolve, check) and parsing alone (`syntax::parse`), with
//! throughput in lines. The policies are generated here in the shape of
//! `policies/job_match.policy` (documented entities, dimensions, tables, functions, rules with
//! `because`, grade bands and worked examples) and grow linearly: each "unit" adds the same
//! mix of declarations. Every generated policy is asserted to check without errors before any
//! timing. Results and the target (under 20 ms at 3,000 lines, linear) are in BENCHMARKS.md.
//!
//! Run: `cargo bench --bench check -- --warm-up-time 1 --measurement-time 5`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rubric_compiler::diagnostics::render_all;
use rubric_compiler::{ErrorFormat, FileId, Limits, NoModules, Options, check_source, syntax};
use std::fmt::Write as _;
use std::hint::black_box;

/// Half-percent steps in 100%: at most this many dimensions can share it exactly.
const HALF_PERCENTS: usize = 200;

/// Line counts to benchmark.
const SIZES: [usize; 3] = [300, 3_000, 30_000];

/// A 30,000-line policy written like `job_match.policy` (about 50 bytes a line) is larger than
/// the default 1 MiB file limit, so every size is checked with the limit raised to 8 MiB.
fn options() -> Options {
    Options {
        limits: Limits {
            max_file_bytes: 8 * 1024 * 1024,
            ..Limits::default()
        },
    }
}

// ---------------------------------------------------------------------------------------------
// The generator

const INDUSTRIES: [&str; 16] = [
    "software",
    "fintech",
    "banking",
    "insurance",
    "healthcare",
    "biotech",
    "retail",
    "ecommerce",
    "logistics",
    "manufacturing",
    "automotive",
    "aerospace",
    "energy",
    "media",
    "education",
    "government",
];
const SKILLS: [&str; 12] = [
    "rust",
    "postgres",
    "kafka",
    "kubernetes",
    "grpc",
    "python",
    "sql",
    "react",
    "aws",
    "go",
    "java",
    "terraform",
];
const CITIES: [&str; 6] = ["Berlin", "Lisbon", "Paris", "Madrid", "Warsaw", "Dublin"];
const LEVELS: [&str; 6] = ["intern", "junior", "mid", "senior", "lead", "principal"];
const CONTRACTS: [&str; 4] = ["full_time", "part_time", "contract", "internship"];

/// The dimension unit `k` adds, by template: its name and its grade words (best first).
fn dimension_of(k: usize) -> (String, [&'static str; 3]) {
    match k % 4 {
        0 => (format!("measure_{k}"), ["strong", "partial", "weak"]),
        1 => (format!("overlap_{k}"), ["broad", "some", "little"]),
        2 => (format!("level_{k}"), ["exact", "near", "mismatch"]),
        _ => (format!("presence_{k}"), ["workable", "possible", "blocked"]),
    }
}

/// Weights of `n` dimensions in half percents that add up to exactly 100%.
fn weights(n: usize) -> Vec<String> {
    assert!(
        (1..=HALF_PERCENTS).contains(&n),
        "{n} dimensions cannot share 100% in half percents"
    );
    (0..n)
        .map(|i| {
            let halves = HALF_PERCENTS / n + usize::from(i < HALF_PERCENTS % n);
            if halves.is_multiple_of(2) {
                format!("{}%", halves / 2)
            } else {
                format!("{}.5%", halves / 2)
            }
        })
        .collect()
}

/// A valid policy of `units` units and `examples` examples. Each unit adds entity fields, two
/// tables, a function, a dimension and a rule (about 90 lines); each example (about 22 lines)
/// is about the next unit in turn.
fn generate(units: usize, examples: usize) -> String {
    let weights = weights(units);
    let mut s = String::new();
    let w = &mut s;
    writeln!(w, "/// # Generated match policy ({units} units)").unwrap();
    writeln!(w, "///").unwrap();
    writeln!(
        w,
        "/// A benchmark policy in the shape of `policies/job_match.policy`: every unit adds"
    )
    .unwrap();
    writeln!(
        w,
        "/// a measure of fit with its fields, table, function, dimension, rule and examples."
    )
    .unwrap();
    writeln!(w, "policy generated_match version 1 {{").unwrap();
    if units > 1 {
        writeln!(w, "  use std.text.{{coverage, jaccard}}").unwrap();
    }
    if units > 3 {
        writeln!(w, "  use std.num.{{ramp, decay}}").unwrap();
    }
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// Half of the weight must vote for an overall score."
    )
    .unwrap();
    writeln!(w, "  min_coverage 50%").unwrap();
    writeln!(w).unwrap();
    writeln!(w, "  /// The career ladder, lowest first.").unwrap();
    writeln!(w, "  enum Level {{ {} }}", LEVELS.join(" < ")).unwrap();
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// Kinds of contract: different arrangements, not steps on a ladder."
    )
    .unwrap();
    writeln!(w, "  enum Contract {{ {} }}", CONTRACTS.join(", ")).unwrap();
    writeln!(w).unwrap();

    // Entities: a core of fields every example gives, and optional fields for every unit.
    writeln!(w, "  /// ## The job posting").unwrap();
    writeln!(w, "  entity Job {{").unwrap();
    writeln!(
        w,
        "    /// The title as written. Context for the models only."
    )
    .unwrap();
    writeln!(w, "    title: text").unwrap();
    writeln!(
        w,
        "    /// Skills the posting lists as must-haves, normalized."
    )
    .unwrap();
    writeln!(w, "    skills: set<string>").unwrap();
    writeln!(w, "    /// The level the role is hired at.").unwrap();
    writeln!(w, "    level: Level").unwrap();
    writeln!(w, "    /// The hiring company's normalized industry.").unwrap();
    writeln!(w, "    industry: string").unwrap();
    writeln!(
        w,
        "    /// Where the work happens; missing when the recruiter did not say."
    )
    .unwrap();
    writeln!(w, "    location: string?").unwrap();
    writeln!(w, "    /// True for a fully remote role.").unwrap();
    writeln!(w, "    remote: bool").unwrap();
    writeln!(w, "    /// The contract the job offers.").unwrap();
    writeln!(w, "    contract: Contract").unwrap();
    for k in 0..units {
        writeln!(
            w,
            "    /// The minimum of measure {k} the posting asks for; missing when it does not say."
        )
        .unwrap();
        writeln!(w, "    need_{k}: number?").unwrap();
        writeln!(
            w,
            "    /// What the posting says about area {k}, as written. Context only."
        )
        .unwrap();
        writeln!(w, "    note_{k}: text").unwrap();
    }
    writeln!(w, "  }}").unwrap();
    writeln!(w).unwrap();
    writeln!(w, "  /// ## The candidate").unwrap();
    writeln!(w, "  entity Candidate {{").unwrap();
    writeln!(w, "    /// The profile headline. Context only.").unwrap();
    writeln!(w, "    headline: text").unwrap();
    writeln!(w, "    /// Skills on the profile, normalized.").unwrap();
    writeln!(w, "    skills: set<string>").unwrap();
    writeln!(
        w,
        "    /// The level of the current or most recent position."
    )
    .unwrap();
    writeln!(w, "    level: Level").unwrap();
    writeln!(
        w,
        "    /// The normalized industry of the current or most recent employer."
    )
    .unwrap();
    writeln!(w, "    industry: string").unwrap();
    writeln!(
        w,
        "    /// The metro area the member lives in; missing when hidden."
    )
    .unwrap();
    writeln!(w, "    location: string?").unwrap();
    writeln!(w, "    /// True when the member would work fully remotely.").unwrap();
    writeln!(w, "    open_to_remote: bool").unwrap();
    writeln!(w, "    /// The kind of contract the member is looking for.").unwrap();
    writeln!(w, "    preferred: Contract").unwrap();
    writeln!(w, "    /// Days since the member was last active.").unwrap();
    writeln!(w, "    last_active_days: number").unwrap();
    for k in 0..units {
        writeln!(
            w,
            "    /// How much of measure {k} the member has; missing when unknown."
        )
        .unwrap();
        writeln!(w, "    has_{k}: number?").unwrap();
        writeln!(
            w,
            "    /// What the member says about area {k}. Context only."
        )
        .unwrap();
        writeln!(w, "    about_{k}: text").unwrap();
    }
    writeln!(w, "  }}").unwrap();
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// Every judgement is about one job and one candidate."
    )
    .unwrap();
    writeln!(w, "  pair query: Job, candidate: Candidate").unwrap();

    for (k, weight) in weights.iter().enumerate() {
        unit(w, k, weight);
    }

    writeln!(w).unwrap();
    writeln!(w, "  /// What the product surfaces consume.").unwrap();
    writeln!(w, "  grade overall {{").unwrap();
    writeln!(
        w,
        "    excellent when overall >= 0.85  \"a standout match\""
    )
    .unwrap();
    writeln!(w, "    good      when overall >= 0.65  \"a solid match\"").unwrap();
    writeln!(
        w,
        "    fair      when overall >= 0.40  \"a plausible match with clear gaps\""
    )
    .unwrap();
    writeln!(w, "    poor      otherwise             \"not a match\"").unwrap();
    writeln!(w, "  }}").unwrap();
    for i in 0..examples {
        example(w, i % units, i / units, units);
    }
    writeln!(w, "}}").unwrap();
    s
}

fn unit(w: &mut String, k: usize, weight: &str) {
    let (dim, grades) = dimension_of(k);
    let ind = |i: usize| INDUSTRIES[(k + i) % INDUSTRIES.len()];

    // A table of industry affinities.
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// How close two industries are for measure {k}: 1 is the same market, 0 unrelated."
    )
    .unwrap();
    writeln!(w, "  /// Pairs not listed get the default.").unwrap();
    writeln!(
        w,
        "  table affinity_{k}: (string, string) -> number default 0.1 {{"
    )
    .unwrap();
    for i in 0..20 {
        let value = 0.9 - 0.05 * (i % 10) as f64;
        writeln!(
            w,
            "    (\"{}\", \"{}\"): {value:.2},",
            ind(i),
            ind(i + 1 + i % 3)
        )
        .unwrap();
    }
    writeln!(w, "  }}").unwrap();

    // A one-key table.
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// A small bonus for industries where area {k} is in short supply."
    )
    .unwrap();
    writeln!(w, "  table bonus_{k}: string -> number default 0 {{").unwrap();
    for i in 0..5 {
        writeln!(w, "    \"{}\": {:.1},", ind(2 * i), 0.2 * (i + 1) as f64).unwrap();
    }
    writeln!(w, "  }}").unwrap();

    // A function.
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// Share of the needed amount of measure {k} that is there; a need of zero is met."
    )
    .unwrap();
    writeln!(w, "  /// Example: have 3 of 4 gives 0.75.").unwrap();
    writeln!(
        w,
        "  fn fit_{k}(have: number, need: number) -> number in [0, 1] ="
    )
    .unwrap();
    writeln!(
        w,
        "    if need <= 0 then 1.0 else clamp(have / max(need, 0.5), 0, 1)"
    )
    .unwrap();

    // The dimension.
    writeln!(w).unwrap();
    writeln!(w, "  /// ## {dim} ({weight})").unwrap();
    writeln!(w, "  ///").unwrap();
    writeln!(
        w,
        "  /// **What it measures.** How well the candidate fits the posting on area {k}."
    )
    .unwrap();
    writeln!(w, "  ///").unwrap();
    writeln!(
        w,
        "  /// **Why it matters.** Recruiters reject profiles that miss area {k} before they read"
    )
    .unwrap();
    writeln!(
        w,
        "  /// anything else, and members lose trust in recommendations they cannot act on."
    )
    .unwrap();
    writeln!(w, "  ///").unwrap();
    writeln!(
        w,
        "  /// **How it is computed.** From the structured fields of area {k} and the shared"
    )
    .unwrap();
    writeln!(
        w,
        "  /// profile fields; free text is never read. Extra evidence neither helps nor hurts"
    )
    .unwrap();
    writeln!(w, "  /// once the bar is met.").unwrap();
    writeln!(w, "  ///").unwrap();
    writeln!(
        w,
        "  /// **Examples in words.** Meeting the bar scores 1; half of it scores about 0.5."
    )
    .unwrap();
    writeln!(w, "  ///").unwrap();
    writeln!(
        w,
        "  /// **Edge cases.** When the data needed to judge is missing, the dimension abstains"
    )
    .unwrap();
    writeln!(
        w,
        "  /// rather than guess; the other dimensions' weights fill its share."
    )
    .unwrap();
    writeln!(w, "  dimension {dim} weight {weight} {{").unwrap();
    match k % 4 {
        0 => {
            writeln!(w, "    /// The posting's minimum; none counts as zero.").unwrap();
            writeln!(w, "    let need = query.need_{k} ?? 0").unwrap();
            writeln!(w, "    /// What the candidate has; unknown counts as zero.").unwrap();
            writeln!(w, "    let have = candidate.has_{k} ?? 0").unwrap();
            writeln!(w, "    score =").unwrap();
            writeln!(w, "      when missing(query.need_{k}) => abstain").unwrap();
            writeln!(w, "      when have >= need => 1.0").unwrap();
            writeln!(w, "      otherwise => 0.7 * fit_{k}(have, need)").unwrap();
            writeln!(
                w,
                "                   + 0.3 * affinity_{k}[query.industry, candidate.industry]"
            )
            .unwrap();
        }
        1 => {
            writeln!(
                w,
                "    /// Share of the must-have skills the candidate lists."
            )
            .unwrap();
            writeln!(
                w,
                "    let required = coverage(query.skills, candidate.skills)"
            )
            .unwrap();
            writeln!(w, "    score =").unwrap();
            writeln!(w, "      if len(query.skills) == 0 then abstain").unwrap();
            writeln!(
                w,
                "      else 0.6 * required + 0.3 * jaccard(query.skills, candidate.skills)"
            )
            .unwrap();
            writeln!(
                w,
                "           + 0.1 * fit_{k}(candidate.has_{k} ?? 0, query.need_{k} ?? 0)"
            )
            .unwrap();
        }
        2 => {
            writeln!(
                w,
                "    /// Steps between the candidate's level and the role's."
            )
            .unwrap();
            writeln!(w, "    let gap = rank(candidate.level) - rank(query.level)").unwrap();
            writeln!(w, "    score = match gap {{").unwrap();
            writeln!(w, "      0 => 1.0,").unwrap();
            writeln!(w, "      1 | -1 => 0.7,").unwrap();
            writeln!(w, "      2 | -2 => 0.3,").unwrap();
            writeln!(w, "      _ => 0.0").unwrap();
            writeln!(w, "    }}").unwrap();
        }
        _ => {
            writeln!(
                w,
                "    /// Recent activity: 1 today, half after {} days.",
                30 + k % 7
            )
            .unwrap();
            writeln!(
                w,
                "    let activity = decay(candidate.last_active_days, {})",
                30 + k % 7
            )
            .unwrap();
            writeln!(w, "    score =").unwrap();
            writeln!(
                w,
                "      when query.remote and candidate.open_to_remote => 1.0"
            )
            .unwrap();
            writeln!(w, "      when missing(query.location) => 0.5 * activity + 0.5 * ramp(candidate.has_{k} ?? 0, 0, 10)").unwrap();
            writeln!(w, "      when missing(candidate.location) => abstain").unwrap();
            writeln!(
                w,
                "      when candidate.location == query.location => 0.8 + 0.2 * activity"
            )
            .unwrap();
            writeln!(
                w,
                "      otherwise => 0.3 * activity + 0.1 * bonus_{k}[candidate.industry]"
            )
            .unwrap();
        }
    }
    let thresholds = match k % 4 {
        0 => ["0.8", "0.5"],
        1 => ["0.7", "0.4"],
        2 => ["1.0", "0.6"],
        _ => ["0.9", "0.5"],
    };
    writeln!(w, "    grade {{").unwrap();
    writeln!(
        w,
        "      {:<9} when score >= {}  \"fits area {k} well\"",
        grades[0], thresholds[0]
    )
    .unwrap();
    writeln!(
        w,
        "      {:<9} when score >= {}  \"fits area {k} with gaps\"",
        grades[1], thresholds[1]
    )
    .unwrap();
    writeln!(
        w,
        "      {:<9} otherwise          \"does not fit area {k}\"",
        grades[2]
    )
    .unwrap();
    writeln!(w, "    }}").unwrap();
    writeln!(w, "  }}").unwrap();

    // A rule.
    writeln!(w).unwrap();
    writeln!(
        w,
        "  /// A hard constraint on area {k}, applied after the weighted mean."
    )
    .unwrap();
    writeln!(w, "  rule constraint_{k} {{").unwrap();
    match k % 4 {
        0 => {
            writeln!(
                w,
                "    when query.need_{k} ?? 0 > {} and {dim} < 0.3",
                k % 5
            )
            .unwrap();
            writeln!(w, "    cap overall at 0.{}", 5 + k % 3).unwrap();
            writeln!(
                w,
                "    because \"the candidate is far below the minimum for measure {k}\""
            )
            .unwrap();
        }
        1 => {
            writeln!(
                w,
                "    when {dim} >= 0.9 and candidate.last_active_days <= {}",
                60 + k
            )
            .unwrap();
            writeln!(w, "    floor overall at 0.{}", 2 + k % 3).unwrap();
            writeln!(
                w,
                "    because \"an active candidate with nearly every skill for area {k}\""
            )
            .unwrap();
        }
        2 => {
            writeln!(w, "    when query.contract == Contract.internship").unwrap();
            writeln!(
                w,
                "      and candidate.level >= Level.{} and {dim} < 0.{}",
                LEVELS[3 + k % 3],
                1 + k % 5
            )
            .unwrap();
            writeln!(w, "    set grade poor").unwrap();
            writeln!(
                w,
                "    because \"an internship is not a role for a {} professional\"",
                LEVELS[3 + k % 3]
            )
            .unwrap();
        }
        _ => {
            writeln!(
                w,
                "    when not query.remote and missing(candidate.location)"
            )
            .unwrap();
            writeln!(w, "      and candidate.last_active_days > {}", 365 + k).unwrap();
            writeln!(w, "    exclude").unwrap();
            writeln!(
                w,
                "    because \"a dormant profile with no location cannot be placed on site\""
            )
            .unwrap();
        }
    }
    writeln!(w, "  }}").unwrap();
}

fn set(items: impl Iterator<Item = &'static str>) -> String {
    let quoted: Vec<String> = items.map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn example(w: &mut String, k: usize, e: usize, units: usize) {
    let (dim, grades) = dimension_of(k);
    let good = e % 3 != 1;
    {
        let skills =
            |n: usize, from: usize| set((0..n).map(|i| SKILLS[(k + from + i) % SKILLS.len()]));
        let city = CITIES[(k + e) % CITIES.len()];
        let other = CITIES[(k + e + 1) % CITIES.len()];
        let industry = INDUSTRIES[k % INDUSTRIES.len()];
        let next = (k + 1) % units;
        writeln!(w).unwrap();
        writeln!(
            w,
            "  // Unit {k}, {} case. Worked out by hand:",
            if good { "good" } else { "poor" }
        )
        .unwrap();
        writeln!(
            w,
            "  //   {dim}: {} on area {k}",
            if good { "meets the bar" } else { "falls short" }
        )
        .unwrap();
        writeln!(
            w,
            "  //   the other dimensions mostly abstain for lack of data (fields left out)"
        )
        .unwrap();
        writeln!(w, "  //   rules that fire: none for area {k}").unwrap();
        writeln!(
            w,
            "  //   final overall: {}",
            if good { "good or better" } else { "below good" }
        )
        .unwrap();
        writeln!(
            w,
            "  example \"unit {k}, case {e}: {} candidate\" {{",
            if good { "strong" } else { "weak" }
        )
        .unwrap();
        writeln!(w, "    query {{").unwrap();
        writeln!(
            w,
            "      title: \"Engineer for area {k}\", skills: {},",
            skills(3, 0)
        )
        .unwrap();
        writeln!(
            w,
            "      level: {}, industry: \"{industry}\", location: \"{city}\",",
            LEVELS[2 + k % 3]
        )
        .unwrap();
        writeln!(
            w,
            "      remote: {}, contract: {},",
            k.is_multiple_of(3),
            CONTRACTS[k % 4]
        )
        .unwrap();
        writeln!(w, "      need_{k}: {}, need_{next}: 2", 3 + k % 4).unwrap();
        writeln!(w, "    }}").unwrap();
        writeln!(w, "    candidate {{").unwrap();
        writeln!(
            w,
            "      headline: \"Candidate {e} for area {k}\", skills: {},",
            skills(if good { 3 } else { 1 }, e)
        )
        .unwrap();
        writeln!(
            w,
            "      level: {}, industry: \"{industry}\",",
            LEVELS[if good { 2 + k % 3 } else { k % 2 }]
        )
        .unwrap();
        writeln!(
            w,
            "      location: \"{}\", open_to_remote: {good},",
            if good { city } else { other }
        )
        .unwrap();
        writeln!(
            w,
            "      preferred: {}, last_active_days: {},",
            CONTRACTS[k % 4],
            if good { 3 } else { 400 }
        )
        .unwrap();
        writeln!(
            w,
            "      has_{k}: {}, about_{k}: \"worked on area {k}\"",
            if good { 9 } else { 0 }
        )
        .unwrap();
        writeln!(w, "    }}").unwrap();
        writeln!(
            w,
            "    expect {dim}.grade == {}",
            if good { grades[0] } else { grades[2] }
        )
        .unwrap();
        if good {
            writeln!(w, "    expect overall >= 0.65").unwrap();
        } else {
            writeln!(w, "    expect overall < 0.65").unwrap();
        }
        writeln!(w, "    expect rule constraint_{k} does not fire").unwrap();
        writeln!(w, "  }}").unwrap();
    }
}

/// A valid policy of about `lines` lines (at least two units, three examples a unit), and its
/// exact line count.
fn policy_of_about(lines: usize) -> (String, usize) {
    let count = |units, examples| generate(units, examples).lines().count() as f64;
    let per_unit = count(3, 0) - count(2, 0);
    let per_example = count(2, 1) - count(2, 0);
    let fixed = count(2, 0) - 2.0 * per_unit;
    let target = lines as f64;
    let units = ((target - fixed) / (per_unit + 3.0 * per_example))
        .round()
        .clamp(2.0, HALF_PERCENTS as f64);
    let examples = ((target - fixed - units * per_unit) / per_example)
        .round()
        .max(units);
    let text = generate(units as usize, examples as usize);
    let n = text.lines().count();
    (text, n)
}

fn assert_valid(text: &str, lines: usize) {
    let checked = check_source("generated.policy", text, &mut NoModules, &options());
    assert!(
        !checked.has_errors(),
        "the generated policy of {lines} lines does not check:\n{}",
        render_all(
            &checked.diagnostics,
            &checked.sources,
            ErrorFormat::Human,
            100,
            false
        )
    );
    if !checked.diagnostics.is_empty() {
        eprintln!(
            "note: the generated policy of {lines} lines has {} warnings",
            checked.diagnostics.len()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmarks

fn check(c: &mut Criterion) {
    let policies: Vec<(String, usize)> = SIZES.iter().map(|&n| policy_of_about(n)).collect();
    for (text, lines) in &policies {
        assert_valid(text, *lines);
        eprintln!("generated policy: {lines} lines, {} bytes", text.len());
        // To look at them: RUBRIC_BENCH_DUMP=some/dir cargo bench --bench check
        if let Some(dir) = std::env::var_os("RUBRIC_BENCH_DUMP") {
            let path = std::path::Path::new(&dir).join(format!("generated_{lines}.policy"));
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
    }
    let options = options();

    let mut group = c.benchmark_group("check");
    for (text, lines) in &policies {
        group.throughput(Throughput::Elements(*lines as u64));
        group.bench_with_input(BenchmarkId::from_parameter(lines), text, |b, text| {
            b.iter(|| {
                check_source(
                    "generated.policy",
                    black_box(text),
                    &mut NoModules,
                    &options,
                )
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse");
    for (text, lines) in &policies {
        group.throughput(Throughput::Elements(*lines as u64));
        group.bench_with_input(BenchmarkId::from_parameter(lines), text, |b, text| {
            b.iter(|| syntax::parse(FileId(0), black_box(text), &options.limits));
        });
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
