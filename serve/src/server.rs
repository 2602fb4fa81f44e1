//! The HTTP service: its routes and handlers, and a server's life from binding its address to a
//! graceful shutdown (stop accepting, answer every request in flight or queued, stop the model
//! thread, flush the request log).

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde::Serialize;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::api::{self, ModelSummary, RankResponse, RankedCandidate, ScoreResponse};
use crate::batcher::{self, Arriving, Batching, ModelQueue, ModelThread, Outcome, PairFailure};
use crate::config::ServeConfig;
use crate::error::{ApiError, ErrorCode};
use crate::metrics::{EndpointLabel, ErrorLabels, InFlight, Metrics, StatusLabels};
use crate::model::{ModelInfo, PairRequest, Prediction, Ranker};
use crate::request_log::{self, LogEntry, LogWriter, LoggedPair, RequestLog};

/// What every handler shares.
struct App {
    model: ModelInfo,
    summary: ModelSummary,
    queue: ModelQueue,
    metrics: Arc<Metrics>,
    log: Option<RequestLog>,
    ids: RequestIds,
    max_candidates: usize,
    max_body_bytes: usize,
}

/// Request ids unique across restarts that share a log: the server's start time in hex
/// milliseconds, then a counter (`18f9a3c2b10-42`).
struct RequestIds {
    prefix: String,
    next: AtomicU64,
}

impl RequestIds {
    fn new() -> Self {
        RequestIds {
            prefix: format!("{:x}", jiff::Timestamp::now().as_millisecond()),
            next: AtomicU64::new(1),
        }
    }

    fn next(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

/// A bound server, not yet serving: [`Server::local_addr`] says where it listens (useful after
/// binding port 0), [`Server::run`] serves until shutdown. Dropped unrun, it stops its threads.
pub struct Server {
    listener: TcpListener,
    local_addr: SocketAddr,
    app: Arc<App>,
    model_thread: ModelThread,
    log_writer: Option<LogWriter>,
    shutdown_timeout: Duration,
}

impl Server {
    /// Checks `config`, binds its address, opens the request log and starts the model thread.
    pub async fn bind(ranker: Arc<dyn Ranker>, config: ServeConfig) -> Result<Server, String> {
        config.check()?;
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|error| format!("cannot listen on `{}`: {error}", config.addr))?;
        let local_addr = listener.local_addr().map_err(|error| {
            format!(
                "cannot read the address bound for `{}`: {error}",
                config.addr
            )
        })?;
        let model = ranker.info();
        let metrics = Arc::new(Metrics::new(&model));
        let (log, log_writer) = match &config.request_log {
            Some(path) => {
                let (log, writer) = request_log::start(path, &model, Arc::clone(&metrics))?;
                (Some(log), Some(writer))
            }
            None => (None, None),
        };
        let batching = Batching {
            queue_capacity: config.queue_capacity,
            max_batch_pairs: config.max_batch_pairs,
            batch_wait: config.batch_wait,
        };
        let (queue, model_thread) = batcher::start(ranker, batching, Arc::clone(&metrics))?;
        let app = App {
            summary: ModelSummary::from(&model),
            model,
            queue,
            metrics,
            log,
            ids: RequestIds::new(),
            max_candidates: config.max_candidates,
            max_body_bytes: config.max_body_bytes,
        };
        Ok(Server {
            listener,
            local_addr,
            app: Arc::new(app),
            model_thread,
            log_writer,
            shutdown_timeout: config.shutdown_timeout,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The model being served, as [`Ranker::info`] gave it at bind.
    pub fn model(&self) -> &ModelInfo {
        &self.app.model
    }

    /// Serves until `shutdown` completes, then stops accepting, answers every request in flight
    /// or queued, stops the model thread and flushes the request log before returning. Requests
    /// still unanswered `shutdown_timeout` after `shutdown` are abandoned, and that is an error.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let Server {
            listener,
            local_addr: _,
            app,
            model_thread,
            log_writer,
            shutdown_timeout,
        } = self;
        let listener = listener.tap_io(|stream| {
            // Answers are small and written at once: no reason to wait for more to send.
            let _ = stream.set_nodelay(true);
        });
        let shutting_down = Arc::new(Notify::new());
        let signal = {
            let shutting_down = Arc::clone(&shutting_down);
            async move {
                shutdown.await;
                shutting_down.notify_one();
            }
        };
        let serving = axum::serve(listener, router(app))
            .with_graceful_shutdown(signal)
            .into_future();
        let served = tokio::select! {
            served = serving => served.map_err(|error| format!("the server failed: {error}")),
            () = async {
                shutting_down.notified().await;
                tokio::time::sleep(shutdown_timeout).await;
            } => Err(format!(
                "requests still in flight {:.1} s after shutdown began were abandoned",
                shutdown_timeout.as_secs_f64()
            )),
        };
        let stopped = tokio::task::spawn_blocking(move || model_thread.stop())
            .await
            .map_err(|error| format!("cannot stop the model thread: {error}"))
            .and_then(|stopped| stopped);
        let closed = match log_writer {
            Some(writer) => tokio::task::spawn_blocking(move || writer.close())
                .await
                .map_err(|error| format!("cannot close the request log: {error}"))
                .and_then(|closed| closed),
            None => Ok(()),
        };
        let problems: Vec<String> = [served, stopped, closed]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/rank", post(rank))
        .route("/v1/score", post(score))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&app), observe))
        .layer(DefaultBodyLimit::max(app.max_body_bytes))
        .with_state(app)
}

/// Counts, times and labels every answer, error codes included.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let endpoint = endpoint_label(request.uri().path());
    let started = Instant::now();
    let response = if matches!(endpoint, "rank" | "score") {
        let _in_flight = InFlight::enter(&app.metrics.in_flight);
        next.run(request).await
    } else {
        next.run(request).await
    };
    let metrics = &app.metrics;
    metrics
        .latency
        .get_or_create(&EndpointLabel { endpoint })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&StatusLabels {
            endpoint,
            status: response.status().as_u16(),
        })
        .inc();
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics
            .errors
            .get_or_create(&ErrorLabels { endpoint, code })
            .inc();
    }
    response
}

fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/v1/rank" => "rank",
        "/v1/score" => "score",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        _ => "other",
    }
}

/// A JSON request body, read under the body limit: 415 unless declared JSON, 413 over the
/// limit, 400 unless it parses (serde says where). The request counts as arriving for the
/// batcher from here until it is queued.
struct JsonBody {
    value: Value,
    started: Instant,
    arriving: Arriving,
}

impl FromRequest<Arc<App>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, app: &Arc<App>) -> Result<Self, ApiError> {
        let started = Instant::now();
        let arriving = app.queue.arriving();
        let content_type = request.headers().get(header::CONTENT_TYPE);
        if !content_type.is_some_and(is_json) {
            let found =
                content_type.map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            return Err(ApiError::unsupported_media_type(found.as_deref()));
        }
        let bytes = Bytes::from_request(request, app)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::body_too_large(app.max_body_bytes)
                } else {
                    ApiError::unreadable_body(rejection.body_text())
                }
            })?;
        let value =
            serde_json::from_slice(&bytes).map_err(|error| ApiError::malformed_json(&error))?;
        Ok(JsonBody {
            value,
            started,
            arriving,
        })
    }
}

/// `application/json` or `application/*+json`, with any parameters.
fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(content_type) = content_type.to_str() else {
        return false;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

async fn rank(State(app): State<Arc<App>>, body: JsonBody) -> Result<Response, ApiError> {
    let JsonBody {
        value,
        started,
        arriving,
    } = body;
    let request = api::parse_rank(value, app.max_candidates)?;
    let query_id = api::record_id(&request.query);
    let ids: Vec<Value> = request.candidates.iter().map(api::record_id).collect();
    let pairs: Vec<PairRequest> = request
        .candidates
        .into_iter()
        .map(|candidate| PairRequest {
            query: Arc::clone(&request.query),
            candidate,
            time: request.time.clone(),
        })
        .collect();
    let outcome = if pairs.is_empty() {
        drop(arriving);
        Vec::new()
    } else {
        app.queue.score(pairs, arriving).await?
    };
    let predictions = predictions(outcome, |index| format!("`candidates[{index}]`"))?;
    let scores: Vec<f32> = predictions
        .iter()
        .map(|prediction| prediction.score)
        .collect();
    let order = api::ranking_order(&scores);
    let served = request.top.unwrap_or(order.len()).min(order.len());
    let ranked: Vec<(usize, &Value, &Prediction)> = order
        .iter()
        .filter_map(|&index| Some((index, ids.get(index)?, predictions.get(index)?)))
        .collect();
    let request_id = app.ids.next();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let response = json_response(
        StatusCode::OK,
        &RankResponse {
            model: &app.summary,
            request: &request_id,
            ranked: ranked
                .iter()
                .take(served)
                .map(|&(index, id, prediction)| RankedCandidate {
                    index,
                    id,
                    prediction,
                })
                .collect(),
            latency_ms,
        },
    );
    if let Some(log) = &app.log {
        // The answer is written: its ids and predictions move into the log's entry rather than
        // being copied on the request's path.
        let mut ids = ids;
        let mut predictions: Vec<Option<Prediction>> = predictions.into_iter().map(Some).collect();
        let pairs = order
            .iter()
            .enumerate()
            .filter_map(|(position, &index)| {
                Some(LoggedPair {
                    candidate_id: std::mem::take(ids.get_mut(index)?),
                    index,
                    rank: Some(position + 1),
                    served: position < served,
                    prediction: predictions.get_mut(index)?.take()?,
                })
            })
            .collect();
        log.record(LogEntry {
            ts: jiff::Timestamp::now(),
            request: request_id,
            endpoint: "rank",
            query_id,
            time: request.time,
            latency_ms,
            pairs,
        });
    }
    Ok(response)
}

async fn score(State(app): State<Arc<App>>, body: JsonBody) -> Result<Response, ApiError> {
    let JsonBody {
        value,
        started,
        arriving,
    } = body;
    let request = api::parse_score(value)?;
    let query_id = api::record_id(&request.query);
    let id = api::record_id(&request.candidate);
    let pair = PairRequest {
        query: request.query,
        candidate: request.candidate,
        time: request.time.clone(),
    };
    let outcome = app.queue.score(vec![pair], arriving).await?;
    let Some(prediction) = predictions(outcome, |_| "the candidate".to_owned())?.pop() else {
        return Err(ApiError::model_failed(
            "the model answered no result for the pair",
        ));
    };
    let request_id = app.ids.next();
    let latency_ms = started.elapsed().as_secs_f64() * 1e3;
    let response = json_response(
        StatusCode::OK,
        &ScoreResponse {
            model: &app.summary,
            request: &request_id,
            id: &id,
            prediction: &prediction,
            latency_ms,
        },
    );
    if let Some(log) = &app.log {
        log.record(LogEntry {
            ts: jiff::Timestamp::now(),
            request: request_id,
            endpoint: "score",
            query_id,
            time: request.time,
            latency_ms,
            pairs: vec![LoggedPair {
                candidate_id: id,
                index: 0,
                rank: None,
                served: true,
                prediction,
            }],
        });
    }
    Ok(response)
}

/// Every pair's prediction, or the request's error: a model failure (500) first, else the
/// first pair the model rejected (422), named by `name(index)`.
fn predictions(
    outcome: Outcome,
    name: impl Fn(usize) -> String,
) -> Result<Vec<Prediction>, ApiError> {
    let mut predictions = Vec::with_capacity(outcome.len());
    let mut rejected: Vec<(usize, String)> = Vec::new();
    for (index, result) in outcome.into_iter().enumerate() {
        match result {
            Ok(prediction) => predictions.push(prediction),
            Err(PairFailure::ModelFailed(message)) => return Err(ApiError::model_failed(message)),
            Err(PairFailure::Rejected(message)) => rejected.push((index, message)),
        }
    }
    match rejected.as_slice() {
        [] => Ok(predictions),
        [(index, message), rest @ ..] => {
            let more = match rest.len() {
                0 => String::new(),
                1 => " (and 1 more candidate)".to_owned(),
                n => format!(" (and {n} more candidates)"),
            };
            Err(ApiError::rejected_pair(format!(
                "the model cannot score {}: {message}{more}",
                name(*index)
            )))
        }
    }
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    json_response(
        StatusCode::OK,
        &api::HealthResponse {
            status: "ok",
            model: &app.model,
        },
    )
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    match app.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::internal("the metrics could not be written").into_response(),
    }
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(method.as_str(), uri.path())
}

/// `body` as a JSON answer with `status`.
pub(crate) fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    const JSON: HeaderValue = HeaderValue::from_static("application/json");
    match serde_json::to_vec(body) {
        Ok(bytes) => (status, [(header::CONTENT_TYPE, JSON)], bytes).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, JSON)],
            r#"{"error":{"code":"internal","message":"the answer could not be written as JSON"}}"#,
        )
            .into_response(),
    }
}
