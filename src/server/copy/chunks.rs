//! An append-only byte stream in freshly mapped chunks, for the vmsplice
//! strategy: a byte, once written, is never written again, and a chunk is
//! unmapped (never reused) once every byte of it has been released. That
//! is what makes handing its pages to `vmsplice` safe (see
//! `copy::vmsplice`); each chunk costs one `mmap` and one `munmap`.

use std::collections::VecDeque;
use std::io;

use super::segments::RequestBytes;
use crate::sys::vmsplice::{Mapping, page_size_bytes};

/// Positions are absolute stream offsets: `chunks[i]` holds
/// `[first_base + i * chunk_bytes, first_base + (i + 1) * chunk_bytes)`.
pub struct ChunkStream {
    chunk_bytes: usize,
    chunks: VecDeque<Mapping>,
    first_base: u64,
    /// Everything before this has been written.
    filled: u64,
    /// Everything before this is no longer needed by the owner; chunks
    /// wholly before it are unmapped.
    released: u64,
}

impl ChunkStream {
    /// Chunks of `chunk_bytes` rounded up to whole pages (at least one).
    pub fn new(chunk_bytes: usize) -> ChunkStream {
        let page = page_size_bytes();
        ChunkStream {
            chunk_bytes: chunk_bytes.max(1).div_ceil(page) * page,
            chunks: VecDeque::new(),
            first_base: 0,
            filled: 0,
            released: 0,
        }
    }

    pub fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    pub fn filled(&self) -> u64 {
        self.filled
    }

    /// Written and not yet released.
    pub fn held_bytes(&self) -> u64 {
        self.filled - self.released
    }

    /// Chunks currently mapped.
    pub fn mapped_chunks(&self) -> usize {
        self.chunks.len()
    }

    fn mapped_end(&self) -> u64 {
        self.first_base + (self.chunks.len() * self.chunk_bytes) as u64
    }

    /// Maps fresh chunks until `bytes` can be written after `filled`.
    pub fn reserve(&mut self, bytes: usize) -> io::Result<()> {
        while self.mapped_end() < self.filled + bytes as u64 {
            self.chunks.push_back(Mapping::new(self.chunk_bytes)?);
        }
        Ok(())
    }

    /// The chunk index and the offset inside it of stream offset `at`.
    fn locate(&self, at: u64) -> (usize, usize) {
        let from_first = (at - self.first_base) as usize;
        (from_first / self.chunk_bytes, from_first % self.chunk_bytes)
    }

    /// The next `bytes` (reserved before) after `filled` as at most two
    /// writable pieces: the rest of one chunk and the start of the next.
    /// `bytes` is at most one chunk.
    pub fn free_pieces(&mut self, bytes: usize) -> (&mut [u8], &mut [u8]) {
        debug_assert!(bytes <= self.chunk_bytes);
        debug_assert!(self.filled + bytes as u64 <= self.mapped_end());
        let (index, at) = self.locate(self.filled);
        let first_len = bytes.min(self.chunk_bytes - at);
        let mut rest = self.chunks.range_mut(index..);
        let first = match rest.next() {
            Some(chunk) => &mut chunk.bytes_mut()[at..at + first_len],
            None => &mut [],
        };
        let second = match rest.next() {
            Some(chunk) => &mut chunk.bytes_mut()[..bytes - first_len],
            None => &mut [],
        };
        (first, second)
    }

    /// Accounts for `n` bytes just written into the free pieces.
    pub fn advance(&mut self, n: usize) {
        self.filled += n as u64;
        debug_assert!(self.filled <= self.mapped_end());
    }

    /// Appends `bytes` (at most one chunk), mapping a chunk if needed.
    pub fn push(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reserve(bytes.len())?;
        let (first, second) = self.free_pieces(bytes.len());
        let split = first.len();
        first.copy_from_slice(&bytes[..split]);
        second.copy_from_slice(&bytes[split..]);
        self.advance(bytes.len());
        Ok(())
    }

    /// The written bytes from `start` to the end of its chunk or `end`,
    /// whichever comes first.
    pub fn piece(&self, start: u64, end: u64) -> &[u8] {
        debug_assert!(self.released <= start && start <= end && end <= self.filled);
        let (index, at) = self.locate(start);
        let len = ((end - start) as usize).min(self.chunk_bytes - at);
        match self.chunks.get(index) {
            Some(chunk) => &chunk.bytes()[at..at + len],
            None => &[],
        }
    }

    /// Marks everything before `offset` as no longer needed, and unmaps
    /// the chunks that lie wholly before it. Nothing is ever written there
    /// again: writes only go after `filled`, which is at or past `offset`.
    pub fn release_to(&mut self, offset: u64) {
        debug_assert!(offset <= self.filled);
        self.released = self.released.max(offset);
        while !self.chunks.is_empty() && self.first_base + self.chunk_bytes as u64 <= self.released
        {
            self.chunks.pop_front();
            self.first_base += self.chunk_bytes as u64;
        }
    }
}

impl RequestBytes for ChunkStream {
    fn filled(&self) -> u64 {
        self.filled
    }

    fn advance(&mut self, n: usize) {
        ChunkStream::advance(self, n);
    }

    fn first_piece(&self, start: u64, end: u64) -> &[u8] {
        self.piece(start, end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_come_back_across_chunks_and_released_chunks_are_unmapped() {
        let page = page_size_bytes();
        let mut stream = ChunkStream::new(page);
        assert_eq!(stream.chunk_bytes(), page);
        let data: Vec<u8> = (0..page * 3).map(|i| (i % 251) as u8).collect();
        let mut at = 0;
        for piece in data.chunks(page / 2 + 3) {
            stream.push(piece).unwrap();
            at += piece.len();
            assert_eq!(stream.filled(), at as u64);
        }
        let mut got = Vec::new();
        let mut start = 0u64;
        while start < stream.filled() {
            let piece = stream.piece(start, stream.filled());
            assert!(!piece.is_empty());
            got.extend_from_slice(piece);
            start += piece.len() as u64;
        }
        assert_eq!(got, data);
        assert_eq!(stream.mapped_chunks(), 3);
        // Releasing into the second chunk unmaps only the first.
        stream.release_to(page as u64 + 1);
        assert_eq!(stream.mapped_chunks(), 2);
        assert_eq!(
            stream.piece(page as u64 + 1, page as u64 + 2),
            &data[page + 1..page + 2]
        );
        stream.release_to(stream.filled());
        assert_eq!(stream.mapped_chunks(), 0);
        assert_eq!(stream.held_bytes(), 0);
        // The next write maps a fresh chunk at the stream's next offset.
        stream.push(&[7, 8]).unwrap();
        assert_eq!(stream.piece(3 * page as u64, 3 * page as u64 + 2), &[7, 8]);
    }

    #[test]
    fn free_space_spans_two_chunks_when_the_first_is_nearly_full() {
        let page = page_size_bytes();
        let mut stream = ChunkStream::new(page);
        stream.push(&vec![1u8; page - 10]).unwrap();
        stream.reserve(100).unwrap();
        let (first, second) = stream.free_pieces(100);
        assert_eq!((first.len(), second.len()), (10, 90));
    }
}
