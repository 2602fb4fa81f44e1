//! `rubric test POLICY`: runs the policy's inline examples (a table of passes and failures) and
//! reports clause coverage; `--data FILE` adds a dataset's coverage; `--min-coverage PCT` fails
//! below a threshold, compared exactly.

use super::compile::compile_or_report;
use super::out;
use super::report::ReportArgs;
use super::{EXIT_PROBLEMS, EXIT_USAGE};
use rubric_runtime::examples::{coverage_report, meets, results_table, run_policy_examples};
use rubric_runtime::label::batch::PairBatch;
use rubric_runtime::label::decode::Decoder;
use rubric_runtime::label::engine::{Ctx, Engine, Events, Labels};
use rubric_runtime::label::value::Interner;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    policy: PathBuf,
    /// Also count the clauses this JSON-lines dataset of pairs exercises.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Fail when clause coverage is below this percent, from 0 to 100 (`95` or `95%`; a fraction
    /// like `0.95` is refused), compared exactly, no rounding.
    #[arg(long, value_name = "PCT")]
    min_coverage: Option<String>,
    #[command(flatten)]
    report: ReportArgs,
}

pub fn run(args: Args) -> ExitCode {
    let compiled = match compile_or_report(&args.policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let checked = &compiled.checked;
    let source_map = compiled.lowered.source_map.clone();
    let engine = Engine::new(compiled.lowered.labeling.clone());
    let mut hits = vec![false; engine.program.clauses.len()];
    let results = run_policy_examples(&engine, checked, &mut hits);
    out::print(format_args!(
        "{}",
        results_table(&results, &args.policy.display().to_string())
    ));
    let failed = results.iter().filter(|r| !r.passed()).count();

    if let Some(data) = &args.data {
        let file = match std::fs::File::open(data) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: cannot read `{}`: {e}", data.display());
                return ExitCode::from(EXIT_USAGE);
            }
        };
        let decoder = Decoder::new(&engine.program);
        let mut strings = Interner::new(&engine.strings);
        let mut events = Events::new(engine.program.dimensions.len());
        let (mut rows, mut bad) = (0u64, 0u64);
        // Pairs are labeled a batch at a time; the batch's strings are forgotten after it.
        let mut batch = PairBatch::new(&engine.program);
        let mut labels = Labels::default();
        let mut flush =
            |batch: &mut PairBatch, strings: &mut Interner<'_>, hits: &mut Vec<bool>| {
                let mut ctx = Ctx::new(strings, &mut events, Some(hits));
                labels.clear();
                engine.label_batch(batch, &mut ctx, &mut labels);
                batch.clear();
                strings.clear();
            };
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: reading `{}`: {e}", data.display());
                    return ExitCode::from(EXIT_USAGE);
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            rows += 1;
            match decoder.decode(i as u64 + 1, &line, &mut strings) {
                Ok(pair) => {
                    batch.push(&pair);
                    if batch.len() >= 4096 {
                        flush(&mut batch, &mut strings, &mut hits);
                    }
                }
                Err(e) => {
                    bad += 1;
                    if bad <= 5 {
                        eprintln!("warning: `{}` {e}", data.display());
                    }
                }
            }
        }
        flush(&mut batch, &mut strings, &mut hits);
        out::println(format_args!(
            "dataset `{}`: {rows} pairs ({bad} unreadable)",
            data.display()
        ));
    }

    let (cov, report) = coverage_report(&engine.program, &source_map, &hits);
    out::print(&report);
    let mut ok = failed == 0;
    if let Some(min) = &args.min_coverage {
        match meets(cov.covered, cov.total, min) {
            Ok(true) => {}
            Ok(false) => {
                out::println(format_args!(
                    "clause coverage is below the required {}%",
                    min.trim().trim_end_matches('%').trim_end()
                ));
                ok = false;
            }
            Err(why) => {
                eprintln!("error: `--min-coverage {min}`: {why}");
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    }
}
