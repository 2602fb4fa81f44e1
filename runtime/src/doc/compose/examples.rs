//! The examples section: each example's inputs as a table, its expectations beside what the
//! policy gives today, and the labels it gets.

use super::{Composer, join_inlines, link_code, literal_text, rule_id, score_text};
use crate::doc::{Block, Inline};
use crate::examples::failed_expectation;
use crate::label::engine::Label;
use rubric_compiler::syntax::ast::{ExampleDecl, Expectation};

impl Composer<'_> {
    pub(super) fn example(&mut self, e: &ExampleDecl, index: usize) {
        if index == 0 {
            self.push(Block::Heading {
                level: 2,
                text: vec![Inline::Text("Examples".into())],
                id: Some("examples".into()),
            });
            self.push(Block::Paragraph(vec![
                Inline::Text(
                    "Each example is a pair with what the policy must say about it; ".into(),
                ),
                Inline::Code("rubric test".into()),
                Inline::Text(
                    " checks every one. Fields not given are empty (text) or missing (optional \
                     fields). The labels shown are what the policy gives today."
                        .into(),
                ),
            ]));
        }
        let id = format!("example-{}", index + 1);
        let title = self.section(&e.docs, vec![Inline::Text(e.name.clone())], &id, 3);
        self.listed("Examples", title, id);
        let mut rows = Vec::new();
        for record in &e.records {
            for (i, f) in record.fields.iter().enumerate() {
                let role = if i == 0 {
                    vec![Inline::Code(record.role.name.clone())]
                } else {
                    Vec::new()
                };
                rows.push(vec![
                    role,
                    vec![Inline::Code(f.name.name.clone())],
                    vec![Inline::Code(literal_text(&f.value))],
                ]);
            }
        }
        self.push(Block::Table {
            head: vec!["".into(), "field".into(), "value".into()],
            rows,
        });
        let Some(result) = self.results.get(index) else {
            return;
        };
        let rows = e
            .expectations
            .iter()
            .map(|x| {
                let holds = failed_expectation(self.program, x, &result.label).is_none();
                vec![
                    vec![Inline::Code(expectation_text(x))],
                    vec![Inline::Text(self.today(x, &result.label))],
                    vec![if holds {
                        Inline::Text("yes".into())
                    } else {
                        Inline::Strong("no".into())
                    }],
                ]
            })
            .collect();
        self.push(Block::Table {
            head: vec!["expectation".into(), "today".into(), "holds".into()],
            rows,
        });
        let labels = self.labels_line(&result.label);
        self.push(Block::Paragraph(labels));
    }

    /// What the label says about an expectation's subject.
    fn today(&self, x: &Expectation, label: &Label) -> String {
        match x {
            Expectation::Rule { rule, .. } => {
                let fired = self
                    .program
                    .rules
                    .iter()
                    .position(|r| r.name == rule.name)
                    .is_some_and(|i| label.rules.iter().any(|f| *f as usize == i));
                if fired { "fires" } else { "does not fire" }.to_string()
            }
            Expectation::Compare { target, .. } => match &target.dimension {
                None if target.grade => self.overall_grade(label),
                None => score_text(label.overall),
                Some(d) => {
                    let i = self
                        .program
                        .dimensions
                        .iter()
                        .position(|x| x.name == d.name);
                    match i {
                        Some(i) if target.grade => self.dimension_grade(i, label),
                        Some(i) => score_text(label.dimensions.get(i).copied().flatten()),
                        None => String::new(),
                    }
                }
            },
        }
    }

    fn dimension_grade(&self, i: usize, label: &Label) -> String {
        label
            .grades
            .get(i)
            .copied()
            .flatten()
            .and_then(|g| {
                self.program
                    .dimensions
                    .get(i)?
                    .grades
                    .get(g as usize)
                    .map(|b| b.name.clone())
            })
            .unwrap_or_else(|| "no grade".into())
    }

    fn overall_grade(&self, label: &Label) -> String {
        label
            .overall_grade
            .and_then(|g| g.name(self.program))
            .unwrap_or_else(|| "no grade".into())
    }

    fn labels_line(&self, label: &Label) -> Vec<Inline> {
        let mut line = vec![
            Inline::Strong("Labels today".into()),
            Inline::Text(": ".into()),
        ];
        for (i, d) in self.program.dimensions.iter().enumerate() {
            let score = label.dimensions.get(i).copied().flatten();
            let grade = match score {
                Some(_) if !d.grades.is_empty() => format!(" ({})", self.dimension_grade(i, label)),
                _ => String::new(),
            };
            line.push(Inline::Code(d.name.clone()));
            line.push(Inline::Text(format!(" {}{grade} · ", score_text(score))));
        }
        line.push(Inline::Strong(format!(
            "overall {} ({})",
            score_text(label.overall),
            self.overall_grade(label)
        )));
        if label.rules.is_empty() {
            line.push(Inline::Text("; no rule fired.".into()));
        } else {
            line.push(Inline::Text("; rules fired: ".into()));
            let names = label
                .rules
                .iter()
                .filter_map(|r| self.program.rules.get(*r as usize))
                .map(|r| vec![link_code(&r.name, &rule_id(&r.name))]);
            line.extend(join_inlines(names, ", "));
            line.push(Inline::Text(".".into()));
        }
        line
    }
}

fn expectation_text(x: &Expectation) -> String {
    match x {
        Expectation::Rule { rule, fires, .. } => format!(
            "rule {} {}",
            rule.name,
            if *fires { "fires" } else { "does not fire" }
        ),
        Expectation::Compare {
            target, op, value, ..
        } => {
            let subject = target
                .dimension
                .as_ref()
                .map_or("overall".to_string(), |d| d.name.clone());
            let grade = if target.grade { ".grade" } else { "" };
            format!("{subject}{grade} {} {}", op.symbol(), literal_text(value))
        }
    }
}
