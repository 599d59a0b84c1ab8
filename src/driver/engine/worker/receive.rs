//! A worker reading responses: verified where they land in the shared read
//! buffer, then the slot's next step (reconnect, finish, or issue more).

use std::io;

use crate::driver::engine::plan::Issue;

use super::Worker;
use super::slot::SlotState;

impl Worker<'_> {
    pub(super) fn read_ready(&mut self, index: usize, to_the_end: bool) {
        let Some(fd) = self.slots[index].raw_fd() else {
            return;
        };
        loop {
            match crate::sys::io::read(fd, &mut self.read_buffer) {
                Ok(0) => return self.closed_by_peer(index),
                Ok(n) => {
                    let now = self.shared.now_ns();
                    let slot = &mut self.slots[index];
                    if let Err(violation) = slot.conn.on_response_bytes(
                        &self.read_buffer[..n],
                        self.payload,
                        now,
                        &mut self.tally,
                    ) {
                        return self.violation(index, violation);
                    }
                    if n < self.read_buffer.len() && !to_the_end {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return self.closed_by_peer(index),
            }
        }
        let now = self.shared.now_ns();
        self.after_responses(index, now);
    }

    pub(super) fn after_responses(&mut self, index: usize, now: u64) {
        let slot = &self.slots[index];
        match slot.issue {
            Issue::Churn(per_connection)
                if slot.requests_on_socket >= per_connection && slot.conn.in_flight() == 0 =>
            {
                // Done with this connection: close it and open the next.
                let slot = &mut self.slots[index];
                slot.socket = None;
                slot.state = SlotState::NotConnected;
                if self.issuing {
                    self.start_connect(index);
                }
                return;
            }
            Issue::Trace(ref events)
                if slot.next_scheduled as usize >= events.len() && slot.conn.in_flight() == 0 =>
            {
                self.mark_done(index);
            }
            _ => {}
        }
        if self.issuing {
            self.top_up(index, now);
        } else {
            self.flush(index);
        }
    }
}
