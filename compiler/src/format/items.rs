//! The printer of files and policy items: headers, uses, entities, enums, tables, functions,
//! dimensions, grades, rules, examples and literals.

use super::*;

impl Printer<'_> {
    // ---- files and items

    pub(super) fn file(&self, tree: &SourceTree) -> Doc {
        let mut parts = Vec::new();
        for (i, item) in tree.items.iter().enumerate() {
            let start = match item {
                TopItem::Policy(p) => p.span.start,
                TopItem::Module(m) => m.span.start,
                TopItem::Pipeline(p) => p.span.start,
            };
            if i > 0 {
                parts.push(Doc::HardLine);
            }
            parts.push(self.separator(Some(start), i > 0));
            parts.push(match item {
                TopItem::Policy(p) => self.policy(p),
                TopItem::Module(m) => self.module(m),
                TopItem::Pipeline(p) => self.pipeline(p),
            });
        }
        cat(parts)
    }

    pub(super) fn policy(&self, p: &PolicyDecl) -> Doc {
        let head = cat(vec![
            self.docs(&p.docs),
            self.keyword(p.span, "policy"),
            text(" "),
            self.ident(&p.name),
            text(format!(" version {}", p.version)),
        ]);
        self.block(head, self.items(&p.items), p.span)
    }

    pub(super) fn module(&self, m: &ModuleDecl) -> Doc {
        let head = cat(vec![
            self.docs(&m.docs),
            self.keyword(m.span, "module"),
            text(" "),
            self.mark(m.path.span),
            text(&m.path.raw),
        ]);
        self.block(head, self.items(&m.items), m.span)
    }

    pub(super) fn items(&self, items: &[Item]) -> Vec<Entry> {
        let mut out = Vec::with_capacity(items.len());
        let mut prev_use = false;
        for item in items {
            let is_use = matches!(item, Item::Use(_));
            out.push(Entry {
                start: Some(item.span().start),
                spaced: !(is_use && prev_use),
                doc: self.item(item),
            });
            prev_use = is_use;
        }
        out
    }

    pub(super) fn item(&self, item: &Item) -> Doc {
        match item {
            Item::Use(u) => self.use_decl(u),
            Item::Entity(e) => self.entity(e),
            Item::Enum(e) => self.enum_decl(e),
            Item::Pair(p) => cat(vec![
                self.docs(&p.docs),
                self.keyword(p.span, "pair"),
                text(" "),
                self.role(&p.query),
                text(", "),
                self.role(&p.candidate),
            ]),
            Item::Table(t) => self.table(t),
            Item::Fn(f) => self.fn_decl(f),
            Item::Dimension(d) => self.dimension(d),
            Item::Rule(r) => self.rule(r),
            Item::OverallGrade(g) => self.grade_block(g, true),
            Item::Example(e) => self.example(e),
            Item::MinCoverage(m) => {
                let (lines, docs) = self.source_docs(m.span);
                cat(vec![
                    self.doc_lines(&lines, docs),
                    self.keyword(m.span, "min_coverage"),
                    text(format!(" {}%", percent(m.value))),
                ])
            }
        }
    }

    pub(super) fn role(&self, r: &Role) -> Doc {
        cat(vec![self.ident(&r.name), text(": "), self.ident(&r.entity)])
    }

    pub(super) fn use_decl(&self, u: &UseDecl) -> Doc {
        let names = u.names.iter().map(|n| self.ident(n)).collect();
        let force = self.formatting() && self.comment_within(u.path.span.end, u.span.end);
        cat(vec![
            self.docs(&u.docs),
            self.keyword(u.span, "use"),
            text(" "),
            self.mark(u.path.span),
            text(format!("{}.", u.path.raw)),
            self.delimited(
                "{",
                Self::separated(names, ","),
                ",",
                cat(vec![self.close_mark(u.span, b'}'), text("}")]),
                false,
                force,
            ),
        ])
    }

    pub(super) fn type_expr(&self, t: &TypeExpr) -> Doc {
        let mut parts = vec![self.ident(&t.name)];
        if let Some(arg) = &t.arg {
            parts.push(text("<"));
            parts.push(self.type_expr(arg));
            parts.push(text(">"));
        }
        if t.optional {
            parts.push(text("?"));
        }
        cat(parts)
    }

    pub(super) fn entity(&self, e: &EntityDecl) -> Doc {
        let head = cat(vec![
            self.docs(&e.docs),
            self.keyword(e.span, "entity"),
            text(" "),
            self.ident(&e.name),
        ]);
        let fields = e
            .fields
            .iter()
            .map(|f| {
                Entry::new(
                    f.span.start,
                    cat(vec![
                        self.docs(&f.docs),
                        self.ident(&f.name),
                        text(": "),
                        self.type_expr(&f.ty),
                    ]),
                )
            })
            .collect();
        self.block(head, fields, e.span)
    }

    pub(super) fn enum_decl(&self, e: &EnumDecl) -> Doc {
        let n = e.variants.len();
        let mut items = Vec::with_capacity(n);
        for (i, v) in e.variants.iter().enumerate() {
            let item = cat(vec![self.docs(&v.docs), self.ident(&v.name)]);
            if i + 1 < n {
                let sep = self.enum_separator(e, i);
                items.push(cat(vec![item, text(sep), Doc::Line]));
            } else {
                items.push(item);
            }
        }
        let trailing = if e.ordered { "" } else { "," };
        let force = self.formatting() && self.comment_within(e.name.span.end, e.span.end);
        cat(vec![
            self.docs(&e.docs),
            self.keyword(e.span, "enum"),
            text(" "),
            self.ident(&e.name),
            text(" "),
            self.delimited(
                "{",
                items,
                trailing,
                cat(vec![self.close_mark(e.span, b'}'), text("}")]),
                true,
                force,
            ),
        ])
    }

    /// The separator after the `i`th value: `<` or `,` as the enum is ordered. An enum that mixes
    /// them (an error the checker reports) keeps its own when formatting; its canonical text says
    /// `<` first and `,` after.
    pub(super) fn enum_separator(&self, e: &EnumDecl, i: usize) -> &'static str {
        let ordered = if e.mixed_separators.is_none() {
            e.ordered
        } else if let (Some(src), Some(v)) = (self.src, e.variants.get(i)) {
            let at = skip_trivia(src, v.name.span.end as usize);
            src.get(at..).is_some_and(|s| s.starts_with('<'))
        } else {
            i == 0
        };
        if ordered { " <" } else { "," }
    }

    pub(super) fn table(&self, t: &TableDecl) -> Doc {
        let keys = if t.keys.len() == 1 {
            cat(t.keys.iter().map(|k| self.type_expr(k)).collect())
        } else {
            let keys: Vec<Doc> = t.keys.iter().map(|k| self.type_expr(k)).collect();
            cat(vec![text("("), self.comma_list(keys), text(")")])
        };
        let head = cat(vec![
            self.docs(&t.docs),
            self.keyword(t.span, "table"),
            text(" "),
            self.ident(&t.name),
            text(": "),
            keys,
            text(" -> "),
            self.type_expr(&t.value),
            text(" default "),
            self.literal(&t.default),
        ]);
        let entries = t
            .entries
            .iter()
            .map(|entry| {
                let key = if entry.keys.len() == 1 {
                    cat(entry.keys.iter().map(|k| self.literal(k)).collect())
                } else {
                    let keys: Vec<Doc> = entry.keys.iter().map(|k| self.literal(k)).collect();
                    cat(vec![text("("), self.comma_list(keys), text(")")])
                };
                Entry::new(
                    entry.span.start,
                    cat(vec![key, text(": "), self.literal(&entry.value), text(",")]),
                )
            })
            .collect();
        self.block(head, entries, t.span)
    }

    /// `a, b, c` on one line.
    pub(super) fn comma_list(&self, items: Vec<Doc>) -> Doc {
        let mut parts = Vec::with_capacity(items.len() * 2);
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                parts.push(text(", "));
            }
            parts.push(item);
        }
        cat(parts)
    }

    pub(super) fn fn_decl(&self, f: &FnDecl) -> Doc {
        let params: Vec<Doc> = f
            .params
            .iter()
            .map(|p| cat(vec![self.ident(&p.name), text(": "), self.type_expr(&p.ty)]))
            .collect();
        let params = group(cat(vec![text("("), align(join(params, ",")), text(")")]));
        let range = match &f.declared_range {
            Some(r) => text(format!(" in [{}, {}]", number(r.lo), number(r.hi))),
            None => nil(),
        };
        cat(vec![
            self.docs(&f.docs),
            group(cat(vec![
                self.keyword(f.span, "fn"),
                text(" "),
                self.ident(&f.name),
                params,
                text(" -> "),
                self.type_expr(&f.result),
                range,
                text(" ="),
                indent(cat(vec![Doc::Line, self.expr(&f.body)])),
            ])),
        ])
    }

    pub(super) fn dimension(&self, d: &DimensionDecl) -> Doc {
        let head = cat(vec![
            self.docs(&d.docs),
            self.keyword(d.span, "dimension"),
            text(" "),
            self.ident(&d.name),
            text(" weight "),
            self.mark(d.weight_span),
            text(format!("{}%", percent(d.weight))),
        ]);
        let mut entries = Vec::new();
        for l in &d.lets {
            let binding = cat(vec![
                self.keyword(l.span, "let"),
                text(" "),
                self.ident(&l.name),
                self.assigned(&l.value),
            ]);
            entries.push(Entry::new(
                l.span.start,
                cat(vec![self.docs(&l.docs), binding]),
            ));
        }
        for s in &d.score {
            let binding = cat(vec![self.keyword(s.span, "score"), self.assigned(&s.value)]);
            entries.push(Entry::new(
                s.span.start,
                cat(vec![self.docs(&s.docs), binding]),
            ));
        }
        for g in &d.grades {
            entries.push(Entry::new(g.span.start, self.grade_block(g, false)));
        }
        self.block(head, entries, d.span)
    }

    /// ` = value` of a `let` or `score`: on the same line when it fits, else on the next line,
    /// indented. A `match` stays on the line of its `=` and breaks its arms instead.
    pub(super) fn assigned(&self, value: &Expr) -> Doc {
        if matches!(self.peel(value).kind, ExprKind::Match { .. }) {
            return cat(vec![text(" = "), self.expr(value)]);
        }
        group(cat(vec![
            text(" ="),
            indent(cat(vec![Doc::Line, self.expr(value)])),
        ]))
    }

    pub(super) fn grade_block(&self, g: &GradeBlock, overall: bool) -> Doc {
        let head = cat(vec![
            self.docs(&g.docs),
            self.keyword(g.head, "grade"),
            text(if overall { " overall" } else { "" }),
        ]);
        let name_width = g
            .bands
            .iter()
            .map(|b| b.name.name.chars().count())
            .max()
            .unwrap_or(0);
        let conditions: Vec<(Doc, usize)> = g
            .bands
            .iter()
            .map(|b| match &b.condition {
                Some(c) => {
                    let d = cat(vec![text("when "), self.expr(c)]);
                    let w = flat_width(&d);
                    (d, w)
                }
                None => (text("otherwise"), "otherwise".len()),
            })
            .collect();
        let cond_width = conditions.iter().map(|(_, w)| *w).max().unwrap_or(0);
        let entries = g
            .bands
            .iter()
            .zip(conditions)
            .map(|(b, (cond, w))| {
                let pad = name_width + 1 - b.name.name.chars().count();
                let mut parts = vec![
                    self.docs(&b.docs),
                    self.ident(&b.name),
                    text(" ".repeat(pad)),
                    cond,
                ];
                if let Some(desc) = &b.description {
                    parts.push(text(" ".repeat(cond_width + 2 - w)));
                    parts.push(text(quote(desc)));
                }
                Entry::new(b.span.start, cat(parts))
            })
            .collect();
        self.block(head, entries, g.span)
    }

    pub(super) fn rule(&self, r: &RuleDecl) -> Doc {
        let head = cat(vec![
            self.docs(&r.docs),
            self.keyword(r.span, "rule"),
            text(" "),
            self.ident(&r.name),
        ]);
        let threshold = |v: f64| {
            let written = self
                .src
                .and_then(|s| s.get(r.action_span.range()))
                .map(str::trim_end);
            let last = written
                .and_then(|t| t.rsplit(char::is_whitespace).next())
                .unwrap_or_default();
            if last.ends_with('%') {
                format!("{}%", percent(v))
            } else if with_trailing_zeros(last, &number(v)) {
                last.to_string()
            } else {
                number(v)
            }
        };
        let value = |v: f64| cat(vec![self.last_token(r.action_span), text(threshold(v))]);
        let action = match &r.action {
            RuleAction::Cap(v) => cat(vec![
                self.keyword(r.action_span, "cap"),
                text(" overall at "),
                value(*v),
            ]),
            RuleAction::Floor(v) => cat(vec![
                self.keyword(r.action_span, "floor"),
                text(" overall at "),
                value(*v),
            ]),
            RuleAction::Exclude => self.keyword(r.action_span, "exclude"),
            RuleAction::SetGrade(g) => cat(vec![
                self.keyword(r.action_span, "set"),
                text(" grade "),
                self.ident(g),
            ]),
        };
        let mut entries = vec![
            Entry::bare(cat(vec![text("when "), self.expr(&r.condition)])),
            Entry::bare(action),
        ];
        if let Some(reason) = &r.because {
            let (keyword, string) = self.because_marks(r);
            entries.push(Entry::bare(cat(vec![
                keyword,
                text("because "),
                string,
                text(quote(reason)),
            ])));
        }
        self.block(head, entries, r.span)
    }

    /// Marks the last token of `span` (a number after keywords, where a comment may sit between
    /// them).
    pub(super) fn last_token(&self, span: Span) -> Doc {
        let Some(text) = self.src.and_then(|s| s.get(span.range())) else {
            return nil();
        };
        let len = text.len() - text.trim_end_matches(|c: char| !c.is_whitespace()).len();
        match u32::try_from(len) {
            Ok(len) if len > 0 => Doc::Mark(span.end - len, span.end),
            _ => nil(),
        }
    }

    /// Marks `because` and its string, which the tree keeps without spans.
    pub(super) fn because_marks(&self, r: &RuleDecl) -> (Doc, Doc) {
        let Some(src) = self.src else {
            return (nil(), nil());
        };
        let at = skip_trivia(src, r.action_span.end as usize);
        if !src.get(at..).is_some_and(|s| s.starts_with("because")) {
            return (nil(), nil());
        }
        let string_at = skip_trivia(src, at + "because".len());
        let keyword = self.mark(Span::new(r.span.file, at, at + "because".len()));
        match string_end(src, string_at) {
            Some(end) => (keyword, self.mark(Span::new(r.span.file, string_at, end))),
            None => (keyword, nil()),
        }
    }

    pub(super) fn example(&self, e: &ExampleDecl) -> Doc {
        let head = cat(vec![
            self.docs(&e.docs),
            self.keyword(e.span, "example"),
            text(" "),
            self.mark(e.name_span),
            text(quote(&e.name)),
        ]);
        let mut entries = Vec::new();
        for r in &e.records {
            entries.push(Entry::new(r.span.start, self.record(r)));
        }
        for x in &e.expectations {
            let span = match x {
                Expectation::Compare { span, .. } | Expectation::Rule { span, .. } => *span,
            };
            entries.push(Entry::new(span.start, self.expectation(x)));
        }
        self.block(head, entries, e.span)
    }

    pub(super) fn record(&self, r: &ExampleRecord) -> Doc {
        let fields: Vec<Doc> = r
            .fields
            .iter()
            .map(|f| {
                cat(vec![
                    self.ident(&f.name),
                    text(": "),
                    self.literal(&f.value),
                ])
            })
            .collect();
        let close = cat(vec![self.close_mark(r.span, b'}'), text("}")]);
        if fields.is_empty() {
            return cat(vec![self.ident(&r.role), text(" {"), close]);
        }
        let field_spans: Vec<Span> = r
            .fields
            .iter()
            .map(|f| f.name.span.to(f.value.span))
            .collect();
        let force =
            self.formatting() && self.comment_outside_parts(r.role.span.end, r.span, &field_spans);
        cat(vec![
            self.ident(&r.role),
            text(" "),
            self.delimited("{", Self::separated(fields, ","), ",", close, true, force),
        ])
    }

    pub(super) fn expectation(&self, x: &Expectation) -> Doc {
        match x {
            Expectation::Compare {
                target,
                op,
                value,
                span,
            } => {
                let who = match &target.dimension {
                    Some(d) => self.ident(d),
                    None => self.keyword(target.span, "overall"),
                };
                cat(vec![
                    self.keyword(*span, "expect"),
                    text(" "),
                    who,
                    text(if target.grade { ".grade" } else { "" }),
                    text(format!(" {} ", op.symbol())),
                    self.literal(value),
                ])
            }
            Expectation::Rule { rule, fires, span } => cat(vec![
                self.keyword(*span, "expect"),
                text(" rule "),
                self.ident(rule),
                text(if *fires { " fires" } else { " does not fire" }),
            ]),
        }
    }

    // ---- literals

    pub(super) fn literal(&self, l: &Literal) -> Doc {
        match &l.kind {
            LiteralKind::List(items) => {
                let spans: Vec<Span> = items.iter().map(|i| i.span).collect();
                let force = self.formatting() && self.comment_between(&spans);
                let items: Vec<Doc> = items.iter().map(|i| self.literal(i)).collect();
                cat(vec![
                    self.mark_char(l.span.start, b'['),
                    group_if(
                        cat(vec![text("["), align(join(items, ",")), text("]")]),
                        force,
                    ),
                    self.close_mark(l.span, b']'),
                ])
            }
            LiteralKind::Name(parts) => {
                let mut out = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push(text("."));
                    }
                    out.push(self.ident(p));
                }
                cat(out)
            }
            LiteralKind::Number(v) => cat(vec![self.mark(l.span), text(self.numeral(*v, l.span))]),
            _ => cat(vec![self.mark(l.span), text(literal_atom(l))]),
        }
    }

    /// A duration, in the unit the author wrote when formatting.
    pub(super) fn duration_at(&self, ms: f64, span: Span) -> String {
        let unit = self
            .src
            .and_then(|s| s.get(span.range()))
            .map(|t| t.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.'));
        duration(ms, unit)
    }
}
