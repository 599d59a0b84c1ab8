//! A worker issuing and writing requests: closed-loop slots keep their
//! window full, open-loop slots follow their schedule.

use std::cmp::Reverse;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;

use crate::driver::engine::connection::WriteProgress;
use crate::driver::engine::plan::Issue;
use crate::driver::sizes::SizeSampler;

use super::Worker;
use super::slot::{Slot, SlotState};

impl Worker<'_> {
    /// Starts every open slot: closed-loop slots fill their window,
    /// open-loop slots join the schedule.
    pub(super) fn start_sending(&mut self, now: u64) {
        let start = self.shared.send_start_ns.load(Ordering::Acquire);
        for index in 0..self.slots.len() {
            if self.slots[index].issue.is_open_loop() {
                if let Some(due) = self.scheduled_time(index, start) {
                    self.due.push(Reverse((due, index)));
                }
            } else if self.slots[index].state == SlotState::Open {
                self.top_up(index, now);
            }
        }
    }

    /// When the slot's next scheduled request is due (`None`: no more).
    pub(super) fn scheduled_time(&self, index: usize, start_ns: u64) -> Option<u64> {
        let slot = &self.slots[index];
        let k = slot.next_scheduled;
        match &slot.issue {
            Issue::Rate {
                rank,
                stride,
                ns_per_request,
            } => Some(start_ns + ((k * stride + rank) as f64 * ns_per_request) as u64),
            Issue::Trace(events) => events.get(k as usize).map(|&(due, _)| start_ns + due),
            _ => None,
        }
    }

    /// Issues every open-loop request due by `now`, at its intended time.
    pub(super) fn issue_due(&mut self, now: u64) {
        let start = self.shared.send_start_ns.load(Ordering::Acquire);
        while let Some(&Reverse((due, index))) = self.due.peek() {
            if due > now {
                break;
            }
            self.due.pop();
            let payload = self.payload;
            let slot = &mut self.slots[index];
            if slot.state == SlotState::Retired {
                continue;
            }
            let size = match &slot.issue {
                Issue::Trace(events) => events[slot.next_scheduled as usize].1,
                _ => match slot.sampler.as_mut() {
                    Some(sampler) => sampler.next_size(),
                    None => continue,
                },
            };
            slot.next_scheduled += 1;
            if slot.state == SlotState::Open {
                slot.conn.issue(size, due, payload);
                if self.tally.in_window(due) {
                    self.tally.requests_issued += 1;
                }
                self.flush(index);
            }
            if let Some(next) = self.scheduled_time(index, start) {
                self.due.push(Reverse((next, index)));
            } else if self.slots[index].conn.in_flight() == 0 {
                self.mark_done(index);
            }
        }
    }

    pub(super) fn draw_size(slot: &mut Slot) -> u32 {
        match slot.peeked_size.take() {
            Some(size) => size,
            None => slot.sampler.as_mut().map_or(0, SizeSampler::next_size),
        }
    }

    /// Closed loop: issues requests until the slot's window is full, then
    /// writes them.
    pub(super) fn top_up(&mut self, index: usize, now: u64) {
        let payload = self.payload;
        let slot = &mut self.slots[index];
        if slot.state != SlotState::Open {
            return;
        }
        let mut issued = 0u64;
        match slot.issue {
            Issue::Depth(depth) => {
                while slot.conn.in_flight() < depth as usize {
                    let size = Self::draw_size(slot);
                    slot.conn.issue(size, now, payload);
                    issued += 1;
                }
            }
            Issue::Window(window_bytes) => loop {
                let size = match slot.peeked_size {
                    Some(size) => size,
                    None => {
                        let size = Self::draw_size(slot);
                        slot.peeked_size = Some(size);
                        size
                    }
                };
                if slot.conn.in_flight() > 0
                    && slot.conn.in_flight_payload_bytes() + u64::from(size) > window_bytes
                {
                    break;
                }
                slot.peeked_size = None;
                slot.conn.issue(size, now, payload);
                issued += 1;
            },
            Issue::Churn(per_connection) => {
                if slot.conn.in_flight() == 0 && slot.requests_on_socket < per_connection {
                    let size = Self::draw_size(slot);
                    slot.conn.issue(size, now, payload);
                    slot.requests_on_socket += 1;
                    issued += 1;
                }
            }
            Issue::Rate { .. } | Issue::Trace(_) | Issue::Idle => {}
        }
        if issued > 0 && self.tally.in_window(now) {
            self.tally.requests_issued += issued;
        }
        self.flush(index);
    }

    pub(super) fn flush(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        if slot.write_blocked || !slot.conn.has_unwritten() {
            return;
        }
        let Some(socket) = slot.socket.as_ref() else {
            return;
        };
        match slot.conn.write_pending(socket.as_fd(), self.payload) {
            Ok(WriteProgress::AllWritten) => {}
            Ok(WriteProgress::Blocked) => slot.write_blocked = true,
            // EPIPE or ECONNRESET: the server went away.
            Err(_) => self.closed_by_peer(index),
        }
    }
}
