//! Labeling: streams JSON-lines pairs through a compiled labeling program with rayon, in batches
//! (memory does not grow with the input), writing one label line per pair in input order. A bad
//! row stops the run with its line and field, or, with a quarantine, is set aside and counted:
//! rows in = labeled + quarantined, always.

pub mod batch;
mod compiled;
pub mod decode;
pub mod engine;
mod fast_decode;
pub mod value;

use batch::PairBatch;
use decode::{Decoder, RowError};
use engine::{Ctx, Engine, Events, Label, LabelView, Labels, OverallGrade};
use rayon::prelude::*;
use serde_json::{Map, Value, json};
use std::io::{self, BufRead, Write};
use value::Interner;

/// How to run.
#[derive(Clone, Copy, Debug)]
pub struct LabelOptions {
    /// Rows read and labeled together (each batch is split across threads).
    pub batch_rows: usize,
    /// A batch also ends once it holds this many bytes, so long rows do not make it huge.
    pub batch_bytes: usize,
    /// A row longer than this is not read into memory: it is a bad row (quarantined with its
    /// first [`ROW_PREVIEW`] bytes and its length).
    pub max_row_bytes: usize,
}

/// A quarantined row's exact bytes, for a row that is not UTF-8 (its `row` is a readable preview
/// with the bad bytes replaced): standard base64, so the row can be recovered byte for byte.
pub fn exact_bytes(row: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(row)
}

/// The UTF-8 byte-order mark some editors put at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The bytes of an oversize row kept for its quarantine entry.
pub const ROW_PREVIEW: usize = 4096;

impl Default for LabelOptions {
    fn default() -> Self {
        LabelOptions {
            batch_rows: 8192,
            batch_bytes: 64 << 20,
            max_row_bytes: 16 << 20,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSummary {
    pub rows: u64,
    pub labeled: u64,
    pub quarantined: u64,
    /// Blank lines, skipped (not rows).
    pub blank: u64,
    pub events: Events,
}

/// Why a run stopped.
#[derive(Debug)]
pub enum LabelError {
    Io(io::Error),
    /// A bad row, with no quarantine to put it in.
    Row(RowError),
}

impl std::fmt::Display for LabelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LabelError::Io(e) => write!(f, "{e}"),
            LabelError::Row(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LabelError {}

impl From<io::Error> for LabelError {
    fn from(e: io::Error) -> Self {
        LabelError::Io(e)
    }
}

/// The key of a label's overall grade in its JSON object.
pub const OVERALL_GRADE_KEY: &str = "overall_grade";

/// The label of a pair as one JSON object (LANGUAGE.md, "labels").
pub fn label_json(engine: &Engine, label: &Label) -> Value {
    let p = &engine.program;
    let mut dimensions = Map::new();
    let mut grades = Map::new();
    for (i, d) in p.dimensions.iter().enumerate() {
        let score = label.dimensions.get(i).copied().flatten();
        dimensions.insert(d.name.clone(), score.map_or(Value::Null, |s| json!(s)));
        if !d.grades.is_empty() {
            let grade = label
                .grades
                .get(i)
                .copied()
                .flatten()
                .and_then(|g| d.grades.get(g as usize))
                .map_or(Value::Null, |b| Value::String(b.name.clone()));
            grades.insert(d.name.clone(), grade);
        }
    }
    let overall_grade = label
        .overall_grade
        .and_then(|g| g.name(p))
        .map(str::to_string);
    let rules: Vec<Value> = label
        .rules
        .iter()
        .filter_map(|r| p.rules.get(*r as usize))
        .map(|r| Value::String(r.name.clone()))
        .collect();
    let mut out = Map::new();
    out.insert("id".to_string(), Value::String(label.id.clone()));
    out.insert("policy".to_string(), Value::String(p.policy.hash.clone()));
    out.insert("dimensions".to_string(), Value::Object(dimensions));
    out.insert("grades".to_string(), Value::Object(grades));
    out.insert(
        "overall".to_string(),
        label.overall.map_or(Value::Null, |o| json!(o)),
    );
    out.insert(
        OVERALL_GRADE_KEY.to_string(),
        overall_grade.map_or(Value::Null, Value::String),
    );
    out.insert("rules".to_string(), Value::Array(rules));
    Value::Object(out)
}

/// Writes a label as one line of JSON, byte for byte what `label_json(..).to_string()` gives
/// (keys sorted), without building a `Value`: the hot path of `rubric label`.
pub struct LabelWriter {
    /// Dimension indices in the order of their names.
    sorted: Vec<usize>,
    /// `"name":` of each dimension, escaped once.
    keys: Vec<String>,
    /// Each dimension's bands' names and the overall bands' names, escaped.
    grades: Vec<Vec<String>>,
    overall: Vec<String>,
    /// Per rule: its name, escaped, and its `set grade` grade, escaped.
    rules: Vec<(String, Option<String>)>,
    policy: String,
    excluded: String,
}

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

impl LabelWriter {
    pub fn new(engine: &Engine) -> Self {
        let p = &engine.program;
        let mut sorted: Vec<usize> = (0..p.dimensions.len()).collect();
        sorted.sort_by(|a, b| {
            let name = |i: &usize| p.dimensions.get(*i).map_or("", |d| d.name.as_str());
            name(a).cmp(name(b))
        });
        LabelWriter {
            sorted,
            keys: p
                .dimensions
                .iter()
                .map(|d| format!("{}:", quoted(&d.name)))
                .collect(),
            grades: p
                .dimensions
                .iter()
                .map(|d| d.grades.iter().map(|b| quoted(&b.name)).collect())
                .collect(),
            overall: p.overall.grades.iter().map(|b| quoted(&b.name)).collect(),
            rules: p
                .rules
                .iter()
                .map(|r| {
                    let set = match &r.action {
                        rubric_compiler::lower::ir::RuleActionIr::SetGrade(g) => Some(quoted(g)),
                        _ => None,
                    };
                    (quoted(&r.name), set)
                })
                .collect(),
            policy: quoted(&p.policy.hash),
            excluded: quoted(&p.overall.excluded_grade),
        }
    }

    /// A number as serde_json prints it (with the same formatter).
    fn number(out: &mut String, x: f64) {
        if x.is_finite() {
            out.push_str(zmij::Buffer::new().format_finite(x));
        } else {
            out.push_str("null");
        }
    }

    /// A string as serde_json prints it: as it is when nothing in it needs escaping.
    fn string(out: &mut String, s: &str) {
        if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
            out.push_str(&quoted(s));
        } else {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
    }

    pub fn write(&self, out: &mut String, label: LabelView<'_>) {
        let null = "null";
        out.push_str("{\"dimensions\":{");
        for (n, i) in self.sorted.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(self.keys.get(*i).map_or("\"\":", String::as_str));
            match label.dimension(*i) {
                Some(x) => Self::number(out, x),
                None => out.push_str(null),
            }
        }
        out.push_str("},\"grades\":{");
        let mut first = true;
        for i in &self.sorted {
            let Some(bands) = self.grades.get(*i).filter(|b| !b.is_empty()) else {
                continue;
            };
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(self.keys.get(*i).map_or("\"\":", String::as_str));
            let grade = label.grade(*i).and_then(|g| bands.get(g as usize));
            out.push_str(grade.map_or(null, String::as_str));
        }
        out.push_str("},\"id\":");
        Self::string(out, label.id);
        out.push_str(",\"overall\":");
        match label.overall {
            Some(x) => Self::number(out, x),
            None => out.push_str(null),
        }
        out.push_str(",\"");
        out.push_str(OVERALL_GRADE_KEY);
        out.push_str("\":");
        let grade = match label.overall_grade {
            Some(OverallGrade::Band(b)) => self.overall.get(b as usize).map(String::as_str),
            Some(OverallGrade::SetByRule(r)) => {
                self.rules.get(r as usize).and_then(|(_, g)| g.as_deref())
            }
            Some(OverallGrade::Excluded) => Some(self.excluded.as_str()),
            None => None,
        };
        out.push_str(grade.unwrap_or(null));
        out.push_str(",\"policy\":");
        out.push_str(&self.policy);
        out.push_str(",\"rules\":[");
        for (n, r) in label
            .rules
            .iter()
            .filter_map(|r| self.rules.get(*r as usize))
            .enumerate()
        {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&r.0);
        }
        out.push_str("]}");
    }
}

/// What one slice of a batch gave: its labels as JSON lines, in order, and its bad rows, each
/// with where in `labels` it sat (the labels before it are written before it is handled).
struct SliceOut {
    labels: String,
    labeled: u64,
    bad: Vec<(usize, usize, RowError)>,
    blank: u64,
    events: Events,
}

/// A batch's rows: the bytes read, and each row's line number and span in them.
struct Batch {
    text: Vec<u8>,
    rows: Vec<(u64, usize, usize)>,
    /// Rows that were longer than the limit, by index, with their length (only a preview of
    /// them is in `text`).
    oversize: Vec<(usize, u64)>,
}

impl Batch {
    fn row(&self, i: usize) -> &[u8] {
        self.rows
            .get(i)
            .and_then(|(_, a, b)| self.text.get(*a..*b))
            .unwrap_or(&[])
    }
}

/// Appends one line (with its newline, if any) to `buf`, at most `cap` bytes of it (the rest is
/// read past, not kept); the byte count of the whole line, 0 at the end. Like
/// `BufRead::read_until`, with a vectorised search for the newline: this runs on the one thread
/// that reads.
fn read_line(input: &mut dyn BufRead, buf: &mut Vec<u8>, cap: usize) -> io::Result<usize> {
    let mut read = 0;
    loop {
        let available = match input.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(read);
        }
        let (done, used) = match memchr::memchr(b'\n', available) {
            Some(i) => (true, i + 1),
            None => (false, available.len()),
        };
        let room = cap.saturating_sub(read);
        buf.extend_from_slice(available.get(..used.min(room)).unwrap_or(available));
        input.consume(used);
        read += used;
        if done {
            return Ok(read);
        }
    }
}

/// Labels a stream of pairs. `progress` is called with the bytes read so far after each batch.
///
/// The reading thread only splits lines into a batch's buffer; decoding (UTF-8 included),
/// labeling and writing each label's JSON run on all threads, and each slice's labels reach
/// `output` as one write.
pub fn label_stream(
    engine: &Engine,
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    mut quarantine: Option<&mut dyn Write>,
    options: LabelOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<LabelSummary, LabelError> {
    let decoder = Decoder::new(&engine.program);
    let writer = LabelWriter::new(engine);
    let mut summary = LabelSummary {
        events: Events::new(engine.program.dimensions.len()),
        ..LabelSummary::default()
    };
    let mut line_no: u64 = 0;
    let mut bytes: u64 = 0;
    let mut batch = Batch {
        text: Vec::new(),
        rows: Vec::with_capacity(options.batch_rows),
        oversize: Vec::new(),
    };
    loop {
        batch.text.clear();
        batch.rows.clear();
        batch.oversize.clear();
        while batch.rows.len() < options.batch_rows && batch.text.len() < options.batch_bytes {
            let start = batch.text.len();
            // One byte past the limit says the row is over it.
            let n = read_line(
                input,
                &mut batch.text,
                options.max_row_bytes.saturating_add(1),
            )?;
            if n == 0 {
                break;
            }
            bytes += n as u64;
            line_no += 1;
            if n > options.max_row_bytes {
                batch
                    .text
                    .truncate(start + ROW_PREVIEW.min(options.max_row_bytes));
                batch.oversize.push((batch.rows.len(), n as u64));
            }
            // A byte-order mark opening the file is not part of the first row.
            let start = if line_no == 1 && batch.text.get(start..start + 3) == Some(UTF8_BOM) {
                start + 3
            } else {
                start
            };
            let line = batch.text.get(start..).unwrap_or(&[]);
            let kept = line.len()
                - line
                    .iter()
                    .rev()
                    .take_while(|b| matches!(b, b'\n' | b'\r'))
                    .count();
            batch.rows.push((line_no, start, start + kept));
        }
        if batch.rows.is_empty() {
            break;
        }
        let threads = rayon::current_num_threads().max(1);
        let chunk = batch.rows.len().div_ceil(threads * 4).max(64);
        let indices: Vec<usize> = (0..batch.rows.len()).collect();
        let results: Vec<SliceOut> = indices
            .par_chunks(chunk)
            .map(|slice| {
                let mut strings = Interner::new(&engine.strings);
                let mut out = SliceOut {
                    labels: String::with_capacity(slice.len() * 256),
                    labeled: 0,
                    bad: Vec::new(),
                    blank: 0,
                    events: Events::new(engine.program.dimensions.len()),
                };
                // Decode the slice's rows into one batch (a bad row is kept with the number of
                // good rows before it, to be put back in its place), label the batch, write.
                let mut pairs = PairBatch::new(&engine.program);
                let mut bad = Vec::new();
                for &i in slice {
                    let no = batch.rows.get(i).map_or(0, |r| r.0);
                    if let Some((_, len)) = batch.oversize.iter().find(|(at, _)| *at == i) {
                        let error = RowError {
                            line: no,
                            path: String::new(),
                            message: format!(
                                "the row is {len} bytes, more than the limit of {} bytes; its \
                                 first bytes are kept in the quarantine entry",
                                options.max_row_bytes
                            ),
                        };
                        bad.push((pairs.len(), i, error));
                        continue;
                    }
                    let line = match std::str::from_utf8(batch.row(i)) {
                        Ok(line) => line,
                        Err(e) => {
                            let error = RowError {
                                line: no,
                                path: String::new(),
                                message: format!("not valid UTF-8: {e}"),
                            };
                            bad.push((pairs.len(), i, error));
                            continue;
                        }
                    };
                    if line.trim().is_empty() {
                        out.blank += 1;
                        continue;
                    }
                    match decoder.decode(no, line, &mut strings) {
                        Ok(pair) => pairs.push(&pair),
                        Err(e) => bad.push((pairs.len(), i, e)),
                    }
                }
                let mut labels = Labels::default();
                let mut ctx = Ctx::new(&mut strings, &mut out.events, None);
                engine.label_batch(&pairs, &mut ctx, &mut labels);
                let mut bad = bad.into_iter().peekable();
                for (n, label) in labels.iter().enumerate() {
                    while let Some((_, i, e)) = bad.next_if(|b| b.0 == n) {
                        out.bad.push((out.labels.len(), i, e));
                    }
                    writer.write(&mut out.labels, label);
                    out.labels.push('\n');
                    out.labeled += 1;
                }
                for (_, i, e) in bad {
                    out.bad.push((out.labels.len(), i, e));
                }
                out
            })
            .collect();
        for slice in results {
            summary.events.merge(&slice.events);
            summary.blank += slice.blank;
            let mut written = 0;
            for (at, i, error) in slice.bad {
                let before = slice.labels.get(written..at).unwrap_or("");
                output.write_all(before.as_bytes())?;
                written = at;
                match quarantine.as_deref_mut() {
                    Some(q) => {
                        let row = batch.row(i);
                        let mut entry = json!({
                            "line": error.line,
                            "field": error.path,
                            "error": error.message,
                            "row": String::from_utf8_lossy(row),
                        });
                        if std::str::from_utf8(row).is_err() {
                            entry["row_base64"] = exact_bytes(row).into();
                        }
                        q.write_all(entry.to_string().as_bytes())?;
                        q.write_all(b"\n")?;
                        summary.quarantined += 1;
                        summary.rows += 1;
                    }
                    // The rows before it were labeled and written.
                    None => return Err(LabelError::Row(error)),
                }
            }
            output.write_all(slice.labels.get(written..).unwrap_or("").as_bytes())?;
            summary.labeled += slice.labeled;
            summary.rows += slice.labeled;
        }
        progress(bytes);
    }
    output.flush()?;
    if let Some(q) = quarantine {
        q.flush()?;
    }
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod read_line_tests {
    use super::read_line;
    use std::io::{BufRead, BufReader, Cursor};

    fn lines(input: &[u8], capacity: usize) -> Vec<Vec<u8>> {
        let mut reader = BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
        let mut out = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = read_line(&mut reader, &mut buf, usize::MAX).unwrap();
            if n == 0 {
                break;
            }
            assert_eq!(n, buf.len());
            out.push(buf);
        }
        out
    }

    #[test]
    fn read_line_agrees_with_read_until_at_any_buffer_size() {
        let input = b"{\"a\":1}\r\n\n  \nlong line that spans several buffers of the reader\nlast";
        for capacity in [1, 2, 3, 7, 64, 4096] {
            let mut expected = Vec::new();
            let mut reader = BufReader::with_capacity(capacity, Cursor::new(input.to_vec()));
            loop {
                let mut buf = Vec::new();
                if reader.read_until(b'\n', &mut buf).unwrap() == 0 {
                    break;
                }
                expected.push(buf);
            }
            assert_eq!(lines(input, capacity), expected, "capacity {capacity}");
        }
        assert!(lines(b"", 8).is_empty());
    }
}
