//! Serves a stand-in model that scores a candidate by its number field `n` (0 without one), for
//! measuring the service itself with `examples/load.rs`, apart from any real model:
//!
//! ```text
//! cargo run --release -p rubric-serve --example fake_model -- --addr 127.0.0.1:8080
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use rubric_serve::{ModelInfo, PairRequest, Prediction, Ranker, ServeConfig};

struct ByField;

impl Ranker for ByField {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            name: "fake".into(),
            policy: "none".into(),
            policy_hash: "none".into(),
            version: "fake".into(),
            quantized: false,
        }
    }

    fn score(&self, pairs: &[PairRequest]) -> Vec<Result<Prediction, String>> {
        pairs
            .iter()
            .map(|pair| {
                let n = pair
                    .candidate
                    .get("n")
                    .and_then(serde_json::Value::as_f64)
                    .unwrap_or(0.0) as f32;
                Ok(Prediction {
                    score: n,
                    scores: BTreeMap::from([("overall".to_owned(), n)]),
                    grade: None,
                    click: None,
                })
            })
            .collect()
    }
}

fn main() -> ExitCode {
    let mut words = std::env::args().skip(1);
    let addr = match (words.next().as_deref(), words.next()) {
        (Some("--addr"), Some(addr)) => addr,
        (None, _) => "127.0.0.1:8080".to_owned(),
        _ => {
            eprintln!("usage: fake_model [--addr 127.0.0.1:PORT]");
            return ExitCode::FAILURE;
        }
    };
    let Ok(addr) = addr.parse() else {
        eprintln!("fake_model: `{addr}` is not an address such as `127.0.0.1:8080`");
        return ExitCode::FAILURE;
    };
    match rubric_serve::run(
        Arc::new(ByField),
        ServeConfig {
            addr,
            ..ServeConfig::default()
        },
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fake_model: {error}");
            ExitCode::FAILURE
        }
    }
}
