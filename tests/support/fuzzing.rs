//! The driver of the fuzz targets (`tests/fuzz.rs`, `lsp/tests/fuzz.rs`): property-based
//! generators on the stable toolchain (proptest), run for a bounded number of cases from a fixed
//! seed in CI, or for as long as asked from fresh seeds:
//!
//! ```text
//! RUBRIC_FUZZ_SECONDS=3600 cargo test --release --test fuzz TARGET -- --nocapture
//! ```
//!
//! Each run prints `fuzz TARGET: N cases in S s (seeds A..B), no failure`; a failure panics with
//! the seed, the shrunk case and the problem, and `RUBRIC_FUZZ_SEED=SEED` replays that seed's
//! batch. Panics inside the target are caught by proptest and count as failures.

#![allow(dead_code)]

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};
use std::fmt::Debug;
use std::time::Instant;

/// Runs `test` on `cases` values of `strategy` from the target's fixed seed; with
/// `RUBRIC_FUZZ_SECONDS=N`, on batches of `cases` values from fresh seeds until N seconds have
/// passed.
pub fn fuzz<S>(
    target: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: Debug,
{
    let seconds = std::env::var("RUBRIC_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    // The pinned seed of the target: its name's FNV-1a hash.
    let pinned = target.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    // A failure's seed, to replay it: `RUBRIC_FUZZ_SEED=N` runs that seed's batch.
    let replay = std::env::var("RUBRIC_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    let first = match (replay, seconds) {
        (Some(seed), _) => seed,
        (None, Some(_)) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        (None, None) => pinned,
    };
    let start = Instant::now();
    let mut seed = first;
    let mut total: u64 = 0;
    loop {
        let config = Config {
            cases,
            failure_persistence: None,
            max_shrink_iters: 256,
            rng_algorithm: RngAlgorithm::ChaCha,
            rng_seed: RngSeed::Fixed(seed),
            ..Config::default()
        };
        let mut runner = TestRunner::new(config);
        if let Err(e) = runner.run(&strategy, &test) {
            panic!("fuzz {target}: seed {seed}: {e}");
        }
        total += u64::from(cases);
        if replay.is_some() || seconds.is_none_or(|s| start.elapsed().as_secs() >= s) {
            break;
        }
        seed = seed.wrapping_add(1);
    }
    println!(
        "fuzz {target}: {total} cases in {:.1} s (seeds {first}..={seed}), no failure",
        start.elapsed().as_secs_f64()
    );
}

/// A failed property, as proptest reports it.
pub fn fail(problem: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(problem.into())
}
