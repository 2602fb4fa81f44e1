//! Checks of a pipeline's student: one student, smaller than its teachers, distilled from known
//! teachers, with its drift penalty and early stopping.

use super::*;

pub(super) fn check_students(pipeline: &PipelineDecl, diags: &mut Diagnostics) {
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

pub(super) fn check_student(
    student: &StudentDecl,
    pipeline: &PipelineDecl,
    diags: &mut Diagnostics,
) {
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

    let mut learned: HashMap<&str, &Ident> = HashMap::new();
    for learn in &student.learn {
        check_learn(learn, pipeline, diags);
        match learned.get(learn.from.name.as_str()) {
            Some(first) => diags.push(duplicate(
                format!("the student learns `{}` twice", learn.from.name),
                &learn.from,
                first,
                "keep one `learn` line per label source, with the weight of both",
            )),
            None => {
                learned.insert(learn.from.name.as_str(), &learn.from);
            }
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
pub(super) fn teacher_size(teacher: &TeacherDecl) -> Option<(f64, f64, Span)> {
    match teacher.model.first()? {
        ModelSpec::Encoder { settings, span } => Some((
            count_setting(settings, "layers")?,
            count_setting(settings, "hidden")?,
            *span,
        )),
        ModelSpec::Init { .. } | ModelSpec::FromTeacher { .. } => None,
    }
}

/// The `student` keyword when the block has no doc comment in front; else the whole block.
pub(super) fn student_head(student: &StudentDecl) -> Span {
    let keyword = "student".len();
    if student.docs.span.is_none() && student.span.len() >= keyword {
        let start = student.span.start as usize;
        Span::new(student.span.file, start, start + keyword)
    } else {
        student.span
    }
}

pub(super) fn check_distill(distill: &DistillDecl, teachers: &[&str], diags: &mut Diagnostics) {
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
        diags.push(negative_weight(
            format!(
                "the distillation weight for `{}` is negative (`{}`)",
                teacher.name,
                show_number(distill.weight)
            ),
            distill.weight_span,
            &format!("learning from `{}`", teacher.name),
            "distill",
        ));
    }
    check_loss(&distill.loss, diags);
}

/// `learn rubric` (the rubric's labels of the pairs) or `learn SOURCE` (a declared click log's
/// clicks), with a weight of 0 or more and a known loss.
pub(super) fn check_learn(learn: &LearnDecl, pipeline: &PipelineDecl, diags: &mut Diagnostics) {
    let from = &learn.from;
    let sources: Vec<&DataSource> = pipeline
        .data
        .iter()
        .flat_map(|d| d.sources.iter())
        .collect();
    let click_logs: Vec<&str> = sources
        .iter()
        .filter(|s| !s.clean.is_empty())
        .map(|s| s.name.name.as_str())
        .collect();
    if from.name != "rubric" && !click_logs.contains(&from.name.as_str()) {
        let pairs = sources
            .iter()
            .find(|s| s.clean.is_empty() && s.name.name == from.name);
        let help = if pairs.is_some_and(|s| s.unlabeled) {
            format!(
                "`{}` holds unlabeled pairs: the student learns them from its teachers' outputs, \
                 with no `learn` line; `learn rubric` learns the rubric's labels of the training \
                 pairs",
                from.name
            )
        } else if pairs.is_some() {
            format!(
                "`{}` is a source of pairs, and the labels of pairs are the rubric's: write \
                 `learn rubric weight {} loss mse`",
                from.name,
                show_number(learn.weight)
            )
        } else {
            let known = std::iter::once("rubric").chain(click_logs.iter().copied());
            suggestion_help(&from.name, "label sources", known).unwrap_or_else(|| {
                "a student learns the rubric's own labels (`learn rubric`) or the clicks of a \
                 click log declared in `data` with its `clean { ... }` block (`learn clicks`)"
                    .to_string()
            })
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownSource,
                format!("there are no labels `{}` to learn", from.name),
            )
            .at(
                from.span,
                if pairs.is_some() {
                    "pairs, not labels"
                } else {
                    "not `rubric` or a click log"
                },
            )
            .help(help),
        );
    }
    if learn.weight < 0.0 {
        diags.push(negative_weight(
            format!(
                "the weight of learning `{}` is negative (`{}`)",
                from.name,
                show_number(learn.weight)
            ),
            learn.weight_span,
            &format!("learning `{}`", from.name),
            "learn",
        ));
    }
    check_loss(&learn.loss, diags);
}

/// A term's weight below 0: `message` says which; the help says how to stop `doing` (its
/// `keyword` line).
fn negative_weight(message: String, span: Span, doing: &str, keyword: &str) -> Diagnostic {
    Diagnostic::new(Code::NegativeWeight, message)
        .at(span, "negative weight")
        .help(format!(
            "use a weight of 0 or more; to stop {doing}, delete its `{keyword}` line"
        ))
}

pub(super) fn check_drift(drift: &DriftDecl, diags: &mut Diagnostics) {
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

pub(super) fn check_early_stop(early_stop: &EarlyStopDecl, diags: &mut Diagnostics) {
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
