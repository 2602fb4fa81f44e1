//! The boundary between the service and a model: the pairs the service asks it to score, what it
//! predicts for each, and what it says of itself. The service knows nothing else of a model.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// One (query, candidate) pair to score. `query` is shared by the candidates of one ranking.
#[derive(Clone, Debug)]
pub struct PairRequest {
    pub query: Arc<Value>,
    pub candidate: Value,
    /// RFC 3339 time of the impression, if the client sent one (checked, passed on as sent).
    pub time: Option<String>,
}

/// What a model predicts for a pair.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    /// The ranking key: higher ranks first.
    pub score: f32,
    /// Each dimension's score and the overall one, by name.
    pub scores: BTreeMap<String, f32>,
    pub grade: Option<String>,
    pub click: Option<f32>,
}

/// What the service reports of its model (in `/healthz`, `/metrics` and the request log).
#[derive(Clone, Debug, Serialize)]
pub struct ModelInfo {
    pub name: String,
    /// The policy's name.
    pub policy: String,
    pub policy_hash: String,
    /// The model's own version, e.g. a hash of its weights.
    pub version: String,
    pub quantized: bool,
}

/// A model the service ranks with. Called off the async workers, on the service's own model
/// thread, with pairs from several clients at once.
pub trait Ranker: Send + Sync + 'static {
    fn info(&self) -> ModelInfo;
    /// One result per pair, in order; an `Err` is that pair's problem (a 422 for its request),
    /// not the batch's.
    fn score(&self, pairs: &[PairRequest]) -> Vec<Result<Prediction, String>>;
}
