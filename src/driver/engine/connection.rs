//! One driver connection's requests: writing them with gathered `writev`
//! straight from the payload block, and checking every response byte in
//! place in the thread's read buffer.
//!
//! Nothing here allocates per request: requests live in a `VecDeque` that
//! keeps its capacity, headers are built into the request itself, payload
//! bytes are never copied on the way out and compared where they landed on
//! the way in.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use crate::driver::payload::PayloadSource;
use crate::protocol::{
    Protocol, REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES, parse_response_header, request_header,
};
use crate::sys;

/// iovecs per `writev`: enough for 16 pipelined small frames or 4 MiB of
/// one large payload (64 KiB per slice), without a heap-allocated array.
const MAX_IOVECS: usize = 64;

/// One request the driver has issued and not yet seen answered.
#[derive(Clone, Copy, Debug)]
pub(super) struct Request {
    /// The request's index on its connection slot: with the slot's payload
    /// id, it selects the payload bytes.
    pub index: u64,
    pub size_bytes: u32,
    /// When the request was (meant to be) sent, in ns since the run's
    /// base instant: latency is measured from here.
    pub issued_ns: u64,
    header: [u8; REQUEST_HEADER_BYTES],
}

/// What the connection tells its owner while parsing responses.
pub(super) trait ResponseSink {
    /// A response arrived complete (whether or not its bytes were right).
    fn completed(&mut self, request: &Request, now_ns: u64);
    /// A response's payload differed from the request's (counted once per
    /// response).
    fn payload_mismatch(&mut self);
}

/// A response stream the driver cannot make sense of any more: the
/// connection must be closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Violation {
    /// A frame header whose `len` or `seq` was not the expected one.
    Header,
    /// Bytes for which no request had been written (an extra response, or
    /// an echo of bytes never sent).
    UnsolicitedBytes,
}

/// The outcome of trying to write what is pending.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteProgress {
    /// Everything issued is in the kernel.
    AllWritten,
    /// The socket buffer is full; wait for it to become writable.
    Blocked,
}

#[derive(Debug)]
pub(super) struct Connection {
    /// Which payload stream this connection's requests use.
    pub payload_id: u32,
    protocol: Protocol,
    /// Issued, not yet completed, oldest first.
    in_flight: VecDeque<Request>,
    /// `in_flight[..fully_written]` are entirely in the kernel.
    fully_written: usize,
    /// Bytes (header included) of `in_flight[fully_written]` already written.
    partial_written_bytes: u64,
    /// Payload bytes of all requests in flight, for window-limited shapes.
    in_flight_payload_bytes: u64,
    next_index: u64,
    /// Request index whose response carries `seq` 0 on the current socket.
    seq_base: u64,
    response_header: [u8; RESPONSE_HEADER_BYTES],
    response_header_got: usize,
    response_payload_got: u64,
    response_payload_bad: bool,
}

impl Connection {
    pub fn new(payload_id: u32, protocol: Protocol, expected_depth: usize) -> Connection {
        Connection {
            payload_id,
            protocol,
            in_flight: VecDeque::with_capacity(expected_depth),
            fully_written: 0,
            partial_written_bytes: 0,
            in_flight_payload_bytes: 0,
            next_index: 0,
            seq_base: 0,
            response_header: [0; RESPONSE_HEADER_BYTES],
            response_header_got: 0,
            response_payload_got: 0,
            response_payload_bad: false,
        }
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn in_flight_payload_bytes(&self) -> u64 {
        self.in_flight_payload_bytes
    }

    pub fn has_unwritten(&self) -> bool {
        self.fully_written < self.in_flight.len()
    }

    /// Forgets every request in flight and starts a fresh socket: the next
    /// response is expected with `seq` 0. Request indexes keep counting, so
    /// payloads never repeat across reconnections of a slot.
    pub fn reset_for_new_socket(&mut self) {
        self.in_flight.clear();
        self.fully_written = 0;
        self.partial_written_bytes = 0;
        self.in_flight_payload_bytes = 0;
        self.seq_base = self.next_index;
        self.response_header_got = 0;
        self.response_payload_got = 0;
        self.response_payload_bad = false;
    }

    /// Queues a request of `size_bytes` (sent by the next [`Self::write_pending`]).
    pub fn issue(&mut self, size_bytes: u32, issued_ns: u64) {
        self.in_flight.push_back(Request {
            index: self.next_index,
            size_bytes,
            issued_ns,
            header: request_header(size_bytes),
        });
        self.next_index += 1;
        self.in_flight_payload_bytes += u64::from(size_bytes);
    }

    fn header_bytes(&self) -> u64 {
        match self.protocol {
            Protocol::Frame => REQUEST_HEADER_BYTES as u64,
            Protocol::Echo => 0,
            Protocol::File => crate::protocol::file::FILE_REQUEST_BYTES as u64,
        }
    }

    /// Writes as much of the issued requests as the socket takes, gathering
    /// headers and payload slices of several requests into each `writev`.
    pub fn write_pending(
        &mut self,
        fd: BorrowedFd<'_>,
        payload: &PayloadSource,
    ) -> io::Result<WriteProgress> {
        let header_bytes = self.header_bytes();
        while self.has_unwritten() {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            let mut offered: u64 = 0;
            let mut written_of_this = self.partial_written_bytes;
            'requests: for request in self.in_flight.iter().skip(self.fully_written) {
                if written_of_this < header_bytes {
                    if count == MAX_IOVECS {
                        break;
                    }
                    let header = &request.header[written_of_this as usize..];
                    slices[count] = IoSlice::new(header);
                    count += 1;
                    offered += header.len() as u64;
                    written_of_this = header_bytes;
                }
                let size = u64::from(request.size_bytes);
                let mut at = written_of_this - header_bytes;
                let start = payload.request_offset(self.payload_id, request.index);
                while at < size {
                    if count == MAX_IOVECS {
                        break 'requests;
                    }
                    let remaining = usize::try_from(size - at).unwrap_or(usize::MAX);
                    // Offsets only matter modulo the block length.
                    let slice = payload.slice_at(start.wrapping_add(at as usize), remaining);
                    slices[count] = IoSlice::new(slice);
                    count += 1;
                    offered += slice.len() as u64;
                    at += slice.len() as u64;
                }
                written_of_this = 0;
            }
            if count == 0 {
                // Only empty echo requests are left: nothing to send.
                self.advance_written(0, header_bytes);
                continue;
            }
            let written = match sys::io::writev(fd, &slices[..count]) {
                Ok(n) => n as u64,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(WriteProgress::Blocked);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.advance_written(written, header_bytes);
            if written < offered {
                // A short write on a non-blocking TCP socket means its send
                // buffer is full: an EPOLLOUT edge follows when it drains.
                return Ok(WriteProgress::Blocked);
            }
        }
        Ok(WriteProgress::AllWritten)
    }

    fn advance_written(&mut self, mut written: u64, header_bytes: u64) {
        while let Some(request) = self.in_flight.get(self.fully_written) {
            let left = header_bytes + u64::from(request.size_bytes) - self.partial_written_bytes;
            if written >= left {
                written -= left;
                self.fully_written += 1;
                self.partial_written_bytes = 0;
            } else {
                self.partial_written_bytes += written;
                break;
            }
        }
    }

    /// Payload bytes of the oldest request that are already written.
    fn front_payload_written(&self) -> u64 {
        let front = &self.in_flight[0];
        if self.fully_written > 0 {
            u64::from(front.size_bytes)
        } else {
            self.partial_written_bytes
                .saturating_sub(self.header_bytes())
        }
    }

    /// Checks `data`, the next bytes of the response stream, against what
    /// was sent; reports completions and payload mismatches to `sink`.
    pub fn on_response_bytes(
        &mut self,
        mut data: &[u8],
        payload: &PayloadSource,
        now_ns: u64,
        sink: &mut impl ResponseSink,
    ) -> Result<(), Violation> {
        while !data.is_empty() {
            let Some(front) = self.in_flight.front().copied() else {
                return Err(Violation::UnsolicitedBytes);
            };
            if self.protocol == Protocol::Frame && self.response_header_got < RESPONSE_HEADER_BYTES
            {
                let take = (RESPONSE_HEADER_BYTES - self.response_header_got).min(data.len());
                self.response_header[self.response_header_got..self.response_header_got + take]
                    .copy_from_slice(&data[..take]);
                self.response_header_got += take;
                data = &data[take..];
                if self.response_header_got < RESPONSE_HEADER_BYTES {
                    return Ok(());
                }
                if self.fully_written == 0 && self.partial_written_bytes < self.header_bytes() {
                    return Err(Violation::UnsolicitedBytes);
                }
                let (len, seq) = parse_response_header(&self.response_header);
                let expected_seq = (front.index - self.seq_base) as u32;
                if len != front.size_bytes || seq != expected_seq {
                    return Err(Violation::Header);
                }
            }
            let size = u64::from(front.size_bytes);
            let want = size - self.response_payload_got;
            let take = usize::try_from(want).unwrap_or(usize::MAX).min(data.len());
            if self.response_payload_got + take as u64 > self.front_payload_written() {
                return Err(Violation::UnsolicitedBytes);
            }
            if !self.response_payload_bad
                && payload
                    .verify(
                        self.payload_id,
                        front.index,
                        self.response_payload_got,
                        &data[..take],
                    )
                    .is_some()
            {
                self.response_payload_bad = true;
                sink.payload_mismatch();
            }
            self.response_payload_got += take as u64;
            data = &data[take..];
            if self.response_payload_got == size {
                sink.completed(&front, now_ns);
                self.in_flight.pop_front();
                self.fully_written -= 1;
                self.in_flight_payload_bytes -= size;
                self.response_header_got = 0;
                self.response_payload_got = 0;
                self.response_payload_bad = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
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

    fn frame_response(
        payload: &PayloadSource,
        conn: u32,
        index: u64,
        seq: u32,
        len: u32,
    ) -> Vec<u8> {
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
            conn.issue(size, 0);
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
            conn.issue(size, 0);
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
        conn.issue(8, 0);
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
}
