//! rubric-ml's metrics agree with the reference implementations (scikit-learn's
//! `cohen_kappa_score`, `roc_auc_score`, `ndcg_score`, `log_loss`, scipy's `spearmanr`) to
//! 1e-9 on random inputs, ties and small samples included. The references run in the Python
//! named by `RUBRIC_METRICS_PYTHON`, a virtual environment `.ci/run` makes with pinned versions;
//! without it the test is skipped visibly (and fails under CI).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/prerequisite.rs"]
mod prerequisite;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rubric_ml::metrics::{KappaWeights, cohen_kappa, log_loss, ndcg_at_k, roc_auc, spearman};
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};

/// A value from a small set, so that ties are common.
fn tied(rng: &mut ChaCha8Rng) -> f64 {
    f64::from(rng.random_range(0..8u8)) / 4.0
}

#[test]
fn metrics_agree_with_scikit_learn_and_scipy() {
    let Some(python) = prerequisite::prerequisite(
        std::env::var("RUBRIC_METRICS_PYTHON").ok(),
        "RUBRIC_METRICS_PYTHON is not set",
        "make the pinned environment as .ci/run does: `python3 -m venv /tmp/rubric-metrics && \
         /tmp/rubric-metrics/bin/pip install scikit-learn==1.9.1 scipy==1.17.1 numpy==2.4.6` \
         then `export RUBRIC_METRICS_PYTHON=/tmp/rubric-metrics/bin/python`",
    ) else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(20261206);
    let mut cases: Vec<Value> = Vec::new();
    let mut ours: Vec<f64> = Vec::new();
    for round in 0..60 {
        let n = rng.random_range(5..200usize);
        let with_ties = round % 2 == 0;
        let draw = |rng: &mut ChaCha8Rng| {
            if with_ties {
                tied(rng)
            } else {
                rng.random::<f64>()
            }
        };

        let a: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
        let b: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
        if let Some(s) = spearman(&a, &b) {
            cases.push(json!({"kind": "spearman", "a": a, "b": b}));
            ours.push(s);
        }

        let classes = rng.random_range(2..6usize);
        let ga: Vec<usize> = (0..n).map(|_| rng.random_range(0..classes)).collect();
        let gb: Vec<usize> = ga
            .iter()
            .map(|g| {
                if rng.random_bool(0.6) {
                    *g
                } else {
                    rng.random_range(0..classes)
                }
            })
            .collect();
        for (name, weights) in [
            ("unweighted", KappaWeights::Unweighted),
            ("linear", KappaWeights::Linear),
            ("quadratic", KappaWeights::Quadratic),
        ] {
            if let Some(k) = cohen_kappa(&ga, &gb, classes, weights) {
                cases.push(
                    json!({"kind": "kappa", "a": ga, "b": gb, "classes": classes, "weights": name}),
                );
                ours.push(k);
            }
        }

        let labels: Vec<bool> = (0..n).map(|_| rng.random_bool(0.3)).collect();
        let scores: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
        let as_ints: Vec<u8> = labels.iter().map(|l| u8::from(*l)).collect();
        if let Some(auc) = roc_auc(&scores, &labels) {
            cases.push(json!({"kind": "auc", "labels": as_ints, "scores": scores}));
            ours.push(auc);
        }
        let probabilities: Vec<f64> = (0..n).map(|_| rng.random::<f64>()).collect();
        cases.push(json!({"kind": "log_loss", "labels": as_ints, "probabilities": probabilities}));
        ours.push(log_loss(&probabilities, &labels).unwrap());

        let relevance: Vec<f64> = (0..n)
            .map(|_| f64::from(rng.random_range(0..5u8)))
            .collect();
        let k = rng.random_range(1..=n.min(20));
        cases.push(json!({"kind": "ndcg", "relevance": relevance, "scores": scores, "k": k}));
        ours.push(ndcg_at_k(&relevance, &scores, k).unwrap());
    }

    let mut child = Command::new(&python)
        .arg("tests/support/sklearn_metrics.py")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(Value::Array(cases.clone()).to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the reference script failed");
    let theirs: Vec<f64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(theirs.len(), ours.len());
    for ((case, ours), theirs) in cases.iter().zip(&ours).zip(&theirs) {
        assert!(
            (ours - theirs).abs() <= 1e-9,
            "{}: ours {ours}, reference {theirs}",
            case["kind"]
        );
    }
}
