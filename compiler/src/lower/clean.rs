//! The lowered form of a click log's `clean` block: each rule, and each `drop ... when`
//! condition as an expression tree the cleaner evaluates on every record.

use crate::syntax::ast::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "rule")]
pub enum CleanRuleIr {
    /// `drop NAME when CONDITION`: `condition` is the source text, for reports; `predicate` is
    /// what the cleaner evaluates on each record.
    DropWhen {
        name: String,
        condition: String,
        predicate: CleanExprIr,
    },
    OutliersSigma {
        field: String,
        sigma: f64,
    },
    OutliersQuantile {
        field: String,
        quantile: f64,
    },
    Duplicates {
        on: Vec<String>,
    },
}

/// A clean rule's condition over one click-log record: its fields and its session's statistics
/// (the names the checker allows, `check/pipeline/mod.rs`). Durations are in seconds, percents are
/// fractions, and `when` arms are nested `if`s.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CleanExprIr {
    Number(f64),
    Text(String),
    Bool(bool),
    /// A click-log field or a session statistic, by name.
    Field(String),
    Not(Box<CleanExprIr>),
    Neg(Box<CleanExprIr>),
    Binary {
        op: super::ir::BinOp,
        lhs: Box<CleanExprIr>,
        rhs: Box<CleanExprIr>,
    },
    /// `value ?? default`: the default when the field is absent from the record.
    Coalesce {
        value: Box<CleanExprIr>,
        default: Box<CleanExprIr>,
    },
    If {
        cond: Box<CleanExprIr>,
        then: Box<CleanExprIr>,
        otherwise: Box<CleanExprIr>,
    },
    /// A construct a record-level condition has no meaning for (a call, a table lookup, a
    /// `match`, a list, `abstain`), kept as its text so the cleaner can name it in its error.
    Unsupported(String),
}

/// Lowers a clean rule's condition.
pub(super) fn clean_expr(e: &Expr) -> CleanExprIr {
    let boxed = |e: &Expr| Box::new(clean_expr(e));
    match &e.kind {
        ExprKind::Number(n) | ExprKind::Percent(n) => CleanExprIr::Number(*n),
        ExprKind::Duration(ms) => CleanExprIr::Number(ms / 1000.0),
        ExprKind::String(s) => CleanExprIr::Text(s.clone()),
        ExprKind::Bool(b) => CleanExprIr::Bool(*b),
        ExprKind::Path(segments) => CleanExprIr::Field(
            segments
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        ExprKind::Paren(inner) => clean_expr(inner),
        ExprKind::Unary { op, operand } => match op {
            UnaryOp::Not => CleanExprIr::Not(boxed(operand)),
            UnaryOp::Neg => CleanExprIr::Neg(boxed(operand)),
        },
        ExprKind::Binary { op, lhs, rhs, .. } => {
            let Some(op) = super::bin_op(*op) else {
                return CleanExprIr::Coalesce {
                    value: boxed(lhs),
                    default: boxed(rhs),
                };
            };
            CleanExprIr::Binary {
                op,
                lhs: boxed(lhs),
                rhs: boxed(rhs),
            }
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => CleanExprIr::If {
            cond: boxed(cond),
            then: boxed(then),
            otherwise: boxed(otherwise),
        },
        ExprKind::When { arms, otherwise } => {
            let last = otherwise
                .as_deref()
                .map_or(CleanExprIr::Bool(false), clean_expr);
            arms.iter().rev().fold(last, |acc, arm| CleanExprIr::If {
                cond: boxed(&arm.condition),
                then: boxed(&arm.body),
                otherwise: Box::new(acc),
            })
        }
        ExprKind::Call { .. }
        | ExprKind::Lookup { .. }
        | ExprKind::Match { .. }
        | ExprKind::List(_)
        | ExprKind::Abstain => CleanExprIr::Unsupported(crate::format::expr_text(e)),
    }
}

/// Lowers one rule of a `clean` block.
pub(super) fn clean_rule(rule: &CleanRule) -> CleanRuleIr {
    match rule {
        CleanRule::DropWhen {
            name, condition, ..
        } => CleanRuleIr::DropWhen {
            name: name.name.clone(),
            condition: crate::format::expr_text(condition),
            predicate: clean_expr(condition),
        },
        CleanRule::OutliersSigma { field, sigma, .. } => CleanRuleIr::OutliersSigma {
            field: field.name.clone(),
            sigma: *sigma,
        },
        CleanRule::OutliersQuantile {
            field, quantile, ..
        } => CleanRuleIr::OutliersQuantile {
            field: field.name.clone(),
            quantile: *quantile,
        },
        CleanRule::Duplicates { on, .. } => CleanRuleIr::Duplicates {
            on: on.iter().map(|n| n.name.clone()).collect(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::source::FileId;
    use crate::syntax::{Limits, parse};

    /// The conditions of the `clean` rules of a pipeline's click log, lowered.
    fn conditions(clean: &str) -> Vec<String> {
        let text = format!(
            "pipeline p for q {{\n  data {{\n    clicks \"c.jsonl\" clean {{\n      {clean}\n    }}\n  }}\n}}\n"
        );
        let parsed = parse(FileId(0), &text, &Limits::default());
        let tree = parsed.tree.expect("the pipeline parses");
        let Some(TopItem::Pipeline(pipeline)) = tree.items.first() else {
            panic!("a pipeline");
        };
        pipeline
            .data
            .iter()
            .flat_map(|d| &d.sources)
            .flat_map(|s| &s.clean)
            .map(|rule| match clean_rule(rule) {
                CleanRuleIr::DropWhen { condition, .. } => condition,
                other => panic!("not a drop rule: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_drop_rules_condition_reads_as_written_strings_included() {
        assert_eq!(
            conditions(r#"drop x when session == "abc""#),
            [r#"session == "abc""#]
        );
        assert_eq!(
            conditions("drop y when not clicked and (dwell_seconds < 2s or position > 10)"),
            ["not clicked and (dwell_seconds < 2s or position > 10)"]
        );
    }
}
