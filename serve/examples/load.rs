//! A load generator for `rubric serve`: sends `POST /v1/rank` with the same query and `--n`
//! candidates from `--concurrency` clients for `--seconds` (or `--max-requests`, whichever comes
//! first), then prints one JSON line: request count, errors, requests/s and the client-side
//! latency quantiles. Only loopback addresses are accepted.
//!
//! ```text
//! cargo run --release -p rubric-serve --example load -- --url http://127.0.0.1:PORT \
//!     --candidates FILE.jsonl --query FILE.json --n 100 --concurrency 1 --seconds 10
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const USAGE: &str = "usage: load --url http://127.0.0.1:PORT --candidates FILE.jsonl --query FILE.json \
[--n 100] [--concurrency 1] [--seconds 10] [--max-requests 1000000] [--top K]";

struct Args {
    url: String,
    candidates: String,
    query: String,
    n: usize,
    concurrency: usize,
    seconds: f64,
    max_requests: u64,
    top: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: String::new(),
        candidates: String::new(),
        query: String::new(),
        n: 100,
        concurrency: 1,
        seconds: 10.0,
        max_requests: 1_000_000,
        top: None,
    };
    let mut words = std::env::args().skip(1);
    while let Some(flag) = words.next() {
        let value = words
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))?;
        let number = |what: &str| format!("`{flag}` must be {what}, not `{value}`");
        match flag.as_str() {
            "--url" => args.url = value,
            "--candidates" => args.candidates = value,
            "--query" => args.query = value,
            "--n" => args.n = value.parse().map_err(|_| number("a count"))?,
            "--concurrency" => args.concurrency = value.parse().map_err(|_| number("a count"))?,
            "--seconds" => {
                args.seconds = value.parse().map_err(|_| number("a number of seconds"))?
            }
            "--max-requests" => args.max_requests = value.parse().map_err(|_| number("a count"))?,
            "--top" => args.top = Some(value.parse().map_err(|_| number("a count"))?),
            _ => return Err(format!("unknown flag `{flag}`\n{USAGE}")),
        }
    }
    for (flag, value) in [
        ("--url", &args.url),
        ("--candidates", &args.candidates),
        ("--query", &args.query),
    ] {
        if value.is_empty() {
            return Err(format!("`{flag}` is required\n{USAGE}"));
        }
    }
    if args.n == 0 || args.concurrency == 0 || args.max_requests == 0 {
        return Err("`--n`, `--concurrency` and `--max-requests` must be at least 1".into());
    }
    if !(args.seconds > 0.0 && args.seconds <= 3600.0) {
        return Err(format!(
            "`--seconds` must be more than 0 and at most 3600, not {}",
            args.seconds
        ));
    }
    Ok(args)
}

/// The `/v1/rank` URL of `url`, after checking that its host resolves to loopback only.
fn rank_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an `http://` URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let addrs: Vec<_> = with_port
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve `{authority}`: {error}"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|addr| !addr.ip().is_loopback()) {
        return Err(format!(
            "refusing to load `{authority}`: not a loopback address"
        ));
    }
    Ok(format!("http://{authority}/v1/rank"))
}

fn read_body(args: &Args) -> Result<(Vec<u8>, usize), String> {
    let query: Value = serde_json::from_str(
        &std::fs::read_to_string(&args.query)
            .map_err(|error| format!("cannot read `{}`: {error}", args.query))?,
    )
    .map_err(|error| format!("`{}` is not JSON: {error}", args.query))?;
    let text = std::fs::read_to_string(&args.candidates)
        .map_err(|error| format!("cannot read `{}`: {error}", args.candidates))?;
    let mut pool = Vec::new();
    for (line, record) in text
        .lines()
        .enumerate()
        .filter(|(_, record)| !record.trim().is_empty())
    {
        pool.push(
            serde_json::from_str::<Value>(record)
                .map_err(|error| format!("`{}` line {}: {error}", args.candidates, line + 1))?,
        );
        if pool.len() == args.n {
            break;
        }
    }
    if pool.is_empty() {
        return Err(format!("`{}` has no candidates", args.candidates));
    }
    // A file with fewer than `--n` candidates is repeated.
    let candidates: Vec<&Value> = pool.iter().cycle().take(args.n).collect();
    let mut body = json!({"query": query, "candidates": candidates});
    if let Some(top) = args.top {
        body["top"] = json!(top);
    }
    Ok((
        serde_json::to_vec(&body).map_err(|error| error.to_string())?,
        pool.len(),
    ))
}

/// The `q` quantile of sorted `values` (nearest rank), in milliseconds.
fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e3
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let url = rank_url(&args.url)?;
    let (body, distinct) = read_body(&args)?;
    let body = Arc::new(body);
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let deadline = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (url, body, sent, errors, first_error) = (
                url.clone(),
                Arc::clone(&body),
                Arc::clone(&sent),
                Arc::clone(&errors),
                Arc::clone(&first_error),
            );
            let max_requests = args.max_requests;
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(30)))
                    .proxy(None)
                    .build()
                    .into();
                let mut latencies = Vec::new();
                while started.elapsed() < deadline
                    && sent.fetch_add(1, Ordering::Relaxed) < max_requests
                {
                    let begun = Instant::now();
                    let outcome = agent
                        .post(&url)
                        .content_type("application/json")
                        .send(&body[..])
                        .map_err(|error| error.to_string())
                        .and_then(|mut response| {
                            let status = response.status().as_u16();
                            let text = response
                                .body_mut()
                                .read_to_string()
                                .map_err(|error| error.to_string())?;
                            if status == 200 {
                                Ok(())
                            } else {
                                Err(format!("{status}: {text}"))
                            }
                        });
                    match outcome {
                        Ok(()) => latencies.push(begun.elapsed()),
                        Err(error) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            first_error.lock().unwrap().get_or_insert(error);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for client in clients {
        latencies.extend(
            client
                .join()
                .map_err(|_| "a client thread panicked".to_owned())?,
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let errors = errors.load(Ordering::Relaxed);
    if let Some(error) = first_error.lock().unwrap().as_ref() {
        eprintln!("load: {errors} requests failed; the first: {error}");
    }
    let report = json!({
        "url": url,
        "candidates": args.n,
        "distinct_candidates": distinct,
        "concurrency": args.concurrency,
        "requests": latencies.len(),
        "errors": errors,
        "seconds": seconds,
        "requests_per_s": latencies.len() as f64 / seconds,
        "p50_ms": quantile_ms(&latencies, 0.50),
        "p90_ms": quantile_ms(&latencies, 0.90),
        "p99_ms": quantile_ms(&latencies, 0.99),
        "max_ms": latencies.last().map_or(f64::NAN, |max| max.as_secs_f64() * 1e3),
    });
    println!("{report}");
    if latencies.is_empty() {
        return Err("no request succeeded".into());
    }
    Ok(())
}
