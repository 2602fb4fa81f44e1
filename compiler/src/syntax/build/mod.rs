//! Builds the typed syntax tree from pest's pairs: one `build` method per grammar rule, each
//! returning a node with its span. Literals that cannot be read become diagnostics here.

mod pipeline;

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
            .filter(|p| matches!(p.as_rule(), Rule::name | Rule::ident | Rule::input_ref))
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
