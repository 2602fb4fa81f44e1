//! The pipeline section: a summary a reviewer reads (data, teachers, student, quantization,
//! monitoring), then the pipeline in full.

use super::{Composer, join_inlines, percent};
use crate::doc::{Block, Inline};
use rubric_compiler::format::format_pipeline;
use rubric_compiler::syntax::ast::{
    Ident, ModelSpec, PipelineDecl, Setting, SettingValue, Threshold,
};

impl Composer<'_> {
    pub(super) fn pipeline(&mut self, p: &PipelineDecl) {
        let id = format!("pipeline-{}", p.name.name);
        let title = self.section(
            &p.docs,
            vec![
                Inline::Text("Pipeline ".into()),
                Inline::Code(p.name.name.clone()),
            ],
            &id,
            2,
        );
        self.listed("Pipeline", title, id);
        let mut items: Vec<Vec<Inline>> = Vec::new();
        for d in &p.data {
            for s in &d.sources {
                let mut line = vec![
                    Inline::Strong("Data".into()),
                    Inline::Text(" ".into()),
                    Inline::Code(s.name.name.clone()),
                    Inline::Text(" from ".into()),
                    Inline::Code(s.path.clone()),
                ];
                if s.unlabeled {
                    line.push(Inline::Text(
                        ", unlabeled: scored by the teachers for the student".into(),
                    ));
                }
                if !s.clean.is_empty() {
                    line.push(Inline::Text(format!(
                        ", cleaned by {} rule{}",
                        s.clean.len(),
                        if s.clean.len() == 1 { "" } else { "s" }
                    )));
                }
                items.push(line);
            }
            for s in &d.synthetic {
                items.push(vec![
                    Inline::Strong("Synthetic data".into()),
                    Inline::Text(" from ".into()),
                    Inline::Code(s.from.name.clone()),
                    Inline::Text(": ".into()),
                    Inline::Code(settings_text(&s.settings)),
                ]);
            }
            for m in &d.mixes {
                let shares: Vec<String> = m
                    .shares
                    .iter()
                    .map(|(name, share, _)| format!("{} {}", name.name, percent(*share)))
                    .collect();
                items.push(vec![
                    Inline::Strong("Mix".into()),
                    Inline::Text(format!(" {}", shares.join(", "))),
                ]);
            }
            for s in &d.splits {
                let seed = s.seed.map(|x| format!(", seed {x}")).unwrap_or_default();
                items.push(vec![
                    Inline::Strong("Validation".into()),
                    Inline::Text(format!(" {} held out{seed}", percent(s.validation))),
                ]);
            }
        }
        for t in &p.teachers {
            let mut line = vec![
                Inline::Strong("Teacher".into()),
                Inline::Text(" ".into()),
                Inline::Code(t.name.name.clone()),
                Inline::Text(": ".into()),
            ];
            line.extend(models_text(&t.model));
            let predicts: Vec<&str> = t.predicts.iter().map(|x| x.name.as_str()).collect();
            line.push(Inline::Text(format!("; predicts {}", predicts.join(", "))));
            if let Some(loss) = &t.loss {
                line.push(Inline::Text(format!("; loss {}", loss.kind.name)));
            }
            if !t.train.is_empty() {
                line.push(Inline::Text("; trains with ".into()));
                line.push(Inline::Code(settings_text(&t.train)));
            }
            line.extend(inputs_text(&t.reads, t.reads_span.is_some(), &t.features));
            items.push(line);
        }
        for s in &p.students {
            let mut line = vec![Inline::Strong("Student".into()), Inline::Text(": ".into())];
            line.extend(models_text(&s.model));
            if !s.distill.is_empty() {
                line.push(Inline::Text("; distilled from ".into()));
                let parts = s.distill.iter().map(|d| {
                    vec![
                        Inline::Code(d.teacher.name.clone()),
                        Inline::Text(format!(" (weight {}, loss {})", d.weight, d.loss.kind.name)),
                    ]
                });
                line.extend(join_inlines(parts, ", "));
            }
            if !s.learn.is_empty() {
                line.push(Inline::Text("; learns ".into()));
                let parts = s.learn.iter().map(|l| {
                    let what = if l.from.name == "rubric" {
                        Inline::Text("the rubric's labels".into())
                    } else {
                        Inline::Code(l.from.name.clone())
                    };
                    vec![
                        what,
                        Inline::Text(format!(" (weight {}, loss {})", l.weight, l.loss.kind.name)),
                    ]
                });
                line.extend(join_inlines(parts, ", "));
            }
            for d in &s.drift {
                line.push(Inline::Text(format!(
                    "; policy-drift penalty {} beyond a tolerance of {}",
                    d.weight, d.tolerance
                )));
                if let Some((n, _)) = d.rebalance_every {
                    line.push(Inline::Text(format!(", rebalanced every {n} epochs")));
                }
            }
            if let Some(stop) = &s.early_stop {
                line.push(Inline::Text(format!(
                    "; stops early on {} (patience {})",
                    stop.metric.name, stop.patience
                )));
            }
            line.extend(inputs_text(&s.reads, s.reads_span.is_some(), &s.features));
            items.push(line);
        }
        for q in &p.quantize {
            let mut line = vec![
                Inline::Strong("Quantized".into()),
                Inline::Text(format!(" to {}", q.scheme.name)),
            ];
            if let Some((v, _)) = q.prune_heads_below {
                line.push(Inline::Text(format!(
                    ", attention heads below {v} importance pruned"
                )));
            }
            items.push(line);
        }
        for m in &p.monitors {
            let alerts = m.alerts.iter().map(|a| {
                let threshold = match a.threshold {
                    Threshold::Number(v) => v.to_string(),
                    Threshold::Percent(v) => percent(v),
                    Threshold::Duration(ms) => format!("{ms}ms"),
                };
                vec![Inline::Code(format!(
                    "{} {} {threshold}",
                    a.metric.name,
                    a.op.symbol()
                ))]
            });
            let mut line = vec![
                Inline::Strong("Monitored".into()),
                Inline::Text(": alert when ".into()),
            ];
            line.extend(join_inlines(alerts, ", "));
            items.push(line);
        }
        self.push(Block::List(items));
        self.settings_in_effect(p);
        self.push(Block::Paragraph(vec![Inline::Text("In full:".into())]));
        self.push(Block::Code(format_pipeline(p, self.src)));
    }
}

impl Composer<'_> {
    /// Every setting of each model as training will read it, from the lowered plan: the
    /// values written and the vocabulary's defaults for the others, each with its meaning.
    fn settings_in_effect(&mut self, p: &PipelineDecl) {
        use rubric_compiler::lower::plan::{ModelConfig, StageConfig};
        use rubric_compiler::vocabulary::{self, Block as Vocab};
        let Some(plan) = self.plan else {
            return;
        };
        let mut rows: Vec<Vec<Vec<Inline>>> = Vec::new();
        for stage in &plan.stages {
            let (owner, model, train, regularize, written) = match &stage.config {
                StageConfig::TrainTeacher(t) => {
                    let decl = p.teachers.iter().find(|d| d.name.name == t.teacher);
                    (
                        format!("teacher {}", t.teacher),
                        &t.model,
                        &t.train,
                        &t.regularize,
                        decl.map(|d| written(&d.model, &d.train, &d.regularize)),
                    )
                }
                StageConfig::Distill(s) => {
                    let decl = p.students.first();
                    (
                        "student".to_string(),
                        &s.model,
                        &s.train,
                        &s.regularize,
                        decl.map(|d| written(&d.model, &d.train, &d.regularize)),
                    )
                }
                _ => continue,
            };
            let written = written.unwrap_or_default();
            let mut blocks = vec![
                (Vocab::Train, serde_json::to_value(train).ok()),
                (Vocab::Regularize, serde_json::to_value(regularize).ok()),
            ];
            if let ModelConfig::Encoder(e) = model {
                blocks.insert(0, (Vocab::Encoder, serde_json::to_value(e).ok()));
            }
            for (block, values) in blocks {
                let Some(values) = values else { continue };
                for spec in vocabulary::settings(block) {
                    let Some(value) = values.get(spec.name) else {
                        continue;
                    };
                    let origin = if written.contains(&(block, spec.name)) {
                        "written"
                    } else {
                        "default"
                    };
                    rows.push(vec![
                        vec![Inline::Text(owner.clone())],
                        vec![Inline::Code(spec.name.to_string())],
                        vec![Inline::Code(setting_value(value))],
                        vec![Inline::Text(origin.into())],
                        vec![Inline::Text(spec.doc.to_string())],
                    ]);
                }
            }
        }
        if rows.is_empty() {
            return;
        }
        self.push(Block::Paragraph(vec![Inline::Text(
            "Settings in effect (those not written take the pipeline vocabulary's defaults):"
                .into(),
        )]));
        self.push(Block::Table {
            head: vec![
                "model".into(),
                "setting".into(),
                "value".into(),
                "from".into(),
                "what it does".into(),
            ],
            rows,
        });
    }
}

/// The settings a model's declaration writes, by vocabulary block.
fn written<'a>(
    model: &'a [ModelSpec],
    train: &'a [Setting],
    regularize: &'a [Setting],
) -> Vec<(rubric_compiler::vocabulary::Block, &'a str)> {
    use rubric_compiler::vocabulary::Block as Vocab;
    let mut out: Vec<(Vocab, &str)> = Vec::new();
    if let Some(ModelSpec::Encoder { settings, .. }) = model.first() {
        out.extend(
            settings
                .iter()
                .map(|s| (Vocab::Encoder, s.key.name.as_str())),
        );
    }
    out.extend(train.iter().map(|s| (Vocab::Train, s.key.name.as_str())));
    out.extend(
        regularize
            .iter()
            .map(|s| (Vocab::Regularize, s.key.name.as_str())),
    );
    out
}

/// A resolved setting as a reader writes it: `3e-5`, `10%` of warm-up, `0 steps`.
fn setting_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => match map.iter().next() {
            Some((kind, v)) if kind == "fraction" => percent(v.as_f64().unwrap_or_default()),
            Some((kind, v)) => format!("{v} {kind}"),
            None => String::new(),
        },
        other => other.to_string(),
    }
}

fn settings_text(settings: &[Setting]) -> String {
    settings
        .iter()
        .map(|s| {
            let value = match &s.value {
                SettingValue::Number(v) => v.to_string(),
                SettingValue::Percent(v) => percent(*v),
                SettingValue::Duration(ms) => format!("{ms}ms"),
                SettingValue::String(v) => format!("{v:?}"),
                SettingValue::Bool(b) => b.to_string(),
                SettingValue::Name(n) => n.clone(),
            };
            format!("{} {value}", s.key.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn models_text(models: &[ModelSpec]) -> Vec<Inline> {
    let parts = models.iter().map(|m| match m {
        ModelSpec::Encoder { settings, .. } => vec![
            Inline::Text("an encoder with ".into()),
            Inline::Code(settings_text(settings)),
        ],
        ModelSpec::Init { path, .. } => vec![
            Inline::Text("initialised from ".into()),
            Inline::Code(path.clone()),
        ],
        ModelSpec::FromTeacher { teacher, .. } => vec![
            Inline::Text("starting from the trained teacher ".into()),
            Inline::Code(teacher.name.clone()),
        ],
    });
    join_inlines(parts, ", ")
}

/// What a model reads, as a reviewer reads it: `; reads `query.title`, ...; features ...`, and
/// `; reads no text` where the pipeline wrote `reads []` (left out, a model reads every text
/// field, which the lowered plan spells out).
fn inputs_text(reads: &[Ident], reads_written: bool, features: &[Ident]) -> Vec<Inline> {
    let mut out = Vec::new();
    if reads_written && reads.is_empty() {
        out.push(Inline::Text("; reads no text".into()));
    }
    for (label, list) in [("; reads ", reads), ("; features ", features)] {
        if list.is_empty() {
            continue;
        }
        out.push(Inline::Text(label.into()));
        out.extend(join_inlines(
            list.iter().map(|i| vec![Inline::Code(i.name.clone())]),
            ", ",
        ));
    }
    out
}
