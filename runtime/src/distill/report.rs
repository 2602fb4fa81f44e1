//! The distillation report: the student beside each teacher on the same held-out real pairs
//! and impressions (policy alignment, grade kappa, NDCG@10, drift, click AUC, the blended
//! metric), parameter counts, retention and compression ratios, the drift penalty's rebalances
//! and where the teachers' outputs came from; and the ablations' table. JSON for tools, a table
//! for people.

use super::Variant;
use super::objective::RebalanceRecord;
use rubric_compiler::lower::plan::LossTerm;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

pub const REPORT_SCHEMA: &str = "rubric.distill-report/1";
pub const ABLATIONS_SCHEMA: &str = "rubric.distill-ablations/1";
/// The file of the report in the distill stage's outputs.
pub const REPORT: &str = "report.json";
/// The metric that weighs the policy and clicks together.
pub const BLENDED: &str = "blended";
/// The click AUC of a model with no click head, ranking impressions by its overall score.
pub const CLICK_AUC_BY_OVERALL: &str = "click_auc_by_overall";
/// What [`BLENDED`] is, as the report states it.
pub const BLENDED_DEFINITION: &str = "blended = (grade_kappa + (2 × click_auc − 1)) / 2: the \
     quadratic-weighted kappa of the grades and the click AUC's Gini, each 0 at chance and 1 \
     when perfect; a model with no click head is ranked by its overall score, one with no grade \
     head counts a kappa of 0";

/// The blended metric of a model's metrics, where it has a click AUC (its own, or its overall
/// score's).
pub fn blended(metrics: &BTreeMap<String, f64>) -> Option<f64> {
    let auc = metrics
        .get("click_auc")
        .or_else(|| metrics.get(CLICK_AUC_BY_OVERALL))?;
    let kappa = metrics.get("grade_kappa").copied().unwrap_or(0.0);
    Some((kappa + (2.0 * auc - 1.0)) / 2.0)
}

/// Where a teacher's outputs came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheUse {
    /// The cache file, in the run's `cache/`.
    pub file: String,
    /// Read from the cache (no forward pass of the teacher ran).
    pub hit: bool,
}

/// A model measured on the held-out rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSummary {
    pub name: String,
    pub parameters: usize,
    pub metrics: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CacheUse>,
}

/// How much of a teacher's metric the student keeps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub teacher: String,
    pub metric: String,
    pub teacher_value: f64,
    pub student_value: f64,
    /// student / teacher.
    pub ratio: f64,
}

/// The rows the student learned from and was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rows {
    pub train: usize,
    pub validation_pairs: usize,
    pub validation_impressions: usize,
    pub unjoined_clicks: u64,
    /// Unlabeled pairs among the training rows (scored by the teachers, no label).
    #[serde(default)]
    pub unlabeled: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistillReport {
    pub schema: String,
    pub variant: Variant,
    pub recipe: String,
    pub student: ModelSummary,
    pub teachers: Vec<ModelSummary>,
    pub retention: Vec<Retention>,
    /// Each teacher's parameters over the student's.
    pub compression: BTreeMap<String, f64>,
    pub blended: String,
    /// The terms the student learned by.
    pub objective: Vec<LossTerm>,
    pub rebalances: Vec<RebalanceRecord>,
    pub rows: Rows,
    pub epochs: usize,
    pub stopped_early: bool,
    /// With early stopping, the epoch (from 1) whose weights the student is: the best on the
    /// declared metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_epoch: Option<u64>,
}

/// The metrics a student's retention is reported on.
const RETAINED: [&str; 4] = ["grade_kappa", "ndcg@10", "policy_alignment", "click_auc"];

impl DistillReport {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        variant: Variant,
        student: ModelSummary,
        teachers: Vec<ModelSummary>,
        terms: &[LossTerm],
        rebalances: Vec<RebalanceRecord>,
        rows: Rows,
        epochs: usize,
        stopped_early: bool,
        kept_epoch: Option<u64>,
    ) -> DistillReport {
        let mut retention = Vec::new();
        let mut compression = BTreeMap::new();
        for t in &teachers {
            for m in RETAINED {
                if let (Some(&tv), Some(&sv)) = (t.metrics.get(m), student.metrics.get(m))
                    && tv != 0.0
                {
                    retention.push(Retention {
                        teacher: t.name.clone(),
                        metric: m.to_string(),
                        teacher_value: tv,
                        student_value: sv,
                        ratio: sv / tv,
                    });
                }
            }
            if student.parameters > 0 {
                compression.insert(
                    t.name.clone(),
                    t.parameters as f64 / student.parameters as f64,
                );
            }
        }
        DistillReport {
            schema: REPORT_SCHEMA.to_string(),
            variant,
            recipe: variant.describe().to_string(),
            student,
            teachers,
            retention,
            compression,
            blended: BLENDED_DEFINITION.to_string(),
            objective: terms.to_vec(),
            rebalances,
            rows,
            epochs,
            stopped_early,
            kept_epoch,
        }
    }
}

/// The columns of the tables: (metric, heading).
const COLUMNS: [(&str, &str); 6] = [
    ("policy_alignment", "alignment"),
    ("grade_kappa", "kappa"),
    ("ndcg@10", "ndcg@10"),
    ("policy_drift", "drift"),
    ("click_auc", "click_auc"),
    (BLENDED, "blended"),
];

fn header(out: &mut String, first: &str) {
    let _ = write!(out, "{first:<18} {:>10}", "parameters");
    for (_, h) in COLUMNS {
        let _ = write!(out, " {h:>10}");
    }
    out.push('\n');
}

fn line(out: &mut String, name: &str, m: &ModelSummary) {
    let _ = write!(out, "{name:<18} {:>9.2}M", m.parameters as f64 / 1e6);
    for (k, _) in COLUMNS {
        match m.metrics.get(k) {
            Some(v) => {
                let _ = write!(out, " {v:>10.3}");
            }
            None => {
                let _ = write!(out, " {:>10}", "-");
            }
        }
    }
    out.push('\n');
}

/// The report as a table: the teachers, the student, what it retains and what it learned by.
pub fn table(r: &DistillReport) -> String {
    let mut out = String::new();
    header(&mut out, "model");
    for t in &r.teachers {
        line(&mut out, &format!("{} (teacher)", t.name), t);
    }
    line(&mut out, &r.student.name, &r.student);
    let _ = writeln!(
        out,
        "on {} held-out real pairs and {} impressions; {}",
        r.rows.validation_pairs, r.rows.validation_impressions, r.blended
    );
    for x in &r.retention {
        let _ = writeln!(
            out,
            "retains {:.1}% of the {} teacher's {} ({:.3} of {:.3})",
            x.ratio * 100.0,
            x.teacher,
            x.metric,
            x.student_value,
            x.teacher_value
        );
    }
    for (t, ratio) in &r.compression {
        let _ = writeln!(out, "{ratio:.1}x fewer parameters than the {t} teacher");
    }
    for b in &r.rebalances {
        let _ = writeln!(
            out,
            "drift penalty rebalanced after epoch {}: drift {:.4}, weight {:.4} -> {:.4}",
            b.epoch, b.drift, b.old_weight, b.new_weight
        );
    }
    for t in &r.teachers {
        if let Some(c) = &t.cache {
            let _ = writeln!(
                out,
                "the {} teacher's outputs: {} `{}`",
                t.name,
                if c.hit { "read from" } else { "scored into" },
                c.file
            );
        }
    }
    out
}

/// The ablations beside the full student.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblationReport {
    pub schema: String,
    pub blended: String,
    /// The full student first, then each ablation that applies.
    pub students: Vec<AblationRow>,
    /// The ablations that do not apply to this pipeline, and why.
    pub skipped: Vec<(Variant, String)>,
    /// The full student's blended metric over the best single-teacher student's, less 1.
    pub multi_teacher_gain: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblationRow {
    pub variant: Variant,
    pub recipe: String,
    pub parameters: usize,
    pub metrics: BTreeMap<String, f64>,
    pub epochs: usize,
}

impl AblationReport {
    pub fn new(students: Vec<AblationRow>, skipped: Vec<(Variant, String)>) -> AblationReport {
        let value = |v: Variant| {
            students
                .iter()
                .find(|s| s.variant == v)
                .and_then(|s| s.metrics.get(BLENDED).copied())
        };
        let single = [Variant::PolicyOnly, Variant::ClickOnly]
            .into_iter()
            .filter_map(value)
            .fold(None, |best: Option<f64>, v| {
                Some(best.map_or(v, |b| b.max(v)))
            });
        let multi_teacher_gain = match (value(Variant::Full), single) {
            (Some(full), Some(best)) if best > 0.0 => Some(full / best - 1.0),
            _ => None,
        };
        AblationReport {
            schema: ABLATIONS_SCHEMA.to_string(),
            blended: BLENDED_DEFINITION.to_string(),
            students,
            skipped,
            multi_teacher_gain,
        }
    }
}

/// The ablations as a table.
pub fn ablation_table(r: &AblationReport) -> String {
    let mut out = String::new();
    header(&mut out, "student");
    for s in &r.students {
        line(
            &mut out,
            s.variant.name(),
            &ModelSummary {
                name: s.variant.name().to_string(),
                parameters: s.parameters,
                metrics: s.metrics.clone(),
                cache: None,
            },
        );
    }
    for s in &r.students {
        let _ = writeln!(out, "{:<18} {}", s.variant.name(), s.recipe);
    }
    for (v, why) in &r.skipped {
        let _ = writeln!(out, "{:<18} not run: {why}", v.name());
    }
    if let Some(g) = r.multi_teacher_gain {
        // The single-teacher student it was measured against, among those in this report.
        let best = r
            .students
            .iter()
            .filter(|s| matches!(s.variant, Variant::PolicyOnly | Variant::ClickOnly))
            .filter_map(|s| s.metrics.get(BLENDED).map(|b| (s.variant.name(), *b)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or("?", |(name, _)| name);
        let _ = writeln!(
            out,
            "the multi-teacher student's blended metric: {:+.1}% against `{best}`'s, the best \
             single-teacher student of this report",
            g * 100.0
        );
    }
    let _ = writeln!(out, "{}", r.blended);
    out
}
