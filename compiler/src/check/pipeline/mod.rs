//! Checks of one `pipeline` block: its data sources and clean rules, teachers, student,
//! quantization and monitoring, against the known targets, losses, metrics and settings.

mod data;
mod inputs;
mod monitor;
mod students;
mod teachers;

use data::*;
use inputs::*;
use monitor::*;

pub use inputs::{CONTEXT_FEATURES, InputShape, RoleOutline};
use students::*;
use teachers::*;

use std::collections::{HashMap, HashSet};

use crate::diagnostics::{Code, Diagnostic, Diagnostics, did_you_mean, suggestion_help};
use crate::source::Span;
use crate::syntax::ast::{
    AlertDecl, CleanRule, DataBlock, DataSource, DistillDecl, DriftDecl, EarlyStopDecl, Expr,
    ExprKind, Ident, LearnDecl, LossDecl, MixDecl, ModelSpec, PipelineDecl, QuantizeDecl, Setting,
    SettingValue, StudentDecl, SyntheticDecl, TeacherDecl, Threshold,
};
use crate::vocabulary::{self, Block, Kind, MetricUnit, STRATEGIES};

/// What the pipeline checks need to know of the policy a pipeline trains on.
pub struct PolicyOutline<'a> {
    pub name: &'a str,
    pub dimensions: Vec<&'a str>,
    /// The pair's roles with their fields: what `reads` and `features` may name.
    pub roles: Vec<RoleOutline<'a>>,
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
    check_model_sources(pipeline, diagnostics);
    if let Some(policy) = policy {
        for t in &pipeline.teachers {
            let owner = format!("the teacher `{}`", t.name.name);
            let from_clicks = t.predicts.iter().any(|p| p.name == "click");
            check_inputs(
                &t.reads,
                &t.features,
                &owner,
                from_clicks,
                policy,
                diagnostics,
            );
            check_reads_something(t.reads_span, &t.reads, &t.features, &owner, diagnostics);
        }
        for s in &pipeline.students {
            // The student learns from its teachers on impressions too (their click targets).
            check_inputs(
                &s.reads,
                &s.features,
                "the student",
                true,
                policy,
                diagnostics,
            );
            check_reads_something(
                s.reads_span,
                &s.reads,
                &s.features,
                "the student",
                diagnostics,
            );
        }
    }
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
mod tests;
