//! The click simulator for job pairs (docs/clicks.md): result lists from a logged ranker that is
//! not the rubric, a position-based examination model, a hidden member preference that correlates
//! with the rubric's overall score without being it, an optional evening peak of clicks (the
//! time of day), noise, and injected bot sessions and dwell outliers, each flagged in a
//! ground-truth side file. A fixed function of the seed (ChaCha8).

use super::Click;
use crate::label::decode::{Decoder, RowError};
use crate::label::engine::{Ctx, Engine, Events};
use crate::label::value::Interner;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rustc_hash::FxHashMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::io::{self, BufRead, Write};

/// The model's weights, documented in docs/clicks.md. The hidden preference of a pair is
/// `RUBRIC * z(overall) + APPEAL * appeal(candidate) + TASTE * taste(pair)`, all three standard
/// normal, so its correlation with the rubric's overall score is `RUBRIC / sqrt(sum of squares)`.
pub const PREFERENCE_RUBRIC: f64 = 0.6;
pub const PREFERENCE_APPEAL: f64 = 0.5;
pub const PREFERENCE_TASTE: f64 = 0.4;
/// The logged ranker (an older model): `RANKER_RUBRIC * z(overall) + RANKER_APPEAL * appeal +
/// its own error`, with fresh jitter in every session.
pub const RANKER_RUBRIC: f64 = 0.3;
pub const RANKER_APPEAL: f64 = 0.3;
pub const RANKER_JITTER: f64 = 0.3;
/// Examination probability of position `k` is `k^-EXAMINATION_DECAY` (position-based model).
pub const EXAMINATION_DECAY: f64 = 1.0;
/// Click probability once examined: `sigmoid(CLICK_SLOPE * preference + CLICK_BIAS)`, plus the
/// time of day in the logit when it is on.
pub const CLICK_SLOPE: f64 = 1.2;
pub const CLICK_BIAS: f64 = -0.5;
/// Time of day (`SimConfig::time_of_day`, off by default): a shown result's click logit gains
/// `strength * cos(2π (hour − TIME_OF_DAY_PEAK_HOUR) / HOURS_PER_DAY)`, `hour` the UTC hour
/// (0–23) of the moment it is shown, as the feature encoder reads `hour_of_day` from `ts`.
/// Members click most in the evening (20:00 UTC) and least in the morning (08:00 UTC, where
/// the log starts), the same every day of the week. A fixed function of the clock that draws
/// nothing: at strength 0 the log is, byte for byte, the log from before the effect existed;
/// with a strength, a click it adds or removes draws a dwell (or does not), so the rest of the
/// log is another draw of the same model, as another seed would give.
pub const TIME_OF_DAY_PEAK_HOUR: u32 = 20;
pub const HOURS_PER_DAY: u32 = 24;
/// Seconds between the starts of consecutive sessions (each jittered by up to as much again):
/// the log spans about `sessions × SESSION_SPACING_SECONDS`, so it covers every hour of the
/// day from `86_400 / SESSION_SPACING_SECONDS` (960) sessions on.
pub const SESSION_SPACING_SECONDS: f64 = 90.0;

/// How to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub seed: u64,
    /// Sessions to simulate; `None` is three per query.
    pub sessions: Option<u64>,
    /// Results shown per list (fewer when a query has fewer candidates).
    pub list_len: usize,
    /// Share of sessions that are bots.
    pub bot_share: f64,
    /// Share of human clicks whose dwell time is absurd (a tab left open for hours).
    pub outlier_share: f64,
    /// When the first session starts.
    pub start: Timestamp,
    /// The time-of-day effect's strength in logits (0, the default, for none): see
    /// `TIME_OF_DAY_PEAK_HOUR` and `time_of_day_logit`.
    pub time_of_day: f64,
}

impl SimConfig {
    pub fn new(seed: u64) -> Self {
        SimConfig {
            seed,
            sessions: None,
            list_len: 10,
            bot_share: 0.02,
            outlier_share: 0.005,
            start: Timestamp::constant(1_793_520_000, 0), // 2026-11-01T08:00:00Z
            time_of_day: 0.0,
        }
    }
}

/// A pair with what the simulator needs of it.
#[derive(Clone, Debug)]
pub struct ScoredPair {
    pub query_id: String,
    pub candidate_id: String,
    /// The rubric's overall score (0 when it abstained or excluded the pair).
    pub overall: f64,
}

#[derive(Debug)]
pub enum SimError {
    /// A pair row is malformed (line and field named).
    Pair(RowError),
    Io(io::Error),
    /// The pairs file holds no pairs.
    NoPairs,
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Pair(e) => write!(f, "{e}"),
            SimError::Io(e) => write!(f, "{e}"),
            SimError::NoPairs => write!(f, "no pairs to show: the file is empty"),
        }
    }
}

impl std::error::Error for SimError {}

impl From<io::Error> for SimError {
    fn from(e: io::Error) -> Self {
        SimError::Io(e)
    }
}

/// What a simulation made.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SimSummary {
    pub pairs: u64,
    pub queries: u64,
    pub sessions: u64,
    pub bot_sessions: u64,
    pub rows: u64,
    pub clicks: u64,
    pub bot_rows: u64,
    pub outlier_rows: u64,
    /// Pearson correlation of the rubric's overall score and the hidden preference, over pairs.
    pub preference_rubric_correlation: f64,
    /// Human impressions and clicks by position (one-based), showing the position bias.
    pub by_position: Vec<(u32, u64, u64)>,
    /// The time-of-day effect's strength in logits (0 for none) and its peak hour (UTC).
    pub time_of_day: f64,
    pub time_of_day_peak_hour: u32,
    /// Human impressions and clicks by the UTC hour (0–23) they were shown at, the hours the
    /// log covers only: the time-of-day effect, or its absence.
    pub by_hour: Vec<(u32, u64, u64)>,
}

impl SimSummary {
    /// The human click rate over the hours within `radius` of `hour` (around the clock), and the
    /// impressions it is measured on; `None` when the log covers none of them.
    pub fn click_rate_around(&self, hour: u32, radius: u32) -> Option<(f64, u64)> {
        let near = |h: u32| {
            let d = h.abs_diff(hour) % HOURS_PER_DAY;
            d.min(HOURS_PER_DAY - d) <= radius
        };
        let (rows, clicks) = self
            .by_hour
            .iter()
            .filter(|(h, _, _)| near(*h))
            .fold((0u64, 0u64), |(r, c), (_, rows, clicks)| {
                (r + rows, c + clicks)
            });
        (rows > 0).then(|| (clicks as f64 / rows as f64, rows))
    }
}

/// The UTC hour (0–23) of a time, as the feature encoder reads `hour_of_day` from a row's `ts`.
pub fn hour_of_day(ts: Timestamp) -> u32 {
    // 0..=23 by construction.
    (ts.as_second().rem_euclid(86_400) / 3_600) as u32
}

/// What the time of day adds to the click logit of a result shown at `ts`:
/// `strength * cos(2π (hour − TIME_OF_DAY_PEAK_HOUR) / 24)`, exactly 0 when `strength` is 0.
pub fn time_of_day_logit(strength: f64, ts: Timestamp) -> f64 {
    if strength == 0.0 {
        return 0.0;
    }
    let hour = f64::from(hour_of_day(ts));
    let phase = (hour - f64::from(TIME_OF_DAY_PEAK_HOUR)) / f64::from(HOURS_PER_DAY);
    strength * (std::f64::consts::TAU * phase).cos()
}

/// Reads pairs (JSON lines with `query_id` and `candidate_id`) and labels each with the policy.
pub fn read_pairs(engine: &Engine, input: &mut dyn BufRead) -> Result<Vec<ScoredPair>, SimError> {
    let decoder = Decoder::new(&engine.program);
    let mut strings = Interner::new(&engine.strings);
    let mut events = Events::new(engine.program.dimensions.len());
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut line_no = 0u64;
    loop {
        buf.clear();
        if input.read_line(&mut buf)? == 0 {
            break;
        }
        line_no += 1;
        let line = buf.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let pair = decoder
            .decode(line_no, line, &mut strings)
            .map_err(SimError::Pair)?;
        let value: Value = serde_json::from_str(line).unwrap_or(Value::Null);
        let id = |name: &str| match value.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(SimError::Pair(RowError {
                line: line_no,
                path: name.to_string(),
                message: "missing: clicks join pairs on `query_id` and `candidate_id`".to_string(),
            })),
        };
        let query_id = id("query_id")?;
        let candidate_id = id("candidate_id")?;
        let mut ctx = Ctx::new(&mut strings, &mut events, None);
        let label = engine.label(&pair, &mut ctx);
        strings.clear();
        out.push(ScoredPair {
            query_id,
            candidate_id,
            overall: label.overall.unwrap_or(0.0),
        });
    }
    if out.is_empty() {
        return Err(SimError::NoPairs);
    }
    Ok(out)
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A standard normal value fixed by the seed, a salt and a key (so independent of file order).
fn keyed_normal(seed: u64, salt: &str, key: &str) -> f64 {
    let digest = Sha256::new()
        .chain_update(seed.to_le_bytes())
        .chain_update(salt.as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&digest);
    normal(&mut ChaCha8Rng::from_seed(bytes))
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn pearson(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len().min(ys.len()) as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mx = xs.iter().sum::<f64>() / n;
    let my = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs.iter().zip(ys) {
        sxy += (x - mx) * (y - my);
        sxx += (x - mx) * (x - mx);
        syy += (y - my) * (y - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        0.0
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

/// One pair as the simulated members and the logged ranker see it.
struct Shown<'a> {
    pair: &'a ScoredPair,
    preference: f64,
    ranker: f64,
}

struct Writer<'w> {
    log: &'w mut dyn Write,
    truth: &'w mut dyn Write,
    line: u64,
    summary: SimSummary,
}

impl Writer<'_> {
    fn row(&mut self, click: &Click, injected: Option<&str>) -> io::Result<()> {
        self.log.write_all(click.to_json().as_bytes())?;
        self.log.write_all(b"\n")?;
        self.line += 1;
        self.summary.rows += 1;
        self.summary.clicks += u64::from(click.clicked);
        if let Some(kind) = injected {
            let flag = serde_json::json!({
                "line": self.line,
                "kind": kind,
                "session": click.session,
            });
            self.truth.write_all(flag.to_string().as_bytes())?;
            self.truth.write_all(b"\n")?;
        }
        Ok(())
    }
}

fn at(start: Timestamp, seconds: f64) -> io::Result<Timestamp> {
    let ms = (seconds * 1000.0).round() as i64;
    start
        .checked_add(SignedDuration::from_millis(ms))
        .map_err(|e| io::Error::other(format!("a simulated time is out of range: {e}")))
}

fn round_to(x: f64, digits: i32) -> f64 {
    let k = 10f64.powi(digits);
    (x * k).round() / k
}

/// Each pair's hidden preference and logged-ranker score (docs/clicks.md), a fixed function of
/// the seed and the pairs' ids and overall scores.
fn draws(pairs: &[ScoredPair], seed: u64) -> Vec<(f64, f64)> {
    let n = pairs.len().max(1) as f64;
    let mean = pairs.iter().map(|p| p.overall).sum::<f64>() / n;
    let sd = (pairs
        .iter()
        .map(|p| (p.overall - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    let z = |x: f64| if sd > 0.0 { (x - mean) / sd } else { 0.0 };
    pairs
        .iter()
        .map(|p| {
            let appeal = keyed_normal(seed, "appeal", &p.candidate_id);
            let key = format!("{}\u{0}{}", p.query_id, p.candidate_id);
            let taste = keyed_normal(seed, "taste", &key);
            let ranker_error = keyed_normal(seed, "ranker", &key);
            (
                PREFERENCE_RUBRIC * z(p.overall)
                    + PREFERENCE_APPEAL * appeal
                    + PREFERENCE_TASTE * taste,
                RANKER_RUBRIC * z(p.overall) + RANKER_APPEAL * appeal + ranker_error,
            )
        })
        .collect()
}

/// The members' hidden preference for each pair, as the simulator with this seed draws it:
/// known by construction, so a click model's AUC can be set beside the ceiling no model of the
/// log can pass (`benches/click_ceiling.sh`).
pub fn hidden_preferences(pairs: &[ScoredPair], seed: u64) -> Vec<f64> {
    draws(pairs, seed).into_iter().map(|(p, _)| p).collect()
}

/// Simulates sessions over the pairs, writing the log and the ground truth of injected rows
/// (`{"line": N, "kind": "bot" | "outlier", "session": ...}`, one a line).
pub fn simulate(
    pairs: &[ScoredPair],
    config: &SimConfig,
    log: &mut dyn Write,
    truth: &mut dyn Write,
) -> Result<SimSummary, SimError> {
    if pairs.is_empty() {
        return Err(SimError::NoPairs);
    }
    let seed = config.seed;
    let shown: Vec<Shown> = pairs
        .iter()
        .zip(draws(pairs, seed))
        .map(|(pair, (preference, ranker))| Shown {
            pair,
            preference,
            ranker,
        })
        .collect();
    // Queries in order of first appearance.
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut queries: Vec<Vec<&Shown>> = Vec::new();
    for s in &shown {
        let i = *index.entry(s.pair.query_id.as_str()).or_insert_with(|| {
            queries.push(Vec::new());
            queries.len() - 1
        });
        if let Some(q) = queries.get_mut(i) {
            q.push(s);
        }
    }
    let overall: Vec<f64> = shown.iter().map(|s| s.pair.overall).collect();
    let preference: Vec<f64> = shown.iter().map(|s| s.preference).collect();
    let mut w = Writer {
        log,
        truth,
        line: 0,
        summary: SimSummary {
            pairs: pairs.len() as u64,
            queries: queries.len() as u64,
            preference_rubric_correlation: round_to(pearson(&overall, &preference), 4),
            time_of_day: config.time_of_day,
            time_of_day_peak_hour: TIME_OF_DAY_PEAK_HOUR,
            ..SimSummary::default()
        },
    };
    let list_len = config.list_len.max(1);
    let mut by_position = vec![(0u64, 0u64); list_len];
    let mut by_hour = [(0u64, 0u64); HOURS_PER_DAY as usize];
    let sessions = config.sessions.unwrap_or(3 * queries.len() as u64).max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut list: Vec<(f64, &Shown)> = Vec::with_capacity(list_len);
    for s in 0..sessions {
        let session = format!("s-{:06}", s + 1);
        let begin =
            s as f64 * SESSION_SPACING_SECONDS + rng.random_range(0.0..SESSION_SPACING_SECONDS);
        let bot = rng.random_bool(config.bot_share.clamp(0.0, 1.0));
        w.summary.sessions += 1;
        let mut t = begin;
        if bot {
            w.summary.bot_sessions += 1;
            // Clicks every result it is shown, about one a second, for 40 to 120 clicks.
            let target = rng.random_range(40..=120u32);
            let mut clicks = 0u32;
            while clicks < target {
                let q = rng.random_range(0..queries.len());
                let Some(candidates) = queries.get(q) else {
                    break;
                };
                for (k, c) in candidates.iter().take(list_len).enumerate() {
                    t += rng.random_range(0.3..1.2);
                    let click = Click {
                        query_id: c.pair.query_id.clone(),
                        candidate_id: c.pair.candidate_id.clone(),
                        ts: at(config.start, t)?,
                        position: k as u32 + 1,
                        clicked: true,
                        session: Some(session.clone()),
                        dwell_seconds: Some(round_to(rng.random_range(0.1..2.0), 1)),
                        propensity: Some(round_to(((k + 1) as f64).powf(-EXAMINATION_DECAY), 6)),
                    };
                    w.row(&click, Some("bot"))?;
                    w.summary.bot_rows += 1;
                    clicks += 1;
                    if clicks >= target {
                        break;
                    }
                }
            }
            continue;
        }
        let lists = if rng.random_bool(0.25) { 2 } else { 1 };
        for l in 0..lists {
            if l > 0 {
                t += rng.random_range(5.0..30.0);
            }
            let q = rng.random_range(0..queries.len());
            let Some(candidates) = queries.get(q) else {
                continue;
            };
            list.clear();
            for c in candidates {
                list.push((c.ranker + RANKER_JITTER * normal(&mut rng), c));
            }
            list.sort_by(|a, b| b.0.total_cmp(&a.0));
            for (k, (_, c)) in list.iter().take(list_len).enumerate() {
                t += rng.random_range(1.0..4.0);
                // The moment the result is shown: its row's `ts` unless it is clicked (a clicked
                // row's `ts` is after the dwell).
                let shown_at = at(config.start, t)?;
                let examination = ((k + 1) as f64).powf(-EXAMINATION_DECAY);
                let examined = rng.random_bool(examination.clamp(0.0, 1.0));
                let mut logit = CLICK_SLOPE * c.preference + CLICK_BIAS;
                if config.time_of_day != 0.0 {
                    logit += time_of_day_logit(config.time_of_day, shown_at);
                }
                let attraction = sigmoid(logit);
                let clicked = examined && rng.random_bool(attraction.clamp(0.0, 1.0));
                let mut outlier = false;
                let dwell = if clicked {
                    let d = (25f64.ln() + 0.8 * c.preference + 0.6 * normal(&mut rng))
                        .exp()
                        .clamp(1.0, 1800.0);
                    t += d;
                    if rng.random_bool(config.outlier_share.clamp(0.0, 1.0)) {
                        outlier = true;
                        Some(round_to(rng.random_range(28_800.0..172_800.0), 1))
                    } else {
                        Some(round_to(d, 1))
                    }
                } else {
                    None
                };
                for slot in [
                    by_position.get_mut(k),
                    by_hour.get_mut(hour_of_day(shown_at) as usize),
                ]
                .into_iter()
                .flatten()
                {
                    slot.0 += 1;
                    slot.1 += u64::from(clicked);
                }
                let click = Click {
                    query_id: c.pair.query_id.clone(),
                    candidate_id: c.pair.candidate_id.clone(),
                    ts: at(config.start, t)?,
                    position: k as u32 + 1,
                    clicked,
                    session: Some(session.clone()),
                    dwell_seconds: dwell,
                    propensity: Some(round_to(examination, 6)),
                };
                if outlier {
                    w.summary.outlier_rows += 1;
                    w.row(&click, Some("outlier"))?;
                } else {
                    w.row(&click, None)?;
                }
            }
        }
    }
    w.summary.by_position = by_position
        .iter()
        .enumerate()
        .filter(|(_, (rows, _))| *rows > 0)
        .map(|(k, (rows, clicks))| (k as u32 + 1, *rows, *clicks))
        .collect();
    w.summary.by_hour = by_hour
        .iter()
        .enumerate()
        .filter(|(_, (rows, _))| *rows > 0)
        .map(|(h, (rows, clicks))| (h as u32, *rows, *clicks))
        .collect();
    Ok(w.summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// `no_time_of_day_is_the_log_from_before_the_effect`: taken from the simulator of 174aa77.
    const PINNED_ROWS: u64 = 28_057;
    const PINNED_LOG: &str = "ba31f778ea83bc2e4954a09bbceed622f47781a916d0447732510c6b83f178fb";
    const PINNED_TRUTH: &str = "37a703dc21538d485268669373f511543f1e5dfbbae646001e1aec34fb2024ab";

    fn pairs() -> Vec<ScoredPair> {
        (0..200)
            .map(|i| ScoredPair {
                query_id: format!("q-{}", i / 10),
                candidate_id: format!("c-{i}"),
                overall: (i % 17) as f64 / 16.0,
            })
            .collect()
    }

    fn run(config: &SimConfig) -> (Vec<u8>, Vec<u8>, SimSummary) {
        let (mut log, mut truth) = (Vec::new(), Vec::new());
        let summary = simulate(&pairs(), config, &mut log, &mut truth).unwrap();
        (log, truth, summary)
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = run(&SimConfig::new(7));
        let b = run(&SimConfig::new(7));
        assert_eq!(a.0, b.0);
        assert_eq!(a.1, b.1);
        assert_ne!(a.0, run(&SimConfig::new(8)).0);
    }

    #[test]
    fn clicks_decay_with_position_and_preference_tracks_the_rubric() {
        let mut config = SimConfig::new(3);
        config.sessions = Some(3000);
        let (_, _, s) = run(&config);
        let ctr: Vec<f64> = s
            .by_position
            .iter()
            .map(|(_, rows, clicks)| *clicks as f64 / *rows as f64)
            .collect();
        assert!(ctr[0] > 2.0 * ctr[4], "{ctr:?}");
        assert!(ctr[1] > ctr[9], "{ctr:?}");
        // 0.6 / sqrt(0.6² + 0.5² + 0.4²) = 0.68, measured on 200 pairs.
        let r = s.preference_rubric_correlation;
        assert!((0.5..0.85).contains(&r), "{r}");
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The log and truth of seed 7 over 2,000 sessions, as the simulator wrote them before the
    /// time-of-day effect existed (digests taken then): with the effect off, not a byte moves,
    /// so a log simulated before it is simulated again as it was.
    #[test]
    fn no_time_of_day_is_the_log_from_before_the_effect() {
        let mut config = SimConfig::new(7);
        config.sessions = Some(2000);
        assert_eq!(config.time_of_day, 0.0, "the effect is off by default");
        let (log, truth, s) = run(&config);
        assert_eq!(s.rows, PINNED_ROWS, "{s:?}");
        assert_eq!(sha256_hex(&log), PINNED_LOG);
        assert_eq!(sha256_hex(&truth), PINNED_TRUTH);
    }

    #[test]
    fn the_time_of_day_is_a_function_of_the_clock() {
        let at_hour = |h: i64| Timestamp::constant(1_793_520_000 - 8 * 3_600 + h * 3_600 + 59, 0);
        assert_eq!(hour_of_day(at_hour(0)), 0);
        assert_eq!(hour_of_day(at_hour(23)), 23);
        assert_eq!(hour_of_day(at_hour(24)), 0);
        let peak = i64::from(TIME_OF_DAY_PEAK_HOUR);
        assert!((time_of_day_logit(0.8, at_hour(peak)) - 0.8).abs() < 1e-12);
        assert!((time_of_day_logit(0.8, at_hour(peak + 12)) + 0.8).abs() < 1e-12);
        assert!(time_of_day_logit(0.8, at_hour(peak + 6)).abs() < 1e-12);
        for h in 0..24 {
            assert_eq!(
                time_of_day_logit(0.0, at_hour(h)).to_bits(),
                0.0f64.to_bits()
            );
        }
    }

    #[test]
    fn the_time_of_day_is_seeded_and_recorded() {
        let mut config = SimConfig::new(5);
        config.sessions = Some(1500);
        let off = run(&config);
        config.time_of_day = 0.8;
        let on = run(&config);
        assert_eq!(on, run(&config), "same seed, same log and truth");
        assert_ne!(on.0, off.0);
        // It draws nothing itself, but a click it adds or removes draws a dwell (or stops
        // drawing one), so the session stream after it moves: another log of the same model.
        assert_eq!(on.2.sessions, off.2.sessions);
        assert_eq!(on.2.time_of_day, 0.8);
        assert_eq!(on.2.time_of_day_peak_hour, TIME_OF_DAY_PEAK_HOUR);
        assert_eq!(off.2.time_of_day, 0.0);
    }

    /// 1,188 sessions (the example's three per query over 396 queries) span more than a day
    /// (`SESSION_SPACING_SECONDS` apart), so every hour has impressions; with the effect on, the
    /// evening clicks measurably more than the morning, and without it it does not.
    #[test]
    fn with_the_time_of_day_the_evening_clicks_more_than_the_morning() {
        let mut config = SimConfig::new(7);
        config.sessions = Some(1188);
        let peak = TIME_OF_DAY_PEAK_HOUR;
        let trough = (peak + HOURS_PER_DAY / 2) % HOURS_PER_DAY;
        let rates = |s: &SimSummary| {
            let (p, pn) = s.click_rate_around(peak, 3).unwrap();
            let (t, tn) = s.click_rate_around(trough, 3).unwrap();
            assert!(pn > 500 && tn > 500, "{s:?}");
            (p, t)
        };
        let (_, _, off) = run(&config);
        assert_eq!(
            off.by_hour.len(),
            24,
            "every hour is covered: {:?}",
            off.by_hour
        );
        let (p0, t0) = rates(&off);
        assert!((p0 - t0).abs() < 0.02, "no effect, no gap: {p0} vs {t0}");
        config.time_of_day = 0.8;
        let (_, _, on) = run(&config);
        let (p1, t1) = rates(&on);
        assert!(p1 > t1 + 0.03, "peak {p1} vs trough {t1}");
        assert!(
            p1 > p0 && t1 < t0,
            "the peak gains, the trough loses: {p0}->{p1}, {t0}->{t1}"
        );
    }

    #[test]
    fn every_injected_row_is_flagged_and_only_those() {
        let mut config = SimConfig::new(11);
        config.sessions = Some(2000);
        config.outlier_share = 0.02;
        let (log, truth, s) = run(&config);
        let log = String::from_utf8(log).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        assert_eq!(lines.len() as u64, s.rows);
        let flags: Vec<Value> = String::from_utf8(truth)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(flags.len() as u64, s.bot_rows + s.outlier_rows);
        assert!(s.bot_sessions > 10 && s.outlier_rows > 5, "{s:?}");
        for f in &flags {
            let line = f["line"].as_u64().unwrap() as usize;
            let click = Click::parse(line as u64, lines[line - 1]).unwrap();
            match f["kind"].as_str().unwrap() {
                "outlier" => assert!(click.dwell_seconds.unwrap() >= 28_800.0),
                "bot" => assert!(click.clicked),
                other => panic!("{other}"),
            }
        }
        // No human dwell reaches the outliers' range.
        let humans_max = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| !flags.iter().any(|f| f["line"] == *i as u64 + 1))
            .filter_map(|(i, l)| Click::parse(i as u64 + 1, l).unwrap().dwell_seconds)
            .fold(0.0, f64::max);
        assert!(humans_max <= 1800.0, "{humans_max}");
    }
}
