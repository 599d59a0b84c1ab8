//! The acceptor: a blocking `accept4`, then a thread for the connection.
//! Out of descriptors (or threads), it pauses as the epoll loop does:
//! it retries after [`ACCEPT_RETRY`], or sooner when a connection ends,
//! instead of spinning on a pending connection it cannot take.

use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{CONNECTION_STACK_BYTES, Published, Publisher, Shared, conn};
use crate::server::event_loop::ACCEPT_RETRY;
use crate::server::report::LoopCounters;
use crate::sys::{self, Fd};

pub(super) fn run(shared: Arc<Shared>, listener: Arc<Fd>) {
    let mut publisher = Publisher::new(&shared, Arc::clone(&shared.acceptor));
    let mut counters = LoopCounters::default();
    // A connection accepted while no thread could be started for it:
    // started first when accepting resumes, rather than closed unserved.
    let mut parked: Option<Fd> = None;
    while !shared.shutting_down() {
        let fd = match parked.take() {
            Some(fd) => fd,
            None => {
                publisher.publish(&shared, &counters);
                match sys::socket::accept_blocking(listener.as_fd()) {
                    Ok(fd) => fd,
                    // The controller shut the listener down (EINVAL).
                    Err(_) if shared.shutting_down() => break,
                    // The peer gave up before we accepted, or a signal.
                    Err(e)
                        if matches!(
                            e.raw_os_error(),
                            Some(libc::ECONNABORTED | libc::EINTR | libc::EPROTO | libc::EPERM)
                        ) =>
                    {
                        continue;
                    }
                    // EMFILE and the like, or anything else: pause.
                    Err(_) => {
                        pause(&shared, &mut counters);
                        continue;
                    }
                }
            }
        };
        if sys::socket::set_nodelay(fd.as_fd()).is_err() {
            continue;
        }
        match start_connection(&shared, fd) {
            Ok(()) => counters.connections_accepted += 1,
            Err((fd, _)) => {
                parked = fd;
                pause(&shared, &mut counters);
            }
        }
    }
    let last = publisher.finish(&counters);
    *super::lock(&shared.acceptor) = last;
}

/// Waits until [`ACCEPT_RETRY`] has passed, a connection has ended, or
/// shutdown began.
fn pause(shared: &Shared, counters: &mut LoopCounters) {
    counters.accept_pauses_emfile += 1;
    let deadline = Instant::now() + ACCEPT_RETRY;
    let mut table = shared.table();
    let closed_before = table.closed;
    while table.closed == closed_before && !shared.shutting_down() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        table = shared
            .changed
            .wait_timeout(table, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Registers the connection and starts its thread. When the thread cannot
/// be started (`EAGAIN`: out of threads or memory), the connection comes
/// back to be parked.
fn start_connection(shared: &Arc<Shared>, fd: Fd) -> Result<(), (Option<Fd>, io::Error)> {
    let fd = Arc::new(fd);
    let published = Arc::new(Mutex::new(Published::zero(shared.kernel_counters)));
    let key = shared.add_connection(Arc::clone(&fd), Arc::clone(&published));
    let started = {
        let (shared, fd) = (Arc::clone(shared), Arc::clone(&fd));
        std::thread::Builder::new()
            .name(format!("tpc-conn-{}", shared.thread_index))
            .stack_size(CONNECTION_STACK_BYTES)
            .spawn(move || conn::serve(shared, fd, published, key))
    };
    match started {
        Ok(_) => Ok(()),
        Err(e) => {
            shared.table().live.remove(&key);
            // The closure (and its references) went with the failed spawn.
            Err((Arc::into_inner(fd), e))
        }
    }
}
