//! Checks of a pipeline's teachers: targets, losses, models and their required settings, heads,
//! and the settings every block accepts.

use super::*;

pub(super) fn check_teachers(
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

pub(super) fn check_teacher(
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

/// `model from teacher NAME`: a teacher starts from one declared before it (so its stage runs
/// first, and no two start from each other); the student from any teacher.
pub(super) fn check_model_sources(pipeline: &PipelineDecl, diags: &mut Diagnostics) {
    let names: Vec<&str> = pipeline
        .teachers
        .iter()
        .map(|t| t.name.name.as_str())
        .collect();
    let models = pipeline
        .teachers
        .iter()
        .enumerate()
        .map(|(i, t)| (Some(i), format!("the teacher `{}`", t.name.name), &t.model))
        .chain(
            pipeline
                .students
                .iter()
                .map(|s| (None, "the student".to_string(), &s.model)),
        );
    for (position, owner, specs) in models {
        let Some(ModelSpec::FromTeacher { teacher, .. }) = specs.first() else {
            continue;
        };
        let name = teacher.name.as_str();
        let declared = names.iter().position(|n| *n == name);
        let problem = match (declared, position) {
            (None, _) => Some((
                format!("{owner} starts from `{name}`, which is not a declared teacher"),
                "not a declared teacher",
                suggestion_help(name, "teachers", names.iter().copied()).unwrap_or_else(|| {
                    format!("declare it first: `teacher {name} {{ model ... predicts ... loss ... }}`")
                }),
            )),
            (Some(at), Some(me)) if at == me => Some((
                format!("{owner} starts from itself"),
                "its own name",
                "start from another teacher, declared before this one, or from `model encoder { ... }`"
                    .to_string(),
            )),
            (Some(at), Some(me)) if at > me => Some((
                format!("{owner} starts from `{name}`, declared after it"),
                "declared later",
                format!(
                    "move `teacher {name}` above this teacher: a teacher starts from one trained before it"
                ),
            )),
            _ => None,
        };
        if let Some((message, label, help)) = problem {
            diags.push(
                Diagnostic::new(Code::UnknownTeacher, message)
                    .at(teacher.span, label)
                    .help(help),
            );
        }
    }
}

pub(super) fn check_target(target: &Ident, policy: &PolicyOutline<'_>, diags: &mut Diagnostics) {
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

pub(super) fn check_loss(loss: &LossDecl, diags: &mut Diagnostics) {
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
pub(super) fn check_models(
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
            // Which teachers exist, and in what order, is the pipeline's check.
            ModelSpec::FromTeacher { .. } => {}
        }
    }
    match models.first()? {
        ModelSpec::Encoder { settings, span } => {
            let layers = count_setting(settings, "layers")?;
            let hidden = count_setting(settings, "hidden")?;
            Some((layers, hidden, *span))
        }
        ModelSpec::Init { .. } | ModelSpec::FromTeacher { .. } => None,
    }
}

/// Settings of the block without a default must be written.
pub(super) fn check_required(
    settings: &[Setting],
    block: Block,
    span: Span,
    diags: &mut Diagnostics,
) {
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

pub(super) fn model_span(model: &ModelSpec) -> Span {
    model.span()
}

/// `heads` must divide `hidden` (each head gets an equal slice).
pub(super) fn check_heads(settings: &[Setting], diags: &mut Diagnostics) {
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
pub(super) fn count_setting(settings: &[Setting], key: &str) -> Option<f64> {
    settings
        .iter()
        .find(|s| s.key.name == key)
        .and_then(|s| match s.value {
            SettingValue::Number(v) if Kind::Count.accepts(&s.value) => Some(v),
            _ => None,
        })
}

pub(super) fn check_settings(settings: &[Setting], block: Block, diags: &mut Diagnostics) {
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
