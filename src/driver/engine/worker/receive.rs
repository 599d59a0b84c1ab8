//! A worker reading responses: verified where they land in the shared read
//! buffer, then the slot's next step (reconnect, finish, or issue more).

use std::cmp::Reverse;
use std::io;
use std::os::fd::AsFd;

use crate::driver::engine::plan::Issue;

use super::Worker;
use super::slot::SlotState;

impl Worker<'_> {
    /// Reads what the socket holds (within the slot's read budget, if it
    /// has one) and verifies it. `to_the_end`: the peer hung up, so read
    /// until end of file rather than stopping at the first short read.
    pub(super) fn read_ready(&mut self, index: usize, to_the_end: bool) {
        if self.slots[index].socket.is_none() {
            return;
        }
        let to_the_end = to_the_end || self.slots[index].peer_hung_up;
        loop {
            let slot = &mut self.slots[index];
            let limit = match slot.read_budget.as_mut() {
                None => self.read_buffer.len(),
                Some(budget) => {
                    let allowed = budget.available(self.shared.now_ns());
                    if allowed == 0 {
                        // Bytes may be waiting; come back when the budget
                        // is full again rather than spin.
                        slot.read_parked = true;
                        slot.peer_hung_up = to_the_end;
                        let wake = Reverse((budget.full_at_ns(), index, slot.generation));
                        self.parked_readers.push(wake);
                        break;
                    }
                    allowed.min(self.read_buffer.len())
                }
            };
            let Some(socket) = self.slots[index].socket.as_ref() else {
                return;
            };
            match crate::sys::io::read(socket.as_fd(), &mut self.read_buffer[..limit]) {
                Ok(0) => return self.closed_by_peer(index),
                Ok(n) => {
                    let now = self.shared.now_ns();
                    let slot = &mut self.slots[index];
                    if let Some(budget) = slot.read_budget.as_mut() {
                        budget.spend(n);
                    }
                    if let Err(violation) = slot.conn.on_response_bytes(
                        &self.read_buffer[..n],
                        self.payload,
                        now,
                        &mut self.tally,
                    ) {
                        return self.violation(index, violation);
                    }
                    if n < limit && !to_the_end {
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

    /// Reads for every parked slot whose read budget is full by `now`.
    pub(super) fn wake_parked_readers(&mut self, now: u64) {
        while let Some(&Reverse((full_at, index, generation))) = self.parked_readers.peek() {
            if full_at > now {
                break;
            }
            self.parked_readers.pop();
            let slot = &mut self.slots[index];
            // A slot closed or reconnected since it parked has nothing to
            // read from that socket any more.
            if !slot.read_parked || slot.generation != generation || slot.state != SlotState::Open {
                continue;
            }
            slot.read_parked = false;
            let to_the_end = slot.peer_hung_up;
            self.read_ready(index, to_the_end);
        }
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
