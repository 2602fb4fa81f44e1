//! What the service tests share: a fake model that scores a candidate by its `n` field, a server
//! on a port of its own in a runtime of its own, a blocking client, and a reader of the metrics
//! text that checks every line against the OpenMetrics grammar.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rubric_serve::{ModelInfo, PairRequest, Prediction, Ranker, ServeConfig, Server};
use serde_json::{Value, json};

/// Scores a candidate by its number field `n`; a candidate with `"reject": true` is refused, one
/// with `"panic": true` makes the whole call panic, one with `"short": true` makes it answer one
/// result too few. Each call can be made slow, and every
/// call's pairs are remembered by their queries' `id`s.
#[derive(Default)]
pub struct FakeRanker {
    /// How long every call sleeps.
    pub delay: Duration,
    /// How long the first call sleeps instead.
    pub first_delay: Option<Duration>,
    pub calls: AtomicUsize,
    /// Per call, the query `id` of each pair, in order.
    pub batches: Mutex<Vec<Vec<Value>>>,
    /// Told when a call starts.
    pub started: Mutex<Option<mpsc::Sender<usize>>>,
}

impl FakeRanker {
    pub fn slow(delay: Duration) -> Self {
        FakeRanker {
            delay,
            ..FakeRanker::default()
        }
    }

    /// The number of distinct queries in each call so far.
    pub fn queries_per_call(&self) -> Vec<usize> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .map(|batch| {
                batch
                    .iter()
                    .map(Value::to_string)
                    .collect::<BTreeSet<_>>()
                    .len()
            })
            .collect()
    }
}

pub fn info() -> ModelInfo {
    ModelInfo {
        name: "fake".into(),
        policy: "house_rules".into(),
        policy_hash: "ph-1234".into(),
        version: "v-abcd".into(),
        quantized: false,
    }
}

impl Ranker for FakeRanker {
    fn info(&self) -> ModelInfo {
        info()
    }

    fn score(&self, pairs: &[PairRequest]) -> Vec<Result<Prediction, String>> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(started) = &*self.started.lock().unwrap() {
            let _ = started.send(call);
        }
        self.batches
            .lock()
            .unwrap()
            .push(pairs.iter().map(|pair| pair.query["id"].clone()).collect());
        let delay = match self.first_delay {
            Some(first) if call == 0 => first,
            _ => self.delay,
        };
        std::thread::sleep(delay);
        if pairs
            .iter()
            .any(|pair| pair.candidate["panic"] == json!(true))
        {
            panic!("the fake model was asked to panic");
        }
        let answered = if pairs
            .iter()
            .any(|pair| pair.candidate["short"] == json!(true))
        {
            pairs.len() - 1
        } else {
            pairs.len()
        };
        pairs[..answered]
            .iter()
            .map(|pair| {
                if pair.candidate["reject"] == json!(true) {
                    return Err("this candidate asked to be rejected".to_owned());
                }
                let n = pair.candidate["n"].as_f64().unwrap_or(0.0) as f32;
                Ok(Prediction {
                    score: n,
                    scores: BTreeMap::from([
                        ("overall".to_owned(), n),
                        ("relevance".to_owned(), n / 2.0),
                    ]),
                    grade: Some(if n >= 0.5 { "good" } else { "poor" }.to_owned()),
                    click: Some(1.0 / (1.0 + (-n).exp())),
                })
            })
            .collect()
    }
}

/// A config on 127.0.0.1, port 0.
pub fn config() -> ServeConfig {
    ServeConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        ..ServeConfig::default()
    }
}

/// A server running on a thread and runtime of its own until [`TestServer::stop`].
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    finished: mpsc::Receiver<Result<(), String>>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(ranker: Arc<dyn Ranker>, config: ServeConfig) -> TestServer {
        let (bound, bound_rx) = mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let (finished_tx, finished) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let server = match Server::bind(ranker, config).await {
                    Ok(server) => server,
                    Err(error) => {
                        let _ = bound.send(Err(error.clone()));
                        return Err(error);
                    }
                };
                let _ = bound.send(Ok(server.local_addr()));
                server
                    .run(async {
                        let _ = stop_rx.await;
                    })
                    .await
            });
            let _ = finished_tx.send(result);
        });
        let addr = bound_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the server did not bind within 10 s")
            .expect("the server did not bind");
        TestServer {
            addr,
            stop: Some(stop),
            finished,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks the server to shut down without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Shuts the server down and returns what its `run` returned (within 30 s).
    pub fn stop(mut self) -> Result<(), String> {
        self.begin_stop();
        let result = self
            .finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the server did not stop within 30 s");
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        result
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_stop();
    }
}

/// A blocking client that returns 4xx and 5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .proxy(None)
        .build()
        .into()
}

/// An answer's status, headers of interest and JSON body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub allow: Option<String>,
    pub retry_after: Option<String>,
    pub body: Value,
}

pub fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.expect("the request failed");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|value| value.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type").unwrap_or_default();
    let allow = header("allow");
    let retry_after = header("retry-after");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("a {status} answer is not JSON ({error}): {text}"));
    Answer {
        status,
        content_type,
        allow,
        retry_after,
        body,
    }
}

pub fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Answer {
    answer(agent.post(url).send_json(body))
}

pub fn get_text(agent: &ureq::Agent, url: &str) -> (u16, String, String) {
    let mut response = agent.get(url).call().unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let status = response.status().as_u16();
    (
        status,
        content_type,
        response.body_mut().read_to_string().unwrap(),
    )
}

/// A ranking request for the candidates scored `ns`, with ids `c0`, `c1`, ...
pub fn ranking(query_id: &str, ns: &[f64]) -> Value {
    let candidates: Vec<Value> = ns
        .iter()
        .enumerate()
        .map(|(index, n)| json!({"id": format!("c{index}"), "n": n}))
        .collect();
    json!({"query": {"id": query_id, "text": "shoes"}, "candidates": candidates})
}

/// The samples of an OpenMetrics text by `name{labels}` as written, after checking every line
/// against the grammar: `# HELP`, `# TYPE`, `# UNIT` descriptors, samples of a family declared
/// before them, and a final `# EOF`.
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut families: BTreeMap<String, String> = BTreeMap::new();
    let mut saw_eof = false;
    for line in text.lines() {
        assert!(!saw_eof, "a line after `# EOF`: {line}");
        if line == "# EOF" {
            saw_eof = true;
            continue;
        }
        if let Some(descriptor) = line.strip_prefix("# ") {
            let mut parts = descriptor.splitn(3, ' ');
            let keyword = parts.next().unwrap();
            let name = parts
                .next()
                .unwrap_or_else(|| panic!("no metric name: {line}"));
            let rest = parts
                .next()
                .unwrap_or_else(|| panic!("nothing after the name: {line}"));
            assert!(is_metric_name(name), "bad metric name in {line}");
            match keyword {
                "HELP" | "UNIT" => {}
                "TYPE" => {
                    assert!(
                        [
                            "counter",
                            "gauge",
                            "histogram",
                            "info",
                            "summary",
                            "stateset",
                            "unknown",
                            "gaugehistogram"
                        ]
                        .contains(&rest),
                        "unknown type in {line}"
                    );
                    families.insert(name.to_owned(), rest.to_owned());
                }
                _ => panic!("unknown descriptor {line}"),
            }
            continue;
        }
        let (series, value) = sample_line(line);
        let name = series.split('{').next().unwrap();
        let family = families
            .iter()
            .find(|(family, kind)| {
                let suffixes: &[&str] = match kind.as_str() {
                    "counter" => &["_total", "_created"],
                    "histogram" => &["_bucket", "_count", "_sum", "_created"],
                    "info" => &["_info"],
                    _ => &[""],
                };
                suffixes
                    .iter()
                    .any(|suffix| name == format!("{family}{suffix}"))
            })
            .unwrap_or_else(|| panic!("a sample of no declared family: {line}"));
        assert!(!family.0.is_empty());
        samples.insert(series.to_owned(), value);
    }
    assert!(saw_eof, "no `# EOF` at the end");
    samples
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `name{label="value",...} value` (labels optional, values escaped with `\\`, `\"`, `\n`).
fn sample_line(line: &str) -> (&str, f64) {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("no value: {line}"));
    assert!(is_metric_name(&line[..name_end]), "bad metric name: {line}");
    let mut end = name_end;
    if line[name_end..].starts_with('{') {
        let bytes = line.as_bytes();
        let mut i = name_end + 1;
        loop {
            if bytes[i] == b'}' {
                break;
            }
            let eq = line[i..]
                .find('=')
                .unwrap_or_else(|| panic!("a label with no `=`: {line}"))
                + i;
            let label = &line[i..eq];
            assert!(
                !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "bad label name `{label}`: {line}"
            );
            assert_eq!(bytes[eq + 1], b'"', "an unquoted label value: {line}");
            i = eq + 2;
            while bytes[i] != b'"' {
                if bytes[i] == b'\\' {
                    assert!(
                        matches!(bytes[i + 1], b'\\' | b'"' | b'n'),
                        "a bad escape: {line}"
                    );
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            match bytes[i] {
                b',' => i += 1,
                b'}' => {}
                _ => panic!("labels not separated by `,`: {line}"),
            }
        }
        end = i + 1;
    }
    let series = &line[..end];
    let rest = line[end..]
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no space before the value: {line}"));
    let value = rest.split(' ').next().unwrap();
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("a value that is not a number: {line}")),
    };
    (series, value)
}

/// The metrics the server reports now.
pub fn metrics(agent: &ureq::Agent, server: &TestServer) -> BTreeMap<String, f64> {
    let (status, _, text) = get_text(agent, &server.url("/metrics"));
    assert_eq!(status, 200);
    parse_metrics(&text)
}
