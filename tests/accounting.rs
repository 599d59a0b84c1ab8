//! Exact syscall accounting (issue 2, item 8): for one-connection ping-pong
//! with 64-byte frames, what one request costs is derived by hand from the
//! event loop's code below, and the server's own counts over N requests
//! must equal N times that, plus the fixed cost of taking the closing
//! snapshot. Also proves which variants copy payload through user space.

mod support;

use support::ServerProcess;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use epoll_bench::protocol::Protocol;

use epoll_bench::server::ServerReport;

const REQUESTS: u64 = 2_000;
const PAYLOAD_BYTES: usize = 64;

/// Syscalls one request costs, by kind, read off the loop's code:
/// one `epoll_wait` wake-up per request, then
/// - read side: LT (and ET with short-read stop) stops after the read that
///   returned less than asked; ET reads again and gets EAGAIN. splice reads
///   the 4-byte header with `read`, splices the payload into the pipe; LT
///   stops at the completed frame, ET tries one more header read (EAGAIN).
/// - write side: rw writes header and payload separately, writev gathers
///   both, splice writes the header and splices the payload out.
///
/// No `epoll_ctl`: LT changes interest only while a write is blocked.
///
/// io_uring (`src/server/uring/`): no read or write syscalls at all; each
/// loop turn is one `io_uring_enter` that submits what the last turn queued
/// and waits for one completion, and a connection has one operation in
/// flight, its next one queued when the last completes (a write while
/// output is pending, else a read). Per request, for `uring-rw`: the turn
/// whose enter submits the `RECV` and returns with the request (the recv
/// completes when it arrives), the turn that submits the header `SEND`
/// (completes at once, its completion returns the enter), the turn that
/// submits the payload `SEND` (the same), which queues the next `RECV`:
/// 3 enters. `uring-writev` sends header and payload in one `WRITEV`: 2.
/// `uring-splice` (`uring/splice.rs`) reads the 4-byte header alone with
/// a `RECV` (its enter returns with the request), then, output pending,
/// sends the response header (`SEND`, completes at once), then, nothing
/// pending, splices the 64 payload bytes into the pipe (a readability
/// poll whose completion is skipped, linked to the `SPLICE`: the socket
/// is readable already, so one completion, the splice's, returns the
/// enter), then splices them out (`SPLICE`, the same), which queues the
/// next `RECV`: 4 enters, none of them waiting for anything but the
/// operation it submitted.
fn derived_per_request(variant: &str) -> BTreeMap<&'static str, u64> {
    let table: &[(&str, &[(&'static str, u64)])] = &[
        ("lt-rw", &[("epoll_wait", 1), ("read", 1), ("write", 2)]),
        (
            "lt-writev",
            &[("epoll_wait", 1), ("readv", 1), ("writev", 1)],
        ),
        (
            "lt-splice",
            &[("epoll_wait", 1), ("read", 1), ("splice", 2), ("write", 1)],
        ),
        ("et-rw", &[("epoll_wait", 1), ("read", 2), ("write", 2)]),
        (
            "et-writev",
            &[("epoll_wait", 1), ("readv", 2), ("writev", 1)],
        ),
        (
            "et-splice",
            &[("epoll_wait", 1), ("read", 2), ("splice", 2), ("write", 1)],
        ),
        (
            "et-rw-shortread",
            &[("epoll_wait", 1), ("read", 1), ("write", 2)],
        ),
        (
            "et-writev-shortread",
            &[("epoll_wait", 1), ("readv", 1), ("writev", 1)],
        ),
        ("uring-rw", &[("io_uring_enter", 3)]),
        ("uring-writev", &[("io_uring_enter", 2)]),
        ("uring-splice", &[("io_uring_enter", 4)]),
    ];
    let (_, counts) = table
        .iter()
        .find(|(name, _)| *name == variant)
        .unwrap_or_else(|| panic!("no derivation for {variant}"));
    counts.iter().copied().collect()
}

/// What answering the closing snapshot costs the serving thread: the
/// wake-up (the `epoll_wait`, or the `io_uring_enter` that returns with
/// the eventfd's poll completion), draining the eventfd, and getrusage for
/// the CPU figures.
fn snapshot_cost(variant: &str) -> BTreeMap<&'static str, u64> {
    let wake_up = if variant.starts_with("uring-") {
        "io_uring_enter"
    } else {
        "epoll_wait"
    };
    [(wake_up, 1), ("read", 1), ("getrusage", 1)]
        .into_iter()
        .collect()
}

fn ping_pong(stream: &mut TcpStream, requests: u64) {
    let mut request = Vec::new();
    request.extend_from_slice(&(PAYLOAD_BYTES as u32).to_be_bytes());
    request.extend((0..PAYLOAD_BYTES).map(|i| i as u8));
    let mut response = [0u8; 8 + PAYLOAD_BYTES];
    for seq in 0..requests {
        stream.write_all(&request).unwrap();
        stream.read_exact(&mut response).unwrap();
        assert_eq!(&response[..4], &(PAYLOAD_BYTES as u32).to_be_bytes());
        assert_eq!(&response[4..8], &(seq as u32).to_be_bytes());
        assert_eq!(&response[8..], &request[4..]);
    }
}

/// Runs the ping-pong and returns the server's counts over exactly the
/// measured requests (a warm-up request first, so connection set-up is
/// outside the window).
fn measure(variant: &str) -> ServerReport {
    let server = ServerProcess::start(variant, Protocol::Frame, &[]);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    ping_pong(&mut stream, 1);
    let before = server.snapshot();
    let mut stream_for_window = stream;
    // `ping_pong` restarts seq at 0; the warm-up used seq 0 already.
    let mut request = Vec::new();
    request.extend_from_slice(&(PAYLOAD_BYTES as u32).to_be_bytes());
    request.extend((0..PAYLOAD_BYTES).map(|i| (i * 7) as u8));
    let mut response = [0u8; 8 + PAYLOAD_BYTES];
    for seq in 1..=REQUESTS {
        stream_for_window.write_all(&request).unwrap();
        stream_for_window.read_exact(&mut response).unwrap();
        assert_eq!(&response[4..8], &(seq as u32).to_be_bytes());
        assert_eq!(&response[8..], &request[4..]);
    }
    let after = server.snapshot();
    after.since(&before)
}

fn nonzero_calls(report: &ServerReport) -> BTreeMap<&'static str, u64> {
    report
        .total
        .syscalls
        .calls
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.name(), n))
        .collect()
}

fn check_variant(variant: &str) {
    let window = measure(variant);
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (kind, per_request) in derived_per_request(variant) {
        *expected.entry(kind).or_default() += per_request * REQUESTS;
    }
    for (kind, n) in snapshot_cost(variant) {
        *expected.entry(kind).or_default() += n;
    }
    let measured = nonzero_calls(&window);
    let per_request: BTreeMap<&str, f64> = measured
        .iter()
        .map(|(k, n)| (*k, *n as f64 / REQUESTS as f64))
        .collect();
    println!("{variant}: measured per request {per_request:?}");
    assert_eq!(
        measured, expected,
        "{variant}: measured syscalls over {REQUESTS} requests differ from the derivation"
    );

    let payload = REQUESTS * PAYLOAD_BYTES as u64;
    let t = &window.total;
    assert_eq!(t.counters.requests_parsed, REQUESTS);
    assert_eq!(t.counters.header_bytes_in, 4 * REQUESTS);
    assert_eq!(t.counters.header_bytes_out, 8 * REQUESTS);
    let copies_payload = !variant.contains("splice");
    let want = if copies_payload { payload } else { 0 };
    assert_eq!(
        t.payload_copy_bytes_in(),
        want,
        "{variant}: payload bytes copied in"
    );
    assert_eq!(
        t.payload_copy_bytes_out(),
        want,
        "{variant}: payload bytes copied out"
    );
    assert_eq!(t.counters.bytes_in, payload + 4 * REQUESTS);
    assert_eq!(t.counters.bytes_out, payload + 8 * REQUESTS);
}

/// The README's derived-vs-measured table shows, per variant, the calls
/// per request by kind and their total. The tests above assert measured =
/// derived exactly, so the table must equal the derivation: checked here,
/// so the README cannot drift from the code.
#[test]
fn readme_table_is_the_derivation() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### Syscalls per request, derived vs measured")
        .nth(1)
        .expect("the README's derived-vs-measured section")
        .split("\n## ")
        .next()
        .unwrap();
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    let header: Vec<&str> = cells(lines.next().expect("a header row"));
    assert_eq!(header.first(), Some(&"variant"));
    assert_eq!(&header[header.len() - 2..], ["total", "derived"]);
    let kinds = &header[1..header.len() - 2];
    let mut variants_seen = Vec::new();
    for line in lines.filter(|l| l.contains('`')) {
        let row = cells(line);
        let variant = row[0].trim_matches('`');
        let derived = derived_per_request(variant);
        let number = |text: &str| -> f64 {
            if text.is_empty() {
                0.0
            } else {
                text.parse()
                    .unwrap_or_else(|_| panic!("{variant}: `{text}` is not a number"))
            }
        };
        for (kind, text) in kinds.iter().zip(&row[1..]) {
            let want = derived.get(kind).copied().unwrap_or(0) as f64;
            assert_eq!(number(text), want, "README {variant} {kind}");
        }
        let total: u64 = derived.values().sum();
        assert_eq!(
            number(row[row.len() - 2]),
            total as f64,
            "README {variant} total"
        );
        assert_eq!(
            number(row[row.len() - 1]),
            total as f64,
            "README {variant} derived"
        );
        // Every kind the derivation names has a column.
        for kind in derived.keys() {
            assert!(kinds.contains(kind), "README table lacks a {kind} column");
        }
        variants_seen.push(variant.to_string());
    }
    let all: Vec<String> = epoll_bench::server::Variant::ALL
        .iter()
        .map(|v| v.to_string())
        .collect();
    assert_eq!(variants_seen, all, "README rows, in the variants' order");
}

fn cells(line: &str) -> Vec<&str> {
    line.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

/// One test per variant, from the server's one list.
macro_rules! accounting_tests {
    ($($test:ident => $variant:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                if support::unavailable_here(&$variant.name()) {
                    return;
                }
                check_variant(&$variant.name());
            }
        )*
    };
}

epoll_bench::for_each_variant!(accounting_tests);
