//! The service's error answers: every failure a client can see is one of these, written as
//! `{"error": {"code": "...", "message": "..."}}` with its HTTP status. No plain-text answer
//! from axum reaches a client: body rejections, unknown paths and methods all come through here.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer: a status, a stable machine-readable `code` and a message naming the field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The `code` of an error answer, left in the response's extensions for the metrics layer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ErrorCode(pub &'static str);

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the body is not JSON; serde's message says the line and column.
    pub fn malformed_json(error: &serde_json::Error) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!("the body is not valid JSON: {error}"),
        )
    }

    /// 400: the body could not be read at all (the connection broke, a bad chunk).
    pub fn unreadable_body(detail: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unreadable_body",
            format!("the body could not be read: {detail}"),
        )
    }

    /// 422: the JSON is well formed but a field is missing or wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
    }

    /// 422: more candidates than the service takes in one ranking.
    pub fn too_many_candidates(count: usize, limit: usize) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_candidates",
            format!("`candidates` has {count} entries; the limit is {limit} a request"),
        )
    }

    /// 422: the model could not score a pair of this request (its message says why).
    pub fn rejected_pair(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "rejected_pair", message)
    }

    /// 413: the body is larger than the service reads.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    /// 415: the body is not declared as JSON.
    pub fn unsupported_media_type(found: Option<&str>) -> Self {
        let found = match found {
            Some(found) => format!("`{found}`"),
            None => "none".to_owned(),
        };
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("the body must be sent as `content-type: application/json`, not {found}"),
        )
    }

    /// 404: nothing is served at this path.
    pub fn not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "nothing is served at `{path}`; the service answers `POST /v1/rank`, \
                 `POST /v1/score`, `GET /healthz` and `GET /metrics`"
            ),
        )
    }

    /// 405: the path exists, the method does not (axum adds the `allow` header).
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        let expected = match path {
            "/healthz" | "/metrics" => "GET",
            _ => "POST",
        };
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("`{method} {path}` is not served; use `{expected} {path}`"),
        )
    }

    /// 503: the queue to the model is full; the client should retry shortly.
    pub fn overloaded(capacity: usize) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            format!("the model's queue is full ({capacity} requests waiting); retry shortly"),
        )
    }

    /// 503: the service is shutting down and takes no new work.
    pub fn shutting_down() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the service is shutting down",
        )
    }

    /// 500: the service itself failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 500: the model failed on a batch (it panicked or answered the wrong number of pairs).
    pub fn model_failed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "model_failed", message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = crate::server::json_response(self.status, &body);
        if self.code == "overloaded" {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}
