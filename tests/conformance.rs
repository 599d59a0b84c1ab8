//! Conformance suite (issue 2, item 7): every server variant × both wire
//! protocols against the same adversarial cases, run against the real
//! `epoll-bench serve` binary.
//!
//! Each (variant, protocol) pair gets one `shared_cases` test that runs the
//! cases below one after the other against one server, plus three tests for
//! cases that need a server of their own (`oversized_frame`,
//! `emfile_on_accept`, `sigterm_under_load`). After every case the suite
//! checks that the server's open fd count is back to its baseline, that the
//! accept/close/error counters moved exactly as the case implies, and that a
//! fresh connection is still served correctly.
//!
//! Frame vs echo: a "message" is a frame (`len` + payload, answered by
//! `len`, `seq`, payload) or, in echo mode, just its payload bytes (answered
//! by the same bytes). Each case says what it means in echo mode where that
//! is not simply "the same bytes without headers".

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use epoll_bench::protocol::{DEFAULT_MAX_FRAME_BYTES, Protocol, request_header, response_header};
use epoll_bench::server::Variant;
use epoll_bench::server::report::LoopCounters;
use epoll_bench::server::variant::TriggerMode;
use epoll_bench::sys::SyscallKind;
use rand::RngExt;
use support::*;

/// What a case did, so the runner can check the server's counters.
struct Outcome {
    /// Connections the case opened (all closed by the time it returns).
    connections: u64,
    errors: ExpectedErrors,
}

enum ExpectedErrors {
    None,
    /// Exactly this many protocol errors, no connection errors.
    Protocol(u64),
    /// This many connections closed for an error of either kind (a reset
    /// may surface as a socket error or as EOF inside a frame).
    ProtocolOrConnection(u64),
}

impl Outcome {
    fn clean(connections: u64) -> Outcome {
        Outcome {
            connections,
            errors: ExpectedErrors::None,
        }
    }
}

struct Ctx<'a> {
    server: &'a ServerProcess,
    variant: Variant,
    protocol: Protocol,
    addr: SocketAddr,
    label: String,
}

impl Ctx<'_> {
    fn what(&self, detail: &str) -> String {
        format!("{}: {detail}", self.label)
    }
}

type Case = fn(&Ctx) -> Outcome;

/// The cases that share one server, in the numbering of issue 2, item 7.
const SHARED_CASES: [(&str, Case); 11] = [
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

fn shared_cases(variant: &str, protocol: Protocol) {
    epoll_bench::sys::rlimit::raise_nofile_to_hard().expect("raise RLIMIT_NOFILE");
    // The ring buffer (rw, writev) is 64 KiB by default; the pipe is set to
    // the same explicitly so case 3 means "a frame 64× the pipe".
    let server = ServerProcess::start(variant, protocol, &["--pipe-size", "64KiB"]);
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

fn check_counters(ctx: &Ctx, delta: &LoopCounters, outcome: &Outcome) {
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

/// Clean client close: half-close, then the server must answer with EOF.
fn close_cleanly(mut stream: TcpStream, what: &str) {
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    expect_eof(&mut stream, what);
}

/// Case 1. Two messages sent one byte per `write()` with TCP_NODELAY,
/// pausing after each header byte and every 8 bytes so they travel as many
/// segments and the server sees them split across reads (frame: the header
/// itself arrives in four pieces). Echo: the same bytes, echoed exactly.
fn one_byte_per_write(ctx: &Ctx) -> Outcome {
    let mut stream = connect(ctx.addr);
    for seq in 0..2u32 {
        let data = payload(100 + seq as u64, 61 + 40 * seq as usize);
        let wire = encode_request(ctx.protocol, &data);
        for (i, byte) in wire.iter().enumerate() {
            stream.write_all(&[*byte]).expect("one-byte write");
            if i < 4 || i % 8 == 7 {
                thread::sleep(Duration::from_millis(1));
            }
        }
        read_expected(
            &mut stream,
            &expected_response(ctx.protocol, seq, &data),
            &ctx.what(&format!("message {seq}")),
        );
    }
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// Case 2. 10,000 messages of 0..=48 bytes written before any response is
/// read (the reader waits for the writer, boundedly). Frame: responses in
/// order with `seq` 0..9999. Echo: the concatenated stream comes back.
fn pipelined_ten_thousand(ctx: &Ctx) -> Outcome {
    let mut sizes = rng(2);
    let mut request = Vec::new();
    let mut expected = Vec::new();
    for seq in 0..10_000u32 {
        let data = payload(200_000 + seq as u64, sizes.random_range(0..=48));
        request.extend_from_slice(&encode_request(ctx.protocol, &data));
        expected.extend_from_slice(&expected_response(ctx.protocol, seq, &data));
    }
    let mut stream = connect(ctx.addr);
    let options = ExchangeOptions {
        hold_reads: true,
        ..Default::default()
    };
    exchange(
        &mut stream,
        request,
        &expected,
        options,
        &ctx.what("pipelined"),
    );
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// Case 3. A 4 MiB message through a 64 KiB pipe (splice) or ring (rw,
/// writev), so it takes many splices/reads each way, followed by a small
/// one on the same connection (frame: `seq` 1 after the big `seq` 0).
/// Echo: 4 MiB echoed, then 10 bytes.
fn four_mib_frame(ctx: &Ctx) -> Outcome {
    let big = payload(3, 4 << 20);
    let small = payload(33, 10);
    let mut request = encode_request(ctx.protocol, &big);
    request.extend_from_slice(&encode_request(ctx.protocol, &small));
    let mut expected = expected_response(ctx.protocol, 0, &big);
    expected.extend_from_slice(&expected_response(ctx.protocol, 1, &small));
    let mut stream = connect(ctx.addr);
    exchange(
        &mut stream,
        request,
        &expected,
        ExchangeOptions::default(),
        &ctx.what("4 MiB"),
    );
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// Case 4. Frame: zero-length frames alone and between others (`len` 0,
/// `seq` advancing), three pipelined in one write, and a connection closed
/// without any request (EOF between frames is not a protocol error). Echo:
/// a zero-byte `write()` produces nothing (the next message comes back
/// alone), and a connection closed without sending anything gets EOF.
fn zero_length(ctx: &Ctx) -> Outcome {
    let mut stream = connect(ctx.addr);
    let five = payload(4, 5);
    match ctx.protocol {
        Protocol::Frame => {
            round_trip(&mut stream, ctx.protocol, 0, &[], &ctx.what("empty frame"));
            round_trip(&mut stream, ctx.protocol, 1, &five, &ctx.what("5 bytes"));
            round_trip(&mut stream, ctx.protocol, 2, &[], &ctx.what("empty frame"));
            stream
                .write_all(&[0u8; 12])
                .expect("three empty frames at once");
            let mut expected = Vec::new();
            for seq in 3..6 {
                expected.extend_from_slice(&response_header(0, seq));
            }
            read_expected(&mut stream, &expected, &ctx.what("three empty frames"));
        }
        Protocol::Echo => {
            assert_eq!(stream.write(&[]).expect("empty write"), 0);
            round_trip(&mut stream, ctx.protocol, 0, &five, &ctx.what("5 bytes"));
        }
    }
    close_cleanly(stream, &ctx.what("close"));
    let silent = connect(ctx.addr);
    close_cleanly(silent, &ctx.what("connection without a request"));
    Outcome::clean(2)
}

/// Case 6. 60 messages of assorted sizes (one of 300 KiB, larger than the
/// ring and pipe) written, then `shutdown(Write)`: every response arrives,
/// then EOF. Echo: the whole stream comes back, then EOF.
fn half_close(ctx: &Ctx) -> Outcome {
    let mut sizes = rng(6);
    let mut request = Vec::new();
    let mut expected = Vec::new();
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
    let mut stream = connect(ctx.addr);
    let options = ExchangeOptions {
        half_close: true,
        ..Default::default()
    };
    exchange(
        &mut stream,
        request,
        &expected,
        options,
        &ctx.what("half-close"),
    );
    Outcome::clean(1)
}

/// Case 7. Frame: a header announcing 1000 bytes and 100 of them, then
/// (once the server has read them) close with SO_LINGER 0, i.e. RST in the
/// middle of the frame. Echo: 100 bytes whose echo is never read, then RST.
/// Either way the server counts one error close and survives.
fn reset_mid_frame(ctx: &Ctx) -> Outcome {
    let before = ctx.server.snapshot().total.counters.bytes_in;
    let mut stream = connect(ctx.addr);
    let mut wire = Vec::new();
    if ctx.protocol == Protocol::Frame {
        wire.extend_from_slice(&request_header(1000));
    }
    wire.extend_from_slice(&payload(7, 100));
    stream.write_all(&wire).expect("partial frame");
    let sent = wire.len() as u64;
    ctx.server
        .wait_for_report(&ctx.what("the partial frame to be read"), |r| {
            r.total.counters.bytes_in >= before + sent
        });
    set_linger_zero(&stream);
    drop(stream);
    Outcome {
        connections: 1,
        errors: ExpectedErrors::ProtocolOrConnection(1),
    }
}

/// Case 8. A client with a 4 KiB SO_RCVBUF writes 32 MiB (frame: 512
/// frames of 64 KiB) from one thread while reading slowly (4 KiB reads, a
/// pause every 256 KiB) from another: the server's writes go partial and
/// backpressure stops its reads. Nothing may be lost (every byte and `seq`
/// checked), and the server's RSS may grow by far less than the bytes sent.
fn slow_reader(ctx: &Ctx) -> Outcome {
    const MESSAGES: u64 = 512;
    const MESSAGE_BYTES: usize = 64 << 10;
    const RSS_GROWTH_LIMIT: u64 = 16 << 20;
    let protocol = ctx.protocol;
    let rss_before = ctx.server.rss_bytes();
    let before = ctx.server.snapshot();
    let mut stream = connect_with_rcvbuf(ctx.addr, 4096);
    let mut writer = stream.try_clone().expect("clone socket");
    let what = ctx.what("slow reader writer");
    let writing = thread::spawn(move || {
        for i in 0..MESSAGES {
            let data = payload(800_000 + i, MESSAGE_BYTES);
            writer
                .write_all(&encode_request(protocol, &data))
                .unwrap_or_else(|e| panic!("{what}: write {i} failed: {e}"));
        }
    });
    let mut rss_max = rss_before;
    let mut buf = [0u8; 4096];
    let mut total_read: u64 = 0;
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
            assert_same_bytes(
                &buf[..n],
                &expected[offset..offset + n],
                offset,
                &ctx.what(&format!("message {i}")),
            );
            offset += n;
            let crossed = |step: u64| (total_read + n as u64) / step > total_read / step;
            if crossed(256 << 10) {
                thread::sleep(Duration::from_millis(1));
            }
            if crossed(1 << 20) {
                rss_max = rss_max.max(ctx.server.rss_bytes());
            }
            total_read += n as u64;
        }
    }
    writing.join().expect("writer thread");
    let delta = ctx.server.snapshot().since(&before).total;
    if before.syscall_counting && ctx.variant.trigger() == Some(TriggerMode::Level) {
        // Beyond the connection's one EPOLL_CTL_ADD, a level-triggered loop
        // modifies interest only when a write blocks (EPOLLOUT) or the
        // watermark pauses reading: proof that backpressure happened.
        let modifies = delta.syscalls.calls.get(SyscallKind::EpollCtl);
        assert!(
            modifies >= 2,
            "{}: {modifies} epoll_ctl calls: the server's writes never blocked",
            ctx.label
        );
    }
    let growth = rss_max.saturating_sub(rss_before);
    assert!(
        growth < RSS_GROWTH_LIMIT,
        "{}: server RSS grew by {growth} bytes while {total_read} bytes went through",
        ctx.label
    );
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// Case 9. 1,000 connections open at once, 10 rounds: one message on every
/// connection, then every response read (frame: `seq` = round).
fn thousand_concurrent(ctx: &Ctx) -> Outcome {
    const CONNECTIONS: usize = 1000;
    let mut sizes = rng(9);
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(ctx.addr)).collect();
    for round in 0..10u32 {
        let messages: Vec<Vec<u8>> = (0..CONNECTIONS)
            .map(|c| {
                let len = sizes.random_range(0..=200);
                payload(900_000 + (c as u64) * 16 + round as u64, len)
            })
            .collect();
        for (stream, data) in streams.iter_mut().zip(&messages) {
            stream
                .write_all(&encode_request(ctx.protocol, data))
                .expect("write");
        }
        for (c, (stream, data)) in streams.iter_mut().zip(&messages).enumerate() {
            read_expected(
                stream,
                &expected_response(ctx.protocol, round, data),
                &ctx.what(&format!("connection {c} round {round}")),
            );
        }
    }
    for stream in &streams {
        stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    }
    for stream in &mut streams {
        expect_eof(stream, &ctx.what("close"));
    }
    Outcome::clean(CONNECTIONS as u64)
}

/// Case 10. 10,000 times: connect, one message, check its response
/// (frame: `seq` 0 every time), close.
fn connect_cycles(ctx: &Ctx) -> Outcome {
    const CYCLES: u64 = 10_000;
    let mut sizes = rng(10);
    for cycle in 0..CYCLES {
        let data = payload(1_000_000 + cycle, sizes.random_range(1..=64));
        let mut stream = connect(ctx.addr);
        round_trip(
            &mut stream,
            ctx.protocol,
            0,
            &data,
            &ctx.what(&format!("cycle {cycle}")),
        );
    }
    Outcome::clean(CYCLES)
}

/// What a frame server must answer to `bytes` followed by EOF: the
/// responses of the complete frames, and whether the stream breaks the
/// protocol (an oversized `len`, or EOF inside a frame).
fn frame_model(bytes: &[u8], max_frame: u32) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut seq = 0;
    loop {
        let rest = &bytes[pos..];
        if rest.is_empty() {
            return (out, false);
        }
        if rest.len() < 4 {
            return (out, true);
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len > max_frame {
            return (out, true);
        }
        out.extend_from_slice(&response_header(len, seq));
        let body = &rest[4..];
        if body.len() < len as usize {
            // The server may already have streamed part of this payload.
            out.extend_from_slice(body);
            return (out, true);
        }
        out.extend_from_slice(&body[..len as usize]);
        pos += 4 + len as usize;
        seq += 1;
    }
}

/// Case 12. Four connections send 16 KiB from a seeded RNG, then
/// half-close. Frame: bytes are checked against a model of the protocol;
/// the server answers each complete frame and closes on a bad `len` or EOF
/// inside a frame, so what arrives must be a prefix of the model's answer
/// (exactly it when the model says the stream is valid), and every broken
/// stream counts one protocol error. Two of the four streams start with a
/// plausible frame so the server streams part of a response before giving
/// up. Echo: garbage is just data, echoed exactly, then EOF.
fn random_garbage(ctx: &Ctx) -> Outcome {
    let mut broken = 0;
    for seed in 0..4u64 {
        let mut garbage = payload(1200 + seed, 16 << 10);
        match seed {
            // A valid 10-byte frame first, then noise.
            1 => {
                garbage[..4].copy_from_slice(&request_header(10));
            }
            // A first `len` below max-frame: part of its payload streams back.
            2 => {
                garbage[0] = 0;
                garbage[1] = 0x01;
            }
            _ => {}
        }
        let what = ctx.what(&format!("garbage seed {seed}"));
        let mut stream = connect(ctx.addr);
        // The server may close (and reset) while we still write.
        let _ = stream.write_all(&garbage);
        let _ = stream.shutdown(Shutdown::Write);
        let (got, reset) = read_until_closed(&mut stream, 1 << 20, &what);
        match ctx.protocol {
            Protocol::Frame => {
                let (model, is_broken) = frame_model(&garbage, DEFAULT_MAX_FRAME_BYTES);
                if is_broken {
                    broken += 1;
                    assert!(
                        got.len() <= model.len(),
                        "{what}: {} bytes back, the model allows {}",
                        got.len(),
                        model.len()
                    );
                    assert_same_bytes(&got, &model[..got.len()], 0, &what);
                } else {
                    assert!(!reset, "{what}: valid stream ended by a reset");
                    assert_same_bytes(&got, &model, 0, &what);
                }
            }
            Protocol::Echo => {
                assert!(!reset, "{what}: echo connection reset");
                assert_same_bytes(&got, &garbage, 0, &what);
            }
        }
    }
    Outcome {
        connections: 4,
        errors: if broken == 0 {
            ExpectedErrors::None
        } else {
            ExpectedErrors::Protocol(broken)
        },
    }
}

/// Case 13. 100 idle connections (frame: every other one stopped after two
/// header bytes) held open while 10 busy ones make 100 round trips each;
/// the server must hold all 110, answer the busy ones correctly, and still
/// serve every idle one afterwards (frame: the half-sent header completes
/// into a `seq` 0 request).
fn idle_beside_busy(ctx: &Ctx) -> Outcome {
    let mut idle: Vec<TcpStream> = (0..100).map(|_| connect(ctx.addr)).collect();
    let half_header = |i: usize| ctx.protocol == Protocol::Frame && i.is_multiple_of(2);
    let idle_payload = |i: usize| payload(1300 + i as u64, 1 + i);
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
                1_400_000 + (b as u64) * 1000 + round as u64,
                sizes.random_range(0..1500),
            );
            round_trip(
                stream,
                ctx.protocol,
                round,
                &data,
                &ctx.what(&format!("busy {b} round {round}")),
            );
        }
    }
    let held = ctx.server.snapshot().total.counters;
    let open = held.connections_accepted - held.connections_closed;
    assert_eq!(open, 110, "{}: connections the server holds", ctx.label);
    for stream in busy {
        close_cleanly(stream, &ctx.what("busy close"));
    }
    for (i, mut stream) in idle.into_iter().enumerate() {
        let data = idle_payload(i);
        let what = ctx.what(&format!("idle {i}"));
        if half_header(i) {
            let header = request_header(data.len() as u32);
            stream.write_all(&header[2..]).expect("rest of the header");
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
    Outcome::clean(110)
}

/// Case 5, own server with `--max-frame 1MiB`. Frame: a connection sending
/// `len` = 1 MiB + 1 is closed without a byte of response and counts one
/// protocol error, while another connection, open before and after, goes
/// on being served (including a frame of exactly 1 MiB, `seq` continuing).
/// Echo has no length limit: the analogue is that 1 MiB + 1 bytes are
/// echoed exactly beside the other connection, with no protocol error.
fn oversized_frame(variant: &str, protocol: Protocol) {
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

/// Case 11, own server. The server's RLIMIT_NOFILE is lowered (prlimit)
/// so that exactly `SERVED` connections fit; `WAITING` more clients then
/// connect (the kernel completes their handshakes) and send a request.
/// While they wait: the served connections keep being answered, nothing is
/// answered to the waiting ones, `accept_pauses_emfile` > 0, and the
/// server's `epoll_wait` and `accept4` counts grow by a bounded amount (it
/// retries every 100 ms; the classic level-triggered accept spin would make
/// thousands of calls). Once the served connections close, the waiting
/// clients are accepted and answered. Same for echo, with echo messages.
fn emfile_on_accept(variant: &str, protocol: Protocol) {
    const SERVED: usize = 4;
    const WAITING: usize = 3;
    const STALL: Duration = Duration::from_millis(600);
    let server = ServerProcess::start(variant, protocol, &[]);
    let label = format!("{} case 11 EMFILE", server.label);
    let baseline = server.open_fds();

    // What one connection costs in fds (3 with splice's pipe).
    let probe = connect(server.addr);
    let mut probe = probe;
    round_trip(&mut probe, protocol, 0, &payload(110, 10), &label);
    let per_connection = server.open_fds() - baseline;
    assert!(per_connection >= 1, "{label}: a connection costs no fd?");
    close_cleanly(probe, &label);
    server.wait_for_fds(baseline, &label);

    // With splice the limit falls between a connection's socket and its
    // pipe: the next accept succeeds and only the pipe fails.
    let free = SERVED * per_connection + (per_connection - 1);
    let limit = nofile_limit_leaving(&server.fd_numbers(), free);
    epoll_bench::sys::rlimit::set_process_nofile_soft(server.pid, limit)
        .expect("lower the server's RLIMIT_NOFILE");

    let mut served: Vec<TcpStream> = (0..SERVED).map(|_| connect(server.addr)).collect();
    for (i, stream) in served.iter_mut().enumerate() {
        let what = format!("{label}: served {i} before the stall");
        round_trip(stream, protocol, 0, &payload(111 + i as u64, 20), &what);
    }
    server.wait_for_fds(baseline + SERVED * per_connection, &label);

    let before = server.snapshot();
    let waiting_payloads: Vec<Vec<u8>> =
        (0..WAITING).map(|i| payload(120 + i as u64, 30)).collect();
    let mut waiting: Vec<TcpStream> = waiting_payloads
        .iter()
        .map(|data| {
            let mut stream = connect(server.addr);
            stream
                .write_all(&encode_request(protocol, data))
                .expect("request from a waiting client");
            stream
        })
        .collect();
    // The stalled window starts once a pause is seen, so the snapshots
    // polled until then do not count against the bound below.
    let paused = server.wait_for_report(&format!("{label}: accept paused"), |r| {
        r.total.counters.accept_pauses_emfile > before.total.counters.accept_pauses_emfile
    });
    let stall_start = Instant::now();
    thread::sleep(STALL);
    for (i, stream) in served.iter_mut().enumerate() {
        let what = format!("{label}: served {i} during the stall");
        round_trip(stream, protocol, 1, &payload(130 + i as u64, 20), &what);
    }
    let during = server.snapshot();
    let stalled_ms = stall_start.elapsed().as_millis() as u64;
    for (i, stream) in waiting.iter_mut().enumerate() {
        stream.set_nonblocking(true).expect("non-blocking");
        let mut buf = [0u8; 16];
        match stream.read(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            other => panic!("{label}: waiting client {i} got {other:?} before being accepted"),
        }
        stream.set_nonblocking(false).expect("blocking");
    }
    let delta = during.since(&paused).total;
    let retries_possible = stalled_ms / 100 + 2;
    // Per retry: one timed-out wait and one accept4 (each retry pauses
    // again, so at least one pause falls in the window); plus a few
    // wake-ups for each served round trip and the snapshot.
    let wait_bound = 2 * retries_possible + 4 * SERVED as u64 + 20;
    assert!(
        delta.counters.accept_pauses_emfile >= 1,
        "{label}: {:?}",
        delta.counters
    );
    assert!(
        delta.counters.epoll_wait_calls <= wait_bound,
        "{label}: {} epoll_wait calls in {stalled_ms} ms of EMFILE (bound {wait_bound}): busy loop",
        delta.counters.epoll_wait_calls
    );
    if during.syscall_counting {
        let accepts = delta.syscalls.calls.get(SyscallKind::Accept4);
        assert!(
            accepts <= retries_possible + 5,
            "{label}: {accepts} accept4 calls in {stalled_ms} ms of EMFILE: busy loop"
        );
    }

    // Free the fds: the waiting clients must now be accepted and served.
    for stream in served {
        close_cleanly(stream, &label);
    }
    for (i, (stream, data)) in waiting.iter_mut().zip(&waiting_payloads).enumerate() {
        let what = format!("{label}: waiting client {i} after fds freed up");
        read_expected(stream, &expected_response(protocol, 0, data), &what);
        round_trip(stream, protocol, 1, &payload(140 + i as u64, 20), &what);
    }
    for stream in waiting {
        close_cleanly(stream, &label);
    }
    server.wait_for_fds(baseline, &label);
    fresh_round_trip(server.addr, protocol, &label);
    server.wait_for_fds(baseline, &label);
    let report = server.terminate();
    let c = report.total.counters;
    assert_eq!(c.connections_accepted, (1 + SERVED + WAITING + 1) as u64);
    assert_eq!(c.protocol_errors + c.connection_errors, 0, "{label}: {c:?}");
}

/// Case 14, own server. Six clients keep the server busy (four ping-pong
/// with assorted sizes, two streaming 1 MiB messages); once it has served
/// a good amount, SIGTERM: exit 0 with the final JSON line within 1 s,
/// every accepted connection closed. Every response the clients got before
/// the server went away must be correct (a cut-off last one may be short).
fn sigterm_under_load(variant: &str, protocol: Protocol) {
    let server = ServerProcess::start(variant, protocol, &[]);
    let label = format!("{} case 14 SIGTERM under load", server.label);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..6u64)
        .map(|client| {
            let (addr, stop, answered) = (server.addr, Arc::clone(&stop), Arc::clone(&answered));
            let label = format!("{label}: client {client}");
            thread::spawn(move || load_client(addr, protocol, client, &stop, &answered, &label))
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
    let report = server.terminate();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("load client");
    }
    assert!(report.total.counters.connections_accepted >= 6, "{label}");
}

/// One load client for case 14: messages until the server closes, `stop`
/// is set, or a bounded count is reached.
fn load_client(
    addr: SocketAddr,
    protocol: Protocol,
    client: u64,
    stop: &AtomicBool,
    answered: &AtomicU64,
    label: &str,
) {
    let mut stream = connect(addr);
    let mut sizes = rng(1400 + client);
    for seq in 0..100_000u32 {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let len = if client < 2 {
            1 << 20
        } else {
            sizes.random_range(0..4096)
        };
        let data = payload(client << 32 | seq as u64, len);
        let mut writer = stream.try_clone().expect("clone socket");
        let request = encode_request(protocol, &data);
        // Written from a second thread so large messages cannot deadlock.
        let writing = thread::spawn(move || writer.write_all(&request).is_ok());
        let expected = expected_response(protocol, seq, &data);
        let mut got = vec![0u8; expected.len()];
        let mut filled = 0;
        while filled < got.len() {
            match stream.read(&mut got[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{label}: read failed: {e}"),
            }
        }
        assert_same_bytes(&got[..filled], &expected[..filled], 0, label);
        let _ = writing.join();
        if filled < got.len() {
            // The server shut down; what arrived was correct.
            return;
        }
        answered.fetch_add(1, Ordering::Relaxed);
    }
}

macro_rules! protocol_tests {
    ($module:ident, $variant:expr, $protocol:expr) => {
        mod $module {
            use super::super::*;

            #[test]
            fn shared_cases() {
                super::super::shared_cases($variant, $protocol);
            }

            #[test]
            fn oversized_frame() {
                super::super::oversized_frame($variant, $protocol);
            }

            #[test]
            fn emfile_on_accept() {
                super::super::emfile_on_accept($variant, $protocol);
            }

            #[test]
            fn sigterm_under_load() {
                super::super::sigterm_under_load($variant, $protocol);
            }
        }
    };
}

macro_rules! variant_tests {
    ($($module:ident => $variant:literal),* $(,)?) => {
        /// The variants the generated tests cover, in `Variant::ALL` order.
        const COVERED_VARIANTS: &[&str] = &[$($variant),*];

        $(
            mod $module {
                protocol_tests!(frame, $variant, Protocol::Frame);
                protocol_tests!(echo, $variant, Protocol::Echo);
            }
        )*
    };
}

variant_tests! {
    lt_rw => "lt-rw",
    lt_writev => "lt-writev",
    lt_splice => "lt-splice",
    et_rw => "et-rw",
    et_writev => "et-writev",
    et_splice => "et-splice",
    et_rw_shortread => "et-rw-shortread",
    et_writev_shortread => "et-writev-shortread",
}

#[test]
fn every_variant_is_covered() {
    let all: Vec<String> = Variant::ALL.iter().map(Variant::name).collect();
    assert_eq!(COVERED_VARIANTS, all.as_slice());
}

#[test]
fn frame_model_matches_the_protocol() {
    let mut valid = request_header(2).to_vec();
    valid.extend_from_slice(b"hi");
    valid.extend_from_slice(&request_header(0));
    let (out, broken) = frame_model(&valid, 10);
    let mut expected = response_header(2, 0).to_vec();
    expected.extend_from_slice(b"hi");
    expected.extend_from_slice(&response_header(0, 1));
    assert_eq!((out, broken), (expected.clone(), false));
    let mut cut = valid.clone();
    cut.push(0);
    assert_eq!(frame_model(&cut, 10), (expected, true));
    assert_eq!(frame_model(&request_header(11), 10), (Vec::new(), true));
    let (partial, broken) = frame_model(&[0, 0, 0, 5, 1, 2], 10);
    assert!(broken);
    assert_eq!(&partial[8..], &[1, 2]);
}
