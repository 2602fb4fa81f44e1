//! Every shipped policy lowers to artefacts whose snapshots are the review of an edit: the
//! labeling program, loss terms and training plan (the source map is left out: it moves with
//! every line). Also `rubric test` and `rubric trace` outputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::Options;
use rubric_runtime::compile::{compile_file, deterministic_json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn policies() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("policies")
        .expect("policies/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "policy"))
        .collect();
    files.sort();
    files
}

fn name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[test]
fn artefacts_of_every_policy() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/artefacts");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for path in policies()
            .iter()
            .chain([&PathBuf::from("examples/language_sketch/job_match.policy")])
        {
            let compiled = compile_file(path, &Options::default())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let stem = if path.starts_with("examples") {
                "language_sketch".to_string()
            } else {
                name(path)
            };
            insta::assert_snapshot!(
                format!("{stem}.labeling_program"),
                deterministic_json(&compiled.lowered.labeling)
            );
            if let Some(terms) = &compiled.lowered.loss_terms {
                insta::assert_snapshot!(format!("{stem}.loss_terms"), deterministic_json(terms));
            }
            if let Some(plan) = &compiled.lowered.training_plan {
                insta::assert_snapshot!(format!("{stem}.training_plan"), deterministic_json(plan));
            }
        }
    });
}

/// The runtime reads back what the compiler wrote: the plan and loss terms of every shipped
/// pipeline round-trip through their readers, and another schema version is refused by name.
#[test]
fn plans_and_loss_terms_round_trip_through_the_readers() {
    use rubric_compiler::lower::plan::{ArtefactError, LossTerms, TrainingPlan};
    for path in policies()
        .iter()
        .chain([&PathBuf::from("examples/language_sketch/job_match.policy")])
    {
        let compiled = compile_file(path, &Options::default()).unwrap();
        let (Some(plan), Some(terms)) = (
            &compiled.lowered.training_plan,
            &compiled.lowered.loss_terms,
        ) else {
            continue;
        };
        let text = deterministic_json(plan);
        assert_eq!(&TrainingPlan::from_json(&text).unwrap(), plan);
        assert_eq!(
            &LossTerms::from_json(&deterministic_json(terms)).unwrap(),
            terms
        );

        let old = text.replace("rubric.training-plan/3", "rubric.training-plan/1");
        match TrainingPlan::from_json(&old) {
            Err(e @ ArtefactError::Schema { .. }) => {
                let message = e.to_string();
                assert!(message.contains("`rubric.training-plan/1`"), "{message}");
                assert!(message.contains("rubric compile"), "{message}");
            }
            other => panic!("an old plan was read: {other:?}"),
        }
        // Through the files `rubric compile` writes.
        let dir = tempfile::tempdir().unwrap();
        rubric_runtime::compile::write_artefacts(&compiled.lowered, dir.path()).unwrap();
        let (read_plan, read_terms) =
            rubric_runtime::compile::read_pipeline_artefacts(dir.path()).unwrap();
        assert_eq!(&read_plan, plan);
        assert_eq!(&read_terms, terms);
        let plan_file = dir.path().join("training_plan.json");
        std::fs::write(&plan_file, &old).unwrap();
        let e = rubric_runtime::compile::read_pipeline_artefacts(dir.path()).unwrap_err();
        assert!(
            e.to_string()
                .contains("training_plan.json`: the training plan has schema"),
            "{e}"
        );

        let torn = &text[..text.len() / 2];
        assert!(matches!(
            TrainingPlan::from_json(torn),
            Err(ArtefactError::Malformed { .. })
        ));
        let unknown = text.replacen("\"pipeline\"", "\"pipelin\"", 1);
        assert!(TrainingPlan::from_json(&unknown).is_err());
    }
}

#[test]
fn compiling_is_deterministic() {
    for path in policies() {
        let a = compile_file(&path, &Options::default()).expect("compiles");
        let b = compile_file(&path, &Options::default()).expect("compiles");
        assert_eq!(
            deterministic_json(&a.lowered.labeling),
            deterministic_json(&b.lowered.labeling)
        );
        assert_eq!(
            deterministic_json(&a.lowered.source_map),
            deterministic_json(&b.lowered.source_map)
        );
    }
}

#[test]
fn a_comment_or_layout_edit_keeps_the_policy_hash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = std::fs::read_to_string("policies/job_match.policy").expect("read");
    let edited = original.replace(
        "policy job_match version 1 {",
        "// a reviewer's note\npolicy   job_match   version 1 {\n\n",
    );
    assert_ne!(original, edited);
    let path = dir.path().join("job_match.policy");
    std::fs::write(&path, &edited).expect("write");
    let a = compile_file(Path::new("policies/job_match.policy"), &Options::default())
        .expect("compiles");
    let b = compile_file(&path, &Options::default()).expect("compiles");
    assert_eq!(
        a.lowered.labeling.policy.hash,
        b.lowered.labeling.policy.hash
    );
    // A change of meaning changes it.
    let changed = original.replace("cap overall at 0.3", "cap overall at 0.31");
    std::fs::write(&path, &changed).expect("write");
    let c = compile_file(&path, &Options::default()).expect("compiles");
    assert_ne!(
        a.lowered.labeling.policy.hash,
        c.lowered.labeling.policy.hash
    );
    // The pipeline is not the policy: how a teacher trains changes the plan, not the policy.
    let retrained = original.replace("epochs 12, lr 0.001", "epochs 13, lr 0.001");
    assert_ne!(original, retrained, "the pipeline's teacher moved");
    std::fs::write(&path, &retrained).expect("write");
    let d = compile_file(&path, &Options::default()).expect("compiles");
    assert_eq!(
        a.lowered.labeling.policy.hash,
        d.lowered.labeling.policy.hash
    );
    assert_ne!(a.lowered.training_plan, d.lowered.training_plan);
}

fn rubric(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn rubric_test_outputs() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("snapshots/cli");
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for path in policies() {
            let (code, stdout, _) = rubric(&[
                "test",
                path.to_str().unwrap_or_default(),
                "--min-coverage",
                "100",
            ]);
            assert_eq!(code, 0, "{stdout}");
            insta::assert_snapshot!(format!("test.{}", name(&path)), stdout);
        }
    });
}

#[test]
fn rubric_test_fails_on_a_wrong_expectation_and_low_coverage() {
    let dir = tempfile::tempdir().expect("temp dir");
    let text = std::fs::read_to_string("examples/language_sketch/job_match.policy")
        .expect("read")
        .replace("expect overall >= 0.85", "expect overall < 0.5");
    let path = dir.path().join("job_match.policy");
    std::fs::write(&path, text).expect("write");
    let (code, stdout, _) = rubric(&["test", path.to_str().unwrap_or_default()]);
    assert_eq!(code, 1);
    assert!(
        stdout.contains("FAIL  senior rust engineer for a senior rust role"),
        "{stdout}"
    );
    assert!(
        stdout.contains("expected `overall < 0.5`, got 1"),
        "{stdout}"
    );
    let (code, stdout, _) = rubric(&[
        "test",
        "examples/language_sketch/job_match.policy",
        "--min-coverage",
        "100",
    ]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("clause coverage is below the required 100%"),
        "{stdout}"
    );
}

#[test]
fn rubric_trace_outputs() {
    let pair = r#"{"id": "p-1",
      "query": {"title": "Senior Rust Engineer", "title_family": "software_developers",
                "required_skills": ["rust", "postgres", "kafka"], "preferred_skills": ["kubernetes"],
                "seniority": "senior", "min_years": 5, "education": "bachelor", "industry": "fintech",
                "location": "Berlin", "remote": false, "employment_type": "full_time",
                "visa_sponsorship": false, "start_within_weeks": 4},
      "candidate": {"headline": "Backend engineer", "title_family": "software_developers",
                "skills": ["rust", "postgres"], "seniority": "mid", "years_experience": 4,
                "education": "master", "industry": "software", "location": "Munich",
                "open_to_remote": false, "willing_to_relocate": false, "needs_sponsorship": false,
                "available_in_weeks": 8, "last_active_days": 3, "preferred_employment": "full_time"}}"#;
    let (code, stdout, stderr) = rubric(&[
        "trace",
        "--policy",
        "policies/job_match.policy",
        "--pair",
        pair,
    ]);
    assert_eq!(code, 0, "{stderr}");
    insta::with_settings!({snapshot_path => "snapshots/cli", prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("trace.job_match", stdout);
    });
    let (code, _, stderr) = rubric(&[
        "trace",
        "--policy",
        "policies/job_match.policy",
        "--pair",
        "{\"id\": 1}",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("`query`: missing"), "{stderr}");
}
