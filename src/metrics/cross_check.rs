//! The trust check: do the in-process syscall counts match the kernel's?
//!
//! In-process counts come from `sys::counters` and see only calls made
//! through `src/sys`. Kernel counts come from `sys::perf` tracepoints and
//! see every call. For each kind the two must agree within
//! [`TOLERANCE_RELATIVE`] of the kernel count (or [`TOLERANCE_ABSOLUTE_CALLS`],
//! whichever is larger); any kind outside it fails the check. The kernel's
//! total also shows how many syscalls of kinds the suite does not track at
//! all happened in the window (`unaccounted_syscalls`).
//!
//! The comparison ([`cross_check`], [`CrossCheck`]) is pure: it compares two
//! window deltas and says what it found, so it is tested without a kernel.
//! Only [`KernelWatch`] touches the kernel: it attaches perf counters to a
//! server's threads and reads them at each window's boundaries.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::sys::counters::{KindCounts, SyscallKind};
use crate::sys::perf::{KernelSyscallCounters, KernelSyscallCounts};

/// Largest disagreement allowed, relative to the kernel's count.
pub const TOLERANCE_RELATIVE: f64 = 0.01;

/// Disagreement always allowed, in calls. The in-process snapshot (taken by
/// a serving thread when it handles the control `snapshot` command) and
/// the kernel read (taken by the orchestrator just before and just after
/// that command) cannot be taken at the same instant; at each of the two
/// window boundaries the call in flight can land on one side only, so one
/// call per boundary is boundary noise, not a missed call. Without this
/// slack a kind with a handful of calls (e.g. `accept4` in a ping-pong
/// window) would fail on a difference of one.
pub const TOLERANCE_ABSOLUTE_CALLS: u64 = 2;

/// In-process and kernel counts of one kind over one window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindComparison {
    /// Report name of the kind (`SyscallKind::name`).
    pub syscall: String,
    pub in_process_calls: u64,
    /// `None` when the kernel has no tracepoint for this kind.
    pub kernel_calls: Option<u64>,
    /// `kernel_calls - in_process_calls`; positive means calls the
    /// in-process count missed.
    pub difference_calls: Option<i64>,
    /// `None` when the kernel count is unavailable, so nothing was checked.
    pub agrees: Option<bool>,
}

/// The outcome of comparing one window's counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CrossCheckReport {
    /// True when every kind with a kernel count agrees.
    pub agrees: bool,
    pub tolerance_relative: f64,
    pub tolerance_absolute_calls: u64,
    /// One entry per kind, in `SyscallKind::ALL` order.
    pub kinds: Vec<KindComparison>,
    /// Names of the kinds that failed, for a one-line summary.
    pub disagreeing_kinds: Vec<String>,
    /// Names of the kinds the kernel could not count.
    pub unchecked_kinds: Vec<String>,
    /// `raw_syscalls:sys_enter` in the window: every syscall of the
    /// watched threads.
    pub kernel_total_syscalls: u64,
    /// Sum of the kernel's per-kind counts.
    pub kernel_tracked_kinds_syscalls: u64,
    /// `kernel_total_syscalls - kernel_tracked_kinds_syscalls`: syscalls of
    /// kinds the in-process count does not track at all.
    pub unaccounted_syscalls: u64,
}

/// The trust check of one window, as results record it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CrossCheck {
    Checked(CrossCheckReport),
    /// The kernel refused counters (or they could not be read); the run
    /// goes on with in-process counts only.
    Unavailable {
        reason: String,
    },
}

/// Whether `in_process` and `kernel` agree within the tolerance.
pub fn within_tolerance(in_process: u64, kernel: u64) -> bool {
    let difference = in_process.abs_diff(kernel);
    let allowed = (kernel as f64 * TOLERANCE_RELATIVE).max(TOLERANCE_ABSOLUTE_CALLS as f64);
    difference as f64 <= allowed
}

/// Compares one window's in-process counts (the server's `calls` delta,
/// summed over the same threads the kernel counters watch) with the
/// kernel's delta over the same window.
pub fn cross_check(in_process: &KindCounts, kernel: &KernelSyscallCounts) -> CrossCheckReport {
    let mut kinds = Vec::with_capacity(SyscallKind::ALL.len());
    let mut disagreeing_kinds = Vec::new();
    let mut unchecked_kinds = Vec::new();
    let mut kernel_tracked_kinds_syscalls = 0u64;
    for kind in SyscallKind::ALL {
        let ours = in_process.get(kind);
        let comparison = if kernel.is_available(kind) {
            let theirs = kernel.calls.get(kind);
            kernel_tracked_kinds_syscalls += theirs;
            let agrees = within_tolerance(ours, theirs);
            if !agrees {
                disagreeing_kinds.push(kind.name().to_string());
            }
            KindComparison {
                syscall: kind.name().to_string(),
                in_process_calls: ours,
                kernel_calls: Some(theirs),
                difference_calls: Some(theirs as i64 - ours as i64),
                agrees: Some(agrees),
            }
        } else {
            unchecked_kinds.push(kind.name().to_string());
            KindComparison {
                syscall: kind.name().to_string(),
                in_process_calls: ours,
                kernel_calls: None,
                difference_calls: None,
                agrees: None,
            }
        };
        kinds.push(comparison);
    }
    CrossCheckReport {
        agrees: disagreeing_kinds.is_empty(),
        tolerance_relative: TOLERANCE_RELATIVE,
        tolerance_absolute_calls: TOLERANCE_ABSOLUTE_CALLS,
        kinds,
        disagreeing_kinds,
        unchecked_kinds,
        kernel_total_syscalls: kernel.total_syscalls,
        kernel_tracked_kinds_syscalls,
        unaccounted_syscalls: kernel
            .total_syscalls
            .saturating_sub(kernel_tracked_kinds_syscalls),
    }
}

impl CrossCheck {
    /// The check of a window, or why there is none. `kernel` is the
    /// kernel delta over the window, or the reason it could not be had
    /// (e.g. a `KernelCountsUnavailable` or an `io::Error` from a read).
    pub fn of_window<E: fmt::Display>(
        in_process: &KindCounts,
        kernel: Result<&KernelSyscallCounts, E>,
    ) -> CrossCheck {
        match kernel {
            Ok(kernel) => CrossCheck::Checked(cross_check(in_process, kernel)),
            Err(reason) => CrossCheck::unavailable(reason),
        }
    }

    pub fn unavailable(reason: impl fmt::Display) -> CrossCheck {
        CrossCheck::Unavailable {
            reason: reason.to_string(),
        }
    }

    /// `Some(true)` passed, `Some(false)` failed the run's trust check,
    /// `None` could not be checked.
    pub fn passed(&self) -> Option<bool> {
        match self {
            CrossCheck::Checked(report) => Some(report.agrees),
            CrossCheck::Unavailable { .. } => None,
        }
    }
}

/// Kernel counters on one server's serving threads, or why there are
/// none: what `run` keeps per server process to cross-check each window.
///
/// Bracket each window as `start()` → in-process snapshot → load →
/// in-process snapshot → `finish()`, so the kernel window encloses the
/// in-process one and boundary calls can only raise the kernel count.
pub struct KernelWatch {
    counters: Result<KernelSyscallCounters, String>,
}

/// The kernel counts at the start of a window (or why they are missing).
#[derive(Clone, Debug)]
pub struct WindowStart(Result<KernelSyscallCounts, String>);

impl KernelWatch {
    /// Attaches to `tids` (the server's `ThreadReport::tid`s). Never fails:
    /// a refusal becomes the reason every window reports.
    pub fn attach(tids: &[i32]) -> KernelWatch {
        KernelWatch {
            counters: KernelSyscallCounters::attach(tids).map_err(|e| e.to_string()),
        }
    }

    /// A watch that reports `reason` for every window (e.g. no server
    /// thread ids because the control interface is unreachable).
    pub fn unavailable(reason: impl fmt::Display) -> KernelWatch {
        KernelWatch {
            counters: Err(reason.to_string()),
        }
    }

    /// Why there are no kernel counts, if there are none.
    pub fn unavailable_reason(&self) -> Option<&str> {
        self.counters.as_ref().err().map(String::as_str)
    }

    /// Reads the kernel counts that open a window.
    pub fn start(&self) -> WindowStart {
        WindowStart(self.read())
    }

    /// Reads the kernel counts that close the window opened by `start` and
    /// compares the window with `in_process` (the server's `calls` delta
    /// over the same window, summed over its serving threads).
    pub fn finish(&self, start: &WindowStart, in_process: &KindCounts) -> CrossCheck {
        match (&start.0, self.read()) {
            (Ok(opening), Ok(closing)) => {
                CrossCheck::Checked(cross_check(in_process, &closing.since(opening)))
            }
            (Err(reason), _) => CrossCheck::unavailable(reason),
            (_, Err(reason)) => CrossCheck::unavailable(reason),
        }
    }

    fn read(&self) -> Result<KernelSyscallCounts, String> {
        match &self.counters {
            Ok(counters) => counters
                .read()
                .map_err(|e| format!("reading the kernel counters failed: {e}")),
            Err(reason) => Err(reason.clone()),
        }
    }
}

/// One line for the screen and `summary.md`.
impl fmt::Display for CrossCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrossCheck::Unavailable { reason } => {
                write!(f, "kernel cross-check unavailable: {reason}")
            }
            CrossCheck::Checked(report) if report.agrees => {
                let checked = report.kinds.len() - report.unchecked_kinds.len();
                write!(
                    f,
                    "kernel cross-check passed: {checked} syscall kinds agree within {}% (or {} calls); {} syscalls of untracked kinds",
                    report.tolerance_relative * 100.0,
                    report.tolerance_absolute_calls,
                    report.unaccounted_syscalls
                )?;
                if !report.unchecked_kinds.is_empty() {
                    write!(
                        f,
                        "; not checked (no tracepoint): {}",
                        report.unchecked_kinds.join(", ")
                    )?;
                }
                Ok(())
            }
            CrossCheck::Checked(report) => {
                write!(f, "kernel cross-check FAILED:")?;
                let failed = report.kinds.iter().filter(|k| k.agrees == Some(false));
                for (i, kind) in failed.enumerate() {
                    let kernel = kind.kernel_calls.unwrap_or(0);
                    write!(
                        f,
                        "{} {} in-process {} vs kernel {} ({:+})",
                        if i == 0 { "" } else { ";" },
                        kind.syscall,
                        kind.in_process_calls,
                        kernel,
                        kind.difference_calls.unwrap_or(0)
                    )?;
                }
                write!(
                    f,
                    " — some syscalls bypass src/sys (or were made outside the window)"
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(SyscallKind, u64)]) -> KindCounts {
        let mut out = KindCounts::default();
        for (kind, n) in pairs {
            out.0[*kind as usize] = *n;
        }
        out
    }

    fn kernel(pairs: &[(SyscallKind, u64)], total: u64) -> KernelSyscallCounts {
        KernelSyscallCounts {
            calls: counts(pairs),
            total_syscalls: total,
            unavailable_kinds: Vec::new(),
        }
    }

    #[test]
    fn tolerance_is_one_percent_of_the_kernel_count_or_two_calls() {
        assert!(within_tolerance(1000, 1010));
        assert!(!within_tolerance(1000, 1011));
        assert!(within_tolerance(1010, 1000));
        assert!(!within_tolerance(1011, 1000));
        assert!(within_tolerance(0, 2));
        assert!(!within_tolerance(0, 3));
        assert!(within_tolerance(3, 1));
        assert!(!within_tolerance(4, 1));
        assert!(within_tolerance(0, 0));
    }

    #[test]
    fn equal_counts_agree_and_untracked_calls_are_reported() {
        let ours = counts(&[(SyscallKind::Read, 5000), (SyscallKind::EpollWait, 2500)]);
        let theirs = kernel(
            &[(SyscallKind::Read, 5000), (SyscallKind::EpollWait, 2501)],
            7530,
        );
        let report = cross_check(&ours, &theirs);
        assert!(report.agrees);
        assert!(report.disagreeing_kinds.is_empty());
        assert_eq!(report.kinds.len(), SyscallKind::ALL.len());
        let read = &report.kinds[SyscallKind::Read as usize];
        assert_eq!(read.syscall, "read");
        assert_eq!(read.kernel_calls, Some(5000));
        assert_eq!(read.agrees, Some(true));
        let wait = &report.kinds[SyscallKind::EpollWait as usize];
        assert_eq!(wait.difference_calls, Some(1));
        assert_eq!(report.kernel_tracked_kinds_syscalls, 7501);
        assert_eq!(report.unaccounted_syscalls, 29);
        let check = CrossCheck::Checked(report);
        assert_eq!(check.passed(), Some(true));
        let line = check.to_string();
        assert!(line.starts_with("kernel cross-check passed"), "{line}");
        assert!(line.contains("29 syscalls of untracked kinds"), "{line}");
    }

    #[test]
    fn calls_the_in_process_count_missed_fail_the_check() {
        let ours = counts(&[(SyscallKind::Read, 1000), (SyscallKind::Write, 1000)]);
        let theirs = kernel(
            &[(SyscallKind::Read, 1050), (SyscallKind::Write, 1000)],
            2050,
        );
        let report = cross_check(&ours, &theirs);
        assert!(!report.agrees);
        assert_eq!(report.disagreeing_kinds, vec!["read".to_string()]);
        let read = &report.kinds[SyscallKind::Read as usize];
        assert_eq!(read.difference_calls, Some(50));
        assert_eq!(read.agrees, Some(false));
        assert_eq!(report.kinds[SyscallKind::Write as usize].agrees, Some(true));
        let check = CrossCheck::Checked(report);
        assert_eq!(check.passed(), Some(false));
        let line = check.to_string();
        assert!(
            line.contains("FAILED: read in-process 1000 vs kernel 1050 (+50)"),
            "{line}"
        );
    }

    #[test]
    fn in_process_counts_above_the_kernel_also_fail() {
        // More in-process than kernel calls means the two windows do not
        // line up (or a wrapper counts a call it never made).
        let ours = counts(&[(SyscallKind::Splice, 200)]);
        let theirs = kernel(&[(SyscallKind::Splice, 100)], 100);
        let report = cross_check(&ours, &theirs);
        assert!(!report.agrees);
        assert_eq!(
            report.kinds[SyscallKind::Splice as usize].difference_calls,
            Some(-100)
        );
    }

    #[test]
    fn kinds_without_a_tracepoint_are_listed_not_judged() {
        let ours = counts(&[(SyscallKind::Splice, 900), (SyscallKind::Read, 10)]);
        let mut theirs = kernel(&[(SyscallKind::Read, 10)], 10);
        theirs.unavailable_kinds = vec!["splice".to_string()];
        let report = cross_check(&ours, &theirs);
        assert!(report.agrees);
        assert_eq!(report.unchecked_kinds, vec!["splice".to_string()]);
        let splice = &report.kinds[SyscallKind::Splice as usize];
        assert_eq!(splice.kernel_calls, None);
        assert_eq!(splice.agrees, None);
        let line = CrossCheck::Checked(report).to_string();
        assert!(
            line.contains("not checked (no tracepoint): splice"),
            "{line}"
        );
    }

    #[test]
    fn unavailable_kernel_counts_say_why() {
        let ours = counts(&[(SyscallKind::Read, 1)]);
        let check =
            CrossCheck::of_window::<String>(&ours, Err("tracefs is not mounted".to_string()));
        assert_eq!(check.passed(), None);
        assert_eq!(
            check.to_string(),
            "kernel cross-check unavailable: tracefs is not mounted"
        );
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json["status"], "unavailable");
        assert_eq!(json["reason"], "tracefs is not mounted");
    }

    #[test]
    fn an_unavailable_watch_reports_its_reason_for_every_window() {
        let watch = KernelWatch::unavailable("no server thread ids");
        assert_eq!(watch.unavailable_reason(), Some("no server thread ids"));
        let start = watch.start();
        let check = watch.finish(&start, &KindCounts::default());
        assert_eq!(
            check,
            CrossCheck::Unavailable {
                reason: "no server thread ids".to_string()
            }
        );
    }

    #[test]
    fn checked_result_round_trips_through_json() {
        let ours = counts(&[(SyscallKind::Read, 3)]);
        let theirs = kernel(&[(SyscallKind::Read, 3)], 4);
        let check = CrossCheck::of_window::<String>(&ours, Ok(&theirs));
        let json = serde_json::to_value(&check).unwrap();
        assert_eq!(json["status"], "checked");
        assert_eq!(json["agrees"], true);
        assert_eq!(json["unaccounted_syscalls"], 1);
        assert_eq!(json["kinds"][SyscallKind::Read as usize]["kernel_calls"], 3);
        let back: CrossCheck = serde_json::from_value(json).unwrap();
        assert_eq!(back, check);
    }
}
