//! A trained policy model (a teacher stage's `model/`, or the student's) measured again on the
//! held-out pairs of its mix stage with today's metrics, for a model whose card predates them:
//! its dimensions' levels are found from the training rows when the card has none, as training
//! finds them now (`teach::examples::levels_of`). Prints the metrics as JSON, the card's own
//! beside them.
//!
//! ```sh
//! cargo run --release -p rubric-runtime --example remeasure -- \
//!     examples/job_match/job_match.policy RUN/stages/teacher.policy/KEY/model RUN/stages/mix/KEY
//! ```

use rubric_compiler::Options;
use rubric_runtime::compile::compile_file;
use rubric_runtime::label::engine::Engine;
use rubric_runtime::teach::TrainedModel;
use rubric_runtime::teach::examples::{Sources, build, levels_of};
use rubric_runtime::teach::task::measure;
use std::path::PathBuf;

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [policy, model, mix] = args.as_slice() else {
        return Err("usage: remeasure POLICY MODEL_DIR MIX_STAGE_DIR".into());
    };
    let compiled = compile_file(&PathBuf::from(policy), &Options::default())
        .map_err(|e| format!("`{policy}`: {e}"))?;
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let mut trained =
        TrainedModel::load(&PathBuf::from(model), &engine, &candle_core::Device::Cpu)?;
    let mix = PathBuf::from(mix);
    let (pool, validation) = (mix.join("pool.jsonl"), mix.join("validation.jsonl"));
    let sources = Sources {
        pool: &pool,
        validation: &validation,
        clicks: None,
    };
    let rows = build(
        &engine,
        &trained.heads,
        &trained.card.inputs,
        Some(&trained.card.features),
        &sources,
    )?;
    let found = trained.heads.levels.is_empty();
    if found {
        trained.heads.levels = levels_of(&trained.heads.scores, &rows.train);
    }
    let predictions = trained.score(&rows.validation)?;
    let metrics = measure(&trained.heads, &rows.validation, &predictions);
    let out = serde_json::json!({
        "model": model,
        "validation_rows": rows.validation.len(),
        "levels": trained.heads.levels,
        "levels_found_from_training_rows": found,
        "metrics": metrics,
        "card_metrics": trained.card.metrics,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
