//! A small blocking client of the file protocol that verifies every byte
//! it gets against the served file's position-derived bytes
//! (`protocol::file::first_mismatch`), so a test never holds a whole
//! response.

#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::TcpStream;

use epoll_bench::protocol::file::{FileRequest, first_mismatch};
use epoll_bench::protocol::{RESPONSE_HEADER_BYTES, parse_response_header};

/// The 12 bytes asking for `len_bytes` of the file at `offset_bytes`.
pub fn file_request(len_bytes: u32, offset_bytes: u64) -> [u8; 12] {
    FileRequest {
        len_bytes,
        offset_bytes,
    }
    .encode()
}

/// Reads exactly `buf.len()` bytes, naming what it was reading on failure.
pub fn read_full(stream: &mut TcpStream, buf: &mut [u8], what: &str) {
    let mut have = 0;
    while have < buf.len() {
        match stream.read(&mut buf[have..]) {
            Ok(0) => panic!("{what}: EOF after {have} of {} bytes", buf.len()),
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: read failed after {have} bytes: {e}"),
        }
    }
}

/// Reads one response and checks its header (`len`, `seq`) and every
/// payload byte, `chunk_bytes` at a time.
pub fn read_file_response(
    stream: &mut TcpStream,
    seq: u32,
    len_bytes: u32,
    offset_bytes: u64,
    chunk_bytes: usize,
    what: &str,
) {
    let mut header = [0u8; RESPONSE_HEADER_BYTES];
    read_full(
        stream,
        &mut header,
        &format!("{what}: header of response {seq}"),
    );
    assert_eq!(
        parse_response_header(&header),
        (len_bytes, seq),
        "{what}: header of response {seq}"
    );
    let mut buf = vec![0u8; chunk_bytes.max(1)];
    let mut got = 0u64;
    while got < u64::from(len_bytes) {
        let want = buf.len().min((u64::from(len_bytes) - got) as usize);
        let n = match stream.read(&mut buf[..want]) {
            Ok(0) => panic!("{what}: EOF at byte {got} of response {seq} ({len_bytes} B)"),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("{what}: read at byte {got} of response {seq}: {e}"),
        };
        if let Some(at) = first_mismatch(offset_bytes + got, &buf[..n]) {
            panic!(
                "{what}: response {seq} differs from the file at payload byte {} (file offset {})",
                got + at as u64,
                offset_bytes + got + at as u64
            );
        }
        got += n as u64;
    }
}

/// One request, its response checked.
pub fn file_round_trip(
    stream: &mut TcpStream,
    seq: u32,
    len_bytes: u32,
    offset_bytes: u64,
    what: &str,
) {
    stream
        .write_all(&file_request(len_bytes, offset_bytes))
        .unwrap_or_else(|e| panic!("{what}: write request {seq}: {e}"));
    read_file_response(stream, seq, len_bytes, offset_bytes, 64 << 10, what);
}
