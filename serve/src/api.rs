//! The JSON requests the service takes, checked field by field so that every 422 names the field
//! at fault (`candidates[3]` must be an object), and the answers it gives.

use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::model::{ModelInfo, Prediction};

/// A checked `POST /v1/rank` body.
#[derive(Debug)]
pub(crate) struct RankRequest {
    pub query: Arc<Value>,
    pub candidates: Vec<Value>,
    pub top: Option<usize>,
    pub time: Option<String>,
}

/// A checked `POST /v1/score` body.
#[derive(Debug)]
pub(crate) struct ScoreRequest {
    pub query: Arc<Value>,
    pub candidate: Value,
    pub time: Option<String>,
}

const RANK_FIELDS: &[&str] = &["query", "candidates", "top", "time"];
const SCORE_FIELDS: &[&str] = &["query", "candidate", "time"];

/// Checks a ranking request; more than `max_candidates` candidates is its own error.
pub(crate) fn parse_rank(body: Value, max_candidates: usize) -> Result<RankRequest, ApiError> {
    let mut fields = body_object(body, "ranking", RANK_FIELDS)?;
    let query = object_field(&mut fields, "query")?;
    let candidates = match fields.remove("candidates") {
        None => return Err(missing("candidates")),
        Some(Value::Array(candidates)) => candidates,
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "`candidates` must be an array of objects, not {}",
                kind(&other)
            )));
        }
    };
    if candidates.len() > max_candidates {
        return Err(ApiError::too_many_candidates(
            candidates.len(),
            max_candidates,
        ));
    }
    if let Some((index, candidate)) = candidates
        .iter()
        .enumerate()
        .find(|(_, candidate)| !candidate.is_object())
    {
        return Err(ApiError::invalid(format!(
            "`candidates[{index}]` must be an object, not {}",
            kind(candidate)
        )));
    }
    let top = match fields.remove("top") {
        None | Some(Value::Null) => None,
        Some(top) => match top.as_u64() {
            Some(k) if k >= 1 => Some(usize::try_from(k).unwrap_or(usize::MAX)),
            _ => {
                return Err(ApiError::invalid(format!(
                    "`top` must be an integer of at least 1, not `{top}`"
                )));
            }
        },
    };
    let time = time_field(&mut fields)?;
    Ok(RankRequest {
        query: Arc::new(Value::Object(query)),
        candidates,
        top,
        time,
    })
}

/// Checks a request to score one pair.
pub(crate) fn parse_score(body: Value) -> Result<ScoreRequest, ApiError> {
    let mut fields = body_object(body, "scoring", SCORE_FIELDS)?;
    let query = object_field(&mut fields, "query")?;
    let candidate = object_field(&mut fields, "candidate")?;
    let time = time_field(&mut fields)?;
    Ok(ScoreRequest {
        query: Arc::new(Value::Object(query)),
        candidate: Value::Object(candidate),
        time,
    })
}

/// The body as an object with no fields but `known` (a misspelt `top` would otherwise be
/// silently ignored and the whole list served).
fn body_object(body: Value, what: &str, known: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let Value::Object(fields) = body else {
        return Err(ApiError::invalid(format!(
            "the body must be a JSON object, not {}",
            kind(&body)
        )));
    };
    if let Some(unknown) = fields.keys().find(|key| !known.contains(&key.as_str())) {
        let known = known
            .iter()
            .map(|field| format!("`{field}`"))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::invalid(format!(
            "unknown field `{unknown}`; a {what} request has {known}"
        )));
    }
    Ok(fields)
}

fn object_field(
    fields: &mut Map<String, Value>,
    name: &str,
) -> Result<Map<String, Value>, ApiError> {
    match fields.remove(name) {
        None => Err(missing(name)),
        Some(Value::Object(object)) => Ok(object),
        Some(other) => Err(ApiError::invalid(format!(
            "`{name}` must be an object, not {}",
            kind(&other)
        ))),
    }
}

fn time_field(fields: &mut Map<String, Value>) -> Result<Option<String>, ApiError> {
    match fields.remove("time") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(time)) if jiff::Timestamp::from_str(&time).is_ok() => Ok(Some(time)),
        Some(other) => Err(ApiError::invalid(format!(
            "`time` must be an RFC 3339 timestamp such as `2024-06-01T12:00:00Z`, not `{other}`"
        ))),
    }
}

fn missing(name: &str) -> ApiError {
    ApiError::invalid(format!("missing field `{name}`"))
}

/// What a JSON value is, in words, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A record's `id` field when it is a string or a number, else null: what the response and the
/// request log name a query or candidate by.
pub(crate) fn record_id(record: &Value) -> Value {
    match record.get("id") {
        Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
        _ => Value::Null,
    }
}

/// The model as answers name it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ModelSummary {
    pub name: String,
    pub policy: String,
    pub policy_hash: String,
    pub version: String,
}

impl From<&ModelInfo> for ModelSummary {
    fn from(info: &ModelInfo) -> Self {
        ModelSummary {
            name: info.name.clone(),
            policy: info.policy.clone(),
            policy_hash: info.policy_hash.clone(),
            version: info.version.clone(),
        }
    }
}

/// One served candidate of a ranking, best first.
#[derive(Serialize)]
pub(crate) struct RankedCandidate<'a> {
    pub index: usize,
    pub id: &'a Value,
    #[serde(flatten)]
    pub prediction: &'a Prediction,
}

#[derive(Serialize)]
pub(crate) struct RankResponse<'a> {
    pub model: &'a ModelSummary,
    pub request: &'a str,
    pub ranked: Vec<RankedCandidate<'a>>,
    pub latency_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct ScoreResponse<'a> {
    pub model: &'a ModelSummary,
    pub request: &'a str,
    pub id: &'a Value,
    #[serde(flatten)]
    pub prediction: &'a Prediction,
    pub latency_ms: f64,
}

#[derive(Serialize)]
pub(crate) struct HealthResponse<'a> {
    pub status: &'static str,
    pub model: &'a ModelInfo,
}

/// Positions `0..scores.len()` best first: higher score first, ties (and NaN, which ranks last)
/// by position in the request.
pub(crate) fn ranking_order(scores: &[f32]) -> Vec<usize> {
    let key = |index: usize| {
        let score = scores.get(index).copied().unwrap_or(f32::NAN);
        if score.is_nan() {
            f32::NEG_INFINITY
        } else {
            score
        }
    };
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    order
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rank_error(body: Value) -> String {
        parse_rank(body, 3).unwrap_err().message
    }

    #[test]
    fn rank_fields_are_named_in_errors() {
        let query = json!({"id": "q"});
        assert_eq!(
            rank_error(json!([1])),
            "the body must be a JSON object, not an array"
        );
        assert_eq!(
            rank_error(json!({"candidates": []})),
            "missing field `query`"
        );
        assert_eq!(
            rank_error(json!({"query": 3, "candidates": []})),
            "`query` must be an object, not a number"
        );
        assert_eq!(
            rank_error(json!({"query": query})),
            "missing field `candidates`"
        );
        assert_eq!(
            rank_error(json!({"query": query, "candidates": [{}, {}, "x"]})),
            "`candidates[2]` must be an object, not a string"
        );
        assert_eq!(
            rank_error(json!({"query": query, "candidates": [{}], "top": 0})),
            "`top` must be an integer of at least 1, not `0`"
        );
        assert_eq!(
            rank_error(json!({"query": query, "candidates": [{}], "top": 1.5})),
            "`top` must be an integer of at least 1, not `1.5`"
        );
        assert_eq!(
            rank_error(json!({"query": query, "candidates": [{}], "topk": 1})),
            "unknown field `topk`; a ranking request has `query`, `candidates`, `top`, `time`"
        );
        assert_eq!(
            rank_error(json!({"query": query, "candidates": [{}], "time": "yesterday"})),
            "`time` must be an RFC 3339 timestamp such as `2024-06-01T12:00:00Z`, not `\"yesterday\"`"
        );
        let too_many =
            parse_rank(json!({"query": query, "candidates": [{}, {}, {}, {}]}), 3).unwrap_err();
        assert_eq!(too_many.code, "too_many_candidates");
        assert_eq!(
            too_many.message,
            "`candidates` has 4 entries; the limit is 3 a request"
        );
    }

    #[test]
    fn a_good_ranking_request_is_taken_apart() {
        let request = parse_rank(
            json!({"query": {"id": 7}, "candidates": [{"id": "a"}, {}], "top": 1, "time": "2024-06-01T12:00:00+02:00"}),
            3,
        )
        .unwrap();
        assert_eq!(request.candidates.len(), 2);
        assert_eq!(request.top, Some(1));
        assert_eq!(request.time.as_deref(), Some("2024-06-01T12:00:00+02:00"));
        assert_eq!(record_id(&request.query), json!(7));
        assert_eq!(record_id(&request.candidates[0]), json!("a"));
        assert_eq!(record_id(&request.candidates[1]), Value::Null);
        assert_eq!(record_id(&json!({"id": [1]})), Value::Null);
    }

    #[test]
    fn score_fields_are_named_in_errors() {
        let error = parse_score(json!({"query": {}, "candidate": [1]})).unwrap_err();
        assert_eq!(error.message, "`candidate` must be an object, not an array");
        let error = parse_score(json!({"query": {}})).unwrap_err();
        assert_eq!(error.message, "missing field `candidate`");
        assert!(parse_score(json!({"query": {}, "candidate": {}, "time": null})).is_ok());
    }

    #[test]
    fn ranking_is_best_first_ties_by_position_nan_last() {
        assert_eq!(
            ranking_order(&[0.1, 0.9, f32::NAN, 0.9, -1.0]),
            vec![1, 3, 0, 4, 2]
        );
        assert!(ranking_order(&[]).is_empty());
    }
}
