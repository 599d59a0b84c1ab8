//! The cases that share one server, run one after the other, each followed
//! by the fd, counter and fresh-connection checks.

use epoll_bench::protocol::Protocol;
use epoll_bench::server::report::LoopCounters;

use crate::support::*;

use crate::case::*;
use crate::connections::*;
use crate::framing::*;

/// The cases that share one server, in the numbering of issue 2, item 7.
pub(crate) const SHARED_CASES: [(&str, Case); 11] = [
    ("1 one byte per write", one_byte_per_write),
    ("2 10,000 pipelined", pipelined_ten_thousand),
    ("3 4 MiB frame through a 64 KiB pipe/ring", four_mib_frame),
    ("4 zero length", zero_length),
    ("6 half-close", half_close),
    ("7 RST mid-frame", reset_mid_frame),
    ("8 slow reader, tiny SO_RCVBUF", slow_reader),
    ("9 1,000 concurrent connections", thousand_concurrent),
    ("10 10,000 connect/request/close", connect_cycles),
    ("12 random garbage", random_garbage),
    ("13 100 idle beside 10 busy", idle_beside_busy),
];

pub(crate) fn shared_cases(variant: &str, protocol: Protocol) {
    shared_cases_with(variant, protocol, &[]);
}

/// Buffers the pooled pass's pool holds at most: far fewer than case 9's
/// 1,000 connections, so connections also wait for buffers and get them.
const POOLED_PASS_MAX_BUFFERS: &str = "16";

/// The same cases with `--buffers pooled`, for the variants that pool.
pub(crate) fn shared_cases_pooled(variant: &str, protocol: Protocol) {
    let parsed = variant.parse().expect("known variant");
    if epoll_bench::server::pooled_buffers_refusal(parsed).is_some() {
        return;
    }
    let extra = [
        "--buffers",
        "pooled",
        "--pool-buffers",
        POOLED_PASS_MAX_BUFFERS,
    ];
    shared_cases_with(variant, protocol, &extra);
}

fn shared_cases_with(variant: &str, protocol: Protocol, extra: &[&str]) {
    epoll_bench::sys::rlimit::raise_nofile_to_hard().expect("raise RLIMIT_NOFILE");
    // The ring buffer (rw, writev) is 64 KiB by default; the pipe is set to
    // the same explicitly so case 3 means "a frame 64× the pipe".
    let mut args = vec!["--pipe-size", "64KiB"];
    args.extend_from_slice(extra);
    let server = ServerProcess::start(variant, protocol, &args);
    let baseline = server.open_fds();
    for (name, case) in SHARED_CASES {
        eprintln!("[{}] case {name}", server.label);
        let ctx = Ctx {
            server: &server,
            variant: variant.parse().expect("known variant"),
            protocol,
            addr: server.addr,
            label: format!("{} case {name}", server.label),
        };
        let before = server.snapshot().total.counters;
        let outcome = case(&ctx);
        server.wait_for_fds(baseline, &ctx.what("fds back to baseline"));
        let after = server.snapshot().total.counters;
        check_counters(&ctx, &after.since(&before), &outcome);
        fresh_round_trip(server.addr, protocol, &ctx.label);
        server.wait_for_fds(
            baseline,
            &ctx.what("fds back to baseline after a fresh connection"),
        );
    }
    let report = server.terminate();
    assert_eq!(report.total.counters.accept_pauses_emfile, 0);
}

pub(crate) fn check_counters(ctx: &Ctx, delta: &LoopCounters, outcome: &Outcome) {
    let what = ctx.what("counters");
    assert_eq!(
        delta.connections_accepted, outcome.connections,
        "{what}: connections accepted {delta:?}"
    );
    assert_eq!(
        delta.connections_closed, outcome.connections,
        "{what}: connections closed {delta:?}"
    );
    match outcome.errors {
        ExpectedErrors::None => {
            assert_eq!(delta.protocol_errors, 0, "{what}: {delta:?}");
            assert_eq!(delta.connection_errors, 0, "{what}: {delta:?}");
        }
        ExpectedErrors::Protocol(n) => {
            assert_eq!(delta.protocol_errors, n, "{what}: {delta:?}");
            assert_eq!(delta.connection_errors, 0, "{what}: {delta:?}");
        }
        ExpectedErrors::ProtocolOrConnection(n) => {
            assert_eq!(
                delta.protocol_errors + delta.connection_errors,
                n,
                "{what}: {delta:?}"
            );
        }
    }
}
