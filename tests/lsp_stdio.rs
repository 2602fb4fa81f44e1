#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `rubric lsp` end to end: the built binary spoken to over real standard input and output
//! (LSP's `Content-Length` framing), from `initialize` to `exit`.

use lsp_server::{Message, Notification, Request, RequestId};
use lsp_types::notification::{
    DidOpenTextDocument, Exit, Initialized, Notification as _, PublishDiagnostics,
};
use lsp_types::request::{HoverRequest, Initialize, Request as _, Shutdown};
use lsp_types::*;
use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BROKEN: &str = r#"policy p version 1 {
  entity Job { skills: set<string> }
  entity Person { skills: set<string> }
  pair query: Job, candidate: Person
  /// Whether the person has the skill — “café” —
  dimension fit weight 100% { score = if contains(query.skills, "café — ü") and contains(candidate.skils, "rust") then 1.0 else 0.0 }
  grade overall { good when overall >= 0.5  poor otherwise }
}
"#;

#[test]
fn the_binary_serves_lsp_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let path = std::fs::canonicalize(dir.path()).unwrap().join("p.policy");
    std::fs::write(&path, BROKEN).unwrap();
    let uri = Url::from_file_path(&path).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(["lsp", "--stdlib-dir"])
        .arg(dir.path().join("stdlib"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    // Messages are read on a thread, so a silent server fails the test instead of hanging it.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        while let Ok(Some(message)) = Message::read(&mut reader) {
            if tx.send(message).is_err() {
                break;
            }
        }
    });
    let mut send = |m: Message| m.write(&mut stdin).unwrap();
    let next = || rx.recv_timeout(Duration::from_secs(60)).expect("an answer");

    send(
        Request::new(
            RequestId::from(1),
            Initialize::METHOD.into(),
            InitializeParams::default(),
        )
        .into(),
    );
    let Message::Response(init) = next() else {
        panic!("the initialize response comes first");
    };
    let init: InitializeResult = serde_json::from_value(init.response_result.unwrap()).unwrap();
    assert_eq!(
        init.capabilities.hover_provider,
        Some(HoverProviderCapability::Simple(true))
    );
    send(Notification::new(Initialized::METHOD.into(), InitializedParams {}).into());
    send(
        Notification::new(
            DidOpenTextDocument::METHOD.into(),
            DidOpenTextDocumentParams {
                text_document: TextDocumentItem::new(
                    uri.clone(),
                    "rubric".into(),
                    7,
                    BROKEN.into(),
                ),
            },
        )
        .into(),
    );
    let Message::Notification(published) = next() else {
        panic!("diagnostics are published on open");
    };
    assert_eq!(published.method, PublishDiagnostics::METHOD);
    let published: PublishDiagnosticsParams = serde_json::from_value(published.params).unwrap();
    assert_eq!(published.uri, uri);
    assert_eq!(published.version, Some(7));
    let [d] = published.diagnostics.as_slice() else {
        panic!("{:#?}", published.diagnostics);
    };
    // Line 5 (from 0), after `"café — ü") and contains(candidate.`: 99 UTF-16 units, 103 bytes.
    assert_eq!(
        d.range,
        Range::new(Position::new(5, 99), Position::new(5, 104))
    );
    assert_eq!(
        d.code,
        Some(NumberOrString::String(
            "rubric::resolve::unknown_field".into()
        ))
    );

    send(
        Request::new(
            RequestId::from(2),
            HoverRequest::METHOD.into(),
            HoverParams {
                text_document_position_params: TextDocumentPositionParams::new(
                    TextDocumentIdentifier::new(uri.clone()),
                    Position::new(5, 14),
                ),
                work_done_progress_params: WorkDoneProgressParams::default(),
            },
        )
        .into(),
    );
    let Message::Response(hover) = next() else {
        panic!("a hover response");
    };
    let hover: Hover = serde_json::from_value(hover.response_result.unwrap()).unwrap();
    let HoverContents::Markup(text) = hover.contents else {
        panic!("markdown");
    };
    assert!(
        text.value.contains("dimension fit weight 100%"),
        "{}",
        text.value
    );
    assert!(text.value.contains("“café”"), "{}", text.value);

    send(Request::new(RequestId::from(3), Shutdown::METHOD.into(), ()).into());
    let Message::Response(shutdown) = next() else {
        panic!("a shutdown response");
    };
    assert_eq!(shutdown.id, RequestId::from(3));
    send(Notification::new(Exit::METHOD.into(), ()).into());
    stdin.flush().unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

/// Reads one raw frame (errors for unreadable messages have a null id, which `Message` does not
/// take).
fn raw_frame(reader: &mut impl std::io::BufRead) -> Option<serde_json::Value> {
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

/// A `rubric lsp` process, its input, and its answers as raw JSON.
fn spawn_server(
    stdlib: &std::path::Path,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    mpsc::Receiver<serde_json::Value>,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rubric"))
        .args(["lsp", "--stdlib-dir"])
        .arg(stdlib)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        while let Some(v) = raw_frame(&mut reader) {
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    (child, stdin, rx)
}

fn send_raw(stdin: &mut std::process::ChildStdin, body: &str) {
    write!(stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    stdin.flush().unwrap();
}

#[test]
fn the_server_answers_bad_messages_and_goes_on_serving() {
    let dir = tempfile::tempdir().unwrap();
    let stdlib = dir.path().join("stdlib");
    let (mut child, mut stdin, rx) = spawn_server(&stdlib);
    let next = || rx.recv_timeout(Duration::from_secs(60)).expect("an answer");
    send_raw(&mut stdin, "{this is not json");
    assert_eq!(next()["error"]["code"], -32700);
    send_raw(&mut stdin, "[]");
    assert_eq!(next()["error"]["code"], -32600);
    send_raw(&mut stdin, "{}");
    assert_eq!(next()["error"]["code"], -32600);
    send_raw(&mut stdin, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\":");
    assert_eq!(next()["error"]["code"], -32700);
    // After all that, a real session.
    send_raw(
        &mut stdin,
        r#"{"jsonrpc":"2.0","id":2,"method":"initialize","params":{"capabilities":{}}}"#,
    );
    let init = next();
    assert_eq!(init["id"], 2);
    assert!(init["result"]["capabilities"].is_object(), "{init}");
    send_raw(
        &mut stdin,
        r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
    );
    send_raw(
        &mut stdin,
        r#"{"jsonrpc":"2.0","id":3,"method":"shutdown"}"#,
    );
    assert_eq!(next()["id"], 3);
    send_raw(&mut stdin, r#"{"jsonrpc":"2.0","method":"exit"}"#);
    assert!(child.wait().unwrap().success());

    // A Content-Length of 4 GB is not allocated up front: the server reads past what arrives,
    // and ends normally when the input closes.
    let (mut child, mut stdin, _rx) = spawn_server(&stdlib);
    write!(stdin, "Content-Length: 4000000000\r\n\r\n{{}}").unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(
        status.code().is_some(),
        "ended by the closed input, not by a signal"
    );
}
