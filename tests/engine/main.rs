//! The load engine against small servers written here (one std thread per
//! connection, loopback only; frame, echo and file protocols): correct ones must pass verification with
//! consistent counts; misbehaving ones (corrupting, wrong `seq`, closing
//! early, silent, absent) must be caught and counted without hanging.
//! Bounds are on counts, never on wall time.

mod faults;
mod file;
mod harness;
mod real_servers;
mod setup_errors;
mod shapes;
mod slow_readers;
mod test_server;
mod traces;
