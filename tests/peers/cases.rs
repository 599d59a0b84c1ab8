//! The conformance cases (numbered as in issue 2, item 7) that apply to a
//! peer, run over the wire. Where `epoll-bench serve` is checked through
//! its counters, a peer is checked from outside: its fd count (connections
//! held and closed), RSS, CPU time and exit status.
//!
//! Reused unchanged from tests/conformance/framing.rs: 1, 2, 3, 4, 12.
//! Here, in their wire-level form (the originals read counters or a
//! snapshot): 5 (no protocol-error count), 6, 7 (cannot wait for the
//! server's byte count, so it resets after a pause), 8 (no epoll_ctl
//! count), 9, 10, 11 (CPU time instead of syscall counts), 13 (fds instead
//! of held-connection counters), 14 (exit 0 only, no final report).

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::{Protocol, request_header};
use rand::RngExt;

use crate::case::*;
use crate::framing::*;
use crate::peer::{Peer, PeerProcess};
use crate::support::*;

type PeerCase = fn(&Ctx, &PeerProcess);

/// The cases that share one peer process, in the conformance numbering.
const SHARED_CASES: [(&str, PeerCase); 11] = [
    ("1 one byte per write", |c, _| {
        one_byte_per_write(c);
    }),
    ("2 10,000 pipelined", |c, _| {
        pipelined_ten_thousand(c);
    }),
    ("3 4 MiB frame", |c, _| {
        four_mib_frame(c);
    }),
    ("4 zero length", |c, _| {
        zero_length(c);
    }),
    ("6 half-close", half_close),
    ("7 RST mid-frame", reset_mid_frame),
    ("8 slow reader, tiny SO_RCVBUF", slow_reader),
    ("9 1,000 concurrent connections", thousand_concurrent),
    ("10 10,000 connect/request/close", connect_cycles),
    ("12 random garbage", |c, _| {
        random_garbage(c);
    }),
    ("13 100 idle beside 10 busy", idle_beside_busy),
];

/// Each shared case, then: every connection closed (fds back to the
/// baseline) and a fresh connection still served correctly.
pub(crate) fn shared_cases(peer: Peer, protocol: Protocol) {
    epoll_bench::sys::rlimit::raise_nofile_to_hard().expect("raise RLIMIT_NOFILE");
    let server = PeerProcess::start(peer, protocol, &[]);
    let baseline = server.open_fds();
    for (name, case) in SHARED_CASES {
        eprintln!("[{}] case {name}", server.label);
        let ctx = Ctx {
            protocol,
            addr: server.addr,
            label: format!("{} case {name}", server.label),
        };
        case(&ctx, &server);
        server.wait_for_fds(baseline, &ctx.what("fds back to baseline"));
        fresh_round_trip(server.addr, protocol, &ctx.label);
        server.wait_for_fds(baseline, &ctx.what("fds back after a fresh connection"));
    }
    server.terminate();
}

/// Case 6. 60 messages (one of 300 KiB, beyond any 64 KiB buffer), then
/// `shutdown(Write)`: every response, then EOF.
fn half_close(ctx: &Ctx, _: &PeerProcess) {
    let mut sizes = rng(6);
    let (mut request, mut expected) = (Vec::new(), Vec::new());
    for seq in 0..60u32 {
        let len = if seq == 30 {
            300 << 10
        } else {
            sizes.random_range(0..2000)
        };
        let data = payload(600 + seq as u64, len);
        request.extend_from_slice(&encode_request(ctx.protocol, &data));
        expected.extend_from_slice(&expected_response(ctx.protocol, seq, &data));
    }
    let options = ExchangeOptions {
        half_close: true,
        ..Default::default()
    };
    exchange(
        &mut connect(ctx.addr),
        request,
        &expected,
        options,
        &ctx.what("half-close"),
    );
}

/// Case 7. Frame: a header announcing 1000 bytes and 100 of them; echo:
/// 100 bytes never read back. Then RST (SO_LINGER 0). The peer has no byte
/// count to wait for, so the reset follows a pause long enough for it to
/// have read them; the runner then checks that it closed its side.
fn reset_mid_frame(ctx: &Ctx, _: &PeerProcess) {
    let stream = connect(ctx.addr);
    let mut wire = Vec::new();
    if ctx.protocol == Protocol::Frame {
        wire.extend_from_slice(&request_header(1000));
    }
    wire.extend_from_slice(&payload(7, 100));
    (&stream).write_all(&wire).expect("partial frame");
    thread::sleep(Duration::from_millis(50));
    set_linger_zero(&stream);
}

/// Case 8. A client with a 4 KiB SO_RCVBUF writes 32 MiB (512 × 64 KiB)
/// from one thread and reads slowly from another: nothing lost, and the
/// peer's RSS grows by far less than what went through (no queueing).
fn slow_reader(ctx: &Ctx, server: &PeerProcess) {
    const MESSAGES: u64 = 512;
    const MESSAGE_BYTES: usize = 64 << 10;
    const RSS_GROWTH_LIMIT: u64 = 16 << 20;
    let protocol = ctx.protocol;
    let rss_before = server.rss_bytes();
    let mut stream = connect_with_rcvbuf(ctx.addr, 4096);
    let mut writer = stream.try_clone().expect("clone socket");
    let what = ctx.what("slow reader writer");
    let writing = thread::spawn(move || {
        for i in 0..MESSAGES {
            let request = encode_request(protocol, &payload(800_000 + i, MESSAGE_BYTES));
            writer
                .write_all(&request)
                .unwrap_or_else(|e| panic!("{what}: write {i} failed: {e}"));
        }
    });
    let mut rss_max = rss_before;
    let mut buf = [0u8; 4096];
    for i in 0..MESSAGES {
        let expected = expected_response(protocol, i as u32, &payload(800_000 + i, MESSAGE_BYTES));
        let mut offset = 0;
        while offset < expected.len() {
            let want = buf.len().min(expected.len() - offset);
            let n = match stream.read(&mut buf[..want]) {
                Ok(0) => panic!("{}", ctx.what(&format!("EOF in message {i}"))),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("{}", ctx.what(&format!("read in message {i}: {e}"))),
            };
            let what = ctx.what(&format!("message {i}"));
            assert_same_bytes(&buf[..n], &expected[offset..offset + n], offset, &what);
            offset += n;
        }
        if i % 16 == 0 {
            thread::sleep(Duration::from_millis(1));
            rss_max = rss_max.max(server.rss_bytes());
        }
    }
    writing.join().expect("writer thread");
    let growth = rss_max.saturating_sub(rss_before);
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "{}: RSS grew by {growth} bytes while 32 MiB went through",
        ctx.label
    );
    close_cleanly(stream, &ctx.what("close"));
}

/// Case 9. 1,000 connections open at once, 10 rounds of one message on
/// every connection, then every response read (frame: `seq` = round).
fn thousand_concurrent(ctx: &Ctx, _: &PeerProcess) {
    let mut sizes = rng(9);
    let mut streams: Vec<TcpStream> = (0..1000).map(|_| connect(ctx.addr)).collect();
    for round in 0..10u32 {
        let messages: Vec<Vec<u8>> = (0..streams.len() as u64)
            .map(|c| payload(900_000 + c * 16 + round as u64, sizes.random_range(0..=200)))
            .collect();
        for (stream, data) in streams.iter_mut().zip(&messages) {
            stream
                .write_all(&encode_request(ctx.protocol, data))
                .expect("write");
        }
        for (c, (stream, data)) in streams.iter_mut().zip(&messages).enumerate() {
            let what = ctx.what(&format!("connection {c} round {round}"));
            read_expected(stream, &expected_response(ctx.protocol, round, data), &what);
        }
    }
    for stream in &streams {
        stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    }
    for stream in &mut streams {
        expect_eof(stream, &ctx.what("close"));
    }
}

/// Case 10. 10,000 times: connect, one message checked (`seq` 0), close.
fn connect_cycles(ctx: &Ctx, _: &PeerProcess) {
    let mut sizes = rng(10);
    for cycle in 0..10_000u64 {
        let data = payload(1_000_000 + cycle, sizes.random_range(1..=64));
        let what = ctx.what(&format!("cycle {cycle}"));
        round_trip(&mut connect(ctx.addr), ctx.protocol, 0, &data, &what);
    }
}

/// Case 13. 100 idle connections (frame: every other one stopped after two
/// header bytes) held while 10 busy ones make 100 round trips each: the
/// peer holds all 110 (one fd each), answers the busy ones, and then still
/// serves every idle one (the half-sent header completes into `seq` 0).
fn idle_beside_busy(ctx: &Ctx, server: &PeerProcess) {
    let baseline = server.open_fds();
    let half_header = |i: usize| ctx.protocol == Protocol::Frame && i.is_multiple_of(2);
    let idle_payload = |i: usize| payload(1300 + i as u64, 1 + i);
    let mut idle: Vec<TcpStream> = (0..100).map(|_| connect(ctx.addr)).collect();
    for (i, stream) in idle.iter_mut().enumerate() {
        if half_header(i) {
            let header = request_header(idle_payload(i).len() as u32);
            stream.write_all(&header[..2]).expect("half a header");
        }
    }
    let mut busy: Vec<TcpStream> = (0..10).map(|_| connect(ctx.addr)).collect();
    let mut sizes = rng(13);
    for round in 0..100u32 {
        for (b, stream) in busy.iter_mut().enumerate() {
            let data = payload(
                1_400_000 + b as u64 * 1000 + round as u64,
                sizes.random_range(0..1500),
            );
            let what = ctx.what(&format!("busy {b} round {round}"));
            round_trip(stream, ctx.protocol, round, &data, &what);
        }
    }
    server.wait_for_fds(baseline + 110, &ctx.what("110 connections held"));
    for stream in busy {
        close_cleanly(stream, &ctx.what("busy close"));
    }
    for (i, mut stream) in idle.into_iter().enumerate() {
        let (data, what) = (idle_payload(i), ctx.what(&format!("idle {i}")));
        if half_header(i) {
            stream
                .write_all(&request_header(data.len() as u32)[2..])
                .expect("header rest");
            stream.write_all(&data).expect("payload");
            read_expected(
                &mut stream,
                &expected_response(ctx.protocol, 0, &data),
                &what,
            );
        } else {
            round_trip(&mut stream, ctx.protocol, 0, &data, &what);
        }
        close_cleanly(stream, &what);
    }
}

/// Case 5, own peer with `--max-frame 1048576`. Frame: `len` = 1 MiB + 1
/// is closed without a byte of response, while another connection, open
/// before and after, goes on being served (a frame of exactly 1 MiB, `seq`
/// continuing). Echo has no limit: 1 MiB + 1 bytes come back exactly.
pub(crate) fn oversized_frame(peer: Peer, protocol: Protocol) {
    const MAX_FRAME: u32 = 1 << 20;
    let server = PeerProcess::start(peer, protocol, &["--max-frame", &MAX_FRAME.to_string()]);
    let label = format!("{} case 5 max-frame + 1", server.label);
    let baseline = server.open_fds();
    let mut other = connect(server.addr);
    round_trip(&mut other, protocol, 0, &payload(50, 100), &label);
    let mut offender = connect(server.addr);
    match protocol {
        Protocol::Frame => {
            let _ = offender.write_all(&request_header(MAX_FRAME + 1));
            let _ = offender.write_all(&payload(51, 1000));
            let (got, _) = read_until_closed(&mut offender, 1 << 20, &label);
            assert!(
                got.is_empty(),
                "{label}: {} bytes answered an oversized frame",
                got.len()
            );
            let max = payload(52, MAX_FRAME as usize);
            let what = format!("{label}: exactly max-frame on the other connection");
            let expected = expected_response(protocol, 1, &max);
            exchange(
                &mut other,
                encode_request(protocol, &max),
                &expected,
                Default::default(),
                &what,
            );
        }
        Protocol::File => unreachable!("the file protocol has its own conformance cases"),
        Protocol::Echo => {
            let big = payload(53, MAX_FRAME as usize + 1);
            let what = format!("{label}: large echo");
            exchange(&mut offender, big.clone(), &big, Default::default(), &what);
        }
    }
    round_trip(&mut other, protocol, 2, &payload(54, 10), &label);
    close_cleanly(other, &label);
    drop(offender);
    server.wait_for_fds(baseline, &label);
    fresh_round_trip(server.addr, protocol, &label);
    server.wait_for_fds(baseline, &label);
    server.terminate();
}

/// Case 14, own peer: six clients keep it busy (four ping-pong, two
/// streaming 1 MiB messages); SIGTERM once it has served a good amount:
/// exit 0 within 1 s, and every response received before was correct.
pub(crate) fn sigterm_under_load(peer: Peer, protocol: Protocol) {
    let server = PeerProcess::start(peer, protocol, &[]);
    let label = format!("{} case 14 SIGTERM under load", server.label);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..6u64)
        .map(|client| {
            let (addr, stop, answered) = (server.addr, Arc::clone(&stop), Arc::clone(&answered));
            let label = format!("{label}: client {client}");
            thread::spawn(move || {
                crate::sigterm::load_client(addr, protocol, client, &stop, &answered, &label)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while answered.load(Ordering::Relaxed) < 200 {
        assert!(
            Instant::now() < deadline,
            "{label}: clients made no progress"
        );
        thread::sleep(Duration::from_millis(5));
    }
    server.terminate();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("load client");
    }
}
