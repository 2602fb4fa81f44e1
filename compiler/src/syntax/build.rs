//! Builds the typed syntax tree from pest's pairs: one `build` method per grammar rule, each
//! returning a node with its span. Literals that cannot be read become diagnostics here.

use super::Rule;
use super::ast::*;
use crate::diagnostics::{Code, Diagnostic, Diagnostics};
use crate::source::{FileId, Span};
use pest::iterators::Pair;

pub(crate) struct Builder {
    file: FileId,
    base: usize,
    pub(super) max_depth: u32,
    pub(super) diagnostics: Diagnostics,
}

impl Builder {
    pub fn new(file: FileId, base: usize, max_depth: u32) -> Self {
        Builder {
            file,
            base,
            max_depth,
            diagnostics: Diagnostics::new(),
        }
    }

    pub fn finish(self) -> Diagnostics {
        self.diagnostics
    }

    /// The span of a pair, without the blanks and `//` comments pest's implicit whitespace may
    /// leave at its end (so an underline never runs onto the next line).
    pub(super) fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        // A doc comment is itself `///...`: only blanks are trimmed from it.
        let len = if pair.as_rule() == Rule::doc {
            pair.as_str().trim_end().len()
        } else {
            trimmed_len(pair.as_str())
        };
        Span::new(
            self.file,
            self.base + s.start(),
            self.base + s.start() + len,
        )
    }

    pub(super) fn error(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn ident(&self, pair: &Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    /// The first child that is a name or identifier.
    fn first_name(&self, pair: &Pair<'_, Rule>) -> Option<Ident> {
        pair.clone()
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::name | Rule::ident))
            .map(|p| self.ident(&p))
    }

    fn names(&self, pair: &Pair<'_, Rule>) -> Vec<Ident> {
        pair.clone()
            .into_inner()
            .filter(|p| matches!(p.as_rule(), Rule::name | Rule::ident))
            .map(|p| self.ident(&p))
            .collect()
    }

    fn docs(&self, pair: &Pair<'_, Rule>) -> Docs {
        let mut docs = Docs::default();
        for p in pair
            .clone()
            .into_inner()
            .filter(|p| p.as_rule() == Rule::doc)
        {
            let text = p.as_str().trim_start_matches("///");
            let text = text.strip_prefix(' ').unwrap_or(text).trim_end();
            docs.lines.push(text.to_string());
            let span = self.span(&p);
            docs.span = Some(docs.span.map_or(span, |s| s.to(span)));
        }
        docs
    }

    // -----------------------------------------------------------------------------------------
    // Files and top-level items

    pub fn file(&mut self, pair: Pair<'_, Rule>) -> Vec<TopItem> {
        let mut items = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::policy => items.push(TopItem::Policy(self.policy(p))),
                Rule::module => items.push(TopItem::Module(self.module(p))),
                Rule::pipeline => items.push(TopItem::Pipeline(self.pipeline(p))),
                _ => {}
            }
        }
        items
    }

    /// Builds an item parsed on its own during recovery, to surface its literal errors.
    pub fn alone(&mut self, pair: Pair<'_, Rule>) {
        for p in pair.into_inner() {
            if let Some(item) = self.policy_item(p.clone()) {
                drop(item);
            } else {
                let mut pipeline = empty_pipeline(self.span(&p));
                self.pipeline_item(p, &mut pipeline);
            }
        }
    }

    fn policy(&mut self, pair: Pair<'_, Rule>) -> PolicyDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut name = None;
        let mut version = 0;
        let mut items = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::policy_header => {
                    for h in p.into_inner() {
                        match h.as_rule() {
                            Rule::name => name = Some(self.ident(&h)),
                            Rule::integer => version = self.integer(&h),
                            _ => {}
                        }
                    }
                }
                _ => {
                    if let Some(item) = self.policy_item(p) {
                        items.push(item);
                    }
                }
            }
        }
        PolicyDecl {
            docs,
            name: name.unwrap_or_else(|| missing_ident(span)),
            version,
            items,
            span,
        }
    }

    fn module(&mut self, pair: Pair<'_, Rule>) -> ModuleDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut path = ModulePath {
            raw: String::new(),
            span,
        };
        let mut items = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::module_header => {
                    if let Some(m) = p.into_inner().find(|h| h.as_rule() == Rule::module_path) {
                        path = self.module_path(&m);
                    }
                }
                _ => {
                    if let Some(item) = self.policy_item(p) {
                        items.push(item);
                    }
                }
            }
        }
        ModuleDecl {
            docs,
            path,
            items,
            span,
        }
    }

    fn module_path(&self, pair: &Pair<'_, Rule>) -> ModulePath {
        ModulePath {
            raw: pair.as_str().to_string(),
            span: self.span(pair),
        }
    }

    fn policy_item(&mut self, pair: Pair<'_, Rule>) -> Option<Item> {
        Some(match pair.as_rule() {
            Rule::use_decl => Item::Use(self.use_decl(pair)),
            Rule::entity_decl => Item::Entity(self.entity(pair)),
            Rule::enum_decl => Item::Enum(self.enum_decl(pair)),
            Rule::pair_decl => Item::Pair(self.pair_decl(pair)),
            Rule::table_decl => Item::Table(self.table(pair)),
            Rule::fn_decl => Item::Fn(self.fn_decl(pair)),
            Rule::dimension_decl => Item::Dimension(self.dimension(pair)),
            Rule::rule_decl => Item::Rule(self.rule(pair)),
            Rule::overall_grade => Item::OverallGrade(self.grade_block(pair)),
            Rule::example_decl => Item::Example(self.example(pair)),
            Rule::min_coverage_decl => {
                let span = self.span(&pair);
                let value = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::percent)
                    .map_or(0.0, |p| self.percent(&p));
                Item::MinCoverage(MinCoverageDecl { value, span })
            }
            _ => return None,
        })
    }

    fn use_decl(&mut self, pair: Pair<'_, Rule>) -> UseDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut path = ModulePath {
            raw: String::new(),
            span,
        };
        let mut names = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::module_path => path = self.module_path(&p),
                Rule::import_name => names.extend(self.first_name(&p)),
                _ => {}
            }
        }
        UseDecl {
            docs,
            path,
            names,
            span,
        }
    }

    fn entity(&mut self, pair: Pair<'_, Rule>) -> EntityDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let name = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let fields = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::field_decl)
            .map(|p| {
                let span = self.span(&p);
                let docs = self.docs(&p);
                let name = self.first_name(&p).unwrap_or_else(|| missing_ident(span));
                let ty = p
                    .into_inner()
                    .find(|t| t.as_rule() == Rule::type_expr)
                    .map_or_else(|| missing_type(span), |t| self.type_expr(t));
                FieldDecl {
                    docs,
                    name,
                    ty,
                    span,
                }
            })
            .collect();
        EntityDecl {
            docs,
            name,
            fields,
            span,
        }
    }

    fn type_expr(&self, pair: Pair<'_, Rule>) -> TypeExpr {
        let span = self.span(&pair);
        let mut name = None;
        let mut arg = None;
        let mut optional = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.ident(&p)),
                Rule::type_args => {
                    arg = p
                        .into_inner()
                        .find(|t| t.as_rule() == Rule::type_expr)
                        .map(|t| Box::new(self.type_expr(t)));
                }
                Rule::optional_mark => optional = true,
                _ => {}
            }
        }
        TypeExpr {
            name: name.unwrap_or_else(|| missing_ident(span)),
            arg,
            optional,
            span,
        }
    }

    fn enum_decl(&mut self, pair: Pair<'_, Rule>) -> EnumDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let name = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let mut variants = Vec::new();
        let mut commas = None;
        let mut angles = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::variant => {
                    let docs = self.docs(&p);
                    if let Some(name) = self.first_name(&p) {
                        variants.push(Variant { docs, name });
                    }
                }
                Rule::variant_sep => {
                    let s = self.span(&p);
                    if p.as_str() == "<" {
                        angles.get_or_insert(s);
                    } else {
                        commas.get_or_insert(s);
                    }
                }
                _ => {}
            }
        }
        let ordered = angles.is_some();
        let mixed_separators = match (commas, angles) {
            (Some(c), Some(a)) => Some(c.max(a)),
            _ => None,
        };
        EnumDecl {
            docs,
            name,
            variants,
            ordered,
            mixed_separators,
            span,
        }
    }

    fn pair_decl(&mut self, pair: Pair<'_, Rule>) -> PairDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut roles = pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::role)
            .map(|r| {
                let names = self.names(&r);
                let mut it = names.into_iter();
                let name = it.next().unwrap_or_else(|| missing_ident(span));
                let entity = it.next().unwrap_or_else(|| missing_ident(span));
                Role { name, entity }
            });
        let query = roles.next().unwrap_or_else(|| missing_role(span));
        let candidate = roles.next().unwrap_or_else(|| missing_role(span));
        PairDecl {
            docs,
            query,
            candidate,
            span,
        }
    }

    fn table(&mut self, pair: Pair<'_, Rule>) -> TableDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let name = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let mut keys = Vec::new();
        let mut value = None;
        let mut default = None;
        let mut entries = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::table_keys => {
                    keys = p
                        .into_inner()
                        .filter(|t| t.as_rule() == Rule::type_expr)
                        .map(|t| self.type_expr(t))
                        .collect();
                }
                Rule::type_expr => value = Some(self.type_expr(p)),
                Rule::table_entry => {
                    let espan = self.span(&p);
                    let mut ekeys = Vec::new();
                    let mut evalue = None;
                    for e in p.into_inner() {
                        match e.as_rule() {
                            Rule::table_key => {
                                ekeys = e.into_inner().filter_map(|k| self.literal(k)).collect();
                            }
                            _ => {
                                if let Some(l) = self.literal(e) {
                                    evalue = Some(l);
                                }
                            }
                        }
                    }
                    entries.push(TableEntry {
                        keys: ekeys,
                        value: evalue.unwrap_or_else(|| missing_literal(espan)),
                        span: espan,
                    });
                }
                _ => {
                    if default.is_none() {
                        default = self.literal(p);
                    }
                }
            }
        }
        TableDecl {
            docs,
            name,
            keys,
            value: value.unwrap_or_else(|| missing_type(span)),
            default: default.unwrap_or_else(|| missing_literal(span)),
            entries,
            span,
        }
    }

    /// A literal, or `None` when the pair is not one (keywords, punctuation).
    pub(super) fn literal(&mut self, pair: Pair<'_, Rule>) -> Option<Literal> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::percent => LiteralKind::Percent(self.percent(&pair)),
            Rule::number | Rule::signed_number => LiteralKind::Number(self.number(&pair)),
            Rule::string => LiteralKind::String(self.string(&pair)),
            Rule::boolean => LiteralKind::Bool(pair.as_str() == "true"),
            Rule::abstain => LiteralKind::Abstain,
            Rule::path | Rule::enum_value => LiteralKind::Name(self.names(&pair)),
            Rule::value_list => {
                LiteralKind::List(pair.into_inner().filter_map(|p| self.literal(p)).collect())
            }
            _ => return None,
        };
        Some(Literal { kind, span })
    }

    fn fn_decl(&mut self, pair: Pair<'_, Rule>) -> FnDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let name = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let mut params = Vec::new();
        let mut result = None;
        let mut declared_range = None;
        let mut body = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::param => {
                    let pspan = self.span(&p);
                    let pname = self.first_name(&p).unwrap_or_else(|| missing_ident(pspan));
                    let ty = p
                        .into_inner()
                        .find(|t| t.as_rule() == Rule::type_expr)
                        .map_or_else(|| missing_type(pspan), |t| self.type_expr(t));
                    params.push(Param { name: pname, ty });
                }
                Rule::type_expr => result = Some(self.type_expr(p)),
                Rule::declared_range => {
                    let rspan = self.span(&p);
                    let bounds: Vec<f64> = p
                        .into_inner()
                        .filter(|n| n.as_rule() == Rule::signed_number)
                        .map(|n| self.number(&n))
                        .collect();
                    if let [lo, hi] = bounds[..] {
                        declared_range = Some(DeclaredRange {
                            lo,
                            hi,
                            span: rspan,
                        });
                    }
                }
                Rule::expr => body = Some(self.expr(p)),
                _ => {}
            }
        }
        FnDecl {
            docs,
            name,
            params,
            result: result.unwrap_or_else(|| missing_type(span)),
            declared_range,
            body: body.unwrap_or_else(|| missing_expr(span)),
            span,
        }
    }

    fn dimension(&mut self, pair: Pair<'_, Rule>) -> DimensionDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let name = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let mut weight = 0.0;
        let mut weight_span = span;
        let mut lets = Vec::new();
        let mut score = Vec::new();
        let mut grades = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::percent => {
                    weight = self.percent(&p);
                    weight_span = self.span(&p);
                }
                Rule::let_stmt => {
                    let lspan = self.span(&p);
                    let docs = self.docs(&p);
                    let lname = self.first_name(&p).unwrap_or_else(|| missing_ident(lspan));
                    let value = p
                        .into_inner()
                        .find(|e| e.as_rule() == Rule::expr)
                        .map_or_else(|| missing_expr(lspan), |e| self.expr(e));
                    lets.push(LetStmt {
                        docs,
                        name: lname,
                        value,
                        span: lspan,
                    });
                }
                Rule::score_stmt => {
                    let sspan = self.span(&p);
                    let docs = self.docs(&p);
                    let value = p
                        .into_inner()
                        .find(|e| e.as_rule() == Rule::expr)
                        .map_or_else(|| missing_expr(sspan), |e| self.expr(e));
                    score.push(ScoreStmt {
                        docs,
                        value,
                        span: sspan,
                    });
                }
                Rule::grade_block => grades.push(self.grade_block(p)),
                _ => {}
            }
        }
        DimensionDecl {
            docs,
            name,
            weight,
            weight_span,
            lets,
            score,
            grades,
            span,
        }
    }

    fn grade_block(&mut self, pair: Pair<'_, Rule>) -> GradeBlock {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut head: Option<Span> = None;
        let mut bands = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::k_grade | Rule::k_overall => {
                    let s = self.span(&p);
                    head = Some(head.map_or(s, |h| h.to(s)));
                }
                Rule::band => {
                    let bspan = self.span(&p);
                    let docs = self.docs(&p);
                    let name = self.first_name(&p).unwrap_or_else(|| missing_ident(bspan));
                    let mut condition = None;
                    let mut description = None;
                    for b in p.into_inner() {
                        match b.as_rule() {
                            Rule::band_when => {
                                condition = b
                                    .into_inner()
                                    .find(|e| e.as_rule() == Rule::expr)
                                    .map(|e| self.expr(e));
                            }
                            Rule::string => description = Some(self.string(&b)),
                            _ => {}
                        }
                    }
                    bands.push(Band {
                        docs,
                        name,
                        condition,
                        description,
                        span: bspan,
                    });
                }
                _ => {}
            }
        }
        GradeBlock {
            docs,
            bands,
            head: head.unwrap_or(span),
            span,
        }
    }

    fn rule(&mut self, pair: Pair<'_, Rule>) -> RuleDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let name = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let mut condition = None;
        let mut action = RuleAction::Exclude;
        let mut action_span = span;
        let mut because = None;
        for p in pair.into_inner() {
            let pspan = self.span(&p);
            match p.as_rule() {
                Rule::expr => condition = Some(self.expr(p)),
                Rule::cap_action | Rule::floor_action => {
                    let is_cap = p.as_rule() == Rule::cap_action;
                    let value = p
                        .into_inner()
                        .find(|n| matches!(n.as_rule(), Rule::percent | Rule::signed_number))
                        .map_or(0.0, |n| {
                            if n.as_rule() == Rule::percent {
                                self.percent(&n)
                            } else {
                                self.number(&n)
                            }
                        });
                    action = if is_cap {
                        RuleAction::Cap(value)
                    } else {
                        RuleAction::Floor(value)
                    };
                    action_span = pspan;
                }
                Rule::exclude_action => {
                    action = RuleAction::Exclude;
                    action_span = pspan;
                }
                Rule::set_grade_action => {
                    let grade = self.first_name(&p).unwrap_or_else(|| missing_ident(pspan));
                    action = RuleAction::SetGrade(grade);
                    action_span = pspan;
                }
                Rule::because => {
                    because = p
                        .into_inner()
                        .find(|s| s.as_rule() == Rule::string)
                        .map(|s| self.string(&s));
                }
                _ => {}
            }
        }
        RuleDecl {
            docs,
            name,
            condition: condition.unwrap_or_else(|| missing_expr(span)),
            action,
            action_span,
            because,
            span,
        }
    }

    fn example(&mut self, pair: Pair<'_, Rule>) -> ExampleDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut name = String::new();
        let mut name_span = span;
        let mut records = Vec::new();
        let mut expectations = Vec::new();
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::string => {
                    name = self.string(&p);
                    name_span = self.span(&p);
                }
                Rule::example_record => {
                    let rspan = self.span(&p);
                    let role = self.first_name(&p).unwrap_or_else(|| missing_ident(rspan));
                    let mut fields = Vec::new();
                    if let Some(record) = p.into_inner().find(|r| r.as_rule() == Rule::record) {
                        for f in record
                            .into_inner()
                            .filter(|f| f.as_rule() == Rule::record_field)
                        {
                            let fspan = self.span(&f);
                            let fname = self.first_name(&f).unwrap_or_else(|| missing_ident(fspan));
                            let value = f
                                .into_inner()
                                .skip(1)
                                .find_map(|v| self.literal(v))
                                .unwrap_or_else(|| missing_literal(fspan));
                            fields.push(RecordField { name: fname, value });
                        }
                    }
                    records.push(ExampleRecord {
                        role,
                        fields,
                        span: rspan,
                    });
                }
                Rule::expectation => {
                    if let Some(e) = self.expectation(p) {
                        expectations.push(e);
                    }
                }
                _ => {}
            }
        }
        ExampleDecl {
            docs,
            name,
            name_span,
            records,
            expectations,
            span,
        }
    }

    fn expectation(&mut self, pair: Pair<'_, Rule>) -> Option<Expectation> {
        let span = self.span(&pair);
        let inner = pair
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::expect_rule | Rule::expect_compare))?;
        if inner.as_rule() == Rule::expect_rule {
            let rule = self
                .first_name(&inner)
                .unwrap_or_else(|| missing_ident(span));
            let fires = inner.into_inner().any(|p| p.as_rule() == Rule::fires);
            return Some(Expectation::Rule { rule, fires, span });
        }
        let mut target = None;
        let mut op = CompareOp::Eq;
        let mut value = None;
        for p in inner.into_inner() {
            match p.as_rule() {
                Rule::expect_target => {
                    let tspan = self.span(&p);
                    let mut dimension = None;
                    let mut grade = false;
                    for t in p.into_inner() {
                        match t.as_rule() {
                            Rule::name => dimension = Some(self.ident(&t)),
                            Rule::k_grade => grade = true,
                            _ => {}
                        }
                    }
                    target = Some(ExpectTarget {
                        dimension,
                        grade,
                        span: tspan,
                    });
                }
                Rule::compare_op => op = compare_op(&p),
                _ => {
                    if let Some(l) = self.literal(p) {
                        value = Some(l);
                    }
                }
            }
        }
        Some(Expectation::Compare {
            target: target?,
            op,
            value: value.unwrap_or_else(|| missing_literal(span)),
            span,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Pipelines

    fn pipeline(&mut self, pair: Pair<'_, Rule>) -> PipelineDecl {
        let span = self.span(&pair);
        let docs = self.docs(&pair);
        let mut decl = empty_pipeline(span);
        decl.docs = docs;
        for p in pair.into_inner() {
            if p.as_rule() == Rule::pipeline_header {
                let names = self.names(&p);
                let mut it = names.into_iter();
                if let Some(n) = it.next() {
                    decl.name = n;
                }
                if let Some(n) = it.next() {
                    decl.policy = n;
                }
            } else {
                self.pipeline_item(p, &mut decl);
            }
        }
        decl
    }

    fn pipeline_item(&mut self, pair: Pair<'_, Rule>, decl: &mut PipelineDecl) {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::data_block => {
                let mut block = DataBlock {
                    sources: Vec::new(),
                    synthetic: Vec::new(),
                    mixes: Vec::new(),
                    splits: Vec::new(),
                    span,
                };
                for p in pair.into_inner() {
                    self.data_stmt(p, &mut block);
                }
                decl.data.push(block);
            }
            Rule::teacher_block => {
                let docs = self.docs(&pair);
                let name = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let mut teacher = TeacherDecl {
                    docs,
                    name,
                    model: Vec::new(),
                    predicts: Vec::new(),
                    loss: None,
                    train: Vec::new(),
                    regularize: Vec::new(),
                    features: Vec::new(),
                    span,
                };
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::model_stmt => teacher.model.extend(self.model(p)),
                        Rule::predicts_stmt => teacher.predicts.extend(self.names(&p)),
                        Rule::loss_stmt => teacher.loss = Some(self.loss(p)),
                        Rule::train_stmt => teacher.train.extend(self.settings_of(p)),
                        Rule::regularize_stmt => teacher.regularize.extend(self.regularize(p)),
                        Rule::features_stmt => teacher.features.extend(self.names(&p)),
                        _ => {}
                    }
                }
                decl.teachers.push(teacher);
            }
            Rule::student_block => {
                let docs = self.docs(&pair);
                let mut student = StudentDecl {
                    docs,
                    model: Vec::new(),
                    distill: Vec::new(),
                    drift: Vec::new(),
                    regularize: Vec::new(),
                    early_stop: None,
                    train: Vec::new(),
                    features: Vec::new(),
                    span,
                };
                for p in pair.into_inner() {
                    let pspan = self.span(&p);
                    match p.as_rule() {
                        Rule::model_stmt => student.model.extend(self.model(p)),
                        Rule::train_stmt => student.train.extend(self.settings_of(p)),
                        Rule::features_stmt => student.features.extend(self.names(&p)),
                        Rule::regularize_stmt => student.regularize.extend(self.regularize(p)),
                        Rule::distill_stmt => {
                            let mut teacher = None;
                            let mut weight = (0.0, pspan);
                            let mut loss_name = None;
                            let mut temperature = None;
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::name if teacher.is_none() => {
                                        teacher = Some(self.ident(&d))
                                    }
                                    Rule::name => loss_name = Some(self.ident(&d)),
                                    Rule::signed_number => {
                                        weight = (self.number(&d), self.span(&d))
                                    }
                                    Rule::temperature => temperature = self.temperature(d),
                                    _ => {}
                                }
                            }
                            let loss_ident = loss_name.unwrap_or_else(|| missing_ident(pspan));
                            student.distill.push(DistillDecl {
                                teacher: teacher.unwrap_or_else(|| missing_ident(pspan)),
                                weight: weight.0,
                                weight_span: weight.1,
                                loss: LossDecl {
                                    span: loss_ident.span,
                                    kind: loss_ident,
                                    temperature,
                                },
                                span: pspan,
                            });
                        }
                        Rule::drift_stmt => {
                            let mut numbers = Vec::new();
                            let mut rebalance_every = None;
                            let mut against = None;
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::signed_number => {
                                        numbers.push((self.number(&d), self.span(&d)))
                                    }
                                    Rule::integer => {
                                        rebalance_every = Some((self.integer(&d), self.span(&d)))
                                    }
                                    Rule::name => against = Some(self.ident(&d)),
                                    _ => {}
                                }
                            }
                            let (weight, weight_span) =
                                numbers.first().copied().unwrap_or((0.0, pspan));
                            let (tolerance, tolerance_span) =
                                numbers.get(1).copied().unwrap_or((0.0, pspan));
                            student.drift.push(DriftDecl {
                                weight,
                                weight_span,
                                tolerance,
                                tolerance_span,
                                rebalance_every,
                                against,
                                span: pspan,
                            });
                        }
                        Rule::early_stop_stmt => {
                            let mut metric = None;
                            let mut patience = 0;
                            for d in p.into_inner() {
                                match d.as_rule() {
                                    Rule::metric => metric = Some(self.ident(&d)),
                                    Rule::integer => patience = self.integer(&d),
                                    _ => {}
                                }
                            }
                            student.early_stop = Some(EarlyStopDecl {
                                metric: metric.unwrap_or_else(|| missing_ident(pspan)),
                                patience,
                                span: pspan,
                            });
                        }
                        _ => {}
                    }
                }
                decl.students.push(student);
            }
            Rule::quantize_block => {
                let scheme = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let mut prune_heads_below = None;
                for p in pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::prune_stmt)
                {
                    if let Some(n) = p.into_inner().find(|n| n.as_rule() == Rule::signed_number) {
                        prune_heads_below = Some((self.number(&n), self.span(&n)));
                    }
                }
                decl.quantize.push(QuantizeDecl {
                    scheme,
                    prune_heads_below,
                    span,
                });
            }
            Rule::monitor_block => {
                let mut alerts = Vec::new();
                for p in pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::alert_stmt)
                {
                    let aspan = self.span(&p);
                    let mut metric = None;
                    let mut op = CompareOp::Gt;
                    let mut threshold = (Threshold::Number(0.0), aspan);
                    for a in p.into_inner() {
                        let s = self.span(&a);
                        match a.as_rule() {
                            Rule::metric => metric = Some(self.ident(&a)),
                            Rule::compare_op => op = compare_op(&a),
                            Rule::duration => {
                                threshold = (Threshold::Duration(self.duration(&a)), s)
                            }
                            Rule::percent => threshold = (Threshold::Percent(self.percent(&a)), s),
                            Rule::signed_number => {
                                threshold = (Threshold::Number(self.number(&a)), s)
                            }
                            _ => {}
                        }
                    }
                    alerts.push(AlertDecl {
                        metric: metric.unwrap_or_else(|| missing_ident(aspan)),
                        op,
                        threshold: threshold.0,
                        threshold_span: threshold.1,
                        span: aspan,
                    });
                }
                decl.monitors.push(MonitorDecl { alerts, span });
            }
            _ => {}
        }
    }

    fn data_stmt(&mut self, pair: Pair<'_, Rule>, block: &mut DataBlock) {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::source_stmt => {
                let name = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let mut path = String::new();
                let mut path_span = span;
                let mut clean = Vec::new();
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::string => {
                            path = self.string(&p);
                            path_span = self.span(&p);
                        }
                        Rule::clean_block => {
                            for c in p.into_inner() {
                                if let Some(rule) = self.clean_rule(c) {
                                    clean.push(rule);
                                }
                            }
                        }
                        _ => {}
                    }
                }
                block.sources.push(DataSource {
                    name,
                    path,
                    path_span,
                    clean,
                    span,
                });
            }
            Rule::synthetic_stmt => {
                let from = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let settings = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::settings)
                    .map(|p| self.settings(p))
                    .unwrap_or_default();
                block.synthetic.push(SyntheticDecl {
                    from,
                    settings,
                    span,
                });
            }
            Rule::mix_stmt => {
                let shares = pair
                    .into_inner()
                    .filter(|p| p.as_rule() == Rule::mix_share)
                    .filter_map(|p| {
                        let s = self.span(&p);
                        let name = self.first_name(&p)?;
                        let share = p
                            .into_inner()
                            .find(|x| x.as_rule() == Rule::percent)
                            .map_or(0.0, |x| self.percent(&x));
                        Some((name, share, s))
                    })
                    .collect();
                block.mixes.push(MixDecl { shares, span });
            }
            Rule::split_stmt => {
                let mut validation = 0.0;
                let mut validation_span = span;
                let mut seed = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::percent => {
                            validation = self.percent(&p);
                            validation_span = self.span(&p);
                        }
                        Rule::integer => seed = Some(self.integer(&p)),
                        _ => {}
                    }
                }
                block.splits.push(SplitDecl {
                    validation,
                    validation_span,
                    seed,
                    span,
                });
            }
            _ => {}
        }
    }

    fn clean_rule(&mut self, pair: Pair<'_, Rule>) -> Option<CleanRule> {
        let span = self.span(&pair);
        Some(match pair.as_rule() {
            Rule::drop_when => {
                let name = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let condition = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::expr)
                    .map_or_else(|| missing_expr(span), |e| self.expr(e));
                CleanRule::DropWhen {
                    name,
                    condition,
                    span,
                }
            }
            Rule::drop_outliers => {
                let field = self
                    .first_name(&pair)
                    .unwrap_or_else(|| missing_ident(span));
                let how = pair.into_inner().find(|p| {
                    matches!(p.as_rule(), Rule::outlier_sigma | Rule::outlier_quantile)
                })?;
                let is_sigma = how.as_rule() == Rule::outlier_sigma;
                let value = how
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::number)
                    .map_or(0.0, |p| self.number(&p));
                if is_sigma {
                    CleanRule::OutliersSigma {
                        field,
                        sigma: value,
                        span,
                    }
                } else {
                    CleanRule::OutliersQuantile {
                        field,
                        quantile: value,
                        span,
                    }
                }
            }
            Rule::drop_duplicates => CleanRule::Duplicates {
                on: self.names(&pair),
                span,
            },
            _ => return None,
        })
    }

    fn model(&mut self, pair: Pair<'_, Rule>) -> Option<ModelSpec> {
        let inner = pair
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::model_encoder | Rule::model_init))?;
        let span = self.span(&inner);
        if inner.as_rule() == Rule::model_encoder {
            let settings = inner
                .into_inner()
                .find(|p| p.as_rule() == Rule::settings)
                .map(|p| self.settings(p))
                .unwrap_or_default();
            Some(ModelSpec::Encoder { settings, span })
        } else {
            let path = inner
                .into_inner()
                .find(|p| p.as_rule() == Rule::string)
                .map(|p| self.string(&p))
                .unwrap_or_default();
            Some(ModelSpec::Init { path, span })
        }
    }

    fn loss(&mut self, pair: Pair<'_, Rule>) -> LossDecl {
        let span = self.span(&pair);
        let kind = self
            .first_name(&pair)
            .unwrap_or_else(|| missing_ident(span));
        let temperature = pair
            .into_inner()
            .find(|p| p.as_rule() == Rule::temperature)
            .and_then(|t| self.temperature(t));
        LossDecl {
            kind,
            temperature,
            span,
        }
    }

    fn temperature(&mut self, pair: Pair<'_, Rule>) -> Option<(f64, Span)> {
        pair.into_inner()
            .find(|p| p.as_rule() == Rule::signed_number)
            .map(|p| (self.number(&p), self.span(&p)))
    }

    fn settings_of(&mut self, pair: Pair<'_, Rule>) -> Vec<Setting> {
        pair.into_inner()
            .find(|p| p.as_rule() == Rule::settings)
            .map(|p| self.settings(p))
            .unwrap_or_default()
    }

    /// The settings of `regularize weight_decay 0.01 dropout 0.1`.
    fn regularize(&mut self, pair: Pair<'_, Rule>) -> Vec<Setting> {
        pair.into_inner()
            .filter(|s| s.as_rule() == Rule::numeric_setting)
            .filter_map(|s| self.setting(s))
            .collect()
    }

    fn settings(&mut self, pair: Pair<'_, Rule>) -> Vec<Setting> {
        pair.into_inner()
            .filter(|p| p.as_rule() == Rule::setting)
            .filter_map(|p| self.setting(p))
            .collect()
    }

    fn setting(&mut self, pair: Pair<'_, Rule>) -> Option<Setting> {
        let mut inner = pair.into_inner();
        let key = inner.next().map(|k| self.ident(&k))?;
        let v = inner.next()?;
        let value_span = self.span(&v);
        let value = match v.as_rule() {
            Rule::duration => SettingValue::Duration(self.duration(&v)),
            Rule::percent => SettingValue::Percent(self.percent(&v)),
            Rule::signed_number => SettingValue::Number(self.number(&v)),
            Rule::string => SettingValue::String(self.string(&v)),
            Rule::boolean => SettingValue::Bool(v.as_str() == "true"),
            _ => SettingValue::Name(v.as_str().to_string()),
        };
        Some(Setting {
            key,
            value,
            value_span,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Tokens

    pub(super) fn number(&mut self, pair: &Pair<'_, Rule>) -> f64 {
        let text = pair.as_str();
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => v,
            _ => {
                let span = self.span(pair);
                self.error(
                    Diagnostic::new(Code::SyntaxInvalidLiteral, format!("`{text}` is too large a number"))
                        .at(span, "this number")
                        .help("scores, weights and thresholds are small numbers; write a value below 1e300"),
                );
                0.0
            }
        }
    }

    pub(super) fn percent(&mut self, pair: &Pair<'_, Rule>) -> f64 {
        let text = pair.as_str();
        let digits = text.trim_end_matches('%');
        match digits.parse::<f64>() {
            Ok(v) if v.is_finite() => v / 100.0,
            _ => {
                let span = self.span(pair);
                self.error(
                    Diagnostic::new(
                        Code::SyntaxInvalidLiteral,
                        format!("`{text}` is not a percent"),
                    )
                    .at(span, "this percent"),
                );
                0.0
            }
        }
    }

    /// A duration in milliseconds.
    pub(super) fn duration(&mut self, pair: &Pair<'_, Rule>) -> f64 {
        let text = pair.as_str();
        let split = text
            .find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let scale = match unit {
            "us" => 0.001,
            "ms" => 1.0,
            "s" => 1000.0,
            "min" => 60_000.0,
            _ => 3_600_000.0,
        };
        match digits.parse::<f64>() {
            Ok(v) if v.is_finite() => v * scale,
            _ => {
                let span = self.span(pair);
                self.error(
                    Diagnostic::new(
                        Code::SyntaxInvalidLiteral,
                        format!("`{text}` is not a duration"),
                    )
                    .at(span, "this duration"),
                );
                0.0
            }
        }
    }

    fn integer(&mut self, pair: &Pair<'_, Rule>) -> u64 {
        let text = pair.as_str();
        match text.parse::<u64>() {
            Ok(v) => v,
            Err(_) => {
                let span = self.span(pair);
                self.error(
                    Diagnostic::new(
                        Code::SyntaxInvalidLiteral,
                        format!("`{text}` is too large a whole number"),
                    )
                    .at(span, "this number"),
                );
                0
            }
        }
    }

    /// A string literal's value with its escapes (`\"`, `\\`, `\n`, `\t`) read.
    pub(super) fn string(&mut self, pair: &Pair<'_, Rule>) -> String {
        let raw = pair.as_str();
        let inner = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .unwrap_or(raw);
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.char_indices();
        // Unknown escapes: one diagnostic for the string, every one underlined.
        let mut bad: Vec<(usize, usize, char)> = Vec::new();
        while let Some((i, c)) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((j, other)) => {
                    let start = self.span(pair).start as usize + 1 + i;
                    bad.push((start, start + (j - i) + other.len_utf8(), other));
                    out.push(other);
                }
                None => {}
            }
        }
        if let Some((start, end, other)) = bad.first().copied() {
            let mut d = Diagnostic::new(
                Code::SyntaxInvalidLiteral,
                format!("`\\{other}` is not an escape this language knows"),
            )
            .at(Span::new(self.file, start, end), "unknown escape");
            for (s, e, o) in bad.iter().skip(1) {
                d = d.with(Span::new(self.file, *s, *e), format!("`\\{o}` too"));
            }
            let plain = out.replace('"', "\\\"");
            self.error(d.help(format!(
                "write the string without the backslashes: `\"{plain}\"`; the escapes are `\\\"`, `\\\\`, `\\n` and `\\t`"
            )));
        }
        out
    }
}

/// The length of `text` without trailing blanks and trailing `//` comments.
fn trimmed_len(text: &str) -> usize {
    let mut end = text.trim_end().len();
    loop {
        let body = text.get(..end).unwrap_or("");
        let line_start = body.rfind('\n').map_or(0, |i| i + 1);
        let line = body.get(line_start..).unwrap_or("");
        match comment_start(line) {
            Some(at) => end = body.get(..line_start + at).unwrap_or("").trim_end().len(),
            None => return end,
        }
    }
}

/// Where a `//` comment starts in one line, outside string literals.
fn comment_start(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut in_string = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn compare_op(pair: &Pair<'_, Rule>) -> CompareOp {
    match pair.as_str().trim() {
        "!=" => CompareOp::Ne,
        "<" => CompareOp::Lt,
        "<=" => CompareOp::Le,
        ">" => CompareOp::Gt,
        ">=" => CompareOp::Ge,
        _ => CompareOp::Eq,
    }
}

fn missing_ident(span: Span) -> Ident {
    Ident {
        name: String::new(),
        span,
    }
}

fn missing_role(span: Span) -> Role {
    Role {
        name: missing_ident(span),
        entity: missing_ident(span),
    }
}

fn missing_type(span: Span) -> TypeExpr {
    TypeExpr {
        name: missing_ident(span),
        arg: None,
        optional: false,
        span,
    }
}

fn missing_literal(span: Span) -> Literal {
    Literal {
        kind: LiteralKind::Abstain,
        span,
    }
}

pub(super) fn missing_expr(span: Span) -> Expr {
    Expr {
        kind: ExprKind::Abstain,
        span,
    }
}

fn empty_pipeline(span: Span) -> PipelineDecl {
    PipelineDecl {
        docs: Docs::default(),
        name: missing_ident(span),
        policy: missing_ident(span),
        data: Vec::new(),
        teachers: Vec::new(),
        students: Vec::new(),
        quantize: Vec::new(),
        monitors: Vec::new(),
        span,
    }
}
