//! The protocol loop: the `initialize` handshake with the server's capabilities, then one
//! message at a time (no async runtime), until `shutdown` and `exit`.

use crate::features;
use crate::workspace::{StdlibFiles, Workspace};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, Formatting, GotoDefinition, HoverRequest, Request as _,
};
use lsp_types::{
    CompletionOptions, CompletionResponse, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DocumentSymbolResponse, GotoDefinitionResponse,
    HoverProviderCapability, InitializeParams, OneOf, PublishDiagnosticsParams, ServerCapabilities,
    TextDocumentSyncCapability, TextDocumentSyncKind, Url,
};
use std::fmt;
use std::path::PathBuf;

/// How the server is set up.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the embedded standard library is written for go to definition; the client's
    /// `initializationOptions.stdlibDir` overrides it.
    pub stdlib_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            stdlib_dir: StdlibFiles::default_dir(),
        }
    }
}

/// Why the server stopped other than by `shutdown` and `exit`.
#[derive(Debug)]
pub enum ServerError {
    /// The client broke the protocol or went away.
    Protocol(lsp_server::ProtocolError),
    /// The connection's channel closed while the server was answering.
    Disconnected,
    /// Standard input or output failed.
    Io(std::io::Error),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Protocol(e) => write!(f, "language server protocol error: {e}"),
            ServerError::Disconnected => write!(f, "the client closed the connection"),
            ServerError::Io(e) => write!(f, "standard input or output failed: {e}"),
        }
    }
}

impl std::error::Error for ServerError {}

impl From<lsp_server::ProtocolError> for ServerError {
    fn from(e: lsp_server::ProtocolError) -> Self {
        ServerError::Protocol(e)
    }
}

/// What the server can do, as told to the client in `initialize`.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::FULL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".to_string()]),
            ..CompletionOptions::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

/// Runs the server over standard input and output until the client says `exit`.
pub fn run_stdio(config: Config) -> Result<(), ServerError> {
    let (connection, transport) = crate::transport::stdio();
    let result = run(&connection, config);
    drop(connection);
    transport.join().map_err(ServerError::Io)?;
    result
}

/// Runs the server on a connection (standard input and output, or an in-memory pair in tests).
pub fn run(connection: &Connection, config: Config) -> Result<(), ServerError> {
    let (id, params) = connection.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params).unwrap_or_default();
    let stdlib_dir = params
        .initialization_options
        .as_ref()
        .and_then(|o| o.get("stdlibDir"))
        .and_then(|d| d.as_str())
        .map(PathBuf::from)
        .unwrap_or(config.stdlib_dir);
    connection.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": capabilities(),
            "serverInfo": { "name": "rubric", "version": env!("CARGO_PKG_VERSION") },
        }),
    )?;
    let mut server = Server {
        connection,
        workspace: Workspace::new(StdlibFiles::new(stdlib_dir)),
    };
    for message in &connection.receiver {
        match message {
            Message::Request(request) => {
                if connection.handle_shutdown(&request)? {
                    return Ok(());
                }
                server.request(request)?;
            }
            Message::Notification(notification) => server.notification(notification)?,
            Message::Response(_) => {}
        }
    }
    Ok(())
}

struct Server<'a> {
    connection: &'a Connection,
    workspace: Workspace,
}

impl Server<'_> {
    fn send(&self, message: impl Into<Message>) -> Result<(), ServerError> {
        self.connection
            .sender
            .send(message.into())
            .map_err(|_| ServerError::Disconnected)
    }

    fn reply<T: serde::Serialize>(&self, id: RequestId, result: T) -> Result<(), ServerError> {
        self.send(Response::new_ok(id, result))
    }

    fn request(&mut self, request: Request) -> Result<(), ServerError> {
        let id = request.id.clone();
        macro_rules! params {
            ($kind:ty) => {
                match serde_json::from_value::<<$kind as lsp_types::request::Request>::Params>(
                    request.params,
                ) {
                    Ok(p) => p,
                    Err(e) => {
                        return self.send(Response::new_err(
                            id,
                            ErrorCode::InvalidParams as i32,
                            format!("invalid parameters for `{}`: {e}", request.method),
                        ));
                    }
                }
            };
        }
        match request.method.as_str() {
            HoverRequest::METHOD => {
                let p = params!(HoverRequest);
                let at = p.text_document_position_params;
                let hover = self
                    .workspace
                    .documents
                    .get(&at.text_document.uri)
                    .and_then(|d| features::hover(d, at.position));
                self.reply(id, hover)
            }
            GotoDefinition::METHOD => {
                let p = params!(GotoDefinition);
                let at = p.text_document_position_params;
                let uri = at.text_document.uri;
                let location = self
                    .workspace
                    .documents
                    .get(&uri)
                    .and_then(|d| features::definition(&self.workspace, &uri, d, at.position));
                self.reply(id, location.map(GotoDefinitionResponse::Scalar))
            }
            Completion::METHOD => {
                let p = params!(Completion);
                let at = p.text_document_position;
                let items = self
                    .workspace
                    .documents
                    .get(&at.text_document.uri)
                    .map(|d| features::completion(d, at.position));
                self.reply(id, items.map(CompletionResponse::Array))
            }
            DocumentSymbolRequest::METHOD => {
                let p = params!(DocumentSymbolRequest);
                let symbols = self.workspace.documents.get(&p.text_document.uri).map(|d| {
                    DocumentSymbolResponse::Nested(features::document_symbols(&d.analysis))
                });
                self.reply(id, symbols)
            }
            Formatting::METHOD => {
                let p = params!(Formatting);
                let Some(document) = self.workspace.documents.get(&p.text_document.uri) else {
                    return self.reply(id, Option::<Vec<lsp_types::TextEdit>>::None);
                };
                match features::formatting(document) {
                    Ok(edits) => self.reply(id, Some(edits)),
                    Err(refused) => self.send(Response::new_err(
                        id,
                        ErrorCode::RequestFailed as i32,
                        refused.0,
                    )),
                }
            }
            _ => self.send(Response::new_err(
                id,
                ErrorCode::MethodNotFound as i32,
                format!("`{}` is not supported", request.method),
            )),
        }
    }

    fn notification(&mut self, notification: Notification) -> Result<(), ServerError> {
        match notification.method.as_str() {
            DidOpenTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<DidOpenTextDocumentParams>(notification.params)
                {
                    let doc = p.text_document;
                    self.workspace
                        .set_text(doc.uri.clone(), doc.text, doc.version);
                    self.publish(&doc.uri)?;
                }
            }
            DidChangeTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<DidChangeTextDocumentParams>(notification.params)
                    && let Some(change) = p.content_changes.into_iter().last()
                {
                    // Full synchronisation: the last change holds the whole text.
                    let uri = p.text_document.uri;
                    self.workspace
                        .set_text(uri.clone(), change.text, p.text_document.version);
                    self.publish(&uri)?;
                }
            }
            DidCloseTextDocument::METHOD => {
                if let Ok(p) =
                    serde_json::from_value::<DidCloseTextDocumentParams>(notification.params)
                {
                    let uri = p.text_document.uri;
                    self.workspace.documents.remove(&uri);
                    self.send(Notification::new(
                        PublishDiagnostics::METHOD.to_string(),
                        PublishDiagnosticsParams::new(uri, Vec::new(), None),
                    ))?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn publish(&self, uri: &Url) -> Result<(), ServerError> {
        let Some(document) = self.workspace.documents.get(uri) else {
            return Ok(());
        };
        let diagnostics = features::diagnostics(&self.workspace, uri, &document.analysis);
        self.send(Notification::new(
            PublishDiagnostics::METHOD.to_string(),
            PublishDiagnosticsParams::new(uri.clone(), diagnostics, Some(document.version)),
        ))
    }
}
