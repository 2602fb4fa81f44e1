//! Standard input and output as an LSP connection that survives bad input: messages framed by
//! `Content-Length` are read here instead of by `lsp-server`'s reader, which ended the server on
//! a malformed body and allocated whatever a `Content-Length` asked for. A message over the size
//! limit is read past in bounded chunks and answered with a JSON-RPC error; a body that is not
//! JSON (or JSON that is no message: `[]`, `{}`) is answered with a parse or invalid-request
//! error; the server goes on serving either way.

use lsp_server::{Connection, Message};
use serde_json::{Value, json};
use std::io::{self, BufRead, Read, Write};
use std::thread::JoinHandle;

/// The largest message read (a 1 MiB policy is well under it, JSON-escaped).
pub const MAX_MESSAGE_BYTES: u64 = 64 << 20;
/// The longest header line read.
const MAX_HEADER_BYTES: u64 = 8 << 10;

/// The reader and writer threads of a stdio connection.
pub struct Transport {
    reader: JoinHandle<io::Result<()>>,
    writer: JoinHandle<io::Result<()>>,
}

impl Transport {
    /// Waits for both threads (the writer ends when the connection is dropped).
    pub fn join(self) -> io::Result<()> {
        let reader = self.reader.join();
        let writer = self.writer.join();
        for result in [reader, writer] {
            match result {
                Ok(r) => r?,
                Err(_) => return Err(io::Error::other("an LSP transport thread panicked")),
            }
        }
        Ok(())
    }
}

/// The connection over standard input and output.
pub fn stdio() -> (Connection, Transport) {
    let (to_server, from_client) = crossbeam_channel::bounded::<Message>(0);
    let (to_client, from_server) = crossbeam_channel::bounded::<Message>(0);
    let writer = std::thread::spawn(move || {
        for message in from_server {
            let stdout = io::stdout();
            let mut out = stdout.lock();
            message.write(&mut out)?;
            out.flush()?;
        }
        Ok(())
    });
    let reader = std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        read_messages(
            &mut input,
            &mut |m| to_server.send(m).is_ok(),
            &mut |error| {
                let stdout = io::stdout();
                let mut out = stdout.lock();
                write_frame(&mut out, &error)
            },
        )
    });
    (
        Connection {
            sender: to_client,
            receiver: from_client,
        },
        Transport { reader, writer },
    )
}

/// Writes one framed JSON value.
fn write_frame(out: &mut dyn Write, value: &Value) -> io::Result<()> {
    let body = value.to_string();
    write!(out, "Content-Length: {}\r\n\r\n{body}", body.len())?;
    out.flush()
}

/// A JSON-RPC error response (the id is null when the request's could not be read).
fn error(id: Value, code: i32, message: String) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// One header line, at most `MAX_HEADER_BYTES` of it; None at the end of the input.
fn header_line(input: &mut dyn BufRead) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let n = input.take(MAX_HEADER_BYTES).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    Ok(Some(String::from_utf8_lossy(&line).trim_end().to_string()))
}

/// Reads messages until the input ends or the client says `exit`: each good one goes to
/// `deliver` (false when the server is gone), each bad one is answered through `reply`.
pub fn read_messages(
    input: &mut dyn BufRead,
    deliver: &mut dyn FnMut(Message) -> bool,
    reply: &mut dyn FnMut(Value) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        let mut length: Option<u64> = None;
        let mut bad_length = None;
        loop {
            let Some(line) = header_line(input)? else {
                return Ok(());
            };
            if line.is_empty() {
                break;
            }
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("content-length") {
                match value.trim().parse::<u64>() {
                    Ok(n) => length = Some(n),
                    Err(_) => bad_length = Some(value.trim().to_string()),
                }
            }
        }
        let Some(length) = length else {
            let what = bad_length.map_or("no Content-Length header".to_string(), |v| {
                format!("the Content-Length `{v}` is not a number")
            });
            reply(error(
                Value::Null,
                -32600,
                format!("{what}; the message was skipped"),
            ))?;
            continue;
        };
        if length > MAX_MESSAGE_BYTES {
            // Read past it without holding it.
            let skipped = io::copy(&mut input.take(length), &mut io::sink())?;
            reply(error(
                Value::Null,
                -32600,
                format!(
                    "a message of {length} bytes is over the limit of {MAX_MESSAGE_BYTES} bytes; \
                     it was skipped"
                ),
            ))?;
            if skipped < length {
                return Ok(());
            }
            continue;
        }
        let mut body = Vec::new();
        let read = input.take(length).read_to_end(&mut body)?;
        if (read as u64) < length {
            return Ok(());
        }
        let value: Value = match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(e) => {
                reply(error(
                    Value::Null,
                    -32700,
                    format!("the message is not JSON: {e}"),
                ))?;
                continue;
            }
        };
        let id = value.get("id").cloned().unwrap_or(Value::Null);
        match serde_json::from_value::<Message>(value) {
            Ok(message) => {
                let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
                if !deliver(message) || exit {
                    return Ok(());
                }
            }
            Err(e) => {
                reply(error(
                    id,
                    -32600,
                    format!("the message is not a request, response or notification: {e}"),
                ))?;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn frame(body: &str) -> String {
        format!("Content-Length: {}\r\n\r\n{body}", body.len())
    }

    #[test]
    fn bad_messages_are_answered_and_the_good_ones_delivered() {
        let good = r#"{"jsonrpc":"2.0","id":7,"method":"shutdown"}"#;
        let input = [
            frame("{not json"),
            frame("[]"),
            frame("{}"),
            "Content-Length: 99999999999\r\n\r\nshort".to_string(),
        ]
        .concat();
        // The oversize one swallows the rest of the input (it claims 99,999,999,999 bytes).
        let mut delivered = Vec::new();
        let mut replies = Vec::new();
        read_messages(
            &mut io::Cursor::new(input),
            &mut |m| {
                delivered.push(m);
                true
            },
            &mut |v| {
                replies.push(v);
                Ok(())
            },
        )
        .unwrap();
        let codes: Vec<i64> = replies
            .iter()
            .map(|r| r["error"]["code"].as_i64().unwrap())
            .collect();
        assert_eq!(codes, vec![-32700, -32600, -32600, -32600]);
        assert!(delivered.is_empty());

        let mut delivered = Vec::new();
        let input = [
            frame("{not json"),
            "Content-Length: x\r\n\r\n".to_string(),
            frame(good),
        ]
        .concat();
        read_messages(
            &mut io::Cursor::new(input),
            &mut |m| {
                delivered.push(m);
                true
            },
            &mut |_| Ok(()),
        )
        .unwrap();
        assert_eq!(delivered.len(), 1, "served on after bad messages");
    }
}
