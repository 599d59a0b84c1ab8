//! The file protocol (`--protocol file`): a request names a byte range of a
//! file the server created at start-up; the server answers the frame
//! protocol's response header (`len`, `seq`) and those bytes of the file.
//!
//! Request: `len: u32 BE`, `offset: u64 BE` (12 bytes, no payload).
//! Response: `len: u32 BE`, `seq: u32 BE`, then bytes `offset..offset+len`
//! of the served file. A request whose range is not inside the file, or
//! whose `len` is above `--max-frame`, is a protocol error that closes that
//! connection only, as an oversized frame does.
//!
//! The file's bytes are a function of their position alone, so the driver
//! verifies any range without reading the file and a server that sends the
//! wrong range (or a stale buffer) fails verification: byte `i` is byte
//! `i % 8` (little-endian) of `mix64(i / 8 ^ FILE_KEY)`, and no two 8-byte
//! words of the file are equal.

#![forbid(unsafe_code)]

/// Bytes of a file-protocol request: the length, then the offset.
pub const FILE_REQUEST_BYTES: usize = 12;

/// Size of the file every server creates for the file protocol: twice the
/// default `--max-frame`, so the largest request can start anywhere in the
/// first half and different requests read different pages.
pub const SERVED_FILE_BYTES: u64 = 32 << 20;

/// Keeps the file's words apart from other mix64 streams.
const FILE_KEY: u64 = 0x4649_4c45_4259_5445; // "FILEBYTE"

/// One file-protocol request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRequest {
    pub len_bytes: u32,
    pub offset_bytes: u64,
}

/// Why a file-protocol request is refused (a protocol error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRequestError {
    /// `len` is above `--max-frame`.
    TooLong {
        len_bytes: u32,
        max_frame_bytes: u32,
    },
    /// The range runs past the end of the served file.
    OutsideFile { offset_bytes: u64, len_bytes: u32 },
}

impl std::fmt::Display for FileRequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileRequestError::TooLong {
                len_bytes,
                max_frame_bytes,
            } => write!(
                f,
                "file request for {len_bytes} bytes is above --max-frame {max_frame_bytes}"
            ),
            FileRequestError::OutsideFile {
                offset_bytes,
                len_bytes,
            } => write!(
                f,
                "file request for {len_bytes} bytes at offset {offset_bytes} runs past the \
                 end of the {SERVED_FILE_BYTES}-byte served file"
            ),
        }
    }
}

impl FileRequest {
    pub fn encode(self) -> [u8; FILE_REQUEST_BYTES] {
        let mut bytes = [0u8; FILE_REQUEST_BYTES];
        bytes[..4].copy_from_slice(&self.len_bytes.to_be_bytes());
        bytes[4..].copy_from_slice(&self.offset_bytes.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8; FILE_REQUEST_BYTES]) -> FileRequest {
        let mut len = [0u8; 4];
        let mut offset = [0u8; 8];
        len.copy_from_slice(&bytes[..4]);
        offset.copy_from_slice(&bytes[4..]);
        FileRequest {
            len_bytes: u32::from_be_bytes(len),
            offset_bytes: u64::from_be_bytes(offset),
        }
    }

    /// Whether the server may answer this request.
    pub fn check(self, max_frame_bytes: u32) -> Result<(), FileRequestError> {
        if self.len_bytes > max_frame_bytes {
            return Err(FileRequestError::TooLong {
                len_bytes: self.len_bytes,
                max_frame_bytes,
            });
        }
        let end = self.offset_bytes.checked_add(u64::from(self.len_bytes));
        if end.is_none_or(|end| end > SERVED_FILE_BYTES) {
            return Err(FileRequestError::OutsideFile {
                offset_bytes: self.offset_bytes,
                len_bytes: self.len_bytes,
            });
        }
        Ok(())
    }
}

/// Writes bytes `offset..offset + dst.len()` of the served file into `dst`.
pub fn fill_served_file(offset: u64, dst: &mut [u8]) {
    let mut position = offset;
    let mut rest = dst;
    while !rest.is_empty() {
        let word = file_word(position / 8).to_le_bytes();
        let within = (position % 8) as usize;
        let take = (8 - within).min(rest.len());
        let (head, tail) = rest.split_at_mut(take);
        head.copy_from_slice(&word[within..within + take]);
        rest = tail;
        position += take as u64;
    }
}

/// Index in `got` of the first byte that differs from the served file's
/// bytes at `offset..`, or `None` when all match. The first call builds a
/// copy of the whole file (32 MiB, tens of milliseconds) so that every
/// check after it is a `memcmp`: hashing each word per check made the
/// driver, not the server, the limit on large responses.
pub fn first_mismatch(offset: u64, got: &[u8]) -> Option<usize> {
    let file = served_file_copy();
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(file.len());
    let expected = &file[start..file.len().min(start.saturating_add(got.len()))];
    let received = &got[..expected.len()];
    if expected == received {
        // Bytes past the end of the file cannot match anything.
        return (got.len() > expected.len()).then_some(expected.len());
    }
    expected.iter().zip(received).position(|(e, r)| e != r)
}

/// The served file's bytes, built once per process on first use.
fn served_file_copy() -> &'static [u8] {
    static COPY: std::sync::OnceLock<Box<[u8]>> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        let mut bytes = vec![0u8; SERVED_FILE_BYTES as usize].into_boxed_slice();
        fill_served_file(0, &mut bytes);
        bytes
    })
}

fn file_word(index: u64) -> u64 {
    // splitmix64's finaliser: a bijection, so distinct words stay distinct.
    let mut x = (index ^ FILE_KEY).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        let request = FileRequest {
            len_bytes: 0x0102_0304,
            offset_bytes: 0x0a0b_0c0d_0e0f_1011,
        };
        let bytes = request.encode();
        assert_eq!(bytes[..4], [1, 2, 3, 4]);
        assert_eq!(FileRequest::decode(&bytes), request);
    }

    #[test]
    fn ranges_outside_the_file_or_above_max_frame_are_refused() {
        let at = |len_bytes, offset_bytes| FileRequest {
            len_bytes,
            offset_bytes,
        };
        assert_eq!(at(4096, SERVED_FILE_BYTES - 4096).check(1 << 24), Ok(()));
        assert_eq!(at(0, SERVED_FILE_BYTES).check(1 << 24), Ok(()));
        assert!(matches!(
            at(4097, SERVED_FILE_BYTES - 4096).check(1 << 24),
            Err(FileRequestError::OutsideFile { .. })
        ));
        assert!(matches!(
            at(1, u64::MAX).check(1 << 24),
            Err(FileRequestError::OutsideFile { .. })
        ));
        assert!(matches!(
            at(1 << 20, 0).check(1 << 19),
            Err(FileRequestError::TooLong { .. })
        ));
    }

    #[test]
    fn any_range_fills_like_the_whole_and_verifies() {
        let mut whole = vec![0u8; 100];
        fill_served_file(0, &mut whole);
        for start in [0u64, 1, 7, 8, 13] {
            let mut part = vec![0u8; 50];
            fill_served_file(start, &mut part);
            assert_eq!(part, whole[start as usize..start as usize + 50]);
            assert_eq!(first_mismatch(start, &part), None);
        }
        let mut wrong = whole[8..60].to_vec();
        assert_eq!(first_mismatch(8, &wrong), None);
        assert_eq!(first_mismatch(16, &wrong), Some(0), "another range differs");
        wrong[30] ^= 1;
        assert_eq!(first_mismatch(8, &wrong), Some(30));
    }

    #[test]
    fn long_ranges_verify_across_chunks() {
        let mut bytes = vec![0u8; 10_000];
        fill_served_file(12_345, &mut bytes);
        assert_eq!(first_mismatch(12_345, &bytes), None);
        bytes[9_000] ^= 0x80;
        assert_eq!(first_mismatch(12_345, &bytes), Some(9_000));
    }

    #[test]
    fn bytes_past_the_end_of_the_file_never_match() {
        let mut tail = vec![0u8; 16];
        fill_served_file(SERVED_FILE_BYTES - 8, &mut tail[..8]);
        assert_eq!(first_mismatch(SERVED_FILE_BYTES - 8, &tail[..8]), None);
        assert_eq!(first_mismatch(SERVED_FILE_BYTES - 8, &tail), Some(8));
        assert_eq!(first_mismatch(SERVED_FILE_BYTES + 1, &tail), Some(0));
    }
}
