//! `rubric data clicks`: simulates a click log for a policy's pairs (`--policy P --pairs FILE
//! --seed N --out FILE`, the injected rows flagged in `--truth`, `--time-of-day STRENGTH` for an
//! evening peak of clicks), or converts the real Open Bandit sample from its pinned wheel
//! (`--obd WHEEL --out FILE`) to the same format.

use super::super::compile::compile_or_report;
use super::super::files;
use super::super::report::ReportArgs;
use super::super::{EXIT_PROBLEMS, EXIT_USAGE};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rubric_runtime::data::clicks::simulate::{
    HOURS_PER_DAY, SimConfig, SimError, SimSummary, read_pairs, simulate,
};
use rubric_runtime::data::obd::{self, BehaviorPolicy, Campaign};
use rubric_runtime::label::engine::Engine;
use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Logging {
    Random,
    Bts,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum CampaignArg {
    All,
    Men,
    Women,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy whose overall score the simulated members' hidden preference follows.
    #[arg(long, required_unless_present = "obd", conflicts_with = "obd")]
    policy: Option<PathBuf>,
    /// Pairs with `query_id` and `candidate_id`, one JSON object a line.
    #[arg(long, required_unless_present = "obd", conflicts_with = "obd")]
    pairs: Option<PathBuf>,
    /// The seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sessions to simulate (default: three per query).
    #[arg(long)]
    sessions: Option<u64>,
    /// Results shown per list.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    list_len: u16,
    /// Share of sessions that are bots.
    #[arg(long, default_value_t = 0.02, value_parser = share)]
    bot_share: f64,
    /// Share of human clicks with an absurd dwell time.
    #[arg(long, default_value_t = 0.005, value_parser = share)]
    outlier_share: f64,
    /// The time-of-day effect in logits: a shown result's click logit gains
    /// `STRENGTH * cos(2π (hour − 20) / 24)`, the UTC hour it is shown at (0: none).
    #[arg(long, value_name = "STRENGTH", default_value_t = 0.0, value_parser = strength)]
    time_of_day: f64,
    /// Where to flag the injected rows (bots, outliers) by line (default: OUT with
    /// `.truth.jsonl` appended).
    #[arg(long)]
    truth: Option<PathBuf>,
    /// Convert the Open Bandit sample from this `obp-0.4.1` wheel instead of simulating.
    #[arg(long)]
    obd: Option<PathBuf>,
    /// The Open Bandit logging policy.
    #[arg(long, value_enum, default_value = "random", requires = "obd")]
    obd_logging: Logging,
    /// The Open Bandit campaign.
    #[arg(long, value_enum, default_value = "all", requires = "obd")]
    obd_campaign: CampaignArg,
    /// Where to write the click log, one JSON object a line.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    report: ReportArgs,
}

/// A share between 0 and 1 (both included).
fn share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!(
            "expected a share between 0 and 1, like 0.02, not `{text}`"
        )),
    }
}

/// A strength in logits: a finite number, 0 or more.
fn strength(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
        _ => Err(format!(
            "expected a strength in logits, 0 or more, like 0.8, not `{text}`"
        )),
    }
}

fn spinner(message: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub fn run(args: Args) -> ExitCode {
    match &args.obd {
        Some(wheel) => convert_obd(&args, wheel),
        None => run_simulation(&args),
    }
}

fn convert_obd(args: &Args, wheel: &Path) -> ExitCode {
    let policy = match args.obd_logging {
        Logging::Random => BehaviorPolicy::Random,
        Logging::Bts => BehaviorPolicy::Bts,
    };
    let campaign = match args.obd_campaign {
        CampaignArg::All => Campaign::All,
        CampaignArg::Men => Campaign::Men,
        CampaignArg::Women => Campaign::Women,
    };
    let bar = spinner("reading the Open Bandit sample");
    let clicks = obd::read_sample(wheel, policy, campaign);
    bar.finish_and_clear();
    let clicks = match clicks {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    let mut out = match files::create(&args.out) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let written = clicks.iter().try_for_each(|c| {
        out.write_all(c.to_json().as_bytes())?;
        out.write_all(b"\n")
    });
    if let Err(e) = written {
        return files::cannot_write(&args.out, &e);
    }
    if let Err(code) = files::commit(out) {
        return code;
    }
    let clicked = clicks.iter().filter(|c| c.clicked).count();
    eprintln!(
        "wrote {} impressions ({clicked} clicks) of `{}` to `{}`",
        clicks.len(),
        obd::member_path(policy, campaign),
        args.out.display()
    );
    ExitCode::SUCCESS
}

fn run_simulation(args: &Args) -> ExitCode {
    let (Some(policy), Some(pairs_path)) = (&args.policy, &args.pairs) else {
        eprintln!("error: pass `--policy` and `--pairs` (or `--obd WHEEL`)");
        return ExitCode::from(EXIT_USAGE);
    };
    let compiled = match compile_or_report(policy, &args.report) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let engine = Engine::new(compiled.lowered.labeling);
    let mut input = match File::open(pairs_path) {
        Ok(f) => BufReader::with_capacity(1 << 20, f),
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", pairs_path.display());
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let bar = spinner("labeling pairs");
    let pairs = read_pairs(&engine, &mut input);
    bar.finish_and_clear();
    let pairs = match pairs {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: `{}`, {e}", pairs_path.display());
            return ExitCode::from(EXIT_PROBLEMS);
        }
    };
    let truth_path = args.truth.clone().unwrap_or_else(|| {
        let mut p = args.out.clone().into_os_string();
        p.push(".truth.jsonl");
        PathBuf::from(p)
    });
    if let Err(code) = files::refuse_aliases(
        &[
            ("--pairs", pairs_path.as_path()),
            ("--policy", policy.as_path()),
        ],
        &[
            ("--out", args.out.as_path()),
            ("--truth", truth_path.as_path()),
        ],
    ) {
        return code;
    }
    let (mut log, mut truth) = match (files::create(&args.out), files::create(&truth_path)) {
        (Ok(l), Ok(t)) => (l, t),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let mut config = SimConfig::new(args.seed);
    config.sessions = args.sessions;
    config.list_len = usize::from(args.list_len);
    config.bot_share = args.bot_share;
    config.outlier_share = args.outlier_share;
    config.time_of_day = args.time_of_day;
    let bar = spinner("simulating sessions");
    let result = simulate(&pairs, &config, &mut log, &mut truth);
    bar.finish_and_clear();
    let flushed = log.commit().and_then(|()| truth.commit());
    match (result, flushed) {
        (Ok(s), Ok(())) => {
            eprintln!(
                "simulated {} sessions ({} bots) over {} pairs of {} queries: {} impressions, {} clicks",
                s.sessions, s.bot_sessions, s.pairs, s.queries, s.rows, s.clicks
            );
            eprintln!(
                "injected {} bot rows and {} dwell outliers, flagged in `{}`",
                s.bot_rows,
                s.outlier_rows,
                truth_path.display()
            );
            eprintln!(
                "hidden preference vs the rubric's overall score: correlation {:.2}",
                s.preference_rubric_correlation
            );
            let ctr: Vec<String> = s
                .by_position
                .iter()
                .take(5)
                .map(|(k, rows, clicks)| {
                    format!(
                        "{k}: {:.1}%",
                        100.0 * *clicks as f64 / (*rows).max(1) as f64
                    )
                })
                .collect();
            eprintln!("human click rate by position: {}", ctr.join(", "));
            if s.time_of_day != 0.0 {
                eprintln!("{}", time_of_day_line(&s));
            }
            ExitCode::SUCCESS
        }
        (Err(SimError::Io(e)), _) | (_, Err(e)) => files::cannot_write(&args.out, &e),
        (Err(e), _) => {
            eprintln!("error: `{}`, {e}", pairs_path.display());
            ExitCode::from(EXIT_PROBLEMS)
        }
    }
}

/// The time-of-day effect and what it did: the human click rate within three hours of its peak
/// and of its trough.
fn time_of_day_line(s: &SimSummary) -> String {
    let peak = s.time_of_day_peak_hour;
    let trough = (peak + HOURS_PER_DAY / 2) % HOURS_PER_DAY;
    let around = |hour: u32| {
        let window = format!(
            "{:02}–{:02}h",
            (hour + HOURS_PER_DAY - 3) % HOURS_PER_DAY,
            (hour + 3) % HOURS_PER_DAY
        );
        match s.click_rate_around(hour, 3) {
            Some((rate, rows)) => format!("{window} {:.1}% ({rows} impressions)", 100.0 * rate),
            None => format!("{window} not covered"),
        }
    };
    format!(
        "time of day: {:+} · cos(2π (hour − {peak}) / 24) logits; human click rate {} vs {} (UTC)",
        s.time_of_day,
        around(peak),
        around(trough)
    )
}
