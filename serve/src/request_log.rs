//! The request log: one JSON line per scored pair of every answered ranking or score, appended to
//! a file by a writer thread of its own, so that no request waits on the disk. Its format is the
//! one monitoring reads (`docs/serving.md`); clicks are joined to it later by `request`,
//! `query_id` and `candidate_id`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use serde::Serialize;
use serde_json::Value;

use crate::metrics::Metrics;
use crate::model::{ModelInfo, Prediction};

/// What one answered request leaves in the log: a line for each of `pairs`.
pub(crate) struct LogEntry {
    pub ts: jiff::Timestamp,
    pub request: String,
    pub endpoint: &'static str,
    pub query_id: Value,
    pub time: Option<String>,
    pub latency_ms: f64,
    pub pairs: Vec<LoggedPair>,
}

/// One scored pair of a logged request.
pub(crate) struct LoggedPair {
    pub candidate_id: Value,
    /// Position in the request's `candidates` (0 for a score request).
    pub index: usize,
    /// 1-based position in the ranking, for a ranking; `served` when it was within `top`.
    pub rank: Option<usize>,
    pub served: bool,
    pub prediction: Prediction,
}

/// One line of the log, as written.
#[derive(Serialize)]
struct Line<'a> {
    ts: &'a str,
    request: &'a str,
    endpoint: &'a str,
    query_id: &'a Value,
    candidate_id: &'a Value,
    index: usize,
    rank: Option<usize>,
    served: bool,
    score: f32,
    scores: &'a BTreeMap<String, f32>,
    grade: &'a Option<String>,
    click: Option<f32>,
    time: &'a Option<String>,
    latency_ms: f64,
    policy_hash: &'a str,
    version: &'a str,
}

enum Message {
    Entry(LogEntry),
    Close,
}

/// The handlers' side of the log: sending never blocks.
#[derive(Clone)]
pub(crate) struct RequestLog {
    sender: Sender<Message>,
}

impl RequestLog {
    pub fn record(&self, entry: LogEntry) {
        // The writer ends only at shutdown, after the last request.
        let _ = self.sender.send(Message::Entry(entry));
    }
}

/// The writer thread, until it is closed.
pub(crate) struct LogWriter {
    sender: Sender<Message>,
    handle: JoinHandle<Result<(), String>>,
}

impl LogWriter {
    /// Writes what is queued, flushes and ends the thread: the first write error, if any.
    pub fn close(self) -> Result<(), String> {
        let _ = self.sender.send(Message::Close);
        self.handle
            .join()
            .map_err(|_| "the request-log writer panicked".to_owned())?
    }
}

/// Opens `path` for appending (creating it) and starts the writer thread.
pub(crate) fn start(
    path: &Path,
    model: &ModelInfo,
    metrics: Arc<Metrics>,
) -> Result<(RequestLog, LogWriter), String> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|error| format!("cannot open the request log `{}`: {error}", path.display()))?;
    let (sender, receiver) = channel();
    let writer = Writer {
        path: path.to_owned(),
        out: BufWriter::with_capacity(64 * 1024, file),
        policy_hash: model.policy_hash.clone(),
        version: model.version.clone(),
        metrics,
        first_error: None,
    };
    let handle = std::thread::Builder::new()
        .name("rubric-request-log".into())
        .spawn(move || writer.run(receiver))
        .map_err(|error| format!("cannot start the request-log writer: {error}"))?;
    Ok((
        RequestLog {
            sender: sender.clone(),
        },
        LogWriter { sender, handle },
    ))
}

struct Writer {
    path: PathBuf,
    out: BufWriter<File>,
    policy_hash: String,
    version: String,
    metrics: Arc<Metrics>,
    first_error: Option<String>,
}

impl Writer {
    /// Writes entries as they come and flushes whenever the channel runs dry, so the file is
    /// never more than one burst behind; a write error is counted and the first one kept.
    fn run(mut self, receiver: Receiver<Message>) -> Result<(), String> {
        let mut open = true;
        while open {
            let Ok(mut message) = receiver.recv() else {
                break;
            };
            loop {
                match message {
                    Message::Entry(entry) => self.write(&entry),
                    Message::Close => {
                        open = false;
                        break;
                    }
                }
                match receiver.try_recv() {
                    Ok(next) => message = next,
                    Err(_) => break,
                }
            }
            if let Err(error) = self.out.flush() {
                self.failed(&error);
            }
        }
        match self.first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    fn write(&mut self, entry: &LogEntry) {
        let ts = entry.ts.to_string();
        for pair in &entry.pairs {
            let line = Line {
                ts: &ts,
                request: &entry.request,
                endpoint: entry.endpoint,
                query_id: &entry.query_id,
                candidate_id: &pair.candidate_id,
                index: pair.index,
                rank: pair.rank,
                served: pair.served,
                score: pair.prediction.score,
                scores: &pair.prediction.scores,
                grade: &pair.prediction.grade,
                click: pair.prediction.click,
                time: &entry.time,
                latency_ms: entry.latency_ms,
                policy_hash: &self.policy_hash,
                version: &self.version,
            };
            let written = serde_json::to_writer(&mut self.out, &line)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"));
            if let Err(error) = written {
                self.failed(&error);
            }
        }
    }

    fn failed(&mut self, error: &std::io::Error) {
        self.metrics.log_errors.inc();
        if self.first_error.is_none() {
            self.first_error = Some(format!(
                "cannot write the request log `{}`: {error}",
                self.path.display()
            ));
        }
    }
}
