//! `rubric label --policy P --pairs IN --out OUT`: labels JSON-lines pairs with a policy, with a
//! progress bar and a summary; `--quarantine FILE` sets bad rows aside instead of stopping (and
//! exits 1 when it set any aside, so a script notices).

use super::compile::compile_or_report;
use super::files;
use super::out;
use super::progress;
use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_runtime::label::engine::Engine;
use rubric_runtime::label::{LabelError, LabelOptions, label_stream};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy to label with.
    #[arg(long)]
    policy: PathBuf,
    /// Pairs, one JSON object a line (`-` for standard input).
    #[arg(long)]
    pairs: PathBuf,
    /// Where to write the labels, one JSON object a line (`-` for standard output).
    #[arg(long)]
    out: PathBuf,
    /// Write bad rows here (with their line and error) and go on, instead of stopping. The exit
    /// status is still 1 when a row was quarantined (0 only when every row was labeled).
    #[arg(long)]
    quarantine: Option<PathBuf>,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = Engine::new(compiled.lowered.labeling);
    let mut outputs = vec![("--out", args.out.as_path())];
    if let Some(q) = &args.quarantine {
        outputs.push(("--quarantine", q.as_path()));
    }
    if let Err(code) = files::refuse_aliases(&[("--pairs", &args.pairs)], &outputs) {
        return code;
    }
    if args.pairs.is_dir() {
        eprintln!(
            "error: `{}` is a directory; --pairs takes a file of pairs, one JSON object a line",
            args.pairs.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let (mut input, size): (Box<dyn std::io::BufRead>, Option<u64>) =
        if args.pairs.as_os_str() == "-" {
            (Box::new(BufReader::new(std::io::stdin())), None)
        } else {
            match File::open(&args.pairs) {
                Ok(f) => {
                    let size = f.metadata().ok().map(|m| m.len());
                    (Box::new(BufReader::with_capacity(1 << 20, f)), size)
                }
                Err(e) => {
                    eprintln!("error: cannot read `{}`: {e}", args.pairs.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            }
        };
    // A file is put in place only when the run succeeds; standard output streams.
    let mut file = None;
    let mut stdout = None;
    if args.out.as_os_str() == "-" {
        stdout = Some(BufWriter::new(std::io::stdout()));
    } else {
        match files::create(&args.out) {
            Ok(out) => file = Some(out),
            Err(code) => return code,
        }
    }
    let output: &mut dyn Write = match (&mut file, &mut stdout) {
        (Some(f), _) => f,
        (None, Some(s)) => s,
        (None, None) => return ExitCode::from(EXIT_USAGE),
    };
    let mut quarantine = match &args.quarantine {
        Some(q) => match files::create(q) {
            Ok(out) => Some(out),
            Err(code) => return code,
        },
        None => None,
    };
    let bar = progress::bar(size, "labeling");
    let result = label_stream(
        &engine,
        &mut input,
        output,
        quarantine.as_mut().map(|q| q as &mut dyn Write),
        LabelOptions::default(),
        &mut |bytes| bar.set_position(bytes),
    );
    bar.finish_and_clear();
    match result {
        Ok(summary) => {
            for f in file.into_iter().chain(quarantine) {
                if let Err(code) = files::commit(f) {
                    return code;
                }
            }
            eprintln!(
                "labeled {} of {} rows with `{}` ({} quarantined)",
                summary.labeled, summary.rows, engine.program.policy.name, summary.quarantined
            );
            for (d, (clamped, undefined)) in engine
                .program
                .dimensions
                .iter()
                .zip(summary.events.clamped.iter().zip(&summary.events.undefined))
            {
                if *clamped > 0 {
                    eprintln!(
                        "note: `{}`: {clamped} score(s) outside [0, 1] were clamped",
                        d.name
                    );
                }
                if *undefined > 0 {
                    eprintln!(
                        "note: `{}`: {undefined} score(s) were undefined (a division by zero or a number past the largest float) and abstained",
                        d.name
                    );
                }
            }
            if summary.quarantined > 0 {
                ExitCode::from(EXIT_PROBLEMS)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(LabelError::Row(e)) => {
            eprintln!("error: `{}`, {e}", args.pairs.display());
            eprintln!(
                "help: fix the row, or pass `--quarantine FILE` to set bad rows aside and go on"
            );
            ExitCode::from(EXIT_PROBLEMS)
        }
        // `--out -` into a pipe that closed early (`| head`): the reader wanted no more.
        Err(LabelError::Io(e)) if out::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(LabelError::Io(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
