//! The wire protocols (DESIGN §3: frame and echo, served by every variant;
//! file, served by the variants whose copy strategy reads a file), and the
//! control line protocol ([`control`]), shared by the servers and the driver.

#![forbid(unsafe_code)]

pub mod control;
pub mod file;

use serde::{Deserialize, Serialize};

/// Which protocol a server speaks and a driver expects.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// `len: u32 BE` + payload; answered by `len: u32 BE`, `seq: u32 BE`, payload.
    #[default]
    Frame,
    /// Every byte is written back in order.
    Echo,
    /// A request names a byte range of a file the server created at
    /// start-up; answered by the frame response header and those bytes
    /// ([`file`]).
    File,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Frame => "frame",
            Protocol::Echo => "echo",
            Protocol::File => "file",
        }
    }
}

/// Bytes of a request header: the payload length.
pub const REQUEST_HEADER_BYTES: usize = 4;
/// Bytes of a response header: the payload length, then the sequence number.
pub const RESPONSE_HEADER_BYTES: usize = 8;
/// Default `--max-frame`: larger request lengths are protocol errors.
pub const DEFAULT_MAX_FRAME_BYTES: u32 = 16 << 20;

/// A request header for a payload of `len` bytes.
pub fn request_header(len: u32) -> [u8; REQUEST_HEADER_BYTES] {
    len.to_be_bytes()
}

/// The response header the server sends for request number `seq`
/// (0-based, per connection) with a payload of `len` bytes.
pub fn response_header(len: u32, seq: u32) -> [u8; RESPONSE_HEADER_BYTES] {
    let mut header = [0u8; RESPONSE_HEADER_BYTES];
    header[..4].copy_from_slice(&len.to_be_bytes());
    header[4..].copy_from_slice(&seq.to_be_bytes());
    header
}

/// Splits a response header into `(len, seq)`.
pub fn parse_response_header(header: &[u8; RESPONSE_HEADER_BYTES]) -> (u32, u32) {
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    let seq = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    (len, seq)
}
