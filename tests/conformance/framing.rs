//! Cases about message boundaries: bytes split across reads, deep
//! pipelining, a frame far larger than the buffer, empty messages, and
//! random garbage checked against a model of the frame protocol.

use std::io::Write;
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

use epoll_bench::protocol::{DEFAULT_MAX_FRAME_BYTES, Protocol, request_header, response_header};
use rand::RngExt;

use crate::support::*;

use crate::case::*;

/// Case 1. Two messages sent one byte per `write()` with TCP_NODELAY,
/// pausing after each header byte and every 8 bytes so they travel as many
/// segments and the server sees them split across reads (frame: the header
/// itself arrives in four pieces). Echo: the same bytes, echoed exactly.
pub(crate) fn one_byte_per_write(ctx: &Ctx) -> Outcome {
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
pub(crate) fn pipelined_ten_thousand(ctx: &Ctx) -> Outcome {
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
pub(crate) fn four_mib_frame(ctx: &Ctx) -> Outcome {
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
pub(crate) fn zero_length(ctx: &Ctx) -> Outcome {
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
        Protocol::File => unreachable!("the file protocol has its own conformance cases"),
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

/// What a frame server must answer to `bytes` followed by EOF: the
/// responses of the complete frames, and whether the stream breaks the
/// protocol (an oversized `len`, or EOF inside a frame).
pub(crate) fn frame_model(bytes: &[u8], max_frame: u32) -> (Vec<u8>, bool) {
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
pub(crate) fn random_garbage(ctx: &Ctx) -> Outcome {
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
            Protocol::File => unreachable!("the file protocol has its own conformance cases"),
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
