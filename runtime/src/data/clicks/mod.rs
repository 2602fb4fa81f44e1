//! Click logs: the record of LANGUAGE.md's `clicks` format, read strictly field by field (an
//! error names the line and the field) and written with a fixed key order; `simulate` makes them.

pub mod simulate;

use crate::label::decode::{MAX_LINE_BYTES, RowError, describe};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};

/// One impression of a click log.
#[derive(Clone, Debug, PartialEq)]
pub struct Click {
    pub query_id: String,
    pub candidate_id: String,
    pub ts: Timestamp,
    /// One-based position in the result list.
    pub position: u32,
    pub clicked: bool,
    pub session: Option<String>,
    pub dwell_seconds: Option<f64>,
    /// Where the logging policy recorded it: the probability behind this impression.
    pub propensity: Option<f64>,
}

/// The JSON form, in the documented key order.
#[derive(Serialize)]
struct ClickJson<'a> {
    query_id: &'a str,
    candidate_id: &'a str,
    ts: String,
    position: u32,
    clicked: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    session: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dwell_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    propensity: Option<f64>,
}

impl Click {
    /// One JSON line (without its newline). Timestamps are RFC 3339 in UTC.
    pub fn to_json(&self) -> String {
        let json = ClickJson {
            query_id: &self.query_id,
            candidate_id: &self.candidate_id,
            ts: format_ts(self.ts),
            position: self.position,
            clicked: self.clicked,
            session: self.session.as_deref(),
            dwell_seconds: self.dwell_seconds,
            propensity: self.propensity,
        };
        serde_json::to_string(&json).unwrap_or_default()
    }

    /// Reads one line (without its newline) of a click log; `line_no` is one-based.
    pub fn parse(line_no: u64, line: &str) -> Result<Click, RowError> {
        let err = |path: &str, message: String| RowError {
            line: line_no,
            path: path.to_string(),
            message,
        };
        if line.len() > MAX_LINE_BYTES {
            return Err(err(
                "",
                format!(
                    "the row is {} bytes, more than the limit of {MAX_LINE_BYTES}",
                    line.len()
                ),
            ));
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| err("", format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err(err("", "expected an object".to_string()));
        };
        let fields = Fields {
            map: &map,
            line: line_no,
        };
        let ts_text = fields.string("ts")?.ok_or_else(|| {
            err(
                "ts",
                "missing: every click needs an RFC 3339 `ts`".to_string(),
            )
        })?;
        let ts = parse_ts(&ts_text).map_err(|m| err("ts", m))?;
        let position = match map.get("position") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p) if p >= 1 && p <= u64::from(u32::MAX) => p as u32,
                _ => {
                    return Err(err(
                        "position",
                        format!("expected a whole number of at least 1, found {n}"),
                    ));
                }
            },
            Some(other) => {
                return Err(err(
                    "position",
                    format!("expected a whole number, found {}", describe(other)),
                ));
            }
            None => {
                return Err(err(
                    "position",
                    "missing: every click has its one-based position".to_string(),
                ));
            }
        };
        let clicked = match map.get("clicked") {
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(err(
                    "clicked",
                    format!("expected `true` or `false`, found {}", describe(other)),
                ));
            }
            None => {
                return Err(err(
                    "clicked",
                    "missing: every impression says whether it was clicked".to_string(),
                ));
            }
        };
        let dwell_seconds = fields.number("dwell_seconds")?;
        if let Some(d) = dwell_seconds
            && d < 0.0
        {
            return Err(err(
                "dwell_seconds",
                format!("expected 0 or more seconds, found {d}"),
            ));
        }
        let propensity = fields.number("propensity")?;
        if let Some(p) = propensity
            && !(p > 0.0 && p <= 1.0)
        {
            return Err(err(
                "propensity",
                format!("expected a probability above 0 and at most 1, found {p}"),
            ));
        }
        Ok(Click {
            query_id: fields.id("query_id")?,
            candidate_id: fields.id("candidate_id")?,
            ts,
            position,
            clicked,
            session: fields.string("session")?,
            dwell_seconds,
            propensity,
        })
    }

    /// The key session statistics are gathered under: the session, or the query (the member's
    /// context) when the log records no session.
    pub fn session_key(&self) -> &str {
        self.session.as_deref().unwrap_or(&self.query_id)
    }
}

struct Fields<'a> {
    map: &'a Map<String, Value>,
    line: u64,
}

impl Fields<'_> {
    fn err(&self, path: &str, message: String) -> RowError {
        RowError {
            line: self.line,
            path: path.to_string(),
            message,
        }
    }

    /// A required id: a non-empty string (or a number, written as text).
    fn id(&self, name: &str) -> Result<String, RowError> {
        match self.map.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::String(_)) => Err(self.err(name, "empty: expected an id".to_string())),
            Some(Value::Number(n)) => Ok(n.to_string()),
            Some(other) => Err(self.err(
                name,
                format!("expected a string id, found {}", describe(other)),
            )),
            None => Err(self.err(name, "missing: every click names it".to_string())),
        }
    }

    /// An optional string (`null` is absent).
    fn string(&self, name: &str) -> Result<Option<String>, RowError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.err(
                name,
                format!("expected a string, found {}", describe(other)),
            )),
        }
    }

    /// An optional finite number (`null` is absent).
    fn number(&self, name: &str) -> Result<Option<f64>, RowError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Ok(Some(x)),
                _ => Err(self.err(name, format!("expected a finite number, found {n}"))),
            },
            Some(other) => Err(self.err(
                name,
                format!("expected a number, found {}", describe(other)),
            )),
        }
    }
}

/// Parses an RFC 3339 timestamp with an offset (`2026-11-25T10:02:03Z`, `...+01:00`).
pub fn parse_ts(text: &str) -> Result<Timestamp, String> {
    text.parse::<Timestamp>().map_err(|e| {
        format!("expected an RFC 3339 timestamp like `2026-11-25T10:02:03Z`, found \"{text}\": {e}")
    })
}

/// RFC 3339 in UTC with the fraction the timestamp has, no more: `2026-11-25T10:02:03.25Z`.
pub fn format_ts(ts: Timestamp) -> String {
    ts.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_the_documented_format() {
        let line = r#"{"query_id":"j-42","candidate_id":"c-7","ts":"2026-11-25T10:02:03Z","position":3,"clicked":true,"session":"s-9","dwell_seconds":41.5,"propensity":0.33}"#;
        let click = Click::parse(1, line).unwrap();
        assert_eq!(click.position, 3);
        assert_eq!(click.session_key(), "s-9");
        assert_eq!(
            click.to_json(),
            r#"{"query_id":"j-42","candidate_id":"c-7","ts":"2026-11-25T10:02:03Z","position":3,"clicked":true,"session":"s-9","dwell_seconds":41.5,"propensity":0.33}"#
        );
    }

    #[test]
    fn a_log_without_sessions_groups_by_query() {
        let line = r#"{"query_id":"u-1","candidate_id":"14","ts":"2019-11-24 00:00:34.762830+00:00","position":1,"clicked":false}"#;
        let click = Click::parse(1, line).unwrap();
        assert_eq!(click.session_key(), "u-1");
        assert_eq!(format_ts(click.ts), "2019-11-24T00:00:34.76283Z");
    }

    #[test]
    fn bad_fields_are_named_with_their_line() {
        let cases = [
            ("{", "line 4: not valid JSON"),
            (
                r#"{"query_id":"q","candidate_id":"c","ts":"yesterday","position":1,"clicked":true}"#,
                "line 4: `ts`: expected an RFC 3339 timestamp",
            ),
            (
                r#"{"query_id":"q","candidate_id":"c","ts":"2026-11-25T10:02:03Z","position":0,"clicked":true}"#,
                "line 4: `position`: expected a whole number of at least 1",
            ),
            (
                r#"{"query_id":"q","candidate_id":"c","ts":"2026-11-25T10:02:03Z","position":1,"clicked":"yes"}"#,
                "line 4: `clicked`: expected `true` or `false`",
            ),
            (
                r#"{"candidate_id":"c","ts":"2026-11-25T10:02:03Z","position":1,"clicked":true}"#,
                "line 4: `query_id`: missing",
            ),
            (
                r#"{"query_id":"q","candidate_id":"c","ts":"2026-11-25T10:02:03Z","position":1,"clicked":true,"dwell_seconds":-1}"#,
                "line 4: `dwell_seconds`: expected 0 or more seconds",
            ),
            (
                r#"{"query_id":"q","candidate_id":"c","ts":"2026-11-25T10:02:03Z","position":1,"clicked":true,"propensity":0}"#,
                "line 4: `propensity`: expected a probability",
            ),
        ];
        for (line, want) in cases {
            let e = Click::parse(4, line).unwrap_err().to_string();
            assert!(e.starts_with(want), "{line}: {e}");
        }
    }
}
