//! A model's structured inputs as numbers: the pipeline's `features [...]`, each fitted on the
//! training pairs (a number's median and robust spread, a string's most frequent values) and stored with
//! the model, so training, evaluation and serving encode a pair the same way. Beside each
//! feature's own numbers come comparisons of the two sides of the pair, which a small network
//! cannot compute from one-hot codes: for a feature of the query and one of the candidate of the
//! same kind, whether their values are the same (strings, the same enum) or which share of each
//! side's set the other holds (sets and lists).

use crate::encode::Records;
use jiff::Timestamp;
use rubric_compiler::lower::plan::Feature;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// The most values a string feature keeps (the rest share one slot).
pub const MAX_STRING_VALUES: usize = 64;
/// The most values a set-of-strings feature keeps (the rest share one slot).
pub const MAX_SET_VALUES: usize = 512;

/// One fitted feature and the slots it fills.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Column {
    Number {
        role: String,
        field: String,
        /// The value its slot measures from (see [`NumberScale`]).
        #[serde(alias = "mean")]
        center: f64,
        /// The unit its slot measures in.
        #[serde(alias = "std")]
        spread: f64,
        /// Absent on a card written before robust scaling.
        #[serde(default)]
        scale: NumberScale,
    },
    Bool {
        role: String,
        field: String,
    },
    /// One-hot over `values`; with `other`, a last slot for any other value.
    OneOf {
        role: String,
        field: String,
        values: Vec<String>,
        other: bool,
    },
    /// Multi-hot over `values`; with `other`, a last slot counting any other values' share.
    AnyOf {
        role: String,
        field: String,
        values: Vec<String>,
        other: bool,
    },
    HourOfDay,
    DayOfWeek,
}

/// How a number becomes its slot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberScale {
    /// `(x − mean) / standard deviation`, as cards written before `robust` say.
    #[default]
    Standard,
    /// `asinh((x − median) / spread)`, the spread the interquartile range over 1.349 (a
    /// normal distribution's standard deviation): the bulk of the values spread over a few
    /// units and the extremes compressed, not the other way round. A few extreme values (the
    /// synthetic pairs' boundary cases: 913 years asked for) made the mean and standard
    /// deviation describe the extremes, and left the values the rubric's thresholds turn on
    /// (0 to 10 years) within a tenth of a unit of each other.
    Robust,
}

impl NumberScale {
    fn apply(self, x: f64) -> f64 {
        match self {
            NumberScale::Standard => x,
            NumberScale::Robust => x.asinh(),
        }
    }
}

/// The median and robust spread of `values` (sorted here): the interquartile range over 1.349,
/// else the standard deviation where half the values or more are one value, else 1.
fn robust(values: &mut [f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 1.0);
    }
    values.sort_by(f64::total_cmp);
    // Linear between the two nearest ranks, as numpy's default.
    let quantile = |q: f64| {
        let at = q * (values.len() - 1) as f64;
        let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
        values[lo] + (values[hi] - values[lo]) * (at - lo as f64)
    };
    let median = quantile(0.5);
    let iqr = quantile(0.75) - quantile(0.25);
    let spread = if iqr > 0.0 {
        iqr / 1.349
    } else {
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        if var > 0.0 { var.sqrt() } else { 1.0 }
    };
    (median, spread)
}

impl Column {
    /// The role whose record the column reads; `None` for the impression's time.
    fn role(&self) -> Option<&str> {
        match self {
            Column::Number { role, .. }
            | Column::Bool { role, .. }
            | Column::OneOf { role, .. }
            | Column::AnyOf { role, .. } => Some(role),
            Column::HourOfDay | Column::DayOfWeek => None,
        }
    }

    fn width(&self) -> usize {
        match self {
            // A number's value and whether it is missing (an optional field left out).
            Column::Number { .. } => 2,
            Column::Bool { .. } => 1,
            Column::OneOf { values, other, .. } | Column::AnyOf { values, other, .. } => {
                values.len() + usize::from(*other)
            }
            Column::HourOfDay => 24,
            Column::DayOfWeek => 7,
        }
    }
}

/// How two features of different roles are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareKind {
    /// 1 when both values are there and the same.
    Same,
    /// The share of the first set the second holds, and of the second the first holds.
    Shared,
    /// The first number less the second, in units of the larger spread.
    Difference,
}

/// A comparison of two features (by position in `columns`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Comparison {
    pub left: usize,
    pub right: usize,
    pub kind: CompareKind,
}

/// The fitted features of a model, in the pipeline's order, then their comparisons.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureEncoder {
    pub columns: Vec<Column>,
    pub comparisons: Vec<Comparison>,
}

/// The comparisons of features of different roles whose values can be compared: two strings,
/// two values of the same enum, two sets of strings or of the same enum's values, two numbers
/// (a posting's minimum years against a profile's years: their difference).
fn comparisons(features: &[Feature]) -> Vec<Comparison> {
    let shape = |f: &Feature| match f {
        Feature::OneOf { role, values, .. } => {
            Some((role.clone(), CompareKind::Same, values.clone()))
        }
        Feature::AnyOf { role, values, .. } => {
            Some((role.clone(), CompareKind::Shared, values.clone()))
        }
        Feature::Number { role, .. } => Some((role.clone(), CompareKind::Difference, vec![])),
        _ => None,
    };
    let mut out = Vec::new();
    for (i, a) in features.iter().enumerate() {
        for (j, b) in features.iter().enumerate().skip(i + 1) {
            if let (Some((ra, ka, va)), Some((rb, kb, vb))) = (shape(a), shape(b))
                && ra != rb
                && ka == kb
                && va == vb
            {
                out.push(Comparison {
                    left: i,
                    right: j,
                    kind: ka,
                });
            }
        }
    }
    out
}

/// A pair (and its impression's time, for the click context) to encode.
pub struct Row<'a> {
    pub pair: &'a (dyn Records + Sync),
    pub ts: Option<Timestamp>,
}

fn field<'v>(pair: &'v (dyn Records + Sync), role: &str, field: &str) -> Option<&'v Value> {
    pair.record(role)
        .and_then(|r| r.get(field))
        .filter(|v| !v.is_null())
}

/// A value's text: strings as they are (borrowed: a served ranking looks up every pair's
/// values), enum values as written, anything else as JSON.
fn text_of(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}

/// Where `text` is among the sorted `values`.
fn position(values: &[String], text: &str) -> Result<usize, usize> {
    values.binary_search_by(|v| v.as_str().cmp(text))
}

/// A feature's values: the declared ones (an enum's), or the `keep` most frequent in the
/// training rows (a value, or each item of a list), with whether any was left out.
fn fitted(
    declared: &[String],
    rows: &[Row<'_>],
    role: &str,
    name: &str,
    keep: usize,
) -> (Vec<String>, bool) {
    if !declared.is_empty() {
        return (declared.to_vec(), false);
    }
    let mut counts = HashMap::new();
    for r in rows {
        match field(r.pair, role, name) {
            Some(Value::Array(items)) => {
                for v in items {
                    *counts.entry(text_of(v).into_owned()).or_insert(0) += 1;
                }
            }
            Some(v) => *counts.entry(text_of(v).into_owned()).or_insert(0) += 1,
            None => {}
        }
    }
    frequent(counts, keep)
}

/// The `keep` most frequent values (ties by value), and whether any value was left out.
fn frequent(counts: HashMap<String, u64>, keep: usize) -> (Vec<String>, bool) {
    let mut by_count: Vec<(String, u64)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let other = by_count.len() > keep;
    let mut values: Vec<String> = by_count.into_iter().take(keep).map(|(v, _)| v).collect();
    values.sort();
    (values, other)
}

impl FeatureEncoder {
    /// Fits `features` on the training rows.
    pub fn fit(features: &[Feature], rows: &[Row<'_>]) -> FeatureEncoder {
        let columns = features
            .iter()
            .map(|f| match f {
                Feature::Number { role, field: name } => {
                    let mut values: Vec<f64> = rows
                        .iter()
                        .filter_map(|r| field(r.pair, role, name).and_then(Value::as_f64))
                        .filter(|v| v.is_finite())
                        .collect();
                    let (center, spread) = robust(&mut values);
                    Column::Number {
                        role: role.clone(),
                        field: name.clone(),
                        center,
                        spread,
                        scale: NumberScale::Robust,
                    }
                }
                Feature::Bool { role, field } => Column::Bool {
                    role: role.clone(),
                    field: field.clone(),
                },
                Feature::OneOf {
                    role,
                    field: name,
                    values,
                } => {
                    let (values, other) = fitted(values, rows, role, name, MAX_STRING_VALUES);
                    Column::OneOf {
                        role: role.clone(),
                        field: name.clone(),
                        values,
                        other,
                    }
                }
                Feature::AnyOf {
                    role,
                    field: name,
                    values,
                } => {
                    let (values, other) = fitted(values, rows, role, name, MAX_SET_VALUES);
                    Column::AnyOf {
                        role: role.clone(),
                        field: name.clone(),
                        values,
                        other,
                    }
                }
                Feature::HourOfDay => Column::HourOfDay,
                Feature::DayOfWeek => Column::DayOfWeek,
            })
            .collect();
        FeatureEncoder {
            columns,
            comparisons: comparisons(features),
        }
    }

    /// How many numbers a row becomes.
    pub fn width(&self) -> usize {
        let own: usize = self.columns.iter().map(Column::width).sum();
        let compared: usize = self
            .comparisons
            .iter()
            .map(|c| match c.kind {
                CompareKind::Same | CompareKind::Difference => 1,
                CompareKind::Shared => 2,
            })
            .sum();
        own + compared
    }

    /// The value of the field a column reads.
    fn value<'v>(&self, column: usize, pair: &'v (dyn Records + Sync)) -> Option<&'v Value> {
        match self.columns.get(column)? {
            Column::OneOf { role, field: f, .. } | Column::AnyOf { role, field: f, .. } => {
                field(pair, role, f)
            }
            _ => None,
        }
    }

    /// A number column's value, fitted spread and scale.
    fn number(
        &self,
        column: usize,
        pair: &(dyn Records + Sync),
    ) -> Option<(f64, f64, NumberScale)> {
        match self.columns.get(column)? {
            Column::Number {
                role,
                field: f,
                spread,
                scale,
                ..
            } => field(pair, role, f)
                .and_then(Value::as_f64)
                .map(|v| (v, *spread, *scale)),
            _ => None,
        }
    }

    fn compare<'p>(&self, c: &Comparison, pair: &'p (dyn Records + Sync), out: &mut Vec<f32>) {
        let (a, b) = (self.value(c.left, pair), self.value(c.right, pair));
        match c.kind {
            CompareKind::Same => {
                let same = matches!((a, b), (Some(a), Some(b)) if text_of(a) == text_of(b));
                out.push(f32::from(u8::from(same)));
            }
            CompareKind::Shared => {
                let set = |v: Option<&'p Value>| -> std::collections::BTreeSet<Cow<'p, str>> {
                    match v {
                        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
                        _ => Default::default(),
                    }
                };
                let (a, b) = (set(a), set(b));
                let both = a.intersection(&b).count() as f32;
                let share = |n: usize| if n == 0 { 0.0 } else { both / n as f32 };
                out.push(share(a.len()));
                out.push(share(b.len()));
            }
            // 0 when either is missing, as a missing number's own slots are.
            CompareKind::Difference => {
                let d = match (self.number(c.left, pair), self.number(c.right, pair)) {
                    (Some((a, sa, scale)), Some((b, sb, _))) => {
                        scale.apply((a - b) / sa.max(sb)) as f32
                    }
                    _ => 0.0,
                };
                out.push(d);
            }
        }
    }

    /// Appends a row's numbers to `out`. A value of the wrong type is an error naming the field;
    /// a missing one is zeros.
    pub fn encode(&self, row: &Row<'_>, out: &mut Vec<f32>) -> Result<(), String> {
        self.encode_with(row, None, out)
    }

    /// [`encode`](Self::encode), the columns of `known`'s role copied from it: `known` must be
    /// [`encode_record`](Self::encode_record)'s of the record the row holds in that role.
    pub fn encode_with(
        &self,
        row: &Row<'_>,
        known: Option<&RecordColumns>,
        out: &mut Vec<f32>,
    ) -> Result<(), String> {
        let mut copied = 0;
        for c in &self.columns {
            let start = out.len();
            let width = c.width();
            out.resize(start + width, 0.0);
            let slots = &mut out[start..];
            match known {
                Some(k) if c.role() == Some(k.role.as_str()) => {
                    let from = k.slots.get(copied..copied + width).ok_or_else(|| {
                        format!(
                            "the `{}` record's columns are fewer than its role's",
                            k.role
                        )
                    })?;
                    slots.copy_from_slice(from);
                    copied += width;
                }
                _ => Self::column(c, row, slots)?,
            }
        }
        for c in &self.comparisons {
            self.compare(c, row.pair, out);
        }
        Ok(())
    }

    /// The columns of `role` over `record` alone: what a pair that holds `record` in that role
    /// has in them, computed once for all of those pairs (a ranking's query, for each
    /// candidate). An error names the field, as [`encode`](Self::encode)'s would.
    pub fn encode_record(&self, role: &str, record: &Value) -> Result<RecordColumns, String> {
        let pair = OneRecord { role, record };
        let row = Row {
            pair: &pair,
            ts: None,
        };
        let mut slots = Vec::new();
        for c in self.columns.iter().filter(|c| c.role() == Some(role)) {
            let start = slots.len();
            slots.resize(start + c.width(), 0.0);
            Self::column(c, &row, &mut slots[start..])?;
        }
        Ok(RecordColumns {
            role: role.to_string(),
            slots,
        })
    }

    /// One column's slots (zeros on entry) for a row.
    fn column(c: &Column, row: &Row<'_>, slots: &mut [f32]) -> Result<(), String> {
        match c {
            Column::Number {
                role,
                field: name,
                center,
                spread,
                scale,
            } => match field(row.pair, role, name) {
                Some(v) => {
                    let x = v
                        .as_f64()
                        .ok_or_else(|| format!("`{role}.{name}`: expected a number, found {v}"))?;
                    slots[0] = scale.apply((x - center) / spread) as f32;
                }
                None => slots[1] = 1.0,
            },
            Column::Bool { role, field: name } => {
                if let Some(v) = field(row.pair, role, name) {
                    let b = v
                        .as_bool()
                        .ok_or_else(|| format!("`{role}.{name}`: expected a bool, found {v}"))?;
                    slots[0] = f32::from(u8::from(b));
                }
            }
            Column::OneOf {
                role,
                field: name,
                values,
                other,
            } => {
                if let Some(v) = field(row.pair, role, name) {
                    match position(values, &text_of(v)) {
                        Ok(i) => slots[i] = 1.0,
                        Err(_) if *other => slots[values.len()] = 1.0,
                        Err(_) => {}
                    }
                }
            }
            Column::AnyOf {
                role,
                field: name,
                values,
                other,
            } => match field(row.pair, role, name) {
                None => {}
                Some(Value::Array(items)) => {
                    let mut others = 0usize;
                    for v in items {
                        match position(values, &text_of(v)) {
                            Ok(i) => slots[i] = 1.0,
                            Err(_) => others += 1,
                        }
                    }
                    if *other && !items.is_empty() {
                        slots[values.len()] = others as f32 / items.len() as f32;
                    }
                }
                Some(v) => return Err(format!("`{role}.{name}`: expected a list, found {v}")),
            },
            Column::HourOfDay | Column::DayOfWeek => {
                // A pair scored with no impression (distillation's pairs, a ranking
                // request without a time) has no hour: all zeros, as a missing value.
                let Some(ts) = row.ts else {
                    return Ok(());
                };
                // In UTC: 1970-01-01 was a Thursday (Monday is 0).
                let seconds = ts.as_second();
                let slot = if matches!(c, Column::HourOfDay) {
                    seconds.rem_euclid(86_400) / 3_600
                } else {
                    (seconds.div_euclid(86_400) + 3).rem_euclid(7)
                } as usize;
                if let Some(s) = slots.get_mut(slot) {
                    *s = 1.0;
                }
            }
        }
        Ok(())
    }
}

/// One record's columns: those of its role, one after another in the columns' order.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordColumns {
    role: String,
    slots: Vec<f32>,
}

/// One record under its role, as a pair holding nothing else.
struct OneRecord<'a> {
    role: &'a str,
    record: &'a Value,
}

impl Records for OneRecord<'_> {
    fn record(&self, role: &str) -> Option<&Value> {
        (role == self.role).then_some(self.record)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    /// What `encoder` makes of `pair` scored with no impression; the same of its two records
    /// borrowed side by side (as a served ranking passes them), and with either record's
    /// columns encoded alone beforehand (as a ranking's query's are), checked equal.
    fn encoded(encoder: &FeatureEncoder, pair: &Value) -> Vec<f32> {
        let mut out = Vec::new();
        encoder.encode(&Row { pair, ts: None }, &mut out).unwrap();
        let null = Value::Null;
        let borrowed = crate::encode::PairOf {
            roles: ["query", "candidate"],
            records: [
                pair.get("query").unwrap_or(&null),
                pair.get("candidate").unwrap_or(&null),
            ],
        };
        let mut same = Vec::new();
        encoder
            .encode(
                &Row {
                    pair: &borrowed,
                    ts: None,
                },
                &mut same,
            )
            .unwrap();
        assert_eq!(same, out);
        for role in ["query", "candidate"] {
            let known = encoder
                .encode_record(role, pair.get(role).unwrap_or(&null))
                .unwrap();
            let mut same = Vec::new();
            let row = Row {
                pair: &borrowed,
                ts: None,
            };
            encoder.encode_with(&row, Some(&known), &mut same).unwrap();
            assert_eq!(same, out, "{role}'s columns known");
        }
        out
    }

    fn features() -> Vec<Feature> {
        vec![
            Feature::Number {
                role: "candidate".into(),
                field: "years".into(),
            },
            Feature::Bool {
                role: "query".into(),
                field: "remote".into(),
            },
            Feature::OneOf {
                role: "query".into(),
                field: "seniority".into(),
                values: vec!["junior".into(), "senior".into()],
            },
            Feature::OneOf {
                role: "query".into(),
                field: "industry".into(),
                values: vec![],
            },
            Feature::AnyOf {
                role: "candidate".into(),
                field: "skills".into(),
                values: vec![],
            },
            Feature::HourOfDay,
            Feature::DayOfWeek,
        ]
    }

    #[test]
    fn a_row_becomes_the_numbers_its_features_say() {
        let pairs = [
            json!({"query": {"remote": true, "seniority": "senior", "industry": "fintech"},
                   "candidate": {"years": 2, "skills": ["rust", "go"]}}),
            json!({"query": {"remote": false, "seniority": "junior", "industry": "health"},
                   "candidate": {"years": 6, "skills": ["rust"]}}),
        ];
        let rows: Vec<Row<'_>> = pairs.iter().map(|p| Row { pair: p, ts: None }).collect();
        let encoder = FeatureEncoder::fit(&features(), &rows);
        // Own slots; no comparison: no two features of different roles are of one kind.
        assert!(encoder.comparisons.is_empty());
        assert_eq!(encoder.width(), 2 + 1 + 2 + 2 + 2 + 24 + 7);
        let ts: Timestamp = "2026-11-05T14:30:00Z".parse().unwrap(); // a Thursday
        let mut out = Vec::new();
        encoder
            .encode(
                &Row {
                    pair: &pairs[0],
                    ts: Some(ts),
                },
                &mut out,
            )
            .unwrap();
        // years: median 4, interquartile range 2 (3 to 5) → asinh(-2 / (2 / 1.349)), not
        // missing; remote; senior; fintech (sorted: fintech, health); skills (sorted: go,
        // rust); 14:00; Thursday (Monday 0).
        let years = (-2.0f64 / (2.0 / 1.349)).asinh() as f32;
        assert_eq!(&out[..9], &[years, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
        assert_eq!(out[9 + 14], 1.0);
        assert_eq!(out[9 + 24 + 3], 1.0);
        assert_eq!(out.iter().filter(|v| **v != 0.0).count(), 8);
        // Missing values are zeros; a value of the wrong type names its field.
        let mut empty = Vec::new();
        let missing = json!({"query": {}, "candidate": {}});
        encoder
            .encode(
                &Row {
                    pair: &missing,
                    ts: Some(ts),
                },
                &mut empty,
            )
            .unwrap();
        // The hour, the day, and years marked missing.
        assert_eq!(empty.iter().filter(|v| **v != 0.0).count(), 3);
        assert_eq!(empty[1], 1.0);
        let wrong = json!({"query": {"remote": "yes"}, "candidate": {}});
        let err = encoder
            .encode(
                &Row {
                    pair: &wrong,
                    ts: Some(ts),
                },
                &mut Vec::new(),
            )
            .unwrap_err();
        assert!(err.contains("`query.remote`"), "{err}");
        // Encoded alone beforehand, the record gives the same error.
        let query = json!({"remote": "yes"});
        let alone = encoder.encode_record("query", &query).unwrap_err();
        assert_eq!(alone, err);
        // Columns encoded by another encoder, with fewer of the role's, are refused.
        let fewer = FeatureEncoder::fit(&features()[..2], &rows)
            .encode_record("query", &pairs[0]["query"])
            .unwrap();
        let row = Row {
            pair: &pairs[0],
            ts: None,
        };
        let err = encoder
            .encode_with(&row, Some(&fewer), &mut Vec::new())
            .unwrap_err();
        assert!(err.contains("fewer"), "{err}");
        // No impression, no time: the time's slots are zeros.
        let mut timeless = Vec::new();
        encoder
            .encode(
                &Row {
                    pair: &missing,
                    ts: None,
                },
                &mut timeless,
            )
            .unwrap();
        assert_eq!(timeless.len(), encoder.width());
        let mut timed = Vec::new();
        encoder
            .encode(
                &Row {
                    pair: &missing,
                    ts: Some(ts),
                },
                &mut timed,
            )
            .unwrap();
        let ones = |v: &[f32]| v.iter().filter(|x| **x == 1.0).count();
        assert_eq!(ones(&timed), ones(&timeless) + 2, "{timed:?} {timeless:?}");
    }

    #[test]
    fn the_two_sides_are_compared_where_their_values_can_be() {
        let both = |role: &str, field: &str, set: bool| {
            if set {
                Feature::AnyOf {
                    role: role.into(),
                    field: field.into(),
                    values: vec![],
                }
            } else {
                Feature::OneOf {
                    role: role.into(),
                    field: field.into(),
                    values: vec![],
                }
            }
        };
        let features = vec![
            both("query", "required_skills", true),
            both("query", "industry", false),
            both("candidate", "skills", true),
            both("candidate", "industry", false),
            Feature::OneOf {
                role: "candidate".into(),
                field: "seniority".into(),
                values: vec!["junior".into(), "senior".into()],
            },
        ];
        let pair = json!({"query": {"required_skills": ["rust", "sql"], "industry": "fintech"},
                          "candidate": {"skills": ["rust", "go", "k8s", "sql"], "industry": "fintech",
                                        "seniority": "senior"}});
        let encoder = FeatureEncoder::fit(
            &features,
            &[Row {
                pair: &pair,
                ts: None,
            }],
        );
        // Sets with sets, strings with strings; never a string with an enum or a set.
        assert_eq!(
            encoder
                .comparisons
                .iter()
                .map(|c| (c.left, c.right, c.kind))
                .collect::<Vec<_>>(),
            [(0, 2, CompareKind::Shared), (1, 3, CompareKind::Same)]
        );
        let out = encoded(&encoder, &pair);
        let n = out.len();
        assert_eq!(n, encoder.width());
        // Both required skills are held; half the candidate's skills are asked for; same industry.
        assert_eq!(&out[n - 3..], &[1.0, 0.5, 1.0]);
    }

    #[test]
    fn a_few_extreme_numbers_leave_the_bulk_spread_out() {
        // Ninety postings asking 0 to 9 years and ten asking 900: the mean and standard
        // deviation (94 and 269) would put 0 and 9 years 0.03 apart; the median and the
        // interquartile range (5; 2 to 8) keep them 1.8 apart, and 900 within asinh's reach.
        let pairs: Vec<Value> = (0..100)
            .map(|i| json!({"query": {"min_years": if i < 90 { i % 10 } else { 900 }}}))
            .collect();
        let rows: Vec<Row<'_>> = pairs.iter().map(|p| Row { pair: p, ts: None }).collect();
        let features = vec![Feature::Number {
            role: "query".into(),
            field: "min_years".into(),
        }];
        let encoder = FeatureEncoder::fit(&features, &rows);
        let slot = |years: u32| encoded(&encoder, &json!({"query": {"min_years": years}}))[0];
        assert!(slot(9) - slot(0) > 1.7, "{} {}", slot(0), slot(9));
        assert!(slot(900) < 8.0 && slot(900) > slot(9), "{}", slot(900));

        // A card written before robust scaling reads as it was written, and encodes as then.
        let old: Column = serde_json::from_value(json!({
            "kind": "number", "role": "query", "field": "min_years", "mean": 4.0, "std": 2.0
        }))
        .unwrap();
        let old = FeatureEncoder {
            columns: vec![old],
            comparisons: Vec::new(),
        };
        assert_eq!(encoded(&old, &pairs[3]), [-0.5, 0.0]);
    }

    #[test]
    fn numbers_of_the_two_sides_are_compared_by_their_difference() {
        let number = |role: &str, field: &str| Feature::Number {
            role: role.into(),
            field: field.into(),
        };
        let features = vec![
            number("query", "min_years"),
            number("candidate", "years_experience"),
        ];
        let pairs = [
            json!({"query": {"min_years": 2}, "candidate": {"years_experience": 6}}),
            json!({"query": {"min_years": 6}, "candidate": {"years_experience": 2}}),
            json!({"query": {"min_years": 4}, "candidate": {}}),
        ];
        let rows: Vec<Row<'_>> = pairs.iter().map(|p| Row { pair: p, ts: None }).collect();
        let encoder = FeatureEncoder::fit(&features, &rows);
        assert_eq!(
            encoder
                .comparisons
                .iter()
                .map(|c| (c.left, c.right, c.kind))
                .collect::<Vec<_>>(),
            [(0, 1, CompareKind::Difference)]
        );
        let [short, long, missing] = [0, 1, 2].map(|i| encoded(&encoder, &pairs[i]));
        assert_eq!(short.len(), encoder.width());
        // Two years short of four asked for, in units of the larger spread; none when missing.
        let last = |v: &[f32]| v[v.len() - 1];
        assert!(
            last(&short) < 0.0 && last(&long) > 0.0,
            "{short:?} {long:?}"
        );
        assert!((last(&short) + last(&long)).abs() < 1e-6);
        assert_eq!(last(&missing), 0.0);
    }

    #[test]
    fn rare_strings_share_a_slot() {
        let pairs: Vec<Value> = (0..(MAX_STRING_VALUES + 5))
            .map(|i| json!({"query": {"industry": format!("i{i:03}")}}))
            .collect();
        let rows: Vec<Row<'_>> = pairs.iter().map(|p| Row { pair: p, ts: None }).collect();
        let encoder = FeatureEncoder::fit(&features()[3..4], &rows);
        assert_eq!(encoder.width(), MAX_STRING_VALUES + 1);
        let out = encoded(&encoder, &json!({"query": {"industry": "zzz"}}));
        assert_eq!(out[MAX_STRING_VALUES], 1.0);
    }
}
