//! Exact syscall accounting for the file protocol: one connection,
//! closed-loop ping-pong of 4 KiB responses. What one request costs is
//! derived by hand from the code (`src/server/copy/file/`), and the
//! server's own counts over N requests must equal N times that plus the
//! closing snapshot's fixed cost; also which strategies copy payload
//! through user space.

mod support;

#[path = "support/file_client.rs"]
mod file_client;

use std::collections::BTreeMap;
use std::time::Duration;

use epoll_bench::protocol::Protocol;
use epoll_bench::server::{ServerReport, Variant};

use file_client::file_round_trip;
use support::ServerProcess;

const REQUESTS: u64 = 1_000;
const RESPONSE_BYTES: u32 = 4096;

/// Syscalls one request costs, by kind: one `epoll_wait` wake-up, then
/// - the request side (`copy/file/mod.rs`): one `read()` of up to 4 KiB
///   gets the 12-byte request; LT and ET with short-read stop stop there
///   (a short read at a request boundary), ET reads again and gets EAGAIN.
/// - the response (one call per `write_once`, until the queue is empty,
///   which costs no call): rw `pread64`s the 4 KiB into the buffer behind
///   the header and `write`s both at once (`file/rw.rs`); mmap `writev`s
///   header and payload from the mapping (`file/mmap.rs`); sendfile
///   `write`s the header and `sendfile`s the payload (`file/sendfile.rs`);
///   splice `write`s the header, splices file → pipe, then pipe → socket
///   (`file/splice.rs`).
///
/// The send buffer always has room for 4 KiB in ping-pong, so no write is
/// short and no `epoll_ctl` is needed.
fn derived_per_request(variant: &str) -> BTreeMap<&'static str, u64> {
    let request_reads = if variant.starts_with("et-") && !variant.ends_with("-shortread") {
        2
    } else {
        1
    };
    let response: &[(&'static str, u64)] = match variant.split('-').nth(1) {
        Some("rw") => &[("pread64", 1), ("write", 1)],
        Some("mmap") => &[("writev", 1)],
        Some("sendfile") => &[("write", 1), ("sendfile", 1)],
        Some("splice") => &[("write", 1), ("splice", 2)],
        _ => panic!("no file-protocol derivation for {variant}"),
    };
    let mut counts: BTreeMap<&'static str, u64> =
        [("epoll_wait", 1), ("read", request_reads)].into();
    counts.extend(response.iter().copied());
    counts
}

/// The closing snapshot: its wake-up, draining the eventfd, getrusage.
const SNAPSHOT_COST: [(&str, u64); 3] = [("epoll_wait", 1), ("read", 1), ("getrusage", 1)];

/// Ping-pong over exactly the measured requests (one warm-up request
/// first, so connection set-up is outside the window). Offsets walk the
/// file so different requests read different pages.
fn measure(variant: &str) -> ServerReport {
    let server = ServerProcess::start(variant, Protocol::File, &[]);
    let mut stream = support::connect(server.addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let what = format!("{variant} file ping-pong");
    file_round_trip(&mut stream, 0, RESPONSE_BYTES, 0, &what);
    let before = server.snapshot();
    for seq in 1..=REQUESTS as u32 {
        let offset = u64::from(seq) * 12_289;
        file_round_trip(&mut stream, seq, RESPONSE_BYTES, offset, &what);
    }
    server.snapshot().since(&before)
}

fn check_variant(variant: &str) {
    let window = measure(variant);
    let mut expected: BTreeMap<&str, u64> = BTreeMap::new();
    for (kind, per_request) in derived_per_request(variant) {
        *expected.entry(kind).or_default() += per_request * REQUESTS;
    }
    for (kind, n) in SNAPSHOT_COST {
        *expected.entry(kind).or_default() += n;
    }
    let measured: BTreeMap<&str, u64> = window
        .total
        .syscalls
        .calls
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.name(), n))
        .collect();
    assert_eq!(
        measured, expected,
        "{variant}: measured syscalls over {REQUESTS} file requests differ from the derivation"
    );

    let payload = REQUESTS * u64::from(RESPONSE_BYTES);
    let t = &window.total;
    assert_eq!(t.counters.requests_parsed, REQUESTS);
    assert_eq!(t.counters.header_bytes_in, 12 * REQUESTS);
    assert_eq!(t.counters.header_bytes_out, 8 * REQUESTS);
    assert_eq!(t.counters.bytes_in, 12 * REQUESTS);
    assert_eq!(t.counters.bytes_out, payload + 8 * REQUESTS);
    // rw copies the payload in (pread) and out (write); mmap only out (the
    // kernel copies from the mapped pages into the socket, as from any
    // user memory); sendfile and splice never touch it in user space.
    let (copied_in, copied_out) = match variant.split('-').nth(1) {
        Some("rw") => (payload, payload),
        Some("mmap") => (0, payload),
        _ => (0, 0),
    };
    assert_eq!(t.payload_copy_bytes_in(), copied_in, "{variant}: copied in");
    assert_eq!(
        t.payload_copy_bytes_out(),
        copied_out,
        "{variant}: copied out"
    );
}

/// The README's file-protocol table must be the derivation, row by row,
/// one row per variant serving the file protocol, in the variants' order.
#[test]
fn readme_file_table_is_the_derivation() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    let section = readme
        .split("### File protocol: syscalls per request, derived vs measured")
        .nth(1)
        .expect("the README's file-protocol accounting section")
        .split("\n#")
        .next()
        .unwrap();
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    let cells = |line: &str| -> Vec<String> {
        line.trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(lines.next().expect("a header row"));
    assert_eq!(header.first().map(String::as_str), Some("variant"));
    let kinds = &header[1..header.len() - 1];
    assert_eq!(header.last().map(String::as_str), Some("total"));
    let mut seen = Vec::new();
    for line in lines.filter(|l| l.contains('`')) {
        let row = cells(line);
        let variant = row[0].trim_matches('`').to_string();
        let derived = derived_per_request(&variant);
        for (kind, text) in kinds.iter().zip(&row[1..]) {
            let want = derived.get(kind.as_str()).copied().unwrap_or(0);
            let got: u64 = if text.is_empty() {
                0
            } else {
                text.parse().unwrap()
            };
            assert_eq!(got, want, "README {variant} {kind}");
        }
        for kind in derived.keys() {
            assert!(
                kinds.iter().any(|k| k == kind),
                "README lacks a {kind} column"
            );
        }
        let total: u64 = derived.values().sum();
        assert_eq!(
            row[row.len() - 1],
            total.to_string(),
            "README {variant} total"
        );
        seen.push(variant);
    }
    let serving: Vec<String> = Variant::ALL
        .iter()
        .filter(|v| v.serves(Protocol::File))
        .map(Variant::name)
        .collect();
    assert_eq!(seen, serving, "README rows, in the variants' order");
}

/// One test per variant; those that do not serve the file protocol say so.
macro_rules! file_accounting_tests {
    ($($test:ident => $variant:expr),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                let variant: Variant = $variant;
                if !variant.serves(Protocol::File) {
                    eprintln!("skipped: {variant} does not serve --protocol file");
                    return;
                }
                if support::unavailable_here(&variant.name()) {
                    return;
                }
                check_variant(&variant.name());
            }
        )*
    };
}

epoll_bench::for_each_variant!(file_accounting_tests);
