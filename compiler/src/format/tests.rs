//! The formatter's tests: every shipped and corpus file keeps its meaning, comments, docs and
//! diagnostics and formats idempotently; the canonical text ignores layout; literals, precedence
//! and comments in every position.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every shipped and corpus `.policy` file, by its path under the repository.
fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in [
        "policies",
        "stdlib/std",
        "examples/language_sketch",
        "tests/corpus",
    ] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "policy"))
            .collect();
        paths.sort();
        for p in paths {
            let name = format!("{dir}/{}", p.file_name().unwrap().to_string_lossy());
            // The corpus's file that is not UTF-8 is the checker's (`syntax::not_utf8`).
            if let Ok(text) = std::fs::read_to_string(&p) {
                out.push((name, text));
            }
        }
    }
    assert!(
        out.len() > 100,
        "the corpus is missing: {} files",
        out.len()
    );
    out
}

fn parse_tree(text: &str) -> Option<SourceTree> {
    syntax::parse(FileId(0), text, &Limits::default()).tree
}

fn fmt(text: &str) -> String {
    format_source(text).expect("the input parses")
}

fn comment_texts(tree: &SourceTree) -> Vec<String> {
    tree.comments
        .iter()
        .map(|c| c.text.trim_end().to_string())
        .collect()
}

fn doc_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("///"))
        .map(|l| {
            let body = l.trim_start_matches("///");
            body.strip_prefix(' ')
                .unwrap_or(body)
                .trim_end()
                .to_string()
        })
        .collect()
}

fn imports_only_std(tree: &SourceTree) -> bool {
    tree.items.iter().all(|item| {
        let items = match item {
            TopItem::Policy(p) => &p.items,
            TopItem::Module(m) => &m.items,
            TopItem::Pipeline(_) => return true,
        };
        items.iter().all(|i| match i {
            Item::Use(u) => u.path.raw.starts_with("std."),
            _ => true,
        })
    })
}

fn codes(name: &str, text: &str) -> Vec<&'static str> {
    let checked = crate::check_source(name, text, &mut crate::NoModules, &Default::default());
    let mut codes: Vec<&'static str> = checked
        .diagnostics
        .iter()
        .map(|d| d.code.as_str())
        .collect();
    codes.sort_unstable();
    codes
}

#[test]
fn format_keeps_meaning_comments_docs_and_diagnostics_and_is_idempotent() {
    let mut formatted_files = 0;
    let mut failures = Vec::new();
    for (name, text) in files() {
        let Some(tree) = parse_tree(&text) else {
            continue;
        };
        formatted_files += 1;
        let once = format_tree(&tree, &text);
        let Some(again) = parse_tree(&once) else {
            failures.push(format!(
                "{name}: the formatted text does not parse:\n{once}"
            ));
            continue;
        };
        let twice = format_tree(&again, &once);
        if twice != once {
            failures.push(format!(
                "{name}: formatting twice changes the text:\n{}",
                first_difference(&once, &twice)
            ));
        }
        if canonical(&tree) != canonical(&again) {
            failures.push(format!(
                "{name}: the meaning changed:\n{}",
                first_difference(&canonical(&tree), &canonical(&again))
            ));
        }
        // (Only statements the layout reorders, such as a `score` above a `let`, could carry
        // their comments out of order; no file here has one.)
        if comment_texts(&tree) != comment_texts(&again) {
            failures.push(format!("{name}: comments lost, duplicated or out of order"));
        }
        if doc_lines(&text) != doc_lines(&once) {
            failures.push(format!("{name}: docs changed"));
        }
        if format_source(&text.replace('\n', "\r\n")).as_deref() != Some(once.as_str()) {
            failures.push(format!("{name}: Windows line ends format differently"));
        }
        if once.lines().any(|l| l.ends_with(' ')) {
            failures.push(format!("{name}: trailing spaces"));
        }
        if imports_only_std(&tree) && codes(&name, &text) != codes(&name, &once) {
            failures.push(format!(
                "{name}: diagnostics changed: {:?} became {:?}",
                codes(&name, &text),
                codes(&name, &once)
            ));
        }
    }
    assert!(formatted_files > 60, "only {formatted_files} files parse");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn canonical_text_is_a_fixpoint_and_ignores_layout() {
    for (name, text) in files() {
        let Some(tree) = parse_tree(&text) else {
            continue;
        };
        let c = canonical(&tree);
        let reparsed = parse_tree(&c).unwrap_or_else(|| panic!("{name}: canonical text:\n{c}"));
        assert_eq!(canonical(&reparsed), c, "{name}");
        assert!(!c.contains("//"), "{name}: comments in the canonical text");
    }
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n- {x}\n+ {y}", i + 1);
        }
    }
    format!("lengths {} and {}", a.lines().count(), b.lines().count())
}

#[test]
fn a_messy_policy_gets_the_canonical_layout() {
    let before = r#"// header comment

policy   p version 1 {
use std.text.{coverage ,jaccard,}
  use std.num.{ramp}
entity Job { title: text, skills: set<string>  // the skills
loc: string? }
enum Level{low<mid<high}
enum Kind { a , b,c, }
pair query:Job,candidate:Job
min_coverage 50.0%
table t: (string,string) -> number default 0.20 { ("a","b"):0.5, ("c", "d") : 1.0 }
fn f(x: number) -> number in [0, 1.0] = clamp(x,0,1)
fn long_function_name(first_argument: number, second_argument: number) -> number in [0, 1] = clamp(first_argument * second_argument, 0, 1)
dimension d weight 40.0% { grade { strong when score>=0.80 "a" weak otherwise "b" } score = when x => 1.0 otherwise => 0.50
let x = (a + b) * 2 }



rule r { when a.b and c.d   // why c
or e exclude because "x" }
rule r2 {
  when query.remote and (candidate.x or candidate.y) and not missing(query.location) and len(query.s) > 2
  cap overall at 30%
  because "say \"hi\"\t"
}
  grade overall { good when overall >= 0.5 poor otherwise }
example "e" { query { a: 1, b: "x", c: [1,2] } candidate { a: 1, b: "a very long string that goes on", c: ["aaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"], d: true }
expect overall >= 85% expect d.grade == strong expect rule r does not fire expect x == abstain }
}
pipeline pp for p { monitor { alert p99_latency > 1000ms alert x < 70% }
data { golden "a.jsonl" clean { drop duplicates on a,b drop bots when x>3 } mix real 30% synthetic 70% split validation 10% seed 7 }
student { model encoder {layers 2, hidden 128} distill policy weight 0.6 loss mse distill click weight 0.4 loss bce temperature 2 train { lr 0.00003 } }
teacher policy { model init "m" predicts dimensions, overall loss mse }
quantize int8 { prune heads below 0.01 }
}
"#;
    let after = r#"// header comment

policy p version 1 {
  use std.text.{coverage, jaccard}
  use std.num.{ramp}

  entity Job {
    title: text
    skills: set<string>  // the skills
    loc: string?
  }

  enum Level { low < mid < high }

  enum Kind { a, b, c }

  pair query: Job, candidate: Job

  min_coverage 50%

  table t: (string, string) -> number default 0.20 {
    ("a", "b"): 0.5,
    ("c", "d"): 1.0,
  }

  fn f(x: number) -> number in [0, 1] = clamp(x, 0, 1)

  fn long_function_name(first_argument: number, second_argument: number) -> number in [0, 1] =
    clamp(first_argument * second_argument, 0, 1)

  dimension d weight 40% {
    let x = (a + b) * 2
    score =
      when x => 1.0
      otherwise => 0.50
    grade {
      strong when score >= 0.80  "a"
      weak   otherwise           "b"
    }
  }

  rule r {
    when a.b and c.d  // why c
      or e
    exclude
    because "x"
  }

  rule r2 {
    when query.remote
      and (candidate.x or candidate.y)
      and not missing(query.location)
      and len(query.s) > 2
    cap overall at 30%
    because "say \"hi\"\t"
  }

  grade overall {
    good when overall >= 0.5
    poor otherwise
  }

  example "e" {
    query { a: 1, b: "x", c: [1, 2] }
    candidate {
      a: 1,
      b: "a very long string that goes on",
      c: ["aaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"],
      d: true,
    }
    expect overall >= 85%
    expect d.grade == strong
    expect rule r does not fire
    expect x == abstain
  }
}

pipeline pp for p {
  data {
    golden "a.jsonl" clean {
      drop duplicates on a, b
      drop bots when x > 3
    }
    mix real 30% synthetic 70%
    split validation 10% seed 7
  }
  teacher policy {
    model init "m"
    predicts dimensions, overall
    loss mse
  }
  student {
    model encoder { layers 2, hidden 128 }
    distill policy weight 0.6 loss mse
    distill click  weight 0.4 loss bce temperature 2
    train { lr 3e-5 }
  }
  quantize int8 { prune heads below 0.01 }
  monitor {
    alert p99_latency > 1000ms
    alert x < 70%
  }
}
"#;
    assert_eq!(fmt(before), after);
    assert_eq!(fmt(after), after);
}

#[test]
fn comments_stay_where_they_are_and_blank_lines_shrink_to_one() {
    let before = "policy p version 1 {
  entity Job {
    a: text // first


    b: number       // second
    // about c
    c: string?
  }
  // closing note
}
";
    let after = "policy p version 1 {
  entity Job {
    a: text  // first

    b: number  // second
    // about c
    c: string?
  }
  // closing note
}
";
    assert_eq!(fmt(before), after);
}

#[test]
fn expressions_keep_the_authors_parentheses_and_break_where_they_must() {
    let before = "policy p version 1 {
  dimension d weight 100% {
    let a = ((x)) + (y * 2)
    let b = if a > 1 then 1 else if a > 0.5 then 0.5 else 0
    let c = match rank(query.s) { 0 => 1.0, 1 | 2 => 0.6, _ => 0.0 }
    let d = if query.some_long_field_name == candidate.some_other_long_field then 1.0 else candidate.x / 2
    let e = -(x) - -1 + not_a ?? 3
    score = clamp(some_function_with_a_long_name(query.first_field, candidate.second_field) * 0.5 + 0.25, 0, 1)
  }
  rule r { when a // why a
  and b exclude because \"x\" }
  rule s { when (a or b) and not (c and d) floor overall at 0.5 because \"y\" }
}
pipeline pp for p { monitor { alert p99 > 1000ms alert p50 > 2s alert x > 0.5s } student { train { lr 0.00003, warmup 1e3, time 90s } } }
";
    let after = "policy p version 1 {
  dimension d weight 100% {
    let a = ((x)) + (y * 2)
    let b = if a > 1 then 1 else if a > 0.5 then 0.5 else 0
    let c = match rank(query.s) { 0 => 1.0, 1 | 2 => 0.6, _ => 0.0 }
    let d =
      if query.some_long_field_name == candidate.some_other_long_field then 1.0 else candidate.x / 2
    let e = -(x) - -1 + not_a ?? 3
    score =
      clamp(some_function_with_a_long_name(query.first_field, candidate.second_field) * 0.5 + 0.25,
            0,
            1)
  }

  rule r {
    when a  // why a
      and b
    exclude
    because \"x\"
  }

  rule s {
    when (a or b) and not (c and d)
    floor overall at 0.5
    because \"y\"
  }
}

pipeline pp for p {
  student {
    train { lr 3e-5, warmup 1000, time 90s }
  }
  monitor {
    alert p99 > 1000ms
    alert p50 > 2s
    alert x > 0.5s
  }
}
";
    assert_eq!(fmt(before), after);
}

#[test]
fn long_enums_tables_and_documented_values_take_one_line_each() {
    let before = "/// Docs of the module.
module team.skills {
  /// Alias.
  table alias: string -> string default \"\" { \"js\": \"javascript\", \"ts\": \"typescript\" }
  /// A long enum.
  enum Industry { software, internet, cybersecurity, fintech, gaming, edtech, ecommerce, telecommunications }
  enum L {
    /// lowest
    a < b
  }
  dimension d weight 10% { score = match x { 0 => 1, _ => 0 } }
}
";
    let after = "/// Docs of the module.
module team.skills {
  /// Alias.
  table alias: string -> string default \"\" {
    \"js\": \"javascript\",
    \"ts\": \"typescript\",
  }

  /// A long enum.
  enum Industry {
    software,
    internet,
    cybersecurity,
    fintech,
    gaming,
    edtech,
    ecommerce,
    telecommunications,
  }

  enum L {
    /// lowest
    a <
    b
  }

  dimension d weight 10% {
    score = match x { 0 => 1, _ => 0 }
  }
}
";
    assert_eq!(fmt(before), after);
}

#[test]
fn canonical_text_ignores_layout_comments_docs_and_redundant_parentheses() {
    let a = "/// A policy.\npolicy p version 1 {\n  dimension d weight 100% {\n    // why\n    score = (a + b) * c + (d * e)\n  }\n}\n";
    let b = "policy p version 1 { dimension d weight 100% { score = ((a + b)) * c + d * e } }";
    let c = "policy p version 1 { dimension d weight 100% { score = a + b * c + d * e } }";
    let canon = |t: &str| canonical(&parse_tree(t).unwrap());
    assert_eq!(canon(a), canon(b));
    assert_ne!(canon(a), canon(c));
    assert_eq!(
        canon(a),
        "policy p version 1 {\n  dimension d weight 100% {\n    score = (a + b) * c + d * e\n  }\n}\n"
    );
    // Numbers that read the same are the same.
    assert_eq!(
        canon("policy p version 1 { min_coverage 50.0% fn f() -> number = 0.50 + 1.0 }"),
        canon("policy p version 1 { min_coverage 50% fn f() -> number = 0.5 + 1 }"),
    );
}

#[test]
fn parentheses_are_added_where_precedence_needs_them() {
    // The canonical text drops the author's parentheses and puts back only the needed ones.
    for (text, expected) in [
        ("(a or b) and c", "(a or b) and c"),
        ("a or (b and c)", "a or b and c"),
        ("not (a == b)", "not a == b"),
        ("not (a and b)", "not (a and b)"),
        ("(not a) == b", "(not a) == b"),
        ("a == (not b)", "a == not b"),
        ("(a == not b) and c", "a == not b and c"),
        ("(a == (not b)) == c", "(a == not b) == c"),
        ("a - (b - c)", "a - (b - c)"),
        ("(a - b) - c", "a - b - c"),
        ("(a ?? b) ?? c", "(a ?? b) ?? c"),
        ("a ?? (b ?? c)", "a ?? b ?? c"),
        ("-(a * b)", "-(a * b)"),
        ("(-a) * b", "-a * b"),
        ("(if a then b else c) + 1", "(if a then b else c) + 1"),
        ("1 + (if a then b else c)", "1 + if a then b else c"),
        ("(a & b) | c", "a & b | c"),
        ("a & (b | c)", "a & (b | c)"),
    ] {
        let policy = format!("policy p version 1 {{ fn f() -> bool = {text} }}");
        let c = canonical(&parse_tree(&policy).unwrap());
        let expected = format!("policy p version 1 {{\n  fn f() -> bool = {expected}\n}}\n");
        assert_eq!(c, expected, "{text}");
    }
}

#[test]
fn one_expression_or_pipeline_prints_alone_without_comments() {
    let text = "policy p version 1 {
  dimension d weight 100% {
    score = when a // why
      => (1.0)
      otherwise => 0.50 * (b + c)
  }
}
/// Docs of the pipeline.
pipeline pp for p { monitor { alert click_auc < 0.70 } // low
}
";
    let tree = parse_tree(text).unwrap();
    let (Some(TopItem::Policy(policy)), Some(TopItem::Pipeline(pipeline))) =
        (tree.items.first(), tree.items.get(1))
    else {
        panic!("{tree:?}")
    };
    let Some(Item::Dimension(d)) = policy.items.first() else {
        panic!("{policy:?}")
    };
    let score = &d.score.first().unwrap().value;
    assert_eq!(
        format_expr(score, text),
        "when a => (1.0)\notherwise => 0.50 * (b + c)"
    );
    assert_eq!(
        format_pipeline(pipeline, text),
        "pipeline pp for p {\n  monitor {\n    alert click_auc < 0.70\n  }\n}"
    );
}

#[test]
fn a_match_of_four_arms_or_more_takes_one_line_an_arm() {
    let before = "policy p version 1 {
  fn f(x: number) -> number = match x { 0 => 1.0, 1 => 0.5, _ => 0.0 }
  fn g(x: number) -> number = match x { 0 => 1.0, 1 => 0.6, 2 => 0.2, _ => 0.0 }
}
";
    let after = "policy p version 1 {
  fn f(x: number) -> number = match x { 0 => 1.0, 1 => 0.5, _ => 0.0 }

  fn g(x: number) -> number =
    match x {
      0 => 1.0,
      1 => 0.6,
      2 => 0.2,
      _ => 0.0,
    }
}
";
    assert_eq!(fmt(before), after);
    let tree = |t: &str| parse_tree(t).unwrap();
    assert_eq!(canonical(&tree(before)), canonical(&tree(after)));
    assert!(canonical(&tree(after)).contains("match x { 0 => 1, 1 => 0.6, 2 => 0.2, _ => 0 }"));
}

#[test]
fn decimals_keep_their_trailing_zeros_and_other_spellings_take_one_form() {
    let before = "policy p version 1 { fn f() -> number = 1.0 + 0.40 + 1.50 + 0.00003 + 1e3 + 2.5e0 + 007
  rule r { when a cap overall at 0.30 because \"x\" }
  rule s { when a floor overall at 30.0% because \"x\" } }
pipeline pp for p { student { train { lr 0.00100, warmup 1e3 } } monitor { alert click_auc < 0.70 } }
";
    let after = "policy p version 1 {
  fn f() -> number = 1.0 + 0.40 + 1.50 + 3e-5 + 1000 + 2.5 + 7

  rule r {
    when a
    cap overall at 0.30
    because \"x\"
  }

  rule s {
    when a
    floor overall at 30%
    because \"x\"
  }
}

pipeline pp for p {
  student {
    train { lr 0.00100, warmup 1000 }
  }
  monitor {
    alert click_auc < 0.70
  }
}
";
    assert_eq!(fmt(before), after);
    assert_eq!(fmt(after), after);
    assert!(with_trailing_zeros("1.0", "1"));
    assert!(with_trailing_zeros("0.40", "0.4"));
    assert!(!with_trailing_zeros("0.4", "0.4"));
    assert!(!with_trailing_zeros("10", "1"));
    assert!(!with_trailing_zeros("0.00003", "3e-5"));
}

#[test]
fn literals_read_back_identically() {
    for v in [
        0.0,
        1.0,
        0.85,
        3e-5,
        1e-4,
        0.1 + 0.2,
        1e21,
        123456.789,
        2.5e-10,
    ] {
        assert_eq!(number(v).parse::<f64>().unwrap(), v, "{v}");
    }
    assert_eq!(number(3e-5), "3e-5");
    assert_eq!(number(1.0), "1");
    for v in [0.4, 0.07, 0.125, 0.333, 1.0, 0.001, 0.0, 1e-7] {
        let p = percent(v);
        assert_eq!(p.parse::<f64>().unwrap() / 100.0, v, "{v}");
    }
    assert_eq!(percent(0.4), "40");
    assert_eq!(percent(0.07), "7");
    assert_eq!(percent(0.125), "12.5");
    assert_eq!(duration(20.0, None), "20ms");
    assert_eq!(duration(1000.0, None), "1s");
    assert_eq!(duration(1000.0, Some("ms")), "1000ms");
    assert_eq!(duration(0.5, None), "500us");
    assert_eq!(duration(300_000.0, None), "5min");
    assert_eq!(quote("say \"hi\"\\\n\t"), r#""say \"hi\"\\\n\t""#);
}

#[test]
fn deep_expressions_format_without_overflowing() {
    let depth = 200;
    let parens = format!("{}1{}", "(".repeat(depth), ")".repeat(depth));
    let nots = format!("{}true", "not ".repeat(depth));
    let sum = vec!["x"; depth].join(" + ");
    let ands = vec!["a"; depth].join(" and ");
    for body in [parens, nots, sum, ands] {
        let text = format!("policy p version 1 {{ fn f(x: number) -> number = {body} }}");
        assert_properties("deep", &text);
    }
}

#[test]
fn text_that_does_not_parse_is_not_formatted() {
    assert_eq!(format_source("policy p version 1 { dimension }"), None);
    assert_eq!(format_source(""), Some(String::new()));
    assert_eq!(
        format_source("// only a comment"),
        Some("// only a comment\n".to_string())
    );
}

/// Byte offsets of the blanks between tokens: outside strings, comments and docs.
fn gaps(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            match c {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else if c == b'"' {
            in_string = true;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            // To the end of the line, whose line break is not a gap: a comment there would
            // join the comment or doc.
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b' ' || c == b'\n' {
            out.push(i);
        }
        i += 1;
    }
    out
}

/// Checks the properties on a text that parses: idempotent, same meaning, same comments.
fn assert_properties(name: &str, text: &str) {
    let tree = parse_tree(text).unwrap();
    let once = format_tree(&tree, text);
    let again = parse_tree(&once)
        .unwrap_or_else(|| panic!("{name}: the formatted text does not parse:\n{once}"));
    let twice = format_tree(&again, &once);
    assert!(
        twice == once,
        "{name}: formatting twice changes the text:\n{}\n\n{once}",
        first_difference(&once, &twice)
    );
    assert_eq!(
        canonical(&tree),
        canonical(&again),
        "{name}: meaning changed"
    );
    let (before, after) = (comment_texts(&tree), comment_texts(&again));
    if before != after {
        let at = before
            .iter()
            .zip(&after)
            .take_while(|(a, b)| a == b)
            .count();
        panic!(
            "{name}: comments lost, duplicated or out of order from {:?} / {:?} on:\n{once}",
            before.get(at),
            after.get(at)
        );
    }
}

#[test]
fn comments_anywhere_between_tokens_survive_and_formatting_stays_idempotent() {
    let mut variants = 0;
    for (name, text) in files() {
        if parse_tree(&text).is_none() {
            continue;
        }
        let gaps = gaps(&text);
        let stride = 3;
        for variant in 0..stride {
            let mut out = String::with_capacity(text.len() * 2);
            let mut last = 0;
            for (k, &at) in gaps
                .iter()
                .enumerate()
                .filter(|(k, _)| k % stride == variant)
            {
                out.push_str(&text[last..at]);
                // Trailing, on its own line, after a blank line, before a blank line.
                out.push_str(&match (k / stride) % 4 {
                    0 => format!(" // c{k}\n"),
                    1 => format!("\n// c{k}\n"),
                    2 => format!("\n\n// c{k}\n"),
                    _ => format!(" // c{k}\n\n"),
                });
                last = at;
            }
            out.push_str(&text[last..]);
            if parse_tree(&out).is_none() {
                continue;
            }
            variants += 1;
            assert_properties(&format!("{name} (comments, variant {variant})"), &out);
        }
    }
    assert!(variants > 150, "only {variants} variants parse");
}

/// The text with every run of blanks between tokens made one space, except the line breaks
/// that end comments and docs and the blanks in front of comments.
fn collapse_blanks(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let mut in_string = false;
    let mut after_comment = false;
    while i < b.len() {
        let c = b[i];
        if in_string {
            out.push(c);
            match c {
                b'\\' => {
                    out.push(b[i + 1]);
                    i += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                out.push(b[i]);
                i += 1;
            }
            after_comment = true;
        } else if c.is_ascii_whitespace() {
            let start = i;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'/') {
                out.extend_from_slice(&b[start..i]);
            } else if after_comment {
                out.push(b'\n');
            } else {
                out.push(b' ');
            }
            after_comment = false;
        } else {
            in_string = c == b'"';
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn without_blank_lines(text: &str) -> String {
    text.lines()
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn layout_does_not_depend_on_the_authors_line_breaks() {
    for (name, text) in files() {
        let Some(tree) = parse_tree(&text) else {
            continue;
        };
        let collapsed = collapse_blanks(&text);
        let Some(flat) = parse_tree(&collapsed) else {
            panic!("{name}: collapsed text does not parse:\n{collapsed}");
        };
        assert_eq!(
            without_blank_lines(&format_tree(&flat, &collapsed)),
            without_blank_lines(&format_tree(&tree, &text)),
            "{name}"
        );
    }
}
