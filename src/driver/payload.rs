//! Deterministic request payloads that cost the driver almost nothing.
//!
//! The driver must never be what a benchmark measures, so payload bytes are
//! not generated per request: one 64 KiB pseudo-random block is built from
//! the seed once, and request `r` on connection `c` is that block read
//! cyclically from an offset derived from `hash(seed, c, r)`. Filling is a
//! `memcpy`, verifying a `memcmp`, and [`PayloadSource::slice_at`] hands out
//! the block itself so `writev` can send payloads without any copy.
//!
//! Different requests start at different offsets, so a response that carries
//! another request's payload (a reordering or a duplicated buffer in the
//! server) fails verification, as does any flipped, dropped or inserted byte.
//! Same seed → same bytes, on every machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::protocol::file::SERVED_FILE_BYTES;

/// Length of the cyclic block. A power of two, so offsets reduce with a mask.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// Keeps payload bytes independent of other streams derived from the same
/// seed (sizes, arrivals).
const PAYLOAD_STREAM: u64 = 0x0050_4159_4c4f_4144; // "PAYLOAD"

/// Keeps file-protocol offsets independent of the payload offsets.
const FILE_OFFSET_STREAM: u64 = 0x0046_494c_454f_4646; // "FILEOFF"

/// Alignment of file-protocol offsets: the page size of every Linux
/// target this suite runs on (x86-64, arm64 with 4 KiB pages).
const FILE_PAGE_BYTES: u64 = 4096;

/// The payload bytes of every request of a run.
#[derive(Clone)]
pub struct PayloadSource {
    /// The block stored twice in a row, so any `BLOCK_BYTES` bytes of the
    /// cycle are contiguous in memory (one `iovec`, one `memcmp`).
    doubled_block: Box<[u8]>,
    offset_key: u64,
}

impl std::fmt::Debug for PayloadSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadSource")
            .field("offset_key", &self.offset_key)
            .finish_non_exhaustive()
    }
}

impl PayloadSource {
    /// Builds the block for `seed` (128 KiB of memory, ~20 µs).
    pub fn new(seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(PAYLOAD_STREAM);
        let mut doubled_block = vec![0u8; 2 * BLOCK_BYTES].into_boxed_slice();
        let (first, second) = doubled_block.split_at_mut(BLOCK_BYTES);
        rng.fill_bytes(first);
        second.copy_from_slice(first);
        let offset_key = rng.next_u64();
        PayloadSource {
            doubled_block,
            offset_key,
        }
    }

    /// Where in the cyclic block request `request_index` on `connection`
    /// starts, in `0..BLOCK_BYTES`.
    pub fn request_offset(&self, connection: u32, request_index: u64) -> usize {
        let per_connection = mix64(self.offset_key ^ u64::from(connection));
        // Truncation is intended: the mask keeps only the low bits anyway.
        (mix64(per_connection ^ request_index) as usize) & (BLOCK_BYTES - 1)
    }

    /// Where in the served file the file-protocol request `request_index`
    /// on `connection` reads its `len_bytes`: drawn from the same seeded
    /// key as the payload offsets (so same seed, same requests), spread
    /// over the whole file so successive requests touch different pages,
    /// and always inside it (`offset + len <= SERVED_FILE_BYTES`).
    ///
    /// Offsets are page-aligned, as a file server's reads of whole files
    /// are: a misaligned start would give `mmap` and `sendfile` a partial
    /// first page that `read` does not pay, and make the strategies'
    /// comparison depend on the draw. Verification still catches a wrong
    /// range, since no two 8-byte words of the file are equal.
    pub fn file_offset(&self, connection: u32, request_index: u64, len_bytes: u32) -> u64 {
        let last_start = SERVED_FILE_BYTES.saturating_sub(u64::from(len_bytes));
        let pages = last_start / FILE_PAGE_BYTES + 1;
        let per_connection = mix64(self.offset_key ^ FILE_OFFSET_STREAM ^ u64::from(connection));
        (mix64(per_connection ^ request_index) % pages) * FILE_PAGE_BYTES
    }

    /// Up to `max_len` contiguous bytes of the cycle starting at position
    /// `start` (taken modulo `BLOCK_BYTES`). Always returns
    /// `min(max_len, BLOCK_BYTES)` bytes; callers sending longer payloads
    /// ask again from `start + returned.len()`.
    ///
    /// Byte `i` of request `r` on connection `c` is at position
    /// `request_offset(c, r) + i`.
    pub fn slice_at(&self, start: usize, max_len: usize) -> &[u8] {
        let begin = start & (BLOCK_BYTES - 1);
        &self.doubled_block[begin..begin + max_len.min(BLOCK_BYTES)]
    }

    /// Writes bytes `offset_in_payload..offset_in_payload + dst.len()` of the
    /// payload of request `request_index` on `connection` into `dst`.
    pub fn fill(
        &self,
        connection: u32,
        request_index: u64,
        offset_in_payload: u64,
        dst: &mut [u8],
    ) {
        let mut position = self.start_position(connection, request_index, offset_in_payload);
        let mut rest = dst;
        while !rest.is_empty() {
            let chunk = self.slice_at(position, rest.len());
            let (head, tail) = rest.split_at_mut(chunk.len());
            head.copy_from_slice(chunk);
            rest = tail;
            position += chunk.len();
        }
    }

    /// Checks that `got` equals bytes `offset_in_payload..` of the payload of
    /// request `request_index` on `connection`. Returns the index in `got`
    /// of the first wrong byte, or `None` when every byte is right.
    pub fn verify(
        &self,
        connection: u32,
        request_index: u64,
        offset_in_payload: u64,
        got: &[u8],
    ) -> Option<usize> {
        let mut position = self.start_position(connection, request_index, offset_in_payload);
        let mut checked = 0;
        while checked < got.len() {
            let expected = self.slice_at(position, got.len() - checked);
            let received = &got[checked..checked + expected.len()];
            // Slice equality is a memcmp; only a failure pays for the scan.
            if expected != received {
                let within = expected
                    .iter()
                    .zip(received)
                    .position(|(e, r)| e != r)
                    .expect("unequal slices of equal length differ somewhere");
                return Some(checked + within);
            }
            checked += expected.len();
            position += expected.len();
        }
        None
    }

    fn start_position(&self, connection: u32, request_index: u64, offset_in_payload: u64) -> usize {
        // Only the position modulo BLOCK_BYTES matters, so truncating the
        // 64-bit offset keeps the low bits that count.
        self.request_offset(connection, request_index)
            .wrapping_add(offset_in_payload as usize)
            & (BLOCK_BYTES - 1)
    }
}

/// The splitmix64 finaliser: a cheap bijective mix in which every input bit
/// affects every output bit.
fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(source: &PayloadSource, connection: u32, request: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        source.fill(connection, request, 0, &mut bytes);
        bytes
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = PayloadSource::new(1);
        let b = PayloadSource::new(1);
        let c = PayloadSource::new(2);
        assert_eq!(payload(&a, 3, 9, 5000), payload(&b, 3, 9, 5000));
        assert_ne!(payload(&a, 3, 9, 5000), payload(&c, 3, 9, 5000));
        assert_eq!(a.request_offset(3, 9), b.request_offset(3, 9));
    }

    #[test]
    fn requests_and_connections_get_different_offsets() {
        let source = PayloadSource::new(5);
        let offsets: std::collections::HashSet<usize> = (0..4u32)
            .flat_map(|c| (0..256u64).map(move |r| (c, r)))
            .map(|(c, r)| source.request_offset(c, r))
            .collect();
        // 1024 draws from 65536 slots: a handful of collisions at most.
        assert!(
            offsets.len() > 1000,
            "only {} distinct offsets",
            offsets.len()
        );
    }

    #[test]
    fn fill_in_pieces_equals_fill_at_once_across_the_wrap() {
        let source = PayloadSource::new(9);
        // Longer than two blocks, so the cycle wraps at least twice.
        let whole = payload(&source, 1, 2, 3 * BLOCK_BYTES + 17);
        let mut pieces = vec![0u8; whole.len()];
        let mut offset = 0usize;
        for step in [1usize, 7, 4096, BLOCK_BYTES - 1, BLOCK_BYTES + 3]
            .iter()
            .cycle()
        {
            if offset == pieces.len() {
                break;
            }
            let end = (offset + step).min(pieces.len());
            source.fill(1, 2, offset as u64, &mut pieces[offset..end]);
            offset = end;
        }
        assert_eq!(whole, pieces);
        // The payload really is the block read cyclically.
        assert_eq!(whole[..BLOCK_BYTES], whole[BLOCK_BYTES..2 * BLOCK_BYTES]);
    }

    #[test]
    fn slice_at_walks_the_same_bytes_as_fill() {
        let source = PayloadSource::new(4);
        let len = 2 * BLOCK_BYTES + 100;
        let expected = payload(&source, 7, 70, len);
        let mut gathered = Vec::with_capacity(len);
        let mut position = source.request_offset(7, 70);
        while gathered.len() < len {
            let slice = source.slice_at(position, len - gathered.len());
            assert_eq!(slice.len(), (len - gathered.len()).min(BLOCK_BYTES));
            gathered.extend_from_slice(slice);
            position += slice.len();
        }
        assert_eq!(expected, gathered);
    }

    #[test]
    fn verify_accepts_the_payload_and_finds_the_first_bad_byte() {
        let source = PayloadSource::new(12);
        let mut bytes = payload(&source, 0, 1, 200_000);
        assert_eq!(source.verify(0, 1, 0, &bytes), None);
        // A suffix verifies at its own offset.
        assert_eq!(source.verify(0, 1, 150_000, &bytes[150_000..]), None);
        bytes[131_075] ^= 0x01;
        bytes[190_000] ^= 0x80;
        assert_eq!(source.verify(0, 1, 0, &bytes), Some(131_075));
        assert_eq!(source.verify(0, 1, 131_000, &bytes[131_000..]), Some(75));
    }

    #[test]
    fn verify_rejects_another_requests_payload() {
        let source = PayloadSource::new(12);
        let other = payload(&source, 0, 2, 64);
        assert!(source.verify(0, 1, 0, &other).is_some());
        let other_connection = payload(&source, 1, 1, 64);
        assert!(source.verify(0, 1, 0, &other_connection).is_some());
    }

    #[test]
    fn file_offsets_are_page_aligned_inside_the_file_and_seeded() {
        let source = PayloadSource::new(3);
        for len in [1u32, 4096, 65_537, 16 << 20] {
            let mut distinct = std::collections::HashSet::new();
            for request in 0..200u64 {
                let offset = source.file_offset(1, request, len);
                assert_eq!(offset % FILE_PAGE_BYTES, 0, "offset {offset}");
                assert!(
                    offset + u64::from(len) <= SERVED_FILE_BYTES,
                    "{offset}+{len}"
                );
                distinct.insert(offset);
            }
            // 200 draws over at least 4,097 pages: about 5 repeat.
            assert!(
                distinct.len() > 180,
                "{len}: only {} distinct",
                distinct.len()
            );
        }
        // The whole file fits one request: it can only start at 0.
        assert_eq!(source.file_offset(0, 5, SERVED_FILE_BYTES as u32), 0);
        assert_eq!(
            source.file_offset(2, 9, 4096),
            PayloadSource::new(3).file_offset(2, 9, 4096)
        );
        let other_seed = PayloadSource::new(4);
        assert!(
            (0..8).any(|r| other_seed.file_offset(2, r, 4096) != source.file_offset(2, r, 4096))
        );
        assert!((0..8).any(|r| source.file_offset(3, r, 4096) != source.file_offset(2, r, 4096)));
    }

    #[test]
    fn empty_payloads_verify() {
        let source = PayloadSource::new(0);
        assert_eq!(source.verify(0, 0, 0, &[]), None);
        source.fill(0, 0, 0, &mut []);
    }
}
