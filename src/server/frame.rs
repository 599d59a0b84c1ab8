//! Incremental parsing of frame-protocol request headers, shared by every
//! copy strategy. Payload bytes never pass through here.

use crate::protocol::{REQUEST_HEADER_BYTES, RESPONSE_HEADER_BYTES, response_header};

/// Where a connection is inside its request stream.
#[derive(Debug, Default)]
pub struct FrameParser {
    header: [u8; REQUEST_HEADER_BYTES],
    header_have: usize,
    payload_left: u32,
    next_seq: u32,
}

/// A request whose header is complete: answer with `response_header`, then
/// `payload_len` payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestStart {
    pub payload_len: u32,
    pub response_header: [u8; RESPONSE_HEADER_BYTES],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTooLarge {
    pub len: u32,
}

impl FrameParser {
    /// Payload bytes still expected for the current request.
    pub fn payload_left(&self) -> u32 {
        self.payload_left
    }

    /// Whether a request has started but not fully arrived.
    pub fn inside_request(&self) -> bool {
        self.header_have > 0 || self.payload_left > 0
    }

    /// Header bytes still missing, when the next bytes belong to a header.
    pub fn header_missing(&self) -> usize {
        if self.payload_left > 0 {
            0
        } else {
            REQUEST_HEADER_BYTES - self.header_have
        }
    }

    /// Where the missing header bytes go (for strategies that read the
    /// header straight from the socket).
    pub fn header_space(&mut self) -> &mut [u8] {
        &mut self.header[self.header_have..]
    }

    /// Takes `n` bytes just placed in [`FrameParser::header_space`].
    pub fn header_filled(
        &mut self,
        n: usize,
        max_frame_bytes: u32,
    ) -> Result<Option<RequestStart>, FrameTooLarge> {
        debug_assert!(n <= self.header_missing());
        self.header_have += n;
        if self.header_have < REQUEST_HEADER_BYTES {
            return Ok(None);
        }
        self.header_have = 0;
        let len = u32::from_be_bytes(self.header);
        if len > max_frame_bytes {
            return Err(FrameTooLarge { len });
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.payload_left = len;
        Ok(Some(RequestStart {
            payload_len: len,
            response_header: response_header(len, seq),
        }))
    }

    /// Copies header bytes out of `bytes` (a buffered stream); returns how
    /// many it took and the request if the header completed.
    pub fn take_header(
        &mut self,
        bytes: &[u8],
        max_frame_bytes: u32,
    ) -> (usize, Result<Option<RequestStart>, FrameTooLarge>) {
        let n = self.header_missing().min(bytes.len());
        self.header_space()[..n].copy_from_slice(&bytes[..n]);
        (n, self.header_filled(n, max_frame_bytes))
    }

    /// Takes up to `available` payload bytes of the current request; returns
    /// how many belong to it.
    pub fn take_payload(&mut self, available: u64) -> u32 {
        let n = (self.payload_left as u64).min(available) as u32;
        self.payload_left -= n;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_split_one_byte_at_a_time() {
        let mut p = FrameParser::default();
        let wire = 300u32.to_be_bytes();
        for (i, b) in wire.iter().enumerate() {
            let (taken, res) = p.take_header(&[*b], 1000);
            assert_eq!(taken, 1);
            let started = res.unwrap();
            assert_eq!(started.is_some(), i == 3);
            if let Some(s) = started {
                assert_eq!(s.payload_len, 300);
                assert_eq!(s.response_header, response_header(300, 0));
            }
        }
        assert!(p.inside_request());
        assert_eq!(p.take_payload(1000), 300);
        assert!(!p.inside_request());
        let (_, res) = p.take_header(&0u32.to_be_bytes(), 1000);
        assert_eq!(res.unwrap().unwrap().response_header, response_header(0, 1));
        assert!(!p.inside_request());
    }

    #[test]
    fn oversized_length_is_refused() {
        let mut p = FrameParser::default();
        let (_, res) = p.take_header(&1001u32.to_be_bytes(), 1000);
        assert_eq!(res, Err(FrameTooLarge { len: 1001 }));
        let mut p = FrameParser::default();
        let (_, res) = p.take_header(&1000u32.to_be_bytes(), 1000);
        assert!(res.unwrap().is_some());
    }
}
