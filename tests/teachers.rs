//! The teachers as stages of `rubric train` and `rubric run`, on a small copy of the job_match
//! example with tiny models: they train after the data stages they read, write Hugging Face
//! checkpoints with a card of what they were made from, are skipped when nothing they read
//! changed, score the held-out pairs from disk exactly as their cards say, and learn the click
//! log's position bias as a training-only term.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/small_job_match.rs"]
mod small_job_match;

use small_job_match::{edit, statuses, with};

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::label::engine::Engine;
use rubric_runtime::teach::examples::{Sources, build};
use rubric_runtime::teach::task::measure;
use rubric_runtime::teach::{MODEL_DIR, POSITION_BIAS, TrainedModel, read_card};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rubric(args: &[&str], project: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(args)
        .current_dir(project)
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "rubric failed:\n{stderr}");
    stderr
}

/// `rubric train --stage click`: only the click teacher trains.
fn train_click_alone(project: &Path) {
    let out = ok(rubric(
        &[
            "train",
            "job_match.policy",
            "--dir",
            "runs",
            "--stage",
            "click",
        ],
        project,
    ));
    assert_eq!(with(&statuses(&out), "done"), ["teacher.click"], "{out}");
}

/// The folder of a stage's latest outputs.
fn stage_dir(runs: &Path, stage: &str) -> PathBuf {
    let latest: BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(runs.join("latest.json")).unwrap()).unwrap();
    runs.join("stages").join(stage).join(&latest[stage])
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn teachers_train_after_their_data_and_rerun_only_when_what_they_read_changes() {
    let project = small_job_match::project(300, 3000);
    let p = project.path();
    let first = statuses(&ok(rubric(
        &["train", "job_match.policy", "--dir", "runs"],
        p,
    )));
    assert_eq!(
        with(&first, "done"),
        [
            "clean.clicks",
            "label.golden",
            "mix",
            "synthesize.golden",
            "teacher.click",
            "teacher.policy"
        ],
        "the teachers and what they read, nothing else: {first:?}"
    );
    let runs = p.join("runs");

    // Hugging Face layout, and a card naming the policy, the plan and the data.
    let policy_dir = stage_dir(&runs, "teacher.policy");
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "rubric.json",
    ] {
        assert!(policy_dir.join(MODEL_DIR).join(file).is_file(), "{file}");
    }
    let card = read_card(&policy_dir.join(MODEL_DIR)).unwrap();
    let compiled = compile_file(&p.join("job_match.policy"), &Options::default()).unwrap();
    assert_eq!(card.policy, compiled.lowered.labeling.policy);
    assert_eq!(card.plan.len(), 64);
    let mix_manifest = json(&stage_dir(&runs, "mix").join("manifest.json"));
    assert_eq!(
        card.data["stage:mix/pool.jsonl"],
        mix_manifest["outputs"]["pool.jsonl"]["sha256"]
            .as_str()
            .unwrap()
    );
    assert_eq!(
        card.heads.scores.last().map(String::as_str),
        Some("overall")
    );
    assert_eq!(
        card.heads.grades.first().map(String::as_str),
        Some("excellent")
    );
    for metric in ["policy_alignment", "grade_kappa", "ndcg@10", "policy_drift"] {
        assert!(
            card.metrics[metric].is_finite(),
            "{metric}: {:?}",
            card.metrics
        );
    }
    // A dimension scored from a table (employment type: 0, 0.4 or 1) is reported on those
    // scores; a ramp (the weeks until available) is not.
    assert_eq!(
        card.levels.get("employment_type"),
        Some(&vec![0.0, 0.4, 1.0]),
        "{:?}",
        card.levels
    );
    assert!(!card.levels.contains_key("availability"));
    assert!(card.metrics["policy_alignment.continuous"].is_finite());
    assert_eq!(card.history.len(), 1);
    // The manifest records the metrics and the model's files; the speed is a timing.
    let manifest = json(&policy_dir.join("manifest.json"));
    assert_eq!(
        manifest["figures"]["grade_kappa"].as_f64(),
        Some(card.metrics["grade_kappa"])
    );
    assert!(manifest["outputs"]["model/model.safetensors"]["sha256"].is_string());
    assert!(
        manifest["timings"]["train_rows_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let click = read_card(&stage_dir(&runs, "teacher.click").join(MODEL_DIR)).unwrap();
    assert!(click.heads.click && click.heads.scores.is_empty());
    assert!(click.metrics["click_auc"].is_finite());
    assert!(
        click
            .data
            .keys()
            .any(|k| k.starts_with("stage:clean.clicks/"))
    );

    // Nothing changed: nothing trains again.
    let again = statuses(&ok(rubric(
        &["train", "job_match.policy", "--dir", "runs"],
        p,
    )));
    assert!(with(&again, "done").is_empty(), "{again:?}");

    // The click teacher's settings: only it trains again.
    edit(
        p,
        "train { epochs 2, lr 1e-2, batch 32 }",
        "train { epochs 2, lr 8e-3, batch 32 }",
    );
    let click_edit = statuses(&ok(rubric(
        &["train", "job_match.policy", "--dir", "runs"],
        p,
    )));
    assert_eq!(
        with(&click_edit, "done"),
        ["teacher.click"],
        "{click_edit:?}"
    );

    // One teacher by name; `rubric run` then finds it done.
    edit(
        p,
        "predicts dimensions, overall, grades",
        "predicts dimensions, grades",
    );
    let one = statuses(&ok(rubric(
        &[
            "train",
            "job_match.policy",
            "--dir",
            "runs",
            "--stage",
            "policy",
        ],
        p,
    )));
    assert_eq!(with(&one, "done"), ["teacher.policy"], "{one:?}");
    let run = statuses(&ok(rubric(
        &[
            "run",
            "job_match.policy",
            "--dir",
            "runs",
            "--until",
            "teacher.click",
        ],
        p,
    )));
    assert_eq!(with(&run, "done"), ["document"], "{run:?}");
    assert!(
        !run.contains_key("distill"),
        "nothing after `--until`: {run:?}"
    );

    // Not a teacher, and no such teacher: each says what to do.
    let out = rubric(
        &[
            "train",
            "job_match.policy",
            "--dir",
            "runs",
            "--stage",
            "mix.x",
        ],
        p,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rubric run"));
    let out = rubric(
        &[
            "train",
            "job_match.policy",
            "--dir",
            "runs",
            "--stage",
            "clik",
        ],
        p,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("`teacher.clik`") && stderr.contains("`teacher.click`"),
        "{stderr}"
    );
}

#[test]
fn a_saved_teacher_scores_the_held_out_pairs_as_its_card_says_and_learned_position_bias() {
    let project = small_job_match::project(300, 3000);
    let p = project.path();
    ok(rubric(&["train", "job_match.policy", "--dir", "runs"], p));
    let runs = p.join("runs");
    let compiled = compile_file(&p.join("job_match.policy"), &Options::default()).unwrap();
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let mix = stage_dir(&runs, "mix");
    let clean = stage_dir(&runs, "clean.clicks").join("clicks.clean.jsonl");
    for (stage, clicks) in [
        ("teacher.policy", None),
        ("teacher.click", Some(clean.as_path())),
    ] {
        let dir = stage_dir(&runs, stage).join(MODEL_DIR);
        let teacher = TrainedModel::load(&dir, &engine, &candle_core::Device::Cpu).unwrap();
        let sources = Sources {
            pool: &mix.join("pool.jsonl"),
            validation: &mix.join("validation.jsonl"),
            clicks,
        };
        let rows = build(
            &engine,
            &teacher.heads,
            &teacher.card.inputs,
            Some(&teacher.card.features),
            &sources,
        )
        .unwrap();
        let predictions = teacher.score(&rows.validation).unwrap();
        let metrics = measure(&teacher.heads, &rows.validation, &predictions);
        assert_eq!(
            metrics, teacher.card.metrics,
            "{stage}: the model on disk is not the one measured"
        );
    }

    // Clicks fall with the position shown: the training-only bias learned it, first above last.
    let weights = candle_core::safetensors::load(
        stage_dir(&runs, "teacher.click").join("model/model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let bias: Vec<f32> = weights[POSITION_BIAS].to_vec1().unwrap();
    assert!(bias.len() >= 5, "{bias:?}");
    assert!(bias[0] > bias[bias.len() - 1], "{bias:?}");

    // A teacher starts from a checkpoint (`model init`): here the policy teacher's, copied
    // into the project. Its configuration and tokenizer come with it; the heads are new.
    let tiny = p.join("models/tiny");
    std::fs::create_dir_all(&tiny).unwrap();
    let policy_model = stage_dir(&runs, "teacher.policy").join(MODEL_DIR);
    for file in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(policy_model.join(file), tiny.join(file)).unwrap();
    }
    edit(
        p,
        "model encoder { layers 1, hidden 16, heads 2, max_len 48, vocab 400 }\n    predicts click",
        "model init \"models/tiny\"\n    predicts click",
    );
    train_click_alone(p);
    let click = stage_dir(&runs, "teacher.click").join(MODEL_DIR);
    assert_eq!(
        json(&click.join("config.json"))["hidden_size"],
        json(&tiny.join("config.json"))["hidden_size"]
    );
    assert_eq!(
        std::fs::read(click.join("tokenizer.json")).unwrap(),
        std::fs::read(tiny.join("tokenizer.json")).unwrap(),
        "the checkpoint's own tokenizer"
    );
    assert!(read_card(&click).unwrap().metrics["click_auc"].is_finite());

    // Or from a teacher of the pipeline (`model from teacher policy`): the stage reads the
    // policy teacher's, and trains after it.
    edit(p, "model init \"models/tiny\"", "model from teacher policy");
    train_click_alone(p);
    let manifest = json(&stage_dir(&runs, "teacher.click").join("manifest.json"));
    assert!(
        manifest["inputs"]["stage:teacher.policy/model/model.safetensors"].is_string(),
        "{manifest}"
    );
    let click = read_card(&stage_dir(&runs, "teacher.click").join(MODEL_DIR)).unwrap();
    assert_eq!(click.max_len, 48, "the policy teacher's text encoding");
    assert!(click.metrics["click_auc"].is_finite());
}
