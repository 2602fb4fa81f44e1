//! What `GET /metrics` reports, in the OpenMetrics text that Prometheus scrapes: request counts
//! and latencies per endpoint, errors by code, the queue to the model, batch sizes, pairs scored
//! and the model's identity. The text itself is written by `prometheus-client`.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::model::ModelInfo;

/// The endpoint a request went to, as metrics label it.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndpointLabel {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabels {
    pub endpoint: &'static str,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub endpoint: &'static str,
    pub code: &'static str,
}

/// Request latency: 0.25 ms to about 8 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// The service's metrics, shared by the handlers, the model thread and the log writer.
pub(crate) struct Metrics {
    registry: Registry,
    pub requests: Family<StatusLabels, Counter>,
    pub latency: Family<EndpointLabel, Histogram>,
    pub errors: Family<ErrorLabels, Counter>,
    pub rejected: Counter,
    pub in_flight: Gauge,
    pub queue_depth: Gauge,
    pub batch_pairs: Histogram,
    pub batch_requests: Histogram,
    pub model_seconds: Histogram,
    pub pairs_scored: Counter,
    pub log_errors: Counter,
}

impl Metrics {
    pub fn new(model: &ModelInfo) -> Self {
        let mut registry = Registry::with_prefix("rubric");
        let requests = Family::<StatusLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by endpoint and HTTP status",
            requests.clone(),
        );
        let latency = Family::<EndpointLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its answer, by endpoint",
            Unit::Seconds,
            latency.clone(),
        );
        let errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "errors",
            "Error answers, by endpoint and error code",
            errors.clone(),
        );
        let rejected = Counter::default();
        registry.register(
            "rejected",
            "Requests answered 503 at once because the model's queue was full",
            rejected.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "in_flight_requests",
            "Requests being handled now",
            in_flight.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Requests waiting in the queue to the model",
            queue_depth.clone(),
        );
        let batch_pairs = Histogram::new(exponential_buckets(1.0, 2.0, 12));
        registry.register(
            "batch_pairs",
            "Pairs in each batch the model thread gathers",
            batch_pairs.clone(),
        );
        let batch_requests = Histogram::new(exponential_buckets(1.0, 2.0, 8));
        registry.register(
            "batch_requests",
            "Requests whose pairs share one batch",
            batch_requests.clone(),
        );
        let model_seconds = Histogram::new(exponential_buckets(0.000_25, 2.0, 16));
        registry.register_with_unit(
            "batch_duration",
            "Time the model takes to score one batch",
            Unit::Seconds,
            model_seconds.clone(),
        );
        let pairs_scored = Counter::default();
        registry.register(
            "pairs_scored",
            "Pairs the model has scored",
            pairs_scored.clone(),
        );
        let log_errors = Counter::<u64, AtomicU64>::default();
        registry.register(
            "request_log_errors",
            "Request-log lines that could not be written",
            log_errors.clone(),
        );
        registry.register(
            "model",
            "The model being served",
            Info::new(vec![
                ("name", model.name.clone()),
                ("policy", model.policy.clone()),
                ("policy_hash", model.policy_hash.clone()),
                ("version", model.version.clone()),
                ("quantized", model.quantized.to_string()),
            ]),
        );
        Metrics {
            registry,
            requests,
            latency,
            errors,
            rejected,
            in_flight,
            queue_depth,
            batch_pairs,
            batch_requests,
            model_seconds,
            pairs_scored,
            log_errors,
        }
    }

    /// The OpenMetrics text of every metric, ending in `# EOF`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Counts one request in flight while it lives, however its handler ends (a client that hangs
/// up drops the handler mid-way).
pub(crate) struct InFlight<'a>(&'a Gauge);

impl<'a> InFlight<'a> {
    pub fn enter(gauge: &'a Gauge) -> Self {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
