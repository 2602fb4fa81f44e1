//! Literals in their one form: numbers, percents, durations and strings as the formatter writes
//! them, each reading back identically.

use super::*;

/// The shortest decimal that reads back as `x` under `ok`, if one of up to 17 places does.
pub(super) fn shortest_decimal(x: f64, ok: impl Fn(f64) -> bool) -> Option<String> {
    for places in 0..=17 {
        let s = trim_decimal(format!("{x:.places$}"));
        if s.parse::<f64>().is_ok_and(&ok) {
            return Some(s);
        }
    }
    let s = format!("{x}");
    s.parse::<f64>().is_ok_and(&ok).then_some(s)
}

pub(super) fn trim_decimal(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A number in the shortest form that reads back identically: `1`, `0.85`, `3e-5`.
pub(super) fn number(v: f64) -> String {
    let plain = format!("{v}");
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e15).contains(&a) {
        let exp = format!("{v:e}");
        if exp.len() < plain.len() {
            return exp;
        }
    }
    plain
}

/// Whether `written` is `shortest` with zeros after its decimal point (`1.0` for `1`, `0.40`
/// for `0.4`).
pub(super) fn with_trailing_zeros(written: &str, shortest: &str) -> bool {
    written.contains('.')
        && written.len() > shortest.len()
        && written.trim_end_matches('0').trim_end_matches('.') == shortest
}

/// A fraction as the digits of its percent (0.4 → `40`), reading back identically.
pub(super) fn percent(v: f64) -> String {
    let x = v * 100.0;
    shortest_decimal(x, |y| y / 100.0 == v).unwrap_or_else(|| trim_decimal(format!("{x:.17}")))
}

pub(super) const DURATION_UNITS: [(&str, f64); 5] = [
    ("h", 3_600_000.0),
    ("min", 60_000.0),
    ("s", 1000.0),
    ("ms", 1.0),
    ("us", 0.001),
];

/// A duration given in milliseconds, in `unit` when one is given and can say it exactly, else in
/// the largest unit that says it in whole numbers.
pub(super) fn duration(ms: f64, unit: Option<&str>) -> String {
    if let Some((u, scale)) = unit.and_then(|u| DURATION_UNITS.iter().find(|(n, _)| *n == u))
        && let Some(s) = shortest_decimal(ms / scale, |y| y * scale == ms)
    {
        return format!("{s}{u}");
    }
    for (u, scale) in DURATION_UNITS {
        let x = ms / scale;
        if x.fract() == 0.0 && x * scale == ms {
            return format!("{}{u}", trim_decimal(format!("{x:.0}")));
        }
    }
    let s = shortest_decimal(ms, |y| y == ms).unwrap_or_else(|| format!("{ms}"));
    format!("{s}ms")
}

/// A string literal with its escapes written back.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub(super) fn doc_line(line: &str) -> String {
    if line.is_empty() {
        "///".to_string()
    } else {
        format!("/// {line}")
    }
}

/// A literal other than a list, a name or a number (which [`Printer::literal`] prints), as text.
pub(super) fn literal_atom(l: &Literal) -> String {
    match &l.kind {
        LiteralKind::Percent(v) => format!("{}%", percent(*v)),
        LiteralKind::String(s) => quote(s),
        LiteralKind::Bool(b) => b.to_string(),
        LiteralKind::Abstain => "abstain".to_string(),
        LiteralKind::Number(_) | LiteralKind::Name(_) | LiteralKind::List(_) => literal_text(l),
    }
}
