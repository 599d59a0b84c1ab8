//! One module per subcommand: each parses nothing itself (clap does) and
//! only wires library pieces together.

pub mod serve;
