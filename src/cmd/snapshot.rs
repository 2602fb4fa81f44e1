//! `rubric snapshot DIR [--check]`: writes beside every policy under DIR a `<name>.snap/` folder
//! with its artefacts, its examples' results and (when `<name>.pairs.jsonl` sits beside it) the
//! stats of those pairs. `--check` writes nothing and fails when a snapshot would change,
//! printing a unified diff of each changed file: the job a policy repository's CI runs.

use super::out;
use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_compiler::Options;
use rubric_runtime::compile::CompileError;
use rubric_runtime::snapshot::{ChangeKind, apply, changes, plan, unified_diff};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory to search for `*.policy` files (recursively).
    dir: PathBuf,
    /// Write nothing; exit 1 when any snapshot would change, printing the differences.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    if !args.dir.is_dir() {
        eprintln!("error: `{}` is not a directory", args.dir.display());
        return ExitCode::from(EXIT_USAGE);
    }
    let plan = match plan(&args.dir, &Options::default()) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: snapshotting `{}`: {e}", args.dir.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let shown = |rel: &str| args.dir.join(rel).display().to_string().replace('\\', "/");
    let mut ok = true;
    for (policy, error) in &plan.failed {
        ok = false;
        match error {
            CompileError::Invalid(checked) => {
                args.report.print(checked);
                eprintln!(
                    "error: `{}` has {} error(s); its snapshot is left as it is",
                    shown(policy),
                    checked.error_count()
                );
            }
            other => eprintln!("error: `{}`: {other}", shown(policy)),
        }
    }
    let found = match changes(&plan) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "error: reading the snapshots under `{}`: {e}",
                args.dir.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let policies = match plan.policies.len() {
        1 => "1 policy".to_string(),
        n => format!("{n} policies"),
    };
    if args.check {
        for c in &found {
            out::print(unified_diff(c, &shown(&c.path)));
        }
        if found.is_empty() {
            out::println(format_args!(
                "{policies} checked: every snapshot is up to date"
            ));
        } else {
            ok = false;
            out::println(format_args!(
                "{policies} checked: {} snapshot file(s) out of date; run `rubric snapshot {}` and commit the result",
                found.len(),
                args.dir.display()
            ));
        }
    } else {
        if let Err(e) = apply(&plan, &found) {
            eprintln!(
                "error: writing the snapshots under `{}`: {e}",
                args.dir.display()
            );
            return ExitCode::from(EXIT_USAGE);
        }
        for c in &found {
            let verb = match c.kind {
                ChangeKind::Created => "created",
                ChangeKind::Modified => "updated",
                ChangeKind::Removed => "removed",
            };
            out::println(format_args!("{verb} {}", shown(&c.path)));
        }
        out::println(format_args!(
            "{policies} snapshotted: {} file(s) written or removed, {} unchanged",
            found.len(),
            plan.files.len()
                - found
                    .iter()
                    .filter(|c| c.kind != ChangeKind::Removed)
                    .count()
        ));
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    }
}
