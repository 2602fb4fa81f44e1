//! The data stage: a golden set from real data, click logs (simulated and the Open Bandit
//! sample), cleaning, policy-guided synthesis, and mixing into batches and splits.

pub mod clean;
pub mod clicks;
pub mod golden;
pub mod mix;
pub mod obd;
pub mod synth;
