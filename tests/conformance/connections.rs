//! Cases about connections: half-close, reset mid-message, a slow reader
//! (backpressure), a thousand at once, ten thousand in turn, and idle ones
//! beside busy ones.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use epoll_bench::protocol::{Protocol, request_header};
use epoll_bench::server::variant::TriggerMode;
use epoll_bench::sys::SyscallKind;
use rand::RngExt;

use crate::support::*;

use crate::case::*;

/// Case 6. 60 messages of assorted sizes (one of 300 KiB, larger than the
/// ring and pipe) written, then `shutdown(Write)`: every response arrives,
/// then EOF. Echo: the whole stream comes back, then EOF.
pub(crate) fn half_close(ctx: &Ctx) -> Outcome {
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
pub(crate) fn reset_mid_frame(ctx: &Ctx) -> Outcome {
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
pub(crate) fn slow_reader(ctx: &Ctx) -> Outcome {
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
pub(crate) fn thousand_concurrent(ctx: &Ctx) -> Outcome {
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
pub(crate) fn connect_cycles(ctx: &Ctx) -> Outcome {
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

/// Case 13. 100 idle connections (frame: every other one stopped after two
/// header bytes) held open while 10 busy ones make 100 round trips each;
/// the server must hold all 110, answer the busy ones correctly, and still
/// serve every idle one afterwards (frame: the half-sent header completes
/// into a `seq` 0 request).
pub(crate) fn idle_beside_busy(ctx: &Ctx) -> Outcome {
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
