//! The pipeline's vocabulary: every setting a pipeline takes, with its type, range, default and
//! one-line doc, and every metric with its unit and direction. The checker, the lowering, `rubric
//! doc`, the language server's completion and `docs/language.md` all read these tables, so a
//! setting exists (and has one meaning and one default) in exactly one place.

use crate::syntax::ast::SettingValue;

/// Where a setting is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Block {
    /// `model encoder { ... }`: the architecture.
    Encoder,
    /// `train { ... }` of a teacher or the student: the optimization.
    Train,
    /// `regularize ...` of a teacher or the student.
    Regularize,
    /// `synthetic from SOURCE { ... }`.
    Synthetic,
    /// `split validation P [seed N]`: a statement, not a `{ }` block.
    Split,
    /// `loss L [temperature T]` and `distill ... loss L [temperature T]`.
    Loss,
    /// `drift penalty W tolerance T [rebalance every N epochs] [against R]`.
    Drift,
    /// `early_stop on METRIC patience N`.
    EarlyStop,
    /// `reads [...]` and `features [...]` of a teacher or the student: what the model reads.
    Inputs,
}

impl Block {
    /// How the block is named in messages and documents.
    pub fn syntax(self) -> &'static str {
        match self {
            Block::Encoder => "`model encoder`",
            Block::Train => "`train`",
            Block::Regularize => "`regularize`",
            Block::Synthetic => "`synthetic from`",
            Block::Split => "`split`",
            Block::Loss => "`loss`",
            Block::Drift => "`drift penalty`",
            Block::EarlyStop => "`early_stop`",
            Block::Inputs => "`reads` and `features`",
        }
    }

    /// Whether the block takes `key value` settings by name (the others are statements whose
    /// parts have fixed places; their rows give the defaults of the parts left out).
    pub fn takes_settings(self) -> bool {
        matches!(
            self,
            Block::Encoder | Block::Train | Block::Regularize | Block::Synthetic
        )
    }

    pub const ALL: [Block; 9] = [
        Block::Encoder,
        Block::Train,
        Block::Regularize,
        Block::Synthetic,
        Block::Split,
        Block::Loss,
        Block::Drift,
        Block::EarlyStop,
        Block::Inputs,
    ];
}

/// What a setting's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A whole number of at least 1.
    Count,
    /// A whole number of 0 or more.
    Seed,
    /// A number above 0.
    Positive,
    /// A number of 0 or more.
    NonNegative,
    /// A number or percent in [0, 1).
    Fraction,
    /// A whole number of steps, or a percent of training below 100%.
    Warmup,
    /// One of [`STRATEGIES`], written bare.
    Strategy,
    /// `true`, `false`, or a share in [0, 1].
    Paraphrase,
    /// A bracketed list of fields (`[query.title, candidate.summary]`), checked by the pipeline
    /// checks against the pair's roles, never a `key value` setting.
    Fields,
}

/// The synthesis strategies `synthetic from { strategy ... }` takes.
pub const STRATEGIES: &[&str] = &["coverage", "uniform", "boundary"];

impl Kind {
    /// What a value of this kind must be, in words.
    pub fn requirement(self) -> &'static str {
        match self {
            Kind::Count => "a whole number of at least 1",
            Kind::Seed => "a whole number of 0 or more",
            Kind::Positive => "a number above 0",
            Kind::NonNegative => "a number of 0 or more",
            Kind::Fraction => "a number from 0 up to but not including 1 (or a percent below 100%)",
            Kind::Warmup => "a whole number of steps or a percent of training below 100%",
            Kind::Strategy => "one of `coverage`, `uniform` or `boundary`",
            Kind::Paraphrase => "`true`, `false` or a share from 0 to 1",
            Kind::Fields => "a list of fields such as `[query.title, candidate.summary]`",
        }
    }

    /// Whether a written value is of this kind.
    pub fn accepts(self, value: &SettingValue) -> bool {
        match (self, value) {
            (Kind::Count, SettingValue::Number(v)) => is_whole(*v) && *v >= 1.0,
            (Kind::Seed, SettingValue::Number(v)) => is_whole(*v) && *v >= 0.0,
            (Kind::Positive, SettingValue::Number(v)) => *v > 0.0,
            (Kind::NonNegative, SettingValue::Number(v)) => *v >= 0.0,
            (Kind::Fraction, SettingValue::Number(v) | SettingValue::Percent(v)) => {
                (0.0..1.0).contains(v)
            }
            (Kind::Warmup, SettingValue::Number(v)) => is_whole(*v) && *v >= 0.0,
            (Kind::Warmup, SettingValue::Percent(v)) => (0.0..1.0).contains(v),
            (Kind::Strategy, SettingValue::Name(n)) => STRATEGIES.contains(&n.as_str()),
            (Kind::Paraphrase, SettingValue::Bool(_)) => true,
            (Kind::Paraphrase, SettingValue::Number(v) | SettingValue::Percent(v)) => {
                (0.0..=1.0).contains(v)
            }
            _ => false,
        }
    }

    /// The type column of the reference table.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::Count => "whole number ≥ 1",
            Kind::Seed => "whole number ≥ 0",
            Kind::Positive => "number > 0",
            Kind::NonNegative => "number ≥ 0",
            Kind::Fraction => "fraction in [0, 1) or percent",
            Kind::Warmup => "steps, or percent of training < 100%",
            Kind::Strategy => "`coverage`, `uniform` or `boundary`",
            Kind::Paraphrase => "`true`, `false` or share in [0, 1]",
            Kind::Fields => "`[ROLE.FIELD, ...]`",
        }
    }
}

fn is_whole(v: f64) -> bool {
    v.is_finite() && v.fract() == 0.0
}

/// What a setting is when it is not written.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Number(f64),
    Name(&'static str),
    Bool(bool),
    /// Computed from other settings at lowering, as the text says (e.g. `4 × hidden`).
    Derived(&'static str),
    /// Must be written: the checker reports it missing.
    Required,
}

impl Default {
    /// The default column of the reference table.
    pub fn show(self) -> String {
        match self {
            Default::Number(n) => show_number(n),
            Default::Name(n) => format!("`{n}`"),
            Default::Bool(b) => b.to_string(),
            Default::Derived(text) => text.to_string(),
            Default::Required => "required".to_string(),
        }
    }

    /// The number, for a numeric default.
    pub fn number(self) -> Option<f64> {
        match self {
            Default::Number(n) => Some(n),
            _ => None,
        }
    }
}

fn show_number(n: f64) -> String {
    if n != 0.0 && n.abs() < 1e-3 {
        format!("{n:e}")
    } else {
        format!("{n}")
    }
}

/// One setting of the pipeline vocabulary.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SettingSpec {
    pub block: Block,
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    /// A value to show in help and completion.
    pub example: &'static str,
    pub doc: &'static str,
}

const fn row(
    block: Block,
    name: &'static str,
    kind: Kind,
    default: Default,
    example: &'static str,
    doc: &'static str,
) -> SettingSpec {
    SettingSpec {
        block,
        name,
        kind,
        default,
        example,
        doc,
    }
}

/// Every setting of a pipeline, by block. The order is the order of the reference tables.
pub const SETTINGS: &[SettingSpec] = &[
    row(
        Block::Encoder,
        "layers",
        Kind::Count,
        Default::Required,
        "6",
        "transformer layers",
    ),
    row(
        Block::Encoder,
        "hidden",
        Kind::Count,
        Default::Required,
        "384",
        "width of the hidden states",
    ),
    row(
        Block::Encoder,
        "heads",
        Kind::Count,
        Default::Required,
        "12",
        "attention heads; they must divide the hidden size",
    ),
    row(
        Block::Encoder,
        "intermediate",
        Kind::Count,
        Default::Derived("4 × hidden"),
        "1536",
        "width of each layer's feed-forward block",
    ),
    row(
        Block::Encoder,
        "max_len",
        Kind::Count,
        Default::Number(256.0),
        "256",
        "word pieces of a (query, candidate) pair; longer pairs are truncated on both sides",
    ),
    row(
        Block::Encoder,
        "vocab",
        Kind::Count,
        Default::Number(8192.0),
        "30522",
        "word pieces of a tokenizer trained on the training text (a checkpoint brings its own)",
    ),
    row(
        Block::Train,
        "epochs",
        Kind::Count,
        Default::Number(3.0),
        "5",
        "passes over the training pairs",
    ),
    row(
        Block::Train,
        "lr",
        Kind::Positive,
        Default::Number(1e-4),
        "3e-5",
        "peak learning rate of AdamW",
    ),
    row(
        Block::Train,
        "batch",
        Kind::Count,
        Default::Number(32.0),
        "32",
        "pairs per optimizer step",
    ),
    row(
        Block::Train,
        "warmup",
        Kind::Warmup,
        Default::Number(0.0),
        "500",
        "steps (or a percent of all steps) of linear warm-up before linear decay",
    ),
    row(
        Block::Train,
        "accumulate",
        Kind::Count,
        Default::Number(1.0),
        "4",
        "batches whose gradients are summed before each optimizer step",
    ),
    row(
        Block::Train,
        "clip_norm",
        Kind::Positive,
        Default::Number(1.0),
        "1.0",
        "gradients are scaled down to this global norm when above it",
    ),
    row(
        Block::Train,
        "seed",
        Kind::Seed,
        Default::Number(0.0),
        "7",
        "initial weights, dropout and batch order: the same seed gives the same weights",
    ),
    row(
        Block::Regularize,
        "weight_decay",
        Kind::NonNegative,
        Default::Number(0.01),
        "0.01",
        "AdamW's decoupled weight decay (never on norms and biases)",
    ),
    row(
        Block::Regularize,
        "dropout",
        Kind::Fraction,
        Default::Number(0.1),
        "0.1",
        "share of activations dropped in training",
    ),
    row(
        Block::Regularize,
        "l2",
        Kind::NonNegative,
        Default::Number(0.0),
        "0.0001",
        "weight of an L2 penalty on the weights, a term of the loss",
    ),
    row(
        Block::Synthetic,
        "count",
        Kind::Count,
        Default::Number(1000.0),
        "20000",
        "synthetic pairs to write",
    ),
    row(
        Block::Synthetic,
        "strategy",
        Kind::Strategy,
        Default::Name("coverage"),
        "coverage",
        "how golden pairs are chosen and perturbed",
    ),
    row(
        Block::Synthetic,
        "seed",
        Kind::Seed,
        Default::Number(7.0),
        "7",
        "seed of the perturbations",
    ),
    row(
        Block::Synthetic,
        "paraphrase",
        Kind::Paraphrase,
        Default::Bool(false),
        "true",
        "share of records whose prose is paraphrased by a model endpoint given to the run",
    ),
    row(
        Block::Split,
        "validation",
        Kind::Fraction,
        Default::Number(0.1),
        "10%",
        "share of real pairs held out, stratified by overall grade",
    ),
    row(
        Block::Split,
        "seed",
        Kind::Seed,
        Default::Number(0.0),
        "7",
        "seed of the split and of batch order",
    ),
    row(
        Block::Loss,
        "temperature",
        Kind::Positive,
        Default::Number(1.0),
        "2",
        "logits are divided by it before they are compared (1: unchanged)",
    ),
    row(
        Block::Drift,
        "rebalance_min_factor",
        Kind::Positive,
        Default::Number(0.5),
        "0.5",
        "at a rebalance the weight is multiplied by measured / tolerated drift, at least this",
    ),
    row(
        Block::Drift,
        "rebalance_max_factor",
        Kind::Positive,
        Default::Number(2.0),
        "2",
        "and at most this",
    ),
    row(
        Block::EarlyStop,
        "min_delta",
        Kind::NonNegative,
        Default::Number(0.0),
        "0.001",
        "an epoch improves on the best only by more than this",
    ),
    row(
        Block::Inputs,
        "reads",
        Kind::Fields,
        Default::Derived("every `text` field of the query, then of the candidate"),
        "[query.title, query.description, candidate.summary]",
        "the text the model reads, each side's fields joined in order and encoded as a (query, candidate) pair; `text` and `string` fields",
    ),
    row(
        Block::Inputs,
        "features",
        Kind::Fields,
        Default::Derived("none"),
        "[query.seniority, candidate.years_experience]",
        "structured fields (numbers, bools, strings, enums, sets) joined to the text before the heads; `hour_of_day` and `day_of_week` in a model that learns from clicks",
    ),
];

/// The settings of one block.
pub fn settings(block: Block) -> impl Iterator<Item = &'static SettingSpec> + Clone {
    SETTINGS.iter().filter(move |s| s.block == block)
}

/// The row of a setting.
pub fn setting(block: Block, name: &str) -> Option<&'static SettingSpec> {
    SETTINGS.iter().find(|s| s.block == block && s.name == name)
}

/// The numeric default of a setting (0 when the table has none: never for a numeric row, which
/// a test checks).
pub fn default_number(block: Block, name: &str) -> f64 {
    setting(block, name)
        .and_then(|s| s.default.number())
        .unwrap_or(0.0)
}

/// What a metric's value is, and so the unit of its thresholds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricUnit {
    /// A score or rate in [0, 1].
    Ratio,
    /// A correlation or agreement in [-1, 1] (Spearman, kappa).
    Correlation,
    /// Milliseconds.
    Milliseconds,
    /// A log loss in nats: 0 or more.
    Nats,
}

/// Which way a metric improves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Maximize,
    Minimize,
}

/// One metric the runtime measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricSpec {
    /// The name as written; `ndcg@K` stands for every cutoff K ≥ 1.
    pub name: &'static str,
    pub unit: MetricUnit,
    pub direction: Direction,
    pub doc: &'static str,
}

/// Every metric, in the order of the reference table.
pub const METRICS: &[MetricSpec] = &[
    MetricSpec {
        name: "policy_alignment",
        unit: MetricUnit::Correlation,
        direction: Direction::Maximize,
        doc: "mean Spearman correlation of predicted and rubric dimension scores",
    },
    MetricSpec {
        name: "grade_kappa",
        unit: MetricUnit::Correlation,
        direction: Direction::Maximize,
        doc: "weighted Cohen's kappa of predicted and rubric overall grades",
    },
    MetricSpec {
        name: "policy_drift",
        unit: MetricUnit::Ratio,
        direction: Direction::Minimize,
        doc: "mean absolute gap between the model's and the reference's policy scores",
    },
    MetricSpec {
        name: "click_auc",
        unit: MetricUnit::Ratio,
        direction: Direction::Maximize,
        doc: "area under the ROC curve of predicted clicks",
    },
    MetricSpec {
        name: "click_logloss",
        unit: MetricUnit::Nats,
        direction: Direction::Minimize,
        doc: "log loss of predicted click probabilities",
    },
    MetricSpec {
        name: "ndcg@K",
        unit: MetricUnit::Ratio,
        direction: Direction::Maximize,
        doc: "NDCG of each query's top K candidates, ranked by the model, graded by the rubric",
    },
    MetricSpec {
        name: "blended",
        unit: MetricUnit::Correlation,
        direction: Direction::Maximize,
        doc: "grade kappa and the click AUC's Gini (2 × AUC − 1), averaged: a student serving the policy and clicks",
    },
    MetricSpec {
        name: "ctr",
        unit: MetricUnit::Ratio,
        direction: Direction::Maximize,
        doc: "click-through rate of served rankings",
    },
    MetricSpec {
        name: "p50_latency",
        unit: MetricUnit::Milliseconds,
        direction: Direction::Minimize,
        doc: "median serving latency",
    },
    MetricSpec {
        name: "p99_latency",
        unit: MetricUnit::Milliseconds,
        direction: Direction::Minimize,
        doc: "99th percentile serving latency",
    },
];

/// The metric a name denotes (`ndcg@10` is `ndcg@K`); None for a name the runtime does not
/// measure.
pub fn metric(name: &str) -> Option<&'static MetricSpec> {
    let key = match name.strip_prefix("ndcg@") {
        Some(k) if k.parse::<u64>().is_ok_and(|k| k >= 1) => "ndcg@K",
        Some(_) => return None,
        None => name,
    };
    METRICS.iter().find(|m| m.name == key)
}

/// The reference tables of `docs/language.md`, in Markdown: one per block, then the metrics.
/// A test holds the document to this text.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    for block in Block::ALL {
        out.push_str(&format!("{}\n\n", block.syntax()));
        out.push_str("| setting | type | default | what it does |\n| --- | --- | --- | --- |\n");
        for s in settings(block) {
            out.push_str(&format!(
                "| `{}` | {} | {} | {} |\n",
                s.name,
                s.kind.type_name(),
                s.default.show(),
                s.doc
            ));
        }
        out.push('\n');
    }
    out.push_str(
        "Metrics\n\n| metric | unit | better | what it measures |\n| --- | --- | --- | --- |\n",
    );
    for m in METRICS {
        let unit = match m.unit {
            MetricUnit::Ratio => "fraction in [0, 1] (or percent)",
            MetricUnit::Correlation => "number in [-1, 1]",
            MetricUnit::Milliseconds => "duration (`us`, `ms`, `s`)",
            MetricUnit::Nats => "number ≥ 0 (nats)",
        };
        let better = match m.direction {
            Direction::Maximize => "higher",
            Direction::Minimize => "lower",
        };
        out.push_str(&format!(
            "| `{}` | {unit} | {better} | {} |\n",
            m.name, m.doc
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_rows_have_numeric_defaults_of_their_kind() {
        for s in SETTINGS {
            let numeric = matches!(
                s.kind,
                Kind::Count | Kind::Seed | Kind::Positive | Kind::NonNegative | Kind::Fraction
            );
            match s.default {
                Default::Number(n) if numeric => assert!(
                    s.kind.accepts(&SettingValue::Number(n)),
                    "the default of `{}` is not {}",
                    s.name,
                    s.kind.requirement()
                ),
                Default::Number(n) => assert_eq!(s.kind, Kind::Warmup, "{}: {n}", s.name),
                Default::Required | Default::Derived(_) => assert!(
                    matches!(s.block, Block::Encoder | Block::Inputs),
                    "only sizes and inputs may lack a number"
                ),
                Default::Name(_) | Default::Bool(_) => assert!(!numeric, "{}", s.name),
            }
        }
    }

    #[test]
    fn names_are_unique_within_a_block() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert!(a.block != b.block || a.name != b.name, "{} twice", a.name);
            }
        }
    }

    #[test]
    fn metrics_by_name() {
        assert_eq!(metric("ndcg@10").map(|m| m.name), Some("ndcg@K"));
        assert!(metric("ndcg@0").is_none());
        assert!(metric("ndcg").is_none());
        assert_eq!(
            metric("p99_latency").map(|m| m.unit),
            Some(MetricUnit::Milliseconds)
        );
    }
}
