//! The appendix of what the policy imports from modules (the standard library or the project's
//! own): each function's signature and prose, each enum's values, so that a reviewer who reads
//! `seniority_fit(...)` in a dimension finds what it means.

use super::{Composer, fn_signature, import_id, type_text};
use crate::doc::{Block, Inline};
use rubric_compiler::syntax::ast::{Item, UseDecl};

impl Composer<'_> {
    pub(super) fn modules_appendix(&mut self) {
        let uses: Vec<&UseDecl> = self
            .policy
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Use(u) => Some(u),
                _ => None,
            })
            .collect();
        if uses.is_empty() {
            return;
        }
        self.push(Block::Heading {
            level: 2,
            text: vec![Inline::Text("Definitions from modules".into())],
            id: Some("modules".into()),
        });
        self.push(Block::Paragraph(vec![Inline::Text(
            "What the policy imports, with the prose of the modules that define it.".into(),
        )]));
        for u in uses {
            let module = self
                .modules
                .iter()
                .find(|(_, m)| m.path.raw == u.path.raw)
                .map(|(_, m)| m);
            for name in &u.names {
                let id = import_id(&u.path.raw, &name.name);
                self.push(Block::Heading {
                    level: 3,
                    text: vec![
                        Inline::Code(name.name.clone()),
                        Inline::Text(" from ".into()),
                        Inline::Code(u.path.raw.clone()),
                    ],
                    id: Some(id.clone()),
                });
                self.listed(
                    "From modules",
                    format!("{} from {}", name.name, u.path.raw),
                    id,
                );
                let item = module.and_then(|m| {
                    m.items.iter().find(|i| match i {
                        Item::Fn(f) => f.name.name == name.name,
                        Item::Enum(e) => e.name.name == name.name,
                        Item::Table(t) => t.name.name == name.name,
                        Item::Entity(e) => e.name.name == name.name,
                        _ => false,
                    })
                });
                match item {
                    Some(Item::Fn(f)) => {
                        self.push(Block::Code(fn_signature(f)));
                        self.prose(&f.docs.text());
                    }
                    Some(Item::Enum(e)) => {
                        self.prose(&e.docs.text());
                        if e.ordered {
                            self.push(Block::Paragraph(vec![Inline::Text(
                                "Ordered, lowest first:".into(),
                            )]));
                        }
                        let values = e
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
                        self.push(Block::List(values));
                    }
                    Some(Item::Entity(e)) => {
                        self.prose(&e.docs.text());
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
                    Some(Item::Table(t)) => self.prose(&t.docs.text()),
                    _ => self.push(Block::Paragraph(vec![
                        Inline::Text("Defined in ".into()),
                        Inline::Code(u.path.raw.clone()),
                        Inline::Text(".".into()),
                    ])),
                }
            }
        }
    }

    fn prose(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.push(Block::Prose(text.to_string()));
        }
    }
}
