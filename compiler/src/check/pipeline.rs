//! Checks of one `pipeline` block: its data sources and clean rules, teachers, student,
//! quantization and monitoring, against the known targets, losses, metrics and settings.

use std::collections::{HashMap, HashSet};

use crate::diagnostics::{Code, Diagnostic, Diagnostics, did_you_mean, suggestion_help};
use crate::source::Span;
use crate::syntax::ast::{
    AlertDecl, CleanRule, DataBlock, DataSource, DistillDecl, DriftDecl, EarlyStopDecl, Expr,
    ExprKind, Ident, LossDecl, MixDecl, ModelSpec, PipelineDecl, QuantizeDecl, Setting,
    SettingValue, StudentDecl, SyntheticDecl, TeacherDecl, Threshold,
};
use crate::vocabulary::{self, Block, Kind, MetricUnit, STRATEGIES};

/// What the pipeline checks need to know of the policy a pipeline trains on.
pub struct PolicyOutline<'a> {
    pub name: &'a str,
    pub dimensions: Vec<&'a str>,
}

/// Checks one pipeline; `policy` is the policy it names when that policy was found (None: the
/// caller already reported it missing, skip the policy-dependent checks).
pub fn check_pipeline(
    pipeline: &PipelineDecl,
    policy: Option<&PolicyOutline<'_>>,
    diagnostics: &mut Diagnostics,
) {
    if let Some(policy) = policy {
        check_policy_name(pipeline, policy, diagnostics);
    }
    for (i, data) in pipeline.data.iter().enumerate() {
        if i > 0 {
            diagnostics.push(
                Diagnostic::new(Code::MissingPart, "the pipeline has a second `data` block")
                    .at(data.span, "second `data` block")
                    .help(
                        "a pipeline has one `data` block; move these statements into the first one",
                    ),
            );
        }
        check_data(data, diagnostics);
    }
    check_teachers(pipeline, policy, diagnostics);
    check_students(pipeline, diagnostics);
    for quantize in &pipeline.quantize {
        check_quantize(quantize, diagnostics);
    }
    for monitor in &pipeline.monitors {
        for alert in &monitor.alerts {
            check_alert(alert, diagnostics);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

/// What a teacher may predict besides a dimension of the policy by name.
const TARGETS: &[&str] = &["dimensions", "overall", "grades", "click"];
const LOSSES: &[&str] = &["mse", "bce", "kl"];
/// The fields of a click-log record.
const CLICK_FIELDS: &[&str] = &[
    "query_id",
    "candidate_id",
    "ts",
    "position",
    "clicked",
    "session",
    "dwell_seconds",
    "propensity",
];
/// Per-session statistics the cleaner derives for every click-log record.
const SESSION_STATS: &[&str] = &[
    "clicks_per_minute",
    "session_clicks",
    "session_impressions",
    "session_seconds",
    "distinct_queries",
];
/// The click-log fields and statistics that are numbers, so have outliers.
const NUMERIC_FIELDS: &[&str] = &[
    "dwell_seconds",
    "position",
    "propensity",
    "clicks_per_minute",
    "session_clicks",
    "session_impressions",
    "session_seconds",
    "distinct_queries",
];
const MIX_KINDS: &[&str] = &["real", "synthetic"];
const DRIFT_REFERENCES: &[&str] = &["policy", "rubric"];
const QUANTIZE_SCHEMES: &[&str] = &["int8"];

/// Settings that moved to another block, with where they are written now: a setting has one
/// place and one meaning.
const MOVED: &[(Block, &str, &str)] = &[
    (
        Block::Train,
        "weight_decay",
        "`regularize weight_decay 0.01`",
    ),
    (Block::Train, "max_len", "`model encoder { max_len 256 }`"),
    (Block::Encoder, "dropout", "`regularize dropout 0.1`"),
];

// ---------------------------------------------------------------------------------------------
// The pipeline's header

fn check_policy_name(pipeline: &PipelineDecl, policy: &PolicyOutline<'_>, diags: &mut Diagnostics) {
    let named = &pipeline.policy;
    if named.name == policy.name {
        return;
    }
    diags.push(
        Diagnostic::new(
            Code::PipelinePolicy,
            format!(
                "the pipeline `{}` is for `{}`, but the policy here is `{}`",
                pipeline.name.name, named.name, policy.name
            ),
        )
        .at(named.span, "no policy of this name")
        .help(format!(
            "name the policy as its `policy` line does: `pipeline {} for {}`",
            pipeline.name.name, policy.name
        )),
    );
}

// ---------------------------------------------------------------------------------------------
// Data

fn check_data(data: &DataBlock, diags: &mut Diagnostics) {
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
    let names: Vec<&str> = data.sources.iter().map(|s| s.name.name.as_str()).collect();
    for synthetic in &data.synthetic {
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

fn check_source(source: &DataSource, diags: &mut Diagnostics) {
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
fn check_clean_expr(expr: &Expr, diags: &mut Diagnostics) {
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

fn check_clean_path(segments: &[Ident], diags: &mut Diagnostics) {
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

fn check_outlier_field(field: &Ident, diags: &mut Diagnostics) {
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

fn check_synthetic(synthetic: &SyntheticDecl, sources: &[&str], diags: &mut Diagnostics) {
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
fn check_mix_sources(data: &DataBlock, diags: &mut Diagnostics) {
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

fn check_mix(mix: &MixDecl, diags: &mut Diagnostics) {
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

enum PathProblem {
    Empty,
    Absolute,
    GoesUp,
}

impl PathProblem {
    fn label(&self) -> &'static str {
        match self {
            PathProblem::Empty => "empty path",
            PathProblem::Absolute => "absolute path",
            PathProblem::GoesUp => "goes up with `..`",
        }
    }
}

fn path_problem(path: &str) -> Option<PathProblem> {
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

// ---------------------------------------------------------------------------------------------
// Teachers

fn check_teachers(
    pipeline: &PipelineDecl,
    policy: Option<&PolicyOutline<'_>>,
    diags: &mut Diagnostics,
) {
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for teacher in &pipeline.teachers {
        if let Some(first) = seen.get(teacher.name.name.as_str()) {
            diags.push(duplicate(
                format!("the teacher `{}` is declared twice", teacher.name.name),
                &teacher.name,
                first,
                "rename one of the teachers, or merge the two blocks",
            ));
        } else {
            seen.insert(&teacher.name.name, &teacher.name);
        }
        check_teacher(teacher, policy, diags);
    }

    if pipeline.students.is_empty() || pipeline.students.iter().all(|s| s.distill.is_empty()) {
        // Reported as a missing student or missing `distill`; every teacher would be "unused" too.
        return;
    }
    // A misspelled `distill` counts for the teacher its error suggests: that error explains it,
    // and an "unused teacher" warning echoing the typo would only add noise.
    let declared: Vec<&str> = pipeline
        .teachers
        .iter()
        .map(|t| t.name.name.as_str())
        .collect();
    let distilled: HashSet<&str> = pipeline
        .students
        .iter()
        .flat_map(|s| &s.distill)
        .map(|d| d.teacher.name.as_str())
        .map(|name| {
            if declared.contains(&name) {
                name
            } else {
                did_you_mean(name, declared.iter().copied()).unwrap_or(name)
            }
        })
        .collect();
    let mut warned = HashSet::new();
    for teacher in &pipeline.teachers {
        let name = teacher.name.name.as_str();
        if distilled.contains(name) || !warned.insert(name) {
            continue;
        }
        diags.push(
            Diagnostic::new(
                Code::UnusedTeacher,
                format!("no student distills from the teacher `{name}`"),
            )
            .at(teacher.name.span, "never distilled from")
                        .help(format!(
                "distill from it in the student (`distill {name} weight 0.4 loss {}`), or delete the teacher",
                teacher.loss.as_ref().map_or("mse", |l| l.kind.name.as_str())
            )),
        );
    }
}

fn check_teacher(
    teacher: &TeacherDecl,
    policy: Option<&PolicyOutline<'_>>,
    diags: &mut Diagnostics,
) {
    let name = &teacher.name;
    let owner = format!("the teacher `{}`", name.name);
    if teacher.model.is_empty() {
        diags.push(
            Diagnostic::new(Code::MissingPart, format!("{owner} has no `model`"))
                .at(name.span, "no `model` in this teacher")
                .help(
                    "add a model: `model encoder { layers 6, hidden 384, heads 12 }` or \
                     `model init \"models/NAME\"`",
                ),
        );
    }
    check_models(&teacher.model, &owner, diags);

    if teacher.predicts.is_empty() {
        diags.push(
            Diagnostic::new(Code::MissingPart, format!("{owner} has no `predicts`"))
                .at(name.span, "no `predicts` in this teacher")
                .help(
                    "say what it learns, e.g. `predicts dimensions, overall` or `predicts click`",
                ),
        );
    } else if let Some(policy) = policy {
        for target in &teacher.predicts {
            check_target(target, policy, diags);
        }
    }

    match &teacher.loss {
        None => diags.push(
            Diagnostic::new(Code::MissingPart, format!("{owner} has no `loss`"))
                .at(name.span, "no `loss` in this teacher")
                .help("add `loss mse` (for scores), `loss bce` (for clicks) or `loss kl` (for grades)"),
        ),
        Some(loss) => check_loss(loss, diags),
    }
    check_settings(&teacher.train, Block::Train, diags);
    check_settings(&teacher.regularize, Block::Regularize, diags);
}

fn check_target(target: &Ident, policy: &PolicyOutline<'_>, diags: &mut Diagnostics) {
    let name = target.name.as_str();
    if TARGETS.contains(&name) || policy.dimensions.contains(&name) {
        return;
    }
    let candidates = TARGETS.iter().chain(&policy.dimensions).copied();
    let help = match did_you_mean(name, candidates) {
        Some(best) => format!("did you mean `{best}`?"),
        None if policy.dimensions.is_empty() => {
            "a teacher predicts `dimensions`, `overall`, `grades` or `click`".to_string()
        }
        None => format!(
            "a teacher predicts `dimensions`, `overall`, `grades`, `click` or one dimension of `{}` \
             by name ({})",
            policy.name,
            backticked(&policy.dimensions)
        ),
    };
    diags.push(
        Diagnostic::new(
            Code::UnknownTarget,
            format!(
                "a teacher cannot predict `{name}`: `{}` does not produce it",
                policy.name
            ),
        )
        .at(target.span, "unknown target")
        .help(help),
    );
}

fn check_loss(loss: &LossDecl, diags: &mut Diagnostics) {
    let kind = &loss.kind;
    if !LOSSES.contains(&kind.name.as_str()) {
        let help = match did_you_mean(&kind.name, LOSSES.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => {
                "the losses are `mse` (for scores), `bce` (for clicks and other yes/no targets) \
                     and `kl` (for grades and other distributions)"
                    .to_string()
            }
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownLoss,
                format!("the trainer has no loss `{}`", kind.name),
            )
            .at(kind.span, "unknown loss")
            .help(help),
        );
    }
    if let Some((temperature, span)) = loss.temperature.filter(|(t, _)| *t <= 0.0) {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "the temperature must be above 0, not `{}`",
                    show_number(temperature)
                ),
            )
            .at(span, "out of range")
            .help("a temperature softens the teacher's outputs; use a value above 0, e.g. `temperature 2`"),
        );
    }
}

/// Checks the `model` lines of a teacher or student; returns the first one's encoder size
/// (layers, hidden and the span of `encoder { ... }`) when both are valid.
fn check_models(
    models: &[ModelSpec],
    owner: &str,
    diags: &mut Diagnostics,
) -> Option<(f64, f64, Span)> {
    for (i, model) in models.iter().enumerate() {
        if i > 0 {
            diags.push(
                Diagnostic::new(Code::Duplicate, format!("{owner} has a second `model`"))
                    .at(model_span(model), "second `model`")
                    .with(model_span(&models[0]), "the first `model` is here")
                    .help("keep one `model` line"),
            );
        }
        match model {
            ModelSpec::Encoder { settings, span } => {
                check_settings(settings, Block::Encoder, diags);
                check_heads(settings, diags);
                // A misspelled setting is reported as unknown; it is not also "missing".
                let misspelled = settings
                    .iter()
                    .any(|s| vocabulary::setting(Block::Encoder, &s.key.name).is_none());
                if !misspelled {
                    check_required(settings, Block::Encoder, *span, diags);
                }
            }
            ModelSpec::Init { path, span } => {
                if let Some(problem) = path_problem(path) {
                    let message = match problem {
                        PathProblem::Empty => format!("{owner} has an empty model path"),
                        PathProblem::Absolute => format!("the model path `{path}` is absolute"),
                        PathProblem::GoesUp => {
                            format!("the model path `{path}` goes outside the project with `..`")
                        }
                    };
                    diags.push(
                        Diagnostic::new(Code::PathEscape, message)
                            .at(*span, problem.label())
                            .help(
                                "model paths are relative to the pipeline's file and stay inside \
                                 the project, e.g. `model init \"models/minilm\"`",
                            ),
                    );
                }
            }
        }
    }
    match models.first()? {
        ModelSpec::Encoder { settings, span } => {
            let layers = count_setting(settings, "layers")?;
            let hidden = count_setting(settings, "hidden")?;
            Some((layers, hidden, *span))
        }
        ModelSpec::Init { .. } => None,
    }
}

/// Settings of the block without a default must be written.
fn check_required(settings: &[Setting], block: Block, span: Span, diags: &mut Diagnostics) {
    let missing: Vec<&vocabulary::SettingSpec> = vocabulary::settings(block)
        .filter(|spec| spec.default == vocabulary::Default::Required)
        .filter(|spec| !settings.iter().any(|s| s.key.name == spec.name))
        .collect();
    if missing.is_empty() {
        return;
    }
    let names: Vec<&str> = missing.iter().map(|s| s.name).collect();
    let example: Vec<String> = missing
        .iter()
        .map(|s| format!("{} {}", s.name, s.example))
        .collect();
    diags.push(
        Diagnostic::new(
            Code::MissingPart,
            format!("{} does not say its {}", block.syntax(), backticked(&names)),
        )
        .at(span, "incomplete model")
        .help(format!(
            "a model's size has no default; add {}",
            example
                .iter()
                .map(|e| format!("`{e}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    );
}

fn model_span(model: &ModelSpec) -> Span {
    match model {
        ModelSpec::Encoder { span, .. } | ModelSpec::Init { span, .. } => *span,
    }
}

/// `heads` must divide `hidden` (each head gets an equal slice).
fn check_heads(settings: &[Setting], diags: &mut Diagnostics) {
    let (Some(heads), Some(hidden)) = (
        count_setting(settings, "heads"),
        count_setting(settings, "hidden"),
    ) else {
        return;
    };
    if hidden % heads == 0.0 {
        return;
    }
    let (Some(heads_setting), Some(hidden_setting)) = (
        settings.iter().find(|s| s.key.name == "heads"),
        settings.iter().find(|s| s.key.name == "hidden"),
    ) else {
        return;
    };
    let mut divisors: Vec<u64> = if hidden <= 1e12 {
        let hidden = hidden as u64;
        (1..=1024u64)
            .filter(|d| hidden.checked_rem(*d) == Some(0))
            .collect()
    } else {
        Vec::new()
    };
    divisors.sort_by(|a, b| {
        (*a as f64 - heads)
            .abs()
            .total_cmp(&(*b as f64 - heads).abs())
    });
    divisors.truncate(3);
    divisors.sort_unstable();
    let help = if divisors.is_empty() {
        format!(
            "choose a number of heads that divides {}",
            show_number(hidden)
        )
    } else {
        format!(
            "choose a number of heads that divides {}, such as {}",
            show_number(hidden),
            divisors
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    diags.push(
        Diagnostic::new(
            Code::InvalidValue,
            format!(
                "`heads {}` does not divide `hidden {}`",
                show_number(heads),
                show_number(hidden)
            ),
        )
        .at(heads_setting.value_span, "does not divide the hidden size")
        .with(hidden_setting.value_span, "the hidden size")
        .help(help),
    );
}

/// The value of a `Kind::Count` setting when it is given and valid.
fn count_setting(settings: &[Setting], key: &str) -> Option<f64> {
    settings
        .iter()
        .find(|s| s.key.name == key)
        .and_then(|s| match s.value {
            SettingValue::Number(v) if Kind::Count.accepts(&s.value) => Some(v),
            _ => None,
        })
}

fn check_settings(settings: &[Setting], block: Block, diags: &mut Diagnostics) {
    let keys = vocabulary::settings(block).map(|s| s.name);
    let mut seen: HashMap<&str, &Ident> = HashMap::new();
    for setting in settings {
        let key = &setting.key;
        let Some(spec) = vocabulary::setting(block, &key.name) else {
            let moved = MOVED
                .iter()
                .find(|(b, name, _)| *b == block && *name == key.name);
            let help = match moved {
                Some((_, name, place)) => {
                    format!(
                        "`{name}` has one place, for teachers and the student alike: write {place}"
                    )
                }
                None => suggestion_help(&key.name, "settings", keys.clone())
                    .unwrap_or_else(|| format!("{} takes no settings", block.syntax())),
            };
            diags.push(
                Diagnostic::new(
                    Code::UnknownSetting,
                    format!("{} takes no setting `{}`", block.syntax(), key.name),
                )
                .at(key.span, "unknown setting")
                .help(help),
            );
            continue;
        };
        if let Some(first) = seen.get(key.name.as_str()) {
            diags.push(duplicate(
                format!("`{}` is set twice in {}", key.name, block.syntax()),
                key,
                first,
                "keep one of the two",
            ));
        } else {
            seen.insert(&key.name, key);
        }
        let (want, example) = (spec.kind, spec.example);
        if want.accepts(&setting.value) {
            continue;
        }
        let help = match (&setting.value, want) {
            (SettingValue::Name(n), Kind::Strategy) => {
                match did_you_mean(n, STRATEGIES.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("write `{} {example}`", key.name),
                }
            }
            (SettingValue::String(s), Kind::Strategy) if STRATEGIES.contains(&s.as_str()) => {
                format!("write the strategy without quotes: `{} {s}`", key.name)
            }
            _ => format!(
                "write {}, e.g. `{} {example}`",
                want.requirement(),
                key.name
            ),
        };
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "`{}` must be {}, not `{}`",
                    key.name,
                    want.requirement(),
                    show_value(&setting.value)
                ),
            )
            .at(setting.value_span, "invalid value")
            .help(help),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Students

fn check_students(pipeline: &PipelineDecl, diags: &mut Diagnostics) {
    let Some(first) = pipeline.students.first() else {
        diags.push(
            Diagnostic::new(
                Code::MissingPart,
                format!("the pipeline `{}` has no `student`", pipeline.name.name),
            )
            .at(pipeline.name.span, "no `student` in this pipeline")
            .help(
                "add the model to serve, e.g. `student { model encoder { layers 2, hidden 128, heads 4 } \
                 distill policy weight 1.0 loss mse }`",
            ),
        );
        return;
    };
    for (i, student) in pipeline.students.iter().enumerate() {
        if i > 0 {
            diags.push(
                Diagnostic::new(Code::MissingPart, "the pipeline has a second `student`")
                    .at(student_head(student), "second `student`")
                    .with(student_head(first), "the first `student` is here")
                    .help(
                        "a pipeline trains one student, the model it serves; merge the two blocks \
                         or move one into a pipeline of its own",
                    ),
            );
        }
        check_student(student, pipeline, diags);
    }
}

fn check_student(student: &StudentDecl, pipeline: &PipelineDecl, diags: &mut Diagnostics) {
    let head = student_head(student);
    if student.model.is_empty() {
        diags.push(
            Diagnostic::new(Code::MissingPart, "the student has no `model`")
                .at(head, "no `model` in this student")
                .help(
                    "add a model: `model encoder { layers 2, hidden 128, heads 4 }` or \
                     `model init \"models/NAME\"`",
                ),
        );
    }
    let size = check_models(&student.model, "the student", diags);

    if student.distill.is_empty() {
        diags.push(
            Diagnostic::new(Code::MissingPart, "the student distills from no teacher")
                .at(head, "no `distill` in this student")
                .help(
                    "add a `distill` line per teacher, e.g. `distill policy weight 1.0 loss mse`",
                ),
        );
    }
    let teacher_names: Vec<&str> = pipeline
        .teachers
        .iter()
        .map(|t| t.name.name.as_str())
        .collect();
    let mut compared = HashSet::new();
    for distill in &student.distill {
        check_distill(distill, &teacher_names, diags);
        let Some((layers, hidden, span)) = size else {
            continue;
        };
        let Some(teacher) = pipeline
            .teachers
            .iter()
            .find(|t| t.name.name == distill.teacher.name)
        else {
            continue;
        };
        if !compared.insert(teacher.name.name.as_str()) {
            continue;
        }
        let Some((t_layers, t_hidden, t_span)) = teacher_size(teacher) else {
            continue;
        };
        if layers * hidden > t_layers * t_hidden {
            diags.push(
                Diagnostic::new(
                    Code::StudentLarger,
                    format!(
                        "the student ({} × {} = {}) is larger than the teacher `{}` ({} × {} = {})",
                        show_number(layers),
                        show_number(hidden),
                        show_number(layers * hidden),
                        teacher.name.name,
                        show_number(t_layers),
                        show_number(t_hidden),
                        show_number(t_layers * t_hidden)
                    ),
                )
                .at(span, "the student's size")
                .with(
                    t_span,
                    format!("the teacher `{}`'s size", teacher.name.name),
                )
                .help(format!(
                    "distillation compresses teachers into a smaller model for serving; give the \
                     student fewer layers or a smaller hidden size than `{}`",
                    teacher.name.name
                )),
            );
        }
    }

    for drift in &student.drift {
        check_drift(drift, diags);
    }
    check_settings(&student.regularize, Block::Regularize, diags);
    if let Some(early_stop) = &student.early_stop {
        check_early_stop(early_stop, diags);
    }
    check_settings(&student.train, Block::Train, diags);
}

/// A teacher's encoder size without reporting anything (the teacher's own check reports).
fn teacher_size(teacher: &TeacherDecl) -> Option<(f64, f64, Span)> {
    match teacher.model.first()? {
        ModelSpec::Encoder { settings, span } => Some((
            count_setting(settings, "layers")?,
            count_setting(settings, "hidden")?,
            *span,
        )),
        ModelSpec::Init { .. } => None,
    }
}

/// The `student` keyword when the block has no doc comment in front; else the whole block.
fn student_head(student: &StudentDecl) -> Span {
    let keyword = "student".len();
    if student.docs.span.is_none() && student.span.len() >= keyword {
        let start = student.span.start as usize;
        Span::new(student.span.file, start, start + keyword)
    } else {
        student.span
    }
}

fn check_distill(distill: &DistillDecl, teachers: &[&str], diags: &mut Diagnostics) {
    let teacher = &distill.teacher;
    if !teachers.contains(&teacher.name.as_str()) {
        let help = suggestion_help(&teacher.name, "teachers", teachers.iter().copied())
            .unwrap_or_else(|| {
                format!(
                    "declare it first: `teacher {} {{ model ... predicts ... loss ... }}`",
                    teacher.name
                )
            });
        diags.push(
            Diagnostic::new(
                Code::UnknownTeacher,
                format!("there is no teacher `{}` to distill from", teacher.name),
            )
            .at(teacher.span, "not a declared teacher")
            .help(help),
        );
    }
    if distill.weight < 0.0 {
        diags.push(
            Diagnostic::new(
                Code::NegativeWeight,
                format!(
                    "the distillation weight for `{}` is negative (`{}`)",
                    teacher.name,
                    show_number(distill.weight)
                ),
            )
            .at(distill.weight_span, "negative weight")
            .help(format!(
                "use a weight of 0 or more; to stop learning from `{}`, delete its `distill` line",
                teacher.name
            )),
        );
    }
    check_loss(&distill.loss, diags);
}

fn check_drift(drift: &DriftDecl, diags: &mut Diagnostics) {
    if drift.weight < 0.0 {
        diags.push(
            Diagnostic::new(
                Code::NegativeWeight,
                format!(
                    "the drift penalty is negative (`{}`)",
                    show_number(drift.weight)
                ),
            )
            .at(drift.weight_span, "negative penalty")
            .help(
                "use a penalty of 0 or more; a negative one would reward the student for drifting \
                 away from the policy",
            ),
        );
    }
    if !(0.0..=1.0).contains(&drift.tolerance) {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "the drift tolerance must be between 0 and 1, not `{}`",
                    show_number(drift.tolerance)
                ),
            )
            .at(drift.tolerance_span, "out of range")
            .help("the tolerance is the target gap between the student's and the reference's scores, e.g. `tolerance 0.05`"),
        );
    }
    if let Some((0, span)) = drift.rebalance_every {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                "the penalty must be rebalanced every 1 epoch or more, not every 0",
            )
            .at(span, "out of range")
            .help("write e.g. `rebalance every 2 epochs`, or leave `rebalance every` out to keep the penalty fixed"),
        );
    }
    let unknown_reference = drift
        .against
        .as_ref()
        .filter(|a| !DRIFT_REFERENCES.contains(&a.name.as_str()));
    if let Some(against) = unknown_reference {
        let help = match did_you_mean(&against.name, DRIFT_REFERENCES.iter().copied()) {
            Some(best) => format!("did you mean `{best}`?"),
            None => "write `against policy` (the policy teacher's scores, the default) or \
                     `against rubric` (the rubric's labels)"
                .to_string(),
        };
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "the drift penalty cannot be measured against `{}`",
                    against.name
                ),
            )
            .at(against.span, "not `policy` or `rubric`")
            .help(help),
        );
    }
}

fn check_early_stop(early_stop: &EarlyStopDecl, diags: &mut Diagnostics) {
    // The metric is reported when unknown; early stopping watches it rise or fall, any unit.
    let _ = metric_kind(&early_stop.metric, diags);
    if early_stop.patience == 0 {
        // The statement ends with the patience, so its last character is the `0`.
        let end = early_stop.span.end as usize;
        let span = Span::new(early_stop.span.file, end.saturating_sub(1), end);
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                "the patience must be at least 1 epoch, not 0",
            )
            .at(span, "out of range")
            .help("training stops after this many epochs without improvement, e.g. `patience 3`"),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Quantization and monitoring

fn check_quantize(quantize: &QuantizeDecl, diags: &mut Diagnostics) {
    let scheme = &quantize.scheme;
    if !QUANTIZE_SCHEMES.contains(&scheme.name.as_str()) {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!("the quantization scheme `{}` is not supported", scheme.name),
            )
            .at(scheme.span, "unknown scheme")
            .help("the supported scheme is `int8`: write `quantize int8`"),
        );
    }
    if let Some((threshold, span)) = quantize.prune_heads_below.filter(|(t, _)| *t < 0.0) {
        diags.push(
            Diagnostic::new(
                Code::InvalidValue,
                format!(
                    "the pruning threshold must be 0 or more, not `{}`",
                    show_number(threshold)
                ),
            )
            .at(span, "out of range")
            .help("heads whose importance is below the threshold are removed, e.g. `prune heads below 0.01`"),
        );
    }
}

/// The unit of a metric; reports (and returns None for) a metric the runtime does not measure.
fn metric_kind(metric: &Ident, diags: &mut Diagnostics) -> Option<MetricUnit> {
    let name = metric.name.as_str();
    if let Some(spec) = vocabulary::metric(name) {
        return Some(spec.unit);
    }
    let special_help = match name {
        "ndcg" => Some("say how many results it looks at, e.g. `ndcg@10`"),
        _ if name.starts_with("ndcg@") => {
            Some("`ndcg@K` needs a cutoff K of at least 1, e.g. `ndcg@10`")
        }
        _ => None,
    };
    let known = || {
        vocabulary::METRICS.iter().map(|m| {
            if m.name == "ndcg@K" {
                "ndcg@10"
            } else {
                m.name
            }
        })
    };
    let help = match (special_help, did_you_mean(name, known())) {
        (Some(help), _) => help.to_string(),
        (None, Some(best)) => format!("did you mean `{best}`?"),
        (None, None) => format!(
            "the known metrics are {}",
            backticked(
                &vocabulary::METRICS
                    .iter()
                    .map(|m| m.name)
                    .collect::<Vec<_>>()
            )
        ),
    };
    diags.push(
        Diagnostic::new(
            Code::UnknownMetric,
            format!("the runtime does not measure `{name}`"),
        )
        .at(metric.span, "unknown metric")
        .help(help),
    );
    None
}

fn check_alert(alert: &AlertDecl, diags: &mut Diagnostics) {
    let Some(kind) = metric_kind(&alert.metric, diags) else {
        return;
    };
    let metric = alert.metric.name.as_str();
    let span = alert.threshold_span;
    match (kind, alert.threshold) {
        (MetricUnit::Milliseconds, Threshold::Number(v) | Threshold::Percent(v)) => {
            let (label, example) = match alert.threshold {
                Threshold::Number(_) => ("a plain number", format!("{}ms", show_number(v))),
                _ => ("a percent", "20ms".to_string()),
            };
            diags.push(
                Diagnostic::new(
                    Code::ThresholdUnit,
                    format!("`{metric}` is a time, so its threshold needs a unit"),
                )
                .at(span, label)
                .help(format!(
                    "write the threshold as a duration (`us`, `ms`, `s`), e.g. `alert {metric} {} {example}`",
                    alert.op.symbol()
                )),
            );
        }
        (MetricUnit::Milliseconds, Threshold::Duration(_)) => {}
        (_, Threshold::Duration(_)) => {
            diags.push(
                Diagnostic::new(
                    Code::ThresholdUnit,
                    format!("`{metric}` is not a time, so its threshold cannot be a duration"),
                )
                .at(span, "a duration")
                .help("write a plain number or a percent, e.g. `0.70` or `70%`"),
            );
        }
        (
            kind @ (MetricUnit::Ratio | MetricUnit::Correlation),
            Threshold::Number(v) | Threshold::Percent(v),
        ) => {
            let lo = if kind == MetricUnit::Correlation {
                -1.0
            } else {
                0.0
            };
            if !(lo..=1.0).contains(&v) {
                let help = if matches!(alert.threshold, Threshold::Number(_))
                    && v > 1.0
                    && v <= 100.0
                {
                    format!(
                        "`{metric}` is between 0 and 1; write the threshold as a fraction (`{}`) or a percent (`{}%`)",
                        show_number(v / 100.0),
                        show_number(v)
                    )
                } else {
                    format!("`{metric}` is between {lo} and 1; use a threshold in that range")
                };
                diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "the threshold `{}` is outside [{lo}, 1], the range of `{metric}`",
                            show_threshold(alert.threshold)
                        ),
                    )
                    .at(span, "can never be crossed")
                    .help(help),
                );
            }
        }
        (MetricUnit::Nats, Threshold::Number(v) | Threshold::Percent(v)) => {
            if v < 0.0 {
                diags.push(
                    Diagnostic::new(
                        Code::InvalidValue,
                        format!(
                            "the threshold `{}` is below 0, the lowest `{metric}` can be",
                            show_threshold(alert.threshold)
                        ),
                    )
                    .at(span, "can never be crossed")
                    .help("use a threshold of 0 or more, e.g. `alert click_logloss > 0.5`"),
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn duplicate(message: String, again: &Ident, first: &Ident, help: &str) -> Diagnostic {
    Diagnostic::new(Code::Duplicate, message)
        .at(again.span, "declared again here")
        .with(first.span, "first declared here")
        .help(help)
}

/// A number as the user would write it (no float noise: `7.000000000000001` shows as `7`).
fn show_number(v: f64) -> String {
    let rounded = (v * 1e9).round() / 1e9;
    if rounded.is_finite() && rounded.abs() < 1e15 {
        format!("{}", rounded + 0.0)
    } else {
        format!("{v}")
    }
}

/// A fraction shown as a percent (`0.9` → `90%`).
fn show_percent(fraction: f64) -> String {
    format!("{}%", show_number(fraction * 100.0))
}

fn show_value(value: &SettingValue) -> String {
    match value {
        SettingValue::Number(v) => show_number(*v),
        SettingValue::Percent(v) => show_percent(*v),
        SettingValue::Duration(ms) => format!("{}ms", show_number(*ms)),
        SettingValue::String(s) => format!("\"{s}\""),
        SettingValue::Bool(b) => b.to_string(),
        SettingValue::Name(n) => n.clone(),
    }
}

fn show_threshold(threshold: Threshold) -> String {
    match threshold {
        Threshold::Number(v) => show_number(v),
        Threshold::Percent(v) => show_percent(v),
        Threshold::Duration(ms) => format!("{}ms", show_number(ms)),
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::source::FileId;
    use crate::syntax::ast::TopItem;
    use crate::syntax::{Limits, parse};

    /// The pipeline of the language sketch: checks clean.
    const SKETCH: &str = r#"
pipeline job_match_v3 for job_match {
  data {
    golden  "data/golden.jsonl"
    clicks  "data/clicks.jsonl" clean {
      drop bots when clicks_per_minute > 30
      drop outliers dwell_seconds beyond 3 sigma
    }
    synthetic from golden { count 20000, strategy coverage }
    mix real 30% synthetic 70%
    split validation 10% seed 7
  }
  teacher policy {
    model encoder { layers 6, hidden 384, heads 12 }
    predicts dimensions, overall
    loss mse
    train { epochs 5, lr 3e-5, batch 32 }
  }
  teacher click {
    model encoder { layers 4, hidden 256, heads 4 }
    predicts click
    loss bce
  }
  student {
    model encoder { layers 2, hidden 128, heads 4 }
    distill policy weight 0.6 loss mse
    distill click  weight 0.4 loss bce temperature 2
    drift penalty 0.5 tolerance 0.05 rebalance every 2 epochs
    regularize weight_decay 0.01 dropout 0.1
    early_stop on policy_alignment patience 3
  }
  quantize int8 { prune heads below 0.01 }
  monitor {
    alert policy_drift > 0.05
    alert click_auc < 0.70
    alert p99_latency > 20ms
  }
}
"#;

    fn outline() -> PolicyOutline<'static> {
        PolicyOutline {
            name: "job_match",
            dimensions: vec!["skill_match", "seniority", "industry", "location"],
        }
    }

    fn pipeline(text: &str) -> PipelineDecl {
        let parsed = parse(FileId(0), text, &Limits::default());
        assert!(
            !parsed.diagnostics.has_errors(),
            "does not parse: {:?}",
            parsed.diagnostics
        );
        parsed
            .tree
            .unwrap()
            .items
            .into_iter()
            .find_map(|item| match item {
                TopItem::Pipeline(p) => Some(p),
                _ => None,
            })
            .unwrap()
    }

    fn check_with(text: &str, policy: Option<&PolicyOutline<'_>>) -> Vec<Diagnostic> {
        let mut diagnostics = Diagnostics::new();
        check_pipeline(&pipeline(text), policy, &mut diagnostics);
        diagnostics.into_iter().collect()
    }

    fn check(text: &str) -> Vec<Diagnostic> {
        check_with(text, Some(&outline()))
    }

    fn codes(text: &str) -> Vec<Code> {
        check(text).iter().map(|d| d.code).collect()
    }

    /// The sketch with `from` replaced by `to` (which must occur).
    fn edit(from: &str, to: &str) -> String {
        assert!(SKETCH.contains(from), "`{from}` is not in the sketch");
        SKETCH.replacen(from, to, 1)
    }

    /// The text the primary span of the only diagnostic covers.
    fn primary_text(text: &str) -> String {
        let found = check(text);
        assert_eq!(found.len(), 1, "{found:?}");
        text[found[0].span().unwrap().range()].to_string()
    }

    #[test]
    fn the_sketch_checks_clean() {
        assert_eq!(check(SKETCH), vec![]);
        assert_eq!(check_with(SKETCH, None), vec![]);
    }

    #[test]
    fn a_pipeline_for_another_policy() {
        let text = edit("for job_match", "for jobmatch");
        assert_eq!(codes(&text), vec![Code::PipelinePolicy]);
        assert_eq!(primary_text(&text), "jobmatch");
        let help = check(&text)[0].help.clone().unwrap();
        assert!(
            help.contains("pipeline job_match_v3 for job_match"),
            "{help}"
        );
        // Without the policy the caller has reported it; nothing more here.
        assert_eq!(check_with(&text, None), vec![]);
    }

    #[test]
    fn unknown_targets() {
        let text = edit(
            "predicts dimensions, overall",
            "predicts dimensions, overall_grade, skills",
        );
        assert_eq!(codes(&text), vec![Code::UnknownTarget, Code::UnknownTarget]);
        let found = check(&text);
        assert_eq!(&text[found[1].span().unwrap().range()], "skills");
        // A dimension by name is a target; without the policy, names are not checked.
        assert_eq!(
            codes(&edit("predicts click", "predicts skill_match, grades")),
            vec![]
        );
        assert_eq!(check_with(&text, None), vec![]);
        let typo = check(&edit("predicts click", "predicts skill_mach"));
        assert_eq!(typo[0].help.as_deref(), Some("did you mean `skill_match`?"));
    }

    #[test]
    fn unknown_losses() {
        let text = edit("loss bce\n", "loss cross_entropy\n");
        assert_eq!(codes(&text), vec![Code::UnknownLoss]);
        assert_eq!(primary_text(&text), "cross_entropy");
        let text = edit("loss bce temperature 2", "loss bec temperature 2");
        assert_eq!(codes(&text), vec![Code::UnknownLoss]);
        assert_eq!(check(&text)[0].help.as_deref(), Some("did you mean `bce`?"));
    }

    #[test]
    fn unknown_and_unused_teachers() {
        // A misspelled teacher is the one problem: the teacher it meant is not also "unused".
        let text = edit("distill click  weight", "distill clicks weight");
        assert_eq!(codes(&text), vec![Code::UnknownTeacher]);
        let found = check(&text);
        assert_eq!(&text[found[0].span().unwrap().range()], "clicks");
        assert_eq!(found[0].help.as_deref(), Some("did you mean `click`?"));
        // A name too far from any teacher suggests none, so the teacher is still unused.
        let text = edit("distill click  weight", "distill engagement weight");
        assert_eq!(
            codes(&text),
            vec![Code::UnusedTeacher, Code::UnknownTeacher]
        );
        let found = check(&text);
        assert_eq!(found[0].severity(), crate::diagnostics::Severity::Warning);
        assert_eq!(&text[found[0].span().unwrap().range()], "click");
    }

    #[test]
    fn duplicate_teachers() {
        let text = edit("teacher click {", "teacher policy {");
        // The first `click` distill now names no teacher.
        assert_eq!(codes(&text), vec![Code::Duplicate, Code::UnknownTeacher]);
        let found = check(&text);
        assert_eq!(found[0].labels.len(), 2);
    }

    #[test]
    fn mix_shares_must_add_up() {
        let text = edit("mix real 30% synthetic 70%", "mix real 30% synthetic 60%");
        let found = check(&text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, Code::MixSum);
        assert_eq!(found[0].message, "the shares add up to 90%, not 100%");
        assert_eq!(
            &text[found[0].span().unwrap().range()],
            "real 30% synthetic 60%"
        );
        assert!(
            found[0]
                .help
                .as_deref()
                .unwrap()
                .contains("`real 30% synthetic 70%`")
        );
        assert_eq!(
            codes(&edit("mix real 30% synthetic 70%", "mix real 100%")),
            vec![]
        );
        assert_eq!(
            codes(&edit(
                "mix real 30% synthetic 70%",
                "mix real 33.3% synthetic 66.7%"
            )),
            vec![]
        );
    }

    #[test]
    fn mix_shares_name_real_or_synthetic() {
        let text = edit("mix real 30%", "mix golden 30%");
        assert_eq!(codes(&text), vec![Code::UnknownSource]);
        assert_eq!(primary_text(&text), "golden");
        let text = edit("mix real 30%", "mix reel 30%");
        assert_eq!(
            check(&text)[0].help.as_deref(),
            Some("did you mean `real`?")
        );
        let text = edit("mix real 30%", "mix synthetic 30%");
        assert_eq!(codes(&text), vec![Code::Duplicate]);
    }

    #[test]
    fn synthetic_from_an_unknown_source() {
        let text = edit("synthetic from golden", "synthetic from gold");
        assert_eq!(codes(&text), vec![Code::UnknownSource]);
        assert_eq!(primary_text(&text), "gold");
        assert_eq!(
            check(&text)[0].help.as_deref(),
            Some("did you mean `golden`?")
        );
    }

    #[test]
    fn negative_weights() {
        let text = edit("weight 0.4", "weight -0.4");
        assert_eq!(codes(&text), vec![Code::NegativeWeight]);
        assert_eq!(primary_text(&text), "-0.4");
        let text = edit("drift penalty 0.5", "drift penalty -0.5");
        assert_eq!(codes(&text), vec![Code::NegativeWeight]);
        assert_eq!(primary_text(&text), "-0.5");
        assert_eq!(codes(&edit("weight 0.4", "weight 0")), vec![]);
    }

    #[test]
    fn student_larger_than_a_teacher() {
        let text = edit(
            "layers 2, hidden 128, heads 4",
            "layers 8, hidden 512, heads 8",
        );
        let found = check(&text);
        // Larger than both teachers: one warning each.
        assert_eq!(
            found.iter().map(|d| d.code).collect::<Vec<_>>(),
            vec![Code::StudentLarger, Code::StudentLarger]
        );
        assert!(found.iter().all(|d| !d.is_error()));
        assert!(
            found[0].message.contains("8 × 512 = 4096"),
            "{}",
            found[0].message
        );
        assert!(
            found[0].message.contains("6 × 384 = 2304"),
            "{}",
            found[0].message
        );
        // Between the two teachers: larger than `click` only.
        let text = edit(
            "layers 2, hidden 128, heads 4",
            "layers 4, hidden 384, heads 4",
        );
        assert_eq!(codes(&text), vec![Code::StudentLarger]);
        // A student without sizes, or from `init`, is not compared.
        let text = edit(
            "model encoder { layers 2, hidden 128, heads 4 }",
            "model init \"models/minilm\"",
        );
        assert_eq!(codes(&text), vec![]);
        // A student without its layers is not compared: its size is missing.
        let text = edit("layers 2, hidden 128, heads 4", "hidden 4096, heads 4");
        assert_eq!(codes(&text), vec![Code::MissingPart]);
        assert!(
            check(&text)[0].message.contains("`layers`"),
            "{:?}",
            check(&text)[0].message
        );
    }

    #[test]
    fn a_setting_has_one_place() {
        let text = edit("lr 3e-5", "lr 3e-5, weight_decay 0.1");
        assert_eq!(codes(&text), vec![Code::UnknownSetting]);
        let help = check(&text)[0].help.clone().unwrap();
        assert!(help.contains("`regularize weight_decay 0.01`"), "{help}");
        let text = edit(
            "layers 2, hidden 128, heads 4",
            "layers 2, hidden 128, heads 4, dropout 0.2",
        );
        assert!(
            check(&text)[0]
                .help
                .as_deref()
                .unwrap()
                .contains("`regularize dropout 0.1`")
        );
        let text = edit("lr 3e-5", "lr 3e-5, max_len 128");
        assert!(
            check(&text)[0]
                .help
                .as_deref()
                .unwrap()
                .contains("`model encoder { max_len 256 }`")
        );
        // Teachers regularize too.
        let text = edit(
            "    loss mse\n",
            "    loss mse\n    regularize dropout 0.2, l2 0.001\n",
        );
        assert_eq!(codes(&text), vec![]);
    }

    #[test]
    fn synthetic_pairs_and_the_mix_go_together() {
        let text = edit("    mix real 30% synthetic 70%\n", "");
        assert_eq!(codes(&text), vec![Code::MissingPart]);
        assert!(
            check(&text)[0]
                .help
                .as_deref()
                .unwrap()
                .contains("mix real 30% synthetic 70%")
        );
        let text = edit(
            "    synthetic from golden { count 20000, strategy coverage }\n",
            "",
        );
        assert_eq!(codes(&text), vec![Code::MissingPart]);
        assert!(check(&text)[0].message.contains("70% synthetic pairs"));
        let text = edit(
            "    synthetic from golden { count 20000, strategy coverage }\n    mix real 30% synthetic 70%\n",
            "",
        );
        assert_eq!(codes(&text), vec![]);
    }

    #[test]
    fn unknown_metrics() {
        let text = edit("early_stop on policy_alignment", "early_stop on alignment");
        assert_eq!(codes(&text), vec![Code::UnknownMetric]);
        assert_eq!(primary_text(&text), "alignment");
        let text = edit("alert p99_latency", "alert p95_latency");
        assert_eq!(codes(&text), vec![Code::UnknownMetric]);
        assert_eq!(
            check(&text)[0].help.as_deref(),
            Some("did you mean `p99_latency`?")
        );
        for metric in ["ndcg", "ndcg@0", "auc@5"] {
            let text = edit("alert click_auc", &format!("alert {metric}"));
            assert_eq!(codes(&text), vec![Code::UnknownMetric], "{metric}");
        }
        for metric in [
            "ndcg@10",
            "ndcg@1",
            "grade_kappa",
            "ctr",
            "click_logloss",
            "policy_drift",
        ] {
            let text = edit(
                "early_stop on policy_alignment",
                &format!("early_stop on {metric}"),
            );
            assert_eq!(codes(&text), vec![], "{metric}");
        }
    }

    #[test]
    fn threshold_units() {
        let text = edit("alert p99_latency > 20ms", "alert p99_latency > 20");
        assert_eq!(codes(&text), vec![Code::ThresholdUnit]);
        assert_eq!(primary_text(&text), "20");
        assert!(
            check(&text)[0]
                .help
                .as_deref()
                .unwrap()
                .contains("`alert p99_latency > 20ms`")
        );
        let text = edit("alert click_auc < 0.70", "alert click_auc < 70ms");
        assert_eq!(codes(&text), vec![Code::ThresholdUnit]);
        assert_eq!(primary_text(&text), "70ms");
        assert_eq!(
            codes(&edit("alert p99_latency > 20ms", "alert p50_latency > 2s")),
            vec![]
        );
    }

    #[test]
    fn ratio_thresholds_within_zero_and_one() {
        let text = edit("alert click_auc < 0.70", "alert click_auc < 70");
        assert_eq!(codes(&text), vec![Code::InvalidValue]);
        assert!(check(&text)[0].help.as_deref().unwrap().contains("`0.7`"));
        assert_eq!(
            codes(&edit("alert click_auc < 0.70", "alert click_auc < 70%")),
            vec![]
        );
        assert_eq!(
            codes(&edit("alert click_auc < 0.70", "alert ctr < 120%")),
            vec![Code::InvalidValue]
        );
        assert_eq!(
            codes(&edit("alert click_auc < 0.70", "alert policy_drift > -0.1")),
            vec![Code::InvalidValue]
        );
        // A log loss is not a ratio.
        assert_eq!(
            codes(&edit("alert click_auc < 0.70", "alert click_logloss > 2.5")),
            vec![]
        );
    }

    #[test]
    fn unknown_settings() {
        let text = edit("layers 2, hidden 128", "layers 2, hiden 128");
        assert_eq!(codes(&text), vec![Code::UnknownSetting]);
        assert_eq!(primary_text(&text), "hiden");
        assert_eq!(
            check(&text)[0].help.as_deref(),
            Some("did you mean `hidden`?")
        );
        let text = edit("lr 3e-5", "learning_rate 3e-5");
        assert_eq!(codes(&text), vec![Code::UnknownSetting]);
        let text = edit("dropout 0.1", "drop_out 0.1");
        assert_eq!(codes(&text), vec![Code::UnknownSetting]);
        let text = edit("strategy coverage", "strategy coverage, size 3");
        assert_eq!(codes(&text), vec![Code::UnknownSetting]);
        // Every setting of the vocabulary is taken, with its example value.
        let written = |block: Block| {
            vocabulary::settings(block)
                .map(|s| format!("{} {}", s.name, s.example))
                .collect::<Vec<_>>()
        };
        let encoder = written(Block::Encoder)
            .into_iter()
            .map(|s| match s.split_once(' ') {
                Some(("hidden", _)) => "hidden 128".to_string(),
                Some(("heads", _)) => "heads 4".to_string(),
                Some(("layers", _)) => "layers 2".to_string(),
                _ => s,
            })
            .collect::<Vec<_>>()
            .join(", ");
        let text = edit("layers 2, hidden 128, heads 4", &encoder)
            .replacen(
                "epochs 5, lr 3e-5, batch 32",
                &written(Block::Train).join(", "),
                1,
            )
            .replacen(
                "count 20000, strategy coverage",
                &written(Block::Synthetic).join(", "),
                1,
            )
            .replacen(
                "weight_decay 0.01 dropout 0.1",
                &written(Block::Regularize).join(" "),
                1,
            );
        assert_eq!(codes(&text), vec![]);
        let text = edit("lr 3e-5", "lr 3e-5, lr 1e-4");
        assert_eq!(codes(&text), vec![Code::Duplicate]);
    }

    #[test]
    fn invalid_setting_values() {
        for (from, to, value) in [
            ("layers 6", "layers 0", "0"),
            ("layers 6", "layers 2.5", "2.5"),
            ("epochs 5", "epochs -1", "-1"),
            ("batch 32", "batch \"32\"", "\"32\""),
            ("count 20000", "count 1.5", "1.5"),
            ("lr 3e-5", "lr 0", "0"),
            ("dropout 0.1", "dropout 1", "1"),
            ("strategy coverage", "strategy random", "random"),
            ("strategy coverage", "strategy \"coverage\"", "\"coverage\""),
            ("heads 12", "heads 10", "10"),
            ("temperature 2", "temperature 0", "0"),
            ("tolerance 0.05", "tolerance 1.5", "1.5"),
            ("every 2 epochs", "every 0 epochs", "0"),
            ("split validation 10%", "split validation 0%", "0%"),
            ("split validation 10%", "split validation 100%", "100%"),
            ("patience 3", "patience 0", "0"),
            ("quantize int8", "quantize int4", "int4"),
            ("below 0.01", "below -0.01", "-0.01"),
            (
                "rebalance every 2 epochs",
                "rebalance every 2 epochs against teachers",
                "teachers",
            ),
        ] {
            let text = edit(from, to);
            assert_eq!(codes(&text), vec![Code::InvalidValue], "{to}");
            assert_eq!(primary_text(&text), value, "{to}");
        }
        let text = edit("heads 12", "heads 10");
        let help = check(&text)[0].help.clone().unwrap();
        assert_eq!(
            help,
            "choose a number of heads that divides 384, such as 6, 8, 12"
        );
        assert_eq!(
            codes(&edit("rebalance every 2 epochs", "against rubric")),
            vec![]
        );
    }

    #[test]
    fn invalid_outlier_cutoffs() {
        let text = edit("beyond 3 sigma", "beyond 0 sigma");
        assert_eq!(codes(&text), vec![Code::InvalidValue]);
        for quantile in ["0", "1", "1.5"] {
            let text = edit("beyond 3 sigma", &format!("above quantile {quantile}"));
            assert_eq!(codes(&text), vec![Code::InvalidValue], "{quantile}");
        }
        assert_eq!(
            codes(&edit("beyond 3 sigma", "above quantile 0.99")),
            vec![]
        );
    }

    #[test]
    fn paths_stay_inside_the_project() {
        for path in [
            "/mnt/golden.jsonl",
            "C:\\\\data\\\\golden.jsonl",
            "\\\\\\\\server\\\\golden.jsonl",
            "../logs/golden.jsonl",
            "data/../../golden.jsonl",
            "",
        ] {
            let text = edit("\"data/golden.jsonl\"", &format!("\"{path}\""));
            assert_eq!(codes(&text), vec![Code::PathEscape], "{path}");
            assert_eq!(primary_text(&text), format!("\"{path}\""));
        }
        let text = edit(
            "model encoder { layers 2, hidden 128, heads 4 }",
            "model init \"../models/minilm\"",
        );
        assert_eq!(codes(&text), vec![Code::PathEscape]);
        assert_eq!(
            codes(&edit(
                "\"data/golden.jsonl\"",
                "\"data/v2..final/golden.jsonl\""
            )),
            vec![]
        );
    }

    #[test]
    fn teachers_need_model_predicts_and_loss() {
        let text = edit(
            "    model encoder { layers 4, hidden 256, heads 4 }\n    predicts click\n    loss bce\n",
            "",
        );
        assert_eq!(
            codes(&text),
            vec![Code::MissingPart, Code::MissingPart, Code::MissingPart]
        );
        assert!(
            check(&text)
                .iter()
                .all(|d| &text[d.span().unwrap().range()] == "click")
        );
    }

    #[test]
    fn students_need_model_and_distill() {
        let text = edit(
            "    model encoder { layers 2, hidden 128, heads 4 }\n    distill",
            "    distill",
        );
        assert_eq!(codes(&text), vec![Code::MissingPart]);
        assert_eq!(primary_text(&text), "student");
        let text = edit(
            "    distill policy weight 0.6 loss mse\n    distill click  weight 0.4 loss bce temperature 2\n",
            "",
        );
        // Without `distill`, the missing part is the one problem: no "unused teacher" echoes.
        assert_eq!(codes(&text), vec![Code::MissingPart]);
    }

    #[test]
    fn a_pipeline_needs_one_student_and_one_data_block() {
        let start = SKETCH.find("  student {").unwrap();
        let end = SKETCH.find("  quantize").unwrap();
        let without = format!("{}{}", &SKETCH[..start], &SKETCH[end..]);
        assert_eq!(codes(&without), vec![Code::MissingPart]);
        assert_eq!(primary_text(&without), "job_match_v3");

        let twice = format!(
            "{}{}{}",
            &SKETCH[..end],
            &SKETCH[start..end],
            &SKETCH[end..]
        );
        let found = check(&twice);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].code, Code::MissingPart);
        assert!(found[0].message.contains("second `student`"));
        assert_eq!(&twice[found[0].span().unwrap().range()], "student");
        assert_eq!(found[0].span().unwrap().start as usize, end + 2);

        let data = "  data { golden \"data/more.jsonl\" }\n";
        let text = format!("{}{}{}", &SKETCH[..end], data, &SKETCH[end..]);
        assert_eq!(codes(&text), vec![Code::MissingPart]);
        assert!(check(&text)[0].message.contains("second `data`"));
    }

    #[test]
    fn clean_rules_read_click_log_fields() {
        let text = edit(
            "when clicks_per_minute > 30",
            "when clicks_per_minut > 30 or (session_clicks > 50 and not clicked) or dwell < 1",
        );
        let found = check(&text);
        assert_eq!(
            found.iter().map(|d| d.code).collect::<Vec<_>>(),
            vec![Code::UnknownField, Code::UnknownField]
        );
        assert_eq!(&text[found[0].span().unwrap().range()], "clicks_per_minut");
        assert_eq!(
            found[0].help.as_deref(),
            Some("did you mean `clicks_per_minute`?")
        );
        assert_eq!(&text[found[1].span().unwrap().range()], "dwell");
        let text = edit("when clicks_per_minute > 30", "when session.id == \"x\"");
        assert_eq!(codes(&text), vec![Code::UnknownField]);
        assert_eq!(primary_text(&text), "id");
        let text = edit(
            "when clicks_per_minute > 30",
            "when if missing(propensity) then distinct_queries > 20 else propensity < 0.01",
        );
        assert_eq!(codes(&text), vec![]);
    }

    #[test]
    fn outliers_and_duplicates_name_click_log_fields() {
        let text = edit("outliers dwell_seconds", "outliers dwell");
        assert_eq!(codes(&text), vec![Code::UnknownField]);
        assert_eq!(primary_text(&text), "dwell");
        let text = edit("outliers dwell_seconds", "outliers clicked");
        assert_eq!(codes(&text), vec![Code::UnknownField]);
        assert!(check(&text)[0].message.contains("not a numeric"));
        let rule = "drop outliers dwell_seconds beyond 3 sigma\n      drop duplicates on query_id, candidat_id";
        let text = edit("drop outliers dwell_seconds beyond 3 sigma", rule);
        assert_eq!(codes(&text), vec![Code::UnknownField]);
        assert_eq!(primary_text(&text), "candidat_id");
        let rule = "drop outliers dwell_seconds beyond 3 sigma\n      drop duplicates on query_id, candidate_id, ts";
        assert_eq!(
            codes(&edit("drop outliers dwell_seconds beyond 3 sigma", rule)),
            vec![]
        );
    }

    #[test]
    fn messages_follow_the_style() {
        let texts = [
            edit("for job_match", "for jobmatch"),
            edit("predicts click", "predicts clicks"),
            edit("mix real 30%", "mix real 20%"),
            edit("weight 0.4", "weight -0.4"),
            edit("alert p99_latency > 20ms", "alert p99_latency > 20"),
            edit("heads 12", "heads 10"),
            edit("\"data/golden.jsonl\"", "\"/golden.jsonl\""),
        ];
        for text in &texts {
            for d in check(text) {
                let first = d.message.chars().next().unwrap();
                assert!(!first.is_uppercase(), "{}", d.message);
                assert!(!d.message.ends_with('.'), "{}", d.message);
                assert!(d.help.is_some(), "{}", d.message);
                assert!(d.labels.iter().any(|l| l.primary), "{}", d.message);
            }
        }
    }
}
