//! rubric-runtime: everything that touches files, data and models. For now: loading policy
//! projects from disk for the pure compiler; labeling, data, training and serving join it.

pub mod atomic;
pub mod compile;
pub mod data;
pub mod diff;
pub mod doc;
pub mod examples;
pub mod label;
pub mod project;
pub mod random_pairs;
pub mod run;
pub mod scan;
pub mod snapshot;
pub mod stats;
pub mod trace;
