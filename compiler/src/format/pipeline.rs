//! The printer of pipelines: data blocks and clean rules, teachers, the student, quantization and
//! monitors.

use super::*;

impl Printer<'_> {
    // ---- pipelines

    pub(super) fn pipeline(&self, p: &PipelineDecl) -> Doc {
        let head = cat(vec![
            self.docs(&p.docs),
            self.keyword(p.span, "pipeline"),
            text(" "),
            self.ident(&p.name),
            text(" for "),
            self.ident(&p.policy),
        ]);
        let mut entries = Vec::new();
        for d in &p.data {
            entries.push(Entry::new(d.span.start, self.data_block(d)));
        }
        for t in &p.teachers {
            entries.push(Entry::new(t.span.start, self.teacher(t)));
        }
        for s in &p.students {
            entries.push(Entry::new(s.span.start, self.student(s)));
        }
        for q in &p.quantize {
            entries.push(Entry::new(q.span.start, self.quantize(q)));
        }
        for m in &p.monitors {
            entries.push(Entry::new(m.span.start, self.monitor(m)));
        }
        self.block(head, entries, p.span)
    }

    /// The docs in front of a pipeline node the tree keeps no docs for, and its keyword.
    pub(super) fn head_with_docs(&self, span: Span, word: &str) -> Doc {
        let (lines, docs) = self.source_docs(span);
        cat(vec![self.doc_lines(&lines, docs), self.keyword(span, word)])
    }

    pub(super) fn data_block(&self, d: &DataBlock) -> Doc {
        let head = self.head_with_docs(d.span, "data");
        let name_width = d
            .sources
            .iter()
            .filter(|s| !s.unlabeled)
            .map(|s| s.name.name.chars().count())
            .max()
            .unwrap_or(0);
        let mut entries = Vec::new();
        for s in &d.sources {
            let (lines, docs) = self.source_docs(s.span);
            let (keyword, pad) = if s.unlabeled {
                (text("unlabeled "), 1)
            } else {
                (nil(), name_width + 1 - s.name.name.chars().count())
            };
            let line = cat(vec![
                self.doc_lines(&lines, docs),
                keyword,
                self.ident(&s.name),
                text(" ".repeat(pad)),
                self.mark(s.path_span),
                text(quote(&s.path)),
            ]);
            let doc = if s.clean.is_empty() {
                line
            } else {
                let rules = s
                    .clean
                    .iter()
                    .map(|c| {
                        let span = match c {
                            CleanRule::DropWhen { span, .. }
                            | CleanRule::OutliersSigma { span, .. }
                            | CleanRule::OutliersQuantile { span, .. }
                            | CleanRule::Duplicates { span, .. } => *span,
                        };
                        Entry::new(span.start, self.clean_rule(c, span))
                    })
                    .collect();
                self.block(cat(vec![line, text(" clean")]), rules, s.span)
            };
            entries.push(Entry::new(s.span.start, doc));
        }
        for s in &d.synthetic {
            entries.push(Entry::new(
                s.span.start,
                cat(vec![
                    self.head_with_docs(s.span, "synthetic"),
                    text(" from "),
                    self.ident(&s.from),
                    text(" "),
                    self.settings(&s.settings),
                ]),
            ));
        }
        for m in &d.mixes {
            let mut parts = vec![self.head_with_docs(m.span, "mix")];
            for (name, share, span) in &m.shares {
                parts.push(text(" "));
                parts.push(self.ident(name));
                parts.push(text(" "));
                parts.push(self.last_token(*span));
                parts.push(text(format!("{}%", percent(*share))));
            }
            entries.push(Entry::new(m.span.start, cat(parts)));
        }
        for s in &d.splits {
            let seed = s.seed.map_or(String::new(), |n| format!(" seed {n}"));
            entries.push(Entry::new(
                s.span.start,
                cat(vec![
                    self.head_with_docs(s.span, "split"),
                    text(" validation "),
                    self.mark(s.validation_span),
                    text(format!("{}%{seed}", percent(s.validation))),
                ]),
            ));
        }
        self.block(head, entries, d.span)
    }

    pub(super) fn clean_rule(&self, c: &CleanRule, span: Span) -> Doc {
        let drop = self.keyword(span, "drop");
        match c {
            CleanRule::DropWhen {
                name, condition, ..
            } => cat(vec![
                drop,
                text(" "),
                self.ident(name),
                text(" when "),
                self.expr(condition),
            ]),
            CleanRule::OutliersSigma { field, sigma, .. } => cat(vec![
                drop,
                text(" outliers "),
                self.ident(field),
                text(format!(" beyond {} sigma", number(*sigma))),
            ]),
            CleanRule::OutliersQuantile {
                field, quantile, ..
            } => cat(vec![
                drop,
                text(" outliers "),
                self.ident(field),
                text(format!(" above quantile {}", number(*quantile))),
            ]),
            CleanRule::Duplicates { on, .. } => {
                let mut parts = vec![drop, text(" duplicates")];
                if !on.is_empty() {
                    parts.push(text(" on "));
                    parts.push(self.comma_list(on.iter().map(|n| self.ident(n)).collect()));
                }
                cat(parts)
            }
        }
    }

    /// `{ key value, ... }` on one line.
    pub(super) fn settings(&self, settings: &[Setting]) -> Doc {
        if settings.is_empty() {
            return text("{}");
        }
        let items = settings.iter().map(|s| self.setting(s)).collect();
        cat(vec![text("{ "), self.comma_list(items), text(" }")])
    }

    pub(super) fn setting(&self, s: &Setting) -> Doc {
        let value = match &s.value {
            SettingValue::Number(v) => self.numeral(*v, s.value_span),
            SettingValue::Percent(v) => format!("{}%", percent(*v)),
            SettingValue::Duration(ms) => self.duration_at(*ms, s.value_span),
            SettingValue::String(v) => quote(v),
            SettingValue::Bool(b) => b.to_string(),
            SettingValue::Name(n) => n.clone(),
        };
        cat(vec![
            self.ident(&s.key),
            text(" "),
            self.mark(s.value_span),
            text(value),
        ])
    }

    pub(super) fn model(&self, m: &ModelSpec) -> Doc {
        match m {
            ModelSpec::Encoder { settings, span } => cat(vec![
                text("model "),
                self.keyword(*span, "encoder"),
                text(" "),
                self.settings(settings),
                self.close_mark(*span, b'}'),
            ]),
            ModelSpec::Init { path, span } => cat(vec![
                text("model "),
                self.keyword(*span, "init"),
                text(format!(" {}", quote(path))),
            ]),
            ModelSpec::FromTeacher { teacher, span } => cat(vec![
                text("model "),
                self.keyword(*span, "from"),
                text(" teacher "),
                self.ident(teacher),
            ]),
        }
    }

    pub(super) fn loss(&self, l: &LossDecl, keyword: bool) -> Doc {
        let mut parts = Vec::new();
        if keyword {
            parts.push(self.keyword(l.span, "loss"));
            parts.push(text(" "));
        }
        parts.push(self.ident(&l.kind));
        if let Some((t, span)) = l.temperature {
            parts.push(text(" temperature "));
            parts.push(self.mark(span));
            parts.push(text(self.numeral(t, span)));
        }
        cat(parts)
    }

    /// `features [...]` or `reads [...]`: on one line when it fits, else one input a line.
    pub(super) fn input_list(&self, keyword: &str, inputs: &[Ident]) -> Doc {
        let names = inputs.iter().map(|n| self.ident(n)).collect();
        // Comments before the first input (after the keyword or the bracket) go above the
        // statement, where they stay when formatted again.
        let lead = inputs.first().map_or_else(nil, |n| self.mark(n.span));
        group(cat(vec![
            lead,
            text(format!("{keyword} [")),
            indent(cat(vec![
                Doc::SoftLine,
                join(names, ","),
                if_break(text(","), nil()),
            ])),
            Doc::SoftLine,
            text("]"),
        ]))
    }

    pub(super) fn names(&self, names: &[Ident]) -> Doc {
        self.comma_list(names.iter().map(|n| self.ident(n)).collect())
    }

    pub(super) fn regularize(&self, settings: &[Setting]) -> Doc {
        let mut parts = vec![text("regularize")];
        for r in settings {
            parts.push(text(" "));
            parts.push(self.setting(r));
        }
        cat(parts)
    }

    pub(super) fn teacher(&self, t: &TeacherDecl) -> Doc {
        let head = cat(vec![
            self.docs(&t.docs),
            self.keyword(t.span, "teacher"),
            text(" "),
            self.ident(&t.name),
        ]);
        let mut entries: Vec<Entry> = t.model.iter().map(|m| Entry::bare(self.model(m))).collect();
        if !t.predicts.is_empty() {
            entries.push(Entry::bare(cat(vec![
                text("predicts "),
                self.names(&t.predicts),
            ])));
        }
        if let Some(l) = &t.loss {
            entries.push(Entry::new(l.span.start, self.loss(l, true)));
        }
        if !t.train.is_empty() {
            entries.push(Entry::bare(cat(vec![
                text("train "),
                self.settings(&t.train),
            ])));
        }
        if !t.regularize.is_empty() {
            entries.push(Entry::bare(self.regularize(&t.regularize)));
        }
        if !t.reads.is_empty() || t.reads_span.is_some() {
            entries.push(Entry::bare(self.input_list("reads", &t.reads)));
        }
        if !t.features.is_empty() {
            entries.push(Entry::bare(self.input_list("features", &t.features)));
        }
        self.block(head, entries, t.span)
    }

    pub(super) fn student(&self, s: &StudentDecl) -> Doc {
        let head = cat(vec![self.docs(&s.docs), self.keyword(s.span, "student")]);
        let mut entries: Vec<Entry> = s.model.iter().map(|m| Entry::bare(self.model(m))).collect();
        // `distill TEACHER weight W loss L` and `learn SOURCE weight W loss L`, each kind's
        // names padded to one width so that their weights line up.
        let terms = [
            (
                "distill",
                s.distill
                    .iter()
                    .map(|d| (d.span, &d.teacher, d.weight, d.weight_span, &d.loss))
                    .collect::<Vec<_>>(),
            ),
            (
                "learn",
                s.learn
                    .iter()
                    .map(|l| (l.span, &l.from, l.weight, l.weight_span, &l.loss))
                    .collect(),
            ),
        ];
        for (keyword, lines) in terms {
            let width = lines
                .iter()
                .map(|(_, name, ..)| name.name.chars().count())
                .max()
                .unwrap_or(0);
            for (span, name, weight, weight_span, loss) in lines {
                let pad = width + 1 - name.name.chars().count();
                entries.push(Entry::new(
                    span.start,
                    cat(vec![
                        self.keyword(span, keyword),
                        text(" "),
                        self.ident(name),
                        text(" ".repeat(pad)),
                        text("weight "),
                        self.mark(weight_span),
                        text(self.numeral(weight, weight_span)),
                        text(" loss "),
                        self.loss(loss, false),
                    ]),
                ));
            }
        }
        for d in &s.drift {
            let mut parts = vec![
                self.keyword(d.span, "drift"),
                text(" penalty "),
                self.mark(d.weight_span),
                text(self.numeral(d.weight, d.weight_span)),
                text(" tolerance "),
                self.mark(d.tolerance_span),
                text(self.numeral(d.tolerance, d.tolerance_span)),
            ];
            if let Some((n, span)) = d.rebalance_every {
                parts.push(text(" rebalance every "));
                parts.push(self.mark(span));
                parts.push(text(format!("{n} epochs")));
            }
            if let Some(a) = &d.against {
                parts.push(text(" against "));
                parts.push(self.ident(a));
            }
            entries.push(Entry::new(d.span.start, cat(parts)));
        }
        if !s.regularize.is_empty() {
            entries.push(Entry::bare(self.regularize(&s.regularize)));
        }
        if let Some(e) = &s.early_stop {
            entries.push(Entry::new(
                e.span.start,
                cat(vec![
                    self.keyword(e.span, "early_stop"),
                    text(" on "),
                    self.ident(&e.metric),
                    text(format!(" patience {}", e.patience)),
                ]),
            ));
        }
        if !s.train.is_empty() {
            entries.push(Entry::bare(cat(vec![
                text("train "),
                self.settings(&s.train),
            ])));
        }
        if !s.reads.is_empty() || s.reads_span.is_some() {
            entries.push(Entry::bare(self.input_list("reads", &s.reads)));
        }
        if !s.features.is_empty() {
            entries.push(Entry::bare(self.input_list("features", &s.features)));
        }
        self.block(head, entries, s.span)
    }

    pub(super) fn quantize(&self, q: &QuantizeDecl) -> Doc {
        let mut parts = vec![
            self.head_with_docs(q.span, "quantize"),
            text(" "),
            self.ident(&q.scheme),
        ];
        if let Some((v, span)) = q.prune_heads_below {
            parts.push(text(" { prune heads below "));
            parts.push(self.mark(span));
            parts.push(text(format!("{} ", self.numeral(v, span))));
            parts.push(self.close_mark(q.span, b'}'));
            parts.push(text("}"));
        }
        cat(parts)
    }

    pub(super) fn monitor(&self, m: &MonitorDecl) -> Doc {
        let head = self.head_with_docs(m.span, "monitor");
        let alerts = m
            .alerts
            .iter()
            .map(|a| {
                let threshold = match a.threshold {
                    Threshold::Number(v) => self.numeral(v, a.threshold_span),
                    Threshold::Percent(v) => format!("{}%", percent(v)),
                    Threshold::Duration(ms) => self.duration_at(ms, a.threshold_span),
                };
                Entry::new(
                    a.span.start,
                    cat(vec![
                        self.head_with_docs(a.span, "alert"),
                        text(" "),
                        self.ident(&a.metric),
                        text(format!(" {} ", a.op.symbol())),
                        self.mark(a.threshold_span),
                        text(threshold),
                    ]),
                )
            })
            .collect();
        self.block(head, alerts, m.span)
    }
}
