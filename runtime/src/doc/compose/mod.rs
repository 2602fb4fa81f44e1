//! Composes the policy document from a compiled policy: the items in the author's order, each
//! with its prose and what the rubric says about it, a table of contents, a summary at a glance,
//! and the links between rules and the dimensions they touch.

mod examples;
mod modules;
mod pipeline;

use super::{Block, ContentsEntry, Inline, PolicyDocument};
use crate::compile::Compiled;
use crate::examples::{ExampleResult, run_policy_examples};
use crate::label::engine::Engine;
use rubric_compiler::format::format_expr;
use rubric_compiler::format::literal_text;
use rubric_compiler::lower::ir::LabelingProgram;
use rubric_compiler::resolve::ScopeId;
use rubric_compiler::syntax::ast::*;
use std::collections::{BTreeMap, BTreeSet};

/// Builds the document of a compiled policy. Deterministic: the same policy gives the same
/// document.
pub fn policy_document(compiled: &Compiled) -> PolicyDocument {
    let checked = &compiled.checked;
    let program = &compiled.lowered.labeling;
    let source: &str = checked
        .sources
        .get(checked.root)
        .map(|f| &*f.text)
        .unwrap_or_default();
    let file = checked
        .sources
        .get(checked.root)
        .map(|f| f.name.rsplit('/').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    let Some(policy) = checked.policy_decl() else {
        return PolicyDocument {
            name: program.policy.name.clone(),
            title: program.policy.name.clone(),
            blocks: Vec::new(),
        };
    };
    let engine = Engine::new(program.clone());
    let mut hits = vec![false; program.clauses.len()];
    let results = run_policy_examples(&engine, checked, &mut hits);
    let pipeline = checked.tree.as_ref().and_then(|t| {
        t.items.iter().find_map(|i| match i {
            TopItem::Pipeline(p) if p.policy.name == policy.name.name => Some(p),
            _ => None,
        })
    });
    let modules = &checked.program.module_decls;
    let mut composer = Composer::new(source, program, policy, &results, modules);
    composer.plan = compiled.lowered.training_plan.as_ref();
    composer.compose(&file, pipeline);
    PolicyDocument {
        name: program.policy.name.clone(),
        title: composer.title,
        blocks: composer.blocks,
    }
}

/// Fields (`query.location`) and bare names (dimensions, lets) an expression reads.
#[derive(Debug, Default)]
struct Reads {
    fields: BTreeSet<String>,
    names: BTreeSet<String>,
}

impl Reads {
    fn of(exprs: &[&Expr], roles: &[String]) -> Reads {
        let mut reads = Reads::default();
        for e in exprs {
            reads.collect(e, roles);
        }
        reads
    }

    fn collect(&mut self, e: &Expr, roles: &[String]) {
        match &e.kind {
            ExprKind::Path(parts) => match parts.as_slice() {
                [role, field, ..] if roles.contains(&role.name) => {
                    self.fields.insert(format!("{}.{}", role.name, field.name));
                }
                [name] => {
                    self.names.insert(name.name.clone());
                }
                _ => {}
            },
            ExprKind::Call { args: items, .. }
            | ExprKind::Lookup { keys: items, .. }
            | ExprKind::List(items) => items.iter().for_each(|x| self.collect(x, roles)),
            ExprKind::Unary { operand, .. } => self.collect(operand, roles),
            ExprKind::Paren(inner) => self.collect(inner, roles),
            ExprKind::Binary { lhs, rhs, .. } => {
                self.collect(lhs, roles);
                self.collect(rhs, roles);
            }
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => {
                self.collect(cond, roles);
                self.collect(then, roles);
                self.collect(otherwise, roles);
            }
            ExprKind::Match { scrutinee, arms } => {
                self.collect(scrutinee, roles);
                arms.iter().for_each(|a| self.collect(&a.body, roles));
            }
            ExprKind::When { arms, otherwise } => {
                for a in arms {
                    self.collect(&a.condition, roles);
                    self.collect(&a.body, roles);
                }
                if let Some(o) = otherwise {
                    self.collect(o, roles);
                }
            }
            ExprKind::Number(_)
            | ExprKind::Percent(_)
            | ExprKind::Duration(_)
            | ExprKind::String(_)
            | ExprKind::Bool(_)
            | ExprKind::Abstain => {}
        }
    }
}

/// How a rule touches a dimension.
#[derive(Clone, Debug)]
struct Touch {
    rule: String,
    dimension: String,
    /// The rule reads the dimension's score.
    reads_score: bool,
    /// Fields both read.
    shared: Vec<String>,
}

impl Touch {
    fn why(&self) -> Vec<Inline> {
        let mut out = Vec::new();
        if self.reads_score {
            out.push(Inline::Text("reads its score".into()));
        }
        if !self.shared.is_empty() {
            if self.reads_score {
                out.push(Inline::Text("; ".into()));
            }
            out.push(Inline::Text("both read ".into()));
            out.extend(join_inlines(
                self.shared.iter().map(|f| vec![Inline::Code(f.clone())]),
                ", ",
            ));
        }
        out
    }
}

/// Groups of the table of contents, in the order they are listed.
const GROUPS: [&str; 10] = [
    "Entities",
    "Enums",
    "Tables",
    "Functions",
    "Dimensions",
    "Rules",
    "Overall grade",
    "Examples",
    "Pipeline",
    "From modules",
];

struct Composer<'a> {
    src: &'a str,
    program: &'a LabelingProgram,
    policy: &'a PolicyDecl,
    results: &'a [ExampleResult],
    modules: &'a [(ScopeId, ModuleDecl)],
    /// The lowered training plan: the settings in effect, defaults resolved.
    plan: Option<&'a rubric_compiler::lower::plan::TrainingPlan>,
    total_weight: f64,
    touches: Vec<Touch>,
    title: String,
    blocks: Vec<Block>,
    contents: BTreeMap<usize, Vec<ContentsEntry>>,
}

impl<'a> Composer<'a> {
    fn new(
        src: &'a str,
        program: &'a LabelingProgram,
        policy: &'a PolicyDecl,
        results: &'a [ExampleResult],
        modules: &'a [(ScopeId, ModuleDecl)],
    ) -> Self {
        let roles: Vec<String> = program.roles.iter().map(|r| r.name.clone()).collect();
        let dimensions: Vec<&DimensionDecl> = policy
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Dimension(d) => Some(d),
                _ => None,
            })
            .collect();
        let total_weight = dimensions.iter().map(|d| d.weight).sum();
        let dimension_reads: Vec<(&str, Reads)> = dimensions
            .iter()
            .map(|d| {
                let mut exprs: Vec<&Expr> = d.lets.iter().map(|l| &l.value).collect();
                exprs.extend(d.score.iter().map(|s| &s.value));
                (d.name.name.as_str(), Reads::of(&exprs, &roles))
            })
            .collect();
        let mut touches = Vec::new();
        for item in &policy.items {
            let Item::Rule(rule) = item else { continue };
            let reads = Reads::of(&[&rule.condition], &roles);
            for (dimension, dim_reads) in &dimension_reads {
                let reads_score = reads.names.contains(*dimension);
                let shared: Vec<String> = reads
                    .fields
                    .intersection(&dim_reads.fields)
                    .cloned()
                    .collect();
                if reads_score || !shared.is_empty() {
                    touches.push(Touch {
                        rule: rule.name.name.clone(),
                        dimension: dimension.to_string(),
                        reads_score,
                        shared,
                    });
                }
            }
        }
        Composer {
            src,
            program,
            policy,
            results,
            modules,
            plan: None,
            total_weight,
            touches,
            title: String::new(),
            blocks: Vec::new(),
            contents: BTreeMap::new(),
        }
    }

    fn push(&mut self, block: Block) {
        self.blocks.push(block);
    }

    fn listed(&mut self, group: &str, text: String, id: String) {
        let index = GROUPS
            .iter()
            .position(|g| *g == group)
            .unwrap_or(GROUPS.len());
        self.contents.entry(index).or_default().push(ContentsEntry {
            text,
            id,
            children: Vec::new(),
        });
    }

    fn expr(&self, e: &Expr) -> String {
        format_expr(e, self.src)
    }

    fn expr_inline(&self, e: &Expr) -> Inline {
        Inline::Code(one_line(&self.expr(e)))
    }

    fn compose(&mut self, file: &str, pipeline: Option<&PipelineDecl>) {
        let policy = self.policy;
        let docs = policy.docs.text();
        let (title, intro) = split_title(&docs);
        self.title = title.unwrap_or_else(|| format!("Policy {}", policy.name.name));
        self.push(Block::Heading {
            level: 1,
            text: vec![Inline::Text(self.title.clone())],
            id: None,
        });
        let hash: String = self.program.policy.hash.chars().take(12).collect();
        self.push(Block::Paragraph(vec![
            Inline::Text("Policy ".into()),
            Inline::Code(policy.name.name.clone()),
            Inline::Text(format!(" version {} · file ", policy.version)),
            Inline::Code(file.to_string()),
            Inline::Text(" · policy hash ".into()),
            Inline::Code(hash),
            Inline::Text(". Generated by ".into()),
            Inline::Code("rubric doc".into()),
            Inline::Text(" from the policy itself: edit the policy, not this document.".into()),
        ]));
        let contents_at = self.blocks.len();
        self.glance();
        if !intro.trim().is_empty() {
            self.push(Block::Prose(intro));
        }
        let mut example_index = 0;
        for item in &policy.items {
            match item {
                Item::Use(_) | Item::MinCoverage(_) => {}
                Item::Entity(e) => self.entity(e),
                Item::Enum(e) => self.enumeration(e),
                Item::Pair(p) => self.pair(p),
                Item::Table(t) => self.table(t),
                Item::Fn(f) => self.function(f),
                Item::Dimension(d) => self.dimension(d),
                Item::Rule(r) => self.rule(r),
                Item::OverallGrade(g) => self.overall(g),
                Item::Example(e) => {
                    self.example(e, example_index);
                    example_index += 1;
                }
            }
        }
        if let Some(p) = pipeline {
            self.pipeline(p);
        }
        self.modules_appendix();
        let contents = self.contents_entries();
        self.blocks.insert(contents_at, Block::Contents(contents));
        self.blocks.insert(
            contents_at,
            Block::Heading {
                level: 2,
                text: vec![Inline::Text("Contents".into())],
                id: Some("contents".into()),
            },
        );
    }

    fn contents_entries(&self) -> Vec<ContentsEntry> {
        let mut out = vec![ContentsEntry {
            text: "At a glance".into(),
            id: "at-a-glance".into(),
            children: Vec::new(),
        }];
        for (index, entries) in &self.contents {
            let group = GROUPS.get(*index).copied().unwrap_or("Other");
            match entries.as_slice() {
                [one] if group == "Overall grade" => out.push(one.clone()),
                _ => {
                    let id = if group == "Examples" {
                        "examples".to_string()
                    } else {
                        entries.first().map(|e| e.id.clone()).unwrap_or_default()
                    };
                    out.push(ContentsEntry {
                        text: group.to_string(),
                        id,
                        children: entries.clone(),
                    });
                }
            }
        }
        out
    }

    /// The item's section: the author's heading when the docs have one (the last one, which
    /// names the item), else a generated one; then the prose. Returns the section's title.
    fn section(&mut self, docs: &Docs, generated: Vec<Inline>, id: &str, level: u8) -> String {
        let text = docs.text();
        match split_at_last_heading(&text) {
            Some((before, heading, rest)) => {
                if !before.trim().is_empty() {
                    self.push(Block::Prose(before));
                }
                self.push(Block::Anchor(id.to_string()));
                self.push(Block::Prose(rest));
                heading
            }
            None => {
                let title = plain(&generated);
                self.push(Block::Heading {
                    level,
                    text: generated,
                    id: Some(id.to_string()),
                });
                if !text.trim().is_empty() {
                    self.push(Block::Prose(text));
                }
                title
            }
        }
    }

    // ---- at a glance

    fn glance(&mut self) {
        self.push(Block::Heading {
            level: 2,
            text: vec![Inline::Text("At a glance".into())],
            id: Some("at-a-glance".into()),
        });
        let policy = self.policy;
        if let [query, candidate] = self.program.roles.as_slice() {
            let entity = |i: u32| {
                self.program
                    .entities
                    .get(i as usize)
                    .map(|e| e.name.clone())
                    .unwrap_or_default()
            };
            self.push(Block::Paragraph(vec![
                Inline::Text("Each judgment is about a pair: ".into()),
                Inline::Code(query.name.clone()),
                Inline::Text(" is a ".into()),
                link_code(
                    &entity(query.entity),
                    &format!("entity-{}", entity(query.entity)),
                ),
                Inline::Text(", ".into()),
                Inline::Code(candidate.name.clone()),
                Inline::Text(" is a ".into()),
                link_code(
                    &entity(candidate.entity),
                    &format!("entity-{}", entity(candidate.entity)),
                ),
                Inline::Text(".".into()),
            ]));
        }
        let mut rows = Vec::new();
        for item in &policy.items {
            let Item::Dimension(d) = item else { continue };
            let grades = d
                .grades
                .first()
                .map(|g| {
                    join_inlines(
                        g.bands
                            .iter()
                            .map(|b| vec![Inline::Code(b.name.name.clone())]),
                        ", ",
                    )
                })
                .unwrap_or_default();
            let abstains = if dimension_can_abstain(d) {
                "yes"
            } else {
                "no"
            };
            rows.push(vec![
                vec![link_code(&d.name.name, &dimension_id(&d.name.name))],
                vec![Inline::Text(percent(d.weight))],
                vec![Inline::Text(percent(share(d.weight, self.total_weight)))],
                vec![Inline::Text(abstains.into())],
                grades,
            ]);
        }
        self.push(Block::Table {
            head: vec![
                "dimension".into(),
                "weight".into(),
                "share of the total".into(),
                "may abstain".into(),
                "grades".into(),
            ],
            rows,
        });
        self.push(Block::Paragraph(vec![Inline::Text(format!(
            "The weights add up to {}. The overall score is the weighted mean of the dimensions \
             that vote; when dimensions holding less than {} of the weight vote, it abstains. \
             Rules then apply in a fixed order: exclude, the lowest cap, the highest floor, a set \
             grade.",
            percent(self.total_weight),
            percent(self.program.overall.min_coverage)
        ))]));
        let rules: Vec<&RuleDecl> = policy
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Rule(r) => Some(r),
                _ => None,
            })
            .collect();
        if !rules.is_empty() {
            let rows = rules
                .iter()
                .map(|r| {
                    vec![
                        vec![link_code(&r.name.name, &rule_id(&r.name.name))],
                        action_words(&r.action, &self.program.overall.excluded_grade),
                        vec![Inline::Text(r.because.clone().unwrap_or_default())],
                    ]
                })
                .collect();
            self.push(Block::Table {
                head: vec!["rule".into(), "what it does".into(), "because".into()],
                rows,
            });
        }
        let failed = self.results.iter().filter(|r| !r.passed()).count();
        if !self.results.is_empty() {
            let verdict = if failed == 0 {
                "all of them hold today".to_string()
            } else {
                format!("{failed} of them fail today")
            };
            self.push(Block::Paragraph(vec![
                Inline::Link(
                    Box::new(Inline::Text(format!("{} examples", self.results.len()))),
                    "examples".into(),
                ),
                Inline::Text(format!(" pin the rubric down; {verdict} (")),
                Inline::Code("rubric test".into()),
                Inline::Text(" checks them).".into()),
            ]));
        }
        let uses: Vec<Vec<Inline>> = policy
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Use(u) => Some(u),
                _ => None,
            })
            .map(|u| {
                let mut line = vec![Inline::Code(u.path.raw.clone()), Inline::Text(": ".into())];
                line.extend(join_inlines(
                    u.names
                        .iter()
                        .map(|n| vec![link_code(&n.name, &import_id(&u.path.raw, &n.name))]),
                    ", ",
                ));
                line
            })
            .collect();
        if !uses.is_empty() {
            self.push(Block::Paragraph(vec![Inline::Text(
                "It uses these modules:".into(),
            )]));
            self.push(Block::List(uses));
        }
    }

    // ---- declarations

    fn entity(&mut self, e: &EntityDecl) {
        let id = format!("entity-{}", e.name.name);
        let title = self.section(
            &e.docs,
            vec![
                Inline::Text("Entity ".into()),
                Inline::Code(e.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Entities", title, id);
        let rows = e
            .fields
            .iter()
            .map(|f| {
                vec![
                    vec![Inline::Code(f.name.name.clone())],
                    vec![Inline::Code(type_text(&f.ty))],
                    vec![Inline::Prose(f.docs.text())],
                ]
            })
            .collect();
        self.push(Block::Table {
            head: vec!["field".into(), "type".into(), "meaning".into()],
            rows,
        });
    }

    fn enumeration(&mut self, e: &EnumDecl) {
        let id = format!("enum-{}", e.name.name);
        let title = self.section(
            &e.docs,
            vec![
                Inline::Text("Enum ".into()),
                Inline::Code(e.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Enums", title, id);
        if e.ordered {
            self.push(Block::Paragraph(vec![Inline::Text(
                "Ordered, lowest first:".into(),
            )]));
        }
        let items = e
            .variants
            .iter()
            .map(|v| {
                let mut line = vec![Inline::Code(v.name.name.clone())];
                if !v.docs.lines.is_empty() {
                    line.push(Inline::Text(": ".into()));
                    line.push(Inline::Prose(v.docs.text()));
                }
                line
            })
            .collect();
        self.push(Block::List(items));
    }

    fn pair(&mut self, p: &PairDecl) {
        if !p.docs.lines.is_empty() {
            self.push(Block::Prose(p.docs.text()));
        }
    }

    fn table(&mut self, t: &TableDecl) {
        let id = format!("table-{}", t.name.name);
        let title = self.section(
            &t.docs,
            vec![
                Inline::Text("Table ".into()),
                Inline::Code(t.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Tables", title, id);
        let mut head: Vec<String> = if t.keys.len() == 1 {
            vec!["key".into()]
        } else {
            (1..=t.keys.len()).map(|i| format!("key {i}")).collect()
        };
        head.push("value".into());
        let rows = t
            .entries
            .iter()
            .map(|entry| {
                let mut row: Vec<Vec<Inline>> = entry
                    .keys
                    .iter()
                    .map(|k| vec![Inline::Code(literal_text(k))])
                    .collect();
                row.push(vec![Inline::Code(literal_text(&entry.value))]);
                row
            })
            .collect();
        self.push(Block::Table { head, rows });
        self.push(Block::Paragraph(vec![
            Inline::Text("Any pair of keys not listed: ".into()),
            Inline::Code(literal_text(&t.default)),
            Inline::Text(".".into()),
        ]));
    }

    fn function(&mut self, f: &FnDecl) {
        let id = format!("fn-{}", f.name.name);
        let title = self.section(
            &f.docs,
            vec![
                Inline::Text("Function ".into()),
                Inline::Code(f.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Functions", title, id);
        let body = indent(&self.expr(&f.body), "  ");
        self.push(Block::Code(format!("{} =\n{body}", fn_signature(f))));
    }

    // ---- dimensions

    fn dimension(&mut self, d: &DimensionDecl) {
        let id = dimension_id(&d.name.name);
        let title = self.section(
            &d.docs,
            vec![
                Inline::Text("Dimension ".into()),
                Inline::Code(d.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Dimensions", title, id);
        let mut facts = vec![
            Inline::Strong("Dimension".into()),
            Inline::Text(" ".into()),
            Inline::Code(d.name.name.clone()),
            Inline::Text(format!(
                " · weight {} · {} of the total weight",
                percent(d.weight),
                percent(share(d.weight, self.total_weight))
            )),
        ];
        if dimension_can_abstain(d) {
            facts.push(Inline::Text(
                " · may abstain (then it casts no vote and the other weights are scaled up)".into(),
            ));
        }
        self.push(Block::Paragraph(facts));
        for l in &d.lets {
            let mut line = vec![
                Inline::Strong("Working value".into()),
                Inline::Text(" ".into()),
                Inline::Code(l.name.name.clone()),
            ];
            if !l.docs.lines.is_empty() {
                line.push(Inline::Text(": ".into()));
                line.push(Inline::Prose(l.docs.text()));
            }
            self.push(Block::Paragraph(line));
            let logic = self.logic(&l.value, &l.name.name);
            self.blocks.extend(logic);
        }
        for s in &d.score {
            let mut line = vec![Inline::Strong("Score".into())];
            if !s.docs.lines.is_empty() {
                line.push(Inline::Text(": ".into()));
                line.push(Inline::Prose(s.docs.text()));
            }
            self.push(Block::Paragraph(line));
            let logic = self.logic(&s.value, "score");
            self.blocks.extend(logic);
        }
        for g in &d.grades {
            self.push(Block::Paragraph(vec![Inline::Strong("Grades".into())]));
            if !g.docs.lines.is_empty() {
                self.push(Block::Prose(g.docs.text()));
            }
            let table = self.bands(g);
            self.push(table);
        }
        let touches: Vec<Touch> = self
            .touches
            .iter()
            .filter(|t| t.dimension == d.name.name)
            .cloned()
            .collect();
        if touches.is_empty() {
            self.push(Block::Paragraph(vec![Inline::Text(
                "No rule touches this dimension.".into(),
            )]));
        } else {
            self.push(Block::Paragraph(vec![Inline::Strong(
                "Rules that touch this dimension".into(),
            )]));
            let items = touches
                .iter()
                .map(|t| {
                    let mut line = vec![
                        link_code(&t.rule, &rule_id(&t.rule)),
                        Inline::Text(": ".into()),
                    ];
                    line.extend(t.why());
                    line
                })
                .collect();
            self.push(Block::List(items));
        }
    }

    /// Scoring logic in readable form: `when` chains, `if` chains and `match` arms as tables,
    /// anything else as the expression itself.
    fn logic(&self, e: &Expr, subject: &str) -> Vec<Block> {
        match &e.kind {
            ExprKind::Paren(inner) => self.logic(inner, subject),
            ExprKind::When { arms, otherwise } => {
                let mut rows: Vec<Vec<Vec<Inline>>> = arms
                    .iter()
                    .map(|a| {
                        vec![
                            vec![self.expr_inline(&a.condition)],
                            vec![self.expr_inline(&a.body)],
                        ]
                    })
                    .collect();
                if let Some(o) = otherwise {
                    rows.push(vec![
                        vec![Inline::Text("otherwise".into())],
                        vec![self.expr_inline(o)],
                    ]);
                }
                vec![Block::Table {
                    head: vec!["when (the first that holds)".into(), subject.to_string()],
                    rows,
                }]
            }
            ExprKind::If { .. } => {
                let mut rows = Vec::new();
                let mut rest = e;
                while let ExprKind::If {
                    cond,
                    then,
                    otherwise,
                } = &rest.kind
                {
                    rows.push(vec![
                        vec![self.expr_inline(cond)],
                        vec![self.expr_inline(then)],
                    ]);
                    rest = otherwise;
                }
                rows.push(vec![
                    vec![Inline::Text("otherwise".into())],
                    vec![self.expr_inline(rest)],
                ]);
                vec![Block::Table {
                    head: vec!["when (the first that holds)".into(), subject.to_string()],
                    rows,
                }]
            }
            ExprKind::Match { scrutinee, arms } => {
                let rows = arms
                    .iter()
                    .map(|a| {
                        let pattern = if a.is_wildcard() {
                            vec![Inline::Text("anything else".into())]
                        } else {
                            join_inlines(
                                a.patterns
                                    .iter()
                                    .map(|p| vec![Inline::Code(literal_text(p))]),
                                " or ",
                            )
                        };
                        vec![pattern, vec![self.expr_inline(&a.body)]]
                    })
                    .collect();
                vec![
                    Block::Paragraph(vec![
                        Inline::Text("Depends on ".into()),
                        self.expr_inline(scrutinee),
                        Inline::Text(":".into()),
                    ]),
                    Block::Table {
                        head: vec!["value".into(), subject.to_string()],
                        rows,
                    },
                ]
            }
            _ => vec![Block::Code(self.expr(e))],
        }
    }

    fn bands(&self, g: &GradeBlock) -> Block {
        let rows = g
            .bands
            .iter()
            .map(|b| {
                let condition = match &b.condition {
                    Some(c) => self.expr_inline(c),
                    None => Inline::Text("otherwise".into()),
                };
                let mut meaning = Vec::new();
                if let Some(d) = &b.description {
                    meaning.push(Inline::Text(format!("“{d}”")));
                }
                if !b.docs.lines.is_empty() {
                    if !meaning.is_empty() {
                        meaning.push(Inline::Text(": ".into()));
                    }
                    meaning.push(Inline::Prose(b.docs.text()));
                }
                vec![
                    vec![Inline::Code(b.name.name.clone())],
                    vec![condition],
                    meaning,
                ]
            })
            .collect();
        Block::Table {
            head: vec![
                "grade".into(),
                "when (the first that holds)".into(),
                "meaning".into(),
            ],
            rows,
        }
    }

    // ---- rules and the overall grade

    fn rule(&mut self, r: &RuleDecl) {
        let id = rule_id(&r.name.name);
        let title = self.section(
            &r.docs,
            vec![
                Inline::Text("Rule ".into()),
                Inline::Code(r.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Rules", title, id);
        self.push(Block::Paragraph(vec![
            Inline::Strong("Rule".into()),
            Inline::Text(" ".into()),
            Inline::Code(r.name.name.clone()),
            Inline::Text(" · when".into()),
        ]));
        self.push(Block::Code(self.expr(&r.condition)));
        let mut then = vec![Inline::Strong("then".into()), Inline::Text(" ".into())];
        then.extend(action_words(
            &r.action,
            &self.program.overall.excluded_grade,
        ));
        then.push(Inline::Text(".".into()));
        self.push(Block::Paragraph(then));
        match &r.because {
            Some(reason) => self.push(Block::Quote(vec![
                Inline::Strong("Because".into()),
                Inline::Text(format!(" {reason}")),
            ])),
            None => self.push(Block::Paragraph(vec![Inline::Text(
                "It gives no reason.".into(),
            )])),
        }
        let touches: Vec<Touch> = self
            .touches
            .iter()
            .filter(|t| t.rule == r.name.name)
            .cloned()
            .collect();
        if touches.is_empty() {
            self.push(Block::Paragraph(vec![Inline::Text(
                "It reads nothing any dimension reads.".into(),
            )]));
        } else {
            self.push(Block::Paragraph(vec![Inline::Strong(
                "Dimensions it touches".into(),
            )]));
            let items = touches
                .iter()
                .map(|t| {
                    let mut line = vec![
                        link_code(&t.dimension, &dimension_id(&t.dimension)),
                        Inline::Text(": ".into()),
                    ];
                    line.extend(t.why());
                    line
                })
                .collect();
            self.push(Block::List(items));
        }
    }

    fn overall(&mut self, g: &GradeBlock) {
        let id = "overall-grade".to_string();
        let title = self.section(&g.docs, vec![Inline::Text("Overall grade".into())], &id, 2);
        self.listed("Overall grade", title, id);
        let table = self.bands(g);
        self.push(table);
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn dimension_id(name: &str) -> String {
    format!("dimension-{name}")
}

/// The link target of a name imported from a module.
fn import_id(module: &str, name: &str) -> String {
    format!("module-{module}-{name}")
}

/// `fn name(a: T, ...) -> R in [lo, hi]`.
fn fn_signature(f: &FnDecl) -> String {
    let params: Vec<String> = f
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name.name, type_text(&p.ty)))
        .collect();
    let range = f
        .declared_range
        .as_ref()
        .map(|r| format!(" in [{}, {}]", r.lo, r.hi))
        .unwrap_or_default();
    format!(
        "fn {}({}) -> {}{range}",
        f.name.name,
        params.join(", "),
        type_text(&f.result)
    )
}

fn rule_id(name: &str) -> String {
    format!("rule-{name}")
}

fn link_code(text: &str, id: &str) -> Inline {
    Inline::Link(Box::new(Inline::Code(text.to_string())), id.to_string())
}

fn join_inlines(parts: impl Iterator<Item = Vec<Inline>>, sep: &str) -> Vec<Inline> {
    let mut out = Vec::new();
    for (i, p) in parts.enumerate() {
        if i > 0 {
            out.push(Inline::Text(sep.to_string()));
        }
        out.extend(p);
    }
    out
}

/// The text of inlines, without markup.
fn plain(inlines: &[Inline]) -> String {
    inlines
        .iter()
        .map(|i| match i {
            Inline::Text(s) | Inline::Strong(s) | Inline::Code(s) | Inline::Prose(s) => s.clone(),
            Inline::Link(inner, _) => plain(std::slice::from_ref(inner)),
        })
        .collect()
}

/// Whitespace runs (line breaks and indentation) as one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A fraction as a percent: `30%`, `33.3%`.
fn percent(v: f64) -> String {
    let s = format!("{:.1}", v * 100.0);
    let s = s.strip_suffix(".0").unwrap_or(&s);
    format!("{s}%")
}

fn share(weight: f64, total: f64) -> f64 {
    if total > 0.0 { weight / total } else { 0.0 }
}

/// A score with at most four decimals, or `abstain`.
fn score_text(v: Option<f64>) -> String {
    match v {
        Some(x) => {
            let s = format!("{x:.4}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        None => "abstain".into(),
    }
}

fn action_words(a: &RuleAction, excluded: &str) -> Vec<Inline> {
    match a {
        RuleAction::Cap(v) => vec![Inline::Text(format!("caps the overall score at {v}"))],
        RuleAction::Floor(v) => vec![Inline::Text(format!(
            "raises the overall score to at least {v}"
        ))],
        RuleAction::Exclude => vec![
            Inline::Text("excludes the pair (overall score 0, grade ".into()),
            Inline::Code(excluded.into()),
            Inline::Text(")".into()),
        ],
        RuleAction::SetGrade(g) => vec![
            Inline::Text("sets the overall grade to ".into()),
            Inline::Code(g.name.clone()),
        ],
    }
}

/// Whether a dimension's scoring can abstain (an `abstain` anywhere in its logic).
fn dimension_can_abstain(d: &DimensionDecl) -> bool {
    fn has(e: &Expr) -> bool {
        match &e.kind {
            ExprKind::Abstain => true,
            ExprKind::Call { args: items, .. }
            | ExprKind::Lookup { keys: items, .. }
            | ExprKind::List(items) => items.iter().any(has),
            ExprKind::Unary { operand, .. } => has(operand),
            ExprKind::Paren(inner) => has(inner),
            ExprKind::Binary { lhs, rhs, .. } => has(lhs) || has(rhs),
            ExprKind::If {
                cond,
                then,
                otherwise,
            } => has(cond) || has(then) || has(otherwise),
            ExprKind::Match { scrutinee, arms } => {
                has(scrutinee) || arms.iter().any(|a| has(&a.body))
            }
            ExprKind::When { arms, otherwise } => {
                arms.iter().any(|a| has(&a.condition) || has(&a.body))
                    || otherwise.as_deref().is_some_and(has)
            }
            _ => false,
        }
    }
    d.lets.iter().any(|l| has(&l.value)) || d.score.iter().any(|s| has(&s.value))
}

fn type_text(t: &TypeExpr) -> String {
    let arg = t
        .arg
        .as_deref()
        .map(|a| format!("<{}>", type_text(a)))
        .unwrap_or_default();
    let optional = if t.optional { "?" } else { "" };
    format!("{}{arg}{optional}", t.name.name)
}

/// The title (a first line `# ...`) and the rest of the policy's prose.
fn split_title(docs: &str) -> (Option<String>, String) {
    let trimmed = docs.trim_start();
    let first = trimmed.lines().next().unwrap_or_default();
    match first.strip_prefix("# ") {
        Some(title) => {
            let rest = trimmed.get(first.len()..).unwrap_or_default();
            (
                Some(title.trim().to_string()),
                rest.trim_start().to_string(),
            )
        }
        None => (None, docs.to_string()),
    }
}

/// Splits prose at its last ATX heading outside code fences: the text before it, the heading's
/// text, and the text from the heading on.
fn split_at_last_heading(text: &str) -> Option<(String, String, String)> {
    let mut fenced = false;
    let mut last: Option<(usize, String)> = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced && let Some(heading) = atx_heading(trimmed) {
            last = Some((offset, heading));
        }
        offset += line.len();
    }
    let (at, heading) = last?;
    let before = text.get(..at).unwrap_or_default().trim_end().to_string();
    let rest = text.get(at..).unwrap_or_default().to_string();
    Some((before, heading, rest))
}

/// The text of an ATX heading line (`## Skill match` → `Skill match`).
fn atx_heading(line: &str) -> Option<String> {
    let hashes = line.chars().take_while(|c| *c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = line.get(hashes..)?;
    if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim().to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_last_heading_names_the_item() {
        let text = "## Rules\nHow rules work.\n\n### Work authorisation\nNeeds a visa.\n";
        let (before, heading, rest) = split_at_last_heading(text).unwrap();
        assert_eq!(before, "## Rules\nHow rules work.");
        assert_eq!(heading, "Work authorisation");
        assert_eq!(rest, "### Work authorisation\nNeeds a visa.\n");
        assert!(split_at_last_heading("no heading\n```\n# in a fence\n```\n").is_none());
        assert!(atx_heading("#hashtag").is_none());
    }

    #[test]
    fn a_first_level_heading_is_the_title() {
        let (title, rest) = split_title("# Job match\n\n## Purpose\nWhy.");
        assert_eq!(title.as_deref(), Some("Job match"));
        assert_eq!(rest, "## Purpose\nWhy.");
        assert_eq!(split_title("Just prose.").0, None);
    }

    #[test]
    fn percents_and_scores_read_plainly() {
        assert_eq!(percent(0.3), "30%");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
        assert_eq!(score_text(Some(19.0 / 30.0)), "0.6333");
        assert_eq!(score_text(Some(1.0)), "1");
        assert_eq!(score_text(None), "abstain");
    }
}
