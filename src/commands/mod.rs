//! One module per subcommand: each parses nothing itself (clap does) and
//! only wires library pieces together.

#![forbid(unsafe_code)]

pub mod chart;
pub mod compare;
pub mod doctor;
pub mod drive;
pub mod report;
pub mod results_input;
pub mod run;
pub mod serve;
pub mod session;
