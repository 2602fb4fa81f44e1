//! Cleaning a click log as a pipeline's `clean` block says (the lowered `StageConfig::Clean`):
//! streaming passes whose memory grows with distinct sessions, not rows, and a report in which
//! rows in = kept + dropped + quarantined, always.
//!
//! Pass 1 checks every row (malformed, timestamps out of order within a session, ids unknown to
//! a pairs file) and gathers per-session statistics; each outlier rule then takes one pass for
//! its statistics (Welford's mean and variance, or a DDSketch quantile refined to an exact data
//! value) over the rows the rules before it keep; the last pass filters. Rules run in their
//! declared order and a row is counted under the first rule that drops it.

pub mod predicate;

use crate::compile::deterministic_json;
use crate::data::clicks::Click;
use crate::label::decode::RowError;
use rubric_compiler::lower::plan::{CleanExprIr, CleanRuleIr, StageConfig, TrainingPlan};
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hasher;
use std::io::{self, BufRead, Write};

pub const CLEAN_REPORT_SCHEMA: &str = "rubric.clean-report/1";

/// A session's statistics over the rows pass 1 accepted (the names clean rules read).
#[derive(Clone, Debug, Default)]
pub struct SessionStats {
    pub clicks: u64,
    pub impressions: u64,
    first_ms: i64,
    last_ms: i64,
    last_line: u64,
    /// Hashes of the distinct queries.
    pub queries: Vec<u64>,
}

impl SessionStats {
    pub fn seconds(&self) -> f64 {
        (self.last_ms - self.first_ms) as f64 / 1000.0
    }

    /// Clicks per minute over the session's span, at least one minute: a short session's few
    /// clicks are not a rate.
    pub fn clicks_per_minute(&self) -> f64 {
        self.clicks as f64 * 60.0 / self.seconds().max(60.0)
    }
}

#[derive(Debug)]
pub enum CleanError {
    Io(io::Error),
    /// A bad row, without `--quarantine`.
    Row(RowError),
    /// The plan has no clean stage (or not the one asked for).
    NoCleanStage(String),
    /// A rule's condition uses something a record cannot answer.
    Unsupported {
        rule: String,
        construct: String,
    },
    /// The input changed between passes, or the counts do not add up.
    Reconciliation(String),
}

impl fmt::Display for CleanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CleanError::Io(e) => write!(f, "{e}"),
            CleanError::Row(e) => write!(f, "{e}"),
            CleanError::NoCleanStage(m) => write!(f, "{m}"),
            CleanError::Unsupported { rule, construct } => write!(
                f,
                "the clean rule `{rule}` uses `{construct}`, which a click record cannot answer: \
                 a condition reads click-log fields and session statistics with operators"
            ),
            CleanError::Reconciliation(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for CleanError {}

impl From<io::Error> for CleanError {
    fn from(e: io::Error) -> Self {
        CleanError::Io(e)
    }
}

/// The clean stage of a plan: its source's name and rules. With `source`, that source's stage.
pub fn clean_stage<'p>(
    plan: &'p TrainingPlan,
    source: Option<&str>,
) -> Result<(&'p str, &'p [CleanRuleIr]), CleanError> {
    let mut names = Vec::new();
    for stage in &plan.stages {
        if let StageConfig::Clean {
            source: name,
            rules,
            ..
        } = &stage.config
        {
            if source.is_none_or(|s| s == name) {
                return Ok((name, rules));
            }
            names.push(format!("`{name}`"));
        }
    }
    Err(CleanError::NoCleanStage(match source {
        Some(s) if !names.is_empty() => format!(
            "the pipeline `{}` cleans no source `{s}`; it cleans {}",
            plan.pipeline,
            names.join(", ")
        ),
        _ => format!(
            "the pipeline `{}` has no `clean {{ ... }}` block on any data source",
            plan.pipeline
        ),
    }))
}

/// What the cleaner is told besides the rules.
#[derive(Debug, Default)]
pub struct CleanOptions {
    /// The (query_id, candidate_id) pairs of a pairs file: a click on any other is a bad row.
    pub known_pairs: Option<std::collections::HashSet<(String, String)>>,
    /// Set bad rows aside (and write them to the quarantine) instead of stopping at the first.
    pub quarantine: bool,
}

/// Where cleaning writes.
pub struct CleanOutputs<'w> {
    pub kept: &'w mut dyn Write,
    /// Bad rows: `{"line", "field", "error", "row"}`.
    pub quarantine: Option<&'w mut dyn Write>,
    /// Dropped rows: `{"line", "rule", "row"}`, for audits and for measuring the rules.
    pub dropped: Option<&'w mut dyn Write>,
}

/// Progress: which pass of how many, and the bytes of it read so far.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub pass: usize,
    pub passes: usize,
    pub bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RowCounts {
    #[serde(rename = "in")]
    pub rows_in: u64,
    pub kept: u64,
    pub dropped: u64,
    pub quarantined: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct QuarantineCounts {
    pub malformed: u64,
    pub out_of_order: u64,
    pub unknown_ids: u64,
}

/// One rule's line of the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleReport {
    /// The rule's name (`bots`), or `outliers` / `duplicates`.
    pub rule: String,
    /// What it says, as written: `clicks_per_minute > 30`, `dwell_seconds beyond 3 sigma`.
    pub says: String,
    pub dropped: u64,
    /// Sessions with at least one row dropped by this rule.
    pub sessions: u64,
    /// For outlier rules: what the cutoffs were computed from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<OutlierStatistics>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OutlierStatistics {
    /// Rows with the field, among those the rules before this one kept.
    pub values: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sd: Option<f64>,
    /// Values outside [low, high] are dropped (no bound where absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<f64>,
}

/// The cleaning report (`rubric.clean-report/1`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CleanReport {
    pub schema: String,
    pub policy: String,
    pub pipeline: String,
    pub source: String,
    /// SHA-256 of the input log's bytes.
    pub input_sha256: String,
    pub rows: RowCounts,
    pub blank_lines: u64,
    pub sessions: u64,
    pub rules: Vec<RuleReport>,
    pub quarantine: QuarantineCounts,
}

impl CleanReport {
    /// Deterministic JSON: sorted keys, a final newline.
    pub fn to_json(&self) -> String {
        deterministic_json(self)
    }

    /// A readable summary, a few lines.
    pub fn summary(&self) -> String {
        let r = &self.rows;
        let mut out = format!(
            "cleaned `{}` of pipeline `{}`: {} rows in, {} kept, {} dropped, {} quarantined ({} sessions)\n",
            self.source, self.pipeline, r.rows_in, r.kept, r.dropped, r.quarantined, self.sessions
        );
        let name_width = self.rules.iter().map(|r| r.rule.len()).max().unwrap_or(0);
        let says_width = self.rules.iter().map(|r| r.says.len()).max().unwrap_or(0);
        for rule in &self.rules {
            out.push_str(&format!(
                "  {:<name_width$}  {:<says_width$}  dropped {} rows of {} sessions\n",
                rule.rule, rule.says, rule.dropped, rule.sessions
            ));
        }
        let q = &self.quarantine;
        if r.quarantined > 0 {
            out.push_str(&format!(
                "  quarantined: {} malformed, {} out of order, {} unknown ids\n",
                q.malformed, q.out_of_order, q.unknown_ids
            ));
        }
        out
    }
}

/// A rule ready to apply.
enum Rule<'p> {
    Drop {
        predicate: &'p CleanExprIr,
    },
    Outliers {
        field: &'p str,
        cutoff: Cutoff,
        /// Filled by its statistics pass.
        range: Option<(f64, f64)>,
    },
    Duplicates {
        on: Vec<&'p str>,
        seen: FxHashSet<[u8; 16]>,
    },
}

#[derive(Clone, Copy)]
enum Cutoff {
    Sigma(f64),
    Quantile(f64),
}

fn says(rule: &CleanRuleIr) -> (String, String) {
    match rule {
        CleanRuleIr::DropWhen {
            name, condition, ..
        } => (name.clone(), condition.clone()),
        CleanRuleIr::OutliersSigma { field, sigma } => (
            "outliers".to_string(),
            format!("{field} beyond {sigma} sigma"),
        ),
        CleanRuleIr::OutliersQuantile { field, quantile } => (
            "outliers".to_string(),
            format!("{field} above quantile {quantile}"),
        ),
        CleanRuleIr::Duplicates { on } => {
            ("duplicates".to_string(), format!("on {}", on.join(", ")))
        }
    }
}

fn fx(text: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(text.as_bytes());
    h.finish()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

impl Rule<'_> {
    /// Whether the rule drops the row (and remembers it for duplicates).
    fn drops(&mut self, click: &Click, stats: &SessionStats) -> bool {
        match self {
            Rule::Drop { predicate } => predicate::holds(predicate, click, stats),
            Rule::Outliers { field, range, .. } => {
                match (range, predicate::number(field, click, stats)) {
                    (Some((low, high)), Some(x)) => x < *low || x > *high,
                    _ => false,
                }
            }
            Rule::Duplicates { on, seen } => {
                let mut h = Sha256::new();
                for name in on.iter() {
                    let part = match *name {
                        "query_id" => click.query_id.clone(),
                        "candidate_id" => click.candidate_id.clone(),
                        "session" => click.session.clone().unwrap_or_default(),
                        "ts" => click.ts.as_millisecond().to_string(),
                        "position" => click.position.to_string(),
                        "clicked" => click.clicked.to_string(),
                        "dwell_seconds" => format!("{:?}", click.dwell_seconds),
                        "propensity" => format!("{:?}", click.propensity),
                        _ => String::new(),
                    };
                    h.update(part.as_bytes());
                    h.update([0x1f]);
                }
                let digest = h.finalize();
                let mut key = [0u8; 16];
                key.copy_from_slice(digest.get(..16).unwrap_or(&[0u8; 16]));
                !seen.insert(key)
            }
        }
    }
}

/// Reads an input once, line by line: `on_line(line number, text, raw bytes, valid UTF-8)` for
/// every line, with empty text for a blank one (a line that is not UTF-8 comes lossily decoded).
fn each_line(
    input: &mut dyn BufRead,
    progress: &mut dyn FnMut(u64),
    mut on_line: impl FnMut(u64, &str, &[u8], bool) -> Result<(), CleanError>,
) -> Result<(u64, u64), CleanError> {
    let mut buf: Vec<u8> = Vec::new();
    let mut line_no = 0u64;
    let mut bytes = 0u64;
    let mut blank = 0u64;
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        bytes += n as u64;
        let (text, utf8) = match std::str::from_utf8(&buf) {
            Ok(t) => (std::borrow::Cow::Borrowed(t), true),
            Err(_) => (String::from_utf8_lossy(&buf), false),
        };
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            blank += 1;
            on_line(line_no, "", &buf, utf8)?;
        } else {
            on_line(line_no, line, &buf, utf8)?;
        }
        if line_no.is_multiple_of(65_536) {
            progress(bytes);
        }
    }
    progress(bytes);
    Ok((line_no, blank))
}

/// Cleans a click log. `open` opens the input afresh for each pass (a file can be read again).
pub fn clean(
    plan: &TrainingPlan,
    source: Option<&str>,
    open: &dyn Fn() -> io::Result<Box<dyn BufRead>>,
    options: &CleanOptions,
    outputs: CleanOutputs<'_>,
    progress: &mut dyn FnMut(Progress),
) -> Result<CleanReport, CleanError> {
    let (source_name, ir_rules) = clean_stage(plan, source)?;
    for rule in ir_rules {
        if let CleanRuleIr::DropWhen {
            name, predicate, ..
        } = rule
            && let Some(construct) = predicate::unsupported(predicate)
        {
            return Err(CleanError::Unsupported {
                rule: name.clone(),
                construct,
            });
        }
    }
    let mut rules: Vec<Rule> = ir_rules
        .iter()
        .map(|r| match r {
            CleanRuleIr::DropWhen { predicate, .. } => Rule::Drop { predicate },
            CleanRuleIr::OutliersSigma { field, sigma } => Rule::Outliers {
                field,
                cutoff: Cutoff::Sigma(*sigma),
                range: None,
            },
            CleanRuleIr::OutliersQuantile { field, quantile } => Rule::Outliers {
                field,
                cutoff: Cutoff::Quantile(*quantile),
                range: None,
            },
            CleanRuleIr::Duplicates { on } => Rule::Duplicates {
                on: if on.is_empty() {
                    vec!["query_id", "candidate_id", "ts", "session"]
                } else {
                    on.iter().map(String::as_str).collect()
                },
                seen: FxHashSet::default(),
            },
        })
        .collect();
    let stat_passes: usize = rules
        .iter()
        .map(|r| match r {
            Rule::Outliers {
                cutoff: Cutoff::Quantile(_),
                ..
            } => 2,
            Rule::Outliers { .. } => 1,
            _ => 0,
        })
        .sum();
    let passes = stat_passes + 2;
    let mut pass = 0usize;

    // Pass 1: check rows, gather session statistics.
    let mut sessions: FxHashMap<String, SessionStats> = FxHashMap::default();
    let mut bad: Vec<RowError> = Vec::new();
    let mut quarantine_counts = QuarantineCounts::default();
    let mut rows_in = 0u64;
    let mut hasher = Sha256::new();
    pass += 1;
    let (lines, blank_lines) = each_line(
        open()?.as_mut(),
        &mut |bytes| {
            progress(Progress {
                pass,
                passes,
                bytes,
            })
        },
        |line_no, line, raw, utf8| {
            hasher.update(raw);
            if line.is_empty() {
                return Ok(());
            }
            rows_in += 1;
            let parsed = if utf8 {
                Click::parse(line_no, line)
            } else {
                Err(RowError {
                    line: line_no,
                    path: String::new(),
                    message: "not valid UTF-8".to_string(),
                })
            };
            let checked = parsed.and_then(|click| {
                if let Some(known) = &options.known_pairs
                    && !known.contains(&(click.query_id.clone(), click.candidate_id.clone()))
                {
                    return Err(RowError {
                        line: line_no,
                        path: "candidate_id".to_string(),
                        message: format!(
                            "no pair has query_id \"{}\" and candidate_id \"{}\": the click joins no pair",
                            click.query_id, click.candidate_id
                        ),
                    });
                }
                let ms = click.ts.as_millisecond();
                if let Some(s) = sessions.get(click.session_key())
                    && ms < s.last_ms
                {
                    return Err(RowError {
                        line: line_no,
                        path: "ts".to_string(),
                        message: format!(
                            "out of order: earlier than line {} of the same session \"{}\"",
                            s.last_line,
                            click.session_key()
                        ),
                    });
                }
                Ok(click)
            });
            match checked {
                Ok(click) => {
                    let ms = click.ts.as_millisecond();
                    let s = sessions
                        .entry(click.session_key().to_string())
                        .or_insert_with(|| SessionStats {
                            first_ms: ms,
                            last_ms: ms,
                            ..SessionStats::default()
                        });
                    s.impressions += 1;
                    s.clicks += u64::from(click.clicked);
                    s.last_ms = ms;
                    s.last_line = line_no;
                    let q = fx(&click.query_id);
                    if !s.queries.contains(&q) {
                        s.queries.push(q);
                    }
                    Ok(())
                }
                Err(e) => {
                    if !options.quarantine {
                        return Err(CleanError::Row(e));
                    }
                    match e.path.as_str() {
                        "ts" if e.message.starts_with("out of order") => {
                            quarantine_counts.out_of_order += 1
                        }
                        "candidate_id" if e.message.starts_with("no pair has") => {
                            quarantine_counts.unknown_ids += 1
                        }
                        _ => quarantine_counts.malformed += 1,
                    }
                    bad.push(e);
                    Ok(())
                }
            }
        },
    )?;
    let input_sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let empty = SessionStats::default();

    // A pass over the good rows, with the rules before `upto` applied; `visit` sees survivors.
    let mut run_pass = |rules: &mut [Rule],
                        upto: usize,
                        pass: usize,
                        visit: &mut dyn FnMut(&Click, &SessionStats)|
     -> Result<(), CleanError> {
        for r in rules.iter_mut() {
            if let Rule::Duplicates { seen, .. } = r {
                seen.clear();
            }
        }
        let mut next_bad = bad.iter().map(|e| e.line).peekable();
        let (count, _) = each_line(
            open()?.as_mut(),
            &mut |bytes| {
                progress(Progress {
                    pass,
                    passes,
                    bytes,
                })
            },
            |line_no, line, _, _| {
                if line.is_empty() {
                    return Ok(());
                }
                if next_bad.peek() == Some(&line_no) {
                    next_bad.next();
                    return Ok(());
                }
                let click = Click::parse(line_no, line).map_err(|e| {
                    CleanError::Reconciliation(format!("the input changed while cleaning: {e}"))
                })?;
                let stats = sessions.get(click.session_key()).unwrap_or(&empty);
                for rule in rules.iter_mut().take(upto) {
                    if rule.drops(&click, stats) {
                        return Ok(());
                    }
                }
                visit(&click, stats);
                Ok(())
            },
        )?;
        if count != lines {
            return Err(CleanError::Reconciliation(format!(
                "the input changed while cleaning: {lines} lines, then {count}"
            )));
        }
        Ok(())
    };

    // The outlier rules' statistics, each over what the rules before it keep.
    let mut statistics: Vec<Option<OutlierStatistics>> = vec![None; rules.len()];
    for i in 0..rules.len() {
        let (field, cutoff) = match rules.get(i) {
            Some(Rule::Outliers { field, cutoff, .. }) => (*field, *cutoff),
            _ => continue,
        };
        let (range, stat) = match cutoff {
            Cutoff::Sigma(k) => {
                let mut moments = Moments::default();
                pass += 1;
                run_pass(&mut rules, i, pass, &mut |click, stats| {
                    if let Some(x) = predicate::number(field, click, stats) {
                        moments.add(x);
                    }
                })?;
                let (n, mean, sd) = (moments.n, moments.mean(), moments.sd());
                let range = (n > 0).then_some((mean - k * sd, mean + k * sd));
                (
                    range,
                    OutlierStatistics {
                        values: n,
                        mean: (n > 0).then(|| round6(mean)),
                        sd: (n > 0).then(|| round6(sd)),
                        low: range.map(|r| round6(r.0)),
                        high: range.map(|r| round6(r.1)),
                    },
                )
            }
            Cutoff::Quantile(q) => {
                let mut sketch =
                    sketches_ddsketch::DDSketch::new(sketches_ddsketch::Config::defaults());
                let mut n = 0u64;
                pass += 1;
                run_pass(&mut rules, i, pass, &mut |click, stats| {
                    if let Some(x) = predicate::number(field, click, stats) {
                        n += 1;
                        sketch.add(x);
                    }
                })?;
                let estimate = sketch.quantile(q).ok().flatten();
                // Refine to an exact data value: count what lies below a band around the
                // estimate (the sketch is within 1%), keep the band's distinct values.
                let mut below = 0u64;
                let mut band: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
                let (lo, hi) = match estimate {
                    Some(e) => {
                        let w = e.abs() * 0.05 + 1e-9;
                        (e - w, e + w)
                    }
                    None => (0.0, 0.0),
                };
                pass += 1;
                run_pass(&mut rules, i, pass, &mut |click, stats| {
                    if let Some(x) = predicate::number(field, click, stats) {
                        if x < lo {
                            below += 1;
                        } else if x <= hi {
                            let key = ordered(x);
                            band.entry(key).or_insert((x, 0)).1 += 1;
                        }
                    }
                })?;
                let rank = (q * n as f64).ceil() as u64;
                let mut cutoff = estimate;
                let mut cum = below;
                if cum < rank {
                    for (x, count) in band.values() {
                        cum += count;
                        if cum >= rank {
                            cutoff = Some(*x);
                            break;
                        }
                    }
                }
                let range = cutoff.map(|c| (f64::NEG_INFINITY, c));
                (
                    range,
                    OutlierStatistics {
                        values: n,
                        mean: None,
                        sd: None,
                        low: None,
                        high: cutoff.map(round6),
                    },
                )
            }
        };
        if let Some(Rule::Outliers { range: slot, .. }) = rules.get_mut(i) {
            *slot = range;
        }
        if let Some(s) = statistics.get_mut(i) {
            *s = Some(stat);
        }
    }

    // The last pass: filter and write.
    for r in rules.iter_mut() {
        if let Rule::Duplicates { seen, .. } = r {
            seen.clear();
        }
    }
    let mut dropped_by = vec![0u64; rules.len()];
    let mut sessions_by: Vec<FxHashSet<u64>> = vec![FxHashSet::default(); rules.len()];
    let mut kept = 0u64;
    let mut quarantined = 0u64;
    let mut bad_iter = bad.iter().peekable();
    let CleanOutputs {
        kept: kept_out,
        mut quarantine,
        mut dropped,
    } = outputs;
    pass += 1;
    let (count, _) = each_line(
        open()?.as_mut(),
        &mut |bytes| {
            progress(Progress {
                pass,
                passes,
                bytes,
            })
        },
        |line_no, line, raw, utf8| {
            if line.is_empty() {
                return Ok(());
            }
            if let Some(e) = bad_iter.next_if(|e| e.line == line_no) {
                quarantined += 1;
                if let Some(q) = quarantine.as_deref_mut() {
                    let mut entry = serde_json::json!({
                        "line": e.line,
                        "field": e.path,
                        "error": e.message,
                        "row": line,
                    });
                    if !utf8 {
                        let row = raw.strip_suffix(b"\n").unwrap_or(raw);
                        let row = row.strip_suffix(b"\r").unwrap_or(row);
                        entry["row_base64"] = crate::label::exact_bytes(row).into();
                    }
                    q.write_all(entry.to_string().as_bytes())?;
                    q.write_all(b"\n")?;
                }
                return Ok(());
            }
            let click = Click::parse(line_no, line).map_err(|e| {
                CleanError::Reconciliation(format!("the input changed while cleaning: {e}"))
            })?;
            let stats = sessions.get(click.session_key()).unwrap_or(&empty);
            for (i, rule) in rules.iter_mut().enumerate() {
                if rule.drops(&click, stats) {
                    if let Some(n) = dropped_by.get_mut(i) {
                        *n += 1;
                    }
                    if let Some(s) = sessions_by.get_mut(i) {
                        s.insert(fx(click.session_key()));
                    }
                    if let Some(d) = dropped.as_deref_mut() {
                        let name = ir_rules.get(i).map(|r| says(r).0).unwrap_or_default();
                        writeln!(
                            d,
                            "{{\"line\":{line_no},\"rule\":{},\"row\":{line}}}",
                            serde_json::Value::String(name)
                        )?;
                    }
                    return Ok(());
                }
            }
            kept += 1;
            kept_out.write_all(line.as_bytes())?;
            kept_out.write_all(b"\n")?;
            Ok(())
        },
    )?;
    kept_out.flush()?;
    if let Some(q) = quarantine {
        q.flush()?;
    }
    if let Some(d) = dropped {
        d.flush()?;
    }
    if count != lines {
        return Err(CleanError::Reconciliation(format!(
            "the input changed while cleaning: {lines} lines, then {count}"
        )));
    }
    let dropped_total: u64 = dropped_by.iter().sum();
    if rows_in != kept + dropped_total + quarantined || quarantined != bad.len() as u64 {
        return Err(CleanError::Reconciliation(format!(
            "rows do not reconcile: {rows_in} in, {kept} kept, {dropped_total} dropped, {quarantined} quarantined"
        )));
    }
    let report = CleanReport {
        schema: CLEAN_REPORT_SCHEMA.to_string(),
        policy: plan.policy.hash.clone(),
        pipeline: plan.pipeline.clone(),
        source: source_name.to_string(),
        input_sha256,
        rows: RowCounts {
            rows_in,
            kept,
            dropped: dropped_total,
            quarantined,
        },
        blank_lines,
        sessions: sessions.len() as u64,
        rules: ir_rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let (rule, says) = says(r);
                RuleReport {
                    rule,
                    says,
                    dropped: dropped_by.get(i).copied().unwrap_or(0),
                    sessions: sessions_by.get(i).map_or(0, |s| s.len() as u64),
                    statistics: statistics.get(i).cloned().flatten(),
                }
            })
            .collect(),
        quarantine: quarantine_counts,
    };
    Ok(report)
}

/// A total order on floats as keys.
fn ordered(x: f64) -> u64 {
    let bits = x.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | (1 << 63)
    }
}

/// Mean and population deviation by Welford's method, on values divided by the largest
/// magnitude seen so far: a value of 1e155 squares to infinity, which turned the 3-sigma rule's
/// statistics into null and dropped nothing; scaled, the sums stay finite for any finite input.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Moments {
    n: u64,
    /// The largest |x| so far; the values below are in units of it.
    scale: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if x.abs() > self.scale {
            let ratio = if self.scale == 0.0 {
                0.0
            } else {
                self.scale / x.abs()
            };
            self.mean *= ratio;
            self.m2 *= ratio * ratio;
            self.scale = x.abs();
        }
        let x = if self.scale == 0.0 {
            0.0
        } else {
            x / self.scale
        };
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }

    fn mean(&self) -> f64 {
        self.mean * self.scale
    }

    fn sd(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            (self.m2 / self.n as f64).sqrt() * self.scale
        }
    }
}
