//! `rubric data clean` end to end: it catches the simulator's injected bots and outliers
//! (precision and recall against the ground truth), rows in = kept + dropped + quarantined
//! always, every rule kind of `feed_ranking`'s clean block on a hand-made log (report snapshot),
//! and bad rows (malformed, out of order, unknown ids) stop with file, line and field or go to
//! the quarantine. The reconciliation property runs from a pinned seed (`support/seeded.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::random_pairs::PairGenerator;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn read_json_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

struct Cleaned {
    output: Output,
    report: Value,
    kept: Vec<String>,
    dropped: Vec<Value>,
    quarantine: Vec<Value>,
}

fn clean(dir: &Path, pipeline: &str, clicks: &Path, extra: &[&str]) -> Cleaned {
    let out = dir.join("clean.jsonl");
    let report = dir.join("report.json");
    let dropped = dir.join("dropped.jsonl");
    let quarantine = dir.join("quarantine.jsonl");
    let _ = std::fs::remove_file(&report);
    let _ = std::fs::remove_file(&quarantine);
    let mut args = vec![
        "data",
        "clean",
        "--pipeline",
        pipeline,
        "--clicks",
        clicks.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--dropped",
        dropped.to_str().unwrap(),
    ];
    let q = format!("--quarantine={}", quarantine.display());
    if extra.contains(&"quarantine") {
        args.push(&q);
    }
    args.extend(extra.iter().filter(|a| **a != "quarantine"));
    let output = rubric(&args);
    let report = std::fs::read_to_string(&report)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap_or(Value::Null);
    let kept = std::fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    Cleaned {
        output,
        report,
        kept,
        dropped: read_json_lines(&dropped),
        quarantine: read_json_lines(&quarantine),
    }
}

/// rows in = kept + dropped + quarantined, in the report and in the files written.
fn assert_reconciles(c: &Cleaned) {
    let rows = &c.report["rows"];
    let n = |k: &str| rows[k].as_u64().unwrap();
    assert_eq!(
        n("in"),
        n("kept") + n("dropped") + n("quarantined"),
        "{rows}"
    );
    assert_eq!(n("kept"), c.kept.len() as u64);
    assert_eq!(n("dropped"), c.dropped.len() as u64);
    assert_eq!(n("quarantined"), c.quarantine.len() as u64);
    let by_rule: u64 = c.report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["dropped"].as_u64().unwrap())
        .sum();
    assert_eq!(by_rule, n("dropped"));
}

fn write_pairs(dir: &Path, n: usize) -> PathBuf {
    let compiled = compile_file(Path::new("policies/job_match.policy"), &Options::default())
        .expect("compiles");
    let mut g = PairGenerator::new(&compiled.lowered.labeling, 3);
    let mut text = String::new();
    for i in 0..n {
        let mut pair = g.pair();
        pair["query_id"] = format!("q-{}", i / 12).into();
        pair["candidate_id"] = format!("c-{i}").into();
        text.push_str(&pair.to_string());
        text.push('\n');
    }
    let path = dir.join("pairs.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn catches_the_simulated_bots_and_outliers() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write_pairs(dir.path(), 240);
    let log = dir.path().join("clicks.jsonl");
    let truth = dir.path().join("truth.jsonl");
    let o = rubric(&[
        "data",
        "clicks",
        "--policy",
        "policies/job_match.policy",
        "--pairs",
        pairs.to_str().unwrap(),
        "--seed",
        "21",
        "--sessions",
        "1500",
        "--bot-share",
        "0.03",
        "--outlier-share",
        "0.01",
        "--out",
        log.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let c = clean(
        dir.path(),
        "policies/job_match.policy",
        &log,
        &["--pairs", pairs.to_str().unwrap()],
    );
    assert!(c.output.status.success(), "{}", stderr(&c.output));
    assert_reconciles(&c);
    assert!(stderr(&c.output).contains("cleaned `clicks` of pipeline `job_match_v1`"));

    let mut truth_by_kind: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for f in read_json_lines(&truth) {
        truth_by_kind
            .entry(f["kind"].as_str().unwrap().to_string())
            .or_default()
            .insert(f["line"].as_u64().unwrap());
    }
    let mut dropped_by_rule: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for d in &c.dropped {
        dropped_by_rule
            .entry(d["rule"].as_str().unwrap().to_string())
            .or_default()
            .insert(d["line"].as_u64().unwrap());
    }
    for (rule, kind) in [("bots", "bot"), ("outliers", "outlier")] {
        let truth = &truth_by_kind[kind];
        let caught = dropped_by_rule.get(rule).cloned().unwrap_or_default();
        let hits = caught.intersection(truth).count() as f64;
        let precision = hits / caught.len().max(1) as f64;
        let recall = hits / truth.len() as f64;
        assert!(truth.len() >= 10, "{kind}: only {} injected", truth.len());
        assert!(
            precision >= 0.95 && recall >= 0.95,
            "{rule}: precision {precision:.3}, recall {recall:.3} ({} injected, {} dropped)",
            truth.len(),
            caught.len()
        );
    }
}

fn click(q: &str, c: &str, secs: f64, position: u32, clicked: bool, session: &str) -> Value {
    // 2026-11-01T08:00:00Z plus `secs` (all within the day).
    let ms = (8.0 * 3600.0 * 1000.0 + secs * 1000.0).round() as u64;
    let ts = format!(
        "2026-11-01T{:02}:{:02}:{:02}.{:03}Z",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
    let mut v = json!({
        "query_id": q, "candidate_id": c, "ts": ts,
        "position": position, "clicked": clicked, "session": session,
    });
    if clicked {
        v["dwell_seconds"] = json!(20.0 + (secs as u64 % 7) as f64 * 5.0);
    }
    v
}

/// A hand-made log with one of everything `feed_ranking`'s clean block drops, and three bad rows.
fn hand_made_log() -> Vec<String> {
    let mut rows: Vec<String> = Vec::new();
    for s in 0..40u32 {
        let session = format!("h-{s:02}");
        let start = f64::from(s) * 600.0;
        for k in 0..6u32 {
            let mut v = click(
                &format!("q-{}", s % 5),
                &format!("c-{s}-{k}"),
                start + f64::from(k) * 3.0,
                k + 1,
                k % 3 == 0,
                &session,
            );
            if s == 3 && k == 3 {
                v["dwell_seconds"] = json!(90_000.0); // a tab left open for a day
            }
            rows.push(v.to_string());
            if s == 5 && k == 1 {
                rows.push(v.to_string()); // logged twice
            }
        }
        if s == 7 {
            let v = click("q-2", "c-7-x", start + 30.0, 500, false, &session);
            rows.push(v.to_string()); // a position no list has
        }
        if s == 10 {
            let v = click("q-0", "c-10-late", start - 100.0, 2, false, &session);
            rows.push(v.to_string()); // earlier than the session's last row
        }
    }
    for k in 0..60u32 {
        let v = click(
            "q-1",
            &format!("c-bot-{k}"),
            30_000.0 + f64::from(k) * 0.5,
            k % 10 + 1,
            true,
            "b-1",
        );
        rows.push(v.to_string());
    }
    rows.insert(3, "{\"query_id\": \"q-0\", \"candidate_id\": ".to_string());
    rows.insert(
        20,
        json!({"query_id": "q-0", "candidate_id": "c-x", "ts": "2026-11-01T08:00:00Z", "position": 1})
            .to_string(),
    );
    rows
}

#[test]
fn every_rule_kind_on_a_hand_made_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("clicks.jsonl");
    let rows = hand_made_log();
    std::fs::write(&log, rows.join("\n") + "\n\n").unwrap();
    let c = clean(
        dir.path(),
        "policies/feed_ranking.policy",
        &log,
        &["quarantine"],
    );
    assert_eq!(c.output.status.code(), Some(1), "{}", stderr(&c.output));
    assert_reconciles(&c);
    let rules: BTreeMap<String, u64> = c.dropped.iter().fold(BTreeMap::new(), |mut m, d| {
        *m.entry(d["rule"].as_str().unwrap().to_string())
            .or_default() += 1;
        m
    });
    // The bot's 60 rows; one outlier dwell and one position 500 (the 0.99 quantile is an exact
    // data value: every position 6 is kept); one duplicate.
    assert_eq!(
        rules,
        BTreeMap::from([
            ("bots".to_string(), 60),
            ("duplicates".to_string(), 1),
            ("outliers".to_string(), 2),
        ])
    );
    assert!(
        c.kept
            .iter()
            .filter(|l| l.contains("\"position\":6"))
            .count()
            == 40
    );
    assert_eq!(
        c.quarantine
            .iter()
            .map(|q| (q["line"].as_u64().unwrap(), q["field"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(4, ""), (21, "clicked"), (71, "ts")]
    );
    let redacted = |text: String| {
        let mut report: Value = serde_json::from_str(&text).unwrap();
        report["policy"] = json!("[policy hash]");
        report["input_sha256"] = json!("[input hash]");
        serde_json::to_string_pretty(&report).unwrap()
    };
    let report = redacted(std::fs::read_to_string(dir.path().join("report.json")).unwrap());
    let summary = stderr(&c.output).replace(&dir.path().display().to_string(), "[dir]");
    let quarantine = std::fs::read_to_string(dir.path().join("quarantine.jsonl")).unwrap();
    insta::with_settings!({snapshot_path => "snapshots/data_clean", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("feed_ranking.report", report);
        insta::assert_snapshot!("feed_ranking.summary", summary);
        insta::assert_snapshot!("feed_ranking.quarantine", quarantine);
    });
}

#[test]
fn bad_rows_stop_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("clicks.jsonl");
    let good = |secs: f64, c: &str| click("q-0", c, secs, 1, false, "s-1").to_string();
    let cases: [(Vec<String>, &str); 3] = [
        (
            vec![good(0.0, "c-1"), "not json".to_string()],
            "clicks.jsonl`, line 2: not valid JSON",
        ),
        (
            vec![good(10.0, "c-1"), good(5.0, "c-2")],
            "clicks.jsonl`, line 2: `ts`: out of order: earlier than line 1 of the same session \"s-1\"",
        ),
        (
            vec![good(0.0, "c-1"), good(1.0, "c-404")],
            "clicks.jsonl`, line 2: `candidate_id`: no pair has query_id \"q-0\" and candidate_id \"c-404\"",
        ),
    ];
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"query_id\": \"q-0\", \"candidate_id\": \"c-1\"}\n{\"query_id\": \"q-0\", \"candidate_id\": \"c-2\"}\n",
    )
    .unwrap();
    for (rows, want) in cases {
        std::fs::write(&log, rows.join("\n")).unwrap();
        let c = clean(
            dir.path(),
            "policies/job_match.policy",
            &log,
            &["--pairs", pairs.to_str().unwrap()],
        );
        let err = stderr(&c.output);
        assert_eq!(c.output.status.code(), Some(1), "{err}");
        assert!(err.contains(want), "want {want}\n{err}");
        assert!(err.contains("--quarantine FILE"), "{err}");
        assert_eq!(c.report, Value::Null, "no report after an error");
        // With a quarantine the bad row is set aside and counted.
        let c = clean(
            dir.path(),
            "policies/job_match.policy",
            &log,
            &["--pairs", pairs.to_str().unwrap(), "quarantine"],
        );
        assert_eq!(c.output.status.code(), Some(1), "{}", stderr(&c.output));
        assert_reconciles(&c);
        assert_eq!(c.report["rows"]["quarantined"], 1);
        assert_eq!(c.kept.len(), 1);
    }
}

#[test]
fn a_policy_without_a_pipeline_or_standard_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("clicks.jsonl");
    std::fs::write(&log, "").unwrap();
    let policy = dir.path().join("p.policy");
    std::fs::write(
        &policy,
        "policy p version 1 {\n  entity A { x: number }\n  pair query: A, candidate: A\n  dimension d weight 100% { score = clamp(query.x, 0, 1) }\n  grade overall { good when overall >= 0.5  poor otherwise }\n}\n",
    )
    .unwrap();
    let c = clean(dir.path(), policy.to_str().unwrap(), &log, &[]);
    assert_eq!(c.output.status.code(), Some(2));
    assert!(
        stderr(&c.output).contains("holds no pipeline"),
        "{}",
        stderr(&c.output)
    );
    let c = clean(dir.path(), "policies/job_match.policy", Path::new("-"), &[]);
    assert_eq!(c.output.status.code(), Some(2));
    assert!(
        stderr(&c.output).contains(
            "`-` is a stream; cleaning reads its input in several passes, so pass a file"
        )
    );
    // An empty log reconciles too.
    let c = clean(dir.path(), "policies/job_match.policy", &log, &[]);
    assert!(c.output.status.success(), "{}", stderr(&c.output));
    assert_reconciles(&c);
    assert_eq!(c.report["rows"]["in"], 0);
}

#[test]
fn a_condition_runs_as_compiled() {
    // `drop NAME when ...` with session statistics, a duration, `not`, `and`, `or` and `??`.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string("policies/job_match.policy").unwrap();
    let edited = text.replace(
        "drop bots when clicks_per_minute > 30",
        "drop skimmers when session_impressions >= 4 and session_seconds < 1min \
         and not (clicked and (dwell_seconds ?? 0) > 5)",
    );
    assert_ne!(
        text, edited,
        "the clean rule to edit is in job_match.policy"
    );
    let policy = dir.path().join("job_match.policy");
    std::fs::write(&policy, edited).unwrap();
    let mut rows = Vec::new();
    // A: four rows in 30 s, one read for 10 s: the three others are skimmed.
    for k in 0..4u32 {
        let mut v = click(
            "q-0",
            &format!("a-{k}"),
            f64::from(k) * 10.0,
            k + 1,
            k == 2,
            "A",
        );
        if k == 2 {
            v["dwell_seconds"] = json!(10.0);
        }
        rows.push(v.to_string());
    }
    // B: four rows over two minutes; C: three rows in ten seconds. Neither is skimming.
    for k in 0..4u32 {
        rows.push(
            click(
                "q-1",
                &format!("b-{k}"),
                f64::from(k) * 40.0,
                k + 1,
                false,
                "B",
            )
            .to_string(),
        );
    }
    for k in 0..3u32 {
        rows.push(
            click(
                "q-2",
                &format!("c-{k}"),
                f64::from(k) * 5.0,
                k + 1,
                false,
                "C",
            )
            .to_string(),
        );
    }
    let log = dir.path().join("clicks.jsonl");
    std::fs::write(&log, rows.join("\n")).unwrap();
    let c = clean(dir.path(), policy.to_str().unwrap(), &log, &[]);
    assert!(c.output.status.success(), "{}", stderr(&c.output));
    assert_reconciles(&c);
    assert_eq!(c.report["rules"][0]["rule"], "skimmers");
    assert_eq!(c.report["rules"][0]["dropped"], 3);
    let dropped: Vec<u64> = c
        .dropped
        .iter()
        .map(|d| d["line"].as_u64().unwrap())
        .collect();
    assert_eq!(dropped, vec![1, 2, 4]);
    // Asking for a source the pipeline does not clean names the ones it does.
    let c = clean(
        dir.path(),
        policy.to_str().unwrap(),
        &log,
        &["--source", "golden"],
    );
    assert_eq!(c.output.status.code(), Some(1));
    assert!(
        stderr(&c.output).contains("cleans no source `golden`; it cleans `clicks`"),
        "{}",
        stderr(&c.output)
    );
}

#[path = "support/seeded.rs"]
mod seeded;

mod reconciliation {
    use super::*;
    use proptest::prelude::*;
    use rubric_runtime::data::clean::{CleanOptions, CleanOutputs, clean};
    use std::io::{BufRead, Cursor};

    /// One generated row: session, query, candidate, seconds since the session's last row
    /// (negative: out of order), position, clicked, dwell, and how to break it (0-2) or not.
    type Row = (u8, u8, u8, i16, u16, bool, Option<u32>, u8);

    fn lines(rows: &[Row]) -> Vec<String> {
        let mut clock = [0f64; 6];
        rows.iter()
            .map(|&(s, q, c, dt, position, clicked, dwell, broken)| {
                let s = usize::from(s % 6);
                clock[s] += f64::from(dt);
                let mut v = click(
                    &format!("q-{q}"),
                    &format!("c-{c}"),
                    1000.0 * s as f64 + clock[s].max(-900.0),
                    u32::from(position),
                    clicked,
                    &format!("s-{s}"),
                );
                if let Some(d) = dwell {
                    v["dwell_seconds"] = json!(d);
                }
                match broken {
                    0 => "{\"query_id\": ".to_string(),
                    1 => {
                        v.as_object_mut().unwrap().remove("ts");
                        v.to_string()
                    }
                    _ => v.to_string(),
                }
            })
            .collect()
    }

    proptest! {
        // Pinned seed, no regression file in the source tree (`support/seeded.rs`).
        #![proptest_config(seeded::config(48, 0x636c_6e01))]

        /// Every line is kept, dropped by one rule or quarantined, exactly once, in any log.
        #[test]
        fn every_row_is_accounted_for_once(rows in proptest::collection::vec(
            (0u8..6, 0u8..3, 0u8..8, -30i16..120, 1u16..15, any::<bool>(),
             proptest::option::of(0u32..200_000), 0u8..20),
            0..120,
        )) {
            let compiled = compile_file(Path::new("policies/feed_ranking.policy"), &Options::default())
                .expect("compiles");
            let plan = compiled.lowered.training_plan.expect("a pipeline");
            let text = lines(&rows).join("\n");
            let open = || -> std::io::Result<Box<dyn BufRead>> {
                Ok(Box::new(Cursor::new(text.clone().into_bytes())))
            };
            let (mut kept, mut quarantine, mut dropped) = (Vec::new(), Vec::new(), Vec::new());
            let report = clean(
                &plan,
                None,
                &open,
                &CleanOptions { known_pairs: None, quarantine: true },
                CleanOutputs {
                    kept: &mut kept,
                    quarantine: Some(&mut quarantine),
                    dropped: Some(&mut dropped),
                },
                &mut |_| {},
            )
            .expect("cleans");
            let numbers = |bytes: &[u8]| -> Vec<u64> {
                String::from_utf8_lossy(bytes)
                    .lines()
                    .map(|l| serde_json::from_str::<Value>(l).unwrap()["line"].as_u64().unwrap())
                    .collect()
            };
            let (q, d) = (numbers(&quarantine), numbers(&dropped));
            let all: Vec<&str> = text.lines().collect();
            let expected_kept: Vec<&str> = all
                .iter()
                .enumerate()
                .filter(|(i, _)| !q.contains(&(*i as u64 + 1)) && !d.contains(&(*i as u64 + 1)))
                .map(|(_, l)| *l)
                .collect();
            let kept_text = String::from_utf8(kept).unwrap();
            prop_assert_eq!(kept_text.lines().collect::<Vec<_>>(), expected_kept);
            prop_assert!(q.iter().all(|n| !d.contains(n)));
            let r = &report.rows;
            prop_assert_eq!(r.rows_in, all.len() as u64);
            prop_assert_eq!(r.rows_in, r.kept + r.dropped + r.quarantined);
            prop_assert_eq!(r.quarantined, q.len() as u64);
            prop_assert_eq!(r.dropped, d.len() as u64);
        }
    }
}

#[test]
fn a_line_that_is_not_utf8_is_a_bad_row() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("clicks.jsonl");
    let mut bytes = click("q-0", "c-1", 0.0, 1, false, "s-1")
        .to_string()
        .into_bytes();
    bytes.extend_from_slice(b"\n{\"query_id\": \"q-\xff\"}\n");
    std::fs::write(&log, bytes).unwrap();
    let c = clean(dir.path(), "policies/job_match.policy", &log, &[]);
    let err = stderr(&c.output);
    assert_eq!(c.output.status.code(), Some(1), "{err}");
    assert!(
        err.contains("clicks.jsonl`, line 2: not valid UTF-8"),
        "{err}"
    );
    let c = clean(
        dir.path(),
        "policies/job_match.policy",
        &log,
        &["quarantine"],
    );
    assert_reconciles(&c);
    assert_eq!(c.report["quarantine"]["malformed"], 1);
    assert_eq!(c.kept.len(), 1);
}

/// `drop outliers F beyond K sigma` drops values more than K standard deviations from the mean on
/// either side, the deviation being the population one (docs/clicks.md). Counted, not only
/// snapshotted: each log is built so that one wrong choice changes which lines are dropped.
#[test]
fn sigma_outliers_are_dropped_on_both_sides_with_the_population_deviation() {
    let dir = tempfile::tempdir().unwrap();
    // One clicked row per session (no bot), each with the given dwell; `job_match` drops
    // `dwell_seconds beyond 3 sigma`. Returns the dropped lines' dwells.
    let dropped = |dwells: &[f64]| -> Vec<f64> {
        let rows: Vec<String> = dwells
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut v = click(
                    "q-0",
                    &format!("c-{i}"),
                    i as f64 * 600.0,
                    1,
                    true,
                    &format!("s-{i}"),
                );
                v["dwell_seconds"] = json!(d);
                v.to_string()
            })
            .collect();
        let log = dir.path().join("clicks.jsonl");
        std::fs::write(&log, rows.join("\n") + "\n").unwrap();
        let c = clean(dir.path(), "policies/job_match.policy", &log, &[]);
        assert!(c.output.status.success(), "{}", stderr(&c.output));
        assert_reconciles(&c);
        c.dropped
            .iter()
            .map(|d| {
                assert_eq!(d["rule"], "outliers", "{d}");
                let line = d["line"].as_u64().unwrap() as usize;
                dwells[line - 1]
            })
            .collect()
    };
    // 28 dwells of 100 s, one of 0 s and one of 200 s: both 3.9 (population) or 3.8 (sample)
    // deviations from the mean of 100, one below it and one above.
    let mut both_sides = vec![100.0; 28];
    both_sides.extend([0.0, 200.0]);
    assert_eq!(dropped(&both_sides), vec![0.0, 200.0], "one on each side");
    // Mean 109.09: 200 s is 3.09 population deviations (29.45) away but 2.94 sample ones
    // (30.89): dropped with the population deviation, kept with the sample one.
    let mut between = vec![100.0; 8];
    between.extend([85.0, 115.0, 200.0]);
    assert_eq!(dropped(&between), vec![200.0], "the population deviation");
    // A dwell of 1e155 squares past the largest float: the statistics stay finite and it, alone,
    // is dropped (the sums overflowed to infinity and nothing was).
    let mut huge = vec![100.0; 29];
    huge.push(1e155);
    huge.extend([90.0, 110.0]);
    assert_eq!(
        dropped(&huge),
        vec![1e155],
        "a huge value among ordinary ones"
    );
}

/// A quarantined click row that is not UTF-8 keeps its exact bytes (`row_base64`) beside the
/// readable preview.
#[test]
fn a_quarantined_row_that_is_not_utf8_keeps_its_exact_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let good = click("q-0", "c-0", 0.0, 1, true, "s-0").to_string();
    let bad: &[u8] = b"{\"query_id\": \"caf\xE9\"}";
    let mut log = format!("{good}\n").into_bytes();
    log.extend_from_slice(bad);
    log.push(b'\n');
    let path = dir.path().join("clicks.jsonl");
    std::fs::write(&path, log).unwrap();
    let c = clean(
        dir.path(),
        "policies/job_match.policy",
        &path,
        &["quarantine"],
    );
    assert_eq!(c.quarantine.len(), 1, "{}", stderr(&c.output));
    assert_eq!(
        c.quarantine[0]["row_base64"],
        rubric_runtime::label::exact_bytes(bad)
    );
}
