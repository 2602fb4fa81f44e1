//! `rubric data synth` end to end on the shipped golden set: same seed same bytes, every row
//! synthetic and traced to a golden pair outside the validation split, no repeated pair, text
//! that says what the fields say, labels that match `rubric label`, clause coverage of the
//! synthetic rows alone at 100% (and as `rubric test --data` reports it), and the optional
//! paraphraser against a stub server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::data::golden::pairs::{PairLabeler, content_key, read_pairs};
use rubric_runtime::data::golden::text::{GLANCE, candidate_glance, job_glance, seniority_word};
use rubric_runtime::data::mix::split_real;
use rubric_runtime::examples::coverage;
use rubric_runtime::label::engine::Engine;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const POLICY: &str = "policies/job_match.policy";
const SHIPPED: &str = "examples/job_match/data/golden.jsonl";

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

/// The first `n` pairs of the shipped golden set, in a file of their own.
fn golden_subset(dir: &Path, n: usize) -> std::path::PathBuf {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let path = dir.join("golden.jsonl");
    let lines: Vec<&str> = text.lines().take(n).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

fn synth(golden: &Path, out: &Path, seed: u64, count: usize, extra: &[&str]) -> Output {
    let mut args = vec![
        "data",
        "synth",
        "--policy",
        POLICY,
        "--golden",
        golden.to_str().unwrap(),
        "--count",
        Box::leak(count.to_string().into_boxed_str()),
        "--strategy",
        "coverage",
        "--seed",
        Box::leak(seed.to_string().into_boxed_str()),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = rubric(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    o
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn synthesis_is_deterministic_traced_consistent_and_reaches_every_clause() {
    let dir = tempfile::tempdir().unwrap();
    let golden = golden_subset(dir.path(), 400);
    let (a, b, c) = (
        dir.path().join("a.jsonl"),
        dir.path().join("b.jsonl"),
        dir.path().join("c.jsonl"),
    );
    let labels = dir.path().join("a.labels.jsonl");
    let first = synth(&golden, &a, 5, 300, &["--labels", labels.to_str().unwrap()]);
    synth(&golden, &b, 5, 300, &[]);
    synth(&golden, &c, 6, 300, &[]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());

    let summary = String::from_utf8_lossy(&first.stdout).into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/data_synth");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("summary_seed_5_300_pairs", summary));

    let compiled = compile_file(Path::new(POLICY), &Options::default()).unwrap();
    let engine = Engine::new(compiled.lowered.labeling);
    // The validation split `rubric data mix` will hold out (the pipeline's 10%, seed 7).
    let golden_rows = read_pairs(&golden).unwrap();
    let split = split_real(&engine, golden_rows.clone(), &golden, 0.1, 7).unwrap();
    assert_eq!(split.validation.len(), 40);
    let golden_ids: BTreeSet<String> = golden_rows
        .iter()
        .map(|r| r.str_field("id").unwrap().to_string())
        .collect();
    let mut keys: BTreeSet<String> = golden_rows
        .iter()
        .map(|r| content_key(&engine, &r.value))
        .collect();

    let synthetic = rows(&a);
    assert_eq!(synthetic.len(), 300);
    let mut labeler = PairLabeler::new(&engine);
    let mut hits = labeler.no_hits();
    let mut ids = BTreeSet::new();
    for (i, r) in synthetic.iter().enumerate() {
        assert_eq!(r["source"], "synthetic");
        assert!(ids.insert(r["id"].as_str().unwrap().to_string()));
        let from = r["from"].as_str().unwrap();
        assert!(golden_ids.contains(from), "{from} is a golden pair");
        assert!(
            !split.validation.contains(from),
            "{from} is in the validation split"
        );
        assert!(!r["perturbations"].as_array().unwrap().is_empty());
        assert!(
            keys.insert(content_key(&engine, r)),
            "row {} repeats a pair",
            r["id"]
        );
        // The text says what the fields say.
        let q = r["query"].as_object().unwrap();
        let description = q["description"].as_str().unwrap();
        assert!(description.ends_with(&format!("{GLANCE}{}", job_glance(q))));
        let word = seniority_word(q["seniority"].as_str().unwrap());
        assert!(q["title"].as_str().unwrap().starts_with(word));
        let cand = r["candidate"].as_object().unwrap();
        assert!(
            cand["summary"]
                .as_str()
                .unwrap()
                .ends_with(&format!("{GLANCE}{}", candidate_glance(cand)))
        );
        labeler.label(i as u64 + 1, r, Some(&mut hits)).unwrap();
    }
    // The synthetic rows alone (no examples) reach every clause of the policy.
    let cov = coverage(&engine.program, &hits);
    assert_eq!(
        (cov.covered, cov.total),
        (cov.total, 63),
        "missed: {:?}",
        cov.missed
    );
    assert!(summary.contains("clause coverage of the synthetic rows: 63/63"));

    // As `rubric test --data` reports it.
    let o = rubric(&[
        "test",
        POLICY,
        "--data",
        a.to_str().unwrap(),
        "--min-coverage",
        "100",
    ]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("dataset"), "{out}");
    assert!(out.contains("300 pairs (0 unreadable)"), "{out}");
    assert!(out.contains("clause coverage: 63/63 (100.0%)"), "{out}");

    // The labels written are those `rubric label` gives the rows.
    let relabeled = dir.path().join("relabeled.jsonl");
    let o = rubric(&[
        "label",
        "--policy",
        POLICY,
        "--pairs",
        a.to_str().unwrap(),
        "--out",
        relabeled.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_eq!(rows(&labels), rows(&relabeled));
}

#[test]
fn the_pipeline_supplies_count_and_strategy_and_flags_check() {
    let dir = tempfile::tempdir().unwrap();
    let golden = golden_subset(dir.path(), 50);
    let o = rubric(&[
        "data",
        "synth",
        "--policy",
        POLICY,
        "--golden",
        golden.to_str().unwrap(),
        "--strategy",
        "uniform",
        "--out",
        dir.path().join("s.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("unknown synthesis strategy `uniform` (known: coverage)")
    );
    // A golden row that does not decode is named by file and line.
    let bad = dir.path().join("bad.jsonl");
    let mut text = std::fs::read_to_string(&golden).unwrap();
    text.push_str("{\"id\": \"x\", \"query\": {}, \"candidate\": {}}\n");
    std::fs::write(&bad, text).unwrap();
    let o = rubric(&[
        "data",
        "synth",
        "--pipeline",
        POLICY,
        "--golden",
        bad.to_str().unwrap(),
        "--count",
        "5",
        "--out",
        dir.path().join("s.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.jsonl`, line 51: `query.title_family`: missing"),
        "{err}"
    );
}

/// The requests a stub server received: each one's number and its path and body.
type Requests = Arc<Mutex<Vec<(usize, String)>>>;

/// A stub of an OpenAI-compatible server: answers `PARAPHRASED <n>`, fails every third request
/// with a 500, and never answers the second (it holds the connection until the client gives up:
/// a timeout whatever the scheduling); records the requests' bodies with their number. `n` is
/// the order of connection: the paraphraser asks one text at a time, so it is the order asked.
fn stub_server() -> (String, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let seen = Arc::clone(&seen);
            // One thread a connection: the slow answer does not hold up the next request.
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut length = 0usize;
                let mut path = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if path.is_empty() {
                        path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                seen.lock()
                    .unwrap()
                    .push((n, format!("{path} {}", String::from_utf8_lossy(&body))));
                if n == 1 {
                    // No answer: wait for the client to time out and close the connection.
                    let _ = reader.read(&mut [0u8; 1]);
                    return;
                }
                let (status, answer) = if n % 3 == 2 {
                    (
                        "500 Internal Server Error",
                        "{\"error\": \"overloaded\"}".to_string(),
                    )
                } else {
                    (
                    "200 OK",
                    serde_json::json!({"choices": [{"message": {"role": "assistant", "content": format!("PARAPHRASED {n}")}}]})
                        .to_string(),
                )
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    (url, bodies)
}

#[test]
fn the_paraphraser_rewrites_prose_counts_failures_and_never_loses_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let golden = golden_subset(dir.path(), 60);
    let (url, bodies) = stub_server();
    let out = dir.path().join("p.jsonl");
    let o = synth(
        &golden,
        &out,
        1,
        6,
        &[
            "--paraphrase-endpoint",
            &url,
            "--paraphrase-model",
            "stub-model",
            // Ample for a stub on loopback on a busy machine; the unanswered request waits it out.
            "--paraphrase-timeout",
            "5",
        ],
    );
    let synthetic = rows(&out);
    assert_eq!(synthetic.len(), 6, "no row is lost");
    // Every request is recorded before it is answered; the unanswered one may be recorded late
    // where its thread ran late, so wait for it (briefly) rather than race it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while bodies.lock().unwrap().len() < 12 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut numbered = bodies.lock().unwrap().clone();
    numbered.sort();
    assert_eq!(
        numbered.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        (0..12).collect::<Vec<_>>()
    );
    let bodies: Vec<String> = numbered.into_iter().map(|(_, b)| b).collect();
    // Two texts a pair: the posting's description and the profile's summary.
    assert_eq!(bodies.len(), 12);
    assert!(
        bodies[0].starts_with("/v1/chat/completions {"),
        "{}",
        bodies[0]
    );
    let request: Value = serde_json::from_str(&bodies[0]["/v1/chat/completions ".len()..]).unwrap();
    assert_eq!(request["model"], "stub-model");
    assert_eq!(request["messages"][0]["role"], "system");
    assert_eq!(request["messages"][1]["role"], "user");
    assert!(
        !bodies[0].contains("At a glance"),
        "the generated paragraph is not sent"
    );
    let failed = (0..12).filter(|n| n % 3 == 2 || *n == 1).count();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!(
            "paraphrase: 12 texts asked, {} paraphrased, {failed} failed (kept as written)",
            12 - failed
        )),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("warning: paraphrase failed"), "{stderr}");
    // A paraphrased text keeps the generated paragraph; the first description was paraphrased.
    let q = synthetic[0]["query"].as_object().unwrap();
    assert_eq!(
        q["description"].as_str().unwrap(),
        format!("PARAPHRASED 0{GLANCE}{}", job_glance(q))
    );
}

/// `--validation` and `--split-seed` override the pipeline's split (10%, seed 7): no synthetic
/// row comes from a pair of the split they name, and a share that is not one is a usage error.
#[test]
fn validation_and_split_seed_flags_choose_the_split_kept_out_of_synthesis() {
    let dir = tempfile::tempdir().unwrap();
    let golden = golden_subset(dir.path(), 200);
    let out = dir.path().join("s.jsonl");
    synth(
        &golden,
        &out,
        2,
        120,
        &["--validation", "40%", "--split-seed", "11"],
    );
    let compiled = compile_file(Path::new(POLICY), &Options::default()).unwrap();
    let engine = Engine::new(compiled.lowered.labeling);
    let golden_rows = read_pairs(&golden).unwrap();
    let split = |share: f64, seed: u64| {
        split_real(&engine, golden_rows.clone(), &golden, share, seed)
            .unwrap()
            .validation
    };
    let (flagged, pipeline) = (split(0.4, 11), split(0.1, 7));
    assert_eq!(flagged.len(), 80);
    let from: BTreeSet<String> = rows(&out)
        .iter()
        .map(|r| r["from"].as_str().unwrap().to_string())
        .collect();
    assert!(
        from.iter().all(|f| !flagged.contains(f)),
        "a synthetic row comes from the split the flags name"
    );
    // The flags mattered: the pipeline's own split alone would not have kept these out.
    assert!(
        from.iter().any(|f| pipeline.contains(f)),
        "the synthetic rows avoid the pipeline's split too: the test shows nothing"
    );

    let o = rubric(&[
        "data",
        "synth",
        "--policy",
        POLICY,
        "--golden",
        golden.to_str().unwrap(),
        "--validation",
        "forty",
        "--out",
        dir.path().join("bad.jsonl").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("`--validation forty` is not a share"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
