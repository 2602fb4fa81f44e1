//! The limits hold without crashing: nesting at the limit checks on an ordinary 2 MiB test
//! thread; past it, and for 100,000 nested parentheses or a 10 MB line, a diagnostic comes
//! back instead of a stack overflow.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::{Code, Limits, NoModules, Options, check_source};

const BASE: &str = r#"policy p version 1 {
  entity A { x: number  flag: bool }
  pair query: A, candidate: A
  dimension d weight 100% { score = SCORE }
  grade overall { good when overall >= 0.5  poor otherwise }
}
"#;

fn check_with(score: &str, limits: Limits) -> Vec<Code> {
    let text = BASE.replace("SCORE", score);
    let checked = check_source("limits.policy", &text, &mut NoModules, &Options { limits });
    checked.diagnostics.iter().map(|d| d.code).collect()
}

fn check(score: &str) -> Vec<Code> {
    check_with(score, Limits::default())
}

/// Runs `f` on a thread with the stack an ordinary test thread has.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("no crash")
}

#[test]
fn nesting_at_the_limit_checks_on_a_small_stack() {
    let parens = format!("{}0.5{}", "(".repeat(250), ")".repeat(250));
    assert_eq!(on_small_stack(move || check(&parens)), vec![]);
    let ifs: String = (0..250)
        .map(|i| format!("if query.x > {i} then 0.5 else "))
        .collect::<String>()
        + "0.0";
    assert_eq!(on_small_stack(move || check(&ifs)), vec![]);
    let nots = format!("if {}query.flag then 1.0 else 0.0", "not ".repeat(250));
    assert_eq!(on_small_stack(move || check(&nots)), vec![]);
    let sum = format!("clamp({}, 0, 1)", vec!["query.x"; 250].join(" + "));
    assert_eq!(on_small_stack(move || check(&sum)), vec![]);
    let matches: String = (0..120)
        .map(|_| "match query.x { 0 => ".to_string())
        .collect::<String>()
        + "0.5"
        + &", _ => 0.0 }".repeat(120);
    assert_eq!(on_small_stack(move || check(&matches)), vec![]);
}

#[test]
fn a_hundred_thousand_nested_parentheses_are_a_diagnostic() {
    let deep = format!("{}0.5{}", "(".repeat(100_000), ")".repeat(100_000));
    assert_eq!(
        on_small_stack(move || check(&deep)),
        vec![Code::SyntaxTooDeep]
    );
}

#[test]
fn long_chains_past_the_limit_are_a_diagnostic() {
    let nots = format!("if {}query.flag then 1.0 else 0.0", "not ".repeat(5_000));
    assert_eq!(
        on_small_stack(move || check(&nots)),
        vec![Code::SyntaxTooDeep]
    );
    let sum = format!("clamp({}, 0, 1)", vec!["query.x"; 5_000].join(" + "));
    assert_eq!(
        on_small_stack(move || check(&sum)),
        vec![Code::SyntaxTooDeep]
    );
    let ifs: String = (0..5_000)
        .map(|i| format!("if query.x > {i} then 0.5 else "))
        .collect::<String>()
        + "0.0";
    assert_eq!(
        on_small_stack(move || check(&ifs)),
        vec![Code::SyntaxTooDeep]
    );
}

#[test]
fn a_ten_megabyte_line_is_a_diagnostic() {
    // Past the default size limit: refused before parsing.
    let line = format!("clamp({}, 0, 1)", vec!["query.x"; 1_300_000].join(" + "));
    assert!(line.len() > 10_000_000);
    let line2 = line.clone();
    assert_eq!(
        on_small_stack(move || check(&line)),
        vec![Code::SyntaxTooLarge]
    );
    // With the size limit raised, the nesting limit still holds.
    let raised = Limits {
        max_file_bytes: 64 * 1024 * 1024,
        ..Limits::default()
    };
    assert_eq!(
        on_small_stack(move || check_with(&line2, raised)),
        vec![Code::SyntaxTooDeep]
    );
    // A 10 MB string literal is just long.
    let long = format!(
        "if query.flag then 1.0 else 0.0 // {}\n",
        "x".repeat(10_000_000)
    );
    assert_eq!(on_small_stack(move || check_with(&long, raised)), vec![]);
}
