//! `rubric data mix` end to end on the shipped golden set and a synthetic expansion of it: the
//! same seed gives the same bytes, the sampler's batches over its pool hold the real share
//! every epoch (any run of batches within one row of it) with real and synthetic rows
//! interleaved and a new order each epoch, the validation split is real-only, stratified and
//! free of duplicates, every count reconciles, the pipeline supplies the settings, and bad
//! inputs are named by line. Also the sampler's properties over random shares, batch sizes,
//! pool sizes and epochs (seeded: `support/seeded.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rubric_runtime::data::golden::pairs::read_pairs;
use rubric_runtime::data::mix::{MixSampler, batches_possible, real_per_batch};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICY: &str = "policies/job_match.policy";
const SHIPPED: &str = "examples/job_match/data/golden.jsonl";

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

fn rows(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A golden subset and a synthetic expansion of it.
fn inputs(dir: &Path) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(SHIPPED).unwrap();
    let golden = dir.join("golden.jsonl");
    let lines: Vec<&str> = text.lines().take(500).collect();
    std::fs::write(&golden, lines.join("\n") + "\n").unwrap();
    let synthetic = dir.join("synthetic.jsonl");
    let o = rubric(&[
        "data",
        "synth",
        "--policy",
        POLICY,
        "--golden",
        golden.to_str().unwrap(),
        "--count",
        "400",
        "--seed",
        "3",
        "--out",
        synthetic.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    (golden, synthetic)
}

fn mix(real: &Path, synthetic: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "data",
        "mix",
        "--policy",
        POLICY,
        "--real",
        real.to_str().unwrap(),
        "--synthetic",
        synthetic.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    rubric(&args)
}

fn content(v: &Value) -> String {
    format!("{}\n{}", v["query"], v["candidate"])
}

/// Each run of consecutive batches within one row of the share, every batch full.
fn assert_share_held(reals: &[usize], batch: usize, share: f64) {
    for i in 0..reals.len() {
        let mut sum = 0;
        for (j, real) in reals.iter().enumerate().skip(i) {
            sum += real;
            let want = share * (batch * (j - i + 1)) as f64;
            assert!(
                (sum as f64 - want).abs() <= 1.0 + 1e-9,
                "batches {i}..={j}: {sum} vs {want}"
            );
        }
    }
}

#[test]
fn batches_hold_the_share_and_validation_is_real_stratified_and_unique() {
    let dir = tempfile::tempdir().unwrap();
    let (golden, synthetic) = inputs(dir.path());
    let flags = ["--real-share", "30%", "--validation", "10%", "--seed", "7"];
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let first = mix(&golden, &synthetic, &a, &flags);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(mix(&golden, &synthetic, &b, &flags).status.success());
    for f in ["pool.jsonl", "validation.jsonl", "manifest.json"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f}: the same seed gives the same bytes"
        );
    }
    let summary = String::from_utf8_lossy(&first.stdout).into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/data_mix");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("summary_30_percent", summary));

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("manifest.json")).unwrap()).unwrap();
    let c = &manifest["counts"];
    let n = |k: &str| c[k].as_u64().unwrap() as usize;
    let train = rows(&a.join("pool.jsonl"));
    let validation = rows(&a.join("validation.jsonl"));
    // Every row in is accounted for.
    assert_eq!(n("real_in"), 500);
    assert_eq!(n("synthetic_in"), 400);
    assert_eq!(
        n("real_in"),
        n("real_duplicates") + n("validation") + n("real_pool")
    );
    assert_eq!(
        n("synthetic_in"),
        n("synthetic_duplicates") + n("synthetic_from_validation") + n("synthetic_pool")
    );
    assert_eq!(validation.len(), n("validation"));
    assert_eq!(train.len(), n("real_pool") + n("synthetic_pool"));
    // The inputs' hashes are recorded.
    let sha = |p: &Path| rubric_runtime::compile::sha256_hex(&std::fs::read(p).unwrap());
    assert_eq!(manifest["inputs"]["real"]["sha256"], sha(&golden));
    assert_eq!(manifest["inputs"]["synthetic"]["sha256"], sha(&synthetic));

    // The trainers' sampler over the pool: every batch holds the share, every epoch.
    let pool = read_pairs(&a.join("pool.jsonl")).unwrap();
    let sampler = MixSampler::for_rows(&pool, 0.3, 7);
    let epochs: Vec<Vec<Vec<usize>>> = (0..3).map(|e| sampler.epoch(e, 32)).collect();
    assert!(epochs[0].len() > 10);
    assert_ne!(epochs[0], epochs[1], "a new order each epoch");
    assert_eq!(
        epochs[0],
        sampler.epoch(0, 32),
        "the same seed, the same batches"
    );
    for batches in &epochs {
        let reals: Vec<usize> = batches
            .iter()
            .map(|b| {
                assert_eq!(b.len(), 32);
                b.iter().filter(|i| train[**i]["source"] == "real").count()
            })
            .collect();
        assert_share_held(&reals, 32, 0.3);
        let distinct: BTreeSet<usize> = batches.iter().flatten().copied().collect();
        assert_eq!(
            distinct.len(),
            batches.len() * 32,
            "a row twice in an epoch"
        );

        // Within a batch, real and synthetic rows are interleaved, not one block after the
        // other: each batch changes source at least three times and has real rows in both of
        // its halves (a seeded shuffle of ~10 real rows among 32 changes source ~14 times).
        for (k, b) in batches.iter().enumerate() {
            let real: Vec<bool> = b.iter().map(|i| train[*i]["source"] == "real").collect();
            let changes = real.windows(2).filter(|w| w[0] != w[1]).count();
            let (first, second) = real.split_at(real.len() / 2);
            assert!(
                changes >= 3 && first.contains(&true) && second.contains(&true),
                "batch {k}: real and synthetic rows are not interleaved: {real:?}"
            );
        }
    }
    // Another batch size holds the share too.
    let reals: Vec<usize> = sampler
        .epoch(0, 10)
        .iter()
        .map(|b| b.iter().filter(|i| train[**i]["source"] == "real").count())
        .collect();
    assert_share_held(&reals, 10, 0.3);

    // Validation: real only, no pair twice, none also in training, stratified by grade.
    let mut seen = BTreeSet::new();
    for r in &validation {
        assert_eq!(r["source"], "real");
        assert!(seen.insert(content(r)), "a duplicate pair in validation");
    }
    for r in &train {
        assert!(
            !seen.contains(&content(r)),
            "a validation pair is also in training"
        );
        assert!(seen.insert(content(r)), "a duplicate pair in training");
    }
    let labels = dir.path().join("labels.jsonl");
    assert!(
        rubric(&[
            "label",
            "--policy",
            POLICY,
            "--pairs",
            golden.to_str().unwrap(),
            "--out",
            labels.to_str().unwrap()
        ])
        .status
        .success()
    );
    let mut grade_of = BTreeMap::new();
    let mut all: BTreeMap<String, usize> = BTreeMap::new();
    for l in rows(&labels) {
        let g = l["overall_grade"]
            .as_str()
            .unwrap_or("abstained")
            .to_string();
        *all.entry(g.clone()).or_default() += 1;
        grade_of.insert(l["id"].as_str().unwrap().to_string(), g);
    }
    let mut held: BTreeMap<String, usize> = BTreeMap::new();
    for r in &validation {
        *held
            .entry(grade_of[r["id"].as_str().unwrap()].clone())
            .or_default() += 1;
    }
    for (g, total) in &all {
        let got = held.get(g).copied().unwrap_or(0) as f64;
        assert!(
            (got - 0.1 * *total as f64).abs() <= 1.0,
            "{g}: {got} of {total}"
        );
        assert_eq!(
            manifest["validation_by_grade"][g].as_u64().unwrap_or(0) as f64,
            got
        );
    }
    assert_eq!(validation.len(), 50);
}

#[test]
fn the_pipeline_supplies_share_split_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let (golden, synthetic) = inputs(dir.path());
    let out = dir.path().join("m");
    let o = mix(&golden, &synthetic, &out, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    // `mix real 30% synthetic 70%`, `split validation 10% seed 7`.
    assert_eq!(manifest["options"]["real_share"], 0.3);
    assert_eq!(manifest["options"]["validation"], 0.1);
    assert_eq!(manifest["options"]["seed"], 7);
    // Flags override.
    let o = mix(
        &golden,
        &synthetic,
        &out,
        &["--real-share", "50%", "--seed", "3"],
    );
    assert!(o.status.success());
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["options"]["real_share"], 0.5);
    assert_eq!(manifest["options"]["seed"], 3);
}

#[test]
fn synthetic_rows_made_from_validation_pairs_are_dropped_and_bad_rows_named() {
    let dir = tempfile::tempdir().unwrap();
    let (golden, synthetic) = inputs(dir.path());
    let out = dir.path().join("m");
    assert!(mix(&golden, &synthetic, &out, &[]).status.success());
    let held = rows(&out.join("validation.jsonl"));
    // A synthetic row claiming to come from a validation pair.
    let mut leak = rows(&synthetic)[0].clone();
    leak["id"] = Value::from("s-leak");
    leak["from"] = held[0]["id"].clone();
    leak["candidate"]["last_active_days"] = Value::from(4321);
    let mut text = std::fs::read_to_string(&synthetic).unwrap();
    text.push_str(&format!("{leak}\n"));
    let with_leak = dir.path().join("leak.jsonl");
    std::fs::write(&with_leak, &text).unwrap();
    assert!(mix(&golden, &with_leak, &out, &[]).status.success());
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["counts"]["synthetic_from_validation"], 1);
    assert!(
        !std::fs::read_to_string(out.join("pool.jsonl"))
            .unwrap()
            .contains("s-leak")
    );

    // A real row in the synthetic file, and a repeated id, are errors naming the line.
    let mut wrong = rows(&golden)[0].clone();
    wrong["id"] = Value::from("p-other");
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, format!("{}\n", wrong)).unwrap();
    let o = mix(&golden, &bad, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.jsonl`, line 1: `source`: expected `\"source\": \"synthetic\"`"),
        "{err}"
    );
    let mut twice = std::fs::read_to_string(&synthetic).unwrap();
    let first_line = twice.lines().next().unwrap().to_string();
    twice.push_str(&first_line);
    twice.push('\n');
    std::fs::write(&bad, twice).unwrap();
    let o = mix(&golden, &bad, &out, &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("line 401: `id`: the id `s-000001` was already used (line 1 of"),
        "{err}"
    );
}

#[path = "support/seeded.rs"]
mod seeded;

proptest! {
    // Pinned seeds, no regression file in the source tree (`support/seeded.rs`).
    #![proptest_config(seeded::config(256, 0x6d69_7801))]

    #[test]
    fn every_run_of_batches_is_within_one_row_of_the_share(
        share in 0.0f64..=1.0, batch in 1usize..128, batches in 0usize..200
    ) {
        let reals = real_per_batch(share, batch, batches);
        prop_assert_eq!(reals.len(), batches);
        for i in 0..reals.len() {
            let mut sum = 0usize;
            for (j, r) in reals.iter().enumerate().skip(i) {
                prop_assert!(*r <= batch);
                sum += r;
                let want = share * (batch * (j - i + 1)) as f64;
                prop_assert!((sum as f64 - want).abs() <= 1.0 + 1e-9,
                    "batches {}..={}: {} real rows, the share wants {}", i, j, sum, want);
            }
        }
    }

    #[test]
    fn the_sampler_fills_every_batch_at_the_share_without_repeating_a_row(
        share in 0.0f64..=1.0, batch in 1usize..48, real in 0usize..400, synthetic in 0usize..900,
        seed in 0u64..1000, epoch in 0u64..5
    ) {
        // Real rows first, then synthetic ones, as the mix stage writes its pool.
        let is_real: Vec<bool> = (0..real + synthetic).map(|i| i < real).collect();
        let sampler = MixSampler::new(is_real.iter().copied(), share, seed);
        let batches = sampler.epoch(epoch, batch);
        prop_assert_eq!(batches.len(), batches_possible(share, batch, real, synthetic));
        let mut seen = BTreeSet::new();
        let mut sum = 0.0f64;
        for b in &batches {
            prop_assert_eq!(b.len(), batch);
            for i in b {
                prop_assert!(*i < is_real.len());
                prop_assert!(seen.insert(*i), "row {} twice in an epoch", i);
            }
            sum += b.iter().filter(|i| is_real[**i]).count() as f64 - share * batch as f64;
            prop_assert!(sum.abs() <= 1.0 + 1e-9);
        }
    }

    #[test]
    fn the_batches_made_fit_the_pools_and_one_more_would_not(
        share in 0.0f64..=1.0, batch in 1usize..64, real in 0usize..2000, synthetic in 0usize..5000
    ) {
        let k = batches_possible(share, batch, real, synthetic);
        let r: usize = real_per_batch(share, batch, k).iter().sum();
        prop_assert!(r <= real);
        prop_assert!(k * batch - r <= synthetic);
        let r: usize = real_per_batch(share, batch, k + 1).iter().sum();
        prop_assert!(r > real || (k + 1) * batch - r > synthetic);
    }
}
