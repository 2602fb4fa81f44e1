//! Mixing real and synthetic pairs for training: duplicates dropped by content, a validation
//! split of real pairs stratified by overall grade, and a batch sampler that holds the declared
//! real share in every batch (the rounding error carried to the next batch). Deterministic from
//! a seed; a manifest records the inputs' hashes and every count.

use crate::compile::{deterministic_json, sha256_hex};
use crate::data::golden::pairs::{PairLabeler, PairRow, content_key};
use crate::label::decode::RowError;
use crate::label::engine::Engine;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

#[derive(Debug)]
pub enum MixError {
    Io(io::Error),
    /// A row that does not belong where it is (wrong `source`, a repeated id) or does not decode.
    Row {
        file: PathBuf,
        error: RowError,
    },
    /// The options cannot be honoured.
    Options(String),
}

impl fmt::Display for MixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MixError::Io(e) => write!(f, "{e}"),
            MixError::Row { file, error } => write!(f, "`{}`, {error}", file.display()),
            MixError::Options(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for MixError {}

impl From<io::Error> for MixError {
    fn from(e: io::Error) -> Self {
        MixError::Io(e)
    }
}

/// Parses a share written as `30%`, `30` or `0.3` into [0, 1].
pub fn parse_share(s: &str) -> Option<f64> {
    let t = s.trim();
    let x = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().ok()? / 100.0,
        None => {
            let v = t.parse::<f64>().ok()?;
            if v > 1.0 { v / 100.0 } else { v }
        }
    };
    (x.is_finite() && (0.0..=1.0).contains(&x)).then_some(x)
}

/// Real pairs after de-duplication, labeled, and split.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RealSplit {
    /// Kept rows (first occurrence of each content), with their overall grade, in input order.
    pub rows: Vec<(PairRow, String)>,
    /// Content keys of the kept rows, in the same order.
    pub keys: Vec<String>,
    /// Rows dropped because an earlier row had the same query and candidate records.
    pub duplicates: usize,
    /// Ids of the rows in the validation split.
    pub validation: BTreeSet<String>,
}

/// How many rows of each grade go to validation: `share` of each grade, rounded with the error
/// carried from grade to grade so the total is the share of all rows, rounded.
fn stratum_sizes(sizes: &[usize], share: f64) -> Vec<usize> {
    let mut carried = 0.0;
    let mut taken_total = 0usize;
    sizes
        .iter()
        .map(|n| {
            carried += *n as f64 * share;
            let want = carried.round() as usize;
            let take = want.saturating_sub(taken_total).min(*n);
            taken_total += take;
            take
        })
        .collect()
}

/// De-duplicates, labels and splits real pairs: the validation split is `share` of each overall
/// grade, drawn with a generator seeded by `seed`. `rubric data synth` calls this too, so that it
/// never synthesizes from a pair `rubric data mix` will hold out.
pub fn split_real(
    engine: &Engine,
    rows: Vec<PairRow>,
    file: &std::path::Path,
    share: f64,
    seed: u64,
) -> Result<RealSplit, MixError> {
    let mut labeler = PairLabeler::new(engine);
    let mut seen_keys: BTreeSet<String> = BTreeSet::new();
    let mut seen_ids: BTreeMap<String, u64> = BTreeMap::new();
    let mut split = RealSplit::default();
    for row in rows {
        let id = row.str_field("id").unwrap_or_default().to_string();
        let row_err = |path: &str, message: String| MixError::Row {
            file: file.to_path_buf(),
            error: RowError {
                line: row.line,
                path: path.to_string(),
                message,
            },
        };
        if let Some(first) = seen_ids.get(&id) {
            return Err(row_err(
                "id",
                format!("the id `{id}` was already used on line {first}"),
            ));
        }
        seen_ids.insert(id, row.line);
        match row.str_field("source") {
            Some("real") | None => {}
            Some(other) => {
                return Err(row_err(
                    "source",
                    format!("`{other}` in the real pairs: only `real` rows belong here"),
                ));
            }
        }
        let key = content_key(engine, &row.value);
        if !seen_keys.insert(key.clone()) {
            split.duplicates += 1;
            continue;
        }
        let labeled = labeler
            .label(row.line, &row.value, None)
            .map_err(|error| MixError::Row {
                file: file.to_path_buf(),
                error,
            })?;
        split.rows.push((row, labeled.grade));
        split.keys.push(key);
    }
    let mut by_grade: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (row, grade) in &split.rows {
        by_grade
            .entry(grade.as_str())
            .or_default()
            .push(row.str_field("id").unwrap_or_default());
    }
    let sizes: Vec<usize> = by_grade.values().map(Vec::len).collect();
    let takes = stratum_sizes(&sizes, share);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut validation = BTreeSet::new();
    for (ids, take) in by_grade.into_values().zip(takes) {
        let mut ids = ids;
        ids.shuffle(&mut rng);
        validation.extend(ids.into_iter().take(take).map(str::to_string));
    }
    split.validation = validation;
    Ok(split)
}

/// Real rows per batch: batch `k` (from 0) gets `round(share·size·(k+1)) − round(share·size·k)`,
/// so the rounding error is carried and any run of batches is within one row of the share.
pub fn real_per_batch(share: f64, batch: usize, batches: usize) -> Vec<usize> {
    let per = share * batch as f64;
    (0..batches)
        .map(|k| {
            let hi = (per * (k + 1) as f64).round() as usize;
            let lo = (per * k as f64).round() as usize;
            hi.saturating_sub(lo).min(batch)
        })
        .collect()
}

/// How many full batches the pools fill at the share.
pub fn batches_possible(share: f64, batch: usize, real: usize, synthetic: usize) -> usize {
    if batch == 0 {
        return 0;
    }
    // The counts are monotone in the number of batches: grow while both pools suffice.
    let per = share * batch as f64;
    let fits = |k: usize| {
        let real_needed = (per * k as f64).round() as usize;
        real_needed <= real && (k * batch).saturating_sub(real_needed) <= synthetic
    };
    let upper = (real + synthetic) / batch;
    let (mut lo, mut hi) = (0usize, upper);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

#[derive(Clone, Debug)]
pub struct MixOptions {
    /// Share of real rows in every batch, in [0, 1].
    pub real_share: f64,
    pub batch: usize,
    /// Share of (de-duplicated) real rows held out for validation.
    pub validation: f64,
    pub seed: u64,
}

/// Per-batch real counts, summarized.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RatioSummary {
    pub min_real: usize,
    pub max_real: usize,
    /// The largest gap, over all runs of consecutive batches, between the real rows in the run
    /// and the share times its rows (at most 1 by construction).
    pub max_window_error: f64,
    pub real_share_overall: f64,
}

/// The manifest `rubric data mix` writes beside its outputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MixManifest {
    pub schema: String,
    pub policy: String,
    pub inputs: BTreeMap<String, InputRecord>,
    pub options: ManifestOptions,
    pub counts: MixCounts,
    pub validation_by_grade: BTreeMap<String, usize>,
    pub ratio: RatioSummary,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InputRecord {
    pub path: String,
    pub sha256: String,
    pub rows: usize,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ManifestOptions {
    pub real_share: f64,
    pub batch: usize,
    pub validation: f64,
    pub seed: u64,
}

/// Every row in is accounted for: `real_in = real_duplicates + validation + real_in_batches +
/// real_unused`, and likewise for synthetic rows (which are never in validation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MixCounts {
    pub real_in: usize,
    pub synthetic_in: usize,
    pub real_duplicates: usize,
    /// Synthetic rows whose records are already in an earlier row (real or synthetic).
    pub synthetic_duplicates: usize,
    /// Synthetic rows made from a pair in the validation split: dropped, so validation does
    /// not leak into training.
    pub synthetic_from_validation: usize,
    pub validation: usize,
    pub batches: usize,
    pub real_in_batches: usize,
    pub synthetic_in_batches: usize,
    /// Rows left over once one pool could not fill another batch at the share.
    pub real_unused: usize,
    pub synthetic_unused: usize,
}

/// An input file: its path, bytes' hash and rows.
pub struct MixInput {
    pub path: PathBuf,
    pub sha256: String,
    pub rows: Vec<PairRow>,
}

impl MixInput {
    pub fn read(path: &std::path::Path) -> Result<MixInput, MixError> {
        let bytes = std::fs::read(path)?;
        let rows = crate::data::golden::pairs::read_pairs(path).map_err(|e| match e {
            crate::data::golden::pairs::PairsError::Io { error, .. } => MixError::Io(error),
            crate::data::golden::pairs::PairsError::Row { path, error } => {
                MixError::Row { file: path, error }
            }
        })?;
        Ok(MixInput {
            path: path.to_path_buf(),
            sha256: sha256_hex(&bytes),
            rows,
        })
    }
}

fn window_error(reals: &[usize], batch: usize, share: f64) -> f64 {
    // max over windows of |sum real - share*rows|: prefix sums, O(n^2) is fine for thousands;
    // the error of a window is the difference of two prefix errors, so max - min of them.
    let mut prefix = 0.0f64;
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for r in reals {
        prefix += *r as f64 - share * batch as f64;
        lo = lo.min(prefix);
        hi = hi.max(prefix);
    }
    hi - lo
}

/// Mixes: writes `train` (one JSON object a line: the pair plus `batch`) and `validation`,
/// returns the manifest.
pub fn mix(
    engine: &Engine,
    real: MixInput,
    synthetic: MixInput,
    options: &MixOptions,
    train_out: &mut dyn Write,
    validation_out: &mut dyn Write,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<MixManifest, MixError> {
    if options.batch == 0 {
        return Err(MixError::Options(
            "the batch size must be at least 1".to_string(),
        ));
    }
    let mut counts = MixCounts {
        real_in: real.rows.len(),
        synthetic_in: synthetic.rows.len(),
        ..MixCounts::default()
    };
    let mut inputs = BTreeMap::new();
    inputs.insert(
        "real".to_string(),
        InputRecord {
            path: real.path.display().to_string(),
            sha256: real.sha256.clone(),
            rows: real.rows.len(),
        },
    );
    inputs.insert(
        "synthetic".to_string(),
        InputRecord {
            path: synthetic.path.display().to_string(),
            sha256: synthetic.sha256.clone(),
            rows: synthetic.rows.len(),
        },
    );
    let split = split_real(
        engine,
        real.rows,
        &real.path,
        options.validation,
        options.seed,
    )?;
    counts.real_duplicates = split.duplicates;
    let mut seen_keys: BTreeSet<String> = split.keys.iter().cloned().collect();
    let mut seen_ids: BTreeMap<String, String> = split
        .rows
        .iter()
        .map(|(r, _)| {
            (
                r.str_field("id").unwrap_or_default().to_string(),
                format!("line {} of `{}`", r.line, real.path.display()),
            )
        })
        .collect();

    let mut validation_by_grade: BTreeMap<String, usize> = BTreeMap::new();
    let mut real_train: Vec<&PairRow> = Vec::new();
    for (row, grade) in &split.rows {
        if split
            .validation
            .contains(row.str_field("id").unwrap_or_default())
        {
            validation_out.write_all(row.value.to_string().as_bytes())?;
            validation_out.write_all(b"\n")?;
            *validation_by_grade.entry(grade.clone()).or_insert(0) += 1;
            counts.validation += 1;
        } else {
            real_train.push(row);
        }
    }
    validation_out.flush()?;

    let mut synthetic_train: Vec<&PairRow> = Vec::new();
    for row in &synthetic.rows {
        let id = row.str_field("id").unwrap_or_default().to_string();
        let row_err = |path: &str, message: String| MixError::Row {
            file: synthetic.path.clone(),
            error: RowError {
                line: row.line,
                path: path.to_string(),
                message,
            },
        };
        if row.str_field("source") != Some("synthetic") {
            return Err(row_err(
                "source",
                "expected `\"source\": \"synthetic\"` in the synthetic pairs".to_string(),
            ));
        }
        if let Some(first) = seen_ids.get(&id) {
            return Err(row_err(
                "id",
                format!("the id `{id}` was already used ({first})"),
            ));
        }
        seen_ids.insert(
            id,
            format!("line {} of `{}`", row.line, synthetic.path.display()),
        );
        if row
            .str_field("from")
            .is_some_and(|from| split.validation.contains(from))
        {
            counts.synthetic_from_validation += 1;
            continue;
        }
        if !seen_keys.insert(content_key(engine, &row.value)) {
            counts.synthetic_duplicates += 1;
            continue;
        }
        synthetic_train.push(row);
    }

    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    real_train.shuffle(&mut rng);
    synthetic_train.shuffle(&mut rng);
    let batches = batches_possible(
        options.real_share,
        options.batch,
        real_train.len(),
        synthetic_train.len(),
    );
    let reals = real_per_batch(options.real_share, options.batch, batches);
    let (mut r_at, mut s_at) = (0usize, 0usize);
    let mut batch_rows: Vec<&PairRow> = Vec::with_capacity(options.batch);
    for (k, n_real) in reals.iter().enumerate() {
        batch_rows.clear();
        batch_rows.extend(real_train.iter().skip(r_at).take(*n_real));
        let n_synth = options.batch - n_real;
        batch_rows.extend(synthetic_train.iter().skip(s_at).take(n_synth));
        r_at += n_real;
        s_at += n_synth;
        // Real and synthetic rows interleaved within the batch, in a seeded order.
        batch_rows.shuffle(&mut rng);
        for row in &batch_rows {
            let mut value = row.value.clone();
            if let Value::Object(map) = &mut value {
                map.insert("batch".to_string(), Value::from(k as u64));
            }
            train_out.write_all(value.to_string().as_bytes())?;
            train_out.write_all(b"\n")?;
        }
        progress(k + 1, batches);
    }
    train_out.flush()?;
    counts.batches = batches;
    counts.real_in_batches = r_at;
    counts.synthetic_in_batches = s_at;
    counts.real_unused = real_train.len() - r_at;
    counts.synthetic_unused = synthetic_train.len() - s_at;
    let total_rows = batches * options.batch;
    let ratio = RatioSummary {
        min_real: reals.iter().copied().min().unwrap_or(0),
        max_real: reals.iter().copied().max().unwrap_or(0),
        max_window_error: window_error(&reals, options.batch, options.real_share),
        real_share_overall: if total_rows == 0 {
            0.0
        } else {
            r_at as f64 / total_rows as f64
        },
    };
    Ok(MixManifest {
        schema: "rubric.mix-manifest/1".to_string(),
        policy: engine.program.policy.hash.clone(),
        inputs,
        options: ManifestOptions {
            real_share: options.real_share,
            batch: options.batch,
            validation: options.validation,
            seed: options.seed,
        },
        counts,
        validation_by_grade,
        ratio,
    })
}

impl MixManifest {
    pub fn json(&self) -> String {
        deterministic_json(self)
    }

    /// The summary `rubric data mix` prints.
    pub fn report(&self) -> String {
        use std::fmt::Write as _;
        let c = &self.counts;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "real: {} in = {} duplicates + {} validation + {} in batches + {} unused",
            c.real_in, c.real_duplicates, c.validation, c.real_in_batches, c.real_unused
        );
        let _ = writeln!(
            out,
            "synthetic: {} in = {} duplicates + {} from validation pairs + {} in batches + {} unused",
            c.synthetic_in,
            c.synthetic_duplicates,
            c.synthetic_from_validation,
            c.synthetic_in_batches,
            c.synthetic_unused
        );
        let _ = writeln!(
            out,
            "{} batches of {}: {} to {} real rows each ({:.1}% real overall, target {:.1}%; any run of batches within {:.2} rows of the share)",
            c.batches,
            self.options.batch,
            self.ratio.min_real,
            self.ratio.max_real,
            self.ratio.real_share_overall * 100.0,
            self.options.real_share * 100.0,
            self.ratio.max_window_error
        );
        let by: Vec<String> = self
            .validation_by_grade
            .iter()
            .map(|(g, n)| format!("{g} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "validation: {} real pairs ({})",
            c.validation,
            by.join(", ")
        );
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn shares_parse_as_people_write_them() {
        assert_eq!(parse_share("30%"), Some(0.3));
        assert_eq!(parse_share("0.3"), Some(0.3));
        assert_eq!(parse_share("30"), Some(0.3));
        assert_eq!(parse_share("130%"), None);
        assert_eq!(parse_share("x"), None);
    }

    #[test]
    fn the_pipeline_of_job_match_says_count_strategy_shares_split_and_batch() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/job_match.policy");
        let compiled =
            crate::compile::compile_file(&path, &rubric_compiler::Options::default()).unwrap();
        let plan = compiled.lowered.training_plan.unwrap();
        assert_eq!(
            plan_settings(&plan),
            PlanDataSettings {
                synthetic_count: Some(20000),
                synthetic_strategy: Some("coverage".to_string()),
                real_share: Some(0.3),
                validation: Some(0.1),
                seed: Some(7),
                batch: Some(32),
            }
        );
    }

    #[test]
    fn strata_add_up_to_the_rounded_share() {
        assert_eq!(stratum_sizes(&[15, 15, 15], 0.1), vec![2, 1, 2]);
        assert_eq!(stratum_sizes(&[3, 0, 7], 0.5), vec![2, 0, 3]);
    }
}

/// What a pipeline's `data` block (and its first teacher's `train { batch }`) says about
/// synthesis and mixing, as lowered into the training plan; command-line flags override it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanDataSettings {
    /// `synthetic from golden { count N }`.
    pub synthetic_count: Option<usize>,
    /// `synthetic from golden { strategy S }`.
    pub synthetic_strategy: Option<String>,
    /// The `real` share of `mix real 30% synthetic 70%`.
    pub real_share: Option<f64>,
    /// `split validation 10%`.
    pub validation: Option<f64>,
    /// `split ... seed 7`.
    pub seed: Option<u64>,
    /// `train { batch 32 }` of the first teacher that says.
    pub batch: Option<usize>,
}

pub fn plan_settings(plan: &rubric_compiler::lower::plan::TrainingPlan) -> PlanDataSettings {
    use rubric_compiler::lower::plan::{SettingValueIr, StageConfig};
    let mut out = PlanDataSettings::default();
    for stage in &plan.stages {
        match &stage.config {
            StageConfig::Synthesize { settings, .. } if out.synthetic_count.is_none() => {
                for s in settings {
                    match (s.key.as_str(), &s.value) {
                        ("count", SettingValueIr::Number(n)) if *n >= 0.0 => {
                            out.synthetic_count = Some(*n as usize);
                        }
                        ("strategy", SettingValueIr::Text(t)) => {
                            out.synthetic_strategy = Some(t.clone());
                        }
                        _ => {}
                    }
                }
            }
            StageConfig::Mix {
                shares,
                validation,
                seed,
            } => {
                let total: f64 = shares.iter().map(|(_, s)| *s).sum();
                out.real_share = shares
                    .iter()
                    .find(|(n, _)| n == "real")
                    .map(|(_, s)| if total > 0.0 { *s / total } else { *s });
                out.validation = Some(*validation);
                out.seed = Some(*seed);
            }
            StageConfig::TrainTeacher { train, .. } if out.batch.is_none() => {
                out.batch = train.iter().find_map(|s| match (&s.key[..], &s.value) {
                    ("batch", SettingValueIr::Number(n)) if *n >= 1.0 => Some(*n as usize),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    out
}
