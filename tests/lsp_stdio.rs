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
