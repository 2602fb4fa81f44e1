//! The printer of expressions: parentheses from the parser's precedence table, runs of
//! operators broken before `and` and `or`, calls, `if`, `match` and `when` chains.

use super::*;

impl Printer<'_> {
    // ---- expressions

    /// Strips the parentheses the author wrote, for the canonical text.
    pub(super) fn peel<'e>(&self, mut e: &'e Expr) -> &'e Expr {
        if !self.keep_parens {
            while let ExprKind::Paren(inner) = &e.kind {
                e = inner;
            }
        }
        e
    }

    /// How tightly an expression binds, as an operand.
    pub(super) fn prec(&self, e: &Expr) -> u8 {
        match &self.peel(e).kind {
            ExprKind::Binary { op, .. } => binary_level(*op),
            ExprKind::Unary { op, .. } => prefix_level(*op),
            _ => PRIMARY_LEVEL,
        }
    }

    /// Operators of a level above this, written right after the expression, would be read as
    /// part of it (its last operand is an `if`, a `when` chain or a prefix operator's operand).
    pub(super) fn open(&self, e: &Expr) -> u8 {
        match &self.peel(e).kind {
            ExprKind::Binary { rhs, .. } => self.open(rhs),
            ExprKind::Unary { op, operand } => (prefix_level(*op) - 1).min(self.open(operand)),
            ExprKind::If { .. } | ExprKind::When { .. } => 0,
            _ => NEVER_OPEN,
        }
    }

    pub(super) fn needs_parens_left(&self, l: &Expr, op: BinaryOp) -> bool {
        let p = binary_level(op);
        let lp = self.prec(l);
        lp < p || (lp == p && groups_right(op)) || self.open(l) < p
    }

    pub(super) fn needs_parens_right(&self, r: &Expr, op: BinaryOp) -> bool {
        match &self.peel(r).kind {
            ExprKind::Binary { op: rop, .. } => {
                let (p, rp) = (binary_level(op), binary_level(*rop));
                rp < p || (rp == p && !groups_right(op))
            }
            _ => false,
        }
    }

    pub(super) fn needs_parens_unary(&self, x: &Expr, op: UnaryOp) -> bool {
        match &self.peel(x).kind {
            ExprKind::Binary { op: b, .. } => binary_level(*b) < prefix_level(op),
            _ => false,
        }
    }

    /// Whether the expression ends in a `when` chain that would take the arms after it.
    pub(super) fn ends_in_when(&self, e: &Expr) -> bool {
        match &self.peel(e).kind {
            ExprKind::When { .. } => true,
            ExprKind::Binary { rhs, .. } => self.ends_in_when(rhs),
            ExprKind::Unary { operand, .. } => self.ends_in_when(operand),
            ExprKind::If { otherwise, .. } => self.ends_in_when(otherwise),
            _ => false,
        }
    }

    /// An expression where any expression may stand.
    pub(super) fn expr(&self, e: &Expr) -> Doc {
        self.node(self.peel(e), Hang::Indent)
    }

    /// An operand, in parentheses when `parens`.
    pub(super) fn operand(&self, e: &Expr, parens: bool) -> Doc {
        let e = self.peel(e);
        if parens {
            cat(vec![
                text("("),
                align(self.node(e, Hang::Aligned)),
                text(")"),
            ])
        } else {
            self.node(e, Hang::Indent)
        }
    }

    pub(super) fn node(&self, e: &Expr, hang: Hang) -> Doc {
        match &e.kind {
            ExprKind::Number(v) => cat(vec![self.mark(e.span), text(self.numeral(*v, e.span))]),
            ExprKind::Percent(v) => cat(vec![self.mark(e.span), text(format!("{}%", percent(*v)))]),
            ExprKind::Duration(ms) => {
                cat(vec![self.mark(e.span), text(self.duration_at(*ms, e.span))])
            }
            ExprKind::String(s) => cat(vec![self.mark(e.span), text(quote(s))]),
            ExprKind::Bool(b) => cat(vec![self.mark(e.span), text(b.to_string())]),
            ExprKind::Abstain => cat(vec![self.mark(e.span), text("abstain")]),
            ExprKind::Path(parts) => {
                let mut out = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push(text("."));
                    }
                    out.push(self.ident(p));
                }
                cat(out)
            }
            ExprKind::List(items) => cat(vec![
                self.mark_char(e.span.start, b'['),
                self.args("[", items, "]"),
                self.close_mark(e.span, b']'),
            ]),
            ExprKind::Call { func, args } => cat(vec![
                self.ident(func),
                self.args("(", args, ")"),
                self.close_mark(e.span, b')'),
            ]),
            ExprKind::Lookup { table, keys } => cat(vec![
                self.ident(table),
                self.args("[", keys, "]"),
                self.close_mark(e.span, b']'),
            ]),
            ExprKind::Unary { op, operand } => {
                let parens = self.needs_parens_unary(operand, *op);
                let word = match op {
                    UnaryOp::Not => "not ",
                    UnaryOp::Neg => "-",
                };
                cat(vec![
                    self.mark_char(
                        e.span.start,
                        word.as_bytes().first().copied().unwrap_or(b'-'),
                    ),
                    text(word),
                    self.operand(operand, parens),
                ])
            }
            ExprKind::Binary { .. } => self.chain(e, hang),
            ExprKind::If { .. } => self.if_chain(e),
            ExprKind::Match { scrutinee, arms } => self.match_expr(e, scrutinee, arms),
            ExprKind::When { arms, otherwise } => self.when_chain(arms, otherwise.as_deref()),
            ExprKind::Paren(inner) => cat(vec![
                self.mark_char(e.span.start, b'('),
                text("("),
                align(self.node(inner, Hang::Aligned)),
                text(")"),
                self.close_mark(e.span, b')'),
            ]),
        }
    }

    /// Arguments, list items or lookup keys: on one line, or one a line aligned after `open`.
    pub(super) fn args(&self, open: &str, items: &[Expr], close: &str) -> Doc {
        let spans: Vec<Span> = items.iter().map(|a| a.span).collect();
        let force = self.formatting() && self.comment_between(&spans);
        let docs = items.iter().map(|a| self.expr(a)).collect();
        group_if(
            cat(vec![text(open), align(join(docs, ",")), text(close)]),
            force,
        )
    }

    /// A run of operators of one level (`a and b and c`): on one line, or broken before each
    /// operator.
    pub(super) fn chain(&self, e: &Expr, hang: Hang) -> Doc {
        let ExprKind::Binary { op, .. } = &e.kind else {
            return self.node(e, hang);
        };
        let mut pieces: Vec<Piece> = Vec::new();
        self.collect(e, binary_level(*op), &mut pieces);
        let spans: Vec<Span> = pieces.iter().map(|(_, _, s)| *s).collect();
        let force = self.formatting()
            && matches!(op, BinaryOp::And | BinaryOp::Or)
            && self.comment_between(&spans);
        let mut pieces = pieces.into_iter();
        let first = pieces.next().map_or_else(nil, |(_, d, _)| d);
        // Only `and` and `or` break a line; other operators stay with their operands, and long
        // arithmetic breaks inside its calls.
        let logical = matches!(op, BinaryOp::And | BinaryOp::Or);
        // Operators are not marked: a comment next to one then belongs to an operand, and stays
        // between the two operands when the chain breaks.
        let rest: Vec<Doc> = pieces
            .map(|(op, d, _)| {
                let sym = op.map_or("", BinaryOp::symbol);
                let space = if logical { Doc::Line } else { text(" ") };
                cat(vec![space, text(sym), text(" "), d])
            })
            .collect();
        let rest = match hang {
            Hang::Indent => indent(cat(rest)),
            Hang::Aligned => cat(rest),
        };
        group_if(cat(vec![first, rest]), force)
    }

    /// The operands of a run of operators of level `at`, left to right.
    pub(super) fn collect(&self, e: &Expr, at: u8, out: &mut Vec<Piece>) {
        let ExprKind::Binary { op, lhs, rhs, .. } = &e.kind else {
            return;
        };
        let l = self.peel(lhs);
        let left_parens = self.needs_parens_left(l, *op);
        let same_level =
            matches!(&l.kind, ExprKind::Binary { op: lop, .. } if binary_level(*lop) == at);
        if !left_parens && same_level {
            self.collect(l, at, out);
        } else {
            out.push((None, self.operand(l, left_parens), lhs.span));
        }
        let right_parens = self.needs_parens_right(rhs, *op);
        out.push((Some(*op), self.operand(rhs, right_parens), rhs.span));
    }

    /// `if a then b else c`, with `else if` chains: on one line, or broken before each `else`.
    pub(super) fn if_chain(&self, e: &Expr) -> Doc {
        let mut parts = Vec::new();
        let mut spans = Vec::new();
        let mut cur = e;
        let last = loop {
            let ExprKind::If {
                cond,
                then,
                otherwise,
            } = &cur.kind
            else {
                break cur;
            };
            if !parts.is_empty() {
                parts.push(Doc::Line);
                parts.push(text("else "));
            }
            parts.push(text("if "));
            parts.push(self.expr(cond));
            parts.push(text(" then "));
            parts.push(self.expr(then));
            spans.push(cond.span);
            spans.push(then.span);
            let next = self.peel(otherwise);
            if matches!(next.kind, ExprKind::If { .. }) {
                cur = next;
            } else {
                break otherwise;
            }
        };
        spans.push(last.span);
        parts.push(Doc::Line);
        parts.push(text("else "));
        parts.push(self.expr(last));
        let force = self.formatting() && self.comment_between(&spans);
        align(group_if(cat(parts), force))
    }

    /// `match e { p => x, ... }`: on one line when it fits, else one arm a line.
    pub(super) fn match_expr(&self, e: &Expr, scrutinee: &Expr, arms: &[MatchArm]) -> Doc {
        let docs: Vec<Doc> = arms
            .iter()
            .map(|a| {
                let pattern = if a.patterns.is_empty() {
                    text("_")
                } else {
                    let mut ps = Vec::new();
                    for (i, p) in a.patterns.iter().enumerate() {
                        if i > 0 {
                            ps.push(text(" | "));
                        }
                        ps.push(self.literal(p));
                    }
                    cat(ps)
                };
                cat(vec![pattern, text(" => "), self.expr(&a.body)])
            })
            .collect();
        let arm_spans: Vec<Span> = arms.iter().map(|a| a.span).collect();
        // Four arms or more read as a table: one arm a line. (Only when formatting: the
        // canonical text, which the policy hash is taken of, keeps its layout.)
        let force = self.formatting()
            && (arms.len() >= TABLE_ARMS
                || self.comment_outside_parts(scrutinee.span.end, e.span, &arm_spans));
        cat(vec![
            text("match "),
            self.expr(scrutinee),
            text(" "),
            self.delimited(
                "{",
                Self::separated(docs, ","),
                ",",
                cat(vec![self.close_mark(e.span, b'}'), text("}")]),
                true,
                force,
            ),
        ])
    }

    /// A `when` chain: one arm a line, aligned.
    pub(super) fn when_chain(&self, arms: &[WhenArm], otherwise: Option<&Expr>) -> Doc {
        let mut parts = Vec::new();
        for (i, arm) in arms.iter().enumerate() {
            if i > 0 {
                parts.push(Doc::HardLine);
            }
            // A body that ends in a `when` chain would take the arms after it.
            let followed = i + 1 < arms.len() || otherwise.is_some();
            let parens = followed && self.ends_in_when(&arm.body);
            parts.push(text("when "));
            parts.push(self.expr(&arm.condition));
            parts.push(text(" => "));
            parts.push(self.operand(&arm.body, parens));
        }
        if let Some(o) = otherwise {
            if !arms.is_empty() {
                parts.push(Doc::HardLine);
            }
            parts.push(text("otherwise => "));
            parts.push(self.expr(o));
        }
        align(cat(parts))
    }
}
