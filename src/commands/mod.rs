//! One module per subcommand: each parses nothing itself (clap does) and
//! only wires library pieces together.

#![forbid(unsafe_code)]

/// `println!` for the measuring commands: a stdout that went away
/// (`epoll-bench run | head`) must not abort a run and lose its results,
/// so a failed write is ignored. Textually in scope for every module below.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

pub mod chart;
pub mod compare;
pub mod cpu_profile_files;
pub mod doctor;
pub mod drive;
pub mod limits;
pub mod output;
pub mod report;
pub mod results_input;
pub mod run;
pub mod serve;
pub mod session;
