//! One criterion scenario per module, and what they share: a real server
//! process (`epoll-bench serve`), a blocking frame-protocol client, and
//! the bench settings that keep the whole `cargo bench` within minutes.

pub mod results_set;
pub mod round_trip;
pub mod server_syscalls;
pub mod support;
