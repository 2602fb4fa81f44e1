//! The pipeline checks' tests: each diagnostic on a small pipeline, and their messages' style.

#![allow(clippy::unwrap_used)]

use super::*;
use crate::source::FileId;
use crate::syntax::ast::TopItem;
use crate::syntax::{Limits, parse};

/// The pipeline of the language sketch: checks clean.
const SKETCH: &str = r#"
pipeline job_match_v3 for job_match {
  data {
    golden  "data/golden.jsonl"
    clicks  "data/clicks.jsonl" clean {
      drop bots when clicks_per_minute > 30
      drop outliers dwell_seconds beyond 3 sigma
    }
    synthetic from golden { count 20000, strategy coverage }
    mix real 30% synthetic 70%
    split validation 10% seed 7
  }
  teacher policy {
    model encoder { layers 6, hidden 384, heads 12 }
    predicts dimensions, overall
    loss mse
    train { epochs 5, lr 3e-5, batch 32 }
  }
  teacher click {
    model encoder { layers 4, hidden 256, heads 4 }
    predicts click
    loss bce
  }
  student {
    model encoder { layers 2, hidden 128, heads 4 }
    distill policy weight 0.6 loss mse
    distill click  weight 0.4 loss bce temperature 2
    drift penalty 0.5 tolerance 0.05 rebalance every 2 epochs
    regularize weight_decay 0.01 dropout 0.1
    early_stop on policy_alignment patience 3
  }
  quantize int8 { prune heads below 0.01 }
  monitor {
    alert policy_drift > 0.05
    alert click_auc < 0.70
    alert p99_latency > 20ms
  }
}
"#;

fn outline() -> PolicyOutline<'static> {
    PolicyOutline {
        name: "job_match",
        dimensions: vec!["skill_match", "seniority", "industry", "location"],
        roles: vec![
            RoleOutline {
                name: "query",
                fields: vec![
                    ("title", InputShape::Text),
                    ("required_skills", InputShape::Collection),
                    ("seniority", InputShape::Enum),
                    ("remote", InputShape::Bool),
                ],
            },
            RoleOutline {
                name: "candidate",
                fields: vec![
                    ("headline", InputShape::Text),
                    ("skills", InputShape::Collection),
                    ("years_experience", InputShape::Number),
                    ("location", InputShape::String),
                ],
            },
        ],
    }
}

fn pipeline(text: &str) -> PipelineDecl {
    let parsed = parse(FileId(0), text, &Limits::default());
    assert!(
        !parsed.diagnostics.has_errors(),
        "does not parse: {:?}",
        parsed.diagnostics
    );
    parsed
        .tree
        .unwrap()
        .items
        .into_iter()
        .find_map(|item| match item {
            TopItem::Pipeline(p) => Some(p),
            _ => None,
        })
        .unwrap()
}

fn check_with(text: &str, policy: Option<&PolicyOutline<'_>>) -> Vec<Diagnostic> {
    let mut diagnostics = Diagnostics::new();
    check_pipeline(&pipeline(text), policy, &mut diagnostics);
    diagnostics.into_iter().collect()
}

fn check(text: &str) -> Vec<Diagnostic> {
    check_with(text, Some(&outline()))
}

fn codes(text: &str) -> Vec<Code> {
    check(text).iter().map(|d| d.code).collect()
}

/// The sketch with `from` replaced by `to` (which must occur).
fn edit(from: &str, to: &str) -> String {
    assert!(SKETCH.contains(from), "`{from}` is not in the sketch");
    SKETCH.replacen(from, to, 1)
}

/// The text the primary span of the only diagnostic covers.
fn primary_text(text: &str) -> String {
    let found = check(text);
    assert_eq!(found.len(), 1, "{found:?}");
    text[found[0].span().unwrap().range()].to_string()
}

#[test]
fn the_sketch_checks_clean() {
    assert_eq!(check(SKETCH), vec![]);
    assert_eq!(check_with(SKETCH, None), vec![]);
}

#[test]
fn a_pipeline_for_another_policy() {
    let text = edit("for job_match", "for jobmatch");
    assert_eq!(codes(&text), vec![Code::PipelinePolicy]);
    assert_eq!(primary_text(&text), "jobmatch");
    let help = check(&text)[0].help.clone().unwrap();
    assert!(
        help.contains("pipeline job_match_v3 for job_match"),
        "{help}"
    );
    // Without the policy the caller has reported it; nothing more here.
    assert_eq!(check_with(&text, None), vec![]);
}

#[test]
fn unknown_targets() {
    let text = edit(
        "predicts dimensions, overall",
        "predicts dimensions, overall_grade, skills",
    );
    assert_eq!(codes(&text), vec![Code::UnknownTarget, Code::UnknownTarget]);
    let found = check(&text);
    assert_eq!(&text[found[1].span().unwrap().range()], "skills");
    // A dimension by name is a target; without the policy, names are not checked.
    assert_eq!(
        codes(&edit("predicts click", "predicts skill_match, grades")),
        vec![]
    );
    assert_eq!(check_with(&text, None), vec![]);
    let typo = check(&edit("predicts click", "predicts skill_mach"));
    assert_eq!(typo[0].help.as_deref(), Some("did you mean `skill_match`?"));
}

#[test]
fn unknown_losses() {
    let text = edit("loss bce\n", "loss cross_entropy\n");
    assert_eq!(codes(&text), vec![Code::UnknownLoss]);
    assert_eq!(primary_text(&text), "cross_entropy");
    let text = edit("loss bce temperature 2", "loss bec temperature 2");
    assert_eq!(codes(&text), vec![Code::UnknownLoss]);
    assert_eq!(check(&text)[0].help.as_deref(), Some("did you mean `bce`?"));
}

#[test]
fn unknown_and_unused_teachers() {
    // A misspelled teacher is the one problem: the teacher it meant is not also "unused".
    let text = edit("distill click  weight", "distill clicks weight");
    assert_eq!(codes(&text), vec![Code::UnknownTeacher]);
    let found = check(&text);
    assert_eq!(&text[found[0].span().unwrap().range()], "clicks");
    assert_eq!(found[0].help.as_deref(), Some("did you mean `click`?"));
    // A name too far from any teacher suggests none, so the teacher is still unused.
    let text = edit("distill click  weight", "distill engagement weight");
    assert_eq!(
        codes(&text),
        vec![Code::UnusedTeacher, Code::UnknownTeacher]
    );
    let found = check(&text);
    assert_eq!(found[0].severity(), crate::diagnostics::Severity::Warning);
    assert_eq!(&text[found[0].span().unwrap().range()], "click");
}

#[test]
fn duplicate_teachers() {
    let text = edit("teacher click {", "teacher policy {");
    // The first `click` distill now names no teacher.
    assert_eq!(codes(&text), vec![Code::Duplicate, Code::UnknownTeacher]);
    let found = check(&text);
    assert_eq!(found[0].labels.len(), 2);
}

#[test]
fn mix_shares_must_add_up() {
    let text = edit("mix real 30% synthetic 70%", "mix real 30% synthetic 60%");
    let found = check(&text);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].code, Code::MixSum);
    assert_eq!(found[0].message, "the shares add up to 90%, not 100%");
    assert_eq!(
        &text[found[0].span().unwrap().range()],
        "real 30% synthetic 60%"
    );
    assert!(
        found[0]
            .help
            .as_deref()
            .unwrap()
            .contains("`real 30% synthetic 70%`")
    );
    assert_eq!(
        codes(&edit("mix real 30% synthetic 70%", "mix real 100%")),
        vec![]
    );
    assert_eq!(
        codes(&edit(
            "mix real 30% synthetic 70%",
            "mix real 33.3% synthetic 66.7%"
        )),
        vec![]
    );
}

#[test]
fn mix_shares_name_real_or_synthetic() {
    let text = edit("mix real 30%", "mix golden 30%");
    assert_eq!(codes(&text), vec![Code::UnknownSource]);
    assert_eq!(primary_text(&text), "golden");
    let text = edit("mix real 30%", "mix reel 30%");
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("did you mean `real`?")
    );
    let text = edit("mix real 30%", "mix synthetic 30%");
    assert_eq!(codes(&text), vec![Code::Duplicate]);
}

#[test]
fn synthetic_from_an_unknown_source() {
    let text = edit("synthetic from golden", "synthetic from gold");
    assert_eq!(codes(&text), vec![Code::UnknownSource]);
    assert_eq!(primary_text(&text), "gold");
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("did you mean `golden`?")
    );
}

#[test]
fn a_student_learns_the_rubric_or_a_click_log() {
    let learn = |lines: &str| {
        edit(
            "    drift penalty 0.5",
            &format!("{lines}\n    drift penalty 0.5"),
        )
    };
    let both = learn("    learn rubric weight 0.1 loss mse\n    learn clicks weight 0.1 loss bce");
    assert_eq!(codes(&both), vec![]);

    // A source of pairs has no labels of its own: the help says to learn the rubric's.
    let text = learn("    learn golden weight 0.1 loss mse");
    assert_eq!(codes(&text), vec![Code::UnknownSource]);
    assert_eq!(primary_text(&text), "golden");
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some(
            "`golden` is a source of pairs, and the labels of pairs are the rubric's: write \
             `learn rubric weight 0.1 loss mse`"
        )
    );
    let text = learn("    learn click weight 0.1 loss bce");
    assert_eq!(codes(&text), vec![Code::UnknownSource]);
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("did you mean `clicks`?")
    );

    let text = learn("    learn rubric weight -1 loss mse");
    assert_eq!(codes(&text), vec![Code::NegativeWeight]);
    assert_eq!(primary_text(&text), "-1");
    let text = learn("    learn clicks weight 0.1 loss hinge");
    assert_eq!(codes(&text), vec![Code::UnknownLoss]);
    let text = learn("    learn rubric weight 0.1 loss mse\n    learn rubric weight 0.2 loss mse");
    assert_eq!(codes(&text), vec![Code::Duplicate]);
}

#[test]
fn unlabeled_pairs_are_for_the_student_alone() {
    let with = |line: &str| {
        edit(
            "    synthetic from golden",
            &format!("{line}\n    synthetic from golden"),
        )
    };
    assert_eq!(
        codes(&with("    unlabeled served \"data/served.jsonl\"")),
        vec![]
    );
    let text = with("    unlabeled served \"../served.jsonl\"");
    assert_eq!(codes(&text), vec![Code::PathEscape]);

    // No synthetic pairs from them, no labels to learn.
    let text = edit(
        "    synthetic from golden",
        "    unlabeled served \"data/served.jsonl\"\n    synthetic from served",
    );
    assert_eq!(codes(&text), vec![Code::UnknownSource]);
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("generate from a labeled source: `synthetic from golden`")
    );
    let text = edit(
        "    synthetic from golden",
        "    unlabeled served \"data/served.jsonl\"\n    synthetic from golden",
    )
    .replacen(
        "    drift penalty",
        "    learn served weight 0.1 loss mse\n    drift penalty",
        1,
    );
    assert_eq!(codes(&text), vec![Code::UnknownSource]);
    assert!(
        check(&text)[0]
            .help
            .as_deref()
            .unwrap()
            .starts_with("`served` holds unlabeled pairs")
    );
}

#[test]
fn reads_nothing_is_for_a_model_with_features() {
    // `reads []`: no text, the features alone.
    let text = edit(
        "    loss bce\n",
        "    loss bce\n    reads []\n    features [hour_of_day]\n",
    );
    assert_eq!(codes(&text), vec![]);
    let text = edit("    loss bce\n", "    loss bce\n    reads []\n");
    assert_eq!(codes(&text), vec![Code::MissingPart]);
    assert_eq!(primary_text(&text), "reads []");
    assert!(
        check(&text)[0]
            .message
            .contains("the teacher `click` reads no text")
    );
}

#[test]
fn negative_weights() {
    let text = edit("weight 0.4", "weight -0.4");
    assert_eq!(codes(&text), vec![Code::NegativeWeight]);
    assert_eq!(primary_text(&text), "-0.4");
    let text = edit("drift penalty 0.5", "drift penalty -0.5");
    assert_eq!(codes(&text), vec![Code::NegativeWeight]);
    assert_eq!(primary_text(&text), "-0.5");
    assert_eq!(codes(&edit("weight 0.4", "weight 0")), vec![]);
}

#[test]
fn student_larger_than_a_teacher() {
    let text = edit(
        "layers 2, hidden 128, heads 4",
        "layers 8, hidden 512, heads 8",
    );
    let found = check(&text);
    // Larger than both teachers: one warning each.
    assert_eq!(
        found.iter().map(|d| d.code).collect::<Vec<_>>(),
        vec![Code::StudentLarger, Code::StudentLarger]
    );
    assert!(found.iter().all(|d| !d.is_error()));
    assert!(
        found[0].message.contains("8 × 512 = 4096"),
        "{}",
        found[0].message
    );
    assert!(
        found[0].message.contains("6 × 384 = 2304"),
        "{}",
        found[0].message
    );
    // Between the two teachers: larger than `click` only.
    let text = edit(
        "layers 2, hidden 128, heads 4",
        "layers 4, hidden 384, heads 4",
    );
    assert_eq!(codes(&text), vec![Code::StudentLarger]);
    // A student without sizes, or from `init`, is not compared.
    let text = edit(
        "model encoder { layers 2, hidden 128, heads 4 }",
        "model init \"models/minilm\"",
    );
    assert_eq!(codes(&text), vec![]);
    // A student without its layers is not compared: its size is missing.
    let text = edit("layers 2, hidden 128, heads 4", "hidden 4096, heads 4");
    assert_eq!(codes(&text), vec![Code::MissingPart]);
    assert!(
        check(&text)[0].message.contains("`layers`"),
        "{:?}",
        check(&text)[0].message
    );
}

#[test]
fn a_setting_has_one_place() {
    let text = edit("lr 3e-5", "lr 3e-5, weight_decay 0.1");
    assert_eq!(codes(&text), vec![Code::UnknownSetting]);
    let help = check(&text)[0].help.clone().unwrap();
    assert!(help.contains("`regularize weight_decay 0.01`"), "{help}");
    let text = edit(
        "layers 2, hidden 128, heads 4",
        "layers 2, hidden 128, heads 4, dropout 0.2",
    );
    assert!(
        check(&text)[0]
            .help
            .as_deref()
            .unwrap()
            .contains("`regularize dropout 0.1`")
    );
    let text = edit("lr 3e-5", "lr 3e-5, max_len 128");
    assert!(
        check(&text)[0]
            .help
            .as_deref()
            .unwrap()
            .contains("`model encoder { max_len 256 }`")
    );
    // Teachers regularize too.
    let text = edit(
        "    loss mse\n",
        "    loss mse\n    regularize dropout 0.2, l2 0.001\n",
    );
    assert_eq!(codes(&text), vec![]);
}

#[test]
fn synthetic_pairs_and_the_mix_go_together() {
    let text = edit("    mix real 30% synthetic 70%\n", "");
    assert_eq!(codes(&text), vec![Code::MissingPart]);
    assert!(
        check(&text)[0]
            .help
            .as_deref()
            .unwrap()
            .contains("mix real 30% synthetic 70%")
    );
    let text = edit(
        "    synthetic from golden { count 20000, strategy coverage }\n",
        "",
    );
    assert_eq!(codes(&text), vec![Code::MissingPart]);
    assert!(check(&text)[0].message.contains("70% synthetic pairs"));
    let text = edit(
        "    synthetic from golden { count 20000, strategy coverage }\n    mix real 30% synthetic 70%\n",
        "",
    );
    assert_eq!(codes(&text), vec![]);
}

#[test]
fn unknown_metrics() {
    let text = edit("early_stop on policy_alignment", "early_stop on alignment");
    assert_eq!(codes(&text), vec![Code::UnknownMetric]);
    assert_eq!(primary_text(&text), "alignment");
    let text = edit("alert p99_latency", "alert p95_latency");
    assert_eq!(codes(&text), vec![Code::UnknownMetric]);
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("did you mean `p99_latency`?")
    );
    let text = edit("early_stop on policy_alignment", "early_stop on blend");
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("did you mean `blended`?")
    );
    for metric in ["ndcg", "ndcg@0", "auc@5"] {
        let text = edit("alert click_auc", &format!("alert {metric}"));
        assert_eq!(codes(&text), vec![Code::UnknownMetric], "{metric}");
    }
    for metric in [
        "ndcg@10",
        "ndcg@1",
        "grade_kappa",
        "ctr",
        "click_logloss",
        "policy_drift",
        "blended",
    ] {
        let text = edit(
            "early_stop on policy_alignment",
            &format!("early_stop on {metric}"),
        );
        assert_eq!(codes(&text), vec![], "{metric}");
    }
}

#[test]
fn threshold_units() {
    let text = edit("alert p99_latency > 20ms", "alert p99_latency > 20");
    assert_eq!(codes(&text), vec![Code::ThresholdUnit]);
    assert_eq!(primary_text(&text), "20");
    assert!(
        check(&text)[0]
            .help
            .as_deref()
            .unwrap()
            .contains("`alert p99_latency > 20ms`")
    );
    let text = edit("alert click_auc < 0.70", "alert click_auc < 70ms");
    assert_eq!(codes(&text), vec![Code::ThresholdUnit]);
    assert_eq!(primary_text(&text), "70ms");
    assert_eq!(
        codes(&edit("alert p99_latency > 20ms", "alert p50_latency > 2s")),
        vec![]
    );
}

#[test]
fn ratio_thresholds_within_zero_and_one() {
    let text = edit("alert click_auc < 0.70", "alert click_auc < 70");
    assert_eq!(codes(&text), vec![Code::InvalidValue]);
    assert!(check(&text)[0].help.as_deref().unwrap().contains("`0.7`"));
    assert_eq!(
        codes(&edit("alert click_auc < 0.70", "alert click_auc < 70%")),
        vec![]
    );
    assert_eq!(
        codes(&edit("alert click_auc < 0.70", "alert ctr < 120%")),
        vec![Code::InvalidValue]
    );
    assert_eq!(
        codes(&edit("alert click_auc < 0.70", "alert policy_drift > -0.1")),
        vec![Code::InvalidValue]
    );
    // A log loss is not a ratio.
    assert_eq!(
        codes(&edit("alert click_auc < 0.70", "alert click_logloss > 2.5")),
        vec![]
    );
}

#[test]
fn unknown_settings() {
    let text = edit("layers 2, hidden 128", "layers 2, hiden 128");
    assert_eq!(codes(&text), vec![Code::UnknownSetting]);
    assert_eq!(primary_text(&text), "hiden");
    assert_eq!(
        check(&text)[0].help.as_deref(),
        Some("did you mean `hidden`?")
    );
    let text = edit("lr 3e-5", "learning_rate 3e-5");
    assert_eq!(codes(&text), vec![Code::UnknownSetting]);
    let text = edit("dropout 0.1", "drop_out 0.1");
    assert_eq!(codes(&text), vec![Code::UnknownSetting]);
    let text = edit("strategy coverage", "strategy coverage, size 3");
    assert_eq!(codes(&text), vec![Code::UnknownSetting]);
    // Every setting of the vocabulary is taken, with its example value.
    let written = |block: Block| {
        vocabulary::settings(block)
            .map(|s| format!("{} {}", s.name, s.example))
            .collect::<Vec<_>>()
    };
    let encoder = written(Block::Encoder)
        .into_iter()
        .map(|s| match s.split_once(' ') {
            Some(("hidden", _)) => "hidden 128".to_string(),
            Some(("heads", _)) => "heads 4".to_string(),
            Some(("layers", _)) => "layers 2".to_string(),
            _ => s,
        })
        .collect::<Vec<_>>()
        .join(", ");
    let text = edit("layers 2, hidden 128, heads 4", &encoder)
        .replacen(
            "epochs 5, lr 3e-5, batch 32",
            &written(Block::Train).join(", "),
            1,
        )
        .replacen(
            "count 20000, strategy coverage",
            &written(Block::Synthetic).join(", "),
            1,
        )
        .replacen(
            "weight_decay 0.01 dropout 0.1",
            &written(Block::Regularize).join(" "),
            1,
        );
    assert_eq!(codes(&text), vec![]);
    let text = edit("lr 3e-5", "lr 3e-5, lr 1e-4");
    assert_eq!(codes(&text), vec![Code::Duplicate]);
}

#[test]
fn invalid_setting_values() {
    for (from, to, value) in [
        ("layers 6", "layers 0", "0"),
        ("layers 6", "layers 2.5", "2.5"),
        ("epochs 5", "epochs -1", "-1"),
        ("batch 32", "batch \"32\"", "\"32\""),
        ("count 20000", "count 1.5", "1.5"),
        ("lr 3e-5", "lr 0", "0"),
        ("dropout 0.1", "dropout 1", "1"),
        ("strategy coverage", "strategy random", "random"),
        ("strategy coverage", "strategy \"coverage\"", "\"coverage\""),
        ("heads 12", "heads 10", "10"),
        ("temperature 2", "temperature 0", "0"),
        ("tolerance 0.05", "tolerance 1.5", "1.5"),
        ("every 2 epochs", "every 0 epochs", "0"),
        ("split validation 10%", "split validation 0%", "0%"),
        ("split validation 10%", "split validation 100%", "100%"),
        ("patience 3", "patience 0", "0"),
        ("quantize int8", "quantize int4", "int4"),
        ("below 0.01", "below -0.01", "-0.01"),
        (
            "rebalance every 2 epochs",
            "rebalance every 2 epochs against teachers",
            "teachers",
        ),
    ] {
        let text = edit(from, to);
        assert_eq!(codes(&text), vec![Code::InvalidValue], "{to}");
        assert_eq!(primary_text(&text), value, "{to}");
    }
    let text = edit("heads 12", "heads 10");
    let help = check(&text)[0].help.clone().unwrap();
    assert_eq!(
        help,
        "choose a number of heads that divides 384, such as 6, 8, 12"
    );
    assert_eq!(
        codes(&edit("rebalance every 2 epochs", "against rubric")),
        vec![]
    );
}

#[test]
fn invalid_outlier_cutoffs() {
    let text = edit("beyond 3 sigma", "beyond 0 sigma");
    assert_eq!(codes(&text), vec![Code::InvalidValue]);
    for quantile in ["0", "1", "1.5"] {
        let text = edit("beyond 3 sigma", &format!("above quantile {quantile}"));
        assert_eq!(codes(&text), vec![Code::InvalidValue], "{quantile}");
    }
    assert_eq!(
        codes(&edit("beyond 3 sigma", "above quantile 0.99")),
        vec![]
    );
}

#[test]
fn paths_stay_inside_the_project() {
    for path in [
        "/mnt/golden.jsonl",
        "C:\\\\data\\\\golden.jsonl",
        "\\\\\\\\server\\\\golden.jsonl",
        "../logs/golden.jsonl",
        "data/../../golden.jsonl",
        "",
    ] {
        let text = edit("\"data/golden.jsonl\"", &format!("\"{path}\""));
        assert_eq!(codes(&text), vec![Code::PathEscape], "{path}");
        assert_eq!(primary_text(&text), format!("\"{path}\""));
    }
    let text = edit(
        "model encoder { layers 2, hidden 128, heads 4 }",
        "model init \"../models/minilm\"",
    );
    assert_eq!(codes(&text), vec![Code::PathEscape]);
    assert_eq!(
        codes(&edit(
            "\"data/golden.jsonl\"",
            "\"data/v2..final/golden.jsonl\""
        )),
        vec![]
    );
}

#[test]
fn teachers_need_model_predicts_and_loss() {
    let text = edit(
        "    model encoder { layers 4, hidden 256, heads 4 }\n    predicts click\n    loss bce\n",
        "",
    );
    assert_eq!(
        codes(&text),
        vec![Code::MissingPart, Code::MissingPart, Code::MissingPart]
    );
    assert!(
        check(&text)
            .iter()
            .all(|d| &text[d.span().unwrap().range()] == "click")
    );
}

#[test]
fn students_need_model_and_distill() {
    let text = edit(
        "    model encoder { layers 2, hidden 128, heads 4 }\n    distill",
        "    distill",
    );
    assert_eq!(codes(&text), vec![Code::MissingPart]);
    assert_eq!(primary_text(&text), "student");
    let text = edit(
        "    distill policy weight 0.6 loss mse\n    distill click  weight 0.4 loss bce temperature 2\n",
        "",
    );
    // Without `distill`, the missing part is the one problem: no "unused teacher" echoes.
    assert_eq!(codes(&text), vec![Code::MissingPart]);
}

#[test]
fn a_pipeline_needs_one_student_and_one_data_block() {
    let start = SKETCH.find("  student {").unwrap();
    let end = SKETCH.find("  quantize").unwrap();
    let without = format!("{}{}", &SKETCH[..start], &SKETCH[end..]);
    assert_eq!(codes(&without), vec![Code::MissingPart]);
    assert_eq!(primary_text(&without), "job_match_v3");

    let twice = format!(
        "{}{}{}",
        &SKETCH[..end],
        &SKETCH[start..end],
        &SKETCH[end..]
    );
    let found = check(&twice);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].code, Code::MissingPart);
    assert!(found[0].message.contains("second `student`"));
    assert_eq!(&twice[found[0].span().unwrap().range()], "student");
    assert_eq!(found[0].span().unwrap().start as usize, end + 2);

    let data = "  data { golden \"data/more.jsonl\" }\n";
    let text = format!("{}{}{}", &SKETCH[..end], data, &SKETCH[end..]);
    assert_eq!(codes(&text), vec![Code::MissingPart]);
    assert!(check(&text)[0].message.contains("second `data`"));
}

#[test]
fn clean_rules_read_click_log_fields() {
    let text = edit(
        "when clicks_per_minute > 30",
        "when clicks_per_minut > 30 or (session_clicks > 50 and not clicked) or dwell < 1",
    );
    let found = check(&text);
    assert_eq!(
        found.iter().map(|d| d.code).collect::<Vec<_>>(),
        vec![Code::UnknownField, Code::UnknownField]
    );
    assert_eq!(&text[found[0].span().unwrap().range()], "clicks_per_minut");
    assert_eq!(
        found[0].help.as_deref(),
        Some("did you mean `clicks_per_minute`?")
    );
    assert_eq!(&text[found[1].span().unwrap().range()], "dwell");
    let text = edit("when clicks_per_minute > 30", "when session.id == \"x\"");
    assert_eq!(codes(&text), vec![Code::UnknownField]);
    assert_eq!(primary_text(&text), "id");
    let text = edit(
        "when clicks_per_minute > 30",
        "when if missing(propensity) then distinct_queries > 20 else propensity < 0.01",
    );
    assert_eq!(codes(&text), vec![]);
}

#[test]
fn outliers_and_duplicates_name_click_log_fields() {
    let text = edit("outliers dwell_seconds", "outliers dwell");
    assert_eq!(codes(&text), vec![Code::UnknownField]);
    assert_eq!(primary_text(&text), "dwell");
    let text = edit("outliers dwell_seconds", "outliers clicked");
    assert_eq!(codes(&text), vec![Code::UnknownField]);
    assert!(check(&text)[0].message.contains("not a numeric"));
    let rule = "drop outliers dwell_seconds beyond 3 sigma\n      drop duplicates on query_id, candidat_id";
    let text = edit("drop outliers dwell_seconds beyond 3 sigma", rule);
    assert_eq!(codes(&text), vec![Code::UnknownField]);
    assert_eq!(primary_text(&text), "candidat_id");
    let rule = "drop outliers dwell_seconds beyond 3 sigma\n      drop duplicates on query_id, candidate_id, ts";
    assert_eq!(
        codes(&edit("drop outliers dwell_seconds beyond 3 sigma", rule)),
        vec![]
    );
}

#[test]
fn messages_follow_the_style() {
    let texts = [
        edit("for job_match", "for jobmatch"),
        edit("predicts click", "predicts clicks"),
        edit("mix real 30%", "mix real 20%"),
        edit("weight 0.4", "weight -0.4"),
        edit("alert p99_latency > 20ms", "alert p99_latency > 20"),
        edit("heads 12", "heads 10"),
        edit("\"data/golden.jsonl\"", "\"/golden.jsonl\""),
    ];
    for text in &texts {
        for d in check(text) {
            let first = d.message.chars().next().unwrap();
            assert!(!first.is_uppercase(), "{}", d.message);
            assert!(!d.message.ends_with('.'), "{}", d.message);
            assert!(d.help.is_some(), "{}", d.message);
            assert!(d.labels.iter().any(|l| l.primary), "{}", d.message);
        }
    }
}
