//! Expressions: the one precedence table of the language ([`PRECEDENCE`], from which the pest
//! `PrattParser` is built) and the builders
//! of primaries. Depth is measured as the tree is built, so no later pass recurses past the limit.

use super::Rule;
use super::ast::*;
use super::build::{Builder, missing_expr};
use crate::diagnostics::{Code, Diagnostic};
use crate::source::Span;
use pest::iterators::{Pair, Pairs};
use pest::pratt_parser::{Assoc, Op, PrattParser};
use std::cell::RefCell;
use std::sync::LazyLock;

/// An operator of the precedence table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Operator {
    Binary(BinaryOp),
    Prefix(UnaryOp),
}

/// How the operators of one level group: binary to the left or to the right, or prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Grouping {
    Left,
    Right,
    Prefix,
}

/// Operator precedence, loosest first: each level's grouping and its operators with their
/// grammar rules. The only place precedence is written down: the parser's `PrattParser` is built
/// from it and the formatter's parentheses read it (through [`binary_level`] and friends).
pub(crate) const PRECEDENCE: &[(Grouping, &[(Rule, Operator)])] = &[
    (
        Grouping::Left,
        &[(Rule::or_op, Operator::Binary(BinaryOp::Or))],
    ),
    (
        Grouping::Left,
        &[(Rule::and_op, Operator::Binary(BinaryOp::And))],
    ),
    (
        Grouping::Prefix,
        &[(Rule::not_op, Operator::Prefix(UnaryOp::Not))],
    ),
    (
        Grouping::Left,
        &[
            (Rule::eq, Operator::Binary(BinaryOp::Eq)),
            (Rule::ne, Operator::Binary(BinaryOp::Ne)),
            (Rule::lt, Operator::Binary(BinaryOp::Lt)),
            (Rule::le, Operator::Binary(BinaryOp::Le)),
            (Rule::gt, Operator::Binary(BinaryOp::Gt)),
            (Rule::ge, Operator::Binary(BinaryOp::Ge)),
        ],
    ),
    (
        Grouping::Right,
        &[(Rule::coalesce, Operator::Binary(BinaryOp::Coalesce))],
    ),
    (
        Grouping::Left,
        &[(Rule::union, Operator::Binary(BinaryOp::Union))],
    ),
    (
        Grouping::Left,
        &[(Rule::intersect, Operator::Binary(BinaryOp::Intersect))],
    ),
    (
        Grouping::Left,
        &[
            (Rule::add, Operator::Binary(BinaryOp::Add)),
            (Rule::sub, Operator::Binary(BinaryOp::Sub)),
        ],
    ),
    (
        Grouping::Left,
        &[
            (Rule::mul, Operator::Binary(BinaryOp::Mul)),
            (Rule::div, Operator::Binary(BinaryOp::Div)),
        ],
    ),
    (
        Grouping::Prefix,
        &[(Rule::neg, Operator::Prefix(UnaryOp::Neg))],
    ),
];

/// The binding level of what is not an operator (a literal, a name, a call, parentheses): one
/// above the tightest level of [`PRECEDENCE`].
pub(crate) const PRIMARY_LEVEL: u8 = PRECEDENCE.len() as u8 + 1;

/// How tightly an operator binds: its level in [`PRECEDENCE`], from 1 for the loosest.
fn level_of(op: Operator) -> u8 {
    PRECEDENCE
        .iter()
        .position(|(_, ops)| ops.iter().any(|(_, o)| *o == op))
        .and_then(|i| u8::try_from(i + 1).ok())
        .unwrap_or(PRIMARY_LEVEL)
}

/// How tightly a binary operator binds (1 for `or`, the loosest).
pub(crate) fn binary_level(op: BinaryOp) -> u8 {
    level_of(Operator::Binary(op))
}

/// How tightly a prefix operator binds.
pub(crate) fn prefix_level(op: UnaryOp) -> u8 {
    level_of(Operator::Prefix(op))
}

/// Whether a binary operator groups to the right (`a ?? b ?? c` is `a ?? (b ?? c)`).
pub(crate) fn groups_right(op: BinaryOp) -> bool {
    PRECEDENCE.iter().any(|(grouping, ops)| {
        *grouping == Grouping::Right && ops.iter().any(|(_, o)| *o == Operator::Binary(op))
    })
}

/// The operator a grammar rule writes, if it is one.
fn operator(rule: Rule) -> Option<Operator> {
    PRECEDENCE
        .iter()
        .flat_map(|(_, ops)| ops.iter())
        .find(|(r, _)| *r == rule)
        .map(|(_, op)| *op)
}

static PRATT: LazyLock<PrattParser<Rule>> = LazyLock::new(|| {
    PRECEDENCE
        .iter()
        .fold(PrattParser::new(), |parser, (grouping, ops)| {
            let op = |rule: Rule| match grouping {
                Grouping::Left => Op::infix(rule, Assoc::Left),
                Grouping::Right => Op::infix(rule, Assoc::Right),
                Grouping::Prefix => Op::prefix(rule),
            };
            match ops.iter().map(|(rule, _)| op(*rule)).reduce(|a, b| a | b) {
                Some(level) => parser.op(level),
                None => parser,
            }
        })
});

fn binary_op(rule: Rule) -> BinaryOp {
    match operator(rule) {
        Some(Operator::Binary(op)) => op,
        _ => BinaryOp::Div,
    }
}

fn is_prefix(rule: Rule) -> bool {
    matches!(operator(rule), Some(Operator::Prefix(_)))
}

fn is_infix(rule: Rule) -> bool {
    matches!(operator(rule), Some(Operator::Binary(_)))
}

/// An expression and the depth of its tree.
type Depthed = (Expr, u32);

impl Builder {
    pub fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        self.expr_depth(pair).0
    }

    fn expr_depth(&mut self, pair: Pair<'_, Rule>) -> Depthed {
        let span = self.span(&pair);
        let pairs = pair.into_inner();
        // Bound the flat sequence before the Pratt parser recurses over it.
        let mut run = 0u32;
        let mut longest_run = 0u32;
        let mut infix = 0u32;
        for p in pairs.clone() {
            if is_prefix(p.as_rule()) {
                run += 1;
                longest_run = longest_run.max(run);
            } else {
                run = 0;
                if is_infix(p.as_rule()) {
                    infix += 1;
                }
            }
        }
        if longest_run > self.max_depth || infix > self.max_depth {
            self.too_deep(span);
            return (missing_expr(span), 1);
        }
        let (expr, depth) = self.pratt(pairs);
        if depth > self.max_depth {
            self.too_deep(span);
            return (missing_expr(span), 1);
        }
        (expr, depth)
    }

    fn too_deep(&mut self, span: Span) {
        let limit = self.max_depth;
        self.error(
            Diagnostic::new(
                Code::SyntaxTooDeep,
                format!("this expression nests more than {limit} levels deep"),
            )
            .at(
                Span {
                    end: span.start.saturating_add(1).min(span.end),
                    ..span
                },
                "the expression starts here",
            )
            .help("name the inner parts with `let` or a `fn` so each expression stays shallow"),
        );
    }

    fn pratt(&mut self, pairs: Pairs<'_, Rule>) -> Depthed {
        let cell = RefCell::new(self);
        PRATT
            .map_primary(|p| cell.borrow_mut().primary(p))
            .map_prefix(|op, (operand, d)| {
                let span = cell.borrow().span(&op).to(operand.span);
                let op = match operator(op.as_rule()) {
                    Some(Operator::Prefix(op)) => op,
                    _ => UnaryOp::Neg,
                };
                (
                    Expr {
                        kind: ExprKind::Unary {
                            op,
                            operand: Box::new(operand),
                        },
                        span,
                    },
                    d + 1,
                )
            })
            .map_infix(|(lhs, dl), op, (rhs, dr)| {
                let op_span = cell.borrow().span(&op);
                let span = lhs.span.to(rhs.span);
                (
                    Expr {
                        kind: ExprKind::Binary {
                            op: binary_op(op.as_rule()),
                            op_span,
                            lhs: Box::new(lhs),
                            rhs: Box::new(rhs),
                        },
                        span,
                    },
                    dl.max(dr) + 1,
                )
            })
            .parse(pairs)
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Depthed {
        let span = self.span(&pair);
        let leaf = |kind| (Expr { kind, span }, 1);
        match pair.as_rule() {
            Rule::number => leaf(ExprKind::Number(self.number(&pair))),
            Rule::percent => leaf(ExprKind::Percent(self.percent(&pair))),
            Rule::duration => leaf(ExprKind::Duration(self.duration(&pair))),
            Rule::string => leaf(ExprKind::String(self.string(&pair))),
            Rule::boolean => leaf(ExprKind::Bool(pair.as_str() == "true")),
            Rule::abstain => leaf(ExprKind::Abstain),
            Rule::path => {
                let names = pair
                    .into_inner()
                    .filter(|p| matches!(p.as_rule(), Rule::ident | Rule::name))
                    .map(|p| Ident {
                        name: p.as_str().to_string(),
                        span: self.span(&p),
                    })
                    .collect();
                leaf(ExprKind::Path(names))
            }
            Rule::paren => {
                let (inner, d) = self
                    .sub_exprs(pair)
                    .pop()
                    .unwrap_or((missing_expr(span), 1));
                (
                    Expr {
                        kind: ExprKind::Paren(Box::new(inner)),
                        span,
                    },
                    d + 1,
                )
            }
            Rule::list => {
                let items = self.sub_exprs(pair);
                let d = items.iter().map(|(_, d)| *d).max().unwrap_or(0) + 1;
                (
                    Expr {
                        kind: ExprKind::List(items.into_iter().map(|(e, _)| e).collect()),
                        span,
                    },
                    d,
                )
            }
            Rule::call | Rule::lookup => {
                let is_call = pair.as_rule() == Rule::call;
                let name = pair
                    .clone()
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::ident)
                    .map(|p| Ident {
                        name: p.as_str().to_string(),
                        span: self.span(&p),
                    })
                    .unwrap_or(Ident {
                        name: String::new(),
                        span,
                    });
                let args = self.sub_exprs(pair);
                let d = args.iter().map(|(_, d)| *d).max().unwrap_or(0) + 1;
                let args = args.into_iter().map(|(e, _)| e).collect();
                let kind = if is_call {
                    ExprKind::Call { func: name, args }
                } else {
                    ExprKind::Lookup {
                        table: name,
                        keys: args,
                    }
                };
                (Expr { kind, span }, d)
            }
            Rule::if_expr => {
                let mut parts = self.sub_exprs(pair).into_iter();
                let (cond, d1) = parts.next().unwrap_or((missing_expr(span), 1));
                let (then, d2) = parts.next().unwrap_or((missing_expr(span), 1));
                let (otherwise, d3) = parts.next().unwrap_or((missing_expr(span), 1));
                (
                    Expr {
                        kind: ExprKind::If {
                            cond: Box::new(cond),
                            then: Box::new(then),
                            otherwise: Box::new(otherwise),
                        },
                        span,
                    },
                    d1.max(d2).max(d3) + 1,
                )
            }
            Rule::match_expr => {
                let mut scrutinee = None;
                let mut arms = Vec::new();
                let mut depth = 1;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::expr => {
                            let (e, d) = self.expr_depth(p);
                            depth = depth.max(d + 1);
                            scrutinee = Some(e);
                        }
                        Rule::match_arm => {
                            let aspan = self.span(&p);
                            let mut patterns = Vec::new();
                            let mut body = None;
                            for a in p.into_inner() {
                                match a.as_rule() {
                                    Rule::pattern => {
                                        for atom in a.into_inner() {
                                            if atom.as_rule() != Rule::wildcard {
                                                patterns.extend(self.literal(atom));
                                            }
                                        }
                                    }
                                    Rule::expr => {
                                        let (e, d) = self.expr_depth(a);
                                        depth = depth.max(d + 1);
                                        body = Some(e);
                                    }
                                    _ => {}
                                }
                            }
                            arms.push(MatchArm {
                                patterns,
                                body: body.unwrap_or_else(|| missing_expr(aspan)),
                                span: aspan,
                            });
                        }
                        _ => {}
                    }
                }
                (
                    Expr {
                        kind: ExprKind::Match {
                            scrutinee: Box::new(scrutinee.unwrap_or_else(|| missing_expr(span))),
                            arms,
                        },
                        span,
                    },
                    depth,
                )
            }
            Rule::when_expr => {
                let mut arms = Vec::new();
                let mut otherwise = None;
                let mut depth = 1;
                for p in pair.into_inner() {
                    let aspan = self.span(&p);
                    match p.as_rule() {
                        Rule::when_arm => {
                            let mut parts = self.sub_exprs(p).into_iter();
                            let (condition, d1) = parts.next().unwrap_or((missing_expr(aspan), 1));
                            let (body, d2) = parts.next().unwrap_or((missing_expr(aspan), 1));
                            depth = depth.max(d1.max(d2) + 1);
                            arms.push(WhenArm {
                                condition,
                                body,
                                span: aspan,
                            });
                        }
                        Rule::otherwise_arm => {
                            let (body, d) =
                                self.sub_exprs(p).pop().unwrap_or((missing_expr(aspan), 1));
                            depth = depth.max(d + 1);
                            otherwise = Some(Box::new(body));
                        }
                        _ => {}
                    }
                }
                (
                    Expr {
                        kind: ExprKind::When { arms, otherwise },
                        span,
                    },
                    depth,
                )
            }
            _ => (missing_expr(span), 1),
        }
    }

    fn sub_exprs(&mut self, pair: Pair<'_, Rule>) -> Vec<Depthed> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::expr)
            .map(|p| self.expr_depth(p))
            .collect()
    }
}
