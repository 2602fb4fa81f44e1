//! Evaluates a `drop NAME when CONDITION` rule (`CleanExprIr`) on one click record and its
//! session's statistics. An absent optional field is missing: arithmetic on it stays missing,
//! comparisons with it are false, `??` replaces it, so a rule never fires on what is not there.

use super::SessionStats;
use crate::data::clicks::Click;
use rubric_compiler::lower::ir::BinOp;
use rubric_compiler::lower::plan::CleanExprIr;

#[derive(Clone, Copy, Debug, PartialEq)]
enum V<'a> {
    Num(f64),
    Bool(bool),
    Text(&'a str),
    Missing,
}

/// The first construct a click-log condition cannot evaluate, as its text.
pub fn unsupported(e: &CleanExprIr) -> Option<String> {
    match e {
        CleanExprIr::Unsupported(text) => Some(text.clone()),
        CleanExprIr::Field(name) if field_kind(name).is_none() => Some(name.clone()),
        CleanExprIr::Number(_)
        | CleanExprIr::Text(_)
        | CleanExprIr::Bool(_)
        | CleanExprIr::Field(_) => None,
        CleanExprIr::Not(x) | CleanExprIr::Neg(x) => unsupported(x),
        CleanExprIr::Binary { lhs, rhs, .. } => unsupported(lhs).or_else(|| unsupported(rhs)),
        CleanExprIr::Coalesce { value, default } => {
            unsupported(value).or_else(|| unsupported(default))
        }
        CleanExprIr::If {
            cond,
            then,
            otherwise,
        } => unsupported(cond)
            .or_else(|| unsupported(then))
            .or_else(|| unsupported(otherwise)),
    }
}

/// Whether a name is a click-log field or a session statistic the cleaner knows.
fn field_kind(name: &str) -> Option<()> {
    matches!(
        name,
        "query_id"
            | "candidate_id"
            | "ts"
            | "position"
            | "clicked"
            | "session"
            | "dwell_seconds"
            | "propensity"
            | "clicks_per_minute"
            | "session_clicks"
            | "session_impressions"
            | "session_seconds"
            | "distinct_queries"
    )
    .then_some(())
}

/// A numeric field or statistic of a record, `None` when absent (or not a number).
pub fn number(name: &str, click: &Click, stats: &SessionStats) -> Option<f64> {
    match name {
        "position" => Some(f64::from(click.position)),
        "dwell_seconds" => click.dwell_seconds,
        "propensity" => click.propensity,
        "clicks_per_minute" => Some(stats.clicks_per_minute()),
        "session_clicks" => Some(stats.clicks as f64),
        "session_impressions" => Some(stats.impressions as f64),
        "session_seconds" => Some(stats.seconds()),
        "distinct_queries" => Some(stats.queries.len() as f64),
        "ts" => Some(click.ts.as_millisecond() as f64 / 1000.0),
        _ => None,
    }
}

fn field<'a>(name: &str, click: &'a Click, stats: &SessionStats) -> V<'a> {
    match name {
        "query_id" => V::Text(&click.query_id),
        "candidate_id" => V::Text(&click.candidate_id),
        "session" => click.session.as_deref().map_or(V::Missing, V::Text),
        "clicked" => V::Bool(click.clicked),
        other => number(other, click, stats).map_or(V::Missing, V::Num),
    }
}

/// Whether the condition holds for the record.
pub fn holds(e: &CleanExprIr, click: &Click, stats: &SessionStats) -> bool {
    matches!(eval(e, click, stats), V::Bool(true))
}

fn eval<'a>(e: &'a CleanExprIr, click: &'a Click, stats: &SessionStats) -> V<'a> {
    match e {
        CleanExprIr::Number(n) => V::Num(*n),
        CleanExprIr::Text(s) => V::Text(s),
        CleanExprIr::Bool(b) => V::Bool(*b),
        CleanExprIr::Field(name) => field(name, click, stats),
        CleanExprIr::Unsupported(_) => V::Missing,
        CleanExprIr::Not(x) => match eval(x, click, stats) {
            V::Bool(b) => V::Bool(!b),
            _ => V::Missing,
        },
        CleanExprIr::Neg(x) => match eval(x, click, stats) {
            V::Num(n) => V::Num(-n),
            _ => V::Missing,
        },
        CleanExprIr::Coalesce { value, default } => match eval(value, click, stats) {
            V::Missing => eval(default, click, stats),
            v => v,
        },
        CleanExprIr::If {
            cond,
            then,
            otherwise,
        } => match eval(cond, click, stats) {
            V::Bool(true) => eval(then, click, stats),
            V::Bool(false) => eval(otherwise, click, stats),
            _ => V::Missing,
        },
        CleanExprIr::Binary { op, lhs, rhs } => {
            let a = eval(lhs, click, stats);
            match op {
                BinOp::And => {
                    if a != V::Bool(true) {
                        return V::Bool(false);
                    }
                    V::Bool(eval(rhs, click, stats) == V::Bool(true))
                }
                BinOp::Or => {
                    if a == V::Bool(true) {
                        return V::Bool(true);
                    }
                    V::Bool(eval(rhs, click, stats) == V::Bool(true))
                }
                _ => binary(*op, a, eval(rhs, click, stats)),
            }
        }
    }
}

fn binary<'a>(op: BinOp, a: V<'a>, b: V<'a>) -> V<'a> {
    if a == V::Missing || b == V::Missing {
        return match op {
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => V::Bool(false),
            _ => V::Missing,
        };
    }
    match (op, a, b) {
        (BinOp::Eq, a, b) => V::Bool(a == b),
        (BinOp::Ne, a, b) => V::Bool(a != b),
        (BinOp::Lt, V::Num(x), V::Num(y)) => V::Bool(x < y),
        (BinOp::Le, V::Num(x), V::Num(y)) => V::Bool(x <= y),
        (BinOp::Gt, V::Num(x), V::Num(y)) => V::Bool(x > y),
        (BinOp::Ge, V::Num(x), V::Num(y)) => V::Bool(x >= y),
        (BinOp::Add, V::Num(x), V::Num(y)) => V::Num(x + y),
        (BinOp::Sub, V::Num(x), V::Num(y)) => V::Num(x - y),
        (BinOp::Mul, V::Num(x), V::Num(y)) => V::Num(x * y),
        (BinOp::Div, V::Num(x), V::Num(y)) if y != 0.0 => V::Num(x / y),
        _ => V::Missing,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn click(dwell: Option<f64>) -> Click {
        Click::parse(
            1,
            r#"{"query_id":"q","candidate_id":"c","ts":"2026-11-25T10:00:00Z","position":2,"clicked":true,"session":"s"}"#,
        )
        .map(|mut c| {
            c.dwell_seconds = dwell;
            c
        })
        .unwrap()
    }

    fn bin(op: BinOp, lhs: CleanExprIr, rhs: CleanExprIr) -> CleanExprIr {
        CleanExprIr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        }
    }

    #[test]
    fn missing_fields_never_fire_a_rule() {
        let stats = SessionStats::default();
        let short = bin(
            BinOp::Lt,
            CleanExprIr::Field("dwell_seconds".into()),
            CleanExprIr::Number(1.0),
        );
        assert!(holds(&short, &click(Some(0.5)), &stats));
        assert!(!holds(&short, &click(None), &stats));
        let negated = CleanExprIr::Not(Box::new(short.clone()));
        assert!(!holds(&negated, &click(Some(0.5)), &stats));
        let defaulted = bin(
            BinOp::Lt,
            CleanExprIr::Coalesce {
                value: Box::new(CleanExprIr::Field("dwell_seconds".into())),
                default: Box::new(CleanExprIr::Number(0.0)),
            },
            CleanExprIr::Number(1.0),
        );
        assert!(holds(&defaulted, &click(None), &stats));
        let both = bin(
            BinOp::And,
            CleanExprIr::Field("clicked".into()),
            bin(
                BinOp::Eq,
                CleanExprIr::Field("position".into()),
                CleanExprIr::Number(2.0),
            ),
        );
        assert!(holds(&both, &click(None), &stats));
    }

    #[test]
    fn unknown_names_and_calls_are_found_before_any_row_is_read() {
        let e = bin(
            BinOp::Gt,
            CleanExprIr::Field("clicks_per_hour".into()),
            CleanExprIr::Unsupported("max(1, 2)".into()),
        );
        assert_eq!(unsupported(&e).as_deref(), Some("clicks_per_hour"));
        assert_eq!(
            unsupported(&CleanExprIr::Field("session_seconds".into())),
            None
        );
    }
}
