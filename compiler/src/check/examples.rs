//! Examples: each record must fit its role's entity (known fields, values of the right type,
//! every required field given), and each expectation must be about a known dimension, grade or
//! rule. Whether an expectation holds is `rubric test`'s job, not the checker's.

use super::expr::{Checker, Env};
use super::{EXCLUDED, PolicyInfo};
use crate::diagnostics::{Code, Diagnostic, suggestion_help};
use crate::resolve::Type;
use crate::syntax::ast::*;
use std::collections::BTreeMap;

pub(super) fn check_examples(
    checker: &mut Checker<'_>,
    examples: &[&ExampleDecl],
    env: &Env,
    info: &PolicyInfo,
) {
    let mut names: BTreeMap<&str, crate::source::Span> = BTreeMap::new();
    for ex in examples {
        if let Some(prev) = names.get(ex.name.as_str()) {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("two examples are named \"{}\"", ex.name),
                )
                .at(ex.name_span, "named again here")
                .with(*prev, "first here")
                .help("give each example its own name: it is how `rubric test` reports it"),
            );
        } else {
            names.insert(&ex.name, ex.name_span);
        }
        check_records(checker, ex, env);
        for e in &ex.expectations {
            check_expectation(checker, e, info);
        }
    }
}

fn check_records(checker: &mut Checker<'_>, ex: &ExampleDecl, env: &Env) {
    let program = checker.program;
    let mut given: BTreeMap<&str, &ExampleRecord> = BTreeMap::new();
    for record in &ex.records {
        let Some((_, entity)) = env.roles.iter().find(|(r, _)| *r == record.role.name) else {
            let mut d = Diagnostic::new(
                Code::ExampleField,
                format!("the pair has no role `{}`", record.role.name),
            )
            .at(record.role.span, "not a role of the pair");
            if let Some(h) = suggestion_help(
                &record.role.name,
                "roles",
                env.roles.iter().map(|(r, _)| r.as_str()),
            ) {
                d = d.help(h);
            }
            checker.report(d);
            continue;
        };
        if let Some(prev) = given.get(record.role.name.as_str()) {
            checker.report(
                Diagnostic::new(
                    Code::Duplicate,
                    format!("the example gives `{}` twice", record.role.name),
                )
                .at(record.role.span, "given again here")
                .with(prev.role.span, "first here")
                .help("merge the two records"),
            );
            continue;
        }
        given.insert(&record.role.name, record);
        let Some(def) = program.entity(*entity) else {
            continue;
        };
        let mut fields: BTreeMap<&str, &RecordField> = BTreeMap::new();
        for f in &record.fields {
            if let Some(prev) = fields.get(f.name.name.as_str()) {
                checker.report(
                    Diagnostic::new(Code::Duplicate, format!("`{}` is given twice", f.name.name))
                        .at(f.name.span, "given again here")
                        .with(prev.name.span, "first here")
                        .help("keep one value per field"),
                );
                continue;
            }
            fields.insert(&f.name.name, f);
            let Some(field) = def.field(&f.name.name) else {
                let mut d = Diagnostic::new(
                    Code::ExampleField,
                    format!("`{}` has no field `{}`", def.name, f.name.name),
                )
                .at(f.name.span, format!("not a field of `{}`", def.name));
                if let Some(h) = suggestion_help(
                    &f.name.name,
                    "fields",
                    def.fields.iter().map(|x| x.name.as_str()),
                ) {
                    d = d.help(h);
                }
                checker.report(d);
                continue;
            };
            check_value(checker, &f.value, &field.ty, &f.name.name);
        }
        // A misspelled field is reported once, as unknown, not again as missing.
        let meant: Vec<&str> = record
            .fields
            .iter()
            .filter(|f| def.field(&f.name.name).is_none())
            .filter_map(|f| {
                crate::diagnostics::did_you_mean(
                    &f.name.name,
                    def.fields.iter().map(|x| x.name.as_str()),
                )
            })
            .collect();
        let missing: Vec<&str> = def
            .fields
            .iter()
            .filter(|f| !matches!(f.ty, Type::Text | Type::Optional(_) | Type::Error))
            .filter(|f| !fields.contains_key(f.name.as_str()) && !meant.contains(&f.name.as_str()))
            .map(|f| f.name.as_str())
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ");
            checker.report(
                Diagnostic::new(
                    Code::ExampleMissingField,
                    format!("the `{}` record omits {} required field{}", record.role.name, missing.len(), if missing.len() == 1 { "" } else { "s" }),
                )
                .at(record.role.span, format!("no {list}"))
                .help("only `text` fields (empty) and optional fields (missing) may be left out; give a value for the others"),
            );
        }
    }
    for (role, entity) in &env.roles {
        if given.contains_key(role.as_str()) {
            continue;
        }
        let required = program.entity(*entity).is_some_and(|d| {
            d.fields
                .iter()
                .any(|f| !matches!(f.ty, Type::Text | Type::Optional(_)))
        });
        if required {
            checker.report(
                Diagnostic::new(
                    Code::ExampleMissingField,
                    format!("the example gives no `{role}` record"),
                )
                .at(ex.name_span, format!("no `{role} {{ ... }}`"))
                .help(format!("add `{role} {{ ... }}` with its required fields")),
            );
        }
    }
}

fn check_value(checker: &mut Checker<'_>, value: &Literal, ty: &Type, field: &str) {
    let program = checker.program;
    let fits = match (ty, &value.kind) {
        (Type::Optional(inner), _) => return check_value(checker, value, inner, field),
        (Type::Error, _) => true,
        (Type::Number, LiteralKind::Number(_) | LiteralKind::Percent(_)) => true,
        (Type::Bool, LiteralKind::Bool(_)) => true,
        (Type::String | Type::Text, LiteralKind::String(_)) => true,
        (Type::Set(el) | Type::List(el), LiteralKind::List(items)) => {
            for item in items {
                check_value(checker, item, el, field);
            }
            true
        }
        (Type::Enum(id), LiteralKind::Name(names)) => {
            let Some(def) = program.enum_def(*id) else {
                return;
            };
            let variant = match names.as_slice() {
                [v] => v,
                [e, v] if e.name == def.name => v,
                _ => {
                    checker.report(
                        Diagnostic::new(
                            Code::ExampleValue,
                            format!("`{field}` is a `{}`", def.name),
                        )
                        .at(value.span, "not one of its values")
                        .help(format!(
                            "write one of its values, like `{}`",
                            def.variants.first().map_or("x", String::as_str)
                        )),
                    );
                    return;
                }
            };
            if !def.variants.contains(&variant.name) {
                let mut d = Diagnostic::new(
                    Code::ExampleValue,
                    format!("`{}` is not a value of `{}`", variant.name, def.name),
                )
                .at(variant.span, format!("`{field}` is a `{}`", def.name));
                if let Some(h) = suggestion_help(
                    &variant.name,
                    "values",
                    def.variants.iter().map(String::as_str),
                ) {
                    d = d.help(h);
                }
                checker.report(d);
            }
            true
        }
        _ => false,
    };
    if !fits {
        let want = program.type_name(ty);
        let got = match &value.kind {
            LiteralKind::Number(_) | LiteralKind::Percent(_) => "a number",
            LiteralKind::String(_) => "a string",
            LiteralKind::Bool(_) => "a boolean",
            LiteralKind::Name(_) => "a name",
            LiteralKind::List(_) => "a list",
            LiteralKind::Abstain => "`abstain`",
        };
        let example = match ty {
            Type::Number => "a number like `3` or `0.5`".to_string(),
            Type::Bool => "`true` or `false`".to_string(),
            Type::String | Type::Text => "a string in double quotes".to_string(),
            Type::Set(_) | Type::List(_) => "a list like `[\"a\", \"b\"]`".to_string(),
            _ => format!("a `{want}`"),
        };
        checker.report(
            Diagnostic::new(
                Code::ExampleValue,
                format!("`{field}` is a `{want}`, but the example gives {got}"),
            )
            .at(value.span, got.to_string())
            .help(format!("give {example}")),
        );
    }
}

fn check_expectation(checker: &mut Checker<'_>, e: &Expectation, info: &PolicyInfo) {
    match e {
        Expectation::Rule { rule, .. } => {
            if !info.rules.contains(&rule.name) {
                let mut d = Diagnostic::new(
                    Code::ExampleExpectation,
                    format!("the policy has no rule `{}`", rule.name),
                )
                .at(rule.span, "no such rule");
                if let Some(h) =
                    suggestion_help(&rule.name, "rules", info.rules.iter().map(String::as_str))
                {
                    d = d.help(h);
                }
                checker.report(d);
            }
        }
        Expectation::Compare {
            target, op, value, ..
        } => {
            let (label, grades): (String, Option<&Vec<String>>) = match &target.dimension {
                None => ("overall".to_string(), Some(&info.overall_grades)),
                Some(d) => match info.dimensions.iter().find(|x| x.name == d.name) {
                    Some(dim) => (d.name.clone(), Some(&dim.grades)),
                    None => {
                        let mut diag = Diagnostic::new(
                            Code::UnknownDimension,
                            format!("the policy has no dimension `{}`", d.name),
                        )
                        .at(d.span, "no such dimension");
                        if let Some(h) = suggestion_help(
                            &d.name,
                            "dimensions",
                            info.dimensions.iter().map(|x| x.name.as_str()),
                        ) {
                            diag = diag.help(h);
                        }
                        checker.report(diag);
                        return;
                    }
                },
            };
            let equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
            if target.grade {
                let grades = grades.cloned().unwrap_or_default();
                if grades.is_empty() {
                    checker.report(
                        Diagnostic::new(Code::ExampleExpectation, format!("`{label}` has no grade bands"))
                            .at(target.span, "no grades to compare")
                            .help(format!("expect its score instead, like `expect {label} >= 0.8`, or give it a `grade {{ ... }}` block")),
                    );
                    return;
                }
                match &value.kind {
                    LiteralKind::Name(names) if names.len() == 1 && equality => {
                        let Some(g) = names.first() else { return };
                        // An excluded pair's overall grade is `excluded`.
                        let excluded = target.dimension.is_none() && g.name == EXCLUDED;
                        if !grades.contains(&g.name) && !excluded {
                            let mut d = Diagnostic::new(
                                Code::UnknownGrade,
                                format!("`{label}` has no grade `{}`", g.name),
                            )
                            .at(g.span, "not one of its grades");
                            if let Some(h) = suggestion_help(
                                &g.name,
                                "grades",
                                grades.iter().map(String::as_str),
                            ) {
                                d = d.help(h);
                            }
                            checker.report(d);
                        }
                    }
                    _ => checker.report(
                        Diagnostic::new(
                            Code::ExampleExpectation,
                            format!(
                                "a grade of `{label}` is compared with `==` or `!=` to a grade name"
                            ),
                        )
                        .at(value.span, "not a grade")
                        .help(format!(
                            "write `expect {label}.grade == {}`",
                            grades.first().map_or("x", String::as_str)
                        )),
                    ),
                }
                return;
            }
            match &value.kind {
                LiteralKind::Number(n) | LiteralKind::Percent(n) => {
                    if !(0.0..=1.0).contains(n) {
                        checker.report(
                            Diagnostic::new(Code::ExampleExpectation, format!("scores run from 0 to 1; {n} is outside"))
                                .at(value.span, "out of range")
                                .help("compare with a score from 0 to 1"),
                        );
                    }
                }
                LiteralKind::Abstain if equality => {}
                LiteralKind::Name(names) if grades.is_some_and(|g| names.len() == 1 && names.iter().all(|n| g.contains(&n.name))) => {
                    checker.report(
                        Diagnostic::new(Code::ExampleExpectation, format!("`{label}` is a score; its grade is `{label}.grade`"))
                            .at(target.span, "a score, not a grade")
                            .help(format!("write `expect {label}.grade {} ...`", op.symbol())),
                    );
                }
                _ => checker.report(
                    Diagnostic::new(Code::ExampleExpectation, format!("`{label}` is a score from 0 to 1"))
                        .at(value.span, "not a score")
                        .help(format!("compare it with a number, like `expect {label} >= 0.8`, or with `abstain` using `==`")),
                ),
            }
        }
    }
}
