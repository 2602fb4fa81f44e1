//! rubric-runtime: everything that touches policy files and data: compiling them, labeling,
//! the data stages, the teachers' stages, the stage runner behind `rubric run`, documents,
//! stats and diffs. Models, the trainer and metrics live in `rubric-ml`; project loading in
//! `rubric-project`.

pub mod atomic;
pub mod compile;
pub mod data;
pub mod diff;
pub mod distill;
pub mod doc;
pub mod encode;
pub mod examples;
pub mod label;
pub mod quantize;
pub mod random_pairs;
pub mod run;
pub mod scan;
pub mod scoring;
pub mod snapshot;
pub mod stats;
pub mod teach;
pub mod textdiff;
pub mod trace;

/// Policy projects on disk (their own crate, so the language server links them without the
/// runtime).
pub use rubric_project as project;
