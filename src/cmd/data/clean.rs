//! `rubric data clean --pipeline P --clicks FILE --out FILE --report FILE`: cleans a click log as
//! the pipeline's `clean` block says, writes the kept rows, a JSON report and a summary;
//! `--quarantine FILE` sets bad rows aside instead of stopping, `--pairs FILE` refuses clicks on
//! unknown pairs, `--dropped FILE` lists every dropped row with its rule.

use super::super::compile::compile_or_report;
use super::super::files;
use super::super::report::ReportArgs;
use super::super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_runtime::data::clean::{CleanError, CleanOptions, CleanOutputs, clean};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy file holding the pipeline whose `clean` block to apply.
    #[arg(long)]
    pipeline: PathBuf,
    /// The data source to clean, when the pipeline cleans more than one.
    #[arg(long)]
    source: Option<String>,
    /// The click log, one JSON object a line (a file: it is read in several passes).
    #[arg(long)]
    clicks: PathBuf,
    /// Where to write the kept rows, unchanged.
    #[arg(long)]
    out: PathBuf,
    /// Where to write the JSON report.
    #[arg(long)]
    report: PathBuf,
    /// Write bad rows here (with their line, field and error) and go on, instead of stopping.
    #[arg(long)]
    quarantine: Option<PathBuf>,
    /// Write every dropped row here with the rule that dropped it.
    #[arg(long)]
    dropped: Option<PathBuf>,
    /// Pairs (JSON lines with `query_id` and `candidate_id`): a click on any other is a bad row.
    #[arg(long)]
    pairs: Option<PathBuf>,
    #[command(flatten)]
    diagnostics: ReportArgs,
}

/// The (query_id, candidate_id) pairs of a pairs file; an error names the line and field.
fn known_pairs(path: &Path) -> Result<HashSet<(String, String)>, String> {
    let file = File::open(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut out = HashSet::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |field: &str, what: &str| {
            format!("`{}`, line {}: `{field}`: {what}", path.display(), i + 1)
        };
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| format!("`{}`, line {}: not valid JSON: {e}", path.display(), i + 1))?;
        let id = |field: &str| match value.get(field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(serde_json::Value::Number(n)) => Ok(n.to_string()),
            _ => Err(at(field, "missing: clicks join pairs on it")),
        };
        out.insert((id("query_id")?, id("candidate_id")?));
    }
    Ok(out)
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.pipeline, &args.diagnostics) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(plan) = compiled.lowered.training_plan else {
        eprintln!(
            "error: `{}` holds no pipeline: cleaning follows a pipeline's `clean` block",
            args.pipeline.display()
        );
        return ExitCode::from(EXIT_USAGE);
    };
    // Several passes need a file that can be read again: not `-`, a pipe or a device.
    let stream = args.clicks.as_os_str() == "-"
        || std::fs::metadata(&args.clicks).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if stream {
        eprintln!(
            "error: `{}` is a stream; cleaning reads its input in several passes, so pass a file",
            args.clicks.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let size = match std::fs::metadata(&args.clicks) {
        Ok(m) => m.len(),
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", args.clicks.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let known = match &args.pairs {
        Some(p) => match known_pairs(p) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_PROBLEMS);
            }
        },
        None => None,
    };
    let mut outputs = vec![
        ("--out", args.out.as_path()),
        ("--report", args.report.as_path()),
    ];
    for (flag, path) in [
        ("--quarantine", &args.quarantine),
        ("--dropped", &args.dropped),
    ] {
        if let Some(p) = path {
            outputs.push((flag, p.as_path()));
        }
    }
    let mut inputs = vec![
        ("--clicks", args.clicks.as_path()),
        ("--pipeline", args.pipeline.as_path()),
    ];
    if let Some(p) = &args.pairs {
        inputs.push(("--pairs", p.as_path()));
    }
    if let Err(code) = files::refuse_aliases(&inputs, &outputs) {
        return code;
    }
    let mut kept = match files::create(&args.out) {
        Ok(w) => w,
        Err(code) => return code,
    };
    let mut quarantine = match args.quarantine.as_deref().map(files::create).transpose() {
        Ok(q) => q,
        Err(code) => return code,
    };
    let mut dropped = match args.dropped.as_deref().map(files::create).transpose() {
        Ok(d) => d,
        Err(code) => return code,
    };
    let options = CleanOptions {
        known_pairs: known,
        quarantine: args.quarantine.is_some(),
    };
    let path = args.clicks.clone();
    let open = move || -> std::io::Result<Box<dyn BufRead>> {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            File::open(&path)?,
        )))
    };
    let bar = ProgressBar::new(size);
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} cleaning, pass {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let result = clean(
        &plan,
        args.source.as_deref(),
        &open,
        &options,
        CleanOutputs {
            kept: &mut kept,
            quarantine: quarantine.as_mut().map(|q| q as &mut dyn Write),
            dropped: dropped.as_mut().map(|d| d as &mut dyn Write),
        },
        &mut |p| {
            bar.set_length(size.max(1) * p.passes as u64);
            bar.set_message(format!("{}/{}", p.pass, p.passes));
            bar.set_position(size * (p.pass as u64).saturating_sub(1) + p.bytes);
        },
    );
    bar.finish_and_clear();
    let report = match result {
        Ok(r) => r,
        Err(CleanError::Row(e)) => {
            eprintln!("error: `{}`, {e}", args.clicks.display());
            eprintln!(
                "help: fix the row, or pass `--quarantine FILE` to set bad rows aside and go on"
            );
            return ExitCode::from(EXIT_PROBLEMS);
        }
        Err(CleanError::Io(e)) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
        // The input changed between passes: it is the click log that did.
        Err(e @ CleanError::Reconciliation(_)) => {
            eprintln!("error: `{}`: {e}", args.clicks.display());
            return ExitCode::from(EXIT_PROBLEMS);
        }
        Err(e) => {
            eprintln!("error: `{}`: {e}", args.pipeline.display());
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    for f in std::iter::once(kept).chain(quarantine).chain(dropped) {
        if let Err(code) = files::commit(f) {
            return code;
        }
    }
    if let Err(code) = files::write(&args.report, report.to_json()) {
        return code;
    }
    eprint!("{}", report.summary());
    if report.rows.quarantined > 0 {
        eprintln!(
            "note: {} bad row(s) set aside in `{}`",
            report.rows.quarantined,
            args.quarantine
                .as_deref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        ExitCode::from(EXIT_PROBLEMS)
    } else {
        ExitCode::SUCCESS
    }
}
