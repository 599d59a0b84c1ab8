//! The frame protocol as a push parser: bytes in, responses appended to an
//! output buffer. Payloads are streamed as they arrive, never collected,
//! so a connection holds at most one read buffer of input whatever `len`
//! announces.

/// Bytes of a request header (`len: u32 BE`).
const REQUEST_HEADER_BYTES: usize = 4;

/// Why a connection is closed for breaking the protocol.
#[derive(Debug, PartialEq, Eq)]
pub enum ProtocolError {
    FrameTooLarge { len: u32, max_frame_bytes: u32 },
    EofInsideFrame,
}

impl std::fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProtocolError::FrameTooLarge {
                len,
                max_frame_bytes,
            } => write!(f, "frame length {len} above --max-frame {max_frame_bytes}"),
            ProtocolError::EofInsideFrame => write!(f, "EOF inside a frame"),
        }
    }
}

/// Where one connection is in its request stream.
pub struct FrameParser {
    max_frame_bytes: u32,
    header: [u8; REQUEST_HEADER_BYTES],
    header_have: usize,
    payload_left: u32,
    next_seq: u32,
}

impl FrameParser {
    pub fn new(max_frame_bytes: u32) -> FrameParser {
        FrameParser {
            max_frame_bytes,
            header: [0; REQUEST_HEADER_BYTES],
            header_have: 0,
            payload_left: 0,
            next_seq: 0,
        }
    }

    /// Appends to `out` the answer to everything in `input`: the response
    /// header of each request whose header completes, then its payload
    /// bytes as far as they go. On a bad header, `out` keeps the answers to
    /// the requests before it.
    pub fn answer(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        while !input.is_empty() {
            if self.payload_left > 0 {
                let n = input.len().min(self.payload_left as usize);
                out.extend_from_slice(&input[..n]);
                self.payload_left -= n as u32;
                input = &input[n..];
                continue;
            }
            let n = input.len().min(REQUEST_HEADER_BYTES - self.header_have);
            self.header[self.header_have..self.header_have + n].copy_from_slice(&input[..n]);
            self.header_have += n;
            input = &input[n..];
            if self.header_have == REQUEST_HEADER_BYTES {
                self.header_have = 0;
                self.start_request(out)?;
            }
        }
        Ok(())
    }

    fn start_request(&mut self, out: &mut Vec<u8>) -> Result<(), ProtocolError> {
        let len = u32::from_be_bytes(self.header);
        if len > self.max_frame_bytes {
            return Err(ProtocolError::FrameTooLarge {
                len,
                max_frame_bytes: self.max_frame_bytes,
            });
        }
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        // Sequence numbers are 32-bit on the wire: they wrap, like the
        // built-in servers'.
        self.next_seq = self.next_seq.wrapping_add(1);
        self.payload_left = len;
        Ok(())
    }

    /// What EOF from the client means here: clean between frames, a
    /// protocol error inside one.
    pub fn at_eof(&self) -> Result<(), ProtocolError> {
        if self.header_have > 0 || self.payload_left > 0 {
            Err(ProtocolError::EofInsideFrame)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(len: u32, seq: u32, payload: &[u8]) -> Vec<u8> {
        let mut r = len.to_be_bytes().to_vec();
        r.extend_from_slice(&seq.to_be_bytes());
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn one_byte_at_a_time_gives_the_same_answer_as_all_at_once() {
        let mut wire = 3u32.to_be_bytes().to_vec();
        wire.extend_from_slice(b"abc");
        wire.extend_from_slice(&0u32.to_be_bytes());
        let mut expected = response(3, 0, b"abc");
        expected.extend_from_slice(&response(0, 1, b""));

        let mut whole = Vec::new();
        FrameParser::new(10).answer(&wire, &mut whole).unwrap();
        assert_eq!(whole, expected);

        let mut parser = FrameParser::new(10);
        let mut split = Vec::new();
        for byte in &wire {
            parser
                .answer(std::slice::from_ref(byte), &mut split)
                .unwrap();
        }
        assert_eq!(split, expected);
        assert_eq!(parser.at_eof(), Ok(()));
    }

    #[test]
    fn oversized_len_is_refused_after_earlier_answers() {
        let mut wire = 1u32.to_be_bytes().to_vec();
        wire.push(b'x');
        wire.extend_from_slice(&11u32.to_be_bytes());
        let mut out = Vec::new();
        let verdict = FrameParser::new(10).answer(&wire, &mut out);
        assert_eq!(
            verdict,
            Err(ProtocolError::FrameTooLarge {
                len: 11,
                max_frame_bytes: 10
            })
        );
        assert_eq!(out, response(1, 0, b"x"));
    }

    #[test]
    fn eof_inside_a_header_or_a_payload_is_an_error() {
        let mut parser = FrameParser::new(10);
        parser.answer(&[0, 0], &mut Vec::new()).unwrap();
        assert_eq!(parser.at_eof(), Err(ProtocolError::EofInsideFrame));
        let mut parser = FrameParser::new(10);
        parser.answer(&[0, 0, 0, 2, 7], &mut Vec::new()).unwrap();
        assert_eq!(parser.at_eof(), Err(ProtocolError::EofInsideFrame));
    }
}
