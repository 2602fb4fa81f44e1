//! Checks of a pipeline's `data` block: its sources and their paths, clean rules and their
//! conditions over the click log, synthetic pairs and the mix of real and synthetic.

use super::*;

pub(super) fn check_data(data: &DataBlock, diags: &mut Diagnostics) {
    let mut sources: HashMap<&str, &Ident> = HashMap::new();
    for source in &data.sources {
        if let Some(first) = sources.get(source.name.name.as_str()) {
            diags.push(duplicate(
                format!("the data source `{}` is declared twice", source.name.name),
                &source.name,
                first,
                "rename one of the sources",
            ));
        } else {
            sources.insert(&source.name.name, &source.name);
        }
        check_source(source, diags);
    }
    let names: Vec<&str> = data
        .sources
        .iter()
        .filter(|s| !s.unlabeled)
        .map(|s| s.name.name.as_str())
        .collect();
    for synthetic in &data.synthetic {
        let from = &synthetic.from;
        if data
            .sources
            .iter()
            .any(|s| s.unlabeled && s.name.name == from.name)
        {
            diags.push(
                Diagnostic::new(
                    Code::UnknownSource,
                    format!(
                        "`{}` holds unlabeled pairs, and synthetic pairs are generated from labeled ones",
                        from.name
                    ),
                )
                .at(from.span, "unlabeled pairs")
                .help(match names.first() {
                    Some(labeled) => format!("generate from a labeled source: `synthetic from {labeled}`"),
                    None => "declare a source of labeled pairs to generate from, e.g. `golden \
                             \"data/golden.jsonl\"`"
                        .to_string(),
                }),
            );
            continue;
        }
        check_synthetic(synthetic, &names, diags);
    }
    for (i, mix) in data.mixes.iter().enumerate() {
        if i > 0 {
            diags.push(
                Diagnostic::new(Code::Duplicate, "the `data` block has a second `mix`")
                    .at(mix.span, "second `mix`")
                    .with(data.mixes[0].span, "the first `mix` is here")
                    .help("keep one `mix` line that gives every share"),
            );
        }
        check_mix(mix, diags);
    }
    check_mix_sources(data, diags);
    for (i, split) in data.splits.iter().enumerate() {
        if i > 0 {
            diags.push(
                Diagnostic::new(Code::Duplicate, "the `data` block has a second `split`")
                    .at(split.span, "second `split`")
                    .with(data.splits[0].span, "the first `split` is here")
                    .help("keep one `split` line"),
            );
        }
        if split.validation <= 0.0 || split.validation >= 1.0 {
            diags.push(
                Diagnostic::new(
                    Code::InvalidValue,
                    format!(
                        "the validation share must be above 0% and below 100%, not `{}`",
                        show_percent(split.validation)
                    ),
                )
                .at(split.validation_span, "out of range")
                .help("hold out a part of the data for validation, e.g. `split validation 10%`"),
            );
        }
    }
}

pub(super) fn check_source(source: &DataSource, diags: &mut Diagnostics) {
    if let Some(problem) = path_problem(&source.path) {
        let message = match problem {
            PathProblem::Empty => {
                format!("the data source `{}` has an empty path", source.name.name)
            }
            PathProblem::Absolute => format!("the data path `{}` is absolute", source.path),
            PathProblem::GoesUp => {
                format!(
                    "the data path `{}` goes outside the project with `..`",
                    source.path
                )
            }
        };
        let file = source
            .path
            .rsplit(['/', '\\'])
            .next()
            .filter(|f| !f.is_empty() && *f != "..")
            .map_or_else(|| format!("{}.jsonl", source.name.name), str::to_string);
        diags.push(
            Diagnostic::new(Code::PathEscape, message)
                .at(source.path_span, problem.label())
                .help(format!(
                    "data paths are relative to the pipeline's file and stay inside the project; \
                     put the data in a folder beside it, like `\"data/{file}\"`"
                )),
        );
    }
    let mut rule_names: HashMap<&str, &Ident> = HashMap::new();
    for rule in &source.clean {
        match rule {
            CleanRule::DropWhen {
                name, condition, ..
            } => {
                if let Some(first) = rule_names.get(name.name.as_str()) {
                    diags.push(duplicate(
                        format!("the clean rule `{}` is declared twice", name.name),
                        name,
                        first,
                        "rename one of the rules, or join their conditions with `or`",
                    ));
                } else {
                    rule_names.insert(&name.name, name);
                }
                check_clean_expr(condition, diags);
            }
            CleanRule::OutliersSigma { field, sigma, span } => {
                check_outlier_field(field, diags);
                if *sigma <= 0.0 {
                    diags.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            format!(
                                "the outlier cutoff must be above 0 sigma, not `{}`",
                                show_number(*sigma)
                            ),
                        )
                        .at(*span, "cutoff out of range")
                        .help(
                            "records further than N standard deviations from the mean are dropped; \
                             use N above 0, e.g. `beyond 3 sigma`",
                        ),
                    );
                }
            }
            CleanRule::OutliersQuantile {
                field,
                quantile,
                span,
            } => {
                check_outlier_field(field, diags);
                if *quantile <= 0.0 || *quantile >= 1.0 {
                    diags.push(
                        Diagnostic::new(
                            Code::InvalidValue,
                            format!(
                                "the quantile must be between 0 and 1 (both excluded), not `{}`",
                                show_number(*quantile)
                            ),
                        )
                        .at(*span, "quantile out of range")
                        .help("e.g. `above quantile 0.99` drops the highest 1% of records"),
                    );
                }
            }
            CleanRule::Duplicates { on, .. } => {
                for field in on {
                    if !CLICK_FIELDS.contains(&field.name.as_str()) {
                        diags.push(
                            Diagnostic::new(
                                Code::UnknownField,
                                format!("click logs have no field `{}`", field.name),
                            )
                            .at(field.span, "unknown field")
                            .help(
                                suggestion_help(
                                    &field.name,
                                    "click-log fields",
                                    CLICK_FIELDS.iter().copied(),
                                )
                                .unwrap_or_else(|| "name click-log fields".to_string()),
                            ),
                        );
                    }
                }
            }
        }
    }
}

/// `drop NAME when EXPR`: every bare name read must be a click-log field or session statistic.
pub(super) fn check_clean_expr(expr: &Expr, diags: &mut Diagnostics) {
    match &expr.kind {
        ExprKind::Path(segments) => check_clean_path(segments, diags),
        ExprKind::List(items) => {
            for item in items {
                check_clean_expr(item, diags);
            }
        }
        ExprKind::Call { args, .. } => {
            for arg in args {
                check_clean_expr(arg, diags);
            }
        }
        ExprKind::Lookup { keys, .. } => {
            for key in keys {
                check_clean_expr(key, diags);
            }
        }
        ExprKind::Unary { operand, .. } => check_clean_expr(operand, diags),
        ExprKind::Binary { lhs, rhs, .. } => {
            check_clean_expr(lhs, diags);
            check_clean_expr(rhs, diags);
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            check_clean_expr(cond, diags);
            check_clean_expr(then, diags);
            check_clean_expr(otherwise, diags);
        }
        ExprKind::Match { scrutinee, arms } => {
            check_clean_expr(scrutinee, diags);
            for arm in arms {
                check_clean_expr(&arm.body, diags);
            }
        }
        ExprKind::When { arms, otherwise } => {
            for arm in arms {
                check_clean_expr(&arm.condition, diags);
                check_clean_expr(&arm.body, diags);
            }
            if let Some(otherwise) = otherwise {
                check_clean_expr(otherwise, diags);
            }
        }
        ExprKind::Paren(inner) => check_clean_expr(inner, diags),
        ExprKind::Number(_)
        | ExprKind::Percent(_)
        | ExprKind::Duration(_)
        | ExprKind::String(_)
        | ExprKind::Bool(_)
        | ExprKind::Abstain => {}
    }
}

pub(super) fn check_clean_path(segments: &[Ident], diags: &mut Diagnostics) {
    let Some(first) = segments.first() else {
        return;
    };
    let known = CLICK_FIELDS
        .iter()
        .chain(SESSION_STATS)
        .any(|f| *f == first.name);
    if !known {
        let candidates = CLICK_FIELDS.iter().chain(SESSION_STATS).copied();
        let help = match did_you_mean(&first.name, candidates) {
            Some(best) => format!("did you mean `{best}`?"),
            None => format!(
                "a clean rule reads the click-log fields ({}) and the per-session statistics ({})",
                backticked(CLICK_FIELDS),
                backticked(SESSION_STATS)
            ),
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownField,
                format!("click logs have no field `{}`", first.name),
            )
            .at(first.span, "unknown field")
            .help(help),
        );
        return;
    }
    if let Some(second) = segments.get(1) {
        diags.push(
            Diagnostic::new(
                Code::UnknownField,
                format!(
                    "the click-log field `{}` has no field `{}`",
                    first.name, second.name
                ),
            )
            .at(second.span, "unknown field")
            .with(first.span, "a plain value")
            .help(format!(
                "click-log fields are plain values; write `{}` alone",
                first.name
            )),
        );
    }
}

pub(super) fn check_outlier_field(field: &Ident, diags: &mut Diagnostics) {
    if NUMERIC_FIELDS.contains(&field.name.as_str()) {
        return;
    }
    let known = CLICK_FIELDS
        .iter()
        .chain(SESSION_STATS)
        .any(|f| *f == field.name);
    let message = if known {
        format!("`{}` is not a numeric click-log field", field.name)
    } else {
        format!("click logs have no field `{}`", field.name)
    };
    let help = match did_you_mean(&field.name, NUMERIC_FIELDS.iter().copied()) {
        Some(best) if !known => format!("did you mean `{best}`?"),
        _ => format!(
            "outliers are dropped on a numeric field: {}",
            backticked(NUMERIC_FIELDS)
        ),
    };
    diags.push(
        Diagnostic::new(Code::UnknownField, message)
            .at(
                field.span,
                if known {
                    "not a number"
                } else {
                    "unknown field"
                },
            )
            .help(help),
    );
}

pub(super) fn check_synthetic(
    synthetic: &SyntheticDecl,
    sources: &[&str],
    diags: &mut Diagnostics,
) {
    let from = &synthetic.from;
    if !sources.contains(&from.name.as_str()) {
        let help = suggestion_help(&from.name, "declared sources", sources.iter().copied())
            .unwrap_or_else(|| {
                format!(
                    "declare the source in the `data` block, e.g. `{} \"data/{}.jsonl\"`",
                    from.name, from.name
                )
            });
        diags.push(
            Diagnostic::new(
                Code::UnknownSource,
                format!("there is no data source `{}` to generate from", from.name),
            )
            .at(from.span, "not a declared source")
            .help(help),
        );
    }
    check_settings(&synthetic.settings, Block::Synthetic, diags);
}

/// Synthetic pairs need a `mix` saying their share, and a synthetic share needs synthetic pairs:
/// otherwise no batch could hold the share.
pub(super) fn check_mix_sources(data: &DataBlock, diags: &mut Diagnostics) {
    match (data.synthetic.first(), data.mixes.first()) {
        (Some(synthetic), None) => diags.push(
            Diagnostic::new(
                Code::MissingPart,
                "the `data` block makes synthetic pairs but has no `mix` to say their share",
            )
            .at(synthetic.span, "synthetic pairs")
            .help("say the share of real and synthetic pairs in every batch, e.g. `mix real 30% synthetic 70%`"),
        ),
        (None, Some(mix)) => {
            let synthetic = mix
                .shares
                .iter()
                .find(|(name, share, _)| name.name == "synthetic" && *share > 0.0);
            if let Some((_, share, span)) = synthetic {
                diags.push(
                    Diagnostic::new(
                        Code::MissingPart,
                        format!(
                            "the `mix` takes {} synthetic pairs, but the `data` block makes none",
                            show_percent(*share)
                        ),
                    )
                    .at(*span, "no synthetic pairs to take")
                    .help("add `synthetic from SOURCE { count 20000 }`, or train on real pairs alone with `mix real 100%`"),
                );
            }
        }
        _ => {}
    }
}

pub(super) fn check_mix(mix: &MixDecl, diags: &mut Diagnostics) {
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for (name, _, _) in &mix.shares {
        if !MIX_KINDS.contains(&name.name.as_str()) {
            let help = match did_you_mean(&name.name, MIX_KINDS.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => "a mix divides the training data between `real` pairs (from the declared \
                         sources) and `synthetic` pairs; write `real` or `synthetic`"
                    .to_string(),
            };
            diags.push(
                Diagnostic::new(
                    Code::UnknownSource,
                    format!(
                        "a mix has shares of `real` and `synthetic` data, not of `{}`",
                        name.name
                    ),
                )
                .at(name.span, "not `real` or `synthetic`")
                .help(help),
            );
        } else if let Some(first) = seen.get(name.name.as_str()) {
            diags.push(duplicate(
                format!("the mix gives a share to `{}` twice", name.name),
                name,
                first,
                "give each kind of data one share",
            ));
        } else {
            seen.insert(&name.name, name);
        }
    }
    let total: f64 = mix.shares.iter().map(|(_, share, _)| share).sum();
    if (total - 1.0).abs() > 1e-9 {
        let shown = show_percent(total);
        let mut help = "change the shares so they add up to exactly 100%".to_string();
        if let Some(((last, last_share, _), rest)) = mix.shares.split_last() {
            let fixed = last_share + (1.0 - total);
            if !rest.is_empty() && fixed > 0.0 && fixed <= 1.0 {
                help.push_str(&format!(
                    ", e.g. `{}{} {}`",
                    rest.iter()
                        .map(|(n, s, _)| format!("{} {} ", n.name, show_percent(*s)))
                        .collect::<String>(),
                    last.name,
                    show_percent(fixed)
                ));
            }
        }
        // The shares themselves, without the `mix` keyword.
        let span = match (mix.shares.first(), mix.shares.last()) {
            (Some((_, _, first)), Some((_, _, last))) => first.to(*last),
            _ => mix.span,
        };
        diags.push(
            Diagnostic::new(
                Code::MixSum,
                format!("the shares add up to {shown}, not 100%"),
            )
            .at(span, format!("these add up to {shown}"))
            .help(help),
        );
    }
}

pub(super) enum PathProblem {
    Empty,
    Absolute,
    GoesUp,
}

impl PathProblem {
    pub(super) fn label(&self) -> &'static str {
        match self {
            PathProblem::Empty => "empty path",
            PathProblem::Absolute => "absolute path",
            PathProblem::GoesUp => "goes up with `..`",
        }
    }
}

pub(super) fn path_problem(path: &str) -> Option<PathProblem> {
    if path.trim().is_empty() {
        return Some(PathProblem::Empty);
    }
    let bytes = path.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if path.starts_with('/') || path.starts_with('\\') || drive {
        return Some(PathProblem::Absolute);
    }
    if path.split(['/', '\\']).any(|part| part == "..") {
        return Some(PathProblem::GoesUp);
    }
    None
}
