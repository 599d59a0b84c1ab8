//! The file the file protocol serves: created once when a server starts
//! with `--protocol file`, filled with the protocol's position-derived bytes
//! (`protocol::file::fill_served_file`), and shared by every serving thread
//! and connection through an `Arc` (reads of it take explicit offsets, so
//! the one descriptor has no position to fight over).

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use crate::protocol::file::{SERVED_FILE_BYTES, fill_served_file};
use crate::sys::{self, Fd, file::Mapping};

pub struct ServedFile {
    // Declared before `fd` so the mapping is gone before the descriptor.
    mapping: Option<Mapping>,
    fd: Fd,
}

impl ServedFile {
    /// Creates and fills the file; with `map`, also maps it once read-only
    /// for the `mmap` strategy, which writes from the mapping.
    pub fn create(map: bool) -> io::Result<ServedFile> {
        let fd = sys::file::create_filled(SERVED_FILE_BYTES, fill_served_file).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create the {SERVED_FILE_BYTES}-byte served file in $TMPDIR: {e}"),
            )
        })?;
        let mapping = if map {
            Some(Mapping::map(fd.as_fd(), SERVED_FILE_BYTES as usize)?)
        } else {
            None
        };
        Ok(ServedFile { mapping, fd })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The whole file as memory, when it was created with `map`.
    pub fn mapped(&self) -> Option<&[u8]> {
        self.mapping.as_ref().map(Mapping::bytes)
    }
}

impl fmt::Debug for ServedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServedFile")
            .field("fd", &self.fd)
            .field("mapped", &self.mapping.is_some())
            .finish()
    }
}
