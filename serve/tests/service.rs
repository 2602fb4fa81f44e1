//! The ranking service end to end, over HTTP on 127.0.0.1: answers, errors, batching across
//! clients, back-pressure, graceful shutdown, metrics and the request log. Every loop is bounded
//! in count, every client in time (30 s).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rubric_serve::{ServeConfig, Server};
use serde_json::{Value, json};
use support::{FakeRanker, TestServer, agent, config, metrics, post, ranking};

#[test]
fn a_ranking_is_best_first_with_ids_scores_and_top() {
    let server = TestServer::start(Arc::new(FakeRanker::default()), config());
    let agent = agent();
    let mut request = ranking("q1", &[0.2, 0.9, 0.5, 0.9]);
    request["top"] = json!(3);
    request["time"] = json!("2024-06-01T12:00:00Z");
    let answer = post(&agent, &server.url("/v1/rank"), &request);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.content_type, "application/json");
    let body = answer.body;
    assert_eq!(
        body["model"],
        json!({"name": "fake", "policy": "house_rules", "policy_hash": "ph-1234", "version": "v-abcd"})
    );
    let ranked = body["ranked"].as_array().unwrap();
    let order: Vec<(u64, &str)> = ranked
        .iter()
        .map(|entry| {
            (
                entry["index"].as_u64().unwrap(),
                entry["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        order,
        vec![(1, "c1"), (3, "c3"), (2, "c2")],
        "ties by index, at most `top`"
    );
    assert_eq!(ranked[0]["score"], json!(0.9));
    assert_eq!(
        ranked[0]["scores"],
        json!({"overall": 0.9, "relevance": 0.45})
    );
    assert_eq!(ranked[0]["grade"], json!("good"));
    assert!(ranked[0]["click"].as_f64().unwrap() > 0.5);
    assert!(body["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(body["request"].as_str().unwrap().contains('-'));

    let answer = post(
        &agent,
        &server.url("/v1/rank"),
        &json!({"query": {}, "candidates": [{"n": 1}, {"id": 7, "n": 2}]}),
    );
    let ids: Vec<&Value> = answer.body["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| &entry["id"])
        .collect();
    assert_eq!(
        ids,
        vec![&json!(7), &Value::Null],
        "numbers are ids, a missing id is null"
    );

    let answer = post(
        &agent,
        &server.url("/v1/rank"),
        &json!({"query": {}, "candidates": []}),
    );
    assert_eq!(
        (answer.status, answer.body["ranked"].clone()),
        (200, json!([])),
        "nothing to rank"
    );
    server.stop().unwrap();
}

#[test]
fn a_pair_is_scored_and_the_health_check_names_the_model() {
    let server = TestServer::start(Arc::new(FakeRanker::default()), config());
    let agent = agent();
    let answer = post(
        &agent,
        &server.url("/v1/score"),
        &json!({"query": {"id": "q"}, "candidate": {"id": "c", "n": 0.25}}),
    );
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["id"], json!("c"));
    assert_eq!(answer.body["score"], json!(0.25));
    assert_eq!(answer.body["grade"], json!("poor"));
    assert_eq!(answer.body["model"]["policy_hash"], json!("ph-1234"));

    let health = support::answer(agent.get(&server.url("/healthz")).call());
    assert_eq!(health.status, 200);
    assert_eq!(
        health.body,
        json!({"status": "ok", "model": {"name": "fake", "policy": "house_rules", "policy_hash": "ph-1234", "version": "v-abcd", "quantized": false}})
    );
    server.stop().unwrap();
}

#[test]
fn concurrent_clients_are_all_answered_in_order_and_nothing_is_left_in_flight() {
    const THREADS: usize = 8;
    const REQUESTS: usize = 50;
    let ranker = Arc::new(FakeRanker::default());
    let server = TestServer::start(ranker.clone(), config());
    let url = server.url("/v1/rank");
    let started = Instant::now();
    let clients: Vec<_> = (0..THREADS)
        .map(|thread| {
            let url = url.clone();
            std::thread::spawn(move || {
                let agent = agent();
                for request in 0..REQUESTS {
                    // Scores differ per request, so a mixed-up answer shows.
                    let ns: Vec<f64> = (0..10)
                        .map(|i| ((i * 7 + thread * 3 + request) % 10) as f64 / 10.0)
                        .collect();
                    let query_id = format!("t{thread}-r{request}");
                    let answer = post(&agent, &url, &ranking(&query_id, &ns));
                    assert_eq!(answer.status, 200, "{}", answer.body);
                    let ranked = answer.body["ranked"].as_array().unwrap();
                    assert_eq!(ranked.len(), ns.len());
                    let served: Vec<f64> = ranked
                        .iter()
                        .map(|entry| entry["score"].as_f64().unwrap())
                        .collect();
                    // Scores are f32, written in their shortest form: `0.9`, not `0.8999999761581421`.
                    let mut expected = ns.clone();
                    expected.sort_by(|a, b| b.total_cmp(a));
                    assert_eq!(served, expected, "{query_id}");
                    for entry in ranked {
                        let index = entry["index"].as_u64().unwrap() as usize;
                        assert_eq!(entry["id"], json!(format!("c{index}")));
                        assert_eq!(entry["score"].as_f64().unwrap(), ns[index]);
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );

    let metrics = metrics(&agent(), &server);
    let total = (THREADS * REQUESTS) as f64;
    assert_eq!(
        metrics[r#"rubric_requests_total{endpoint="rank",status="200"}"#],
        total
    );
    assert_eq!(metrics["rubric_pairs_scored_total"], total * 10.0);
    assert_eq!(
        metrics[r#"rubric_request_duration_seconds_count{endpoint="rank"}"#],
        total
    );
    assert_eq!(metrics["rubric_queue_depth"], 0.0);
    assert_eq!(metrics["rubric_in_flight_requests"], 0.0);
    assert_eq!(metrics["rubric_rejected_total"], 0.0);
    assert!(
        !metrics
            .keys()
            .any(|series| series.starts_with("rubric_errors_total"))
    );
    server.stop().unwrap();
}

#[test]
fn a_full_queue_is_answered_503_at_once_and_every_other_request_200() {
    const CLIENTS: usize = 16;
    let ranker = Arc::new(FakeRanker::slow(Duration::from_millis(100)));
    let config = ServeConfig {
        queue_capacity: 2,
        max_batch_pairs: 1,
        ..config()
    };
    let server = TestServer::start(ranker, config);
    let url = server.url("/v1/rank");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let url = url.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let answer = post(&agent(), &url, &ranking(&format!("q{client}"), &[0.5]));
                (answer, started.elapsed())
            })
        })
        .collect();
    let answers: Vec<_> = clients
        .into_iter()
        .map(|client| client.join().unwrap())
        .collect();
    let mut refused = 0;
    for (answer, elapsed) in &answers {
        match answer.status {
            200 => assert_eq!(answer.body["ranked"][0]["score"], json!(0.5)),
            503 => {
                refused += 1;
                assert_eq!(answer.body["error"]["code"], json!("overloaded"));
                assert_eq!(
                    answer.body["error"]["message"],
                    json!("the model's queue is full (2 requests waiting); retry shortly")
                );
                assert_eq!(answer.retry_after.as_deref(), Some("1"));
                assert!(*elapsed < Duration::from_secs(1), "a 503 took {elapsed:?}");
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    // At most one request being scored and two queued at any moment; 16 arrive at once.
    assert!(refused > 0, "no request was refused");
    assert!(refused < CLIENTS, "every request was refused");
    let metrics = metrics(&agent(), &server);
    assert_eq!(metrics["rubric_rejected_total"], refused as f64);
    assert_eq!(
        metrics[r#"rubric_requests_total{endpoint="rank",status="503"}"#],
        refused as f64
    );
    assert_eq!(
        metrics[r#"rubric_errors_total{endpoint="rank",code="overloaded"}"#],
        refused as f64
    );
    assert_eq!(metrics["rubric_queue_depth"], 0.0);
    assert_eq!(metrics["rubric_in_flight_requests"], 0.0);
    server.stop().unwrap();
}

/// Sends `request` as written on a fresh connection and returns the status and JSON body.
fn raw(server: &TestServer, request: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let response = String::from_utf8_lossy(&response);
    let status: u16 = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}

#[test]
fn every_malformed_request_gets_its_documented_status_and_a_json_error() {
    let config = ServeConfig {
        max_candidates: 5,
        max_body_bytes: 2048,
        ..config()
    };
    let server = TestServer::start(Arc::new(FakeRanker::default()), config);
    let agent = agent();
    let rank = server.url("/v1/rank");
    let query = json!({"id": "q"});
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "missing query",
            json!({"candidates": []}),
            422,
            "invalid_request",
            "missing field `query`",
        ),
        (
            "query not an object",
            json!({"query": [], "candidates": []}),
            422,
            "invalid_request",
            "`query` must be an object, not an array",
        ),
        (
            "candidates not an array",
            json!({"query": query, "candidates": {}}),
            422,
            "invalid_request",
            "`candidates` must be an array of objects, not an object",
        ),
        (
            "a candidate not an object",
            json!({"query": query, "candidates": [{}, {}, {}, 4]}),
            422,
            "invalid_request",
            "`candidates[3]` must be an object, not a number",
        ),
        (
            "top zero",
            json!({"query": query, "candidates": [{}], "top": 0}),
            422,
            "invalid_request",
            "`top` must be an integer of at least 1, not `0`",
        ),
        (
            "top negative",
            json!({"query": query, "candidates": [{}], "top": -2}),
            422,
            "invalid_request",
            "`top` must be an integer of at least 1, not `-2`",
        ),
        (
            "bad time",
            json!({"query": query, "candidates": [{}], "time": "noon"}),
            422,
            "invalid_request",
            "`time` must be an RFC 3339 timestamp",
        ),
        (
            "unknown field",
            json!({"query": query, "candidates": [{}], "k": 3}),
            422,
            "invalid_request",
            "unknown field `k`",
        ),
        (
            "not an object",
            json!("rank"),
            422,
            "invalid_request",
            "the body must be a JSON object, not a string",
        ),
        (
            "too many candidates",
            json!({"query": query, "candidates": [{}, {}, {}, {}, {}, {}]}),
            422,
            "too_many_candidates",
            "`candidates` has 6 entries; the limit is 5 a request",
        ),
        (
            "a rejected pair",
            json!({"query": query, "candidates": [{"n": 1}, {"reject": true}, {"reject": true}]}),
            422,
            "rejected_pair",
            "the model cannot score `candidates[1]`: this candidate asked to be rejected (and 1 more candidate)",
        ),
        (
            "a panicking model",
            json!({"query": query, "candidates": [{"panic": true}]}),
            500,
            "model_failed",
            "the model panicked while scoring",
        ),
        (
            "a model answering too few results",
            json!({"query": query, "candidates": [{"n": 1}, {"short": true}]}),
            500,
            "model_failed",
            "the model returned a result count of 1 for 2 pairs",
        ),
        (
            "oversize body",
            json!({"query": {"pad": "x".repeat(4000)}, "candidates": []}),
            413,
            "body_too_large",
            "the body is larger than the limit of 2048 bytes",
        ),
    ];
    for (case, body, status, code, message) in cases {
        let answer = post(&agent, &rank, &body);
        assert_eq!(answer.status, status, "{case}: {}", answer.body);
        assert_eq!(answer.content_type, "application/json", "{case}");
        assert_eq!(answer.body["error"]["code"], json!(code), "{case}");
        let said = answer.body["error"]["message"].as_str().unwrap();
        assert!(said.starts_with(message), "{case}: {said}");
    }
    let answer = post(
        &agent,
        &server.url("/v1/score"),
        &json!({"query": {}, "candidate": {"reject": true}}),
    );
    assert_eq!(
        (
            answer.status,
            answer.body["error"]["message"].as_str().unwrap()
        ),
        (
            422,
            "the model cannot score the candidate: this candidate asked to be rejected"
        )
    );

    let malformed = support::answer(
        agent
            .post(&rank)
            .content_type("application/json")
            .send("{\"query\": {}, \n \"candidates\": [}"),
    );
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error"]["code"], json!("malformed_json"));
    assert!(
        malformed.body["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("at line 2 column 17"),
        "{}",
        malformed.body
    );

    let text = support::answer(agent.post(&rank).content_type("text/plain").send("{}"));
    assert_eq!(
        (text.status, &text.body["error"]["code"]),
        (415, &json!("unsupported_media_type"))
    );
    assert_eq!(
        text.body["error"]["message"],
        json!("the body must be sent as `content-type: application/json`, not `text/plain`")
    );
    let (status, body) = raw(
        &server,
        "POST /v1/rank HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
    );
    assert_eq!(
        (status, &body["error"]["message"]),
        (
            415,
            &json!("the body must be sent as `content-type: application/json`, not none")
        )
    );
    let suffixed = support::answer(
        agent
            .post(&rank)
            .content_type("application/vnd.rubric+json; charset=utf-8")
            .send(r#"{"query": {}, "candidates": []}"#),
    );
    assert_eq!(suffixed.status, 200);

    let missing = support::answer(agent.get(&server.url("/v2/rank")).call());
    assert_eq!(
        (missing.status, &missing.body["error"]["code"]),
        (404, &json!("not_found"))
    );
    assert!(
        missing.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("nothing is served at `/v2/rank`")
    );
    let wrong_method = support::answer(agent.get(&rank).call());
    assert_eq!(
        (wrong_method.status, &wrong_method.body["error"]["code"]),
        (405, &json!("method_not_allowed"))
    );
    assert_eq!(
        wrong_method.body["error"]["message"],
        json!("`GET /v1/rank` is not served; use `POST /v1/rank`")
    );
    assert_eq!(wrong_method.allow.as_deref(), Some("POST"));
    let wrong_method = support::answer(agent.post(&server.url("/healthz")).send_json(json!({})));
    assert_eq!(wrong_method.status, 405);

    // A chunked body has no length to refuse up front: it is cut off at the limit while read.
    let chunk = "x".repeat(1500);
    let chunked = format!(
        "POST /v1/rank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{len:x}\r\n{chunk}\r\n{len:x}\r\n{chunk}\r\n0\r\n\r\n",
        len = chunk.len()
    );
    let (status, body) = raw(&server, &chunked);
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &json!("body_too_large"))
    );

    // The model's panic cost only its own request.
    let answer = post(&agent, &rank, &ranking("q", &[0.1]));
    assert_eq!(answer.status, 200);
    let metrics = metrics(&agent, &server);
    assert_eq!(
        metrics[r#"rubric_errors_total{endpoint="rank",code="malformed_json"}"#],
        1.0
    );
    assert_eq!(
        metrics[r#"rubric_requests_total{endpoint="other",status="404"}"#],
        1.0
    );
    assert_eq!(metrics["rubric_in_flight_requests"], 0.0);
    server.stop().unwrap();
}

#[test]
fn shutdown_answers_the_slow_requests_in_flight_and_then_returns() {
    const CLIENTS: usize = 4;
    let ranker = Arc::new(FakeRanker::slow(Duration::from_millis(300)));
    let (started, calls) = mpsc::channel();
    *ranker.started.lock().unwrap() = Some(started);
    let config = ServeConfig {
        max_batch_pairs: 1,
        ..config()
    };
    let mut server = TestServer::start(ranker.clone(), config);
    let url = server.url("/v1/score");
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let url = url.clone();
            std::thread::spawn(move || {
                post(
                    &agent(),
                    &url,
                    &json!({"query": {"id": client}, "candidate": {"n": client}}),
                )
            })
        })
        .collect();
    // Once the model is busy with the first and the rest are queued behind it.
    calls.recv_timeout(Duration::from_secs(10)).unwrap();
    let agent = agent();
    for _ in 0..100 {
        if metrics(&agent, &server)["rubric_in_flight_requests"] == CLIENTS as f64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        metrics(&agent, &server)["rubric_queue_depth"],
        (CLIENTS - 1) as f64
    );
    let stopping = Instant::now();
    server.begin_stop();
    // No new connection is taken once shutdown has begun.
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(server.addr).is_err() {
            refused = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(refused, "still accepting connections");
    for (client, handle) in clients.into_iter().enumerate() {
        let answer = handle.join().unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["score"], json!(client as f32));
    }
    server.stop().unwrap();
    assert_eq!(
        ranker.calls.load(std::sync::atomic::Ordering::SeqCst),
        CLIENTS
    );
    assert!(stopping.elapsed() < Duration::from_secs(10));
}

#[test]
fn shutdown_gives_up_on_requests_after_its_timeout() {
    let ranker = Arc::new(FakeRanker::slow(Duration::from_millis(1500)));
    let (started, calls) = mpsc::channel();
    *ranker.started.lock().unwrap() = Some(started);
    let config = ServeConfig {
        shutdown_timeout: Duration::from_millis(200),
        ..config()
    };
    let server = TestServer::start(ranker, config);
    let url = server.url("/v1/rank");
    let client = std::thread::spawn(move || {
        agent()
            .post(&url)
            .send_json(ranking("slow", &[0.5]))
            .map(|response| response.status().as_u16())
    });
    calls.recv_timeout(Duration::from_secs(10)).unwrap();
    let stopping = Instant::now();
    let error = server.stop().unwrap_err();
    assert_eq!(
        error,
        "requests still in flight 0.2 s after shutdown began were abandoned"
    );
    // It waited for the model's call to end (1.5 s), not for the request to be answered.
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    // The abandoned client sees its connection closed (or, at worst, its answer).
    let _ = client.join().unwrap();
}

#[test]
fn metrics_are_openmetrics_text_with_latency_counts_batches_and_the_model() {
    let server = TestServer::start(Arc::new(FakeRanker::default()), config());
    let agent = agent();
    post(
        &agent,
        &server.url("/v1/rank"),
        &ranking("q", &[0.3, 0.1, 0.2]),
    );
    let _ = support::answer(agent.get(&server.url("/nowhere")).call());
    let (status, content_type, text) = support::get_text(&agent, &server.url("/metrics"));
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let metrics = support::parse_metrics(&text);
    for line in [
        "# TYPE rubric_request_duration_seconds histogram",
        "# UNIT rubric_request_duration_seconds seconds",
        "# TYPE rubric_requests counter",
        "# TYPE rubric_batch_pairs histogram",
        "# TYPE rubric_model info",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    assert_eq!(
        metrics[r#"rubric_request_duration_seconds_count{endpoint="rank"}"#],
        1.0
    );
    assert_eq!(
        metrics[r#"rubric_request_duration_seconds_bucket{le="+Inf",endpoint="rank"}"#],
        1.0
    );
    assert!(
        metrics
            .contains_key(r#"rubric_request_duration_seconds_bucket{le="0.001",endpoint="rank"}"#),
        "a bucket at 1 ms:\n{text}"
    );
    assert_eq!(
        metrics[r#"rubric_requests_total{endpoint="rank",status="200"}"#],
        1.0
    );
    assert_eq!(
        metrics[r#"rubric_requests_total{endpoint="other",status="404"}"#],
        1.0
    );
    assert_eq!(
        metrics[r#"rubric_errors_total{endpoint="other",code="not_found"}"#],
        1.0
    );
    assert_eq!(metrics["rubric_rejected_total"], 0.0);
    assert_eq!(metrics["rubric_queue_depth"], 0.0);
    assert_eq!(metrics["rubric_pairs_scored_total"], 3.0);
    assert_eq!(metrics["rubric_batch_pairs_count"], 1.0);
    assert_eq!(metrics["rubric_batch_pairs_sum"], 3.0);
    assert_eq!(metrics["rubric_batch_requests_sum"], 1.0);
    assert_eq!(metrics["rubric_batch_duration_seconds_count"], 1.0);
    assert_eq!(
        metrics[r#"rubric_model_info{name="fake",policy="house_rules",policy_hash="ph-1234",version="v-abcd",quantized="false"}"#],
        1.0
    );
    server.stop().unwrap();
}

#[test]
fn requests_of_several_clients_share_one_model_call() {
    let ranker = Arc::new(FakeRanker {
        first_delay: Some(Duration::from_millis(400)),
        ..FakeRanker::default()
    });
    let (started, calls) = mpsc::channel();
    *ranker.started.lock().unwrap() = Some(started);
    let server = TestServer::start(ranker.clone(), config());
    let url = server.url("/v1/rank");
    let send = |query: &'static str| {
        let url = url.clone();
        std::thread::spawn(move || post(&agent(), &url, &ranking(query, &[0.1, 0.2])))
    };
    let first = send("first");
    calls.recv_timeout(Duration::from_secs(10)).unwrap();
    // While the model is busy with the first, three clients queue behind it.
    let others: Vec<_> = ["a", "b", "c"].into_iter().map(send).collect();
    assert_eq!(first.join().unwrap().status, 200);
    for other in others {
        assert_eq!(other.join().unwrap().status, 200);
    }
    let per_call = ranker.queries_per_call();
    assert_eq!(per_call[0], 1);
    assert!(
        per_call[1..].iter().any(|&queries| queries > 1),
        "no call held two requests: {per_call:?}"
    );
    let metrics = metrics(&agent(), &server);
    assert!(metrics["rubric_batch_requests_sum"] > metrics["rubric_batch_requests_count"]);
    server.stop().unwrap();
}

#[test]
fn a_lone_client_does_not_wait_for_a_batch_to_fill() {
    let config = ServeConfig {
        batch_wait: Duration::from_secs(2),
        ..config()
    };
    let server = TestServer::start(Arc::new(FakeRanker::default()), config);
    let agent = agent();
    for _ in 0..3 {
        let started = Instant::now();
        let answer = post(&agent, &server.url("/v1/rank"), &ranking("q", &[0.1, 0.2]));
        assert_eq!(answer.status, 200);
        // Waiting `batch_wait` would take 2 s; nobody else is arriving.
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
    server.stop().unwrap();
}

#[test]
fn a_large_ranking_is_split_into_calls_of_at_most_max_batch_pairs() {
    let ranker = Arc::new(FakeRanker::default());
    let config = ServeConfig {
        max_batch_pairs: 4,
        ..config()
    };
    let server = TestServer::start(ranker.clone(), config);
    let ns: Vec<f64> = (0..10).map(f64::from).collect();
    let answer = post(&agent(), &server.url("/v1/rank"), &ranking("q", &ns));
    let first: Vec<u64> = answer.body["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["index"].as_u64().unwrap())
        .collect();
    assert_eq!(first, (0..10).rev().collect::<Vec<u64>>());
    let sizes: Vec<usize> = ranker
        .batches
        .lock()
        .unwrap()
        .iter()
        .map(Vec::len)
        .collect();
    assert_eq!(sizes, vec![4, 4, 2]);
    server.stop().unwrap();
}

#[test]
fn the_request_log_has_a_line_per_scored_pair() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("requests.jsonl");
    let config = ServeConfig {
        request_log: Some(path.clone()),
        ..config()
    };
    let server = TestServer::start(Arc::new(FakeRanker::default()), config);
    let agent = agent();
    let mut request = ranking("q7", &[0.2, 0.9, 0.5]);
    request["top"] = json!(2);
    request["time"] = json!("2024-06-01T12:00:00Z");
    let ranked = post(&agent, &server.url("/v1/rank"), &request);
    let scored = post(
        &agent,
        &server.url("/v1/score"),
        &json!({"query": {"id": 8}, "candidate": {"n": 0.7}}),
    );
    let refused = post(
        &agent,
        &server.url("/v1/rank"),
        &json!({"query": {}, "candidates": [{"reject": true}]}),
    );
    assert_eq!(
        (ranked.status, scored.status, refused.status),
        (200, 200, 422)
    );
    server.stop().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines.len(),
        4,
        "three candidates and one pair; nothing for the refused request:\n{text}"
    );
    let fields = [
        "ts",
        "request",
        "endpoint",
        "query_id",
        "candidate_id",
        "index",
        "rank",
        "served",
        "score",
        "scores",
        "grade",
        "click",
        "time",
        "latency_ms",
        "policy_hash",
        "version",
    ];
    for line in &lines {
        let keys: Vec<&str> = line
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys.len(), fields.len(), "{line}");
        for field in fields {
            assert!(keys.contains(&field), "no `{field}` in {line}");
        }
        assert!(
            line["ts"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok(),
            "{line}"
        );
        assert_eq!(
            (&line["policy_hash"], &line["version"]),
            (&json!("ph-1234"), &json!("v-abcd"))
        );
    }
    let request_id = &ranked.body["request"];
    let ranking_lines: Vec<(Value, u64, u64, bool)> = lines[..3]
        .iter()
        .map(|line| {
            assert_eq!(
                (&line["request"], &line["endpoint"], &line["query_id"]),
                (request_id, &json!("rank"), &json!("q7"))
            );
            assert_eq!(line["time"], json!("2024-06-01T12:00:00Z"));
            (
                line["candidate_id"].clone(),
                line["index"].as_u64().unwrap(),
                line["rank"].as_u64().unwrap(),
                line["served"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ranking_lines,
        vec![
            (json!("c1"), 1, 1, true),
            (json!("c2"), 2, 2, true),
            (json!("c0"), 0, 3, false)
        ]
    );
    assert_eq!(lines[0]["score"], json!(0.9));
    let score = &lines[3];
    assert_eq!(
        (&score["endpoint"], &score["request"], &score["query_id"]),
        (&json!("score"), &scored.body["request"], &json!(8))
    );
    assert_eq!(
        (&score["candidate_id"], &score["rank"], &score["time"]),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_ne!(request_id, &scored.body["request"]);
}

#[test]
fn a_non_loopback_address_is_refused_unless_allowed() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let refused = runtime.block_on(Server::bind(
        Arc::new(FakeRanker::default()),
        ServeConfig {
            addr: "0.0.0.0:0".parse().unwrap(),
            ..config()
        },
    ));
    let error = refused.err().unwrap();
    assert!(
        error.starts_with("refusing to listen on `0.0.0.0:0`: not a loopback address"),
        "{error}"
    );
}

#[test]
fn serve_returns_after_its_shutdown_future_and_can_be_spawned() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // `tokio::spawn` needs a `Send` future: the CLI may run the service beside other tasks.
    let serving = runtime.spawn(rubric_serve::serve(
        Arc::new(FakeRanker::default()),
        config(),
        async { tokio::time::sleep(Duration::from_millis(50)).await },
    ));
    let result =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(10), serving).await });
    assert_eq!(result.unwrap().unwrap(), Ok(()));
}
