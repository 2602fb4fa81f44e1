//! The real Open Bandit sample, read straight from the pinned `obp-0.4.1` wheel that CI downloads
//! and exports as `RUBRIC_OBP_WHEEL` (`.ci/run`): converted to the click format, then cleaned by
//! `job_match`'s clean block (rows in = kept + dropped, report snapshot). Where the variable is
//! unset it fails under CI and skips visibly elsewhere (`support/prerequisite.rs`); never touches
//! the network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_runtime::data::clicks::Click;
use rubric_runtime::data::obd::{BehaviorPolicy, Campaign, OBP_WHEEL_ENV, read_sample};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

#[path = "support/prerequisite.rs"]
mod prerequisite;

/// The wheel `RUBRIC_OBP_WHEEL` names: a failure under CI where it is unset or not a file, a
/// visible skip elsewhere.
fn wheel() -> Option<PathBuf> {
    let set = std::env::var_os(OBP_WHEEL_ENV).map(PathBuf::from);
    let missing = match &set {
        None => format!("{OBP_WHEEL_ENV} is not set"),
        Some(p) => format!(
            "{OBP_WHEEL_ENV} names `{}`, which is not a file",
            p.display()
        ),
    };
    prerequisite::prerequisite(
        set.filter(|p| p.is_file()),
        &missing,
        "download the pinned wheel and point the variable at it, as .ci/run does: \
         `pip download obp==0.4.1 --no-deps --only-binary=:all: --python-version 3.9 -d DIR` \
         then `export RUBRIC_OBP_WHEEL=DIR/obp-0.4.1-py3-none-any.whl`",
    )
}

#[test]
fn reads_every_sample_of_the_wheel() {
    let Some(wheel) = wheel() else { return };
    for policy in [BehaviorPolicy::Random, BehaviorPolicy::Bts] {
        for campaign in [Campaign::All, Campaign::Men, Campaign::Women] {
            let clicks = read_sample(&wheel, policy, campaign).unwrap();
            assert_eq!(clicks.len(), 10_000, "{policy:?} {campaign:?}");
            let positions: BTreeSet<u32> = clicks.iter().map(|c| c.position).collect();
            assert_eq!(positions, BTreeSet::from([1, 2, 3]));
            assert!(clicks.iter().all(|c| c.propensity.is_some()));
            assert!(
                clicks.windows(2).all(|w| w[0].ts <= w[1].ts),
                "in time order"
            );
        }
    }
    let random = read_sample(&wheel, BehaviorPolicy::Random, Campaign::All).unwrap();
    assert_eq!(random.iter().filter(|c| c.clicked).count(), 38);
    assert!(random.iter().all(|c| c.propensity == Some(0.0125)), "1/80");
    let contexts: BTreeSet<&str> = random.iter().map(|c| c.query_id.as_str()).collect();
    assert_eq!(contexts.len(), 240);
    // Written and read back in the documented click format.
    for (i, c) in random.iter().take(100).enumerate() {
        assert_eq!(&Click::parse(i as u64 + 1, &c.to_json()).unwrap(), c);
    }
}

#[test]
fn cleaning_the_real_log_reconciles() {
    let Some(wheel) = wheel() else { return };
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("obd.jsonl");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rubric"))
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let o = run(&[
        "data",
        "clicks",
        "--obd",
        wheel.to_str().unwrap(),
        "--obd-logging",
        "bts",
        "--out",
        log.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("wrote 10000 impressions"), "{err}");
    let report_path = dir.path().join("report.json");
    let out = dir.path().join("clean.jsonl");
    let o = run(&[
        "data",
        "clean",
        "--pipeline",
        "policies/job_match.policy",
        "--clicks",
        log.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--report",
        report_path.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let mut report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let rows = &report["rows"];
    let n = |k: &str| rows[k].as_u64().unwrap();
    assert_eq!(n("in"), 10_000);
    assert_eq!(n("in"), n("kept") + n("dropped") + n("quarantined"));
    let kept = std::fs::read_to_string(&out).unwrap().lines().count() as u64;
    assert_eq!(kept, n("kept"));
    report["policy"] = json!("[policy hash]");
    insta::with_settings!({snapshot_path => "snapshots/data_obd", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("bts_all.report", serde_json::to_string_pretty(&report).unwrap());
    });
}
