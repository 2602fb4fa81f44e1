//! The ranking service behind `rubric serve`: an HTTP JSON API (`POST /v1/rank`,
//! `POST /v1/score`, `GET /healthz`, `GET /metrics`) over any [`Ranker`], with requests from
//! several clients batched into one model call on a thread of the model's own. The wire format,
//! errors, metrics and request log are documented in `docs/serving.md`.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use rubric_serve::{ModelInfo, PairRequest, Prediction, Ranker};
//! /// A model that ranks candidates by their `n` field.
//! struct ByField;
//! impl Ranker for ByField {
//!     fn info(&self) -> ModelInfo {
//!         ModelInfo {
//!             name: "by-field".into(),
//!             policy: "example".into(),
//!             policy_hash: String::new(),
//!             version: "1".into(),
//!             quantized: false,
//!         }
//!     }
//!     fn score(&self, pairs: &[PairRequest]) -> Vec<Result<Prediction, String>> {
//!         let score = |p: &PairRequest| p.candidate["n"].as_f64().unwrap_or(0.0) as f32;
//!         pairs
//!             .iter()
//!             .map(|p| Ok(Prediction { score: score(p), scores: Default::default(), grade: None, click: None }))
//!             .collect()
//!     }
//! }
//! # fn ranker() -> Arc<dyn Ranker> { Arc::new(ByField) }
//! let config = rubric_serve::ServeConfig {
//!     addr: "127.0.0.1:8080".parse().map_err(|_| "bad address")?,
//!     ..rubric_serve::ServeConfig::default()
//! };
//! rubric_serve::run(ranker(), config)?; // until Ctrl-C or SIGTERM
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
mod batcher;
mod config;
mod error;
mod metrics;
mod model;
mod request_log;
mod server;

use std::future::Future;
use std::sync::Arc;

pub use config::ServeConfig;
pub use model::{ModelInfo, PairRequest, Prediction, Ranker};
pub use server::Server;

/// Serves `ranker` as `config` says until `shutdown` completes, then shuts down gracefully:
/// returns once every request in flight has been answered and the request log flushed.
pub async fn serve(
    ranker: Arc<dyn Ranker>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    Server::bind(ranker, config).await?.run(shutdown).await
}

/// Serves `ranker` on a runtime of `config.workers` async threads until Ctrl-C or SIGTERM,
/// saying on stderr where it listens and when it stops.
pub fn run(ranker: Arc<dyn Ranker>, config: ServeConfig) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.max(1))
        .thread_name("rubric-serve")
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the service's runtime: {error}"))?;
    runtime.block_on(async move {
        let server = Server::bind(ranker, config).await?;
        let model = server.model();
        eprintln!(
            "serving `{}` (policy `{}` {}, version {}) on http://{}",
            model.name,
            model.policy,
            model.policy_hash,
            model.version,
            server.local_addr()
        );
        server
            .run(async {
                shutdown_signal().await;
                eprintln!("shutting down: answering the requests in flight");
            })
            .await
    })
}

/// Ctrl-C, or SIGTERM on Unix. A signal that cannot be listened for is never delivered.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
