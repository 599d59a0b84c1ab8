//! Servers: see the module docs of each file.
pub mod report;
