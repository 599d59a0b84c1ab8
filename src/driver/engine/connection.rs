//! One driver connection's requests: writing them with gathered `writev`
//! straight from the payload block, and checking every response byte in
//! place in the thread's read buffer.
//!
//! In the file protocol a request is 12 bytes naming a range of the served
//! file (no payload), and the response body is checked against the file's
//! position-derived bytes at that range, still in place: the engine copies
//! no more of a file response than of a frame response (only its header).
//!
//! Nothing here allocates per request: requests live in a `VecDeque` that
//! keeps its capacity, headers are built into the request itself, payload
//! bytes are never copied on the way out and compared where they landed on
//! the way in.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::os::fd::BorrowedFd;

use crate::driver::payload::PayloadSource;
use crate::protocol::file::{FILE_REQUEST_BYTES, FileRequest, first_mismatch};
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
    /// File protocol: where in the served file the response starts.
    pub file_offset_bytes: u64,
    /// The request's header as sent: the frame's 4-byte length, or the
    /// file protocol's whole 12-byte request (echo sends none).
    header: [u8; FILE_REQUEST_BYTES],
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
    /// Payload bytes of all requests in flight (file protocol: response
    /// body bytes asked for), for window-limited shapes.
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

    /// Queues a request of `size_bytes` (sent by the next
    /// [`Self::write_pending`]); a file-protocol request reads its range
    /// at the offset `payload` derives for it.
    pub fn issue(&mut self, size_bytes: u32, issued_ns: u64, payload: &PayloadSource) {
        let index = self.next_index;
        let mut header = [0u8; FILE_REQUEST_BYTES];
        let mut file_offset_bytes = 0;
        match self.protocol {
            Protocol::Frame => {
                header[..REQUEST_HEADER_BYTES].copy_from_slice(&request_header(size_bytes))
            }
            Protocol::Echo => {}
            Protocol::File => {
                file_offset_bytes = payload.file_offset(self.payload_id, index, size_bytes);
                header = FileRequest {
                    len_bytes: size_bytes,
                    offset_bytes: file_offset_bytes,
                }
                .encode();
            }
        }
        self.in_flight.push_back(Request {
            index,
            size_bytes,
            issued_ns,
            file_offset_bytes,
            header,
        });
        self.next_index += 1;
        self.in_flight_payload_bytes += u64::from(size_bytes);
    }

    fn header_bytes(&self) -> u64 {
        match self.protocol {
            Protocol::Frame => REQUEST_HEADER_BYTES as u64,
            Protocol::Echo => 0,
            Protocol::File => FILE_REQUEST_BYTES as u64,
        }
    }

    /// Payload bytes a request carries on the way out: none in the file
    /// protocol, whose `size_bytes` is what the response carries.
    fn sent_payload_bytes(&self, request: &Request) -> u64 {
        match self.protocol {
            Protocol::Frame | Protocol::Echo => u64::from(request.size_bytes),
            Protocol::File => 0,
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
                    let header = &request.header[written_of_this as usize..header_bytes as usize];
                    slices[count] = IoSlice::new(header);
                    count += 1;
                    offered += header.len() as u64;
                    written_of_this = header_bytes;
                }
                let size = self.sent_payload_bytes(request);
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
            let left = header_bytes + self.sent_payload_bytes(request) - self.partial_written_bytes;
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

    /// Response body bytes the oldest request may have been answered with
    /// so far: what of its payload is written (the whole body once a file
    /// request is entirely written).
    fn front_answerable_bytes(&self) -> u64 {
        let front = &self.in_flight[0];
        if self.fully_written > 0 {
            u64::from(front.size_bytes)
        } else {
            match self.protocol {
                Protocol::File => 0,
                Protocol::Frame | Protocol::Echo => self
                    .partial_written_bytes
                    .saturating_sub(self.header_bytes()),
            }
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
            if self.protocol != Protocol::Echo && self.response_header_got < RESPONSE_HEADER_BYTES {
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
            if self.response_payload_got + take as u64 > self.front_answerable_bytes() {
                return Err(Violation::UnsolicitedBytes);
            }
            if !self.response_payload_bad && self.body_mismatch(&front, &data[..take], payload) {
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

    /// Whether `got`, the next bytes of `request`'s response body, differ
    /// from what they should be: the request's own payload, or the served
    /// file's bytes at the request's range.
    fn body_mismatch(&self, request: &Request, got: &[u8], payload: &PayloadSource) -> bool {
        let at = self.response_payload_got;
        match self.protocol {
            Protocol::Frame | Protocol::Echo => payload
                .verify(self.payload_id, request.index, at, got)
                .is_some(),
            Protocol::File => first_mismatch(request.file_offset_bytes + at, got).is_some(),
        }
    }
}

#[cfg(test)]
mod tests;
