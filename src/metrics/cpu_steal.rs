//! Steal time: CPU time the hypervisor gave to someone else while this
//! machine's vCPUs wanted to run. A window with much of it measured the
//! host's contention, not the variants (on a contended VM it shows up as
//! stalls of whole seconds and requests left unanswered), so every window
//! records it.
//!
//! The same counters give the whole machine's busy CPU time over a window,
//! from which the server's and the driver's own CPU is taken out to see
//! what other processes ran beside them (results' `other_load` module).
//!
//! Read from the aggregate `cpu` line of `/proc/stat` (all CPUs, in clock
//! ticks); pure apart from reading the file, so it is tested on fake trees.

use std::path::Path;

/// From this share of CPU time stolen in a window, its figures are flagged
/// as unreliable.
pub const STEAL_WARN_PERCENT: f64 = 5.0;

/// Cumulative CPU time of the whole machine, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub steal_ticks: u64,
    /// Idle and I/O wait: time no task wanted the CPU.
    pub idle_ticks: u64,
    /// Every state, steal included (guest time is already inside user).
    pub total_ticks: u64,
    /// Time tasks ran: user, nice and system. Interrupt time is left out:
    /// kernels that account it apart (IRQ_TIME_ACCOUNTING) charge it to no
    /// task, so it would read as another process's load; with tick
    /// accounting it is in the interrupted task's system time already.
    pub busy_ticks: u64,
}

impl CpuTimes {
    /// Reads `proc/stat` under `root` (`/` for the real machine).
    pub fn read(root: &Path) -> Result<CpuTimes, String> {
        let path = root.join("proc/stat");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        CpuTimes::parse(&text).ok_or_else(|| format!("{}: no parsable `cpu` line", path.display()))
    }

    /// The machine's current times (`None` where `/proc/stat` is unreadable:
    /// steal is then simply not reported).
    pub fn now() -> Option<CpuTimes> {
        CpuTimes::read(Path::new("/")).ok()
    }

    /// The `cpu` line: user nice system idle iowait irq softirq steal
    /// [guest guest_nice]. Kernels before 2.6.11 have no steal column.
    pub fn parse(stat: &str) -> Option<CpuTimes> {
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let fields: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        // guest and guest_nice are already counted in user and nice.
        let states = fields.get(..8)?;
        Some(CpuTimes {
            steal_ticks: states[7],
            idle_ticks: states[3] + states[4],
            total_ticks: states.iter().sum(),
            busy_ticks: states[0] + states[1] + states[2],
        })
    }

    /// Percent of the time tasks wanted a CPU that the hypervisor took,
    /// since boot: idle time, when nobody wanted one, does not dilute it.
    pub fn steal_percent_of_busy(&self) -> Option<f64> {
        let wanted = self.total_ticks.checked_sub(self.idle_ticks)?;
        (wanted > 0).then(|| self.steal_ticks as f64 * 100.0 / wanted as f64)
    }

    /// Percent of all CPU time from `self` to `later` that was stolen;
    /// `None` when no time passed (or the counters went backwards).
    pub fn steal_percent_until(&self, later: &CpuTimes) -> Option<f64> {
        let total = later.total_ticks.checked_sub(self.total_ticks)?;
        let steal = later.steal_ticks.checked_sub(self.steal_ticks)?;
        (total > 0).then(|| steal as f64 * 100.0 / total as f64)
    }
}

impl CpuTimes {
    /// CPU seconds the whole machine (every CPU) spent running tasks from
    /// `self` to `later`; `None` when the counters went backwards.
    pub fn busy_seconds_until(&self, later: &CpuTimes, ticks_per_second: u64) -> Option<f64> {
        let busy = later.busy_ticks.checked_sub(self.busy_ticks)?;
        Some(busy as f64 / ticks_per_second.max(1) as f64)
    }
}

/// A note for a window that lost at least [`STEAL_WARN_PERCENT`] of its CPU
/// time to the hypervisor.
pub fn steal_note(steal_percent: Option<f64>) -> Option<String> {
    steal_percent
        .filter(|p| *p >= STEAL_WARN_PERCENT)
        .map(|p| format!("the hypervisor took {p:.0}% of CPU time in that window (steal)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 800 10 0 5 30 7 0\ncpu0 50 2 25 400 5 0 2 15 0 0\nintr 1\n";

    #[test]
    fn parses_the_aggregate_line_without_double_counting_guest_time() {
        let t = CpuTimes::parse(STAT).unwrap();
        assert_eq!(t.steal_ticks, 30);
        assert_eq!(t.idle_ticks, 810);
        assert_eq!(t.total_ticks, 100 + 5 + 50 + 800 + 10 + 5 + 30);
        // 30 stolen of 190 ticks in which something wanted to run.
        let busy = t.steal_percent_of_busy().unwrap();
        assert!((busy - 30.0 * 100.0 / 190.0).abs() < 1e-9, "{busy}");
        // Tasks ran in user, nice and system time.
        assert_eq!(t.busy_ticks, 100 + 5 + 50);
        let later = CpuTimes::parse(
            "cpu  300 5 150 800 10 0 5 30 7 0
",
        )
        .unwrap();
        assert_eq!(t.busy_seconds_until(&later, 100), Some(3.0));
        assert_eq!(
            later.busy_seconds_until(&t, 100),
            None,
            "counters went back"
        );
    }

    #[test]
    fn steal_percent_over_a_window() {
        let a = CpuTimes {
            steal_ticks: 30,
            idle_ticks: 0,
            total_ticks: 1000,
            ..CpuTimes::default()
        };
        let b = CpuTimes {
            steal_ticks: 80,
            idle_ticks: 0,
            total_ticks: 1200,
            ..CpuTimes::default()
        };
        assert_eq!(a.steal_percent_until(&b), Some(25.0));
        assert_eq!(a.steal_percent_until(&a), None, "no time passed");
        assert_eq!(b.steal_percent_until(&a), None, "counters went back");
        assert_eq!(
            steal_note(Some(25.0)).unwrap(),
            "the hypervisor took 25% of CPU time in that window (steal)"
        );
        assert_eq!(steal_note(Some(4.9)), None);
        assert_eq!(steal_note(None), None);
    }

    #[test]
    fn old_or_garbled_stat_files_give_nothing() {
        assert_eq!(CpuTimes::parse("cpu  1 2 3 4\n"), None, "no steal column");
        assert_eq!(CpuTimes::parse("cpu  1 2 x 4 5 6 7 8\n"), None);
        assert_eq!(CpuTimes::parse("intr 5\n"), None);
        let dir = tempfile::tempdir().unwrap();
        let err = CpuTimes::read(dir.path()).unwrap_err();
        assert!(err.contains("proc/stat"), "{err}");
    }
}
