//! The file protocol's conformance cases, for every variant that serves it
//! (`Variant::serves`): one server per variant, the cases one after the
//! other, each followed by the fd, counter and fresh-connection checks of
//! the frame suite. Every response byte is checked against the served
//! file (`file_client`).

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use epoll_bench::protocol::Protocol;
use epoll_bench::protocol::file::SERVED_FILE_BYTES;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::case::*;
use crate::file_client::*;
use crate::shared_server::check_counters;
use crate::support::*;

const FILE_CASES: [(&str, Case); 7] = [
    ("requests split one byte per write", split_requests),
    ("1,000 pipelined requests", pipelined),
    (
        "out-of-file request beside a working connection",
        out_of_file,
    ),
    (
        "above --max-frame request beside a working connection",
        above_max_frame,
    ),
    ("EOF inside a request", eof_inside_request),
    ("slow reader of 16 MiB responses", slow_reader_16mib),
    ("300 connections at once", many_connections),
];

/// `--max-frame` for these servers: the protocol's default, 16 MiB.
const MAX_FRAME_BYTES: u32 = 16 << 20;

pub(crate) fn file_cases(variant: &str) {
    epoll_bench::sys::rlimit::raise_nofile_to_hard().expect("raise RLIMIT_NOFILE");
    let server = ServerProcess::start(variant, Protocol::File, &["--pipe-size", "64KiB"]);
    let baseline = server.open_fds();
    for (name, case) in FILE_CASES {
        eprintln!("[{}] case {name}", server.label);
        let ctx = Ctx {
            server: &server,
            variant: variant.parse().expect("known variant"),
            protocol: Protocol::File,
            addr: server.addr,
            label: format!("{} case {name}", server.label),
        };
        let before = server.snapshot().total.counters;
        let outcome = case(&ctx);
        server.wait_for_fds(baseline, &ctx.what("fds back to baseline"));
        let after = server.snapshot().total.counters;
        check_counters(&ctx, &after.since(&before), &outcome);
        let mut fresh = connect(server.addr);
        file_round_trip(&mut fresh, 0, 4096, 8191, &ctx.what("fresh connection"));
        close_cleanly(fresh, &ctx.what("fresh connection close"));
        server.wait_for_fds(baseline, &ctx.what("fds back after a fresh connection"));
    }
    let report = server.terminate();
    assert_eq!(report.total.counters.accept_pauses_emfile, 0);
}

/// A random range inside the file, at most `max_len` bytes.
fn range(rng: &mut ChaCha8Rng, max_len: u32) -> (u32, u64) {
    let len = rng.random_range(0..=max_len);
    let offset = rng.random_range(0..=SERVED_FILE_BYTES - u64::from(len));
    (len, offset)
}

/// Requests written one byte per `write`, each answered before the next.
fn split_requests(ctx: &Ctx) -> Outcome {
    let mut rng = rng(21);
    let mut stream = connect(ctx.addr);
    for seq in 0..20u32 {
        let (len, offset) = range(&mut rng, 100_000);
        for byte in file_request(len, offset) {
            stream.write_all(&[byte]).expect("one-byte write");
            stream.flush().expect("flush");
        }
        read_file_response(&mut stream, seq, len, offset, 4096, &ctx.what("split"));
    }
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// 1,000 requests of up to 8 KiB in one write, read back in order.
fn pipelined(ctx: &Ctx) -> Outcome {
    let mut rng = rng(22);
    let ranges: Vec<(u32, u64)> = (0..1000).map(|_| range(&mut rng, 8192)).collect();
    let mut stream = connect(ctx.addr);
    let mut writer = stream.try_clone().expect("clone socket");
    let wire: Vec<u8> = ranges
        .iter()
        .flat_map(|&(len, offset)| file_request(len, offset))
        .collect();
    let what = ctx.what("pipelined writer");
    let writing = thread::spawn(move || {
        writer
            .write_all(&wire)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    });
    for (seq, &(len, offset)) in ranges.iter().enumerate() {
        read_file_response(
            &mut stream,
            seq as u32,
            len,
            offset,
            8192,
            &ctx.what("pipelined"),
        );
    }
    writing.join().expect("writer thread");
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// `bad` sent on one connection (after a request answered in full) closes
/// it with nothing more sent, while another connection opened before keeps
/// being served.
fn refused_beside_working(ctx: &Ctx, bad: [u8; 12]) -> Outcome {
    let mut working = connect(ctx.addr);
    file_round_trip(&mut working, 0, 1000, 77, &ctx.what("working before"));
    let mut refused = connect(ctx.addr);
    file_round_trip(
        &mut refused,
        0,
        16,
        0,
        &ctx.what("answered before the bad one"),
    );
    refused.write_all(&bad).expect("bad request");
    // Returns once the server closed (FIN or reset), whichever it was.
    let (rest, _reset) = read_until_closed(&mut refused, 1 << 20, &ctx.what("refused"));
    assert!(
        rest.is_empty(),
        "{}: {} bytes after a refused request",
        ctx.label,
        rest.len()
    );
    file_round_trip(&mut working, 1, 65536, 1 << 20, &ctx.what("working after"));
    close_cleanly(working, &ctx.what("close"));
    Outcome {
        connections: 2,
        errors: ExpectedErrors::Protocol(1),
    }
}

fn out_of_file(ctx: &Ctx) -> Outcome {
    refused_beside_working(ctx, file_request(4096, SERVED_FILE_BYTES - 4095))
}

fn above_max_frame(ctx: &Ctx) -> Outcome {
    refused_beside_working(ctx, file_request(MAX_FRAME_BYTES + 1, 0))
}

/// Half a request, then the client's FIN: a protocol error, the connection
/// closed with nothing sent.
fn eof_inside_request(ctx: &Ctx) -> Outcome {
    let mut stream = connect(ctx.addr);
    stream
        .write_all(&file_request(100, 0)[..5])
        .expect("partial request");
    stream.shutdown(Shutdown::Write).expect("shutdown(Write)");
    let (rest, _reset) = read_until_closed(&mut stream, 1 << 20, &ctx.what("after EOF"));
    assert!(
        rest.is_empty(),
        "{}: {} bytes after EOF inside a request",
        ctx.label,
        rest.len()
    );
    Outcome {
        connections: 1,
        errors: ExpectedErrors::Protocol(1),
    }
}

/// Anonymous (not file-backed) resident memory: the mmap strategy's
/// mapping is file-backed and may become resident as it is sent, which is
/// the page cache, not memory the server holds per response.
fn rss_anon_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("RssAnon line");
    kib * 1024
}

/// Four 16 MiB responses pipelined to a reader with a 4 KiB receive buffer
/// that pauses as it reads: every byte arrives, and the server's anonymous
/// memory grows by far less than one response.
fn slow_reader_16mib(ctx: &Ctx) -> Outcome {
    const GROWTH_LIMIT_BYTES: u64 = 8 << 20;
    let ranges = [
        (MAX_FRAME_BYTES, 0),
        (MAX_FRAME_BYTES, 12345),
        (MAX_FRAME_BYTES, 1 << 24),
        (1, 3),
    ];
    let before = rss_anon_bytes(ctx.server.pid);
    let mut stream = connect_with_rcvbuf(ctx.addr, 4096);
    let wire: Vec<u8> = ranges
        .iter()
        .flat_map(|&(l, o)| file_request(l, o))
        .collect();
    stream.write_all(&wire).expect("requests");
    let mut peak = before;
    for (seq, &(len, offset)) in ranges.iter().enumerate() {
        // Pause once per response part-way through the reads below: the
        // server must be blocked on a full socket meanwhile.
        thread::sleep(Duration::from_millis(20));
        peak = peak.max(rss_anon_bytes(ctx.server.pid));
        read_file_response(
            &mut stream,
            seq as u32,
            len,
            offset,
            256 << 10,
            &ctx.what("slow"),
        );
    }
    peak = peak.max(rss_anon_bytes(ctx.server.pid));
    let growth = peak.saturating_sub(before);
    assert!(
        growth < GROWTH_LIMIT_BYTES,
        "{}: anonymous memory grew by {growth} bytes serving 48 MiB",
        ctx.label
    );
    close_cleanly(stream, &ctx.what("close"));
    Outcome::clean(1)
}

/// 300 connections open at once, three rounds of one request on each, then
/// every response read.
fn many_connections(ctx: &Ctx) -> Outcome {
    const CONNECTIONS: usize = 300;
    let mut rng = rng(27);
    let mut streams: Vec<TcpStream> = (0..CONNECTIONS).map(|_| connect(ctx.addr)).collect();
    for round in 0..3u32 {
        let ranges: Vec<(u32, u64)> = (0..CONNECTIONS).map(|_| range(&mut rng, 20_000)).collect();
        for (stream, &(len, offset)) in streams.iter_mut().zip(&ranges) {
            stream
                .write_all(&file_request(len, offset))
                .expect("request");
        }
        for (stream, &(len, offset)) in streams.iter_mut().zip(&ranges) {
            read_file_response(stream, round, len, offset, 8192, &ctx.what("many"));
        }
    }
    for stream in streams {
        close_cleanly(stream, &ctx.what("close"));
    }
    Outcome::clean(CONNECTIONS as u64)
}
