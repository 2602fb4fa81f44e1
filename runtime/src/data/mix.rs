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
    /// Share of real rows the sampler holds in every batch, in [0, 1].
    pub real_share: f64,
    /// Share of (de-duplicated) real rows held out for validation.
    pub validation: f64,
    pub seed: u64,
}

impl MixOptions {
    /// The options a training plan's mix stage says.
    pub fn from_plan(config: &rubric_compiler::lower::plan::MixConfig) -> MixOptions {
        MixOptions {
            real_share: config.real_share,
            validation: config.validation,
            seed: config.seed,
        }
    }
}

/// The manifest the mix stage writes beside its outputs.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MixManifest {
    pub schema: String,
    pub policy: String,
    pub inputs: BTreeMap<String, InputRecord>,
    pub options: ManifestOptions,
    pub counts: MixCounts,
    pub validation_by_grade: BTreeMap<String, usize>,
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
    pub validation: f64,
    pub seed: u64,
}

/// Every row in is accounted for: `real_in = real_duplicates + validation + real_pool`, and
/// `synthetic_in = synthetic_duplicates + synthetic_from_validation + synthetic_pool`.
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
    /// Rows of the training pool the sampler draws batches from.
    pub real_pool: usize,
    pub synthetic_pool: usize,
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

fn write_row(out: &mut dyn Write, row: &PairRow) -> io::Result<()> {
    out.write_all(row.value.to_string().as_bytes())?;
    out.write_all(b"\n")
}

/// Splits and pools: writes the validation split (real pairs, stratified by overall grade) and
/// the training pool (the other real pairs, then the synthetic ones, each row as read, its
/// `source` saying which it is), and returns the manifest. Batches are not fixed here: the
/// trainers draw them each epoch from the pool with a [`MixSampler`].
pub fn mix(
    engine: &Engine,
    real: MixInput,
    synthetic: Option<MixInput>,
    options: &MixOptions,
    pool_out: &mut dyn Write,
    validation_out: &mut dyn Write,
) -> Result<MixManifest, MixError> {
    if !(0.0..=1.0).contains(&options.real_share) {
        return Err(MixError::Options(format!(
            "the real share must be between 0% and 100%, not {}",
            options.real_share * 100.0
        )));
    }
    let synthetic = synthetic.unwrap_or(MixInput {
        path: PathBuf::new(),
        sha256: String::new(),
        rows: Vec::new(),
    });
    let mut counts = MixCounts {
        real_in: real.rows.len(),
        synthetic_in: synthetic.rows.len(),
        ..MixCounts::default()
    };
    let mut inputs = BTreeMap::new();
    for (name, input) in [("real", &real), ("synthetic", &synthetic)] {
        if input.path.as_os_str().is_empty() {
            continue;
        }
        inputs.insert(
            name.to_string(),
            InputRecord {
                path: input.path.display().to_string(),
                sha256: input.sha256.clone(),
                rows: input.rows.len(),
            },
        );
    }
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
    for (row, grade) in &split.rows {
        if split
            .validation
            .contains(row.str_field("id").unwrap_or_default())
        {
            write_row(validation_out, row)?;
            *validation_by_grade.entry(grade.clone()).or_insert(0) += 1;
            counts.validation += 1;
        } else {
            write_row(pool_out, row)?;
            counts.real_pool += 1;
        }
    }
    validation_out.flush()?;

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
        write_row(pool_out, row)?;
        counts.synthetic_pool += 1;
    }
    pool_out.flush()?;
    Ok(MixManifest {
        schema: "rubric.mix-manifest/2".to_string(),
        policy: engine.program.policy.hash.clone(),
        inputs,
        options: ManifestOptions {
            real_share: options.real_share,
            validation: options.validation,
            seed: options.seed,
        },
        counts,
        validation_by_grade,
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
            "real: {} in = {} duplicates + {} validation + {} in the training pool",
            c.real_in, c.real_duplicates, c.validation, c.real_pool
        );
        let _ = writeln!(
            out,
            "synthetic: {} in = {} duplicates + {} from validation pairs + {} in the training pool",
            c.synthetic_in, c.synthetic_duplicates, c.synthetic_from_validation, c.synthetic_pool
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
        let _ = writeln!(
            out,
            "batches: drawn each epoch by the trainers' sampler, {:.1}% real in every batch",
            self.options.real_share * 100.0
        );
        out
    }
}

/// Draws training batches from the mix stage's pool: every batch holds the real share (the
/// rounding error carried from batch to batch, so any run of batches is within one row of it),
/// real and synthetic rows interleaved within each batch, and a fresh order every epoch, all
/// from the seed: the same seed, epoch and batch size give the same batches. Rows left over
/// once one side cannot fill another batch at the share wait for a later epoch's shuffle.
#[derive(Clone, Debug, PartialEq)]
pub struct MixSampler {
    real: Vec<usize>,
    synthetic: Vec<usize>,
    real_share: f64,
    seed: u64,
}

impl MixSampler {
    /// A sampler over pool rows, each real (`true`) or synthetic, by position.
    pub fn new(is_real: impl IntoIterator<Item = bool>, real_share: f64, seed: u64) -> MixSampler {
        let (mut real, mut synthetic) = (Vec::new(), Vec::new());
        for (i, r) in is_real.into_iter().enumerate() {
            if r {
                real.push(i);
            } else {
                synthetic.push(i);
            }
        }
        MixSampler {
            real,
            synthetic,
            real_share: real_share.clamp(0.0, 1.0),
            seed,
        }
    }

    /// A sampler over rows read from a pool file: a row is synthetic when its `source` says so.
    pub fn for_rows(rows: &[PairRow], real_share: f64, seed: u64) -> MixSampler {
        MixSampler::new(
            rows.iter()
                .map(|r| r.str_field("source") != Some("synthetic")),
            real_share,
            seed,
        )
    }

    /// Full batches of `batch` rows each epoch.
    pub fn batches_per_epoch(&self, batch: usize) -> usize {
        batches_possible(
            self.real_share,
            batch,
            self.real.len(),
            self.synthetic.len(),
        )
    }

    /// The batches of one epoch, as pool row positions.
    pub fn epoch(&self, epoch: u64, batch: usize) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(epoch);
        let mut real = self.real.clone();
        let mut synthetic = self.synthetic.clone();
        real.shuffle(&mut rng);
        synthetic.shuffle(&mut rng);
        let batches = self.batches_per_epoch(batch);
        let (mut r_at, mut s_at) = (0usize, 0usize);
        real_per_batch(self.real_share, batch, batches)
            .into_iter()
            .map(|n_real| {
                let n_synthetic = batch - n_real;
                let mut rows: Vec<usize> = real
                    .iter()
                    .skip(r_at)
                    .take(n_real)
                    .chain(synthetic.iter().skip(s_at).take(n_synthetic))
                    .copied()
                    .collect();
                r_at += n_real;
                s_at += n_synthetic;
                rows.shuffle(&mut rng);
                rows
            })
            .collect()
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
    fn the_sampler_holds_the_share_in_every_batch_and_reshuffles_each_epoch() {
        let is_real: Vec<bool> = (0..1000).map(|i| i % 3 == 0).collect();
        let sampler = MixSampler::new(is_real.iter().copied(), 0.3, 7);
        let first = sampler.epoch(0, 32);
        assert_eq!(first.len(), sampler.batches_per_epoch(32));
        assert!(first.len() > 20);
        let mut carried = 0.0;
        for batch in &first {
            assert_eq!(batch.len(), 32);
            let reals = batch.iter().filter(|i| is_real[**i]).count();
            carried += reals as f64 - 0.3 * 32.0;
            assert!(carried.abs() <= 1.0, "{carried}");
            // Interleaved: the real rows are not all at the front.
            let leading = batch.iter().take_while(|i| is_real[**i]).count();
            assert!(leading < reals || reals == 0 || reals == 32);
        }
        assert_eq!(
            first,
            sampler.epoch(0, 32),
            "the same epoch, the same batches"
        );
        assert_ne!(first, sampler.epoch(1, 32), "a new order each epoch");
        assert_ne!(
            first,
            MixSampler::new(is_real.iter().copied(), 0.3, 8).epoch(0, 32)
        );
        let rows: BTreeSet<usize> = first.iter().flatten().copied().collect();
        assert_eq!(rows.len(), first.len() * 32, "no row twice in an epoch");
    }

    #[test]
    fn strata_add_up_to_the_rounded_share() {
        assert_eq!(stratum_sizes(&[15, 15, 15], 0.1), vec![2, 1, 2]);
        assert_eq!(stratum_sizes(&[3, 0, 7], 0.5), vec![2, 0, 3]);
    }
}
