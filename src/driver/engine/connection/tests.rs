//! The connection's request writing and response checking, on a socket
//! pair and hand-built response streams.

use super::*;

#[derive(Default)]
struct Recorder {
    completed: Vec<(u64, u32)>,
    mismatches: u64,
}

impl ResponseSink for Recorder {
    fn completed(&mut self, request: &Request, _now_ns: u64) {
        self.completed.push((request.index, request.size_bytes));
    }
    fn payload_mismatch(&mut self) {
        self.mismatches += 1;
    }
}

/// A connected pair with the driver end non-blocking.
fn pair() -> (
    std::os::unix::net::UnixStream,
    std::os::unix::net::UnixStream,
) {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    (a, b)
}

fn frame_response(payload: &PayloadSource, conn: u32, index: u64, seq: u32, len: u32) -> Vec<u8> {
    let mut out = crate::protocol::response_header(len, seq).to_vec();
    let mut body = vec![0u8; len as usize];
    payload.fill(conn, index, 0, &mut body);
    out.extend_from_slice(&body);
    out
}

#[test]
fn frame_requests_go_out_gathered_and_responses_verify_byte_by_byte() {
    use std::io::Read;
    use std::os::fd::AsFd;
    let payload = PayloadSource::new(7);
    let (driver, mut peer) = pair();
    let mut conn = Connection::new(3, Protocol::Frame, 4);
    for size in [5u32, 70_000, 1] {
        conn.issue(size, 0, &payload);
    }
    // The peer reads concurrently so that large writes can finish.
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 8192];
        while all.len() < 3 * 4 + 5 + 70_000 + 1 {
            let n = peer.read(&mut buf).unwrap();
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    while conn.write_pending(driver.as_fd(), &payload).unwrap() == WriteProgress::Blocked {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let sent = reader.join().unwrap();
    let mut expected = Vec::new();
    for (index, size) in [(0u64, 5u32), (1, 70_000), (2, 1)] {
        expected.extend_from_slice(&size.to_be_bytes());
        let mut body = vec![0u8; size as usize];
        payload.fill(3, index, 0, &mut body);
        expected.extend_from_slice(&body);
    }
    assert_eq!(sent, expected);

    let mut stream = Vec::new();
    for (index, size) in [(0u64, 5u32), (1, 70_000), (2, 1)] {
        stream.extend(frame_response(&payload, 3, index, index as u32, size));
    }
    let mut sink = Recorder::default();
    // One byte at a time: headers and payloads split anywhere.
    for byte in stream.chunks(1) {
        conn.on_response_bytes(byte, &payload, 0, &mut sink)
            .unwrap();
    }
    assert_eq!(sink.completed, vec![(0, 5), (1, 70_000), (2, 1)]);
    assert_eq!(sink.mismatches, 0);
    assert_eq!(conn.in_flight(), 0);
}

fn written_connection(protocol: Protocol, sizes: &[u32]) -> (Connection, PayloadSource) {
    use std::os::fd::AsFd;
    let payload = PayloadSource::new(1);
    let (driver, _peer) = pair();
    let mut conn = Connection::new(0, protocol, 4);
    for &size in sizes {
        conn.issue(size, 0, &payload);
    }
    assert_eq!(
        conn.write_pending(driver.as_fd(), &payload).unwrap(),
        WriteProgress::AllWritten
    );
    (conn, payload)
}

#[test]
fn a_flipped_payload_byte_counts_one_mismatch_and_the_stream_goes_on() {
    let (mut conn, payload) = written_connection(Protocol::Frame, &[100, 100]);
    let mut first = frame_response(&payload, 0, 0, 0, 100);
    first[8 + 50] ^= 0x10;
    first[8 + 60] ^= 0x10;
    let second = frame_response(&payload, 0, 1, 1, 100);
    let mut sink = Recorder::default();
    conn.on_response_bytes(&first, &payload, 0, &mut sink)
        .unwrap();
    conn.on_response_bytes(&second, &payload, 0, &mut sink)
        .unwrap();
    assert_eq!(sink.mismatches, 1);
    assert_eq!(sink.completed.len(), 2);
}

#[test]
fn wrong_seq_wrong_len_and_extra_responses_are_violations() {
    let (mut conn, payload) = written_connection(Protocol::Frame, &[10]);
    let wrong_seq = frame_response(&payload, 0, 0, 1, 10);
    let mut sink = Recorder::default();
    assert_eq!(
        conn.on_response_bytes(&wrong_seq, &payload, 0, &mut sink),
        Err(Violation::Header)
    );
    let (mut conn, payload) = written_connection(Protocol::Frame, &[10]);
    let wrong_len = frame_response(&payload, 0, 0, 0, 11);
    assert_eq!(
        conn.on_response_bytes(&wrong_len, &payload, 0, &mut sink),
        Err(Violation::Header)
    );
    let (mut conn, payload) = written_connection(Protocol::Frame, &[10]);
    let mut twice = frame_response(&payload, 0, 0, 0, 10);
    twice.extend(frame_response(&payload, 0, 0, 0, 10));
    assert_eq!(
        conn.on_response_bytes(&twice, &payload, 0, &mut sink),
        Err(Violation::UnsolicitedBytes)
    );
    assert_eq!(sink.completed.len(), 1);
}

#[test]
fn echo_checks_bytes_in_order_and_rejects_bytes_never_sent() {
    let (mut conn, payload) = written_connection(Protocol::Echo, &[3, 4]);
    let mut stream = [0u8; 7];
    payload.fill(0, 0, 0, &mut stream[..3]);
    payload.fill(0, 1, 0, &mut stream[3..]);
    let mut sink = Recorder::default();
    conn.on_response_bytes(&stream[..5], &payload, 0, &mut sink)
        .unwrap();
    conn.on_response_bytes(&stream[5..], &payload, 0, &mut sink)
        .unwrap();
    assert_eq!(sink.completed, vec![(0, 3), (1, 4)]);
    assert_eq!(sink.mismatches, 0);
    assert_eq!(
        conn.on_response_bytes(&[0], &payload, 0, &mut sink),
        Err(Violation::UnsolicitedBytes)
    );
}

#[test]
fn seq_restarts_at_zero_after_a_reconnect() {
    let (mut conn, payload) = written_connection(Protocol::Frame, &[8]);
    let mut sink = Recorder::default();
    conn.on_response_bytes(
        &frame_response(&payload, 0, 0, 0, 8),
        &payload,
        0,
        &mut sink,
    )
    .unwrap();
    conn.reset_for_new_socket();
    use std::os::fd::AsFd;
    let (driver, _peer) = pair();
    conn.issue(8, 0, &payload);
    conn.write_pending(driver.as_fd(), &payload).unwrap();
    conn.on_response_bytes(
        &frame_response(&payload, 0, 1, 0, 8),
        &payload,
        0,
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.completed, vec![(0, 8), (1, 8)]);
    assert_eq!(sink.mismatches, 0);
}

/// A file-protocol response as a correct server sends it.
fn file_response(offset: u64, seq: u32, len: u32) -> Vec<u8> {
    let mut out = crate::protocol::response_header(len, seq).to_vec();
    let mut body = vec![0u8; len as usize];
    crate::protocol::file::fill_served_file(offset, &mut body);
    out.extend_from_slice(&body);
    out
}

#[test]
fn file_requests_are_12_bytes_and_responses_verify_at_their_offsets() {
    use std::io::Read;
    let (mut conn, payload) = {
        let payload = PayloadSource::new(5);
        let mut conn = Connection::new(2, Protocol::File, 4);
        for size in [4096u32, 70_000, 1] {
            conn.issue(size, 0, &payload);
        }
        (conn, payload)
    };
    let (driver, mut peer) = pair();
    use std::os::fd::AsFd;
    assert_eq!(
        conn.write_pending(driver.as_fd(), &payload).unwrap(),
        WriteProgress::AllWritten
    );
    let mut sent = [0u8; 3 * FILE_REQUEST_BYTES];
    peer.read_exact(&mut sent).unwrap();
    let mut stream = Vec::new();
    for (index, (chunk, size)) in sent
        .chunks(FILE_REQUEST_BYTES)
        .zip([4096u32, 70_000, 1])
        .enumerate()
    {
        let request = FileRequest::decode(chunk.try_into().unwrap());
        assert_eq!(request.len_bytes, size);
        assert_eq!(
            request.offset_bytes,
            payload.file_offset(2, index as u64, size)
        );
        stream.extend(file_response(request.offset_bytes, index as u32, size));
    }
    let mut sink = Recorder::default();
    for byte in stream.chunks(7) {
        conn.on_response_bytes(byte, &payload, 0, &mut sink)
            .unwrap();
    }
    assert_eq!(sink.completed, vec![(0, 4096), (1, 70_000), (2, 1)]);
    assert_eq!(sink.mismatches, 0);

    // The right length from another range: one mismatch.
    conn.issue(64, 0, &payload);
    conn.write_pending(driver.as_fd(), &payload).unwrap();
    let offset = payload.file_offset(2, 3, 64);
    let shifted = file_response(offset + 8, 3, 64);
    conn.on_response_bytes(&shifted, &payload, 0, &mut sink)
        .unwrap();
    assert_eq!(sink.mismatches, 1);
}

#[test]
fn a_file_response_before_its_request_is_written_is_unsolicited() {
    let payload = PayloadSource::new(5);
    let mut conn = Connection::new(0, Protocol::File, 1);
    conn.issue(16, 0, &payload);
    let mut sink = Recorder::default();
    let response = file_response(payload.file_offset(0, 0, 16), 0, 16);
    assert_eq!(
        conn.on_response_bytes(&response, &payload, 0, &mut sink),
        Err(Violation::UnsolicitedBytes)
    );
}
