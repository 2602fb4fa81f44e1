//! The pipeline vocabulary is the one source of settings: `docs/language.md` shows exactly its
//! tables, and every field of a lowered stage configuration has a row.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rubric_compiler::vocabulary::{Block, reference_markdown, setting};

const BEGIN: &str = "<!-- vocabulary:begin -->\n";
const END: &str = "<!-- vocabulary:end -->";

/// `RUBRIC_BLESS=1 cargo test -p rubric-compiler --test vocabulary` rewrites the section.
#[test]
fn the_reference_shows_the_vocabulary() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/language.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc
        .find(BEGIN)
        .expect("the vocabulary markers in docs/language.md")
        + BEGIN.len();
    let end = doc[start..].find(END).unwrap() + start;
    let want = reference_markdown();
    if std::env::var_os("RUBRIC_BLESS").is_some() {
        let mut updated = doc[..start].to_string();
        updated.push_str(&want);
        updated.push_str(&doc[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        doc[start..end] == want,
        "docs/language.md's vocabulary section is out of date; rerun with RUBRIC_BLESS=1 to \
         rewrite it from compiler/src/vocabulary.rs"
    );
}

/// Each number of a stage's typed configuration is a setting of the vocabulary (under the name
/// the configuration gives it), so a new setting cannot skip the table.
#[test]
fn every_configured_setting_has_a_row() {
    // The fields of the typed configurations, by the block whose row gives their default.
    let fields: &[(Block, &[&str])] = &[
        (
            Block::Encoder,
            &[
                "layers",
                "hidden",
                "heads",
                "intermediate",
                "max_len",
                "vocab",
            ],
        ),
        (
            Block::Train,
            &[
                "epochs",
                "lr",
                "batch",
                "warmup",
                "accumulate",
                "clip_norm",
                "seed",
            ],
        ),
        (Block::Regularize, &["weight_decay", "dropout", "l2"]),
        (
            Block::Synthetic,
            &["count", "strategy", "seed", "paraphrase"],
        ),
        (Block::Split, &["validation", "seed"]),
        (
            Block::Drift,
            &["rebalance_min_factor", "rebalance_max_factor"],
        ),
        (Block::EarlyStop, &["min_delta"]),
        (Block::Loss, &["temperature"]),
    ];
    for (block, names) in fields {
        for name in *names {
            assert!(
                setting(*block, name).is_some(),
                "{} `{name}` has no row in the vocabulary",
                block.syntax()
            );
        }
    }
    // And the lowered JSON of those configurations has no field the list above misses.
    let plan = include_str!("../../tests/snapshots/artefacts/job_match.training_plan.snap");
    let value: serde_json::Value = serde_json::from_str(
        plan.split_once("\n---\n")
            .map(|(_, body)| body)
            .unwrap_or(plan),
    )
    .unwrap();
    let mut seen = Vec::new();
    for stage in value["stages"].as_array().unwrap() {
        let config = &stage["config"];
        for key in ["train", "regularize"] {
            if let Some(obj) = config[key].as_object() {
                seen.extend(obj.keys().map(|k| (key.to_string(), k.clone())));
            }
        }
        if config["model"]["kind"] == "encoder" {
            seen.extend(
                config["model"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "kind")
                    .map(|k| ("model".to_string(), k.clone())),
            );
        }
    }
    assert!(!seen.is_empty());
    for (owner, key) in seen {
        let block = match owner.as_str() {
            "train" => Block::Train,
            "regularize" => Block::Regularize,
            _ => Block::Encoder,
        };
        assert!(
            setting(block, &key).is_some(),
            "`{owner}.{key}` of the training plan has no row in the vocabulary"
        );
    }
}
