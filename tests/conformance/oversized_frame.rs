//! Case 5: a frame over `--max-frame`, on a server of its own.

use std::io::Write;

use epoll_bench::protocol::{Protocol, request_header};

use crate::support::*;

use crate::case::*;

/// Case 5, own server with `--max-frame 1MiB`. Frame: a connection sending
/// `len` = 1 MiB + 1 is closed without a byte of response and counts one
/// protocol error, while another connection, open before and after, goes
/// on being served (including a frame of exactly 1 MiB, `seq` continuing).
/// Echo has no length limit: the analogue is that 1 MiB + 1 bytes are
/// echoed exactly beside the other connection, with no protocol error.
pub(crate) fn oversized_frame(variant: &str, protocol: Protocol) {
    const MAX_FRAME: u32 = 1 << 20;
    let server = ServerProcess::start(variant, protocol, &["--max-frame", "1MiB"]);
    let label = format!("{} case 5 max-frame + 1", server.label);
    let baseline = server.open_fds();
    let before = server.snapshot().total.counters;
    let mut other = connect(server.addr);
    round_trip(&mut other, protocol, 0, &payload(50, 100), &label);
    let mut offender = connect(server.addr);
    let expected_errors = match protocol {
        Protocol::Frame => {
            let _ = offender.write_all(&request_header(MAX_FRAME + 1));
            let _ = offender.write_all(&payload(51, 1000));
            let (got, _) = read_until_closed(&mut offender, 1 << 20, &label);
            assert!(
                got.is_empty(),
                "{label}: {} response bytes to an oversized frame",
                got.len()
            );
            let max = payload(52, MAX_FRAME as usize);
            exchange(
                &mut other,
                encode_request(protocol, &max),
                &expected_response(protocol, 1, &max),
                ExchangeOptions::default(),
                &format!("{label}: exactly max-frame on the other connection"),
            );
            1
        }
        Protocol::File => unreachable!("the file protocol has its own conformance cases"),
        Protocol::Echo => {
            let big = payload(53, MAX_FRAME as usize + 1);
            exchange(
                &mut offender,
                big.clone(),
                &big,
                ExchangeOptions::default(),
                &format!("{label}: large echo"),
            );
            0
        }
    };
    round_trip(&mut other, protocol, 2, &payload(54, 10), &label);
    close_cleanly(other, &label);
    drop(offender);
    server.wait_for_fds(baseline, &label);
    let delta = server.snapshot().total.counters.since(&before);
    assert_eq!(delta.protocol_errors, expected_errors, "{label}: {delta:?}");
    assert_eq!(delta.connection_errors, 0, "{label}: {delta:?}");
    assert_eq!(delta.connections_accepted, 2, "{label}: {delta:?}");
    assert_eq!(delta.connections_closed, 2, "{label}: {delta:?}");
    fresh_round_trip(server.addr, protocol, &label);
    server.wait_for_fds(baseline, &label);
    server.terminate();
}
