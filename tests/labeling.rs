//! The labeling engine on malformed input: each kind of bad row gives the documented error (line
//! and field) or, with a quarantine, is set aside; rows in = labeled + quarantined, always. And
//! the output does not depend on the thread count or batch size.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::label::engine::Engine;
use rubric_runtime::label::{LabelError, LabelOptions, LabelSummary, label_stream};
use rubric_runtime::random_pairs::PairGenerator;
use std::io::Cursor;
use std::path::Path;

fn engine() -> Engine {
    let compiled = compile_file(Path::new("policies/job_match.policy"), &Options::default())
        .expect("compiles");
    Engine::new(compiled.lowered.labeling)
}

fn run(
    engine: &Engine,
    input: &str,
    quarantine: bool,
    batch_rows: usize,
) -> (Result<LabelSummary, LabelError>, String, String) {
    let mut out = Vec::new();
    let mut q = Vec::new();
    let result = label_stream(
        engine,
        &mut Cursor::new(input.as_bytes()),
        &mut out,
        if quarantine { Some(&mut q) } else { None },
        LabelOptions {
            batch_rows,
            ..LabelOptions::default()
        },
        &mut |_| {},
    );
    (
        result,
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&q).into_owned(),
    )
}

fn good_rows(engine: &Engine, n: usize, seed: u64) -> Vec<String> {
    let mut g = PairGenerator::new(&engine.program, seed);
    (0..n).map(|_| g.pair().to_string()).collect()
}

/// A valid row with one field replaced (`role.field` = raw JSON), or removed (`None`).
fn edited(engine: &Engine, role: &str, field: &str, raw: Option<&str>) -> String {
    let mut pair = PairGenerator::new(&engine.program, 99).pair();
    let record = pair[role].as_object_mut().expect("role object");
    match raw {
        Some(r) => {
            record.insert(
                field.to_string(),
                serde_json::from_str(r).expect("valid JSON value"),
            );
        }
        None => {
            record.remove(field);
        }
    }
    pair.to_string()
}

#[test]
fn each_kind_of_bad_row_names_its_line_and_field() {
    let e = engine();
    let good = good_rows(&e, 3, 1);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "{\"id\": \"x\", \"query\": ".to_string(),
            "",
            "not valid JSON",
        ),
        ("[1, 2]".to_string(), "", "expected an object, found a list"),
        (
            "{\"query\": {}, \"candidate\": {}}".to_string(),
            "id",
            "missing: every pair needs an `id`",
        ),
        (
            edited(&e, "candidate", "years_experience", Some("\"nine\"")),
            "candidate.years_experience",
            "expected a number, found the string \"nine\"",
        ),
        (
            edited(&e, "candidate", "skills", Some("[\"rust\", 42]")),
            "candidate.skills[1]",
            "expected a string, found the number 42",
        ),
        (
            edited(&e, "query", "remote", None),
            "query.remote",
            "missing: a required `bool`",
        ),
        (
            edited(&e, "query", "seniority", Some("\"wizard\"")),
            "query.seniority",
            "`wizard` is not a value of `Seniority`",
        ),
        (
            edited(&e, "candidate", "skills", Some("\"rust\"")),
            "candidate.skills",
            "expected a list, found the string \"rust\"",
        ),
        (
            "{\"id\": \"x\", \"query\": 3, \"candidate\": {}}".to_string(),
            "query",
            "expected an object, found the number 3",
        ),
    ];
    for (row, field, message) in &cases {
        let input = format!("{}\n{}\n{}\n", good[0], good[1], row);
        let (result, out, _) = run(&e, &input, false, 2);
        match result {
            Err(LabelError::Row(err)) => {
                assert_eq!(err.line, 3, "{row}");
                assert_eq!(err.path, *field, "{row}");
                assert!(err.message.contains(message), "{row}: {}", err.message);
            }
            other => panic!("{row}: expected a row error, got {other:?}"),
        }
        // The rows before it were labeled and written.
        assert_eq!(out.lines().count(), 2, "{row}");
    }
}

#[test]
fn quarantine_sets_bad_rows_aside_and_counts_reconcile() {
    let e = engine();
    let mut rows = good_rows(&e, 500, 2);
    let bad = [
        "not json".to_string(),
        edited(&e, "query", "seniority", Some("\"wizard\"")),
        edited(&e, "candidate", "years_experience", Some("null")),
        format!(
            "{{\"id\": \"huge\", \"query\": \"{}\"}}",
            "x".repeat(17 * 1024 * 1024)
        ),
    ];
    for (i, b) in bad.iter().enumerate() {
        rows.insert(i * 100 + 7, b.clone());
    }
    rows.insert(50, String::new()); // a blank line is not a row
    let input = rows.join("\n") + "\n";
    let (result, out, quarantined) = run(&e, &input, true, 64);
    let summary = result.expect("quarantine keeps going");
    assert_eq!(summary.rows, 504);
    assert_eq!(summary.quarantined, 4);
    assert_eq!(summary.labeled, 500);
    assert_eq!(summary.blank, 1);
    assert_eq!(summary.rows, summary.labeled + summary.quarantined);
    assert_eq!(out.lines().count(), 500);
    let q: Vec<serde_json::Value> = quarantined
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(q.len(), 4);
    assert!(
        q[3]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("more than the limit"),
        "{}",
        q[3]["error"]
    );
    assert_eq!(q[1]["field"], "query.seniority");
    assert_eq!(q[2]["field"], "candidate.years_experience");
    // Labels come out in input order.
    let ids: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("JSON")["id"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
}

#[test]
fn output_is_the_same_for_any_batch_size_and_thread_count() {
    let e = engine();
    let input = good_rows(&e, 3000, 3).join("\n") + "\n";
    let (a, out_a, _) = run(&e, &input, false, 8192);
    let (b, out_b, _) = run(&e, &input, false, 7);
    let single = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("pool");
    let (c, out_c, _) = single.install(|| run(&e, &input, false, 100));
    assert_eq!(a.expect("ok"), b.expect("ok"));
    assert!(c.is_ok());
    assert_eq!(out_a, out_b);
    assert_eq!(out_a, out_c);
}

#[test]
fn the_label_writer_writes_what_label_json_gives() {
    use rubric_runtime::label::batch::PairBatch;
    use rubric_runtime::label::decode::Decoder;
    use rubric_runtime::label::engine::{Ctx, Events, Labels};
    use rubric_runtime::label::value::Interner;
    use rubric_runtime::label::{LabelWriter, label_json};
    for policy in ["policies/job_match.policy", "policies/feed_ranking.policy"] {
        let compiled = compile_file(Path::new(policy), &Options::default()).expect("compiles");
        let e = Engine::new(compiled.lowered.labeling);
        let writer = LabelWriter::new(&e);
        let decoder = Decoder::new(&e.program);
        let mut strings = Interner::new(&e.strings);
        let mut events = Events::new(e.program.dimensions.len());
        let rows = good_rows(&e, 2000, 11);
        let mut batch = PairBatch::new(&e.program);
        for (i, row) in rows.iter().enumerate() {
            let mut pair = decoder
                .decode(i as u64 + 1, row, &mut strings)
                .expect("valid");
            // Ids that need escaping, too.
            if i % 7 == 0 {
                pair.id = format!("{}\"\\\n\u{1}é", pair.id);
            }
            batch.push(&pair);
        }
        let mut labels = Labels::default();
        e.label_batch(
            &batch,
            &mut Ctx::new(&mut strings, &mut events, None),
            &mut labels,
        );
        assert_eq!(labels.len(), rows.len());
        for (label, row) in labels.iter().zip(&rows) {
            let mut line = String::new();
            writer.write(&mut line, label);
            assert_eq!(
                line,
                label_json(&e, &label.to_label()).to_string(),
                "{policy}: {row}"
            );
        }
    }
}

#[test]
fn a_row_that_is_not_utf8_is_a_bad_row_not_the_end_of_the_stream() {
    let engine = engine();
    let rows = good_rows(&engine, 3, 8);
    let mut input: Vec<u8> = Vec::new();
    input.extend_from_slice(rows[0].as_bytes());
    input.extend_from_slice(b"\n{\"id\": \"\xff\xfe\"}\n");
    input.extend_from_slice(rows[1].as_bytes());
    input.push(b'\n');
    let label = |quarantine: bool| {
        let mut out = Vec::new();
        let mut q = Vec::new();
        let result = label_stream(
            &engine,
            &mut Cursor::new(&input[..]),
            &mut out,
            if quarantine { Some(&mut q) } else { None },
            LabelOptions::default(),
            &mut |_| {},
        );
        (
            result,
            String::from_utf8_lossy(&out).into_owned(),
            String::from_utf8_lossy(&q).into_owned(),
        )
    };
    let (result, out, _) = label(false);
    match result {
        Err(LabelError::Row(e)) => {
            assert_eq!(e.line, 2);
            assert!(e.message.starts_with("not valid UTF-8"), "{e}");
        }
        other => panic!("expected a row error, got {other:?}"),
    }
    // The row before it was labeled and written.
    assert_eq!(out.lines().count(), 1);
    let (result, out, q) = label(true);
    let summary = result.expect("quarantined");
    assert_eq!(
        (summary.rows, summary.labeled, summary.quarantined),
        (3, 2, 1)
    );
    assert_eq!(out.lines().count(), 2);
    assert!(
        q.contains("\"line\":2") && q.contains("not valid UTF-8"),
        "{q}"
    );
}

/// The excluded grade is the program's, not a name the runtime knows: labels print what the
/// lowered IR says (`overall.excluded_grade`).
#[test]
fn labels_name_excluded_pairs_by_the_programs_excluded_grade() {
    let golden: String = std::fs::read_to_string("examples/job_match/data/golden.jsonl")
        .unwrap()
        .lines()
        .take(400)
        .map(|l| format!("{l}\n"))
        .collect();
    let (_, as_lowered, _) = run(&engine(), &golden, false, 64);
    let excluded = as_lowered.matches("\"overall_grade\":\"excluded\"").count();
    assert!(excluded > 0, "the golden set has excluded pairs");

    let compiled =
        compile_file(Path::new("policies/job_match.policy"), &Options::default()).unwrap();
    let mut program = compiled.lowered.labeling;
    program.overall.excluded_grade = "removed".to_string();
    let (_, renamed, _) = run(&Engine::new(program), &golden, false, 64);
    assert_eq!(
        renamed.matches("\"overall_grade\":\"removed\"").count(),
        excluded
    );
    assert_eq!(renamed.matches("\"overall_grade\":\"excluded\"").count(), 0);
}

/// A row over the size limit is never held whole: it is a bad row, quarantined with a preview
/// of its first bytes and its length, and the rows around it are labeled.
#[test]
fn an_oversize_row_is_quarantined_with_a_preview_and_its_length() {
    let golden: Vec<String> = std::fs::read_to_string("examples/job_match/data/golden.jsonl")
        .unwrap()
        .lines()
        .take(3)
        .map(str::to_string)
        .collect();
    let huge = format!("{{\"id\": \"big\", \"pad\": \"{}\"}}", "x".repeat(50_000));
    let input = format!("{}\n{huge}\n{}\n", golden[0], golden[1]);
    let mut out = Vec::new();
    let mut q = Vec::new();
    let summary = label_stream(
        &engine(),
        &mut Cursor::new(input.as_bytes()),
        &mut out,
        Some(&mut q),
        LabelOptions {
            max_row_bytes: 10_000,
            batch_bytes: 1,
            ..LabelOptions::default()
        },
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        (summary.rows, summary.labeled, summary.quarantined),
        (3, 2, 1)
    );
    let entry: serde_json::Value =
        serde_json::from_slice(q.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(entry["line"], 2);
    let error = entry["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("{} bytes", huge.len() + 1)),
        "{error}"
    );
    assert!(entry["row"].as_str().unwrap().len() <= rubric_runtime::label::ROW_PREVIEW);
    assert!(
        entry["row"]
            .as_str()
            .unwrap()
            .starts_with("{\"id\": \"big\"")
    );
}

/// A number past the largest float inside a dimension (`x * 10 - x * 10` with x = 1e308) makes
/// it abstain, and the abstention is counted as an undefined result, as a division by zero is
/// (it abstained silently).
#[test]
fn an_overflow_inside_a_dimension_is_counted() {
    let text = "policy p version 1 {\n  entity A { x: number }\n  pair query: A, candidate: A\n  \
                dimension d weight 100% { score = clamp(query.x * 10 - query.x * 10 + 0.5, 0, 1) }\n  \
                grade overall { good when overall >= 0.5  poor otherwise }\n}\n";
    let checked = rubric_compiler::check_source(
        "p.policy",
        text,
        &mut rubric_compiler::NoModules,
        &Options::default(),
    );
    let compiled = rubric_runtime::compile::compile_checked(checked).unwrap();
    let engine = Engine::new(compiled.lowered.labeling);
    let input = "{\"id\":\"huge\",\"query\":{\"x\":1e308},\"candidate\":{\"x\":1}}\n\
                 {\"id\":\"fine\",\"query\":{\"x\":2},\"candidate\":{\"x\":1}}\n";
    let (summary, labels, _) = run(&engine, input, false, 64);
    let summary = summary.unwrap();
    assert_eq!(summary.labeled, 2);
    assert_eq!(summary.events.undefined, vec![1], "the overflow is counted");
    let lines: Vec<serde_json::Value> = labels
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines[0]["dimensions"]["d"].is_null(), "{}", lines[0]);
    assert_eq!(lines[1]["dimensions"]["d"], 0.5);
}

/// A quarantined row that is not UTF-8 keeps its exact bytes (`row_base64`) beside the
/// readable preview, whose bad bytes are replaced: it can be recovered byte for byte.
#[test]
fn a_quarantined_row_that_is_not_utf8_keeps_its_exact_bytes() {
    let bad: &[u8] = b"{\"id\": \"caf\xE9\"}";
    let mut input = bad.to_vec();
    input.push(b'\n');
    let mut out = Vec::new();
    let mut q = Vec::new();
    let summary = label_stream(
        &engine(),
        &mut Cursor::new(input),
        &mut out,
        Some(&mut q),
        LabelOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(summary.quarantined, 1);
    let entry: serde_json::Value = serde_json::from_slice(q.trim_ascii_end()).unwrap();
    assert_eq!(entry["row"], "{\"id\": \"caf\u{FFFD}\"}");
    assert_eq!(
        entry["row_base64"],
        rubric_runtime::label::exact_bytes(bad),
        "the exact bytes"
    );
    assert_eq!(entry["row_base64"], "eyJpZCI6ICJjYWbpIn0=");
}
