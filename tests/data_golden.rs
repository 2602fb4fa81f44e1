//! `rubric data golden` end to end on the real O*NET 29.3 and SkillSpan files in
//! `../shared/data` (where that folder is absent: a failure under CI, a visible skip elsewhere): same seed same
//! bytes, every record decodes against `job_match.policy`, provenance names every field, the
//! grades are balanced, the counts reconcile, and the shipped golden set regenerates exactly.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const POLICY: &str = "policies/job_match.policy";

#[path = "support/prerequisite.rs"]
mod prerequisite;

fn shared_data() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let found = dir.join("onet-29.3").is_dir() && dir.join("skillspan").is_dir();
    prerequisite::prerequisite(
        found.then(|| dir.clone()),
        &format!(
            "the real data (O*NET 29.3 and SkillSpan) is not at `{}`",
            dir.display()
        ),
        "check out `shared/` beside the repository (its data/README.md says where each set comes from)",
    )
}

fn rubric(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the rubric binary runs")
}

fn golden(data: &Path, seed: u64, pairs: usize, out: &Path) -> Output {
    let o = rubric(&[
        "data",
        "golden",
        "--onet",
        data.join("onet-29.3").to_str().unwrap(),
        "--skillspan",
        data.join("skillspan").to_str().unwrap(),
        "--policy",
        POLICY,
        "--seed",
        &seed.to_string(),
        "--pairs",
        &pairs.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]);
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
fn the_golden_set_is_deterministic_labeled_balanced_and_says_where_each_field_came_from() {
    let Some(data) = shared_data() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let first = golden(&data, 11, 300, &a);
    golden(&data, 11, 300, &b);
    golden(&data, 12, 300, &c);
    let bytes = |d: &Path| std::fs::read(d.join("golden.jsonl")).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "the same seed gives the same bytes");
    assert_ne!(bytes(&a), bytes(&c), "another seed gives other pairs");

    let summary = String::from_utf8_lossy(&first.stdout).into_owned();
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/data_golden");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| insta::assert_snapshot!("summary_seed_11_300_pairs", summary));

    let pairs = rows(&a.join("golden.jsonl"));
    assert_eq!(pairs.len(), 300);

    // Every record decodes against the policy's entities: `rubric label` labels every row.
    let labels = dir.path().join("labels.jsonl");
    let o = rubric(&[
        "label",
        "--policy",
        POLICY,
        "--pairs",
        a.join("golden.jsonl").to_str().unwrap(),
        "--out",
        labels.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("labeled 300 of 300 rows"));

    // The grades the labels give are the ones the summary counts, five equal shares.
    let mut grades: BTreeMap<String, usize> = BTreeMap::new();
    for l in rows(&labels) {
        *grades
            .entry(
                l["overall_grade"]
                    .as_str()
                    .unwrap_or("abstained")
                    .to_string(),
            )
            .or_default() += 1;
    }
    for g in ["excellent", "good", "fair", "poor", "excluded"] {
        assert_eq!(grades.get(g), Some(&60), "grade {g}: {grades:?}");
        assert!(
            summary.contains(&format!("  {g:<12} {:>6}", 60)),
            "{summary}"
        );
    }

    // Provenance: real, generated and composed partition each entity's fields exactly.
    let compiled = compile_file(Path::new(POLICY), &Options::default()).unwrap();
    let program = &compiled.lowered.labeling;
    let mut ids = BTreeSet::new();
    let mut candidates = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for p in &pairs {
        assert_eq!(p["source"], "real");
        assert!(ids.insert(p["id"].as_str().unwrap().to_string()));
        assert!(candidates.insert(p["candidate_id"].as_str().unwrap().to_string()));
        jobs.insert(p["query_id"].as_str().unwrap().to_string());
        kinds.insert(p["kind"].as_str().unwrap().to_string());
        for role in &program.roles {
            let entity = &program.entities[role.entity as usize];
            let want: BTreeSet<String> = entity.fields.iter().map(|f| f.name.clone()).collect();
            let prov = &p["provenance"][&role.name];
            let mut named = BTreeSet::new();
            for origin in ["real", "generated", "composed"] {
                for f in prov[origin].as_array().unwrap() {
                    assert!(named.insert(f.as_str().unwrap().to_string()), "{f} twice");
                }
            }
            assert_eq!(named, want, "{} of {}", role.name, p["id"]);
            assert!(prov["onet"].as_str().unwrap().len() == 10);
            for f in p[&role.name].as_object().unwrap().keys() {
                assert!(
                    want.contains(f),
                    "`{f}` is not a field of `{}`",
                    entity.name
                );
            }
        }
        // Skill lists and the occupation are O*NET's, always.
        for f in ["required_skills", "title_family"] {
            let real = p["provenance"]["query"]["real"].as_array().unwrap();
            assert!(real.iter().any(|x| x == f), "query.{f} is real");
        }
    }
    assert!(
        jobs.len() < pairs.len() / 2,
        "jobs are shared by several candidates"
    );
    assert_eq!(
        kinds.len(),
        7,
        "every way of drawing a candidate is used: {kinds:?}"
    );
    assert!(summary.contains(&format!(
        "golden set: 300 pairs, {} jobs, 300 candidates",
        jobs.len()
    )));
}

#[test]
fn the_shipped_golden_set_regenerates_byte_for_byte() {
    let Some(data) = shared_data() else { return };
    let shipped = Path::new("examples/job_match/data/golden.jsonl");
    let readme = std::fs::read_to_string("examples/job_match/data/README.md").unwrap();
    // The README's command is the one this test runs.
    assert!(readme.contains(
        "rubric data golden --onet ../shared/data/onet-29.3 --skillspan ../shared/data/skillspan \\\n    --policy policies/job_match.policy --seed 7 --pairs 2000 --out examples/job_match/data"
    ));
    let dir = tempfile::tempdir().unwrap();
    golden(&data, 7, 2000, dir.path());
    let made = std::fs::read(dir.path().join("golden.jsonl")).unwrap();
    assert!(
        made == std::fs::read(shipped).unwrap(),
        "examples/job_match/data/golden.jsonl differs from what its README's command makes"
    );
}

#[test]
fn a_malformed_onet_row_is_an_error_naming_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let onet = dir.path().join("onet");
    let skillspan = dir.path().join("skillspan");
    std::fs::create_dir_all(&onet).unwrap();
    std::fs::create_dir_all(&skillspan).unwrap();
    let write = |name: &str, text: &str| std::fs::write(onet.join(name), text).unwrap();
    write(
        "Occupation Data.txt",
        "O*NET-SOC Code\tTitle\tDescription\n15-1252.00\tSoftware Developers\tWrite software.\n15-125X.00\tBroken\tNo.\n",
    );
    let o = rubric(&[
        "data",
        "golden",
        "--onet",
        onet.to_str().unwrap(),
        "--skillspan",
        skillspan.to_str().unwrap(),
        "--policy",
        POLICY,
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Occupation Data.txt`, line 3: `15-125X.00` is not an O*NET-SOC code"),
        "{err}"
    );
}
