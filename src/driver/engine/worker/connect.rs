//! A worker's connection lifecycle: connecting, timing out, retiring a slot,
//! and what a close or a protocol violation counts as.

use std::io;
use std::os::fd::AsFd;

use crate::driver::engine::connection::Violation;
use crate::driver::engine::plan::Issue;
use crate::driver::engine::shared::Phase;
use crate::protocol::Protocol;
use crate::sys::client::{self, ConnectProgress};
use crate::sys::epoll;

use super::slot::SlotState;
use super::{CONNECT_TIMEOUT, Worker};

impl Worker<'_> {
    pub(super) fn start_connect(&mut self, index: usize) {
        let now = self.shared.now_ns();
        let slot = &mut self.slots[index];
        slot.generation = slot.generation.wrapping_add(1);
        slot.conn.reset_for_new_socket();
        slot.write_blocked = false;
        slot.requests_on_socket = 0;
        slot.read_parked = false;
        slot.peer_hung_up = false;
        let (fd, progress) =
            match client::connect_nonblocking(self.target, self.receive_buffer_bytes) {
                Ok(ok) => ok,
                Err(error) => return self.connect_failed(index, error),
            };
        let token = slot.token(index);
        if let Err(error) = self.epoll.add(
            fd.as_fd(),
            epoll::IN | epoll::OUT | epoll::RDHUP | epoll::ET,
            token,
        ) {
            return self.connect_failed(index, error);
        }
        slot.socket = Some(fd);
        slot.state = SlotState::Connecting { started_ns: now };
        self.connecting += 1;
        if progress == ConnectProgress::Connected {
            self.connected(index);
        }
    }

    pub(super) fn finish_connect(&mut self, index: usize) {
        let result = match &self.slots[index].socket {
            Some(fd) => client::take_connect_result(fd),
            None => return,
        };
        match result {
            Ok(()) => self.connected(index),
            Err(error) => self.connect_failed(index, error),
        }
    }

    pub(super) fn connected(&mut self, index: usize) {
        let now = self.shared.now_ns();
        self.connecting -= 1;
        self.slots[index].state = SlotState::Open;
        if self.tally.in_window(now) {
            self.tally.connections_opened += 1;
        }
        if self.issuing {
            self.top_up(index, now);
        }
    }

    pub(super) fn connect_failed(&mut self, index: usize, error: io::Error) {
        if matches!(self.slots[index].state, SlotState::Connecting { .. }) {
            self.connecting -= 1;
        }
        if self.shared.phase() == Phase::Setup {
            self.setup_error.get_or_insert(error);
        } else {
            self.tally.verification.connect_failures += 1;
        }
        self.retire(index, true);
    }

    pub(super) fn expire_connects(&mut self, now: u64) {
        let limit = CONNECT_TIMEOUT.as_nanos() as u64;
        for index in 0..self.slots.len() {
            if let SlotState::Connecting { started_ns } = self.slots[index].state
                && now.saturating_sub(started_ns) >= limit
            {
                self.connect_failed(index, io::Error::from(io::ErrorKind::TimedOut));
            }
        }
    }

    /// Closes the slot's socket for good. `lost`: because something failed.
    pub(super) fn retire(&mut self, index: usize, lost: bool) {
        let slot = &mut self.slots[index];
        slot.state = SlotState::Retired;
        slot.socket = None;
        if lost && slot.issue != Issue::Idle {
            self.slots_lost += 1;
        }
        self.mark_done(index);
    }

    pub(super) fn mark_done(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if !slot.done && slot.issue != Issue::Idle {
            slot.done = true;
            self.active_remaining -= 1;
        }
    }

    /// The peer closed or reset a connection the driver still wanted.
    pub(super) fn closed_by_peer(&mut self, index: usize) {
        self.tally.verification.unexpected_closes += 1;
        self.retire(index, true);
    }

    pub(super) fn violation(&mut self, index: usize, violation: Violation) {
        match (violation, self.slots[index].conn.protocol()) {
            (Violation::Header, _)
            | (Violation::UnsolicitedBytes, Protocol::Frame | Protocol::File) => {
                self.tally.verification.header_mismatches += 1
            }
            (Violation::UnsolicitedBytes, Protocol::Echo) => {
                self.tally.verification.payload_mismatches += 1
            }
        }
        self.retire(index, true);
    }
}
