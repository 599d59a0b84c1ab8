//! Reports made from results files alone: they never measure.
//! - [`export`]: results.json, results.csv and summary.md.
pub mod export;
