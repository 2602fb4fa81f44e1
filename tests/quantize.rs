//! `rubric quantize` and `rubric score` end to end on a small copy of the job_match example
//! (tiny teachers and student): the quantize stage writes the pruned f32 model and its int8
//! weights with a report whose figures reach the stage's manifest; the folder ranks candidates
//! through `rubric score` in int8 and in f32, and loads into the training code's model too;
//! bad candidates are named by their line.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "support/small_job_match.rs"]
mod small_job_match;

use small_job_match::{statuses, with};

fn rubric(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .output()
        .unwrap()
}

/// `rubric quantize POLICY --dir RUNS`.
fn quantize(policy: &Path, runs: &Path) -> Output {
    rubric(&[
        "quantize".as_ref(),
        policy.as_os_str(),
        "--dir".as_ref(),
        runs.as_os_str(),
    ])
}

/// `rubric score MODEL --query QUERY --candidates CANDIDATES EXTRA...`.
fn score(model: &Path, query: &Path, candidates: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "score".as_ref(),
        model.as_os_str(),
        "--query".as_ref(),
        query.as_os_str(),
        "--candidates".as_ref(),
        candidates.as_os_str(),
    ];
    args.extend(extra.iter().map(|s| -> &std::ffi::OsStr { s.as_ref() }));
    rubric(&args)
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn stage_dir(runs: &Path, stage: &str) -> PathBuf {
    let latest: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(runs.join("latest.json")).unwrap()).unwrap();
    runs.join("stages").join(stage).join(&latest[stage])
}

/// The query and candidates of the first golden pairs, as `rubric score` reads them.
fn query_and_candidates(project: &Path, n: usize) -> (PathBuf, PathBuf) {
    let golden = std::fs::read_to_string(project.join("data/golden.jsonl")).unwrap();
    let pairs: Vec<Value> = golden
        .lines()
        .take(n)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let query = project.join("query.json");
    std::fs::write(&query, pairs[0]["query"].to_string()).unwrap();
    let candidates = project.join("candidates.jsonl");
    let lines: String = pairs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut c = p["candidate"].clone();
            c["id"] = Value::from(format!("c{i}"));
            format!("{c}\n")
        })
        .collect();
    std::fs::write(&candidates, lines).unwrap();
    (query, candidates)
}

#[test]
fn the_student_is_pruned_quantized_measured_and_scores_candidates() {
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    let policy = project.path().join("job_match.policy");
    let out = quantize(&policy, &runs);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let done = statuses(&stderr);
    assert!(
        with(&done, "done").contains(&"quantize".to_string()),
        "{stderr}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    for line in [
        "pruned f32",
        "int8",
        "held-out real pairs",
        "smaller than the f32 student",
    ] {
        assert!(table.contains(line), "{line}: {table}");
    }

    let dir = stage_dir(&runs, "quantize");
    let report = json(&dir.join("report.json"));
    assert_eq!(report["schema"], "rubric.quantize-report/1");
    // The int8 file is smaller (the tiny student's f32 pooler, feature layers and heads weigh
    // more than the example's do), and the quantized student stays close to the f32 one.
    assert!(report["compression"].as_f64().unwrap() > 1.2, "{report}");
    assert!(report["relative_loss"].get("ndcg@10").is_some(), "{report}");
    assert!(
        report["relative_loss"].get("ndcg@10.queries").is_none(),
        "{report}"
    );
    let f32_kappa = report["f32"]["metrics"]["grade_kappa"].as_f64().unwrap();
    let int8_kappa = report["int8"]["metrics"]["grade_kappa"].as_f64().unwrap();
    assert!(
        (f32_kappa - int8_kappa).abs() < 0.1,
        "{f32_kappa} {int8_kappa}"
    );
    let pruning = &report["pruning"];
    assert_eq!(pruning["threshold"], 0.01);
    let removed: usize = pruning["removed"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_array().unwrap().len())
        .sum();
    assert_eq!(
        pruning["heads_before"].as_u64().unwrap() as usize,
        pruning["heads_after"].as_u64().unwrap() as usize + removed
    );
    let config = json(&dir.join("model/config.json"));
    assert_eq!(
        config
            .get("pruned_heads")
            .cloned()
            .unwrap_or(Value::Object(Default::default())),
        pruning["removed"]
    );
    // Every kind of layer, and attention's two products, measured alone.
    let kinds: Vec<&str> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    assert!(kinds.contains(&"attention_products"), "{kinds:?}");
    // The manifest carries the figures evaluation and reports read.
    let manifest = json(&dir.join("manifest.json"));
    for figure in [
        "int8.grade_kappa",
        "f32.ndcg@10",
        "compression",
        "int8.bytes",
    ] {
        assert!(
            manifest["figures"].get(figure).is_some(),
            "{figure}: {manifest}"
        );
    }
    assert!(
        manifest["timings"]["int8.pairs_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );

    // A second run skips it.
    let again = quantize(&policy, &runs);
    assert!(
        with(
            &statuses(&String::from_utf8_lossy(&again.stderr)),
            "skipped"
        )
        .contains(&"quantize".to_string())
    );

    // `rubric score` ranks the candidates with the model folder, in int8 and in f32.
    let model = dir.join("model");
    let (query, candidates) = query_and_candidates(project.path(), 12);
    // The dimensions the rubric scores from a table are reported on the table's scores.
    let card: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("rubric.json")).unwrap()).unwrap();
    let levels: BTreeMap<String, Vec<f64>> =
        serde_json::from_value(card["levels"].clone()).unwrap();
    assert!(levels.contains_key("employment_type"), "{levels:?}");
    let mut ranked = Vec::new();
    for extra in [&[][..], &["--f32"][..]] {
        let mut args = vec!["--top", "5", "--format", "jsonl", "--batch", "5"];
        args.extend(extra);
        let out = score(&model, &query, &candidates, &args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 5);
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(l["rank"], i + 1);
            assert!(l["id"].as_str().unwrap().starts_with('c'));
            assert!(l["scores"]["overall"].as_f64().is_some(), "{l}");
            assert!(l["grade"].is_string(), "{l}");
            for (dimension, scores) in &levels {
                let v = l["scores"][dimension].as_f64().unwrap();
                assert!(
                    scores.contains(&v),
                    "{dimension}: {v} is not one of {scores:?}"
                );
            }
            if i > 0 {
                assert!(l["score"].as_f64() <= lines[i - 1]["score"].as_f64());
            }
        }
        ranked.push(lines);
    }
    // int8 and f32 agree on what they predict, closely.
    let ranked_top3: Vec<Value> = ranked[0][..3].to_vec();
    let by_id = |lines: &[Value]| -> BTreeMap<String, f64> {
        lines
            .iter()
            .map(|l| {
                (
                    l["id"].as_str().unwrap().to_string(),
                    l["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let (int8, f32) = (by_id(&ranked[0]), by_id(&ranked[1]));
    for (id, s) in &int8 {
        if let Some(t) = f32.get(id) {
            assert!((s - t).abs() < 0.05, "{id}: {s} {t}");
        }
    }

    // The table names the model; a bad candidate is named by its line and the rest still rank.
    let text = std::fs::read_to_string(&candidates).unwrap();
    std::fs::write(
        &candidates,
        format!("{text}{{\"id\": \"bad\", \"summary\": 7}}\n"),
    )
    .unwrap();
    let out = score(&model, &query, &candidates, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("line 13") && stderr.contains("summary"),
        "{stderr}"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("12 candidates") && table.contains("int8"),
        "{table}"
    );

    // Not JSON: the line is named, nothing is printed.
    std::fs::write(&candidates, format!("{text}{{oops\n")).unwrap();
    let out = score(&model, &query, &candidates, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 13"));

    // The distilled student's folder, which has no int8 weights, scores in f32.
    std::fs::write(&candidates, &text).unwrap();
    let distilled = stage_dir(&runs, "distill").join("model");
    let out = score(&distilled, &query, &candidates, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("(f32, policy"));

    // `rubric serve` ranks the same candidates over HTTP as `rubric score` does, with the
    // model's policy in /metrics, and stops gracefully on SIGTERM.
    let query_record = std::fs::read_to_string(&query).unwrap();
    let candidate_records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let body = format!(
        r#"{{"query": {query_record}, "candidates": {}, "top": 3}}"#,
        Value::from(candidate_records)
    );
    let log = project.path().join("served.jsonl");
    let (mut server, addr) = serve(&model, &log);
    let (status, served) = http(&addr, "POST", "/v1/rank", &body);
    assert_eq!(status, 200, "{served}");
    let served: Value = serde_json::from_str(&served).unwrap();
    let served: Vec<&str> = served["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let cli: Vec<&str> = ranked_top3
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(served, cli);
    let (status, metrics) = http(&addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(metrics.contains("rubric_model_info"), "{metrics}");
    assert!(metrics.contains("quantized=\"true\""), "{metrics}");
    let (status, _) = http(&addr, "POST", "/v1/rank", "{not json");
    assert_eq!(status, 400);
    let killed = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(server.wait().unwrap().success());
    // The request log has a line per scored pair of the ranking, flushed on shutdown.
    let logged: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(logged.len(), 12, "{logged:?}");
    assert!(
        logged
            .iter()
            .all(|l| l["endpoint"] == "rank" && l["score"].is_number())
    );

    // An address other hosts can reach is refused unless asked for, saying how.
    let out = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .arg("serve")
        .arg(&model)
        .args(["--addr", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-non-loopback"));
}

/// `rubric serve MODEL` on a free loopback port, and the address it says it listens on.
fn serve(model: &Path, log: &Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .arg("serve")
        .arg(model)
        .args(["--addr", "127.0.0.1:0", "--request-log"])
        .arg(log)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let line = lines
        .find_map(|l| l.ok().filter(|l| l.contains("http://")))
        .expect("the service says where it listens");
    let addr = line.rsplit("http://").next().unwrap().trim().to_string();
    // Keep draining its standard error, so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, addr)
}

/// One HTTP/1.1 request on a fresh connection: the status and the body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn the_pruned_model_loads_into_the_training_code_and_scores_as_the_engine_does() {
    use rubric_runtime::scoring::{Precision, Scorer};
    let project = small_job_match::project(300, 3000);
    let runs = project.path().join("runs");
    let policy = project.path().join("job_match.policy");
    // A threshold that prunes: every head but each layer's most important one.
    small_job_match::edit(
        project.path(),
        "prune heads below 0.01",
        "prune heads below 1",
    );
    let out = quantize(&policy, &runs);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = stage_dir(&runs, "quantize");
    let report = json(&dir.join("report.json"));
    assert_eq!(report["pruning"]["heads_after"], 1, "{report}");
    let model = dir.join("model");
    let config = json(&model.join("config.json"));
    assert_eq!(config["pruned_heads"]["0"].as_array().unwrap().len(), 1);

    // The training code's candle model reads the pruned folder like any other.
    let compiled = rubric_runtime::compile::compile_file(&policy, &Default::default()).unwrap();
    let engine = rubric_runtime::label::engine::Engine::new(compiled.lowered.labeling.clone());
    rubric_runtime::teach::TrainedModel::load(&model, &engine, &candle_core::Device::Cpu).unwrap();
    // And the engine scores with it, in f32 and int8 alike.
    let (query, candidates) = query_and_candidates(project.path(), 6);
    let q: Value = json(&query);
    for precision in [Precision::F32, Precision::Int8] {
        let scorer = Scorer::load(&model, Some(precision)).unwrap();
        let records: Vec<Value> = std::fs::read_to_string(&candidates)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let pairs: Vec<_> = records.iter().map(|c| (scorer.pair(&q, c), None)).collect();
        let scored = scorer.score(&pairs);
        assert_eq!(scored.len(), 6);
        assert!(
            scored
                .iter()
                .all(|p| p.as_ref().is_ok_and(|p| (0.0..=1.0).contains(&p.score)))
        );
        // The same pairs, each with its own copy of the query: the query's feature columns,
        // encoded once for the ranking, are what each pair's own copy gives.
        let roles = &scorer.card.roles;
        let objects: Vec<(Value, _)> = records
            .iter()
            .map(|c| (serde_json::json!({&roles[0]: &q, &roles[1]: c}), None))
            .collect();
        let alone = scorer.score(&objects);
        assert_eq!(scored, alone, "{precision:?}");
    }
}
