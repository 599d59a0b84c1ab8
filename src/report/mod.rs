//! Reports made from results files alone: they never measure.
//! - [`export`]: results.json, results.csv and summary.md.
//! - [`charts`]: SVG and PNG charts.
//! - [`compare`]: two result sets side by side.

#![forbid(unsafe_code)]

pub mod charts;
pub mod compare;
pub mod export;
pub mod findings;
