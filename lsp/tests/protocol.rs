#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The language server driven over its protocol, in process (`Connection::memory()`): the
//! handshake, diagnostics as the text changes, hover, definition, completion, symbols,
//! formatting, and shutdown.

use lsp_server::{Connection, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Exit, Initialized,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, Initialize,
    Shutdown,
};
use lsp_types::*;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

const MODULE: &str = r#"module team.skills {
  /// How senior a role or a person is.
  enum Level { junior < mid < senior }

  /// 1 when the levels are the same, else half.
  fn level_bonus(a: Level, b: Level) -> number in [0, 1] = if a == b then 1.0 else 0.5
}
"#;

const POLICY: &str = r#"/// Matches people to roles.
policy p version 1 {
  use std.text.{coverage}
  use team.skills.{Level, level_bonus}

  /// A role.
  entity Job {
    /// Skills the role needs.
    skills: set<string>
    level: Level
    city: string
  }

  /// A person.
  entity Person {
    skills: set<string>
    level: Level
    city: string
  }

  pair query: Job, candidate: Person

  /// How many of the role's skills the person has.
  dimension skill_match weight 60% {
    let have = coverage(query.skills, candidate.skills)
    score = have
    grade {
      strong when score >= 0.8
      weak otherwise
    }
  }

  dimension level_match weight 40% {
    score = min(level_bonus(query.level, candidate.level), 1)
  }

  rule senior_only {
    when query.level == senior and candidate.level == junior
    cap overall at 0.2
    because "juniors cannot fill senior roles"
  }

  grade overall {
    good when overall >= 0.5
    poor otherwise
  }

  example "Zürich 🚀 match" {
    query { skills: ["rust"], level: senior, city: "Zürich 🚀" }
    candidate { skills: ["rust"], level: senior, city: "Zürich 🚀" }
    expect skill_match.grade == strong
  }
}
"#;

/// The example's second record with a misspelt field after non-ASCII text on its line.
fn broken() -> String {
    POLICY.replace(
        r#"    candidate { skills: ["rust"], level: senior, city: "Zürich 🚀" }"#,
        r#"    candidate { skills: ["rust"], level: senior, city: "Zürich 🚀", skils: [] }"#,
    )
}

/// The LSP position of a byte offset (UTF-16 columns), computed here independently of the server.
fn position_at(text: &str, at: usize) -> Position {
    let line = text[..at].matches('\n').count() as u32;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    Position::new(line, text[start..at].encode_utf16().count() as u32)
}

/// The line of the first occurrence of `needle` and the UTF-16 column `offset` units into it.
fn position_of(text: &str, needle: &str, offset: u32) -> Position {
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count() as u32;
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    Position::new(line, text[start..at].encode_utf16().count() as u32 + offset)
}

struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    stdlib: PathBuf,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::write(root.join("rubric.toml"), "").unwrap();
        std::fs::create_dir_all(root.join("team")).unwrap();
        std::fs::write(root.join("team/skills.policy"), MODULE).unwrap();
        std::fs::write(root.join("p.policy"), POLICY).unwrap();
        let stdlib = root.join("cache");
        Project {
            _dir: dir,
            root,
            stdlib,
        }
    }

    fn uri(&self, relative: &str) -> Url {
        Url::from_file_path(self.root.join(relative)).unwrap()
    }
}

struct Client {
    connection: Connection,
    next_id: i32,
    notifications: VecDeque<Notification>,
    server: Option<JoinHandle<Result<(), rubric_lsp::ServerError>>>,
}

impl Client {
    fn start(stdlib: &Path) -> Client {
        let (server, connection) = Connection::memory();
        let config = rubric_lsp::Config {
            stdlib_dir: stdlib.to_path_buf(),
        };
        let handle = std::thread::spawn(move || rubric_lsp::run(&server, config));
        let mut client = Client {
            connection,
            next_id: 0,
            notifications: VecDeque::new(),
            server: Some(handle),
        };
        let init = client
            .request::<Initialize>(InitializeParams::default())
            .unwrap();
        assert_eq!(init.server_info.unwrap().name, "rubric");
        client.notify::<Initialized>(InitializedParams {});
        client
    }

    fn recv(&self) -> Message {
        self.connection
            .receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the server answers within 30 s")
    }

    fn request<R: lsp_types::request::Request>(
        &mut self,
        params: R::Params,
    ) -> Result<R::Result, lsp_server::ResponseError> {
        self.next_id += 1;
        let id = RequestId::from(self.next_id);
        self.connection
            .sender
            .send(Request::new(id.clone(), R::METHOD.to_string(), params).into())
            .unwrap();
        loop {
            match self.recv() {
                Message::Response(Response {
                    id: got,
                    response_result,
                }) if got == id => {
                    return response_result.map(|v| serde_json::from_value(v).unwrap());
                }
                Message::Notification(n) => self.notifications.push_back(n),
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    fn notify<N: lsp_types::notification::Notification>(&self, params: N::Params) {
        self.connection
            .sender
            .send(Notification::new(N::METHOD.to_string(), params).into())
            .unwrap();
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&mut self, uri: &Url) -> PublishDiagnosticsParams {
        loop {
            let n = match self.notifications.pop_front() {
                Some(n) => n,
                None => match self.recv() {
                    Message::Notification(n) => n,
                    other => panic!("unexpected message {other:?}"),
                },
            };
            if n.method == PublishDiagnostics::METHOD {
                let p: PublishDiagnosticsParams = serde_json::from_value(n.params).unwrap();
                if p.uri == *uri {
                    return p;
                }
            }
        }
    }

    fn open(&mut self, uri: &Url, text: &str) -> PublishDiagnosticsParams {
        self.notify::<DidOpenTextDocument>(DidOpenTextDocumentParams {
            text_document: TextDocumentItem::new(
                uri.clone(),
                "rubric".to_string(),
                1,
                text.to_string(),
            ),
        });
        self.diagnostics(uri)
    }

    fn change(&mut self, uri: &Url, version: i32, text: &str) -> PublishDiagnosticsParams {
        self.notify::<DidChangeTextDocument>(DidChangeTextDocumentParams {
            text_document: VersionedTextDocumentIdentifier::new(uri.clone(), version),
            content_changes: vec![TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: text.to_string(),
            }],
        });
        self.diagnostics(uri)
    }

    fn hover(&mut self, uri: &Url, at: Position) -> Option<Hover> {
        self.request::<HoverRequest>(HoverParams {
            text_document_position_params: TextDocumentPositionParams::new(
                TextDocumentIdentifier::new(uri.clone()),
                at,
            ),
            work_done_progress_params: WorkDoneProgressParams::default(),
        })
        .unwrap()
    }

    fn definition(&mut self, uri: &Url, at: Position) -> Option<Location> {
        let answer = self
            .request::<GotoDefinition>(GotoDefinitionParams {
                text_document_position_params: TextDocumentPositionParams::new(
                    TextDocumentIdentifier::new(uri.clone()),
                    at,
                ),
                work_done_progress_params: WorkDoneProgressParams::default(),
                partial_result_params: PartialResultParams::default(),
            })
            .unwrap();
        match answer {
            Some(GotoDefinitionResponse::Scalar(l)) => Some(l),
            None => None,
            other => panic!("one location expected, got {other:?}"),
        }
    }

    fn completion(&mut self, uri: &Url, at: Position) -> Vec<CompletionItem> {
        let answer = self
            .request::<Completion>(CompletionParams {
                text_document_position: TextDocumentPositionParams::new(
                    TextDocumentIdentifier::new(uri.clone()),
                    at,
                ),
                work_done_progress_params: WorkDoneProgressParams::default(),
                partial_result_params: PartialResultParams::default(),
                context: None,
            })
            .unwrap();
        match answer {
            Some(CompletionResponse::Array(items)) => items,
            other => panic!("a list of items expected, got {other:?}"),
        }
    }

    fn format(&mut self, uri: &Url) -> Result<Option<Vec<TextEdit>>, lsp_server::ResponseError> {
        self.request::<Formatting>(DocumentFormattingParams {
            text_document: TextDocumentIdentifier::new(uri.clone()),
            options: FormattingOptions::default(),
            work_done_progress_params: WorkDoneProgressParams::default(),
        })
    }

    fn stop(mut self) {
        self.request::<Shutdown>(()).unwrap();
        self.notify::<Exit>(());
        let server = self.server.take().unwrap();
        server.join().unwrap().unwrap();
    }
}

fn markdown(hover: Hover) -> String {
    match hover.contents {
        HoverContents::Markup(m) => m.value,
        other => panic!("markdown expected, got {other:?}"),
    }
}

#[test]
fn diagnostics_have_utf16_ranges_codes_and_help_and_follow_the_text() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");

    // The buffer's unsaved text is checked, not the file on disk (which is clean).
    let published = client.open(&uri, &broken());
    assert_eq!(published.version, Some(1));
    let [d] = published.diagnostics.as_slice() else {
        panic!("one diagnostic expected: {:#?}", published.diagnostics);
    };
    // `skils` stands after `Zürich 🚀` on line 50 (49 counted from 0): 67 characters, 68 UTF-16
    // units, 71 bytes.
    assert_eq!(
        d.range,
        Range::new(Position::new(49, 68), Position::new(49, 73)),
        "{d:#?}"
    );
    assert_eq!(d.range.start, position_of(&broken(), "skils", 0));
    assert_eq!(d.severity, Some(DiagnosticSeverity::ERROR));
    assert_eq!(
        d.code,
        Some(NumberOrString::String(
            "rubric::check::example_field".to_string()
        ))
    );
    assert_eq!(d.source.as_deref(), Some("rubric"));
    assert!(d.message.contains("skils"), "{}", d.message);
    assert!(
        d.message.contains("\nhelp: ") && d.message.contains("skills"),
        "the help names the field: {}",
        d.message
    );

    // Fixing the text clears the diagnostics.
    let published = client.change(&uri, 2, POLICY);
    assert_eq!(published.version, Some(2));
    assert_eq!(published.diagnostics, Vec::new());

    // A syntax error: its range, on the line below the non-ASCII one.
    let unclosed = POLICY.replace(
        "expect skill_match.grade == strong",
        "expect skill_match.grade ==",
    );
    let published = client.change(&uri, 3, &unclosed);
    assert!(!published.diagnostics.is_empty());
    assert!(
        published.diagnostics.iter().all(|d| d.code
            == Some(NumberOrString::String(
                "rubric::syntax::unexpected".to_string()
            ))),
        "{:#?}",
        published.diagnostics
    );

    // Closing the document clears its diagnostics.
    client.notify::<DidCloseTextDocument>(DidCloseTextDocumentParams {
        text_document: TextDocumentIdentifier::new(uri.clone()),
    });
    assert_eq!(client.diagnostics(&uri).diagnostics, Vec::new());
    client.stop();
}

#[test]
fn an_open_module_buffer_wins_over_its_file() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let module = project.uri("team/skills.policy");
    let published = client.open(&module, &MODULE.replace("level_bonus", "bonus"));
    assert_eq!(published.diagnostics, Vec::new());
    let uri = project.uri("p.policy");
    let published = client.open(&uri, POLICY);
    let codes: Vec<_> = published
        .diagnostics
        .iter()
        .map(|d| d.code.clone())
        .collect();
    assert!(
        codes.contains(&Some(NumberOrString::String(
            "rubric::resolve::unknown_import".to_string()
        ))),
        "{:#?}",
        published.diagnostics
    );
    client.stop();
}

#[test]
fn problems_in_an_imported_module_show_at_its_use() {
    let project = Project::new();
    std::fs::write(
        project.root.join("team/skills.policy"),
        MODULE.replace("-> number in [0, 1] =", "-> numbr in [0, 1] ="),
    )
    .unwrap();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    let published = client.open(&uri, POLICY);
    let d = published
        .diagnostics
        .iter()
        .find(|d| d.message.contains("numbr"))
        .unwrap_or_else(|| panic!("{:#?}", published.diagnostics));
    let use_line = position_of(POLICY, "team.skills", 0);
    assert_eq!(d.range.start, use_line, "{d:#?}");
    let related = d.related_information.as_ref().unwrap();
    assert_eq!(related[0].location.uri, project.uri("team/skills.policy"));
    assert_eq!(related[0].location.range.start.line, 5);
    client.stop();
}

#[test]
fn hover_shows_docs_and_declarations() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    client.open(&uri, POLICY);

    // A standard function.
    let at = position_of(POLICY, "coverage(query", 2);
    let text = markdown(client.hover(&uri, at).unwrap());
    assert!(
        text.starts_with(
            "```rubric\nfn coverage(required: set<string>, have: set<string>) -> number in [0, 1]\n```"
        ),
        "{text}"
    );
    assert!(text.contains("Share of the `required` items"), "{text}");
    assert!(text.ends_with("from `std.text`"), "{text}");

    // A dimension, from an expectation.
    let at = position_of(POLICY, "skill_match.grade", 0);
    let hover = client.hover(&uri, at).unwrap();
    assert_eq!(
        hover.range,
        Some(Range::new(at, Position::new(at.line, at.character + 11)))
    );
    let text = markdown(hover);
    assert!(text.contains("dimension skill_match weight 60%"), "{text}");
    assert!(text.contains("score in [0, 1]"), "{text}");
    assert!(text.contains("How many of the role's skills"), "{text}");

    // An entity field through a role.
    let at = position_of(POLICY, "query.skills", 7);
    let text = markdown(client.hover(&uri, at).unwrap());
    assert!(text.contains("Job.skills: set<string>"), "{text}");
    assert!(text.contains("Skills the role needs."), "{text}");

    // A built-in function.
    let text = markdown(client.hover(&uri, position_of(POLICY, "min(", 0)).unwrap());
    assert!(
        text.contains("fn min(a: number, b: number, ...) -> number"),
        "{text}"
    );

    // An imported enum value and enum.
    let at = position_of(POLICY, "senior and", 0);
    let text = markdown(client.hover(&uri, at).unwrap());
    assert!(text.contains("Level.senior"), "{text}");
    assert!(text.contains("from `team.skills`"), "{text}");
    let module_level = position_of(POLICY, "Level, level_bonus", 0);
    let text = markdown(client.hover(&uri, module_level).unwrap());
    assert!(
        text.contains("enum Level { junior < mid < senior }"),
        "{text}"
    );
    assert!(text.contains("How senior a role or a person is."), "{text}");

    // Nothing under a keyword.
    assert_eq!(
        client.hover(&uri, position_of(POLICY, "pair query", 1)),
        None
    );
    client.stop();
}

#[test]
fn definition_goes_to_local_imported_and_standard_names() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    client.open(&uri, POLICY);

    // A `let`, in the same file.
    let target = client
        .definition(&uri, position_of(POLICY, "score = have", 8))
        .unwrap();
    assert_eq!(target.uri, uri);
    let start = position_of(POLICY, "have =", 0);
    assert_eq!(
        target.range,
        Range::new(start, Position::new(start.line, start.character + 4))
    );

    // A role's field.
    let target = client
        .definition(&uri, position_of(POLICY, "candidate.level ==", 10))
        .unwrap();
    let person = POLICY.find("entity Person").unwrap();
    let level = person + POLICY[person..].find("level: Level").unwrap();
    assert_eq!(target.uri, uri);
    assert_eq!(target.range.start, position_at(POLICY, level));

    // An imported function, in the project's module.
    let target = client
        .definition(&uri, position_of(POLICY, "level_bonus(query", 0))
        .unwrap();
    assert_eq!(target.uri, project.uri("team/skills.policy"));
    assert_eq!(target.range.start, position_of(MODULE, "level_bonus", 0));

    // A standard function: a copy of the embedded module that an editor can open.
    let target = client
        .definition(&uri, position_of(POLICY, "coverage(query", 0))
        .unwrap();
    let path = target.uri.to_file_path().unwrap();
    assert!(path.starts_with(&project.stdlib), "{path:?}");
    assert!(path.ends_with("std/text.policy"), "{path:?}");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        rubric_compiler::stdlib::module("std.text").unwrap().1,
        "the copy is the embedded text"
    );
    assert_eq!(
        target.range.start,
        position_of(&text, "coverage(required", 0)
    );

    // Built-ins have no source to go to.
    assert_eq!(
        client.definition(&uri, position_of(POLICY, "min(", 0)),
        None
    );
    client.stop();
}

fn labels(items: &[CompletionItem]) -> Vec<&str> {
    items.iter().map(|i| i.label.as_str()).collect()
}

#[test]
fn completion_offers_fields_enum_values_and_standard_functions() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    client.open(&uri, POLICY);

    // Half typed: `query.` does not parse; the fields come from the last text that did.
    let typing = POLICY.replace("    score = have\n", "    score = have * query.\n");
    client.change(&uri, 2, &typing);
    let at = position_of(&typing, "query.\n", 6);
    let items = client.completion(&uri, at);
    assert_eq!(labels(&items), ["skills", "level", "city"]);
    let skills = &items[0];
    assert_eq!(skills.kind, Some(CompletionItemKind::FIELD));
    assert_eq!(skills.detail.as_deref(), Some("Job.skills: set<string>"));

    // An enum's values after its name.
    let typing = POLICY.replace("when query.level == senior", "when query.level == Level.");
    client.change(&uri, 3, &typing);
    let at = position_of(&typing, "Level. and", 6);
    assert_eq!(
        labels(&client.completion(&uri, at)),
        ["junior", "mid", "senior"]
    );

    // The fields of a role in an example's record, less those already written.
    let typing = POLICY.replace(
        r#"query { skills: ["rust"], level: senior, city: "Zürich 🚀" }"#,
        r#"query { skills: ["rust"], ci"#,
    );
    client.change(&uri, 4, &typing);
    let at = position_of(&typing, r#"["rust"], ci"#, 12);
    assert_eq!(labels(&client.completion(&uri, at)), ["level", "city"]);

    // An expectation's dimension, rule and grade.
    let typing = POLICY.replace("    expect skill_match.grade == strong\n", "    expect \n");
    client.change(&uri, 5, &typing);
    let at = position_of(&typing, "expect \n", 7);
    assert_eq!(
        labels(&client.completion(&uri, at)),
        ["skill_match", "level_match", "overall", "rule"]
    );
    let typing = POLICY.replace(
        "    expect skill_match.grade == strong\n",
        "    expect rule \n",
    );
    client.change(&uri, 6, &typing);
    let at = position_of(&typing, "expect rule \n", 12);
    assert_eq!(labels(&client.completion(&uri, at)), ["senior_only"]);
    let typing = POLICY.replace("skill_match.grade == strong\n", "skill_match.grade == st\n");
    client.change(&uri, 7, &typing);
    let at = position_of(&typing, "== st\n", 5);
    assert_eq!(labels(&client.completion(&uri, at)), ["strong", "weak"]);

    // The names a standard module exports, in its `use`.
    let typing = POLICY.replace("use std.text.{coverage}", "use std.text.{coverage, ja");
    client.change(&uri, 8, &typing);
    let at = position_of(&typing, "coverage, ja", 12);
    let items = client.completion(&uri, at);
    let exported = labels(&items);
    assert!(exported.contains(&"jaccard"), "{exported:?}");
    assert!(!exported.contains(&"coverage"), "{exported:?}");
    assert!(!exported.contains(&"ramp"), "{exported:?}");

    // Elsewhere: what is visible, standard functions with their import, keywords.
    client.change(&uri, 9, POLICY);
    let at = position_of(POLICY, "score = have", 8);
    let items = client.completion(&uri, at);
    let all = labels(&items);
    for wanted in [
        "have",
        "query",
        "candidate",
        "skill_match",
        "coverage",
        "level_bonus",
        "senior",
        "len",
        "jaccard",
        "Seniority",
        "when",
    ] {
        assert!(all.contains(&wanted), "{wanted} missing from {all:?}");
    }
    let jaccard = items.iter().find(|i| i.label == "jaccard").unwrap();
    assert!(jaccard.detail.as_deref().unwrap().contains("(std.text)"));
    let edits = jaccard.additional_text_edits.as_ref().unwrap();
    let after = position_of(POLICY, "coverage}", 8);
    assert_eq!(
        edits,
        &[TextEdit::new(
            Range::new(after, after),
            ", jaccard".to_string()
        )]
    );
    // A module not imported at all: its own `use` after the policy's first line.
    let ramp = items.iter().find(|i| i.label == "ramp").unwrap();
    assert_eq!(
        ramp.additional_text_edits.as_deref(),
        Some(
            &[TextEdit::new(
                Range::new(Position::new(2, 0), Position::new(2, 0)),
                "  use std.num.{ramp}\n".to_string()
            )][..]
        )
    );
    client.stop();
}

#[test]
fn document_symbols_outline_the_policy() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    client.open(&uri, POLICY);
    let answer = client
        .request::<DocumentSymbolRequest>(DocumentSymbolParams {
            text_document: TextDocumentIdentifier::new(uri.clone()),
            work_done_progress_params: WorkDoneProgressParams::default(),
            partial_result_params: PartialResultParams::default(),
        })
        .unwrap();
    let Some(DocumentSymbolResponse::Nested(symbols)) = answer else {
        panic!("nested symbols expected: {answer:?}");
    };
    let [policy] = symbols.as_slice() else {
        panic!("{symbols:#?}");
    };
    assert_eq!(policy.name, "p");
    assert_eq!(policy.kind, SymbolKind::NAMESPACE);
    let children: Vec<(&str, SymbolKind)> = policy
        .children
        .as_ref()
        .unwrap()
        .iter()
        .map(|s| (s.name.as_str(), s.kind))
        .collect();
    assert_eq!(
        children,
        [
            ("Job", SymbolKind::STRUCT),
            ("Person", SymbolKind::STRUCT),
            ("skill_match", SymbolKind::PROPERTY),
            ("level_match", SymbolKind::PROPERTY),
            ("senior_only", SymbolKind::EVENT),
            ("grade overall", SymbolKind::ENUM),
            ("Zürich 🚀 match", SymbolKind::OBJECT),
        ]
    );
    let job = &policy.children.as_ref().unwrap()[0];
    let fields: Vec<&str> = job
        .children
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    assert_eq!(fields, ["skills", "level", "city"]);
    assert_eq!(job.selection_range.start, position_of(POLICY, "Job {", 0));
    client.stop();
}

#[test]
fn formatting_gives_the_canonical_layout_and_refuses_syntax_errors() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    let messy = POLICY.replace(
        "  dimension level_match weight 40% {",
        "dimension   level_match weight 40%{",
    );
    client.open(&uri, &messy);
    let edits = client.format(&uri).unwrap().unwrap();
    let [edit] = edits.as_slice() else {
        panic!("{edits:#?}");
    };
    assert_eq!(edit.range.start, Position::new(0, 0));
    assert_eq!(
        Some(edit.new_text.clone()),
        rubric_compiler::format::format_source(&messy)
    );
    assert!(
        edit.new_text
            .contains("\n  dimension level_match weight 40% {\n")
    );

    // Already canonical: nothing to change.
    client.change(&uri, 2, &edit.new_text.clone());
    assert_eq!(client.format(&uri).unwrap(), Some(Vec::new()));

    // A syntax error: refused, with where.
    client.change(
        &uri,
        3,
        &POLICY.replace("cap overall at 0.2", "cap overall 0.2"),
    );
    let error = client.format(&uri).unwrap_err();
    assert_eq!(error.code, lsp_server::ErrorCode::RequestFailed as i32);
    assert!(error.message.contains("syntax errors"), "{}", error.message);
    assert!(
        error.message.contains("line 39: unexpected `0.2`"),
        "{}",
        error.message
    );
    client.stop();
}

#[test]
fn unknown_requests_are_answered_with_an_error() {
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let error = client
        .request::<lsp_types::request::References>(ReferenceParams {
            text_document_position: TextDocumentPositionParams::new(
                TextDocumentIdentifier::new(project.uri("p.policy")),
                Position::new(0, 0),
            ),
            work_done_progress_params: WorkDoneProgressParams::default(),
            partial_result_params: PartialResultParams::default(),
            context: ReferenceContext {
                include_declaration: true,
            },
        })
        .unwrap_err();
    assert_eq!(error.code, lsp_server::ErrorCode::MethodNotFound as i32);
    client.stop();
}

#[test]
fn every_field_and_import_of_the_flagship_policy_resolves() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/job_match.policy");
    let path = std::fs::canonicalize(path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let stdlib = tempfile::tempdir().unwrap();
    let mut client = Client::start(stdlib.path());
    let uri = Url::from_file_path(&path).unwrap();
    let started = std::time::Instant::now();
    let published = client.open(&uri, &text);
    eprintln!(
        "job_match.policy checked and indexed in {:?}",
        started.elapsed()
    );
    assert!(
        published
            .diagnostics
            .iter()
            .all(|d| d.severity != Some(DiagnosticSeverity::ERROR)),
        "{:#?}",
        published.diagnostics
    );

    // Every `query.x` and `candidate.x` outside comments: a field of the pair's entities, defined
    // in this file.
    let mut fields = 0;
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap();
        for role in ["query.", "candidate."] {
            for (at, _) in code.match_indices(role) {
                let column = code[..at + role.len()].encode_utf16().count() as u32;
                let at = Position::new(n as u32, column);
                let hover = client
                    .hover(&uri, at)
                    .unwrap_or_else(|| panic!("no hover at {}:{}: {line}", n + 1, column));
                let text = markdown(hover);
                assert!(
                    text.starts_with("```rubric\nJob.")
                        || text.starts_with("```rubric\nCandidate."),
                    "{}:{}: {text}",
                    n + 1,
                    column
                );
                let target = client.definition(&uri, at).unwrap();
                assert_eq!(target.uri, uri);
                fields += 1;
            }
        }
    }
    assert!(fields > 40, "{fields}");

    // Every imported name goes to its standard module's copy.
    for (n, line) in text.lines().enumerate() {
        let Some(names) = line.trim().strip_prefix("use std.") else {
            continue;
        };
        let open = line.find('{').unwrap();
        let names = &names[names.find('{').unwrap() + 1..names.find('}').unwrap()];
        for name in names.split(',').map(str::trim) {
            let column = open + 1 + line[open + 1..].find(name).unwrap();
            let target = client
                .definition(&uri, Position::new(n as u32, column as u32))
                .unwrap_or_else(|| panic!("`{name}` has no definition"));
            let copy = std::fs::read_to_string(target.uri.to_file_path().unwrap()).unwrap();
            let line = copy.lines().nth(target.range.start.line as usize).unwrap();
            assert!(line.contains(name), "`{name}` lands on `{line}`");
        }
    }
    client.stop();
}

#[test]
fn completion_offers_every_pipeline_setting_from_the_vocabulary() {
    use rubric_compiler::vocabulary::{self, Block};
    let project = Project::new();
    let mut client = Client::start(&project.stdlib);
    let uri = project.uri("p.policy");
    let with_pipeline = format!(
        "{POLICY}\npipeline p_v1 for p {{\n  data {{\n    golden \"data/golden.jsonl\"\n    \
         synthetic from golden {{ count 10, }}\n    mix real 50% synthetic 50%\n  }}\n  \
         teacher policy {{\n    model encoder {{ layers 2, }}\n    predicts dimensions\n    \
         loss mse\n    train {{ epochs 2, }}\n    regularize dropout 0.1 \n  }}\n  student {{\n    \
         model encoder {{ layers 1, hidden 16, heads 2 }}\n    distill policy weight 1 loss mse\n  \
         }}\n  monitor {{\n    alert \n  }}\n}}\n"
    );
    client.open(&uri, &with_pipeline);
    let cases = [
        (Block::Encoder, "layers 2, ", "layers"),
        (Block::Train, "epochs 2, ", "epochs"),
        (Block::Synthetic, "count 10, ", "count"),
        (Block::Regularize, "dropout 0.1 ", "dropout"),
    ];
    for (block, needle, written) in cases {
        let at = position_of(&with_pipeline, needle, needle.len() as u32);
        let items = client.completion(&uri, at);
        let offered = labels(&items);
        let want: Vec<&str> = vocabulary::settings(block)
            .map(|s| s.name)
            .filter(|n| *n != written)
            .collect();
        assert_eq!(offered, want, "{}", block.syntax());
        assert!(
            items
                .iter()
                .all(|i| i.detail.as_deref().is_some_and(|d| d.contains("default")))
        );
    }
    let at = position_of(&with_pipeline, "alert \n", 6);
    let metrics = client.completion(&uri, at);
    let offered = labels(&metrics);
    assert!(
        offered.contains(&"policy_drift") && offered.contains(&"ndcg@10"),
        "{offered:?}"
    );
    assert_eq!(offered.len(), vocabulary::METRICS.len());
    client.stop();
}
