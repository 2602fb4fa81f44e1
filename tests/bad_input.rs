//! Bad input is the normal case: no input makes `rubric check` panic, hang or print without
//! bound. A diagnostic on a line longer than 65,535 columns (miette's formatting panicked), a
//! hundred thousand unclosed `(`, and a hundred thousand stray `)` each give diagnostics, a
//! bounded output and exit 1.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

fn check(text: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.policy");
    std::fs::write(&path, text).unwrap();
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .arg("check")
        .arg(&path)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn assert_diagnosed(o: &Output, what: &str) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("panicked"),
        "{what}: {}",
        &err[..err.len().min(2000)]
    );
    assert_eq!(o.status.code(), Some(1), "{what}");
    assert!(
        err.len() < 200_000,
        "{what}: {} bytes of diagnostics",
        err.len()
    );
    err
}

#[test]
fn a_diagnostic_past_column_65535_is_shown_cut_around_its_span() {
    let policy = format!(
        "policy p version 1 {{ entity A {{ x: number }} pair query: A, candidate: A \
         dimension d weight 100% {{ score = 1 }}{} dimension e weight 0% {{ score = 1 }} }}\n",
        " ".repeat(70_000)
    );
    let err = assert_diagnosed(&check(&policy), "a long line");
    assert!(err.contains("rubric::check::weight_range"), "{err}");
    assert!(err.contains('…'), "the line is cut: {err}");
    assert!(err.len() < 5_000, "{} bytes", err.len());
}

#[test]
fn a_hundred_thousand_unclosed_parentheses_are_a_diagnostic() {
    let policy = format!("policy p version 1 {{ {}}}\n", "(".repeat(100_000));
    assert_diagnosed(&check(&policy), "unclosed parentheses");
}

#[test]
fn a_hundred_thousand_stray_parentheses_show_a_hundred_diagnostics_and_count_the_rest() {
    let policy = format!("policy p version 1 {{ {}}}\n", ")".repeat(100_000));
    let err = assert_diagnosed(&check(&policy), "stray parentheses");
    assert!(
        err.contains("... and 99900 more diagnostics not shown"),
        "{}",
        &err[err.len().saturating_sub(500)..]
    );
    assert!(
        err.contains("100000 errors"),
        "the summary still counts them all"
    );
}

/// Each function's body is checked once per view of its arguments, not once per call: thirty
/// functions each calling the previous one twice made 2^30 evaluations (25 levels took 195 s).
/// The limit below is a hang detector, not a performance target (it finishes in milliseconds).
#[test]
fn a_chain_of_functions_each_calling_the_previous_twice_checks_without_blowing_up() {
    let mut fns = vec!["  fn g0(a: number) -> number = a".to_string()];
    for i in 1..=30 {
        fns.push(format!(
            "  fn g{i}(a: number) -> number = g{}(a) + g{}(a)",
            i - 1,
            i - 1
        ));
    }
    let policy = format!(
        "policy p version 1 {{\n  entity A {{ x: number }}\n  pair query: A, candidate: A\n{}\n  \
         dimension d weight 100% {{ score = clamp(g30(query.x), 0, 1) }}\n  \
         grade overall {{ good when overall >= 0.5  poor otherwise }}\n}}\n",
        fns.join("\n")
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.policy");
    std::fs::write(&path, policy).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .arg("check")
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        if start.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            panic!("checking 30 chained functions did not finish in 2 minutes");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A policy past the size limit is never read whole: `/dev/zero` and a 4 GB sparse file each
/// give `too_large` at once (the sparse file with its real size).
#[test]
fn a_policy_past_the_size_limit_is_not_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let sparse = dir.path().join("huge.policy");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(4 << 30)
        .unwrap();
    for (path, says) in [
        (sparse.as_path(), "this file is 4294967296 bytes"),
        (std::path::Path::new("/dev/zero"), "reading stopped there"),
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_rubric"))
            .arg("check")
            .arg(path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains("rubric::syntax::too_large") && err.contains(says),
            "{err}"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args([
            "trace",
            "--policy",
            "policies/job_match.policy",
            "--pair",
            "@/dev/zero",
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("more than 16777216 bytes"));
}

/// Errors name the right thing: a byte-order mark opening a pairs file is not an error, a
/// directory given as `--pairs` says so, and a full device names the output.
#[test]
fn label_errors_name_the_file_that_failed() {
    let dir = tempfile::tempdir().unwrap();
    let golden = std::fs::read_to_string("examples/job_match/data/golden.jsonl").unwrap();
    let pairs = dir.path().join("bom.jsonl");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(
        golden
            .lines()
            .take(2)
            .flat_map(|l| format!("{l}\n").into_bytes()),
    );
    std::fs::write(&pairs, bytes).unwrap();
    let label = |pairs: &std::path::Path, out: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_rubric"))
            .args(["label", "--policy", "policies/job_match.policy", "--pairs"])
            .arg(pairs)
            .arg("--out")
            .arg(out)
            .output()
            .unwrap()
    };
    let o = label(&pairs, &dir.path().join("labels.jsonl"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("labeled 2 of 2 rows"));

    let o = label(dir.path(), &dir.path().join("x.jsonl"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is a directory; --pairs takes a file"),
        "{err}"
    );

    let o = label(&pairs, std::path::Path::new("/dev/full"));
    assert_ne!(o.status.code(), Some(0));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("cannot write `/dev/full`: No space left"),
        "{err}"
    );
}

/// Cleaning reads its log in several passes: a stream is refused by name, not blamed on the
/// policy ("`policies/job_match.policy`: the input changed while cleaning").
#[test]
fn cleaning_a_stream_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args([
            "data",
            "clean",
            "--pipeline",
            "policies/job_match.policy",
            "--clicks",
            "/dev/stdin",
            "--out",
        ])
        .arg(dir.path().join("out.jsonl"))
        .arg("--report")
        .arg(dir.path().join("report.json"))
        .stdin(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("`/dev/stdin` is a stream"), "{err}");
    assert!(!err.contains("job_match.policy"), "{err}");
}

/// A name of 30,000 letters referred to by one of 29,999 (the language server fuzz target's
/// long texts): the suggestion's edit distance took 30,000 × 30,000 steps (2.6 s in release),
/// and each message printed the names whole. Suggestions are for names up to 64 letters, and
/// long words are cut in every message, label and help.
#[test]
fn a_huge_name_gets_a_short_diagnostic_at_once() {
    let (a, b) = ("y".repeat(30_000), "y".repeat(29_999));
    let policy = format!(
        "policy p version 1 {{\n  entity A {{ {a}: number }}\n  pair query: A, candidate: A\n  \
         dimension d weight 100% {{ score = clamp(query.{b}, 0, 1) }}\n  \
         grade overall {{ good when overall >= 0.5  poor otherwise }}\n}}\n"
    );
    let err = assert_diagnosed(&check(&policy), "a huge name");
    assert!(err.contains("rubric::resolve::unknown_field"), "{err}");
    assert!(err.contains('…'), "{err}");
    assert!(err.len() < 5_000, "{} bytes", err.len());
}
