//! `epoll-bench doctor`: does this machine measure the variants, or its own
//! limits?
//!
//! Each check reads one setting (a sysctl under `proc/sys`, a file under
//! `sys`, or a limit of this process), says OK, WARN or FAIL, why that
//! setting matters for this benchmark, and the exact command that fixes it.
//! Files are read under [`DoctorArgs::root`] so tests can point the doctor
//! at a fake tree; process facts (rlimits, usable CPUs, user) come in as a
//! [`ProcessFacts`] for the same reason.
//!
//! `run` records the report in its results' environment block, so a
//! reviewer sees what the machine looked like when the figures were taken.

#![forbid(unsafe_code)]

mod checks;

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::metrics::cpu_steal::CpuTimes;
pub use crate::results::doctor_report::{DoctorReport, Finding, Status};
use crate::sys::perf::KernelSyscallCounters;
use crate::sys::thread::current_tid;

/// Options of `epoll-bench doctor`.
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct DoctorArgs {
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Connections the runs will open (checked against fd limits, backlogs
    /// and local ports).
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = crate::units::number(0u64.., ""))]
    pub connections: u64,

    /// Pipe size the splice variants will ask for, in bytes.
    #[arg(
        long = "pipe-size",
        value_name = "BYTES",
        default_value_t = 1 << 20,
        value_parser = crate::units::number(0u64.., "")
    )]
    pub pipe_size_bytes: u64,

    /// Read `proc/sys/...` and `sys/...` under this folder instead of `/`
    /// (for tests).
    #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
    pub root: PathBuf,
}

impl Default for DoctorArgs {
    fn default() -> Self {
        DoctorArgs {
            json: false,
            connections: 10_000,
            pipe_size_bytes: 1 << 20,
            root: PathBuf::from("/"),
        }
    }
}

/// What the doctor needs to know about the process that will run the
/// benchmark, besides files.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessFacts {
    /// RLIMIT_NOFILE, soft and hard (`u64::MAX` is unlimited).
    pub nofile_soft: u64,
    pub nofile_hard: u64,
    /// CPUs this process may run on (affinity and cgroup quota applied).
    pub usable_cpus: usize,
    /// Effective user id; `None` if unknown.
    pub effective_uid: Option<u32>,
    /// Outcome of really attaching kernel syscall counters to this thread:
    /// `Err(reason)` says why not; `None` when not tried (fake trees).
    pub kernel_counters_probe: Option<Result<(), String>>,
    /// Steal over a short live sample ([`STEAL_SAMPLE`]), percent of the
    /// machine's CPU time; `None` when not sampled (fake trees).
    pub steal_sample_percent: Option<f64>,
}

/// How long the doctor watches steal time.
pub const STEAL_SAMPLE: std::time::Duration = std::time::Duration::from_millis(500);

impl ProcessFacts {
    /// The facts of the calling process, including a live attempt to
    /// attach kernel syscall counters.
    pub fn of_this_process() -> io::Result<ProcessFacts> {
        let (nofile_soft, nofile_hard) = crate::sys::rlimit::nofile()?;
        let usable_cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let effective_uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| checks::effective_uid_from_status(&status));
        let kernel_counters_probe = Some(
            KernelSyscallCounters::attach(&[current_tid()])
                .map(drop)
                .map_err(|e| e.to_string()),
        );
        let steal_before = CpuTimes::now();
        std::thread::sleep(STEAL_SAMPLE);
        let steal_sample_percent = steal_before
            .zip(CpuTimes::now())
            .and_then(|(before, after)| before.steal_percent_until(&after));
        Ok(ProcessFacts {
            steal_sample_percent,
            nofile_soft,
            nofile_hard,
            usable_cpus,
            effective_uid,
            kernel_counters_probe,
        })
    }
}

/// `epoll-bench doctor`: checks this machine (or the tree under
/// `args.root`, with this process's limits) and returns the report.
pub fn run(args: &DoctorArgs) -> anyhow::Result<DoctorReport> {
    let mut facts = ProcessFacts::of_this_process()?;
    if args.root != std::path::Path::new("/") {
        // A fake tree describes another machine: probing this kernel would
        // contradict it.
        facts.kernel_counters_probe = None;
    }
    Ok(diagnose(args, &facts))
}

/// Runs every check against the files under `args.root` and `facts`.
pub fn diagnose(args: &DoctorArgs, facts: &ProcessFacts) -> DoctorReport {
    let findings = checks::all(args, facts);
    let count = |status| findings.iter().filter(|f| f.status == status).count();
    DoctorReport {
        connections: args.connections,
        pipe_size_bytes: args.pipe_size_bytes,
        root: args.root.display().to_string(),
        ok_count: count(Status::Ok),
        warn_count: count(Status::Warn),
        fail_count: count(Status::Fail),
        findings,
    }
}

/// The report as a table for a terminal: one line per check, then why it
/// matters and the fix for anything not OK.
pub fn render_text(report: &DoctorReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "epoll-bench doctor: {} OK, {} WARN, {} FAIL (for {} connections, {}-byte pipes)",
        report.ok_count,
        report.warn_count,
        report.fail_count,
        report.connections,
        report.pipe_size_bytes
    );
    let _ = writeln!(out, "{}", capacity_verdict(report));
    let check_width = report
        .findings
        .iter()
        .map(|f| f.check.len())
        .max()
        .unwrap_or(0);
    for finding in &report.findings {
        let _ = writeln!(
            out,
            "\n{:<4}  {:<width$}  {}",
            finding.status.label(),
            finding.check,
            finding.message,
            width = check_width
        );
        let indent = " ".repeat(6);
        let _ = writeln!(out, "{indent}why: {}", finding.why);
        if let Some(fix) = &finding.fix {
            let _ = writeln!(out, "{indent}fix: {fix}");
        }
    }
    out
}

/// One line: whether this machine can hold `report.connections` at once,
/// from the checks that bound it (descriptors, ports, files, TCP memory,
/// memory), naming the ones that say no.
pub fn capacity_verdict(report: &DoctorReport) -> String {
    let n = report.connections;
    let active = n.min(checks::ASSUMED_ACTIVE_CONNECTIONS);
    let failing: Vec<&str> = checks::CAPACITY_CHECKS
        .iter()
        .copied()
        .filter(|check| {
            report
                .finding(check)
                .is_some_and(|f| f.status == Status::Fail)
        })
        .collect();
    if failing.is_empty() {
        format!(
            "{n} connections ({active} active): this machine can hold them (see the WARN \
             findings for what they take)"
        )
    } else {
        format!(
            "{n} connections ({active} active): this machine cannot hold them: {}",
            failing.join(", ")
        )
    }
}

/// What raising the soft RLIMIT_NOFILE did, for `run` to say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NofileRaise {
    pub soft_before: u64,
    pub soft_after: u64,
    pub hard: u64,
}

impl NofileRaise {
    pub fn changed(&self) -> bool {
        self.soft_after != self.soft_before
    }
}

impl std::fmt::Display for NofileRaise {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.changed() {
            write!(
                f,
                "raised the RLIMIT_NOFILE soft limit from {} to {} (the hard limit)",
                checks::limit_text(self.soft_before),
                checks::limit_text(self.soft_after)
            )
        } else {
            write!(
                f,
                "RLIMIT_NOFILE soft limit already at the hard limit ({})",
                checks::limit_text(self.hard)
            )
        }
    }
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (children,
/// such as the servers `run` starts, inherit it) and says what changed.
pub fn raise_nofile_soft_limit() -> io::Result<NofileRaise> {
    let (soft_before, hard) = crate::sys::rlimit::nofile()?;
    let soft_after = crate::sys::rlimit::raise_nofile_to_hard()?;
    Ok(NofileRaise {
        soft_before,
        soft_after,
        hard,
    })
}
