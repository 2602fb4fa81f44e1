//! Fuzz targets for the language server: its stdio framing (`transport::read_messages`) on any
//! byte stream, and the server itself on any sequence of messages (the seed messages of
//! `tests/fuzz/lsp.jsonl` with their text and positions mutated, known methods with any params,
//! unknown methods, responses nobody asked for). What must hold: no panic; every request gets
//! exactly one answer (a result or an error) and the server is still serving at the end (it
//! answers `shutdown`). Bounded in CI; `RUBRIC_FUZZ_SECONDS=N` runs longer
//! (`tests/support/fuzzing.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../tests/support/fuzzing.rs"]
mod fuzzing;

use fuzzing::{fail, fuzz};
use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value, json};
use std::io::Cursor;
use std::sync::OnceLock;
use std::time::Duration;

fn seeds() -> &'static [Value] {
    static SEEDS: OnceLock<Vec<Value>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fuzz/lsp.jsonl"
        ))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
    })
}

/// Text the server may be given: policy fragments, brackets, non-ASCII letters (positions are
/// UTF-16 in LSP), long lines.
fn text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("policy p version 1 {\n".to_string()),
        Just("  entity A { x: number }\n".to_string()),
        Just("  pair query: A, candidate: A\n".to_string()),
        Just("  dimension d weight 100% { score = clamp(query.x, 0, 1) }\n".to_string()),
        Just("  grade overall { good when overall >= 0.5  poor otherwise }\n".to_string()),
        Just("  use std.text.{coverage}\n".to_string()),
        Just("}\n".to_string()),
        Just("query.".to_string()),
        Just("🚀 größe \u{feff}\r\n".to_string()),
        Just("module a.b {\n".to_string()),
        Just("pipeline x for p {\n".to_string()),
        "[ -~]{0,20}",
        (0usize..5000).prop_map(|n| "y".repeat(n)),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn position() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u32..12, 0u32..80).prop_map(|(l, c)| json!({"line": l, "character": c})),
        (any::<u32>(), any::<u32>()).prop_map(|(l, c)| json!({"line": l, "character": c})),
        Just(json!({"line": -1, "character": "x"})),
        Just(json!(null)),
    ]
}

/// Any JSON value, small.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// One message the client sends.
#[derive(Clone, Debug)]
enum Sent {
    /// A seed message with its text and position replaced where it has them.
    Seed(Index, Option<String>, Value, u8),
    /// A known method with any params.
    Known(Index, Value),
    /// A method the server does not know.
    Unknown(String, Value),
    /// A response to a request the server never sent.
    Response(i64),
}

const METHODS: &[&str] = &[
    "textDocument/didOpen",
    "textDocument/didChange",
    "textDocument/didClose",
    "textDocument/didSave",
    "textDocument/hover",
    "textDocument/definition",
    "textDocument/completion",
    "textDocument/documentSymbol",
    "textDocument/formatting",
    "workspace/didChangeWatchedFiles",
    "$/cancelRequest",
];

fn sent() -> impl Strategy<Value = Sent> {
    prop_oneof![
        6 => (any::<Index>(), prop::option::of(text()), position(), 0u8..4)
            .prop_map(|(i, t, p, u)| Sent::Seed(i, t, p, u)),
        2 => (any::<Index>(), any_json()).prop_map(|(i, v)| Sent::Known(i, v)),
        1 => ("[a-z/$]{1,20}", any_json()).prop_map(|(m, v)| Sent::Unknown(m, v)),
        1 => any::<i64>().prop_map(Sent::Response),
    ]
}

const URIS: &[&str] = &[
    "file:///w/p.policy",
    "file:///w/lib/a.policy",
    "untitled:Untitled-1",
    "file:///w/%E2%9C%93.policy",
];

/// The message for `s`; requests get ids from `next_id`.
fn message(s: &Sent, next_id: &mut i32) -> Message {
    let mut request = |method: &str, params: Value| -> Message {
        *next_id += 1;
        Request::new(RequestId::from(*next_id), method.to_string(), params).into()
    };
    match s {
        Sent::Seed(i, text, position, uri) => {
            let seeds = seeds();
            let mut m = seeds[i.index(seeds.len())].clone();
            let method = m["method"].as_str().unwrap_or("").to_string();
            let mut params = m["params"].take();
            let uri = URIS[usize::from(*uri) % URIS.len()];
            if let Some(doc) = params.get_mut("textDocument") {
                doc["uri"] = json!(uri);
                if let Some(t) = text
                    && doc.get("text").is_some()
                {
                    doc["text"] = json!(t);
                }
            }
            if let (Some(t), Some(changes)) = (text, params.get_mut("contentChanges")) {
                *changes = json!([{ "text": t }]);
            }
            if params.get("position").is_some() {
                params["position"] = position.clone();
            }
            if m.get("id").is_some() {
                request(&method, params)
            } else {
                Notification::new(method, params).into()
            }
        }
        Sent::Known(i, params) => {
            let method = METHODS[i.index(METHODS.len())];
            if method.starts_with("textDocument/did")
                || method.starts_with("workspace/")
                || method.starts_with('$')
            {
                Notification::new(method.to_string(), params.clone()).into()
            } else {
                request(method, params.clone())
            }
        }
        Sent::Unknown(method, params) => request(method, params.clone()),
        Sent::Response(id) => Response::new_ok(RequestId::from(id.to_string()), json!(null)).into(),
    }
}

/// Any sequence of messages after the handshake: every request is answered once, and the
/// server still answers `shutdown` at the end and stops cleanly on `exit`.
#[test]
fn fuzz_language_server() {
    let stdlib = tempfile::tempdir().unwrap();
    let strategy = prop::collection::vec(sent(), 1..16);
    fuzz("lsp-server", 24, strategy, |messages| {
        let (server, client) = Connection::memory();
        let config = rubric_lsp::Config {
            stdlib_dir: stdlib.path().to_path_buf(),
        };
        let handle = std::thread::spawn(move || rubric_lsp::run(&server, config));
        let recv = |what: &str| {
            client
                .receiver
                .recv_timeout(Duration::from_secs(60))
                .map_err(|_| {
                    fail(format!(
                        "no answer to {what} within 60 s (the server is gone or hangs)"
                    ))
                })
        };
        let mut next_id = 0;
        let initialize = Request::new(
            RequestId::from(0),
            "initialize".to_string(),
            json!({"capabilities": {}}),
        );
        client.sender.send(initialize.into()).unwrap();
        recv("initialize")?;
        client
            .sender
            .send(Notification::new("initialized".to_string(), json!({})).into())
            .unwrap();
        let mut asked = Vec::new();
        for s in &messages {
            let m = message(s, &mut next_id);
            if let Message::Request(r) = &m {
                asked.push(r.id.clone());
            }
            client
                .sender
                .send(m)
                .map_err(|_| fail("the server stopped reading"))?;
        }
        let shutdown = RequestId::from(next_id + 1);
        client
            .sender
            .send(Request::new(shutdown.clone(), "shutdown".to_string(), json!(null)).into())
            .map_err(|_| fail("the server stopped reading"))?;
        let mut answered = Vec::new();
        loop {
            match recv("a request")? {
                Message::Response(r) if r.id == shutdown => break,
                Message::Response(r) => answered.push(r.id),
                Message::Notification(_) | Message::Request(_) => {}
            }
        }
        if answered != asked {
            return Err(fail(format!("requests {asked:?} got answers {answered:?}")));
        }
        client
            .sender
            .send(Notification::new("exit".to_string(), json!(null)).into())
            .unwrap();
        drop(client);
        match handle.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(fail(format!("the server stopped with an error: {e}"))),
            Err(_) => Err(fail("the server thread panicked")),
        }
    });
}

/// A stream of frames: seed messages framed correctly, frames with a wrong or missing
/// `Content-Length`, bodies that are not JSON, cut frames, any bytes.
#[derive(Clone, Debug)]
enum Chunk {
    Frame(Index),
    WrongLength(Index, i64),
    Body(Vec<u8>),
    Header(String),
    Bytes(Vec<u8>),
}

fn chunk() -> impl Strategy<Value = Chunk> {
    prop_oneof![
        4 => any::<Index>().prop_map(Chunk::Frame),
        2 => (any::<Index>(), -10i64..10).prop_map(|(i, d)| Chunk::WrongLength(i, d)),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Chunk::Body),
        1 => "[ -~]{0,40}".prop_map(Chunk::Header),
        1 => prop::collection::vec(any::<u8>(), 0..40).prop_map(Chunk::Bytes),
    ]
}

fn frame(body: &[u8], length: i64) -> Vec<u8> {
    let mut out = format!("Content-Length: {length}\r\n\r\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// Any byte stream: the framing reads it to its end without a panic, delivers only well-formed
/// messages, and delivers every frame of the stream when the stream holds nothing else.
#[test]
fn fuzz_stdio_framing() {
    let strategy = prop::collection::vec(chunk(), 0..24);
    fuzz("lsp-framing", 256, strategy, |chunks| {
        let seeds = seeds();
        let mut stream = Vec::new();
        let mut only_frames = true;
        for c in &chunks {
            match c {
                Chunk::Frame(i) => {
                    let body = seeds[i.index(seeds.len())].to_string();
                    stream.extend(frame(body.as_bytes(), body.len() as i64));
                }
                Chunk::WrongLength(i, d) => {
                    let body = seeds[i.index(seeds.len())].to_string();
                    stream.extend(frame(body.as_bytes(), body.len() as i64 + d));
                    only_frames &= *d == 0;
                }
                Chunk::Body(b) => {
                    stream.extend(frame(b, b.len() as i64));
                    only_frames = false;
                }
                Chunk::Header(h) => {
                    stream.extend(format!("{h}\r\n").into_bytes());
                    only_frames = false;
                }
                Chunk::Bytes(b) => {
                    stream.extend_from_slice(b);
                    only_frames = false;
                }
            }
        }
        let mut delivered = 0usize;
        let mut replies = Vec::new();
        rubric_lsp::transport::read_messages(
            &mut Cursor::new(stream),
            &mut |_| {
                delivered += 1;
                true
            },
            &mut |v| {
                replies.push(v);
                Ok(())
            },
        )
        .map_err(|e| fail(format!("reading stopped: {e}")))?;
        for r in &replies {
            if r.get("error").and_then(|e| e.get("code")).is_none() {
                return Err(fail(format!("a reply is not a JSON-RPC error: {r}")));
            }
        }
        if only_frames && delivered != chunks.len() {
            return Err(fail(format!(
                "{delivered} of {} frames delivered",
                chunks.len()
            )));
        }
        Ok(())
    });
}
