//! The stage runner behind `rubric run`: executes a compiled training plan as a DAG in a run
//! directory, each stage's outputs named by the content hash of exactly what it reads, so a
//! re-run skips what did not change and a killed run finishes with the same bytes.
//!
//! Layout of a run directory:
//! `stages/<stage id>/<key>/` holds a stage's outputs and its `manifest.json` (written last);
//! a stage is done when that manifest exists. A stage writes into `<key>.partial/` and renames
//! it into place only when complete, so no reader ever sees half a stage. `latest.json` names
//! the key of every stage of the last run.

mod stages;

use crate::compile::{Compiled, deterministic_json, sha256_hex};
use rubric_compiler::lower::plan::{Stage, StageConfig, StageInput, TrainingPlan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use stages::StageOutcome;

/// The schema of a stage manifest.
pub const MANIFEST_SCHEMA: &str = "rubric.stage-manifest/1";
/// The runner's own stage that renders the policy document (not in the training plan: it reads
/// the policy's prose, which no training stage does).
pub const DOCUMENT_STAGE: &str = "document";
/// The stage that distills the student.
pub const DISTILL_STAGE: &str = "distill";
/// The run directory's folder of the teachers' cached outputs.
pub const CACHE_DIR: &str = "cache";

/// What a stage read and wrote, for skipping, for evaluation and for reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageManifest {
    pub schema: String,
    pub stage: String,
    /// The content hash its folder is named by.
    pub key: String,
    pub rubric_version: String,
    /// Every input by name (a file path or `stage:<id>/<file>`), with its SHA-256.
    pub inputs: BTreeMap<String, String>,
    /// Every output file with its SHA-256 and row count (lines, for JSON lines).
    pub outputs: BTreeMap<String, OutputRecord>,
    /// Headline figures (counts, shares, coverage, a model's metrics), by name: the same for
    /// the same inputs.
    pub figures: BTreeMap<String, f64>,
    /// Wall-clock measurements (a trainer's seconds and rows per second), by name: they differ
    /// from run to run, like `seconds`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub timings: BTreeMap<String, f64>,
    /// The one-line summary shown when the stage runs or is skipped.
    pub summary: String,
    pub seconds: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputRecord {
    pub sha256: String,
    pub bytes: u64,
    pub rows: u64,
}

/// Why a run stopped.
#[derive(Debug)]
pub struct StageError {
    pub stage: String,
    pub cause: String,
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stage `{}` failed: {}", self.stage, self.cause)
    }
}

impl std::error::Error for StageError {}

/// What the caller sees of a run, stage by stage.
pub trait RunObserver {
    /// A stage was found done under its key.
    fn skipped(&mut self, manifest: &StageManifest);
    /// A stage starts; `total` is its unit of progress when known.
    fn started(&mut self, stage: &str);
    /// Progress of the running stage: done of total (0 when unknown).
    fn progress(&mut self, done: u64, total: u64);
    fn finished(&mut self, manifest: &StageManifest);
    /// A stage of the plan this version of rubric cannot execute yet.
    fn not_run(&mut self, stage: &str, why: &str);
    /// An ablation of the distill stage finished (or was read back), with its summary.
    fn ablation(&mut self, variant: &str, summary: &str) {
        self.note(&format!("{variant}: {summary}"));
    }
    /// A passing status of the running stage, shown beside its progress (a training loss).
    fn status(&mut self, _text: &str) {}
    /// A line of the running stage worth keeping in the log (an epoch's metrics).
    fn note(&mut self, _text: &str) {}
}

/// A stage of a run: the runner's own policy document, or a stage of the training plan.
#[derive(Clone, Copy, Debug)]
pub enum RunStage<'a> {
    Document,
    Plan(&'a Stage),
}

impl RunStage<'_> {
    pub fn id(&self) -> &str {
        match self {
            RunStage::Document => DOCUMENT_STAGE,
            RunStage::Plan(s) => &s.id,
        }
    }
}

/// Options of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The run directory.
    pub dir: PathBuf,
    /// Only this stage (its inputs must be done).
    pub only: Option<String>,
    /// Only these stages and the stages they read from, directly or not (empty: every stage).
    pub upto: Vec<String>,
    /// The stages of the plan up to this one, in plan order (the policy document included).
    pub until: Option<String>,
    /// Where models train: `cpu`, `cuda` or `cuda:N` (a build with the `cuda` feature).
    pub device: String,
    /// After the distill stage, train these ablations of its student (`rubric distill
    /// --ablations`, or `--ablation NAME`): each kept in `stages/distill/<key>.ablations/`, so
    /// that a second run reads them back. Empty: none.
    pub ablations: Vec<crate::distill::Variant>,
}

impl RunOptions {
    /// A run of every stage in `dir`, on the CPU.
    pub fn new(dir: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            dir: dir.into(),
            only: None,
            upto: Vec::new(),
            until: None,
            device: "cpu".to_string(),
            ablations: Vec::new(),
        }
    }
}

/// A compiled pipeline ready to run: the plan, the engine's program, and where its files are.
pub struct Runner<'a> {
    pub compiled: &'a Compiled,
    pub plan: &'a TrainingPlan,
    /// The folder of the pipeline's file: declared paths are relative to it.
    pub base: PathBuf,
    /// The policy source files (for the document stage's key).
    pub sources: Vec<(String, String)>,
}

/// The summary of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    pub ran: Vec<String>,
    pub skipped: Vec<String>,
    pub not_run: Vec<String>,
    /// The distill stage's ablations, when they were asked for.
    pub ablations: Option<crate::distill::report::AblationReport>,
}

impl Runner<'_> {
    /// Runs every stage in plan order (or only `options.only`).
    pub fn run(
        &self,
        options: &RunOptions,
        observer: &mut dyn RunObserver,
    ) -> Result<RunSummary, StageError> {
        let mut done: BTreeMap<String, (PathBuf, StageManifest)> = BTreeMap::new();
        let mut summary = RunSummary::default();
        let known: Vec<&str> = std::iter::once(DOCUMENT_STAGE)
            .chain(self.plan.stages.iter().map(|s| s.id.as_str()))
            .collect();
        for asked in options
            .only
            .iter()
            .chain(&options.upto)
            .chain(&options.until)
        {
            if !known.contains(&asked.as_str()) {
                return Err(StageError {
                    stage: asked.clone(),
                    cause: format!(
                        "the pipeline `{}` has no such stage; its stages are {}",
                        self.plan.pipeline,
                        known
                            .iter()
                            .map(|s| format!("`{s}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        let needed = self.needed(&options.upto);
        let position = |id: &str| known.iter().position(|k| *k == id);
        let last = options.until.as_deref().and_then(position);
        let wanted = |id: &str| {
            options.only.as_deref().is_none_or(|o| o == id)
                && needed.as_ref().is_none_or(|n| n.contains(id))
                && last.is_none_or(|last| position(id).is_some_and(|p| p <= last))
        };
        let mut latest: BTreeMap<String, String> = read_latest(&options.dir);

        // The policy document first: keyed by the sources' text, prose and comments included.
        let run_stages =
            std::iter::once(RunStage::Document).chain(self.plan.stages.iter().map(RunStage::Plan));
        for stage in run_stages {
            let id = stage.id().to_string();
            let kind = match stages::kind(stage) {
                Ok(kind) => kind,
                Err(why) => {
                    if wanted(&id) {
                        observer.not_run(&id, why);
                        summary.not_run.push(id);
                    }
                    continue;
                }
            };
            let inputs = match self.inputs(stage, &done) {
                Ok(i) => i,
                Err(cause) if wanted(&id) => {
                    return Err(StageError {
                        stage: id.clone(),
                        cause,
                    });
                }
                // A stage not asked for whose inputs are not there: nothing after it is either.
                Err(_) => continue,
            };
            let key = self.key(stage, &inputs);
            let stage_dir = options.dir.join("stages").join(&id);
            let final_dir = stage_dir.join(&key);
            if let Some(manifest) = read_manifest(&final_dir) {
                if wanted(&id) {
                    observer.skipped(&manifest);
                    summary.skipped.push(id.clone());
                }
                latest.insert(id.clone(), key.clone());
                done.insert(id.clone(), (final_dir, manifest));
                continue;
            }
            if !wanted(&id) {
                continue;
            }
            observer.started(&id);
            let partial = stage_dir.join(format!("{key}.partial"));
            let started = Instant::now();
            let fail = |cause: String| StageError {
                stage: id.clone(),
                cause,
            };
            prepare(&partial)
                .map_err(|e| fail(format!("cannot create `{}`: {e}", partial.display())))?;
            let context = stages::Context {
                runner: self,
                inputs: &inputs,
                done: &done,
                out: &partial,
                device: &options.device,
                cache: &options.dir.join(CACHE_DIR),
            };
            let outcome = stages::execute(kind, stage, &context, observer).map_err(fail)?;
            let manifest = StageManifest {
                schema: MANIFEST_SCHEMA.to_string(),
                stage: id.clone(),
                key: key.clone(),
                rubric_version: env!("CARGO_PKG_VERSION").to_string(),
                inputs: inputs
                    .iter()
                    .map(|i| (i.name.clone(), i.sha256.clone()))
                    .collect(),
                outputs: outputs_of(&partial)
                    .map_err(|e| fail(format!("cannot read back its outputs: {e}")))?,
                figures: outcome.figures,
                timings: outcome.timings,
                summary: outcome.summary,
                seconds: started.elapsed().as_secs_f64(),
            };
            let manifest_path = partial.join("manifest.json");
            crate::atomic::write(&manifest_path, deterministic_json(&manifest).as_bytes())
                .map_err(|e| fail(format!("cannot write `{}`: {e}", manifest_path.display())))?;
            // A finished stage of an earlier, killed run under the same key is the same bytes.
            if final_dir.exists() {
                fs::remove_dir_all(&final_dir)
                    .map_err(|e| fail(format!("cannot replace `{}`: {e}", final_dir.display())))?;
            }
            fs::rename(&partial, &final_dir).map_err(|e| {
                fail(format!(
                    "cannot move `{}` into place: {e}",
                    partial.display()
                ))
            })?;
            observer.finished(&manifest);
            summary.ran.push(id.clone());
            latest.insert(id.clone(), key.clone());
            done.insert(id.clone(), (final_dir, manifest));
        }
        if !options.ablations.is_empty() {
            summary.ablations = Some(self.ablations(options, &done, observer)?);
        }
        let latest_path = options.dir.join("latest.json");
        crate::atomic::write(&latest_path, deterministic_json(&latest).as_bytes()).map_err(
            |e| StageError {
                stage: "run".to_string(),
                cause: format!("cannot write `{}`: {e}", latest_path.display()),
            },
        )?;
        Ok(summary)
    }

    /// Trains the distill stage's ablations beside its student (done before this).
    fn ablations(
        &self,
        options: &RunOptions,
        done: &BTreeMap<String, (PathBuf, StageManifest)>,
        observer: &mut dyn RunObserver,
    ) -> Result<crate::distill::report::AblationReport, StageError> {
        let fail = |cause: String| StageError {
            stage: DISTILL_STAGE.to_string(),
            cause,
        };
        let stage = self
            .plan
            .stage(DISTILL_STAGE)
            .ok_or_else(|| fail("the pipeline has no student to distill".to_string()))?;
        let (dir, _) = done.get(DISTILL_STAGE).ok_or_else(|| {
            fail("ablations need the distill stage, which did not run".to_string())
        })?;
        let inputs = self.inputs(RunStage::Plan(stage), done).map_err(fail)?;
        let context = stages::Context {
            runner: self,
            inputs: &inputs,
            done,
            out: dir,
            device: &options.device,
            cache: &options.dir.join(CACHE_DIR),
        };
        stages::ablations(
            stage,
            &context,
            &options.ablations,
            &dir.with_extension("ablations"),
            observer,
        )
        .map_err(fail)
    }

    /// The stages `upto` needs: themselves and every stage they read from, directly or not
    /// (`None`: every stage).
    fn needed(&self, upto: &[String]) -> Option<std::collections::BTreeSet<String>> {
        if upto.is_empty() {
            return None;
        }
        let mut needed = std::collections::BTreeSet::new();
        let mut todo: Vec<String> = upto.to_vec();
        while let Some(id) = todo.pop() {
            if !needed.insert(id.clone()) {
                continue;
            }
            if let Some(stage) = self.plan.stage(&id) {
                for input in &stage.inputs {
                    if let StageInput::Stage(from) = input {
                        todo.push(from.clone());
                    }
                }
            }
        }
        Some(needed)
    }

    /// The inputs of a stage with their hashes: declared files by their bytes, other stages'
    /// outputs by the hashes their manifests recorded.
    fn inputs(
        &self,
        stage: RunStage<'_>,
        done: &BTreeMap<String, (PathBuf, StageManifest)>,
    ) -> Result<Vec<ResolvedInput>, String> {
        let mut out = Vec::new();
        let declared = match stage {
            RunStage::Document => &[][..],
            RunStage::Plan(s) => s.inputs.as_slice(),
        };
        for input in declared {
            match input {
                StageInput::File(path) => {
                    let full = self.base.join(path);
                    let bytes = fs::read(&full)
                        .map_err(|e| format!("cannot read its input `{}`: {e}", full.display()))?;
                    out.push(ResolvedInput {
                        name: path.clone(),
                        path: full,
                        sha256: sha256_hex(&bytes),
                    });
                }
                StageInput::Stage(id) => {
                    let (dir, manifest) = done.get(id).ok_or_else(|| {
                        format!(
                            "its input stage `{id}` has not run; run the whole pipeline, or `--stage {id}` first"
                        )
                    })?;
                    for (file, record) in &manifest.outputs {
                        out.push(ResolvedInput {
                            name: format!("stage:{id}/{file}"),
                            path: dir.join(file),
                            sha256: record.sha256.clone(),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// The content hash a stage's outputs are named by: the rubric version, the stage's id and
    /// typed configuration, the slice of the policy it reads, and its inputs' hashes.
    fn key(&self, stage: RunStage<'_>, inputs: &[ResolvedInput]) -> String {
        #[derive(Serialize)]
        struct Key<'a> {
            rubric_version: &'a str,
            stage: &'a str,
            config: Option<&'a StageConfig>,
            /// The student's loss terms (the distill stage's objective).
            #[serde(skip_serializing_if = "Option::is_none")]
            terms: Option<&'a [rubric_compiler::lower::plan::LossTerm]>,
            policy: Option<String>,
            inputs: Vec<(&'a str, &'a str)>,
        }
        let (config, policy) = match stage {
            RunStage::Document => (
                None,
                Some(sha256_hex(deterministic_json(&self.sources).as_bytes())),
            ),
            RunStage::Plan(s) => (
                Some(&s.config),
                stages::reads_policy(s).then(|| {
                    sha256_hex(deterministic_json(&self.compiled.lowered.labeling).as_bytes())
                }),
            ),
        };
        let terms = match stage {
            RunStage::Plan(Stage {
                config: StageConfig::Distill(_),
                ..
            }) => self
                .compiled
                .lowered
                .loss_terms
                .as_ref()
                .map(|t| t.student.as_slice()),
            _ => None,
        };
        let key = Key {
            rubric_version: env!("CARGO_PKG_VERSION"),
            stage: stage.id(),
            config,
            terms,
            policy,
            inputs: inputs
                .iter()
                .map(|i| (i.name.as_str(), i.sha256.as_str()))
                .collect(),
        };
        let hash = sha256_hex(deterministic_json(&key).as_bytes());
        hash.chars().take(16).collect()
    }
}

/// An input of a stage, found.
#[derive(Clone, Debug)]
pub struct ResolvedInput {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
}

fn read_manifest(dir: &Path) -> Option<StageManifest> {
    let text = fs::read_to_string(dir.join("manifest.json")).ok()?;
    let manifest: StageManifest = serde_json::from_str(&text).ok()?;
    (manifest.schema == MANIFEST_SCHEMA).then_some(manifest)
}

fn read_latest(dir: &Path) -> BTreeMap<String, String> {
    fs::read_to_string(dir.join("latest.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// An empty folder for a stage's outputs (what a killed run left there is removed).
fn prepare(partial: &Path) -> io::Result<()> {
    if partial.exists() {
        fs::remove_dir_all(partial)?;
    }
    fs::create_dir_all(partial)
}

/// Every file a stage wrote (in its folders too, as `model/config.json`), with its hash, size
/// and lines.
fn outputs_of(dir: &Path) -> io::Result<BTreeMap<String, OutputRecord>> {
    let mut out = BTreeMap::new();
    collect_outputs(dir, "", &mut out)?;
    Ok(out)
}

fn collect_outputs(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, OutputRecord>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_outputs(&entry.path(), &format!("{name}/"), out)?;
            continue;
        }
        if name == "manifest.json" || !kind.is_file() {
            continue;
        }
        let bytes = fs::read(entry.path())?;
        out.insert(
            name,
            OutputRecord {
                sha256: sha256_hex(&bytes),
                bytes: bytes.len() as u64,
                rows: bytes.iter().filter(|b| **b == b'\n').count() as u64,
            },
        );
    }
    Ok(())
}
