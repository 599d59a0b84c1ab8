//! The accept side of the multishot loop: arming the multishot accept,
//! taking each accepted socket into a connection entry and its registered
//! file slot, and pausing accepting at the fd limit or a full file table.

use super::*;

impl MultishotLoop {
    pub(super) fn arm_accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        if self.accept_op.is_some() || self.draining {
            return;
        }
        match self
            .ring
            .push_accept_multishot(listener.as_fd(), LISTENER_TOKEN)
        {
            Ok(op) => {
                self.accept_op = Some(op);
                if self.accept_armed_before {
                    sys::uring_ops::note_multishot_rearm();
                }
                self.accept_armed_before = true;
            }
            // Retried as after fd exhaustion.
            Err(_) => self.pause_accepting(),
        }
    }

    pub(super) fn complete(&mut self, completion: Completion<Vectored>) -> io::Result<()> {
        match completion.op {
            Op::Accept => self.accepted(completion),
            Op::PollIn => {
                self.waker_op = None;
                if completion.result.is_ok() && !self.draining {
                    // Drained before re-arming, or the poll would fire at once.
                    let requests = self.control.take_requests()?;
                    self.answer(requests)?;
                    self.arm_waker()?;
                }
            }
            Op::Recv => self.received(completion),
            Op::Writev => self.sent(completion),
            Op::Close => self.slot_closed(completion),
            Op::Send | Op::Readv | Op::Splice => debug_assert!(false, "not queued by this loop"),
        }
        Ok(())
    }

    /// A multishot accept takes the process's fd limit when it is armed
    /// (the kernel reads `RLIMIT_NOFILE` as it prepares the SQE), so a
    /// limit lowered later (tests do, with `prlimit`) would not stop it:
    /// each accepted connection is checked against the limit now (one
    /// `prlimit64`), and one past it pauses accepting as `EMFILE` would,
    /// parked rather than closed unserved. The registered file table does
    /// not make this check redundant: the accepted sockets are fds (module
    /// doc), and the table is sized to the limit at set-up, not to the
    /// limit now.
    pub(super) fn accepted(&mut self, completion: Completion<Vectored>) {
        if !completion.more {
            self.accept_op = None;
        }
        match (completion.accepted, completion.result) {
            (Some(fd), _) if self.past_fd_limit(&fd) => {
                self.parked.push(fd);
                if let (true, Some(op)) = (completion.more, self.accept_op) {
                    let _ = self.ring.cancel(op);
                }
                self.pause_accepting();
                return;
            }
            (Some(fd), _) => self.register(fd),
            (None, Err(e)) if is_fd_exhaustion(&e) => {
                // The kernel ends a multishot accept on any error; should
                // it not, stop it, so the pause holds.
                if let (true, Some(op)) = (completion.more, self.accept_op) {
                    let _ = self.ring.cancel(op);
                }
                self.pause_accepting();
                return;
            }
            // Cancelled (shutdown), or a failure of one connection (the
            // peer gave up, a signal): the accept goes on or is re-armed.
            (None, _) => {}
        }
        if self.accept_paused_since.is_none() && self.shutdown_deadline.is_none() {
            self.arm_accept();
        }
    }

    pub(super) fn past_fd_limit(&self, fd: &Fd) -> bool {
        match sys::rlimit::nofile() {
            Ok((soft, _)) => fd.as_raw_fd() as u64 >= soft,
            Err(_) => false,
        }
    }

    pub(super) fn register(&mut self, fd: Fd) {
        if self.shutdown_deadline.is_some() || sys::socket::set_nodelay(fd.as_fd()).is_err() {
            return;
        }
        let index = match self.free_slots.pop() {
            Some(index) => index,
            None if self.slots.len() < self.ring.fixed_slots() as usize => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: None,
                });
                (self.slots.len() - 1) as u32
            }
            None => {
                // Every registered file slot is taken (or closing): the
                // same as the fd limit, parked until a slot comes back.
                self.parked.push(fd);
                if let Some(op) = self.accept_op {
                    let _ = self.ring.cancel(op);
                }
                self.pause_accepting();
                return;
            }
        };
        if self.ring.install_fixed(index, fd.as_fd()).is_err() {
            // Dropping `fd` refuses the connection: closed unserved, as
            // when `set_nodelay` fails.
            self.free_slots.push(index);
            return;
        }
        self.slots[index as usize].conn = Some(MultishotConn::new(fd, &self.config.conn));
        self.open_connections += 1;
        self.counters.connections_accepted += 1;
        self.advance(index);
    }

    pub(super) fn pause_accepting(&mut self) {
        if self.accept_paused_since.is_some() {
            return;
        }
        self.accept_paused_since = Some(Instant::now());
        self.counters.accept_pauses_emfile += 1;
    }

    pub(super) fn resume_accepting(&mut self) {
        if self.accept_paused_since.take().is_some() {
            self.arm_accept();
        }
    }
}
