//! The server's side of one measured window: a snapshot when the engine
//! opens it and one when it closes it, their difference, and the kernel's
//! count of the same calls.

use crate::driver::measurement::WindowObserver;
use crate::metrics::cross_check::{CrossCheck, KernelWatch, WindowStart};
use crate::metrics::kernel_memory::MemoryProbe;
use crate::server::report::ServerReport;

use super::{ServerControl, ServerError};
use crate::sys::memory::ProcessMemory;

/// The server's side of one measured window.
#[derive(Clone, Debug)]
pub struct ServerWindow {
    pub start: ServerReport,
    pub end: ServerReport,
    /// `end.since(&start)`: what the server did inside the window.
    pub delta: ServerReport,
    /// Memory at the end of the window (local servers only).
    pub memory_at_end: Option<ProcessMemory>,
    /// Driver and kernel memory at the end of the window, with every
    /// connection of the case still open.
    pub probe_at_end: Option<MemoryProbe>,
    /// In-process against kernel syscall counts over the window, when a
    /// [`KernelWatch`] was given.
    pub cross_check: Option<CrossCheck>,
}

/// A [`WindowObserver`] that snapshots a server when the engine opens and
/// closes the measured window. The engine's hooks cannot fail, so errors are
/// kept and returned by [`SnapshotWindow::finish`].
///
/// With a [`KernelWatch`], the kernel counters are read just outside the two
/// snapshots (kernel start, snapshot, load, snapshot, kernel end), so the
/// kernel window encloses the in-process one.
pub struct SnapshotWindow<'a> {
    control: &'a mut dyn ServerControl,
    kernel: Option<&'a KernelWatch>,
    kernel_start: Option<WindowStart>,
    start: Option<Result<ServerReport, ServerError>>,
    end: Option<Result<ServerReport, ServerError>>,
    memory_at_end: Option<ProcessMemory>,
    probe_at_end: Option<MemoryProbe>,
    cross_check: Option<CrossCheck>,
}

impl<'a> SnapshotWindow<'a> {
    pub fn new(control: &'a mut dyn ServerControl) -> SnapshotWindow<'a> {
        SnapshotWindow {
            control,
            kernel: None,
            kernel_start: None,
            start: None,
            end: None,
            memory_at_end: None,
            probe_at_end: None,
            cross_check: None,
        }
    }

    /// Also cross-checks the window's syscall counts with `kernel`.
    pub fn with_kernel_watch(mut self, kernel: &'a KernelWatch) -> SnapshotWindow<'a> {
        self.kernel = Some(kernel);
        self
    }

    /// Both reports and their difference, or why they are missing.
    pub fn finish(self) -> Result<ServerWindow, WindowError> {
        let start = self.start.ok_or(WindowError::NeverOpened)??;
        let end = self.end.ok_or(WindowError::NeverClosed)??;
        if start.threads.len() != end.threads.len() {
            return Err(WindowError::ThreadsChanged {
                start: start.threads.len(),
                end: end.threads.len(),
            });
        }
        let delta = end.since(&start);
        // Counts the server read from the kernel itself beat counts read
        // from outside: they were taken in the same instant as its own.
        let cross_check = server_side_cross_check(&delta.total).or(self.cross_check);
        Ok(ServerWindow {
            start,
            end,
            delta,
            memory_at_end: self.memory_at_end,
            probe_at_end: self.probe_at_end,
            cross_check,
        })
    }
}

impl WindowObserver for SnapshotWindow<'_> {
    fn window_started(&mut self) {
        self.kernel_start = self.kernel.map(KernelWatch::start);
        self.start = Some(self.control.snapshot());
    }

    fn window_ended(&mut self) {
        let end = self.control.snapshot();
        if let (Some(kernel), Some(kernel_start), Some(Ok(start)), Ok(end)) =
            (self.kernel, &self.kernel_start, &self.start, &end)
        {
            let in_process = end.since(start).total.syscalls.calls;
            self.cross_check = Some(kernel.finish(kernel_start, &in_process));
        }
        self.end = Some(end);
        self.memory_at_end = self.control.memory();
        self.probe_at_end = Some(MemoryProbe::read());
    }
}

/// The cross-check of a window from the server's own kernel counts, when it
/// ran with `--kernel-counters`.
fn server_side_cross_check(window: &crate::server::ThreadReport) -> Option<CrossCheck> {
    if let Some(kernel) = &window.kernel_syscalls {
        return Some(CrossCheck::Checked(
            crate::metrics::cross_check::cross_check(&window.syscalls.calls, kernel),
        ));
    }
    window
        .kernel_unavailable_reason
        .as_ref()
        .map(CrossCheck::unavailable)
}

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("the load engine never opened the measured window")]
    NeverOpened,
    #[error("the load engine never closed the measured window")]
    NeverClosed,
    #[error("the server's thread count changed inside the window ({start} → {end})")]
    ThreadsChanged { start: usize, end: usize },
    #[error(transparent)]
    Server(#[from] ServerError),
}
