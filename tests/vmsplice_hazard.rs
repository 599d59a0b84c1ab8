//! The page-reuse hazard behind the vmsplice strategy, shown on this
//! kernel, and the strategy shown free of it.
//!
//! vmsplice (no `SPLICE_F_GIFT`) puts references to user pages into a
//! pipe; splicing the pipe into a TCP socket attaches those same pages to
//! the socket's buffers, and on loopback the receiver queues them until it
//! reads. The first test rewrites a buffer as soon as the splice into the
//! socket has returned (the pipe drained) and finds the client receiving
//! the rewritten bytes: draining the pipe does not free the buffer. The
//! second does the same with a fresh mapping per round, unmapping the old
//! one instead of rewriting it (the strategy's scheme), and every byte
//! arrives. The third runs the servers themselves with pipelined and bulk
//! traffic through the smallest buffer and pipe, against a slow reader,
//! and checks every byte.

mod support;

use std::io::{IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::thread;
use std::time::Duration;

use epoll_bench::protocol::Protocol;
use epoll_bench::sys;
use epoll_bench::sys::pipe::Pipe;
use epoll_bench::sys::vmsplice::{Mapping, page_size_bytes};

const ROUNDS: usize = 48;
const ROUND_BYTES: usize = 16 << 10;

/// Sends `ROUNDS` rounds of `ROUND_BYTES`, round `r` all bytes `r`, each
/// vmspliced from the buffer `buffer_for(r)` returns and spliced into the
/// socket until the pipe is empty, then `after_round` runs on it. The
/// client reads only once everything is sent (all of it fits the socket
/// buffers), so every round's pages still sit in its receive queue when
/// the next round runs. Returns the bytes that differ from what was sent.
fn send_rounds(
    mut buffer_for: impl FnMut(usize) -> Mapping,
    mut after_round: impl FnMut(Mapping) -> Option<Mapping>,
) -> usize {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let (server, _) = listener.accept().unwrap();
    server
        .set_write_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let pipe = Pipe::with_capacity(ROUND_BYTES).unwrap();
    let mut kept = None;
    // The socket buffers take every round on loopback; should they not,
    // the splice would wait for a reader that only reads at the end.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    for round in 0..ROUNDS {
        let mut buffer = kept.take().unwrap_or_else(|| buffer_for(round));
        buffer.bytes_mut()[..ROUND_BYTES].fill(round as u8);
        let mut sent = 0;
        while sent < ROUND_BYTES {
            let piece = [IoSlice::new(&buffer.bytes()[sent..ROUND_BYTES])];
            let n = sys::vmsplice::vmsplice(pipe.write_end.as_fd(), &piece).unwrap();
            let mut out = 0;
            while out < n {
                match sys::io::splice(pipe.read_end.as_fd(), server.as_fd(), n - out) {
                    Ok(m) => out += m,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "round {round}: the socket buffers filled before the client read"
                        );
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(e) => panic!("splice into the socket: {e}"),
                }
            }
            sent += n;
        }
        kept = after_round(buffer);
    }
    let mut got = vec![0u8; ROUNDS * ROUND_BYTES];
    client.read_exact(&mut got).unwrap();
    got.chunks(ROUND_BYTES)
        .enumerate()
        .map(|(round, bytes)| bytes.iter().filter(|&&b| b != round as u8).count())
        .sum()
}

fn fresh_buffer() -> Mapping {
    let page = page_size_bytes();
    Mapping::new(ROUND_BYTES.div_ceil(page) * page).unwrap()
}

#[test]
fn rewriting_a_buffer_after_the_pipe_drained_corrupts_what_the_client_reads() {
    // One buffer for every round: rewritten as soon as its splice returned.
    let corrupted = send_rounds(|_| fresh_buffer(), Some);
    println!(
        "reuse after drain: {corrupted} of {} bytes corrupted",
        ROUNDS * ROUND_BYTES
    );
    assert!(
        corrupted > 0,
        "this kernel copied the spliced pages: a buffer reused after the pipe drained \
         delivered the right bytes (the vmsplice strategy stays safe either way)"
    );
}

#[test]
fn a_fresh_mapping_per_round_delivers_every_byte() {
    // The strategy's scheme: never rewrite, unmap (the kernel keeps the
    // pages) and map anew.
    let corrupted = send_rounds(
        |_| fresh_buffer(),
        |old| {
            drop(old);
            None
        },
    );
    assert_eq!(corrupted, 0, "bytes corrupted with fresh mappings");
}

/// The vmsplice servers under pipelined frames (many small and a few
/// large, one write) and an echo bulk stream, with a 4 KiB buffer and
/// pipe, so chunks and pipe turn over constantly, read by a client that
/// pauses: every response byte and `seq` is checked.
#[test]
fn servers_deliver_every_byte_to_a_slow_reader_through_small_buffers() {
    for variant in ["lt-vmsplice", "et-vmsplice"] {
        for protocol in [Protocol::Frame, Protocol::Echo] {
            let server = support::ServerProcess::start(
                variant,
                protocol,
                &["--buffer-size", "4KiB", "--pipe-size", "4KiB"],
            );
            let stream = TcpStream::connect(server.addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let (request, expected) = traffic(protocol);
            let mut writer = stream.try_clone().unwrap();
            let writing = thread::spawn(move || writer.write_all(&request).unwrap());
            let mut reader = stream;
            let mut got = vec![0u8; expected.len()];
            let mut at = 0;
            while at < got.len() {
                let end = (at + 4096).min(got.len());
                let n = reader.read(&mut got[at..end]).unwrap();
                assert!(n > 0, "{variant} {protocol:?}: EOF after {at} bytes");
                at += n;
                if at % (64 << 10) < n {
                    thread::sleep(Duration::from_millis(2));
                }
            }
            writing.join().unwrap();
            if let Some(i) = got.iter().zip(&expected).position(|(a, b)| a != b) {
                panic!("{variant} {protocol:?}: response byte {i} differs");
            }
        }
    }
}

/// The request stream and the responses it must produce: frame, 600
/// pipelined frames of 0 to 300 bytes and 4 of 100 KiB; echo, 1 MiB.
fn traffic(protocol: Protocol) -> (Vec<u8>, Vec<u8>) {
    let byte = |i: usize| (i.wrapping_mul(131) ^ (i >> 7)) as u8;
    match protocol {
        Protocol::Echo => {
            let bytes: Vec<u8> = (0..1 << 20).map(byte).collect();
            (bytes.clone(), bytes)
        }
        _ => {
            let sizes = (0..600usize).map(|i| (i * 37) % 301).chain([100 << 10; 4]);
            let (mut request, mut expected) = (Vec::new(), Vec::new());
            for (seq, len) in sizes.enumerate() {
                let payload: Vec<u8> = (0..len).map(|i| byte(i + seq)).collect();
                request.extend_from_slice(&(len as u32).to_be_bytes());
                request.extend_from_slice(&payload);
                expected.extend_from_slice(&(len as u32).to_be_bytes());
                expected.extend_from_slice(&(seq as u32).to_be_bytes());
                expected.extend_from_slice(&payload);
            }
            (request, expected)
        }
    }
}
