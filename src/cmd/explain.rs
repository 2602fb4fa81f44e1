//! `rubric explain CODE`: the long explanation of a diagnostic code.

use super::EXIT_USAGE;
use super::out;
use rubric_compiler::Code;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code, in full (`rubric::check::weights_sum`) or its last part (`weights_sum`).
    /// Without one, lists every code.
    code: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let Some(text) = args.code else {
        for code in Code::ALL {
            let severity = match code.severity() {
                rubric_compiler::Severity::Error => "error",
                rubric_compiler::Severity::Warning => "warning",
            };
            out::println(format_args!(
                "{:<40} {:<8} {}",
                code.as_str(),
                severity,
                code.summary()
            ));
        }
        return ExitCode::SUCCESS;
    };
    match Code::parse(&text) {
        Some(code) => {
            out::print(code.explanation());
            ExitCode::SUCCESS
        }
        None => {
            // Compare last parts, so `weight_sum` finds `rubric::check::weights_sum`.
            let short = |c: &Code| c.as_str().rsplit("::").next().unwrap_or_default();
            let typed = text.rsplit("::").next().unwrap_or_default();
            let hint =
                rubric_compiler::diagnostics::did_you_mean(typed, Code::ALL.iter().map(short))
                    .and_then(Code::parse)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
            eprintln!("error: no diagnostic code `{text}`{hint}; `rubric explain` lists them all");
            ExitCode::from(EXIT_USAGE)
        }
    }
}
